#!/usr/bin/env bash
# `make cluster`: the production layout of docs/DEPLOY.md on this machine, all on 127.0.0.1 —
# a throw-away PostgreSQL, three Garage nodes (replication 3), three `monsoon serve` nodes and
# nginx in front as load balancer and cache — with the demo film ingested into PostgreSQL and
# Garage. It prints the URLs and runs until Ctrl-C, then stops every process it started (by
# PID) and removes its directory.
#
# The components run with the shipped files: deploy/garage.toml, deploy/monsoon-node.toml and
# deploy/nginx-lb.conf, with only addresses, ports, paths and secrets substituted.
#
# Usage: scripts/cluster.sh [--check]
#   --check (or CLUSTER_CHECK=1)  start everything with a short film, fetch the master playlist
#                                 and a segment through nginx, stop (exit 0 when both came)
#   CLUSTER_PORT=8080             nginx's port (--check: a free one)
#   CLUSTER_SECONDS / CLUSTER_HEIGHT   the demo film (default 60 s, 720p; --check: 12 s, 360p)
#   MONSOON_BIN=/path/to/monsoon  use that build instead of building this tree (debug)
set -euo pipefail
cd "$(dirname "$0")/.."

check=${CLUSTER_CHECK:-0}
for arg in "$@"; do
  case $arg in
    --check) check=1 ;;
    *) echo "scripts/cluster.sh: unknown argument \`$arg\` (the one option is --check)" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { echo "scripts/cluster.sh: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
  local limit=$1; shift
  local until=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $until ] || return 1
    sleep 0.2
  done
}

for tool in ffmpeg curl jq python3; do
  command -v "$tool" >/dev/null || die "$tool is missing: run scripts/install-deps.sh (or apt-get install $tool)"
done
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || die "nginx is missing: apt-get install nginx (scripts/install-deps.sh does)"
garage=$(command -v garage || echo "$HOME/.cargo/bin/garage")
[ -x "$garage" ] || die "garage is missing: cargo install garage --locked --version 2.5.0 (scripts/install-deps.sh does)"
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$pgbin" ] || die "PostgreSQL is missing: apt-get install postgresql (scripts/install-deps.sh does)"

if [ -z "${MONSOON_BIN:-}" ]; then
  say "building monsoon"
  cargo build -q -p monsoon
  monsoon=${CARGO_TARGET_DIR:-$PWD/target}/debug/monsoon
else
  monsoon=$MONSOON_BIN
fi
[ -x "$monsoon" ] || die "no monsoon binary at $monsoon"

if [ "$check" = 1 ]; then
  lb_port=${CLUSTER_PORT:-$(free_port)}; seconds=${CLUSTER_SECONDS:-12}; height=${CLUSTER_HEIGHT:-360}
else
  lb_port=${CLUSTER_PORT:-8080}; seconds=${CLUSTER_SECONDS:-60}; height=${CLUSTER_HEIGHT:-720}
fi

work=$(mktemp -d /tmp/monsoon-cluster.XXXXXX)
pids=()       # every process started, in order
sleeper=""
stopping=0
cleanup() {
  [ "$stopping" = 1 ] && return
  stopping=1
  say "stopping"
  [ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null
  # Newest first, each waited for: nginx, the nodes (SIGTERM: they drain), Garage, then
  # PostgreSQL (SIGINT: a "fast" shutdown, which does not wait for clients to leave).
  local i pid
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[i]}
    if [ "$pid" = "${pg_pid:-}" ]; then kill -INT "$pid" 2>/dev/null || true
    else kill -TERM "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- PostgreSQL ------------------------------------------------------------------------------
# PostgreSQL refuses to run as root: as root it runs as the `postgres` account (setpriv execs,
# so $! is the server's PID), in a directory handed to it.
say "starting PostgreSQL ($pgbin)"
as_pg=()
mkdir -p "$work/pg"
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || die "running as root needs the postgres account (the postgresql package makes it)"
  chown postgres: "$work/pg"
  chmod 755 "$work"
  as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups)
fi
pg_port=$(free_port)
"${as_pg[@]}" "$pgbin/initdb" -D "$work/pg/data" --auth=trust --username=monsoon \
  --encoding=UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; die "initdb failed"; }
