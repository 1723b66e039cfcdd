//! An ingest request as a queued job, and back: what `monsoon ingest --submit` records and
//! what a worker runs.
//!
//! A job names files by absolute path (the master, the subtitles, the directory of
//! `film.toml` for its images): every worker must see them at the same paths, e.g. on a
//! shared mount. `film.toml` itself travels as text in the job.

use std::path::{Path, PathBuf};

use monsoon_catalog::{FilmMeta, Job, NewJob};
use monsoon_media::{Codec, Quality, Subtitle};
use serde::{Deserialize, Serialize};

use crate::tracks::Track;
use crate::{Error, Plan, Request, Result};

/// Attempts a submitted job gets: a worker dying twice in a row on the same film is bad luck,
/// three times is the film.
pub const DEFAULT_ATTEMPTS: u32 = 3;

/// Subtitle files a job may name.
pub const MAX_SUBTITLES: usize = 32;

/// The ingest options of a job, as the JSON in its `options`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobOptions {
    pub quality: Quality,
    pub max_height: Option<u32>,
    #[serde(default)]
    pub subtitles: Vec<JobSubtitle>,
    /// The absolute directory `film.toml` was in: its image paths are relative to it.
    pub meta_dir: Option<String>,
    /// `--codecs`, when given (absent from the jobs of earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codecs: Option<Vec<Codec>>,
    /// The master in the media store, when it was uploaded through the studio
    /// (`monsoon_catalog::Incoming`): the worker fetches it rather than opening `master`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incoming: Option<monsoon_catalog::Incoming>,
}

/// A sidecar subtitle file of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSubtitle {
    pub lang: String,
    /// Absolute path.
    pub path: String,
}

/// `path` made absolute (symbolic links and `..` resolved), as UTF-8 text for the queue;
/// the error names the path and what is wrong with it.
fn absolute(path: &Path, what: &str) -> Result<String> {
    let resolved = std::fs::canonicalize(path).map_err(|source| Error::Path {
        path: path.to_owned(),
        source,
    })?;
    if !resolved.is_file() && what != "directory" {
        return Err(Error::Job(format!(
            "{what} {}: not a regular file",
            path.display()
        )));
    }
    resolved
        .to_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::Job(format!("{what} {}: the path is not UTF-8", path.display())))
}

