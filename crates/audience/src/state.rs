//! The rules of `docs/AUDIENCE.md` as a state machine: every method takes the time as an
//! argument (milliseconds since the Unix epoch), so each rule is tested with a simulated
//! clock.
//!
//! A batch of heartbeats is first *staged* against the state without changing it
//! ([`State::stage`]), giving each beat its outcome and the records to store; only once the
//! store has committed them does [`State::commit`] apply the changes. Memory therefore never
//! runs ahead of what is durable: a failed commit leaves the state as it was, and the player's
//! retry is applied, not answered `duplicate`.

use crate::Map;
use crate::figures::{DAY_MS, FilmFigures};
use crate::{
    Catchup, Config, Counters, Error, FilmStats, Minute, PlayerState, Record, Session, View,
};

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

impl Outcome {
    /// The name in `X-Monsoon-Beat`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Duplicate => "duplicate",
            Outcome::TooSoon => "too-soon",
            Outcome::Implausible => "implausible",
            Outcome::Closed => "closed",
        }
    }
}

/// A heartbeat ready for the rules: its token verified, its fields validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Beat {
    pub session: String,
    pub film: String,
    pub viewer: String,
    /// When the session was minted (from its token).
    pub started_at: i64,
    pub seq: u64,
    pub state: PlayerState,
    pub counters: Counters,
    /// The beat carries a valid proof of work for its session.
    pub proven: bool,
}

/// One beat's effect, staged: the session after it, and the view it counted. (The session
/// before is the state's until the change is committed.)
#[derive(Debug)]
pub struct Change {
    new: Session,
    view: Option<View>,
}

/// A sample's effect, staged: each film's minute and, where it rose, peak.
#[derive(Debug, Default)]
pub struct Sampled {
    minutes: Vec<Minute>,
    peaks: Vec<(String, u64)>,
    now: i64,
}

/// Everything live, in memory.
#[derive(Debug, Default)]
pub struct State {
    sessions: Map<String, Session>,
    films: Map<String, FilmFigures>,
    /// (viewer, film) → time of the last counted view, for the de-duplication window.
    last_view: Map<(String, String), i64>,
    /// Bytes players reported downloading in the beats this process committed, since it
    /// started: a counter like the origin's `monsoon_media_bytes_total`, to compare with it.
    bytes_reported: u64,
}

/// What staging a batch sees: the state, with the batch's earlier changes over it.
#[derive(Default)]
struct Overlay<'b> {
    /// Session id → its latest change in the batch (an index into the changes).
    sessions: Map<&'b str, usize>,
    /// (viewer, film) → sessions the batch started watching.
    started_watching: Map<(&'b str, &'b str), usize>,
    last_view: Map<(String, String), i64>,
}

impl State {
    /// Re-adds a session (on restart).
    pub fn insert(&mut self, session: Session) {
        self.films
            .entry(session.film.clone())
            .or_default()
            .add(&session);
        self.sessions.insert(session.id.clone(), session);
    }