"${as_pg[@]}" "$pgbin/postgres" -D "$work/pg/data" -h 127.0.0.1 -p "$pg_port" -k "$work/pg" \
  -c max_connections=200 >"$work/postgres.log" 2>&1 &
pg_pid=$!; pids+=("$pg_pid")
wait_for 30 "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" || { cat "$work/postgres.log" >&2; die "PostgreSQL did not start"; }
"$pgbin/createdb" -h 127.0.0.1 -p "$pg_port" -U monsoon monsoon
database="postgres://monsoon@127.0.0.1:$pg_port/monsoon"

# --- Garage: three nodes, replication 3, from deploy/garage.toml ------------------------------
say "starting three Garage nodes"
openssl_hex() { python3 -c 'import secrets; print(secrets.token_hex(32))'; }
s3_ports=(); rpc_ports=()
for i in 0 1 2; do
  d=$work/garage$i
  mkdir -p "$d"
  rpc=$(free_port); s3=$(free_port); admin=$(free_port)
  rpc_ports+=("$rpc"); s3_ports+=("$s3")
  # Secrets in files only garage may read (it refuses world-readable ones).
  [ $i = 0 ] && openssl_hex > "$work/rpc_secret"
  cp "$work/rpc_secret" "$d/rpc_secret"; openssl_hex > "$d/admin_token"; openssl_hex > "$d/metrics_token"
  chmod 600 "$d/rpc_secret" "$d/admin_token" "$d/metrics_token"
  # The shipped file: this node's directories, addresses and secrets; the peers are connected
  # below (their ids exist only once they have started), so bootstrap_peers goes.
  sed -e "s|/var/lib/garage/meta|$d/meta|" -e "s|/var/lib/garage/data|$d/data|" \
      -e "s|/etc/garage/rpc_secret|$d/rpc_secret|" -e "s|/etc/garage/admin_token|$d/admin_token|" \
      -e "s|/etc/garage/metrics_token|$d/metrics_token|" \
      -e "s|^rpc_bind_addr = .*|rpc_bind_addr = \"127.0.0.1:$rpc\"|" \
      -e "s|^rpc_public_addr = .*|rpc_public_addr = \"127.0.0.1:$rpc\"|" \
      -e "/^bootstrap_peers = \[/,/^\]/d" \
      -e "s|^api_bind_addr = \"\[::\]:3900\"|api_bind_addr = \"127.0.0.1:$s3\"|" \
      -e "s|^api_bind_addr = \"\[::\]:3903\"|api_bind_addr = \"127.0.0.1:$admin\"|" \
      deploy/garage.toml > "$d/garage.toml"
  grep -q "127.0.0.1:$s3" "$d/garage.toml" && grep -q "127.0.0.1:$admin" "$d/garage.toml" \
    || die "deploy/garage.toml no longer has the lines this script substitutes"
  "$garage" -c "$d/garage.toml" server >"$d/garage.log" 2>&1 &
  pids+=($!)
done
g() { local i=$1; shift; "$garage" -c "$work/garage$i/garage.toml" "$@"; }
for i in 0 1 2; do
  wait_for 60 g $i status || { cat "$work/garage$i/garage.log" >&2; die "Garage node $i did not start"; }
done
for i in 1 2; do g 0 node connect "$(g $i node id -q)" >/dev/null; done
zone=0
for id in $(g 0 json-api GetClusterStatus | jq -r '.nodes[].id'); do
  zone=$((zone + 1))
  g 0 layout assign -z "dc$zone" -c 1G "$id" >/dev/null
