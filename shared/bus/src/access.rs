//! Who may do what on NATS (docs/adr/0027-nats-least-privilege.md): one user per Quorum service with
//! only the subjects it needs, an operator identity for the `quorum` CLI, the auth callout's own user,
//! and what an upstream system authenticated by its API key may publish. The server config is
//! rendered from here, so the committed `deploy/nats/auth.conf`, the local stack's and the tests'
//! are the same permissions (a test compares the committed file with [`server_config`]).

use std::fmt;

use quorum_domain::TenantId;
use serde_json::{Value, json};

use crate::{DLQ_STREAM, EVENTS_STREAM, INGEST_STREAM};

/// The account every Quorum user and every upstream publisher lives in: the streams are its.
pub const ACCOUNT: &str = "QUORUM";
/// The account of the auth callout's user alone: the server's requests to it carry the keys
/// clients present, so no other client may see that subject.
pub const CALLOUT_ACCOUNT: &str = "AUTH";
/// The auth callout responder's user (in [`CALLOUT_ACCOUNT`]).
pub const CALLOUT_USER: &str = "auth-callout";
/// Where the server asks the responder (fixed by NATS).
pub const CALLOUT_SUBJECT: &str = "$SYS.REQ.USER.AUTH";

/// A Quorum identity with a password in the server config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceUser {
    /// The HTTP API and the `QUORUM_INGEST` consumer.
    Ingest,
    /// The one publisher of committed history (`quorum.evt.>`), and the streams' keeper.
    Relay,
    ExpertFanout,
    Consensus,
    ToolExec,
    Audit,
    DlqReplayer,
    /// The `quorum` CLI: status, tail, replay, publishing on a tenant's behalf, making the streams.
    Admin,
}

impl ServiceUser {
    /// Every user, in the order the server config lists them.
    pub const ALL: [ServiceUser; 8] = [
        ServiceUser::Ingest,
        ServiceUser::Relay,
        ServiceUser::ExpertFanout,
        ServiceUser::Consensus,
        ServiceUser::ToolExec,
        ServiceUser::Audit,
        ServiceUser::DlqReplayer,
        ServiceUser::Admin,
    ];

