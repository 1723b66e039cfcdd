#!/usr/bin/env bash
# Heartbeat ingestion: acknowledged heartbeats/s with p50/p99 at 1,000 and 10,000 concurrent
# sessions on 127.0.0.1, next to nginx answering an empty 204 to the same requests in the
# same run (the ceiling for HTTP handling on this machine). wrk (2 threads, 256 connections)
# runs beside the server on the same 2 cores.
#
# Every heartbeat counted is a real one: valid token, growing seq, applied to the session and
# committed to SQLite (WAL, synchronous=NORMAL) by the group-commit writer before the 204,
# and answered `X-Monsoon-Beat: accepted`. Each round mints its own sessions, so no round
# replays the seqs of an earlier one (a replay is answered `duplicate` without touching
# SQLite). bench/heartbeats.lua checks every response: any status but 204 or any outcome but
# `accepted` fails the run, and so does any socket error (bench/wrk.py). The nginx peer
# answers the same `X-Monsoon-Beat: accepted` header, so the client does the same work on
# both sides. The one rule relaxed is the 5 s minimum gap between beats of a session, so a
# few thousand sessions can produce tens of thousands of beats per second.
#
# Besides beats/s, it prints each server's CPU time per request (µs), which another process
# competing for the cores moves far less than throughput. The servers run in alternation,
# ROUNDS times each (bench/ab.py): the table gives each one's median run and the ratio of the
# medians, then every round's ratio; every run is recorded in $OUT/heartbeats.jsonl.
#
# Usage: bench/heartbeats.sh [SECONDS_PER_RUN] [ROUNDS]     (default 10 s, 3 rounds)
#   URL_PATH_PREFIX=/wrong bench/heartbeats.sh 2 1   shows the script failing on wrong answers
#   MONSOON_BIN=/path/to/monsoon …                   measures that build instead of this tree
#   BASELINE_BIN=/path/to/monsoon …                  also runs that build as a third side, in
#                                                    the same alternating rounds (before/after)
#   POSTGRES=1 …                                     also runs this build on PostgreSQL (a
#                                                    throw-away cluster of its own, fsync and
#                                                    synchronous_commit on: a beat is flushed
#                                                    before its 204) as one more side
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
rounds=${2:-3}
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
[ -x /usr/sbin/nginx ] || { apt-get update -qq && apt-get install -y -qq nginx >/dev/null; }
# MONSOON_BIN: an earlier build to measure instead (before/after comparisons).
if [ -z "${MONSOON_BIN:-}" ]; then cargo build -q --release -p monsoon; fi
monsoon=${MONSOON_BIN:-$PWD/target/release/monsoon}
work=$(mktemp -d /tmp/monsoon-heartbeat-bench.XXXXXX)
pids=()
# Wait for the servers to be gone: a draining server still on the port (SO_REUSEPORT) would
# take connections of the next run.
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work" ${pg_dir:+"$pg_dir"}
}
trap cleanup EXIT

ffmpeg -hide_banner -v error -y -f lavfi -i testsrc2=size=320x180:duration=2 -f lavfi -i sine=duration=2 \
  -c:v libx264 -preset ultrafast -c:a aac -shortest "$work/clip.mp4"
"$monsoon" --data "$work/data" ingest "$work/clip.mp4" --slug film --quality fast >/dev/null 2>&1
# The proof of work a session's first beat carries is off: it is paid once per session by
# the client, and this measures the server's ingestion of beats (bench/inflate.sh measures it).
printf '[serve]\naccess_log = false\n[audience]\nmin_beat_gap_ms = 0\nqueue_limit = 200000\n' > "$work/monsoon.toml"
grep -aq proof_bits "$monsoon" && printf 'proof_bits = 0\n' >> "$work/monsoon.toml"
# On PostgreSQL a node commits at most every shared_commit_every_ms (100 ms by default), which
# caps a closed loop of 256 connections at 2,560 beats/s: the capacity is measured without it.
grep -aq shared_commit_every_ms "$monsoon" && printf 'shared_commit_every_ms = 0\n' >> "$work/monsoon.toml"
port_m=18581; port_n=18582; port_b=18583
"$monsoon" --data "$work/data" serve --config "$work/monsoon.toml" --listen 127.0.0.1:$port_m >/dev/null 2>&1 &
pids+=($!); monsoon_pid=$!
baseline=${BASELINE_BIN:-}
if [ -n "$baseline" ]; then
  # Its own data directory and configuration: an older build has older migrations and keys.
  "$baseline" --data "$work/data-base" ingest "$work/clip.mp4" --slug film --quality fast >/dev/null 2>&1
  printf '[serve]\naccess_log = false\n[audience]\nmin_beat_gap_ms = 0\nqueue_limit = 200000\n' > "$work/base.toml"
  grep -aq proof_bits "$baseline" && printf 'proof_bits = 0\n' >> "$work/base.toml"
  "$baseline" --data "$work/data-base" serve --config "$work/base.toml" --listen 127.0.0.1:$port_b >/dev/null 2>&1 &
  pids+=($!); baseline_pid=$!
fi
if [ -n "${POSTGRES:-}" ]; then
  . bench/lib/postgres.sh
  port_p=18584; port_pg=18585
  start_postgres $port_pg "$work/postgres.log"
  "$monsoon" --data "$work/data-pg" --database "$pg_url" ingest "$work/clip.mp4" --slug film --quality fast >/dev/null 2>&1
  "$monsoon" --data "$work/data-pg" --database "$pg_url" serve --config "$work/monsoon.toml" --listen 127.0.0.1:$port_p >/dev/null 2>&1 &
  pids+=($!); pg_monsoon_pid=$!
