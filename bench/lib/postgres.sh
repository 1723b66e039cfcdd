# Sourced by the bench scripts: a throw-away PostgreSQL cluster for one run.
#
#   start_postgres PORT LOG     initdb in a temporary directory, `postgres` on 127.0.0.1:PORT
#                               (fsync and synchronous_commit on, the defaults); sets pg_url,
#                               pg_bin, pg_dir and pg_pid, and appends the PID to `pids`
#
# PostgreSQL refuses to run as root: as root, the cluster runs as the `postgres` account the
# Debian package makes (setpriv execs, so $! is the server's PID). The caller removes $pg_dir.
start_postgres() {
  local port=$1 log=$2
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  pg_dir=$(mktemp -d /tmp/monsoon-bench-pg.XXXXXX)
  local as_pg=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$pg_dir"
    as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups)
  fi
  "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" --auth=trust --username=monsoon >/dev/null
  "${as_pg[@]}" "$pg_bin/postgres" -D "$pg_dir/data" -h 127.0.0.1 -p "$port" -k "$pg_dir" \
    -c max_connections=200 >"$log" 2>&1 &
  pg_pid=$!
  pids+=("$pg_pid")
  for _ in $(seq 300); do
    "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$port" && break
    sleep 0.1
  done
  "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$port" || { echo "PostgreSQL did not start; see $log" >&2; return 1; }
  pg_url="postgres://monsoon@127.0.0.1:$port/postgres"
}

# pg_commits PORT: transactions committed in the cluster so far (pg_stat_database).
pg_commits() {
  "$pg_bin/psql" -h 127.0.0.1 -p "$1" -U monsoon -d postgres -Atc \
    "SELECT sum(xact_commit) FROM pg_stat_database"
}
