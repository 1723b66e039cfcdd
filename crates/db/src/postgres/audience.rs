//! [`AudienceStore`] over PostgreSQL: every batch of the audience writer is one transaction
//! of four statements, whatever its size. Each table's rows go in as arrays, unnested by the
//! server (`INSERT … SELECT * FROM UNNEST($1::text[], …)`), so a batch of 2,000 heartbeats
//! costs the same four round trips as a batch of one.
//!
//! The writer is a thread of its own (crates/audience/src/writer.rs) and the trait is
//! synchronous, so the store owns one connection and a small runtime of its own to drive it.
//! A commit returns once PostgreSQL has flushed it (`synchronous_commit = on`, its default):
//! an acknowledged heartbeat survives the loss of the node that took it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};

use monsoon_audience::{
    AudienceStore, Catchup, Codec, Counters, Network, PlayerState, Record, Result, Session,
    Snapshot, View,
};
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{Connection, PgConnection, Row};

use super::{options, redacted};
use crate::batch::{Batch, SESSION_COLUMNS, int, session_changes, store};

/// The PostgreSQL type of each of [`SESSION_COLUMNS`], in the same order.
const SESSION_TYPES: [&str; 27] = [
    "text", "text", "text", "int8", "int8", "int8", "text", "int8", "int8", "int8", "int8", "int8",
    "int8", "int8", "int8", "int8", "int8", "bool", "bool", "bool", "text", "int8", "bool", "text",
    "text", "text", "text",
];

/// The audience tables of a PostgreSQL database (migrated by [`super::PgCatalog::open`]).
#[derive(Debug)]
pub struct PgAudienceStore {
    runtime: tokio::runtime::Runtime,
    options: PgConnectOptions,
    url: String,
    /// `None` after an error: the next call connects anew (the server may have restarted).
    conn: Mutex<Option<PgConnection>>,
    /// The revision of `audience_rev` this node has seen every change up to.
    seen: AtomicI64,
}

impl PgAudienceStore {
    /// Connects to the database at `url`. Blocking: call it from a thread that is not
    /// running async tasks (`spawn_blocking`).
    pub fn open(url: &str) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("audience-postgres")
            .build()
            .map_err(store)?;
        let this = Self {
            runtime,
            options: options(url, "monsoon-audience").map_err(store)?,
            url: redacted(url),
            conn: Mutex::new(None),
            seen: AtomicI64::new(0),
        };
        drop(this.connection()?);
        Ok(this)
    }

    /// The connection, made if there is none.
    fn connection(&self) -> Result<MutexGuard<'_, Option<PgConnection>>> {
        // Only the writer uses the connection after start; a panic there leaves at worst an
        // open transaction, which the server rolls back when the connection is dropped.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if conn.is_none() {
            let made = self
                .runtime
                .block_on(PgConnection::connect_with(&self.options))
                .map_err(|e| store(format!("connecting to {}: {e}", self.url)))?;
            *conn = Some(made);
        }
        Ok(conn)
    }

    /// Runs `work` on the connection; after an error, forgets the connection, whose state is
    /// then unknown (a broken socket, a server restarted).
    fn run<T>(&self, work: impl AsyncFnOnce(&mut PgConnection) -> Result<T>) -> Result<T> {
        let mut guard = self.connection()?;
        let conn = guard.as_mut().ok_or_else(|| store("no connection"))?;
        let result = self.runtime.block_on(work(conn));
        if result.is_err() {
            *guard = None;
        }
        result
    }
}

/// `INSERT INTO table (columns) SELECT * FROM UNNEST($1::type[], …)`, and with `Revised` every
/// row takes the next revision (`rev`, migrations/postgres/0003), which other nodes catch up
/// with. Minute rollups take none: each node writes its own.
fn insert_unnest(table: &str, columns: &[&str], types: &[&str], rev: Rev) -> String {
    let arrays: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, t)| format!("${}::{t}[]", i + 1))
        .collect();
    let (rev_column, rev_value) = match rev {
        Rev::Revised => (", rev", ", nextval('audience_rev')"),
        Rev::Unrevised => ("", ""),
    };
    format!(
        "INSERT INTO {table} ({}{rev_column}) SELECT u.*{rev_value} FROM UNNEST({}) AS u",
        columns.join(", "),
        arrays.join(", ")
    )
}

