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

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use monsoon_catalog::{DASH_MANIFEST, MULTIVARIANT_PLAYLIST, ObjectInfo};

use crate::live::LiveFilm;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/media/{slug}/{*path}", get(media))
}

/// What kind of object a path names: decides media type, caching and compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectClass {
    Multivariant,
    Mpd,
    MediaPlaylist,
    Segment,
    InitSegment,
    Image,
    Text,
}

impl ObjectClass {
    /// Every class, in declaration order: `class as usize` is its index here.
    pub const ALL: [ObjectClass; 7] = [
        ObjectClass::Multivariant,
        ObjectClass::Mpd,
        ObjectClass::MediaPlaylist,
        ObjectClass::Segment,
        ObjectClass::InitSegment,
        ObjectClass::Image,
        ObjectClass::Text,
    ];

    pub fn of(file: &str) -> Option<Self> {
        let ext = file.rsplit_once('.').map(|(_, e)| e)?;
        Some(match ext {
            "m3u8" if file == MULTIVARIANT_PLAYLIST => ObjectClass::Multivariant,
            "m3u8" => ObjectClass::MediaPlaylist,
            "mpd" => ObjectClass::Mpd,
            "m4s" => ObjectClass::Segment,
            "mp4" => ObjectClass::InitSegment,
            "jpg" | "jpeg" | "png" | "webp" => ObjectClass::Image,
            "vtt" => ObjectClass::Text,
            _ => return None,
        })
    }

    /// Text, sent gzipped to clients that accept it; media never is (gzip over a segment breaks
    /// byte ranges in caches and gains nothing on compressed video).
    pub fn is_compressible(self) -> bool {
        matches!(
            self,
            ObjectClass::Multivariant
                | ObjectClass::Mpd
                | ObjectClass::MediaPlaylist
                | ObjectClass::Text
        )
    }

    /// Label used in metrics.
    pub fn label(self) -> &'static str {
        match self {
            ObjectClass::Multivariant => "multivariant",
            ObjectClass::Mpd => "mpd",
            ObjectClass::MediaPlaylist => "playlist",
            ObjectClass::Segment => "segment",
            ObjectClass::InitSegment => "init",
            ObjectClass::Image => "image",
            ObjectClass::Text => "text",
        }
    }

    pub fn content_type(self, file: &str) -> &'static str {
        match self {
            ObjectClass::Multivariant | ObjectClass::MediaPlaylist => {
                "application/vnd.apple.mpegurl"
            }
            ObjectClass::Mpd => "application/dash+xml",
            ObjectClass::Segment => "video/iso.segment",
            ObjectClass::InitSegment => "video/mp4",
            ObjectClass::Image if file.ends_with(".png") => "image/png",
            ObjectClass::Image if file.ends_with(".webp") => "image/webp",
            ObjectClass::Image => "image/jpeg",
            ObjectClass::Text => "text/vtt; charset=utf-8",
        }
    }

    /// Cache lifetimes (`docs/ORIGIN.md`): versioned objects never change; the top-level
    /// manifests point at the current version and change on re-ingest.
    pub fn cache_control(self) -> &'static str {
        match self {
            ObjectClass::Multivariant | ObjectClass::Mpd => {
                "public, max-age=60, stale-while-revalidate=300"
            }
            ObjectClass::MediaPlaylist => "public, max-age=86400",
            ObjectClass::Segment
            | ObjectClass::InitSegment
            | ObjectClass::Image
            | ObjectClass::Text => "public, max-age=31536000, immutable",
        }
    }
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
pub(crate) async fn load(state: &AppState, key: &str) -> Result<Bytes, ApiError> {
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

/// Text bodies smaller than this go out as they are: gzip's framing and a `Vary` cost more than
/// compression saves on them.
const GZIP_MIN: u64 = 256;

/// Whether the responses for an object depend on the request's `Accept-Encoding`: text of
/// [`GZIP_MIN`] bytes or more is sent gzipped to clients that accept gzip.
pub(crate) fn varies_by_encoding(class: ObjectClass, size: u64) -> bool {
    class.is_compressible() && size >= GZIP_MIN
}

/// Whether the request's `Accept-Encoding` accepts gzip (RFC 9110 §12.5.3): `gzip` (or its
/// alias `x-gzip`) listed with a non-zero quality, or else `*` with one.
pub(crate) fn accepts_gzip(req: &impl RequestHeaders) -> bool {
    let Some(value) = req.value("accept-encoding") else {
        return false;
    };
    let mut any = false;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        let quality = parts
            .find_map(|p| {
                let p = p.trim();
                p.strip_prefix("q=").or_else(|| p.strip_prefix("Q="))
            })
            .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok());
        let accepted = quality.is_some_and(|q| q > 0.0);
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return accepted;
        }
        if coding == "*" {
            any = accepted;
        }
    }
    any
}

