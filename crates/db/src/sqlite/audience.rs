//! [`AudienceStore`] over SQLite: every batch of the audience writer is one transaction.
//!
//! The writer's connection is a rusqlite one, not sqlx's: sqlx runs each SQLite connection on
//! a worker thread of its own and hands every statement and result across threads, which cost
//! more than the statements themselves at tens of thousands of heartbeats per second. The
//! audience writer already is a dedicated thread, so it owns the connection and runs its
//! prepared statements directly. (Both link the same bundled SQLite.)

use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use monsoon_audience::{
    AudienceStore, Codec, Counters, Network, PlayerState, Record, Result, Session, Snapshot, View,
};
use rusqlite::{Connection, TransactionBehavior, params};

use crate::batch::{Batch, SESSION_COLUMNS, SESSION_FIXED, int, store};

/// The audience tables of the catalog's SQLite file.
#[derive(Debug)]
pub struct SqliteAudienceStore {
    conn: Mutex<Connection>,
    /// Alive as long as the store: the checkpointer stops when it goes.
    alive: Arc<()>,
}

/// How often the write-ahead log is copied back into the database, off the commit path.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Replaces what changes in a stored session; its parameters are the values of
/// [`SESSION_COLUMNS`] in that order (`?1` is `id`; the fixed columns' numbers go unused), bound
/// positionally: by name, SQLite's parameter lookup cost more than the statement at tens of
/// thousands of beats a second. A session is stored at its first beat and updated at each of
/// the hundreds that follow, so the writer tries this first and inserts ([`INSERT_SESSION`],
/// the same parameters) only when it changed no row: an `INSERT … ON CONFLICT DO UPDATE` of a
/// stored row costs a third more (a failed insertion, then the update).
static UPDATE_SESSION: LazyLock<String> = LazyLock::new(|| {
    let changes: Vec<String> = SESSION_COLUMNS
        .iter()
        .enumerate()
        .filter(|(_, c)| !SESSION_FIXED.contains(c))
        .map(|(i, c)| format!("{c} = ?{}", i + 1))
        .collect();
    format!(
        "UPDATE audience_sessions SET {} WHERE id = ?1",
        changes.join(", ")
    )
});

/// Stores a new session, with the parameters of [`UPDATE_SESSION`].
static INSERT_SESSION: LazyLock<String> = LazyLock::new(|| {
    let values: Vec<String> = (1..=SESSION_COLUMNS.len())
        .map(|i| format!("?{i}"))
        .collect();
    format!(
        "INSERT INTO audience_sessions ({}) VALUES ({})",
        SESSION_COLUMNS.join(", "),
        values.join(", ")
    )
});

