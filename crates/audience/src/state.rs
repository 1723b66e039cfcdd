//! The rules of REFERENCE §3 as a pure state machine: every method takes the time as an
//! argument (milliseconds since the Unix epoch), so each rule is tested with a simulated clock.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::{Config, Heartbeat, PlayerState};

/// A playback session as persisted: enough to rebuild every counter after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub film: String,
    pub viewer: String,
    pub started_at: i64,
    pub last_beat_at: Option<i64>,
    pub last_seq: Option<u64>,
    pub state: Option<PlayerState>,
    /// The latest accepted cumulative counters.
    pub beat: Counters,
    /// This session crossed the view threshold and was counted as a view.
    pub view_counted: bool,
    /// This session crossed the threshold but the viewer's view was already counted recently.
    pub view_deduplicated: bool,
    /// Playing time by rendition height, ms.
    pub rungs: BTreeMap<u32, u64>,
}

/// The cumulative counters of a heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub play_ms: u64,
    pub rebuffer_ms: u64,
    pub rebuffer_count: u64,
    pub startup_ms: u64,
    pub seek_ms: u64,
    pub playhead_ms: u64,
    pub height: u32,
    pub bitrate_kbps: u32,
    pub bytes: u64,
    pub dropped_frames: u64,
    pub fatal_error: bool,
}

impl From<&Heartbeat> for Counters {
    fn from(b: &Heartbeat) -> Self {
        Counters {
            play_ms: b.play_ms,
            rebuffer_ms: b.rebuffer_ms,
            rebuffer_count: b.rebuffer_count,
            startup_ms: b.startup_ms,
            seek_ms: b.seek_ms,
            playhead_ms: b.playhead_ms,
            height: b.height,
            bitrate_kbps: b.bitrate_kbps,
            bytes: b.bytes,
            dropped_frames: b.dropped_frames,
            fatal_error: b.fatal_error,
        }
    }
}

/// A counted view, as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub session: String,
    pub film: String,
    pub viewer: String,
    pub at: i64,
}

/// What happened to a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied to the counters.
    Accepted,
    /// A `seq` already applied: idempotent, nothing changes.
    Duplicate,
    /// Arrived sooner than `min_beat_gap` after the previous one: not counted.
    TooSoon,
    /// Playing time grew faster than wall-clock time allows, or went backwards: not counted.
    Implausible,
    /// The session already ended: nothing changes.
    Closed,
}

/// Changes to persist for one applied heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Session(Session),
    View(View),
    Peak { film: String, peak: u64, at: i64 },
    Minute(Minute),
}

/// One minute of a film's history, for charts: the highest concurrency sampled in it and
/// the cumulative figures at its last sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Minute {
    pub film: String,
    /// Start of the minute, ms since the Unix epoch.
    pub at: i64,
    pub concurrent_viewers: u64,
    pub views: u64,
    pub views_24h: u64,
    pub playing_time_s: f64,
    pub rebuffer_ratio: f64,
    pub startup_ms_p95: Option<u64>,
}

/// The metrics a series can be asked for.
pub const SERIES_METRICS: &[&str] = &[
    "concurrent_viewers",
    "views",
    "views_24h",
    "playing_time_s",
    "rebuffer_ratio",
    "startup_ms_p95",
];

impl Minute {
    /// The value of `metric` (one of [`SERIES_METRICS`]).
    pub fn value(&self, metric: &str) -> Option<f64> {
        Some(match metric {
            "concurrent_viewers" => self.concurrent_viewers as f64,
            "views" => self.views as f64,
            "views_24h" => self.views_24h as f64,
            "playing_time_s" => self.playing_time_s,
            "rebuffer_ratio" => self.rebuffer_ratio,
            "startup_ms_p95" => self.startup_ms_p95? as f64,
            _ => return None,
        })
    }
}

#[derive(Debug, Default)]
struct FilmCounters {
    view_times: VecDeque<i64>,
    views: u64,
    peak: u64,
    peak_at: Option<i64>,
    /// viewer → last time seen, for unique viewers over 24 h.
    viewers: HashMap<String, i64>,
    /// Minute rollups, by start of minute.
    minutes: BTreeMap<i64, Minute>,
}

