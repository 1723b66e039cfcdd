//! The one place storage backends are chosen. `[storage]` in `monsoon.toml`, or the global
//! `--database` / `--media` flags (`MONSOON_DATABASE`, `MONSOON_MEDIA`), name the catalog and
//! audience database and the media store by URL; without them, everything lives in the data
//! directory: SQLite at `<data>/catalog.db` and the media under `<data>/media`.
//!
//! | URL | backend |
//! |---|---|
//! | `sqlite://<path>` | `monsoon_db::SqliteCatalog` and `SqliteAudienceStore` on one file; `SqliteJobs`, the one machine's ingest job queue |
//! | `postgres://[user[:password]@]host[:port]/database` | `monsoon_db::PgCatalog` and `PgAudienceStore`, for several nodes on one database; `PgJobs`, the ingest job queue the workers share |
//! | `file://<path>` | `monsoon_store::LocalStore` (objects as files; sends them with `sendfile`) |
//! | `s3://<bucket>?endpoint=<URL>&region=<region>` | `monsoon_store::S3Store` (objects in a bucket of an S3-compatible store; signed with `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` from the environment, never the URL) |

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use monsoon_audience::AudienceStore;
use monsoon_catalog::{AuditLog, FilmRepository, JobQueue, MediaStore, Operators};
use monsoon_store::s3::{Credentials, S3Store, S3Url};
use serde::Deserialize;

use crate::DataDir;

/// Where the catalog, the audience and the media live.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Database of the catalog and the audience: `sqlite://<path>` or
    /// `postgres://[user[:password]@]host[:port]/database` [default:
    /// `sqlite://<data>/catalog.db`].
    #[arg(long, global = true, env = "MONSOON_DATABASE", value_name = "URL")]
    pub database: Option<String>,
    /// Media store: `file://<directory>`, or `s3://<bucket>?endpoint=<URL>&region=<region>`
    /// signed with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY [default: `file://<data>/media`].
    #[arg(long, global = true, env = "MONSOON_MEDIA", value_name = "URL")]
    pub media: Option<String>,
}

impl StorageConfig {
    /// `self`, with what it leaves unset taken from `fallback` (flags over the file).
    pub fn or(&self, fallback: &StorageConfig) -> StorageConfig {
        StorageConfig {
            database: self.database.clone().or_else(|| fallback.database.clone()),
            media: self.media.clone().or_else(|| fallback.media.clone()),
        }
    }
}

/// A backend named by URL.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Backend {
    Sqlite(PathBuf),
    /// The whole URL, as sqlx reads it.
    Postgres(String),
    Files(PathBuf),
    S3(S3Url),
}

fn parse(setting: &str, url: &str) -> anyhow::Result<Backend> {
    // A database URL may hold a password: never repeat it.
    let shown = monsoon_db::redacted(url);
    let (scheme, rest) = url.split_once("://").with_context(|| {
        format!("[storage] {setting} = \"{shown}\" is not a URL: expected `scheme://…`")
    })?;
    if rest.is_empty() {
        bail!("[storage] {setting} = \"{shown}\" names no path");
    }
    let backend = match (scheme, setting) {
        ("sqlite", "database") => Backend::Sqlite(PathBuf::from(rest)),
        ("postgres" | "postgresql", "database") => Backend::Postgres(url.to_owned()),
        ("file", "media") => Backend::Files(PathBuf::from(rest)),
        ("s3", "media") => Backend::S3(
            S3Url::parse(url)
                .map_err(|rule| anyhow!("[storage] {setting} = \"{shown}\": {rule}"))?,
        ),
        ("sqlite" | "postgres" | "postgresql" | "file" | "s3", _) => bail!(
            "[storage] {setting} = \"{shown}\": a {setting} cannot be `{scheme}://` \
             (the database is sqlite:// or postgres://, the media file:// or s3://)"
        ),
        (other, _) => bail!(
            "[storage] {setting} = \"{shown}\": `{other}://` is not a backend Monsoon has; \
             use sqlite:// or postgres:// for the database and file:// or s3:// for the media"
        ),
    };
    Ok(backend)
}

