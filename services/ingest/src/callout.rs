//! NATS auth callout backed by Quorum's API keys (docs/adr/0027): an upstream system connects to
//! NATS with its API key (as the token, or as the password), the server asks this responder, and
//! the responder answers with a user JWT that may publish to `quorum.ingest.<tenant>.>` only, its
//! tenant being the key's. The same key works over HTTP; a new key needs no server restart; a
//! revoked one is refused at its next connection (and an open connection ends with its session).

mod jwt;

use std::time::Duration;

use futures::StreamExt;
use nkeys::KeyPair;
use quorum_auth::{AuthError, Authenticator, Principal, Role};
use quorum_bus::access;
use quorum_runtime::ReadyFlag;
use quorum_runtime::config::{ConfigError, Secret, duration};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// The responder's settings (`[nats_auth]`, `QUORUM__NATS_AUTH__…`). It runs when `issuer_seed` is
/// set.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct CalloutConfig {
    /// The account nkey seed (`SA…`) that signs the answers; its public key is the server
    /// config's `auth_callout.issuer`. Secret: from the environment or a secret store.
    pub issuer_seed: Option<Secret>,
    /// The responder's own NATS user, in the callout account (`auth_callout.auth_users`).
    pub user: String,
    /// Its password.
    pub password: Option<Secret>,
    /// The account an authenticated upstream system is placed in: the one the streams are in.
    pub account: String,
    /// How long a connection authenticated by a key lasts before the server makes the client
    /// authenticate again: the longest a revoked key's open connection survives.
    #[serde(with = "duration")]
    pub session: Duration,
    /// Connection requests answered at once.
    pub concurrency: usize,
}

impl Default for CalloutConfig {
    fn default() -> Self {
        Self {
            issuer_seed: None,
            user: access::CALLOUT_USER.to_owned(),
            password: None,
            account: access::ACCOUNT.to_owned(),
            session: Duration::from_secs(3600),
            concurrency: 16,
        }
    }
}

impl CalloutConfig {
    /// Checks the seed (an account's) and that the responder has a password.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let Some(seed) = &self.issuer_seed else {
            return Ok(());
        };
        issuer(seed).map_err(|m| ConfigError::invalid("issuer_seed", m))?;
        if self.password.is_none() {
            return Err(ConfigError::invalid(
                "password",
                "the responder's NATS user needs its password",
            ));
        }
        if self.user.is_empty() || self.account.is_empty() {
            return Err(ConfigError::invalid("user", "user and account are needed"));
        }
        if self.session < Duration::from_secs(10) || self.concurrency == 0 {
            return Err(ConfigError::invalid(
                "session",
                "at least 10s, and concurrency above zero",
            ));
        }
        Ok(())
    }
}

fn issuer(seed: &Secret) -> Result<KeyPair, String> {
    let key =
        KeyPair::from_seed(seed.expose().trim()).map_err(|e| format!("not an nkey seed: {e}"))?;
    if !key.public_key().starts_with('A') {
        return Err("must be an account seed (SA…)".into());
    }
    Ok(key)
}

/// What the server sends: an authorization request (the fields used here).
#[derive(Deserialize)]
struct Request {
    aud: String,
    nats: RequestBody,
}

#[derive(Deserialize)]
struct RequestBody {
    user_nkey: String,
    server_id: ServerId,
    #[serde(default)]
    connect_opts: ConnectOpts,
    #[serde(default)]
    client_info: ClientInfo,
}

#[derive(Deserialize)]
struct ServerId {
    id: String,
}

#[derive(Deserialize, Default)]
struct ConnectOpts {
    auth_token: Option<String>,
    user: Option<String>,
    pass: Option<String>,
}

#[derive(Deserialize, Default)]
struct ClientInfo {
    host: Option<String>,
}

/// The responder's answers, before they are signed.
pub struct Decider {
    issuer: KeyPair,
    account: String,
    session: Duration,
    auth: Authenticator,
}

impl Decider {
    /// A decider signing with `config`'s issuer (which must be set and valid: see
    /// [`CalloutConfig::validate`]).
    pub fn new(config: &CalloutConfig, auth: Authenticator) -> Result<Self, String> {
        let seed = config
            .issuer_seed
            .as_ref()
            .ok_or("nats_auth.issuer_seed is not set")?;
        Ok(Self {
            issuer: issuer(seed)?,
            account: config.account.clone(),
            session: config.session,
            auth,
        })
    }

