// Package nftables is a natfw driver for Linux routers: it programs 1:1
// NAT rules into one nftables table through netlink
// (github.com/google/nftables), optionally inside a chosen network
// namespace. Public addresses are managed through rtnetlink
// (github.com/jsimonetti/rtnetlink/v2) and connections ended through
// ctnetlink (github.com/ti-mo/conntrack). All three run on
// github.com/mdlayher/netlink, which opens each socket inside the
// namespace on a locked OS thread of its own: no goroutine of the caller
// changes namespace.
//
// Linux only: every file but this one is built for GOOS=linux, so on other
// systems the package holds only this documentation and a host that
// imports it must do so from Linux-only code (a file with a linux build
// constraint).
//
// New returns the portable *natfw.Firewall over a [Driver]; NewDriver
// returns the bare Driver (to wrap before natfw.New). The portable type
// validates, copies and instruments every call; the Driver speaks netlink.
// Options.Logger, TracerProvider and MeterProvider go to natfw.New; the
// Logger also receives the driver's own Debug lines about kernel changes
// (rule created, replaced or removed; connections forgotten).
//
// # As
//
// The Firewall's As reaches the *Driver, which adds DeleteTable (remove
// the whole table) and Options:
//
//	var d *nftables.Driver
//	if fw.As(&d) {
//		err = d.DeleteTable(ctx)
//	}
//
// # Kernel layout
//
// The driver owns one table of family ip (Options.Table, "managedvm" by
// default) and never touches anything outside it. The table has three base
// chains, created by the first EnsureNAT:
//
//   - prerouting (nat, dstnat): ip daddr PUBLIC dnat to LOCAL
//   - postrouting (nat, srcnat): ip saddr LOCAL snat to PUBLIC, so the
//     VM's outbound traffic leaves with its public address
//   - forward (filter, policy accept): first "ct state established,related
//     accept"; then per rule one accept for each (source prefix, port):
//     ip daddr LOCAL ip saddr SOURCE tcp dport PORT accept, and a final
//     ip daddr LOCAL drop: everything else to the VM from outside is
//     dropped.
//
// With Options.WANInterface set, the rules match only traffic entering
// (iifname) or leaving (oifname) through that interface. With
// Options.ManagePublicAddress, EnsureNAT also adds the public address as
// a /32 to that interface (so the router answers ARP for it) and
// RemoveNAT removes it.
//
// Connections live on in conntrack after their rule changes, so RemoveNAT,
// and an EnsureNAT that moves a rule to another public or local address,
// also delete the conntrack entries translated through the old public
// address (through ctnetlink): an open session ends with its rule.
// Options.KeepConnections turns that off. Narrowing a rule's ports or
// sources leaves established connections alone; new connections follow
// the new rule at once. Finding the entries dumps the namespace's
// conntrack table (IPv4 entries), which costs in proportion to its size;
// the dump is skipped when ctnetlink reports that the namespace tracks no
// connection at all.
//
// # The kernel is the source of truth
//
// Every kernel rule carries its owner in its userdata (shown by
// `nft list ruleset` as comment "mvm:OWNER"); the DNAT rule also carries
// the description. Get, List and EnsureNAT's conflict check rebuild the
// rules from the kernel; there is no side file, so a new Firewall over the
// same table and namespace (after a restart) sees the same rules.
//
// Before each read the driver asks the kernel for the ruleset generation
// (NFT_MSG_GETGEN), which every committed change moves on, whoever makes
// it. The driver reads the whole table once and then follows it: it
// listens to the kernel's nftables notifications in its namespace (the
// NFNLGRP_NFTABLES group, as `nft monitor` does), which report every
// committed batch, its own and anyone else's, as the rules added and
// deleted followed by the batch's new generation, and applies them to
// what it read. While the generation it holds is the kernel's, a read
// costs one netlink round trip whatever the size of the table. When it
// cannot follow (the notification socket overran, a generation was
// missed, a notification it cannot decode, notifications unavailable), it
// reads the whole table again; a read during which the generation moved
// is done again, so a read never returns half of another process's
// change. A debug line ("nftables table read from the kernel") marks each
// full read. An owner whose
// kernel rules are incomplete (someone deleted one by hand) is not listed;
// EnsureNAT and RemoveNAT of that owner replace or remove what is left.
//
// Each EnsureNAT and RemoveNAT is one netlink batch, which the kernel
// applies whole or not at all: the owner's old rules are deleted and the
// new ones added in the same transaction, so packets never see a
// half-written rule.
//
// # Cost
//
// A change looks at the state followed from the notifications (an index
// by address makes the conflict check independent of the table size) and
// commits one batch. What still grows with the table is the kernel's
// commit: it rebuilds the rule blob of every chain the batch touches, and
// each owner has rules in all three chains. Measured on 2 shared cores
// (bench_test.go, BenchmarkScale): a new owner's EnsureNAT about 1 ms with
// 1,000 rules, 6 ms with 5,000 and 26 ms with 20,000, almost all of it in
// the kernel's handling of the batch (before the notifications it was
// 43 ms at 1,000 rules, mostly re-reading the table); a RemoveNAT about
// 12 ms up to 5,000 rules (a batch that deletes rules waits for the
// kernel's RCU grace period) and 31 ms at 20,000; ending the rule's
// connections adds a conntrack dump of 10-20 ms when the namespace tracks
// any. An EnsureNAT of a rule already in place costs about 20 us. A List
// from the kernel (a new Firewall) costs 35-40 ms with 1,000 rules,
// 0.33 s with 5,000 and 2.7 s with 20,000: the kernel restarts its dump
// of a chain for every netlink message, so it grows faster than the
// table. A Firewall that stays open pays it once.
//
// # Limits
//
// The kernel keeps at most 256 bytes of userdata per rule, which is why
// natfw's portable limits are MaxOwner = 120 and MaxDescription = 120
// bytes (a build-time check in this package keeps them in step). A rule
// takes 3 + ports x sources kernel rules, at most 3 + 8 x 8 under natfw's
// MaxPorts and MaxSources: larger batches overflow the netlink socket
// buffers (the acknowledgements come back ENOBUFS).
//
// # Errors
//
// As the natfw contract says: InvalidArgument (a malformed rule, or one
// beyond the limits above), AlreadyExists (an address used by another
// owner), NotFound (Get), Canceled / DeadlineExceeded (a context already
// done, or one that ends while the change waits for the writer lock or
// before its batch is committed: nothing changes). Besides:
//
//   - PermissionDenied: the process may not program nftables (not root,
//     no CAP_NET_ADMIN).
//   - Unimplemented: the kernel lacks nftables or its NAT support.
//   - Unavailable: netlink could not be used or the kernel refused the
//     batch because the table changed concurrently; nothing changed.
//   - OutcomeUnknown: the kernel's answer to a batch was lost, or the rule
//     is in place (or gone) but the public address could not be added or
//     removed, or its connections could not be ended (including because
//     the context ended during those steps: errors.Is(err,
//     context.Canceled) or context.DeadlineExceeded then holds). Call EnsureNAT or RemoveNAT again;
//     a RemoveNAT retried after its rule is gone does not look for the
//     rule's connections again.
//   - FailedPrecondition: the Firewall (or Driver) is closed.
//
// # Context
//
// Every call checks its context before it changes anything. A change
// waits for the writer lock (below) only as long as its context lasts,
// and returns the context's Canceled or DeadlineExceeded when it ends.
// The rtnetlink and ctnetlink steps use the context too: its deadline is
// the rtnetlink socket's read deadline, and its end closes the socket,
// which unblocks a read in progress (ti-mo/conntrack v0.6.0 does not
// expose its socket's deadline, so there a deadline works through the
// same close). google/nftables takes no context: a batch, once started,
// runs to its answer; the ruleset generation is read with a 5 s read
// deadline.
//
// # Concurrency
//
// A Firewall is safe for concurrent use, and so are several Firewalls, in
// one process or many, on the same table: every change holds an flock(2)
// on a lock file (Options.LockDir, /run/lock by default, named after the
// namespace's inode and the table) from its read of the table to its
// commit, so of two writers that want the same address exactly one gets
// it. The lock file holds no state and is left in place. Writers on other
// hosts cannot share the lock: program a router from one host.
//
// Within a Driver, changes take turns on a one-slot channel; across
// Drivers and processes, a waiting change retries the flock (LOCK_NB)
// after 250 us, doubling up to 10 ms, so it may start up to 10 ms after
// the holder is done, and it never blocks in the kernel where a context
// could not reach it. Reads (Get, List) do not wait for a change that is
// itself waiting for the lock.
package nftables
