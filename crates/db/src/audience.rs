//! [`AudienceStore`] over SQLite: every batch of the audience writer is one transaction.
//!
//! The writer's connection is a rusqlite one, not sqlx's: sqlx runs each SQLite connection on
//! a worker thread of its own and hands every statement and result across threads, which cost
//! more than the statements themselves at tens of thousands of heartbeats per second. The
//! audience writer already is a dedicated thread, so it owns the connection and runs its
//! prepared statements directly. (Both link the same bundled SQLite.)

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use monsoon_audience::{
    AudienceStore, Counters, Error, Minute, PlayerState, Record, Result, Session, Snapshot, View,
};
use rusqlite::{Connection, TransactionBehavior, params};

/// The audience tables of the catalog's SQLite file.
#[derive(Debug)]
pub struct SqliteAudienceStore {
    conn: Mutex<Connection>,
    /// Alive as long as the store: the checkpointer stops when it goes.
    alive: Arc<()>,
}

/// How often the write-ahead log is copied back into the database, off the commit path.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Inserts a session or replaces what changes in it (everything but its id, film, viewer and
/// start).
const UPSERT_SESSION: &str = "INSERT INTO audience_sessions (id, film, viewer, started_at, \
    last_beat_at, last_seq, state, play_ms, rebuffer_ms, rebuffer_count, startup_ms, seek_ms, \
    playhead_ms, height, bitrate_kbps, bytes, dropped_frames, fatal_error, view_counted, \
    view_deduplicated, rungs) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21) \
    ON CONFLICT (id) DO UPDATE SET last_beat_at = ?5, last_seq = ?6, state = ?7, play_ms = ?8, \
    rebuffer_ms = ?9, rebuffer_count = ?10, startup_ms = ?11, seek_ms = ?12, playhead_ms = ?13, \
    height = ?14, bitrate_kbps = ?15, bytes = ?16, dropped_frames = ?17, fatal_error = ?18, \
    view_counted = ?19, view_deduplicated = ?20, rungs = ?21";

/// Every session started since `?1`, its columns in [`session_from_row`]'s order.
const SELECT_SESSIONS: &str = "SELECT id, film, viewer, started_at, last_beat_at, last_seq, \
    state, play_ms, rebuffer_ms, rebuffer_count, startup_ms, seek_ms, playhead_ms, height, \
    bitrate_kbps, bytes, dropped_frames, fatal_error, view_counted, view_deduplicated, rungs \
    FROM audience_sessions WHERE started_at >= ?1";

fn session_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Session> {
    let state: Option<String> = row.get(6)?;
    let rungs: String = row.get(20)?;
    let invalid = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    Ok(Session {
        id: row.get(0)?,
        film: row.get(1)?,
        viewer: row.get(2)?,
        started_at: row.get(3)?,
        last_beat_at: row.get(4)?,
        last_seq: row.get(5)?,
        state: match state {
            Some(name) => Some(
                PlayerState::from_name(&name)
                    .ok_or_else(|| invalid(6, format!("unknown player state `{name}`")))?,
            ),
            None => None,
        },
        beat: Counters {
            play_ms: row.get(7)?,
            rebuffer_ms: row.get(8)?,
            rebuffer_count: row.get(9)?,
            startup_ms: row.get(10)?,
            seek_ms: row.get(11)?,
            playhead_ms: row.get(12)?,
            height: row.get(13)?,
            bitrate_kbps: row.get(14)?,
            bytes: row.get(15)?,
            dropped_frames: row.get(16)?,
            fatal_error: row.get(17)?,
        },
        view_counted: row.get(18)?,
        view_deduplicated: row.get(19)?,
        rungs: serde_json::from_str(&rungs).map_err(|e| invalid(20, e.to_string()))?,
    })
}

fn store(e: impl std::fmt::Display) -> Error {
    Error::Store(e.to_string())
}

/// A connection to the (already migrated) database at `path`, configured as
/// [`SqliteAudienceStore::open`] describes.
fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| store(format!("{}: {e}", path.display())))?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(store)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(store)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(store(format!(
            "{}: journal_mode is `{mode}`, the audience needs `wal`",
            path.display()
        )));
    }
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0; PRAGMA temp_store = MEMORY;",
    )
    .map_err(store)?;
    Ok(conn)
}

