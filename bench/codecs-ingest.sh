#!/usr/bin/env bash
# Ingest time with the AV1 ladder beside H.264 against H.264 alone, same source, same run:
#   h264       `monsoon ingest --codecs h264`       (the default)
#   h264,av1   `monsoon ingest --codecs h264,av1`   (SVT-AV1 beside x264, one decode)
# at 1080p and 2160p (synthetic testsrc2 masters with a tone), QUALITY (default balanced: the
# production presets, x264 medium and SVT-AV1 8). Each ingest must exit 0 and publish (the
# script checks the film's variants in its multivariant playlist: H.264 only, or both
# families); prints wall time per side and the ratio.
#
# Usage: bench/codecs-ingest.sh [SECONDS] [ROUNDS]     e.g. bench/codecs-ingest.sh 10 1
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-10}
rounds=${2:-1}
quality=${QUALITY:-balanced}
cargo build -q --release -p monsoon
monsoon=$PWD/target/release/monsoon

work=$(mktemp -d /tmp/monsoon-codecs-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "| master | codecs | wall s | × real time | H.264 variants | AV1 variants |"
echo "|---|---|---:|---:|---:|---:|"
for height in 1080 2160; do
  width=$((height * 16 / 9))
  src=$work/source-$height.mp4
  ffmpeg -hide_banner -v error -y -f lavfi -i "testsrc2=size=${width}x${height}:rate=25:duration=$seconds" \
    -f lavfi -i "sine=frequency=1000:sample_rate=48000:duration=$seconds" \
    -c:v libx264 -preset ultrafast -crf 16 -pix_fmt yuv420p -c:a aac -b:a 192k -ac 2 "$src"
  declare -A wall=()
  for round in $(seq "$rounds"); do
    order=("h264" "h264,av1")
    [ $((round % 2)) -eq 0 ] && order=("h264,av1" "h264")
    for codecs in "${order[@]}"; do
      data=$work/data-$height-${codecs/,/-}-$round
      start=$(date +%s.%N)
      "$monsoon" --data "$data" ingest "$src" --slug bench --quality "$quality" --codecs "$codecs" \
        --json >"$work/log" 2>&1 || { echo "ingest $codecs $height failed:" >&2; tail -5 "$work/log" >&2; exit 1; }
      end=$(date +%s.%N)
      master=$(ls "$data"/media/bench/v*/master.m3u8)
      h264=$(grep -c 'CODECS="avc1' "$master" || true)
      av1=$(grep -c 'CODECS="av01' "$master" || true)
      [ "$h264" -gt 0 ] || { echo "no H.264 variant in $master" >&2; exit 1; }
      if [ "$codecs" = "h264,av1" ]; then
        [ "$av1" -gt 0 ] || { echo "no AV1 variant in $master" >&2; exit 1; }
      else
        [ "$av1" -eq 0 ] || { echo "AV1 variants without --codecs av1 in $master" >&2; exit 1; }
      fi
      secs=$(echo "$end - $start" | bc -l)
      wall[$codecs]=$(echo "${wall[$codecs]:-0} + $secs" | bc -l)
      printf '| %sp %s s | %s | %.1f | %.2f | %s | %s |\n' "$height" "$seconds" "$codecs" "$secs" \
        "$(echo "$seconds / $secs" | bc -l)" "$h264" "$av1"
      rm -rf "$data"
    done
  done
  printf '\n%sp: h264,av1 / h264 wall time = %.2f (sum over %s rounds)\n\n' "$height" \
    "$(echo "${wall[h264,av1]} / ${wall[h264]}" | bc -l)" "$rounds"
  unset wall
done
