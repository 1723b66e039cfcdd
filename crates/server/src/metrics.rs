//! Prometheus metrics, served at `/metrics` in the OpenMetrics text format.
//!
//! Names follow `monsoon_<noun>_<unit>` (counters get `_total` from the encoder): requests,
//! bytes and latency of the delivery path by object class, the hot cache's hits, misses and
//! size, open connections, connections refused over the per-address limit, and failed accepts.
//!
//! Who may read them is a setting ([`MetricsAccess`]): the figures tell an attacker how close
//! the server is to its limits, so by default only the operator (and a Prometheus holding the
//! admin token) may.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::delivery::ObjectClass;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    class: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FilmLabel {
    film: String,
}

type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// Who may read `/metrics` (`[serve] metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAccess {
    /// Anyone: for a listener only the monitoring network reaches.
    Public,
    /// Signed-in operators, and scrapers sending `Authorization: Bearer <admin token>`.
    #[default]
    Admin,
    /// Nobody: `/metrics` is not served (404).
    Off,
}

impl std::str::FromStr for MetricsAccess {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "public" => Ok(Self::Public),
            "admin" => Ok(Self::Admin),
            "off" => Ok(Self::Off),
            other => Err(format!(
                "metrics = {other:?} is not one of \"public\", \"admin\", \"off\""
            )),
        }
    }
}

/// Per-film audience gauges, set from the live figures at each scrape.
#[derive(Debug, Default)]
struct AudienceGauges {
    concurrent: Family<FilmLabel, Gauge>,
    peak: Family<FilmLabel, Gauge>,
    views: Family<FilmLabel, Gauge>,
    views_24h: Family<FilmLabel, Gauge>,
    playing: Family<FilmLabel, FloatGauge>,
    rebuffer: Family<FilmLabel, FloatGauge>,
    startup_p95: Family<FilmLabel, FloatGauge>,
}

/// Statuses common enough to keep a direct handle to, for every object class (looking a
/// label set up in a family takes a lock and a hash on every request).
const STATUSES: [u16; 6] = [200, 206, 304, 404, 412, 416];

/// Every metric of the process, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    /// `ObjectClass::ALL` × `STATUSES` request counters, then per-class bytes and latency.
    hot_requests: Vec<Counter>,
    hot_bytes: Vec<Counter>,
    hot_latency: Vec<Histogram>,
    cache_hits: Counter,
    cache_misses: Counter,
    cache_bytes: Gauge,
    fast_requests: Counter,
    handoffs: Counter,
    yields: Counter,
    connections: Gauge,
    refused: Counter,
    accept_errors: Counter,
    open: AtomicI64,
    audience: AudienceGauges,
    /// Media answers with a 4xx and with a 5xx status, by object class (`ObjectClass::ALL`
    /// order): the same requests as `requests`, read without walking the family.
    failed: Vec<[AtomicU64; 2]>,
    /// A sample of the origin's counters each minute, for the dashboard's windows.
    history: Mutex<VecDeque<OriginSample>>,
    /// Bytes players reported downloading in the beats this process committed.
    reported_bytes: Counter,
}

/// The origin's counters at one moment, beside the bytes players reported by then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OriginSample {
    /// ms since the Unix epoch.
    pub at: i64,
    /// Media body bytes this process sent (Σ `monsoon_media_bytes_total`).
    pub egress: u64,
    /// Bytes players reported downloading in the beats this process committed.
    pub players: u64,
    /// Media answers with a 4xx and a 5xx status, by object class.
    pub failed: [[u64; 2]; ObjectClass::ALL.len()],
}

