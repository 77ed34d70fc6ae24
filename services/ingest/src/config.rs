//! Ingest's typed config: `[common]`, the HTTP listener, limits, flow control, group commit and
//! waits on queries.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use quorum_relay::RelayConfig;
use quorum_runtime::config::{CommonConfig, ConfigError, Validate, duration};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct IngestConfig {
    pub common: CommonConfig,
    /// Where the public HTTP API listens; port 0 picks a free one.
    pub http_addr: SocketAddr,
    pub limits: Limits,
    pub rate: RateLimit,
    pub flow: Flow,
    pub waits: Waits,
    /// The `QUORUM_INGEST` consumer (upstream systems publishing over NATS).
    pub nats: NatsIngest,
    /// The NATS auth callout (`[nats_auth]`): upstream systems connecting to NATS with their API
    /// key (docs/adr/0027). Runs when `nats_auth.issuer_seed` is set.
    pub nats_auth: crate::callout::CalloutConfig,
    /// Run a relay task in this process (one leader among all of them is elected). `quorum up`
    /// runs its own and turns this off.
    pub run_relay: bool,
    pub relay: RelayConfig,
}

/// Sizes an upstream request may not exceed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// A request body, in bytes.
    pub max_body_bytes: usize,
    /// One event: its data, or a single-event request's whole body.
    pub max_event_bytes: usize,
    /// Events in one batch.
    pub max_batch_events: usize,
    /// What one connection may buffer (its request head included: larger heads get 431). Bodies
    /// stream through it in chunks, so memory per connection stays this small whatever is sent.
    pub connection_buffer_bytes: usize,
}

/// Per-tenant rate, counted in events (a batch of 100 costs 100).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimit {
    pub events_per_second: u32,
    /// Events a tenant may send at once above its rate; at least `limits.max_batch_events`, or a
    /// full batch could never pass.
    pub burst: u32,
}

/// Admission control and group commit.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Flow {
    /// Events accepted and not yet committed, across all callers. Above it ingest answers 503 at
    /// once instead of queueing: memory stays bounded whatever the load.
    pub max_in_flight_events: usize,
    /// Events committed together at most (one statement, one WAL flush).
    pub group_max_events: usize,
    /// Groups committing at once; while they commit, the next group gathers. One makes the
    /// largest groups, and single-event requests fastest.
    pub group_concurrency: usize,
    /// A request with this many events or more (a batch) commits on its own, at once.
    pub group_alone_from: usize,
    /// HTTP requests served at once; above it a request gets 503 before its body is read.
    pub max_concurrent_requests: usize,
    /// The share of `max_in_flight_events` one tenant may hold (0 to 1): a tenant over it gets
    /// 429, so one tenant's bursts or slow commits cannot make every other tenant see 503.
    pub max_tenant_share: f64,
}

/// `GET /v1/queries/{id}?wait=` and `/v1/queries/{id}/watch` (ADR 22).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Waits {
    /// Waits and watches a tenant may hold open at once in this process; above it, 429 with
    /// `Retry-After`. A `?wait=` also holds one of `flow.max_concurrent_requests` while it waits,
    /// so this stays below that, or one tenant's waits could take every slot.
    pub max_per_tenant: usize,
    /// How often a wait reads its query again when no notification came: only a safety net for
    /// a lost notification, since the `queries` projection notifies every change.
    #[serde(with = "duration")]
    pub recheck: Duration,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct NatsIngest {
    pub enabled: bool,
    /// Messages handled at once.
    pub concurrency: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            common: CommonConfig::default(),
            http_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            limits: Limits::default(),
            rate: RateLimit::default(),
            flow: Flow::default(),
            waits: Waits::default(),
            nats: NatsIngest::default(),
            nats_auth: crate::callout::CalloutConfig::default(),
            run_relay: true,
            relay: RelayConfig::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 << 20,
            max_event_bytes: 1 << 20,
            max_batch_events: 1000,
            connection_buffer_bytes: 32 << 10,
        }
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            events_per_second: 20_000,
            burst: 40_000,
        }
    }
}

impl Default for Flow {
    fn default() -> Self {
        Self {
            max_in_flight_events: 20_000,
            group_max_events: 2000,
            group_concurrency: 1,
            group_alone_from: 50,
            max_concurrent_requests: 1024,
            max_tenant_share: 0.5,
        }
    }
}

impl Default for Waits {
    fn default() -> Self {
        Self {
            max_per_tenant: 512,
            recheck: Duration::from_secs(5),
        }
    }
}

impl Default for NatsIngest {
    fn default() -> Self {
        Self {
            enabled: true,
            concurrency: 32,
        }
    }
}

impl Validate for IngestConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate().map_err(|e| e.within("common"))?;
        self.relay.validate().map_err(|e| e.within("relay"))?;
        self.nats_auth
            .validate()
            .map_err(|e| e.within("nats_auth"))?;
        let positive = |key: &str, v: usize| {
            if v == 0 {
                Err(ConfigError::invalid(key, "must be above zero"))
            } else {
                Ok(())
            }
        };
        positive("limits.max_body_bytes", self.limits.max_body_bytes)?;
        positive("limits.max_event_bytes", self.limits.max_event_bytes)?;
        positive("limits.max_batch_events", self.limits.max_batch_events)?;
        if self.limits.connection_buffer_bytes < 8192 {
            return Err(ConfigError::invalid(
                "limits.connection_buffer_bytes",
                "must be at least 8192",
            ));
        }
        positive(
            "rate.events_per_second",
            self.rate.events_per_second as usize,
        )?;
        positive("flow.max_in_flight_events", self.flow.max_in_flight_events)?;
        positive("flow.group_max_events", self.flow.group_max_events)?;
        positive("flow.group_concurrency", self.flow.group_concurrency)?;
        positive("flow.group_alone_from", self.flow.group_alone_from)?;
        positive(
            "flow.max_concurrent_requests",
            self.flow.max_concurrent_requests,
        )?;
        positive("nats.concurrency", self.nats.concurrency)?;
        positive("waits.max_per_tenant", self.waits.max_per_tenant)?;
        if self.waits.recheck.is_zero() {
            return Err(ConfigError::invalid("waits.recheck", "must be above zero"));
        }
        if !(self.flow.max_tenant_share > 0.0 && self.flow.max_tenant_share <= 1.0) {
            return Err(ConfigError::invalid(
                "flow.max_tenant_share",
                "a share above 0 and at most 1",
            ));
        }
        if ((self.flow.max_in_flight_events as f64 * self.flow.max_tenant_share) as usize)
            < self.limits.max_batch_events
        {
            return Err(ConfigError::invalid(
                "flow.max_tenant_share",
                "a tenant's share of flow.max_in_flight_events must hold limits.max_batch_events",
            ));
        }
        if (self.rate.burst as usize) < self.limits.max_batch_events {
            return Err(ConfigError::invalid(
                "rate.burst",
                "must be at least limits.max_batch_events, or a full batch could never pass",
            ));
        }
        if self.flow.max_in_flight_events < self.limits.max_batch_events {
            return Err(ConfigError::invalid(
                "flow.max_in_flight_events",
                "must be at least limits.max_batch_events, or a full batch could never pass",
            ));
        }
        Ok(())
    }
}
