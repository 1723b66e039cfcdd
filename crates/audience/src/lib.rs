//! Audience: playback sessions minted by the server, heartbeats with cumulative counters, and
//! the figures built from them — views, concurrent viewers, peak, 24-hour views, quality of
//! experience — live in memory and durable through group commit.
//!
//! The rules (`docs/AUDIENCE.md`) are a state machine in [`state`], the figures kept up to
//! date in [`figures`]; this file adds the clock, the HMAC tokens of [`token`], the proof of
//! work of [`proof`], and the single writer ([`writer`]) that stages every heartbeat against
//! the state, commits the batch in one transaction of an [`AudienceStore`], and only then
//! applies it and acknowledges. Storage engines live elsewhere (`monsoon-db`; [`memory`] for
//! tests); this crate knows no SQL and no HTTP.

pub mod figures;
pub mod heartbeat;
pub mod memory;
pub mod proof;
pub mod records;
pub mod state;
pub mod token;
mod writer;

/// The hash map of the live state. Its keys (session ids, viewer ids, film slugs) are hashed
/// on every beat, so with foldhash rather than SipHash; its seed is random per process, so a
/// client cannot choose ids that collide.
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use figures::{CodecStats, FilmStats};
pub use heartbeat::{Codec, Counters, Heartbeat, Network, PlayerState};
pub use records::{Minute, RUNG_PREFIX, Record, SERIES_METRICS, Session, View, rung_series};
pub use state::{Beat, Outcome, State};
pub use token::TokenError;

/// Every threshold of the rules; tests use short ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Seconds between heartbeats, told to players when a session is minted.
    pub heartbeat_interval_s: u64,
    /// Playing time that makes a view, ms, counted between the session's first accepted beat
    /// and its latest (so one beat's claim is never a view).
    pub view_threshold_ms: u64,
    /// One view per (viewer, film) in this window, ms.
    pub view_dedup_ms: i64,
    /// A session is concurrent if its last beat is this recent, ms.
    pub liveness_ms: i64,
    /// Beats closer together than this are not counted, ms.
    pub min_beat_gap_ms: i64,
    /// Playing time may grow at most `rate_slack` × wall-clock time …
    pub rate_slack: f64,
    /// … plus this, ms.
    pub rate_grace_ms: u64,
    /// Lifetime of a session token, ms.
    pub token_ttl_ms: i64,
    /// How often concurrent viewers are sampled for the peak, ms.
    pub sample_every_ms: u64,
    /// Heartbeats waiting for the writer beyond this are shed with 429.
    pub queue_limit: usize,
    /// Proof of work a session's first heartbeat must bring, in leading zero bits of
    /// SHA-256 (0 turns it off): 2^bits hashes on average (`docs/SECURITY.md`).
    pub proof_bits: u32,
    /// Sessions one viewer id may have watching a film at once and be counted; further ones
    /// are kept apart as suspicious.
    pub max_sessions_per_viewer: usize,
    /// On a store several nodes share, a node commits at most once this often, ms: a beat
    /// that arrives sooner after the last commit waits for the next, with the others that
    /// arrive meanwhile. Fewer, larger transactions under the lock every node takes. 0 commits
    /// as soon as possible; a store of one process alone always does. The default, 50 ms, is
    /// 20 commits a second per node whatever the audience, and halves what a beat waits
    /// against 100 ms (`bench/cluster-day.sh`, BENCHMARKS.md "Cluster").
    pub shared_commit_every_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            heartbeat_interval_s: 10,
            view_threshold_ms: 30_000,
            view_dedup_ms: 3_600_000,
            liveness_ms: 30_000,
            min_beat_gap_ms: 5_000,
            rate_slack: 1.05,
            rate_grace_ms: 1_000,
            token_ttl_ms: 12 * 3_600_000,
            sample_every_ms: 10_000,
            queue_limit: 50_000,
            proof_bits: 18,
            max_sessions_per_viewer: 3,
            shared_commit_every_ms: 50,
        }
    }
}

