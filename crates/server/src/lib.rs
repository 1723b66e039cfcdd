//! The HTTP face of Monsoon, on axum and hyper: media delivery (`/media`), the JSON API
//! (`/api/v1`), the viewer pages (`/`, `/films`, `/watch`, `/search`, error pages), the web app
//! manifest and favicon, the player's static assets, and the operations endpoints (`/healthz`,
//! `/readyz`, `/metrics`).
//!
//! Handlers are thin: they parse, call the catalog or the media store through their traits,
//! and map the result. The app is built by [`app`] so tests drive it in-process; [`serve_on`]
//! adds the fast path, the connection deadlines and graceful draining of [`conn`].

mod admin;
mod api;
mod assets;
mod audit;
mod client;
mod config;
pub mod conn;
mod coop;
mod csrf;
mod dashboard;
mod delivery;
mod edge;
mod error;
mod fast;
mod host;
mod i18n;
mod ics;
mod jobs;
mod limits;
mod live;
mod metrics;
mod operators;
mod pages;
pub mod parse;
mod search;
mod studio;
mod upload;
mod webapp;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use monsoon_catalog::{AuditLog, FilmRepository, ImageTool, JobQueue, MediaStore, Operators};
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{Predicate, SizeAbove};

pub use admin::{AdminAuth, Operator, SessionTimes, Via, check_token, hash_token, new_token};
pub use assets::Assets;
pub use client::TrustedProxies;
pub use config::{AdminConfig, ServeConfig, default_web_dir};
pub use delivery::HotCache;
pub use error::ApiError;
pub use jobs::JobMaker;
pub use limits::ConnLimits;
pub use live::LiveCatalog;
pub use metrics::{Metrics, MetricsAccess};
pub use upload::{
    ClaimedMaster, MasterProbe, MasterSummary, UploadConfig, UploadError, UploadKind, UploadState,
    UploadView, Uploads,
};

/// Everything a request handler may need, shared by all of them. Cloned for every request
/// (axum's `State`), so it is one `Arc`: a single reference count instead of one per field.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`AppState`].
#[derive(Debug)]
pub struct Shared {
    pub films: Arc<dyn FilmRepository>,
    pub media: Arc<dyn MediaStore>,
    /// Current versions and their object indexes, refreshed in the background.
    pub live: Arc<LiveCatalog>,
    /// Hot segments and playlists in memory.
    pub hot: HotCache,
    pub metrics: Arc<Metrics>,
    /// False once shutdown has begun: `/readyz` answers 503 so load balancers stop sending.
    pub ready: Arc<AtomicBool>,
    /// Built web assets (`web/dist`), served under `/static`.
    pub web_dir: PathBuf,
    /// Fingerprinted names of the built assets.
    pub assets: Assets,
    /// Log one line per request (target `monsoon::access`).
    pub access_log: bool,
    /// Sessions, heartbeats and audience counters.
    pub audience: Arc<monsoon_audience::Audience>,
    /// Who may use `/admin`.
    pub admin: Arc<AdminAuth>,
    /// `https://host` of the public site, for absolute links (canonical, Open Graph,
    /// calendar); without it, the address the server listens on ([`Shared::site_url`]).
    pub public_url: Option<String>,
    /// Answer HTTP/1.1 media requests on the fast path ([`fast`]) instead of the router.
    pub fast_path: bool,
    /// Proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed.
    pub trusted_proxies: TrustedProxies,
    /// Who may read `/metrics`.
    pub metrics_access: MetricsAccess,
    /// The address the listener is bound to, once it is.
    pub bound: OnceLock<SocketAddr>,
    /// The ingest job queue the dashboard shows (`/admin/api/jobs`); `None` for a server
    /// built without one (the router's tests).
    pub jobs: Option<Arc<dyn JobQueue>>,
    /// Master uploads (`/admin/api/uploads`), once [`AppState::enable_uploads`] gave them,
    /// with what turns a ready one into a job (`POST /admin/api/jobs`).
    pub uploads: OnceLock<(Arc<Uploads>, Arc<dyn jobs::JobMaker>)>,
    /// Decodes and resizes the studio's image uploads (`studio/images.rs`); set by
    /// [`AppState::set_image_tool`], unset: uploads answer 503.
    pub images: OnceLock<Arc<dyn ImageTool>>,
    /// The operators' accounts and sessions (`admin/`).
    pub operators: Arc<dyn Operators>,
    /// Who did what ([`Shared::audit`]).
    pub audit: Arc<dyn AuditLog>,
    /// How long a replaced poster or backdrop is kept before it is removed (ms), while pages
    /// and answers rendered before the change may still name it (`studio::ART_GRACE` unless
    /// [`AppState::set_art_grace`]).
    pub art_grace_ms: std::sync::atomic::AtomicU64,
}

