package enroll_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/guest"
)

// TestLeaseRenewedWhileWorking: a step that runs longer than the lease
// keeps the journal, because the lease is renewed; another instance's
// Resume never takes it over meanwhile.
func TestLeaseRenewedWhileWorking(t *testing.T) {
	w := newWorld(t, worldOptions{vms: 1})
	release := make(chan struct{})
	var once sync.Once
	finish := func() { once.Do(func() { close(release) }) }
	defer finish()
	slow := guest.ConfiguratorFunc(func(ctx context.Context, _ guest.Target, ex *guest.Executor) error {
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return configurator{}.Configure(ctx, guest.Target{}, ex)
	})
	realClock := func(c *enroll.Config, o *enroll.Options) {
		o.Now, o.LeaseTTL = nil, 60*time.Millisecond
		c.Configurator = slow
	}
	o1 := w.orchestrator("i1", realClock)
	o2 := w.orchestrator("i2", realClock)
	done := make(chan error, 1)
	go func() {
		_, err := o1.Enroll(context.Background(), w.request(0, "r"))
		done <- err
	}()
	waitFor(t, "enrollment to reach configure", func() bool {
		j, err := w.store.GetJournal(context.Background(), "r")
		return err == nil && j.Steps[4].State == enroll.StateDone
	})
	deadline := time.Now().Add(400 * time.Millisecond) // several lease lifetimes
	for time.Now().Before(deadline) {
		rep, err := o2.Resume(context.Background())
		if err != nil || len(rep.Resumed) != 0 {
			t.Fatalf("another instance took over a live journal: %+v, %v", rep, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	finish()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	w.configured[w.vms[0].ID] = true // the slow configurator ran the real one with an empty target
	w.mu.Unlock()
	w.checkInvariants(t)
}

// TestResumeEvery: a replica's loop picks up a crashed replica's journal
// once its lease expires.
func TestResumeEvery(t *testing.T) {
	w := newWorld(t, worldOptions{vms: 1})
	crashAfterFirewall(w, "i1", "r")
	o2 := w.orchestrator("i2", nil)
	ctx, cancel := context.WithCancel(context.Background())
	reports := make(chan enroll.ResumeReport, 100)
	done := make(chan error, 1)
	go func() { done <- o2.ResumeEvery(ctx, time.Millisecond, func(r enroll.ResumeReport) { reports <- r }) }()
	if r := <-reports; len(r.Resumed) != 0 || r.Skipped != 1 {
		t.Fatalf("first round, lease live: %+v", r)
	}
	w.advance(time.Hour)
	for r := range reports {
		if len(r.Resumed) == 1 {
			if r.Resumed[0].Err != nil {
				t.Fatal(r.Resumed[0].Err)
			}
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w.checkInvariants(t)
}

// TestRestartUnderSameName: a process restarted under its instance name
// takes back, at once, the journals its crashed predecessor left under a
// live lease; another instance leaves them alone until the lease expires.
func TestRestartUnderSameName(t *testing.T) {
	w := newWorld(t, worldOptions{vms: 1})
	crashAfterFirewall(w, "i1", "r")
	j, err := w.store.GetJournal(context.Background(), "r")
	if err != nil || j.Holder != "i1" || j.Incarnation == "" || !j.Phase.Open() {
		t.Fatalf("crashed journal %+v, %v", j, err)
	}
	rep, err := w.orchestrator("i2", nil).Resume(context.Background())
	if err != nil || len(rep.Resumed) != 0 || rep.Skipped != 1 {
		t.Fatalf("another instance, lease live: %+v, %v", rep, err)
	}
	restarted := w.orchestrator("i1", nil) // no clock advance: the lease is live
	rep, err = restarted.Resume(context.Background())
	if err != nil || len(rep.Resumed) != 1 || rep.Resumed[0].Err != nil {
		t.Fatalf("restarted instance: %+v, %v", rep, err)
	}
	j, _ = w.store.GetJournal(context.Background(), "r")
	if j.Phase != enroll.Succeeded {
		t.Fatalf("journal %s after the restart's Resume", j.Phase)
	}
	w.checkInvariants(t)
}

// crashAfterFirewall enrolls VM 0 with key under instance, whose process
// crashes right after the firewall step: the journal stays open under a
// live lease.
func crashAfterFirewall(w *world, instance, key string) {
	o := w.orchestrator(instance, nil)
	enroll.SetHook(o, func(p string) {
		if p == "after-do:"+enroll.StepFirewall {
			panic(crash{p})
		}
	})
	defer func() { _ = recover() }()
	_, _ = o.Enroll(context.Background(), w.request(0, key))
}
