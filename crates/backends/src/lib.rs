//! The one place storage backends are chosen; the binary only wires what this opens.
//! `[storage]` in `monsoon.toml`, or the global `--database` / `--media` flags
//! (`MONSOON_DATABASE`, `MONSOON_MEDIA`), name the catalog and audience database and the media
//! store by URL; without them, everything lives in the data directory: SQLite at
//! `<data>/catalog.db` and the media under `<data>/media`.
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
use monsoon_store::s3::{Credentials, S3Store};

mod config;

pub use config::StorageConfig;
use config::{Backend, parse};

/// Where things live: the data directory (`--data`), and the backends `[storage]` (or
/// `--database` / `--media`) name instead of its own.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
    staging: PathBuf,
    locks: PathBuf,
    uploads: PathBuf,
    storage: StorageConfig,
}

impl DataDir {
    pub fn new(root: &Path, storage: StorageConfig) -> Self {
        Self {
            root: root.to_owned(),
            staging: root.join("staging"),
            locks: root.join("locks"),
            uploads: root.join("uploads"),
            storage,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where versions are built before they are published (`monsoon_ingest::Destination`).
    pub fn staging(&self) -> &Path {
        &self.staging
    }

    /// The per-film lock files of the publish protocol (`monsoon_catalog::publish`).
    pub fn locks(&self) -> &Path {
        &self.locks
    }

    /// Where masters uploaded through `/admin/api/uploads` are received.
    pub fn uploads(&self) -> &Path {
        &self.uploads
    }

    /// The secret that signs session tokens: `audience.key`, made on first use (mode 0600).
    pub fn audience_key(&self) -> anyhow::Result<Vec<u8>> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.root.join("audience.key");
        if let Ok(text) = std::fs::read_to_string(&path) {
            return hex::decode(text.trim())
                .map_err(|e| anyhow!("{} is not a hex key: {e}", path.display()));
        }
        let key = random_key()?;
        let text = hex::encode(key);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| anyhow!("creating {}: {e}", path.display()))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
        Ok(key.to_vec())
    }

    /// Opens the backends.
    pub async fn open(&self) -> anyhow::Result<Backends> {
        std::fs::create_dir_all(&self.root)
            .map_err(|e| anyhow!("creating data directory {}: {e}", self.root.display()))?;
        Backends::open(self, &self.storage).await
    }
}

/// 32 bytes from the OS's random source: a key of the audience's session tokens.
pub fn random_key() -> anyhow::Result<[u8; 32]> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow!("no randomness: {e}"))?;
    Ok(key)
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
    async fn open(data: &DataDir, storage: &StorageConfig) -> anyhow::Result<Self> {
        let database = match &storage.database {
            Some(url) => parse("database", url)?,
            None => Backend::Sqlite(data.root().join("catalog.db")),
        };
        let media = match &storage.media {
            Some(url) => parse("media", url)?,
            None => Backend::Files(data.root().join("media")),
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
        let made = hex::encode(random_key()?);
        let text = catalog.shared_secret(name, || made).await?;
        let key = hex::decode(text.trim())
            .map_err(|e| anyhow!("the database's {name} is not hex: {e}"))?;
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
