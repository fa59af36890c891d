// Package ovirt is the oVirt / KVM driver: a provider.Driver for an oVirt
// engine's REST API (v4, XML), built on the XML readers and writers of
// github.com/ovirt/go-ovirt. New returns the portable *provider.Provider
// in front of it, which hosts hold:
//
//	ca, _ := os.ReadFile("engine-ca.pem") // see "Trusting the engine"
//	p, err := ovirt.New(ctx, "https://engine.example/ovirt-engine/api",
//		"svc-managedvm@internal", guest.NewSecret(pw), &ovirt.Options{
//			CACertPEM: ca,
//			Zones: []ovirt.ZoneConfig{{Name: "az1", DataCenter: "DC1", Cluster: "C1", StorageDomain: "vmstore"}},
//		})
//	defer p.Close()
//
// Options.Logger, TracerProvider, MeterProvider and ProvisionTimeout go to
// the portable value (provider.Options), which validates every argument,
// bounds Provision and records the calls; the driver holds protocol logic
// only, and its errors have no Op of their own.
//
// # Trusting the engine
//
// TLS verification is on. The engine's certificates are signed by its own
// CA, which the engine serves at
//
//	https://ENGINE/ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA
//
// Fetch it once (curl -o engine-ca.pem '<that URL>'), compare its
// fingerprint (openssl x509 -noout -fingerprint -sha256 -in engine-ca.pem)
// with the one on the engine host (/etc/pki/ovirt-engine/ca.pem), and pass
// it as Options.CACertPEM (or a pool as Options.RootCAs). Without either
// the system pool verifies; Options.Insecure turns verification off and
// must be asked for. A certificate the client does not trust is
// PermissionDenied (as for the other TLS drivers: retrying cannot help
// until the CA or the configuration changes); no login is sent.
//
// # Connection: why not go-ovirt's Connection
//
// go-ovirt's Connection takes no context.Context, builds its transport
// with DisableKeepAlives (a TCP and TLS handshake for every call), caches
// the SSO token in an unguarded field, never retries a 401, and returns
// the engine's HTML 401 page for an expired token as a
// *ResponseParseError rather than an *AuthError; its Close sends an empty
// token to sso-logout and so revokes nothing. This driver therefore uses
// go-ovirt only for its exported XML readers and writers (XMLVmReadMany,
// XMLEventReadMany, XMLVmWriteOne, ...) and sends the requests itself on
// an http.Client with keep-alives (Options.MaxConns connections, default
// 16), each request bound to the caller's context. Measured on the fake
// engine (BenchmarkGet, -count 6, benchstat): one Get takes 220 µs on the
// driver's client and 1.9 ms on go-ovirt's Connection, which opens one
// new TLS connection per call.
//
// Login is POST /ovirt-engine/sso/oauth/token (grant_type=password, scope
// ovirt-app-api, user@profile); the token is shared by every call of a
// Provider (64 concurrent calls on a fresh Provider log in once: the
// first logs in, the others wait for its token). A 401 (unknown, revoked
// or expired token, or an engine restart) drops the token, one caller
// logs in again, and the refused request is sent once more: the engine
// did nothing with it. Close stops the Watch streams and posts the token
// to /ovirt-engine/services/sso-logout.
//
// go-ovirt's ConnectionBuilder.LogFunc dumps whole requests and answers,
// the bearer token and the VM initialization's root_password included.
// This driver never sets it; a host that builds its own go-ovirt
// Connection must not either. The password is a guest.Secret and goes
// only into the login form; neither it nor the token appears in logs,
// errors or events (TestNoSecretsInLogsOrErrors).
//
// # Errors
//
// A 404 is NotFound, 403 PermissionDenied, 400 InvalidArgument. The
// engine's 409 refusals "VM is locked" (also "Template is locked") and
// "Related operation is currently in progress" are Unavailable: the
// engine did nothing and a later retry may pass; the actions and waits of
// PowerOn, PowerOff, Destroy and Provision retry them until their context
// ends (POST /vms itself is not retried: its Unavailable is returned). A
// taken name is AlreadyExists; other 409s are FailedPrecondition. The
// proxy's 502/503 while the engine restarts is Unavailable; another 5xx
// is Unavailable for a read and OutcomeUnknown for a change, and so is a
// connection lost before the answer to a change (the engine may have done
// it). A login the SSO refuses is Unauthenticated. Engine texts are
// quoted with limit.Quote.
//
// # Inventory
//
// List reads GET /vms?search=page N&max=Options.PageSize (default 100)
// &follow=reported_devices,nics, so the guest agent's addresses come with
// the page and not with a call per VM. Pages shift while the inventory
// changes: a VM on two pages is kept once, and when a removal happened
// while the pages were read (event 113 or 36 between the newest event
// index read before and after), a VM may have moved into a page already
// read: the pages are read again, up to three passes, merged, leaving out
// the VMs whose removal finished. Measured (BenchmarkList2000, 2,000 VMs,
// 1 ms added per answer, -count 6): 382 ms, 23 round trips (20 pages, the
// empty 21st, two event reads), no new connection, 1.2 KiB retained per
// VM; the per-VM loop go-ovirt-client does (pages, then one
// reported-devices call per VM, over go-ovirt's Connection) takes 5.54 s,
// 2,022 round trips and 2,022 TLS connections: 14.5x slower. A List with a
// Zone reads every page and filters by cluster.
//
// Facts: ID (the engine's VM id), Name, Power (up, powering_up,
// powering_down, wait_for_launch, migrating, reboot_in_progress:
// poweredOn; down, image_locked: poweredOff; suspended, paused,
// saving_state, restoring_state: suspended; else unknown), Zone (the
// VM's cluster's zone), CPUs (sockets x cores x threads), MemoryMiB,
// Annotation (description), Guest.Hostname (fqdn), Guest.Family, OSName,
// OSVersion (guest_operating_system), Guest.IPs (the reported devices'
// addresses; none until the agent reports, which is not an error),
// Guest.ToolsRunning (the agent reported). Attributes: status (the
// engine's raw status, image_locked and wait_for_launch included),
// cluster, cluster_id, datacenter, datacenter_id, host_id, template_id,
// os_type, fqdn, stop_reason. Templates are separate engine objects: with
// IncludeTemplates List adds them (Template set, poweredOff, Guest.Family
// from the os type), and Get of
// a template's id returns it; the Blank template is left out.
//
// # Zones and templates
//
// A zone is one data center and one of its clusters. Without
// Options.Zones there is one per cluster, named "<datacenter>/<cluster>".
// Zones lists each with its data center, cluster, the data storage
// domains attached to the data center, and the vNIC profiles of its
// networks; the topology (GET /datacenters, /clusters, /networks,
// /vnicprofiles, /datacenters/{id}/storagedomains) is cached for 30 s and
// read again when a VM's cluster is unknown. Templates lists the
// templates of the zone's data center (a template's zone is its
// cluster's); Family comes from the template's os type.
//
// # Watch
//
// A cursor is an engine event index (GET /events?from=N). A stream reads
// every kept event above its position every Options.PollInterval (default
// 2 s; no max, since from=N&max=M gives the newest M above N, not the next
// M), and for the VM event codes 34 (Created), 53, 35, 113, 153, 61, 63,
// 934 (Changed) and 36, 60 (Deleted) re-reads the VM; a VM gone since is
// reported with its ID and the attribute status=removed (its removal
// event follows). The log is lossy: the engine drops duplicate events
// within an interval and purges rows older than 30 days nightly, and
// answers a from older than what it keeps with no error. So Watch checks
// that the event at the cursor is still kept: one that is not (or a
// cursor that names no event) is ErrCursorExpired; a stream whose
// position is purged while it runs resyncs instead (it lists the
// inventory and reports what differs from what it has reported: Created,
// Changed, and Deleted for every VM gone, so no removal is missed) and
// goes on from the newest event. Beside the feed, the same resync runs
// every Options.ResyncInterval (default 10 minutes; negative: never).
// While the engine is down or restarting the stream keeps its position
// and retries with backoff (at most 30 s). Measured (BenchmarkWatchLatency,
// 20 ms poll, -count 6): event to Next p50 20 ms, p99 34 ms.
//
// # Provision, power, destroy
//
// Provision resolves the zone, the template (ID or name, in the zone's
// data center: else NotFound) and the network (a vNIC profile or network
// name of the zone, with the VLAN when Network.VLAN is set), then POSTs
// /vms with the name, the zone's cluster, the template, CPUs (sockets),
// memory, a comment marking the request key, and the initialization
// (host_name: Customization.Hostname or the VM name; custom_script: the
// cloud-init user-data, as package template renders it with
// CustomizationFor, which the engine merges into the cloud-config it
// generates; user_name and authorized_ssh_keys: the first user of that
// #cloud-config; a static address as nic_configurations and dns_servers),
// with correlation_id derived from the request key (a UUID-shaped SHA-256
// of it, 36 characters, the same in every process: the engine's search
// types correlation_id as a UUID). Disks are thin copy-on-write
// beside the template's disks (the engine requires that for a thin VM);
// with Options.Clone they are copied (clone=true: the VM is image_locked
// during the copy) to the zone's StorageDomain or the active data domain
// with the most free space. The engine ignores NICs in POST /vms (the VM
// gets the template's), so the first NIC's vNIC profile is set with PUT
// /vms/{id}/nics/{nic} (a NIC is added when the template has none). It
// waits for the correlation id's jobs (a failed job is FailedPrecondition)
// and for image_locked to clear, starts the VM with use_cloud_init when
// asked and waits for up, all within the spec's timeout. On any failure,
// a timeout or a lost answer, the partial VM is stopped and removed (on a
// context that outlives the caller's; removal retries while the engine
// says the VM is locked) and the error joins the cleanup's. A repeated
// key, also from another process after a restart, finds the VM by the
// key's comment and returns it (finishing its start when asked).
// Customization's MetaData and NetworkConfig are not passed: oVirt's
// initialization has no channel for them.
//
// PowerOn POSTs start and waits for up; PowerOff POSTs stop (a hard
// power-off) and waits for down; both are idempotent, and a template's
// id is FailedPrecondition. Destroy stops the VM, DELETEs it (with its
// disks) and waits until it is gone; an unknown VM is nil. Without a
// deadline these waits stop after 10 minutes.
//
// # Guest access
//
// oVirt has no guest operations channel (nothing like VMware Tools'
// guest operations): this driver does not implement
// provider.GuestAccessDriver, and enrollment reaches guests over the
// network path (SSH / WinRM to the VM's address), which the orchestrator
// already supports.
//
// # Preflight
//
// Rows, per zone where it applies, each with a fix when it does not
// pass: ovirt.engine (reachable, version 4.4 or later), ovirt.zones
// (configured zones exist), ovirt.datacenter (up), ovirt.cluster,
// ovirt.storage (attached data domains active; the configured one among
// them), ovirt.storage.templates (when TemplateStorageDomain is set),
// ovirt.network (VLAN-tagged VM networks; DHCP on them is the operator's
// duty and is not checked), ovirt.template (present in the zone's data
// center with status ok), ovirt.template.agent (VMs made from the
// template report a guest agent: warn when none is observable),
// ovirt.permissions (the account's roles grant create_vm,
// vm_basic_operations, delete_vm, edit_vm_properties and
// configure_vm_network on the zone's cluster, or what holds it, and
// create_disk on a data domain of the zone).
//
// # As
//
// The portable Provider's As reaches this driver (a **ovirt.Provider
// target) and the driver's *http.Client (**http.Client: the engine's TLS
// settings, no token).
//
// # Concurrency
//
// A Provider is safe for concurrent use. Provision calls with one key are
// serialized in the process (and found by the key's mark across
// processes).
package ovirt
