//go:build linux

package nftables

import (
	"net/netip"
	"time"

	nft "github.com/google/nftables"

	"github.com/managedvm/managedvm/natfw"
)

// follower keeps the cached state in step with the kernel without reading
// the table again after every change: it listens to the nftables
// notifications of the driver's namespace (the NFNLGRP_NFTABLES group, as
// `nft monitor` does), which the kernel sends for every committed batch,
// by anyone, as the rules added and deleted followed by the batch's new
// generation. A change of one owner then costs the same whatever the size
// of the table; a missed notification (the socket overran, or a
// generation came that does not follow the one cached) only costs a full
// read.
type follower struct {
	mon  *nft.Monitor
	gens chan *nft.MonitorEvents
}

// followBuffer is how many generations the follower holds before the
// driver reads them; past it the kernel drops notifications, the follower
// stops, and the next read is a full one.
const followBuffer = 256

// followWait bounds the wait for the notifications of a generation the
// kernel already reports: they are queued before the commit returns, so
// this only matters when a commit is still running.
const followWait = 250 * time.Millisecond

func (f *Driver) startFollower() (*follower, error) {
	opts := []nft.ConnOption{}
	if f.ns != nil {
		opts = append(opts, nft.WithNetNSFd(int(*f.ns)))
	}
	c, err := nft.New(opts...)
	if err != nil {
		return nil, err
	}
	// All objects: a narrower v0.3.0 monitor drops NEWGEN.
	mon := nft.NewMonitor(nft.WithMonitorEventBuffer(followBuffer))
	gens, err := c.AddGenerationalMonitor(mon)
	if err != nil {
		return nil, err
	}
	return &follower{mon: mon, gens: gens}, nil
}

// follow brings f.cached up to date with the notifications received so
// far and, if until is not the cached generation, waits (at most
// followWait) for the notifications up to until. It starts the follower
// when none runs (dropping the cache: what happened before it listened is
// unknown). A state that cannot be kept in step is dropped (f.cached =
// nil). Called with cacheMu held.
func (f *Driver) follow(wait bool, until uint32) {
	if f.fol == nil {
		if f.folErr != nil {
			return
		}
		fol, err := f.startFollower()
		if err != nil {
			f.folErr = err
			f.log.Debug("nftables notifications unavailable: every change is followed by a full read", "err", err)
			return
		}
		f.fol, f.cached = fol, nil
		return
	}
	var timer <-chan time.Time
	for {
		if f.cached != nil && f.cachedGen == until {
			wait = false
		}
		var (
			g  *nft.MonitorEvents
			ok bool
		)
		if wait {
			if timer == nil {
				timer = time.After(followWait)
			}
			select {
			case g, ok = <-f.fol.gens:
			case <-timer:
				return
			}
		} else {
			select {
			case g, ok = <-f.fol.gens:
			default:
				return
			}
		}
		if !ok || g.GeneratedBy == nil || g.GeneratedBy.Error != nil || g.GeneratedBy.Type != nft.MonitorEventType(nftMsgNewGen) {
			// The socket overran or broke: start again.
			f.log.Debug("nftables notifications lost: reading the table again")
			_ = f.fol.mon.Close()
			f.fol, f.cached = nil, nil
			return
		}
		if f.cached == nil {
			continue // the next full read covers it
		}
		gm, _ := g.GeneratedBy.Data.(*nft.GenMsg)
		if gm == nil {
			f.cached = nil
			continue
		}
		switch d := int32(gm.ID - f.cachedGen); {
		case d <= 0:
			continue // already in the state read
		case d > 1:
			f.cached = nil // a generation was missed
			continue
		}
		if !f.cached.apply(f, g.Changes) {
			f.cached = nil
			continue
		}
		f.cachedGen = gm.ID
	}
}

func (f *Driver) stopFollower() {
	if f.fol != nil {
		_ = f.fol.mon.Close()
		f.fol = nil
	}
}

func newState() *state {
	return &state{
		chains:   map[string]bool{},
		owners:   map[string]*entry{},
		base:     map[uint64]bool{},
		byHandle: map[uint64]pieceRef{},
		byAddr:   map[netip.Addr][]string{},
		dirty:    map[string]struct{}{},
	}
}