/// The settings of [`AppState::new`] that are not backends.
#[derive(Debug)]
pub struct Options {
    pub hot: HotCache,
    pub web_dir: PathBuf,
    pub access_log: bool,
    pub admin: AdminAuth,
    pub public_url: Option<String>,
    pub fast_path: bool,
    pub trusted_proxies: TrustedProxies,
    pub metrics: MetricsAccess,
    /// The ingest job queue, on a PostgreSQL database; `None`: `/admin/api/jobs` answers 404.
    pub jobs: Option<Arc<dyn JobQueue>>,
    /// The operators' accounts and sessions, in the catalog's database.
    pub operators: Arc<dyn Operators>,
    /// The audit log, in the catalog's database.
    pub audit: Arc<dyn AuditLog>,
}

impl AppState {
    /// State over the given backends, with the catalog loaded once.
    pub async fn new(
        films: Arc<dyn FilmRepository>,
        media: Arc<dyn MediaStore>,
        audience: Arc<monsoon_audience::Audience>,
        options: Options,
    ) -> Result<Self, String> {
        let public_url = options
            .public_url
            .as_deref()
            .map(check_public_url)
            .transpose()?;
        let live = Arc::new(LiveCatalog::default());
        live.refresh(films.as_ref(), media.as_ref()).await?;
        Ok(Self(Arc::new(Shared {
            films,
            media,
            live,
            hot: options.hot,
            metrics: Arc::new(Metrics::default()),
            ready: Arc::new(AtomicBool::new(true)),
            assets: Assets::load(&options.web_dir),
            web_dir: options.web_dir,
            access_log: options.access_log,
            audience,
            admin: Arc::new(options.admin),
            public_url,
            fast_path: options.fast_path,
            trusted_proxies: options.trusted_proxies,
            metrics_access: options.metrics,
            bound: OnceLock::new(),
            jobs: options.jobs,
            uploads: OnceLock::new(),
            images: OnceLock::new(),
            operators: options.operators,
            audit: options.audit,
            art_grace_ms: std::sync::atomic::AtomicU64::new(
                u64::try_from(studio::ART_GRACE.as_millis()).unwrap_or(u64::MAX),
            ),
        })))
    }

    /// How long a replaced image is kept ([`studio::ART_GRACE`] unless set): the tests
    /// shorten it.
    pub fn set_art_grace(&self, grace: Duration) {
        self.art_grace_ms.store(
            u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Turns on `/admin/api/uploads` over `uploads` (until then it answers 404), with its
    /// expiry sweeper and the checks a stop interrupted, and `POST /admin/api/jobs` through
    /// `maker`.
    pub fn enable_uploads(
        &self,
        uploads: Arc<Uploads>,
        maker: Arc<dyn jobs::JobMaker>,
    ) -> Result<(), String> {
        uploads.spawn_sweeper();
        uploads.resume_checks();
        if let Some(queue) = &self.jobs {
            jobs::spawn_claimed_sweeper(
                Arc::clone(queue),
                uploads.dir().join(jobs::CLAIMED_DIR),
                Duration::from_secs(uploads.config().claimed_sweep_s),
            );
        }
        self.uploads
            .set((uploads, maker))
            .map_err(|_| "uploads are already enabled".to_owned())
    }

    /// Gives the studio its image tool (ffmpeg, `monsoon_media::image::FfmpegImages`): the
    /// binary's choice, so this crate never runs ffmpeg itself. Once; later calls are ignored.
    pub fn set_image_tool(&self, tool: Arc<dyn ImageTool>) {
        let _ = self.images.set(tool);
    }

    /// Keeps the in-memory catalog in step with the repository.
    pub fn spawn_catalog_refresh(&self, every: Duration) {
        self.live
            .spawn_refresh(Arc::clone(&self.films), Arc::clone(&self.media), every);
    }

    /// Removes replaced versions once their grace period is over
    /// ([`monsoon_catalog::publish::Publisher::retire_expired`]), every [`RETIRE_EVERY`] (and
    /// at start). Every node of a cluster runs it; the catalog lets one of them remove each.
    pub fn spawn_retirement(&self, grace: Duration) {
        let (films, media) = (Arc::clone(&self.films), Arc::clone(&self.media));
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(RETIRE_EVERY.min(grace.max(Duration::from_secs(1))));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let publisher = monsoon_catalog::publish::Publisher {
                    films: films.as_ref(),
                    media: media.as_ref(),
                };
                match publisher.retire_expired(chrono::Utc::now(), grace).await {
                    Ok(removed) => {
                        for version in removed {
                            tracing::info!(%version, "replaced version retired after its grace period");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "retiring replaced versions failed; retrying")
                    }
                }
            }
        });
    }
}

