#!/usr/bin/env bash
# Origin throughput: `monsoon serve` and nginx serve the same packaged film on 127.0.0.1 and
# are loaded by the same wrk, in one run: a ~1 MB segment, a ~200 KB segment and the
# multivariant playlist (plain, and gzipped as browsers and CDNs ask for it), at 64 and 1,000
# connections. Then both hold 19,000 idle keep-alive connections and their RSS per connection
# is compared.
#
# nginx: sendfile on, open_file_cache, access_log off, worker_processes auto, gzip on for
# playlists (compressed per request, level 1: nginx's way for files without a .gz copy).
# Monsoon: release build, access log off, default 512 MiB hot cache.
#
# Each line runs ROUNDS times, alternating Monsoon and nginx (this machine's throughput moves
# by 10-30 % from one run to the next); the table shows each server's median run and the ratio
# of the medians, then every round's ratio.
#
# Then latency at equal load: closed-loop saturation puts wrk and the servers on the same two
# cores, so a server that answers more requests also leaves wrk less CPU, and p99 measures the
# scheduler as much as the server. The second table loads both servers with the same offered
# load, half of nginx's median throughput on that line (each connection waits a random delay
# before each request), and compares p50 and p99 there.
#
# Usage: bench/origin.sh [SECONDS_PER_RUN] [ROUNDS]      (default 10 s, 3 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
rounds=${2:-3}

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

cargo build -q --release -p monsoon
monsoon=$PWD/target/release/monsoon
work=$(mktemp -d /tmp/monsoon-origin-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
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

port_m=18481; port_n=18482
# Keep-alive idle as long as nginx's keepalive_timeout (75 s), for the idle-connection part.
printf '[serve]\nheader_timeout_s = 75\n' > "$work/monsoon.toml"
"$monsoon" --data "$work/data" serve --config "$work/monsoon.toml" --listen 127.0.0.1:$port_m \
  --access-log false >/dev/null 2>&1 &
pids+=($!); monsoon_pid=$!
mkdir -p "$work/nginx/logs" "$work/nginx/tmp"
cat > "$work/nginx/nginx.conf" <<EOF
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
  gzip on; gzip_types application/vnd.apple.mpegurl application/dash+xml; gzip_min_length 256;
  client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp;
  fastcgi_temp_path $work/nginx/tmp; uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
  types { application/vnd.apple.mpegurl m3u8; video/iso.segment m4s; video/mp4 mp4; }
  server {
    listen 127.0.0.1:$port_n reuseport;
    rewrite ^/media/film/master.m3u8\$ /media/film/$version/master.m3u8 last;
    location /media/ { alias $work/data/media/; add_header Cache-Control "public, max-age=31536000, immutable"; }
  }
}
EOF
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!); nginx_pid=$!
sleep 1
curl -sf "http://127.0.0.1:$port_m/media/film/$version/$big" -o /dev/null
curl -sf "http://127.0.0.1:$port_n/media/film/$version/$big" -o /dev/null

# Each connection waits 0 to 2 × DELAY_MS, at random, before each request (wrk calls delay()):
# a fixed delay would keep 1,000 connections in step, sending in waves.
cat > "$work/paced.lua" <<'LUA'
local mean = tonumber(os.getenv("DELAY_MS"))
function init() math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000) end
function delay() return math.random(0, 2 * mean) end
LUA