    /// Re-adds a counted view (on restart).
    pub fn restore_view(&mut self, view: &View) {
        self.films
            .entry(view.film.clone())
            .or_default()
            .count_view(view.at);
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

    /// Re-adds a film's peak (on restart).
    pub fn restore_peak(&mut self, film: &str, peak: u64, at: i64) {
        let counters = self.films.entry(film.to_owned()).or_default();
        counters.peak = peak;
        counters.peak_at = Some(at);
    }

    /// Takes in what other nodes sharing the store committed: their sessions replace ours
    /// (they are newer: a session's changes are serialised by the store's lock), their views
    /// count, their peaks raise ours.
    pub fn catch_up(&mut self, catchup: Catchup) {
        for session in catchup.sessions {
            let figures = self.films.entry(session.film.clone()).or_default();
            if let Some(old) = self.sessions.get(&session.id) {
                figures.remove(old);
            }
            figures.add(&session);
            self.sessions.insert(session.id.clone(), session);
        }
        for view in &catchup.views {
            self.restore_view(view);
        }
        for (film, peak, at) in catchup.peaks {
            let figures = self.films.entry(film).or_default();
            if peak > figures.peak {
                figures.peak = peak;
                figures.peak_at = Some(at);
            }
        }
    }

    pub fn session(&self, id: &str) -> Option<&Session> {
        self.sessions.get(id)
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
            let bucket = from.saturating_add((minute.at.saturating_sub(from)) / step * step);
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

    /// The rungs (rendition heights) `film`'s minute rollups since `from` (ms) saw anyone
    /// watching at, lowest first: the series [`crate::records::rung_series`] worth drawing.
    pub fn rungs(&self, film: &str, from: i64) -> Vec<u32> {
        let Some(counters) = self.films.get(film) else {
            return Vec::new();
        };
        let mut rungs = std::collections::BTreeSet::new();
        for minute in counters.minutes.range(from..).map(|(_, m)| m) {
            rungs.extend(
                minute
                    .watching_by_rung
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(h, _)| *h),
            );
        }
        rungs.into_iter().collect()
    }

    /// Stages `beats` in order at `now`: each one's outcome (or why it was refused), the
    /// changes to commit, and the records to store. Changes nothing.
    pub fn stage(
        &mut self,
        config: &Config,
        beats: &[Beat],
        now: i64,
    ) -> (Vec<Result<Outcome, Error>>, Vec<Change>, Vec<Record>) {
        let mut overlay = Overlay::default();
        let mut outcomes = Vec::with_capacity(beats.len());
        let mut changes: Vec<Change> = Vec::new();
        let mut records = Vec::new();
        for beat in beats {
            let earlier = overlay.sessions.get(beat.session.as_str()).copied();
            let current = match earlier {
                Some(i) => Some(&changes[i].new),
                None => self.sessions.get(&beat.session),
            };
            let outcome = match current {
                None => self.start(config, beat, now, &overlay),
                Some(s) => rules::next(config, s, beat, now),
            };
            let (outcome, new) = match outcome {
                Ok(step) => step,
                Err(e) => {
                    outcomes.push(Err(e));
                    continue;
                }
            };
            outcomes.push(Ok(outcome));
            let Some(mut new) = new else { continue };
            if current.is_none() && new.is_watching() {
                *overlay
                    .started_watching
                    .entry((beat.viewer.as_str(), beat.film.as_str()))
                    .or_default() += 1;
            }
            let view = self.view_for(config, &mut new, now, &overlay);
            records.push(Record::Session(new.clone()));
            if let Some(v) = &view {
                overlay
                    .last_view
                    .insert((v.viewer.clone(), v.film.clone()), v.at);
                records.push(Record::View(v.clone()));
            }
            overlay
                .sessions
                .insert(beat.session.as_str(), changes.len());
            changes.push(Change { new, view });
        }
        (outcomes, changes, records)
    }

    /// The first accepted beat of a session: it must bring its proof of work.
    fn start(
        &self,
        config: &Config,
        beat: &Beat,
        now: i64,
        overlay: &Overlay<'_>,
    ) -> Result<(Outcome, Option<Session>), Error> {
        if !beat.proven {
            return Err(Error::ProofRequired(config.proof_bits));
        }
        let watching = self
            .films
            .get(&beat.film)
            .map_or(0, |f| f.watching_sessions(&beat.viewer, config, now))
            + overlay
                .started_watching
                .get(&(beat.viewer.as_str(), beat.film.as_str()))
                .copied()
                .unwrap_or(0);
        let fresh = Session {
            id: beat.session.clone(),
            film: beat.film.clone(),
            viewer: beat.viewer.clone(),
            started_at: beat.started_at,
            last_beat_at: None,
            last_seq: None,
            state: None,
            beat: Counters::default(),
            first_play_ms: beat.counters.play_ms,
            view_counted: false,
            view_deduplicated: false,
            suspicious: watching >= config.max_sessions_per_viewer,
            rungs: Default::default(),
            codecs: Default::default(),
            codec_bytes: Default::default(),
        };
        rules::next(config, &fresh, beat, now)
    }

    /// Counts a view for `session` if it just crossed the threshold, once per viewer and film
    /// per de-duplication window. Suspicious sessions never count one.
    fn view_for(
        &self,
        config: &Config,
        session: &mut Session,
        now: i64,
        overlay: &Overlay<'_>,
    ) -> Option<View> {
        if session.view_counted
            || session.view_deduplicated
            || session.suspicious
            || session.observed_play_ms() < config.view_threshold_ms
        {
            return None;
        }
        let key = (session.viewer.clone(), session.film.clone());
        let last = overlay
            .last_view
            .get(&key)
            .or_else(|| self.last_view.get(&key));
        if last.is_some_and(|at| now - at < config.view_dedup_ms) {
            session.view_deduplicated = true;
            return None;
        }
        session.view_counted = true;
        Some(View {
            session: session.id.clone(),
            film: session.film.clone(),
            viewer: session.viewer.clone(),
            at: now,
        })
    }

    /// Applies staged changes, once their records are durable.
    pub fn commit(&mut self, changes: Vec<Change>) {
        for change in changes {
            let figures = match self.films.get_mut(&change.new.film) {
                Some(f) => f,
                None => self.films.entry(change.new.film.clone()).or_default(),
            };
            let before = match self.sessions.get(&change.new.id) {
                Some(old) => {
                    figures.remove(old);
                    old.beat.bytes
                }
                None => 0,
            };
            self.bytes_reported = self
                .bytes_reported
                .saturating_add(change.new.beat.bytes.saturating_sub(before));
            figures.add(&change.new);
            if let Some(view) = change.view {
                figures.count_view(view.at);
                self.last_view
                    .insert((view.viewer.clone(), view.film.clone()), view.at);
            }
            self.sessions.insert(change.new.id.clone(), change.new);
        }
    }

    /// Applies one beat at once, staging and committing it (for tests and tools that have no
    /// store to wait for).
    pub fn beat(
        &mut self,
        config: &Config,
        beat: &Beat,
        now: i64,
    ) -> (Result<Outcome, Error>, Vec<Record>) {
        let (mut outcomes, changes, records) = self.stage(config, std::slice::from_ref(beat), now);
        self.commit(changes);
        (outcomes.remove(0), records)
    }

    pub fn concurrent(&mut self, config: &Config, film: &str, now: i64) -> u64 {
        self.films
            .get_mut(film)
            .map_or(0, |f| f.concurrent(config, now))
    }

    /// Stages a sample of every film at `now`: the minute rollup and, where concurrency rose
    /// above it, the peak. Changes nothing until [`State::commit_sample`].
    pub fn sample(&mut self, config: &Config, now: i64) -> (Sampled, Vec<Record>) {
        let minute_at = now - now.rem_euclid(60_000);
        let mut sampled = Sampled {
            now,
            ..Sampled::default()
        };
        let mut records = Vec::new();
        for (film, figures) in &mut self.films {
            let stats = figures.stats(config, film, now);
            let before = figures.minutes.get(&minute_at);
            let minute = Minute {
                film: film.clone(),
                at: minute_at,
                concurrent_viewers: before
                    .map_or(0, |m| m.concurrent_viewers)
                    .max(stats.concurrent_viewers),
                views: stats.views,
                views_24h: stats.views_24h,
                playing_time_s: stats.playing_time_s,
                rebuffer_ratio: stats.rebuffer_ratio,
                startup_ms_p95: stats.startup_ms_p95,
                bytes: stats.bytes,
                watching_by_network: stats.watching_by_network,
                watching_by_rung: stats.watching_by_rung,
            };
            records.push(Record::Minute(minute.clone()));
            sampled.minutes.push(minute);
            if stats.concurrent_viewers > figures.peak {
                records.push(Record::Peak {
                    film: film.clone(),
                    peak: stats.concurrent_viewers,
                    at: now,
                });
                sampled.peaks.push((film.clone(), stats.concurrent_viewers));
            }
        }
        (sampled, records)
    }

    /// Applies a staged sample once stored, then forgets sessions idle for longer than
    /// `keep_ms` (their views stay counted) and whatever fell out of every window.
    pub fn commit_sample(&mut self, config: &Config, sampled: Sampled, keep_ms: i64) {
        let now = sampled.now;
        for minute in sampled.minutes {
            if let Some(f) = self.films.get_mut(&minute.film) {
                f.minutes.insert(minute.at, minute);
            }
        }
        for (film, peak) in sampled.peaks {
            if let Some(f) = self.films.get_mut(&film) {
                f.peak = peak;
                f.peak_at = Some(now);
            }
        }
        let films = &mut self.films;
        self.sessions.retain(|_, s| {
            let keep = now - s.last_beat_at.unwrap_or(s.started_at) <= keep_ms;
            if !keep && let Some(f) = films.get_mut(&s.film) {
                f.remove(s);
            }
            keep
        });
        self.last_view
            .retain(|_, at| now - *at < config.view_dedup_ms.max(DAY_MS));
        for film in self.films.values_mut() {
            film.prune(config, now);
        }
    }

    /// The figures of `film` at `now`.
    pub fn stats(&mut self, config: &Config, film: &str, now: i64) -> FilmStats {
        match self.films.get_mut(film) {
            Some(f) => f.stats(config, film, now),
            None => FilmFigures::default().stats(config, film, now),
        }
    }

    /// Bytes players reported downloading in the beats this process committed since it
    /// started (their growth from beat to beat; a session's first beat brings all it had).
    pub fn bytes_reported(&self) -> u64 {
        self.bytes_reported
    }

    /// Films with figures.
    pub fn films(&self) -> impl Iterator<Item = &str> {
        self.films.keys().map(String::as_str)
    }
}

/// The rules of one heartbeat on a session, as a pure function.
mod rules {
    use super::*;