/// A session from the values of [`SESSION_COLUMNS`], in that order.
fn session_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Session> {
    let state: Option<String> = row.get(6)?;
    let rungs: String = row.get(20)?;
    let codec: Option<String> = row.get(23)?;
    let codecs: String = row.get(24)?;
    let network: Option<String> = row.get(25)?;
    let codec_bytes: String = row.get(26)?;
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
            codec: match codec {
                Some(name) => Some(
                    Codec::from_name(&name)
                        .ok_or_else(|| invalid(23, format!("unknown codec `{name}`")))?,
                ),
                None => None,
            },
            network: match network {
                Some(name) => Some(
                    Network::from_name(&name)
                        .ok_or_else(|| invalid(25, format!("unknown network `{name}`")))?,
                ),
                None => None,
            },
        },
        view_counted: row.get(18)?,
        view_deduplicated: row.get(19)?,
        rungs: serde_json::from_str(&rungs).map_err(|e| invalid(20, e.to_string()))?,
        first_play_ms: row.get(21)?,
        suspicious: row.get(22)?,
        codecs: serde_json::from_str(&codecs).map_err(|e| invalid(24, e.to_string()))?,
        codec_bytes: serde_json::from_str(&codec_bytes).map_err(|e| invalid(26, e.to_string()))?,
    })
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
        let batch = Batch::of(records);
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(store)?;
        {
            let mut update_session = tx.prepare_cached(&UPDATE_SESSION).map_err(store)?;
            let mut insert_session = tx.prepare_cached(&INSERT_SESSION).map_err(store)?;
            for s in batch.sessions.values() {
                let c = &s.beat;
                let rungs = serde_json::to_string(&s.rungs).map_err(store)?;
                let codecs = serde_json::to_string(&s.codecs).map_err(store)?;
                let codec_bytes = serde_json::to_string(&s.codec_bytes).map_err(store)?;
                // In the order of SESSION_COLUMNS.
                let values = params![
                    s.id,
                    s.film,
                    s.viewer,
                    s.started_at,
                    s.last_beat_at,
                    s.last_seq.map(|seq| int("last_seq", seq)).transpose()?,
                    s.state.map(PlayerState::as_str),
                    int("play_ms", c.play_ms)?,
                    int("rebuffer_ms", c.rebuffer_ms)?,
                    int("rebuffer_count", c.rebuffer_count)?,
                    int("startup_ms", c.startup_ms)?,
                    int("seek_ms", c.seek_ms)?,
                    int("playhead_ms", c.playhead_ms)?,
                    c.height,
                    c.bitrate_kbps,
                    int("bytes", c.bytes)?,
                    int("dropped_frames", c.dropped_frames)?,
                    c.fatal_error,
                    s.view_counted,
                    s.view_deduplicated,
                    rungs,
                    int("first_play_ms", s.first_play_ms)?,
                    s.suspicious,
                    c.codec.map(Codec::as_str),
                    codecs,
                    c.network.map(Network::as_str),
                    codec_bytes,
                ];
                if update_session.execute(values).map_err(store)? == 0 {
                    insert_session.execute(values).map_err(store)?;
                }
            }
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO audience_views (session, film, viewer, at) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(store)?;
            for v in batch.views {
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
            for minute in batch.minutes.values() {
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
            for (film, (peak, at)) in batch.peaks {
                raise_peak
                    .execute(params![film, int("peak", peak)?, at])
                    .map_err(store)?;
            }
        }
        tx.commit().map_err(store)
    }

    fn load(&self, started_since_ms: i64, since_ms: i64) -> Result<Snapshot> {
        let conn = self.conn();
        let mut snapshot = Snapshot::default();
        let query = |sql: &str| conn.prepare(sql).map_err(store);
        snapshot.sessions = query(&format!(
            "SELECT {} FROM audience_sessions WHERE started_at >= ?1",
            SESSION_COLUMNS.join(", ")
        ))?
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

    use monsoon_audience::AudienceStore;
    use monsoon_audience::memory::conformance;

    use super::*;
    use crate::SqliteCatalog;

    /// The audience store's contract (crates/audience/src/memory.rs), on SQLite: every call
    /// opens the same file, as a restart would.
    #[tokio::test(flavor = "multi_thread")]
    async fn the_sqlite_store_keeps_the_contract() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("c.db");
        drop(SqliteCatalog::open(&db).await.unwrap());
        tokio::task::spawn_blocking(move || {
            conformance::run(&|| {
                Arc::new(SqliteAudienceStore::open(&db).unwrap()) as Arc<dyn AudienceStore>
            })
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn the_log_is_checkpointed_in_the_background_not_by_commits() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("c.db");
        drop(SqliteCatalog::open(&db).await.unwrap());
        let store = Arc::new(SqliteAudienceStore::open(&db).unwrap());
        let size = || std::fs::metadata(&db).unwrap().len();
        let before = size();
        // Thousands of commits of session rows: far past the 1,000 log pages at which a commit
        // would checkpoint.
        let writer = Arc::clone(&store);
        tokio::task::spawn_blocking(move || {
            for i in 0..3_000 {
                let session = monsoon_audience::Session {
                    // Ids as long as real ones (16 random bytes in hex).
                    id: format!("{i:032}"),
                    film: "film".into(),
                    viewer: format!("{:032}", i + 1_000_000),
                    started_at: 1_800_000_000_000,
                    last_beat_at: Some(1_800_000_000_000),
                    last_seq: Some(1),
                    state: Some(PlayerState::Playing),
                    beat: Counters::default(),
                    first_play_ms: 0,
                    view_counted: false,
                    view_deduplicated: false,
                    suspicious: false,
                    rungs: Default::default(),
                    codecs: Default::default(),
                    codec_bytes: Default::default(),
                };
                writer.write(&[Record::Session(session)]).unwrap();
            }
        })
        .await
        .unwrap();
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

    /// A record SQLite cannot store fails its own transaction only, and leaves the database as
    /// it was (the engine then retries the batch's heartbeats one by one).
    #[tokio::test]
    async fn a_record_that_cannot_be_stored_fails_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("c.db");
        drop(SqliteCatalog::open(&db).await.unwrap());
        let store = SqliteAudienceStore::open(&db).unwrap();
        let session = |id: &str, play_ms: u64| monsoon_audience::Session {
            id: id.into(),
            film: "film".into(),
            viewer: format!("viewer-{id}"),
            started_at: 1_800_000_000_000,
            last_beat_at: Some(1_800_000_010_000),
            last_seq: Some(1),
            state: Some(PlayerState::Playing),
            beat: Counters {
                play_ms,
                ..Counters::default()
            },
            first_play_ms: 0,
            view_counted: false,
            view_deduplicated: false,
            suspicious: false,
            rungs: Default::default(),
            codecs: Default::default(),
            codec_bytes: Default::default(),
        };
        let err = store
            .write(&[
                Record::Session(session("honest", 10_000)),
                Record::Session(session("hostile", u64::MAX)),
            ])
            .unwrap_err();
        assert!(err.to_string().contains("play_ms"), "{err}");
        assert!(store.load(0, 0).unwrap().sessions.is_empty());
        store
            .write(&[Record::Session(session("honest", 10_000))])
            .unwrap();
        assert_eq!(store.load(0, 0).unwrap().sessions.len(), 1);
    }

    /// The writer's statements run once per session in every commit: none may build a
    /// temporary index each time it runs (an `IN (…)` list of constants in a CHECK did, and
    /// cost a fifth of the writer's time), and the rules they replaced still hold.
    #[tokio::test]
    async fn the_writers_statements_build_nothing_per_row_and_keep_the_columns_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("c.db");
        drop(SqliteCatalog::open(&db).await.unwrap());
        let store = SqliteAudienceStore::open(&db).unwrap();
        let conn = store.conn();
        for sql in [UPDATE_SESSION.as_str(), INSERT_SESSION.as_str()] {
            let mut explain = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
            let unbound = std::iter::repeat_n(rusqlite::types::Null, explain.parameter_count());
            let opcodes: Vec<String> = explain
                .query_map(rusqlite::params_from_iter(unbound), |row| {
                    row.get::<_, String>(1)
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert!(
                !opcodes.iter().any(|op| op == "OpenEphemeral"),
                "{sql} builds a temporary index each time it runs: {opcodes:?}"
            );
        }
        let insert = |network: &str, codec: &str| {
            conn.execute(
                "INSERT INTO audience_sessions (id, film, viewer, started_at, play_ms, \
                 rebuffer_ms, rebuffer_count, startup_ms, seek_ms, playhead_ms, height, \
                 bitrate_kbps, bytes, dropped_frames, fatal_error, view_counted, \
                 view_deduplicated, rungs, network, codec) \
                 VALUES (?1, 'film', 'viewer', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '{}', ?2, ?3)",
                rusqlite::params![format!("{network}-{codec}"), network, codec],
            )
        };
        for network in ["slow-2g", "2g", "3g", "4g"] {
            insert(network, "h264").unwrap();
        }
        insert("4g", "av1").unwrap();
        assert!(
            insert("5g", "h264").is_err(),
            "an unknown network was stored"
        );
        assert!(insert("4g", "vp9").is_err(), "an unknown codec was stored");
    }
}
