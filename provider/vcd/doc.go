// Package vcd is the VMware Cloud Director driver: a provider.Driver
// (one vApp per VM) and, in the same package, a natfw.Driver for an NSX-T
// edge gateway. It needs API version 37.0 (VCD 10.4 or later).
//
//	p, err := vcd.New(ctx, "https://vcd.example", vcd.Credentials{Org: "acme",
//		User: "orgadmin", Password: pw}, &vcd.Options{CACertPEM: ca}) // *provider.Provider
//	fw, err := vcd.NewFirewall(ctx, "https://vcd.example", cred, "edge1",
//		&vcd.FirewallOptions{CACertPEM: ca}) // *natfw.Firewall
//
// The Provider states its one network flow (provider.FlowsDriver: HTTPS
// to the endpoint). The *provider.Provider's As reaches the *vcd.Provider driver and its
// *http.Client; the *natfw.Firewall's As reaches the *vcd.Edge driver and
// its *http.Client. Neither hands out the session token.
//
// # Client
//
// The driver speaks the documented VCD API itself over net/http, with
// the payload structures of github.com/vmware/go-vcloud-director/v2
// types/v56 (pure encoding/xml structs: the schema's element and
// attribute names). It does not run govcd's client, because of what
// v2.26.1 does at run time:
//
//   - no context.Context anywhere: calls cannot be canceled or bounded;
//   - util.LogHttpResponse is a process-wide global that defaults to
//     true, so every response body goes through the SDK's
//     password-masking regular expressions even with logging off (about
//     two thirds of the client's CPU listing 2,000 VMs: see
//     BenchmarkQueryList2000VMs in internal/fakes/vcd); turning it off
//     would change every other govcd user of the process;
//   - its default request-id builder races when goroutines share a
//     client, GetOrgByName turns a 401 into ErrorEntityNotFound,
//     WaitTaskCompletion polls every 3 seconds and reports an "aborted"
//     task as success, types.Error.Error() drops minorErrorCode
//     (BUSY_ENTITY), and NewVCDClient panics on a bad API version option
//     or GOVCD_API_VERSION.
//
// The hot paths (query service pages, task polls, audit trail pages,
// edge gateway rules) are a handful of GETs and POSTs; written directly
// they are smaller than the workarounds.
//
// # Session
//
// GET /api/versions (no login) tells whether API version 37.0 is served.
// Login is POST /cloudapi/1.0.0/sessions with Basic user@org (org
// "System": /sessions/provider), the token taken from
// X-VMWARE-VCLOUD-ACCESS-TOKEN; with Credentials.APIToken it is POST
// /oauth/tenant/{org}/token (or /oauth/provider/token),
// grant_type=refresh_token. One session is shared by every call: under
// concurrent calls one goroutine logs in and the others wait for its
// token. A 401 drops the token, logs in once more and resends the
// request (a refused request did nothing). Logout is DELETE
// /cloudapi/1.0.0/sessions/current. Every request carries
// X-VMWARE-VCLOUD-CLIENT-REQUEST-ID "managedvm-N" from an atomic
// counter. Passwords and tokens go only into the login request and the
// Authorization header: never into a log, an error or a span. An href or
// Location naming another host than the endpoint is refused
// (FailedPrecondition) before anything is sent, so the token never
// leaves for it.
//
// TLS is verified against Options.CACertPEM or Options.RootCAs (the
// system pool without either); a refused certificate is
// PermissionDenied.
//
// # Errors
//
// A non-2xx answer is an *errs.Error wrapping an *APIError (status,
// minorErrorCode, message without the "[ request-id ]" prefix, quoted
// with limit.Quote): BUSY_ENTITY (the minor code on /cloudapi, only the
// message "is busy completing an operation" on /api) is Unavailable;
// 403 ACCESS_TO_RESOURCE_IS_FORBIDDEN on an /api object (VCD's answer for
// an object that does not exist or that the user cannot see) NotFound,
// any other 403 PermissionDenied; 404 NotFound; DUPLICATE_NAME
// AlreadyExists; 400 InvalidArgument; 406 and 409 FailedPrecondition;
// 502, 503 and 504 Unavailable; another 5xx OutcomeUnknown for a change
// and Unavailable for a read. A lost answer to a change is OutcomeUnknown.
//
// # Inventory
//
// List reads the query service (GET /api/query?type=vm&format=records)
// in pages of Options.PageSize (128, VCD's default maximum): the first
// page gives the total, the others are read four at a time: 2,000 VMs are
// 16 requests. A VM's ID is "vm-UUID"
// (its href's last segment), Name its name, Zone its VDC, Power from the
// record's status (POWERED_ON, POWERED_OFF, SUSPENDED; anything else,
// such as UNRESOLVED or FAILED_CREATION, PowerUnknown), CPUs and memory,
// Guest.OSName the guest OS, Guest.IPs the primary NIC's address,
// Guest.ToolsStatus VMware Tools' status (ToolsRunning for toolsOk and
// toolsOld); Attributes: status, vApp and vAppId, network,
// storageProfile. Get is one query filtered by id. Zones are the
// organization VDCs (Datastores: their storage policies; Networks: their
// organization networks; Attributes org, networkProvider,
// allocationModel). Templates are the VMs of single-VM vApp templates in
// the visible catalogs (isVAppTemplate): ID the template VM's "vm-UUID",
// Name the vApp template's, Zone the VDC that stores it; with
// IncludeTemplates List has them too (Template set, named like the
// template). VCD lets any VDC of the organization instantiate a catalog's
// template, so Provision takes a template of any zone.
//
// # Watch
//
// The stream reads the audit trail (GET /cloudapi/1.0.0/auditTrail,
// filter timestamp=ge=, sorted by timestamp, paged) every
// Options.PollInterval when it has nothing buffered. vm/create is
// Created, vm/modify, vm/deploy and vm/undeploy Changed, vm/delete
// Deleted; other events and failed ones are skipped. Created and Changed
// carry the VM re-read by Get, with Power set as the event says for deploy
// (on) and undeploy (off), since the VM may have changed again since; a VM
// gone since is described from the event (ID and name). A cursor is
// "vcd1:MILLISECONDS:HASHES": the timestamp of the last event delivered
// and 12-hex-digit hashes of the events of that millisecond already
// delivered (audit timestamps have millisecond precision and several
// events share one); anything else is ErrCursorExpired. VCD purges the
// audit trail past its retention setting, oldest first: Watch reads the
// trail at the cursor's millisecond (one request) and a cursor none of
// whose events is left is ErrCursorExpired, since events after it may be
// gone too. A stream that went unread for longer than
// Options.AuditRetention (default 24 hours) and finds its position's
// events purged and only events newer than its last read left ends with
// ErrCursorExpired the same way; a stream read all along goes on, though
// its position's own events age out. The start-of-trail cursor
// "vcd1:0:" (an empty trail) names no event and cannot be checked.
// Cursor is the position after the newest event. Beside the trail, every
// Options.ResyncInterval (10 minutes; negative: never) the stream lists
// every VM and reports what differs from the previous list (the first is
// taken when Watch starts), carrying the stream's current cursor: changes
// the trail did not record. Events may therefore come twice; they are
// safe to apply twice.
//
// # Lifecycle
//
// Calls that start a task (202 with a Task) wait for it with GET
// /api/task/{id}, 5 ms after it started and then twice as long each time
// up to Options.TaskPoll; "error" is the task's error with VCD's minor
// code, "aborted" is FailedPrecondition (govcd calls it success), the
// context ending stops the wait. BUSY_ENTITY answers (another operation
// of the vApp runs) are retried with backoff until the context ends.
// PowerOn and PowerOff are the VM's power actions (VCD deploys on power
// on; power off keeps the VM deployed); a template is
// FailedPrecondition. Destroy goes in VCD's order, since a deployed vApp
// refuses deletion ("Stop the vApp and try again"): undeploy the vApp
// with power off, remove the VM's NAT rules, then DELETE the vApp, which
// deletes its vApp network. The NAT rules removed are those of this
// package's natfw driver (see "Edge gateway NAT": name "mvm-H", owner in
// the description) on the NSX-T edge gateways of the VM's VDC whose Local
// address is one of the VM's, each with its firewall rule, IP sets and
// port profile, written with the Provider's session as another writer of
// the gateway; rules of another shape are left alone. A host that removes
// the rule itself first (enroll's Unenroll does) leaves Destroy nothing
// to remove. A VM sharing a vApp made outside the driver is undeployed,
// its rules removed, and deleted alone.
//
// # Provisioning
//
// Provision instantiates the template into a new vApp named spec.Name in
// the VDC spec.Zone (POST /api/vdc/{id}/action/instantiateVAppTemplate)
// with: one vApp network bridged to the organization network
// spec.Network.Name (or the zone's only one; none: the NIC stays
// unconnected), the VM named spec.Name on it with a POOL address (MANUAL
// with Customization.Static: the address only, the gateway and DNS
// servers come from the organization network), the VDC's default storage
// policy, and with
// a Customization, guest customization (computer name: the host name's
// first label or the VM name; administrator password
// Customization.AdminPassword when given (AdminPasswordAuto false), else
// generated by VCD (AdminPasswordAuto); the customization script:
// MetaData, UserData and NetworkConfig as a cloud-init NoCloud seed
// written by package template's VCD script, template.NoCloud.VCDScript,
// a POSIX sh script that VCD runs in a Linux guest with
// precustomization and postcustomization and that writes the seed into
// /var/lib/cloud/seed/nocloud for cloud-init; without MetaData or
// UserData, or over template.MaxVCDScript (1500 bytes), it is
// InvalidArgument before anything is made). Neither the password nor the script is logged, and an error
// whose VCD message (an error answer, a failed task) repeats the
// password keeps its code and loses its message. The vApp network is bridged, not
// routed: the edge gateway's NAT and the enrollment path need the VM's
// address on the organization network, which a routed vApp network would
// hide behind its own router. VLAN is InvalidArgument (VCD networks offer
// no VLAN choice). The vApp is instantiated undeployed; then CPUs and
// memory are set (reconfigureVm) and, with PowerOn, the vApp is powered
// on. The request key is written in the vApp's Description
// ("managedvm-key: KEY"), so a repeated Provision, in this process or
// after a restart, finds the vApp by name and key and returns its VM; a
// vApp of that name without the key is AlreadyExists; a vApp of the key
// left FAILED_CREATION is removed and made again. On any failure,
// including the spec's timeout, the running task is cancelled and the vApp
// undeployed and deleted under a context of its own (2 minutes): nothing
// is left. There is no guest access without a network path in VCD:
// enrollment uses the network path.
//
// # Preflight
//
// Rows: vcd.endpoint (GET /api/versions answers; a warning when the
// endpoint is an IP address, not an FQDN), vcd.api (37.0 served;
// a warning when deprecated), vcd.org (the login works), vcd.role
// (Organization Administrator or System Administrator), per VDC vcd.vdc,
// vcd.nsx (NSX-T passes, NSX-V warns that VMware no longer develops it and
// the NAT driver needs NSX-T), vcd.storagePolicy and vcd.networks;
// vcd.networkPool (query type networkPool, which only a provider session
// may read: otherwise a warning saying the pool's kind and capacity were
// not checked, as on internal/fakes/vcd, which does not serve that
// query); per edge gateway vcd.edgeGateway (an uplink, allocated IPs left
// for NAT); per vApp template vcd.templates (one VM, VMware Tools
// installed).
//
// # Edge gateway NAT (natfw)
//
// NewFirewall logs in with its own session and finds the NSX-T edge
// gateway by name (an NSX-V gateway is FailedPrecondition). An owner's
// rule is, on the gateway: one REFLEXIVE NAT rule (the 1:1 static NAT:
// Public to Local both ways) named "mvm-H" (H: 12 hex digits of SHA-256
// of the owner; VCD does not require unique names, the driver makes them
// unique) whose description holds the owner and the rule's description as
// JSON; two IP sets (the sources, the local address) and one TENANT
// application port profile (the ports) named after the owner and their
// content ("mvm-H-s-C", "mvm-H-d-C", "mvm-H-p-C"); and one firewall rule
// "mvm-H" allowing the profile's ports from the sources' IP set to the
// local address's. Get and List rebuild rules from these objects (rules
// not of this shape are ignored). EnsureNAT reads the gateway's NAT
// rules, firewall rules, IP sets and profiles (4 requests), does nothing
// when the rule is in place, refuses an address used by another NAT rule
// (AlreadyExists), makes the missing IP sets and profile, creates or
// updates the NAT rule (a create answers 202 with a task and no id: the
// name finds it), then puts the firewall rule in the user-defined list,
// and deletes the owner's IP sets and profiles no rule uses. RemoveNAT
// removes the firewall rule, the NAT rule, then the IP sets and profile.
// The gateway is single-writer: the driver's writes are serialized by
// one lock, and a BUSY_ENTITY answer (another client's write) is retried
// with jittered backoff for at most FirewallOptions.BusyTimeout.
//
// Firewall rules across processes: VCD's API 37.0 creates and changes an
// NSX-T edge gateway's firewall rules only with one PUT of the whole
// user-defined list (govcd v2.26.1: "The API does not have POST endpoint
// and always uses PUT endpoint for creating and updating"; a per-rule
// create, /cloudapi/2.0.0/edgeGateways/{id}/firewall/rules, needs API
// 39.1), without an ETag or a list version it checks, and applies the
// list when the write's task ends; a writer in another process whose list
// was read before that drops the rule. The driver narrows and repairs
// that: it reads the list right before each PUT and again after a
// BUSY_ENTITY answer (a 400 on a list naming an IP set another writer
// just removed is read again too); once the task ended it reads the list
// back, waits for the writes that could have started from an older read
// to end (the task's duration plus two reads, at least 10 ms) and reads
// it again, writing the rule again while it is missing (for at most
// BusyTimeout, then Unavailable). A removal is the rule's own DELETE
// (.../firewall/rules/{id}, since API 34.0), which drops no other rule,
// checked the same way (a stale PUT can bring it back). Two processes
// writing one gateway at once keep every owner's rule (tested with two
// clients and 2 ms per request); a write delayed longer than the settling
// time can still drop a rule, which the next EnsureNAT of its owner
// repairs.
//
// Public addresses: the driver NATs the Public address it is given and
// does not allocate. The operator configures an IPAM pool (package ipam,
// memipam or pgipam) with the edge gateway's allocated IPs of the
// provider network (preflight's vcd.edgeGateway row counts them; VCD
// itself refuses a NAT rule on an address not allocated to the gateway).
// An ipam driver over the gateway was not chosen: the gateway records an
// address only once its NAT rule exists, so an address allocated but not
// yet NAT'd would be invisible to another allocator, and IPAM's durable
// owner-keyed allocations would have nowhere to live.
//
// # Benchmarks
//
// BenchmarkList2000VMs (1 ms added per request): List of 2,000 VMs is 16
// requests and 90 ms (median of 6; 114 ms reading the pages one after
// another, -21%: the fake and the XML decoding share two cores); reading
// each VM by id is 2,000 requests and 5.9 s (65x). BenchmarkEnsureNAT16
// (16 owners changing their rules at once on one gateway, 1 ms per
// request, 2 ms per gateway write): about 19.3 requests per EnsureNAT,
// p50 0.59 s and p99 1.17 s (median of 6, -benchtime=3x; the writes queue
// behind one another, as the gateway requires). Reading the firewall list
// before each PUT and again after the settling time costs, against the
// whole-list PUT from the first read with one read-back: +11% requests
// (17.4), +34% p50 (0.44 s), p99 0.88 s (not significant, p=0.065),
// benchstat of -count=6 back to back.
//
// # Not done
//
// Metadata (the fake does not serve it: the key lives in the vApp
// Description), routed vApp networks, NSX-V gateways, IP spaces, VDC
// groups, a customization script for Windows guests (the script is
// Linux's: cloudbase-init data would need a batch script), and a check of
// Public against the gateway's allocated IPs.
package vcd