fi
mkdir -p "$work/nginx/logs" "$work/nginx/tmp"
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log crit;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 1000000;
  client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp;
  fastcgi_temp_path $work/nginx/tmp; uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
  server {
    listen 127.0.0.1:$port_n;
    location /api/v1/sessions/ { add_header X-Monsoon-Beat accepted always; return 204; }
  }
}
CONF
/usr/sbin/nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!); nginx_pid=$!
sleep 1

# mint.py COUNT FILE: mints COUNT new sessions, writes "id token" lines.
cat > "$work/mint.py" <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
port, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def one(_):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/films/film/sessions", data=b"", method="POST")
    m = json.load(urllib.request.urlopen(req))
    return f"{m['session_id']} {m['token']}"
with ThreadPoolExecutor(32) as pool, open(out, "w") as f:
    for line in pool.map(one, range(count)):
        f.write(line + "\n")
PY

table=$work/table.md
{
  echo "| sessions | Monsoon beats/s | p50 ms | p99 ms | CPU µs/beat | nginx 204/s | p50 ms | p99 ms | CPU µs/req | ratio | per round |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
} > "$table"
prefix=${URL_PATH_PREFIX:-}
for sessions in 1000 10000; do
  # nginx ignores the sessions; it gets a file of the same size so wrk sends the same bytes.
  python3 "$work/mint.py" $port_m "$sessions" "$work/nginx-$sessions.txt"
  check=(--conns 256 --seconds "$duration" --script bench/heartbeats.lua)
  python3 bench/ab.py --rounds "$rounds" --key rps --record "$OUT/heartbeats.jsonl" \
    --row "$(printf "%'d" "$sessions")" --table "$table" --columns p50_ms,p99_ms,cpu_us \
    --side "monsoon=python3 $work/mint.py $port_m $sessions $work/m-$sessions-\$ROUND.txt &&
      bench/wrk.py http://127.0.0.1:$port_m$prefix ${check[*]} --cpu $monsoon_pid -- $work/m-$sessions-\$ROUND.txt 2" \
    --side "nginx=bench/wrk.py http://127.0.0.1:$port_n$prefix ${check[*]} --cpu $nginx_pid -- $work/nginx-$sessions.txt 2" \
    ${baseline:+--side "baseline=python3 $work/mint.py $port_b $sessions $work/b-$sessions-\$ROUND.txt &&
      bench/wrk.py http://127.0.0.1:$port_b$prefix ${check[*]} --cpu $baseline_pid -- $work/b-$sessions-\$ROUND.txt 2"} \
    ${POSTGRES:+--side "postgres=python3 $work/mint.py $port_p $sessions $work/p-$sessions-\$ROUND.txt &&
      bench/wrk.py http://127.0.0.1:$port_p$prefix ${check[*]} --cpu $pg_monsoon_pid -- $work/p-$sessions-\$ROUND.txt 2"} \
    > "$work/ab-$sessions.json" || failed=1
  if [ -n "$baseline" ] && [ -z "${failed:-}" ]; then
    python3 - "$work/ab-$sessions.json" "$sessions" >> "$work/baseline.md" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
o = r["others"]["monsoon/baseline"]
print(f"| {int(sys.argv[2]):,} | {r['monsoon_rps']:,.0f} | {r['baseline_rps']:,.0f} | {o['ratio']:.2f} | "
      + " ".join(f"{x:.2f}" for x in o["per_round"]) + " |")
PY
  fi
  if [ -n "${POSTGRES:-}" ] && [ -z "${failed:-}" ]; then
    python3 - "$work/ab-$sessions.json" "$sessions" >> "$work/postgres.md" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
o = r["others"]["monsoon/postgres"]
print(f"| {int(sys.argv[2]):,} | {r['postgres_rps']:,.0f} | {r['monsoon_rps']:,.0f} | {r['nginx_rps']:,.0f} | "
      f"{r['postgres_rps'] / r['monsoon_rps']:.2f} | {r['postgres_rps'] / r['nginx_rps']:.2f} | "
      + " ".join(f"{1 / x:.2f}" for x in o["per_round"]) + " |")
PY
  fi
done
echo
cat "$table"
if [ -n "${POSTGRES:-}" ] && [ -s "$work/postgres.md" ]; then
  echo
  echo "On PostgreSQL, in the same rounds (CPU µs/beat in the JSON records is Monsoon's process only; PostgreSQL's backends are not counted):"
  echo
  echo "| sessions | PostgreSQL beats/s | SQLite beats/s | nginx 204/s | PostgreSQL/SQLite | PostgreSQL/nginx | PostgreSQL/SQLite per round |"
  echo "|---:|---:|---:|---:|---:|---:|---|"
  cat "$work/postgres.md"
fi
if [ -n "$baseline" ] && [ -s "$work/baseline.md" ]; then
  echo
  echo "This build against the baseline ($baseline), in the same rounds:"
  echo
  echo "| sessions | this build beats/s | baseline beats/s | ratio | per round |"
  echo "|---:|---:|---:|---:|---|"
  cat "$work/baseline.md"
fi
[ -z "${failed:-}" ] || { echo "FAILED: see the rows above" >&2; exit 1; }