/// Whether the rows an insert writes take a revision.
#[derive(Clone, Copy)]
enum Rev {
    Revised,
    Unrevised,
}

/// The one lock every writer of the audience holds for its whole transaction, on every node.
const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtextextended('monsoon_audience', 0))";

/// The database's time (ms since the Unix epoch) and the last revision taken.
const CLOCK_AND_REVISION: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::int8, \
     (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM audience_rev)";

/// Takes the lock; returns the database's time and the last revision.
async fn lock(tx: &mut PgConnection) -> Result<(i64, i64)> {
    sqlx::query(LOCK).execute(&mut *tx).await.map_err(store)?;
    sqlx::query_as(CLOCK_AND_REVISION)
        .fetch_one(&mut *tx)
        .await
        .map_err(store)
}

/// What was committed after revision `seen`: sessions in their latest state, views, and
/// every peak.
async fn catch_up(tx: &mut PgConnection, seen: i64, now_ms: i64) -> Result<Catchup> {
    let rows = sqlx::query(&format!(
        "SELECT {} FROM audience_sessions WHERE rev > $1",
        SESSION_COLUMNS.join(", ")
    ))
    .bind(seen)
    .fetch_all(&mut *tx)
    .await
    .map_err(store)?;
    let sessions = rows.iter().map(session_from_row).collect::<Result<_>>()?;
    let rows = sqlx::query("SELECT session, film, viewer, at FROM audience_views WHERE rev > $1")
        .bind(seen)
        .fetch_all(&mut *tx)
        .await
        .map_err(store)?;
    let views = rows.iter().map(view_from_row).collect::<Result<_>>()?;
    Ok(Catchup {
        now_ms,
        sessions,
        views,
        peaks: peaks(tx).await?,
    })
}

/// Each of [`SESSION_COLUMNS`] as an array, one element per session, to bind in that order.
#[derive(Default)]
struct SessionColumns {
    id: Vec<String>,
    film: Vec<String>,
    viewer: Vec<String>,
    started_at: Vec<i64>,
    last_beat_at: Vec<Option<i64>>,
    last_seq: Vec<Option<i64>>,
    state: Vec<Option<&'static str>>,
    play_ms: Vec<i64>,
    rebuffer_ms: Vec<i64>,
    rebuffer_count: Vec<i64>,
    startup_ms: Vec<i64>,
    seek_ms: Vec<i64>,
    playhead_ms: Vec<i64>,
    height: Vec<i64>,
    bitrate_kbps: Vec<i64>,
    bytes: Vec<i64>,
    dropped_frames: Vec<i64>,
    fatal_error: Vec<bool>,
    view_counted: Vec<bool>,
    view_deduplicated: Vec<bool>,
    rungs: Vec<String>,
    first_play_ms: Vec<i64>,
    suspicious: Vec<bool>,
    codec: Vec<Option<&'static str>>,
    codecs: Vec<String>,
    network: Vec<Option<&'static str>>,
    codec_bytes: Vec<String>,
}

