//! The HTTP face of Monsoon, on axum and hyper: media delivery (`/media`), the JSON API
//! (`/api/v1`), the viewer pages (`/`, `/films`, `/watch`), the player's static assets, and
//! the operations endpoints (`/healthz`, `/readyz`, `/metrics`).
//!
//! Handlers are thin: they parse, call the catalog or the media store through their traits,
//! and map the result. The app is built by [`app`] so tests drive it in-process; [`serve_on`]
//! adds the fast path, the connection deadlines and graceful draining of [`conn`].

mod admin;
mod api;
mod assets;
pub mod conn;
mod coop;
mod delivery;
mod error;
mod fast;
mod i18n;
mod ics;
mod live;
mod metrics;
mod pages;
pub mod parse;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use monsoon_catalog::{FilmRepository, MediaStore};
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{Predicate, SizeAbove};
use tower_http::cors::{Any, CorsLayer};

pub use admin::{AdminAuth, hash_token};
pub use assets::Assets;
pub use conn::ConnLimits;
pub use delivery::HotCache;
pub use error::ApiError;
pub use live::LiveCatalog;
pub use metrics::Metrics;

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
    /// `https://host` of the public site, for absolute links in link previews; without it
    /// the request's `Host` is used.
    pub public_url: Option<String>,
    /// Answer HTTP/1.1 media requests on the fast path ([`fast`]) instead of the router.
    pub fast_path: bool,
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
}

impl AppState {
    /// State over the given backends, with the catalog loaded once.
    pub async fn new(
        films: Arc<dyn FilmRepository>,
        media: Arc<dyn MediaStore>,
        audience: Arc<monsoon_audience::Audience>,
        options: Options,
    ) -> Result<Self, String> {
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
            public_url: options.public_url,
            fast_path: options.fast_path,
        })))
    }

    /// Keeps the in-memory catalog in step with the repository.
    pub fn spawn_catalog_refresh(&self, every: Duration) {
        self.live
            .spawn_refresh(Arc::clone(&self.films), Arc::clone(&self.media), every);
    }
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
async fn weaken_etag_when_compressed(mut response: Response) -> Response {
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
    // Browser players fetch media from other origins; Range needs a preflight.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers([
            header::RANGE,
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
            header::IF_RANGE,
        ])
        .expose_headers([
            header::CONTENT_LENGTH,
            header::CONTENT_RANGE,
            header::ACCEPT_RANGES,
            header::ETAG,
        ])
        .max_age(Duration::from_secs(86_400));
    let static_files = assets::routes(&state.web_dir, state.assets.clone());
    let access_log = state.access_log;
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .merge(pages::routes())
        .merge(admin::routes())
        .merge(api::routes())
        .nest_service("/static", static_files)
        // Outside the compression layer, so it sees the Content-Encoding it set.
        .layer(compression)
        .layer(axum::middleware::map_response(weaken_etag_when_compressed))
        // Media negotiates its own encoding: its text is compressed once and cached (see
        // `delivery::load_gzipped`), not on every request.
        .merge(delivery::routes().layer(cors))
        .with_state(state);
    if access_log {
        router.layer(axum::middleware::from_fn(log_access))
    } else {
        router
    }
}

/// One structured line per request: method, path, status, body bytes, time to headers.
async fn log_access(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let bytes = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    tracing::info!(
        target: "monsoon::access",
        %method,
        %path,
        status = response.status().as_u16(),
        bytes,
        micros = started.elapsed().as_micros() as u64,
    );
    response
}

/// The token of a request's `Authorization: Bearer …` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
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
    for slug in state.live.slugs() {
        state.metrics.set_audience(&state.audience.stats(&slug));
    }
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
/// receives the bound address before any request is served.
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
    let (bound, handles) = conn::serve_per_core(
        addr,
        threads,
        handlers(state),
        limits,
        metrics,
        ready,
        stopped,
    )?;
    on_bound(bound);
    shutdown.await;
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
        .then(|| Arc::new(fast::FastPath::new(state.clone())));
    conn::Handlers {
        router: app(state),
        fast,
    }
}
