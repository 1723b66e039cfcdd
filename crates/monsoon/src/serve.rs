//! `monsoon serve`: the origin, the API and the viewer pages on one listener.
//!
//! Its settings: `[serve]`, `[admin]`, `[audience]`, `[uploads]` and `[worker]` of
//! `monsoon.toml` (`settings.rs`), with the flags below laid over `[serve]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use monsoon_backends::DataDir;
use monsoon_server::{AppState, MetricsAccess, ServeConfig};

use crate::ingest::stop_signal;
use crate::settings::Settings;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Port 0 picks a free port (printed on start).
    #[arg(long, env = "MONSOON_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory of the built player assets (`make web` builds `web/dist`).
    #[arg(long, env = "MONSOON_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// Bytes of hot segments and playlists kept in memory (0 turns the cache off).
    #[arg(long, env = "MONSOON_CACHE_BYTES")]
    pub cache_bytes: Option<u64>,
    /// Log one line per request (`true`/`false`).
    #[arg(long, env = "MONSOON_ACCESS_LOG")]
    pub access_log: Option<bool>,
    /// Seconds in-flight responses get to finish after SIGTERM.
    #[arg(long, env = "MONSOON_DRAIN_DEADLINE_S")]
    pub drain_deadline_s: Option<u64>,
    /// Who may read /metrics: public, admin (the admin token or session) or off.
    #[arg(long, env = "MONSOON_METRICS")]
    pub metrics: Option<MetricsAccess>,
}

impl ServeArgs {
    /// The flags (and their environment variables) over the file's `[serve]`.
    fn over(self, config: &mut ServeConfig) {
        config.listen = self.listen.unwrap_or(config.listen);
        config.web_dir = self.web_dir.unwrap_or_else(|| config.web_dir.clone());
        config.cache_bytes = self.cache_bytes.unwrap_or(config.cache_bytes);
        config.access_log = self.access_log.unwrap_or(config.access_log);
        config.drain_deadline_s = self.drain_deadline_s.unwrap_or(config.drain_deadline_s);
        config.metrics = self.metrics.unwrap_or(config.metrics);
    }
}

pub async fn run(
    data: &DataDir,
    mut settings: Settings,
    args: ServeArgs,
) -> anyhow::Result<ExitCode> {
    args.over(&mut settings.serve);
    serve(data, &settings, |_| {}).await?;
    Ok(ExitCode::SUCCESS)
}

/// Serves until SIGINT or SIGTERM; `on_ready` gets the base URL once listening.
pub async fn serve(
    data: &DataDir,
    settings: &Settings,
    on_ready: impl FnOnce(&str),
) -> anyhow::Result<()> {
    let config = &settings.serve;
    config.check().map_err(anyhow::Error::msg)?;
    let admin = settings
        .admin
        .auth(config.metrics)
        .map_err(anyhow::Error::msg)?;
    let backends = data.open().await?;
    let store = backends.audience().await?;
    let key = backends.audience_key(data).await?;
    // One machine transcodes the jobs submitted to it itself (`[worker] in_serve`).
    let in_serve = settings
        .worker
        .in_serve
        .unwrap_or_else(|| backends.single_machine());
    let worker = in_serve
        .then(|| crate::worker::in_serve(data, &settings.worker, &backends))
        .transpose()?;
    let audience = Arc::new(
        monsoon_audience::Audience::open(settings.audience.clone(), key, store)
            .await
            .context("loading the audience")?,
    );
    audience.spawn_sampler();
    let options = config
        .options(admin, backends.jobs, backends.operators, backends.audit)
        .map_err(anyhow::Error::msg)?;
    let state = AppState::new(backends.films, backends.media, audience, options)
        .await
        .map_err(|e| anyhow::anyhow!("starting the server: {e}"))?;
    // The studio's image uploads are decoded and resized by ffmpeg (without it installed, an
    // upload says so; nothing else of `serve` runs it).
    state.set_image_tool(Arc::new(monsoon_media::image::FfmpegImages));
    state.spawn_catalog_refresh(config.catalog_refresh());
    state.spawn_retirement(config.replaced_version_grace());
    let uploads = monsoon_server::Uploads::open(
        data.uploads(),
        settings.uploads.clone(),
        Arc::new(monsoon_ingest::uploads::UploadProbe),
    )
    .map_err(|e| anyhow::anyhow!("opening the uploads: {e}"))?;
    state
        .enable_uploads(uploads, Arc::new(monsoon_ingest::uploads::UploadJobs))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    monsoon_server::serve_on(
        config.listen,
        config.http_threads(),
        state,
        config.limits(),
        |addr| {
            let url = format!("http://{addr}");
            // Printed on stdout, one line, so scripts and tests can wait for it.
            println!("listening on {url}");
            on_ready(&url);
        },
        async {
            let signal = stop_signal().await;
            tracing::info!(signal, "shutting down: draining");
        },
    )
    .await
    .with_context(|| format!("serving on {}", config.listen))?;
    if let Some(worker) = worker {
        worker.stop().await;
    }
    Ok(())
}
