package memipam

import "time"

// ownerIndex maps owners to the slots they hold. It is an open-addressing
// hash table with linear probing, sized to at most half full, whose entries
// are single words: (slot+1)<<32 | tag, where tag is 32 bits of the owner's
// hash and 0 marks an empty entry. An entry's home position is tag&mask, so
// the table can be resized and entries moved without hashing any owner
// again. Two owners may share a tag; the owner string, kept in the slot,
// tells them apart.
//
// Compared with a Go map keyed by owner (or by a 64-bit hash), a lookup of
// an absent owner touches one cache line of a flat array and no owner
// string, which is what allocation to a new owner does; on a /16 pool the
// map's directory, groups and control words were most of the cost.
type ownerIndex struct {
	ents []uint64
	mask uint32
	n    int
}

// minIndex is the smallest table; maxIndexHint caps the number of owners a
// new table is laid out for (a larger pool grows its table as it fills).
const (
	minIndex     = 16
	maxIndexHint = 1 << 16
)

func newOwnerIndex(hint int) ownerIndex {
	c := minIndex
	for c < 2*min(hint, maxIndexHint) {
		c <<= 1
	}
	return ownerIndex{ents: make([]uint64, c), mask: uint32(c - 1)}
}

// tagOf folds a 64-bit hash into the 32-bit tag the index stores.
func tagOf(h uint64) uint32 { return uint32(h ^ h>>32) }

func entry(tag, slot uint32) uint64 { return (uint64(slot)+1)<<32 | uint64(tag) }

// find returns the slot of the owner with this tag for which held reports
// true.
func (x *ownerIndex) find(tag uint32, held func(slot uint32) bool) (uint32, bool) {
	for pos := tag & x.mask; ; pos = (pos + 1) & x.mask {
		e := x.ents[pos]
		if e == 0 {
			return 0, false
		}
		if uint32(e) == tag {
			if s := uint32(e>>32) - 1; held(s) {
				return s, true
			}
		}
	}
}

// insert records that an owner with this tag holds slot. The owner must
// not be in the index.
func (x *ownerIndex) insert(tag, slot uint32) {
	if 2*(x.n+1) > len(x.ents) {
		x.grow()
	}
	x.put(entry(tag, slot))
	x.n++
}

func (x *ownerIndex) put(e uint64) {
	pos := uint32(e) & x.mask
	for x.ents[pos] != 0 {
		pos = (pos + 1) & x.mask
	}
	x.ents[pos] = e
}

func (x *ownerIndex) grow() {
	old := x.ents
	x.ents = make([]uint64, 2*len(old))
	x.mask = uint32(len(x.ents) - 1)
	for _, e := range old {
		if e != 0 {
			x.put(e)
		}
	}
}

// remove forgets that an owner with this tag holds slot. It closes the gap
// by shifting later entries of the probe run back (no tombstones), so
// lookups never slow down with churn.
func (x *ownerIndex) remove(tag, slot uint32) {
	want := entry(tag, slot)
	j := tag & x.mask
	for x.ents[j] != want {
		if x.ents[j] == 0 {
			return // not there
		}
		j = (j + 1) & x.mask
	}
	for i := (j + 1) & x.mask; ; i = (i + 1) & x.mask {
		e := x.ents[i]
		if e == 0 {
			break
		}
		// The entry at i may move back to j only if j lies on its probe
		// path, from its home to i.
		if home := uint32(e) & x.mask; (i-home)&x.mask < (i-j)&x.mask {
			continue
		}
		x.ents[j] = e
		j = i
	}
	x.ents[j] = 0
	x.n--
}

// each calls f with every held slot, in no particular order.
func (x *ownerIndex) each(f func(slot uint32)) {
	for _, e := range x.ents {
		if e != 0 {
			f(uint32(e>>32) - 1)
		}
	}
}

// clock reads the wall clock cheaply. time.Now reads two clocks (wall and
// monotonic), which is a quarter of an allocation's cost on some virtual
// machines; clock reads only the monotonic one and adds the elapsed time to
// a wall-clock reading taken at most rebaseEvery ago, so a step of the
// system clock (NTP, an operator) shows within that interval. A clock is
// guarded by its pool's mutex.
type clock struct {
	base   time.Time // a time.Now reading, with its monotonic part
	baseNs int64     // base as Unix nanoseconds
}

const rebaseEvery = time.Second

// now returns the time as Unix seconds and nanoseconds.
func (c *clock) now() (int64, int32) {
	if !c.base.IsZero() {
		if d := time.Since(c.base); d >= 0 && d < rebaseEvery {
			ns := c.baseNs + int64(d)
			return ns / 1e9, int32(ns % 1e9)
		}
	}
	c.base = time.Now()
	c.baseNs = c.base.UnixNano()
	return c.base.Unix(), int32(c.base.Nanosecond())
}
