//! Media: from a master file to a verified CMAF ladder on disk.
//!
//! [`probe`] reads what the file is, [`ladder`] plans the rungs, [`transcode`] builds the single
//! ffmpeg process that decodes once and encodes every rung, [`package`] writes the HLS and DASH
//! manifests over the one set of segments, and [`verify`] reads it all back before anything is
//! published. Running ffmpeg happens only in [`ffmpeg`]; everything else is pure and testable
//! without it.

mod error;
pub mod ffmpeg;
pub mod fmp4;
pub mod image;
pub mod ladder;
pub mod package;
pub mod probe;
pub mod tracks;
pub mod transcode;
pub mod verify;

use std::path::{Path, PathBuf};

pub use error::{Error, Limited, Result};
pub use ffmpeg::Progress;
pub use ladder::{Codec, Ladder, LadderOptions, Quality};
use monsoon_catalog::publish::write_durable;
pub use package::MeasuredRendition;
pub use probe::{Limits, Source};

/// What packaging produced, for the catalog.
#[derive(Debug, Clone)]
pub struct Packaged {
    pub renditions: Vec<MeasuredRendition>,
    pub duration_s: f64,
    /// File name of the poster frame inside the output directory.
    pub poster: String,
    /// Languages of the subtitles, in the order given.
    pub subtitles: Vec<String>,
}

/// A sidecar subtitle file and its language (BCP 47, e.g. `vi`, `en`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subtitle {
    pub lang: String,
    pub path: PathBuf,
}

/// `LANG=FILE`, as `monsoon ingest --subtitles` takes it (`vi=phim.vi.srt`); the language is a
/// tag by `monsoon_catalog::is_language_tag`.
impl std::str::FromStr for Subtitle {
    type Err = String;

    fn from_str(arg: &str) -> Result<Self, String> {
        let (lang, file) = arg
            .split_once('=')
            .ok_or_else(|| format!("`{arg}` is not LANG=FILE (e.g. vi=phim.vi.srt)"))?;
        if !monsoon_catalog::is_language_tag(lang) {
            return Err(format!(
                "`{lang}` is not a language tag: use two or three lowercase letters, e.g. vi, en, pt-BR"
            ));
        }
        if file.is_empty() {
            return Err(format!("`{arg}` names no file"));
        }
        Ok(Subtitle {
            lang: lang.to_owned(),
            path: PathBuf::from(file),
        })
    }
}

/// One packaging job: what to encode and where.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub source: &'a Source,
    /// The limits `source` was probed against; the transcode holds every frame to them.
    pub limits: &'a Limits,
    pub ladder: &'a Ladder,
    pub subtitles: &'a [Subtitle],
    /// Empty directory the version is built in.
    pub out_dir: &'a Path,
    /// Prepended to every URI in the top-level manifests (the version directory, `v…/`).
    pub prefix: &'a str,
}