/// The gzip representation of object `key`: compressed once, on its first request, and kept
/// in the hot cache beside the object, so serving it costs what serving the object costs.
pub(crate) async fn load_gzipped(state: &AppState, key: &str) -> Result<Bytes, ApiError> {
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
            self.live.film.slug, self.live.film.current.version, self.file
        )
    }
}

/// Resolves `/media/{slug}/{path}` against the live catalog, without touching the filesystem.
pub(crate) fn resolve<'p>(
    state: &AppState,
    slug: &str,
    path: &'p str,
) -> Result<Target<'p>, ApiError> {
    let not_found = || ApiError::NotFound(format!("no media object `{slug}/{path}`"));
    let live = state.live.get(slug).ok_or_else(not_found)?;
    let version = &live.film.current.version;
    let stable = live.film.is_artwork(path);
    // Before the premiere every path but the artwork's is refused, existing object or not:
    // telling one from the other would let a prober find the version's name.
    if !stable && live.film.is_before_premiere(chrono::Utc::now()) {
        return Err(premiere_ahead(&live.film));
    }
    // The top-level manifests and the artwork live at stable URLs; everything else under its
    // version.
    let file = if path == MULTIVARIANT_PLAYLIST || path == DASH_MANIFEST || stable {
        path
    } else {
        match path
            .strip_prefix(version.as_str())
            .and_then(|r| r.strip_prefix('/'))
        {
            Some(rest) if rest != MULTIVARIANT_PLAYLIST && rest != DASH_MANIFEST => rest,
            _ => return Err(not_found()),
        }
    };
    let info = live.objects.get(file).ok_or_else(not_found)?.clone();
    let class = ObjectClass::of(file).ok_or_else(not_found)?;
    Ok(Target {
        live,
        file,
        info,
        class,
        stable,
    })
}