/// How long the samples reach back: the dashboard's longest window, and a minute.
const HISTORY_MS: i64 = 24 * 3_600_000 + 60_000;

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let bytes = Family::<ClassLabel, Counter>::default();
        let latency = Family::<ClassLabel, Histogram>::new_with_constructor(|| {
            // 0.1 ms … 3.3 s
            Histogram::new(exponential_buckets(0.0001, 2.0, 16))
        });
        let cache_hits = Counter::default();
        let cache_misses = Counter::default();
        let cache_bytes = Gauge::default();
        let connections = Gauge::default();
        let fast_requests = Counter::default();
        let handoffs = Counter::default();
        let yields = Counter::default();
        let refused = Counter::default();
        let accept_errors = Counter::default();
        registry.register(
            "monsoon_media_requests",
            "Media requests by object class and status",
            requests.clone(),
        );
        registry.register(
            "monsoon_media_bytes",
            "Media body bytes sent by object class",
            bytes.clone(),
        );
        registry.register(
            "monsoon_media_request_duration_seconds",
            "Time to build a media response (to the first body byte)",
            latency.clone(),
        );
        registry.register("monsoon_cache_hits", "Hot cache hits", cache_hits.clone());
        registry.register(
            "monsoon_cache_misses",
            "Hot cache misses",
            cache_misses.clone(),
        );
        registry.register(
            "monsoon_cache_bytes",
            "Bytes held by the hot cache",
            cache_bytes.clone(),
        );
        registry.register(
            "monsoon_fast_path_requests",
            "Media requests answered on the HTTP/1.1 fast path (the others of \
             monsoon_media_requests went through the router)",
            fast_requests.clone(),
        );
        registry.register(
            "monsoon_fast_path_handoffs",
            "Connections the fast path handed to the router for a request it does not answer",
            handoffs.clone(),
        );
        registry.register(
            "monsoon_http_yields",
            "Times an HTTP thread gave its core up after answering many requests without \
             waiting for one: the server is saturated",
            yields.clone(),
        );
        registry.register(
            "monsoon_open_connections",
            "HTTP connections open now",
            connections.clone(),
        );
        registry.register(
            "monsoon_connections_refused",
            "Connections closed at once because their address had max_connections_per_addr open",
            refused.clone(),
        );
        registry.register(
            "monsoon_accept_errors",
            "Failed accepts, mostly for want of file descriptors (the listener backs off)",
            accept_errors.clone(),
        );
        let reported_bytes = Counter::default();
        registry.register(
            "monsoon_audience_reported_bytes",
            "Bytes players reported downloading (heartbeat `bytes`) in the beats this process \
             committed: 1 - rate(monsoon_media_bytes_total) / rate(this) estimates the cache \
             tier's offload (docs/AUDIENCE.md)",
            reported_bytes.clone(),
        );
        let audience = AudienceGauges::default();
        registry.register(
            "monsoon_audience_concurrent_viewers",
            "Sessions watching now (liveness window, paused excluded)",
            audience.concurrent.clone(),
        );
        registry.register(
            "monsoon_audience_peak_concurrent_viewers",
            "Highest sampled concurrent viewers",
            audience.peak.clone(),
        );
        registry.register(
            "monsoon_audience_views",
            "Views counted",
            audience.views.clone(),
        );
        registry.register(
            "monsoon_audience_views_24h",
            "Views in the last 24 hours",
            audience.views_24h.clone(),
        );
        registry.register(
            "monsoon_audience_playing_time_seconds",
            "Playing time of all sessions",
            audience.playing.clone(),
        );
        registry.register(
            "monsoon_audience_rebuffer_ratio",
            "Rebuffering time over playing plus rebuffering time",
            audience.rebuffer.clone(),
        );
        registry.register(
            "monsoon_audience_startup_p95_seconds",
            "95th percentile of startup time",
            audience.startup_p95.clone(),
        );
        let hot_requests = ObjectClass::ALL
            .iter()
            .map(|class| class.label())
            .flat_map(|class| {
                STATUSES
                    .iter()
                    .map(move |&status| RequestLabels { class, status })
            })
            .map(|labels| requests.get_or_create(&labels).clone())
            .collect();
        let hot_bytes = ObjectClass::ALL
            .iter()
            .map(|class| {
                bytes
                    .get_or_create(&ClassLabel {
                        class: class.label(),
                    })
                    .clone()
            })
            .collect();
        let hot_latency = ObjectClass::ALL
            .iter()
            .map(|class| {
                latency
                    .get_or_create(&ClassLabel {
                        class: class.label(),
                    })
                    .clone()
            })
            .collect();
        Self {
            registry,
            requests,
            hot_requests,
            hot_bytes,
            hot_latency,
            cache_hits,
            cache_misses,
            cache_bytes,
            fast_requests,
            handoffs,
            yields,
            connections,
            refused,
            accept_errors,
            open: AtomicI64::new(0),
            audience,
            failed: ObjectClass::ALL
                .iter()
                .map(|_| Default::default())
                .collect(),
            history: Mutex::new(VecDeque::new()),
            reported_bytes,
        }
    }
}

