//! Checking a presented key, with a cache that a revocation empties at once.
//!
//! A key is looked up by its prefix and checked against the stored hash. Successful lookups are
//! cached, so a busy ingest does not ask Postgres on every request. A revocation is notified
//! (LISTEN/NOTIFY) in the transaction that revokes, and the listener evicts the key; while the
//! listener is not connected, notices could be missed, so nothing is served from the cache then.
//! A refusal is recorded as a `quorum.auth.refused` event, rate-bounded (see the `audit` module).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use quorum_domain::TenantId;
use sqlx::postgres::PgListener;
use sqlx::{PgPool, Row};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::audit::{self, RefusalGate};
use crate::{PresentedKey, Principal, REVOKED_CHANNEL, Role};

/// How long a cached key is trusted without asking Postgres again (a backstop; revocations evict
/// at once).
const TTL: Duration = Duration::from_secs(30);
/// Keys cached at most. Only keys that authenticated are cached, so a flood of made-up keys cannot
/// grow it; when full it is simply emptied.
const MAX_CACHED: usize = 10_000;

/// Why a request was not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no API key: send Authorization: Bearer <key>")]
    Missing,
    #[error("malformed Authorization header: expected Bearer qk_<prefix>_<secret>")]
    Malformed,
    #[error("unknown API key")]
    Unknown,
    #[error("the API key was revoked")]
    Revoked,
    #[error("cannot check the API key: {0}")]
    Database(#[from] sqlx::Error),
}

impl AuthError {
    /// The reason a refusal is recorded under; `None` for a failure to check (not a refusal).
    pub fn refusal_reason(&self) -> Option<&'static str> {
        match self {
            AuthError::Missing => Some("missing"),
            AuthError::Malformed => Some("malformed"),
            AuthError::Unknown => Some("unknown"),
            AuthError::Revoked => Some("revoked"),
            AuthError::Database(_) => None,
        }
    }
}

/// Checks keys; cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    ttl: Duration,
    pool: PgPool,
    cache: Mutex<HashMap<String, Cached>>,
    /// Bumped on every eviction, so a lookup that raced a revocation does not cache what it read.
    generation: AtomicU64,
    /// The listener is connected: evictions are being heard.
    listening: AtomicBool,
    /// Which refusals become events.
    refusals: Mutex<RefusalGate>,
}

struct Cached {
    hash: Vec<u8>,
    principal: Principal,
    at: Instant,
}

impl Authenticator {
    /// An authenticator whose revocation listener runs until `shutdown`.
    pub fn start(pool: PgPool, shutdown: CancellationToken) -> Self {
        Self::start_with_ttl(pool, TTL, shutdown)
    }

    /// [`Self::start`] trusting a cached key for `ttl` (tests make it long, so that only an
    /// eviction can explain a refusal).
    pub fn start_with_ttl(pool: PgPool, ttl: Duration, shutdown: CancellationToken) -> Self {
        let auth = Self {
            inner: Arc::new(Inner {
                ttl,
                pool,
                cache: Mutex::new(HashMap::new()),
                generation: AtomicU64::new(0),
                listening: AtomicBool::new(false),
                refusals: Mutex::new(RefusalGate::default()),
            }),
        };
        tokio::spawn(listen(auth.inner.clone(), shutdown));
        auth
    }

    /// Whether keys are served from the cache now (the revocation listener is connected).
    pub fn caching(&self) -> bool {
        self.inner.listening.load(Ordering::Acquire)
    }

