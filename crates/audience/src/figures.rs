//! A film's live figures, kept up to date as sessions change rather than recomputed from
//! them: reading them costs the same at 60 sessions and at 60,000, so `/stats` and `/metrics`
//! polled many times a second never hold the lock heartbeats need for long.
//!
//! Every session contributes to the figures through [`FilmFigures::add`]; a change to a
//! session is `remove(old)` then `add(new)`. Figures that depend on the time (concurrent
//! viewers, exits before start, 24-hour windows) keep timestamps in a [`WindowCount`], which
//! answers "how many since t" with work proportional only to what crossed the edge since the
//! last question.

use crate::Map;
use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::{Codec, Config, Minute, Network, PlayerState, Session};

pub(crate) const DAY_MS: i64 = 24 * 3600 * 1000;

/// Counts timestamps at or after a moving edge, exactly.
#[derive(Debug, Default)]
pub(crate) struct WindowCount {
    at: BTreeMap<i64, u32>,
    /// Entries at or after `edge` are counted in `recent`.
    edge: i64,
    recent: u64,
    total: u64,
}

impl WindowCount {
    pub fn insert(&mut self, t: i64) {
        *self.at.entry(t).or_default() += 1;
        self.total += 1;
        if t >= self.edge {
            self.recent += 1;
        }
    }

    pub fn remove(&mut self, t: i64) {
        let Some(count) = self.at.get_mut(&t) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            self.at.remove(&t);
        }
        self.total -= 1;
        if t >= self.edge {
            self.recent -= 1;
        }
    }

    /// Entries at or after `since`. Moves the edge there: the work is the entries between
    /// the old edge and the new, each crossed once as time goes forward.
    pub fn since(&mut self, since: i64) -> u64 {
        if since > self.edge {
            let crossed: u64 = self
                .at
                .range(self.edge..since)
                .map(|(_, c)| u64::from(*c))
                .sum();
            self.recent -= crossed;
        } else if since < self.edge {
            let back: u64 = self
                .at
                .range(since..self.edge)
                .map(|(_, c)| u64::from(*c))
                .sum();
            self.recent += back;
        }
        self.edge = since;
        self.recent
    }

    /// Every entry, whatever its time.
    pub fn total(&self) -> u64 {
        self.total
    }
}

/// Startup times in buckets of 1 ms below 1 s and of two significant digits above (1 % at
/// worst): percentiles from a few thousand counters instead of a sort of every session.
#[derive(Debug)]
pub(crate) struct StartupHistogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for StartupHistogram {
    fn default() -> Self {
        Self {
            counts: vec![0; Self::bucket(crate::heartbeat::limits::STARTUP_MS) + 1],
            total: 0,
        }
    }
}

impl StartupHistogram {
    fn bucket(ms: u64) -> usize {
        match ms {
            0..1_000 => ms as usize,
            1_000..10_000 => 1_000 + (ms as usize - 1_000) / 10,
            10_000..100_000 => 1_900 + (ms as usize - 10_000) / 100,
            _ => 2_800 + (ms.min(crate::heartbeat::limits::STARTUP_MS) as usize - 100_000) / 1_000,
        }
    }

    /// The smallest time of bucket `i`.
    fn floor(i: usize) -> u64 {
        let i = i as u64;
        match i {
            0..1_000 => i,
            1_000..1_900 => 1_000 + (i - 1_000) * 10,
            1_900..2_800 => 10_000 + (i - 1_900) * 100,
            _ => 100_000 + (i - 2_800) * 1_000,
        }
    }

    fn add(&mut self, ms: u64) {
        self.counts[Self::bucket(ms)] += 1;
        self.total += 1;
    }

    fn remove(&mut self, ms: u64) {
        let bucket = &mut self.counts[Self::bucket(ms)];
        *bucket = bucket.saturating_sub(1);
        self.total = self.total.saturating_sub(1);
    }

    /// Nearest-rank percentile `p` (0 to 1), as its bucket's smallest time.
    fn percentile(&self, p: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((p * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Self::floor(i));
            }
        }
        None
    }
}