    /// The session after `beat`, or why it does not change.
    pub(super) fn next(
        config: &Config,
        session: &Session,
        beat: &Beat,
        now: i64,
    ) -> Result<(Outcome, Option<Session>), Error> {
        if session.film != beat.film || session.viewer != beat.viewer {
            return Err(Error::UnknownSession(beat.session.clone()));
        }
        if session.last_seq.is_some_and(|last| beat.seq <= last) {
            return Ok((Outcome::Duplicate, None));
        }
        if session.state.is_some_and(PlayerState::is_terminal) {
            return Ok((Outcome::Closed, None));
        }
        if let Some(last) = session.last_beat_at
            && now.saturating_sub(last) < config.min_beat_gap_ms
            && !beat.state.is_terminal()
        {
            return Ok((Outcome::TooSoon, None));
        }
        // Playing time may not grow faster than wall-clock time × 1.05 + 1 s, nor go backwards.
        // Measured from the session's start, not from the last beat's arrival: a beat delayed
        // in a queue (a slow commit, a congested link) must not make the next, on-time beat
        // look too fast, nor every one after it.
        let since = now.saturating_sub(session.started_at).max(0) as f64;
        let allowed = (since * config.rate_slack) as u64 + config.rate_grace_ms;
        let Some(played) = beat.counters.play_ms.checked_sub(session.beat.play_ms) else {
            return Ok((Outcome::Implausible, None));
        };
        if beat.counters.play_ms > allowed {
            return Ok((Outcome::Implausible, None));
        }

        let mut next = session.clone();
        if played > 0 {
            let height = if session.beat.height > 0 {
                session.beat.height
            } else {
                beat.counters.height
            };
            let rung = next.rungs.entry(height).or_default();
            *rung = rung.saturating_add(played);
            // Like the rung: the time since the last beat was played under the codec that
            // beat named (a player changes codec only by starting again).
            if let Some(codec) = session.beat.codec.or(beat.counters.codec) {
                let time = next.codecs.entry(codec).or_default();
                *time = time.saturating_add(played);
            }
        }
        // Bytes are counted whatever the state (a paused or rebuffering player downloads too),
        // under the codec of the earlier beat like the time; a counter that went down (a
        // player that restarted its count) adds nothing.
        let downloaded = beat.counters.bytes.saturating_sub(session.beat.bytes);
        if downloaded > 0
            && let Some(codec) = session.beat.codec.or(beat.counters.codec)
        {
            let bytes = next.codec_bytes.entry(codec).or_default();
            *bytes = bytes.saturating_add(downloaded);
        }
        next.beat = beat.counters;
        next.state = Some(beat.state);
        next.last_seq = Some(beat.seq);
        next.last_beat_at = Some(now);
        Ok((Outcome::Accepted, Some(next)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Codec;

    fn config() -> Config {
        Config::default()
    }

    fn beat_of(
        id: &str,
        viewer: &str,
        started: i64,
        seq: u64,
        state: PlayerState,
        play_ms: u64,
    ) -> Beat {
        Beat {
            session: id.into(),
            film: "film".into(),
            viewer: viewer.into(),
            started_at: started,
            seq,
            state,
            counters: Counters {
                play_ms,
                startup_ms: 800,
                playhead_ms: play_ms,
                height: 720,
                bitrate_kbps: 3000,
                ..Counters::default()
            },
            proven: true,
        }
    }

    /// Beats of session `id` (viewer `viewer`, minted at `start`) one by one.
    struct Player<'a> {
        s: &'a mut State,
        id: &'static str,
        viewer: &'static str,
        start: i64,
    }

    impl Player<'_> {
        fn beat(&mut self, seq: u64, state: PlayerState, play_ms: u64, now: i64) -> Outcome {
            let b = beat_of(self.id, self.viewer, self.start, seq, state, play_ms);
            self.s.beat(&config(), &b, now).0.unwrap()
        }

        /// One beat every 10 s from `start` for `seconds`; returns the time of the last.
        fn play(&mut self, seconds: u64) -> i64 {
            let mut now = self.start;
            for i in 0..=seconds / 10 {
                assert_eq!(
                    self.beat(i, PlayerState::Playing, i * 10_000, now),
                    Outcome::Accepted,
                    "beat {i}"
                );
                now += 10_000;
            }
            now - 10_000
        }
    }

    fn player<'a>(
        s: &'a mut State,
        id: &'static str,
        viewer: &'static str,
        start: i64,
    ) -> Player<'a> {
        Player {
            s,
            id,
            viewer,
            start,
        }
    }