    /// The user name, as the server config and `common.nats_user` give it.
    pub fn name(self) -> &'static str {
        match self {
            ServiceUser::Ingest => "ingest",
            ServiceUser::Relay => "relay",
            ServiceUser::ExpertFanout => "expert-fanout",
            ServiceUser::Consensus => "consensus",
            ServiceUser::ToolExec => "tool-exec",
            ServiceUser::Audit => "audit",
            ServiceUser::DlqReplayer => "dlq-replayer",
            ServiceUser::Admin => "admin",
        }
    }

    /// The user called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.name() == name)
    }

    /// The environment variable the shipped server config reads this user's password from.
    pub fn password_env(self) -> String {
        password_env(self.name())
    }

    /// What this user may publish and subscribe to.
    pub fn permissions(self) -> Permissions {
        let mut p = Permissions::default();
        // Replies (JetStream API answers, publish acks, pulled messages) come to the user's own
        // inbox prefix, so no user can read another's.
        p.subscribe.push(format!("{}.>", inbox_prefix(self.name())));
        if self == ServiceUser::Admin {
            // The operator sees and manages everything, but is no publisher of committed history:
            // a replay goes to one consumer's redeliver subject or elsewhere, never `quorum.evt.>`.
            p.publish = vec![">".into()];
            p.publish_deny = vec![crate::subjects::ALL_EVENTS.into()];
            p.subscribe = vec![">".into()];
            return p;
        }
        // Every service finds the streams at start, and makes one that does not exist yet with
        // Quorum's config; only the relay (and the operator) may change an existing one, since a
        // stream's config (its subjects, a republish) decides what becomes history.
        for stream in [EVENTS_STREAM, INGEST_STREAM, DLQ_STREAM] {
            p.publish.push(format!("$JS.API.STREAM.INFO.{stream}"));
            p.publish.push(format!("$JS.API.STREAM.CREATE.{stream}"));
        }
        match self {
            ServiceUser::Ingest => durable(&mut p, INGEST_STREAM, "ingest"),
            ServiceUser::Relay => {
                p.publish.push(crate::subjects::ALL_EVENTS.into());
                for stream in [EVENTS_STREAM, INGEST_STREAM, DLQ_STREAM] {
                    p.publish.push(format!("$JS.API.STREAM.UPDATE.{stream}"));
                }
                // Where it resumes: the last messages it published.
                p.publish
                    .push(format!("$JS.API.STREAM.MSG.GET.{EVENTS_STREAM}"));
            }
            ServiceUser::ExpertFanout => durable(&mut p, EVENTS_STREAM, "expert-fanout"),
            ServiceUser::Consensus => durable(&mut p, EVENTS_STREAM, "consensus"),
            ServiceUser::ToolExec => durable(&mut p, EVENTS_STREAM, "tool-exec"),
            ServiceUser::Audit => {}
            ServiceUser::DlqReplayer => {
                // An ordered (ephemeral) consumer of the dead-letter notices: its name is made up
                // by the client, so any consumer of that stream.
                for api in ["CREATE", "INFO", "DELETE", "MSG.NEXT"] {
                    p.publish
                        .push(format!("$JS.API.CONSUMER.{api}.{DLQ_STREAM}.>"));
                }
                p.publish
                    .push(format!("$JS.API.CONSUMER.CREATE.{DLQ_STREAM}"));
                // A replayed dead letter goes back where it came from: one consumer's redeliver
                // subject, or the ingest subject its tenant published it on.
                p.publish.push("quorum.redeliver.>".into());
                p.publish.push("quorum.ingest.>".into());
            }
            ServiceUser::Admin => unreachable!("returned above"),
        }
        p
    }
}

impl fmt::Display for ServiceUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A durable pull consumer's own API, its acks, and its dead-letter notices; nothing of any other
/// consumer's. It may also read a message of its stream by sequence: its lag's age is the message
/// just after its ack floor (the runtime's `consumer::lag`).
fn durable(p: &mut Permissions, stream: &str, name: &str) {
    let api = "$JS.API.CONSUMER";
    p.publish.extend([
        format!("$JS.API.STREAM.MSG.GET.{stream}"),
        // With one filter subject the client names it in the subject, after the consumer.
        format!("{api}.CREATE.{stream}.{name}"),
        format!("{api}.CREATE.{stream}.{name}.>"),
        format!("{api}.DURABLE.CREATE.{stream}.{name}"),
        format!("{api}.INFO.{stream}.{name}"),
        format!("{api}.MSG.NEXT.{stream}.{name}"),
        format!("$JS.ACK.{stream}.{name}.>"),
        format!("quorum.dlq.{}.>", crate::subjects::token(name)),
    ]);
}

/// The environment variable the shipped server config reads `user`'s password from.
pub fn password_env(user: &str) -> String {
    format!(
        "QUORUM_NATS_{}_PASSWORD",
        user.to_ascii_uppercase().replace('-', "_")
    )
}

/// The environment variable the shipped server config reads the callout issuer's public key from.
pub const ISSUER_ENV: &str = "QUORUM_NATS_CALLOUT_ISSUER";

/// The inbox prefix of a service user: `_INBOX_<user>`, a first token of its own, so that no
/// tenant's inbox (`_INBOX.<tenant>`) can ever cover it.
pub fn inbox_prefix(user: &str) -> String {
    format!("_INBOX_{user}")
}

/// The inbox prefix an upstream publisher of `tenant` must use (`_INBOX.<tenant>`): the only
/// replies it may receive, so that no tenant reads another's publish acks.
pub fn tenant_inbox_prefix(tenant: &TenantId) -> String {
    format!("_INBOX.{tenant}")
}

