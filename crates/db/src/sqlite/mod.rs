//! The catalog and the audience in one SQLite file: the default, with no configuration.
//!
//! SQLite runs in WAL mode with one connection pool per process; the `ingest` CLI and a running
//! `serve` share the same file safely.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use monsoon_catalog::{Error, Film, FilmDraft, FilmMeta, FilmRepository, PublishedVersion, Result};

use crate::{SELECT_DRAFT, SELECT_FILM, backend};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// The catalog in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteCatalog {
    pool: SqlitePool,
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
        sqlx::migrate!("./migrations/sqlite")
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
    crate::film(
        row.get("slug"),
        row.get("meta_json"),
        row.get("version_json"),
        row.get("created_at"),
        row.get("updated_at"),
    )
}

fn draft_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<FilmDraft> {
    crate::draft(
        row.get("slug"),
        row.get("meta_json"),
        row.get("created_at"),
        row.get("updated_at"),
    )
}

#[async_trait]
impl FilmRepository for SqliteCatalog {
    async fn list(&self) -> Result<Vec<Film>> {
        let rows = sqlx::query(&format!("{SELECT_FILM} ORDER BY f.created_at DESC, f.slug"))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(film_from_row).collect()
    }

    async fn retired(&self) -> Result<Vec<monsoon_catalog::RetiredVersion>> {
        let rows: Vec<(String, String, bool)> = sqlx::query_as(crate::SELECT_VERSIONS)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        crate::retired(rows)
    }

    async fn forget(&self, slug: &str, version: &str) -> Result<bool> {
        let done = sqlx::query(crate::FORGET_VERSION)
            .bind(slug)
            .bind(version)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn get(&self, slug: &str) -> Result<Option<Film>> {
        let row = sqlx::query(&format!("{SELECT_FILM} WHERE f.slug = ?"))
            .bind(slug)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(film_from_row).transpose()
    }

    async fn drafts(&self) -> Result<Vec<FilmDraft>> {
        let rows = sqlx::query(&format!("{SELECT_DRAFT} ORDER BY created_at DESC, slug"))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(draft_from_row).collect()
    }

    async fn draft(&self, slug: &str) -> Result<Option<FilmDraft>> {
        let row = sqlx::query(&format!("{SELECT_DRAFT} WHERE slug = ?1"))
            .bind(slug)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(draft_from_row).transpose()
    }

    async fn create_draft(&self, slug: &str, meta: &FilmMeta) -> Result<FilmDraft> {
        let now = Utc::now();
        let meta_json = serde_json::to_string(meta).map_err(backend)?;
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // One statement: no film has the slug, and no draft (the primary key).
        let created = sqlx::query(
            "INSERT INTO film_drafts (slug, meta_json, created_at, updated_at) \
             SELECT ?1, ?2, ?3, ?3 WHERE NOT EXISTS (SELECT 1 FROM films WHERE slug = ?1) \
             ON CONFLICT (slug) DO NOTHING",
        )
        .bind(slug)
        .bind(&meta_json)
        .bind(now.to_rfc3339())
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        if created == 0 {
            return Err(Error::Taken(slug.to_owned()));
        }
        tx.commit().await.map_err(backend)?;
        // Read back, so the times are the stored ones (RFC 3339 keeps nanoseconds).
        self.draft(slug)
            .await?
            .ok_or_else(|| Error::Backend(format!("the draft `{slug}` vanished")))
    }

    async fn delete_draft(&self, slug: &str) -> Result<bool> {
        // A published film has no draft row (its first publish deleted it in its commit).
        let deleted = sqlx::query("DELETE FROM film_drafts WHERE slug = ?1")
            .bind(slug)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn update_meta(&self, slug: &str, meta: &FilmMeta) -> Result<bool> {
        let now = Utc::now().to_rfc3339();
        let meta_json = serde_json::to_string(meta).map_err(backend)?;
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let mut updated = 0;
        for table in ["films", "film_drafts"] {
            updated += sqlx::query(&format!(
                "UPDATE {table} SET meta_json = ?1, updated_at = ?2 WHERE slug = ?3"
            ))
            .bind(&meta_json)
            .bind(&now)
            .bind(slug)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        }
        tx.commit().await.map_err(backend)?;
        Ok(updated > 0)
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
        // A draft becomes the film, created when it was.
        let draft_created: Option<String> =
            sqlx::query_scalar("DELETE FROM film_drafts WHERE slug = ? RETURNING created_at")
                .bind(slug)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        sqlx::query(
            "INSERT INTO films (slug, meta_json, current_version, created_at, updated_at) \
             VALUES (?1, ?2, ?3, coalesce(?5, ?4), ?4) \
             ON CONFLICT (slug) DO UPDATE SET meta_json = ?2, current_version = ?3, updated_at = ?4",
        )
        .bind(slug)
        .bind(&meta_json)
        .bind(&version.version)
        .bind(&now)
        .bind(draft_created)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        // The replaced version stays recorded: it is served for a grace period
        // (`FilmRepository::retired`), then forgotten.
        tx.commit().await.map_err(backend)?;
        Ok(previous)
    }
}

mod audience;
mod jobs;
mod operators;

pub use audience::SqliteAudienceStore;
pub use jobs::SqliteJobs;

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
