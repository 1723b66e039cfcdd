//! Operators, their sessions and the audit log in the SQLite file
//! (`migrations/sqlite/0008_operators.sql`), times as ms on SQLite's clock (the process's: one
//! node).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use monsoon_catalog::operators::{
    Account, AuditEntry, AuditLog, NewAuditEntry, Operators, Session, TOKEN_ACTOR, check_hash,
    check_list, check_session, last_enabled, validate_name,
};
use monsoon_catalog::{Error, Result};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteCatalog;
use crate::{backend, session_refused};

/// Now, ms since the Unix epoch, on the database's clock.
const NOW_MS: &str = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";

fn time(ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| Error::Backend(format!("time {ms} ms")))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn account(row: &SqliteRow) -> Result<Account> {
    Ok(Account {
        name: row.try_get("name").map_err(backend)?,
        password_hash: row.try_get("password_hash").map_err(backend)?,
        created_at: time(row.try_get("created_at").map_err(backend)?)?,
        updated_at: time(row.try_get("updated_at").map_err(backend)?)?,
        disabled_at: row
            .try_get::<Option<i64>, _>("disabled_at")
            .map_err(backend)?
            .map(time)
            .transpose()?,
        last_sign_in_at: row
            .try_get::<Option<i64>, _>("last_sign_in_at")
            .map_err(backend)?
            .map(time)
            .transpose()?,
    })
}

fn session(row: &SqliteRow) -> Result<Session> {
    Ok(Session {
        id: row.try_get("id").map_err(backend)?,
        operator: row.try_get("operator").map_err(backend)?,
        created_at: time(row.try_get("created_at").map_err(backend)?)?,
        last_seen_at: time(row.try_get("last_seen_at").map_err(backend)?)?,
        expires_at: time(row.try_get("expires_at").map_err(backend)?)?,
    })
}

fn entry(row: &SqliteRow) -> Result<AuditEntry> {
    let detail: String = row.try_get("detail").map_err(backend)?;
    Ok(AuditEntry {
        id: row.try_get("id").map_err(backend)?,
        at: time(row.try_get("at").map_err(backend)?)?,
        actor: row.try_get("actor").map_err(backend)?,
        action: row.try_get("action").map_err(backend)?,
        subject: row.try_get("subject").map_err(backend)?,
        detail: serde_json::from_str(&detail).map_err(backend)?,
    })
}

/// Ends every session of `name` and commits `tx`, in which its password or its state changed.
async fn end_sessions(mut tx: sqlx::Transaction<'_, sqlx::Sqlite>, name: &str) -> Result<()> {
    sqlx::query("DELETE FROM operator_sessions WHERE operator = ?")
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    tx.commit().await.map_err(backend)
}

#[async_trait]
impl Operators for SqliteCatalog {
    async fn create(&self, name: &str, password_hash: &str) -> Result<Account> {
        validate_name(name)?;
        check_hash(password_hash)?;
        let row = sqlx::query(&format!(
            "INSERT INTO operators (name, password_hash, created_at, updated_at) \
             VALUES (?1, ?2, {NOW_MS}, {NOW_MS}) ON CONFLICT (name) DO NOTHING RETURNING *"
        ))
        .bind(name)
        .bind(password_hash)
        .fetch_optional(self.pool())
        .await
        .map_err(backend)?;
        match row {
            Some(row) => account(&row),
            None => Err(Error::Conflict(format!(
                "there is already an operator named `{name}`"
            ))),
        }
    }

    async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool> {
        check_hash(password_hash)?;
        let mut tx = self.pool().begin().await.map_err(backend)?;
        let changed = sqlx::query(&format!(
            "UPDATE operators SET password_hash = ?2, updated_at = {NOW_MS} WHERE name = ?1"
        ))
        .bind(name)
        .bind(password_hash)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        end_sessions(tx, name).await?;
        Ok(changed == 1)
    }

    async fn disable(&self, name: &str) -> Result<bool> {
        let mut tx = self.pool().begin().await.map_err(backend)?;
        let changed = sqlx::query(&format!(
            "UPDATE operators SET disabled_at = {NOW_MS} WHERE name = ? AND disabled_at IS NULL"
        ))
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        end_sessions(tx, name).await?;
        Ok(changed == 1)
    }

