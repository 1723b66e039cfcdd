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

pub mod artwork;
mod error;
mod film;
pub mod jobs;
mod objects;
pub mod operators;
pub mod publish;
pub mod repository;
pub mod rules;
pub mod store;
pub mod uploads;
mod validate;

pub use artwork::{ArtKind, Artwork, ImageTool};
pub use error::{Error, Result, chain};
pub use film::limits as film_limits;
pub use film::{
    DEFAULT_LANGUAGE, Film, FilmDraft, FilmMeta, LANGUAGE_TAG_RULE, LadderRung, Localized,
    PublishedVersion, Rendition, RenditionKind, VIDEO_CODECS, art_url, is_language_tag,
    validate_slug,
};
pub use jobs::{
    Incoming, Job, JobLogLine, JobProgress, JobQueue, JobState, MemoryJobs, NewJob, Stage,
};
pub use objects::{OBJECT_INDEX, ObjectIndex, ObjectInfo, valid_etag, valid_key};
pub use operators::{Action, AuditEntry, AuditLog, NewAuditEntry, Operators};
pub use repository::MemoryFilms;
pub use rules::{FieldError, Rule};
pub use store::{MediaStore, MemoryStore};

use async_trait::async_trait;

/// File name of a version's HLS multivariant playlist (RFC 8216 §4.3.4), served at
/// `/media/<slug>/master.m3u8`. The one definition: packaging (`monsoon-media`) writes the
/// file under this name and the origin resolves it to the current version by it.
pub const MULTIVARIANT_PLAYLIST: &str = "master.m3u8";
/// File names of the multivariant playlists of one video codec family each, which a version
/// whose ladder has more than one family carries beside [`MULTIVARIANT_PLAYLIST`], served at
/// `/media/<slug>/master-<family>.m3u8` (`docs/ORIGIN.md`, "One playlist per codec family").
/// They are for HLS clients that switch variants by bandwidth alone, across `CODECS` (Chromium's
/// own HLS playback does): each names one family's variants, whose bandwidths cover every link
/// on their own (HLS authoring spec §1.23), with their audio.
pub const FAMILY_PLAYLISTS: [(&str, &str); 2] =
    [("h264", "master-h264.m3u8"), ("av1", "master-av1.m3u8")];

/// Whether `file` is one of a version's multivariant playlists, served at a stable URL.
pub fn is_multivariant(file: &str) -> bool {
    file == MULTIVARIANT_PLAYLIST || FAMILY_PLAYLISTS.iter().any(|(_, name)| *name == file)
}

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

/// A version replaced by a newer one and still served for a grace period (to viewers who
/// started before the replacement: their media playlists name it).
#[derive(Debug, Clone, PartialEq)]
pub struct RetiredVersion {
    pub slug: String,
    pub version: PublishedVersion,
    /// When the version that replaced it was published.
    pub retired_at: chrono::DateTime<chrono::Utc>,
}

impl RetiredVersion {
    /// From every recorded version of one film, `(version, is_current)`: each one that is not
    /// current, replaced at the `published_at` of the first version published after it.
    pub fn of_film(slug: &str, mut versions: Vec<(PublishedVersion, bool)>) -> Vec<RetiredVersion> {
        versions.sort_by(|a, b| {
            a.0.published_at
                .cmp(&b.0.published_at)
                .then_with(|| a.0.version.cmp(&b.0.version))
        });
        let mut out = Vec::new();
        for i in 0..versions.len() {
            let (version, current) = &versions[i];
            if *current {
                continue;
            }
            // A version that is not current was replaced; the next one recorded replaced it
            // (the current one, if none is between).
            let retired_at = versions
                .get(i + 1)
                .map_or(version.published_at, |(next, _)| next.published_at);
            out.push(RetiredVersion {
                slug: slug.to_owned(),
                version: version.clone(),
                retired_at,
            });
        }
        out
    }
}

/// The metadata stored for `slug`: its draft's, else its published film's. What an ingest
/// without a `film.toml` keeps (metadata edited in the studio is not reset by a re-ingest), and
/// what an ingest into a draft publishes.
pub async fn stored_meta(films: &dyn FilmRepository, slug: &str) -> Result<Option<FilmMeta>> {
    if let Some(draft) = films.draft(slug).await? {
        return Ok(Some(draft.meta));
    }
    Ok(films.get(slug).await?.map(|f| f.meta))
}

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

    /// Records `version` as the film's current version and stores its metadata, atomically;
    /// a draft of the slug becomes the film. Returns the version it replaced, which stays
    /// recorded as [`retired`](Self::retired) until it is forgotten.
    async fn publish(
        &self,
        slug: &str,
        meta: &FilmMeta,
        version: &PublishedVersion,
    ) -> Result<Option<String>>;

    /// Every version that a newer one replaced and that is still recorded (not yet
    /// [`forget`](Self::forget)ten), of every film, each with the time it was replaced: the
    /// `published_at` of the next version of its film. Old versions stay served for a grace
    /// period after that (`crate::publish::Publisher::retire_expired`, `docs/INGEST.md`,
    /// "Re-ingest").
    async fn retired(&self) -> Result<Vec<RetiredVersion>>;

    /// Removes the record of `version` of `slug` once its objects are gone. The current version
    /// is never removed (`Ok(false)`, as for a version not recorded).
    async fn forget(&self, slug: &str, version: &str) -> Result<bool>;

    /// Films created without media yet (in the studio, `/admin/films`): not listed publicly,
    /// waiting for their first ingest. Newest first.
    async fn drafts(&self) -> Result<Vec<FilmDraft>>;

    /// One draft by slug, or `None` (a published film is no draft).
    async fn draft(&self, slug: &str) -> Result<Option<FilmDraft>>;

    /// Creates a draft: a slug and its metadata, no media. [`Error::Taken`] when a film or a
    /// draft has the slug already. The first [`FilmRepository::publish`] of the slug makes it
    /// a film (the draft is gone in the same commit).
    async fn create_draft(&self, slug: &str, meta: &FilmMeta) -> Result<FilmDraft>;

    /// Deletes the draft `slug`, which was never published (a publish turns a draft into a
    /// film in its commit, so a film is never deleted here). False when there is no such
    /// draft: a published film, or nothing.
    async fn delete_draft(&self, slug: &str) -> Result<bool>;

    /// Replaces the metadata of the film (or the draft) `slug`, at once and without touching
    /// its versions: viewers see the new title on their next page. False when there is no
    /// such film or draft. Signals [`FilmRepository::changes`] like a publish.
    async fn update_meta(&self, slug: &str, meta: &FilmMeta) -> Result<bool>;

    /// A signal that the catalog may have changed, pushed by backends that can (PostgreSQL's
    /// `NOTIFY`): its value moves after every publish by any process, and after the push was
    /// interrupted (anything may have been missed then). Readers refresh at once instead of
    /// waiting for their next poll. `None` (the default): poll only. Call within a Tokio
    /// runtime: a backend may start its listener on the first call.
    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}
