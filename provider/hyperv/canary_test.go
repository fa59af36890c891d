package hyperv_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/fakes/hypervsim"
	"github.com/managedvm/managedvm/internal/obs/obstest"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/hyperv"
)

// The service account's and a guest's passwords appear in no error, log
// record, span or WinRM command line (the guest's travels on standard
// input only), across successes and the failures most likely to echo
// them: wrong guest passwords, a provisioning that fails and is undone,
// a node that stops answering, a Preflight with failing rows.
func TestCanarySecrets(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	rec := obstest.New(t)
	w := newWorld(t, hypervsim.Options{}, &hyperv.Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		TracerProvider: rec.TP, MeterProvider: rec.MP, Guest: &guest.Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			TracerProvider: rec.TP, MeterProvider: rec.MP}})
	vm, _ := guestWorld(t, w)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var seen []string
	note := func(err error) {
		if err != nil {
			seen = append(seen, fmt.Sprintf("%v %+v %#v", err, err, err))
		}
	}
	ga, _ := w.pp.GuestAccess()
	note(ga.ValidateCredentials(ctx, vm, guest.Password("Administrator", guestPassword)))
	note(ga.ValidateCredentials(ctx, vm, guest.Password("Administrator", guestPassword+"-wrong")))
	note(ga.ValidateCredentials(ctx, vm, guest.Password("nobody", guestPassword)))
	if ex, err := ga.GuestExecutor(ctx, vm, guest.Password("Administrator", guestPassword)); err == nil {
		_, err := ex.Run(ctx, guest.Command{Args: []string{"cmd.exe", "/c", "exit 3"}})
		note(err)
		note(ex.Close())
	} else {
		t.Fatal(err)
	}
	for _, n := range w.s.Nodes() {
		w.s.DenyClusterRoles(n, true)
	}
	_, err := w.pp.Provision(ctx, provider.ProvisionSpec{Key: "k", Name: "denied", Template: "ubuntu-24.04", Zone: "az1",
		Customization: &provider.Customization{UserData: []byte("#cloud-config\nchpasswd: {list: 'root:" + guestPassword + "'}\n")}})
	note(err)
	if err == nil {
		t.Fatal("Provision without cluster rights succeeded")
	}
	r, err := w.pp.Preflight(ctx)
	note(err)
	seen = append(seen, r.String())
	w.s.Server("HV2").Close()
	_, err = w.pp.List(ctx, nil)
	note(err)
	note(ga.ValidateCredentials(ctx, vm, guest.Password("Administrator", guestPassword)))

	seen = append(seen, logs.String(), fmt.Sprintf("%+v", rec.Spans()))
	for _, n := range w.s.Nodes() {
		if srv := w.s.Server(n); srv != nil {
			for _, q := range srv.Requests() {
				seen = append(seen, q.CommandLine, q.Script)
			}
		}
	}
	if logs.Len() == 0 || len(rec.Spans()) == 0 {
		t.Fatal("nothing was logged or traced: the test would prove nothing")
	}
	for _, s := range seen {
		for _, secret := range []string{testPassword, guestPassword} {
			if strings.Contains(s, secret) {
				t.Errorf("a secret shows in %q", s)
			}
		}
	}
}
