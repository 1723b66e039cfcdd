//! An [`AudienceStore`] in memory, and the conformance suite every store must pass.
//!
//! The memory store lets the engine's own tests (tokens, restart, group commit, load
//! shedding, several nodes on one store) run in this crate without a database; it can also be
//! told to fail its next writes, to show that a failed commit changes nothing. Its clones
//! share the data, as connections to one database do, and each has a cursor of its own for
//! [`AudienceStore::exchange`], so two engines on two clones are two nodes. [`conformance`]
//! holds any store to the contract of the trait: `crates/db` runs it on SQLite and
//! PostgreSQL, and a new backend is one more call of it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::{AudienceStore, Catchup, Error, Minute, Record, Result, Session, Snapshot, View};

#[derive(Debug, Default)]
struct Data {
    sessions: BTreeMap<String, Session>,
    views: BTreeMap<String, View>,
    peaks: BTreeMap<String, (u64, i64)>,
    minutes: BTreeMap<(String, i64), Minute>,
    /// The revision of the last change to a session, a view or a peak.
    rev: u64,
    /// Which revision changed each session and view, for catching up.
    session_rev: BTreeMap<String, u64>,
    view_rev: BTreeMap<String, u64>,
}

/// Sessions, views, peaks and minutes in memory; clones share the same data, like two
/// connections to one database.
#[derive(Debug, Default)]
pub struct MemoryStore {
    data: Arc<Mutex<Data>>,
    fail_next: Arc<AtomicUsize>,
    /// Records stored, for tests.
    writes: Arc<AtomicUsize>,
    /// The revision this connection has seen everything up to (its own, not shared).
    seen: AtomicU64,
}

