#!/usr/bin/env bash
# Ladder encoding, three ways, on the same source and the same rungs, in one run:
#   monsoon      `monsoon ingest --quality fast` (one ffmpeg, one decode, every rung, two
#                audio renditions, thumbnails, poster, packaging, verification, fsync)
#   per-rung     one ffmpeg per rung, one after another, each decoding the source again and
#                encoding its video and the audio (PeerTube's way)
#   hand-written one ffmpeg with a split filter and -var_stream_map (every rung, one audio)
# All use x264 `veryfast`, the same bit rates, 2 s closed GOPs and 6 s fMP4 segments.
# Prints wall seconds, CPU seconds and peak RSS of each, and the ratios.
#
# Usage: bench/ladder.sh [HEIGHT] [SECONDS]    e.g. bench/ladder.sh 1080 60; bench/ladder.sh 2160 30
set -euo pipefail
cd "$(dirname "$0")/.."

height=${1:-1080}
seconds=${2:-60}
width=$((height * 16 / 9))
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build -q -p monsoon
monsoon=$PWD/target/debug/monsoon

work=$(mktemp -d /tmp/monsoon-ladder-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
src=$work/source.mp4
echo "making a $seconds s ${width}x${height} 25 fps source…" >&2
ffmpeg -hide_banner -v error -y -f lavfi -i "testsrc2=size=${width}x${height}:rate=25:duration=$seconds" \
  -f lavfi -i "sine=frequency=1000:sample_rate=48000:duration=$seconds" \
  -c:v libx264 -preset veryfast -crf 18 -pix_fmt yuv420p -c:a aac -b:a 192k -ac 2 "$src"

# measure NAME CMD…: runs CMD, appends "wall cpu maxrss_kb" to $work/NAME, keeps its stdout.
measure() {
  local name=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$work/$name.one" "$@" >"$work/$name.out" 2>"$work/$name.err" ||
    { echo "$name failed:" >&2; tail -5 "$work/$name.err" >&2; exit 1; }
  awk '{printf "%s %.2f %s\n", $1, $2 + $3, $4}' "$work/$name.one" >> "$work/$name"
}

echo "monsoon ingest…" >&2
measure monsoon "$monsoon" --data "$work/data" ingest "$src" --slug bench --quality fast --json
# Monsoon's planned ladder ("WxH@Nk" per rung) drives the other two.
mapfile -t rungs < <(head -1 "$work/monsoon.out" | grep -o '"[0-9]*x[0-9]*@[0-9]*k"' | tr -d '"')
echo "ladder: ${rungs[*]}" >&2

# Average, max rate and buffer (kbit/s) per rung, as Monsoon's planner sets them
# (the 2G floor has a tight VBV).
rates() { # WxH@Nk → "avg max buf"
  local kbps=${1#*@}; kbps=${kbps%k}
  if [ "$kbps" = 110 ]; then echo "110 128 64"; else echo "$kbps $((kbps * 3 / 2)) $((kbps * 2))"; fi
}
common="-c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p -force_key_frames expr:gte(t,n_forced*2) -x264-params keyint=50:min-keyint=50:scenecut=0:open-gop=0"
hls="-f hls -hls_time 6 -hls_playlist_type vod -hls_segment_type fmp4"

echo "one ffmpeg per rung…" >&2
for rung in "${rungs[@]}"; do
  size=${rung%@*}; dir=$work/out-per-rung/${size}; mkdir -p "$dir"
  read -r avg max buf <<<"$(rates "$rung")"
  # shellcheck disable=SC2086
  measure per-rung ffmpeg -hide_banner -v error -y -i "$src" -vf "scale=${size/x/:}" $common \
    -b:v "${avg}k" -maxrate "${max}k" -bufsize "${buf}k" \
    -c:a aac -b:a 128k -ac 2 -ar 48000 $hls -hls_segment_filename "$dir/seg_%05d.m4s" "$dir/index.m3u8"
done

echo "one hand-written ffmpeg…" >&2
n=${#rungs[@]}
graph="[0:v]split=$n"; for i in $(seq 0 $((n - 1))); do graph+="[s$i]"; done
maps=(); streams=""
for i in $(seq 0 $((n - 1))); do
  size=${rungs[$i]%@*}
  graph+=";[s$i]scale=${size/x/:}[v$i]"
  read -r avg max buf <<<"$(rates "${rungs[$i]}")"
  maps+=(-map "[v$i]" "-b:v:$i" "${avg}k" "-maxrate:v:$i" "${max}k" "-bufsize:v:$i" "${buf}k")
  streams+="v:$i,agroup:aud "
done
mkdir -p "$work/out-hand"
# shellcheck disable=SC2086
measure hand-written ffmpeg -hide_banner -v error -y -i "$src" -filter_complex "$graph" "${maps[@]}" \
  -map 0:a -c:a aac -b:a 128k -ac 2 -ar 48000 $common \
  -var_stream_map "${streams}a:0,agroup:aud" $hls -master_pl_name master.m3u8 \
  -hls_segment_filename "$work/out-hand/%v/seg_%05d.m4s" "$work/out-hand/%v/index.m3u8"

sum() { awk '{w += $1; c += $2; if ($3 > m) m = $3} END {printf "%.1f %.1f %d", w, c, m / 1024}' "$work/$1"; }
read -r mw mc mm <<<"$(sum monsoon)"
read -r pw pc pm <<<"$(sum per-rung)"
read -r hw hc hm <<<"$(sum hand-written)"
echo
echo "source: $seconds s ${width}x${height} 25 fps; ladder: ${rungs[*]}; x264 veryfast; $(nproc) cores"
printf "%-14s %10s %10s %12s\n" "" "wall s" "CPU s" "peak RSS MB"
printf "%-14s %10s %10s %12s\n" monsoon "$mw" "$mc" "$mm"
printf "%-14s %10s %10s %12s\n" hand-written "$hw" "$hc" "$hm"
printf "%-14s %10s %10s %12s\n" per-rung "$pw" "$pc" "$pm"
awk -v m="$mw" -v h="$hw" -v p="$pw" 'BEGIN {
  printf "monsoon / hand-written wall: %.3f (goal <= 1.05)\n", m / h
  printf "per-rung / monsoon wall:     %.2fx faster (goal >= 1.8)\n", p / m }'
