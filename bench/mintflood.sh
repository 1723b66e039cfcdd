#!/usr/bin/env bash
# Two floods against a real `monsoon serve` (release build), checked response by response:
#
# 1. Mint flood: 1,000,000 sessions minted and never played (wrk, every answer must be 201).
#    Reports the server's RSS before and after. Minting keeps nothing (docs/SECURITY.md).
# 2. Stats flood: heartbeats at a steady 2,000 beats/s (paced wrk, every beat must be
#    `accepted`) over 60,000 live sessions, alone and while /stats and /metrics are polled 200
#    times a second in all, in alternating rounds (bench/ab.py): heartbeat p50/p99 of both.
#
# Usage: bench/mintflood.sh [ROUNDS]     (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build -q --release -p monsoon
monsoon=$PWD/target/release/monsoon
work=$(mktemp -d /tmp/monsoon-mintflood.XXXXXX)
server=
# Wait for the server to be gone: a draining server still on the port (SO_REUSEPORT) would
# take connections of the next run.
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT

ffmpeg -hide_banner -v error -y -f lavfi -i testsrc2=size=320x180:duration=2 -f lavfi -i sine=duration=2 \
  -c:v libx264 -preset ultrafast -c:a aac -shortest "$work/clip.mp4"
"$monsoon" --data "$work/data" ingest "$work/clip.mp4" --slug film --quality fast >/dev/null 2>&1
# The gap rule relaxed so that sessions can beat at 2,000/s; no proof of work (this measures
# memory and the stats lock, not the price of a session). /metrics is public on this private
# listener, as a Prometheus scraper next to the server would read it.
printf '[serve]\naccess_log = false\nmetrics = "public"\n[audience]\nmin_beat_gap_ms = 0\nproof_bits = 0\nqueue_limit = 200000\n' \
  > "$work/monsoon.toml"
port=18630
"$monsoon" --data "$work/data" serve --config "$work/monsoon.toml" --listen 127.0.0.1:$port \
  > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q "listening on" "$work/server.log" && break; sleep 0.1; done
url=http://127.0.0.1:$port
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$server/status"; }

# --- 1. Mint flood --------------------------------------------------------------------------
cat > "$work/mint.lua" <<'LUA'
wrk.method = "POST"
wrk.body = ""
local threads = {}
function setup(thread) table.insert(threads, thread) end
created, failures = 0, 0
function response(status, headers, body)
  if status == 201 then created = created + 1 else failures = failures + 1 end
end
function done(summary, latency, requests)
  local c, f = 0, 0
  for _, t in ipairs(threads) do c = c + t:get("created"); f = f + t:get("failures") end
  io.write(string.format('BENCH {"created":%d,"failures":%d,"checked":%d}\n', c, f, c + f))
end
LUA
for _ in $(seq 200); do curl -sf -X POST "$url/api/v1/films/film/sessions" >/dev/null; done
before=$(rss_kb)
minted=0
while [ "$minted" -lt 1000000 ]; do
  run=$(python3 bench/wrk.py "$url/api/v1/films/film/sessions" --conns 64 --seconds 5 --script "$work/mint.lua")
  minted=$((minted + $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["created"])' "$run")))
done
after=$(rss_kb)
sessions=$(curl -sf "$url/api/v1/films/film/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sessions"])')

# --- 2. Heartbeats while /stats is polled ----------------------------------------------------
cat > "$work/mint.py" <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
url, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def one(_):
    req = urllib.request.Request(f"{url}/api/v1/films/film/sessions", data=b"", method="POST")
    m = json.load(urllib.request.urlopen(req))
    return f"{m['session_id']} {m['token']}"
with ThreadPoolExecutor(32) as pool, open(out, "w") as f:
    for line in pool.map(one, range(count)):
        f.write(line + "\n")
PY
cat > "$work/paced.lua" <<'LUA'
local mean = tonumber(os.getenv("DELAY_MS"))
local base_init = init
function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
  if base_init then base_init(args) end
end
function delay() return math.random(0, 2 * mean) end
LUA
# heartbeats.lua, paced: 256 connections × one beat per ~128 ms ≈ 2,000 beats/s.
cat bench/heartbeats.lua "$work/paced.lua" > "$work/beats.lua"
# 60,000 live sessions, each with a first beat, so /stats has something to walk.
python3 "$work/mint.py" "$url" 60000 "$work/live.txt"
python3 bench/wrk.py "$url" --conns 256 --seconds 15 --script bench/heartbeats.lua -- "$work/live.txt" 2 >/dev/null
cat > "$work/poll.lua" <<'LUA'
local n = 0
function request()
  n = n + 1
  local path = (n % 2 == 0) and "/api/v1/films/film/stats" or "/metrics"
  return wrk.format("GET", path)
end
function delay() return 20 end
LUA
beats() { # ROUND SIDE: fresh sessions, then 15 s of paced beats (and the poller when polled)
  python3 "$work/mint.py" "$url" 20000 "$work/s-$1-$2.txt"
  local poller=
  if [ "$2" = polled ]; then
    # 4 connections × one request per 20 ms = 200 polls/s of /stats and /metrics.
    wrk -t1 -c4 -d16s -s "$work/poll.lua" "$url" > "$work/poll-$1.txt" 2>&1 & poller=$!
  fi
  DELAY_MS=128 python3 bench/wrk.py "$url" --conns 256 --seconds 15 --script "$work/beats.lua" \
    --cpu "$server" -- "$work/s-$1-$2.txt" 2
  if [ -n "$poller" ]; then
    wait "$poller"
    grep -q "Non-2xx\|Socket errors" "$work/poll-$1.txt" && { cat "$work/poll-$1.txt" >&2; exit 1; }
    awk '/^Requests\/sec/ {printf "stats polls/s: %s\n", $2}' "$work/poll-$1.txt" >&2
  fi
}
export -f beats
export work url server
table=$work/table.md
{
  echo "| | polled: p99 ms | beats/s | p50 ms | server CPU µs/beat | alone: p99 ms | beats/s | p50 ms | server CPU µs/beat | p99 polled/alone | per round |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
} > "$table"
python3 bench/ab.py --rounds "$rounds" --key p99_ms --record "$OUT/mintflood.jsonl" \
  --row "heartbeats, polled / alone" --table "$table" --columns rps,p50_ms,cpu_us \
  --side 'polled=beats $ROUND polled' --side 'alone=beats $ROUND alone' >/dev/null

echo
echo "mint flood: $minted sessions minted, never played; server RSS $before kB → $after kB" \
  "(+$(( (after - before) / 1024 )) MB); sessions the server counts: $sessions"
echo
echo "heartbeats at ~2,000/s over 60,000+ live sessions; polled: /stats and /metrics 200 times a second"
cat "$table"
