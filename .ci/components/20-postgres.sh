# Sourced by .ci/run (set -euo pipefail, repo root): installs Debian's
# PostgreSQL, starts a throwaway cluster on a loopback high port as the
# postgres user (initdb refuses root), exports MANAGEDVM_PG_URL for the
# level-3 tests of ipam/pgipam, enroll/pgstore and cmdb/pgcmdb, and registers
# its cleanup. Trust authentication on 127.0.0.1 only: no password exists.
apt_install postgresql
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pg_dir=$(mktemp -d /tmp/managedvm-pg.XXXXXX)
chmod 755 "$pg_dir"
chown postgres: "$pg_dir"
runuser -u postgres -- "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
cleanup_cmds+=("runuser -u postgres -- '$pg_bin/pg_ctl' -D '$pg_dir/data' -m immediate stop >/dev/null 2>&1; rm -rf '$pg_dir'")
# A random high port; another if it is taken.
pg_started=""
for _ in 1 2 3 4 5; do
	pg_port=$(( 40000 + RANDOM % 20000 ))
	if runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
		start >/dev/null; then
		pg_started=1
		break
	fi
done
[ -n "$pg_started" ] || { cat "$pg_dir/log"; echo "PostgreSQL did not start" >&2; false; }
for _ in $(seq 1 60); do
	"$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" && break
	sleep 0.5
done
"$pg_bin/pg_isready" -h 127.0.0.1 -p "$pg_port"
export MANAGEDVM_PG_URL="postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=disable"
