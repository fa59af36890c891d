// Package vcd is an in-process VMware Cloud Director for tests: an
// httptest TLS server speaking the subset of the vCloud API (/api, XML)
// and the OpenAPI (/cloudapi, JSON) that github.com/vmware/go-vcloud-director/v2
// v2.26.1 uses for one-vApp-per-VM provisioning and NSX-T edge gateway
// NAT. Payloads are the SDK's own types/v56 structures (element and
// attribute names of the VCD schema), so what the SDK decodes here it
// decodes from VCD; the audit trail, which the SDK does not model, follows
// the AuditTrailEvent model of the VCD OpenAPI.
//
//	s := vcd.New(nil) // or &vcd.Options{TaskDuration: 200 * time.Millisecond, ...}
//	defer s.Close()
//	u, _ := url.Parse(s.APIURL())
//	c := govcd.NewVCDClient(*u, false, govcd.WithAPIVersion("37.0"))
//	c.Client.Http.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CertPool()}}
//	err := c.Authenticate(s.Options().User, s.Options().Password, s.Options().Org)
//
// # Fixture
//
// New builds: org "System" with user administrator (System Administrator,
// password Options.SysAdminPassword); org Options.Org ("acme") with user
// Options.User ("orgadmin", Organization Administrator); VDC "vdc1" with
// the default storage policy "gold"; the routed organization network
// "net1" (10.10.0.1/16, static pool 10.10.1.1-10.10.254.254) on the NSX-T
// edge gateway "edge1" (uplink 203.0.113.1/24, primary IP 203.0.113.2,
// allocated IPs 203.0.113.10-203.0.113.40); catalog "public" with the
// single-VM template "ubuntu-22.04" (ubuntu64Guest, 2 CPUs, 2048 MB,
// VMware Tools installed). Every name is an Option.
//
// # Served
//
// Versions and sessions:
//   - GET /api/versions: SupportedVersions 35.0-38.1 (below 37.0 marked
//     deprecated), LoginUrl /cloudapi/1.0.0/sessions. Any other API version
//     in an Accept header is answered 406.
//   - POST /cloudapi/1.0.0/sessions (tenant) and /sessions/provider (org
//     System only), Basic user@org; the token in X-VMWARE-VCLOUD-ACCESS-TOKEN
//     (accepted back in that header or Authorization: Bearer); JSON session
//     body. GET /sessions/current; DELETE /sessions, /sessions/provider,
//     /sessions/current, /sessions/{id} (logout, 204).
//   - POST /oauth/tenant/{org}/token and /oauth/provider/token,
//     grant_type=refresh_token: API tokens (Options.APIToken) exchanged for
//     an access token (govcd SetToken with ApiTokenHeader).
//
// The vCloud API (XML; tenant users see their org, the provider sees all):
//   - GET /api/org, /api/org/{id} (links to VDCs and catalogs),
//     /api/vdc/{id} (ResourceEntities: vApps and templates;
//     AvailableNetworks; VdcStorageProfiles), /api/network/{id}
//     (OrgVdcNetwork), /api/catalog/{id}, /api/catalogItem/{id},
//     /api/vAppTemplate/vappTemplate-{id} (one child Vm),
//     /api/vAppTemplate/vm-{id}.
//   - GET /api/query: types vm (template VMs included, isVAppTemplate=true),
//     vApp, vAppTemplate, catalog, catalogItem, orgVdc, orgVdcStorageProfile,
//     orgVdcNetwork, vAppNetwork, edgeGateway, and their admin* forms
//     (provider only, else 403); format records or idrecords; page,
//     pageSize (default 25, capped silently to Options.MaxPageSize, 128 by
//     default), total, nextPage/lastPage/previousPage/firstPage links;
//     sortAsc/sortDesc on any record attribute; filter in FIQL (==, != with
//   - wildcards, =gt= =ge= =lt= =le= comparing times, numbers or strings;
//     ';' and ',' with parentheses) on record attribute names, values
//     URL-encoded when filterEncoded=true. A page past the last is a 400;
//     fields and links are ignored (records are always complete).
//   - POST /api/vdc/{id}/action/instantiateVAppTemplate
//     (InstantiateVAppTemplateParams): name unique in the VDC
//     (DUPLICATE_NAME), Source a template of a visible catalog,
//     NetworkConfigSection vApp networks (bridged or natRouted to an org
//     network of the VDC, natRouted needs an IpScope, isolated), SourcedItem
//     with VmGeneralParams (VM name), StorageProfile (a policy of the VDC),
//     NetworkConnectionSection (primary NIC on a vApp network; POOL, MANUAL,
//     DHCP, NONE) and GuestCustomizationSection (computer name, admin
//     password: AdminPassword, or AdminPasswordAuto which generates
//     "auto-UUID" and refuses a given AdminPassword beside it with a 400
//     that does not echo it; the VM's GuestCustomizationSection shows
//     the password, as VCD does to a user allowed to view it; script). Answers 201 with the VApp (status 0 UNRESOLVED,
//     its running Task in Tasks). When the task completes the VM gets its
//     address (from the vApp network's IpScope ranges, else the org
//     network pool) and the vApp is POWERED_OFF, deployed when Deploy,
//     POWERED_ON when PowerOn; a failed task leaves it FAILED_CREATION.
//   - GET /api/vApp/vapp-{id}, .../networkConfigSection/; DELETE (Task;
//     refused while deployed or a VM is on with VCD's 400 "The requested
//     operation could not be executed on vApp "NAME". Stop the vApp and try
//     again."); POST .../power/action/{powerOn,powerOff,shutdown,reset,
//     reboot,suspend}, .../action/deploy (DeployVAppParams),
//     .../action/undeploy (UndeployVAppParams). Power off keeps the vApp
//     deployed, as VCD does: only undeploy makes it deletable. Shutdown and
//     reboot need VMware Tools running. Changing a vApp (or its VM) while a
//     task of it runs is a 400 BUSY_ENTITY "The entity Ref:
//     com.vmware.vcloud.entity.vapp:UUID is busy completing an operation
//     VDC_INSTANTIATE_VAPP." naming the running operation (the vApp
//     operation names are this fake's).
//   - GET /api/vApp/vm-{id} (Vm with NetworkConnectionSection,
//     GuestCustomizationSection, VmSpecSection, StorageProfile), its
//     sections; the same power and deploy actions; POST
//     .../action/reconfigureVm (name, VmSpecSection NumCpus and
//     MemoryResourceMb; not while powered on); PUT
//     .../guestCustomizationSection/; DELETE (refused while on).
//   - GET /api/task/{id} (Progress grows over Options.TaskDuration; status
//     running, success or error with Error{majorErrorCode, minorErrorCode,
//     message}); POST /api/task/{id}/action/cancel aborts a running task
//     (status "aborted", its effect never happens; a cancelled
//     instantiation leaves the vApp FAILED_CREATION, deletable). govcd
//     treats "aborted" as finished without error.
//
// The OpenAPI (JSON pages {resultTotal, pageCount, page, pageSize,
// associations, values} with a Link rel="nextPage" header; filter,
// sortAsc/sortDesc):
//   - GET /cloudapi/1.0.0/auditTrail: AuditTrailEvent {eventId,
//     description, operatingOrg, user, eventEntity, taskId, cellId,
//     eventType, serviceNamespace, eventStatus, timestamp (milliseconds,
//     UTC), external, additionalProperties}; filter keys timestamp,
//     eventType, eventId, eventStatus, eventEntity.id/.name,
//     operatingOrg.id/.name, user.name; unsorted it is oldest first.
//     Recorded events: com/vmware/vcloud/event/vm/{create,modify,delete,
//     deploy,undeploy} and vapp/{create,modify,delete}, with the task id when
//     an API call caused them. Timestamps have millisecond precision and
//     several events may share one, as on VCD: a cursor must tolerate ties.
//     With Options.AuditRetention, events older than it are purged, oldest
//     first, as VCD purges the trail past its retention.
//   - GET /cloudapi/1.0.0/vdcs/{urn}/capabilities: networkProvider
//     (Options.NetworkProvider, so govcd's Vdc.IsNsxt and IsNsxv work),
//     vappNetworkRouted, orgVdcNetworkRouted.
//   - GET /cloudapi/1.0.0/sessions/current: the CurrentSessionInfo (user,
//     org, roles, roleRefs), for the Organization Administrator check.
//   - GET /cloudapi/1.0.0/edgeGateways[/{id}] (OpenAPIEdgeGateway,
//     NSXT_BACKED, one uplink subnet with its allocated IP range, totalIpCount,
//     usedIpCount, primaryIp), GET .../usedIpAddresses (the primary IP and
//     NAT external addresses, categories PRIMARY_IP and NAT).
//   - .../nat/rules: GET (list), POST (202, Location: the task, no rule id;
//     the task's Owner is the gateway), GET/PUT/DELETE .../nat/rules/{id}
//     (PUT and DELETE also 202 + task). Rule names need not be unique.
//     DNAT/SNAT/REFLEXIVE need external and internal addresses.
//   - .../firewall/rules: GET {systemRules, defaultRules, userDefinedRules},
//     PUT replaces the whole user-defined list (202 + task), DELETE empties
//     it, GET/DELETE .../firewall/rules/{id}. Rules are checked for name,
//     action(Value), direction, ipProtocol and existing firewall groups.
//   - /cloudapi/1.0.0/firewallGroups: IP sets of a gateway; GET (list),
//     POST (202 + task whose Owner is the new group, as govcd's
//     OpenApiPostItem expects), GET/DELETE /{id} (refused while a firewall
//     rule uses it).
//   - /cloudapi/1.0.0/applicationPortProfiles: the SYSTEM profiles SSH
//     (TCP 22), RDP (3389), HTTP (80), HTTPS (443) and TENANT profiles;
//     GET (list; name, scope and the _context==VDC-or-gateway-id filter),
//     POST (TENANT, contextEntityId a VDC or gateway, TCP/UDP ports "N" or
//     "N-M", ICMPv4/ICMPv6; 202 + task owned by the new profile),
//     GET/DELETE /{id} (refused while a NAT or firewall rule uses it). NAT
//     and firewall rules must refer to existing profiles.
//   - Every gateway write runs as a task for Options.GatewayTaskDuration;
//     any write to the gateway meanwhile is refused with HTTP 400
//     {"minorErrorCode":"BUSY_ENTITY","message":"[ id ] The entity Ref:
//     com.vmware.vcloud.entity.gateway:UUID is busy completing an operation
//     NAT_RULE_CREATE."} (the operation named is the running one).
//
// Errors are sent as VCD sends them: /api answers an XML <Error> with
// majorErrorCode (the HTTP status), minorErrorCode, message "[ request-id ]
// text" and stackTrace; /cloudapi answers JSON {minorErrorCode, message,
// stackTrace}. A missing, unknown, expired or logged-out token is 401
// UNAUTHORIZED. Unknown or invisible objects are 403
// ACCESS_TO_RESOURCE_IS_FORBIDDEN on /api (as VCD answers) and 404
// RESOURCE_NOT_FOUND on /cloudapi.
//
// # Not served
//
// Anything else: the legacy /api/sessions login (v2.26.1 does not use
// it), SAML, /api/admin, composeVApp/recomposeVApp, media and disks,
// metadata, virtualHardwareSection items, NSX-V edge services,
// IP spaces, VDC groups, the
// distributed firewall, load balancing, the event query type and
// additionalProperties in audit events.
// Message texts other than "Stop the vApp and try again" and BUSY_ENTITY
// are close to VCD's but not verified against it; the categories of
// usedIpAddresses other than PRIMARY_IP are this fake's.
//
// # Control and faults
//
// Behind a client's back: AddVM (a vApp with one VM; thousands in well
// under a second), RemoveVApp, RemoveVM, RenameVM, RenameVApp, SetVMIP,
// SetGuestState, SetToolsStatus, SetHardware (these inventory changes are
// recorded in the audit trail, as VCD records changes made by others),
// AddCatalog (shared: a public catalog of org System seen by every org),
// AddTemplate, AddStorageProfile, AddUser (any role; roles are reported
// by sessions/current, not enforced). Inspection: VM, VMs, VApp, VApps, NATRules,
// FirewallRules, FirewallGroups, AuditEvents, RunningTasks.
// Faults: FailNextTask (by operationName), SetTaskDuration,
// SetGatewayTaskDuration, SetGatewayBusy (BUSY_ENTITY as another client's
// write causes it), ExpireSessions and Options.TokenTTL (401, then a new
// login works), SetLatency (per request, honouring the client's
// cancellation). Counters: SessionsCreated, ActiveSessions, Requests
// ("METHOD /path" with ids as {id}), RequestCounts, TotalRequests,
// ResetCounts.
//
// # The SDK, as seen from here
//
// govcd.NewVCDClient panics on a bad WithAPIVersion or GOVCD_API_VERSION;
// its TLS setting is only an insecure flag, so tests set
// Client.Http.Transport with CertPool. Task.WaitTaskCompletion polls every
// 3 seconds; the first poll is immediate, so with TaskDuration 0 the SDK's
// own waits return at once, and with a longer duration tests poll with
// WaitInspectTaskCompletion and a short delay. util.LogHttpResponse is on
// by default and makes the SDK run its masking regular expressions over
// every response body even when nothing is logged (about two thirds of the
// client's time listing 2,000 VMs: see BenchmarkQueryList2000VMs).
//
// Its default X-VMWARE-VCLOUD-CLIENT-REQUEST-ID builder
// (VcloudRequestIdBuilderFunc) reads its global counter without
// synchronisation: one client shared by goroutines is a data race under
// -race unless WithVcloudRequestIdFunc gives a race-free function (the
// tests here do). The server answers X-VMWARE-VCLOUD-REQUEST-ID as VCD
// does: the client's id (cut to 128 bytes), a dash and a UUID.
//
// # Concurrency
//
// A Server is safe for concurrent use: requests and control calls are
// serialized by one lock (latency is spent outside it).
package vcd
