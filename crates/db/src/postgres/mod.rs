//! The catalog and the audience on PostgreSQL, for several Monsoon nodes sharing one
//! database. Selected by `[storage] database = "postgres://…"`.
//!
//! Publishing holds a transaction-scoped advisory lock on the film (`pg_advisory_xact_lock`),
//! so two nodes or workers publishing the same film are serialised by the database, and
//! announces the film on the `monsoon_catalog` channel (`NOTIFY`, delivered at commit) for
//! the nodes that keep a live copy of the catalog.

use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use monsoon_catalog::{Error, Film, FilmDraft, FilmMeta, FilmRepository, PublishedVersion, Result};
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::watch;

use crate::{SELECT_DRAFT, SELECT_FILM, backend};

mod audience;
mod jobs;
mod operators;

pub use audience::PgAudienceStore;
pub use jobs::PgJobs;

/// The channel a publish is announced on, with the film's slug as payload.
pub const CATALOG_CHANNEL: &str = "monsoon_catalog";

/// The catalog in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgCatalog {
    pool: PgPool,
    /// The change signal, made (and its listener started) on the first `changes()`.
    changes: Arc<OnceLock<watch::Receiver<u64>>>,
}

/// `url` as connect options, with the password (if any) kept out of error messages.
pub(crate) fn options(
    url: &str,
    application: &str,
) -> std::result::Result<PgConnectOptions, String> {
    PgConnectOptions::from_str(url)
        .map(|o| o.application_name(application))
        .map_err(|e| format!("{}: {e}", redacted(url)))
}

/// `url` without its password (in the user part or a `password=` parameter), for messages
/// and logs.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (rest, query) = rest
        .split_once('?')
        .map_or((rest, None), |(r, q)| (r, Some(q)));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{user}:…@{host}")
        }
        _ => authority.to_owned(),
    };
    let query = match query {
        Some(q) if q.contains("password=") => "?…".to_owned(),
        Some(q) => format!("?{q}"),
        None => String::new(),
    };
    format!("{scheme}://{authority}{path}{query}")
}

