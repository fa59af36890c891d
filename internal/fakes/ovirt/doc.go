// Package ovirt is a fake oVirt engine for tests: an httptest TLS server
// that speaks the part of the engine's REST API (v4, XML) that
// github.com/ovirt/go-ovirt and managedvm's provider/ovirt driver use, with
// payloads shaped as the ovirt-engine-api-model defines them (element
// names as go-ovirt's XML readers and writers spell them), state that
// changes over time, the engine's events and jobs, and switches for the
// faults a real engine shows.
//
// Import it under another name beside the driver:
//
//	import fakeovirt "github.com/managedvm/managedvm/internal/fakes/ovirt"
//
//	s := fakeovirt.New(nil) // admin@internal / "secret", default inventory
//	defer s.Close()
//	conn, err := ovirtsdk.NewConnectionBuilder().URL(s.URL()).
//		Username(s.User()).Password(s.Password()).CACert(s.CACertPEM()).Build()
//
// # TLS
//
// The server listens on 127.0.0.1 with a certificate for 127.0.0.1,
// ::1, localhost and engine.test signed by its own CA: CACertPEM,
// CertPool and Client give it to clients, which verify TLS. The CA is also
// served where an engine serves it, GET
// /ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA
// (operators fetch it there before they trust the engine).
//
// # Served
//
// SSO:
//   - POST /ovirt-engine/sso/oauth/token, form grant_type=password,
//     scope containing ovirt-app-api, username=user@profile, password:
//     200 JSON {access_token, scope, exp, token_type}. A wrong user or
//     password is 400 {"error_code":"access_denied","error":"Cannot
//     authenticate user 'U': The username or password is incorrect.."};
//     a missing or unknown profile "... No valid profile found in
//     credentials.."; another grant type unsupported_grant_type, a missing
//     one invalid_request, another scope invalid_scope. go-ovirt turns
//     these into *AuthError.
//   - POST /ovirt-engine/services/sso-logout, form token=T: revokes T;
//     answers 200 {} whether or not T was known. go-ovirt's
//     Connection.Close sends an empty token (it never sets the field it
//     sends), so it revokes nothing: Stats counts Logouts (a token
//     revoked) and EmptyLogouts apart. A driver that must log out posts
//     the token itself.
//
// API, under /ovirt-engine/api, XML only. Requests need "Authorization:
// Bearer T" with a live token: a missing, unknown, revoked or expired
// token (Options.TokenTTL, Options.TokenIdle, ExpireTokens) is 401 with
// the servlet container's HTML page
// (<html><head><title>Error</title></head><body>Unauthorized</body></html>,
// or invalid_grant text when expired), which go-ovirt returns as
// *ResponseParseError (Code 401), not *AuthError. A Version header other
// than 4 is 400 (none means 4, the engine's default); an Accept header
// without xml is 406.
//   - GET / : api with product_info (name, vendor, version major, minor,
//     build, revision, full_version), special_objects/blank_template,
//     summary/vms, time, authenticated_user.
//   - GET /vms: search (below), max, case_sensitive, follow; ordered by
//     name (then id), as the engine's VM search orders; "page N" pages
//     are max long (100, the engine's SearchResultsLimit, without max);
//     without page, max cuts the list; pages shift when VMs are added or
//     removed between requests. Search fields (the engine's VM fields the
//     fake knows): name, comment, status (imagelocked, WaitForLaunch, up:
//     any case, no underscores needed), ip, fqdn, host, cluster,
//     datacenter, id, description; sortby name|field asc|desc. follow: nics, reported_devices, nics.reported_devices,
//     disk_attachments, disk_attachments.disk (others are 400). Without
//     follow a VM carries <link rel="nics|reporteddevices|diskattachments">
//     instead.
//   - GET /vms/{id} (follow as above), PUT /vms/{id} (name, description,
//     comment, memory, cpu topology; event 35), DELETE /vms/{id}
//     (correlation_id; only when down: 113 now, the VM image_locked for
//     one step, then gone with 36).
//   - POST /vms: add from a template. Needs name, cluster (id or name)
//     and template (id or name): else 400 "Incomplete parameters" "Vm
//     [cluster.id|name] required for add" (and name, template.id|name).
//     Reads memory, cpu/topology (sockets, cores, threads), description,
//     comment, os/type, storage_domain, disk_attachments (disk id = a
//     template disk id, else 404; format cow|raw, sparse,
//     storage_domains), initialization (host_name, user_name,
//     authorized_ssh_keys, custom_script, root_password, dns_servers,
//     dns_search, timezone; root_password is kept but never served back)
//     and the query parameters clone (true: full copy, image_locked for
//     CloneSteps) and correlation_id (or the Correlation-Id header;
//     letters, digits, _ and -, at most 50: else 400). nics in the body are
//     ignored, as the engine ignores them: the VM gets the template's NICs
//     (new MACs); add or change NICs with /vms/{id}/nics. A thin VM
//     (no clone) must be cow/sparse on a domain holding the template's
//     disk (CopyTemplateDisk); a clone may go to any active data domain of
//     the cluster's data center. Refusals: a name in use 409, a name
//     with other than letters, digits, . _ - or longer than 64 400, a
//     locked or illegal template 409, a template of another data center
//     409, a data center not up 409, a storage domain not data, not in the
//     data center or not active 409. Answer: 201 with the VM,
//     image_locked; event 34 now; a job "Creating VM N from Template T in
//     Cluster C" (started); after ThinSteps/CloneSteps steps the VM is
//     down, 53 is posted and the job finished (FailNextCopies: 60, the job
//     failed and the VM removed).
//   - POST /vms/{id}/start (use_cloud_init, use_initialization recorded),
//     /stop, /shutdown: <action> in, <action><status>complete</status>
//     </action> out. start from down only: wait_for_launch, powering_up,
//     up one step each (153 at up, job "Launching VM N"); the guest agent
//     reports AgentSteps steps later (fqdn: the initialization host_name
//     or the VM name; guest_operating_system; one address per VM on the
//     first NIC's reported device, 10.x.y.z unless SetIPs chose others;
//     event 934). stop and shutdown from any running state: powering_down
//     for a step, then down (61; job "Stopping VM N" / "Shutting down VM
//     N"); the agent's facts go. Wrong state: 409 "Cannot run VM. VM is
//     running.", "Cannot stop VM. VM is not running.".
//   - GET|POST /vms/{id}/nics (name, interface, vnic_profile),
//     GET|PUT /vms/{id}/nics/{nic} (vnic_profile, name; event 934),
//     GET /vms/{id}/nics/{nic}/reporteddevices, GET
//     /vms/{id}/reporteddevices (empty until the agent reports), GET
//     /vms/{id}/diskattachments.
//   - GET /templates (search name, status, cluster, datacenter, id;
//     follow disk_attachments, disk_attachments.disk, nics), GET
//     /templates/{id}, /templates/{id}/diskattachments, /templates/{id}/nics.
//     The Blank template (BlankTemplateID) is always there.
//   - GET /clusters, /clusters/{id} (cpu type, version, data_center).
//   - GET /datacenters, /datacenters/{id} (status, version),
//     /datacenters/{id}/storagedomains[/{sd}], /clusters, /networks.
//   - GET /storagedomains, /storagedomains/{id}: type (data, image, ...),
//     status, data_centers it is attached to, available, used, storage/type.
//   - GET /networks, /networks/{id} (vlan id="N" when tagged, mtu,
//     usages, data_center), /networks/{id}/vnicprofiles.
//   - GET /vnicprofiles, /vnicprofiles/{id} (network).
//   - GET /events, /events/{index}: every event has id = index, strictly
//     increasing; code, description (the engine's message texts),
//     severity, time, origin oVirt, custom_id -1, flood_rate,
//     correlation_id, vm, cluster, data_center, template, user. The list
//     is newest first, as the engine sorts it; from=N keeps index > N; max
//     cuts after sorting, so from=N&max=M gives the newest M above N, not
//     the next M: page backwards or leave max out. search (the engine's
//     audit log fields the fake knows): type, severity, message,
//     correlation_id, event_vm, event_template, event_datacenter, origin,
//     usrname.
//   - GET /jobs (search correlation_id=X, the jobs' one search field;
//     oldest first, by start time, the engine's sort), /jobs/{id}:
//     description, status (started, finished,
//     failed; unknown after a restart), start_time, end_time,
//     last_updated, owner.
//   - GET /users/{id} (the account: the api root's authenticated_user;
//     user_name user@profile-authz, principal), /users/{id}/permissions
//     (role, and the object: data_center, cluster, storage_domain,
//     template or vm; none for the whole system), GET /roles,
//     /roles/{id}, /roles/{id}/permits (id and name as the API's
//     PermitType: create_vm 1, delete_vm 2, edit_vm_properties 3,
//     vm_basic_operations 4, configure_vm_network 9, create_disk 1100,
//     login 1300, ...). The account is SuperUser on the system until
//     SetPermissions; then each operation checks its permit on the object
//     or what contains it (system > data center > cluster > VM; data
//     center > storage domain): POST /vms create_vm on the cluster and
//     create_disk on each disk's domain, start/stop/shutdown
//     vm_basic_operations, DELETE delete_vm, PUT edit_vm_properties, NIC
//     changes configure_vm_network; a missing one is 403 "[User is not
//     authorized to perform this action.]" (go-ovirt: *AuthError, Code
//     403). Reads are not filtered (the admin API).
//
// Faults, as the engine sends them: an unknown object is 404 with an
// empty body (go-ovirt: *NotFoundError); refused operations are
// <fault><reason>Operation Failed</reason><detail>[...]</detail></fault>
// with 409 (*ConflictError) or 400; missing parameters are 400 with reason
// "Incomplete parameters". Unknown paths are 404, other methods 405.
//
// # Events posted
//
// 1 engine started, 2 engine stopping, 34 VM created, 35 VM updated, 36
// VM removal finished, 53 VM creation completed, 60 VM creation failed,
// 61 VM down, 63 migration complete, 113 VM removal initiated, 153 VM
// started, 934 VM interface updated (also when the agent's addresses
// change: SetIPChangeEvents(false) turns that off, since whether an
// engine logs it is not established).
//
// # Time
//
// State changes are due at times from Options.Now (time.Now, or a
// ManualClock) and Options.Step; they are applied, in time order, at the
// start of every request and control call, and events carry the time the
// change was due.
//
// # Fault switches and control calls
//
// AddRule (delay or fail requests by method and path, a number of times,
// or hang up without an answer before the work or after it: a lost
// answer whose outcome the client cannot know),
// FaultVMLocked and FaultInProgress (the two 409s "VM is locked. Please
// try again in a few minutes." and "Related operation is currently in
// progress. Please try again later."), LockVM (the engine's in-memory lock
// on a VM: every action on it is the second 409 until released),
// SetLatency (every answer later), ExpireTokens (the HTML 401), Restart
// (tokens forgotten, running jobs unknown, events 2 and 1, 503 HTML from
// the proxy while down), PurgeEventsBefore and PurgeEventsThrough (the
// nightly audit log cleanup: OldestEventIndex moves; a from older than it
// just returns what is kept, as the engine does), SuppressDuplicates (a
// second event of a code for a VM within the interval is dropped),
// FailNextCopies. Inventory behind a client's back: AddVM, AddVMs
// (thousands at once), RemoveVM, RenameVM, SetVMStatus, SetIPs, SetAgent,
// MigrateVM, AddTemplate, RemoveTemplate, RenameTemplate,
// SetTemplateStatus, CopyTemplateDisk, AddNetwork, SetDataCenterStatus,
// SetStorageDomainStatus, AddRole, SetPermissions. Inspection: VM,
// VMByName, VMs, Events, Jobs, Stats (logins, failed logins, logouts,
// connections, requests), Calls (per "METHOD /pattern", ids as {id}),
// OldestEventIndex, LastEventIndex, Suppressed; Tick applies what is due
// without a request.
//
// # Not served
//
// Hosts (only referenced), disks outside VMs and templates, snapshots,
// VM pools, other users, groups, adding roles or permissions over the
// API, affinity, quotas, statistics,
// graphics consoles, sysprep, instance types, adding templates over the
// API, migrate/suspend/reboot actions, JSON, Basic or Kerberos
// authentication, the filtered user API (Filter: true), the v3 API,
// async=false waiting, and the full search grammar (only the fields and
// operators above). Fault texts quoted above come from the engine's
// message catalogues; a few (thin disk placement, storage domain checks,
// a bad search) are the fake's own wording.
//
// # Concurrency
//
// A Server is safe for concurrent use; one mutex guards its state.
package ovirt
