//! The catalog: what a film is (its metadata and its published versions), and the two storage
//! seams every backend plugs into — [`FilmRepository`] for records (SQLite by default,
//! PostgreSQL at scale) and [`MediaStore`] for the packaged files (local disk by default,
//! S3-compatible at scale).
//!
//! This crate knows nothing of HTTP, SQL or ffmpeg. The concrete backends live in `crates/db`
//! (records) and `crates/store` (media); the in-memory ones here ([`MemoryFilms`],
//! [`MemoryStore`]) serve tests, and each trait's `conformance::run` is the contract every
//! backend passes. [`JobQueue`] (`jobs.rs`) is the third seam: the ingest jobs that workers
//! lease, on PostgreSQL in `crates/db`, in memory here. [`Operators`] and [`AuditLog`]
//! (`operators/`) hold the studio's operator accounts, their sessions and the record of who
//! did what, on both databases.

mod error;
mod film;
pub mod jobs;
mod objects;
pub mod operators;
pub mod publish;
pub mod repository;
pub mod store;

pub use error::{Error, Result};
pub use film::limits as film_limits;
pub use film::{
    DEFAULT_LANGUAGE, Film, FilmMeta, LANGUAGE_TAG_RULE, LadderRung, Localized, PublishedVersion,
    Rendition, RenditionKind, VIDEO_CODECS, is_language_tag, validate_slug,
};
pub use jobs::{Job, JobProgress, JobQueue, JobState, MemoryJobs, NewJob};
pub use objects::{OBJECT_INDEX, ObjectIndex, ObjectInfo, valid_etag, valid_key};
pub use operators::{Action, AuditEntry, AuditLog, NewAuditEntry, Operators};
pub use repository::MemoryFilms;
pub use store::{MediaStore, MemoryStore};

use async_trait::async_trait;

/// File name of a version's HLS multivariant playlist (RFC 8216 §4.3.4), served at
/// `/media/<slug>/master.m3u8`. The one definition: packaging (`monsoon-media`) writes the
/// file under this name and the origin resolves it to the current version by it.
pub const MULTIVARIANT_PLAYLIST: &str = "master.m3u8";
/// File name of a version's DASH manifest (ISO/IEC 23009-1 MPD), served at
/// `/media/<slug>/manifest.mpd`; written by packaging under this name, as the playlist.
pub const DASH_MANIFEST: &str = "manifest.mpd";
/// File name of every rendition's media playlist (RFC 8216 §4.3.3), in the rendition's
/// directory of a version; written by packaging, named by the watch page's start preloads.
pub const MEDIA_PLAYLIST: &str = "index.m3u8";
/// File name of every rendition's init segment (the CMAF header, ISO/IEC 23000-19 §7.3.2.1).
pub const INIT_SEGMENT: &str = "init.mp4";
/// Duration of every segment of a rendition but its last, seconds (HLS authoring spec §7.5):
/// segment `i` starts at `i × SEGMENT_SECONDS` in every rendition.
pub const SEGMENT_SECONDS: f64 = 6.0;
/// `printf` pattern of segment file names: segment `i` is `seg_{i:05}.m4s`.
pub const SEGMENT_PATTERN: &str = "seg_%05d.m4s";

/// Where films and their published versions are recorded.
///
/// Publishing is one call so that a backend can make it one transaction: after it returns, the
/// new version is the one served; before, the old one still is.
#[async_trait]
pub trait FilmRepository: Send + Sync + std::fmt::Debug {
    /// Every film with a published version, newest first.
    async fn list(&self) -> Result<Vec<Film>>;

    /// One film by slug, or `None`.
    async fn get(&self, slug: &str) -> Result<Option<Film>>;

    /// Records `version` as the film's current version and stores its metadata, atomically.
    /// Returns the version it replaced, which the caller may now remove from the media store.
    async fn publish(
        &self,
        slug: &str,
        meta: &FilmMeta,
        version: &PublishedVersion,
    ) -> Result<Option<String>>;

    /// A signal that the catalog may have changed, pushed by backends that can (PostgreSQL's
    /// `NOTIFY`): its value moves after every publish by any process, and after the push was
    /// interrupted (anything may have been missed then). Readers refresh at once instead of
    /// waiting for their next poll. `None` (the default): poll only. Call within a Tokio
    /// runtime: a backend may start its listener on the first call.
    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}
