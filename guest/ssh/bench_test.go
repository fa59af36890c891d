package ssh_test

import (
	"context"
	"testing"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/ssh"
	"github.com/managedvm/managedvm/internal/fakes/sshserver"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// benchRun runs a trivial command b.N times and reports commands/s.
func benchRun(b *testing.B, run func() error) {
	b.Helper()
	b.ResetTimer()
	for b.Loop() {
		if err := run(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
}

var trueCmd = guest.Command{Args: []string{"true"}}

// BenchmarkOpenSSH compares one reused connection with a new connection
// per command, against Debian's sshd (MANAGEDVM_SSHD_*).
func BenchmarkOpenSSH(b *testing.B) {
	r := sshdEnv(b)
	ctx := context.Background()
	cred := guest.Credentials{Username: r.user, PrivateKey: guest.NewSecret(r.key)}
	hk := r.hostKeys(b)
	b.Run("reused-connection", func(b *testing.B) {
		ex := r.dialRoot(b, nil)
		benchRun(b, func() error { _, err := ex.Run(ctx, trueCmd); return err })
	})
	// The same with an OpenTelemetry SDK installed: spans batched to an
	// exporter that drops them, metrics aggregated for a manual reader.
	b.Run("reused-connection-sdk", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		defer func() { _ = tp.Shutdown(ctx); _ = mp.Shutdown(ctx) }()
		ex := r.dialRoot(b, &ssh.Options{Executor: &guest.Options{TracerProvider: tp, MeterProvider: mp}})
		benchRun(b, func() error { _, err := ex.Run(ctx, trueCmd); return err })
	})
	b.Run("reused-connection-parallel", func(b *testing.B) {
		ex := r.dialRoot(b, nil)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := ex.Run(ctx, trueCmd); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
	})
	b.Run("new-connection-per-command", func(b *testing.B) {
		benchRun(b, func() error {
			ex, err := ssh.Dial(ctx, ssh.Config{Addr: r.addr, Credentials: cred, HostKeys: hk}, nil)
			if err != nil {
				return err
			}
			defer ex.Close()
			_, err = ex.Run(ctx, trueCmd)
			return err
		})
	})
}

// BenchmarkOpenSSHShUser is the same comparison as the CI's password user,
// whose login shell is /bin/sh: root's login shell on the CI machine is
// bash, which reads ~/.bashrc for every command run over SSH (Debian
// builds bash that way), and that file's cost dominates root's figures.
func BenchmarkOpenSSHShUser(b *testing.B) {
	r := sshdEnv(b)
	if r.pwUser == "" {
		b.Skip("no MANAGEDVM_SSHD_PW_USER")
	}
	ctx := context.Background()
	cred := guest.Password(r.pwUser, r.pwPassword)
	hk := r.hostKeys(b)
	b.Run("reused-connection", func(b *testing.B) {
		ex := r.dialPassword(b)
		benchRun(b, func() error { _, err := ex.Run(ctx, trueCmd); return err })
	})
	b.Run("new-connection-per-command", func(b *testing.B) {
		benchRun(b, func() error {
			ex, err := ssh.Dial(ctx, ssh.Config{Addr: r.addr, Credentials: cred, HostKeys: hk}, nil)
			if err != nil {
				return err
			}
			defer ex.Close()
			_, err = ex.Run(ctx, trueCmd)
			return err
		})
	})
}

// BenchmarkFake is the same comparison against the in-process server.
func BenchmarkFake(b *testing.B) {
	f := startFake(b, sshserver.Config{})
	ctx := context.Background()
	b.Run("reused-connection", func(b *testing.B) {
		ex := f.dial(b, nil)
		benchRun(b, func() error { _, err := ex.Run(ctx, trueCmd); return err })
	})
	b.Run("new-connection-per-command", func(b *testing.B) {
		hk, _ := ssh.KnownHosts(f.srv.KnownHosts())
		benchRun(b, func() error {
			ex, err := ssh.Dial(ctx, ssh.Config{Addr: f.srv.Addr(), Credentials: f.cred, HostKeys: hk}, nil)
			if err != nil {
				return err
			}
			defer ex.Close()
			_, err = ex.Run(ctx, trueCmd)
			return err
		})
	})
}
