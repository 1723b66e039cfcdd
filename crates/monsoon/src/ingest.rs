//! `monsoon ingest`: master file → probe → ladder → one ffmpeg → package → verify → publish.
//!
//! Publishing is crash-safe (`docs/INGEST.md`), by the protocol of
//! `monsoon_catalog::publish`: everything is built in `data/staging/`, fsynced, moved into the
//! media store and only then recorded in the catalog, in one transaction. Until that commit
//! the film (or its previous version) is what viewers get; a killed ingest leaves at most a
//! staging directory or an unreferenced version, both swept by the next ingest.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use monsoon_catalog::publish::{Publisher, SlugLock, Staging, sweep_staging};
use monsoon_catalog::{FilmMeta, PublishedVersion, Rendition, RenditionKind, validate_slug};
use monsoon_media::ladder::RungSpec;
use monsoon_media::package::Kind;
use monsoon_media::{Job, Ladder, LadderOptions, Limits, Progress, Quality, Source, Subtitle};
use serde_json::json;

use crate::DataDir;

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The master file (MP4, MOV, MKV, MXF, …).
    pub file: PathBuf,
    /// URL name of the film: lowercase letters, digits and hyphens, e.g. `mua-do`.
    #[arg(long)]
    pub slug: String,
    /// Film metadata (see docs/film.example.toml).
    #[arg(long)]
    pub meta: Option<PathBuf>,
    /// Encoder speed versus quality.
    #[arg(long, value_enum, default_value_t = QualityArg::Balanced)]
    pub quality: QualityArg,
    /// Highest rung to encode (e.g. 720 for a quick preview); defaults to the source height.
    #[arg(long)]
    pub max_height: Option<u32>,
    /// A sidecar subtitle file (SRT, WebVTT or ASS) and its language, as `LANG=FILE`
    /// (e.g. `vi=phim.vi.srt`); repeat for each language.
    #[arg(long = "subtitles", value_name = "LANG=FILE", value_parser = parse_subtitle)]
    pub subtitles: Vec<Subtitle>,
    /// Print progress as JSON lines on stdout instead of a progress bar.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum QualityArg {
    Fast,
    Balanced,
    Best,
}

impl From<QualityArg> for Quality {
    fn from(q: QualityArg) -> Self {
        match q {
            QualityArg::Fast => Quality::Fast,
            QualityArg::Balanced => Quality::Balanced,
            QualityArg::Best => Quality::Best,
        }
    }
}

