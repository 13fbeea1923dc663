//! What the server adds to `/metrics` beside the HTTP adapter's own series: the
//! notification worker's outcomes and liveness, the Redis pool's state, the session
//! cache's hits and size, and the SMS gate's decisions. The collectors read their source at each scrape, so nothing runs between
//! scrapes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use adapter_redis::RedisStore;
use application::usecases::{
    AuditStats, DeliveryError, DeliveryOutcome, SmsKind, SmsOutcome, SmsStats,
};
use domain::AuditKind;
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};

/// What the notification worker reports: outcome counters, store errors, and whether it
/// runs (a readiness condition).
#[derive(Clone, Debug)]
pub(crate) struct WorkerTelemetry {
    outcomes: IntCounterVec,
    store_errors: IntCounter,
    running: Arc<AtomicBool>,
    running_gauge: IntGauge,
}

impl WorkerTelemetry {
    pub(crate) fn register(ops: &mut adapter_http::Operations) -> anyhow::Result<Self> {
        let outcomes = IntCounterVec::new(
            Opts::new(
                "jwt_todo_notifications_total",
                "Notification worker steps by outcome: sent, retried, dead_lettered, skipped, waiting.",
            ),
            &["outcome"],
        )?;
        let running_gauge = IntGauge::new(
            "jwt_todo_notification_worker_running",
            "1 while the notification worker runs, else 0.",
        )?;
        ops.registry.register(Box::new(outcomes.clone()))?;
        ops.registry.register(Box::new(running_gauge.clone()))?;
        let running = Arc::new(AtomicBool::new(false));
        let probe = Arc::clone(&running);
        ops.readiness.push((
            "notification worker",
            Arc::new(move || probe.load(Ordering::Acquire)),
        ));
        Ok(Self {
            outcomes,
            store_errors: ops
                .metrics
                .store_errors
                .with_label_values(&["notification_worker"]),
            running,
            running_gauge,
        })
    }

    pub(crate) fn record(&self, outcome: &Result<DeliveryOutcome, DeliveryError>) {
        let label = match outcome {
            Ok(DeliveryOutcome::Idle) => return,
            Ok(DeliveryOutcome::Sent { .. }) => "sent",
            Ok(DeliveryOutcome::Retrying { .. }) => "retried",
            Ok(DeliveryOutcome::DeadLettered { .. }) => "dead_lettered",
            Ok(DeliveryOutcome::Skipped { .. }) => "skipped",
            Ok(DeliveryOutcome::Waiting { .. }) => "waiting",
            Err(_) => {
                self.store_errors.inc();
                return;
            }
        };
        self.outcomes.with_label_values(&[label]).inc();
    }

    /// Marks the worker as running (readiness and the gauge), or no longer.
    pub(crate) fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Release);
        self.running_gauge.set(i64::from(running));
    }
}

/// `jwt_todo_redis_pool_connections{state}`: the deadpool pool's state, read at each
/// scrape (so nothing runs between scrapes).
pub(crate) struct RedisPoolCollector {
    store: std::sync::Weak<RedisStore>,
    gauges: IntGaugeVec,
}

impl RedisPoolCollector {
    pub(crate) fn register(
        store: &Arc<RedisStore>,
        ops: &mut adapter_http::Operations,
    ) -> anyhow::Result<()> {
        let gauges = IntGaugeVec::new(
            Opts::new(
                "jwt_todo_redis_pool_connections",
                "Redis connection pool (standalone mode): max, open, idle, and callers waiting.",
            ),
            &["state"],
        )?;
        ops.registry.register(Box::new(Self {
            store: Arc::downgrade(store),
            gauges,
        }))?;
        Ok(())
    }
}

impl prometheus::core::Collector for RedisPoolCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.gauges.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let usage = self.store.upgrade().and_then(|store| store.pool_usage());
        if let Some(usage) = usage {
            for (state, value) in [
                ("max", usage.max_size),
                ("open", usage.size),
                ("idle", usage.available),
                ("waiting", usage.waiting),
            ] {
                self.gauges
                    .with_label_values(&[state])
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            }
        }
        self.gauges.collect()
    }
}

/// The session cache's series, read at each scrape: `jwt_todo_session_cache_hits_total`,
/// `jwt_todo_session_cache_misses_total`, `jwt_todo_session_cache_entries` and
/// `jwt_todo_session_cache_live`.
pub(crate) struct SessionCacheCollector {
    store: std::sync::Weak<RedisStore>,
    hits: IntCounter,
    misses: IntCounter,
    entries: IntGauge,
    live: IntGauge,
}

