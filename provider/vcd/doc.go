// Package vcd is the VMware Cloud Director driver of provider.Driver
// (work in progress: so far the connection layer only; see "Status").
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
// Authorization header: never into a log, an error or a span.
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
// # Status
//
// Done: the connection (this section's API is internal). Not yet: the
// provider.Driver (inventory, watch, lifecycle, provisioning, preflight)
// and the NSX-T edge gateway natfw driver of issue 22. VCD is not a
// supported provider until they are.
package vcd