impl Config {
    /// Checks every value against its rule; the error names the key, the value and the rule.
    pub fn validate(&self) -> Result<()> {
        let rule = |ok: bool, key: &str, value: String, why: &str| {
            if ok {
                Ok(())
            } else {
                Err(Error::Invalid(format!("[audience] {key} = {value}: {why}")))
            }
        };
        rule(
            (1..=600).contains(&self.heartbeat_interval_s),
            "heartbeat_interval_s",
            self.heartbeat_interval_s.to_string(),
            "must be 1 to 600",
        )?;
        rule(
            self.view_threshold_ms <= heartbeat::limits::TIME_MS,
            "view_threshold_ms",
            self.view_threshold_ms.to_string(),
            "must be at most a week",
        )?;
        for (key, value) in [
            ("view_dedup_ms", self.view_dedup_ms),
            ("liveness_ms", self.liveness_ms),
            ("min_beat_gap_ms", self.min_beat_gap_ms),
        ] {
            rule(
                (0..=30 * 86_400_000).contains(&value),
                key,
                value.to_string(),
                "must be 0 to 30 days",
            )?;
        }
        rule(
            (1..=30 * 86_400_000).contains(&self.token_ttl_ms),
            "token_ttl_ms",
            self.token_ttl_ms.to_string(),
            "must be 1 ms to 30 days",
        )?;
        rule(
            self.rate_slack.is_finite() && (1.0..=10.0).contains(&self.rate_slack),
            "rate_slack",
            self.rate_slack.to_string(),
            "must be 1 to 10",
        )?;
        rule(
            self.proof_bits <= proof::MAX_BITS,
            "proof_bits",
            self.proof_bits.to_string(),
            "must be at most 32 (2^32 hashes is minutes on a phone)",
        )?;
        rule(
            self.max_sessions_per_viewer >= 1,
            "max_sessions_per_viewer",
            self.max_sessions_per_viewer.to_string(),
            "must be at least 1",
        )?;
        rule(
            self.shared_commit_every_ms <= 1_000,
            "shared_commit_every_ms",
            self.shared_commit_every_ms.to_string(),
            "must be 0 to 1000 (a beat waits up to this long for its commit)",
        )?;
        rule(
            self.queue_limit >= 1,
            "queue_limit",
            self.queue_limit.to_string(),
            "must be at least 1",
        )
    }
}

/// The answer to minting a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Minted {
    pub session_id: String,
    pub viewer_id: String,
    pub token: String,
    pub heartbeat_interval_s: u64,
    /// The proof of work the first heartbeat must carry: a `proof` such that
    /// SHA-256(`<session_id>:<proof>`) starts with this many zero bits.
    pub proof_bits: u32,
}

/// What the store gives back on start.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub sessions: Vec<Session>,
    pub views: Vec<View>,
    /// Views older than the window, counted per film.
    pub older_views: Vec<(String, u64)>,
    pub peaks: Vec<(String, u64, i64)>,
    pub minutes: Vec<Minute>,
}