/// The concurrent viewers of a film: viewers with at least one session watching and heard
/// from within the liveness window. A viewer in two tabs is one viewer.
#[derive(Debug, Default)]
struct Viewers {
    /// viewer → (a hash of the session id, its last beat) of each of its watching sessions.
    /// Emptied entries stay until `prune`: a session's beat is a removal and an insertion.
    watching: Map<String, Vec<(u64, i64)>>,
    /// Each watching viewer's latest beat.
    latest: WindowCount,
}

impl Viewers {
    fn latest_of(sessions: &[(u64, i64)]) -> Option<i64> {
        sessions.iter().map(|(_, at)| *at).max()
    }

    fn update(&mut self, viewer: &str, change: impl FnOnce(&mut Vec<(u64, i64)>)) {
        // Looked up before inserted: a viewer's name is copied only when it first watches.
        if !self.watching.contains_key(viewer) {
            self.watching.insert(viewer.to_owned(), Vec::new());
        }
        let Some(sessions) = self.watching.get_mut(viewer) else {
            return;
        };
        let before = Self::latest_of(sessions);
        change(sessions);
        let after = Self::latest_of(sessions);
        if before != after {
            if let Some(t) = before {
                self.latest.remove(t);
            }
            if let Some(t) = after {
                self.latest.insert(t);
            }
        }
    }

    fn key(session: &str) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        session.hash(&mut hasher);
        hasher.finish()
    }

    fn add(&mut self, s: &Session, at: i64) {
        let key = Self::key(&s.id);
        self.update(&s.viewer, |v| v.push((key, at)));
    }

    fn remove(&mut self, s: &Session, at: i64) {
        let key = Self::key(&s.id);
        self.update(&s.viewer, |v| {
            if let Some(i) = v.iter().position(|(id, t)| *id == key && *t == at) {
                v.swap_remove(i);
            }
        });
    }

    /// Sessions of `viewer` watching the film, heard from since `since`.
    fn live_sessions(&self, viewer: &str, since: i64) -> usize {
        self.watching
            .get(viewer)
            .map_or(0, |v| v.iter().filter(|(_, at)| *at >= since).count())
    }
}

/// Everything counted for one film.
#[derive(Debug, Default)]
pub(crate) struct FilmFigures {
    // Headline figures: sessions not marked suspicious.
    sessions: u64,
    play_ms: u64,
    rebuffer_ms: u64,
    /// Sessions that showed a frame (or reported playing time), and of those, ended ones.
    started: u64,
    started_ended: u64,
    failures: u64,
    startup: StartupHistogram,
    rungs: BTreeMap<u32, u64>,
    /// Playing time by codec, ms; sessions by the codec their last beat named.
    codec_play_ms: BTreeMap<Codec, u64>,
    codec_sessions: BTreeMap<Codec, u64>,
    codec_bytes: BTreeMap<Codec, u64>,
    /// Σ bytes the sessions reported downloading.
    bytes: u64,
    /// Watching sessions by the link and the rendition height of their last beat, at the
    /// time of that beat: how many are live is a count since the liveness edge.
    watching_network: BTreeMap<Option<Network>, WindowCount>,
    watching_rung: BTreeMap<u32, WindowCount>,
    viewers: Viewers,
    /// Sessions that never showed a frame and had no error: ended ones, and the others by
    /// their last beat (those silent past the liveness window have given up).
    never_started_ended: u64,
    never_started: WindowCount,
    /// Each viewer's last beat, for unique viewers over 24 hours.
    seen: Map<String, i64>,
    seen_at: WindowCount,
    // Views are events, not a sum over sessions in memory: all time, and their times for the
    // 24-hour window (in order).
    pub views: u64,
    pub view_times: VecDeque<i64>,
    pub peak: u64,
    pub peak_at: Option<i64>,
    /// Minute rollups, by start of minute.
    pub minutes: BTreeMap<i64, Minute>,
    // Apart from the headline.
    suspicious_sessions: u64,
    suspicious_play_ms: u64,
}

