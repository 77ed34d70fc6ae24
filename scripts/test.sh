#!/usr/bin/env bash
# Every check CI runs: formatting, clippy, the deployment files' validators, all tests (against
# real nats-server and Postgres processes the tests start on free ports), and a bounded pass of
# every fuzz target (FUZZ_SECONDS each, 60 by default).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
scripts/check-deploy.sh
profile=default
[ "${CI:-}" = "true" ] && profile=ci
cargo nextest run --workspace --locked --no-fail-fast --profile "$profile"
scripts/fuzz.sh