/// Everything live, in memory.
#[derive(Debug, Default)]
pub struct State {
    sessions: HashMap<String, Session>,
    films: HashMap<String, FilmCounters>,
    /// (viewer, film) → time of the last counted view, for the de-duplication window.
    last_view: HashMap<(String, String), i64>,
}

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Audience figures of one film at one moment (the `/stats` body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FilmStats {
    pub film: String,
    pub views: u64,
    pub views_24h: u64,
    pub concurrent_viewers: u64,
    pub peak_concurrent_viewers: u64,
    /// Milliseconds since the Unix epoch.
    pub peak_at: Option<i64>,
    pub unique_viewers_24h: u64,
    pub playing_time_s: f64,
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
}

/// A concurrent viewer: heard from within the liveness window, and watching (not paused).
fn is_concurrent(s: &Session, config: &Config, now: i64) -> bool {
    s.last_beat_at
        .is_some_and(|at| now - at <= config.liveness_ms)
        && is_watching(s.state)
}

fn is_watching(state: Option<PlayerState>) -> bool {
    matches!(
        state,
        Some(
            PlayerState::Startup
                | PlayerState::Playing
                | PlayerState::Seeking
                | PlayerState::Rebuffering
        )
    )
}

impl State {
    /// Adds a new session (minted, no beat yet).
    pub fn insert(&mut self, session: Session) {
        let film = self.films.entry(session.film.clone()).or_default();
        if let Some(at) = session.last_beat_at {
            let seen = film.viewers.entry(session.viewer.clone()).or_insert(at);
            *seen = (*seen).max(at);
        }
        self.sessions.insert(session.id.clone(), session);
    }

    /// Re-adds a counted view (on restart).
    pub fn restore_view(&mut self, view: &View) {
        let film = self.films.entry(view.film.clone()).or_default();
        film.views += 1;
        film.view_times.push_back(view.at);
        let key = (view.viewer.clone(), view.film.clone());
        let last = self.last_view.entry(key).or_insert(view.at);
        *last = (*last).max(view.at);
    }

    /// Re-adds views older than the restored window: they count, but no longer matter to the
    /// 24 h window or the de-duplication.
    pub fn restore_view_count(&mut self, film: &str, count: u64) {
        self.films.entry(film.to_owned()).or_default().views += count;
    }

    /// Re-adds a minute rollup (on restart).
    pub fn restore_minute(&mut self, minute: Minute) {
        let film = self.films.entry(minute.film.clone()).or_default();
        film.minutes.insert(minute.at, minute);
    }

    /// `metric` of `film` from `from` (ms) in buckets of `step_ms`: the highest value in each
    /// bucket for concurrency, the last one for everything else. Buckets without a sample
    /// are left out.
    pub fn series(&self, film: &str, metric: &str, from: i64, step_ms: i64) -> Vec<(i64, f64)> {
        let Some(counters) = self.films.get(film) else {
            return Vec::new();
        };
        let step = step_ms.max(60_000);
        let mut out: Vec<(i64, f64)> = Vec::new();
        for minute in counters.minutes.range(from..).map(|(_, m)| m) {
            let Some(value) = minute.value(metric) else {
                continue;
            };
            let bucket = from + (minute.at - from) / step * step;
            match out.last_mut() {
                Some((at, v)) if *at == bucket => {
                    *v = if metric == "concurrent_viewers" {
                        v.max(value)
                    } else {
                        value
                    };
                }
                _ => out.push((bucket, value)),
            }
        }
        out
    }

    /// Re-adds a film's peak (on restart).
    pub fn restore_peak(&mut self, film: &str, peak: u64, at: i64) {
        let counters = self.films.entry(film.to_owned()).or_default();
        counters.peak = peak;
        counters.peak_at = Some(at);
    }

    /// Sorts restored view times so the 24 h window can trim from the front.
    pub fn finish_restore(&mut self) {
        for film in self.films.values_mut() {
            film.view_times.make_contiguous().sort_unstable();
        }
    }

    pub fn session(&self, id: &str) -> Option<&Session> {
        self.sessions.get(id)
    }

    /// Applies a heartbeat at time `now`.
    pub fn beat(
        &mut self,
        config: &Config,
        id: &str,
        beat: &Heartbeat,
        now: i64,
    ) -> (Outcome, Vec<Record>) {
        let Some(session) = self.sessions.get_mut(id) else {
            return (Outcome::Closed, Vec::new());
        };
        if session.last_seq.is_some_and(|last| beat.seq <= last) {
            return (Outcome::Duplicate, Vec::new());
        }
        if matches!(session.state, Some(PlayerState::Ended | PlayerState::Error)) {
            return (Outcome::Closed, Vec::new());
        }
        let terminal = matches!(beat.state, PlayerState::Ended | PlayerState::Error);
        if let Some(last) = session.last_beat_at
            && now - last < config.min_beat_gap_ms
            && !terminal
        {
            return (Outcome::TooSoon, Vec::new());
        }
        // Playing time may not grow faster than wall-clock time × 1.05 + 1 s, nor go backwards.
        // Measured from the session's start, not from the last beat's arrival: a beat delayed
        // in a queue (a slow commit, a congested link) must not make the next, on-time beat
        // look too fast, nor every one after it.
        let since = now - session.started_at;
        let allowed = (since.max(0) as f64 * config.rate_slack) as u64 + config.rate_grace_ms;
        let Some(played) = beat.play_ms.checked_sub(session.beat.play_ms) else {
            return (Outcome::Implausible, Vec::new());
        };
        if beat.play_ms > allowed {
            return (Outcome::Implausible, Vec::new());
        }

        let previous_height = session.beat.height;
        if played > 0 {
            let height = if previous_height > 0 {
                previous_height
            } else {
                beat.height
            };
            *session.rungs.entry(height).or_default() += played;
        }
        session.beat = Counters::from(beat);
        session.state = Some(beat.state);
        session.last_seq = Some(beat.seq);
        session.last_beat_at = Some(now);

        let mut records = Vec::new();
        let film = self.films.entry(session.film.clone()).or_default();
        film.viewers.insert(session.viewer.clone(), now);
        if !session.view_counted
            && !session.view_deduplicated
            && beat.play_ms >= config.view_threshold_ms
        {
            let key = (session.viewer.clone(), session.film.clone());
            let recent = self
                .last_view
                .get(&key)
                .is_some_and(|at| now - at < config.view_dedup_ms);
            if recent {
                session.view_deduplicated = true;
            } else {
                session.view_counted = true;
                self.last_view.insert(key, now);
                film.views += 1;
                film.view_times.push_back(now);
                records.push(Record::View(View {
                    session: session.id.clone(),
                    film: session.film.clone(),
                    viewer: session.viewer.clone(),
                    at: now,
                }));
            }
        }
        records.insert(0, Record::Session(session.clone()));
        (Outcome::Accepted, records)
    }

    /// Sessions of `film` watching now: a beat within the liveness window and a state that
    /// is not paused, ended or failed (Mux's definition).
    /// Every session of `film` in memory. A walk over all sessions rather than a lookup per
    /// id of the film's list: at 60,000 sessions, hashing each id cost 14 ms per walk, and the
    /// walk holds the lock every heartbeat waits for.
    fn sessions_of<'a>(&'a self, film: &'a str) -> impl Iterator<Item = &'a Session> + 'a {
        self.sessions.values().filter(move |s| s.film == film)
    }

    pub fn concurrent(&self, config: &Config, film: &str, now: i64) -> u64 {
        self.sessions_of(film)
            .filter(|s| is_concurrent(s, config, now))
            .count() as u64
    }

    /// Samples every film's concurrent viewers and raises peaks; returns the peaks to persist.
    pub fn sample(&mut self, config: &Config, now: i64) -> Vec<Record> {
        let films: Vec<String> = self.films.keys().cloned().collect();
        let mut records = Vec::new();
        for film in films {
            let stats = self.stats(config, &film, now);
            let minute_at = now - now.rem_euclid(60_000);
            if let Some(counters) = self.films.get_mut(&film) {
                let minute = counters.minutes.entry(minute_at).or_insert_with(|| Minute {
                    film: film.clone(),
                    at: minute_at,
                    concurrent_viewers: 0,
                    views: 0,
                    views_24h: 0,
                    playing_time_s: 0.0,
                    rebuffer_ratio: 0.0,
                    startup_ms_p95: None,
                });
                minute.concurrent_viewers = minute.concurrent_viewers.max(stats.concurrent_viewers);
                minute.views = stats.views;
                minute.views_24h = stats.views_24h;
                minute.playing_time_s = stats.playing_time_s;
                minute.rebuffer_ratio = stats.rebuffer_ratio;
                minute.startup_ms_p95 = stats.startup_ms_p95;
                records.push(Record::Minute(minute.clone()));
            }
            let concurrent = stats.concurrent_viewers;
            if let Some(counters) = self.films.get_mut(&film)
                && concurrent > counters.peak
            {
                counters.peak = concurrent;
                counters.peak_at = Some(now);
                records.push(Record::Peak {
                    film,
                    peak: concurrent,
                    at: now,
                });
            }
        }
        records
    }

    /// Forgets sessions idle for longer than `keep_ms` (their views stay counted).
    pub fn expire(&mut self, now: i64, keep_ms: i64) {
        self.sessions
            .retain(|_, s| now - s.last_beat_at.unwrap_or(s.started_at) <= keep_ms);
        for film in self.films.values_mut() {
            film.viewers.retain(|_, at| now - *at <= DAY_MS);
            while film.view_times.front().is_some_and(|at| now - at > DAY_MS) {
                film.view_times.pop_front();
            }
            // A month of minutes in memory; older history stays in the store.
            film.minutes = film.minutes.split_off(&(now - 30 * DAY_MS));
        }
    }

    /// The figures of `film` at `now`.
    pub fn stats(&self, config: &Config, film: &str, now: i64) -> FilmStats {
        let counters = self.films.get(film);
        // One pass over the film's sessions: this runs under the lock heartbeats wait for.
        let (mut sessions, mut started, mut ended, mut failures, mut exits_before_start) =
            (0u64, 0u64, 0u64, 0u64, 0u64);
        let (mut play, mut rebuffer, mut concurrent) = (0u64, 0u64, 0u64);
        let mut startups: Vec<u64> = Vec::new();
        let mut rungs: BTreeMap<u32, f64> = BTreeMap::new();
        for s in self.sessions_of(film) {
            let b = &s.beat;
            sessions += 1;
            play += b.play_ms;
            rebuffer += b.rebuffer_ms;
            if b.startup_ms > 0 || b.play_ms > 0 {
                started += 1;
                if b.startup_ms > 0 {
                    startups.push(b.startup_ms);
                }
                if s.state == Some(PlayerState::Ended) {
                    ended += 1;
                }
            }
            if b.fatal_error {
                failures += 1;
            }
            let last_seen = s.last_beat_at.unwrap_or(s.started_at);
            if b.startup_ms == 0
                && b.play_ms == 0
                && !b.fatal_error
                && now - s.started_at >= 1000
                && (s.state == Some(PlayerState::Ended) || now - last_seen > config.liveness_ms)
            {
                exits_before_start += 1;
            }
            if is_concurrent(s, config, now) {
                concurrent += 1;
            }
            for (height, ms) in &s.rungs {
                *rungs.entry(*height).or_default() += *ms as f64 / 1000.0;
            }
        }
        // Nearest rank, found by selection rather than a full sort.
        let mut percentile = |p: f64| -> Option<u64> {
            if startups.is_empty() {
                return None;
            }
            let rank = ((p * startups.len() as f64).ceil() as usize).clamp(1, startups.len());
            Some(*startups.select_nth_unstable(rank - 1).1)
        };
        let (startup_ms_p50, startup_ms_p95) = (percentile(0.5), percentile(0.95));
        FilmStats {
            film: film.to_owned(),
            views: counters.map_or(0, |c| c.views),
            views_24h: counters.map_or(0, |c| {
                c.view_times
                    .iter()
                    .filter(|at| now - **at <= DAY_MS)
                    .count() as u64
            }),
            concurrent_viewers: concurrent,
            peak_concurrent_viewers: counters.map_or(0, |c| c.peak),
            peak_at: counters.and_then(|c| c.peak_at),
            unique_viewers_24h: counters.map_or(0, |c| {
                c.viewers.values().filter(|at| now - **at <= DAY_MS).count() as u64
            }),
            playing_time_s: play as f64 / 1000.0,
            sessions,
            completion_rate: if started == 0 {
                0.0
            } else {
                ended as f64 / started as f64
            },
            startup_ms_p50,
            startup_ms_p95,
            rebuffer_ratio: if play + rebuffer == 0 {
                0.0
            } else {
                rebuffer as f64 / (play + rebuffer) as f64
            },
            exits_before_start,
            failures,
            rungs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::default()
    }

    fn session(id: &str, viewer: &str, at: i64) -> Session {
        Session {
            id: id.into(),
            film: "film".into(),
            viewer: viewer.into(),
            started_at: at,
            last_beat_at: None,
            last_seq: None,
            state: None,
            beat: Counters::default(),
            view_counted: false,
            view_deduplicated: false,
            rungs: BTreeMap::new(),
        }
    }

    fn beat(seq: u64, state: PlayerState, play_ms: u64) -> Heartbeat {
        Heartbeat {
            token: None,
            seq,
            state,
            play_ms,
            rebuffer_ms: 0,
            rebuffer_count: 0,
            startup_ms: 800,
            seek_ms: 0,
            playhead_ms: play_ms,
            height: 720,
            bitrate_kbps: 3000,
            bytes: 0,
            dropped_frames: 0,
            fatal_error: false,
        }
    }

    /// Plays session `id` from `start` for `seconds`, one beat every 10 s; returns the time.
    fn play(state: &mut State, id: &str, start: i64, seconds: u64) -> i64 {
        let c = config();
        let mut now = start;
        for i in 0..=seconds / 10 {
            let (outcome, _) = state.beat(&c, id, &beat(i, PlayerState::Playing, i * 10_000), now);
            assert_eq!(outcome, Outcome::Accepted, "beat {i}");
            now += 10_000;
        }
        now - 10_000
    }

    #[test]
    fn a_view_needs_thirty_seconds_of_playing() {
        let c = config();
        let mut s = State::default();
        s.insert(session("a", "v1", 0));
        play(&mut s, "a", 0, 20);
        assert_eq!(s.stats(&c, "film", 20_000).views, 0);
        let (_, records) = s.beat(&c, "a", &beat(3, PlayerState::Playing, 30_000), 30_000);
        assert_eq!(s.stats(&c, "film", 30_000).views, 1);
        assert!(records.iter().any(|r| matches!(r, Record::View(_))));
        // Only once per session.
        s.beat(&c, "a", &beat(4, PlayerState::Playing, 40_000), 40_000);
        assert_eq!(s.stats(&c, "film", 40_000).views, 1);
    }

    #[test]
    fn one_view_per_viewer_and_film_per_hour() {
        let c = config();
        let mut s = State::default();
        s.insert(session("a", "v1", 0));
        play(&mut s, "a", 0, 40);
        s.insert(session("b", "v1", 100_000));
        play(&mut s, "b", 100_000, 40);
        assert_eq!(s.stats(&c, "film", 200_000).views, 1);
        let hour = 3_600_000;
        s.insert(session("c", "v1", hour + 1_000));
        play(&mut s, "c", hour + 1_000, 40);
        assert_eq!(s.stats(&c, "film", 2 * hour).views, 2);
        // Another viewer on the same address is another view: no IP cap.
        s.insert(session("d", "v2", 0));
        play(&mut s, "d", 0, 40);
        assert_eq!(s.stats(&c, "film", 2 * hour).views, 3);
    }

    #[test]
    fn each_film_counts_only_its_own_sessions() {
        let c = config();
        let mut s = State::default();
        s.insert(session("a", "v1", 0));
        s.insert(Session {
            film: "other".into(),
            ..session("b", "v2", 0)
        });
        let end = play(&mut s, "a", 0, 40);
        play(&mut s, "b", 0, 20);
        let film = s.stats(&c, "film", end);
        let other = s.stats(&c, "other", end);
        assert_eq!(
            (film.sessions, film.views, film.playing_time_s),
            (1, 1, 40.0)
        );
        assert_eq!(
            (other.sessions, other.views, other.playing_time_s),
            (1, 0, 20.0)
        );
        assert_eq!(s.concurrent(&c, "film", end), 1);
        assert_eq!(s.stats(&c, "nothing", end).sessions, 0);
    }

    #[test]
    fn concurrency_counts_live_unpaused_sessions_only() {
        let c = config();
        let mut s = State::default();
        s.insert(session("a", "v1", 0));
        s.insert(session("b", "v2", 0));
        s.insert(session("c", "v3", 0));
        s.beat(&c, "a", &beat(0, PlayerState::Playing, 0), 0);
        s.beat(&c, "b", &beat(0, PlayerState::Paused, 0), 0);
        s.beat(&c, "c", &beat(0, PlayerState::Rebuffering, 0), 0);
        assert_eq!(s.concurrent(&c, "film", 1_000), 2);
        // Liveness: 30 s after its last beat a session no longer counts.
        assert_eq!(s.concurrent(&c, "film", 30_000), 2);
        assert_eq!(s.concurrent(&c, "film", 30_001), 0);
        // Ended sessions leave at once.
        s.beat(&c, "a", &beat(1, PlayerState::Ended, 1_000), 2_000);
        assert_eq!(s.concurrent(&c, "film", 2_000), 1);
    }

    #[test]
    fn peaks_are_sampled_and_kept() {
        let c = config();
        let mut s = State::default();
        for i in 0..3 {
            s.insert(session(&format!("s{i}"), &format!("v{i}"), 0));
            s.beat(&c, &format!("s{i}"), &beat(0, PlayerState::Playing, 0), 0);
        }
        let records: Vec<Record> = s
            .sample(&c, 5_000)
            .into_iter()
            .filter(|r| matches!(r, Record::Peak { .. }))
            .collect();
        assert_eq!(
            records,
            vec![Record::Peak {
                film: "film".into(),
                peak: 3,
                at: 5_000
            }]
        );
        assert!(
            !s.sample(&c, 60_000)
                .iter()
                .any(|r| matches!(r, Record::Peak { .. }))
        );
        let stats = s.stats(&c, "film", 60_000);
        assert_eq!(
            (
                stats.concurrent_viewers,
                stats.peak_concurrent_viewers,
                stats.peak_at
            ),
            (0, 3, Some(5_000))
        );
    }

    #[test]
    fn minute_rollups_make_series() {
        let c = config();
        let mut s = State::default();
        let t0 = 1_800_000_000_000; // a whole minute
        s.insert(session("a", "v1", t0));
        s.beat(&c, "a", &beat(0, PlayerState::Playing, 0), t0);
        s.sample(&c, t0 + 10_000);
        s.insert(session("b", "v2", t0));
        s.beat(&c, "b", &beat(0, PlayerState::Playing, 0), t0 + 20_000);
        let records = s.sample(&c, t0 + 25_000);
        assert!(
            records
                .iter()
                .any(|r| matches!(r, Record::Minute(m) if m.concurrent_viewers == 2))
        );
        s.beat(&c, "a", &beat(1, PlayerState::Paused, 0), t0 + 65_000);
        s.beat(&c, "b", &beat(1, PlayerState::Playing, 0), t0 + 60_000);
        s.sample(&c, t0 + 70_000);
        assert_eq!(
            s.series("film", "concurrent_viewers", t0, 60_000),
            vec![(t0, 2.0), (t0 + 60_000, 1.0)]
        );
        assert_eq!(
            s.series("film", "concurrent_viewers", t0, 120_000),
            vec![(t0, 2.0)]
        );
        assert!(s.series("film", "nonsense", t0, 60_000).is_empty());
    }

    #[test]
    fn views_roll_out_of_the_24_hour_window() {
        let c = config();
        let mut s = State::default();
        s.insert(session("a", "v1", 0));
        play(&mut s, "a", 0, 30);
        let day = 24 * 3_600_000;
        assert_eq!(s.stats(&c, "film", day).views_24h, 1);
        assert_eq!(s.stats(&c, "film", day + 30_001).views_24h, 0);
        assert_eq!(s.stats(&c, "film", day + 30_001).views, 1);
        assert_eq!(s.stats(&c, "film", day + 30_001).unique_viewers_24h, 0);
    }

    #[test]
    fn a_beat_delayed_in_a_queue_does_not_make_the_next_ones_implausible() {
        let c = config();
        let mut s = State::default();
        s.insert(session("a", "v1", 0));
        let on = |s: &mut State, seq: u64, play_ms: u64, now: i64| {
            s.beat(&c, "a", &beat(seq, PlayerState::Playing, play_ms), now)
                .0
        };
        assert_eq!(on(&mut s, 0, 0, 0), Outcome::Accepted);
        assert_eq!(on(&mut s, 1, 10_000, 10_000), Outcome::Accepted);
        // Sent at 20 s, stuck 9.5 s behind a slow commit.
        assert_eq!(on(&mut s, 2, 20_000, 29_500), Outcome::Accepted);
        // The next beats leave on time: 10 s more playing, 0.5 s after the late arrival.
        assert_eq!(
            on(&mut s, 3, 30_000, 30_000 + c.min_beat_gap_ms),
            Outcome::Accepted
        );
        assert_eq!(on(&mut s, 4, 40_000, 40_000), Outcome::Accepted);
        // Playing time beyond the session's whole wall-clock time is still refused.
        assert_eq!(on(&mut s, 5, 60_000, 50_000), Outcome::Implausible);
    }

    #[test]
    fn implausible_and_too_frequent_beats_are_not_counted() {
        let c = config();
        let mut s = State::default();
        s.insert(session("a", "v1", 0));
        assert_eq!(
            s.beat(&c, "a", &beat(0, PlayerState::Playing, 0), 0).0,
            Outcome::Accepted
        );
        // 60 s of playing claimed after 10 s of wall-clock time.
        assert_eq!(
            s.beat(&c, "a", &beat(1, PlayerState::Playing, 60_000), 10_000)
                .0,
            Outcome::Implausible
        );
        // Within the allowance: 10 s × 1.05 + 1 s.
        assert_eq!(
            s.beat(&c, "a", &beat(2, PlayerState::Playing, 11_400), 10_000)
                .0,
            Outcome::Accepted
        );
        // Faster than one beat per 5 s.
        assert_eq!(
            s.beat(&c, "a", &beat(3, PlayerState::Playing, 12_000), 13_000)
                .0,
            Outcome::TooSoon
        );
        // Counters never go backwards.
        assert_eq!(
            s.beat(&c, "a", &beat(4, PlayerState::Playing, 5_000), 20_000)
                .0,
            Outcome::Implausible
        );
        // Repeated seq: idempotent.
        assert_eq!(
            s.beat(&c, "a", &beat(2, PlayerState::Playing, 11_400), 30_000)
                .0,
            Outcome::Duplicate
        );
        assert_eq!(s.stats(&c, "film", 30_000).playing_time_s, 11.4);
        // The final beat may come sooner (sendBeacon on page hide).
        assert_eq!(
            s.beat(&c, "a", &beat(5, PlayerState::Ended, 12_000), 31_000)
                .0,
            Outcome::Accepted
        );
        assert_eq!(
            s.beat(&c, "a", &beat(6, PlayerState::Playing, 20_000), 41_000)
                .0,
            Outcome::Closed
        );
    }

    #[test]
    fn quality_of_experience_figures() {
        let c = config();
        let mut s = State::default();
        s.insert(session("a", "v1", 0));
        let mut b = beat(0, PlayerState::Playing, 0);
        b.startup_ms = 500;
        s.beat(&c, "a", &b, 0);
        let mut b = beat(1, PlayerState::Ended, 9_000);
        b.startup_ms = 500;
        b.rebuffer_ms = 1_000;
        s.beat(&c, "a", &b, 10_000);
        s.insert(session("b", "v2", 0));
        let mut b = beat(0, PlayerState::Error, 0);
        b.startup_ms = 0;
        b.fatal_error = true;
        s.beat(&c, "b", &b, 2_000);
        s.insert(session("c", "v3", 0)); // intent, never a frame, gone
        let stats = s.stats(&c, "film", 100_000);
        assert_eq!(stats.startup_ms_p50, Some(500));
        assert_eq!(stats.rebuffer_ratio, 0.1);
        assert_eq!(stats.completion_rate, 1.0);
        assert_eq!(stats.failures, 1);
        assert_eq!(stats.exits_before_start, 1);
        assert_eq!(stats.rungs.get(&720), Some(&9.0));
    }
}
