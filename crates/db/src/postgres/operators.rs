//! Operators, their sessions and the audit log on PostgreSQL
//! (`migrations/postgres/0006_operators.sql`): every node of a cluster signs in against the
//! same accounts and accepts the sessions any node started, on the database's clock.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use monsoon_catalog::operators::{
    Account, AuditEntry, AuditLog, NewAuditEntry, Operators, Session, TOKEN_ACTOR, check_hash,
    check_list, check_session, last_enabled, validate_name,
};
use monsoon_catalog::{Error, Result};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PgCatalog;
use crate::{backend, session_refused};

/// A column as ms since the Unix epoch.
fn ms_of(column: &str) -> String {
    format!("(extract(epoch FROM {column}) * 1000)::bigint AS {column}")
}

fn time(ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| Error::Backend(format!("time {ms} ms")))
}

fn interval_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn account_columns() -> String {
    format!(
        "name, password_hash, {}, {}, {}, {}",
        ms_of("created_at"),
        ms_of("updated_at"),
        ms_of("disabled_at"),
        ms_of("last_sign_in_at")
    )
}

fn session_columns() -> String {
    format!(
        "id, operator, {}, {}, {}",
        ms_of("created_at"),
        ms_of("last_seen_at"),
        ms_of("expires_at")
    )
}

fn entry_columns() -> String {
    format!(
        "id, {}, actor, action, subject, detail::text AS detail",
        ms_of("at")
    )
}

fn account(row: &PgRow) -> Result<Account> {
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

fn session(row: &PgRow) -> Result<Session> {
    Ok(Session {
        id: row.try_get("id").map_err(backend)?,
        operator: row.try_get("operator").map_err(backend)?,
        created_at: time(row.try_get("created_at").map_err(backend)?)?,
        last_seen_at: time(row.try_get("last_seen_at").map_err(backend)?)?,
        expires_at: time(row.try_get("expires_at").map_err(backend)?)?,
    })
}

fn entry(row: &PgRow) -> Result<AuditEntry> {
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
async fn end_sessions(mut tx: sqlx::Transaction<'_, sqlx::Postgres>, name: &str) -> Result<()> {
    sqlx::query("DELETE FROM operator_sessions WHERE operator = $1")
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    tx.commit().await.map_err(backend)
}

#[async_trait]
impl Operators for PgCatalog {
    async fn create(&self, name: &str, password_hash: &str) -> Result<Account> {
        validate_name(name)?;
        check_hash(password_hash)?;
        let row = sqlx::query(&format!(
            "INSERT INTO operators (name, password_hash) VALUES ($1, $2) \
             ON CONFLICT (name) DO NOTHING RETURNING {}",
            account_columns()
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
        let changed = sqlx::query(
            "UPDATE operators SET password_hash = $2, updated_at = now() WHERE name = $1",
        )
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
        let changed = sqlx::query(
            "UPDATE operators SET disabled_at = now() WHERE name = $1 AND disabled_at IS NULL",
        )
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
        // Every enabled account locked: a concurrent call waits here, and when it goes on,
        // rows this one disabled no longer match (READ COMMITTED checks a locked row again
        // once its holder commits), so of two operators disabling each other one is refused.
        let enabled: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM operators WHERE disabled_at IS NULL ORDER BY name FOR UPDATE",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        if !enabled.iter().any(|n| n == name) {
            return Ok(false);
        }
        if enabled.iter().all(|n| n == name) {
            return Err(last_enabled(name));
        }
        sqlx::query("UPDATE operators SET disabled_at = now() WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        end_sessions(tx, name).await?;
        Ok(true)
    }

    async fn enable(&self, name: &str) -> Result<bool> {
        let changed = sqlx::query(
            "UPDATE operators SET disabled_at = NULL WHERE name = $1 AND disabled_at IS NOT NULL",
        )
        .bind(name)
        .execute(self.pool())
        .await
        .map_err(backend)?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn find(&self, name: &str) -> Result<Option<Account>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM operators WHERE name = $1",
            account_columns()
        ))
        .bind(name)
        .fetch_optional(self.pool())
        .await
        .map_err(backend)?;
        row.as_ref().map(account).transpose()
    }

    async fn list(&self) -> Result<Vec<Account>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM operators ORDER BY name",
            account_columns()
        ))
        .fetch_all(self.pool())
        .await
        .map_err(backend)?;
        rows.iter().map(account).collect()
    }

    async fn start_session(&self, id: &str, operator: &str, life: Duration) -> Result<Session> {
        check_session(id, life)?;
        let mut tx = self.pool().begin().await.map_err(backend)?;
        sqlx::query("DELETE FROM operator_sessions WHERE expires_at <= now()")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        // Only an enabled account, or the token, gets a session; `FOR SHARE` holds off a
        // `disable` of the account until this transaction is over.
        let row = sqlx::query(&format!(
            "INSERT INTO operator_sessions (id, operator, expires_at) \
             SELECT $1, $2, now() + $3 * interval '1 millisecond' \
             WHERE $2 = $4 OR EXISTS \
                 (SELECT 1 FROM operators WHERE name = $2 AND disabled_at IS NULL FOR SHARE) \
             ON CONFLICT (id) DO NOTHING RETURNING {}",
            session_columns()
        ))
        .bind(id)
        .bind(operator)
        .bind(interval_ms(life))
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
             (SELECT created_at FROM operator_sessions WHERE id = $1) WHERE name = $2",
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
            "UPDATE operator_sessions SET last_seen_at = now() \
             WHERE id = $1 AND expires_at > now() \
               AND last_seen_at + $2 * interval '1 millisecond' > now() \
             RETURNING {}",
            session_columns()
        ))
        .bind(id)
        .bind(interval_ms(idle))
        .fetch_optional(self.pool())
        .await
        .map_err(backend)?;
        row.as_ref().map(session).transpose()
    }

    async fn end_session(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM operator_sessions WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl AuditLog for PgCatalog {
    async fn append(&self, new: &NewAuditEntry) -> Result<AuditEntry> {
        let bounded = new.bounded();
        let row = sqlx::query(&format!(
            "INSERT INTO audit_log (actor, action, subject, detail) \
             VALUES ($1, $2, $3, $4::jsonb) RETURNING {}",
            entry_columns()
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
        let rows = sqlx::query(&format!(
            "SELECT {} FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2",
            entry_columns()
        ))
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
    use monsoon_engines::postgres::Postgres;

    use super::*;

    /// The contract of operators and the audit log (crates/catalog/src/operators/) on a real
    /// PostgreSQL: every `open` connects anew, as a restarted node would, and short sessions
    /// are waited out on the database's clock with a real sleep.
    #[tokio::test]
    async fn postgres_operators_and_audit_keep_the_contract() {
        let pg = Postgres::start().unwrap();
        let url = pg.create_database("operators").unwrap();
        conformance::run(
            &|| {
                let url = url.clone();
                Box::pin(async move {
                    let db = Arc::new(PgCatalog::open(&url).await.unwrap());
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