# run URL CONNS [HEADER] [DELAY_MS] → "req/s gbit/s p50_ms p99_ms"
run() {
  local out args=()
  [ -n "${3:-}" ] && args+=(-H "$3")
  [ -n "${4:-}" ] && args+=(-s "$work/paced.lua")
  out=$(DELAY_MS=${4:-0} wrk -t2 -c"$2" -d"${duration}s" --latency "${args[@]}" "$1" 2>&1)
  local rps bytes p50 p99
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  bytes=$(awk '/^Transfer\/sec/ {v=$2; u=substr(v, length(v)-1); n=v+0;
    if (u=="GB") n*=1073741824; else if (u=="MB") n*=1048576; else if (u=="KB") n*=1024; print n}' <<<"$out")
  ms() { awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.2f", n }'; }
  p50=$(ms "$(awk '$1=="50%" {print $2}' <<<"$out")")
  p99=$(ms "$(awk '$1=="99%" {print $2}' <<<"$out")")
  echo "$rps $(awk -v b="$bytes" 'BEGIN {printf "%.2f", b*8/1e9}') $p50 $p99"
}

# median RUN_LINES… → the line whose req/s is the median
median() { printf '%s\n' "$@" | sort -n -k1,1 | awk '{a[NR] = $0} END {print a[int((NR + 1) / 2)]}'; }
# median_p99 RUN_LINES… → the line whose p99 is the median
median_p99() { printf '%s\n' "$@" | sort -n -k4,4 | awk '{a[NR] = $0} END {print a[int((NR + 1) / 2)]}'; }

specs=("segment ~1 MB ($big_size B)|/media/film/$version/$big|"
       "segment ~200 KB ($small_size B)|/media/film/$version/$small|"
       "multivariant ($master_size B)|/media/film/master.m3u8|"
       "multivariant, gzip|/media/film/master.m3u8|Accept-Encoding: gzip")
declare -A nginx_rps
printf "\nSaturation: every connection sends its next request as soon as the last is answered\n"
printf "%-26s %5s | %10s %7s %8s %8s | %10s %7s %8s %8s | %6s | %s\n" object conns \
  "monsoon r/s" "Gbit/s" "p50 ms" "p99 ms" "nginx r/s" "Gbit/s" "p50 ms" "p99 ms" "ratio" "per round"
for spec in "${specs[@]}"; do
  IFS='|' read -r label path header <<<"$spec"
  for conns in 64 1000; do
    m_runs=(); n_runs=(); ratios=""
    for _ in $(seq "$rounds"); do
      m=$(run "http://127.0.0.1:$port_m$path" "$conns" "$header")
      n=$(run "http://127.0.0.1:$port_n$path" "$conns" "$header")
      m_runs+=("$m"); n_runs+=("$n")
      ratios="$ratios $(awk -v a="${m%% *}" -v b="${n%% *}" 'BEGIN {printf "%.2f", a/b}')"
    done
    read -r mr mg m50 m99 <<<"$(median "${m_runs[@]}")"
    read -r nr ng n50 n99 <<<"$(median "${n_runs[@]}")"
    nginx_rps[$label/$conns]=$nr
    printf "%-26s %5s | %10.0f %7s %8s %8s | %10.0f %7s %8s %8s | %6.2f |%s\n" "$label" "$conns" \
      "$mr" "$mg" "$m50" "$m99" "$nr" "$ng" "$n50" "$n99" "$(awk -v a="$mr" -v b="$nr" 'BEGIN {print a/b}')" "$ratios"
  done
done

printf "\nEqual load: half of nginx's median throughput above, offered to both (median p99 of %s rounds)\n" "$rounds"
printf "%-26s %5s %6s | %10s %8s %8s | %10s %8s %8s | %s\n" object conns "delay" \
  "monsoon r/s" "p50 ms" "p99 ms" "nginx r/s" "p50 ms" "p99 ms" "p99 monsoon/nginx"
for spec in "${specs[@]}"; do
  IFS='|' read -r label path header <<<"$spec"
  for conns in 64 1000; do
    # The mean delay that makes CONNS connections offer half of nginx's rate (in ms).
    delay=$(awk -v c="$conns" -v r="${nginx_rps[$label/$conns]}" 'BEGIN {d = int(c * 1000 / (r / 2) + 0.5); print (d < 1 ? 1 : d)}')
    m_runs=(); n_runs=()
    for _ in $(seq "$rounds"); do
      m_runs+=("$(run "http://127.0.0.1:$port_m$path" "$conns" "$header" "$delay")")
      n_runs+=("$(run "http://127.0.0.1:$port_n$path" "$conns" "$header" "$delay")")
    done
    read -r mr _ m50 m99 <<<"$(median_p99 "${m_runs[@]}")"
    read -r nr _ n50 n99 <<<"$(median_p99 "${n_runs[@]}")"
    printf "%-26s %5s %4s ms | %10.0f %8s %8s | %10.0f %8s %8s | %.2f\n" "$label" "$conns" "$delay" \
      "$mr" "$m50" "$m99" "$nr" "$n50" "$n99" "$(awk -v a="$m99" -v b="$n99" 'BEGIN {print a/b}')"
  done
done

# Idle keep-alive connections: RSS per connection.
rss() { local total=0; for p in "$@"; do total=$((total + $(awk '/VmRSS/ {print $2}' /proc/$p/status))); done; echo $total; }
nginx_procs() { echo "$nginx_pid $(pgrep -P "$nginx_pid" | tr '\n' ' ')"; }
hold() { # PORT COUNT → holds COUNT keep-alive connections for 8 s, each after fetching the
  # multivariant playlist (a player's first request)
  python3 - "$1" "$2" <<'PY'
import socket, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
socks = []
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /media/film/master.m3u8 HTTP/1.1\r\nHost: b\r\n\r\n")
    socks.append(s)
for s in socks:
    s.recv(65536)
time.sleep(8)
PY
}
conns=19000
echo
for target in monsoon nginx; do
  if [ $target = monsoon ]; then port=$port_m; procs=$monsoon_pid; else port=$port_n; procs=$(nginx_procs); fi
  before=$(rss $procs)
  hold $port $conns & holder=$!
  sleep 6
  after=$(rss $procs)
  wait $holder
  echo "$target: RSS ${before} kB idle, ${after} kB with $conns keep-alive connections: $(( (after - before) * 1024 / conns )) bytes per connection"
done
