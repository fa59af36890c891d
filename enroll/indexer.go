package enroll

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/limit"
	"github.com/managedvm/managedvm/provider"
)

// IndexerOptions tune an Indexer. The zero value is usable.
type IndexerOptions struct {
	// RetryInterval is the pause before retrying work that could not be
	// done yet (a deleted VM whose enrollment is still running) or a broken
	// watch (default 2s).
	RetryInterval time.Duration
	// Providers limits the Indexer to these provider names (default all).
	Providers []string
}

// Indexer keeps the CMDB in step with the providers (the "vCenter
// indexing" of the enrollment flow): an initial sync, then a watch of each
// provider's events, one goroutine per provider. It records new VMs as
// available, updates facts, moves an enrolled VM's NAT when its local IP
// changes, and cleans up (NAT, public IP) then retires VMs that were
// deleted. Cursors are kept in the Store, so a restart resumes where it
// stopped; a lost or expired cursor falls back to a full resync. Duplicate
// and out-of-order events are harmless.
type Indexer struct {
	o     *Orchestrator
	retry time.Duration
	names []string
	wg    sync.WaitGroup // background retries
}

// Indexer returns an Indexer over the orchestrator's providers, CMDB and
// Store.
func (o *Orchestrator) Indexer(opts *IndexerOptions) *Indexer {
	if opts == nil {
		opts = &IndexerOptions{}
	}
	ix := &Indexer{o: o, retry: opts.RetryInterval, names: opts.Providers}
	if ix.retry <= 0 {
		ix.retry = 2 * time.Second
	}
	if len(ix.names) == 0 {
		for name := range o.cfg.Providers {
			ix.names = append(ix.names, name)
		}
		slices.Sort(ix.names)
	}
	return ix
}

// Run indexes every provider until ctx is canceled, then waits for its
// goroutines and returns nil. Errors of one provider (unreachable, watch
// broken) are reported as IndexerError events and retried; they do not stop
// the others.
func (ix *Indexer) Run(ctx context.Context) error {
	for _, name := range ix.names {
		if _, ok := ix.o.cfg.Providers[name]; !ok {
			return errs.Errorf(errs.InvalidArgument, "enroll.Indexer", "unknown provider %s", limit.Quote(name))
		}
	}
	var wg sync.WaitGroup
	for _, name := range ix.names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ix.loop(ctx, name)
		}()
	}
	wg.Wait()
	ix.wg.Wait()
	return nil
}

func (ix *Indexer) report(name string, err error) {
	ix.o.emit(Event{Kind: IndexerError, VM: cmdb.Key{Provider: name}, Code: errs.CodeOf(err), Message: err.Error()})
}

func (ix *Indexer) sleep(ctx context.Context) bool {
	t := time.NewTimer(ix.retry)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (ix *Indexer) loop(ctx context.Context, name string) {
	prov := ix.o.cfg.Providers[name]
	for ctx.Err() == nil {
		cursor, err := ix.o.cfg.Store.Cursor(ctx, name)
		if errs.CodeOf(err) == errs.NotFound {
			cursor, err = ix.sync(ctx, name)
		}
		if err != nil {
			if ctx.Err() == nil {
				ix.report(name, err)
				ix.sleep(ctx)
			}
			continue
		}
		err = ix.watch(ctx, name, prov, cursor)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, provider.ErrCursorExpired) {
			// Too far behind: list everything again.
			if _, err := ix.sync(ctx, name); err != nil && ctx.Err() == nil {
				ix.report(name, err)
				ix.sleep(ctx)
			}
			continue
		}
		if err != nil {
			ix.report(name, err)
			ix.sleep(ctx)
		}
	}
}

