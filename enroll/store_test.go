package enroll_test

import (
	"context"
	"strings"
	"testing"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/obs/obstest"
	"github.com/managedvm/managedvm/internal/testkit"
)

func storeJournal(id string) enroll.Journal {
	return enroll.Journal{ID: id, Op: enroll.OpEnroll, VM: cmdb.Key{Provider: "p1", VMID: "vm-" + id},
		Phase: enroll.Running, Steps: []enroll.StepRecord{{Name: "eligibility"}}}
}

// TestStoreTelemetry: one span per Store call, the errs code on failures,
// and the call metrics.
func TestStoreTelemetry(t *testing.T) {
	r := obstest.New(t)
	s := enroll.NewStore(enroll.NewMemoryStoreDriver(nil), &enroll.StoreOptions{TracerProvider: r.TP, MeterProvider: r.MP})
	ctx := context.Background()
	j, err := s.CreateJournal(ctx, storeJournal("j1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateJournal(ctx, storeJournal("j1")); errs.CodeOf(err) != errs.AlreadyExists {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := s.GetJournal(ctx, "nope"); errs.CodeOf(err) != errs.NotFound {
		t.Fatalf("missing: %v", err)
	}
	if _, err := s.GetJournal(ctx, "bad\nid"); errs.CodeOf(err) != errs.InvalidArgument {
		t.Fatalf("bad id: %v", err)
	}
	if _, err := s.UpdateJournal(ctx, j); err != nil {
		t.Fatal(err)
	}
	creates := r.SpansNamed("enroll.Store.CreateJournal")
	if len(creates) != 2 || creates[0].Error || creates[1].Code != "AlreadyExists" {
		t.Fatalf("CreateJournal spans %+v", creates)
	}
	gets := r.SpansNamed("enroll.Store.GetJournal")
	if len(gets) != 2 || gets[0].Code != "NotFound" || gets[1].Code != "InvalidArgument" {
		t.Fatalf("GetJournal spans %+v", gets)
	}
	if n := len(r.SpansNamed("enroll.Store.UpdateJournal")); n != 1 {
		t.Fatalf("%d UpdateJournal spans", n)
	}
	if n := r.Sum("managedvm.calls", map[string]string{"op": "enroll.Store.CreateJournal"}); n != 2 {
		t.Fatalf("CreateJournal calls %d", n)
	}
	if n := r.Sum("managedvm.errors", map[string]string{"op": "enroll.Store.GetJournal", "code": "NotFound"}); n != 1 {
		t.Fatalf("GetJournal NotFound errors %d", n)
	}
	if n := r.Sum("managedvm.errors", map[string]string{"op": "enroll.Store.UpdateJournal"}); n != 0 {
		t.Fatalf("UpdateJournal errors %d", n)
	}
}

// TestStoreWrapsOnce: a driver error reaches the caller named once by the
// operation.
func TestStoreWrapsOnce(t *testing.T) {
	s := enroll.NewMemoryStore(nil)
	_, err := s.GetJournal(context.Background(), "nope")
	if got := err.Error(); got != `enroll.Store.GetJournal: no journal "nope"` {
		t.Fatalf("error %q", got)
	}
	_, err = s.CreateJournal(context.Background(), storeJournal(strings.Repeat("x\n", 5000)))
	testkit.WantCode(t, "hostile ID", err, errs.InvalidArgument)
	testkit.Bounded(t, "hostile ID", err, 300)
}

func FuzzStoreJournal(f *testing.F) {
	f.Add("j1", "p1", "vm-1", "admin", "gold")
	f.Add("", "p", "v", "", "")
	f.Add("a\x00", "p\n", strings.Repeat("v", 300), "\xff", "x")
	f.Fuzz(func(t *testing.T, id, prov, vmid, user, profile string) {
		s := enroll.NewMemoryStore(nil)
		j := storeJournal(id)
		j.VM = cmdb.Key{Provider: prov, VMID: vmid}
		j.Username, j.Profile = user, profile
		got, err := s.CreateJournal(context.Background(), j)
		if err != nil {
			testkit.MustCode(t, "CreateJournal", err, errs.InvalidArgument)
			testkit.Bounded(t, "CreateJournal", err, 400)
			if all, _ := s.Journals(context.Background()); len(all) != 0 {
				t.Fatal("a refused journal was stored")
			}
			return
		}
		back, err := s.GetJournal(context.Background(), got.ID)
		if err != nil || back.ID != id || back.VM != j.VM || back.Username != user {
			t.Fatalf("round trip: %+v, %v", back, err)
		}
	})
}

// TestZeroStore: a Store not made by NewStore refuses calls instead of
// panicking.
func TestZeroStore(t *testing.T) {
	var s enroll.Store
	_, err := s.CreateJournal(context.Background(), storeJournal("j1"))
	testkit.WantCode(t, "zero Store", err, errs.FailedPrecondition)
	var nilStore *enroll.Store
	_, err = nilStore.OpenJournals(context.Background())
	testkit.WantCode(t, "nil Store", err, errs.FailedPrecondition)
}

// TestHostileRequests: requests with names the Store would refuse fail with
// InvalidArgument and a bounded message before anything is done.
func TestHostileRequests(t *testing.T) {
	w := newWorld(t, worldOptions{vms: 1})
	o := w.orchestrator("i1", nil)
	ctx := context.Background()
	long := strings.Repeat("x\n", 50000)
	for name, req := range map[string]enroll.Request{
		"key":      {Key: long, Provider: provName, VMID: w.vms[0].ID, Credentials: w.request(0, "").Credentials},
		"provider": {Provider: long, VMID: w.vms[0].ID, Credentials: w.request(0, "").Credentials},
		"vm":       {Provider: provName, VMID: long, Credentials: w.request(0, "").Credentials},
		"profile":  {Provider: provName, VMID: w.vms[0].ID, Profile: long, Credentials: w.request(0, "").Credentials},
		// A VM ID within the Store's limit whose owner key "provider/vmid"
		// is longer than a firewall rule owner may be.
		"owner": {Provider: provName, VMID: strings.Repeat("v", 200), Credentials: w.request(0, "").Credentials},
	} {
		_, err := o.Enroll(ctx, req)
		testkit.WantCode(t, "Enroll "+name, err, errs.InvalidArgument)
		testkit.Bounded(t, "Enroll "+name, err, 300)
	}
	_, err := o.Unenroll(ctx, enroll.UnenrollRequest{Provider: provName, VMID: long})
	testkit.WantCode(t, "Unenroll", err, errs.InvalidArgument)
	testkit.Bounded(t, "Unenroll", err, 300)
	_, err = o.Cleanup(ctx, long, "vm")
	testkit.WantCode(t, "Cleanup", err, errs.InvalidArgument)
	testkit.Bounded(t, "Cleanup", err, 300)
	if n := len(w.allJournals()); n != 0 {
		t.Fatalf("%d journals written", n)
	}
}
