#!/usr/bin/env bash
# Origin throughput: `monsoon serve` and nginx serve the same packaged film on 127.0.0.1 and
# are loaded by the same wrk, in one run: a ~1 MB segment, a ~200 KB segment and the
# multivariant playlist (plain, and gzipped as browsers and CDNs ask for it), at 64 and 1,000
# connections. Then both hold 19,000 idle keep-alive connections and their RSS per connection
# is compared.
#
# nginx: sendfile on, open_file_cache, access_log off, worker_processes auto, and for gzip
# `gzip_static on` with a `.gz` copy beside every playlist (gzip -9, made once), which is the
# same work as Monsoon's gzip copy (compressed once at level 9 and kept in memory).
# Monsoon: release build, access log off, default 512 MiB hot cache.
#
# Every run is checked (bench/wrk.py): any socket error or status of 400 and above fails the
# script, and so do bytes read that do not fit the expected body (its size taken, for each
# server, from a request checked by curl first: status 200, the object's exact bytes, gzip
# where asked). A fast error page cannot count as throughput.
#
# Each line runs ROUNDS times, alternating Monsoon and nginx and the order (bench/ab.py; this
# machine's throughput moves by 10-30 % from one run to the next); the table shows each
# server's median run and the ratio of the medians, then every round's ratio. Every run is
# recorded in $OUT/origin.jsonl.
#
# Then latency at equal load: closed-loop saturation puts wrk and the servers on the same two
# cores, so a server that answers more requests also leaves wrk less CPU, and p99 measures the
# scheduler as much as the server. The second table loads both servers with the same offered
# load, half of nginx's median throughput on that line (each connection waits a random delay
# before each request), and compares p50 and p99 there (the run with the median p99).
#
# Usage: bench/origin.sh [SECONDS_PER_RUN] [ROUNDS]      (default 10 s, 3 rounds)
#   WRONG_PATH=1 bench/origin.sh 2 1    asks both servers for a path that does not exist, to
#                                       show the script failing
#   MONSOON_BIN=/path/to/monsoon …      measures that build instead of building this tree
#   BASELINE_BIN=/path/to/monsoon …     also runs that build as a third side of the saturation
#                                       lines, in the same alternating rounds (before/after)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
rounds=${2:-3}
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
need=()
command -v wrk >/dev/null || need+=(wrk)
[ -x /usr/sbin/nginx ] || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; fi

# MONSOON_BIN: an earlier build to measure instead (before/after comparisons).
if [ -z "${MONSOON_BIN:-}" ]; then cargo build -q --release -p monsoon; fi
monsoon=${MONSOON_BIN:-$PWD/target/release/monsoon}
work=$(mktemp -d /tmp/monsoon-origin-bench.XXXXXX)
pids=()
# Wait for the servers to be gone: a draining server still on the port (SO_REUSEPORT) would
# take connections of the next run.
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

echo "packaging a 30 s 1080p film…" >&2
ffmpeg -hide_banner -v error -y -f lavfi -i "testsrc2=size=1920x1080:rate=25:duration=30" \
  -f lavfi -i "sine=duration=30" -c:v libx264 -preset veryfast -crf 18 -c:a aac "$work/src.mp4"
"$monsoon" --data "$work/data" ingest "$work/src.mp4" --slug film --quality fast --json >/dev/null
version_dir=$(ls -d "$work"/data/media/film/v*)
version=$(basename "$version_dir")
# The published segments closest to 1 MB and to 200 KB.
closest() { find "$version_dir" -name 'seg_*.m4s' -printf '%s %P\n' |
  awk -v t="$1" '{d = $1 - t; if (d < 0) d = -d; print d, $1, $2}' | sort -n | head -1; }
read -r _ big_size big <<<"$(closest 1000000)"
read -r _ small_size small <<<"$(closest 200000)"
master_size=$(stat -c %s "$version_dir/master.m3u8")
# nginx's gzip copies, made once beside the text objects, as Monsoon makes its own.
find "$version_dir" \( -name '*.m3u8' -o -name '*.mpd' -o -name '*.vtt' \) -size +255c \
  -exec gzip -9 -k -n {} \;

port_m=18481; port_n=18482
# Keep-alive idle as long as nginx's keepalive_timeout (75 s), for the idle-connection part.
# Every connection comes from 127.0.0.1 here (19,000 of them in the idle part), as from one big
# CDN node: no per-address cap, as nginx has none.
# All the load comes from 127.0.0.1: no per-address cap (builds that have one).
printf '[serve]\nheader_timeout_s = 75\n' > "$work/monsoon.toml"
grep -aq max_connections_per_addr "$monsoon" && printf 'max_connections_per_addr = 0\n' >> "$work/monsoon.toml"
"$monsoon" --data "$work/data" serve --config "$work/monsoon.toml" --listen 127.0.0.1:$port_m \
  --access-log false >/dev/null 2>&1 &
