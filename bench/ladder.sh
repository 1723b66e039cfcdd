#!/usr/bin/env bash
# Ladder encoding, three ways, on the same source and the same rungs, in one run:
#   monsoon      `monsoon ingest --quality fast` (release build; one ffmpeg, one decode, every
#                rung, two audio renditions, thumbnails, poster, packaging, verification, fsync)
#   per-rung     one ffmpeg per rung, one after another, each decoding the source again and
#                encoding its video and the audio (PeerTube's way)
#   hand-written one ffmpeg with a split filter and -var_stream_map (every rung, one audio)
# Every side encodes each rung with exactly Monsoon's x264 options (preset, profile, level,
# rate control, GOP, x264-params including lookahead-threads=1): the script reads them from
# the `planned` event of `monsoon ingest --json` rather than restating them, and the peers
# scale with the same bicubic scaler. Segments are 6 s fMP4 on every side.
#
# ROUNDS rounds (default 3), the order of the three rotating from round to round; prints each
# round, then per side the median and the min-max of wall time, CPU time and peak RSS, and
# the ratios of the medians with each round's. Every round is recorded in $OUT/ladder.jsonl.
#
# Usage: bench/ladder.sh [HEIGHT] [SECONDS] [ROUNDS]   e.g. bench/ladder.sh 1080 60; bench/ladder.sh 2160 30
set -euo pipefail
cd "$(dirname "$0")/.."

height=${1:-1080}
seconds=${2:-60}
rounds=${3:-3}
width=$((height * 16 / 9))
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build -q --release -p monsoon
monsoon=$PWD/target/release/monsoon

