// Package ipam is the contract for allocating public IPv4 addresses to the
// VMs managedvm enrolls, and for recording the NAT relation between each
// public address and the VM's local one.
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
// # Errors
//
// Every error carries an errs code (see [errs.CodeOf]):
//
//   - InvalidArgument: a malformed pool ([Pool.Validate]) or request
//     ([Request.Validate]); an empty pool name or owner on any call; the
//     zero address given to LookupAddress.
//   - NotFound: no such pool; no allocation for the owner (Lookup,
//     SetLocalIP) or the address (LookupAddress).
//   - AlreadyExists: CreatePool with a name taken by a different pool.
//   - FailedPrecondition: DeletePool while addresses are allocated.
//   - ResourceExhausted: Allocate from a full pool; the message names the
//     pool. Releasing any address makes room again.
//   - Canceled, DeadlineExceeded: the context ended before the call ran;
//     nothing changed.
//
// A rejected call changes nothing.
//
// # Concurrency
//
// Implementations are safe for concurrent use by many goroutines (and, for
// shared stores such as a database, by many processes): concurrent Allocate
// calls for different owners never return the same address, and concurrent
// Allocate calls for one owner all return the same allocation.
//
// # Implementations
//
// Package memipam is a complete in-memory IPAM, for embedding and for host
// application tests. Package ipamtest is the conformance suite every
// implementation passes.
package ipam