pids+=($!); monsoon_pid=$!
mkdir -p "$work/nginx/logs" "$work/nginx/tmp"
cat > "$work/nginx/nginx.conf" <<CONF
user root;
worker_processes auto;
worker_rlimit_nofile 20000;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log crit;
events { worker_connections 20000; }
http {
  access_log off;
  sendfile on; tcp_nopush on; keepalive_requests 100000; keepalive_timeout 75s;
  open_file_cache max=10000 inactive=60s; open_file_cache_valid 60s;
  gzip_static on; gzip_vary on;
  client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp;
  fastcgi_temp_path $work/nginx/tmp; uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
  types { application/vnd.apple.mpegurl m3u8; video/iso.segment m4s; video/mp4 mp4; }
  server {
    listen 127.0.0.1:$port_n reuseport;
    rewrite ^/media/film/master.m3u8\$ /media/film/$version/master.m3u8 last;
    location /media/ { alias $work/data/media/; add_header Cache-Control "public, max-age=31536000, immutable"; }
  }
}
CONF
/usr/sbin/nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!); nginx_pid=$!
baseline=${BASELINE_BIN:-}
port_b=18483
if [ -n "$baseline" ]; then
  # Its own data directory (an older build has older migrations), the same film and ladder.
  "$baseline" --data "$work/data-base" ingest "$work/src.mp4" --slug film --quality fast --json >/dev/null
  base_version=$(basename "$(ls -d "$work"/data-base/media/film/v*)")
  printf '[serve]\nheader_timeout_s = 75\n' > "$work/base.toml"
  grep -aq max_connections_per_addr "$baseline" && printf 'max_connections_per_addr = 0\n' >> "$work/base.toml"
  "$baseline" --data "$work/data-base" serve --config "$work/base.toml" --listen 127.0.0.1:$port_b \
    --access-log false >/dev/null 2>&1 &
  pids+=($!)
  against_baseline=$work/baseline.md
fi
sleep 1

# body_bytes PORT PATH FILE [HEADER] → the body size of the server's answer, after checking it:
# status 200 and the object's bytes (gunzipped when gzip was asked for, and then it must be
# gzip). Fails the script otherwise.
body_bytes() {
  local port=$1 path=$2 file=$3 header=${4:-} code size
  local args=(-s -o "$work/body" -D "$work/head" -w '%{http_code} %{size_download}')
  [ -n "$header" ] && args+=(-H "$header")
  read -r code size <<<"$(curl "${args[@]}" "http://127.0.0.1:$port$path")"
  [ "$code" = 200 ] || { echo "origin.sh: $port$path answered $code" >&2; return 1; }
  if [ -n "$header" ]; then
    grep -qi '^content-encoding: gzip' "$work/head" || { echo "origin.sh: $port$path: not gzip" >&2; return 1; }
    gunzip -c "$work/body" | cmp -s - "$file" || { echo "origin.sh: $port$path: wrong bytes" >&2; return 1; }
  else
    cmp -s "$work/body" "$file" || { echo "origin.sh: $port$path: wrong bytes" >&2; return 1; }
  fi
  echo "$size"
}

# Each connection waits 0 to 2 × DELAY_MS, at random, before each request (wrk calls delay()):
# a fixed delay would keep 1,000 connections in step, sending in waves.
cat > "$work/paced.lua" <<'LUA'
local mean = tonumber(os.getenv("DELAY_MS"))
function init() math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000) end
function delay() return math.random(0, 2 * mean) end
LUA

specs=("segment ${big_size} B|/media/film/$version/$big|$version_dir/$big|"
       "segment ${small_size} B|/media/film/$version/$small|$version_dir/$small|"
       "multivariant ${master_size} B|/media/film/master.m3u8|$version_dir/master.m3u8|"
       "multivariant, gzip|/media/film/master.m3u8|$version_dir/master.m3u8|Accept-Encoding: gzip")
saturation=$work/saturation.md
equal=$work/equal.md
{
  echo "| object | conns | Monsoon req/s | Gbit/s | p50 ms | p99 ms | nginx req/s | Gbit/s | p50 ms | p99 ms | ratio | per round |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
} > "$saturation"
{
  echo "| object | conns | delay ms | Monsoon p99 ms | req/s | p50 ms | nginx p99 ms | req/s | p50 ms | p99 Monsoon/nginx | per round |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
} > "$equal"
declare -A nginx_rps
# Lines whose runs failed: every line still runs, and the script exits 1 at the end.
failed=()

# side NAME PORT PATH CONNS HEADER BODY_BYTES [DELAY_MS] → an ab.py --side argument
side() {
  local cmd="bench/wrk.py http://127.0.0.1:$2$3 --conns $4 --seconds $duration --body-bytes $6"
  [ -n "$5" ] && cmd+=" --header '$5'"
  [ -n "${7:-}" ] && cmd="DELAY_MS=$7 $cmd --script $work/paced.lua"
  echo "$1=$cmd"
}

