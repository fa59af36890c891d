package winrm_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/fakes/winrmserver"
)

// BenchmarkCommands measures commands per second against the fake server
// over loopback TLS: every command reusing one shell, against a new shell
// (Create + Delete) per command; then with 1 ms added to every round trip,
// as a LAN would; then the same over plain HTTP with every message
// NTLM-sealed (SealedHTTP).
func BenchmarkCommands(b *testing.B) {
	for _, c := range []struct {
		name   string
		idle   int
		delay  time.Duration
		sealed bool
	}{
		{"OneShell", 1, 0, false}, {"ShellPerCommand", -1, 0, false},
		{"OneShell/1msRTT", 1, time.Millisecond, false}, {"ShellPerCommand/1msRTT", -1, time.Millisecond, false},
		{"SealedHTTP/OneShell", 1, 0, true}, {"SealedHTTP/ShellPerCommand", -1, 0, true},
		{"SealedHTTP/OneShell/1msRTT", 1, time.Millisecond, true}, {"SealedHTTP/ShellPerCommand/1msRTT", -1, time.Millisecond, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			g := newFakeGuest(b, winrmserver.Options{Delay: c.delay, PlainHTTP: c.sealed})
			o := g.options()
			if c.sealed {
				o = httpOptions(g)
			}
			o.MaxIdleShells = c.idle
			ex := g.executor(b, o)
			cmd := guest.Command{Args: []string{"Write-Output", "x"}}
			if _, err := ex.Run(b.Context(), cmd); err != nil { // connect and authenticate
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := ex.Run(b.Context(), cmd); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
		})
	}
}

// BenchmarkUpload measures Upload of 1 MiB (streamed through stdin in
// envelope-sized Sends, then hashed and moved in the guest), over TLS and
// over plain HTTP with every message NTLM-sealed.
func BenchmarkUpload(b *testing.B) {
	for _, sealed := range []bool{false, true} {
		name := "TLS"
		if sealed {
			name = "SealedHTTP"
		}
		b.Run(name, func(b *testing.B) {
			g := newFakeGuest(b, winrmserver.Options{PlainHTTP: sealed})
			o := g.options()
			if sealed {
				o = httpOptions(g)
			}
			ex := g.executor(b, o)
			content := make([]byte, 1<<20)
			for i := range content {
				content[i] = byte(i * 7)
			}
			path := g.dir(b) + `\bench.bin`
			b.SetBytes(int64(len(content)))
			for b.Loop() {
				if err := ex.Upload(b.Context(), path, bytes.NewReader(content), guest.UploadOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
