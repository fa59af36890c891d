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
// as a LAN would.
func BenchmarkCommands(b *testing.B) {
	for _, c := range []struct {
		name  string
		idle  int
		delay time.Duration
	}{
		{"OneShell", 1, 0}, {"ShellPerCommand", -1, 0},
		{"OneShell/1msRTT", 1, time.Millisecond}, {"ShellPerCommand/1msRTT", -1, time.Millisecond},
	} {
		b.Run(c.name, func(b *testing.B) {
			g := newFakeGuest(b, winrmserver.Options{Delay: c.delay})
			o := g.options()
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
// envelope-sized Sends, then hashed and moved in the guest).
func BenchmarkUpload(b *testing.B) {
	g := newFakeGuest(b, winrmserver.Options{})
	ex := g.executor(b, nil)
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
}
