//! Figures of the hook calls for `/metrics`: calls by hook and outcome, and their latency
//! (every attempt of a call, retries and their delays included, as the caller waited).

use crate::Hook;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::time::Duration;

/// `hook` and `outcome` labels.
pub type HookLabels = Vec<(&'static str, &'static str)>;

type HistogramFamily = Family<HookLabels, Histogram, fn() -> Histogram>;

/// What a call came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `code` 0.
    Allowed,
    /// `code` ≠ 0.
    Denied,
    /// No usable answer after every attempt.
    Failed,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Allowed => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}

/// Hook call counters and latency histograms, shared by every clone (register them with
/// [`HookMetrics::register`]).
#[derive(Clone)]
pub struct HookMetrics {
    calls: Family<HookLabels, Counter>,
    latency: HistogramFamily,
}

fn latency_buckets() -> Histogram {
    // 1 ms … ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Default for HookMetrics {
    fn default() -> Self {
        HookMetrics {
            calls: Family::default(),
            latency: Family::new_with_constructor(latency_buckets as fn() -> Histogram),
        }
    }
}

impl HookMetrics {
    /// Counts one finished call of `hook` that took `took`.
    pub fn record(&self, hook: Hook, outcome: Outcome, took: Duration) {
        let labels = vec![("hook", hook.name()), ("outcome", outcome.label())];
        self.calls.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Adds these figures to `registry` (`hook_calls_total`, `hook_latency_seconds`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "hook_calls",
            "Hook calls by hook and outcome (ok, denied, failed)",
            self.calls.clone(),
        );
        registry.register(
            "hook_latency_seconds",
            "Time from a hook call to its answer, retries included",
            self.latency.clone(),
        );
    }
}