async fn media(
    State(state): State<AppState>,
    Path((slug, path)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = resolve(&state, &slug, &path)?;
    let started = std::time::Instant::now();

    let mut response = respond(&state, &target, &method, &headers).await?;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if varies_by_encoding(target.class, target.info.size) {
        headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    let sent = if method == Method::HEAD {
        0
    } else {
        headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0)
    };
    state.metrics.media_request(
        target.class,
        response.status().as_u16(),
        sent,
        started.elapsed(),
    );
    Ok(response)
}

/// A request's header values, whoever parsed it (hyper for the router, or the fast path).
pub(crate) trait RequestHeaders {
    /// The first value of header `name` (given in lowercase), if it is visible ASCII.
    fn value(&self, name: &str) -> Option<&str>;
}

impl RequestHeaders for HeaderMap {
    fn value(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The outcome of a GET or HEAD of an object, from its validators and the request's
/// preconditions and range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// 412: an `If-Match` or `If-Unmodified-Since` failed.
    PreconditionFailed,
    /// 304: the client's copy is current.
    NotModified,
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
    /// 200 with the whole representation.
    Whole,
    /// 206 with bytes `start..=end`.
    Part(u64, u64),
}

/// Applies the preconditions and the range, in the order of RFC 9110 §13.2.2.
pub(crate) fn decide(
    req: &impl RequestHeaders,
    is_get: bool,
    info: &ObjectInfo,
    live: &LiveFilm,
) -> Decision {
    decide_for(
        req,
        is_get,
        info,
        live.last_modified,
        &live.last_modified_http,
    )
}

/// [`decide`] for an object last modified at `last_modified` (`last_modified_http` as an HTTP
/// date), whatever film it belongs to.
pub(crate) fn decide_for(
    req: &impl RequestHeaders,
    is_get: bool,
    info: &ObjectInfo,
    last_modified: SystemTime,
    last_modified_http: &str,
) -> Decision {
    let etag = info.etag.as_str();
    let date = |name: &str| httpdate::parse_http_date(req.value(name)?).ok();
    let modified_after = |since: SystemTime| seconds(last_modified) > seconds(since);

    // 1-2. If-Match (strong comparison), else If-Unmodified-Since → 412.
    if let Some(value) = req.value("if-match") {
        if !etag_list_matches(value, etag, Comparison::Strong) {
            return Decision::PreconditionFailed;
        }
    } else if date("if-unmodified-since").is_some_and(modified_after) {
        return Decision::PreconditionFailed;
    }
    // 3-4. If-None-Match (weak comparison), else If-Modified-Since → 304 for GET and HEAD.
    let not_modified = match req.value("if-none-match") {
        Some(value) => etag_list_matches(value, etag, Comparison::Weak),
        None => date("if-modified-since").is_some_and(|since| !modified_after(since)),
    };
    if not_modified {
        return Decision::NotModified;
    }
    // 5. Range, for GET only (§14.2), unless If-Range names another version (§13.1.5).
    match req.value("range") {
        Some(range) if is_get && if_range_holds(req, etag, last_modified_http) => {
            match parse_range(range, info.size) {
                RangeAnswer::Whole => Decision::Whole,
                RangeAnswer::Part(start, end) => Decision::Part(start, end),
                RangeAnswer::Unsatisfiable => Decision::Unsatisfiable,
            }
        }
        _ => Decision::Whole,
    }
}

/// The router's response to a GET or HEAD of `target`.
async fn respond(
    state: &AppState,
    target: &Target<'_>,
    method: &Method,
    req: &HeaderMap,
) -> Result<Response, ApiError> {
    let (info, class) = (&target.info, target.class);
    let etag = info.etag.as_str();
    let lm = target.live.last_modified_http.as_str();
    let size = info.size;
    // The gzip representation, if the whole object is asked for. Its bytes differ from the
    // object's, so its tag is weak (as nginx's gzip module makes it) and caches never mix
    // the two; a 304 names the representation a 200 would have sent.
    let gzipped = varies_by_encoding(class, size) && accepts_gzip(req);
    let whole_tag = if gzipped {
        std::borrow::Cow::Owned(format!("W/{etag}"))
    } else {
        std::borrow::Cow::Borrowed(etag)
    };
    let validators = |b: axum::http::response::Builder, tag: &str| {
        b.header(header::ETAG, tag)
            .header(header::LAST_MODIFIED, lm)
            .header(header::CACHE_CONTROL, target.cache_control())
    };
    let range = match decide(req, *method == Method::GET, info, &target.live) {
        Decision::PreconditionFailed => {
            return Ok(status_only(StatusCode::PRECONDITION_FAILED, etag, lm));
        }
        Decision::NotModified => {
            return validators(Response::builder(), &whole_tag)
                .status(StatusCode::NOT_MODIFIED)
                .body(Body::empty())
                .map_err(|e| ApiError::Internal(e.to_string()));
        }
        Decision::Whole if gzipped => {
            let bytes = load_gzipped(state, &target.key()).await?;
            return validators(Response::builder(), &whole_tag)
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, class.content_type(target.file))
                .header(header::CONTENT_ENCODING, "gzip")
                .header(header::CONTENT_LENGTH, bytes.len())
                .body(if *method == Method::HEAD {
                    Body::empty()
                } else {
                    Body::from(bytes)
                })
                .map_err(|e| ApiError::Internal(e.to_string()));
        }
        Decision::Unsatisfiable => {
            return Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                .header(header::CACHE_CONTROL, "max-age=5")
                .body(Body::empty())
                .map_err(|e| ApiError::Internal(e.to_string()));
        }
        Decision::Whole => None,
        Decision::Part(start, end) => Some((start, end)),
    };

    let builder = validators(Response::builder(), etag)
        .header(header::CONTENT_TYPE, class.content_type(target.file))
        .header(header::ACCEPT_RANGES, "bytes");
    let (builder, length) = match range {
        Some((start, end)) => (
            builder
                .status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}")),
            end - start + 1,
        ),
        None => (builder.status(StatusCode::OK), size),
    };
    let builder = builder.header(header::CONTENT_LENGTH, length);
    let body = if *method == Method::HEAD {
        Body::empty()
    } else {
        let bytes = load(state, &target.key()).await?;
        match range {
            Some((start, end)) => Body::from(bytes.slice(start as usize..=end as usize)),
            None => Body::from(bytes),
        }
    };
    builder
        .body(body)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

fn status_only(status: StatusCode, etag: &str, lm: &str) -> Response {
    let mut response = status.into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(lm) {
        headers.insert(header::LAST_MODIFIED, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=5"));
    response
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    /// Both tags strong and identical (RFC 9110 §8.8.3.2).
    Strong,
    /// Identical once any `W/` prefix is dropped.
    Weak,
}

/// Whether an `If-Match` / `If-None-Match` list (`*`, or comma-separated tags) matches `etag`.
fn etag_list_matches(value: &str, etag: &str, comparison: Comparison) -> bool {
    if value.trim() == "*" {
        return true;
    }
    value.split(',').map(str::trim).any(|candidate| {
        let (weak, tag) = match candidate.strip_prefix("W/") {
            Some(tag) => (true, tag),
            None => (false, candidate),
        };
        tag == etag && (comparison == Comparison::Weak || !weak)
    })
}

/// `If-Range` (RFC 9110 §13.1.5): the range applies only if the validator names this exact
/// representation — a strong entity tag, or exactly its Last-Modified date.
fn if_range_holds(req: &impl RequestHeaders, etag: &str, lm: &str) -> bool {
    match req.value("if-range") {
        None => true,
        Some(v) if v.starts_with('"') => v == etag,
        Some(v) if v.starts_with("W/") => false,
        Some(v) => v == lm,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum RangeAnswer {
    /// Serve the whole representation with 200 (no range, several ranges, or bad syntax).
    Whole,
    /// Serve bytes `start..=end` with 206.
    Part(u64, u64),
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

/// RFC 9110 §14.1.2. Several ranges get the whole body (no multipart: it only helps an
/// attacker amplify, CVE-2011-3192); syntax errors are ignored as §14.2 allows.
fn parse_range(value: &str, size: u64) -> RangeAnswer {
    use http_range_header::{EndPosition, RangeUnsatisfiableError, StartPosition};
    let parsed = match http_range_header::parse_range_header(value) {
        Ok(parsed) => parsed,
        // `bytes=-0` asks for nothing: unsatisfiable rather than malformed.
        Err(RangeUnsatisfiableError::ZeroSuffix) => return RangeAnswer::Unsatisfiable,
        Err(_) => return RangeAnswer::Whole,
    };
    let [range] = parsed.ranges.as_slice() else {
        return RangeAnswer::Whole;
    };
    if size == 0 {
        return RangeAnswer::Unsatisfiable;
    }
    let start = match range.start {
        StartPosition::Index(i) => i,
        // A suffix longer than the representation selects all of it.
        StartPosition::FromLast(n) => size.saturating_sub(n),
    };
    let end = match range.end {
        EndPosition::Index(i) => i.min(size - 1),
        EndPosition::LastByte => size - 1,
    };
    if start >= size || start > end {
        RangeAnswer::Unsatisfiable
    } else {
        RangeAnswer::Part(start, end)
    }
}

/// The bounded memory cache of hot objects, weighted by bytes.
#[derive(Debug, Clone)]
pub struct HotCache {
    cache: Option<Arc<quick_cache::sync::Cache<String, Bytes, ByteWeight>>>,
    max_object: u64,
}

#[derive(Debug, Clone, Copy)]
struct ByteWeight;

impl quick_cache::Weighter<String, Bytes> for ByteWeight {
    fn weight(&self, key: &String, value: &Bytes) -> u64 {
        (key.len() + value.len()) as u64
    }
}

impl HotCache {
    /// A cache holding at most `capacity_bytes`; objects over `max_object` bytes are not
    /// cached. A capacity of 0 disables it.
    pub fn new(capacity_bytes: u64, max_object: u64) -> Self {
        let cache = (capacity_bytes > 0).then(|| {
            // quick_cache wants an estimate of the item count: assume ~500 kB segments.
            let items = (capacity_bytes / 500_000).max(16) as usize;
            Arc::new(quick_cache::sync::Cache::with_weighter(
                items,
                capacity_bytes,
                ByteWeight,
            ))
        });
        Self { cache, max_object }
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.cache.as_ref()?.get(key)
    }

    pub fn insert(&self, key: &str, bytes: Bytes) {
        if let Some(cache) = &self.cache
            && (bytes.len() as u64) <= self.max_object
        {
            cache.insert(key.to_owned(), bytes);
        }
    }

    /// Bytes held now.
    pub fn weight(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.weight())
    }
}

#[cfg(test)]
mod tests {
    use super::ObjectClass;

    #[test]
    fn every_class_is_at_its_index() {
        for (i, class) in ObjectClass::ALL.into_iter().enumerate() {
            assert_eq!(class as usize, i, "{class:?}");
        }
    }

    use super::*;

    #[test]
    fn classes() {
        assert_eq!(
            ObjectClass::of("master.m3u8"),
            Some(ObjectClass::Multivariant)
        );
        assert_eq!(
            ObjectClass::of("v720/index.m3u8"),
            Some(ObjectClass::MediaPlaylist)
        );
        assert_eq!(
            ObjectClass::of("v720/seg_00001.m4s"),
            Some(ObjectClass::Segment)
        );
        assert_eq!(
            ObjectClass::of("v720/init.mp4"),
            Some(ObjectClass::InitSegment)
        );
        assert_eq!(ObjectClass::of("secret.db"), None);
        assert_eq!(ObjectClass::of("noext"), None);
        assert!(ObjectClass::Segment.cache_control().contains("immutable"));
        assert!(
            ObjectClass::Multivariant
                .cache_control()
                .contains("stale-while-revalidate")
        );
    }

    #[test]
    fn ranges_per_rfc_9110() {
        use RangeAnswer::*;
        assert_eq!(parse_range("bytes=0-99", 1000), Part(0, 99));
        assert_eq!(parse_range("bytes=900-", 1000), Part(900, 999));
        assert_eq!(parse_range("bytes=-100", 1000), Part(900, 999));
        assert_eq!(parse_range("bytes=-5000", 1000), Part(0, 999));
        assert_eq!(parse_range("bytes=990-2000", 1000), Part(990, 999));
        assert_eq!(parse_range("bytes=1000-", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-0", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-9", 1000), Whole);
        assert_eq!(parse_range("items=0-1", 1000), Whole);
        assert_eq!(parse_range("bytes=abc", 1000), Whole);
    }

    #[test]
    fn entity_tag_comparison() {
        let tag = "\"abc\"";
        assert!(etag_list_matches("\"abc\"", tag, Comparison::Strong));
        assert!(etag_list_matches("\"x\", \"abc\"", tag, Comparison::Strong));
        assert!(!etag_list_matches("W/\"abc\"", tag, Comparison::Strong));
        assert!(etag_list_matches("W/\"abc\"", tag, Comparison::Weak));
        assert!(etag_list_matches("*", tag, Comparison::Strong));
        assert!(!etag_list_matches("\"abcd\"", tag, Comparison::Weak));
    }

    #[test]
    fn accept_encoding_per_rfc_9110() {
        let accepts = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).unwrap(),
            );
            accepts_gzip(&headers)
        };
        assert!(accepts("gzip"));
        assert!(accepts("gzip, deflate, br, zstd"));
        assert!(accepts("br;q=1.0, GZIP;q=0.5"));
        assert!(accepts("x-gzip"));
        assert!(accepts("identity, *;q=0.1"));
        assert!(!accepts("br;q=1.0, gzip;q=0"));
        assert!(!accepts("gzip;q=0.000, *"));
        assert!(!accepts("br, deflate"));
        assert!(!accepts("identity"));
        assert!(!accepts("*;q=0"));
        assert!(!accepts("gzip;q=abc"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    /// Header values by name, as a test writes them.
    struct Values(Vec<(&'static str, String)>);

    impl RequestHeaders for Values {
        fn value(&self, name: &str) -> Option<&str> {
            self.0
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// Range header values: anything, and near misses of the RFC 9110 §14.1.1 grammar.
        fn range_value() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                "bytes=[0-9]{0,21}-[0-9]{0,21}",
                "bytes=-[0-9]{0,21}",
                "(bytes|Bytes|items)? ?= ?[0-9]{0,4} ?- ?[0-9]{0,4}(, ?[0-9]{0,4}-[0-9]{0,4}){0,2}",
            ]
        }

        fn object_size() -> impl Strategy<Value = u64> {
            prop_oneof![Just(0u64), Just(1), 0..100_000u64, any::<u64>()]
        }

        proptest! {
            #[test]
            fn a_range_never_reaches_outside_the_object(value in range_value(), size in object_size()) {
                if let RangeAnswer::Part(start, end) = parse_range(&value, size) {
                    prop_assert!(start <= end && end < size, "{value:?} of {size}: {start}-{end}");
                }
            }

            #[test]
            fn a_single_range_is_served_as_asked(start in 0..10_000u64, len in 1..10_000u64, size in 1..20_000u64) {
                let end = start + len - 1;
                let answer = parse_range(&format!("bytes={start}-{end}"), size);
                if start < size {
                    prop_assert_eq!(answer, RangeAnswer::Part(start, end.min(size - 1)));
                } else {
                    prop_assert_eq!(answer, RangeAnswer::Unsatisfiable);
                }
            }

            #[test]
            fn conditionals_and_ranges_together_stay_inside_the_object(
                values in proptest::collection::vec((0..6usize, prop_oneof![
                    any::<String>(),
                    Just("\"e\"".to_owned()),
                    Just("W/\"e\"".to_owned()),
                    Just("*".to_owned()),
                    Just("Thu, 01 Jan 1970 00:00:00 GMT".to_owned()),
                    range_value(),
                ]), 0..6),
                size in object_size(),
                is_get: bool,
            ) {
                const NAMES: [&str; 6] =
                    ["if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "range", "if-range"];
                let req = Values(values.into_iter().map(|(i, v)| (NAMES[i], v)).collect());
                let info = ObjectInfo { size, etag: "\"e\"".to_owned() };
                let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
                let decision = decide_for(&req, is_get, &info, at, &httpdate::fmt_http_date(at));
                if let Decision::Part(start, end) = decision {
                    prop_assert!(is_get && start <= end && end < size, "{decision:?} of {size}");
                }
            }
        }
    }

    #[test]
    fn the_hot_cache_is_bounded_by_bytes() {
        let cache = HotCache::new(10_000, 4_000);
        cache.insert("big", Bytes::from(vec![0; 5_000]));
        assert!(cache.get("big").is_none());
        for i in 0..10 {
            cache.insert(&format!("k{i}"), Bytes::from(vec![0; 3_000]));
        }
        assert!(cache.weight() <= 10_000);
        assert!(HotCache::new(0, 1).get("x").is_none());
    }
}
