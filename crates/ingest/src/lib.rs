//! The ingest pipeline: a master file and its `film.toml` in, a published version out —
//! probe → ladder → one ffmpeg → package → verify → publish.
//!
//! It runs in two steps, so that everything that can be refused is refused before anything
//! is written:
//!
//! 1. [`plan`] checks the slug, `film.toml` and the subtitles' languages, probes the master
//!    and plans its ladder. It touches no directory and no backend.
//! 2. [`Plan::publish`] builds the version in a staging directory
//!    (`monsoon_media::encode_and_package`: transcode, package, verify, fsync) and publishes
//!    it by the protocol of `monsoon_catalog::publish`: moved into the media store, and only
//!    then recorded in the catalog, in one transaction. Until that commit the film (or its
//!    previous version) is what viewers get; a killed ingest leaves at most a staging
//!    directory or an unreferenced version, both swept by the next ingest (`docs/INGEST.md`).
//!
//! Storage comes in as the catalog's traits (a [`Publisher`] holds a `&dyn FilmRepository`
//! and a `&dyn MediaStore`): which backends those are is the binary's choice. So is the
//! presentation: a [`Plan`] shows what was planned, and ffmpeg's progress goes to a callback.
//!
//! [`jobs`] turns a request into a queued job (`monsoon ingest --submit`) and back;
//! [`worker`] is `monsoon worker`'s loop: claim a job, run this same pipeline, renew the
//! lease with the progress, finish (`docs/INGEST.md`, "Jobs and workers").

mod error;
pub mod jobs;
pub mod tracks;
pub mod uploads;
pub mod worker;

use std::future::Future;
use std::path::{Path, PathBuf};

use chrono::Utc;
use monsoon_catalog::publish::{Publisher, SlugLock, Staging, sweep_staging};
use monsoon_catalog::{
    FilmMeta, FilmRepository, PublishedVersion, Rendition, RenditionKind, is_language_tag,
    validate_slug,
};
use monsoon_media::ladder::{LadderOptions, RungSpec};
use monsoon_media::package::{Kind, THUMBNAILS_VTT};
use monsoon_media::transcode::THUMBNAILS_DIR;
use monsoon_media::{
    Codec, Job, Ladder, Limits, MeasuredRendition, Progress, Quality, Source, Subtitle,
};

pub use error::{Error, Result};

/// What to ingest, as the operator gave it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The master file (MP4, MOV, MKV, MXF, …).
    pub file: PathBuf,
    /// URL name of the film (see `monsoon_catalog::validate_slug`).
    pub slug: String,
    /// The film's `film.toml`; without one, the slug is the title.
    pub meta: Option<PathBuf>,
    /// Encoder speed versus quality.
    pub quality: Quality,
    /// Highest rung to encode; `None` goes up to the source.
    pub max_height: Option<u32>,
    /// Sidecar subtitle files, one per language.
    pub subtitles: Vec<Subtitle>,
    /// The ladder's video codecs (`--codecs`); `None` is `film.toml`'s `codecs`, or H.264
    /// alone. Checked by [`Codec::parse_list`].
    pub codecs: Option<Vec<Codec>>,
}

/// An ingest checked, probed and planned, with nothing written yet.
#[derive(Debug)]
pub struct Plan {
    pub slug: String,
    pub meta: FilmMeta,
    /// What the master is, as probed.
    pub source: Source,
    /// The renditions to encode.
    pub ladder: Ladder,
    limits: Limits,
    subtitles: Vec<Subtitle>,
}

/// Where a version is built and published.
#[derive(Debug)]
pub struct Destination<'a> {
    /// The catalog and the media store.
    pub publisher: Publisher<'a>,
    /// The directory versions are built in; leftovers of dead ingests there are swept.
    pub staging: &'a Path,
    /// The directory of the per-film locks: one ingest of a film at a time.
    pub locks: &'a Path,
}

/// The result of a successful ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub slug: String,
    pub version: String,
    /// The ladder as published, one rendition each (`v720 1280x720 avc1.64001f 2.7 Mbit/s`,
    /// `a128 mp4a.40.2 0.13 Mbit/s`): what the operator's job says once done.
    pub ladder: Vec<String>,
}

impl Published {
    fn new(slug: &str, record: &PublishedVersion) -> Self {
        let ladder = record
            .renditions
            .iter()
            .map(|r| {
                let size = match r.kind {
                    RenditionKind::Video => format!(" {}x{}", r.width, r.height),
                    RenditionKind::Audio => String::new(),
                };
                format!(
                    "{}{size} {} {:.2} Mbit/s",
                    r.name,
                    r.codecs,
                    r.average_bitrate as f64 / 1e6
                )
            })
            .collect();
        Self {
            slug: slug.to_owned(),
            version: record.version.clone(),
            ladder,
        }
    }
}

/// Checks `request` and plans its ladder; writes nothing.
pub async fn plan(request: Request) -> Result<Plan> {
    validate_slug(&request.slug)?;
    let meta = match &request.meta {
        Some(path) => FilmMeta::from_toml_file(path)?,
        None => FilmMeta::untitled(&request.slug),
    };
    plan_with(request, meta).await
}

