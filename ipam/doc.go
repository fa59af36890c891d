// Package ipam is the contract for allocating public IPv4 addresses to the
// VMs managedvm enrolls, and for recording the NAT relation between each
// public address and the VM's local one.
//
// Callers hold an [*IPAM], the portable type; an IPAM implementation is a
// [Driver] behind it. A driver package's constructor returns the portable
// type (memipam.New, pgipam.Open), so host code is one line:
//
//	addrs := memipam.New(nil) // *ipam.IPAM
//	addrs, err := pgipam.Open(ctx, pool, &pgipam.Options{MeterProvider: mp})
//
// [New] puts any Driver behind the portable type (ipam.New(d, opts)).
//
// # Pools
//
// A [Pool] is an IPv4 CIDR (a /8 to a /32) minus the addresses that are never
// handed out: the network and broadcast addresses (for prefixes shorter than
// /31, where they exist), the gateway, and any [Range] listed in Reserved.
// [Pool.Validate] checks a pool, [Pool.Excluded] tells whether one address is
// never allocated and [Pool.Size] counts the allocatable addresses without
// walking the prefix (overlapping and out-of-prefix reserved ranges count
// once, or not at all). A /31 has two allocatable addresses and a /32 one,
// minus the gateway if it is one of them.
//
// Creating a pool that already exists with the same prefix, gateway and
// reserved list is a no-op; a different pool under an existing name is
// AlreadyExists. A pool can be deleted only while nothing is allocated
// from it.
//
// # Owner-keyed allocation
//
// Every allocation is keyed by its owner (the VM's key, for example
// "vsphere-prod/<instanceUuid>"): one owner holds at most one address per
// pool, and no two owners ever hold the same address. This makes the calls a
// saga repeats safe to repeat:
//
//   - [IPAM.Allocate] returns the owner's existing allocation when there is
//     one, so a retried enrollment step gets the same address back;
//   - [IPAM.Release] of an address the owner does not hold succeeds, so a
//     repeated compensation is harmless.
//
// An address that was released can be allocated again, to any owner.
//
// # The NAT relation
//
// An [Allocation] records the owner's local address (LocalIP: the VM's IP
// inside the customer network) beside the public Address; the firewall's
// 1:1 NAT translates one to the other. Allocate records req.LocalIP when it
// is set (and updates it for an owner that already holds an address);
// [IPAM.SetLocalIP] records a new local address when the VM's IP changes,
// and clears it when given the zero netip.Addr. Created and Updated tell
// when the address was allocated and when the allocation last changed.
//
// # Limits
//
// The portable type checks every argument before a driver sees it, so every
// driver accepts and refuses exactly the same values:
//
//	pool name (Pool.Name, Request.Pool,  1 to 128 bytes of valid UTF-8,
//	  the pool argument of every call)   no control character (limit.Name)
//	owner (Request.Owner, the owner      1 to 255 bytes of valid UTF-8,
//	  argument of every call)            no control character (limit.Key)
//	Pool.Prefix                          IPv4, /8 to /32, no host bits set
//	Pool.Gateway                         zero, or inside the prefix
//	Pool.Reserved                        at most MaxReserved (1024) ranges,
//	                                     each IPv4 with From <= To
//	Request.LocalIP, SetLocalIP's local  any address (IPv4, IPv6, IPv4-mapped
//	                                     IPv6; zero: none) without an IPv6 zone
//	LookupAddress's addr                 not the zero address
//
// Names and owners are compared and ordered as bytes: no case folding, no
// Unicode normalization ("zone-ä" in NFC and NFD are two pools); Pools
// lists pools in bytewise order.
//
// A value outside its limits is InvalidArgument and changes nothing. Error
// messages quote such values escaped and cut to 64 bytes (limit.Quote), so
// no message grows with its input or carries a control character.
//
// # Errors
//
// Every error carries an errs code (see [errs.CodeOf]) and names the
// operation once ("ipam.Allocate: ..."):
//
//   - InvalidArgument: a value outside the limits above.
//   - NotFound: no such pool; no allocation for the owner (Lookup,
//     SetLocalIP) or the address (LookupAddress).
//   - AlreadyExists: CreatePool with a name taken by a different pool.
//   - FailedPrecondition: DeletePool while addresses are allocated; any
//     call after Close.
//   - ResourceExhausted: Allocate from a full pool; the message names the
//     pool. Releasing any address makes room again.
//   - Canceled, DeadlineExceeded: the context ended before the call ran;
//     nothing changed.
//   - Unavailable, OutcomeUnknown, PermissionDenied, Internal: from a
//     driver's store (see each driver's doc).
//
// A rejected call changes nothing. The checks run in this order: Close,
// the context, the arguments; then the driver.
//
// # Telemetry
//
// [Options] takes a *slog.Logger, an OpenTelemetry TracerProvider and a
// MeterProvider (driver constructors take the same three fields and pass
// them on). Without them nothing is traced or measured and a successful
// call makes no allocation in the portable layer. With them, every call
// records:
//
//	span "ipam.<Method>"        attribute driver (e.g. "memipam"); on failure
//	                            status Error and error.type = the errs code
//	managedvm.calls             counter, attributes op, code ("OK"), driver
//	managedvm.errors            counter of failed calls, same attributes
//	managedvm.call.duration     histogram, seconds, same attributes
//	log line at Debug           keys op, code, err, duration
//
// Calls refused before the driver (invalid, canceled, after Close) are
// recorded too, with their code. With a MeterProvider, two observable
// gauges report every pool at each collection, read from the driver's Pools
// at that moment (bounded by Options.GaugeTimeout; a failed or late read
// reports nothing for that collection, and is logged at Debug):
//
//	managedvm.ipam.pool.used    addresses allocated, attributes pool, driver
//	managedvm.ipam.pool.size    addresses allocatable, attributes pool, driver
//
// Close unregisters the gauges.
//
// # Concurrency
//
// An IPAM is safe for concurrent use by many goroutines (and, for shared
// stores such as a database, by many processes): concurrent Allocate calls
// for different owners never return the same address, and concurrent
// Allocate calls for one owner all return the same allocation. Every value
// returned (pools, their reserved ranges, allocation lists) is the caller's
// own copy; no value passed in is retained by the IPAM.
//
// # Writing a driver
//
// A driver implements [Driver]: the calls of IPAM, with the same meaning,
// minus what the portable type does once for every driver. A driver may
// rely on its arguments being within the limits above (and pools having
// passed Pool.Validate), on the context being live when the call starts,
// and on never being called after Close. It may keep what it is given
// (CreatePool's Reserved is a copy) and return its own slices (the portable
// type copies them). It must:
//
//   - be safe for concurrent use, and keep the guarantees of Concurrency;
//   - return errors with an errs code and an empty Op (errs.New(code, "",
//     msg)): the portable type names the operation; quote any pool name,
//     owner or other caller value with limit.Quote;
//   - change nothing when it fails, or say OutcomeUnknown when it cannot
//     know;
//   - list Pools in bytewise name order and Allocations in address order.
//
// It must not check the context before starting, validate, count or log
// each call: the portable type does. It may log what only it knows (a pool
// created, an address handed out, a pool exhausted, a retry). A driver that
// holds resources implements io.Closer (IPAM.Close calls it once). A
// driver may implement As(any) bool to reach its client; [IPAM.As] also
// reaches the driver value itself. The ipamtest package is the conformance
// suite: a driver's tests run it with a Harness that makes the driver.
//
// # Implementations
//
// Package memipam is a complete in-memory driver, for embedding and for
// host application tests; package pgipam keeps the pools in PostgreSQL for
// several orchestrator processes. Package ipamtest is the conformance suite
// every driver passes.
package ipam
