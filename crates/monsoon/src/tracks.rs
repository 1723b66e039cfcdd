//! `monsoon add-track`: another audio language or subtitles for a published film, without its
//! video encoded again (`monsoon_ingest::tracks`; `docs/INGEST.md`, "Adding audio and
//! subtitles").

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use monsoon_backends::DataDir;
use monsoon_catalog::operators::{Action, record_with};
use monsoon_ingest::jobs::{DEFAULT_ATTEMPTS, track_submission};
use monsoon_ingest::tracks::Track;

use crate::ingest::{Reporter, destination};

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("track").required(true).args(["audio", "subtitles"])))]
pub struct AddTrackArgs {
    /// The film's slug.
    pub slug: String,
    /// An audio track as long as the film (any file ffmpeg reads with an audio stream): a dub,
    /// an audio-described mix.
    #[arg(long, value_name = "FILE")]
    pub audio: Option<PathBuf>,
    /// Subtitles (SRT, WebVTT or ASS); a language the film has already is replaced.
    #[arg(long, value_name = "FILE")]
    pub subtitles: Option<PathBuf>,
    /// The track's language, a language tag (`en`, `vi`, `pt-BR`).
    #[arg(long)]
    pub lang: String,
    /// What the player's menu calls it (default: the language's own name, e.g. "English").
    #[arg(long)]
    pub label: Option<String>,
    /// Queue a job instead (for `monsoon serve`'s worker on one machine, `monsoon worker`s on
    /// PostgreSQL), after the same checks.
    #[arg(long)]
    pub submit: bool,
}

pub async fn run(data: &DataDir, args: AddTrackArgs) -> anyhow::Result<ExitCode> {
    let label = args.label.as_deref();
    let track = match (args.audio, args.subtitles) {
        (Some(file), _) => Track::audio(file, &args.lang, label),
        (None, Some(file)) => Track::subtitles(file, &args.lang, label),
        (None, None) => anyhow::bail!("give --audio FILE or --subtitles FILE"),
    };
    track.check()?;
    let backends = data.open().await?;
    let film = backends
        .films
        .get(&args.slug)
        .await?
        .ok_or_else(|| anyhow::anyhow!("there is no film `{}`; ingest it first", args.slug))?;
    if args.submit {
        let job = track_submission(&args.slug, &track, DEFAULT_ATTEMPTS).await?;
        let job = crate::jobs::queue(&backends, &job).await?;
        eprintln!(
            "submitted job {} adding the track {:?} to `{}`; `monsoon jobs` shows its progress",
            job.id,
            track.label(),
            job.slug
        );
        return Ok(ExitCode::SUCCESS);
    }
    let reporter = Reporter::new(film.current.duration_s, false);
    let added = monsoon_ingest::tracks::add(
        destination(data, &backends),
        &args.slug,
        &track,
        |p| reporter.report(p),
        async {},
    )
    .await;
    reporter.finish();
    let published = added?;
    let detail = serde_json::json!({ "version": published.version, "lang": track.lang() });
    record_with(
        backends.audit.as_ref(),
        Action::TrackAdded,
        &args.slug,
        detail,
    )
    .await;
    eprintln!(
        "published {} as version {} with the track added; viewers already watching keep the \
         previous version for its grace period",
        published.slug, published.version
    );
    Ok(ExitCode::SUCCESS)
}