/// Audience figures of one film at one moment (the `/stats` body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FilmStats {
    pub film: String,
    pub views: u64,
    pub views_24h: u64,
    /// Viewers watching now (one per viewer id, however many sessions it has open).
    pub concurrent_viewers: u64,
    pub peak_concurrent_viewers: u64,
    /// Milliseconds since the Unix epoch.
    pub peak_at: Option<i64>,
    pub unique_viewers_24h: u64,
    pub playing_time_s: f64,
    /// Sessions that sent at least one accepted heartbeat.
    pub sessions: u64,
    /// Sessions that reached the end ÷ sessions that started playing.
    pub completion_rate: f64,
    pub startup_ms_p50: Option<u64>,
    pub startup_ms_p95: Option<u64>,
    /// Σ rebuffering ÷ Σ (playing + rebuffering).
    pub rebuffer_ratio: f64,
    /// Sessions that gave up before the first frame without an error (Mux EBVS).
    pub exits_before_start: u64,
    /// Sessions that ended on a fatal error.
    pub failures: u64,
    /// Playing time by rendition height, seconds.
    pub rungs: BTreeMap<u32, f64>,
    /// Sessions and playing time by video codec (`h264`, `av1`): the sessions whose last beat
    /// named the codec, and the time played under it. Sessions whose player named no codec
    /// are in neither.
    pub codecs: BTreeMap<Codec, CodecStats>,
    /// Bytes the sessions reported downloading (the segments hls.js loaded; players without
    /// a loader of their own report none).
    pub bytes: u64,
    /// Sessions watching now (the liveness window, as concurrent viewers, but per session)
    /// by the link their last beat named: `slow-2g`, `2g`, `3g`, `4g`, or `unknown` for a
    /// browser that does not say.
    pub watching_by_network: BTreeMap<String, u64>,
    /// Sessions watching now by the rendition height of their last beat (0: audio only or
    /// not said).
    pub watching_by_rung: BTreeMap<u32, u64>,
    /// Sessions left out of every figure above: opened while their viewer already watched
    /// in as many sessions as one person can (`docs/SECURITY.md`).
    pub suspicious_sessions: u64,
    /// Their playing time, seconds.
    pub suspicious_playing_time_s: f64,
}

/// One codec's share of a film's audience.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CodecStats {
    pub sessions: u64,
    pub playing_time_s: f64,
    /// Bytes downloaded while the codec played (`docs/AUDIENCE.md`, "by codec").
    #[serde(default)]
    pub bytes: u64,
}

fn never_started(s: &Session) -> bool {
    s.beat.startup_ms == 0 && s.beat.play_ms == 0 && !s.beat.fatal_error
}

impl FilmFigures {
    /// Adds session `s`'s contribution.
    pub fn add(&mut self, s: &Session) {
        self.apply(s, true);
        if let Some(at) = s.last_beat_at {
            match self.seen.get_mut(&s.viewer) {
                Some(seen) if at > *seen => {
                    self.seen_at.remove(*seen);
                    self.seen_at.insert(at);
                    *seen = at;
                }
                Some(_) => {}
                None => {
                    self.seen.insert(s.viewer.clone(), at);
                    self.seen_at.insert(at);
                }
            }
        }
    }

    /// Takes session `s`'s contribution back out (its state changes, or it leaves memory).
    /// Unique viewers keep the viewer's last beat: a viewer stays seen.
    pub fn remove(&mut self, s: &Session) {
        self.apply(s, false);
    }

