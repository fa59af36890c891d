// Package ansible runs operators' Ansible playbooks against a guest with
// ansible-playbook. A Runner is a guest.Configurator (for
// enroll.Config.Configurator): Configure runs the playbook against the
// guest.Target's public IP.
//
//	r, err := ansible.New("site.yml",
//		operatorKey,                        // user name and private key
//		ansible.KnownHosts(knownHostsData), // ssh runs with StrictHostKeyChecking=yes
//		&ansible.Options{ExtraVars: map[string]any{"ntp_server": "10.0.0.1"}})
//	rep, err := r.Run(ctx, ansible.Host{Addr: "203.0.113.7"})
//
// Each run gets a private temporary directory (0700) holding a generated
// JSON inventory for the one host (address, port, user), the private key
// in a 0600 file, the known_hosts data, the extra variables (and the
// become password, as ansible_become_password) in a 0600 variables file
// passed as -e @file, an empty ansible.cfg (so no ansible.cfg from the
// working directory applies) and managedvm's stdout callback plugin. The
// directory is removed when the run ends, however it ends. No secret is
// ever on a command line, in the environment, or in a log.
//
// The callback plugin writes one JSON line per task result; Report.Tasks
// has them (host, task, status ok/failed/unreachable/skipped, changed,
// message) and Report.Hosts the PLAY RECAP counts. ansible-core does not
// ship a JSON callback (it lives in the ansible.posix collection), so the
// plugin is embedded here.
//
// New takes what every run needs (the playbook, the credentials and how
// host keys are verified) and *Options for the rest (nil: the defaults).
// Host keys: KnownHosts (or KnownHostsFor per enrollment target), or the
// explicitly named InsecureAcceptAnyHostKey; the zero HostKeys is refused.
// A mismatching key makes the host unreachable, with ssh's message.
//
// # Errors
//
// A failed task is a *PlaybookError naming the task, the host and the
// module's message (errs.FailedPrecondition; errs.Unavailable for an
// unreachable host). Its message quotes the task, host and message with
// limit.Quote (Go-quoted, cut at 64 bytes), so it stays bounded whatever
// the playbook printed; the fields keep what Ansible reported. Log lines
// show those values as they are when short and printable, quoted and cut
// otherwise.
//
// New and Run check their input before anything runs
// (errs.InvalidArgument, the value quoted and cut): the user name and the
// inventory host name (letters, digits, '_', '.', '-', at most 253
// bytes), tags (letters, digits, '_', '.', ':', '-', at most 128 bytes),
// Limit (printable, at most 4096 bytes), Env entries (K=V, at most 4096
// bytes, no NUL), the playbook path (at most MaxPath bytes, no NUL), the
// host address (printable, no space or quote, at most 253 bytes) and port. A missing ansible-playbook is ErrNotInstalled
// (errs.FailedPrecondition). The context (and Options.Timeout) bounds the
// run: when it ends, the whole process group of ansible-playbook is
// killed and Run returns errs.Canceled or errs.DeadlineExceeded.
// Passwords and keys given to the Runner are replaced by [REDACTED] in
// every message that comes from Ansible, before any cut.
//
// # Concurrency
//
// A Runner is immutable; concurrent Runs are independent processes.
//
// # Platforms
//
// ansible-playbook runs on Unix-like control nodes (Linux, macOS, BSD).
// There each run is a process group of its own and cancellation kills all
// of it (ansible-playbook, its workers, their ssh clients). The package
// builds on Windows too, where only the ansible-playbook process itself is
// killed.
package ansible
