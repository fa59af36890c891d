# Sourced by .ci/run (set -euo pipefail, repo root). Installs Debian's
# cloud-init (22.4.2 on Debian 12) for the template tests, which run only
# `cloud-init schema --config-file`, `cloud-init devel net-convert` into
# temp dirs and cloud-init's Python datasource readers on temp files.
# /etc/cloud/cloud-init.disabled is created first, before the package
# exists, so that cloud-init's boot stages never act on this machine; the
# package's services are kept from starting as 30-sshd.sh does. The file
# stays, as the package does. Exports
# MANAGEDVM_CLOUDINIT, the cloud-init command the tests run.
mkdir -p /etc/cloud
[ -e /etc/cloud/cloud-init.disabled ] || : >/etc/cloud/cloud-init.disabled
mvm_ci_policy_added=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	mvm_ci_policy_added=1
fi
apt_install cloud-init
if [ -n "$mvm_ci_policy_added" ]; then rm -f /usr/sbin/policy-rc.d; fi
unset mvm_ci_policy_added
# The tests target 22.4.x (template/doc.go says where versions differ);
# another version is reported, not refused.
mvm_ci_version=$(cloud-init --version 2>&1 | awk '{print $NF}')
echo "cloud-init $mvm_ci_version"
case "$mvm_ci_version" in
22.4.*) ;;
*) echo "50-cloudinit: expected cloud-init 22.4.x (Debian 12), found $mvm_ci_version" >&2 ;;
esac
unset mvm_ci_version
# Its Python is the one on cloud-init's #! line (/usr/bin/python3), not
# whichever python3 comes first in PATH.
mvm_ci_python=$(head -n 1 "$(command -v cloud-init)" | sed 's/^#! *//')
"$mvm_ci_python" -c 'import cloudinit.sources.helpers.openstack, cloudinit.sources.DataSourceNoCloud, cloudinit.sources.DataSourceVMware' \
	|| { echo "50-cloudinit: cloud-init's Python package does not import in $mvm_ci_python" >&2; exit 1; }
unset mvm_ci_python
export MANAGEDVM_CLOUDINIT="$(command -v cloud-init)"
