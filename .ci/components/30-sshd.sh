# Sourced by .ci/run (set -euo pipefail, repo root). Installs Debian's
# OpenSSH server, ansible-core and sudo, starts a private sshd on a loopback
# port with its own host key, and exports what guest/ssh, guest/tasks and
# guest/ansible tests read:
#   MANAGEDVM_SSHD_ADDR         127.0.0.1:PORT
#   MANAGEDVM_SSHD_USER         root (public-key login)
#   MANAGEDVM_SSHD_KEY          path to the client's private key (no passphrase)
#   MANAGEDVM_SSHD_KNOWN_HOSTS  known_hosts file holding the host key
#   MANAGEDVM_SSHD_PW_USER      a throwaway non-root user with a password and
#   MANAGEDVM_SSHD_PW_PASSWORD  sudo rights that need that password
# Keep the package's own sshd (port 22, all addresses) from being started
# by its postinst on machines without a policy-rc.d.
mvm_policy_added=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	mvm_policy_added=1
fi
apt_install openssh-server ansible-core sudo
if [ -n "$mvm_policy_added" ]; then rm -f /usr/sbin/policy-rc.d; fi
mvm_sshd_dir=$(mktemp -d /tmp/managedvm-sshd.XXXXXX)
chmod 755 "$mvm_sshd_dir"
ssh-keygen -q -t ed25519 -N '' -C managedvm-ci-host -f "$mvm_sshd_dir/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -C managedvm-ci-client -f "$mvm_sshd_dir/client_ed25519"
cp "$mvm_sshd_dir/client_ed25519.pub" "$mvm_sshd_dir/authorized_keys_root"
chmod 644 "$mvm_sshd_dir/authorized_keys_root"

# A throwaway password user with sudo (password required).
mvm_pw_user=mvmci$$
mvm_pw_password="ci-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
useradd --create-home --shell /bin/sh "$mvm_pw_user"
printf '%s:%s\n' "$mvm_pw_user" "$mvm_pw_password" | chpasswd
printf '%s ALL=(ALL:ALL) ALL\n' "$mvm_pw_user" >"/etc/sudoers.d/$mvm_pw_user"
chmod 440 "/etc/sudoers.d/$mvm_pw_user"

mvm_sshd_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$mvm_sshd_dir/sshd_config" <<CONF
Port $mvm_sshd_port
ListenAddress 127.0.0.1
HostKey $mvm_sshd_dir/host_ed25519
PidFile $mvm_sshd_dir/sshd.pid
AuthorizedKeysFile $mvm_sshd_dir/authorized_keys_%u .ssh/authorized_keys
StrictModes no
UsePAM yes
PasswordAuthentication yes
KbdInteractiveAuthentication yes
PubkeyAuthentication yes
PermitRootLogin prohibit-password
MaxSessions 10
MaxStartups 100:30:200
Subsystem sftp internal-sftp
LogLevel ERROR
CONF
mkdir -p /run/sshd
/usr/sbin/sshd -t -f "$mvm_sshd_dir/sshd_config"
/usr/sbin/sshd -D -e -f "$mvm_sshd_dir/sshd_config" 2>"$mvm_sshd_dir/sshd.log" &
mvm_sshd_pid=$!
cleanup_cmds+=("kill $mvm_sshd_pid; userdel -r $mvm_pw_user 2>/dev/null; rm -f /etc/sudoers.d/$mvm_pw_user; rm -rf $mvm_sshd_dir")
for _ in $(seq 1 100); do
	if ssh-keyscan -T 1 -p "$mvm_sshd_port" 127.0.0.1 >"$mvm_sshd_dir/scan" 2>/dev/null && [ -s "$mvm_sshd_dir/scan" ]; then
		break
	fi
	sleep 0.1
done
# known_hosts from the key file itself, not from what the scan saw.
printf '[127.0.0.1]:%s %s\n' "$mvm_sshd_port" "$(cut -d' ' -f1,2 "$mvm_sshd_dir/host_ed25519.pub")" >"$mvm_sshd_dir/known_hosts"
[ -s "$mvm_sshd_dir/scan" ] || { echo "sshd did not start:"; cat "$mvm_sshd_dir/sshd.log"; exit 1; }
export MANAGEDVM_SSHD_ADDR="127.0.0.1:$mvm_sshd_port"
export MANAGEDVM_SSHD_USER=root
export MANAGEDVM_SSHD_KEY="$mvm_sshd_dir/client_ed25519"
export MANAGEDVM_SSHD_KNOWN_HOSTS="$mvm_sshd_dir/known_hosts"
export MANAGEDVM_SSHD_PW_USER="$mvm_pw_user"
export MANAGEDVM_SSHD_PW_PASSWORD="$mvm_pw_password"
