//! [`AudienceStore`] over SQLite: every batch of the audience writer is one transaction.

use async_trait::async_trait;
use monsoon_audience::{AudienceStore, Error, Minute, Record, Result, Session, Snapshot, View};
use std::collections::HashMap;

use sqlx::sqlite::SqlitePool;
use sqlx::{QueryBuilder, Row};

/// Rows per multi-row statement (4 parameters each, far under SQLite's 32,766).
const CHUNK: usize = 1_000;

/// Audience records in the catalog's SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteAudienceStore {
    pool: SqlitePool,
    /// Alive as long as a clone of the store: the checkpointer stops when the last one goes.
    alive: std::sync::Arc<()>,
}

/// How often the write-ahead log is copied back into the database, off the commit path.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl SqliteAudienceStore {
    /// Uses the pool of an opened [`crate::SqliteCatalog`] (migrations already applied).
    pub fn new(pool: SqlitePool) -> Self {
        Self {
            pool,
            alive: std::sync::Arc::new(()),
        }
    }

    /// Opens the audience tables of the database at `path` (opened and migrated by
    /// [`crate::SqliteCatalog::open`] first) on a connection of their own, in WAL mode with
    /// `synchronous=NORMAL`: a commit is in the write-ahead log — in the OS, not necessarily on
    /// the platter — when the writer acknowledges it. That survives any crash of the process
    /// (`kill -9`, panic, OOM kill); only a crash of the whole machine can lose the last
    /// commits. The catalog keeps `synchronous=FULL`. Measured in `bench/heartbeats.sh`.
    ///
    /// The writer's connection never checkpoints (`wal_autocheckpoint=0`): a task copies the
    /// log back every second with a passive checkpoint on the other connection, which never
    /// blocks the writer. Inline, the commit that crossed 1,000 log pages paid for the whole
    /// copy, and every heartbeat in its batch waited (up to 1.9 s at 60,000 viewers).
    /// Statement journals stay in memory (`temp_store=MEMORY`).
    pub async fn open(path: &std::path::Path) -> Result<Self> {
        use sqlx::sqlite::{
            SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
        };
        use std::str::FromStr;
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(store)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(10))
            .pragma("wal_autocheckpoint", "0")
            .pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .map_err(store)?;
        let this = Self::new(pool);
        this.spawn_checkpointer();
        Ok(this)
    }

    fn spawn_checkpointer(&self) {
        let pool = self.pool.clone();
        let alive = std::sync::Arc::downgrade(&self.alive);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if alive.strong_count() == 0 {
                    break;
                }
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&pool)
                    .await
                {
                    tracing::warn!(error = %e, "WAL checkpoint failed; retrying in a second");
                }
            }
        });
    }
}

fn store(e: impl std::fmt::Display) -> Error {
    Error::Store(e.to_string())
}

#[async_trait]
impl AudienceStore for SqliteAudienceStore {
    async fn write(&self, records: &[Record]) -> Result<()> {
        // A batch holds many beats of the same sessions: only each session's newest state
        // matters (its counters are cumulative), so keep the last, then write every table
        // with one multi-row statement per chunk — one round trip to SQLite's thread, not one
        // per beat.
        let mut sessions: HashMap<&str, &Session> = HashMap::new();
        let mut views: Vec<&View> = Vec::new();
        let mut peaks: HashMap<&str, (u64, i64)> = HashMap::new();
        let mut minutes: HashMap<(&str, i64), &Minute> = HashMap::new();
        for record in records {
            match record {
                Record::Session(s) => {
                    sessions.insert(&s.id, s);
                }
                Record::View(v) => views.push(v),
                Record::Minute(m) => {
                    minutes.insert((&m.film, m.at), m);
                }
                Record::Peak { film, peak, at } => {
                    let entry = peaks.entry(film).or_insert((*peak, *at));
                    if *peak > entry.0 {
                        *entry = (*peak, *at);
                    }
                }
            }
        }
        let mut rows = Vec::with_capacity(sessions.len());
        for s in sessions.values() {
            rows.push((s, serde_json::to_string(s).map_err(store)?));
        }
        let mut tx = self.pool.begin().await.map_err(store)?;
        for chunk in rows.chunks(CHUNK) {
            let mut query =
                QueryBuilder::new("INSERT INTO audience_sessions (id, film, active_at, json) ");
            query.push_values(chunk, |mut row, (s, json)| {
                row.push_bind(&s.id)
                    .push_bind(&s.film)
                    .push_bind(s.last_beat_at.unwrap_or(s.started_at))
                    .push_bind(json);
            });
            query.push(" ON CONFLICT (id) DO UPDATE SET active_at = excluded.active_at, json = excluded.json");
            query.build().execute(&mut *tx).await.map_err(store)?;
        }
        for chunk in views.chunks(CHUNK) {
            let mut query = QueryBuilder::new(
                "INSERT OR IGNORE INTO audience_views (session, film, viewer, at) ",
            );
            query.push_values(chunk, |mut row, v| {
                row.push_bind(&v.session)
                    .push_bind(&v.film)
                    .push_bind(&v.viewer)
                    .push_bind(v.at);
            });
            query.build().execute(&mut *tx).await.map_err(store)?;
        }
        for minute in minutes.values() {
            sqlx::query(
                "INSERT INTO audience_minutes (film, at, json) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (film, at) DO UPDATE SET json = ?3",
            )
            .bind(&minute.film)
            .bind(minute.at)
            .bind(serde_json::to_string(minute).map_err(store)?)
            .execute(&mut *tx)
            .await
            .map_err(store)?;
        }
        for (film, (peak, at)) in peaks {
            sqlx::query(
                "INSERT INTO audience_peaks (film, peak, at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (film) DO UPDATE SET peak = ?2, at = ?3 WHERE ?2 > peak",
            )
            .bind(film)
            .bind(peak as i64)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(store)?;
        }
        tx.commit().await.map_err(store)
    }

