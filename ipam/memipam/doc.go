// Package memipam is an in-memory IPAM driver: a complete implementation
// for programs that keep their address pools in one process, and for host
// application tests. It passes the ipamtest conformance suite.
//
//	m := memipam.New(nil) // *ipam.IPAM
//	err := m.CreatePool(ctx, ipam.Pool{Name: "zone-a", Prefix: netip.MustParsePrefix("203.0.113.0/24")})
//	a, err := m.Allocate(ctx, ipam.Request{Pool: "zone-a", Owner: "vsphere-prod/4211-..."})
//
// [New] returns the portable *ipam.IPAM over a [Driver]; [NewDriver]
// returns the bare driver, for a host that wraps it (fault injection, a
// call log) before handing it to ipam.New. The checks, limits, error
// wrapping, copies and telemetry of package ipam apply; this package is
// only the allocator.
//
// Nothing is persisted: the allocations live as long as the IPAM value.
// A host that runs several orchestrator processes needs a shared store
// instead (a database-backed IPAM).
//
// # Allocation order and cost
//
// Each pool hands out its never-used addresses first, in address order,
// and then the released ones, oldest release first, so a released address
// rests as long as possible before another owner gets it (stale ARP, DNS or
// firewall state for the previous owner has the most time to expire).
//
// Allocate and Release cost O(1) amortized whatever the pool's size: a pool
// keeps a cursor over its never-used addresses that jumps over excluded
// ranges whole, a queue of released addresses, a table of the addresses
// the cursor has reached (in address order), and an index from owner to
// address. Nothing scans the allocated addresses. LookupAddress costs
// O(log r) for r reserved ranges; Allocations sorts, so it costs
// O(n log n) for n allocations.
//
// Memory: a pool's owner index (a flat hash table of 8-byte entries, at
// most half full) is laid out for the whole pool when it is created, up to
// 64Ki owners (4 KiB for a /24, 1 MiB for a /16), and grows as a larger
// pool fills; each address the pool has ever handed out then costs about
// 72 bytes, plus its owner's string.
//
// # Timestamps
//
// Created and Updated come from Options.Now when it is set. By default
// they come from the system clock, read cheaply: each pool adds the
// monotonic time elapsed to a wall-clock reading it renews every second,
// so a step of the system clock shows in the timestamps within a second. They
// are kept to the nanosecond, and returned in the local time zone without
// a monotonic clock reading: compare them with time.Time.Equal.
//
// # Options and escape hatches
//
// [Options] has Now (the clock of the timestamps), Logger, and the
// TracerProvider and MeterProvider that New passes to ipam.Options. The
// IPAM's As reaches the driver: a **memipam.Driver target.
//
// # Errors
//
// The errors and their codes are those documented by package ipam:
// NotFound, AlreadyExists, FailedPrecondition and ResourceExhausted from
// the driver, InvalidArgument, Canceled, DeadlineExceeded and
// FailedPrecondition after Close from the portable type. Calls never fail
// otherwise. SetLocalIP with the zero address clears the local address.
//
// # Concurrency
//
// The driver is safe for concurrent use. Finding a pool takes no lock (the
// map of pools is copied on CreatePool and DeletePool); calls on different
// pools run in parallel, and calls on one pool are serialized by that
// pool's lock. A pool's definition is kept as given and never changed; the
// portable type copies what it hands out.
//
// # Logging
//
// With Options.Logger set, pool creation and deletion are logged at Info,
// allocations and releases at Debug, and exhaustion at Warn, with the pool,
// owner and address as attributes; the portable type adds its Debug line
// per call (op, code, err, duration).
package memipam