/// How often a server looks for replaced versions past their grace period.
const RETIRE_EVERY: Duration = Duration::from_secs(60);

impl Shared {
    /// The part of the state media delivery uses ([`delivery::Delivery`]).
    pub(crate) fn delivery(&self) -> delivery::Delivery {
        delivery::Delivery {
            live: Arc::clone(&self.live),
            media: Arc::clone(&self.media),
            hot: self.hot.clone(),
            metrics: Arc::clone(&self.metrics),
            access_log: self.access_log,
        }
    }

    /// `http(s)://host[:port]` of the site, for absolute links: `public_url`, else the address
    /// the server listens on (`localhost` for a wildcard address). Never the request's `Host`,
    /// which the client chooses: links built from it would point wherever a client (or a cache
    /// keyed without it) was told to.
    pub(crate) fn site_url(&self) -> String {
        if let Some(url) = &self.public_url {
            return url.clone();
        }
        match self.bound.get() {
            Some(addr) if addr.ip().is_unspecified() => format!("http://localhost:{}", addr.port()),
            Some(addr) => format!("http://{addr}"),
            None => "http://localhost".to_owned(),
        }
    }
}

/// `public_url` without its trailing slash, if it is the root of an `http` or `https` site:
/// the scheme, then a valid host and optional port (RFC 9110 §4.2, §7.2), nothing after.
fn check_public_url(url: &str) -> Result<String, String> {
    let rule = "must be the site's root as an absolute URL, like https://phim.example.vn";
    let trimmed = url.strip_suffix('/').unwrap_or(url);
    let authority = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or_else(|| format!("[serve] public_url = {url:?} {rule} (http:// or https://)"))?;
    if !host::valid_host(authority.as_bytes()) {
        return Err(format!(
            "[serve] public_url = {url:?} {rule} (no user, path, query or fragment; a valid host)"
        ));
    }
    Ok(trimmed.to_owned())
}

