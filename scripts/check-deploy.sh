#!/usr/bin/env bash
# Validates the deployment files with tools nobody here wrote, pinned and installed by
# scripts/setup.sh (into QUORUM_DEPLOY_TOOLS, default ~/.cache/quorum-deploy-tools):
# - docker-compose.yml against the Compose Specification (check-jsonschema's vendor.compose-spec);
# - every overlay under deploy/k8s/overlays renders with `kubectl kustomize`;
# - every rendered object of a built-in kind validates with kubernetes-validate --strict, against
#   the oldest Kubernetes version the manifests support and the newest the validator knows;
# - every KEDA ScaledObject validates against the CRD's schema (deploy/k8s/schemas/), with
#   check-jsonschema; an object of any other kind fails the check.
# - deploy/observability (docs/adr/0029-observability-stack.md): promtool checks the Prometheus
#   config and its rule files, runs the rules' unit tests (prometheus/tests), and parses every
#   query of the Grafana dashboard (as recording rules); tsc type-checks the dashboard against
#   Grafana's published types (@grafana/schema); scripts/check-observability.py checks that every
#   metric named is one the services export, that compose, Prometheus and Grafana agree, and the
#   collector config's structure (no collector binary can be installed to validate it).
# The tests in tests/tests/deploy_stack then run the services as these files say.
set -euo pipefail
cd "$(dirname "$0")/.."

tools="${QUORUM_DEPLOY_TOOLS:-$HOME/.cache/quorum-deploy-tools}"
export PATH="$tools/bin:$PATH"
# Kubernetes versions the manifests are checked against: the oldest supported (sleep preStop hooks
# and matchLabelKeys in spread constraints are on by default from 1.30) and the validator's newest.
K8S_VERSIONS=(1.31.0 1.37.0)
KEDA_SCHEMA=deploy/k8s/schemas/keda-scaledobject-v1alpha1.json

say() { printf 'check-deploy: %s\n' "$*"; }
need() {
  command -v "$1" >/dev/null 2>&1 || { say "$1 not found: run scripts/setup.sh"; exit 1; }
}
need check-jsonschema
need kubernetes-validate
need kubectl
need promtool
need node
tsc="$tools/node/node_modules/.bin/tsc"
[ -x "$tsc" ] || { say "tsc not found in $tools/node: run scripts/setup.sh"; exit 1; }
python="$tools/bin/python3"
[ -x "$python" ] || python=python3

say "check-jsonschema $(check-jsonschema --version | awk '{print $NF}'), kubernetes-validate $(kubernetes-validate --version), $(kubectl version --client 2>/dev/null | tr '\n' ' ')"
say "$(promtool --version 2>&1 | head -1), tsc $("$tsc" --version | awk '{print $NF}'), @grafana/schema $(node -p "require('$tools/node/node_modules/@grafana/schema/package.json').version")"

say "docker-compose.yml (and the observability file it includes) against the Compose Specification"
check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml deploy/observability/compose.yml

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

say "observability: promtool check config (and the rule files it loads)"
promtool check config deploy/observability/prometheus/prometheus.yml
say "observability: promtool test rules"
(cd deploy/observability/prometheus && promtool test rules tests/*.yml)
say "observability: metric names, compose, Prometheus, Grafana and collector agree"
mkdir -p "$work/observability"
"$python" scripts/check-observability.py "$work/observability"
say "observability: every dashboard query parsed by promtool"
promtool check rules "$work/observability/dashboard-rules.yml"
say "observability: the dashboard against @grafana/schema's Dashboard type (tsc --strict)"
ln -s "$tools/node/node_modules" "$work/observability/ts/node_modules"
"$tsc" --noEmit --strict --target es2022 --module esnext --moduleResolution bundler --skipLibCheck \
  "$work/observability/ts/dashboard.ts"
for overlay in deploy/k8s/overlays/*/; do
  name="$(basename "$overlay")"
  say "overlay $name: kubectl kustomize"
  kubectl kustomize "$overlay" >"$work/$name.yaml"
  mkdir -p "$work/$name/builtin" "$work/$name/keda"
  # One file per object, split by kind: KEDA's to check-jsonschema, the rest to kubernetes-validate.
  "$python" - "$work/$name.yaml" "$work/$name" <<'PY'
import sys, yaml
rendered, out = sys.argv[1], sys.argv[2]
count = 0
for i, doc in enumerate(d for d in yaml.safe_load_all(open(rendered)) if d):
    group = doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else ""
    where = "keda" if group == "keda.sh" else "builtin"
    if where == "keda" and doc["kind"] != "ScaledObject":
        sys.exit(f"no schema for {doc['apiVersion']} {doc['kind']}")
    with open(f"{out}/{where}/{i:03d}-{doc['kind']}-{doc['metadata']['name']}.yaml", "w") as f:
        yaml.safe_dump(doc, f)
    count += 1
print(f"{count} objects")
PY
  for version in "${K8S_VERSIONS[@]}"; do
    say "overlay $name: kubernetes-validate --strict -k $version"
    # It only warns about a kind it has no schema for; here that is a failure.
    if ! kubernetes-validate --strict --quiet -k "$version" "$work/$name"/builtin/*.yaml 2>&1 | tee "$work/kv.log"; then
      exit 1
    fi
    if grep -q . "$work/kv.log"; then
      say "kubernetes-validate reported the above"
      exit 1
    fi
  done
  say "overlay $name: ScaledObjects against $KEDA_SCHEMA"
  check-jsonschema --schemafile "$KEDA_SCHEMA" "$work/$name"/keda/*.yaml
done
say "ok"
