// Package managedvm is an embeddable library for managed-cloud operators
// that run two jobs over the hypervisors their customers already have.
//
// # Guest OS services enrollment
//
// The [enroll] package composes the contracts below into the enrollment
// flow: find VMs from provider events (the Indexer keeps the CMDB in step
// with the providers), validate the customer's OS credentials inside
// the guest (vSphere guest operations through VMware Tools), check the OS
// meets the requirements, record the VM's local IP and allocate a dedicated
// public IP (IPAM), add a 1:1 NAT on the firewall, make the OS changes over
// SSH or WinRM (native tasks or Ansible), and mark the CMDB record enrolled.
// Every step has a compensation: a failure, an unenrollment or the VM's
// deletion undoes all of it, and a crashed process's work is finished or
// rolled back by Resume.
//
// # Multi-provider provisioning
//
// Providers clone VMs from templates into availability zones, with
// preflight checks of each provider's requirements; the [template] package
// checks template preparation and renders guest bootstrap data (cloud-init,
// cloudbase-init, vSphere customization). The provider drivers today are
// VMware vSphere (provider/vsphere), oVirt/KVM (provider/ovirt), VMware
// Cloud Director (provider/vcd, with its NSX-T edge gateway natfw driver),
// Microsoft Hyper-V failover clusters over WinRM (provider/hyperv) and the
// in-memory memprovider (the README's support table is kept true at every
// commit).
//
// # Packages
//
//	errs          one error-code vocabulary (NotFound, OutcomeUnknown, ...)
//	provider      Provider contract: VMs, zones, templates, Watch, Preflight
//	  memprovider   in-memory provider (public, for host tests and demos)
//	  providertest  conformance suite for provider drivers
//	guest         Executor contract, quoting, OS facts, Credentials
//	  memguest      scripted in-memory executor
//	  guesttest     conformance suite
//	ipam          IPAM contract: pools, owner-keyed allocations, NAT relation
//	  memipam       in-memory IPAM    ipamtest  conformance suite
//	natfw         Firewall contract: 1:1 NAT with source-restricted ports
//	  memfw         in-memory firewall natfwtest conformance suite
//	cmdb          CMDB contract: configuration items for VMs
//	  memcmdb       in-memory CMDB    cmdbtest  conformance suite
//	template      template requirements and guest bootstrap rendering
//	enroll        the orchestrator: Enroll, Unenroll, Resume, the Indexer
//
// # Wiring a host application
//
// A host application owns persistence and transport. It builds one driver
// per contract (the in-memory ones, or real drivers such as the vSphere
// provider, an SSH or WinRM executor, a PostgreSQL IPAM), hands them to
// enroll.New with a Store for the enrollment journal, and calls Enroll,
// Unenroll and Resume from its own API or queue. Progress is observed
// through an enroll.Observer (the default logs through slog). The
// examples/quickstart program shows the whole flow with no set-up:
//
//	go run ./examples/quickstart
//
// # Errors
//
// Every error carries an [errs.Code]; use errors.Is(err, errs.NotFound) or
// errs.CodeOf(err). errs.OutcomeUnknown means the side effect may have
// happened: reconcile, never blindly retry.
//
// # Secrets
//
// Passwords, private keys and tokens travel as guest.Secret values, which
// print as "[REDACTED]" everywhere; they never appear in logs, errors,
// events or stored journals.
package managedvm