func (ix *Indexer) watch(ctx context.Context, name string, prov *provider.Provider, cursor provider.Cursor) error {
	stream, err := prov.Watch(ctx, cursor)
	if errs.CodeOf(err) == errs.InvalidArgument && cursor != "" {
		// A stored cursor the provider refuses (beyond its limits) is as
		// good as expired: list everything again.
		return errs.Join(err, provider.ErrCursorExpired)
	}
	if err != nil {
		return err
	}
	defer stream.Close()
	for {
		ev, err := stream.Next(ctx)
		if err != nil {
			return err
		}
		arrived := time.Now()
		actx, c := ix.o.tel.in.StartWith(ctx, "enroll.Indexer.apply", attribute.String("provider", name), attribute.String("event", ev.Type.String()))
		err = ix.apply(actx, name, ev)
		c.Finish(actx, err)
		if err != nil {
			return err
		}
		ix.o.indexed(name, ev.Time, arrived)
		if ev.Cursor != "" {
			if err := ix.o.cfg.Store.SetCursor(ctx, name, ev.Cursor); err != nil {
				return err
			}
		}
	}
}

// Sync lists one provider and brings the CMDB in line with it: every VM
// recorded (new ones as available, known ones keeping their enrollment
// state), records of VMs that no longer exist cleaned up and retired. It
// saves a cursor taken before the listing, so a watch from it misses
// nothing.
func (ix *Indexer) Sync(ctx context.Context, name string) error {
	if _, ok := ix.o.cfg.Providers[name]; !ok {
		return errs.Errorf(errs.NotFound, "enroll.Indexer.Sync", "unknown provider %s", limit.Quote(name))
	}
	_, err := ix.sync(ctx, name)
	return err
}

// syncBatch is how many records the sync writes with one
// CMDB.UpsertMany call (one statement for pgcmdb).
const syncBatch = 500

func (ix *Indexer) sync(ctx context.Context, name string) (provider.Cursor, error) {
	prov := ix.o.cfg.Providers[name]
	cursor, err := prov.Cursor(ctx)
	if err != nil {
		return "", err
	}
	vms, err := prov.List(ctx, nil)
	if err != nil {
		return "", err
	}
	// Every record of the provider, retired ones too: a listed VM whose
	// record is retired exists again.
	recs, err := ix.o.cfg.CMDB.List(ctx, cmdb.Filter{Provider: name, IncludeRetired: true})
	if err != nil {
		return "", err
	}
	byID := make(map[string]int, len(recs))
	live := 0
	for i, rec := range recs {
		byID[rec.Key.VMID] = i
		if rec.State != cmdb.Retired {
			live++
		}
	}
	seen := make(map[string]bool, len(vms))
	batch := make([]syncWrite, 0, min(len(vms), syncBatch))
	for _, vm := range vms {
		if seen[vm.ID] {
			continue // listed twice: one write is enough
		}
		seen[vm.ID] = true
		key := cmdb.Key{Provider: name, VMID: vm.ID}
		w := syncWrite{vm: vm}
		if i, ok := byID[vm.ID]; ok {
			rec := recs[i]
			if rec.State != cmdb.Retired && reflect.DeepEqual(rec.VM, vm) {
				continue // nothing changed
			}
			w.before = rec
			w.rec = rec // a copy of its own: List returns copies
		} else {
			w.rec = cmdb.Record{Key: key, State: cmdb.Available}
		}
		w.rec.VM = vm
		if w.rec.State == cmdb.Retired {
			w.rec.State, w.rec.RetiredAt = cmdb.Available, time.Time{}
		}
		if err := w.rec.Validate(); err != nil {
			ix.refused(key, err)
			continue
		}
		batch = append(batch, w)
		if len(batch) == syncBatch {
			if err := ix.writeBatch(ctx, name, batch); err != nil {
				return "", err
			}
			batch = batch[:0]
		}
	}
	if err := ix.writeBatch(ctx, name, batch); err != nil {
		return "", err
	}
	for _, rec := range recs {
		if rec.State != cmdb.Retired && !seen[rec.Key.VMID] {
			ix.deleted(ctx, rec.Key)
		}
	}
	if err := ix.o.cfg.Store.SetCursor(ctx, name, cursor); err != nil {
		return "", err
	}
	ix.o.emit(Event{Kind: IndexerSync, VM: cmdb.Key{Provider: name}, Message: fmt.Sprintf("%d VMs listed, %d records", len(vms), live)})
	return cursor, nil
}

