#!/usr/bin/env python3
"""The checks of deploy/observability that no upstream tool makes, for scripts/check-deploy.sh.

Usage: check-observability.py <work dir>

- every metric of deploy/observability/metrics.txt is a string in the services' Rust source;
- every quorum_* name the alert rules and the dashboard read is one of those metrics (with the
  series its type exports), every quorum:* name a recording rule's;
- writes <work>/dashboard-rules.yml: each dashboard query as a recording rule, Grafana's variables
  replaced by values, for `promtool check rules` to parse;
- writes <work>/ts/dashboard.ts: the dashboard as a value of @grafana/schema's Dashboard type,
  for `tsc` to check;
- Prometheus scrapes each Quorum service of docker-compose.yml on its admin port;
- the Grafana provisioning and the dashboard agree (datasource uid, dashboards path);
- the observability compose file: every service in the profile, images pinned by digest, bind
  mounts that exist;
- the OpenTelemetry Collector config: its structure (no collector binary can be installed here
  to validate it): OTLP on 4317 and 4318, every component a pipeline names defined, of a type the
  core distribution ships, a batch processor, traces exported to Jaeger.
"""
import json
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
OBS = ROOT / "deploy/observability"
work = pathlib.Path(sys.argv[1])
errors = []


def fail(msg):
    errors.append(msg)


# --- the metrics ------------------------------------------------------------------------------
metrics = {}
for line in (OBS / "metrics.txt").read_text().splitlines():
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    name, kind = line.split()
    if kind not in {"counter", "gauge", "histogram", "summary"}:
        fail(f"metrics.txt: {name}: unknown type {kind}")
    if kind == "histogram" and not name.endswith("_seconds"):
        fail(f"metrics.txt: {name}: only *_seconds histograms have buckets (else: summary)")
    metrics[name] = kind
source = "\n".join(
    p.read_text(errors="replace")
    for d in ("shared", "services")
    for p in (ROOT / d).rglob("*.rs")
    if "/target/" not in str(p)
)
for name in metrics:
    if f'"{name}"' not in source:
        fail(f"metrics.txt: {name} is not a string in shared/ or services/ Rust source")
series = {}
for name, kind in metrics.items():
    series[name] = name
    if kind in ("histogram", "summary"):
        for suffix in ("_sum", "_count"):
            series[name + suffix] = name
    if kind == "histogram":
        series[name + "_bucket"] = name

# --- the rules --------------------------------------------------------------------------------
rule_files = sorted((OBS / "prometheus/rules").glob("*.yml"))
recorded = set()
rule_exprs = []
for f in rule_files:
    for group in yaml.safe_load(f.read_text())["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                recorded.add(rule["record"])
            rule_exprs.append((f"{f.relative_to(ROOT)}: {rule.get('record') or rule.get('alert')}", rule["expr"]))

# --- the dashboard ----------------------------------------------------------------------------
dash_path = OBS / "grafana/dashboards/quorum.json"
dashboard = json.loads(dash_path.read_text())


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


dash_exprs = []
datasource_uids = set()
panel_ids = set()
for p in all_panels(dashboard.get("panels", [])):
    if p["id"] in panel_ids:
        fail(f"dashboard: panel id {p['id']} twice")
    panel_ids.add(p["id"])
    if p.get("datasource"):
        datasource_uids.add(p["datasource"]["uid"])
    for t in p.get("targets", []):
        if t.get("datasource"):
            datasource_uids.add(t["datasource"]["uid"])
        dash_exprs.append((f"dashboard: {p.get('title')} {t.get('refId')}", t["expr"]))
for v in dashboard.get("templating", {}).get("list", []):
    if v.get("datasource"):
        datasource_uids.add(v["datasource"]["uid"])
    query = v.get("query")
    query = query.get("query") if isinstance(query, dict) else query
    if v.get("type") == "query" and query:
        m = re.fullmatch(r"label_values\((.*), *\w+\)", query)
        if not m:
            fail(f"dashboard: variable {v['name']}: not label_values(<selector>, <label>)")
        else:
            dash_exprs.append((f"dashboard: variable {v['name']}", m.group(1)))
if not dash_exprs:
    fail("dashboard: no queries")

# Grafana's variables, as Grafana would replace them.
VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1d", "$service": ".*"}
with open(work / "dashboard-rules.yml", "w") as out:
    rules = []
    for i, (where, expr) in enumerate(dash_exprs):
        for var, value in VARIABLES.items():
            expr = expr.replace(var, value)
        if "$" in expr:
            fail(f"{where}: a variable not replaced: {expr}")
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, out, sort_keys=False)

