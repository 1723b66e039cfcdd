//! A scenario file: who arrives when, how they watch, over which networks, and the server's
//! counting rules the ground truth must apply. Read once, checked whole, then immutable.
//!
//! Every table denies unknown keys, and [`Scenario::check`] names the key, the bad value and
//! the rule, so a typo never silently becomes a default.

use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

/// A release-day scenario (see `bench/scenarios/*.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario reproduces, one line, for the report.
    #[serde(default)]
    pub description: String,
    /// Seeds every viewer's random choices: the same seed gives the same audience.
    pub seed: u64,
    /// Seconds during which viewers arrive; at the end every viewer still watching leaves.
    pub duration_s: f64,
    /// Longest wait after `duration_s` for the last viewers to leave and their final beats
    /// to be acknowledged, seconds.
    #[serde(default = "default_settle_s")]
    pub settle_s: f64,
    /// Seconds between progress lines on stderr.
    #[serde(default = "default_progress_s")]
    pub progress_every_s: f64,
    /// Seconds between polls of the server's `/stats` (the live comparison and the plot).
    #[serde(default = "default_stats_s")]
    pub stats_every_s: f64,
    pub server: Rules,
    pub arrivals: Arrivals,
    pub viewing: Viewing,
    pub network: Network,
}

fn default_settle_s() -> f64 {
    120.0
}
fn default_progress_s() -> f64 {
    5.0
}
fn default_stats_s() -> f64 {
    5.0
}

/// The server's counting rules (its `[audience]` table). The simulator cannot read them from
/// the server, so they are stated here and must equal the server's configuration; the
/// heartbeat interval is checked against every minted session.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    pub heartbeat_interval_s: u64,
    pub view_threshold_ms: u64,
    pub liveness_ms: u64,
    pub min_beat_gap_ms: u64,
    /// The proof of work of a session's first beat, in bits. Every viewer solves what the
    /// server asks when it mints; stated here so that `bench/release-day.sh` configures the
    /// server with it, and checked against every mint.
    #[serde(default)]
    pub proof_bits: Option<u32>,
}

/// How the arrival curve is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CurveKind {
    /// Points are viewers watching at once: arrivals fill up to it, surplus viewers leave.
    Concurrency,
    /// Points are viewers arriving per second.
    Rate,
}

/// Arrivals: a piecewise-linear curve over the run's seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arrivals {
    pub curve: CurveKind,
    /// `[seconds, value]` pairs, seconds strictly increasing from 0; the last value holds.
    pub points: Vec<[f64; 2]>,
    /// No more sessions than this in the whole run (0: no limit).
    #[serde(default)]
    pub max_sessions: u64,
    /// New viewers per second at most, whatever the curve asks (0: no limit).
    #[serde(default)]
    pub max_arrivals_per_s: f64,
}

/// A log-normal distribution given by its median, clamped to `[min, max]`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogNormal {
    pub median: f64,
    #[serde(default)]
    pub sigma: f64,
    #[serde(default)]
    pub min: f64,
    #[serde(default = "infinity")]
    pub max: f64,
}

/// Zero or more, and not NaN or infinite.
fn non_negative(v: f64) -> bool {
    v >= 0.0 && v.is_finite()
}

fn infinity() -> f64 {
    f64::INFINITY
}

impl LogNormal {
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        (self.median * (self.sigma * rng.normal()).exp()).clamp(self.min, self.max)
    }

    fn check(&self, key: &str) -> anyhow::Result<()> {
        if !(self.median > 0.0 && self.median.is_finite()) {
            bail!("{key}.median = {} must be a positive number", self.median);
        }
        if !(self.sigma >= 0.0 && self.sigma < 5.0) {
            bail!("{key}.sigma = {} must be in 0..5", self.sigma);
        }
        if self.min < 0.0 || self.min > self.max {
            bail!(
                "{key}: min = {} and max = {} must satisfy 0 <= min <= max",
                self.min,
                self.max
            );
        }
        Ok(())
    }
}

/// How viewers watch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Viewing {
    /// Playing time before the viewer leaves, seconds.
    pub watch_s: LogNormal,
    /// Length of the simulated film, seconds; the real film's segments repeat to fill it
    /// (a short test film stands in for a feature). 0: the real film's length.
    #[serde(default)]
    pub film_s: f64,
    /// Pauses per hour of playing (Poisson).
    #[serde(default)]
    pub pauses_per_hour: f64,
    /// Length of a pause, seconds.
    #[serde(default = "default_pause")]
    pub pause_s: LogNormal,
    /// Forward seeks per hour of playing (Poisson); a seek empties the buffer.
    #[serde(default)]
    pub seeks_per_hour: f64,
    /// Share of viewers who really download segments; the others model their downloads
    /// from the bandwidth profile alone. Every viewer mints, fetches playlists and beats.
    pub segment_share: f64,
    /// Media the player keeps buffered ahead, seconds.
    #[serde(default = "default_buffer")]
    pub buffer_target_s: f64,
}

fn default_pause() -> LogNormal {
    LogNormal {
        median: 30.0,
        sigma: 0.8,
        min: 1.0,
        max: 600.0,
    }
}
fn default_buffer() -> f64 {
    30.0
}