impl PgCatalog {
    /// Connects to the database at `url` and applies pending migrations (under an advisory
    /// lock: nodes starting together migrate once).
    pub async fn open(url: &str) -> Result<Self> {
        let options = options(url, "monsoon-catalog").map_err(Error::Backend)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|e| Error::Backend(format!("connecting to {}: {e}", redacted(url))))?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| Error::Backend(format!("migrating {}: {e}", redacted(url))))?;
        Ok(Self {
            pool,
            changes: Arc::default(),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The shared secret `name`: the one stored, or `make()`'s, stored now. Nodes that start
    /// together agree: the first insert wins and every node reads it back.
    pub async fn shared_secret(&self, name: &str, make: impl FnOnce() -> String) -> Result<String> {
        sqlx::query(
            "INSERT INTO monsoon_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(make())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        sqlx::query_scalar("SELECT value FROM monsoon_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)
    }
}

fn film_from_row(row: &sqlx::postgres::PgRow) -> Result<Film> {
    crate::film(
        row.get("slug"),
        row.get("meta_json"),
        row.get("version_json"),
        row.get("created_at"),
        row.get("updated_at"),
    )
}

fn draft_from_row(row: &sqlx::postgres::PgRow) -> Result<FilmDraft> {
    crate::draft(
        row.get("slug"),
        row.get("meta_json"),
        row.get("created_at"),
        row.get("updated_at"),
    )
}

#[async_trait]
impl FilmRepository for PgCatalog {
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
        let row = sqlx::query(&format!("{SELECT_FILM} WHERE f.slug = $1"))
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
        let row = sqlx::query(&format!("{SELECT_DRAFT} WHERE slug = $1"))
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
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(slug)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        // One statement: no film has the slug, and no draft (the primary key).
        let created = sqlx::query(
            "INSERT INTO film_drafts (slug, meta_json, created_at, updated_at) \
             SELECT $1, $2, $3, $3 WHERE NOT EXISTS (SELECT 1 FROM films WHERE slug = $1) \
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
        let deleted = sqlx::query("DELETE FROM film_drafts WHERE slug = $1")
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
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(slug)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let mut updated = 0;
        for table in ["films", "film_drafts"] {
            updated += sqlx::query(&format!(
                "UPDATE {table} SET meta_json = $1, updated_at = $2 WHERE slug = $3"
            ))
            .bind(&meta_json)
            .bind(&now)
            .bind(slug)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CATALOG_CHANNEL)
            .bind(slug)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
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
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(slug)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let previous: Option<String> =
            sqlx::query_scalar("SELECT current_version FROM films WHERE slug = $1")
                .bind(slug)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        sqlx::query(
            "INSERT INTO film_versions (slug, version, published_at, version_json) \
             VALUES ($1, $2, $3, $4)",
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
            sqlx::query_scalar("DELETE FROM film_drafts WHERE slug = $1 RETURNING created_at")
                .bind(slug)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        sqlx::query(
            "INSERT INTO films (slug, meta_json, current_version, created_at, updated_at) \
             VALUES ($1, $2, $3, coalesce($5, $4), $4) \
             ON CONFLICT (slug) DO UPDATE SET meta_json = $2, current_version = $3, updated_at = $4",
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
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CATALOG_CHANNEL)
            .bind(slug)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(previous)
    }

    fn changes(&self) -> Option<watch::Receiver<u64>> {
        let pool = self.pool.clone();
        Some(
            self.changes
                .get_or_init(move || {
                    let (tx, rx) = watch::channel(0);
                    tokio::spawn(listen(pool, tx));
                    rx
                })
                .clone(),
        )
    }
}

/// Listens on [`CATALOG_CHANNEL`] until nobody watches, moving `changed` on every
/// notification and after every reconnection (what was published meanwhile is unknown).
async fn listen(pool: PgPool, changed: watch::Sender<u64>) {
    let bump = |changed: &watch::Sender<u64>| changed.send_modify(|n| *n = n.wrapping_add(1));
    while !changed.is_closed() {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for catalog changes; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CATALOG_CHANNEL).await {
            tracing::warn!(error = %e, "cannot listen for catalog changes; retrying in 1 s");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        bump(&changed);
        loop {
            tokio::select! {
                // `try_recv` gives `None` when the connection was lost; it reconnects on the
                // next call.
                received = listener.try_recv() => match received {
                    Ok(Some(_)) => bump(&changed),
                    Ok(None) => bump(&changed),
                    Err(e) => {
                        tracing::warn!(error = %e, "catalog change listener failed; reconnecting");
                        bump(&changed);
                        break;
                    }
                },
                () = changed.closed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use monsoon_catalog::repository::conformance;
    use monsoon_engines::postgres::Postgres;

    use super::*;

    /// The film repository's contract (crates/catalog/src/repository.rs), on a real
    /// PostgreSQL: every `open` connects anew, as a restarted node would.
    #[tokio::test]
    async fn the_postgres_catalog_keeps_the_contract() {
        let pg = Postgres::start().unwrap();
        let url = pg.create_database("catalog").unwrap();
        conformance::run(&|| {
            let url = url.clone();
            Box::pin(async move {
                Arc::new(PgCatalog::open(&url).await.unwrap()) as Arc<dyn FilmRepository>
            })
        })
        .await;
    }

    /// A publish (and a metadata edit) through one connection reaches the change signal of another catalog on the
    /// same database (another node) without any polling.
    #[tokio::test]
    async fn a_publish_is_pushed_to_every_catalog() {
        let pg = Postgres::start().unwrap();
        let url = pg.create_database("catalog").unwrap();
        let node = PgCatalog::open(&url).await.unwrap();
        let mut changes = node.changes().unwrap();
        // The first signal says the listener is up.
        tokio::time::timeout(Duration::from_secs(10), changes.changed())
            .await
            .expect("the listener never came up")
            .unwrap();
        let other = PgCatalog::open(&url).await.unwrap();
        other
            .publish(
                "film",
                &FilmMeta::untitled("film"),
                &conformance::version("v1"),
            )
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), changes.changed())
            .await
            .expect("no change was pushed")
            .unwrap();
        assert_eq!(
            node.get("film").await.unwrap().unwrap().current.version,
            "v1"
        );
        // A metadata edit (the studio's) is pushed the same way.
        let mut edited = FilmMeta::untitled("film");
        edited.title.vi = "Phim đã sửa".into();
        assert!(other.update_meta("film", &edited).await.unwrap());
        tokio::time::timeout(Duration::from_secs(10), changes.changed())
            .await
            .expect("no change was pushed for the edit")
            .unwrap();
        assert_eq!(node.get("film").await.unwrap().unwrap().meta, edited);
    }

    #[tokio::test]
    async fn every_node_reads_the_secret_the_first_one_made() {
        let pg = Postgres::start().unwrap();
        let url = pg.create_database("catalog").unwrap();
        let (a, b) = (
            PgCatalog::open(&url).await.unwrap(),
            PgCatalog::open(&url).await.unwrap(),
        );
        let first = a.shared_secret("key", || "made by a".into()).await.unwrap();
        let second = b.shared_secret("key", || "made by b".into()).await.unwrap();
        assert_eq!(
            (first.as_str(), second.as_str()),
            ("made by a", "made by a")
        );
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redacted("postgres://monsoon:s3cret@db:5432/monsoon"),
            "postgres://monsoon:…@db:5432/monsoon"
        );
        assert_eq!(redacted("postgres://db/monsoon"), "postgres://db/monsoon");
        assert_eq!(
            redacted("postgres://db/monsoon?password=s3cret"),
            "postgres://db/monsoon?…"
        );
        let message = options("postgres://u:s3cret@db:notaport/x", "t").unwrap_err();
        assert!(!message.contains("s3cret"), "{message}");
    }
}