    /// The signed answer to the server's request `token`, or `None` when the request itself is
    /// not one this responder can answer (then the server times out and refuses the client).
    pub async fn answer(&self, token: &str) -> Option<String> {
        let request: Request = match jwt::decode(token, jwt::is_server_key) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "auth callout request refused");
                return None;
            }
        };
        if request.aud != "nats-authorization-request" {
            warn!(aud = %request.aud, "auth callout request for another audience");
            return None;
        }
        let body = &request.nats;
        let host = body.client_info.host.as_deref().unwrap_or("?");
        let verdict = match self.principal(&body.connect_opts).await {
            Ok(principal) => {
                info!(tenant = %principal.tenant, key = %principal.key_id, host, "nats client authenticated");
                self.user_jwt(&body.user_nkey, &principal)
            }
            Err(reason) => {
                debug!(host, %reason, "nats client refused");
                Err(reason)
            }
        };
        let claims = jwt::response_claims(&body.server_id.id, &body.user_nkey, verdict);
        match jwt::encode(claims, &self.issuer) {
            Ok(answer) => Some(answer),
            Err(e) => {
                warn!(error = %e, "cannot sign an auth callout answer");
                None
            }
        }
    }

    /// The key's owner, if it may publish. The key is the token (`nats --token`, a URL's
    /// `nats://<key>@host`) or the password (any user name, conventionally the tenant's).
    async fn principal(&self, opts: &ConnectOpts) -> Result<Principal, String> {
        let key = opts
            .auth_token
            .as_deref()
            .or(opts.pass.as_deref())
            .filter(|k| !k.is_empty());
        let Some(key) = key else {
            return Err("no API key: connect with the key as the token or the password".into());
        };
        let principal = self
            .auth
            .authenticate(Some(&format!("Bearer {key}")))
            .await
            .map_err(|e| match e {
                AuthError::Missing | AuthError::Malformed => {
                    "not an API key: expected qk_<prefix>_<secret>".to_owned()
                }
                AuthError::Database(_) => "cannot check the API key now".to_owned(),
                other => other.to_string(),
            })?;
        if !principal.has(Role::Publisher) {
            return Err("the API key has no publisher role".into());
        }
        // A user name other than the key's tenant is a mistake worth saying, not a way in.
        if let (Some(user), None) = (opts.user.as_deref(), opts.auth_token.as_deref())
            && !user.is_empty()
            && user != principal.tenant.as_str()
        {
            return Err(format!(
                "user {user:?} is not the key's tenant; connect as {}",
                principal.tenant
            ));
        }
        Ok(principal)
    }

    fn user_jwt(&self, user_nkey: &str, principal: &Principal) -> Result<String, String> {
        let permissions = access::tenant_permissions(&principal.tenant);
        let expires = chrono::Utc::now().timestamp()
            + i64::try_from(self.session.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = jwt::user_claims(
            user_nkey,
            &self.account,
            principal.tenant.as_str(),
            &permissions.publish,
            &permissions.subscribe,
            expires,
        );
        jwt::encode(claims, &self.issuer).map_err(|e| {
            warn!(error = %e, "cannot sign a user JWT");
            "cannot issue the connection's credentials".to_owned()
        })
    }
}

/// Answers the server's auth callout requests until `shutdown`: connects to `nats_url` as the
/// responder's user, in a queue group shared by ingest's replicas (one answers each request).
pub async fn run(
    nats_url: String,
    config: CalloutConfig,
    decider: Decider,
    ready: ReadyFlag,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let client = quorum_runtime::nats::connect(
        &nats_url,
        Some(config.user.as_str()),
        config.password.as_ref(),
    )
    .await
    .map_err(|e| format!("connect to NATS as {}: {e}", config.user))?;
    let requests = client
        .queue_subscribe(access::CALLOUT_SUBJECT, "quorum-auth-callout".into())
        .await
        .map_err(|e| format!("subscribe to {}: {e}", access::CALLOUT_SUBJECT))?;
    // Flushed, so the server has the subscription before readiness says so.
    client
        .flush()
        .await
        .map_err(|e| format!("subscribe to {}: {e}", access::CALLOUT_SUBJECT))?;
    ready.set(true);
    info!(user = %config.user, "answering the nats auth callout");
    let decider = &decider;
    let client = &client;
    let answered = requests
        .take_until(shutdown.cancelled())
        .for_each_concurrent(config.concurrency, |msg| async move {
            let Some(reply) = msg.reply else {
                return;
            };
            // Encrypted requests (an `xkey` in the server config) are not configured here: a
            // request that is not a JWT is answered by no one, and the client refused.
            let Ok(token) = std::str::from_utf8(&msg.payload) else {
                warn!("auth callout request is not text");
                return;
            };
            if let Some(answer) = decider.answer(token).await
                && let Err(e) = client.publish(reply, answer.into()).await
            {
                warn!(error = %e, "cannot answer an auth callout request");
            }
        });
    answered.await;
    // Flushing what was answered last; the server gives up on a late answer anyway.
    let _ = client.flush().await;
    Ok(())
}