/// How viewers reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Connections {
    /// Each viewer its own keep-alive connection(s), as without a CDN.
    Direct,
    /// Viewers share a bounded pool, as the origin sees a CDN's connections.
    Pooled,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub connections: Connections,
    /// Requests in flight at once (and so connections) in pooled mode.
    #[serde(default = "default_pool")]
    pub pool_size: usize,
    /// Local addresses to connect from, round-robin (each loopback address has ~28,000
    /// ports). Empty: the system's choice.
    #[serde(default)]
    pub source_addrs: Vec<IpAddr>,
    /// A request taking longer than this is an error, seconds.
    #[serde(default = "default_timeout")]
    pub request_timeout_s: f64,
    /// How long a failing mint or final heartbeat is retried (a server restart), seconds.
    #[serde(default = "default_retry")]
    pub retry_for_s: f64,
    /// Bandwidth profiles, mixed by share.
    pub profiles: Vec<Profile>,
}

fn default_pool() -> usize {
    256
}
fn default_timeout() -> f64 {
    10.0
}
fn default_retry() -> f64 {
    120.0
}

/// A class of access network.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    /// Share of viewers on this network, 0..1; the shares sum to 1.
    pub share: f64,
    /// Median throughput, kbit/s.
    pub kbps: f64,
    /// Spread of the throughput from one segment to the next (log-normal sigma).
    #[serde(default)]
    pub sigma: f64,
    /// Round trip added to every modelled download, ms.
    #[serde(default)]
    pub rtt_ms: f64,
}

impl Scenario {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading scenario {}", path.display()))?;
        let scenario: Scenario =
            toml::from_str(&text).with_context(|| format!("scenario {}", path.display()))?;
        scenario
            .check()
            .with_context(|| format!("scenario {}", path.display()))?;
        Ok(scenario)
    }

    /// Every rule a scenario must follow, each failure naming the key and the value.
    pub fn check(&self) -> anyhow::Result<()> {
        let positive = |key: &str, v: f64| {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(anyhow::anyhow!("{key} = {v} must be a positive number"))
            }
        };
        positive("duration_s", self.duration_s)?;
        positive("settle_s", self.settle_s)?;
        positive("progress_every_s", self.progress_every_s)?;
        positive("stats_every_s", self.stats_every_s)?;

        let r = &self.server;
        if r.heartbeat_interval_s == 0 {
            bail!("server.heartbeat_interval_s must be at least 1");
        }
        // Beats are jittered by ±10 %; the earliest must still clear the server's gap rule.
        let earliest_ms = r.heartbeat_interval_s * 900;
        if earliest_ms <= r.min_beat_gap_ms {
            bail!(
                "server.min_beat_gap_ms = {} must be below 90 % of heartbeat_interval_s ({} ms), \
                 or jittered beats would be dropped as too soon",
                r.min_beat_gap_ms,
                earliest_ms
            );
        }
        if r.liveness_ms <= r.heartbeat_interval_s * 1100 {
            bail!(
                "server.liveness_ms = {} must exceed the longest beat interval ({} ms)",
                r.liveness_ms,
                r.heartbeat_interval_s * 1100
            );
        }
        if r.view_threshold_ms == 0 {
            bail!("server.view_threshold_ms must be at least 1");
        }

        let a = &self.arrivals;
        if a.points.is_empty() {
            bail!("arrivals.points is empty; give at least one [seconds, value] pair");
        }
        if a.points[0][0] != 0.0 {
            bail!(
                "arrivals.points must start at second 0, not {}",
                a.points[0][0]
            );
        }
        for pair in a.points.windows(2) {
            if pair[1][0] <= pair[0][0] {
                bail!(
                    "arrivals.points: second {} follows second {}; seconds must increase",
                    pair[1][0],
                    pair[0][0]
                );
            }
        }
        if let Some(p) = a.points.iter().find(|p| !(p[1] >= 0.0 && p[1].is_finite())) {
            bail!(
                "arrivals.points: value {} at second {} must be zero or more",
                p[1],
                p[0]
            );
        }
        if !non_negative(a.max_arrivals_per_s) {
            bail!(
                "arrivals.max_arrivals_per_s = {} must be zero or more",
                a.max_arrivals_per_s
            );
        }

        let v = &self.viewing;
        v.watch_s.check("viewing.watch_s")?;
        v.pause_s.check("viewing.pause_s")?;
        if !(0.0..=1.0).contains(&v.segment_share) {
            bail!(
                "viewing.segment_share = {} must be within 0..1",
                v.segment_share
            );
        }
        for (key, value) in [
            ("viewing.pauses_per_hour", v.pauses_per_hour),
            ("viewing.seeks_per_hour", v.seeks_per_hour),
            ("viewing.film_s", v.film_s),
        ] {
            if !(value >= 0.0 && value.is_finite()) {
                bail!("{key} = {value} must be zero or more");
            }
        }
        positive("viewing.buffer_target_s", v.buffer_target_s)?;

        let n = &self.network;
        if n.pool_size == 0 {
            bail!("network.pool_size must be at least 1");
        }
        positive("network.request_timeout_s", n.request_timeout_s)?;
        positive("network.retry_for_s", n.retry_for_s)?;
        if n.profiles.is_empty() {
            bail!("network.profiles is empty; give at least one bandwidth profile");
        }
        for p in &n.profiles {
            if !(0.0..=1.0).contains(&p.share) {
                bail!(
                    "network.profiles `{}`: share = {} must be within 0..1",
                    p.name,
                    p.share
                );
            }
            positive(&format!("network.profiles `{}`: kbps", p.name), p.kbps)?;
            if !(non_negative(p.sigma) && p.sigma < 5.0 && non_negative(p.rtt_ms)) {
                bail!(
                    "network.profiles `{}`: sigma = {} must be in 0..5 and rtt_ms = {} zero or more",
                    p.name,
                    p.sigma,
                    p.rtt_ms
                );
            }
        }
        let sum: f64 = n.profiles.iter().map(|p| p.share).sum();
        if (sum - 1.0).abs() > 1e-6 {
            bail!("network.profiles shares sum to {sum}; they must sum to 1");
        }
        Ok(())
    }

    /// The curve's value at `t` seconds (linear between points, the last value after).
    pub fn curve_at(&self, t: f64) -> f64 {
        let points = &self.arrivals.points;
        for pair in points.windows(2) {
            let ([t0, v0], [t1, v1]) = (pair[0], pair[1]);
            if t < t1 {
                return v0 + (v1 - v0) * ((t - t0) / (t1 - t0)).clamp(0.0, 1.0);
            }
        }
        points.last().map_or(0.0, |p| p[1])
    }

    /// Picks a bandwidth profile by share.
    pub fn pick_profile(&self, rng: &mut Rng) -> &Profile {
        let mut x = rng.f64();
        for p in &self.network.profiles {
            if x < p.share {
                return p;
            }
            x -= p.share;
        }
        // Rounding left a sliver past the last share.
        &self.network.profiles[self.network.profiles.len() - 1]
    }
}