/// What an upstream system authenticated as `tenant` may do: publish to its own ingest subjects,
/// and receive the acks of those publishes. Nothing else: no JetStream API, no other subject.
pub fn tenant_permissions(tenant: &TenantId) -> Permissions {
    Permissions {
        publish: vec![format!("{}{tenant}.>", crate::subjects::INGEST_PREFIX)],
        publish_deny: Vec::new(),
        subscribe: vec![format!("{}.>", tenant_inbox_prefix(tenant))],
    }
}

/// Subjects a user may publish to (unless denied) and subscribe to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub publish_deny: Vec<String>,
    pub subscribe: Vec<String>,
}

/// A value of the server config: a literal (a local stack's generated password), or a reference to
/// an environment variable of the server's (`$NAME`, the shipped configs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfValue {
    Literal(String),
    Env(String),
}

impl ConfValue {
    /// As a JSON string: the literal, or `<< $NAME >>`, the NATS Helm chart's notation for a raw
    /// value (unquoted in the config it writes, so the server reads it as a variable).
    fn json(&self) -> Value {
        match self {
            ConfValue::Literal(v) => Value::String(v.clone()),
            ConfValue::Env(name) => Value::String(format!("<< ${name} >>")),
        }
    }
}

/// What the server config needs besides the permissions.
pub struct ServerAuth<'a> {
    /// The password of a user ([`ServiceUser::name`] or [`CALLOUT_USER`]).
    pub password: &'a dyn Fn(&str) -> ConfValue,
    /// The public nkey (`A…`) that signs the callout's answers.
    pub issuer: ConfValue,
}

impl ServerAuth<'_> {
    /// The shipped configs': every secret from the server's environment.
    pub fn from_env() -> ServerAuth<'static> {
        ServerAuth {
            password: &|user| ConfValue::Env(password_env(user)),
            issuer: ConfValue::Env(ISSUER_ENV.into()),
        }
    }
}

/// The `accounts` and `authorization` blocks of nats-server's config, as the JSON the NATS Helm
/// chart's `config.merge` takes: no anonymous client; each service user with its permissions,
/// authenticated by the server itself; everyone else (an upstream system with an API key) decided
/// by the auth callout.
pub fn server_config_json(auth: &ServerAuth<'_>) -> Value {
    let users: Vec<Value> = ServiceUser::ALL
        .iter()
        .map(|user| {
            let p = user.permissions();
            let mut publish = json!({ "allow": p.publish });
            if !p.publish_deny.is_empty() {
                publish["deny"] = json!(p.publish_deny);
            }
            json!({
                "user": user.name(),
                "password": (auth.password)(user.name()).json(),
                "permissions": { "publish": publish, "subscribe": { "allow": p.subscribe } },
            })
        })
        .collect();
    // Listed users are checked against their password by the server and never sent to the
    // callout; the callout decides every other connection, anonymous ones included.
    let bypass: Vec<&str> = std::iter::once(CALLOUT_USER)
        .chain(ServiceUser::ALL.iter().map(|u| u.name()))
        .collect();
    json!({
        "accounts": {
            CALLOUT_ACCOUNT: {
                "users": [{
                    "user": CALLOUT_USER,
                    "password": (auth.password)(CALLOUT_USER).json(),
                    // It answers the requests it receives, and publishes nothing else.
                    "permissions": {
                        "subscribe": { "allow": [CALLOUT_SUBJECT] },
                        "publish": { "deny": [">"] },
                        "allow_responses": true,
                    },
                }],
            },
            ACCOUNT: { "jetstream": "enabled", "users": users },
        },
        "authorization": {
            "auth_callout": {
                "issuer": auth.issuer.json(),
                "account": CALLOUT_ACCOUNT,
                "auth_users": bypass,
            },
        },
    })
}

/// [`server_config_json`] in nats-server's config syntax (`key: value` at the top, JSON below),
/// with `<< … >>` values written raw, as the Helm chart writes them.
pub fn server_config(auth: &ServerAuth<'_>) -> String {
    render_conf(&server_config_json(auth))
}