/// Errors of the audience layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("no session `{0}`")]
    UnknownSession(String),
    #[error("viewer id `{0}` is not valid: use 8 to 64 letters, digits, `-` or `_`")]
    ViewerId(String),
    #[error(
        "the first heartbeat of a session must carry its proof of work: a `proof` such that \
         SHA-256(\"<session_id>:<proof>\") starts with {0} zero bits"
    )]
    ProofRequired(u32),
    #[error("{0}")]
    Invalid(String),
    #[error("too many heartbeats waiting to be stored; retry later")]
    Overloaded,
    #[error("audience store: {0}")]
    Store(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Durable storage of sessions, views, peaks and minute rollups.
///
/// Blocking by design: the group-commit writer calls [`AudienceStore::write`] from a thread of
/// its own, so a store owns its connection there and answers without handing each statement
/// to yet another thread; [`AudienceStore::load`] runs once at start, on a blocking thread.
/// `crates/audience/src/memory.rs` holds the conformance suite every store must pass.
pub trait AudienceStore: Send + Sync + std::fmt::Debug {
    /// Writes `records` in one transaction: all or nothing.
    fn write(&self, records: &[Record]) -> Result<()>;
    /// Everything needed to rebuild the live state: sessions started since `started_since_ms`
    /// (the caller keeps those still active), every view since `since_ms`, the number of
    /// older views per film, the peaks, and a month of minutes before `since_ms`.
    fn load(&self, started_since_ms: i64, since_ms: i64) -> Result<Snapshot>;

    /// One batch of the writer, as one transaction: `stage` is given what other processes
    /// sharing the store committed since this one last looked ([`Catchup`]) and the time to
    /// stage at, and returns the records to write in the same transaction.
    ///
    /// A store that several nodes share runs this under a lock all of them take, so that each
    /// node stages against everything committed before it (the rules of `docs/AUDIENCE.md`
    /// then hold across nodes as on one), at the store's clock (one clock for every node). By
    /// default the store is this process's alone: nothing to catch up, the caller's time.
    fn exchange(&self, now_ms: i64, stage: &mut dyn FnMut(Catchup) -> Vec<Record>) -> Result<()> {
        let records = stage(Catchup {
            now_ms,
            ..Catchup::default()
        });
        if records.is_empty() {
            return Ok(());
        }
        self.write(&records)
    }

    /// Whether other processes write to this store too, so that this node's figures must
    /// catch up with theirs before they are read ([`Audience::sync`]). False by default.
    fn is_shared(&self) -> bool {
        false
    }
}

/// What other nodes sharing an [`AudienceStore`] committed since this node last looked, and
/// the store's time.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Catchup {
    /// The time to stage at, ms since the Unix epoch: the store's clock when it has one.
    pub now_ms: i64,
    /// Sessions changed by others, each in its latest state.
    pub sessions: Vec<Session>,
    /// Views counted by others.
    pub views: Vec<View>,
    /// Every film's peak (film, peak, when), when others changed anything.
    pub peaks: Vec<(String, u64, i64)>,
}

/// The audience engine: live state, tokens, and the group-commit writer.
#[derive(Debug)]
pub struct Audience {
    config: Arc<Config>,
    key: Vec<u8>,
    state: Arc<Mutex<State>>,
    writer: mpsc::Sender<writer::Job>,
    clock: Clock,
    /// The shared store's clock minus this process's (0 unless the store has a clock of its
    /// own: figures of several nodes are computed on one clock).
    skew: Arc<std::sync::atomic::AtomicI64>,
    store: Arc<dyn AudienceStore>,
    syncs: Syncs,
}

/// Catch-ups with the other nodes of a shared store, for reads ([`Audience::sync`]): one at
/// a time, at most one every [`MIN_SYNC_GAP`], and every read waiting for one shares it.
#[derive(Debug, Default)]
struct Syncs {
    /// Catch-ups started so far.
    started: std::sync::atomic::AtomicU64,
    /// Held through a catch-up; when the last one started.
    running: tokio::sync::Mutex<Option<std::time::Instant>>,
}

/// However many reads ask, a node catches up at most this often: reads cannot turn into a
/// stream of transactions under the lock every writer needs.
const MIN_SYNC_GAP: Duration = Duration::from_millis(50);

/// How often a node of a shared store catches up on its own (for `/metrics`, and so that an
/// idle node's figures stay near the others').
const SYNC_EVERY: Duration = Duration::from_millis(1_000);

/// Where the engine reads the time: the system clock, or a clock a test moves by hand.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    #[default]
    System,
    /// Milliseconds since the Unix epoch, set by the test.
    Manual(Arc<std::sync::atomic::AtomicI64>),
}

impl Clock {
    /// A manual clock starting at `ms`, and the handle that moves it.
    pub fn manual(ms: i64) -> (Self, Arc<std::sync::atomic::AtomicI64>) {
        let handle = Arc::new(std::sync::atomic::AtomicI64::new(ms));
        (Clock::Manual(handle.clone()), handle)
    }

    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            Clock::Manual(ms) => ms.load(std::sync::atomic::Ordering::SeqCst),
        }
    }
}

fn random_id(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The OS random source does not fail on Linux; an all-zero id would still be unique
    // enough to notice in tests.
    let _ = getrandom::fill(&mut buf);
    hex::encode(buf)
}