    async fn load(&self, since_ms: i64) -> Result<Snapshot> {
        let mut snapshot = Snapshot::default();
        let rows = sqlx::query("SELECT json FROM audience_sessions WHERE active_at >= ?")
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await
            .map_err(store)?;
        for row in rows {
            let session: Session = serde_json::from_str(row.get("json")).map_err(store)?;
            snapshot.sessions.push(session);
        }
        let rows =
            sqlx::query("SELECT session, film, viewer, at FROM audience_views WHERE at >= ?")
                .bind(since_ms)
                .fetch_all(&self.pool)
                .await
                .map_err(store)?;
        snapshot.views = rows
            .iter()
            .map(|r| View {
                session: r.get("session"),
                film: r.get("film"),
                viewer: r.get("viewer"),
                at: r.get("at"),
            })
            .collect();
        let rows = sqlx::query(
            "SELECT film, COUNT(*) AS n FROM audience_views WHERE at < ? GROUP BY film",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(store)?;
        snapshot.older_views = rows
            .iter()
            .map(|r| (r.get("film"), r.get::<i64, _>("n") as u64))
            .collect();
        // A month of minute rollups, whatever the window of live sessions.
        let month_ago = since_ms - 29 * 24 * 3_600_000;
        let rows = sqlx::query("SELECT json FROM audience_minutes WHERE at >= ?")
            .bind(month_ago)
            .fetch_all(&self.pool)
            .await
            .map_err(store)?;
        for row in rows {
            snapshot
                .minutes
                .push(serde_json::from_str(row.get("json")).map_err(store)?);
        }
        let rows = sqlx::query("SELECT film, peak, at FROM audience_peaks")
            .fetch_all(&self.pool)
            .await
            .map_err(store)?;
        snapshot.peaks = rows
            .iter()
            .map(|r| (r.get("film"), r.get::<i64, _>("peak") as u64, r.get("at")))
            .collect();
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use monsoon_audience::{Audience, Clock, Config, Heartbeat, Outcome, PlayerState, TokenError};

    use super::*;
    use crate::SqliteCatalog;

    const T0: i64 = 1_800_000_000_000;

    fn beat(seq: u64, state: PlayerState, play_ms: u64) -> Heartbeat {
        Heartbeat {
            token: None,
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
        }
    }

    async fn open(path: &std::path::Path, clock: Clock) -> Audience {
        let catalog = SqliteCatalog::open(path).await.unwrap();
        let store = Arc::new(SqliteAudienceStore::new(catalog.pool().clone()));
        Audience::open_with_clock(Config::default(), b"key".to_vec(), store, clock)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_log_is_checkpointed_in_the_background_not_by_commits() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("c.db");
        drop(SqliteCatalog::open(&db).await.unwrap());
        let store = Arc::new(SqliteAudienceStore::open(&db).await.unwrap());
        let audience = Audience::open(Config::default(), b"key".to_vec(), store.clone())
            .await
            .unwrap();
        let size = || std::fs::metadata(&db).unwrap().len();
        let before = size();
        // ~1 MB of session rows: far past the 1,000 pages at which a commit would checkpoint.
        for _ in 0..3_000 {
            audience.mint("film", None).await.unwrap();
        }
        // The rows reach the database file only through the background checkpointer.
        let mut grown = false;
        for _ in 0..100 {
            if size() > before + 500_000 {
                grown = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(grown, "the database file stayed at {} bytes", size());
        let auto: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(auto, 0, "commits must not checkpoint");
    }

    #[tokio::test]
    async fn acknowledged_views_and_playing_time_survive_a_restart() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("c.db");
        let (clock, now) = Clock::manual(T0);
        let audience = open(&db, clock.clone()).await;
        let minted = audience.mint("film", None).await.unwrap();
        for seq in 0..=4 {
            now.store(T0 + seq as i64 * 10_000, Ordering::SeqCst);
            let outcome = audience
                .heartbeat(
                    &minted.session_id,
                    &minted.token,
                    &beat(seq, PlayerState::Playing, seq * 10_000),
                )
                .await
                .unwrap();
            assert_eq!(outcome, Outcome::Accepted);
        }
        audience.sample().await.unwrap();
        let before = audience.stats("film");
        assert_eq!(
            (
                before.views,
                before.playing_time_s,
                before.concurrent_viewers
            ),
            (1, 40.0, 1)
        );
        assert_eq!(before.peak_concurrent_viewers, 1);
        drop(audience);

        // A new process on the same file: the same figures, and a repeated beat counts nothing.
        let audience = open(&db, clock).await;
        let after = audience.stats("film");
        assert_eq!(after, before);
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
        assert_eq!(audience.stats("film").views, 1);
        assert_eq!(audience.stats("film").playing_time_s, 50.0);
    }

    #[tokio::test]
    async fn tokens_expire_and_cannot_be_forged_or_moved() {
        let tmp = tempfile::tempdir().unwrap();
        let (clock, now) = Clock::manual(T0);
        let audience = open(&tmp.path().join("c.db"), clock).await;
        let a = audience
            .mint("film", Some("viewer-0001".into()))
            .await
            .unwrap();
        let b = audience.mint("film", None).await.unwrap();
        assert_eq!(a.viewer_id, "viewer-0001");
        assert_ne!(b.viewer_id, a.viewer_id);
        let first = beat(0, PlayerState::Playing, 0);
        let err = audience
            .heartbeat(&b.session_id, &a.token, &first)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            monsoon_audience::Error::Token(TokenError::WrongSession)
        ));
        let forged = a.token.replace("viewer-0001", "viewer-0002");
        let err = audience
            .heartbeat(&a.session_id, &forged, &first)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            monsoon_audience::Error::Token(TokenError::BadSignature)
        ));
        now.store(T0 + Config::default().token_ttl_ms, Ordering::SeqCst);
        let err = audience
            .heartbeat(&a.session_id, &a.token, &first)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            monsoon_audience::Error::Token(TokenError::Expired)
        ));
        assert!(audience.mint("film", Some("bad id!".into())).await.is_err());
    }
}