    #[test]
    fn a_view_needs_thirty_seconds_of_playing() {
        let c = config();
        let mut s = State::default();
        player(&mut s, "a", "v1", 0).play(20);
        assert_eq!(s.stats(&c, "film", 20_000).views, 0);
        let (_, records) = s.beat(
            &c,
            &beat_of("a", "v1", 0, 3, PlayerState::Playing, 30_000),
            30_000,
        );
        assert_eq!(s.stats(&c, "film", 30_000).views, 1);
        assert!(records.iter().any(|r| matches!(r, Record::View(_))));
        // Only once per session.
        let (later, _) = s.beat(
            &c,
            &beat_of("a", "v1", 0, 4, PlayerState::Playing, 40_000),
            40_000,
        );
        assert_eq!(later.unwrap(), Outcome::Accepted);
        assert_eq!(s.stats(&c, "film", 40_000).views, 1);
    }

    #[test]
    fn one_claim_is_not_a_view_playing_time_must_accrue_between_beats() {
        let c = config();
        let mut s = State::default();
        // Minted, then silent 29 s, then one beat claiming 30 s: plausible (29 × 1.05 + 1),
        // but the server saw none of it accrue.
        let mut a = player(&mut s, "a", "v1", 0);
        assert_eq!(
            a.beat(1, PlayerState::Playing, 30_000, 29_000),
            Outcome::Accepted
        );
        assert_eq!(a.s.stats(&c, "film", 29_000).views, 0);
        // 30 s more, seen between beats: a view.
        assert_eq!(
            a.beat(2, PlayerState::Playing, 45_000, 44_000),
            Outcome::Accepted
        );
        assert_eq!(
            a.beat(3, PlayerState::Playing, 60_000, 59_000),
            Outcome::Accepted
        );
        assert_eq!(a.s.stats(&c, "film", 59_000).views, 1);
    }

    #[test]
    fn a_session_needs_its_proof_of_work_on_its_first_beat() {
        let c = config();
        let mut s = State::default();
        let mut b = beat_of("a", "v1", 0, 1, PlayerState::Playing, 0);
        b.proven = false;
        let (outcome, records) = s.beat(&c, &b, 0);
        assert!(
            matches!(outcome, Err(Error::ProofRequired(_))),
            "{outcome:?}"
        );
        assert!(records.is_empty());
        assert_eq!(s.stats(&c, "film", 0).sessions, 0);
        b.proven = true;
        assert_eq!(s.beat(&c, &b, 0).0.unwrap(), Outcome::Accepted);
        // Later beats need not repeat it.
        b.seq = 2;
        b.proven = false;
        b.counters.play_ms = 10_000;
        assert_eq!(s.beat(&c, &b, 10_000).0.unwrap(), Outcome::Accepted);
        assert_eq!(s.stats(&c, "film", 10_000).sessions, 1);
    }