/// The backends, opened.
#[derive(Debug, Clone)]
pub struct Backends {
    pub films: Arc<dyn FilmRepository>,
    pub media: Arc<dyn MediaStore>,
    /// The operators' accounts and sessions, in the catalog's database.
    pub operators: Arc<dyn Operators>,
    /// The audit log, in the catalog's database.
    pub audit: Arc<dyn AuditLog>,
    database: Backend,
    /// The catalog again when it is PostgreSQL, for the secrets the nodes share.
    postgres: Option<monsoon_db::PgCatalog>,
    /// The ingest job queue, in the catalog's database (the catalog migrated it): on
    /// PostgreSQL the one every worker of a cluster shares, on SQLite the one machine's.
    pub jobs: Arc<dyn JobQueue>,
}

/// What the catalog's database holds: the films, the operators, the audit log, the job queue.
type CatalogParts = (
    Arc<dyn FilmRepository>,
    Arc<dyn Operators>,
    Arc<dyn AuditLog>,
    Arc<dyn JobQueue>,
);

impl Backends {
    /// Opens (creating on first use) the backends `storage` names, or the data directory's.
    pub async fn open(data: &DataDir, storage: &StorageConfig) -> anyhow::Result<Self> {
        let database = match &storage.database {
            Some(url) => parse("database", url)?,
            None => Backend::Sqlite(data.root.join("catalog.db")),
        };
        let media = match &storage.media {
            Some(url) => parse("media", url)?,
            None => Backend::Files(data.root.join("media")),
        };
        let mut postgres = None;
        let (films, operators, audit, jobs): CatalogParts = match &database {
            Backend::Sqlite(path) => {
                create_parent(path)?;
                let catalog = Arc::new(monsoon_db::SqliteCatalog::open(path).await?);
                let jobs = Arc::new(monsoon_db::SqliteJobs::new(catalog.pool().clone()));
                (catalog.clone(), catalog.clone(), catalog, jobs)
            }
            Backend::Postgres(url) => {
                let catalog = monsoon_db::PgCatalog::open(url).await?;
                postgres = Some(catalog.clone());
                let jobs = Arc::new(monsoon_db::PgJobs::new(catalog.pool().clone()));
                let catalog = Arc::new(catalog);
                (catalog.clone(), catalog.clone(), catalog, jobs)
            }
            Backend::Files(_) | Backend::S3(_) => unreachable_backend()?,
        };
        let media: Arc<dyn MediaStore> = match &media {
            Backend::Files(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating the media directory {}", dir.display()))?;
                Arc::new(monsoon_store::LocalStore::new(dir))
            }
            Backend::S3(location) => {
                let credentials = Credentials::from_env().map_err(|rule| {
                    anyhow!("[storage] media (bucket {}): {rule}", location.bucket)
                })?;
                Arc::new(S3Store::new(location.clone(), credentials)?)
            }
            Backend::Sqlite(_) | Backend::Postgres(_) => unreachable_backend()?,
        };
        Ok(Self {
            films,
            media,
            operators,
            audit,
            database,
            postgres,
            jobs,
        })
    }

    /// The key of the audience's session tokens. Every node that counts heartbeats must hold
    /// the same: on PostgreSQL it lives in the database (made by the first node), on SQLite
    /// in `<data>/audience.key` (made on first use).
    pub async fn audience_key(&self, data: &DataDir) -> anyhow::Result<Vec<u8>> {
        match self.shared_key("audience_key").await? {
            Some(key) => Ok(key),
            None => data.audience_key(),
        }
    }

    /// The shared key `name` of the nodes of a cluster (in the PostgreSQL database, made by
    /// the first node that asks), or `None` for a database of one node (SQLite).
    pub async fn shared_key(&self, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let Some(catalog) = &self.postgres else {
            return Ok(None);
        };
        let made = hex::encode(crate::random_key()?);
        let text = catalog.shared_secret(name, || made).await?;
        let key = hex::decode(text.trim())
            .map_err(|e| anyhow::anyhow!("the database's {name} is not hex: {e}"))?;
        Ok(Some(key))
    }

