package memipam

import "hash/maphash"

// Probes returns how many steps the pool's allocator has taken: one per
// Allocate that reached it, plus one per excluded span jumped over. The
// tests use it to show that allocation does not scan.
func Probes(m *IPAM, pool string) uint64 {
	m.mu.RLock()
	p := m.pools[pool]
	m.mu.RUnlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.probes
}

// NewColliding returns an IPAM whose owner hash maps every owner to one of
// a handful of values, so that the collision path of the owner index is
// exercised.
func NewColliding(opts *Options) *IPAM {
	m := New(opts)
	m.hash = func(_ maphash.Seed, s string) uint64 { return uint64(len(s) % 3) }
	return m
}