impl Clone for MemoryStore {
    /// Another connection to the same data, which has seen nothing yet.
    fn clone(&self) -> Self {
        Self {
            data: Arc::clone(&self.data),
            fail_next: Arc::clone(&self.fail_next),
            writes: Arc::clone(&self.writes),
            seen: AtomicU64::new(0),
        }
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `n` writes fail, as a full disk would.
    pub fn fail_next_writes(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// Transactions committed so far.
    pub fn commits(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    fn data(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `records` into `data` (locked by the caller), all or nothing.
    fn apply(&self, data: &mut Data, records: &[Record]) -> Result<()> {
        if self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Error::Store("the memory store was told to fail".into()));
        }
        for record in records {
            match record {
                Record::Session(s) => {
                    data.rev += 1;
                    let rev = data.rev;
                    data.session_rev.insert(s.id.clone(), rev);
                    data.sessions.insert(s.id.clone(), s.clone());
                }
                Record::View(v) => {
                    if !data.views.contains_key(&v.session) {
                        data.rev += 1;
                        let rev = data.rev;
                        data.view_rev.insert(v.session.clone(), rev);
                        data.views.insert(v.session.clone(), v.clone());
                    }
                }
                Record::Peak { film, peak, at } => {
                    let entry = data.peaks.entry(film.clone()).or_insert((0, *at));
                    if *peak > entry.0 {
                        *entry = (*peak, *at);
                        data.rev += 1;
                    }
                }
                Record::Minute(m) => {
                    data.minutes.insert((m.film.clone(), m.at), m.clone());
                }
            }
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

impl AudienceStore for MemoryStore {
    fn write(&self, records: &[Record]) -> Result<()> {
        let mut data = self.data();
        self.apply(&mut data, records)
    }

    fn is_shared(&self) -> bool {
        true
    }

    /// Holds the data's lock through the whole exchange, as a shared store holds its lock.
    fn exchange(&self, now_ms: i64, stage: &mut dyn FnMut(Catchup) -> Vec<Record>) -> Result<()> {
        let mut data = self.data();
        let seen = self.seen.load(Ordering::SeqCst);
        let mut catchup = Catchup {
            now_ms,
            ..Catchup::default()
        };
        if data.rev > seen {
            for (id, _) in data.session_rev.iter().filter(|(_, rev)| **rev > seen) {
                catchup.sessions.push(data.sessions[id].clone());
            }
            for (session, _) in data.view_rev.iter().filter(|(_, rev)| **rev > seen) {
                catchup.views.push(data.views[session].clone());
            }
            catchup.peaks = data
                .peaks
                .iter()
                .map(|(film, (peak, at))| (film.clone(), *peak, *at))
                .collect();
            // What others committed is seen, whatever becomes of this transaction.
            self.seen.store(data.rev, Ordering::SeqCst);
        }
        let records = stage(catchup);
        if !records.is_empty() {
            self.apply(&mut data, &records)?;
            // Nobody else wrote meanwhile: the lock is held.
            self.seen.store(data.rev, Ordering::SeqCst);
        }
        Ok(())
    }

    fn load(&self, started_since_ms: i64, since_ms: i64) -> Result<Snapshot> {
        let data = self.data();
        // A restart has seen everything there is.
        self.seen.store(data.rev, Ordering::SeqCst);
        let mut older: BTreeMap<String, u64> = BTreeMap::new();
        for v in data.views.values().filter(|v| v.at < since_ms) {
            *older.entry(v.film.clone()).or_default() += 1;
        }
        let month_before = since_ms - 29 * 24 * 3_600_000;
        Ok(Snapshot {
            sessions: data
                .sessions
                .values()
                .filter(|s| s.started_at >= started_since_ms)
                .cloned()
                .collect(),
            views: data
                .views
                .values()
                .filter(|v| v.at >= since_ms)
                .cloned()
                .collect(),
            older_views: older.into_iter().collect(),
            peaks: data
                .peaks
                .iter()
                .map(|(film, (peak, at))| (film.clone(), *peak, *at))
                .collect(),
            minutes: data
                .minutes
                .values()
                .filter(|m| m.at >= month_before)
                .cloned()
                .collect(),
        })
    }
}

/// The contract of [`AudienceStore`], as a suite any backend can run:
/// `conformance::run(|| Arc::new(MyStore::open(...)))` where every call opens the same
/// underlying data (a restart). A test suite: a broken promise panics.
#[allow(clippy::unwrap_used)]
pub mod conformance {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use crate::{
        AudienceStore, Codec, Counters, Minute, Network, PlayerState, Record, Session, View,
    };

    const T0: i64 = 1_800_000_000_000;

    fn session(id: &str, film: &str, started_at: i64, play_ms: u64) -> Session {
        Session {
            id: id.into(),
            film: film.into(),
            viewer: format!("viewer-{id}"),
            started_at,
            last_beat_at: Some(started_at + 10_000),
            last_seq: Some(3),
            state: Some(PlayerState::Playing),
            beat: Counters {
                play_ms,
                rebuffer_ms: 250,
                rebuffer_count: 1,
                startup_ms: 900,
                seek_ms: 0,
                playhead_ms: play_ms,
                height: 720,
                bitrate_kbps: 3_000,
                bytes: crate::heartbeat::limits::BYTES,
                dropped_frames: 2,
                fatal_error: false,
                codec: Some(Codec::Av1),
                network: Some(Network::Slow2g),
            },
            first_play_ms: 100,
            view_counted: true,
            view_deduplicated: false,
            suspicious: false,
            rungs: BTreeMap::from([(360, 1_000), (720, play_ms - 1_000)]),
            codecs: BTreeMap::from([(Codec::H264, 1_000), (Codec::Av1, play_ms - 1_000)]),
            codec_bytes: BTreeMap::from([
                (Codec::H264, 7),
                (Codec::Av1, crate::heartbeat::limits::BYTES - 7),
            ]),
        }
    }

    fn minute(film: &str, at: i64, concurrent: u64) -> Minute {
        Minute {
            film: film.into(),
            at,
            concurrent_viewers: concurrent,
            views: 3,
            views_24h: 2,
            playing_time_s: 12.5,
            rebuffer_ratio: 0.25,
            startup_ms_p95: Some(800),
            bytes: 1 << 40,
            watching_by_network: BTreeMap::from([("3g".into(), 2), ("unknown".into(), 1)]),
            watching_by_rung: BTreeMap::from([(360, 1), (1080, 2)]),
        }
    }

    /// Runs every check; panics (fails the calling test) on the first broken promise.
    pub fn run(open: &dyn Fn() -> Arc<dyn AudienceStore>) {
        sessions_round_trip_and_the_latest_state_wins(open);
        views_are_kept_once_and_split_by_age(open);
        peaks_only_rise_and_minutes_are_replaced(open);
        an_empty_write_is_fine(open);
    }

    fn sessions_round_trip_and_the_latest_state_wins(open: &dyn Fn() -> Arc<dyn AudienceStore>) {
        let store = open();
        let old = session("s-old", "a", T0 - 100_000, 5_000);
        let mut s = session("s1", "a", T0, 20_000);
        store
            .write(&[Record::Session(old.clone()), Record::Session(s.clone())])
            .unwrap();
        s.beat.play_ms = 30_000;
        s.last_seq = Some(4);
        s.state = Some(PlayerState::Ended);
        s.suspicious = true;
        s.beat.network = Some(Network::G4);
        s.codec_bytes.insert(Codec::H264, 9);
        let mut quiet = session("s2", "a", T0 + 1, 1_000);
        quiet.beat.network = None;
        quiet.beat.codec = None;
        quiet.codec_bytes.clear();
        store
            .write(&[Record::Session(s.clone()), Record::Session(quiet.clone())])
            .unwrap();
        drop(store);
        let mut loaded = open().load(T0 - 1, T0).unwrap();
        loaded.sessions.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(
            loaded.sessions,
            vec![s, quiet],
            "only sessions started since, as last written"
        );
    }

    fn views_are_kept_once_and_split_by_age(open: &dyn Fn() -> Arc<dyn AudienceStore>) {
        let store = open();
        let view = |session: &str, at| View {
            session: session.into(),
            film: "b".into(),
            viewer: "viewer-1".into(),
            at,
        };
        store
            .write(&[
                Record::View(view("v1", T0 - 5)),
                Record::View(view("v2", T0)),
                Record::View(view("v3", T0 + 5)),
            ])
            .unwrap();
        // The same session's view again is no second view.
        store.write(&[Record::View(view("v3", T0 + 9))]).unwrap();
        let loaded = open().load(T0, T0).unwrap();
        let mut recent: Vec<View> = loaded.views.into_iter().filter(|v| v.film == "b").collect();
        recent.sort_by_key(|v| v.at);
        assert_eq!(recent, vec![view("v2", T0), view("v3", T0 + 5)]);
        let older: Vec<(String, u64)> = loaded
            .older_views
            .into_iter()
            .filter(|(film, _)| film == "b")
            .collect();
        assert_eq!(older, vec![("b".to_owned(), 1)]);
    }

    fn peaks_only_rise_and_minutes_are_replaced(open: &dyn Fn() -> Arc<dyn AudienceStore>) {
        let store = open();
        let peak = |peak, at| Record::Peak {
            film: "c".into(),
            peak,
            at,
        };
        store.write(&[peak(10, T0), peak(7, T0 + 1)]).unwrap();
        store.write(&[peak(12, T0 + 2)]).unwrap();
        store.write(&[peak(11, T0 + 3)]).unwrap();
        store.write(&[Record::Minute(minute("c", T0, 4))]).unwrap();
        store.write(&[Record::Minute(minute("c", T0, 9))]).unwrap();
        let loaded = open().load(T0, T0).unwrap();
        let peaks: Vec<_> = loaded.peaks.into_iter().filter(|p| p.0 == "c").collect();
        assert_eq!(peaks, vec![("c".to_owned(), 12, T0 + 2)]);
        let minutes: Vec<_> = loaded
            .minutes
            .into_iter()
            .filter(|m| m.film == "c")
            .collect();
        assert_eq!(minutes, vec![minute("c", T0, 9)]);
    }

    fn an_empty_write_is_fine(open: &dyn Fn() -> Arc<dyn AudienceStore>) {
        open().write(&[]).unwrap();
    }

    /// The contract of a store that several nodes share ([`AudienceStore::exchange`]): each
    /// call of `open` is another node on the same data (a fresh one, or one restarted).
    pub fn run_shared(open: &dyn Fn() -> Arc<dyn AudienceStore>) {
        each_node_catches_up_with_the_others_only(open);
    }

    /// Runs one exchange that writes `records`; returns what it caught up with.
    fn exchange(store: &dyn AudienceStore, records: Vec<Record>) -> crate::Catchup {
        let mut seen = None;
        let mut records = Some(records);
        store
            .exchange(T0, &mut |catchup| {
                seen = Some(catchup);
                records.take().unwrap_or_default()
            })
            .unwrap();
        seen.expect("exchange never called stage")
    }

    fn each_node_catches_up_with_the_others_only(open: &dyn Fn() -> Arc<dyn AudienceStore>) {
        let (a, b) = (open(), open());
        // Whatever was there before these nodes started is in their load, not a catch-up.
        a.load(0, 0).unwrap();
        b.load(0, 0).unwrap();
        let mut s = session("shared-1", "shared", T0, 20_000);
        let view = View {
            session: s.id.clone(),
            film: "shared".into(),
            viewer: s.viewer.clone(),
            at: T0 + 1,
        };
        let peak = Record::Peak {
            film: "shared".into(),
            peak: 5,
            at: T0 + 2,
        };
        let first = exchange(
            a.as_ref(),
            vec![Record::Session(s.clone()), Record::View(view.clone()), peak],
        );
        assert!(
            first.sessions.is_empty() && first.views.is_empty(),
            "{first:?}"
        );
        assert!(first.now_ms > 0);

        let caught = exchange(b.as_ref(), Vec::new());
        assert_eq!(caught.sessions, vec![s.clone()], "b sees a's session");
        assert_eq!(caught.views, vec![view.clone()], "b sees a's view");
        assert!(caught.peaks.contains(&("shared".to_owned(), 5, T0 + 2)));
        let again = exchange(b.as_ref(), Vec::new());
        assert!(
            again.sessions.is_empty() && again.views.is_empty(),
            "seen twice: {again:?}"
        );

        // b moves the session on; a sees only the latest state, and not its own writes.
        s.last_seq = Some(4);
        s.beat.play_ms = 30_000;
        exchange(b.as_ref(), vec![Record::Session(s.clone())]);
        s.last_seq = Some(5);
        s.beat.play_ms = 40_000;
        exchange(b.as_ref(), vec![Record::Session(s.clone())]);
        let caught = exchange(a.as_ref(), Vec::new());
        assert_eq!(
            caught.sessions,
            vec![s.clone()],
            "a sees b's latest state once"
        );
        assert!(
            caught.views.is_empty(),
            "a's own view came back: {caught:?}"
        );

        // A node started now has it all in its load, and nothing to catch up.
        let c = open();
        let loaded = c.load(0, 0).unwrap();
        assert!(loaded.sessions.contains(&s));
        let caught = exchange(c.as_ref(), Vec::new());
        assert!(
            caught.sessions.is_empty() && caught.views.is_empty(),
            "{caught:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::{Audience, Clock, Config, Heartbeat, Outcome, PlayerState, TokenError, proof};

    #[test]
    fn the_memory_store_keeps_the_contract() {
        let store = MemoryStore::new();
        conformance::run(&|| Arc::new(store.clone()) as Arc<dyn AudienceStore>);
        conformance::run_shared(&|| Arc::new(store.clone()) as Arc<dyn AudienceStore>);
    }

    const T0: i64 = 1_800_000_000_000;

    fn config() -> Config {
        Config {
            proof_bits: 8,
            // The memory store is shared (its clones are nodes): no wait between commits.
            shared_commit_every_ms: 0,
            ..Config::default()
        }
    }

    fn beat(seq: u64, state: PlayerState, play_ms: u64) -> Heartbeat {
        Heartbeat {
            token: None,
            proof: None,
            seq,
            state,
            play_ms,
            rebuffer_ms: 0,
            rebuffer_count: 0,
            startup_ms: 700,
            seek_ms: 0,
            playhead_ms: play_ms,
            height: 360,
            bitrate_kbps: 365,
            bytes: 0,
            dropped_frames: 0,
            fatal_error: false,
            codec: None,
            network: None,
        }
    }

    async fn open(store: &MemoryStore, clock: Clock, config: Config) -> Audience {
        Audience::open_with_clock(config, b"key".to_vec(), Arc::new(store.clone()), clock)
            .await
            .unwrap()
    }

    /// Plays `minted` from its first beat, one beat every 10 s up to `last_seq`.
    async fn play(
        audience: &Audience,
        now: &std::sync::atomic::AtomicI64,
        minted: &crate::Minted,
        seqs: std::ops::RangeInclusive<u64>,
    ) {
        let proof = proof::solve(&minted.session_id, minted.proof_bits);
        for seq in seqs {
            now.store(T0 + seq as i64 * 10_000, Ordering::SeqCst);
            let mut b = beat(seq, PlayerState::Playing, seq * 10_000);
            b.proof = Some(proof.clone());
            let outcome = audience
                .heartbeat(&minted.session_id, &minted.token, &b)
                .await
                .unwrap();
            assert_eq!(outcome, Outcome::Accepted, "beat {seq}");
        }
    }

    /// Sessions watching by rung, minute by minute over three minutes, against a ground truth
    /// written out by hand: each session's rung and state in each minute, one sample a
    /// minute. The series are the engine's minute rollups, so they come back whole from the
    /// store after a restart.
    #[tokio::test]
    async fn the_series_of_sessions_watching_by_rung_is_the_ground_truth_and_survives_a_restart() {
        use PlayerState::{Ended, Paused, Playing};
        let store = MemoryStore::new();
        let (clock, now) = Clock::manual(T0);
        let audience = open(&store, clock.clone(), config()).await;
        // (rung, state) of sessions a, b, c and d in minutes 0, 1 and 2; `None`: no beat.
        type Plan = [Option<(u32, PlayerState)>; 3];
        let plans: [Plan; 4] = [
            [
                Some((360, Playing)),
                Some((1080, Playing)),
                Some((1080, Playing)),
            ],
            [
                Some((720, Playing)),
                Some((720, Playing)),
                Some((360, Playing)),
            ],
            [
                Some((720, Playing)),
                Some((720, Paused)),
                Some((720, Ended)),
            ],
            [
                Some((1080, Paused)),
                Some((1080, Playing)),
                Some((1080, Playing)),
            ],
        ];
        let minted: Vec<_> = (0..plans.len())
            .map(|i| audience.mint("film", Some(format!("viewer-{i}"))).unwrap())
            .collect();
        let proofs: Vec<_> = minted
            .iter()
            .map(|m| proof::solve(&m.session_id, m.proof_bits))
            .collect();
        let mut seq = [0u64; 4];
        let mut play_ms = [0u64; 4];
        let mut ended = [false; 4];
        for minute in 0..3usize {
            for tick in 0..6i64 {
                now.store(
                    T0 + minute as i64 * 60_000 + tick * 10_000,
                    Ordering::SeqCst,
                );
                for (i, plan) in plans.iter().enumerate() {
                    let Some((height, state)) = plan[minute] else {
                        continue;
                    };
                    if ended[i] {
                        continue;
                    }
                    if state == Playing && seq[i] > 0 {
                        play_ms[i] += 10_000;
                    }
                    let mut b = beat(seq[i], state, play_ms[i]);
                    b.height = height;
                    b.proof = Some(proofs[i].clone());
                    let outcome = audience
                        .heartbeat(&minted[i].session_id, &minted[i].token, &b)
                        .await
                        .unwrap();
                    assert_eq!(outcome, Outcome::Accepted, "session {i}, minute {minute}");
                    seq[i] += 1;
                    ended[i] = state == Ended;
                }
            }
            now.store(T0 + minute as i64 * 60_000 + 55_000, Ordering::SeqCst);
            audience.sample().await.unwrap();
        }
        // The ground truth: who watched (playing) at which rung, in each minute.
        let minutes = [T0, T0 + 60_000, T0 + 120_000];
        let truth = |height: u32| -> Vec<(i64, f64)> {
            (0..3)
                .map(|m| {
                    let watching = plans
                        .iter()
                        .filter(|p| p[m] == Some((height, Playing)))
                        .count();
                    (minutes[m], watching as f64)
                })
                .collect()
        };
        assert_eq!(
            truth(360),
            [(T0, 1.0), (T0 + 60_000, 0.0), (T0 + 120_000, 1.0)]
        );
        assert_eq!(
            truth(720),
            [(T0, 2.0), (T0 + 60_000, 1.0), (T0 + 120_000, 0.0)]
        );
        assert_eq!(
            truth(1080),
            [(T0, 0.0), (T0 + 60_000, 2.0), (T0 + 120_000, 2.0)]
        );
        let check = |audience: &Audience| {
            assert_eq!(audience.rungs("film", T0), [360, 720, 1080]);
            assert_eq!(audience.rungs("film", T0 + 60_000), [360, 720, 1080]);
            assert_eq!(audience.rungs("film", T0 + 120_000), [360, 1080]);
            for height in [360, 720, 1080] {
                assert_eq!(
                    audience.series("film", &crate::rung_series(height), T0, 60_000),
                    truth(height),
                    "rung {height}"
                );
            }
            // A rung nobody watched is 0 in every minute; a rung that is no number, nothing.
            assert_eq!(
                audience.series("film", "rung:480", T0, 60_000),
                minutes.iter().map(|m| (*m, 0.0)).collect::<Vec<_>>()
            );
            assert!(audience.series("film", "rung:high", T0, 60_000).is_empty());
            // The rungs split the concurrent viewers of each minute.
            let concurrent = audience.series("film", "concurrent_viewers", T0, 60_000);
            for (m, (at, total)) in concurrent.iter().enumerate() {
                let split: f64 = [360, 720, 1080].iter().map(|h| truth(*h)[m].1).sum();
                assert_eq!((*at, *total), (minutes[m], split));
            }
        };
        check(&audience);
        drop(audience);
        let audience = open(&store, clock, config()).await;
        check(&audience);
    }

    #[tokio::test]
    async fn minting_keeps_nothing_and_stores_nothing() {
        let store = MemoryStore::new();
        let (clock, _) = Clock::manual(T0);
        let audience = open(&store, clock, config()).await;
        for _ in 0..1_000 {
            audience.mint("film", None).unwrap();
        }
        assert_eq!(store.commits(), 0);
        assert_eq!(audience.stats("film").sessions, 0);
    }

    #[tokio::test]
    async fn acknowledged_views_and_playing_time_survive_a_restart() {
        let store = MemoryStore::new();
        let (clock, now) = Clock::manual(T0);
        let audience = open(&store, clock.clone(), config()).await;
        let minted = audience.mint("film", None).unwrap();
        play(&audience, &now, &minted, 0..=4).await;
        audience.sample().await.unwrap();
        let before = audience.stats("film");
        assert_eq!(
            (
                before.views,
                before.playing_time_s,
                before.concurrent_viewers,
                before.peak_concurrent_viewers
            ),
            (1, 40.0, 1, 1)
        );
        drop(audience);

        // A new engine on the same data: the same figures, and a repeated beat counts nothing.
        let audience = open(&store, clock, config()).await;
        assert_eq!(audience.stats("film"), before);
        let again = audience
            .heartbeat(
                &minted.session_id,
                &minted.token,
                &beat(4, PlayerState::Playing, 40_000),
            )
            .await
            .unwrap();
        assert_eq!(again, Outcome::Duplicate);
        now.store(T0 + 50_000, Ordering::SeqCst);
        audience
            .heartbeat(
                &minted.session_id,
                &minted.token,
                &beat(5, PlayerState::Playing, 50_000),
            )
            .await
            .unwrap();
        let after = audience.stats("film");
        assert_eq!((after.views, after.playing_time_s), (1, 50.0));
    }

    /// Three engines on one store are three nodes behind a round-robin balancer: every beat
    /// of a session goes to the next node, and the rules still hold as on one node (a view
    /// once per session and once per viewer and hour, a resent beat a duplicate, the fourth
    /// session of one viewer suspicious), and every node's figures are the same.
    #[tokio::test]
    async fn nodes_sharing_a_store_count_as_one() {
        let store = MemoryStore::new();
        let (clock, now) = Clock::manual(T0);
        let mut nodes = Vec::new();
        for _ in 0..3 {
            nodes.push(open(&store, clock.clone(), config()).await);
        }
        // Two sessions of one viewer (one view), and one of another viewer.
        let twice = [
            nodes[0].mint("film", Some("viewer-twice".into())).unwrap(),
            nodes[1].mint("film", Some("viewer-twice".into())).unwrap(),
        ];
        let once = nodes[2].mint("film", None).unwrap();
        for seq in 0..=4u64 {
            now.store(T0 + seq as i64 * 10_000, Ordering::SeqCst);
            for (i, minted) in twice.iter().chain([&once]).enumerate() {
                let node = &nodes[(seq as usize + i) % 3];
                let mut b = beat(seq, PlayerState::Playing, seq * 10_000);
                b.proof = Some(proof::solve(&minted.session_id, minted.proof_bits));
                let outcome = node
                    .heartbeat(&minted.session_id, &minted.token, &b)
                    .await
                    .unwrap();
                assert_eq!(outcome, Outcome::Accepted, "seq {seq}, session {i}");
                // The balancer retries the same beat on the next node: a duplicate there.
                let retried = nodes[(seq as usize + i + 1) % 3]
                    .heartbeat(&minted.session_id, &minted.token, &b)
                    .await
                    .unwrap();
                assert_eq!(retried, Outcome::Duplicate, "seq {seq}, session {i}");
            }
        }
        // Two more sessions of the twice-viewer, started on other nodes: the fourth is one
        // more than a person watches at once (max_sessions_per_viewer = 3).
        for (n, node) in nodes.iter().enumerate().take(2) {
            let minted = node.mint("film", Some("viewer-twice".into())).unwrap();
            let mut b = beat(0, PlayerState::Playing, 0);
            b.proof = Some(proof::solve(&minted.session_id, minted.proof_bits));
            let to = &nodes[(n + 1) % 3];
            to.heartbeat(&minted.session_id, &minted.token, &b)
                .await
                .unwrap();
        }
        for node in &nodes {
            node.sample().await.unwrap();
        }
        let stats: Vec<_> = nodes.iter().map(|n| n.stats("film")).collect();
        assert_eq!(stats[0].views, 2, "one view per viewer: {:?}", stats[0]);
        assert_eq!(stats[0].playing_time_s, 120.0);
        assert_eq!(stats[0].concurrent_viewers, 2);
        assert_eq!(stats[0].suspicious_sessions, 1);
        assert_eq!(stats[1], stats[0], "node 1 differs");
        assert_eq!(stats[2], stats[0], "node 2 differs");
    }

    #[tokio::test]
    async fn a_failed_commit_changes_nothing_and_the_retry_counts() {
        let store = MemoryStore::new();
        let (clock, now) = Clock::manual(T0);
        let audience = open(&store, clock, config()).await;
        let minted = audience.mint("film", None).unwrap();
        play(&audience, &now, &minted, 0..=2).await;
        let before = audience.stats("film");

        store.fail_next_writes(1);
        now.store(T0 + 30_000, Ordering::SeqCst);
        let b = beat(3, PlayerState::Playing, 30_000);
        let failed = audience
            .heartbeat(&minted.session_id, &minted.token, &b)
            .await;
        assert!(matches!(failed, Err(crate::Error::Store(_))), "{failed:?}");
        assert_eq!(
            audience.stats("film"),
            before,
            "memory ran ahead of the store"
        );
        // The player retries the same beat: applied now, and it makes the view.
        let retried = audience
            .heartbeat(&minted.session_id, &minted.token, &b)
            .await
            .unwrap();
        assert_eq!(retried, Outcome::Accepted);
        assert_eq!(audience.stats("film").views, 1);
    }

    #[tokio::test]
    async fn a_session_without_its_proof_of_work_is_refused_and_costs_nothing() {
        let store = MemoryStore::new();
        let (clock, _) = Clock::manual(T0);
        let audience = open(&store, clock, config()).await;
        let minted = audience.mint("film", None).unwrap();
        let mut b = beat(1, PlayerState::Playing, 0);
        b.proof = Some("not-a-proof".into());
        let refused = audience
            .heartbeat(&minted.session_id, &minted.token, &b)
            .await;
        assert!(
            matches!(refused, Err(crate::Error::ProofRequired(8))),
            "{refused:?}"
        );
        assert_eq!(store.commits(), 0);
        b.proof = Some(proof::solve(&minted.session_id, 8));
        let accepted = audience
            .heartbeat(&minted.session_id, &minted.token, &b)
            .await
            .unwrap();
        assert_eq!(accepted, Outcome::Accepted);
        assert_eq!(audience.stats("film").sessions, 1);
    }

    #[tokio::test]
    async fn an_invalid_beat_is_refused_before_anything_is_applied() {
        let store = MemoryStore::new();
        let (clock, _) = Clock::manual(T0);
        let audience = open(&store, clock, config()).await;
        let minted = audience.mint("film", None).unwrap();
        let mut b = beat(1, PlayerState::Playing, 0);
        b.proof = Some(proof::solve(&minted.session_id, 8));
        b.rebuffer_ms = u64::MAX;
        let refused = audience
            .heartbeat(&minted.session_id, &minted.token, &b)
            .await;
        assert!(
            matches!(refused, Err(crate::Error::Invalid(_))),
            "{refused:?}"
        );
        assert_eq!(store.commits(), 0);
    }

    #[tokio::test]
    async fn tokens_expire_and_cannot_be_forged_or_moved() {
        let store = MemoryStore::new();
        let (clock, now) = Clock::manual(T0);
        let audience = open(&store, clock, config()).await;
        let a = audience.mint("film", Some("viewer-0001".into())).unwrap();
        let b = audience.mint("film", None).unwrap();
        assert_eq!(a.viewer_id, "viewer-0001");
        assert_ne!(b.viewer_id, a.viewer_id);
        let first = beat(0, PlayerState::Playing, 0);
        let err = audience
            .heartbeat(&b.session_id, &a.token, &first)
            .await
            .unwrap_err();
        assert!(matches!(err, crate::Error::Token(TokenError::WrongSession)));
        let forged = a.token.replace("viewer-0001", "viewer-0002");
        let err = audience
            .heartbeat(&a.session_id, &forged, &first)
            .await
            .unwrap_err();
        assert!(matches!(err, crate::Error::Token(TokenError::BadSignature)));
        now.store(T0 + Config::default().token_ttl_ms, Ordering::SeqCst);
        let err = audience
            .heartbeat(&a.session_id, &a.token, &first)
            .await
            .unwrap_err();
        assert!(matches!(err, crate::Error::Token(TokenError::Expired)));
        assert!(audience.mint("film", Some("bad id!".into())).is_err());
    }

    /// With the writer held by a slow commit, the queue (of one) fills and the next beat is
    /// shed with `Overloaded` (429) instead of waiting without bound.
    #[tokio::test]
    #[allow(clippy::await_holding_lock)] // the store's lock, held on purpose across the waits
    async fn a_full_queue_sheds_load_instead_of_waiting() {
        #[derive(Debug)]
        struct Slow(MemoryStore, std::sync::Mutex<()>);
        impl AudienceStore for Slow {
            fn write(&self, records: &[Record]) -> Result<()> {
                let _held = self.1.lock().unwrap_or_else(|p| p.into_inner());
                self.0.write(records)
            }
            fn load(&self, a: i64, b: i64) -> Result<Snapshot> {
                self.0.load(a, b)
            }
        }
        let slow = Arc::new(Slow(MemoryStore::new(), std::sync::Mutex::new(())));
        // Held by this test while the engine queues: the writer thread waits on it.
        let held = slow.1.lock().unwrap();
        let (clock, _) = Clock::manual(T0);
        let config = Config {
            queue_limit: 1,
            proof_bits: 0,
            ..Config::default()
        };
        let audience = Arc::new(
            Audience::open_with_clock(config, b"k".to_vec(), slow.clone(), clock)
                .await
                .unwrap(),
        );
        let send = |audience: Arc<Audience>| async move {
            let m = audience.mint("film", None).unwrap();
            audience
                .heartbeat(&m.session_id, &m.token, &beat(1, PlayerState::Playing, 0))
                .await
        };
        let first = tokio::spawn(send(audience.clone()));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await; // the writer takes it
        let second = tokio::spawn(send(audience.clone()));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await; // queued
        let third = send(audience.clone()).await;
        assert!(matches!(third, Err(crate::Error::Overloaded)), "{third:?}");
        drop(held);
        assert!(first.await.unwrap().is_ok());
        assert!(second.await.unwrap().is_ok());
    }
}