/// [`plan`] for a request without `film.toml`: the film keeps the metadata the catalog has
/// for it (a draft made in the studio, or the published film's, edited there), so a
/// re-ingest replaces the media, never the studio's edits; a new film is titled by its slug.
pub async fn plan_stored(request: Request, films: &dyn FilmRepository) -> Result<Plan> {
    validate_slug(&request.slug)?;
    let meta = monsoon_catalog::stored_meta(films, &request.slug)
        .await?
        .unwrap_or_else(|| FilmMeta::untitled(&request.slug));
    plan_with(request, meta).await
}

/// [`plan`] with the film's metadata already read (a queued job holds its `film.toml`'s
/// text, not a file); `request.meta` is not read.
pub async fn plan_with(request: Request, meta: FilmMeta) -> Result<Plan> {
    let Request {
        file,
        slug,
        meta: _,
        quality,
        max_height,
        subtitles,
        codecs,
    } = request;
    validate_slug(&slug)?;
    check_subtitles(&subtitles)?;
    let codecs = match codecs {
        Some(codecs) => {
            let names: Vec<&str> = codecs.iter().map(|c| c.name()).collect();
            Codec::parse_list(&names).map_err(Error::Codecs)?
        }
        None if meta.codecs.is_empty() => vec![Codec::H264],
        None => Codec::parse_list(&meta.codecs)
            .map_err(|e| Error::Codecs(format!("film.toml's `codecs`: {e}")))?,
    };
    let limits = Limits::default();
    let source = monsoon_media::ffmpeg::probe_file(&file, &limits).await?;
    let custom_rungs = (!meta.ladder.is_empty()).then(|| {
        meta.ladder
            .iter()
            .map(|r| RungSpec {
                height: r.height,
                kbps: r.kbps,
            })
            .collect()
    });
    let wants_av1 = codecs.contains(&Codec::Av1);
    let ladder = monsoon_media::ladder::plan(
        &source,
        &LadderOptions {
            quality,
            max_height,
            rungs: custom_rungs,
            audio_language: Some(meta.language().to_owned()),
            codecs,
            av1_preset: None,
        },
    );
    if wants_av1 && !ladder.rungs.iter().any(|r| r.codec == Codec::Av1) {
        let floor = &ladder.rungs[0];
        return Err(Error::Codecs(format!(
            "{}: the smallest rung is {}x{}, and AV1 (SVT-AV1) encodes no side under {} pixels; \
             ingest it with H.264 alone (`--codecs h264`)",
            file.display(),
            floor.width,
            floor.height,
            monsoon_media::ladder::AV1_MIN_SIDE
        )));
    }
    Ok(Plan {
        slug,
        meta,
        source,
        ladder,
        limits,
        subtitles,
    })
}

/// Each subtitle language names a file (`subs/<lang>.vtt`) and a manifest attribute, so it
/// must be a language tag, and appear once.
fn check_subtitles(subtitles: &[Subtitle]) -> Result<()> {
    if let Some(bad) = subtitles.iter().find(|s| !is_language_tag(&s.lang)) {
        return Err(Error::SubtitleLanguage(bad.lang.clone()));
    }
    let mut langs: Vec<&str> = subtitles.iter().map(|s| s.lang.as_str()).collect();
    langs.sort_unstable();
    match langs.windows(2).find(|w| w[0] == w[1]) {
        Some(twice) => Err(Error::SubtitlesTwice(twice[0].to_owned())),
        None => Ok(()),
    }
}

impl Plan {
    /// The ladder as planned, one rung each: `1920x1080@4500k`, with `/av1` after an AV1
    /// rung's (an H.264 ladder reads as it always did).
    pub fn rungs(&self) -> Vec<String> {
        self.ladder
            .rungs
            .iter()
            .map(|r| {
                let codec = if r.codec == Codec::Av1 { "/av1" } else { "" };
                format!(
                    "{}x{}@{}k{codec}",
                    r.width,
                    r.height,
                    r.average_bitrate / 1000
                )
            })
            .collect()
    }

    /// What was planned, as `monsoon ingest --json` prints it: the `planned` event, with each
    /// rung's exact encoder options (which `bench/ladder.sh` gives its peers).
    pub fn planned_event(&self) -> serde_json::Value {
        let (source, v) = (&self.source, &self.source.video);
        serde_json::json!({
            "event": "planned",
            "source": {"width": v.display_width, "height": v.display_height, "fps": v.fps,
                       "duration_s": source.duration_s, "audio": source.audio.is_some()},
            "rungs": self.rungs(),
            "audio": self.ladder.audio.iter().map(|a| &a.name).collect::<Vec<_>>(),
            "encoders": (0..self.ladder.rungs.len())
                .map(|i| monsoon_media::transcode::video_encoder_args(&self.ladder, i))
                .collect::<Vec<_>>(),
        })
    }