    fn apply(&mut self, s: &Session, add: bool) {
        let n = |v: &mut u64, by: u64| {
            *v = if add {
                v.saturating_add(by)
            } else {
                v.saturating_sub(by)
            }
        };
        if s.suspicious {
            n(&mut self.suspicious_sessions, 1);
            n(&mut self.suspicious_play_ms, s.beat.play_ms);
            return;
        }
        let b = &s.beat;
        n(&mut self.sessions, 1);
        n(&mut self.play_ms, b.play_ms);
        n(&mut self.rebuffer_ms, b.rebuffer_ms);
        n(&mut self.bytes, b.bytes);
        if b.startup_ms > 0 || b.play_ms > 0 {
            n(&mut self.started, 1);
            if b.startup_ms > 0 {
                if add {
                    self.startup.add(b.startup_ms);
                } else {
                    self.startup.remove(b.startup_ms);
                }
            }
            if s.state == Some(PlayerState::Ended) {
                n(&mut self.started_ended, 1);
            }
        }
        if b.fatal_error {
            n(&mut self.failures, 1);
        }
        for (height, ms) in &s.rungs {
            let total = self.rungs.entry(*height).or_default();
            n(total, *ms);
            if *total == 0 {
                self.rungs.remove(height);
            }
        }
        for (codec, ms) in &s.codecs {
            let total = self.codec_play_ms.entry(*codec).or_default();
            n(total, *ms);
            if *total == 0 {
                self.codec_play_ms.remove(codec);
            }
        }
        for (codec, bytes) in &s.codec_bytes {
            let total = self.codec_bytes.entry(*codec).or_default();
            n(total, *bytes);
            if *total == 0 {
                self.codec_bytes.remove(codec);
            }
        }
        if let Some(codec) = b.codec {
            let total = self.codec_sessions.entry(codec).or_default();
            n(total, 1);
            if *total == 0 {
                self.codec_sessions.remove(&codec);
            }
        }
        if let Some(at) = s.last_beat_at {
            if never_started(s) {
                if s.state == Some(PlayerState::Ended) {
                    if at - s.started_at >= 1_000 {
                        n(&mut self.never_started_ended, 1);
                    }
                } else if add {
                    self.never_started.insert(at);
                } else {
                    self.never_started.remove(at);
                }
            }
            if s.is_watching() {
                let network = self.watching_network.entry(b.network).or_default();
                let rung = self.watching_rung.entry(b.height).or_default();
                if add {
                    self.viewers.add(s, at);
                    network.insert(at);
                    rung.insert(at);
                } else {
                    self.viewers.remove(s, at);
                    network.remove(at);
                    rung.remove(at);
                }
            }
        }
    }

    /// Sessions of `viewer` watching this film now.
    pub fn watching_sessions(&self, viewer: &str, config: &Config, now: i64) -> usize {
        self.viewers.live_sessions(viewer, now - config.liveness_ms)
    }

    pub fn concurrent(&mut self, config: &Config, now: i64) -> u64 {
        self.viewers.latest.since(now - config.liveness_ms)
    }

    /// A counted view at `at`.
    pub fn count_view(&mut self, at: i64) {
        self.views += 1;
        // Views arrive in time order but for a few milliseconds between threads.
        let i = self.view_times.partition_point(|t| *t <= at);
        self.view_times.insert(i, at);
    }

    /// Forgets what fell out of every window before `now`: view times and viewers older than
    /// a day, concurrency entries older than the liveness window, minutes older than a month.
    pub fn prune(&mut self, config: &Config, now: i64) {
        while self.view_times.front().is_some_and(|at| now - at > DAY_MS) {
            self.view_times.pop_front();
        }
        let day_ago = now - DAY_MS;
        let seen_at = &mut self.seen_at;
        self.seen.retain(|_, at| {
            let keep = *at >= day_ago;
            if !keep {
                seen_at.remove(*at);
            }
            keep
        });
        // Viewers silent past the liveness window are not watching any more; their entries
        // only cost memory.
        let edge = now - config.liveness_ms;
        let stale: Vec<(String, Vec<(u64, i64)>)> = self
            .viewers
            .watching
            .iter()
            .filter(|(_, v)| v.iter().all(|(_, at)| *at < edge))
            .map(|(viewer, v)| (viewer.clone(), v.clone()))
            .collect();
        for (viewer, sessions) in stale {
            if let Some(latest) = Viewers::latest_of(&sessions) {
                self.viewers.latest.remove(latest);
            }
            self.viewers.watching.remove(&viewer);
        }
        self.watching_network.retain(|_, w| w.total() > 0);
        self.watching_rung.retain(|_, w| w.total() > 0);
        self.minutes = self.minutes.split_off(&(now - 30 * DAY_MS));
    }

