#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, demo and test Monsoon.
# Idempotent: each package is installed only when its command is missing.
set -euo pipefail

need_apt=()
command -v ffmpeg >/dev/null || need_apt+=(ffmpeg)
command -v ffprobe >/dev/null || need_apt+=(ffmpeg)
command -v node >/dev/null || need_apt+=(nodejs npm)
command -v cc >/dev/null || need_apt+=(build-essential)
command -v curl >/dev/null || need_apt+=(curl)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
# The viewer app's browser tests drive Debian's Chromium (never a downloaded browser).
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
# The origin's conformance suite runs against nginx too, and tests the nginx cache tier; it
# looks for nginx where this does (the PATH, then /usr/sbin) and fails without it.
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
# The PostgreSQL backends are tested against throw-away clusters of PostgreSQL 15
# (crates/engines/src/postgres.rs looks in /usr/lib/postgresql/<major>/bin).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# The client-compatibility tests (crates/monsoon/tests/clients.rs) decode every stream with
# GStreamer too: gst-launch-1.0, souphttpsrc and the HLS/DASH demuxers of playbin3 (good), the
# older HLS/DASH demuxers (bad) and the H.264/AAC decoders (libav).
gst=/usr/lib/$(uname -m)-linux-gnu/gstreamer-1.0
command -v gst-launch-1.0 >/dev/null || need_apt+=(gstreamer1.0-tools)
[ -e "$gst/libgstadaptivedemux2.so" ] || need_apt+=(gstreamer1.0-plugins-good)
[ -e "$gst/libgstdash.so" ] || need_apt+=(gstreamer1.0-plugins-bad)
[ -e "$gst/libgstlibav.so" ] || need_apt+=(gstreamer1.0-libav)
# `make cluster` (scripts/cluster.sh) reads Garage's JSON answers with jq.
command -v jq >/dev/null || need_apt+=(jq)

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing: ${need_apt[*]}; run as root or: sudo apt-get install ${need_apt[*]}" >&2
    exit 1
  fi
  echo "installing ${need_apt[*]} with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# The API's OpenAPI document is fuzzed by schemathesis in the tests.
if ! python3 -c "import schemathesis" 2>/dev/null; then
  echo "installing schemathesis with pip"
  python3 -m pip install -q schemathesis
fi

if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install Rust with rustup (https://rustup.rs), then run this again" >&2
  exit 1
fi

# The S3 media store's tests run against a real Garage (crates/engines/src/garage.rs), which
# looks for `garage` where this does: the PATH, then ~/.cargo/bin. Building it takes about 20
# minutes on 2 cores; CI keeps ~/.cargo/bin (where this machine keeps it), so that is once.
if ! command -v garage >/dev/null && [ ! -x "$HOME/.cargo/bin/garage" ]; then
  echo "installing garage 2.5.0 with cargo install (about 20 minutes on 2 cores)"
  cargo install garage --locked --version 2.5.0
fi
