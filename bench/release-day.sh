#!/usr/bin/env bash
# Release day on one machine (issue #7): `monsoon serve` (release build) and `monsoon simulate`
# on the same 2 cores, 127.0.0.1.
#
#   1. peak-60k: ramp to 60,000 viewers in 2 min, hold 3 min. Reports viewers reached and held,
#      the server's concurrent figure against the ground truth, errors, p99 per request class,
#      and the server's RSS and CPU (from /proc).
#   2. day-1m: 1,000,000 sessions at up to 60,000 at once, with one `kill -9` of the server in
#      the middle and a restart on the same port; the simulator retries through the gap and
#      re-sends unacknowledged final beats. Views counted must equal the ground truth.
#
# The script exits 1 when a simulation found the server's figures differ from its ground truth.
# Each server runs with the scenario's [server] rules as its [audience] table. Everything this
# script starts is stopped by PID on exit; every step is bounded by `timeout`.
#
# Usage: bench/release-day.sh            full scenarios
#   SCALE=0.2 bench/release-day.sh       both curves scaled (12,000 viewers)
#   PEAK_S=150 DAY_S=600 …               shorter arrival windows (--duration-s)
#   DAY_SESSIONS=…                       (not a flag: edit max_sessions for a shorter day)
#   SKIP_PEAK=1 / SKIP_DAY=1             run one half only
#   KILL_AFTER_S=240                     when day-1m's server is killed
#   OUT=bench/out                        where reports and charts go
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${SCALE:-1}
KILL_AFTER_S=${KILL_AFTER_S:-300}
OUT=${OUT:-bench/out}
PORT=${PORT:-18590}
target=${CARGO_TARGET_DIR:-$PWD/target}
mkdir -p "$OUT"
cargo build -q --release -p monsoon -p monsoon-simulate
monsoon=$target/release/monsoon
work=$(mktemp -d /tmp/monsoon-release-day.XXXXXX)
pids=()
server_pid=
cleanup() {
  for p in "${pids[@]}" $server_pid; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}" $server_pid; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# A 60 s 720p film: a real ladder (several rungs) with 6 s segments.
ffmpeg -hide_banner -v error -y -f lavfi -i testsrc2=size=1280x720:rate=25:duration=60 \
  -f lavfi -i sine=frequency=440:duration=60 -c:v libx264 -preset ultrafast -c:a aac -shortest \
  "$work/film.mp4"
"$monsoon" --data "$work/pristine" ingest "$work/film.mp4" --slug release --quality fast >/dev/null 2>&1

# monsoon.toml with the scenario's [server] table as [audience].
config() { # SCENARIO FILE
  {
    # The simulator's viewers all come from 127.0.0.1 (a pool of 1,024 connections and more,
    # as from a CDN): no per-address connection cap.
    printf '[serve]\naccess_log = false\nlisten = "127.0.0.1:%s"\nmax_connections_per_addr = 0\n[audience]\n' "$PORT"
    awk '/^\[server\]/{on=1; next} /^\[/{on=0} on && /=/' "$1"
    # 60,000 viewers: room for every in-flight beat in the writer's queue.
    printf 'queue_limit = 200000\n'
  } > "$2"
}

start_server() { # DATA CONFIG LOG
  "$monsoon" --data "$1" serve --config "$2" >"$3" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    grep -q "listening on" "$3" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "the server did not start; see $3" >&2
  return 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmHWM/{print $2}' "/proc/$1/status"; }

server_usage() { # LABEL START_TICKS START_TIME
  local ticks now hz=$(getconf CLK_TCK)
  ticks=$(cpu_ticks "$server_pid"); now=$(date +%s.%N)
  awk -v l="$1" -v t="$((ticks - $2))" -v hz="$hz" -v s="$(echo "$now - $3" | bc)" -v rss="$(rss_kb "$server_pid")" \
    'BEGIN { printf "%s: server CPU %.0f s in %.0f s (%.0f %% of one core on average), peak RSS %.0f MiB\n", l, t/hz, s, 100*t/hz/s, rss/1024 }'
}

run_peak() {
  cp -a "$work/pristine" "$work/peak"
  config bench/scenarios/peak-60k.toml "$work/peak.toml"
  start_server "$work/peak" "$work/peak.toml" "$OUT/peak-server.log"
  local t0 c0; t0=$(date +%s.%N); c0=$(cpu_ticks "$server_pid")
  echo "== peak-60k (scale $SCALE) against PID $server_pid"
  timeout $(( ${PEAK_S:-300} + 400 )) "$monsoon" simulate --scenario bench/scenarios/peak-60k.toml \
    --url "http://127.0.0.1:$PORT" --film release --scale "$SCALE" ${PEAK_S:+--duration-s "$PEAK_S"} \
    --report "$OUT/peak-60k.json" --plot "$OUT/peak-60k.svg" 2> >(tee "$OUT/peak-60k.progress" >&2) \
    | tee "$OUT/peak-60k.txt" || { echo "peak-60k: simulate exited $?"; failed+=(peak-60k); }
  server_usage peak-60k "$c0" "$t0" | tee -a "$OUT/peak-60k.txt"
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
}

run_day() {
  cp -a "$work/pristine" "$work/day"
  config bench/scenarios/day-1m.toml "$work/day.toml"
  start_server "$work/day" "$work/day.toml" "$OUT/day-server.log"
  local t0 c0; t0=$(date +%s.%N); c0=$(cpu_ticks "$server_pid")
  echo "== day-1m (scale $SCALE) against PID $server_pid; kill -9 after ${KILL_AFTER_S} s"
  timeout $(( ${DAY_S:-1800} + 600 )) "$monsoon" simulate --scenario bench/scenarios/day-1m.toml \
    --url "http://127.0.0.1:$PORT" --film release --scale "$SCALE" ${DAY_S:+--duration-s "$DAY_S"} \
    --report "$OUT/day-1m.json" --plot "$OUT/day-1m.svg" 2> >(tee "$OUT/day-1m.progress" >&2) \
    > "$OUT/day-1m.txt" &
  local sim=$!
  pids+=("$sim")
  sleep "$KILL_AFTER_S"
  if kill -0 "$sim" 2>/dev/null; then
    server_usage "day-1m before kill -9" "$c0" "$t0" | tee "$OUT/day-1m-server.txt"
    echo "== kill -9 $server_pid at $(date +%T)"
    kill -9 "$server_pid"; wait "$server_pid" 2>/dev/null || true
    sleep 2
    start_server "$work/day" "$work/day.toml" "$OUT/day-server-restarted.log"
    echo "== restarted as PID $server_pid at $(date +%T)"
    t0=$(date +%s.%N); c0=$(cpu_ticks "$server_pid")
  fi
  wait "$sim" && echo "day-1m: simulate exited 0" || { echo "day-1m: simulate exited $?"; failed+=(day-1m); }
  cat "$OUT/day-1m.txt"
  server_usage "day-1m after restart" "$c0" "$t0" | tee -a "$OUT/day-1m-server.txt"
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
}

failed=()
[ -n "${SKIP_PEAK:-}" ] || run_peak
[ -n "${SKIP_DAY:-}" ] || run_day
echo "reports, progress logs and charts in $OUT/"
# The simulator exits 1 on any difference from its ground truth, a lost final beat or a
# stranded viewer: then so does this script.
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
