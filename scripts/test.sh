#!/usr/bin/env bash
# Every check CI runs: formatting, clippy, the deployment files' validators, all tests (against
# real nats-server and Postgres processes the tests start on free ports), and a bounded pass of
# every fuzz target (FUZZ_SECONDS each, 60 by default).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=default
if [ "${CI:-}" = "true" ]; then
  profile=ci
  # A fresh clone builds once: incremental state would only take disk (about 3 GB) and time.
  export CARGO_INCREMENTAL=0
fi
# The free disk before each build, so that a build that runs out of it says so in the log.
disk() { echo "disk: $(df -h --output=avail . | tail -n 1 | tr -d ' ') free before $1"; }
cargo fmt --all --check
disk "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
scripts/check-deploy.sh
disk "the tests"
cargo nextest run --workspace --locked --no-fail-fast --profile "$profile"
if [ "${CI:-}" = "true" ]; then
  # The fuzz targets build in a workspace of their own (fuzz/target, about 2.2 GB). CI's machine
  # is thrown away after the run, so the tests' build (about 2.6 GB) goes first: the disk then
  # holds one build at a time.
  rm -rf target/debug
fi
disk "the fuzz targets"
scripts/fuzz.sh
