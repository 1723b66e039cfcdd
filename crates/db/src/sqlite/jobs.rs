//! The ingest job queue on SQLite (`migrations/sqlite/0011_jobs.sql`, each job's log in
//! `0012_job_log.sql`, stages as data in `0015_job_stages.sql`), for one machine: the
//! worker inside `monsoon serve`, `monsoon worker`s on the same machine and the studio share
//! it. A claim runs in a `BEGIN IMMEDIATE` transaction, which takes SQLite's one write lock
//! before it reads (SQLite manual, "BEGIN TRANSACTION"), so two processes claiming at once
//! never read the same queued job; leases run on the database's clock (`julianday('now')`).
//! The rules are the PostgreSQL queue's (`crates/db/src/postgres/jobs.rs`), held to the same
//! contract (`crates/catalog/src/jobs/conformance.rs`).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use monsoon_catalog::jobs::{JobLogLine, JobProgress, check_lease, limits};
use monsoon_catalog::{Error, Job, JobQueue, JobState, NewJob, Result, Stage};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqliteRow};

use crate::{Stored, backend};

/// The ingest jobs in a SQLite database (the catalog's: `SqliteCatalog::open` migrated it).
#[derive(Debug, Clone)]
pub struct SqliteJobs {
    pool: SqlitePool,
}

impl SqliteJobs {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

/// The database's clock, ms since the Unix epoch.
const NOW_MS: &str = "CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)";

const COLUMNS: &str = "id, slug, master, film_toml, options, duration_s, state, attempts, \
     max_attempts, lease_owner, lease_expires_ms, percent, speed, message, stage, created_ms, \
     updated_ms, started_ms, finished_ms";

fn time(ms: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    ms.map(|ms| {
        DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| Error::Backend(format!("job time {ms} ms is out of range")))
    })
    .transpose()
}

fn job_from_row(row: &SqliteRow) -> Result<Job> {
    let required = |name: &str| -> Result<DateTime<Utc>> {
        time(row.try_get(name).map_err(backend)?)?
            .ok_or_else(|| Error::Backend(format!("job column {name} is null")))
    };
    let count = |name: &str| -> Result<u32> {
        let n: i64 = row.try_get(name).map_err(backend)?;
        u32::try_from(n).map_err(backend)
    };
    let options: String = row.try_get("options").map_err(backend)?;
    Ok(Job {
        id: row.try_get("id").map_err(backend)?,
        slug: row.try_get("slug").map_err(backend)?,
        master: row.try_get("master").map_err(backend)?,
        film_toml: row.try_get("film_toml").map_err(backend)?,
        options: serde_json::from_str(&options).map_err(backend)?,
        duration_s: row.try_get("duration_s").map_err(backend)?,
        state: JobState::parse(row.try_get("state").map_err(backend)?)?,
        attempts: count("attempts")?,
        max_attempts: count("max_attempts")?,
        lease_owner: row.try_get("lease_owner").map_err(backend)?,
        lease_expires_at: time(row.try_get("lease_expires_ms").map_err(backend)?)?,
        percent: row.try_get("percent").map_err(backend)?,
        speed: row.try_get("speed").map_err(backend)?,
        message: row.try_get("message").map_err(backend)?,
        stage: Stage::from_json(row.try_get("stage").map_err(backend)?),
        created_at: required("created_ms")?,
        updated_at: required("updated_ms")?,
        started_at: time(row.try_get("started_ms").map_err(backend)?)?,
        finished_at: time(row.try_get("finished_ms").map_err(backend)?)?,
    })
}

/// Appends `stage` to job `id`'s log (in the caller's transaction, which changed the job)
/// and drops its lines past the newest `limits::LOG_LINES`.
async fn append(conn: &mut SqliteConnection, id: i64, stage: &Stored) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO ingest_job_log (job_id, at_ms, line, stage) VALUES (?1, {NOW_MS}, ?2, ?3)"
    ))
    .bind(id)
    .bind(&stage.message)
    .bind(&stage.json)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    sqlx::query(
        "DELETE FROM ingest_job_log WHERE job_id = ?1 AND id <= (SELECT id FROM ingest_job_log \
         WHERE job_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    )
    .bind(id)
    .bind(i64::try_from(limits::LOG_LINES).unwrap_or(i64::MAX))
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// A lease as whole milliseconds.
fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX).max(1)
}

