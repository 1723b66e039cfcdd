#!/usr/bin/env bash
# Builds Netflix's `vmaf` command-line tool (libvmaf 2.3.1) once into a cache outside the
# repository and prints its path. Sourced or run by bench/quality.sh; nothing it builds is
# linked into Monsoon or committed.
#
# Debian's ffmpeg 5.1 is built without libvmaf, so the metric comes from the upstream tool.
# Its source, with the tool and the models, is taken from the `libvmaf-sys` crate (a Rust
# crate that vendors libvmaf), fetched as a plain .crate archive and checked against the
# sha256 the crates.io index publishes for it. It is built with Debian's meson, ninja and nasm
# with the default models compiled in (`built_in_models`), so `--model version=vmaf_v0.6.1`
# needs no model file (libvmaf/README.md of github.com/Netflix/vmaf, "built-in models").
#
# Usage: bench/lib/vmaf.sh            prints the path of the vmaf binary, building it if needed
#        VMAF_CACHE=/dir bench/lib/vmaf.sh
set -euo pipefail

crate_version=0.4.4            # vendors libvmaf v2.3.1
crate_sha256=8b053ec5f32c6ba5ae9a51d2bbef0abd35e34033ad83c7b331bfec3e04df79a6
cache=${VMAF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/monsoon-bench/vmaf}
bin=$cache/libvmaf-sys-$crate_version/build/tools/vmaf

if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

for tool in meson ninja nasm cc c++ curl; do
  command -v "$tool" >/dev/null || missing="${missing:-} $tool"
done
if [ -n "${missing:-}" ]; then
  echo "vmaf.sh: installing meson ninja-build nasm (missing:$missing)…" >&2
  apt-get update -qq >&2 && apt-get install -y -qq meson ninja-build nasm g++ curl >&2
fi

mkdir -p "$cache"
crate=$cache/libvmaf-sys-$crate_version.crate
if [ ! -s "$crate" ]; then
  echo "vmaf.sh: downloading libvmaf-sys $crate_version…" >&2
  # The registry's static file host first (what its download endpoint redirects to), then
  # the API's download endpoint itself.
  curl -fsSL --retry 3 -o "$crate.part" \
    "https://static.crates.io/crates/libvmaf-sys/libvmaf-sys-$crate_version.crate" ||
    curl -fsSL --retry 3 -o "$crate.part" \
      "https://crates.io/api/v1/crates/libvmaf-sys/$crate_version/download"
  mv "$crate.part" "$crate"
fi
echo "$crate_sha256  $crate" | sha256sum -c --quiet - >&2 ||
  { echo "vmaf.sh: checksum mismatch for $crate" >&2; rm -f "$crate"; exit 1; }

src=$cache/libvmaf-sys-$crate_version
rm -rf "$src"
tar -xzf "$crate" -C "$cache" "libvmaf-sys-$crate_version/vmaf"
echo "vmaf.sh: building libvmaf and the vmaf tool (a minute or two)…" >&2
meson setup "$src/build" "$src/vmaf/libvmaf" --buildtype=release \
  -Denable_tests=false -Denable_docs=false -Dbuilt_in_models=true -Ddefault_library=static \
  >"$cache/meson.log" 2>&1 || { tail -20 "$cache/meson.log" >&2; exit 1; }
ninja -C "$src/build" tools/vmaf >"$cache/ninja.log" 2>&1 ||
  { tail -20 "$cache/ninja.log" >&2; exit 1; }
"$bin" --version >&2 || { echo "vmaf.sh: $bin does not run" >&2; exit 1; }
echo "$bin"
