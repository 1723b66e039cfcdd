//! Relational storage for the catalog: the [`FilmRepository`] trait of `monsoon-catalog`
//! implemented over SQLite through sqlx, with embedded migrations.
//!
//! SQLite runs in WAL mode with one connection pool per process; the `ingest` CLI and a running
//! `serve` share the same file safely. PostgreSQL plugs in here behind the same trait.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use monsoon_catalog::{Error, Film, FilmMeta, FilmRepository, PublishedVersion, Result};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// The catalog in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteCatalog {
    pool: SqlitePool,
}

fn backend(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

impl SqliteCatalog {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let url = format!("sqlite://{}", path.display());
        let options = SqliteConnectOptions::from_str(&url)
            .map_err(backend)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| Error::Backend(format!("opening {}: {e}", path.display())))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| Error::Backend(format!("migrating {}: {e}", path.display())))?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn film_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Film> {
    let meta: FilmMeta = serde_json::from_str(row.get("meta_json")).map_err(backend)?;
    let current: PublishedVersion =
        serde_json::from_str(row.get("version_json")).map_err(backend)?;
    let parse_time = |col: &str| -> Result<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(row.get(col))
            .map(|t| t.with_timezone(&Utc))
            .map_err(backend)
    };
    Ok(Film {
        slug: row.get("slug"),
        meta,
        current,
        created_at: parse_time("created_at")?,
        updated_at: parse_time("updated_at")?,
    })
}

const SELECT_FILM: &str = "SELECT f.slug, f.meta_json, f.created_at, f.updated_at, v.version_json \
     FROM films f JOIN film_versions v ON v.slug = f.slug AND v.version = f.current_version";

#[async_trait]
impl FilmRepository for SqliteCatalog {
    async fn list(&self) -> Result<Vec<Film>> {
        let rows = sqlx::query(&format!("{SELECT_FILM} ORDER BY f.created_at DESC, f.slug"))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(film_from_row).collect()
    }

    async fn get(&self, slug: &str) -> Result<Option<Film>> {
        let row = sqlx::query(&format!("{SELECT_FILM} WHERE f.slug = ?"))
            .bind(slug)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(film_from_row).transpose()
    }

    async fn publish(
        &self,
        slug: &str,
        meta: &FilmMeta,
        version: &PublishedVersion,
    ) -> Result<Option<String>> {
        let now = Utc::now().to_rfc3339();
        let meta_json = serde_json::to_string(meta).map_err(backend)?;
        let version_json = serde_json::to_string(version).map_err(backend)?;
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let previous: Option<String> =
            sqlx::query_scalar("SELECT current_version FROM films WHERE slug = ?")
                .bind(slug)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        sqlx::query(
            "INSERT INTO film_versions (slug, version, published_at, version_json) VALUES (?, ?, ?, ?)",
        )
        .bind(slug)
        .bind(&version.version)
        .bind(version.published_at.to_rfc3339())
        .bind(&version_json)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        sqlx::query(
            "INSERT INTO films (slug, meta_json, current_version, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?4) \
             ON CONFLICT (slug) DO UPDATE SET meta_json = ?2, current_version = ?3, updated_at = ?4",
        )
        .bind(slug)
        .bind(&meta_json)
        .bind(&version.version)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if let Some(old) = &previous {
            sqlx::query("DELETE FROM film_versions WHERE slug = ? AND version = ?")
                .bind(slug)
                .bind(old)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(previous)
    }
}

mod audience;

pub use audience::SqliteAudienceStore;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use monsoon_catalog::repository::conformance;

    use super::*;

    /// The film repository's contract (crates/catalog/src/repository.rs), on SQLite: every
    /// `open` reopens the same file, as a restart would (migrations are idempotent).
    #[tokio::test]
    async fn the_sqlite_catalog_keeps_the_contract() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("c.db");
        conformance::run(&|| {
            let path = path.clone();
            Box::pin(async move {
                Arc::new(SqliteCatalog::open(&path).await.unwrap()) as Arc<dyn FilmRepository>
            })
        })
        .await;
    }
}
