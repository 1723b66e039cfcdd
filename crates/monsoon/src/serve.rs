//! `monsoon serve`: the origin, the API and the viewer pages on one listener.
//!
//! Settings are layered, later wins: built-in defaults → `--config monsoon.toml` (`[serve]`
//! table; see `monsoon.example.toml`) → `MONSOON_*` environment variables → flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use monsoon_server::{AppState, ConnLimits, HotCache, MetricsAccess};
use serde::Deserialize;

use crate::DataDir;
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

/// Default of `[serve] replaced_version_grace_s`: six hours, longer than any feature film (a
/// longer one gets twice its running time).
const DEFAULT_GRACE_S: u64 = 6 * 3600;
/// Largest `[serve] replaced_version_grace_s`: 30 days.
const MAX_GRACE_S: u64 = 30 * 24 * 3600;

/// Every setting of `monsoon serve`, as read from the `[serve]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub web_dir: PathBuf,
    pub cache_bytes: u64,
    pub cache_max_object_bytes: u64,
    pub header_timeout_s: u64,
    /// A request body must arrive whole within this many seconds of its head.
    pub body_timeout_s: u64,
    pub write_timeout_s: u64,
    pub max_header_bytes: usize,
    pub readiness_grace_s: u64,
    pub drain_deadline_s: u64,
    /// Connections one address (IPv4, or IPv6 /64) may hold open; 0 for no limit.
    pub max_connections_per_addr: u32,
    pub access_log: bool,
    pub catalog_refresh_ms: u64,
    /// How long a version replaced by a re-ingest stays served to viewers already playing it,
    /// seconds (at least twice its running time; `docs/INGEST.md`, "Re-ingest").
    pub replaced_version_grace_s: u64,
    pub http_threads: usize,
    /// `https://host` of the public site, for absolute links in pages and calendar events
    /// (empty: the listen address), and the sign of HTTPS for the admin cookie.
    pub public_url: String,
    /// Answer HTTP/1.1 media requests on the fast path (sendfile, no router); off sends every
    /// request through hyper and the router.
    pub fast_path: bool,
    /// Addresses or networks of the proxies in front, whose `X-Forwarded-For` and
    /// `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Vec<String>,
    /// Who may read `/metrics`.
    pub metrics: MetricsAccess,
}

impl Default for ServeConfig {
    fn default() -> Self {
        let limits = ConnLimits::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            web_dir: default_web_dir(),
            cache_bytes: 512 * 1024 * 1024,
            cache_max_object_bytes: 16 * 1024 * 1024,
            header_timeout_s: limits.header_timeout.as_secs(),
            body_timeout_s: limits.body_timeout.as_secs(),
            write_timeout_s: limits.write_timeout.as_secs(),
            max_header_bytes: limits.max_header_bytes,
            readiness_grace_s: limits.readiness_grace.as_secs(),
            drain_deadline_s: limits.drain_deadline.as_secs(),
            max_connections_per_addr: limits.max_connections_per_addr,
            access_log: true,
            catalog_refresh_ms: 1000,
            replaced_version_grace_s: DEFAULT_GRACE_S,
            http_threads: 0,
            public_url: String::new(),
            fast_path: true,
            trusted_proxies: Vec::new(),
            metrics: MetricsAccess::default(),
        }
    }
}

/// The file layout of `monsoon.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub serve: ServeConfig,
    pub audience: monsoon_audience::Config,
    pub admin: AdminConfig,
    /// Where the catalog, the audience and the media live (`crates/monsoon/src/backends.rs`);
    /// `--database` / `--media` win over it.
    pub storage: crate::backends::StorageConfig,
    /// `monsoon worker`'s settings.
    pub worker: crate::worker::WorkerConfig,
    /// Master uploads through `/admin/api/uploads` (`<data>/uploads`).
    pub uploads: monsoon_server::UploadConfig,
}

/// The `[admin]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// argon2 hash of the admin token (`monsoon admin-token` makes one); empty turns
    /// `/admin` off.
    pub token_hash: String,
    /// Password and token checks one client address, and one operator name, may ask for per
    /// minute (sign-in and Bearer).
    pub sign_in_attempts_per_minute: u32,
    /// Seconds a session lasts from its sign-in, whatever its use.
    pub session_absolute_s: u64,
    /// Seconds a session lasts without a request.
    pub session_idle_s: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        let times = monsoon_server::SessionTimes::default();
        Self {
            token_hash: String::new(),
            sign_in_attempts_per_minute: 10,
            session_absolute_s: times.absolute.as_secs(),
            session_idle_s: times.idle.as_secs(),
        }
    }
}

impl AdminConfig {
    pub fn session_times(&self) -> monsoon_server::SessionTimes {
        monsoon_server::SessionTimes {
            absolute: Duration::from_secs(self.session_absolute_s),
            idle: Duration::from_secs(self.session_idle_s),
        }
    }
}