impl Metrics {
    pub fn media_request(&self, class: ObjectClass, status: u16, bytes: u64, took: Duration) {
        let c = class as usize;
        match STATUSES.iter().position(|&s| s == status) {
            Some(s) => self.hot_requests[c * STATUSES.len() + s].inc(),
            None => self
                .requests
                .get_or_create(&RequestLabels {
                    class: class.label(),
                    status,
                })
                .inc(),
        };
        self.hot_bytes[c].inc_by(bytes);
        self.hot_latency[c].observe(took.as_secs_f64());
        self.count_failed(class, status);
    }

    /// A media request refused before any object was found or read (no such film or file,
    /// the store failing): counted by status like the others, kept out of the latency.
    pub fn media_failed(&self, class: ObjectClass, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                class: class.label(),
                status,
            })
            .inc();
        self.count_failed(class, status);
    }

    fn count_failed(&self, class: ObjectClass, status: u16) {
        if status >= 400 {
            let failed = usize::from(status >= 500);
            self.failed[class as usize][failed].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The origin's counters now, with `players` (the bytes players reported).
    pub fn origin_now(&self, at: i64, players: u64) -> OriginSample {
        let mut failed = [[0; 2]; ObjectClass::ALL.len()];
        for (c, counts) in self.failed.iter().enumerate() {
            failed[c] = [
                counts[0].load(Ordering::Relaxed),
                counts[1].load(Ordering::Relaxed),
            ];
        }
        OriginSample {
            at,
            egress: self.hot_bytes.iter().map(Counter::get).sum(),
            players,
            failed,
        }
    }

    /// Keeps `sample` as its minute's (a later sample in the same minute replaces an earlier
    /// one), forgetting those older than a day.
    pub fn record_origin(&self, sample: OriginSample) {
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        let minute = |at: i64| at.div_euclid(60_000);
        // The first sample of a process stays: it is where "since start" begins.
        if history.len() > 1
            && history
                .back()
                .is_some_and(|last| minute(last.at) == minute(sample.at))
        {
            history.pop_back();
        }
        history.push_back(sample);
        while history
            .front()
            .is_some_and(|first| sample.at - first.at > HISTORY_MS)
        {
            history.pop_front();
        }
    }

    /// The samples kept, oldest first.
    pub fn origin_history(&self) -> Vec<OriginSample> {
        let history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        history.iter().copied().collect()
    }

    pub fn cache_hit(&self) {
        self.cache_hits.inc();
    }

    pub fn cache_miss(&self) {
        self.cache_misses.inc();
    }

    pub fn fast_path_request(&self) {
        self.fast_requests.inc();
    }

    pub fn fast_path_handoff(&self) {
        self.handoffs.inc();
    }

    pub fn http_yield(&self) {
        self.yields.inc();
    }

    pub fn connection_refused(&self) {
        self.refused.inc();
    }

    pub fn accept_error(&self) {
        self.accept_errors.inc();
    }

    pub fn connection_opened(&self) {
        let n = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.connections.set(n);
    }

    pub fn connection_closed(&self) {
        let n = self.open.fetch_sub(1, Ordering::Relaxed) - 1;
        self.connections.set(n);
    }

    /// Brings `monsoon_audience_reported_bytes_total` up to `total` (the audience's own
    /// counter, which only grows).
    pub fn set_reported_bytes(&self, total: u64) {
        let seen = self.reported_bytes.get();
        if total > seen {
            self.reported_bytes.inc_by(total - seen);
        }
    }

    /// Sets the audience gauges of one film from its live figures.
    pub fn set_audience(&self, stats: &monsoon_audience::FilmStats) {
        let film = FilmLabel {
            film: stats.film.clone(),
        };
        let a = &self.audience;
        let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        a.concurrent
            .get_or_create(&film)
            .set(int(stats.concurrent_viewers));
        a.peak
            .get_or_create(&film)
            .set(int(stats.peak_concurrent_viewers));
        a.views.get_or_create(&film).set(int(stats.views));
        a.views_24h.get_or_create(&film).set(int(stats.views_24h));
        a.playing.get_or_create(&film).set(stats.playing_time_s);
        a.rebuffer.get_or_create(&film).set(stats.rebuffer_ratio);
        a.startup_p95
            .get_or_create(&film)
            .set(stats.startup_ms_p95.unwrap_or(0) as f64 / 1000.0);
    }

    /// The text exposition, with the cache size sampled now.
    pub fn render(&self, cache_bytes: u64) -> String {
        self.cache_bytes
            .set(i64::try_from(cache_bytes).unwrap_or(i64::MAX));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