    async fn disable_keeping_one(&self, name: &str) -> Result<bool> {
        let mut tx = self.pool().begin().await.map_err(backend)?;
        // One statement decides and changes: SQLite has one writer at a time, and an UPDATE
        // holds the write lock from its first step.
        let changed = sqlx::query(&format!(
            "UPDATE operators SET disabled_at = {NOW_MS} WHERE name = ?1 AND disabled_at IS NULL \
             AND EXISTS (SELECT 1 FROM operators WHERE disabled_at IS NULL AND name <> ?1)"
        ))
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        if changed == 0 {
            // Why not, under the same lock: no such enabled account, or the last one.
            let enabled: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM operators WHERE name = ? AND disabled_at IS NULL)",
            )
            .bind(name)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
            return if enabled {
                Err(last_enabled(name))
            } else {
                Ok(false)
            };
        }
        end_sessions(tx, name).await?;
        Ok(true)
    }

    async fn enable(&self, name: &str) -> Result<bool> {
        let changed = sqlx::query(
            "UPDATE operators SET disabled_at = NULL WHERE name = ? AND disabled_at IS NOT NULL",
        )
        .bind(name)
        .execute(self.pool())
        .await
        .map_err(backend)?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn find(&self, name: &str) -> Result<Option<Account>> {
        let row = sqlx::query("SELECT * FROM operators WHERE name = ?")
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(backend)?;
        row.as_ref().map(account).transpose()
    }

    async fn list(&self) -> Result<Vec<Account>> {
        let rows = sqlx::query("SELECT * FROM operators ORDER BY name")
            .fetch_all(self.pool())
            .await
            .map_err(backend)?;
        rows.iter().map(account).collect()
    }

    async fn start_session(&self, id: &str, operator: &str, life: Duration) -> Result<Session> {
        check_session(id, life)?;
        let mut tx = self.pool().begin().await.map_err(backend)?;
        sqlx::query(&format!(
            "DELETE FROM operator_sessions WHERE expires_at <= {NOW_MS}"
        ))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        // Only an enabled account, or the token, gets a session: an account disabled between
        // its password check and here does not.
        let row = sqlx::query(&format!(
            "INSERT INTO operator_sessions (id, operator, created_at, last_seen_at, expires_at) \
             SELECT ?1, ?2, {NOW_MS}, {NOW_MS}, {NOW_MS} + ?3 \
             WHERE ?2 = ?4 OR EXISTS \
                 (SELECT 1 FROM operators WHERE name = ?2 AND disabled_at IS NULL) \
             ON CONFLICT (id) DO NOTHING RETURNING *"
        ))
        .bind(id)
        .bind(operator)
        .bind(ms(life))
        .bind(TOKEN_ACTOR)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(row) = row else {
            return Err(session_refused(operator));
        };
        let session = session(&row)?;
        // The account's last sign-in is this session's start, to the same instant.
        sqlx::query(
            "UPDATE operators SET last_sign_in_at = \
             (SELECT created_at FROM operator_sessions WHERE id = ?1) WHERE name = ?2",
        )
        .bind(id)
        .bind(operator)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(session)
    }

    async fn session(&self, id: &str, idle: Duration) -> Result<Option<Session>> {
        let row = sqlx::query(&format!(
            "UPDATE operator_sessions SET last_seen_at = {NOW_MS} \
             WHERE id = ?1 AND expires_at > {NOW_MS} AND last_seen_at + ?2 > {NOW_MS} \
             RETURNING *"
        ))
        .bind(id)
        .bind(ms(idle))
        .fetch_optional(self.pool())
        .await
        .map_err(backend)?;
        row.as_ref().map(session).transpose()
    }

    async fn end_session(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM operator_sessions WHERE id = ?")
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl AuditLog for SqliteCatalog {
    async fn append(&self, new: &NewAuditEntry) -> Result<AuditEntry> {
        let bounded = new.bounded();
        let row = sqlx::query(&format!(
            "INSERT INTO audit_log (at, actor, action, subject, detail) \
             VALUES ({NOW_MS}, ?, ?, ?, ?) RETURNING *"
        ))
        .bind(&bounded.actor)
        .bind(bounded.action)
        .bind(&bounded.subject)
        .bind(&bounded.detail)
        .fetch_one(self.pool())
        .await
        .map_err(backend)?;
        entry(&row)
    }

    async fn list(&self, limit: u32, before: Option<i64>) -> Result<Vec<AuditEntry>> {
        check_list(limit)?;
        let rows = sqlx::query("SELECT * FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT ?")
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(backend)?;
        rows.iter().map(entry).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use monsoon_catalog::operators::conformance;

    use super::*;

    /// The contract of operators and the audit log (crates/catalog/src/operators/), on
    /// SQLite: every `open` reopens the same file, and short sessions are waited out.
    #[tokio::test]
    async fn sqlite_operators_and_audit_keep_the_contract() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("c.db");
        conformance::run(
            &|| {
                let path = path.clone();
                Box::pin(async move {
                    let db = Arc::new(SqliteCatalog::open(&path).await.unwrap());
                    (
                        Arc::clone(&db) as Arc<dyn Operators>,
                        db as Arc<dyn AuditLog>,
                    )
                })
            },
            &|d| Box::pin(tokio::time::sleep(d)),
        )
        .await;
    }
}