impl Settings {
    /// Defaults, then the file, then environment and flags (clap merged those two).
    pub fn load(args: &ServeArgs) -> anyhow::Result<Self> {
        let mut settings = match &args.config {
            Some(path) => read_config(path)?,
            None => Settings::default(),
        };
        let config = &mut settings.serve;
        if let Some(v) = args.listen {
            config.listen = v;
        }
        if let Some(v) = &args.web_dir {
            config.web_dir = v.clone();
        }
        if let Some(v) = args.cache_bytes {
            config.cache_bytes = v;
        }
        if let Some(v) = args.access_log {
            config.access_log = v;
        }
        if let Some(v) = args.drain_deadline_s {
            config.drain_deadline_s = v;
        }
        if let Some(v) = args.metrics {
            config.metrics = v;
        }
        Ok(settings)
    }
}

impl ServeConfig {
    fn limits(&self) -> ConnLimits {
        ConnLimits {
            header_timeout: Duration::from_secs(self.header_timeout_s),
            body_timeout: Duration::from_secs(self.body_timeout_s),
            write_timeout: Duration::from_secs(self.write_timeout_s),
            max_header_bytes: self.max_header_bytes,
            readiness_grace: Duration::from_secs(self.readiness_grace_s),
            drain_deadline: Duration::from_secs(self.drain_deadline_s),
            max_connections_per_addr: self.max_connections_per_addr,
        }
    }
}

pub fn read_config(path: &Path) -> anyhow::Result<Settings> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// `web/dist` of the source tree this binary was built from: right for `cargo run` and
/// `make`; installations set `web_dir`.
pub fn default_web_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/dist"))
}

pub async fn run(data: &DataDir, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(&args)?;
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
    if config.replaced_version_grace_s > MAX_GRACE_S {
        anyhow::bail!(
            "[serve] replaced_version_grace_s = {}: at most {MAX_GRACE_S} (30 days); replaced versions are kept on the media store that long",
            config.replaced_version_grace_s
        );
    }
    let token_hash = Some(settings.admin.token_hash.clone()).filter(|h| !h.is_empty());
    if token_hash.is_none() && config.metrics == MetricsAccess::Admin {
        tracing::warn!(
            "[serve] metrics = \"admin\" but [admin] token_hash is empty: /metrics answers only \
             a signed-in operator's browser; make a token for Prometheus with `monsoon admin-token`, \
             or set metrics = \"public\" on a private listener"
        );
    }
    let trusted_proxies = monsoon_server::TrustedProxies::parse(&config.trusted_proxies)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let audience = settings.audience.clone();
    // Sessions live in the database: any node of a cluster accepts the ones another started.
    let admin = monsoon_server::AdminAuth::new(
        token_hash,
        settings.admin.sign_in_attempts_per_minute,
        settings.admin.session_times(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let backends = data.open(&settings.storage).await?;
    let store = backends.audience().await?;
    let key = backends.audience_key(data).await?;
    let jobs = Arc::clone(&backends.jobs);
    // One machine transcodes the jobs submitted to it itself (`[worker] in_serve`).
    let in_serve = settings
        .worker
        .in_serve
        .unwrap_or_else(|| backends.single_machine());
    let worker = if in_serve {
        Some(crate::worker::InServe::spawn(
            data,
            &settings.worker,
            &backends,
        )?)
    } else {
        None
    };
    let (films, media) = (backends.films, backends.media);
    let (operators, audit) = (backends.operators, backends.audit);
    let audience = Arc::new(
        monsoon_audience::Audience::open(audience, key, store)
            .await
            .context("loading the audience")?,
    );
    audience.spawn_sampler();
    let hot = HotCache::new(config.cache_bytes, config.cache_max_object_bytes);
    let options = monsoon_server::Options {
        hot,
        web_dir: config.web_dir.clone(),
        access_log: config.access_log,
        admin,
        public_url: Some(config.public_url.clone()).filter(|u| !u.is_empty()),
        fast_path: config.fast_path,
        trusted_proxies,
        metrics: config.metrics,
        jobs: Some(jobs),
        operators,
        audit,
    };
    let state = AppState::new(films, media, audience, options)
        .await
        .map_err(|e| anyhow::anyhow!("starting the server: {e}"))?;
    // The studio's image uploads are decoded and resized by ffmpeg (without it installed, an
    // upload says so; nothing else of `serve` runs it).
    state.set_image_tool(std::sync::Arc::new(monsoon_media::image::FfmpegImages));
    state.spawn_catalog_refresh(Duration::from_millis(config.catalog_refresh_ms.max(100)));
    state.spawn_retirement(Duration::from_secs(config.replaced_version_grace_s));
    let uploads = monsoon_server::Uploads::open(
        &data.uploads(),
        settings.uploads.clone(),
        Arc::new(crate::uploads::IngestProbe),
    )
    .map_err(|e| anyhow::anyhow!("opening the uploads: {e}"))?;
    state
        .enable_uploads(uploads, Arc::new(crate::uploads::IngestJobs))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let threads = match config.http_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    monsoon_server::serve_on(
        config.listen,
        threads,
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
        assert_eq!(file.storage, crate::backends::StorageConfig::default());
        assert_eq!(file.worker, crate::worker::WorkerConfig::default());
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
