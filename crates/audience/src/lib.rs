//! Audience: playback sessions minted by the server, heartbeats with cumulative counters, and
//! the figures built from them — views, concurrent viewers, peak, 24-hour views, quality of
//! experience — live in memory and durable through group commit.
//!
//! The rules (REFERENCE §3) are a pure state machine in [`state`]; this file adds the clock,
//! the HMAC tokens of [`token`], and the single writer that batches every accepted heartbeat
//! into one transaction of an [`AudienceStore`] and acknowledges it only once committed.
//! Storage engines live elsewhere (`monsoon-db`); this crate knows no SQL and no HTTP.

pub mod state;
pub mod token;

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use state::{
    Counters, FilmStats, Minute, Outcome, Record, SERIES_METRICS, Session, State, View,
};
pub use token::TokenError;

/// Every threshold of the rules; tests use short ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Seconds between heartbeats, told to players when a session is minted.
    pub heartbeat_interval_s: u64,
    /// Playing time that makes a view, ms.
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
        }
    }
}

/// The player's state in a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlayerState {
    Startup,
    Playing,
    Paused,
    Seeking,
    Rebuffering,
    Ended,
    Error,
}

impl PlayerState {
    pub const ALL: [PlayerState; 7] = [
        PlayerState::Startup,
        PlayerState::Playing,
        PlayerState::Paused,
        PlayerState::Seeking,
        PlayerState::Rebuffering,
        PlayerState::Ended,
        PlayerState::Error,
    ];

    /// The name on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            PlayerState::Startup => "startup",
            PlayerState::Playing => "playing",
            PlayerState::Paused => "paused",
            PlayerState::Seeking => "seeking",
            PlayerState::Rebuffering => "rebuffering",
            PlayerState::Ended => "ended",
            PlayerState::Error => "error",
        }
    }

    /// The state named `name` (see [`PlayerState::as_str`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// A heartbeat as the player sends it (the wire contract of the audience issue). Counters are
/// cumulative since the session started, so a lost beat loses nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// The session token, unless sent as `Authorization: Bearer`.
    #[serde(default)]
    pub token: Option<String>,
    pub seq: u64,
    pub state: PlayerState,
    pub play_ms: u64,
    #[serde(default)]
    pub rebuffer_ms: u64,
    #[serde(default)]
    pub rebuffer_count: u64,
    #[serde(default)]
    pub startup_ms: u64,
    #[serde(default)]
    pub seek_ms: u64,
    #[serde(default)]
    pub playhead_ms: u64,
    #[serde(default)]
    pub height: u32,
    #[serde(default)]
    pub bitrate_kbps: u32,
    #[serde(default)]
    pub bytes: u64,
    #[serde(default)]
    pub dropped_frames: u64,
    #[serde(default)]
    pub fatal_error: bool,
}

/// The answer to minting a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Minted {
    pub session_id: String,
    pub viewer_id: String,
    pub token: String,
    pub heartbeat_interval_s: u64,
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
    #[error("too many heartbeats waiting to be stored; retry later")]
    Overloaded,
    #[error("audience store: {0}")]
    Store(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Durable storage of sessions, views and peaks.
///
/// Blocking by design: the group-commit writer calls [`AudienceStore::write`] from a thread of
/// its own, so a store owns its connection there and answers without handing each statement
/// to yet another thread; [`AudienceStore::load`] runs once at start, on a blocking thread.
pub trait AudienceStore: Send + Sync + std::fmt::Debug {
    /// Writes `records` in one transaction.
    fn write(&self, records: &[Record]) -> Result<()>;
    /// Everything needed to rebuild the live state: sessions started since `started_since_ms`
    /// (the caller keeps those still active), every view since `since_ms`, and the peaks.
    fn load(&self, started_since_ms: i64, since_ms: i64) -> Result<Snapshot>;
}

type Job = (Vec<Record>, oneshot::Sender<Result<()>>);

/// The audience engine: live state, tokens, and the group-commit writer.
#[derive(Debug)]
pub struct Audience {
    config: Config,
    key: Vec<u8>,
    state: Mutex<State>,
    writer: mpsc::Sender<Job>,
    clock: Clock,
}

/// Where the engine reads the time: the system clock, or a clock a test moves by hand.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    #[default]
    System,
    /// Milliseconds since the Unix epoch, set by the test.
    Manual(std::sync::Arc<std::sync::atomic::AtomicI64>),
}