done
[ $zone = 3 ] || die "Garage node 0 sees $zone nodes, not 3"
g 0 layout apply --version 1 >/dev/null
healthy() { for i in 0 1 2; do [ "$(g $i json-api GetClusterHealth | jq -r .status)" = healthy ] || return 1; done; }
wait_for 60 healthy || die "the Garage cluster did not become healthy"
bucket=monsoon-media
bucket_id=$(g 0 json-api CreateBucket "{\"globalAlias\":\"$bucket\"}" | jq -r .id)
key=$(g 0 json-api CreateKey '{"name":"monsoon"}')
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
AWS_ACCESS_KEY_ID=$(jq -r .accessKeyId <<<"$key")
AWS_SECRET_ACCESS_KEY=$(jq -r .secretAccessKey <<<"$key")
g 0 json-api AllowBucketKey "{\"bucketId\":\"$bucket_id\",\"accessKeyId\":\"$AWS_ACCESS_KEY_ID\",\"permissions\":{\"read\":true,\"write\":true,\"owner\":false}}" >/dev/null
media() { echo "s3://$bucket?endpoint=http://127.0.0.1:${s3_ports[$1]}&region=garage"; }

# --- The demo film, ingested into PostgreSQL and Garage ---------------------------------------
say "making a ${seconds} s ${height}p film and ingesting it"
width=$((height * 16 / 9 / 2 * 2))
ffmpeg -hide_banner -nostdin -v error -y \
  -f lavfi -i "testsrc2=size=${width}x${height}:rate=25:duration=$seconds" \
  -f lavfi -i "sine=frequency=1000:sample_rate=48000:duration=$seconds" \
  -c:v libx264 -preset veryfast -crf 20 -pix_fmt yuv420p -c:a aac -ac 2 -shortest "$work/master.mp4"
cat > "$work/film.toml" <<'TOML'
title = { vi = "Gió mùa — phim thử", en = "Monsoon — test film" }
synopsis = { vi = "Một phim thử tổng hợp, phát từ ba nút sau nginx.", en = "A synthetic test film, served by three nodes behind nginx." }
director = ["Monsoon"]
country = "VN"
TOML
# Submitted as a job: the worker below transcodes it and publishes it (docs/INGEST.md, "Jobs
# and workers"); the master stays where it is, at a path the worker reads.
"$monsoon" --data "$work/cli" --database "$database" --media "$(media 0)" \
  ingest "$work/master.mp4" --slug monsoon-demo --meta "$work/film.toml" --quality fast --submit

# --- Three monsoon serve nodes, from deploy/monsoon-node.toml ---------------------------------
say "starting three monsoon serve nodes"
hash_line=$("$monsoon" admin-token 2>"$work/admin-token.txt" | grep '^token_hash')
admin_token=$(grep -A1 '^Admin token' "$work/admin-token.txt" | tail -1 | tr -d ' ')
sed -e "s|^public_url = .*|public_url = \"http://127.0.0.1:$lb_port\"|" \
    -e "s|^trusted_proxies = .*|trusted_proxies = [\"127.0.0.1\"]|" \
    -e "s|^token_hash = .*|$hash_line|" \
    deploy/monsoon-node.toml > "$work/monsoon-node.toml"
grep -q "127.0.0.1:$lb_port" "$work/monsoon-node.toml" || die "deploy/monsoon-node.toml has no public_url line"
node_ports=()
for i in 0 1 2; do
  port=$(free_port); node_ports+=("$port")
  # Each node reads through its own Garage node; --listen, --database and --media win over
  # the file's production addresses.
  "$monsoon" --data "$work/node$i" --database "$database" --media "$(media $i)" \
    serve --config "$work/monsoon-node.toml" --listen "127.0.0.1:$port" --web-dir "$PWD/web/dist" \
    >"$work/node$i.out" 2>"$work/node$i.log" &
  pids+=($!)
done
for i in 0 1 2; do
  wait_for 30 curl -fsS "http://127.0.0.1:${node_ports[$i]}/readyz" \
    || { cat "$work/node$i.log" >&2; die "node $i did not start"; }
done

# --- One ingest worker, which takes the demo film's job ------------------------------------------
say "starting an ingest worker; it transcodes the demo film"
"$monsoon" --data "$work/worker" --database "$database" --media "$(media 0)" worker \
  >"$work/worker.out" 2>"$work/worker.log" &
pids+=($!)
job_state() { "$monsoon" --data "$work/cli" --database "$database" jobs --json | jq -r '.[0].state'; }
job_over() { case "$(job_state)" in done | failed | cancelled) return 0 ;; *) return 1 ;; esac; }
wait_for 600 job_over || true
[ "$(job_state)" = done ] || { "$monsoon" --data "$work/cli" --database "$database" jobs >&2; cat "$work/worker.log" >&2; die "the worker did not publish the demo film"; }
"$monsoon" --data "$work/cli" --database "$database" jobs >&2