# Every name a rule or the dashboard reads: quorum_* must be exported, quorum:* recorded, and any
# other metric selector is `up` (Prometheus's own).
STRIP = re.compile(r'"(?:[^"\\]|\\.)*"|\{\{[^}]*\}\}')
for where, expr in rule_exprs + dash_exprs:
    bare = STRIP.sub('""', expr)
    for name in re.findall(r"\bquorum_[a-z0-9_]+", bare):
        if name not in series:
            fail(f"{where}: {name} is not a series the services export (deploy/observability/metrics.txt)")
    for name in re.findall(r"\bquorum:[a-z0-9_:]+", bare):
        if name not in recorded:
            fail(f"{where}: {name} is recorded by no rule")
    for name in re.findall(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{", bare):
        if not (name.startswith("quorum_") or name.startswith("quorum:") or name == "up"):
            fail(f"{where}: selects {name}, not a Quorum metric")
    for m in re.finditer(r'quorum_[a-z0-9_]+_bucket\{[^}]*le="([^"]+)"', expr):
        from_code = re.search(r"SECONDS_BUCKETS: &\[f64\] = &\[(.*?)\];", source, re.S)
        bounds = {float(b) for b in re.findall(r"[0-9.]+", from_code.group(1))} if from_code else set()
        if float(m.group(1)) not in bounds:
            fail(f"{where}: le=\"{m.group(1)}\" is no bucket boundary of SECONDS_BUCKETS")

# --- the dashboard as TypeScript, for tsc against @grafana/schema --------------------------------
(work / "ts").mkdir(exist_ok=True)
(work / "ts/dashboard.ts").write_text(
    "import type { Dashboard } from '@grafana/schema';\n\n"
    "// JSON holds a string enum's values as plain strings: the same type with each string enum\n"
    "// replaced by the union of its values (numeric enums accept their members' numbers as is).\n"
    "type Json<T> = T extends string ? `${T}` : T extends (infer U)[] ? Json<U>[] :\n"
    "  T extends object ? { [K in keyof T]: Json<T[K]> } : T;\n\n"
    "export const dashboard: Json<Dashboard> = " + json.dumps(dashboard, indent=2) + ";\n"
)

# --- compose, Prometheus and Grafana provisioning agree --------------------------------------------
compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
included = [i if isinstance(i, str) else i["path"] for i in compose.get("include", [])]
if "deploy/observability/compose.yml" not in included:
    fail("docker-compose.yml does not include deploy/observability/compose.yml")
obs = yaml.safe_load((OBS / "compose.yml").read_text())
for name, s in obs["services"].items():
    if s.get("profiles") != ["observability"]:
        fail(f"deploy/observability/compose.yml: {name} is not in (only) the observability profile")
    if not re.fullmatch(r"[^@\s]+:[^@\s]+@sha256:[0-9a-f]{64}", s.get("image", "")):
        fail(f"deploy/observability/compose.yml: {name}'s image is not pinned by tag and digest")
    for v in s.get("volumes", []):
        src = v.split(":")[0]
        if src.startswith("."):
            if not (OBS / src).exists():
                fail(f"deploy/observability/compose.yml: {name} mounts {src}, which does not exist")
quorum_services = {
    n: s for n, s in compose["services"].items()
    if str(s.get("image", "")).startswith("quorum:") and n != "migrate"
}
for n, s in quorum_services.items():
    env = s.get("environment") or {}
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") != "${OTEL_EXPORTER_OTLP_ENDPOINT:-}":
        fail(f"docker-compose.yml: {n} does not take OTEL_EXPORTER_OTLP_ENDPOINT from the shell (empty by default)")
prom = yaml.safe_load((OBS / "prometheus/prometheus.yml").read_text())
jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
for n, s in quorum_services.items():
    admin = (s.get("environment") or {}).get("QUORUM__COMMON__ADMIN_ADDR", "")
    port = int(admin.rsplit(":", 1)[1]) if ":" in admin else None
    job = jobs.get(n)
    if job is None:
        fail(f"prometheus.yml: no job scrapes {n}")
        continue
    sd = [c for c in job.get("dns_sd_configs", []) if n in c.get("names", [])]
    if not sd or sd[0].get("port") != port:
        fail(f"prometheus.yml: job {n} does not find {n}'s replicas on its admin port {port}")
    if job.get("metrics_path", "/metrics") != "/metrics":
        fail(f"prometheus.yml: job {n} does not scrape /metrics")
for j in jobs:
    if j not in quorum_services:
        fail(f"prometheus.yml: job {j} scrapes no Quorum service of docker-compose.yml")
mounts = {v.split(":")[1]: v.split(":")[0] for v in obs["services"]["grafana"]["volumes"]}
ds = yaml.safe_load((OBS / "grafana/provisioning/datasources/prometheus.yml").read_text())
uids = {d["uid"] for d in ds["datasources"]}
for d in ds["datasources"]:
    if d["type"] == "prometheus" and d["url"] != "http://prometheus:9090":
        fail("grafana datasource: not the compose stack's Prometheus")
if not datasource_uids <= uids | {"-- Grafana --"}:
    fail(f"dashboard: datasources {sorted(datasource_uids - uids)} are not provisioned")
providers = yaml.safe_load((OBS / "grafana/provisioning/dashboards/quorum.yml").read_text())["providers"]
for p in providers:
    path = p["options"]["path"]
    if mounts.get(path) != "./grafana/dashboards":
        fail(f"grafana dashboard provider: {path} is not where compose mounts the dashboards")

# --- the collector's config ----------------------------------------------------------------------
col = yaml.safe_load((OBS / "otel-collector/config.yaml").read_text())
# What the core distribution (otel/opentelemetry-collector) builds in, of what this may use.
CORE = {
    "receivers": {"otlp"},
    "processors": {"batch", "memory_limiter"},
    "exporters": {"otlp", "otlp_grpc", "otlphttp", "otlp_http", "debug"},
}
for kind, allowed in CORE.items():
    for cid in col.get(kind) or {}:
        if cid.split("/")[0] not in allowed:
            fail(f"collector: {kind} {cid} is not in the core distribution")
protocols = col["receivers"]["otlp"]["protocols"]
if protocols.get("grpc", {}).get("endpoint") != "0.0.0.0:4317":
    fail("collector: OTLP/gRPC not on 0.0.0.0:4317")
if protocols.get("http", {}).get("endpoint") != "0.0.0.0:4318":
    fail("collector: OTLP/HTTP not on 0.0.0.0:4318")
pipelines = col["service"]["pipelines"]
if "traces" not in pipelines:
    fail("collector: no traces pipeline")
for pname, p in pipelines.items():
    for kind in ("receivers", "processors", "exporters"):
        for cid in p.get(kind, []):
            if cid not in (col.get(kind) or {}):
                fail(f"collector: pipeline {pname} names {kind} {cid}, which is not defined")
    if "batch" not in [c.split("/")[0] for c in p.get("processors", [])]:
        fail(f"collector: pipeline {pname} has no batch processor")
jaeger = [c for cid, c in (col.get("exporters") or {}).items()
          if cid.split("/")[0] in ("otlp", "otlp_grpc") and (c or {}).get("endpoint") == "jaeger:4317"]
if not jaeger or not set(pipelines["traces"]["exporters"]) & {
        cid for cid, c in col["exporters"].items() if (c or {}).get("endpoint") == "jaeger:4317"}:
    fail("collector: traces are not exported to Jaeger over OTLP/gRPC (jaeger:4317)")
if "jaeger" not in obs["services"]:
    fail("compose: no jaeger service for the collector to export to")
if obs["services"]["jaeger"].get("environment", {}).get("COLLECTOR_OTLP_ENABLED") != "true":
    fail("compose: jaeger without COLLECTOR_OTLP_ENABLED")

for e in errors:
    print(f"check-observability: {e}", file=sys.stderr)
if errors:
    sys.exit(1)
print(f"{len(metrics)} metrics in the source; {len(rule_exprs)} rule and {len(dash_exprs)} dashboard "
      f"expressions name only those; compose, Prometheus, Grafana and the collector agree")
