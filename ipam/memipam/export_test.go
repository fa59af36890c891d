package memipam

import "hash/maphash"

// Probes returns how many steps the pool's allocator has taken: one per
// Allocate that reached it, plus one per excluded span jumped over. The
// tests use it to show that allocation does not scan.
func Probes(m *Driver, pool string) uint64 {
	p := (*m.pools.Load())[pool]
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.probes
}

// NewColliding returns a driver whose owner hash maps every owner to one
// of a handful of values, so that the collision path of the owner index is
// exercised.
func NewColliding(opts *Options) *Driver {
	m := NewDriver(opts)
	m.hash = func(_ maphash.Seed, s string) uint64 { return uint64(len(s) % 3) }
	return m
}

// SetLoadedHook makes f run in every call that finds a pool in the map,
// just before it locks the pool.
func SetLoadedHook(m *Driver, f func()) { m.loaded = f }