/// Encodes the ladder, writes the manifests, verifies the result and makes every file
/// durable. `on_progress` sees ffmpeg's progress. Dropping the future stops ffmpeg; the caller
/// owns cleaning `out_dir` up.
pub async fn encode_and_package(
    job: Job<'_>,
    on_progress: impl FnMut(Progress),
) -> Result<Packaged> {
    let Job {
        source,
        limits,
        ladder,
        subtitles,
        out_dir,
        prefix,
    } = job;
    for name in ladder
        .rungs
        .iter()
        .map(|r| r.name.as_str())
        .chain(ladder.audio.iter().map(|a| a.name.as_str()))
        .chain([transcode::THUMBNAILS_DIR, package::SUBTITLES_DIR])
    {
        let dir = out_dir.join(name);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(Error::io(&dir))?;
    }
    // Subtitles first: a broken sidecar file should fail in a second, not after the encode.
    for sub in subtitles {
        let vtt = out_dir
            .join(package::SUBTITLES_DIR)
            .join(format!("{}.vtt", sub.lang));
        ffmpeg::convert_subtitle(&sub.path, &vtt).await?;
    }

    let (ran, breach) =
        ffmpeg::run_ffmpeg_watching(transcode::ffmpeg_args(source, ladder, out_dir), on_progress)
            .await;
    if let Some(breach) = breach {
        return Err(frame_breach_error(source, limits, breach));
    }
    ran.map_err(|e| match e {
        Error::ToolFailed {
            code: Some(ffmpeg::EXIT_TOO_MANY_DECODE_ERRORS),
            stderr,
            ..
        } => Error::Corrupt {
            path: source.path.clone(),
            detail: stderr.lines().last().unwrap_or_default().to_owned(),
        },
        other => other,
    })?;

    let t = &ladder.thumbnails;
    ffmpeg::tile_thumbnails(&out_dir.join(transcode::THUMBNAILS_DIR), t.columns, t.rows).await?;

    let poster = "poster.jpg";
    let poster_at = (source.duration_s * 0.1).min(60.0);
    let poster_height = ladder.rungs.last().map_or(720, |r| r.height.min(720));
    ffmpeg::extract_frame(source, poster_at, poster_height, &out_dir.join(poster)).await?;

    let out = out_dir.to_owned();
    let ladder = ladder.clone();
    let prefix = prefix.to_owned();
    let langs: Vec<String> = subtitles.iter().map(|s| s.lang.clone()).collect();
    let source_duration = source.duration_s;
    tokio::task::spawn_blocking(move || -> Result<Packaged> {
        let mut renditions = package::measure_ladder(&out, &ladder)?;
        // ffmpeg's media playlists, with EXTINFs whose running sums are the media's boundaries
        // (package::exact_extinf_us says why); the manifests below use the same durations.
        for r in &mut renditions {
            make_extinf_exact(&out, r)?;
        }
        let duration_s = renditions
            .iter()
            .map(MeasuredRendition::duration_s)
            .fold(0.0, f64::max);
        write_durable(
            &out.join(transcode::THUMBNAILS_DIR)
                .join(package::THUMBNAILS_VTT),
            package::thumbnails_vtt(&ladder.thumbnails, duration_s).as_bytes(),
        )?;
        for lang in &langs {
            write_durable(
                &out.join(package::SUBTITLES_DIR)
                    .join(format!("{lang}.m3u8")),
                &package::write_media_playlist(&package::subtitle_playlist(lang, duration_s))?,
            )?;
        }
        for r in &renditions {
            if let Some(iframes) = package::iframe_playlist(r) {
                write_durable(
                    &out.join(&r.name).join(package::IFRAME_PLAYLIST),
                    &package::write_media_playlist(&iframes)?,
                )?;
            }
        }
        write_durable(
            &out.join(monsoon_catalog::DASH_MANIFEST),
            &package::write_mpd(&package::mpd(
                &renditions,
                &ladder.audio_language,
                &langs,
                &prefix,
            )),
        )?;
        for (file, playlist) in package::family_playlists(
            &renditions,
            ladder.audio_only.as_deref(),
            &ladder.audio_language,
            &langs,
            &prefix,
        ) {
            write_durable(&out.join(file), &package::write_multivariant(&playlist)?)?;
        }
        // Multivariant playlist last: it is what makes the film playable.
        let master = package::multivariant_playlist(
            &renditions,
            ladder.audio_only.as_deref(),
            &ladder.audio_language,
            &langs,
            &prefix,
        );
        write_durable(
            &out.join(monsoon_catalog::MULTIVARIANT_PLAYLIST),
            &package::write_multivariant(&master)?,
        )?;
        // Not fsynced here: the publisher fsyncs the whole staging tree before it moves it
        // (`monsoon_catalog::publish`).
        verify::verify(&out, &prefix, &renditions, langs.len(), source_duration)?;
        Ok(Packaged {
            renditions,
            duration_s,
            poster: poster.to_owned(),
            subtitles: langs,
        })
    })
    .await
    .map_err(|_| Error::Interrupted)?
}

/// Rewrites the media playlist of `r` in `out` with exact EXTINFs and takes them as its
/// segments' durations.
fn make_extinf_exact(out: &Path, r: &mut MeasuredRendition) -> Result<()> {
    let exact = package::exact_extinf_us(&r.segments);
    let path = out.join(&r.name).join(transcode::MEDIA_PLAYLIST);
    let text = std::fs::read_to_string(&path).map_err(Error::io(&path))?;
    write_durable(&path, package::rewrite_extinf(&text, &exact)?.as_bytes())?;
    for (seg, us) in r.segments.iter_mut().zip(exact) {
        seg.duration_s = us as f64 / 1e6;
    }
    Ok(())
}

/// The operator's message for a frame that broke a rule mid-stream, in the coded
/// orientation ffprobe reports (the size guard sees frames after autorotate).
fn frame_breach_error(source: &Source, limits: &Limits, breach: ffmpeg::FrameBreach) -> Error {
    let v = &source.video;
    let first = format!("{}x{}", v.coded_width, v.coded_height);
    let size = match breach {
        ffmpeg::FrameBreach::OverMaxPixels { width, height } => Some((width, height)),
        ffmpeg::FrameBreach::SizeChanged { size } => size.map(|(w, h)| match v.rotation {
            90 | 270 => (h, w),
            _ => (w, h),
        }),
    };
    match size {
        Some((w, h)) if !limits.frame_fits(w, h) => Error::FrameOverLimit {
            path: source.path.clone(),
            size: format!("{w}x{h}"),
            first,
            limit: limits.frame_size(),
        },
        Some((w, h)) => Error::FrameSizeChanged {
            path: source.path.clone(),
            first,
            size: format!("{w}x{h}"),
        },
        None => Error::FrameSizeChanged {
            path: source.path.clone(),
            first,
            size: "another size".to_owned(),
        },
    }
}