/// A JSON object as nats-server config text: each top-level key as `key: <JSON>`, and every
/// string `<< raw >>` as `raw`.
pub fn render_conf(config: &Value) -> String {
    let mut out = String::new();
    for (key, value) in config.as_object().into_iter().flatten() {
        let text = serde_json::to_string_pretty(value).unwrap_or_default();
        out.push_str(&format!("{key}: {}\n\n", unraw(&text)));
    }
    out
}

/// `"<< x >>"` → `x`, everywhere in `text`.
fn unraw(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("\"<< ") {
        match rest[i..].find(" >>\"") {
            Some(end) => {
                out.push_str(&rest[..i]);
                out.push_str(&rest[i + 4..i + end]);
                rest = &rest[i + end + 4..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_relay_publishes_history() {
        for user in ServiceUser::ALL {
            let p = user.permissions();
            let may = p.publish.iter().any(|s| s == "quorum.evt.>" || s == ">")
                && !p.publish_deny.iter().any(|s| s == "quorum.evt.>");
            assert_eq!(may, user == ServiceUser::Relay, "{user}");
        }
    }

    #[test]
    fn a_consumer_reaches_only_its_own_durable() {
        let p = ServiceUser::Consensus.permissions();
        assert!(
            p.publish
                .contains(&"$JS.API.CONSUMER.MSG.NEXT.QUORUM_EVENTS.consensus".to_owned())
        );
        assert!(
            !p.publish
                .iter()
                .any(|s| s.contains("expert-fanout") || s.contains("CONSUMER.DELETE"))
        );
        assert!(!p.publish.iter().any(|s| s.contains("STREAM.UPDATE")));
    }

    #[test]
    fn a_tenant_publishes_under_its_own_name_only() {
        let acme = TenantId::new("acme").unwrap();
        let p = tenant_permissions(&acme);
        assert_eq!(p.publish, ["quorum.ingest.acme.>"]);
        assert_eq!(p.subscribe, ["_INBOX.acme.>"]);
    }

    #[test]
    fn secrets_are_references_in_the_shipped_config() {
        let conf = server_config(&ServerAuth::from_env());
        assert!(conf.contains("\"password\": $QUORUM_NATS_EXPERT_FANOUT_PASSWORD"));
        assert!(conf.contains("\"issuer\": $QUORUM_NATS_CALLOUT_ISSUER"));
        assert!(conf.starts_with("accounts: {"), "{conf}");
        assert_eq!(
            ServiceUser::from_name("dlq-replayer"),
            Some(ServiceUser::DlqReplayer)
        );
    }
}

#[cfg(test)]
mod shipped {
    use std::path::PathBuf;

    use super::*;

    /// The first lines of the committed file.
    pub(super) const HEADER: &str = "\
# NATS users and permissions for Quorum (docs/adr/0027-nats-least-privilege.md), included by
# nats-server.conf. Generated from shared/bus/src/access.rs; do not edit: change the code and run
# `QUORUM_BLESS=1 cargo test -p quorum-bus shipped`. Secrets are read from the server's
# environment: QUORUM_NATS_<USER>_PASSWORD for each user, QUORUM_NATS_CALLOUT_ISSUER for the
# public key of the auth callout's issuer (the seed is ingest's QUORUM__NATS_AUTH__ISSUER_SEED).

";

    fn path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nats/auth.conf")
    }

    #[test]
    fn shipped_auth_conf_is_the_rendering_of_the_permissions() {
        let expected = format!("{HEADER}{}", server_config(&ServerAuth::from_env()));
        if std::env::var_os("QUORUM_BLESS").is_some() {
            std::fs::write(path(), &expected).unwrap();
        }
        let committed = std::fs::read_to_string(path()).unwrap_or_default();
        assert!(
            committed == expected,
            "deploy/nats/auth.conf differs from the permissions in access.rs; \
             run QUORUM_BLESS=1 cargo test -p quorum-bus shipped"
        );
    }
}