# --- nginx in front, from deploy/nginx-lb.conf ------------------------------------------------
say "starting nginx on 127.0.0.1:$lb_port"
mkdir -p "$work/nginx/logs" "$work/nginx/tmp" "$work/nginx/cache"
sed -e "s|10.0.0.11:8080|127.0.0.1:${node_ports[0]}|" -e "s|10.0.0.12:8080|127.0.0.1:${node_ports[1]}|" \
    -e "s|10.0.0.13:8080|127.0.0.1:${node_ports[2]}|" -e "s|listen 80;|listen 127.0.0.1:$lb_port;|" \
    -e "s|/var/cache/nginx/monsoon|$work/nginx/cache|" deploy/nginx-lb.conf > "$work/nginx/lb.conf"
n=$work/nginx
user_line=""; [ "$(id -u)" -eq 0 ] && user_line="user root;"
cat > "$n/nginx.conf" <<CONF
$user_line
worker_processes 2;
pid $n/nginx.pid;
error_log $n/logs/error.log;
events { worker_connections 4096; }
http {
  access_log $n/logs/access.log;
  client_body_temp_path $n/tmp; proxy_temp_path $n/tmp; fastcgi_temp_path $n/tmp;
  uwsgi_temp_path $n/tmp; scgi_temp_path $n/tmp;
  include $n/lb.conf;
}
CONF
"$nginx" -p "$n" -c "$n/nginx.conf" -g 'daemon off;' 2>"$n/logs/stderr.log" &
pids+=($!)
lb=http://127.0.0.1:$lb_port
wait_for 10 curl -fsS "$lb/healthz" || { cat "$n/logs/error.log" "$n/logs/stderr.log" >&2; die "nginx did not start"; }

if [ "$check" = 1 ]; then
  say "checking: the master playlist and a segment through nginx"
  master=$(curl -fsS "$lb/media/monsoon-demo/master.m3u8")
  head -1 <<<"$master" | grep -q '^#EXTM3U' || die "the master playlist through nginx is not a playlist: $master"
  playlist=$(grep -v '^#' <<<"$master" | grep -m1 .)
  base=$lb/media/monsoon-demo/$(dirname "$playlist")
  segment=$(curl -fsS "$lb/media/monsoon-demo/$playlist" | grep -v '^#' | grep -m1 .)
  bytes=$(curl -fsS -o /dev/null -w '%{size_download} %{http_code}' "$base/$segment")
  [ "${bytes#* }" = 200 ] && [ "${bytes% *}" -gt 0 ] || die "segment $base/$segment: $bytes"
  echo "cluster check ok: master playlist and $base/$segment (${bytes% *} bytes) through nginx"
  echo "cluster files: $work (removed on exit)"
  exit 0
fi

cat <<EOF

Monsoon cluster on 127.0.0.1 (files in $work):
  site (nginx: load balancer + cache)  $lb/
  watch the demo film                  $lb/watch/monsoon-demo
  master playlist                      $lb/media/monsoon-demo/master.m3u8
  operator dashboard                   $lb/admin   (admin token: $admin_token)
  serve nodes                          http://127.0.0.1:${node_ports[0]}  http://127.0.0.1:${node_ports[1]}  http://127.0.0.1:${node_ports[2]}
  Garage S3 endpoints                  http://127.0.0.1:${s3_ports[0]}  http://127.0.0.1:${s3_ports[1]}  http://127.0.0.1:${s3_ports[2]}   (bucket $bucket, region garage)
  PostgreSQL                           $database
  logs                                 $work/node*.log  $work/garage*/garage.log  $work/postgres.log  $n/logs/

Ingest another film into the same cluster (the worker takes it; follow it with \`jobs\` or on
the dashboard):
  $monsoon --database '$database' --media '$(media 0)' ingest FILE --slug SLUG --submit
  $monsoon --database '$database' jobs

Ctrl-C stops everything.
EOF
while true; do
  sleep 3600 & sleeper=$!
  wait "$sleeper" || true
done
