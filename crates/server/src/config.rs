//! `monsoon serve`'s settings: the `[serve]` and `[admin]` tables of `monsoon.toml`
//! (`monsoon.example.toml` documents every key), and what the server makes of them. The
//! binary reads the file and lays the flags over it; the meaning of each setting is here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use monsoon_catalog::{AuditLog, JobQueue, Operators};

use crate::{
    AdminAuth, ConnLimits, HotCache, MetricsAccess, Options, SessionTimes, TrustedProxies,
};

/// Default of `[serve] replaced_version_grace_s`: six hours, longer than any feature film (a
/// longer one gets twice its running time).
const DEFAULT_GRACE_S: u64 = 6 * 3600;
/// Largest `[serve] replaced_version_grace_s`: 30 days.
const MAX_GRACE_S: u64 = 30 * 24 * 3600;
/// Shortest `[serve] catalog_refresh_ms` used, whatever the file says.
const MIN_CATALOG_REFRESH_MS: u64 = 100;

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
        let times = SessionTimes::default();
        Self {
            token_hash: String::new(),
            sign_in_attempts_per_minute: 10,
            session_absolute_s: times.absolute.as_secs(),
            session_idle_s: times.idle.as_secs(),
        }
    }
}

impl ServeConfig {
    /// Checks what the types alone do not; the error names the setting, its value and the rule.
    pub fn check(&self) -> Result<(), String> {
        if self.replaced_version_grace_s > MAX_GRACE_S {
            return Err(format!(
                "[serve] replaced_version_grace_s = {}: at most {MAX_GRACE_S} (30 days); replaced versions are kept on the media store that long",
                self.replaced_version_grace_s
            ));
        }
        TrustedProxies::parse(&self.trusted_proxies).map(drop)
    }

    /// The connections' deadlines and bounds.
    pub fn limits(&self) -> ConnLimits {
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

    /// The server's options: these settings, with the admin's authentication and the
    /// catalog database's job queue, operators and audit log.
    pub fn options(
        &self,
        admin: AdminAuth,
        jobs: Arc<dyn JobQueue>,
        operators: Arc<dyn Operators>,
        audit: Arc<dyn AuditLog>,
    ) -> Result<Options, String> {
        Ok(Options {
            hot: HotCache::new(self.cache_bytes, self.cache_max_object_bytes),
            web_dir: self.web_dir.clone(),
            access_log: self.access_log,
            admin,
            public_url: Some(self.public_url.clone()).filter(|u| !u.is_empty()),
            fast_path: self.fast_path,
            trusted_proxies: TrustedProxies::parse(&self.trusted_proxies)?,
            metrics: self.metrics,
            jobs: Some(jobs),
            operators,
            audit,
        })
    }

    /// Threads accepting and answering connections: `http_threads`, or one per core.
    pub fn http_threads(&self) -> usize {
        match self.http_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// How often the catalog is read again for films published by other processes.
    pub fn catalog_refresh(&self) -> Duration {
        Duration::from_millis(self.catalog_refresh_ms.max(MIN_CATALOG_REFRESH_MS))
    }

    /// How long a replaced version stays served to the viewers already playing it.
    pub fn replaced_version_grace(&self) -> Duration {
        Duration::from_secs(self.replaced_version_grace_s)
    }
}

impl AdminConfig {
    /// How long a session lasts.
    pub fn session_times(&self) -> SessionTimes {
        SessionTimes {
            absolute: Duration::from_secs(self.session_absolute_s),
            idle: Duration::from_secs(self.session_idle_s),
        }
    }

    /// The admin's authentication; `metrics` is `[serve] metrics`, which without a token hash
    /// only a signed-in browser can read (said as a warning).
    pub fn auth(&self, metrics: MetricsAccess) -> Result<AdminAuth, String> {
        let token_hash = Some(self.token_hash.clone()).filter(|h| !h.is_empty());
        if token_hash.is_none() && metrics == MetricsAccess::Admin {
            tracing::warn!(
                "[serve] metrics = \"admin\" but [admin] token_hash is empty: /metrics answers only \
                 a signed-in operator's browser; make a token for Prometheus with `monsoon admin-token`, \
                 or set metrics = \"public\" on a private listener"
            );
        }
        // Sessions live in the database: any node of a cluster accepts the ones another started.
        AdminAuth::new(
            token_hash,
            self.sign_in_attempts_per_minute,
            self.session_times(),
        )
    }
}

/// `web/dist` of the source tree this binary was built from: right for `cargo run` and
/// `make`; installations set `web_dir`.
pub fn default_web_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/dist"))
}