impl SessionColumns {
    fn push(&mut self, s: &Session) -> Result<()> {
        let c = &s.beat;
        self.id.push(s.id.clone());
        self.film.push(s.film.clone());
        self.viewer.push(s.viewer.clone());
        self.started_at.push(s.started_at);
        self.last_beat_at.push(s.last_beat_at);
        self.last_seq
            .push(s.last_seq.map(|seq| int("last_seq", seq)).transpose()?);
        self.state.push(s.state.map(PlayerState::as_str));
        self.play_ms.push(int("play_ms", c.play_ms)?);
        self.rebuffer_ms.push(int("rebuffer_ms", c.rebuffer_ms)?);
        self.rebuffer_count
            .push(int("rebuffer_count", c.rebuffer_count)?);
        self.startup_ms.push(int("startup_ms", c.startup_ms)?);
        self.seek_ms.push(int("seek_ms", c.seek_ms)?);
        self.playhead_ms.push(int("playhead_ms", c.playhead_ms)?);
        self.height.push(i64::from(c.height));
        self.bitrate_kbps.push(i64::from(c.bitrate_kbps));
        self.bytes.push(int("bytes", c.bytes)?);
        self.dropped_frames
            .push(int("dropped_frames", c.dropped_frames)?);
        self.fatal_error.push(c.fatal_error);
        self.view_counted.push(s.view_counted);
        self.view_deduplicated.push(s.view_deduplicated);
        self.rungs
            .push(serde_json::to_string(&s.rungs).map_err(store)?);
        self.first_play_ms
            .push(int("first_play_ms", s.first_play_ms)?);
        self.suspicious.push(s.suspicious);
        self.codec.push(c.codec.map(Codec::as_str));
        self.codecs
            .push(serde_json::to_string(&s.codecs).map_err(store)?);
        self.network.push(c.network.map(Network::as_str));
        self.codec_bytes
            .push(serde_json::to_string(&s.codec_bytes).map_err(store)?);
        Ok(())
    }

    /// Upserts every session in one statement.
    async fn upsert(self, conn: &mut PgConnection) -> Result<()> {
        let sql = format!(
            "{} ON CONFLICT (id) DO UPDATE SET {}, rev = excluded.rev",
            insert_unnest(
                "audience_sessions",
                &SESSION_COLUMNS,
                &SESSION_TYPES,
                Rev::Revised
            ),
            session_changes()
        );
        // In the order of SESSION_COLUMNS.
        sqlx::query(&sql)
            .bind(self.id)
            .bind(self.film)
            .bind(self.viewer)
            .bind(self.started_at)
            .bind(self.last_beat_at)
            .bind(self.last_seq)
            .bind(self.state)
            .bind(self.play_ms)
            .bind(self.rebuffer_ms)
            .bind(self.rebuffer_count)
            .bind(self.startup_ms)
            .bind(self.seek_ms)
            .bind(self.playhead_ms)
            .bind(self.height)
            .bind(self.bitrate_kbps)
            .bind(self.bytes)
            .bind(self.dropped_frames)
            .bind(self.fatal_error)
            .bind(self.view_counted)
            .bind(self.view_deduplicated)
            .bind(self.rungs)
            .bind(self.first_play_ms)
            .bind(self.suspicious)
            .bind(self.codec)
            .bind(self.codecs)
            .bind(self.network)
            .bind(self.codec_bytes)
            .execute(conn)
            .await
            .map_err(store)?;
        Ok(())
    }
}

async fn write(conn: &mut PgConnection, batch: Batch<'_>) -> Result<()> {
    let mut tx = conn.begin().await.map_err(store)?;
    lock(&mut tx).await?;
    write_in(&mut tx, batch).await?;
    tx.commit().await.map_err(store)
}