/// Checks and probes `request` as `monsoon ingest` would (the same refusals, before anything
/// is recorded), and returns the plan and the job to submit.
pub async fn submission(request: Request, max_attempts: u32) -> Result<(Plan, NewJob)> {
    if request.subtitles.len() > MAX_SUBTITLES {
        return Err(Error::Job(format!(
            "{} subtitle files; a job takes at most {MAX_SUBTITLES}",
            request.subtitles.len()
        )));
    }
    let meta = match &request.meta {
        Some(path) => Some(FilmMeta::read_toml_file(path)?),
        None => None,
    };
    let plan = crate::plan_with(
        request.clone(),
        meta.as_ref()
            .map_or_else(|| FilmMeta::untitled(&request.slug), |(m, _)| m.clone()),
    )
    .await?;
    let meta_dir = match &request.meta {
        Some(path) => Some(absolute(
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
            "directory",
        )?),
        None => None,
    };
    let subtitles = request
        .subtitles
        .iter()
        .map(|s| {
            Ok(JobSubtitle {
                lang: s.lang.clone(),
                path: absolute(&s.path, "subtitle file")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let options = JobOptions {
        quality: request.quality,
        max_height: request.max_height,
        subtitles,
        meta_dir,
        codecs: request.codecs.clone(),
        incoming: None,
    };
    let job = NewJob {
        slug: plan.slug.clone(),
        master: absolute(&request.file, "master")?,
        film_toml: meta.map(|(_, text)| text),
        options: serde_json::to_value(&options).map_err(|e| Error::Job(e.to_string()))?,
        duration_s: plan.source.duration_s,
        max_attempts,
    };
    job.check()?;
    Ok((plan, job))
}

/// The options of a job that adds a track to a published film (`crate::tracks`): the job's
/// `master` is the track's file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackOptions {
    pub track: JobTrack,
    /// The track's file in the media store, when it was uploaded through the studio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incoming: Option<monsoon_catalog::Incoming>,
}

/// What a track job adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobTrack {
    pub kind: TrackKind,
    pub lang: String,
    pub label: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    Audio,
    Subtitles,
}

/// Checks `track` (its rules, and an audio file probed, for the ETA) and returns the job that
/// adds it to `slug`.
pub async fn track_submission(slug: &str, track: &Track, max_attempts: u32) -> Result<NewJob> {
    track.check()?;
    let (kind, duration_s) = match track {
        Track::Audio { file, .. } => {
            let source = monsoon_media::ffmpeg::probe_audio_file(file, &Default::default()).await?;
            (TrackKind::Audio, source.duration_s)
        }
        Track::Subtitles { .. } => (TrackKind::Subtitles, 0.0),
    };
    let options = TrackOptions {
        track: JobTrack {
            kind,
            lang: track.lang().to_owned(),
            label: track.label().to_owned(),
        },
        incoming: None,
    };
    let job = NewJob {
        slug: slug.to_owned(),
        master: absolute(track.file(), "track file")?,
        film_toml: None,
        options: serde_json::to_value(&options).map_err(|e| Error::Job(e.to_string()))?,
        duration_s,
        max_attempts,
    };
    job.check()?;
    Ok(job)
}

/// The track a job adds, when it is a track job (its options have a `track`); checked again:
/// the queue is shared.
pub fn track(job: &Job) -> Result<Option<Track>> {
    if job.options.get("track").is_none() {
        return Ok(None);
    }
    let options: TrackOptions = serde_json::from_value(job.options.clone())
        .map_err(|e| Error::Job(format!("job {}: its options are not readable: {e}", job.id)))?;
    let JobTrack { kind, lang, label } = options.track;
    // The file is the job's `master` (made the fetched copy's path by the worker).
    let file = PathBuf::from(&job.master);
    let track = match kind {
        TrackKind::Audio => Track::Audio { file, lang, label },
        TrackKind::Subtitles => Track::Subtitles { file, lang, label },
    };
    track.check()?;
    Ok(Some(track))
}

/// The request a queued job stands for, and its film's metadata (from the job's
/// `film.toml` text). Everything in the job is checked again: the queue is shared.
pub fn request(job: &Job) -> Result<(Request, FilmMeta)> {
    let options: JobOptions = serde_json::from_value(job.options.clone())
        .map_err(|e| Error::Job(format!("job {}: its options are not readable: {e}", job.id)))?;
    if options.subtitles.len() > MAX_SUBTITLES {
        return Err(Error::Job(format!(
            "job {}: {} subtitle files; a job takes at most {MAX_SUBTITLES}",
            job.id,
            options.subtitles.len()
        )));
    }
    let meta = match &job.film_toml {
        Some(text) => FilmMeta::from_toml_in(
            text,
            Path::new(options.meta_dir.as_deref().unwrap_or("/")),
            &format!("film.toml of job {}", job.id),
        )?,
        None => FilmMeta::untitled(&job.slug),
    };
    let request = Request {
        file: PathBuf::from(&job.master),
        slug: job.slug.clone(),
        meta: None,
        quality: options.quality,
        max_height: options.max_height,
        subtitles: options
            .subtitles
            .into_iter()
            .map(|s| Subtitle {
                lang: s.lang,
                path: PathBuf::from(s.path),
            })
            .collect(),
        codecs: options.codecs,
    };
    Ok((request, meta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use monsoon_catalog::{JobQueue, MemoryJobs};

    /// A track job reads back as the track it adds; an ingest job is not a track job.
    #[tokio::test]
    async fn a_track_job_reads_back_as_its_track() {
        let dir = tempfile::tempdir().unwrap();
        let srt = dir.path().join("en.srt");
        std::fs::write(&srt, "1\n00:00:00,000 --> 00:00:01,000\nHello\n").unwrap();
        let added = Track::Subtitles {
            file: srt.clone(),
            lang: "en".into(),
            label: "English".into(),
        };
        let queue = MemoryJobs::new();
        let job = queue
            .submit(&track_submission("mua-do", &added, 1).await.unwrap())
            .await
            .unwrap();
        let Some(Track::Subtitles { file, lang, label }) = track(&job).unwrap() else {
            panic!("not the subtitles: {job:?}");
        };
        assert_eq!(
            (file, lang.as_str(), label.as_str()),
            (srt, "en", "English")
        );
        let bad = Track::Subtitles {
            file: dir.path().join("en.srt"),
            lang: "english!".into(),
            label: "English".into(),
        };
        assert!(track_submission("mua-do", &bad, 1).await.is_err());
    }

    /// A job's options survive the queue: what a worker reads is what was submitted.
    #[tokio::test]
    async fn a_job_reads_back_as_the_request_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let subs = dir.path().join("vi.srt");
        std::fs::write(&subs, "1\n00:00:00,000 --> 00:00:01,000\nXin chào\n").unwrap();
        let options = JobOptions {
            quality: Quality::Best,
            max_height: Some(720),
            subtitles: vec![JobSubtitle {
                lang: "vi".into(),
                path: subs.to_str().unwrap().into(),
            }],
            meta_dir: Some(dir.path().to_str().unwrap().into()),
            codecs: Some(vec![Codec::H264, Codec::Av1]),
            incoming: None,
        };
        let queue = MemoryJobs::new();
        let job = queue
            .submit(&NewJob {
                slug: "mua-do".into(),
                master: "/films/mua-do.mov".into(),
                film_toml: Some("[title]\nvi = \"Mưa đỏ\"\n".into()),
                options: serde_json::to_value(&options).unwrap(),
                duration_s: 60.0,
                max_attempts: DEFAULT_ATTEMPTS,
            })
            .await
            .unwrap();
        let (request, meta) = request(&job).unwrap();
        assert_eq!(request.file, Path::new("/films/mua-do.mov"));
        assert_eq!(request.quality, Quality::Best);
        assert_eq!(request.max_height, Some(720));
        assert_eq!(request.subtitles[0].path, subs);
        assert_eq!(request.codecs, Some(vec![Codec::H264, Codec::Av1]));
        assert_eq!(meta.title.vi, "Mưa đỏ");

        let mut bad = job.clone();
        bad.options = serde_json::json!({"quality": "fast", "max_height": null, "shell": "rm"});
        let err = super::request(&bad).unwrap_err().to_string();
        assert!(err.contains("unknown field `shell`"), "{err}");
        bad.options = serde_json::json!({"quality": "fast", "max_height": null, "codecs": ["vp9"]});
        let err = super::request(&bad).unwrap_err().to_string();
        assert!(err.contains("unknown variant `vp9`"), "{err}");
        // A job of an earlier version, without `codecs`, is H.264 alone as it was.
        bad.options = serde_json::json!({"quality": "fast", "max_height": null});
        assert_eq!(super::request(&bad).unwrap().0.codecs, None);
        bad.film_toml = Some("poster = \"../../etc/missing.jpg\"\n[title]\nvi = \"x\"\n".into());
        let err = super::request(&bad).unwrap_err().to_string();
        assert!(
            err.contains("film.toml of job 1") && err.contains("which is not a file"),
            "{err}"
        );
    }
}
