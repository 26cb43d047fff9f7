//! `GET /metrics`: the control plane in Prometheus' text format.
//!
//! Request latency by route and status, jobs handed out by claims, leases the
//! sweeper ended, and jobs by phase and status (counted in the database when
//! scraped, so every replica reports the same, current totals). Each server has
//! its own registry (prometheus-client has no global one), so servers in one
//! process — the test suite's — do not mix their figures.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::store::Swept;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The route's pattern (`/v1/jobs/{id}/log`), never the raw path.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    phase: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExpiryLabels {
    outcome: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Histogram>,
    claimed: Counter,
    expired: Family<ExpiryLabels, Counter>,
    jobs: Family<JobLabels, Gauge>,
}

fn latency() -> Histogram {
    // 1 ms to about 65 s: a long poll's whole wait fits.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sortie_cp");
        let requests =
            Family::<RequestLabels, Histogram>::new_with_constructor(latency as fn() -> Histogram);
        registry.register(
            "request_duration_seconds",
            "Time to answer a request, by method, route and status",
            requests.clone(),
        );
        let claimed = Counter::default();
        registry.register(
            "jobs_claimed",
            "Jobs handed out to runners by claims",
            claimed.clone(),
        );
        let expired = Family::<ExpiryLabels, Counter>::default();
        registry.register(
            "lease_expiries",
            "Leases the sweeper ended: requeued (never started), lost (no heartbeat) or cancelled",
            expired.clone(),
        );
        let jobs = Family::<JobLabels, Gauge>::default();
        registry.register(
            "jobs",
            "Jobs in the store, by phase and status",
            jobs.clone(),
        );
        Metrics {
            registry,
            requests,
            claimed,
            expired,
            jobs,
        }
    }
}

impl Metrics {
    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .observe(seconds);
    }

    pub fn claimed(&self, jobs: usize) {
        self.claimed.inc_by(jobs as u64);
    }

    pub fn swept(&self, swept: &Swept) {
        let outcomes = [
            ("requeued", swept.requeued),
            ("lost", swept.lost),
            ("cancelled", swept.cancelled),
        ];
        for (outcome, n) in outcomes {
            if n > 0 {
                self.expired
                    .get_or_create(&ExpiryLabels {
                        outcome: outcome.into(),
                    })
                    .inc_by(n as u64);
            }
        }
    }

    /// The text exposition, with the job counts just read from the store.
    pub fn render(&self, counts: &[(String, String, u64)]) -> String {
        self.jobs.clear();
        for (phase, status, n) in counts {
            self.jobs
                .get_or_create(&JobLabels {
                    phase: phase.clone(),
                    status: status.clone(),
                })
                .set(*n as i64);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }
}