impl Clock {
    /// A manual clock starting at `ms`, and the handle that moves it.
    pub fn manual(ms: i64) -> (Self, std::sync::Arc<std::sync::atomic::AtomicI64>) {
        let handle = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(ms));
        (Clock::Manual(handle.clone()), handle)
    }

    fn now_ms(&self) -> i64 {
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

impl Audience {
    /// Rebuilds the live state from `store` and starts the writer.
    pub async fn open(
        config: Config,
        key: Vec<u8>,
        store: std::sync::Arc<dyn AudienceStore>,
    ) -> Result<Self> {
        Self::open_with_clock(config, key, store, Clock::System).await
    }

    /// [`Audience::open`] with a given clock (tests move a manual one).
    pub async fn open_with_clock(
        config: Config,
        key: Vec<u8>,
        store: std::sync::Arc<dyn AudienceStore>,
        clock: Clock,
    ) -> Result<Self> {
        let now = clock.now_ms();
        let keep = config.view_dedup_ms.max(24 * 3_600_000);
        // A session beats only while its token lives: the ones active in the window started at
        // most a token's lifetime before it.
        let started_since = now - keep - config.token_ttl_ms;
        let snapshot = {
            let store = std::sync::Arc::clone(&store);
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
        state.finish_restore();

        let (writer, jobs) = mpsc::channel::<Job>(config.queue_limit.max(1));
        std::thread::Builder::new()
            .name("audience-writer".into())
            .spawn(move || write_loop(store.as_ref(), jobs))
            .map_err(|e| Error::Store(format!("starting the audience writer: {e}")))?;
        Ok(Self {
            config,
            key,
            state: Mutex::new(state),
            writer,
            clock,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the counters half-updated in a way that
        // matters more than stopping the count; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands records to the writer and waits until they are committed.
    async fn commit(&self, records: Vec<Record>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let (done, committed) = oneshot::channel();
        self.writer
            .try_send((records, done))
            .map_err(|_| Error::Overloaded)?;
        committed
            .await
            .map_err(|_| Error::Store("the writer stopped".into()))?
    }

    /// Mints a session for `film`; keeps `viewer_id` when it is valid, else makes one.
    pub async fn mint(&self, film: &str, viewer_id: Option<String>) -> Result<Minted> {
        let viewer = match viewer_id {
            Some(id) if valid_viewer(&id) => id,
            Some(id) => return Err(Error::ViewerId(id)),
            None => random_id(16),
        };
        let now = self.now_ms();
        let session = Session {
            id: random_id(16),
            film: film.to_owned(),
            viewer: viewer.clone(),
            started_at: now,
            last_beat_at: None,
            last_seq: None,
            state: None,
            beat: state::Counters::default(),
            view_counted: false,
            view_deduplicated: false,
            rungs: Default::default(),
        };
        let token = token::sign(
            &self.key,
            &token::Claims {
                film: film.to_owned(),
                viewer: viewer.clone(),
                session: session.id.clone(),
                expires_ms: now + self.config.token_ttl_ms,
            },
        );
        let minted = Minted {
            session_id: session.id.clone(),
            viewer_id: viewer,
            token,
            heartbeat_interval_s: self.config.heartbeat_interval_s,
        };
        self.lock().insert(session.clone());
        self.commit(vec![Record::Session(session)]).await?;
        Ok(minted)
    }

    /// Verifies and applies a heartbeat; returns once its effect is durable.
    pub async fn heartbeat(
        &self,
        session_id: &str,
        token: &str,
        beat: &Heartbeat,
    ) -> Result<Outcome> {
        let now = self.now_ms();
        let claims = token::verify(&self.key, token, session_id, now)?;
        let (outcome, records) = {
            let mut state = self.lock();
            if state
                .session(session_id)
                .is_none_or(|s| s.film != claims.film)
            {
                return Err(Error::UnknownSession(session_id.to_owned()));
            }
            state.beat(&self.config, session_id, beat, now)
        };
        self.commit(records).await?;
        Ok(outcome)
    }

    /// The live figures of `film`.
    pub fn stats(&self, film: &str) -> FilmStats {
        let now = self.now_ms();
        self.lock().stats(&self.config, film, now)
    }

    /// `metric` of `film` from `from_ms` in buckets of `step_ms` (see [`State::series`]).
    pub fn series(&self, film: &str, metric: &str, from_ms: i64, step_ms: i64) -> Vec<(i64, f64)> {
        self.lock().series(film, metric, from_ms, step_ms)
    }

    /// Samples concurrency for the peaks and forgets long-idle sessions.
    pub async fn sample(&self) -> Result<()> {
        let now = self.now_ms();
        let records = {
            let mut state = self.lock();
            let records = state.sample(&self.config, now);
            state.expire(now, self.config.view_dedup_ms.max(24 * 3_600_000));
            records
        };
        self.commit(records).await
    }

    /// Runs [`Audience::sample`] every `sample_every_ms` until the process ends.
    pub fn spawn_sampler(self: &std::sync::Arc<Self>) {
        let audience = std::sync::Arc::clone(self);
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

/// The single writer, on its own thread: takes whatever is queued, commits it in one
/// transaction, then acknowledges every heartbeat in the batch (group commit). The thread
/// sleeps only when the queue is empty, so under load one wake-up serves a whole batch. It
/// ends when the [`Audience`] is dropped.
fn write_loop(store: &dyn AudienceStore, mut jobs: mpsc::Receiver<Job>) {
    const MAX_BATCH: usize = 2_000;
    while let Some(first) = jobs.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut records = Vec::with_capacity(batch.len());
        let mut waiting = Vec::with_capacity(batch.len());
        for (job_records, done) in batch {
            records.extend(job_records);
            waiting.push(done);
        }
        let result = store.write(&records);
        for done in waiting {
            let _ = done.send(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(Error::Store(e.to_string())),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PlayerState;

    #[test]
    fn state_names_are_the_wire_names() {
        for state in PlayerState::ALL {
            let wire = serde_json::to_string(&state).unwrap();
            assert_eq!(wire, format!("\"{}\"", state.as_str()));
            assert_eq!(PlayerState::from_name(state.as_str()), Some(state));
        }
        assert_eq!(PlayerState::from_name("dancing"), None);
    }
}
