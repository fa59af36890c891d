# Sourced by .ci/run (set -euo pipefail, repo root). Installs Debian's
# OpenLDAP server; netreq's tests start their own slapd on loopback ports
# with a throwaway configuration (StartTLS and LDAPS) and stop it. The
# package's own slapd is kept from starting by a policy-rc.d while the
# package installs.
mvm_policy_added=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	mvm_policy_added=1
fi
apt_install slapd
if [ -n "$mvm_policy_added" ]; then rm -f /usr/sbin/policy-rc.d; fi
