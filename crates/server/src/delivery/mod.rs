//! `/media`: manifests and segments, with the HTTP semantics every CDN cache relies on
//! (RFC 9110 §8.8 validators, §13 conditional requests, §14 range requests).
//!
//! | path | object |
//! |---|---|
//! | `/media/{slug}/master.m3u8` | HLS multivariant playlist of the current version |
//! | `/media/{slug}/manifest.mpd` | DASH manifest of the current version |
//! | `/media/{slug}/poster.jpg`, `backdrop.jpg` | the current version's artwork, at a stable URL |
//! | `/media/{slug}/{version}/{file}` | every other object, under its versioned, immutable path |
//!
//! Before a film's premiere (`free_release`) every object of it is refused with 403 but its
//! artwork at the stable URL: segment names are predictable, so withholding only the
//! manifests would let anyone rebuild the film (`docs/SECURITY.md`).
//!
//! Only objects listed in the current version's object index are served, so no request path
//! is ever joined onto the filesystem: `..`, encoded dots, NUL bytes and symlinks planted in
//! the media root all end in 404 because they are not keys of the index.

mod class;
mod conditional;
mod hot;
mod representation;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, options};
use bytes::Bytes;
use monsoon_catalog::{DASH_MANIFEST, ObjectInfo, is_multivariant};
use tower_http::cors::{Any, CorsLayer};

pub use class::ObjectClass;
pub use conditional::Decision;
pub(crate) use conditional::{RequestHeaders, decide};
pub use hot::HotCache;
pub(crate) use representation::{HeaderSink, Representation};

use monsoon_catalog::MediaStore;

use crate::live::{LiveCatalog, LiveFilm, ServedVersion};
use crate::metrics::Metrics;
use crate::{ApiError, AppState};

/// What serving media needs of the server, and all the fast path holds: the live catalog, the
/// store, the hot cache, the metrics and whether to log each request.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub live: Arc<LiveCatalog>,
    pub media: Arc<dyn MediaStore>,
    pub hot: HotCache,
    pub metrics: Arc<Metrics>,
    pub access_log: bool,
}

/// `GET`/`HEAD` answered by [`media`]; `OPTIONS` by tower-http's CORS layer, which takes every
/// `OPTIONS` for a preflight and answers it itself.
pub fn routes() -> Router<AppState> {
    let preflight = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers([
            header::RANGE,
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
            header::IF_RANGE,
        ])
        .max_age(Duration::from_secs(86_400));
    Router::new().route(
        "/media/{slug}/{*path}",
        get(media).merge(options(not_a_preflight).layer(preflight)),
    )
}

/// An `OPTIONS` that is not a CORS preflight: media answers only `GET` and `HEAD`.
/// (The CORS layer around it adds its own headers.)
async fn not_a_preflight() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "GET,HEAD")],
    )
        .into_response()
}

/// [`representation::CORS`] on a response the representation did not write (an error).
fn with_cors(mut response: Response) -> Response {
    representation::CORS.iter().for_each(|(name, value)| {
        response.headers_mut().header(name, value);
    });
    response
}

/// The refusal of a film's objects before its free release. Cached for 5 s like every error,
/// so a CDN absorbs the crowd waiting at the door and lets it in 5 s after the hour.
pub fn premiere_ahead(film: &monsoon_catalog::Film) -> ApiError {
    let at = film
        .meta
        .free_release
        .map(|t| t.to_rfc3339())
        .unwrap_or_default();
    ApiError::Forbidden(format!("`{}` premieres at {at}", film.slug))
}

/// Where an object's bytes come from: the bounded memory cache of hot objects, else the store.
pub(crate) async fn load(state: &Delivery, key: &str) -> Result<Bytes, ApiError> {
    if let Some(bytes) = state.hot.get(key) {
        state.metrics.cache_hit();
        return Ok(bytes);
    }
    state.metrics.cache_miss();
    let bytes = state.media.get(key, None).await.map_err(|e| match e {
        monsoon_catalog::Error::NotFound(_) => ApiError::NotFound(e.to_string()),
        e => ApiError::Internal(format!("reading {key}: {e}")),
    })?;
    state.hot.insert(key, bytes.clone());
    Ok(bytes)
}

/// The gzip representation of object `key`: compressed once, on its first request, and kept
/// in the hot cache beside the object, so serving it costs what serving the object costs.
pub(crate) async fn load_gzipped(state: &Delivery, key: &str) -> Result<Bytes, ApiError> {
    let gzip_key = format!("{key}#gzip");
    if let Some(bytes) = state.hot.get(&gzip_key) {
        state.metrics.cache_hit();
        return Ok(bytes);
    }
    let plain = load(state, key).await?;
    let gzipped = tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(plain.len() / 3),
            flate2::Compression::best(),
        );
        encoder.write_all(&plain)?;
        encoder.finish()
    })
    .await
    .map_err(|e| ApiError::Internal(format!("compressing {key}: {e}")))?
    .map_err(|e| ApiError::Internal(format!("compressing {key}: {e}")))?;
    let gzipped = Bytes::from(gzipped);
    state.hot.insert(&gzip_key, gzipped.clone());
    Ok(gzipped)
}

