#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/, bodies in crates/fuzzing) with libFuzzer through
# cargo-fuzz, FUZZ_SECONDS each (default 300); `make fuzz` calls this. Installs cargo-fuzz
# when it is missing. Stops at the first crash, which libFuzzer writes to
# fuzz/artifacts/<target>/: fix it, then commit the input to fuzz/corpus/<target>/ so the
# replay test of `make test` keeps it fixed.
#
#   FUZZ_SECONDS=30 make fuzz                  # a short run of every target
#   FUZZ_TARGETS="http_head film_toml" make fuzz
#   FUZZ_SANITIZER=address make fuzz           # AddressSanitizer (needs RUSTC_BOOTSTRAP=1 on stable)
#
# The toolchain is stable Rust. cargo-fuzz passes only stable flags (-Cpasses=sancov-module,
# -Cllvm-args=-sanitizer-coverage-*, --cfg fuzzing, -Cdebug-assertions) unless a sanitizer
# is asked for; the default here is none: the project's code has no `unsafe` (the workspace
# denies it) and panics, overflow included, are what a Rust fuzz target finds.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-300}
sanitizer=${FUZZ_SANITIZER:-none}
targets=${FUZZ_TARGETS:-$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^monsoon-fuzz$')}

# libfuzzer-sys builds libFuzzer, which is C++.
command -v c++ >/dev/null || { echo "a C++ compiler is missing: apt-get install g++" >&2; exit 1; }
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz with cargo install (once)"
  cargo install cargo-fuzz --locked --version 0.13.1
fi
if [ "$sanitizer" != none ]; then
  # -Zsanitizer is unstable: RUSTC_BOOTSTRAP lets the stable compiler take it.
  export RUSTC_BOOTSTRAP=1
fi

# New inputs libFuzzer finds go to a scratch corpus (the first directory); the committed
# seeds (the second) stay small.
work=${CARGO_TARGET_DIR:-target}/fuzz-corpus
for target in $targets; do
  mkdir -p "$work/$target"
  # A dictionary of the format's words (fuzz/dict/) leads libFuzzer past the syntax sooner.
  dict=fuzz/dict/$target.dict
  case $target in http_*) dict=fuzz/dict/http.dict ;; esac
  options=(-max_total_time="$seconds" -print_final_stats=1)
  [ -f "$dict" ] && options+=(-dict="$dict")
  echo "== $target: ${seconds} s"
  cargo fuzz run --sanitizer "$sanitizer" "$target" "$work/$target" "fuzz/corpus/$target" -- \
    "${options[@]}"
done
