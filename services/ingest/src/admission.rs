//! Admission control: a per-tenant rate, a bound on events accepted but not yet committed, and each
//! tenant's share of that bound.
//!
//! Both refuse at once rather than queue. A queue in front of the store would only hide overload
//! until memory ran out; a refusal with `Retry-After` tells the upstream system to back off, and
//! keeps ingest's memory flat however hard it is pushed.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use quorum_domain::TenantId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::IngestConfig;

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The tenant is over its rate; it may try again after this long.
    RateLimited { retry_after: Duration },
    /// Too much is in flight already: the pipeline is saturated.
    Saturated,
    /// This tenant holds its whole share of what may be in flight.
    TenantBusy,
}

/// Shared by every request handler and the NATS consumer.
#[derive(Clone)]
pub struct Admission {
    rate: Arc<DefaultKeyedRateLimiter<TenantId>>,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    /// Events each tenant has in flight, and the most one tenant may.
    by_tenant: Arc<Mutex<HashMap<TenantId, usize>>>,
    max_per_tenant: usize,
}

/// Held while a request's events are in flight; dropping it frees their room.
pub struct Admitted {
    _permit: OwnedSemaphorePermit,
    tenant: TenantId,
    events: usize,
    by_tenant: Arc<Mutex<HashMap<TenantId, usize>>>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        metrics::gauge!(crate::metrics::ADMITTED_EVENTS).decrement(self.events as f64);
        let mut held = lock(&self.by_tenant);
        if let Some(n) = held.get_mut(&self.tenant) {
            *n = n.saturating_sub(self.events);
            if *n == 0 {
                held.remove(&self.tenant);
            }
        }
    }
}

fn lock(
    m: &Mutex<HashMap<TenantId, usize>>,
) -> std::sync::MutexGuard<'_, HashMap<TenantId, usize>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Admission {
    pub fn new(config: &IngestConfig) -> Self {
        let rate = NonZeroU32::new(config.rate.events_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.rate.burst).unwrap_or(rate);
        metrics::gauge!(crate::metrics::ADMISSION_CAPACITY_EVENTS)
            .set(config.flow.max_in_flight_events as f64);
        Self {
            rate: Arc::new(RateLimiter::hashmap(
                Quota::per_second(rate).allow_burst(burst),
            )),
            in_flight: Arc::new(Semaphore::new(config.flow.max_in_flight_events)),
            max_in_flight: config.flow.max_in_flight_events,
            by_tenant: Arc::default(),
            max_per_tenant: ((config.flow.max_in_flight_events as f64
                * config.flow.max_tenant_share) as usize)
                .max(1),
        }
    }

    /// Admits `events` events of `tenant`, or says why not. The in-flight room is taken first, so
    /// a request refused for saturation does not use up the tenant's rate.
    pub fn admit(&self, tenant: &TenantId, events: usize) -> Result<Admitted, Refusal> {
        let events = events.clamp(1, self.max_in_flight);
        let n = u32::try_from(events).unwrap_or(u32::MAX);
        let permit = self
            .in_flight
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| Refusal::Saturated)?;
        // Then the tenant's share: with room left overall, a tenant at its share is told to slow
        // down (429), and never takes the room the others need.
        let mut held = lock(&self.by_tenant);
        let mine = held.get(tenant).copied().unwrap_or(0);
        if mine + events > self.max_per_tenant {
            return Err(Refusal::TenantBusy);
        }
        let cells = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        match self.rate.check_key_n(tenant, cells) {
            Ok(Ok(())) => {
                *held.entry(tenant.clone()).or_default() += events;
                metrics::gauge!(crate::metrics::ADMITTED_EVENTS).increment(events as f64);
                Ok(Admitted {
                    _permit: permit,
                    tenant: tenant.clone(),
                    events,
                    by_tenant: self.by_tenant.clone(),
                })
            }
            Ok(Err(not_until)) => Err(Refusal::RateLimited {
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            }),
            // More events at once than the burst allows: config validation rules this out for a
            // batch within the limits, so it can only be an oversized one, refused earlier.
            Err(_) => Err(Refusal::RateLimited {
                retry_after: Duration::from_secs(1),
            }),
        }
    }

    /// Events in flight now (for metrics and tests).
    pub fn in_flight(&self) -> usize {
        self.max_in_flight - self.in_flight.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(rate: u32, burst: u32, in_flight: usize) -> Admission {
        let mut config = IngestConfig::default();
        config.rate.events_per_second = rate;
        config.rate.burst = burst;
        config.flow.max_in_flight_events = in_flight;
        config.flow.max_tenant_share = 1.0;
        Admission::new(&config)
    }

    #[test]
    fn one_tenant_cannot_hold_more_than_its_share() {
        let mut config = IngestConfig::default();
        config.flow.max_in_flight_events = 10;
        config.flow.max_tenant_share = 0.5;
        let a = Admission::new(&config);
        let (acme, other) = (
            TenantId::new("acme").unwrap(),
            TenantId::new("other").unwrap(),
        );
        let held = a.admit(&acme, 5).unwrap();
        assert_eq!(a.admit(&acme, 1).err(), Some(Refusal::TenantBusy));
        // The other tenant still has room, although acme is busy.
        let theirs = a.admit(&other, 5).unwrap();
        drop(held);
        assert!(a.admit(&acme, 5).is_ok(), "acme's share is free again");
        drop(theirs);
    }

    #[test]
    fn a_tenant_over_its_rate_is_told_when_to_come_back() {
        let a = admission(1, 5, 100);
        let acme = TenantId::new("acme").unwrap();
        let _held = a.admit(&acme, 5).expect("the burst passes");
        match a.admit(&acme, 1) {
            Err(Refusal::RateLimited { retry_after }) => assert!(retry_after > Duration::ZERO),
            other => panic!("expected a rate refusal, got {:?}", other.map(|_| ())),
        }
        // Another tenant has its own rate.
        assert!(a.admit(&TenantId::new("other").unwrap(), 1).is_ok());
    }

    #[test]
    fn saturation_refuses_until_room_is_freed() {
        let a = admission(1000, 1000, 10);
        let acme = TenantId::new("acme").unwrap();
        let held = a.admit(&acme, 8).unwrap();
        assert_eq!(a.in_flight(), 8);
        assert_eq!(a.admit(&acme, 3).err(), Some(Refusal::Saturated));
        drop(held);
        assert_eq!(a.in_flight(), 0);
        assert!(a.admit(&acme, 3).is_ok());
    }
}
