#!/usr/bin/env bash
# Heartbeat ingestion: sustained acknowledged heartbeats/s with p50/p99 at 1,000 and 10,000
# concurrent sessions on 127.0.0.1, next to nginx answering an empty 204 to the same requests
# in the same run (the ceiling for HTTP handling on this machine). wrk (2 threads, 256
# connections) runs beside the server on the same 2 cores.
#
# Every heartbeat is a real one: valid token, growing seq, applied to the session and
# committed to SQLite (WAL, synchronous=NORMAL) by the group-commit writer before the 204.
# The one rule relaxed is the 5 s minimum gap between beats of a session, so a few thousand
# sessions can produce tens of thousands of beats per second.
#
# Besides requests/s, it prints each server's CPU time per request (µs), which another
# process competing for the cores moves far less than throughput.
#
# This machine is shared and its throughput drifts by ±20 % from one run to the next, so the
# two servers are run in alternation, ROUNDS times each, and the row shows each one's median
# run (by requests/s); the ratio is of the medians, and every round's ratio is listed below.
#
# Usage: bench/heartbeats.sh [SECONDS_PER_RUN] [ROUNDS]     (default 10 s, 3 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
rounds=${2:-3}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
cargo build -q --release -p monsoon
monsoon=$PWD/target/release/monsoon
work=$(mktemp -d /tmp/monsoon-heartbeat-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

ffmpeg -hide_banner -v error -y -f lavfi -i testsrc2=size=320x180:duration=2 -f lavfi -i sine=duration=2 \
  -c:v libx264 -preset ultrafast -c:a aac -shortest "$work/clip.mp4"
"$monsoon" --data "$work/data" ingest "$work/clip.mp4" --slug film --quality fast >/dev/null 2>&1
printf '[serve]\naccess_log = false\n[audience]\nmin_beat_gap_ms = 0\nqueue_limit = 200000\n' > "$work/monsoon.toml"
port_m=18581; port_n=18582
"$monsoon" --data "$work/data" serve --config "$work/monsoon.toml" --listen 127.0.0.1:$port_m >/dev/null 2>&1 &
pids+=($!); monsoon_pid=$!
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
  server { listen 127.0.0.1:$port_n; location / { return 204; } }
}
CONF
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!); nginx_pid=$!
sleep 1
tick=$(getconf CLK_TCK)
cpu_ticks() { # PID...: user+system ticks of the processes and their children threads
  local total=0 p
  for p in "$@"; do total=$((total + $(awk '{print $14+$15}' "/proc/$p/stat"))); done
  echo "$total"
}

mint() { # COUNT FILE: mints COUNT sessions, writes "id token" lines
  python3 - "$port_m" "$1" "$2" <<'PY'
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
}

run() { # PORT SESSIONS_FILE PID... → "rps p50_ms p99_ms non2xx cpu_us_per_request"
  local out port=$1 file=$2 c0 c1 reqs; shift 2
  c0=$(cpu_ticks "$@")
  out=$(wrk -t2 -c256 -d"${duration}s" --latency -s bench/heartbeats.lua "http://127.0.0.1:$port" -- "$file" 2 2>&1)
  c1=$(cpu_ticks "$@")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  local rps p50 p99 bad
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  ms() { awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.2f", n }'; }
  p50=$(ms "$(awk '$1=="50%" {print $2}' <<<"$out")")
  p99=$(ms "$(awk '$1=="99%" {print $2}' <<<"$out")")
  bad=$(awk '/Non-2xx/ {print $5}' <<<"$out"); bad=${bad:-0}
  # Server CPU per request: unlike requests/s, barely moved by what else the machine runs.
  echo "$rps $p50 $p99 $bad $(awk -v t=$((c1 - c0)) -v hz="$tick" -v n="$reqs" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')"
}

median() { sort -n -k1,1 | awk '{ line[NR] = $0 } END { print line[int((NR + 1) / 2)] }'; }

printf "\n%8s | %12s %8s %8s %8s %7s | %12s %8s %8s %7s | %6s\n" sessions "monsoon b/s" "p50 ms" "p99 ms" "errors" "cpu µs" "nginx r/s" "p50 ms" "p99 ms" "cpu µs" ratio
notes=""
for sessions in 1000 10000; do
  mint "$sessions" "$work/sessions-$sessions.txt"
  m_runs=""; n_runs=""; per_round=""
  for ((round = 1; round <= rounds; round++)); do
    m=$(run $port_m "$work/sessions-$sessions.txt" "$monsoon_pid")
    n=$(run $port_n "$work/sessions-$sessions.txt" "$nginx_pid" $(pgrep -P "$nginx_pid"))
    m_runs+="$m"$'\n'; n_runs+="$n"$'\n'
    per_round+=" $(awk -v a="${m%% *}" -v b="${n%% *}" 'BEGIN {printf "%.2f", a/b}')"
  done
  read -r mr m50 m99 mbad mcpu <<<"$(printf '%s' "$m_runs" | median)"
  read -r nr n50 n99 _ ncpu <<<"$(printf '%s' "$n_runs" | median)"
  printf "%8s | %12.0f %8s %8s %8s %7s | %12.0f %8s %8s %7s | %6.2f\n" "$sessions" "$mr" "$m50" "$m99" "$mbad" "$mcpu" "$nr" "$n50" "$n99" "$ncpu" \
    "$(awk -v a="$mr" -v b="$nr" 'BEGIN {print a/b}')"
  notes+="$sessions sessions, ratio per round:$per_round"$'\n'
done
printf '\n%s' "$notes"
