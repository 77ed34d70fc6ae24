#!/usr/bin/env bash
# Every check CI runs: formatting, clippy, and all tests (against real nats-server and Postgres
# processes the tests start on free ports).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
scripts/check-deploy.sh
profile=default
[ "${CI:-}" = "true" ] && profile=ci
cargo nextest run --workspace --locked --no-fail-fast --profile "$profile"