echo "saturation: every connection sends its next request as soon as the last is answered" >&2
for spec in "${specs[@]}"; do
  IFS='|' read -r label path file header <<<"$spec"
  mb=$(body_bytes $port_m "$path" "$file" "$header")
  nb=$(body_bytes $port_n "$path" "$file" "$header")
  [ -n "${WRONG_PATH:-}" ] && path=$path.wrong
  base_side=()
  if [ -n "$baseline" ]; then
    base_path=${path//$version/$base_version}
    bb=$(body_bytes $port_b "$base_path" "$work/data-base/media/film/$base_version/${file#"$version_dir"/}" "$header")
  fi
  for conns in 64 1000; do
    [ -n "$baseline" ] && base_side=(--side "$(side baseline $port_b "$base_path" $conns "$header" "$bb")")
    summary=$(python3 bench/ab.py --rounds "$rounds" --key rps --record "$OUT/origin.jsonl" \
      --row "$label | $conns" --table "$saturation" --columns gbps,p50_ms,p99_ms \
      --side "$(side monsoon $port_m "$path" $conns "$header" "$mb")" \
      --side "$(side nginx $port_n "$path" $conns "$header" "$nb")" "${base_side[@]}") || {
      failed+=("$label × $conns"); continue; }
    nginx_rps[$label/$conns]=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("nginx_rps", 0))' "$summary")
    if [ -n "$baseline" ]; then
      python3 - "$summary" "$label" "$conns" >> "$against_baseline" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
o = r["others"]["monsoon/baseline"]
print(f"| {sys.argv[2]} | {sys.argv[3]} | {r['monsoon_rps']:,.0f} | {r['baseline_rps']:,.0f} | {o['ratio']:.2f} | "
      + " ".join(f"{x:.2f}" for x in o["per_round"]) + " |")
PY
    fi
  done
done

echo "equal load: half of nginx's median throughput above, offered to both" >&2
for spec in "${specs[@]}"; do
  IFS='|' read -r label path file header <<<"$spec"
  mb=$(body_bytes $port_m "$path" "$file" "$header")
  nb=$(body_bytes $port_n "$path" "$file" "$header")
  for conns in 64 1000; do
    # The mean delay that makes CONNS connections offer half of nginx's rate (in ms).
    delay=$(awk -v c="$conns" -v r="${nginx_rps[$label/$conns]:-0}" 'BEGIN {d = int(c * 1000 / (r / 2) + 0.5); print (d < 1 ? 1 : d)}')
    [ "${nginx_rps[$label/$conns]:-0}" = 0 ] && continue
    python3 bench/ab.py --rounds "$rounds" --key p99_ms --record "$OUT/origin.jsonl" \
      --row "$label | $conns | $delay" --table "$equal" --columns rps,p50_ms \
      --side "$(side monsoon $port_m "$path" $conns "$header" "$mb" "$delay")" \
      --side "$(side nginx $port_n "$path" $conns "$header" "$nb" "$delay")" >/dev/null ||
      failed+=("$label × $conns at equal load")
  done
done

# Idle keep-alive connections: RSS per connection.
rss() { local total=0; for p in "$@"; do total=$((total + $(awk '/VmRSS/ {print $2}' /proc/$p/status))); done; echo $total; }
nginx_procs() { echo "$nginx_pid $(pgrep -P "$nginx_pid" | tr '\n' ' ')"; }
hold() { # PORT COUNT → holds COUNT keep-alive connections for 8 s, each after fetching the
  # multivariant playlist (a player's first request) and checking that it was answered 200
  python3 - "$1" "$2" <<'PY'
import socket, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
socks = []
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /media/film/master.m3u8 HTTP/1.1\r\nHost: b\r\n\r\n")
    socks.append(s)
bad = sum(1 for s in socks if not s.recv(65536).startswith(b"HTTP/1.1 200 "))
if bad:
    sys.exit(f"origin.sh: {bad} of {count} idle connections were not answered 200")
time.sleep(8)
PY
}
conns=19000
idle=""
for target in monsoon nginx; do
  if [ $target = monsoon ]; then port=$port_m; procs=$monsoon_pid; else port=$port_n; procs=$(nginx_procs); fi
  before=$(rss $procs)
  hold $port $conns & holder=$!
  sleep 6
  after=$(rss $procs)
  wait $holder
  idle+="$target: RSS ${before} kB idle, ${after} kB with $conns keep-alive connections: $(( (after - before) * 1024 / conns )) bytes per connection"$'\n'
done

printf '\nSaturation (%s rounds of %s s, median run of each server)\n\n' "$rounds" "$duration"
cat "$saturation"
printf '\nEqual load (the run with the median p99)\n\n'
cat "$equal"
printf '\n%s' "$idle"
if [ -n "$baseline" ] && [ -s "$against_baseline" ]; then
  printf '\nThis build against the baseline (%s), saturation, in the same rounds\n\n' "$baseline"
  echo "| object | conns | this build req/s | baseline req/s | ratio | per round |"
  echo "|---|---:|---:|---:|---:|---|"
  cat "$against_baseline"
fi
if [ ${#failed[@]} -gt 0 ]; then
  printf '\nFAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
