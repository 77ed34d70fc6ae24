#!/usr/bin/env python3
"""Writes a CRD version's openAPIV3Schema as a JSON Schema a validator can be strict with.

    git show v2.20.2:config/crd/bases/keda.sh_scaledobjects.yaml \
      | python3 strict-from-crd.py v1alpha1 'kedacore/keda v2.20.2 ...' > keda-scaledobject-v1alpha1.json

Kubernetes prunes fields a structural schema does not list; a JSON Schema validator accepts them
unless told otherwise. So every object schema that lists `properties` and says nothing of other
fields (no `additionalProperties`, no `x-kubernetes-preserve-unknown-fields`) gets
`additionalProperties: false`, as kubeconform's strict mode does: a misspelt field fails.
`apiVersion`, `kind` and `metadata` are required, as the API server requires them.
"""
import json
import sys

import yaml


def strict(node):
    if isinstance(node, dict):
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for value in node.values():
            strict(value)
    elif isinstance(node, list):
        for value in node:
            strict(value)


def main():
    version, source = sys.argv[1], sys.argv[2]
    crd = yaml.safe_load(sys.stdin)
    (schema,) = [v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"] if v["name"] == version]
    strict(schema)
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    schema["properties"]["apiVersion"]["enum"] = [f"{group}/{version}"]
    schema["properties"]["kind"]["enum"] = [kind]
    out = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$comment": f"{kind} {group}/{version}, from {source}; made strict by strict-from-crd.py",
        **schema,
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