    #[test]
    fn one_view_per_viewer_and_film_per_hour() {
        let c = config();
        let mut s = State::default();
        player(&mut s, "a", "v1", 0).play(40);
        player(&mut s, "b", "v1", 100_000).play(40);
        assert_eq!(s.stats(&c, "film", 200_000).views, 1);
        let hour = 3_600_000;
        player(&mut s, "c", "v1", hour + 1_000).play(40);
        assert_eq!(s.stats(&c, "film", 2 * hour).views, 2);
        // Another viewer on the same address is another view: no IP cap.
        player(&mut s, "d", "v2", 0).play(40);
        assert_eq!(s.stats(&c, "film", 2 * hour).views, 3);
    }

    #[test]
    fn each_film_counts_only_its_own_sessions() {
        let c = config();
        let mut s = State::default();
        let end = player(&mut s, "a", "v1", 0).play(40);
        let mut other = beat_of("b", "v2", 0, 0, PlayerState::Playing, 0);
        other.film = "other".into();
        s.beat(&c, &other, 0).0.unwrap();
        other.seq = 1;
        other.counters.play_ms = 20_000;
        s.beat(&c, &other, 20_000).0.unwrap();
        let film = s.stats(&c, "film", end);
        let o = s.stats(&c, "other", end);
        assert_eq!(
            (film.sessions, film.views, film.playing_time_s),
            (1, 1, 40.0)
        );
        assert_eq!((o.sessions, o.views, o.playing_time_s), (1, 0, 20.0));
        assert_eq!(s.concurrent(&c, "film", end), 1);
        assert_eq!(s.stats(&c, "nothing", end).sessions, 0);
    }

    #[test]
    fn concurrency_counts_live_unpaused_viewers() {
        let c = config();
        let mut s = State::default();
        player(&mut s, "a", "v1", 0).beat(0, PlayerState::Playing, 0, 0);
        player(&mut s, "b", "v2", 0).beat(0, PlayerState::Paused, 0, 0);
        player(&mut s, "c", "v3", 0).beat(0, PlayerState::Rebuffering, 0, 0);
        assert_eq!(s.concurrent(&c, "film", 1_000), 2);
        // Liveness: 30 s after its last beat a session no longer counts.
        assert_eq!(s.concurrent(&c, "film", 30_000), 2);
        assert_eq!(s.concurrent(&c, "film", 30_001), 0);
        // And back, if asked about an earlier moment.
        assert_eq!(s.concurrent(&c, "film", 1_000), 2);
        // Ended sessions leave at once.
        player(&mut s, "a", "v1", 0).beat(1, PlayerState::Ended, 1_000, 2_000);
        assert_eq!(s.concurrent(&c, "film", 2_000), 1);
    }

    #[test]
    fn a_viewer_in_many_sessions_is_one_concurrent_viewer_and_the_extra_sessions_are_set_apart() {
        let c = config();
        let mut s = State::default();
        let ids = ["s0", "s1", "s2", "s3", "s4", "s5"];
        for id in ids {
            player(&mut s, id, "v1", 0).beat(0, PlayerState::Playing, 0, 0);
        }
        for (seq, now) in [(1, 10_000), (2, 20_000), (3, 30_000), (4, 40_000)] {
            for id in ids {
                player(&mut s, id, "v1", 0).beat(seq, PlayerState::Playing, now as u64, now);
            }
        }
        let stats = s.stats(&c, "film", 40_000);
        assert_eq!(stats.concurrent_viewers, 1);
        let kept = c.max_sessions_per_viewer as u64;
        assert_eq!(stats.sessions, kept);
        assert_eq!(stats.suspicious_sessions, ids.len() as u64 - kept);
        assert_eq!(stats.playing_time_s, 40.0 * kept as f64);
        assert_eq!(
            stats.suspicious_playing_time_s,
            40.0 * (ids.len() as u64 - kept) as f64
        );
        assert_eq!(stats.views, 1);
    }

