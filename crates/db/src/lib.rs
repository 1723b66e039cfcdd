//! Relational storage: the [`FilmRepository`] of `monsoon-catalog` and the `AudienceStore` of
//! `monsoon-audience`, over SQLite (the default, one file) and PostgreSQL (several nodes on one
//! database), each with its embedded migrations (`migrations/<engine>/`). Both engines keep
//! the same tables and columns, and both are held to the same conformance suites. The ingest
//! job queue (`JobQueue`, [`PgJobs`]) is PostgreSQL's only: workers on several machines share it.
//! Both catalogs also hold the operator accounts, their sessions and the audit log
//! (`Operators`, `AuditLog`).

use chrono::{DateTime, Utc};
use monsoon_catalog::{Error, Film, FilmDraft, FilmMeta, PublishedVersion, Result};

mod batch;
mod postgres;
mod sqlite;

pub use postgres::{PgAudienceStore, PgCatalog, PgJobs, redacted};
pub use sqlite::{SqliteAudienceStore, SqliteCatalog, SqliteJobs};

fn backend(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

/// A job's stage as both engines store it: its English message and its JSON, within bounds
/// (`monsoon_catalog::Stage`).
struct Stored {
    message: String,
    json: String,
}

impl Stored {
    fn new(stage: &monsoon_catalog::Stage) -> Self {
        let stage = stage.bounded();
        Self {
            message: stage.message(),
            json: stage.json(),
        }
    }
}

/// The current version of every film, with its metadata, on both engines.
const SELECT_FILM: &str = "SELECT f.slug, f.meta_json, f.created_at, f.updated_at, v.version_json \
     FROM films f JOIN film_versions v ON v.slug = f.slug AND v.version = f.current_version";

/// Every recorded version of every film, whether it is the current one, on both engines
/// (for [`FilmRepository::retired`](monsoon_catalog::FilmRepository::retired)).
const SELECT_VERSIONS: &str = "SELECT v.slug, v.version_json, v.version = f.current_version AS current \
     FROM film_versions v JOIN films f ON f.slug = v.slug ORDER BY v.slug";

/// The retired versions among `rows` of [`SELECT_VERSIONS`]: `(slug, version_json, current)`.
fn retired(rows: Vec<(String, String, bool)>) -> Result<Vec<monsoon_catalog::RetiredVersion>> {
    let mut by_film: std::collections::BTreeMap<String, Vec<(PublishedVersion, bool)>> =
        std::collections::BTreeMap::new();
    for (slug, json, current) in rows {
        let version: PublishedVersion = serde_json::from_str(&json).map_err(backend)?;
        by_film.entry(slug).or_default().push((version, current));
    }
    Ok(by_film
        .into_iter()
        .flat_map(|(slug, versions)| monsoon_catalog::RetiredVersion::of_film(&slug, versions))
        .collect())
}

/// Deletes a version's record unless it is its film's current one, on both engines (`$1` slug,
/// `$2` version; SQLite reads `$n` as `?n`).
const FORGET_VERSION: &str = "DELETE FROM film_versions WHERE slug = $1 AND version = $2 \
     AND version <> (SELECT current_version FROM films WHERE slug = $1)";

/// A film from the text columns of [`SELECT_FILM`].
fn film(
    slug: String,
    meta_json: &str,
    version_json: &str,
    created_at: &str,
    updated_at: &str,
) -> Result<Film> {
    let time = |text: &str| -> Result<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(backend)
    };
    Ok(Film {
        slug,
        meta: serde_json::from_str::<FilmMeta>(meta_json).map_err(backend)?,
        current: serde_json::from_str::<PublishedVersion>(version_json).map_err(backend)?,
        created_at: time(created_at)?,
        updated_at: time(updated_at)?,
    })
}

/// Every draft, on both engines; `ORDER BY` and `WHERE` are appended.
const SELECT_DRAFT: &str = "SELECT slug, meta_json, created_at, updated_at FROM film_drafts";

fn time(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(backend)
}

/// A draft from the text columns of [`SELECT_DRAFT`].
fn draft(slug: String, meta_json: &str, created_at: &str, updated_at: &str) -> Result<FilmDraft> {
    Ok(FilmDraft {
        slug,
        meta: serde_json::from_str::<FilmMeta>(meta_json).map_err(backend)?,
        created_at: time(created_at)?,
        updated_at: time(updated_at)?,
    })
}

/// Why a session was not started: the id is taken, or the name cannot sign in.
fn session_refused(operator: &str) -> Error {
    Error::Conflict(format!(
        "no session started for `{operator}`: it is not an enabled operator, or the session id \
         is taken"
    ))
}