/// Writes `batch` in the transaction `tx`, which holds the lock.
async fn write_in(tx: &mut PgConnection, batch: Batch<'_>) -> Result<()> {
    let mut sessions = SessionColumns::default();
    for s in batch.sessions.values() {
        sessions.push(s)?;
    }
    if !batch.sessions.is_empty() {
        sessions.upsert(&mut *tx).await?;
    }
    if !batch.views.is_empty() {
        let views = &batch.views;
        sqlx::query(&format!(
            "{} ON CONFLICT (session) DO NOTHING",
            insert_unnest(
                "audience_views",
                &["session", "film", "viewer", "at"],
                &["text", "text", "text", "int8"],
                Rev::Revised
            )
        ))
        .bind(views.iter().map(|v| v.session.as_str()).collect::<Vec<_>>())
        .bind(views.iter().map(|v| v.film.as_str()).collect::<Vec<_>>())
        .bind(views.iter().map(|v| v.viewer.as_str()).collect::<Vec<_>>())
        .bind(views.iter().map(|v| v.at).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await
        .map_err(store)?;
    }
    if !batch.minutes.is_empty() {
        let mut json = Vec::with_capacity(batch.minutes.len());
        for minute in batch.minutes.values() {
            json.push(serde_json::to_string(minute).map_err(store)?);
        }
        sqlx::query(&format!(
            "{} ON CONFLICT (film, at) DO UPDATE SET json = excluded.json",
            insert_unnest(
                "audience_minutes",
                &["film", "at", "json"],
                &["text", "int8", "text"],
                Rev::Unrevised
            )
        ))
        .bind(
            batch
                .minutes
                .keys()
                .map(|(film, _)| *film)
                .collect::<Vec<_>>(),
        )
        .bind(batch.minutes.keys().map(|(_, at)| *at).collect::<Vec<_>>())
        .bind(json)
        .execute(&mut *tx)
        .await
        .map_err(store)?;
    }
    if !batch.peaks.is_empty() {
        let mut peaks = Vec::with_capacity(batch.peaks.len());
        for (film, (peak, at)) in &batch.peaks {
            peaks.push((*film, int("peak", *peak)?, *at));
        }
        sqlx::query(&format!(
            "{} ON CONFLICT (film) DO UPDATE SET peak = excluded.peak, at = excluded.at, \
             rev = excluded.rev WHERE excluded.peak > audience_peaks.peak",
            insert_unnest(
                "audience_peaks",
                &["film", "peak", "at"],
                &["text", "int8", "int8"],
                Rev::Revised
            )
        ))
        .bind(peaks.iter().map(|p| p.0).collect::<Vec<_>>())
        .bind(peaks.iter().map(|p| p.1).collect::<Vec<_>>())
        .bind(peaks.iter().map(|p| p.2).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await
        .map_err(store)?;
    }
    Ok(())
}

/// A session from the values of [`SESSION_COLUMNS`], in that order.
fn session_from_row(row: &PgRow) -> Result<Session> {
    let get_u64 = |i: usize| -> Result<u64> {
        let value: i64 = row.try_get(i).map_err(store)?;
        u64::try_from(value)
            .map_err(|_| store(format!("{} = {value} is negative", SESSION_COLUMNS[i])))
    };
    let get_u32 = |i: usize| -> Result<u32> {
        let value: i64 = row.try_get(i).map_err(store)?;
        u32::try_from(value)
            .map_err(|_| store(format!("{} = {value} is out of range", SESSION_COLUMNS[i])))
    };
    let get = |i: usize| -> Result<bool> { row.try_get(i).map_err(store) };
    let state: Option<String> = row.try_get(6).map_err(store)?;
    let rungs: String = row.try_get(20).map_err(store)?;
    let codec: Option<String> = row.try_get(23).map_err(store)?;
    let codecs: String = row.try_get(24).map_err(store)?;
    let network: Option<String> = row.try_get(25).map_err(store)?;
    let codec_bytes: String = row.try_get(26).map_err(store)?;
    let last_seq: Option<i64> = row.try_get(5).map_err(store)?;
    Ok(Session {
        id: row.try_get(0).map_err(store)?,
        film: row.try_get(1).map_err(store)?,
        viewer: row.try_get(2).map_err(store)?,
        started_at: row.try_get(3).map_err(store)?,
        last_beat_at: row.try_get(4).map_err(store)?,
        last_seq: last_seq
            .map(|seq| {
                u64::try_from(seq).map_err(|_| store(format!("last_seq = {seq} is negative")))
            })
            .transpose()?,
        state: match state {
            Some(name) => Some(
                PlayerState::from_name(&name)
                    .ok_or_else(|| store(format!("unknown player state `{name}`")))?,
            ),
            None => None,
        },
        beat: Counters {
            play_ms: get_u64(7)?,
            rebuffer_ms: get_u64(8)?,
            rebuffer_count: get_u64(9)?,
            startup_ms: get_u64(10)?,
            seek_ms: get_u64(11)?,
            playhead_ms: get_u64(12)?,
            height: get_u32(13)?,
            bitrate_kbps: get_u32(14)?,
            bytes: get_u64(15)?,
            dropped_frames: get_u64(16)?,
            fatal_error: get(17)?,
            codec: match codec {
                Some(name) => Some(
                    Codec::from_name(&name)
                        .ok_or_else(|| store(format!("unknown codec `{name}`")))?,
                ),
                None => None,
            },
            network: match network {
                Some(name) => Some(
                    Network::from_name(&name)
                        .ok_or_else(|| store(format!("unknown network `{name}`")))?,
                ),
                None => None,
            },
        },
        view_counted: get(18)?,
        view_deduplicated: get(19)?,
        rungs: serde_json::from_str(&rungs).map_err(store)?,
        first_play_ms: get_u64(21)?,
        suspicious: get(22)?,
        codecs: serde_json::from_str(&codecs).map_err(store)?,
        codec_bytes: serde_json::from_str(&codec_bytes).map_err(store)?,
    })
}

fn view_from_row(row: &PgRow) -> Result<View> {
    Ok(View {
        session: row.try_get(0).map_err(store)?,
        film: row.try_get(1).map_err(store)?,
        viewer: row.try_get(2).map_err(store)?,
        at: row.try_get(3).map_err(store)?,
    })
}

/// Every film's peak.
async fn peaks(conn: &mut PgConnection) -> Result<Vec<(String, u64, i64)>> {
    let rows = sqlx::query("SELECT film, peak, at FROM audience_peaks")
        .fetch_all(&mut *conn)
        .await
        .map_err(store)?;
    let mut peaks = Vec::with_capacity(rows.len());
    for row in &rows {
        let peak: i64 = row.try_get(1).map_err(store)?;
        peaks.push((
            row.try_get(0).map_err(store)?,
            u64::try_from(peak).map_err(|_| store(format!("peak = {peak} is negative")))?,
            row.try_get(2).map_err(store)?,
        ));
    }
    Ok(peaks)
}

/// The snapshot a node starts from, and the revision it holds everything up to.
async fn load(
    conn: &mut PgConnection,
    started_since_ms: i64,
    since_ms: i64,
) -> Result<(Snapshot, i64)> {
    // One snapshot of the database, without the lock: a node starting while the others
    // count must not stop their commits for as long as it reads. Writers commit in the order
    // they take revisions (under the lock), so a snapshot sees every change up to some
    // revision and none after it: the highest revision it sees is the one to catch up from.
    let mut tx = conn.begin().await.map_err(store)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(store)?;
    let revision: i64 = sqlx::query_scalar(
        "SELECT GREATEST((SELECT max(rev) FROM audience_sessions), \
         (SELECT max(rev) FROM audience_views), (SELECT max(rev) FROM audience_peaks), 0)",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(store)?;
    let mut snapshot = Snapshot::default();
    let rows = sqlx::query(&format!(
        "SELECT {} FROM audience_sessions WHERE started_at >= $1",
        SESSION_COLUMNS.join(", ")
    ))
    .bind(started_since_ms)
    .fetch_all(&mut *tx)
    .await
    .map_err(store)?;
    snapshot.sessions = rows.iter().map(session_from_row).collect::<Result<_>>()?;
    let rows = sqlx::query("SELECT session, film, viewer, at FROM audience_views WHERE at >= $1")
        .bind(since_ms)
        .fetch_all(&mut *tx)
        .await
        .map_err(store)?;
    snapshot.views = rows.iter().map(view_from_row).collect::<Result<_>>()?;
    let rows = sqlx::query("SELECT film, COUNT(*) FROM audience_views WHERE at < $1 GROUP BY film")
        .bind(since_ms)
        .fetch_all(&mut *tx)
        .await
        .map_err(store)?;
    for row in &rows {
        let count: i64 = row.try_get(1).map_err(store)?;
        snapshot
            .older_views
            .push((row.try_get(0).map_err(store)?, count as u64));
    }
    // A month of minute rollups, whatever the window of live sessions.
    let month_ago = since_ms - 29 * 24 * 3_600_000;
    let rows = sqlx::query("SELECT json FROM audience_minutes WHERE at >= $1")
        .bind(month_ago)
        .fetch_all(&mut *tx)
        .await
        .map_err(store)?;
    for row in &rows {
        let json: &str = row.try_get(0).map_err(store)?;
        snapshot
            .minutes
            .push(serde_json::from_str(json).map_err(store)?);
    }
    snapshot.peaks = peaks(&mut tx).await?;
    tx.commit().await.map_err(store)?;
    Ok((snapshot, revision))
}

impl AudienceStore for PgAudienceStore {
    fn write(&self, records: &[Record]) -> Result<()> {
        let batch = Batch::of(records);
        self.run(async move |conn| write(conn, batch).await)
    }

    fn load(&self, started_since_ms: i64, since_ms: i64) -> Result<Snapshot> {
        let (snapshot, revision) =
            self.run(async move |conn| load(conn, started_since_ms, since_ms).await)?;
        self.seen.store(revision, Ordering::SeqCst);
        Ok(snapshot)
    }

    fn is_shared(&self) -> bool {
        true
    }

    /// Under the lock every node takes: catches up with what others committed since this
    /// node's last exchange (nothing to read when the revision has not moved), stages at the
    /// database's clock, writes, and remembers the revision it has seen everything up to.
    fn exchange(&self, _now_ms: i64, stage: &mut dyn FnMut(Catchup) -> Vec<Record>) -> Result<()> {
        self.run(async |conn| {
            let mut tx = conn.begin().await.map_err(store)?;
            let (now_ms, revision) = lock(&mut tx).await?;
            let seen = self.seen.load(Ordering::SeqCst);
            let catchup = if revision > seen {
                let catchup = catch_up(&mut tx, seen, now_ms).await?;
                // What others committed is seen, whatever becomes of this transaction.
                self.seen.store(revision, Ordering::SeqCst);
                catchup
            } else {
                Catchup {
                    now_ms,
                    ..Catchup::default()
                }
            };
            let records = stage(catchup);
            if records.is_empty() {
                return tx.commit().await.map_err(store);
            }
            write_in(&mut tx, Batch::of(&records)).await?;
            // Nobody else took a revision meanwhile: the lock is held.
            let (_, revision): (i64, i64) = sqlx::query_as(CLOCK_AND_REVISION)
                .fetch_one(&mut *tx)
                .await
                .map_err(store)?;
            tx.commit().await.map_err(store)?;
            self.seen.store(revision, Ordering::SeqCst);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use monsoon_audience::memory::conformance;
    use monsoon_engines::postgres::Postgres;

    use super::*;
    use crate::PgCatalog;

    /// The audience store's contract (crates/audience/src/memory.rs), on a real PostgreSQL:
    /// every call connects anew, as a restarted node would.
    #[tokio::test(flavor = "multi_thread")]
    async fn the_postgres_store_keeps_the_contract() {
        let pg = Postgres::start().unwrap();
        let url = pg.create_database("audience").unwrap();
        drop(PgCatalog::open(&url).await.unwrap());
        tokio::task::spawn_blocking(move || {
            let open = || Arc::new(PgAudienceStore::open(&url).unwrap()) as Arc<dyn AudienceStore>;
            conformance::run(&open);
            conformance::run_shared(&open);
        })
        .await
        .unwrap();
    }
}