    #[test]
    fn peaks_are_sampled_and_kept() {
        let c = config();
        let mut s = State::default();
        for (id, viewer) in [("s0", "v0"), ("s1", "v1"), ("s2", "v2")] {
            player(&mut s, id, viewer, 0).beat(0, PlayerState::Playing, 0, 0);
        }
        let (sampled, records) = s.sample(&c, 5_000);
        let peaks: Vec<&Record> = records
            .iter()
            .filter(|r| matches!(r, Record::Peak { .. }))
            .collect();
        assert_eq!(
            peaks,
            vec![&Record::Peak {
                film: "film".into(),
                peak: 3,
                at: 5_000
            }]
        );
        s.commit_sample(&c, sampled, DAY_MS);
        let (sampled, records) = s.sample(&c, 60_000);
        assert!(!records.iter().any(|r| matches!(r, Record::Peak { .. })));
        s.commit_sample(&c, sampled, DAY_MS);
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
    fn a_sample_not_committed_changes_nothing() {
        let c = config();
        let mut s = State::default();
        player(&mut s, "a", "v1", 0).beat(0, PlayerState::Playing, 0, 0);
        let _ = s.sample(&c, 5_000);
        assert_eq!(s.stats(&c, "film", 5_000).peak_concurrent_viewers, 0);
        assert!(s.series("film", "concurrent_viewers", 0, 60_000).is_empty());
    }

    #[test]
    fn minute_rollups_make_series() {
        let c = config();
        let mut s = State::default();
        let t0 = 1_800_000_000_000; // a whole minute
        let sample = |s: &mut State, now: i64| {
            let (sampled, records) = s.sample(&c, now);
            s.commit_sample(&c, sampled, DAY_MS);
            records
        };
        player(&mut s, "a", "v1", t0).beat(0, PlayerState::Playing, 0, t0);
        sample(&mut s, t0 + 10_000);
        player(&mut s, "b", "v2", t0).beat(0, PlayerState::Playing, 0, t0 + 20_000);
        let records = sample(&mut s, t0 + 25_000);
        assert!(
            records
                .iter()
                .any(|r| matches!(r, Record::Minute(m) if m.concurrent_viewers == 2))
        );
        player(&mut s, "a", "v1", t0).beat(1, PlayerState::Paused, 0, t0 + 65_000);
        player(&mut s, "b", "v2", t0).beat(1, PlayerState::Playing, 0, t0 + 60_000);
        sample(&mut s, t0 + 70_000);
        assert_eq!(
            s.series("film", "concurrent_viewers", t0, 60_000),
            vec![(t0, 2.0), (t0 + 60_000, 1.0)]
        );
        assert_eq!(
            s.series("film", "concurrent_viewers", t0, 120_000),
            vec![(t0, 2.0)]
        );
        assert!(s.series("film", "nonsense", t0, 60_000).is_empty());
        // By network: the players named none, so all are `unknown`; another name has 0.
        assert_eq!(
            s.series("film", "network:unknown", t0, 60_000),
            vec![(t0, 2.0), (t0 + 60_000, 1.0)]
        );
        assert_eq!(
            s.series("film", "network:4g", t0, 60_000),
            vec![(t0, 0.0), (t0 + 60_000, 0.0)]
        );
        // Extreme bounds neither overflow nor panic.
        s.series("film", "views", i64::MIN, i64::MAX);
        s.series("film", "views", i64::MAX, 60_000);
    }

    #[test]
    fn views_roll_out_of_the_24_hour_window() {
        let c = config();
        let mut s = State::default();
        player(&mut s, "a", "v1", 0).play(30);
        let day = 24 * 3_600_000;
        assert_eq!(s.stats(&c, "film", day).views_24h, 1);
        assert_eq!(s.stats(&c, "film", day + 30_001).views_24h, 0);
        assert_eq!(s.stats(&c, "film", day + 30_001).views, 1);
        assert_eq!(s.stats(&c, "film", day + 30_001).unique_viewers_24h, 0);
        assert_eq!(s.stats(&c, "film", day).unique_viewers_24h, 1);
    }

    #[test]
    fn expired_sessions_leave_the_figures_but_their_views_stay() {
        let c = config();
        let mut s = State::default();
        player(&mut s, "a", "v1", 0).play(40);
        let (sampled, _) = s.sample(&c, 3 * DAY_MS);
        s.commit_sample(&c, sampled, 2 * DAY_MS);
        let stats = s.stats(&c, "film", 3 * DAY_MS);
        assert_eq!(
            (stats.sessions, stats.playing_time_s, stats.views),
            (0, 0.0, 1)
        );
        assert!(s.session("a").is_none());
    }

    #[test]
    fn a_beat_delayed_in_a_queue_does_not_make_the_next_ones_implausible() {
        let c = config();
        let mut s = State::default();
        let mut a = player(&mut s, "a", "v1", 0);
        assert_eq!(a.beat(0, PlayerState::Playing, 0, 0), Outcome::Accepted);
        assert_eq!(
            a.beat(1, PlayerState::Playing, 10_000, 10_000),
            Outcome::Accepted
        );
        // Sent at 20 s, stuck 9.5 s behind a slow commit.
        assert_eq!(
            a.beat(2, PlayerState::Playing, 20_000, 29_500),
            Outcome::Accepted
        );
        // The next beats leave on time: 10 s more playing, 0.5 s after the late arrival.
        assert_eq!(
            a.beat(3, PlayerState::Playing, 30_000, 30_000 + c.min_beat_gap_ms),
            Outcome::Accepted
        );
        assert_eq!(
            a.beat(4, PlayerState::Playing, 40_000, 40_000),
            Outcome::Accepted
        );
        // Playing time beyond the session's whole wall-clock time is still refused.
        assert_eq!(
            a.beat(5, PlayerState::Playing, 60_000, 50_000),
            Outcome::Implausible
        );
    }

    #[test]
    fn implausible_and_too_frequent_beats_are_not_counted() {
        let c = config();
        let mut s = State::default();
        let mut a = player(&mut s, "a", "v1", 0);
        assert_eq!(a.beat(0, PlayerState::Playing, 0, 0), Outcome::Accepted);
        // 60 s of playing claimed after 10 s of wall-clock time.
        assert_eq!(
            a.beat(1, PlayerState::Playing, 60_000, 10_000),
            Outcome::Implausible
        );
        // Within the allowance: 10 s × 1.05 + 1 s.
        assert_eq!(
            a.beat(2, PlayerState::Playing, 11_400, 10_000),
            Outcome::Accepted
        );
        // Faster than one beat per 5 s.
        assert_eq!(
            a.beat(3, PlayerState::Playing, 12_000, 13_000),
            Outcome::TooSoon
        );
        // Counters never go backwards.
        assert_eq!(
            a.beat(4, PlayerState::Playing, 5_000, 20_000),
            Outcome::Implausible
        );
        // Repeated seq: idempotent.
        assert_eq!(
            a.beat(2, PlayerState::Playing, 11_400, 30_000),
            Outcome::Duplicate
        );
        assert_eq!(a.s.stats(&c, "film", 30_000).playing_time_s, 11.4);
        // The final beat may come sooner (sendBeacon on page hide).
        assert_eq!(
            a.beat(5, PlayerState::Ended, 12_000, 31_000),
            Outcome::Accepted
        );
        assert_eq!(
            a.beat(6, PlayerState::Playing, 20_000, 41_000),
            Outcome::Closed
        );
        // A first beat beyond the time since the session was minted makes no session.
        let mut b = player(a.s, "b", "v2", 0);
        assert_eq!(
            b.beat(1, PlayerState::Playing, 60_000, 10_000),
            Outcome::Implausible
        );
        assert!(b.s.session("b").is_none());
    }

    #[test]
    fn a_token_of_another_viewer_or_film_is_refused() {
        let c = config();
        let mut s = State::default();
        player(&mut s, "a", "v1", 0).beat(0, PlayerState::Playing, 0, 0);
        let stolen = beat_of("a", "v2", 0, 1, PlayerState::Playing, 10_000);
        assert!(matches!(
            s.beat(&c, &stolen, 10_000).0,
            Err(Error::UnknownSession(_))
        ));
    }

    #[test]
    fn quality_of_experience_figures() {
        let c = config();
        let mut s = State::default();
        let mut b = beat_of("a", "v1", 0, 0, PlayerState::Playing, 0);
        b.counters.startup_ms = 500;
        s.beat(&c, &b, 0).0.unwrap();
        let mut b = beat_of("a", "v1", 0, 1, PlayerState::Ended, 9_000);
        b.counters.startup_ms = 500;
        b.counters.rebuffer_ms = 1_000;
        s.beat(&c, &b, 10_000).0.unwrap();
        let mut b = beat_of("b", "v2", 0, 0, PlayerState::Error, 0);
        b.counters.startup_ms = 0;
        b.counters.fatal_error = true;
        s.beat(&c, &b, 2_000).0.unwrap();
        // Intent, never a frame, then silence: an exit before start once past liveness.
        let mut b = beat_of("c", "v3", 0, 0, PlayerState::Startup, 0);
        b.counters.startup_ms = 0;
        s.beat(&c, &b, 3_000).0.unwrap();
        assert_eq!(s.stats(&c, "film", 4_000).exits_before_start, 0);
        let stats = s.stats(&c, "film", 100_000);
        assert_eq!(stats.startup_ms_p50, Some(500));
        assert_eq!(stats.rebuffer_ratio, 0.1);
        assert_eq!(stats.completion_rate, 1.0);
        assert_eq!(stats.failures, 1);
        assert_eq!(stats.exits_before_start, 1);
        assert_eq!(stats.rungs.get(&720), Some(&9.0));
    }

    #[test]
    fn sessions_and_playing_time_split_by_codec() {
        let c = config();
        let mut s = State::default();
        // An AV1 session plays 9 s, an H.264 one 4 s, one older player names no codec.
        for (session, viewer, codec, played) in [
            ("a", "v1", Some(Codec::Av1), 9_000),
            ("b", "v2", Some(Codec::H264), 4_000),
            ("c", "v3", None, 5_000),
        ] {
            let mut b = beat_of(session, viewer, 0, 0, PlayerState::Playing, 0);
            b.counters.codec = codec;
            s.beat(&c, &b, 0).0.unwrap();
            let mut b = beat_of(session, viewer, 0, 1, PlayerState::Playing, played);
            b.counters.codec = codec;
            s.beat(&c, &b, 10_000).0.unwrap();
        }
        let stats = s.stats(&c, "film", 10_000);
        let codecs: Vec<_> = stats
            .codecs
            .iter()
            .map(|(c, s)| (c.as_str(), s.sessions, s.playing_time_s))
            .collect();
        assert_eq!(codecs, [("h264", 1, 4.0), ("av1", 1, 9.0)]);
        // A session's later beats move it, and the figures follow exactly.
        let mut b = beat_of("b", "v2", 0, 2, PlayerState::Ended, 6_000);
        b.counters.codec = Some(Codec::H264);
        s.beat(&c, &b, 12_000).0.unwrap();
        let stats = s.stats(&c, "film", 12_000);
        assert_eq!(stats.codecs[&Codec::H264].playing_time_s, 6.0);
        assert_eq!(stats.codecs[&Codec::H264].sessions, 1);
    }

    #[test]
    fn bytes_split_by_codec_under_the_earlier_beat_and_a_falling_counter_adds_nothing() {
        let c = config();
        let mut s = State::default();
        let send = |s: &mut State, seq, codec, bytes, now| {
            let mut b = beat_of("a", "v1", 0, seq, PlayerState::Playing, now as u64);
            b.counters.codec = codec;
            b.counters.bytes = bytes;
            s.beat(&c, &b, now).0.unwrap()
        };
        // The first beat's bytes count under its own codec.
        assert_eq!(
            send(&mut s, 0, Some(Codec::H264), 1_000, 0),
            Outcome::Accepted
        );
        // 4,000 more, downloaded while H.264 played (the earlier beat's codec).
        send(&mut s, 1, Some(Codec::Av1), 5_000, 10_000);
        send(&mut s, 2, Some(Codec::Av1), 7_000, 20_000);
        // A player that restarted its count: nothing added, nothing taken back.
        send(&mut s, 3, Some(Codec::Av1), 500, 30_000);
        send(&mut s, 4, Some(Codec::Av1), 800, 40_000);
        // A session naming no codec: its bytes are in the total, under no codec.
        let mut b = beat_of("b", "v2", 0, 0, PlayerState::Playing, 0);
        b.counters.bytes = 9_000;
        s.beat(&c, &b, 10_000).0.unwrap();
        let stats = s.stats(&c, "film", 40_000);
        let bytes: Vec<_> = stats
            .codecs
            .iter()
            .map(|(c, s)| (c.as_str(), s.bytes))
            .collect();
        assert_eq!(bytes, [("h264", 5_000), ("av1", 2_300)]);
        assert_eq!(stats.bytes, 800 + 9_000, "the total is the latest counters");
        // The process's counter of reported bytes only grows: 1,000 + 4,000 + 2,000 + 0 +
        // 300 + 9,000.
        assert_eq!(s.bytes_reported(), 16_300);
    }

    #[test]
    fn sessions_watching_now_split_by_network_and_rung() {
        use crate::Network;
        let c = config();
        let mut s = State::default();
        for (id, viewer, network, height, state) in [
            ("a", "v1", Some(Network::G4), 1080, PlayerState::Playing),
            ("b", "v2", Some(Network::G3), 360, PlayerState::Playing),
            ("c", "v3", Some(Network::G3), 360, PlayerState::Rebuffering),
            ("d", "v4", None, 720, PlayerState::Playing),
            // Paused is not watching.
            ("e", "v5", Some(Network::G2), 240, PlayerState::Paused),
        ] {
            let mut b = beat_of(id, viewer, 0, 0, state, 0);
            b.counters.network = network;
            b.counters.height = height;
            s.beat(&c, &b, 0).0.unwrap();
        }
        let stats = s.stats(&c, "film", 10_000);
        let networks: Vec<_> = stats
            .watching_by_network
            .iter()
            .map(|(n, v)| (n.as_str(), *v))
            .collect();
        assert_eq!(networks, [("3g", 2), ("4g", 1), ("unknown", 1)]);
        let rungs: Vec<_> = stats.watching_by_rung.into_iter().collect();
        assert_eq!(rungs, [(360, 2), (720, 1), (1080, 1)]);
        // `a` moves down to 3G and 480p; `b` ends: the split follows each session's last beat.
        let mut b = beat_of("a", "v1", 0, 1, PlayerState::Playing, 10_000);
        b.counters.network = Some(Network::G3);
        b.counters.height = 480;
        s.beat(&c, &b, 10_000).0.unwrap();
        s.beat(
            &c,
            &beat_of("b", "v2", 0, 1, PlayerState::Ended, 10_000),
            10_000,
        )
        .0
        .unwrap();
        let stats = s.stats(&c, "film", 15_000);
        assert_eq!(stats.watching_by_network["3g"], 2);
        assert!(!stats.watching_by_network.contains_key("4g"));
        assert_eq!(stats.watching_by_rung.get(&480), Some(&1));
        assert_eq!(stats.watching_by_rung.get(&360), Some(&1));
        // Past the liveness window of the beats at 0 s, only `a` (heard at 10 s) is left.
        let stats = s.stats(&c, "film", 10_000 + c.liveness_ms);
        assert_eq!(stats.watching_by_network.values().sum::<u64>(), 1);
        assert_eq!(
            stats.watching_by_rung.into_iter().collect::<Vec<_>>(),
            [(480, 1)]
        );
        assert_eq!(stats.concurrent_viewers, 1);
    }

    #[test]
    fn staged_changes_apply_only_when_committed() {
        let c = config();
        let mut s = State::default();
        let b = beat_of("a", "v1", 0, 0, PlayerState::Playing, 0);
        let (outcomes, changes, records) = s.stage(&c, std::slice::from_ref(&b), 0);
        assert_eq!(outcomes[0].as_ref().unwrap(), &Outcome::Accepted);
        assert_eq!(records.len(), 1);
        drop(changes); // the store failed
        assert!(s.session("a").is_none());
        assert_eq!(s.stats(&c, "film", 0).sessions, 0);
        // The retry is applied, not answered `duplicate`.
        assert_eq!(s.beat(&c, &b, 1_000).0.unwrap(), Outcome::Accepted);
        assert_eq!(s.stats(&c, "film", 1_000).sessions, 1);
    }

    #[test]
    fn several_beats_of_one_session_in_one_batch_apply_in_order() {
        let c = config();
        let mut s = State::default();
        let beats: Vec<Beat> = (0..5)
            .map(|i| beat_of("a", "v1", 0, i, PlayerState::Playing, i * 10_000))
            .collect();
        // All staged at one moment: only the first passes the gap rule.
        let (outcomes, changes, _) = s.stage(&c, &beats, 40_000);
        assert_eq!(outcomes[0].as_ref().unwrap(), &Outcome::Accepted);
        assert!(
            outcomes[1..]
                .iter()
                .all(|o| o.as_ref().unwrap() == &Outcome::TooSoon)
        );
        s.commit(changes);
        assert_eq!(s.stats(&c, "film", 40_000).sessions, 1);
    }
}
