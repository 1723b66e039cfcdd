//! `monsoon ingest`: parses the arguments, opens the backends and runs the pipeline of
//! `monsoon_ingest` (probe → ladder → one ffmpeg → package → verify → publish), showing what it
//! planned and its progress as text and a bar, or as JSON lines (`--json`).

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use indicatif::{ProgressBar, ProgressStyle};
use monsoon_backends::{Backends, DataDir};
use monsoon_catalog::publish::Publisher;
use monsoon_ingest::{Destination, Published, Request};
use monsoon_media::{Codec, Progress, Quality, Subtitle};
use serde_json::json;

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
    #[arg(long, default_value = "balanced",
          value_parser = PossibleValuesParser::new(Quality::NAMES).try_map(|s| s.parse::<Quality>()))]
    pub quality: Quality,
    /// Highest rung to encode (e.g. 720 for a quick preview); defaults to the source height.
    #[arg(long)]
    pub max_height: Option<u32>,
    /// A sidecar subtitle file (SRT, WebVTT or ASS) and its language, as `LANG=FILE`
    /// (e.g. `vi=phim.vi.srt`); repeat for each language.
    #[arg(long = "subtitles", value_name = "LANG=FILE")]
    pub subtitles: Vec<Subtitle>,
    /// Video codecs of the ladder, comma-separated: `h264` (always) and `av1` for an AV1
    /// ladder beside it (docs/INGEST.md, "Codecs"). Overrides film.toml's `codecs`; without
    /// either, H.264 alone.
    #[arg(long, value_name = "CODECS", value_delimiter = ',')]
    pub codecs: Option<Vec<Codec>>,
    /// Print progress as JSON lines on stdout instead of a progress bar.
    #[arg(long)]
    pub json: bool,
    /// Check and probe the master, then record a job instead of transcoding here: `monsoon
    /// serve` runs it on one machine (SQLite), `monsoon worker`s on PostgreSQL. Workers open
    /// the master, the subtitles and film.toml's images by the same absolute paths (a shared
    /// mount).
    #[arg(long)]
    pub submit: bool,
}

impl IngestArgs {
    /// What to ingest, as the pipeline takes it.
    pub fn request(self) -> Request {
        Request {
            file: self.file,
            slug: self.slug,
            meta: self.meta,
            quality: self.quality,
            max_height: self.max_height,
            subtitles: self.subtitles,
            codecs: self.codecs,
        }
    }
}

pub async fn run(data: &DataDir, args: IngestArgs) -> anyhow::Result<ExitCode> {
    if args.submit {
        return crate::jobs::submit(data, args).await;
    }
    let json_output = args.json;
    let slug = args.slug.clone();
    let ingest = ingest(data, args.request(), json_output);
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

/// Checks, plans and publishes `request` into the data directory's backends. Everything that
/// can be refused is refused before the data directory is touched.
///
/// Without `--meta`, the film keeps the metadata the catalog has for it
/// (`monsoon_ingest::plan_stored`); the catalog is opened first then.
pub async fn ingest(
    data: &DataDir,
    request: Request,
    json_output: bool,
) -> anyhow::Result<Published> {
    // For the audit log: the master's name, not the machine's directories.
    let master = request
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (plan, backends) = if request.meta.is_some() {
        let plan = monsoon_ingest::plan(request).await?;
        (plan, data.open().await?)
    } else {
        // The slug is checked before the catalog is opened to read the film's metadata.
        monsoon_catalog::validate_slug(&request.slug)?;
        let backends = data.open().await?;
        let plan = monsoon_ingest::plan_stored(request, backends.films.as_ref()).await?;
        (plan, backends)
    };
    if json_output {
        println!("{}", plan.planned_event());
    } else {
        eprintln!("{}", plan.summary());
    }

    let reporter = Reporter::new(plan.source.duration_s, json_output);
    let published = plan
        .publish(
            destination(data, &backends),
            |p| reporter.report(p),
            before_commit(),
        )
        .await;
    reporter.finish();
    let published = published?;
    monsoon_catalog::operators::record_with(
        backends.audit.as_ref(),
        monsoon_catalog::Action::FilmPublished,
        &published.slug,
        json!({ "version": published.version, "master": master }),
    )
    .await;
    Ok(published)
}

/// Where this machine builds versions (its data directory's staging and locks) and publishes
/// them (the backends' catalog and media store).
pub fn destination<'a>(data: &'a DataDir, backends: &'a Backends) -> Destination<'a> {
    Destination {
        publisher: Publisher {
            films: backends.films.as_ref(),
            media: backends.media.as_ref(),
        },
        staging: data.staging(),
        locks: data.locks(),
    }
}

/// Test hook: with `MONSOON_TEST_HANG_BEFORE_COMMIT` set, the ingest waits for ever between
/// the move into the media store and the catalog commit, so a test can SIGKILL it there.
fn before_commit() -> impl Future<Output = ()> {
    let hang = std::env::var_os("MONSOON_TEST_HANG_BEFORE_COMMIT").is_some();
    async move {
        if hang {
            eprintln!("test hook: waiting before the catalog commit");
            std::future::pending::<()>().await;
        }
    }
}

/// Shows ffmpeg's progress as a bar (percent, speed ×realtime, ETA) or as JSON lines.
pub struct Reporter {
    bar: Option<ProgressBar>,
    duration_s: f64,
}

impl Reporter {
    pub fn new(duration_s: f64, json_output: bool) -> Self {
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

    pub fn report(&self, p: Progress) {
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

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
