#!/usr/bin/env bash
# A bounded pass of every fuzz target (fuzz/, cargo-fuzz): builds them all, then runs each for
# FUZZ_SECONDS (default 60) from the corpus in the repository. The corpus is copied to a scratch
# directory first, so a run never grows the repository's. Every target runs; the script then exits
# non-zero if any crashed (a panic or a broken property), naming each reproducer (under
# fuzz/artifacts/, which git ignores) and the command that runs it again.
#
# Needs cargo-fuzz (scripts/setup.sh installs it) and a C++ compiler (libfuzzer-sys builds libFuzzer).
# Works on a stable toolchain: with --sanitizer none, cargo-fuzz 0.13 passes rustc only -C flags;
# RUSTC_BOOTSTRAP=1 lets the -Z flags of its other modes (a sanitizer, --build-std) through too.
# It is set for every build alike: switching it on or off makes cargo rebuild every crate.
#
#   scripts/fuzz.sh                      every target, 60 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh     longer
#   scripts/fuzz.sh http_binary          only the targets named
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
# No sanitizer (the code is safe Rust; ASan would only slow the search), debug assertions and
# overflow checks on. The same flags for build and run, or cargo fuzz rebuilds.
flags=(--sanitizer none --debug-assertions)
export RUSTC_BOOTSTRAP=1
# Not the main workspace's target/: other flags, other artifacts.
export CARGO_TARGET_DIR="$PWD/fuzz/target"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz is not installed (scripts/setup.sh installs it)" >&2
  exit 2
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

echo "fuzz: building ${targets[*]}"
cargo fuzz build "${flags[@]}"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=()
for target in "${targets[@]}"; do
  corpus="$scratch/corpus/$target"
  mkdir -p "$corpus"
  if [ -d "fuzz/corpus/$target" ]; then
    cp -R "fuzz/corpus/$target/." "$corpus/"
  fi
  log="$scratch/$target.log"
  echo "fuzz: $target for ${seconds}s ($(find "$corpus" -type f | wc -l) inputs in the corpus)"
  # -max_total_time bounds the run; -timeout and -rss_limit_mb turn a hang or a runaway allocation
  # into a crash with a reproducer rather than a stalled CI. cargo fuzz writes reproducers to
  # fuzz/artifacts/<target>/, so that they outlive the scratch directory.
  set +e
  cargo fuzz run "${flags[@]}" "$target" "$corpus" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
  status=$?
  set -e
  grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" | sed "s/^/fuzz: $target: /" || true
  if [ "$status" -ne 0 ]; then
    mkdir -p "fuzz/artifacts/$target"
    cp "$log" "fuzz/artifacts/$target/fuzz.log"
    echo "fuzz: $target FAILED (exit $status); its log is fuzz/artifacts/$target/fuzz.log" >&2
    if grep -q 'panicked at' "$log"; then
      # The panic's message says which property broke; then libFuzzer's summary of the input.
      sed -n '/panicked at/,/^stack backtrace:/p' "$log" | grep -v '^stack backtrace:' | head -n 40 >&2
      grep -E '^(SUMMARY|Base64):' "$log" >&2 || true
    else
      tail -n 40 "$log" >&2
    fi
    while IFS= read -r path; do
      echo "fuzz: reproducer: $path" >&2
      echo "fuzz: run it again: RUSTC_BOOTSTRAP=1 cargo fuzz run ${flags[*]} $target $path" >&2
    done < <(grep -oE 'Test unit written to [^ ]+' "$log" | sed 's/^Test unit written to //')
    failed+=("$target")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no crash"
