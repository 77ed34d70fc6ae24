#!/usr/bin/env bash
# Validates the deployment files with tools nobody here wrote, pinned and installed by
# scripts/setup.sh (into QUORUM_DEPLOY_TOOLS, default ~/.cache/quorum-deploy-tools):
# - docker-compose.yml against the Compose Specification (check-jsonschema's vendor.compose-spec);
# - every overlay under deploy/k8s/overlays renders with `kubectl kustomize`;
# - every rendered object of a built-in kind validates with kubernetes-validate --strict, against
#   the oldest Kubernetes version the manifests support and the newest the validator knows;
# - every KEDA ScaledObject validates against the CRD's schema (deploy/k8s/schemas/), with
#   check-jsonschema; an object of any other kind fails the check.
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
python="$tools/bin/python3"
[ -x "$python" ] || python=python3

say "check-jsonschema $(check-jsonschema --version | awk '{print $NF}'), kubernetes-validate $(kubernetes-validate --version), $(kubectl version --client 2>/dev/null | tr '\n' ' ')"

say "docker-compose.yml against the Compose Specification"
check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
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