work=$(mktemp -d /tmp/monsoon-ladder-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
src=$work/source.mp4
echo "making a $seconds s ${width}x${height} 25 fps source…" >&2
ffmpeg -hide_banner -v error -y -f lavfi -i "testsrc2=size=${width}x${height}:rate=25:duration=$seconds" \
  -f lavfi -i "sine=frequency=1000:sample_rate=48000:duration=$seconds" \
  -c:v libx264 -preset veryfast -crf 18 -pix_fmt yuv420p -c:a aac -b:a 192k -ac 2 "$src"

# measure NAME ROUND CMD…: runs CMD, appends "wall cpu maxrss_kb" to $work/NAME.ROUND.
measure() {
  local name=$1 round=$2; shift 2
  /usr/bin/time -f "%e %U %S %M" -o "$work/one" "$@" >"$work/$name.out" 2>"$work/$name.err" ||
    { echo "$name failed:" >&2; tail -5 "$work/$name.err" >&2; exit 1; }
  awk '{printf "%s %.2f %s\n", $1, $2 + $3, $4}' "$work/one" >> "$work/$name.$round"
}

# The plan, read once from a first ingest that is not timed: sizes and encoder options.
"$monsoon" --data "$work/plan" ingest "$src" --slug plan --quality fast --json > "$work/plan.json"
rm -rf "$work/plan"
mapfile -t sizes < <(python3 -c '
import json, sys
plan = next(e for e in map(json.loads, open(sys.argv[1])) if e.get("event") == "planned")
for r in plan["rungs"]: print(r.split("@")[0])' "$work/plan.json")
mapfile -t encoders < <(python3 -c '
import json, sys
plan = next(e for e in map(json.loads, open(sys.argv[1])) if e.get("event") == "planned")
for args in plan["encoders"]: print(" ".join(args))' "$work/plan.json")
echo "ladder: ${sizes[*]}" >&2
hls="-f hls -hls_time 6 -hls_playlist_type vod -hls_segment_type fmp4"

run_monsoon() { # ROUND
  rm -rf "$work/data"
  measure monsoon "$1" "$monsoon" --data "$work/data" ingest "$src" --slug bench --quality fast --json
}

run_per_rung() { # ROUND
  rm -rf "$work/out-per-rung"
  local i size dir
  for i in "${!sizes[@]}"; do
    size=${sizes[$i]}; dir=$work/out-per-rung/$size; mkdir -p "$dir"
    # shellcheck disable=SC2086
    measure per-rung "$1" ffmpeg -hide_banner -v error -y -i "$src" \
      -vf "format=yuv420p,scale=${size/x/:}:flags=bicubic,setsar=1" ${encoders[$i]} \
      -c:a aac -b:a 128k -ac 2 -ar 48000 $hls -hls_segment_filename "$dir/seg_%05d.m4s" "$dir/index.m3u8"
  done
}

run_hand_written() { # ROUND
  rm -rf "$work/out-hand"; mkdir -p "$work/out-hand"
  local n=${#sizes[@]} i graph maps=() streams="" enc=()
  graph="[0:v]format=yuv420p,split=$n"
  for i in $(seq 0 $((n - 1))); do graph+="[s$i]"; done
  for i in $(seq 0 $((n - 1))); do
    graph+=";[s$i]scale=${sizes[$i]/x/:}:flags=bicubic,setsar=1[v$i]"
    # Monsoon's options, each made specific to output stream v:i.
    read -ra enc <<<"${encoders[$i]}"
    maps+=(-map "[v$i]")
    local k
    for ((k = 0; k < ${#enc[@]}; k += 2)); do maps+=("${enc[$k]%:v}:v:$i" "${enc[$((k + 1))]}"); done
    streams+="v:$i,agroup:aud "
  done
  # shellcheck disable=SC2086
  measure hand-written "$1" ffmpeg -hide_banner -v error -y -i "$src" -filter_complex "$graph" "${maps[@]}" \
    -map 0:a -c:a aac -b:a 128k -ac 2 -ar 48000 \
    -var_stream_map "${streams}a:0,agroup:aud" $hls -master_pl_name master.m3u8 \
    -hls_segment_filename "$work/out-hand/%v/seg_%05d.m4s" "$work/out-hand/%v/index.m3u8"
}

# x264_options FILE → the options x264 wrote into the stream (its SEI), sorted, one per line
x264_options() { grep -a -o 'options: [^[:cntrl:]]*' "$1" | head -1 | tr ' ' '\n' | sed 1d | sort; }

# Checks that the three sides encoded every rung with the same x264 options (the stream says
# which it used), so the comparison is of the same work.
check_same_options() {
  local i dir m h p
  for i in "${!sizes[@]}"; do
    dir=$(ls -d "$work"/data/media/bench/v*/)
    m=$dir/v${sizes[$i]#*x}/seg_00000.m4s
    h=$work/out-hand/$i/seg_00000.m4s
    p=$work/out-per-rung/${sizes[$i]}/seg_00000.m4s
    [ -n "$(x264_options "$m")" ] || { echo "ladder.sh: no x264 options found in $m" >&2; exit 1; }
    if ! diff <(x264_options "$m") <(x264_options "$h") >/dev/null ||
       ! diff <(x264_options "$m") <(x264_options "$p") >/dev/null; then
      echo "ladder.sh: rung ${sizes[$i]} was not encoded alike:" >&2
      diff <(x264_options "$m") <(x264_options "$h") >&2 || true
      diff <(x264_options "$m") <(x264_options "$p") >&2 || true
      exit 1
    fi
  done
  echo "every rung encoded with identical x264 options on all three sides" >&2
}

# total NAME ROUND → "wall cpu peak_rss_mb" of one round (per-rung: summed over its processes)
total() { awk '{w += $1; c += $2; if ($3 > m) m = $3} END {printf "%.1f %.1f %d", w, c, m / 1024}' "$work/$1.$2"; }

sides=(monsoon hand-written per-rung)
for ((round = 1; round <= rounds; round++)); do
  # Rotate the order so that no side always runs first (or last) on a drifting machine.
  for ((k = 0; k < 3; k++)); do
    name=${sides[$(((k + round - 1) % 3))]}
    echo "round $round: $name…" >&2
    case $name in
      monsoon) run_monsoon "$round" ;;
      hand-written) run_hand_written "$round" ;;
      per-rung) run_per_rung "$round" ;;
    esac
  done
  [ "$round" = 1 ] && check_same_options
  for name in "${sides[@]}"; do
    read -r w c m <<<"$(total "$name" "$round")"
    printf '{"bench":"ladder","height":%s,"seconds":%s,"round":%s,"side":"%s","wall_s":%s,"cpu_s":%s,"peak_rss_mb":%s}\n' \
      "$height" "$seconds" "$round" "$name" "$w" "$c" "$m" | tee -a "$OUT/ladder.jsonl" >&2
  done
done

echo
echo "source: $seconds s ${width}x${height} 25 fps; ladder: ${sizes[*]}; x264 $(awk '{print $4}' <<<"${encoders[0]}"); $(nproc) cores; $rounds rounds"
python3 - "$work" "$rounds" <<'PY'
import statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
runs = {}
for side in ("monsoon", "hand-written", "per-rung"):
    runs[side] = []
    for r in range(1, rounds + 1):
        rows = [list(map(float, line.split())) for line in open(f"{work}/{side}.{r}")]
        runs[side].append((sum(x[0] for x in rows), sum(x[1] for x in rows), max(x[2] for x in rows) / 1024))
print(f"| | wall s | CPU s | peak RSS MB |")
print(f"|---|---:|---:|---:|")
for side, rs in runs.items():
    cells = []
    for i in range(3):
        v = [r[i] for r in rs]
        cells.append(f"{statistics.median(v):.1f} ({min(v):.1f}-{max(v):.1f})" if i < 2 else f"{statistics.median(v):.0f}")
    print(f"| {side} | " + " | ".join(cells) + " |")
def ratio(a, b, label, goal):
    per = [x[0] / y[0] for x, y in zip(runs[a], runs[b])]
    med = statistics.median(r[0] for r in runs[a]) / statistics.median(r[0] for r in runs[b])
    print(f"{label}: {med:.3f} (rounds {' '.join(f'{x:.3f}' for x in per)}; goal {goal})")
ratio("monsoon", "hand-written", "monsoon / hand-written wall", "<= 1.05")
ratio("per-rung", "monsoon", "per-rung / monsoon wall", ">= 1.8")
PY
