#!/usr/bin/env bash
# What a script can add to a film's audience figures, with one core for 60 s, against a real
# `monsoon serve` with the production rules (docs/AUDIENCE.md, docs/SECURITY.md); then
# 10,000 honest viewers behind the same single address, which must all be counted exactly.
#
# Each attack is `monsoon inflate` pinned to one core (`taskset -c 1`), on a film of its own;
# what it gained is the server's own figures for that film after the attack (views, and
# concurrent viewers while its sessions were still beating), read from /stats:
#   single-claim  the probe's attack: one beat claiming a whole view, 28.8 s after minting
#   one-viewer    every session under one viewer id, each playing by the rules
#   protocol      a fresh viewer per session, every rule followed, playing time as fast as the
#                 plausibility rule allows; the most a script can get without real phones
# Then `monsoon simulate` runs bench/scenarios/nat-10k.toml (10,000 viewers, one address,
# production proof of work) against the same server and must report no difference.
#
# Usage: bench/inflate.sh [SECONDS]     (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
cargo build -q --release -p monsoon -p monsoon-simulate
monsoon=$PWD/target/release/monsoon
work=$(mktemp -d /tmp/monsoon-inflate.XXXXXX)
server=
# Wait for the server to be gone: a draining server still on the port (SO_REUSEPORT) would
# take connections of the next run.
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT

ffmpeg -hide_banner -v error -y -f lavfi -i testsrc2=size=640x360:rate=25:duration=20 \
  -f lavfi -i sine=duration=20 -c:v libx264 -preset ultrafast -c:a aac -shortest "$work/film.mp4"
for slug in honest single-claim one-viewer protocol; do
  "$monsoon" --data "$work/data" ingest "$work/film.mp4" --slug "$slug" --quality fast >/dev/null 2>&1
done
port=18620
printf '[serve]\naccess_log = false\n' > "$work/monsoon.toml"
"$monsoon" --data "$work/data" serve --config "$work/monsoon.toml" --listen 127.0.0.1:$port \
  > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q "listening on" "$work/server.log" && break; sleep 0.1; done
url=http://127.0.0.1:$port

stat() { curl -sf "$url/api/v1/films/$1/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }

table=$work/table.md
{
  echo "| strategy | seconds | sessions minted | proof CPU s | beats sent | accepted | views added | views / min / core | concurrent viewers added | suspicious sessions |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} > "$table"
for strategy in single-claim one-viewer protocol; do
  echo "attack: $strategy for $seconds s on one core…" >&2
  out=$(taskset -c 1 "$monsoon" inflate --url "$url" --film "$strategy" --strategy "$strategy" --seconds "$seconds")
  echo "$out" >> "$OUT/inflate.jsonl"
  # Concurrency while the attack's sessions are still live (the last beats are < 10 s old).
  concurrent=$(stat "$strategy" concurrent_viewers)
  sleep 2 # the last heartbeats' commits
  views=$(stat "$strategy" views)
  suspicious=$(stat "$strategy" suspicious_sessions)
  python3 - "$out" "$views" "$concurrent" "$suspicious" "$strategy" >> "$table" <<'PY'
import json, sys
t, views, concurrent, suspicious, strategy = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
print(f"| {strategy} | {t['seconds']:.0f} | {t['sessions']:,} | {t['proof_s']:.1f} | {t['beats']:,} | {t['accepted']:,} "
      f"| {views:,} | {views / (t['seconds'] / 60):.0f} | {concurrent} | {suspicious} |")
PY
done

echo "honest: 10,000 viewers behind one address (bench/scenarios/nat-10k.toml)…" >&2
status=0
"$monsoon" simulate --scenario bench/scenarios/nat-10k.toml --url "$url" --film honest \
  --report "$OUT/nat-10k.json" > "$OUT/nat-10k.txt" 2> "$OUT/nat-10k.progress" || status=$?

echo
echo "proof_bits $(curl -sf -X POST "$url/api/v1/films/honest/sessions" | python3 -c 'import json,sys; print(json.load(sys.stdin)["proof_bits"])'); one core per attack (taskset -c 1); $seconds s each"
echo
cat "$table"
echo
cat "$OUT/nat-10k.txt"
if [ "$status" -ne 0 ]; then
  echo "FAILED: the honest viewers were not counted exactly (monsoon simulate exited $status)" >&2
  exit 1
fi
