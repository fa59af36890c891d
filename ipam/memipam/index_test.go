package memipam

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestOwnerIndexAgainstMap runs random inserts and removes on the index and
// on a map, with tags drawn from a small set (so runs, collisions and
// wrap-around at the table's end are common) and checks after every step
// that both hold the same slots and that every slot is found.
func TestOwnerIndexAgainstMap(t *testing.T) {
	for _, tags := range []uint32{1, 3, 17, 1 << 20} {
		rng := rand.New(rand.NewPCG(uint64(tags), 7))
		x := newOwnerIndex(0)
		model := map[uint32]uint32{} // slot -> tag
		next := uint32(0)
		for step := range 4000 {
			if len(model) == 0 || rng.IntN(3) > 0 && len(model) < 300 {
				tag := rng.Uint32N(tags) * 0x9e3779b1 // spread over the bits, wrap near the end too
				if tags > 1 && rng.IntN(4) == 0 {
					tag = uint32(len(x.ents) - 1) // home at the last entry
				}
				x.insert(tag, next)
				model[next] = tag
				next++
			} else {
				for s, tag := range model { // a random one
					x.remove(tag, s)
					delete(model, s)
					break
				}
			}
			if x.n != len(model) {
				t.Fatalf("tags=%d step %d: index holds %d, model %d", tags, step, x.n, len(model))
			}
			if 2*x.n > len(x.ents) {
				t.Fatalf("tags=%d step %d: %d entries in a table of %d", tags, step, x.n, len(x.ents))
			}
			for s, tag := range model {
				if got, ok := x.find(tag, func(i uint32) bool { return i == s }); !ok || got != s {
					t.Fatalf("tags=%d step %d: slot %d (tag %#x) not found", tags, step, s, tag)
				}
			}
			seen := 0
			x.each(func(s uint32) {
				if _, ok := model[s]; !ok {
					t.Fatalf("tags=%d step %d: index holds slot %d, removed", tags, step, s)
				}
				seen++
			})
			if seen != len(model) {
				t.Fatalf("tags=%d step %d: each gave %d slots, want %d", tags, step, seen, len(model))
			}
		}
	}
}

// TestClock: the clock agrees with time.Now, follows a step of the wall
// clock within rebaseEvery, and never reads the wall clock in between.
func TestClock(t *testing.T) {
	var c clock
	within := func(what string, sec int64, ns int32, lo, hi time.Time) {
		t.Helper()
		got := time.Unix(sec, int64(ns))
		if got.Before(lo.Add(-time.Millisecond)) || got.After(hi.Add(time.Millisecond)) {
			t.Errorf("%s: %v, want between %v and %v", what, got, lo, hi)
		}
	}
	lo := time.Now()
	s, n := c.now()
	within("first reading", s, n, lo, time.Now())
	lo = time.Now()
	s, n = c.now()
	within("second reading", s, n, lo, time.Now())

	// The wall clock as of the last reading was an hour behind (as if it
	// stepped forward since): readings stay on the old base until
	// rebaseEvery has passed, then follow the system clock.
	c.baseNs -= int64(time.Hour)
	lo = time.Now()
	s, n = c.now()
	within("before the rebase", s, n, lo.Add(-time.Hour), time.Now().Add(-time.Hour))
	c.base = c.base.Add(-rebaseEvery) // the base is now a second old
	lo = time.Now()
	s, n = c.now()
	within("after the rebase", s, n, lo, time.Now())
}
