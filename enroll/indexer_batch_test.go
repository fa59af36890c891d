package enroll_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/cmdb/memcmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/internal/obs/obstest"
	"github.com/managedvm/managedvm/ipam/memipam"
	"github.com/managedvm/managedvm/natfw/memfw"
	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/memprovider"
)

// TestIndexerSyncWritesPages: the sync writes its records a page per
// CMDB.UpsertMany (one call for 1,200 VMs would be too many: three pages),
// never one Upsert per VM; a second sync keeps enrollment states, revives
// a retired record whose VM is listed, writes changed facts and leaves
// unchanged records at their revision.
func TestIndexerSyncWritesPages(t *testing.T) {
	ctx := context.Background()
	const n = 1200
	hv := memprovider.New(nil)
	if err := hv.AddZone(provider.Zone{Name: zoneName}); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		vm, err := hv.AddVM(provider.VM{Name: fmt.Sprint("vm", i), Zone: zoneName, Power: provider.PoweredOn,
			Guest: provider.GuestInfo{Family: guest.Linux, IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})}}})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = vm.ID
	}
	rec := obstest.New(t)
	db := memcmdb.New(&memcmdb.Options{TracerProvider: rec.TP})
	o, err := enroll.New(enroll.Config{
		Providers: map[string]*provider.Provider{provName: hv.Provider()},
		IPAM:      memipam.New(nil), Firewall: memfw.New(nil), CMDB: db, Store: enroll.NewMemoryStore(nil),
		Policy: enroll.Policy{Pool: poolName, ManagementSources: []netip.Prefix{mgmt}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ix := o.Indexer(nil)
	if err := ix.Sync(ctx, provName); err != nil {
		t.Fatal(err)
	}
	if got := len(rec.SpansNamed("cmdb.UpsertMany")); got != 3 {
		t.Fatalf("the sync of %d VMs made %d UpsertMany calls, want 3 (pages of 500)", n, got)
	}
	if got := len(rec.SpansNamed("cmdb.Upsert")) + len(rec.SpansNamed("cmdb.Get")); got != 0 {
		t.Fatalf("the sync made %d Upsert and Get calls, want none", got)
	}
	key := func(i int) cmdb.Key { return cmdb.Key{Provider: provName, VMID: ids[i]} }
	get := func(i int) cmdb.Record {
		r, err := db.Get(ctx, key(i))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	enrolled := get(0)
	enrolled.State = cmdb.Enrolled
	if enrolled, err = db.Upsert(ctx, enrolled); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Retire(ctx, key(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := hv.UpdateVM(ids[2], func(vm *provider.VM) { vm.Name = "renamed" }); err != nil {
		t.Fatal(err)
	}
	if err := ix.Sync(ctx, provName); err != nil {
		t.Fatal(err)
	}
	if r := get(0); r.State != cmdb.Enrolled || r.Revision != enrolled.Revision {
		t.Fatalf("an enrolled, unchanged VM after the second sync: %s at revision %d, want enrolled at %d", r.State, r.Revision, enrolled.Revision)
	}
	if r := get(1); r.State != cmdb.Available || !r.RetiredAt.IsZero() || r.Revision != 3 {
		t.Fatalf("a retired record of a listed VM: %s, RetiredAt %v, revision %d; want available, revision 3", r.State, r.RetiredAt, r.Revision)
	}
	if r := get(2); r.VM.Name != "renamed" || r.Revision != 2 {
		t.Fatalf("a renamed VM: name %q revision %d", r.VM.Name, r.Revision)
	}
	if r := get(3); r.Revision != 1 {
		t.Fatalf("an unchanged VM was written again: revision %d", r.Revision)
	}
	if got := len(rec.SpansNamed("cmdb.UpsertMany")); got != 4 {
		t.Fatalf("the second sync made %d UpsertMany calls, want 1 (two records changed)", got-3)
	}
}