fn valid_viewer(id: &str) -> bool {
    (8..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Sessions and views are kept in memory for a day, or for the de-duplication window if
/// longer.
fn keep_ms(config: &Config) -> i64 {
    config.view_dedup_ms.max(figures::DAY_MS)
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // A panic while holding the lock cannot leave the counters half-updated in a way that
    // matters more than stopping the count; keep serving.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl Audience {
    /// Rebuilds the live state from `store` and starts the writer.
    pub async fn open(config: Config, key: Vec<u8>, store: Arc<dyn AudienceStore>) -> Result<Self> {
        Self::open_with_clock(config, key, store, Clock::System).await
    }

    /// [`Audience::open`] with a given clock (tests move a manual one).
    pub async fn open_with_clock(
        config: Config,
        key: Vec<u8>,
        store: Arc<dyn AudienceStore>,
        clock: Clock,
    ) -> Result<Self> {
        config.validate()?;
        let now = clock.now_ms();
        let keep = keep_ms(&config);
        // A session beats only while its token lives: the ones active in the window started at
        // most a token's lifetime before it.
        let started_since = now - keep - config.token_ttl_ms;
        let snapshot = {
            let store = Arc::clone(&store);
            tokio::task::spawn_blocking(move || store.load(started_since, now - keep))
                .await
                .map_err(|e| Error::Store(format!("loading the audience: {e}")))??
        };
        let mut state = State::default();
        for session in snapshot.sessions {
            if session.last_beat_at.unwrap_or(session.started_at) >= now - keep {
                state.insert(session);
            }
        }
        for view in &snapshot.views {
            state.restore_view(view);
        }
        for (film, count) in &snapshot.older_views {
            state.restore_view_count(film, *count);
        }
        for minute in snapshot.minutes {
            state.restore_minute(minute);
        }
        for (film, peak, at) in &snapshot.peaks {
            state.restore_peak(film, *peak, *at);
        }

        let config = Arc::new(config);
        let state = Arc::new(Mutex::new(state));
        let (jobs, queue) = mpsc::channel(config.queue_limit.max(1));
        let skew = Arc::default();
        writer::start(
            Arc::clone(&store),
            Arc::clone(&state),
            Arc::clone(&config),
            clock.clone(),
            Arc::clone(&skew),
            queue,
        )?;
        Ok(Self {
            config,
            key,
            state,
            writer: jobs,
            clock,
            skew,
            store,
            syncs: Syncs::default(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Hands `job` to the writer and waits for its answer; sheds it when the queue is full.
    async fn submit<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T>>) -> writer::Job,
    ) -> Result<T> {
        let (done, answer) = oneshot::channel();
        self.writer
            .try_send(job(done))
            .map_err(|_| Error::Overloaded)?;
        answer
            .await
            .map_err(|_| Error::Store("the writer stopped".into()))?
    }

    /// Mints a session for `film`; keeps `viewer_id` when it is valid, else makes one.
    /// Nothing is kept or stored: the session exists from its first accepted heartbeat.
    pub fn mint(&self, film: &str, viewer_id: Option<String>) -> Result<Minted> {
        let viewer = match viewer_id {
            Some(id) if valid_viewer(&id) => id,
            Some(id) => return Err(Error::ViewerId(id)),
            None => random_id(16),
        };
        let now = self.now_ms();
        let session = random_id(16);
        let token = token::sign(
            &self.key,
            &token::Claims {
                film: film.to_owned(),
                viewer: viewer.clone(),
                session: session.clone(),
                issued_ms: Some(now),
                expires_ms: now + self.config.token_ttl_ms,
            },
        );
        Ok(Minted {
            session_id: session,
            viewer_id: viewer,
            token,
            heartbeat_interval_s: self.config.heartbeat_interval_s,
            proof_bits: self.config.proof_bits,
        })
    }

    /// Verifies and applies a heartbeat; returns once its effect is durable.
    pub async fn heartbeat(
        &self,
        session_id: &str,
        token: &str,
        beat: &Heartbeat,
    ) -> Result<Outcome> {
        beat.validate()?;
        let now = self.now_ms();
        let claims = token::verify(&self.key, token, session_id, now)?;
        // No lock here: the writer holds the state's while it stages a batch, and an HTTP
        // thread waiting for it would stall every connection it serves. The writer answers
        // duplicates as it does everything else.
        let proven = beat
            .proof
            .as_deref()
            .is_some_and(|p| proof::check(session_id, p, self.config.proof_bits))
            || self.config.proof_bits == 0;
        let beat = Beat {
            session: session_id.to_owned(),
            started_at: claims
                .issued_ms
                .unwrap_or(claims.expires_ms - self.config.token_ttl_ms),
            film: claims.film,
            viewer: claims.viewer,
            seq: beat.seq,
            state: beat.state,
            counters: Counters::from(beat),
            proven,
        };
        self.submit(|done| writer::Job::Beat(beat, done)).await
    }

    /// Takes in what the other nodes sharing the store committed, so that the figures read
    /// next include every beat acknowledged, by any node, before this call. Nothing to do for
    /// a store of this process alone. Concurrent calls share one catch-up, and a node runs at
    /// most one every 50 ms, however many readers ask.
    pub async fn sync(&self) -> Result<()> {
        use std::sync::atomic::Ordering::SeqCst;
        if !self.store.is_shared() {
            return Ok(());
        }
        let arrival = self.syncs.started.load(SeqCst);
        let mut last = self.syncs.running.lock().await;
        if self.syncs.started.load(SeqCst) > arrival {
            // One started after this call and has finished (its lock is free): it saw
            // everything committed before this call.
            return Ok(());
        }
        if let Some(at) = *last {
            tokio::time::sleep(MIN_SYNC_GAP.saturating_sub(at.elapsed())).await;
        }
        self.syncs.started.fetch_add(1, SeqCst);
        *last = Some(std::time::Instant::now());
        let (store, state) = (Arc::clone(&self.store), Arc::clone(&self.state));
        let skew = Arc::clone(&self.skew);
        let local_now = self.clock.now_ms();
        tokio::task::spawn_blocking(move || writer::catch_up(&*store, &state, &skew, local_now))
            .await
            .map_err(|e| Error::Store(format!("catching up: {e}")))?
    }

    /// The figures of `film` with every beat acknowledged before this call, by any node
    /// ([`Audience::sync`], then [`Audience::stats`]).
    pub async fn fresh_stats(&self, film: &str) -> Result<FilmStats> {
        self.sync().await?;
        Ok(self.stats(film))
    }

    /// The live figures of `film`, at the store's clock.
    pub fn stats(&self, film: &str) -> FilmStats {
        let now = self.now_ms() + self.skew.load(std::sync::atomic::Ordering::Relaxed);
        lock(&self.state).stats(&self.config, film, now)
    }

    /// Bytes players reported downloading in the beats this process committed since it
    /// started (see [`State::bytes_reported`]).
    pub fn bytes_reported(&self) -> u64 {
        lock(&self.state).bytes_reported()
    }

    /// `metric` of `film` from `from_ms` in buckets of `step_ms` (see [`State::series`]).
    pub fn series(&self, film: &str, metric: &str, from_ms: i64, step_ms: i64) -> Vec<(i64, f64)> {
        lock(&self.state).series(film, metric, from_ms, step_ms)
    }

    /// The rungs `film`'s minutes since `from_ms` saw anyone watching at (see
    /// [`State::rungs`]), lowest first.
    pub fn rungs(&self, film: &str, from_ms: i64) -> Vec<u32> {
        lock(&self.state).rungs(film, from_ms)
    }

    /// Samples concurrency for the peaks and minute rollups, stores them, and forgets
    /// long-idle sessions.
    pub async fn sample(&self) -> Result<()> {
        self.submit(writer::Job::Sample).await
    }

    /// Runs [`Audience::sample`] every `sample_every_ms` until the process ends, and on a
    /// shared store [`Audience::sync`] every second.
    pub fn spawn_sampler(self: &Arc<Self>) {
        if self.store.is_shared() {
            let audience = Arc::clone(self);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(SYNC_EVERY);
                loop {
                    tick.tick().await;
                    if let Err(e) = audience.sync().await {
                        tracing::warn!(error = %e, "catching up with the other nodes failed");
                    }
                }
            });
        }
        let audience = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(
                audience.config.sample_every_ms.max(100),
            ));
            loop {
                tick.tick().await;
                if let Err(e) = audience.sample().await {
                    tracing::warn!(error = %e, "audience sample failed");
                }
            }
        });
    }
}