/// Compress the text the rest of the app answers (JSON, HTML, CSS, JS, metrics) on the fly.
/// `/media` is outside this layer: it sends its text from a compressed copy made once.
fn compressible(status: StatusCode, headers: &HeaderMap) -> bool {
    if status != StatusCode::OK || headers.contains_key(header::CONTENT_RANGE) {
        return false;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    ["application/json", "text/", "application/javascript"]
        .iter()
        .any(|t| content_type.starts_with(t))
}

/// A strong validator names one exact byte sequence; once compressed, the bytes differ, so the
/// tag becomes weak (as nginx's gzip module does) and caches never mix the two.
fn weaken_etag_when_compressed(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if headers.contains_key(header::CONTENT_ENCODING)
        && let Some(tag) = headers.get(header::ETAG).and_then(|v| v.to_str().ok())
        && tag.starts_with('"')
        && let Ok(weak) = HeaderValue::from_str(&format!("W/{tag}"))
    {
        headers.insert(header::ETAG, weak);
    }
    response
}

/// The whole application router.
pub fn app(state: AppState) -> Router {
    let compression = CompressionLayer::new().compress_when(SizeAbove::new(256).and(
        |status: StatusCode,
         _: axum::http::Version,
         headers: &HeaderMap,
         _: &axum::http::Extensions| { compressible(status, headers) },
    ));
    let static_files = assets::routes(&state.web_dir, state.assets.clone());
    let access_log = state.access_log;
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    router = match state.metrics_access {
        MetricsAccess::Public => router.route("/metrics", get(metrics_text)),
        MetricsAccess::Admin => router.route(
            "/metrics",
            get(|_: admin::Operator, state: State<AppState>| metrics_text(state)),
        ),
        MetricsAccess::Off => router,
    };
    router
        .merge(pages::routes())
        .merge(admin::routes())
        .merge(upload::routes())
        .merge(studio::routes())
        .merge(operators::routes())
        .merge(api::routes())
        .merge(webapp::routes())
        .nest_service("/static", static_files)
        // Unknown paths: a page in the viewer's language, or JSON under the APIs.
        .fallback(pages::fallback)
        // Outside the compression layer, so it sees the Content-Encoding it set.
        .layer(compression)
        .layer(tower::util::MapResponseLayer::new(
            weaken_etag_when_compressed,
        ))
        // Media negotiates its own encoding: its text is compressed once and cached (see
        // `delivery::load_gzipped`), not on every request.
        .merge(delivery::routes())
        // Every route under /admin, whichever module adds it (`csrf.rs`).
        .layer(csrf::CsrfLayer(state.clone()))
        .with_state(state)
        .layer(edge::EdgeLayer { access_log })
}

/// The access log's line: method, path, status, body bytes (its `Content-Length`, `-` when
/// it has none) and the time to a response ready to send.
pub(crate) fn access_line(
    method: &str,
    path: &str,
    status: u16,
    bytes: Option<u64>,
    took: Duration,
) {
    let bytes = bytes.map_or_else(|| "-".to_owned(), |n| n.to_string());
    tracing::info!(
        target: "monsoon::access",
        %method,
        %path,
        status,
        bytes,
        micros = took.as_micros() as u64,
    );
}

/// The token of a request's `Authorization: Bearer …` header. The scheme is matched without
/// regard to case (RFC 9110 §11.1) and is followed by one or more spaces (RFC 9110 §11.4).
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.ready.load(Ordering::SeqCst) {
        "ready\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    // With other nodes on the store, their beats first; on failure, this node's last view.
    if let Err(e) = state.audience.sync().await {
        tracing::warn!(error = %e, "catching up with the other nodes failed");
    }
    for slug in state.live.slugs() {
        state.metrics.set_audience(&state.audience.stats(&slug));
    }
    state
        .metrics
        .set_reported_bytes(state.audience.bytes_reported());
    let body = state.metrics.render(state.hot.weight());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Serves `state` on `addr` from `threads` single-threaded runtimes sharing the port
/// (`SO_REUSEPORT`) until `shutdown` resolves, then drains (see [`conn::serve`]). `on_bound`
/// receives the bound address once the listeners accept.
pub async fn serve_on(
    addr: std::net::SocketAddr,
    threads: usize,
    state: AppState,
    limits: ConnLimits,
    on_bound: impl FnOnce(std::net::SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let metrics = Arc::clone(&state.metrics);
    let ready = Arc::clone(&state.ready);
    let (bound, listeners) = conn::bind_per_core(addr, threads)?;
    // Before any request: pages build their links from it when `public_url` is unset.
    let _ = state.bound.set(bound);
    if state.public_url.is_none() {
        tracing::warn!(
            site = %state.site_url(),
            "[serve] public_url is unset: canonical, Open Graph and calendar links point at the \
             listen address; set it to the site's public address"
        );
    }
    // The origin's counters each minute, for the dashboard's windows.
    let sampler = dashboard::spawn_sampler(state.clone());
    let handles =
        conn::serve_per_core(listeners, handlers(state), limits, metrics, ready, stopped)?;
    on_bound(bound);
    shutdown.await;
    sampler.abort();
    let _ = stop.send(true);
    tokio::task::spawn_blocking(move || {
        for handle in handles {
            let _ = handle.join();
        }
    })
    .await
    .map_err(std::io::Error::other)
}

/// The router, and the fast path if it is on.
fn handlers(state: AppState) -> conn::Handlers {
    let fast = state
        .fast_path
        .then(|| Arc::new(fast::FastPath::new(state.delivery())));
    conn::Handlers {
        router: app(state),
        fast,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let mut headers = HeaderMap::new();
        for (value, token) in [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER  abc", Some("abc")),
            ("BeArEr abc", Some("abc")),
            ("Bearer", None),
            ("Bearer ", None),
            ("Basic abc", None),
            ("Bearerabc", None),
        ] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(bearer(&headers), token, "{value:?}");
        }
    }

    #[test]
    fn the_public_url_is_a_site_root() {
        assert_eq!(
            check_public_url("https://phim.example.vn/").as_deref(),
            Ok("https://phim.example.vn")
        );
        assert_eq!(
            check_public_url("http://127.0.0.1:8080").as_deref(),
            Ok("http://127.0.0.1:8080")
        );
        for bad in [
            "phim.example.vn",
            "ftp://phim.example.vn",
            "https://phim.example.vn/films",
            "https://user@phim.example.vn",
            "https://",
            "https://phim.example.vn?x=1",
        ] {
            let err = check_public_url(bad).unwrap_err();
            assert!(err.contains(bad) && err.contains("public_url"), "{err}");
        }
    }
}