// syncWrite is one record the sync writes: rec, from before (the stored
// record; Revision 0 when there was none) and the VM's facts vm.
type syncWrite struct {
	vm          provider.VM
	before, rec cmdb.Record
}

// writeBatch writes a page of the sync with one UpsertMany. The records
// someone else wrote since the sync read them (an enrollment, say) go
// through upsert one by one, on a fresh read.
func (ix *Indexer) writeBatch(ctx context.Context, name string, batch []syncWrite) error {
	if len(batch) == 0 {
		return nil
	}
	recs := make([]cmdb.Record, len(batch))
	for i, w := range batch {
		recs[i] = w.rec
	}
	_, err := ix.o.cfg.CMDB.UpsertMany(ctx, recs)
	var be *cmdb.BatchError
	if err != nil && !errors.As(err, &be) {
		return err
	}
	for i, w := range batch {
		if be != nil && be.Errs[i] != nil {
			if err := ix.upsert(ctx, name, w.vm); err != nil {
				return err
			}
			continue
		}
		ix.recorded(ctx, w.rec.Key, w.before, w.vm)
	}
	return nil
}

func (ix *Indexer) apply(ctx context.Context, name string, ev provider.Event) error {
	key := cmdb.Key{Provider: name, VMID: ev.VMID}
	switch ev.Type {
	case provider.Created, provider.Changed:
		if ev.VM.Template {
			return nil
		}
		return ix.upsert(ctx, name, ev.VM)
	case provider.Deleted:
		// Out-of-order or stale deletions: believe the provider.
		if _, err := ix.o.cfg.Providers[name].Get(ctx, ev.VMID); err == nil {
			return nil
		} else if errs.CodeOf(err) != errs.NotFound {
			return err
		}
		ix.deleted(ctx, key)
	}
	return nil
}

// upsert records vm's facts, keeping the record's enrollment state, and
// moves the NAT of an enrolled VM whose local IP changed.
func (ix *Indexer) upsert(ctx context.Context, name string, vm provider.VM) error {
	key := cmdb.Key{Provider: name, VMID: vm.ID}
	var before cmdb.Record
	err := updateRecord(ctx, ix.o.cfg.CMDB, key, func(rec *cmdb.Record) error {
		before = *rec // updateRecord's own copy: rec is changed below
		if rec.Revision != 0 && rec.State == cmdb.Retired {
			// A late event of a VM already seen deleted must not bring
			// it back: believe the provider.
			if _, err := ix.o.cfg.Providers[name].Get(ctx, vm.ID); errs.CodeOf(err) == errs.NotFound {
				return errNothingToMark
			} else if err != nil {
				return err
			}
		}
		created := rec.Revision == 0
		revived := rec.State == cmdb.Retired
		if !created && !revived && reflect.DeepEqual(rec.VM, vm) {
			return errNothingToMark
		}
		rec.VM = vm.Clone() // a new value: before keeps the old one
		if revived {
			rec.State, rec.RetiredAt = cmdb.Available, time.Time{}
		}
		return nil
	})
	if err == errNothingToMark {
		return nil
	}
	if errs.CodeOf(err) == errs.InvalidArgument {
		ix.refused(key, err)
		return nil
	}
	if err != nil {
		return err
	}
	ix.recorded(ctx, key, before, vm)
	return nil
}

// refused reports a VM whose facts are beyond the CMDB's limits (a name
// or annotation too long, a control character) and goes on, so one such
// VM does not hold up every later event.
func (ix *Indexer) refused(key cmdb.Key, err error) {
	ix.o.emit(Event{Kind: IndexerError, VM: key, Code: errs.InvalidArgument,
		Message: "VM not indexed: the CMDB refuses its facts: " + err.Error()})
}