    /// The figures at `now`.
    pub fn stats(&mut self, config: &Config, film: &str, now: i64) -> FilmStats {
        let views_24h =
            self.view_times.len() - self.view_times.partition_point(|at| now - *at > DAY_MS);
        let live_since = now - config.liveness_ms;
        let silent = self.never_started.total() - self.never_started.since(live_since);
        FilmStats {
            film: film.to_owned(),
            views: self.views,
            views_24h: views_24h as u64,
            concurrent_viewers: self.concurrent(config, now),
            peak_concurrent_viewers: self.peak,
            peak_at: self.peak_at,
            unique_viewers_24h: self.seen_at.since(now - DAY_MS),
            playing_time_s: self.play_ms as f64 / 1000.0,
            sessions: self.sessions,
            completion_rate: if self.started == 0 {
                0.0
            } else {
                self.started_ended as f64 / self.started as f64
            },
            startup_ms_p50: self.startup.percentile(0.5),
            startup_ms_p95: self.startup.percentile(0.95),
            rebuffer_ratio: match self.play_ms.saturating_add(self.rebuffer_ms) {
                0 => 0.0,
                total => self.rebuffer_ms as f64 / total as f64,
            },
            exits_before_start: self.never_started_ended + silent,
            failures: self.failures,
            rungs: self
                .rungs
                .iter()
                .map(|(h, ms)| (*h, *ms as f64 / 1000.0))
                .collect(),
            codecs: self
                .codec_sessions
                .keys()
                .chain(self.codec_play_ms.keys())
                .chain(self.codec_bytes.keys())
                .map(|codec| {
                    let stats = CodecStats {
                        sessions: self.codec_sessions.get(codec).copied().unwrap_or(0),
                        playing_time_s: self.codec_play_ms.get(codec).copied().unwrap_or(0) as f64
                            / 1000.0,
                        bytes: self.codec_bytes.get(codec).copied().unwrap_or(0),
                    };
                    (*codec, stats)
                })
                .collect(),
            bytes: self.bytes,
            watching_by_network: self
                .watching_network
                .iter_mut()
                .map(|(network, w)| {
                    let name = network.map_or("unknown", Network::as_str);
                    (name.to_owned(), w.since(live_since))
                })
                .filter(|(_, n)| *n > 0)
                .collect(),
            watching_by_rung: self
                .watching_rung
                .iter_mut()
                .map(|(height, w)| (*height, w.since(live_since)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            suspicious_sessions: self.suspicious_sessions,
            suspicious_playing_time_s: self.suspicious_play_ms as f64 / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_count_counts_entries_since_an_edge_in_both_directions() {
        let mut w = WindowCount::default();
        for t in [10, 20, 20, 30] {
            w.insert(t);
        }
        assert_eq!(w.since(0), 4);
        assert_eq!(w.since(20), 3);
        assert_eq!(w.since(21), 1);
        assert_eq!(w.since(15), 3);
        w.remove(20);
        assert_eq!(w.since(15), 2);
        w.insert(5);
        assert_eq!((w.since(15), w.total()), (2, 4));
        w.remove(99); // absent: nothing
        assert_eq!(w.total(), 4);
    }

    #[test]
    fn startup_percentiles_are_exact_below_a_second_and_within_one_percent_above() {
        let mut h = StartupHistogram::default();
        for ms in [500, 500, 700, 12_345] {
            h.add(ms);
        }
        assert_eq!(h.percentile(0.5), Some(500));
        assert_eq!(h.percentile(0.75), Some(700));
        let top = h.percentile(1.0).unwrap();
        assert!((12_345 - top) * 100 <= 12_345, "{top}");
        h.remove(12_345);
        assert_eq!(h.percentile(1.0), Some(700));
        h.add(crate::heartbeat::limits::STARTUP_MS);
        assert_eq!(
            h.percentile(1.0),
            Some(crate::heartbeat::limits::STARTUP_MS)
        );
    }
}
