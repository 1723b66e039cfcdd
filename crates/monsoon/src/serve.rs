//! `monsoon serve`: the origin, the API and the viewer pages on one listener.
//!
//! Settings are layered, later wins: built-in defaults → `--config monsoon.toml` (`[serve]`
//! table; see `monsoon.example.toml`) → `MONSOON_*` environment variables → flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use monsoon_backends::{DataDir, StorageConfig};
use monsoon_server::{AdminConfig, AppState, MetricsAccess, ServeConfig};
use serde::Deserialize;

use crate::ingest::stop_signal;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Settings file (TOML); see monsoon.example.toml.
    #[arg(long, env = "MONSOON_CONFIG")]
    pub config: Option<PathBuf>,
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

/// The file layout of `monsoon.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub serve: ServeConfig,
    pub audience: monsoon_audience::Config,
    pub admin: AdminConfig,
    /// Where the catalog, the audience and the media live (`monsoon_backends`);
    /// `--database` / `--media` win over it.
    pub storage: StorageConfig,
    /// `monsoon worker`'s settings.
    pub worker: monsoon_ingest::worker::Config,
    /// Master uploads through `/admin/api/uploads` (`<data>/uploads`).
    pub uploads: monsoon_server::UploadConfig,
}

impl Settings {
    /// Defaults, then the file, then environment and flags (clap merged those two).
    pub fn load(args: ServeArgs) -> anyhow::Result<Self> {
        let mut settings = match &args.config {
            Some(path) => read_config(path)?,
            None => Settings::default(),
        };
        let config = &mut settings.serve;
        config.listen = args.listen.unwrap_or(config.listen);
        config.web_dir = args.web_dir.unwrap_or_else(|| config.web_dir.clone());
        config.cache_bytes = args.cache_bytes.unwrap_or(config.cache_bytes);
        config.access_log = args.access_log.unwrap_or(config.access_log);
        config.drain_deadline_s = args.drain_deadline_s.unwrap_or(config.drain_deadline_s);
        config.metrics = args.metrics.unwrap_or(config.metrics);
        Ok(settings)
    }
}

pub fn read_config(path: &Path) -> anyhow::Result<Settings> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

pub async fn run(data: &DataDir, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(args)?;
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
    let backends = data.open(&settings.storage).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_is_complete_and_valid() {
        let text = include_str!("../../../monsoon.example.toml");
        let file: Settings = toml::from_str(text).expect("monsoon.example.toml parses");
        let defaults = ServeConfig::default();
        // The example documents the defaults (web_dir aside, which depends on the install).
        assert_eq!(file.serve.cache_bytes, defaults.cache_bytes);
        assert_eq!(file.serve.header_timeout_s, defaults.header_timeout_s);
        assert_eq!(file.serve.write_timeout_s, defaults.write_timeout_s);
        assert_eq!(file.serve.drain_deadline_s, defaults.drain_deadline_s);
        assert_eq!(file.serve.body_timeout_s, defaults.body_timeout_s);
        assert_eq!(
            file.serve.max_connections_per_addr,
            defaults.max_connections_per_addr
        );
        assert_eq!(file.serve.trusted_proxies, defaults.trusted_proxies);
        assert_eq!(file.serve.metrics, defaults.metrics);
        assert_eq!(
            file.admin.sign_in_attempts_per_minute,
            AdminConfig::default().sign_in_attempts_per_minute
        );
        assert_eq!(
            file.admin.session_times(),
            AdminConfig::default().session_times()
        );
        assert_eq!(file.audience, monsoon_audience::Config::default());
        assert_eq!(file.storage, StorageConfig::default());
        assert_eq!(file.worker, monsoon_ingest::worker::Config::default());
        assert_eq!(file.uploads, monsoon_server::UploadConfig::default());
        for key in ["database", "media", "in_serve"] {
            assert!(
                text.contains(&format!("\n# {key} = ")),
                "{key} is not documented"
            );
        }
        // Every key of the struct appears in the example.
        for key in [
            "listen",
            "web_dir",
            "cache_bytes",
            "cache_max_object_bytes",
            "header_timeout_s",
            "body_timeout_s",
            "write_timeout_s",
            "max_header_bytes",
            "readiness_grace_s",
            "drain_deadline_s",
            "max_connections_per_addr",
            "access_log",
            "catalog_refresh_ms",
            "replaced_version_grace_s",
            "http_threads",
            "public_url",
            "fast_path",
            "trusted_proxies",
            "metrics",
            "token_hash",
            "sign_in_attempts_per_minute",
            "session_absolute_s",
            "session_idle_s",
            "lease_s",
            "poll_s",
            "max_upload_bytes",
            "max_total_bytes",
            "min_free_bytes",
            "max_concurrent_uploads",
            "expiry_s",
            "patch_timeout_s",
            "claimed_sweep_s",
        ] {
            assert!(
                text.contains(&format!("\n{key} = ")),
                "{key} is not documented"
            );
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Settings>("[serve]\ncache_byte = 1\n").is_err());
    }

    #[test]
    fn metrics_exposure_is_one_of_three_words() {
        for (text, access) in [
            ("public", MetricsAccess::Public),
            ("admin", MetricsAccess::Admin),
            ("off", MetricsAccess::Off),
        ] {
            let file: Settings =
                toml::from_str(&format!("[serve]\nmetrics = \"{text}\"\n")).unwrap();
            assert_eq!(file.serve.metrics, access);
            assert_eq!(text.parse::<MetricsAccess>(), Ok(access));
        }
        assert!(toml::from_str::<Settings>("[serve]\nmetrics = \"yes\"\n").is_err());
        let err = "yes".parse::<MetricsAccess>().unwrap_err();
        assert!(err.contains("\"yes\""), "{err}");
        assert_eq!(ServeConfig::default().metrics, MetricsAccess::Admin);
    }
}