impl SqliteAudienceStore {
    /// Opens the audience tables of the database at `path` (opened and migrated by
    /// [`crate::SqliteCatalog::open`] first) on a connection of their own, in WAL mode with
    /// `synchronous=NORMAL`: a commit is in the write-ahead log — in the OS, not necessarily on
    /// the platter — when the writer acknowledges it. That survives any crash of the process
    /// (`kill -9`, panic, OOM kill); only a crash of the whole machine can lose the last
    /// commits. The catalog keeps `synchronous=FULL`. Measured in `bench/heartbeats.sh`.
    ///
    /// The writer's connection never checkpoints (`wal_autocheckpoint=0`): a thread copies the
    /// log back every second with a passive checkpoint on a second connection, which never
    /// blocks the writer. Inline, the commit that crossed 1,000 log pages paid for the whole
    /// copy, and every heartbeat in its batch waited (up to 1.9 s at 60,000 viewers).
    /// Statement journals stay in memory (`temp_store=MEMORY`).
    pub fn open(path: &Path) -> Result<Self> {
        let this = Self {
            conn: Mutex::new(connect(path)?),
            alive: Arc::new(()),
        };
        let checkpoints = connect(path)?;
        let alive = Arc::downgrade(&this.alive);
        std::thread::Builder::new()
            .name("audience-checkpoint".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(CHECKPOINT_EVERY);
                    if alive.strong_count() == 0 {
                        break;
                    }
                    if let Err(e) =
                        checkpoints.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(error = %e, "WAL checkpoint failed; retrying in a second");
                    }
                }
            })
            .map_err(store)?;
        Ok(this)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // Only the writer thread uses the connection after start; a panic there leaves no
        // transaction open (rusqlite rolls back on drop).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl AudienceStore for SqliteAudienceStore {
    fn write(&self, records: &[Record]) -> Result<()> {
        // A batch holds many beats of the same sessions: only each session's newest state
        // matters (its counters are cumulative), so keep the last.
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
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(store)?;
        {
            let mut upsert = tx.prepare_cached(UPSERT_SESSION).map_err(store)?;
            for s in sessions.values() {
                let c = &s.beat;
                let rungs = serde_json::to_string(&s.rungs).map_err(store)?;
                upsert
                    .execute(params![
                        s.id,
                        s.film,
                        s.viewer,
                        s.started_at,
                        s.last_beat_at,
                        s.last_seq,
                        s.state.map(PlayerState::as_str),
                        c.play_ms,
                        c.rebuffer_ms,
                        c.rebuffer_count,
                        c.startup_ms,
                        c.seek_ms,
                        c.playhead_ms,
                        c.height,
                        c.bitrate_kbps,
                        c.bytes,
                        c.dropped_frames,
                        c.fatal_error,
                        s.view_counted,
                        s.view_deduplicated,
                        rungs,
                    ])
                    .map_err(store)?;
            }
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO audience_views (session, film, viewer, at) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(store)?;
            for v in views {
                insert
                    .execute(params![v.session, v.film, v.viewer, v.at])
                    .map_err(store)?;
            }
            let mut minute_upsert = tx
                .prepare_cached(
                    "INSERT INTO audience_minutes (film, at, json) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (film, at) DO UPDATE SET json = ?3",
                )
                .map_err(store)?;
            for minute in minutes.values() {
                let json = serde_json::to_string(minute).map_err(store)?;
                minute_upsert
                    .execute(params![minute.film, minute.at, json])
                    .map_err(store)?;
            }
            let mut raise_peak = tx
                .prepare_cached(
                    "INSERT INTO audience_peaks (film, peak, at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (film) DO UPDATE SET peak = ?2, at = ?3 WHERE ?2 > peak",
                )
                .map_err(store)?;
            for (film, (peak, at)) in peaks {
                raise_peak
                    .execute(params![film, peak as i64, at])
                    .map_err(store)?;
            }
        }
        tx.commit().map_err(store)
    }

    fn load(&self, started_since_ms: i64, since_ms: i64) -> Result<Snapshot> {
        let conn = self.conn();
        let mut snapshot = Snapshot::default();
        let query = |sql: &str| conn.prepare(sql).map_err(store);
        snapshot.sessions = query(SELECT_SESSIONS)?
            .query_map([started_since_ms], session_from_row)
            .and_then(|rows| rows.collect())
            .map_err(store)?;
        snapshot.views =
            query("SELECT session, film, viewer, at FROM audience_views WHERE at >= ?1")?
                .query_map([since_ms], |r| {
                    Ok(View {
                        session: r.get(0)?,
                        film: r.get(1)?,
                        viewer: r.get(2)?,
                        at: r.get(3)?,
                    })
                })
                .and_then(|rows| rows.collect())
                .map_err(store)?;
        snapshot.older_views =
            query("SELECT film, COUNT(*) FROM audience_views WHERE at < ?1 GROUP BY film")?
                .query_map([since_ms], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
                .and_then(|rows| rows.collect())
                .map_err(store)?;
        // A month of minute rollups, whatever the window of live sessions.
        let month_ago = since_ms - 29 * 24 * 3_600_000;
        let minutes: Vec<String> = query("SELECT json FROM audience_minutes WHERE at >= ?1")?
            .query_map([month_ago], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .map_err(store)?;
        for json in minutes {
            snapshot
                .minutes
                .push(serde_json::from_str(&json).map_err(store)?);
        }
        snapshot.peaks = query("SELECT film, peak, at FROM audience_peaks")?
            .query_map([], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(store)?;
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
        drop(SqliteCatalog::open(path).await.unwrap());
        let store = Arc::new(SqliteAudienceStore::open(path).unwrap());
        Audience::open_with_clock(Config::default(), b"key".to_vec(), store, clock)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_log_is_checkpointed_in_the_background_not_by_commits() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("c.db");
        drop(SqliteCatalog::open(&db).await.unwrap());
        let store = Arc::new(SqliteAudienceStore::open(&db).unwrap());
        let audience = Audience::open(Config::default(), b"key".to_vec(), store.clone())
            .await
            .unwrap();
        let size = || std::fs::metadata(&db).unwrap().len();
        let before = size();
        // Thousands of commits of session rows: far past the 1,000 log pages at which a commit
        // would checkpoint.
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
        let auto: i64 = store
            .conn()
            .query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))
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
        let store = Arc::new(SqliteAudienceStore::open(&path).unwrap());
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