/// A small, fast, seedable generator (SplitMix64, Steele et al. 2014): reproducible runs
/// need one stream per viewer, not cryptographic quality, so no `rand` dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// The stream of viewer `index` in a run seeded with `seed`.
    pub fn new(seed: u64, index: u64) -> Self {
        let mut rng = Rng(seed ^ index.wrapping_mul(0xA24B_AED4_963E_E407));
        rng.next_u64();
        rng
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.f64(); // (0, 1]
        let v = self.f64();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Exponential with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOKE: &str = include_str!("../../../bench/scenarios/smoke.toml");

    fn parse(text: &str) -> anyhow::Result<Scenario> {
        let s: Scenario = toml::from_str(text)?;
        s.check()?;
        Ok(s)
    }

    #[test]
    fn shipped_scenarios_are_valid() {
        for text in [
            SMOKE,
            include_str!("../../../bench/scenarios/peak-60k.toml"),
            include_str!("../../../bench/scenarios/day-1m.toml"),
        ] {
            parse(text).unwrap();
        }
    }

    #[test]
    fn bad_scenarios_name_the_value_and_the_rule() {
        let err = parse(&SMOKE.replace("share = 0.4", "share = 0.3")).unwrap_err();
        assert!(err.to_string().contains("sum to 0.9"), "{err}");
        let err = parse(&SMOKE.replace("seed =", "sede = 1\nseed =")).unwrap_err();
        assert!(err.to_string().contains("unknown field `sede`"), "{err}");
        let err = parse(&SMOKE.replace("segment_share = 0.25", "segment_share = 2")).unwrap_err();
        assert!(err.to_string().contains("segment_share = 2"), "{err}");
        let err =
            parse(&SMOKE.replace("min_beat_gap_ms = 200", "min_beat_gap_ms = 1900")).unwrap_err();
        assert!(err.to_string().contains("min_beat_gap_ms = 1900"), "{err}");
    }

    #[test]
    fn the_curve_is_piecewise_linear() {
        let mut s = parse(SMOKE).unwrap();
        s.arrivals.points = vec![[0.0, 0.0], [10.0, 100.0], [20.0, 100.0], [30.0, 0.0]];
        assert_eq!(s.curve_at(5.0), 50.0);
        assert_eq!(s.curve_at(15.0), 100.0);
        assert_eq!(s.curve_at(25.0), 50.0);
        assert_eq!(s.curve_at(99.0), 0.0);
    }

    #[test]
    fn the_generator_is_reproducible_and_profiles_follow_shares() {
        let s = parse(SMOKE).unwrap();
        let a: Vec<u64> = (0..4).map(|_| Rng::new(7, 3).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::new(7, 3).next_u64(), Rng::new(7, 4).next_u64());
        let mut rng = Rng::new(1, 0);
        let n = 20_000;
        let fibre = (0..n)
            .filter(|_| s.pick_profile(&mut rng).name == "fibre")
            .count();
        let share = s.network.profiles[0].share;
        assert!(((fibre as f64 / n as f64) - share).abs() < 0.02);
    }
}
