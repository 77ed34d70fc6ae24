//! What `--help` shows beyond each flag's own line: examples for every command (clap's
//! `after_help`), and the headings that keep the global flags apart from a command's own.

/// The heading of the flags every command takes (where the stack is, output, logs).
pub const GLOBAL: &str = "Global options";
/// The heading of the flags that say which HTTP API to reach and as whom.
pub const CONNECTION: &str = "Connection options";

pub const UP: &str = "Examples:
  quorum up                                    # nats-server, Postgres and every service, here
  quorum up --config quorum.toml               # settings: see deploy/quorum.example.toml
  QUORUM_CONFIG=quorum.toml quorum up          # the same, from the environment
  quorum up --ask 'What is the capital of France?'";

pub const STATUS: &str = "Examples:
  quorum status
  quorum status --json | jq .dead_letters";

pub const MIGRATE: &str = "Examples:
  quorum migrate
  quorum migrate --database-url postgres://quorum@db.internal/quorum";

pub const KEYS: &str = "Examples:
  quorum keys create --tenant acme --role publisher --label 'orders service'
  quorum keys list --tenant acme
  quorum keys revoke qk_3f2a";

pub const KEYS_CREATE: &str = "Examples:
  quorum keys create --tenant acme --role publisher
  quorum keys create --tenant acme --role operator --role auditor --label 'on-call'";

pub const KEYS_LIST: &str = "Examples:
  quorum keys list
  quorum keys list --tenant acme --json";

pub const KEYS_REVOKE: &str = "Examples:
  quorum keys revoke qk_3f2a                   # by prefix
  quorum keys revoke 01a24a10-7c1e-7c3a-9d2e-5b1f0e6c2a11";

pub const ASK: &str = "Examples:
  quorum ask 'What is the capital of France?'
  quorum ask 'Is 17 prime?' --experts alpha,beta --quorum 2 --strategy similarity
  quorum ask 'Summarise RFC 9110' --json | jq .consensus";

pub const PUBLISH: &str = "Examples:
  quorum publish --type com.example.order.placed --subject order/42 --data '{\"total\": 12}'
  quorum publish --type com.example.order.placed --data @order.json --mode structured
  quorum publish --file batch.json              # a JSON array of structured CloudEvents
  quorum publish --via nats --tenant acme --type com.example.ping";

pub const EVENTS: &str = "Examples:
  quorum events --stream sub-default/order/42
  quorum events --correlation-id 01a24a10-7c1e-7c3a-9d2e-5b1f0e6c2a11 --json
  quorum events --since 1h --limit 50           # says how to go on when more are left
  quorum events --since 1h --after 1042         # the next page
  quorum events --since 2026-05-01 --all --json";

pub const TAIL: &str = "Examples:
  quorum tail
  quorum tail --tenant acme --type 'quorum.expert.>'
  quorum tail --from-start --count 10 --json";

pub const AUDIT: &str = "Examples:
  quorum audit verify
  quorum audit export --correlation-id 01a24a10-7c1e-7c3a-9d2e-5b1f0e6c2a11 -o query.jsonl";

pub const AUDIT_VERIFY: &str = "Examples:
  quorum audit verify                          # the whole chain, and no stored event left out
  quorum audit verify --from 1000 --to 2000 --json";

pub const AUDIT_EXPORT: &str = "Examples:
  quorum audit export --tenant acme --since 1d -o acme.jsonl
  quorum audit export --stream query/01a24a10-7c1e-7c3a-9d2e-5b1f0e6c2a11 --format csv";

pub const DLQ: &str = "Examples:
  quorum dlq list
  quorum dlq --system list --status any       # with the letters of no tenant
  quorum dlq show 01a24a10-7c1e-7c3a-9d2e-5b1f0e6c2a11
  quorum dlq replay --consumer consensus --reason 'model fixed' --rate 50";

pub const DLQ_LIST: &str = "Examples:
  quorum dlq list --consumer ingest --since 1h
  quorum dlq list --status any --system --json";

pub const DLQ_SHOW: &str = "Examples:
  quorum dlq show 01a24a10-7c1e-7c3a-9d2e-5b1f0e6c2a11
  quorum dlq show 01a24a10-7c1e-7c3a-9d2e-5b1f0e6c2a11 --json";

pub const DLQ_REPLAY: &str = "Examples:
  quorum dlq replay 01a24a10-7c1e-7c3a-9d2e-5b1f0e6c2a11 --reason 'schema fixed'
  quorum dlq replay --consumer consensus --error timeout --reason 'judge back' --dry-run
  quorum dlq replay --consumer consensus --reason 'judge back' --yes --rate 20";

pub const DLQ_DISCARD: &str = "Examples:
  quorum dlq discard 01a24a10-7c1e-7c3a-9d2e-5b1f0e6c2a11 --reason 'test traffic'
  quorum dlq --system discard 01a24a10-7c1e-7c3a-9d2e-5b1f0e6c2a11 --reason 'no such tenant'";

pub const REPLAY: &str = "Examples:
  quorum replay --correlation-id 01a24a10-7c1e-7c3a-9d2e-5b1f0e6c2a11 --to-consumer consensus --reason 'rerun'
  quorum replay --tenant acme --since 1h --to-file acme.jsonl --reason 'export for support'
  quorum replay --type quorum.query.submitted --to-subject test.queries --reason x --dry-run
  quorum replay --resume 01a24a10-7c1e-7c3a-9d2e-5b1f0e6c2a11
  quorum replay --rebuild queries --reason 'schema changed'";

pub const SAGA: &str = "Examples:
  quorum saga run plan.json
  quorum saga show 01a24a10-7c1e-7c3a-9d2e-5b1f0e6c2a11";

pub const SAGA_RUN: &str = "Examples:
  quorum saga run plan.json                    # {\"steps\": [{\"name\": \"…\", \"tool\": {…}}]}
  quorum saga run plan.json --tenant acme --no-wait";

pub const SAGA_SHOW: &str = "Examples:
  quorum saga show 01a24a10-7c1e-7c3a-9d2e-5b1f0e6c2a11
  quorum saga show saga/01a24a10-7c1e-7c3a-9d2e-5b1f0e6c2a11 --json";

pub const TOOLS: &str = "Examples:
  quorum tools list                            # the running stack's config
  quorum tools list --config quorum.toml";

pub const TOOLS_LIST: &str = TOOLS;

pub const BENCH: &str = "Examples:
  quorum bench store
  quorum bench pipeline --json
  quorum bench consensus";

pub const BENCH_ONE: &str = "Examples:
  quorum bench store
  quorum bench ingest --json > ingest.json";

pub const CHAOS: &str = "Every service runs as its own process on a throwaway stack; the run exits non-zero on any
loss, duplicate or broken audit chain, and keeps the stack's logs then.

Examples:
  quorum chaos --duration 90s --seed 7
  quorum chaos --duration 10m --rate 20 --faults kill,stop,nats,nats-wipe,postgres --json > chaos.json";

pub const SOAK: &str =
    "Every service runs as its own process on a throwaway stack; the run exits non-zero when a
process's memory or open files keep growing, the p99 drifts, a refusal lacks Retry-After, or
anything acknowledged is lost.

Examples:
  quorum soak --duration 1m --rate 20
  quorum soak --duration 2h --rate 500 --json > soak.json";

pub const COMPLETION: &str = "Examples:
  quorum completion bash > ~/.local/share/bash-completion/completions/quorum
  quorum completion zsh > \"${fpath[1]}/_quorum\"
  quorum completion fish > ~/.config/fish/completions/quorum.fish";