// apply changes st by one generation's notifications; false means they
// cannot be followed (st is then half changed and must be dropped).
func (st *state) apply(f *Driver, changes []*nft.MonitorEvent) bool {
	ours := func(t *nft.Table) bool {
		return t != nil && t.Name == f.table.Name && t.Family == f.table.Family
	}
	for _, ev := range changes {
		if ev.Error != nil {
			return false
		}
		switch ev.Type {
		case nft.MonitorEventTypeNewTable:
			if t, _ := ev.Data.(*nft.Table); ours(t) {
				st.table = true
			}
		case nft.MonitorEventTypeDelTable:
			if t, _ := ev.Data.(*nft.Table); ours(t) {
				*st = *newState()
			}
		case nft.MonitorEventTypeNewChain, nft.MonitorEventTypeDelChain:
			ch, _ := ev.Data.(*nft.Chain)
			if ch == nil || !ours(ch.Table) {
				continue
			}
			if _, known := f.chains[ch.Name]; !known {
				continue
			}
			if ev.Type == nft.MonitorEventTypeNewChain {
				st.chains[ch.Name] = true
				continue
			}
			st.chains[ch.Name] = false
			for h, ref := range st.byHandle {
				if ref.chain == ch.Name {
					st.delRule(h)
				}
			}
			if ch.Name == chainForward {
				clear(st.base)
			}
		case nft.MonitorEventTypeNewRule, nft.MonitorEventTypeDelRule:
			r, _ := ev.Data.(*nft.Rule)
			if r == nil || !ours(r.Table) || r.Chain == nil {
				continue
			}
			if _, known := f.chains[r.Chain.Name]; !known {
				continue
			}
			if ev.Type == nft.MonitorEventTypeNewRule {
				st.addRule(r.Chain.Name, r)
			} else {
				st.delRule(r.Handle)
			}
		}
	}
	st.finish()
	return true
}

// pieceRef says whose piece a kernel rule handle is.
type pieceRef struct {
	owner string
	chain string
}

// addRule records kernel rule r of chain.
func (st *state) addRule(chain string, r *nft.Rule) {
	st.delRule(r.Handle) // a replaced rule keeps its handle
	p, ok := decode(chain, r)
	if !ok {
		if s, _ := udGet(r.UserData, udComment); s == baseComment && chain == chainForward {
			st.base[r.Handle] = true
		}
		return
	}
	e := st.owners[p.owner]
	if e == nil {
		e = &entry{rule: natfw.Rule{Owner: p.owner}}
		st.owners[p.owner] = e
	}
	e.pieces = append(e.pieces, p)
	st.byHandle[p.handle] = pieceRef{owner: p.owner, chain: chain}
	st.dirty[p.owner] = struct{}{}
}

// delRule forgets kernel rule handle h, if it is known.
func (st *state) delRule(h uint64) {
	delete(st.base, h)
	ref, ok := st.byHandle[h]
	if !ok {
		return
	}
	delete(st.byHandle, h)
	if e := st.owners[ref.owner]; e != nil {
		for i := range e.pieces {
			if e.pieces[i].handle == h {
				e.pieces = append(e.pieces[:i], e.pieces[i+1:]...)
				break
			}
		}
	}
	st.dirty[ref.owner] = struct{}{}
}

// finish rebuilds the rules of the owners whose pieces changed and their
// entries in the address index.
func (st *state) finish() {
	for owner := range st.dirty {
		e := st.owners[owner]
		if e == nil {
			continue
		}
		st.unindex(e)
		if len(e.pieces) == 0 {
			delete(st.owners, owner)
			continue
		}
		e.rule, e.complete = natfw.Rule{Owner: owner}, false
		e.assemble()
		if e.complete {
			e.indexed = [2]netip.Addr{e.rule.Public, e.rule.Local}
			for _, a := range e.indexed {
				st.byAddr[a] = append(st.byAddr[a], owner)
			}
		}
	}
	clear(st.dirty)
}

func (st *state) unindex(e *entry) {
	for _, a := range e.indexed {
		if !a.IsValid() {
			continue
		}
		us := st.byAddr[a]
		for i, o := range us {
			if o == e.rule.Owner {
				us = append(us[:i:i], us[i+1:]...)
				break
			}
		}
		if len(us) == 0 {
			delete(st.byAddr, a)
		} else {
			st.byAddr[a] = us
		}
	}
	e.indexed = [2]netip.Addr{}
}

// users returns the owners of complete rules that use address a.
func (st *state) users(a netip.Addr) []string { return st.byAddr[a] }