/// Parses `LANG=FILE`; the language is a BCP 47 primary tag with an optional region.
fn parse_subtitle(arg: &str) -> Result<Subtitle, String> {
    let (lang, file) = arg
        .split_once('=')
        .ok_or_else(|| format!("`{arg}` is not LANG=FILE (e.g. vi=phim.vi.srt)"))?;
    let (primary, region) = lang.split_once('-').unwrap_or((lang, ""));
    let primary_ok =
        (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase());
    let region_ok =
        region.is_empty() || (region.len() == 2 && region.bytes().all(|b| b.is_ascii_uppercase()));
    if !primary_ok || !region_ok {
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

/// The result of a successful ingest.
#[derive(Debug)]
pub struct Published {
    pub slug: String,
    pub version: String,
}

pub async fn run(data: &DataDir, args: IngestArgs) -> anyhow::Result<ExitCode> {
    let json_output = args.json;
    let slug = args.slug.clone();
    let ingest = ingest(data, args);
    tokio::select! {
        result = ingest => {
            let published = result?;
            if json_output {
                println!("{}", json!({"event": "published", "slug": published.slug, "version": published.version}));
            } else {
                eprintln!("published {} as version {}", published.slug, published.version);
            }
            Ok(ExitCode::SUCCESS)
        }
        signal = stop_signal() => {
            // Dropping `ingest` killed ffmpeg and removed the staging directory.
            eprintln!("ingest of `{slug}` stopped by {signal}; nothing was published");
            Ok(ExitCode::from(130))
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM, naming it.
pub async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

pub async fn ingest(data: &DataDir, args: IngestArgs) -> anyhow::Result<Published> {
    // Everything that can be refused is refused before the data directory is touched.
    validate_slug(&args.slug)?;
    let meta = match &args.meta {
        Some(path) => FilmMeta::from_toml_file(path)?,
        None => FilmMeta::untitled(&args.slug),
    };
    let limits = Limits::default();
    let source = monsoon_media::ffmpeg::probe_file(&args.file, &limits).await?;
    let mut langs: Vec<&str> = args.subtitles.iter().map(|s| s.lang.as_str()).collect();
    langs.sort_unstable();
    if let Some(twice) = langs.windows(2).find(|w| w[0] == w[1]) {
        bail!(
            "--subtitles gives `{}` twice; give one file per language",
            twice[0]
        );
    }
    let custom_rungs = (!meta.ladder.is_empty()).then(|| {
        meta.ladder
            .iter()
            .map(|r| RungSpec {
                height: r.height,
                kbps: r.kbps,
            })
            .collect()
    });
    let ladder = monsoon_media::ladder::plan(
        &source,
        &LadderOptions {
            quality: args.quality.into(),
            max_height: args.max_height,
            rungs: custom_rungs,
        },
    );
    describe(&source, &ladder, args.json);

    let backends = data.open(&Default::default()).await?;
    let publisher = Publisher {
        films: backends.films.as_ref(),
        media: backends.media.as_ref(),
    };
    // Held until this ingest ends: a second ingest of the slug would sweep this one's version.
    let _lock = SlugLock::take(&data.root.join("locks"), &args.slug)?;
    sweep_staging(&data.staging());
    publisher.sweep(&args.slug).await;

    let version = format!("v{}", Utc::now().format("%Y%m%dT%H%M%S%3fZ"));
    let staging = Staging::create(&data.staging(), &args.slug, &version)?;

    let reporter = Reporter::new(source.duration_s, args.json);
    let prefix = format!("{version}/");
    let job = Job {
        source: &source,
        limits: &limits,
        ladder: &ladder,
        subtitles: &args.subtitles,
        out_dir: staging.path(),
        prefix: &prefix,
    };
    let packaged = monsoon_media::encode_and_package(job, |p| reporter.report(p)).await;
    reporter.finish();
    let packaged = packaged?;

    // Operator's key art, copied under names of our own (the originals are display text).
    let art = |image: &Option<PathBuf>, name: &str| -> anyhow::Result<Option<String>> {
        let Some(image) = image else { return Ok(None) };
        let ext = image
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .filter(|e| matches!(e.as_str(), "jpg" | "jpeg" | "png" | "webp"))
            .with_context(|| format!("{}: images must be .jpg, .png or .webp", image.display()))?;
        let file = format!("{name}.{ext}");
        std::fs::copy(image, staging.path().join(&file))
            .with_context(|| format!("copying {}", image.display()))?;
        Ok(Some(file))
    };
    let poster = art(&meta.poster, "poster-art")?.unwrap_or(packaged.poster.clone());
    let backdrop = art(&meta.backdrop, "backdrop")?.or(Some(packaged.poster.clone()));
    let record = PublishedVersion {
        version: version.clone(),
        published_at: Utc::now(),
        duration_s: packaged.duration_s,
        poster: Some(poster),
        backdrop,
        thumbnails: Some(format!(
            "{}/{}",
            monsoon_media::transcode::THUMBNAILS_DIR,
            monsoon_media::package::THUMBNAILS_VTT
        )),
        subtitles: packaged.subtitles.clone(),
        renditions: packaged.renditions.iter().map(rendition_record).collect(),
    };
    let before_commit = async {
        if std::env::var_os("MONSOON_TEST_HANG_BEFORE_COMMIT").is_some() {
            // Test hook: lets a test SIGKILL the ingest between the move and the catalog commit.
            eprintln!("test hook: waiting before the catalog commit");
            std::future::pending::<()>().await;
        }
    };
    publisher
        .publish(&args.slug, &meta, staging, &record, before_commit)
        .await?;
    Ok(Published {
        slug: args.slug,
        version,
    })
}

fn rendition_record(r: &monsoon_media::MeasuredRendition) -> Rendition {
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

fn describe(source: &Source, ladder: &Ladder, json_output: bool) {
    let v = &source.video;
    let rungs: Vec<String> = ladder
        .rungs
        .iter()
        .map(|r| format!("{}x{}@{}k", r.width, r.height, r.average_bitrate / 1000))
        .collect();
    if json_output {
        println!(
            "{}",
            json!({
                "event": "planned",
                "source": {"width": v.display_width, "height": v.display_height, "fps": v.fps,
                           "duration_s": source.duration_s, "audio": source.audio.is_some()},
                "rungs": rungs,
                "audio": ladder.audio.iter().map(|a| &a.name).collect::<Vec<_>>(),
                // Each rung's exact encoder options, for bench/ladder.sh's peers.
                "encoders": (0..ladder.rungs.len())
                    .map(|i| monsoon_media::transcode::video_encoder_args(ladder, i))
                    .collect::<Vec<_>>(),
            })
        );
    } else {
        eprintln!(
            "source {}: {}x{} {:.3} fps, {:.1} s, {}",
            source.path.display(),
            v.display_width,
            v.display_height,
            v.fps,
            source.duration_s,
            if source.audio.is_some() {
                "with audio"
            } else {
                "no audio"
            }
        );
        eprintln!(
            "ladder: {} + audio {:?}",
            rungs.join(" "),
            ladder.audio.iter().map(|a| &a.name).collect::<Vec<_>>()
        );
    }
}

/// Shows ffmpeg's progress as a bar (percent, speed ×realtime, ETA) or as JSON lines.
struct Reporter {
    bar: Option<ProgressBar>,
    duration_s: f64,
}

impl Reporter {
    fn new(duration_s: f64, json_output: bool) -> Self {
        let bar = (!json_output).then(|| {
            let bar = ProgressBar::new(1000);
            bar.set_style(
                ProgressStyle::with_template(
                    "transcoding [{elapsed_precise}] {wide_bar} {percent:>3}% {msg} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(500));
            bar
        });
        Self { bar, duration_s }
    }

    fn report(&self, p: Progress) {
        let fraction = (p.out_time_s / self.duration_s.max(0.001)).clamp(0.0, 1.0);
        match &self.bar {
            Some(bar) => {
                bar.set_position((fraction * 1000.0) as u64);
                bar.set_message(format!("{:.2}× realtime", p.speed));
            }
            None => println!(
                "{}",
                json!({"event": "progress", "percent": (fraction * 1000.0).round() / 10.0,
                       "out_time_s": p.out_time_s, "speed": p.speed, "done": p.done})
            ),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