#[async_trait]
impl JobQueue for SqliteJobs {
    async fn submit(&self, job: &NewJob) -> Result<Job> {
        job.check()?;
        let queued = Stored::new(&Stage::Queued);
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let row = sqlx::query(&format!(
            "INSERT INTO ingest_jobs (slug, master, film_toml, options, duration_s, state, \
             max_attempts, message, stage, created_ms, updated_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?7, ?8, {NOW_MS}, {NOW_MS}) \
             RETURNING {COLUMNS}"
        ))
        .bind(&job.slug)
        .bind(&job.master)
        .bind(&job.film_toml)
        .bind(job.options.to_string())
        .bind(job.duration_s)
        .bind(i64::from(job.max_attempts))
        .bind(&queued.message)
        .bind(&queued.json)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        let job = job_from_row(&row)?;
        append(&mut tx, job.id, &queued).await?;
        tx.commit().await.map_err(backend)?;
        Ok(job)
    }

    async fn claim(&self, worker: &str, lease: Duration) -> Result<Option<Job>> {
        check_lease(worker, lease)?;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        // Jobs whose lease expired on their last attempt fail first, with the reason.
        let exhausted = sqlx::query(&format!(
            "SELECT id, lease_owner, attempts FROM ingest_jobs \
             WHERE state = 'running' AND lease_expires_ms < {NOW_MS} \
             AND attempts >= max_attempts ORDER BY id"
        ))
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        for row in exhausted {
            let id: i64 = row.get("id");
            let owner: String = row.get("lease_owner");
            let attempts: i64 = row.get("attempts");
            let lost = Stored::new(&Stage::LeaseLost {
                worker: owner,
                attempts: u32::try_from(attempts).unwrap_or(0),
            });
            sqlx::query(&format!(
                "UPDATE ingest_jobs SET state = 'failed', message = ?2, stage = ?3, \
                 lease_owner = NULL, lease_expires_ms = NULL, updated_ms = {NOW_MS}, \
                 finished_ms = {NOW_MS} WHERE id = ?1"
            ))
            .bind(id)
            .bind(&lost.message)
            .bind(&lost.json)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            append(&mut tx, id, &lost).await?;
        }
        let candidate = sqlx::query(&format!(
            "SELECT id, state, lease_owner, attempts, max_attempts FROM ingest_jobs \
             WHERE state = 'queued' OR (state = 'running' AND lease_expires_ms < {NOW_MS} \
             AND attempts < max_attempts) ORDER BY id LIMIT 1"
        ))
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(candidate) = candidate else {
            tx.commit().await.map_err(backend)?;
            return Ok(None);
        };
        let id: i64 = candidate.get("id");
        let state: String = candidate.get("state");
        let owner: Option<String> = candidate.get("lease_owner");
        let attempt = u32::try_from(candidate.get::<i64, _>("attempts")).unwrap_or(0) + 1;
        let max_attempts = u32::try_from(candidate.get::<i64, _>("max_attempts")).unwrap_or(0);
        let previous = owner.filter(|_| state == "running");
        let claimed = Stored::new(&Stage::claimed(
            worker,
            previous.as_deref(),
            attempt,
            max_attempts,
        ));
        let row = sqlx::query(&format!(
            "UPDATE ingest_jobs SET state = 'running', attempts = attempts + 1, \
             lease_owner = ?2, lease_expires_ms = {NOW_MS} + ?3, percent = 0, speed = 0, \
             message = ?4, stage = ?5, updated_ms = {NOW_MS}, \
             started_ms = coalesce(started_ms, {NOW_MS}) WHERE id = ?1 RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(worker)
        .bind(lease_ms(lease))
        .bind(&claimed.message)
        .bind(&claimed.json)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        append(&mut tx, id, &claimed).await?;
        tx.commit().await.map_err(backend)?;
        job_from_row(&row).map(Some)
    }

    async fn renew(
        &self,
        id: i64,
        worker: &str,
        lease: Duration,
        progress: &JobProgress,
    ) -> Result<bool> {
        check_lease(worker, lease)?;
        let progress = progress.bounded();
        let stage = Stored::new(&progress.stage);
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let before: Option<Option<String>> = sqlx::query_scalar(
            "SELECT stage FROM ingest_jobs WHERE id = ?1 AND state = 'running' \
             AND lease_owner = ?2",
        )
        .bind(id)
        .bind(worker)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(before) = before else {
            tx.commit().await.map_err(backend)?;
            return Ok(false);
        };
        sqlx::query(&format!(
            "UPDATE ingest_jobs SET lease_expires_ms = {NOW_MS} + ?2, percent = ?3, speed = ?4, \
             message = ?5, stage = ?6, updated_ms = {NOW_MS} WHERE id = ?1"
        ))
        .bind(id)
        .bind(lease_ms(lease))
        .bind(progress.percent)
        .bind(progress.speed)
        .bind(&stage.message)
        .bind(&stage.json)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        // A new stage is a line; a percent tick is not.
        if before.as_deref() != Some(stage.json.as_str()) {
            append(&mut tx, id, &stage).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn finish(&self, id: i64, worker: &str, state: JobState, stage: &Stage) -> Result<bool> {
        if !matches!(state, JobState::Done | JobState::Failed) {
            return Err(Error::Backend(format!(
                "a job is finished as done or failed, not {}",
                state.as_str()
            )));
        }
        let stage = Stored::new(stage);
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let finished = sqlx::query(&format!(
            "UPDATE ingest_jobs SET state = ?3, message = ?4, stage = ?5, lease_owner = NULL, \
             lease_expires_ms = NULL, updated_ms = {NOW_MS}, finished_ms = {NOW_MS}, \
             percent = CASE WHEN ?3 = 'done' THEN 100 ELSE percent END \
             WHERE id = ?1 AND state = 'running' AND lease_owner = ?2"
        ))
        .bind(id)
        .bind(worker)
        .bind(state.as_str())
        .bind(&stage.message)
        .bind(&stage.json)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let finished = finished.rows_affected() == 1;
        if finished {
            append(&mut tx, id, &stage).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(finished)
    }

    async fn release(&self, id: i64, worker: &str, stage: &Stage) -> Result<bool> {
        let stage = Stored::new(stage);
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let released = sqlx::query(&format!(
            "UPDATE ingest_jobs SET state = 'queued', attempts = max(attempts - 1, 0), \
             lease_owner = NULL, lease_expires_ms = NULL, message = ?3, stage = ?4, \
             updated_ms = {NOW_MS} WHERE id = ?1 AND state = 'running' AND lease_owner = ?2"
        ))
        .bind(id)
        .bind(worker)
        .bind(&stage.message)
        .bind(&stage.json)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let released = released.rows_affected() == 1;
        if released {
            append(&mut tx, id, &stage).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(released)
    }

    async fn cancel(&self, id: i64, by: &str) -> Result<bool> {
        let stage = Stored::new(&Stage::Cancelled { by: by.to_owned() });
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let cancelled = sqlx::query(&format!(
            "UPDATE ingest_jobs SET state = 'cancelled', message = ?2, stage = ?3, \
             lease_owner = NULL, lease_expires_ms = NULL, updated_ms = {NOW_MS}, \
             finished_ms = {NOW_MS} WHERE id = ?1 AND state IN ('queued', 'running')"
        ))
        .bind(id)
        .bind(&stage.message)
        .bind(&stage.json)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let cancelled = cancelled.rows_affected() == 1;
        if cancelled {
            append(&mut tx, id, &stage).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(cancelled)
    }

    async fn list(&self, limit: u32) -> Result<Vec<Job>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM ingest_jobs ORDER BY id DESC LIMIT ?1"
        ))
        .bind(i64::from(limit.min(limits::LIST)))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(job_from_row).collect()
    }

    async fn get(&self, id: i64) -> Result<Option<Job>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM ingest_jobs WHERE id = ?1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn log(&self, id: i64) -> Result<Vec<JobLogLine>> {
        let rows = sqlx::query(
            "SELECT at_ms, line, stage FROM ingest_job_log WHERE job_id = ?1 \
             ORDER BY id DESC LIMIT ?2",
        )
        .bind(id)
        .bind(i64::try_from(limits::LOG_LINES).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let mut lines = rows
            .iter()
            .map(|row| {
                Ok(JobLogLine {
                    at: time(Some(row.try_get("at_ms").map_err(backend)?))?
                        .ok_or_else(|| Error::Backend("job log time is null".into()))?,
                    line: row.try_get("line").map_err(backend)?,
                    stage: Stage::from_json(row.try_get("stage").map_err(backend)?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        lines.reverse();
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use monsoon_catalog::jobs::conformance;

    use super::*;
    use crate::SqliteCatalog;

    /// The job queue's contract (crates/catalog/src/jobs/conformance.rs) on a real SQLite
    /// file, leases on its clock: every `open` opens the file anew, as a restarted worker
    /// would, and short leases are waited out with a real sleep.
    #[tokio::test]
    async fn the_sqlite_job_queue_keeps_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        conformance::run(
            &|| {
                let path = path.clone();
                Box::pin(async move {
                    let catalog = SqliteCatalog::open(&path).await.unwrap();
                    Arc::new(SqliteJobs::new(catalog.pool().clone())) as Arc<dyn JobQueue>
                })
            },
            &|d| Box::pin(tokio::time::sleep(d)),
        )
        .await;
    }
}