#[cfg(test)]
mod shedding {
    use std::sync::Arc;

    use monsoon_audience::{Audience, Clock, Config, Error};

    use super::*;
    use crate::SqliteCatalog;

    /// With the database locked by another writer, the one pending commit holds the writer,
    /// the queue (of one) fills, and the next request is shed with `Overloaded` (429) instead
    /// of waiting without bound; once the lock goes, the held commits complete.
    #[tokio::test]
    async fn a_full_queue_sheds_load_instead_of_waiting() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("c.db");
        let catalog = SqliteCatalog::open(&path).await.unwrap();
        let store = Arc::new(SqliteAudienceStore::open(&path).await.unwrap());
        let config = Config {
            queue_limit: 1,
            ..Config::default()
        };
        let (clock, _) = Clock::manual(1_800_000_000_000);
        let audience = Arc::new(
            Audience::open_with_clock(config, b"k".to_vec(), store, clock)
                .await
                .unwrap(),
        );

        // Another connection takes the write lock.
        let mut blocker = catalog.pool().acquire().await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *blocker)
            .await
            .unwrap();

        let first = tokio::spawn({
            let a = Arc::clone(&audience);
            async move { a.mint("film", None).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await; // the writer takes it
        let second = tokio::spawn({
            let a = Arc::clone(&audience);
            async move { a.mint("film", None).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await; // queued
        let third = audience.mint("film", None).await;
        assert!(matches!(third, Err(Error::Overloaded)), "{third:?}");

        sqlx::query("ROLLBACK")
            .execute(&mut *blocker)
            .await
            .unwrap();
        drop(blocker);
        assert!(first.await.unwrap().is_ok());
        assert!(second.await.unwrap().is_ok());
    }
}