impl SessionCacheCollector {
    /// Registers the series if `store` has a session cache.
    pub(crate) fn register(
        store: &Arc<RedisStore>,
        ops: &mut adapter_http::Operations,
    ) -> anyhow::Result<()> {
        if store.session_cache().is_none() {
            return Ok(());
        }
        ops.registry.register(Box::new(Self {
            store: Arc::downgrade(store),
            hits: IntCounter::new(
                "jwt_todo_session_cache_hits_total",
                "Session checks answered from this replica's session cache (no Redis round trip).",
            )?,
            misses: IntCounter::new(
                "jwt_todo_session_cache_misses_total",
                "Session checks that asked Redis: not cached, expired, being filled, or the invalidation link not proven within SESSION_CACHE_STALENESS.",
            )?,
            entries: IntGauge::new(
                "jwt_todo_session_cache_entries",
                "Sessions held in the session cache now (at most SESSION_CACHE_CAPACITY).",
            )?,
            live: IntGauge::new(
                "jwt_todo_session_cache_live",
                "1 while the session cache's invalidation link is proven within SESSION_CACHE_STALENESS (entries are served), else 0.",
            )?,
        }))?;
        Ok(())
    }
}

impl prometheus::core::Collector for SessionCacheCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        let mut descs = self.hits.desc();
        descs.extend(self.misses.desc());
        descs.extend(self.entries.desc());
        descs.extend(self.live.desc());
        descs
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        if let Some(stats) = self.store.upgrade().and_then(|store| store.session_cache()) {
            // Only this collector moves the counters, so they catch up by the difference.
            self.hits.inc_by(stats.hits.saturating_sub(self.hits.get()));
            self.misses
                .inc_by(stats.misses.saturating_sub(self.misses.get()));
            self.entries
                .set(i64::try_from(stats.entries).unwrap_or(i64::MAX));
            self.live.set(i64::from(stats.live));
        }
        let mut families = self.hits.collect();
        families.extend(self.misses.collect());
        families.extend(self.entries.collect());
        families.extend(self.live.collect());
        families
    }
}

/// `jwt_todo_sms_total{kind,outcome}`: what the SMS gate decided (queued, or skipped and
/// why), from the use cases' counters, read at each scrape.
pub(crate) struct SmsCollector {
    stats: Arc<SmsStats>,
    counters: IntCounterVec,
}

impl SmsCollector {
    pub(crate) fn register(
        stats: Arc<SmsStats>,
        ops: &mut adapter_http::Operations,
    ) -> anyhow::Result<()> {
        let counters = IntCounterVec::new(
            Opts::new(
                "jwt_todo_sms_total",
                "SMS by kind (todo_created, phone_code) and outcome: queued, or skipped or refused for unverified, country, cooldown, user_cap, number_cap.",
            ),
            &["kind", "outcome"],
        )?;
        ops.registry.register(Box::new(Self { stats, counters }))?;
        Ok(())
    }
}

impl prometheus::core::Collector for SmsCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.counters.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        for kind in SmsKind::ALL {
            for outcome in SmsOutcome::ALL {
                let now = self.stats.get(kind, outcome);
                if now == 0 {
                    // As every labelled counter here: it appears with its first event.
                    continue;
                }
                let counter = self
                    .counters
                    .with_label_values(&[kind.as_str(), outcome.as_str()]);
                // Only this collector moves the counter, so it catches up by the difference.
                counter.inc_by(now.saturating_sub(counter.get()));
            }
        }
        self.counters.collect()
    }
}

/// The audit trail's events, by kind, and those not stored (noise past an account's
/// budget, a failing store), from [`AuditStats`].
pub(crate) struct AuditCollector {
    stats: Arc<AuditStats>,
    events: IntCounterVec,
    unstored: IntCounterVec,
}

impl AuditCollector {
    pub(crate) fn register(
        stats: Arc<AuditStats>,
        ops: &mut adapter_http::Operations,
    ) -> anyhow::Result<()> {
        let events = IntCounterVec::new(
            Opts::new(
                "jwt_todo_audit_events_total",
                "Security events recorded in the accounts' audit trails, by kind (login_succeeded, login_failed, refreshed, reuse_detected, logged_out, session_revoked, password_changed, password_reset, phone_verified).",
            ),
            &["kind"],
        )?;
        let unstored = IntCounterVec::new(
            Opts::new(
                "jwt_todo_audit_events_unstored_total",
                "Audit events logged but not stored in the trail: over_budget (failed logins past an account's hourly budget) or lost (the store failed).",
            ),
            &["reason"],
        )?;
        ops.registry.register(Box::new(Self {
            stats,
            events,
            unstored,
        }))?;
        Ok(())
    }
}

impl prometheus::core::Collector for AuditCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        let mut descs = self.events.desc();
        descs.extend(self.unstored.desc());
        descs
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        // As the SMS counters: each appears with its first event, and only this collector
        // moves it, so it catches up by the difference.
        let catch_up = |counter: prometheus::IntCounter, now: u64| {
            counter.inc_by(now.saturating_sub(counter.get()));
        };
        for kind in AuditKind::ALL {
            let now = self.stats.recorded(kind);
            if now > 0 {
                catch_up(self.events.with_label_values(&[kind.as_str()]), now);
            }
        }
        for (reason, count) in [
            ("over_budget", &self.stats.over_budget),
            ("lost", &self.stats.lost),
        ] {
            let now = count.load(Ordering::Relaxed);
            if now > 0 {
                catch_up(self.unstored.with_label_values(&[reason]), now);
            }
        }
        let mut families = self.events.collect();
        families.extend(self.unstored.collect());
        families
    }
}