/// An object a `/media` path names: one listed in its film's current version.
#[derive(Debug)]
pub(crate) struct Target<'p> {
    pub live: Arc<LiveFilm>,
    /// The version the object belongs to: the current one, or a previous one still served.
    pub version: Arc<ServedVersion>,
    /// Path of the object within its version, e.g. `v720/seg_00042.m4s`.
    pub file: &'p str,
    pub info: ObjectInfo,
    pub class: ObjectClass,
    /// Named by a stable URL rather than its versioned one (the artwork): its bytes change
    /// with the version, so it may not be cached as immutable.
    pub stable: bool,
}

/// Artwork at its stable URL: shown on the premiere page and the catalog, replaced when the
/// film is re-ingested.
const STABLE_ARTWORK_CACHE: &str = "public, max-age=300";

impl Target<'_> {
    /// `Cache-Control` of the object at the URL it was asked by.
    pub fn cache_control(&self) -> &'static str {
        if self.stable {
            STABLE_ARTWORK_CACHE
        } else {
            self.class.cache_control()
        }
    }

    /// The object's key in the media store: `{slug}/{version}/{file}`.
    pub fn key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.live.film.slug, self.version.name, self.file
        )
    }
}

/// Resolves `/media/{slug}/{path}` against the live catalog, without touching the filesystem.
pub(crate) fn resolve<'p>(
    state: &Delivery,
    slug: &str,
    path: &'p str,
) -> Result<Target<'p>, ApiError> {
    let not_found = || ApiError::NotFound(format!("no media object `{slug}/{path}`"));
    let live = state.live.get(slug).ok_or_else(not_found)?;
    let stable = live.film.is_artwork(path);
    // Before the premiere every path but the artwork's is refused, existing object or not:
    // telling one from the other would let a prober find the version's name.
    if !stable && live.film.is_before_premiere(chrono::Utc::now()) {
        return Err(premiere_ahead(&live.film));
    }
    // The top-level manifests and the artwork live at stable URLs and are the current
    // version's; everything else under its version: the current one, or one it replaced that
    // is still served (players that started before the replacement ask for those).
    let (version, file) = if is_multivariant(path) || path == DASH_MANIFEST || stable {
        (Arc::clone(&live.current), path)
    } else {
        match path.split_once('/') {
            Some((name, rest)) if !is_multivariant(rest) && rest != DASH_MANIFEST => {
                (Arc::clone(live.version(name).ok_or_else(not_found)?), rest)
            }
            _ => return Err(not_found()),
        }
    };
    let info = version.objects.get(file).ok_or_else(not_found)?.clone();
    let class = ObjectClass::of(file).ok_or_else(not_found)?;
    Ok(Target {
        live,
        version,
        file,
        info,
        class,
        stable,
    })
}

/// The router's answer to a `GET` or `HEAD` of `/media/{slug}/{path}`.
async fn media(
    State(state): State<AppState>,
    Path((slug, path)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    match respond(
        &state.delivery(),
        &slug,
        &path,
        method == Method::GET,
        &headers,
    )
    .await
    {
        Ok(response) => response,
        Err(e) => {
            let response = with_cors(e.into_response());
            // Errors by object class for the dashboard and `/metrics`: a missing segment is
            // a player's problem on release day as much as a slow one.
            if let Some(class) = ObjectClass::of(&path) {
                (state.metrics).media_failed(class, response.status().as_u16());
            }
            response
        }
    }
}

async fn respond(
    state: &Delivery,
    slug: &str,
    path: &str,
    is_get: bool,
    req: &HeaderMap,
) -> Result<Response, ApiError> {
    let target = resolve(state, slug, path)?;
    let started = Instant::now();
    let answer = Representation::of(&target, req, is_get);
    let size = target.info.size;
    let (length, body) = match answer.decision {
        Decision::Whole if answer.gzip => {
            let gzipped = load_gzipped(state, &target.key()).await?;
            let length = answer.length(size, Some(gzipped.len()));
            (length, is_get.then_some(gzipped))
        }
        Decision::Whole if is_get => (size, Some(load(state, &target.key()).await?)),
        Decision::Part(start, end) => {
            let bytes = load(state, &target.key()).await?;
            let part = bytes.slice(start as usize..=end as usize);
            (answer.length(size, None), Some(part))
        }
        _ => (answer.length(size, None), None),
    };
    let sent = body.as_ref().map_or(0, |b| b.len() as u64);
    let mut response = Response::new(body.map_or_else(Body::empty, Body::from));
    *response.status_mut() = answer.status();
    answer.write_headers(&target, length, response.headers_mut());
    // The time to a response ready to send, on both paths: not the transfer (a slow viewer's
    // download is not a slow origin).
    let took = started.elapsed();
    (state.metrics).media_request(target.class, answer.status().as_u16(), sent, took);
    Ok(response)
}