// recorded follows the write of vm's facts to key's record over before
// (the record as it was, Revision 0 if there was none): the VMDiscovered
// or VMChanged event, and the move of an enrolled VM's NAT when its local
// IP changed.
func (ix *Indexer) recorded(ctx context.Context, key cmdb.Key, before cmdb.Record, vm provider.VM) {
	kind := VMChanged
	if before.Revision == 0 || before.State == cmdb.Retired {
		kind = VMDiscovered
	}
	ix.o.emit(Event{Kind: kind, VM: key, Message: vm.Name})
	pool := before.Attributes[AttrPool]
	if before.State != cmdb.Enrolled || pool == "" {
		return
	}
	if local, ok := vm.PrimaryIP(); ok {
		a, err := ix.o.cfg.IPAM.Lookup(ctx, pool, key.String())
		if err == nil && a.LocalIP != local {
			ix.background(ctx, key, func(ctx context.Context) error { return ix.o.readdress(ctx, key, pool, a.Address, local) })
		}
	}
}

// deleted cleans up after a VM that no longer exists, in the background
// when its journal is busy.
func (ix *Indexer) deleted(ctx context.Context, key cmdb.Key) {
	ix.o.emit(Event{Kind: VMDeleted, VM: key})
	ix.background(ctx, key, func(ctx context.Context) error {
		_, err := ix.o.Cleanup(ctx, key.Provider, key.VMID)
		return err
	})
}

// background runs f now, and again every RetryInterval while it fails
// because the VM is busy (another journal open) or a driver is unavailable.
func (ix *Indexer) background(ctx context.Context, key cmdb.Key, f func(context.Context) error) {
	err := f(ctx)
	if err == nil || !retryable(err) {
		if err != nil {
			ix.report(key.Provider, err)
		}
		return
	}
	ix.wg.Add(1)
	go func() {
		defer ix.wg.Done()
		for ix.sleep(ctx) {
			err := f(ctx)
			if err == nil || !retryable(err) {
				if err != nil {
					ix.report(key.Provider, err)
				}
				return
			}
		}
	}()
}

func retryable(err error) bool {
	if errors.Is(err, ErrVMBusy) {
		return true
	}
	switch errs.CodeOf(err) {
	case errs.Unavailable, errs.OutcomeUnknown, errs.DeadlineExceeded:
		return true
	}
	return false
}

// Cleanup undoes an enrollment of a VM that no longer exists: it removes the
// NAT, releases the public IP and retires the CMDB record, without touching
// the guest. The Indexer calls it for deleted VMs; hosts may call it for
// deletions they learn of otherwise. It is idempotent. While another
// operation on the VM is running it returns an error wrapping ErrVMBusy.
func (o *Orchestrator) Cleanup(ctx context.Context, providerName, vmID string) (Result, error) {
	ctx, c := o.span(ctx, "enroll.Cleanup", cmdb.Key{Provider: providerName, VMID: vmID})
	res, err := o.cleanup(ctx, providerName, vmID)
	c.Finish(ctx, err)
	return res, err
}

func (o *Orchestrator) cleanup(ctx context.Context, providerName, vmID string) (Result, error) {
	key := cmdb.Key{Provider: providerName, VMID: vmID}
	if err := validRequest("enroll.Cleanup", "", providerName, vmID, ""); err != nil {
		return Result{VM: key, Op: OpCleanup, Err: err}, err
	}
	j := Journal{Op: OpCleanup, VM: key, Phase: Running, Steps: plan(OpCleanup, "", false)}
	return o.launch(ctx, j, nil)
}

// readdress moves an enrolled VM's NAT relation to its new local IP.
func (o *Orchestrator) readdress(ctx context.Context, key cmdb.Key, pool string, public, local netip.Addr) error {
	j := Journal{Op: OpReaddress, VM: key, Phase: Running, Steps: plan(OpReaddress, "", false), NewLocalIP: local,
		Resources: Resources{Pool: pool, PublicIP: public}}
	_, err := o.launch(ctx, j, nil)
	return err
}