    /// The caller behind an `Authorization` header value. A refusal is recorded as a
    /// `quorum.auth.refused` event when it is the first of its reason this minute in this process.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let result = self.check(authorization).await;
        if let Err(e) = &result
            && let Some(reason) = e.refusal_reason()
        {
            self.record_refusal(reason, authorization).await;
        }
        result
    }

    async fn record_refusal(&self, reason: &'static str, authorization: Option<&str>) {
        let minute = chrono::Utc::now().timestamp().div_euclid(60);
        let admitted = self
            .inner
            .refusals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(reason, minute);
        let Some(refusals) = admitted else {
            return;
        };
        // Only the prefix, which is not secret, and only of a well-formed key.
        let prefix = authorization
            .and_then(|v| v.trim().split_once(' '))
            .and_then(|(_, token)| PresentedKey::parse(token.trim()))
            .map(|k| k.prefix);
        let event = audit::refused(reason, refusals, prefix);
        let stream = audit::refusals_stream();
        let store = quorum_event_store::EventStore::new(self.inner.pool.clone());
        let appended = store
            .append(&stream, quorum_event_store::ExpectedVersion::Any, &[event])
            .await;
        if let Err(error) = appended {
            warn!(%error, reason, refusals, "cannot record refused authentications");
        }
    }

    async fn check(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let value = authorization.ok_or(AuthError::Missing)?;
        let (scheme, token) = value.trim().split_once(' ').ok_or(AuthError::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Malformed);
        }
        let key = PresentedKey::parse(token.trim()).ok_or(AuthError::Malformed)?;
        let inner = &self.inner;
        if inner.listening.load(Ordering::Acquire) {
            let cache = inner.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(c) = cache.get(key.prefix)
                && c.at.elapsed() < inner.ttl
            {
                return if key.matches(&c.hash) {
                    Ok(c.principal.clone())
                } else {
                    Err(AuthError::Unknown)
                };
            }
        }
        let generation = inner.generation.load(Ordering::Acquire);
        let row = sqlx::query(
            "SELECT id, tenant, roles, hash, revoked_at IS NOT NULL AS revoked FROM api_keys WHERE prefix = $1",
        )
        .bind(key.prefix)
        .fetch_optional(&inner.pool)
        .await?
        .ok_or(AuthError::Unknown)?;
        let hash: Vec<u8> = row.try_get("hash")?;
        if !key.matches(&hash) {
            return Err(AuthError::Unknown);
        }
        if row.try_get::<bool, _>("revoked")? {
            return Err(AuthError::Revoked);
        }
        let tenant: String = row.try_get("tenant")?;
        let roles: Vec<String> = row.try_get("roles")?;
        let principal = Principal {
            key_id: row.try_get("id")?,
            tenant: TenantId::new(tenant).map_err(|e| sqlx::Error::Decode(e.into()))?,
            roles: roles
                .iter()
                .filter_map(|r| r.parse::<Role>().ok())
                .collect(),
        };
        let mut cache = inner.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.listening.load(Ordering::Acquire)
            && inner.generation.load(Ordering::Acquire) == generation
        {
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(
                key.prefix.to_owned(),
                Cached {
                    hash,
                    principal: principal.clone(),
                    at: Instant::now(),
                },
            );
        }
        Ok(principal)
    }
}

impl Inner {
    fn evict(&self, prefix: Option<&str>) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        match prefix {
            Some(p) => {
                cache.remove(p);
            }
            None => cache.clear(),
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

async fn listen(inner: Arc<Inner>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let connected = async {
            let mut listener = PgListener::connect_with(&inner.pool).await?;
            listener.listen(REVOKED_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            _ = shutdown.cancelled() => break,
            l = connected => match l {
                Ok(l) => l,
                Err(e) => {
                    warn!(error = %e, "cannot listen for key revocations; not caching keys");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            },
        };
        // Whatever was revoked while nobody listened is unknown: start from an empty cache.
        inner.evict(None);
        inner.listening.store(true, Ordering::Release);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                n = listener.try_recv() => match n {
                    Ok(Some(notice)) => {
                        debug!(prefix = notice.payload(), "key revoked; evicted");
                        inner.evict(Some(notice.payload()));
                    }
                    // The connection was lost (and will be re-established by the next call):
                    // notices may have been missed meanwhile.
                    Ok(None) | Err(_) => {
                        inner.listening.store(false, Ordering::Release);
                        inner.evict(None);
                        break;
                    }
                },
            }
        }
    }
    inner.listening.store(false, Ordering::Release);
}