    /// What was planned, in two lines for a terminal.
    pub fn summary(&self) -> String {
        let (source, v) = (&self.source, &self.source.video);
        let audio = if source.audio.is_some() {
            "with audio"
        } else {
            "no audio"
        };
        let audio_rungs: Vec<&String> = self.ladder.audio.iter().map(|a| &a.name).collect();
        format!(
            "source {}: {}x{} {:.3} fps, {:.1} s, {audio}\nladder: {} + audio {audio_rungs:?}",
            source.path.display(),
            v.display_width,
            v.display_height,
            v.fps,
            source.duration_s,
            self.rungs().join(" "),
        )
    }

    /// Encodes, packages, verifies and publishes the film into `to`. `on_progress` sees
    /// ffmpeg's progress; `before_commit` runs between the move into the media store and the
    /// catalog commit (a test hook: a test kills the ingest there).
    ///
    /// Dropping the future stops ffmpeg and removes the staging directory: nothing is
    /// published.
    pub async fn publish(
        self,
        to: Destination<'_>,
        on_progress: impl FnMut(Progress),
        before_commit: impl Future<Output = ()>,
    ) -> Result<Published> {
        let Destination {
            publisher,
            staging: staging_dir,
            locks,
        } = to;
        // The one rule of film.toml that needs the catalog, checked before any transcoding.
        if let Some(error) = self.meta.check_trailer(&self.slug, publisher.films).await? {
            return Err(monsoon_catalog::Error::Fields {
                path: "film.toml".into(),
                errors: vec![error],
            }
            .into());
        }
        // Held until this ingest ends: a second ingest of the slug would sweep this one's
        // version.
        let _lock = SlugLock::take(locks, &self.slug)?;
        sweep_staging(staging_dir);
        publisher.sweep(&self.slug).await;

        let version = format!("v{}", Utc::now().format("%Y%m%dT%H%M%S%3fZ"));
        let staging = Staging::create(staging_dir, &self.slug, &version)?;
        let prefix = format!("{version}/");
        let job = Job {
            source: &self.source,
            limits: &self.limits,
            ladder: &self.ladder,
            subtitles: &self.subtitles,
            out_dir: staging.path(),
            prefix: &prefix,
        };
        let packaged = monsoon_media::encode_and_package(job, on_progress).await?;

        let poster = copy_art(self.meta.poster.as_deref(), "poster-art", staging.path())?
            .unwrap_or(packaged.poster.clone());
        let backdrop = copy_art(self.meta.backdrop.as_deref(), "backdrop", staging.path())?
            .or(Some(packaged.poster.clone()));
        let record = PublishedVersion {
            version: version.clone(),
            published_at: Utc::now(),
            duration_s: packaged.duration_s,
            poster: Some(poster),
            backdrop,
            thumbnails: Some(format!("{THUMBNAILS_DIR}/{THUMBNAILS_VTT}")),
            subtitles: packaged.subtitles.clone(),
            renditions: packaged.renditions.iter().map(rendition_record).collect(),
        };
        publisher
            .publish(&self.slug, &self.meta, staging, &record, before_commit)
            .await?;
        Ok(Published::new(&self.slug, &record))
    }
}

/// Copies the operator's key art into the version as `<name>.<ext>`: the file names the
/// operator chose are display text, never the names served.
fn copy_art(image: Option<&Path>, name: &str, out_dir: &Path) -> Result<Option<String>> {
    let Some(image) = image else { return Ok(None) };
    let ext = image
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .filter(|e| matches!(e.as_str(), "jpg" | "jpeg" | "png" | "webp"))
        .ok_or_else(|| Error::ImageType(image.to_owned()))?;
    let file = format!("{name}.{ext}");
    std::fs::copy(image, out_dir.join(&file)).map_err(|source| Error::Copy {
        path: image.to_owned(),
        source,
    })?;
    Ok(Some(file))
}

/// The catalog's record of a measured rendition.
pub(crate) fn rendition_record(r: &MeasuredRendition) -> Rendition {
    let (kind, width, height) = match &r.kind {
        Kind::Video { width, height, .. } => (RenditionKind::Video, *width, *height),
        Kind::Audio => (RenditionKind::Audio, 0, 0),
    };
    Rendition {
        name: r.name.clone(),
        kind,
        width,
        height,
        codecs: r.codecs.clone(),
        average_bitrate: r.average_bitrate,
        peak_bitrate: r.peak_bitrate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subtitle(lang: &str) -> Subtitle {
        Subtitle {
            lang: lang.to_owned(),
            path: PathBuf::from(format!("{lang}.srt")),
        }
    }

    #[test]
    fn subtitle_languages_are_tags_given_once() {
        assert!(check_subtitles(&[subtitle("vi"), subtitle("pt-BR")]).is_ok());
        let err = check_subtitles(&[subtitle("../x")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`../x` is not a language tag"), "{err}");
        let err = check_subtitles(&[subtitle("en"), subtitle("vi"), subtitle("en")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`en`"), "{err}");
    }
}