    /// The audience's store, in the same database as the catalog (opened after it, which
    /// made and migrated the tables).
    pub async fn audience(&self) -> anyhow::Result<Arc<dyn AudienceStore>> {
        let database = self.database.clone();
        // Both stores connect with blocking calls: their writer is a thread, not a task.
        tokio::task::spawn_blocking(move || -> anyhow::Result<Arc<dyn AudienceStore>> {
            Ok(match &database {
                Backend::Sqlite(path) => Arc::new(monsoon_db::SqliteAudienceStore::open(path)?),
                Backend::Postgres(url) => Arc::new(monsoon_db::PgAudienceStore::open(url)?),
                Backend::Files(_) | Backend::S3(_) => unreachable_backend()?,
            })
        })
        .await?
    }
}

impl Backends {
    /// Whether the database is one machine's (SQLite): `monsoon serve` then runs an ingest
    /// worker of its own unless told not to (`[worker] in_serve`).
    pub fn single_machine(&self) -> bool {
        matches!(self.database, Backend::Sqlite(_))
    }
}

/// `parse` only lets a database be a database and media be media.
fn unreachable_backend<T>() -> anyhow::Result<T> {
    bail!("internal: a backend of the wrong kind got past the checks")
}

fn create_parent(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the data directory {}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend_and_bad_ones_are_named() {
        assert_eq!(
            parse("database", "sqlite:///srv/monsoon/catalog.db").unwrap(),
            Backend::Sqlite("/srv/monsoon/catalog.db".into())
        );
        assert_eq!(
            parse("media", "file://media").unwrap(),
            Backend::Files("media".into())
        );
        assert_eq!(
            parse("database", "postgres://monsoon@db:5432/monsoon").unwrap(),
            Backend::Postgres("postgres://monsoon@db:5432/monsoon".into())
        );
        assert_eq!(
            parse(
                "media",
                "s3://monsoon-media?endpoint=http://127.0.0.1:3900&region=garage"
            )
            .unwrap(),
            Backend::S3(S3Url {
                bucket: "monsoon-media".into(),
                endpoint: Some("http://127.0.0.1:3900".into()),
                region: "garage".into(),
            })
        );
        for (setting, url, says) in [
            ("database", "mysql://db/monsoon", "not a backend"),
            ("media", "postgres://db/monsoon", "cannot be"),
            ("media", "gs://bucket", "file:// or s3://"),
            ("media", "s3://bucket", "region"),
            (
                "media",
                "s3://bucket?region=garage&secret=x",
                "never go in the URL",
            ),
            (
                "media",
                "s3://bucket?region=garage&endpoint=http://s3.example.org",
                "use https",
            ),
            ("database", "s3://bucket?region=garage", "cannot be"),
            ("database", "file:///x", "cannot be"),
            ("media", "/just/a/path", "not a URL"),
            ("media", "file://", "no path"),
            ("media", "postgres://u:s3cret@db/monsoon", "cannot be"),
        ] {
            let message = parse(setting, url).unwrap_err().to_string();
            let shown = monsoon_db::redacted(url);
            assert!(
                message.contains(&shown) && message.contains(says),
                "{message}"
            );
            assert!(!message.contains("s3cret"), "{message}");
        }
    }

    #[test]
    fn flags_win_over_the_file() {
        let flags = StorageConfig {
            database: Some("sqlite://a.db".into()),
            media: None,
        };
        let file = StorageConfig {
            database: Some("sqlite://b.db".into()),
            media: Some("file://m".into()),
        };
        assert_eq!(
            flags.or(&file),
            StorageConfig {
                database: Some("sqlite://a.db".into()),
                media: Some("file://m".into()),
            }
        );
    }
}
