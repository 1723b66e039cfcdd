//! `/api/v1`: the public JSON API.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/films` | every published film, newest first |
//! | GET | `/films/{slug}` | one film |
//! | POST | `/films/{slug}/sessions` | mints a playback session (201) |
//! | POST | `/sessions/{id}/heartbeat` | a heartbeat, JSON as `text/plain` or `application/json` (204) |
//! | GET | `/films/{slug}/stats` | live audience figures, cacheable for 2 s |
//! | GET | `/films/{slug}/stats/series?metric=&from=&step=` | a figure over time, from minute rollups |

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use monsoon_audience::{FilmStats, Heartbeat, Minted};
use utoipa::OpenApi;

use crate::error::ErrorBody;
use monsoon_catalog::{Film, FilmMeta, Rendition};
use serde::Serialize;

use crate::{ApiError, AppState};

/// Heartbeats and mint requests are a few hundred bytes; anything over this gets 413.
const MAX_BODY: usize = 8 * 1024;

/// What the server did with a heartbeat: accepted, duplicate, too-soon, implausible, closed.
const X_MONSOON_BEAT: HeaderName = HeaderName::from_static("x-monsoon-beat");

/// The routes, with their full paths: merged into the application rather than nested, so no
/// request pays for rewriting its URI (axum's `nest` strips the prefix per request).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/films", get(list_films))
        .route("/api/v1/films/{slug}", get(get_film))
        .route("/api/v1/films/{slug}/stats", get(film_stats))
        .route("/api/v1/films/{slug}/stats/series", get(film_series))
        .route("/api/v1/films/{slug}/sessions", post(mint_session))
        .route("/api/v1/sessions/{id}/heartbeat", post(heartbeat))
        .route("/api/v1/openapi.json", get(openapi))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// A film as the API shows it: its metadata and where to play it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FilmView {
    pub slug: String,
    #[serde(flatten)]
    pub meta: FilmMeta,
    pub duration_s: f64,
    pub hls_url: String,
    pub dash_url: String,
    pub poster_url: Option<String>,
    pub backdrop_url: Option<String>,
    /// WebVTT index of the seek-preview sprites.
    pub thumbnails_url: Option<String>,
    /// Languages with subtitles (listed in both manifests).
    pub subtitles: Vec<String>,
    pub page_url: String,
    pub watch_url: String,
    pub renditions: Vec<Rendition>,
    /// When the current version was published; absent before the premiere, like everything
    /// that would name the version (its path is its publication time).
    pub published_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl FilmView {
    /// The film as the API shows it at `now`. Before its premiere nothing names the current
    /// version: the poster and backdrop have stable URLs, and the thumbnails are withheld
    /// with everything else under the film (`delivery::resolve`).
    pub fn new(film: Film, now: chrono::DateTime<chrono::Utc>) -> Self {
        let released = !film.is_before_premiere(now);
        FilmView {
            hls_url: film.hls_url(),
            dash_url: film.dash_url(),
            poster_url: film.poster_url(),
            backdrop_url: film.backdrop_url(),
            thumbnails_url: film.thumbnails_url().filter(|_| released),
            subtitles: film.current.subtitles.clone(),
            page_url: format!("/films/{}", film.slug),
            watch_url: format!("/watch/{}", film.slug),
            duration_s: film.current.duration_s,
            renditions: film.current.renditions,
            published_at: released.then_some(film.current.published_at),
            slug: film.slug,
            meta: film.meta,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FilmList {
    pub films: Vec<FilmView>,
}

#[utoipa::path(get, path = "/api/v1/films", responses((status = 200, body = FilmList)))]
async fn list_films(State(state): State<AppState>) -> Result<Json<FilmList>, ApiError> {
    let films = state.films.list().await?;
    Ok(Json(FilmList {
        films: films
            .into_iter()
            .map(|f| FilmView::new(f, chrono::Utc::now()))
            .collect(),
    }))
}

#[utoipa::path(get, path = "/api/v1/films/{slug}", params(("slug" = String, Path)),
    responses((status = 200, body = FilmView), (status = 404, body = ErrorBody)))]
async fn get_film(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<FilmView>, ApiError> {
    let film = state
        .films
        .get(&slug)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no film with slug `{slug}`")))?;
    Ok(Json(FilmView::new(film, chrono::Utc::now())))
}

/// The optional body of a mint request.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    pub viewer_id: Option<String>,
}

fn published(
    state: &AppState,
    slug: &str,
) -> Result<std::sync::Arc<crate::live::LiveFilm>, ApiError> {
    state
        .live
        .get(slug)
        .ok_or_else(|| ApiError::NotFound(format!("no film with slug `{slug}`")))
}

#[utoipa::path(post, path = "/api/v1/films/{slug}/sessions", params(("slug" = String, Path)),
    request_body(content = Option<MintRequest>, content_type = "application/json"),
    responses((status = 201, body = Minted), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn mint_session(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let live = published(&state, &slug)?;
    if live.film.is_before_premiere(chrono::Utc::now()) {
        return Err(crate::delivery::premiere_ahead(&live.film));
    }
    let request: MintRequest = if body.iter().all(u8::is_ascii_whitespace) {
        MintRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("mint request: {e}")))?
    };
    let minted = state.audience.mint(&slug, request.viewer_id)?;
    let mut response = (StatusCode::CREATED, Json(minted)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Takes the JSON whatever the `Content-Type` (players send `text/plain` to avoid a CORS
/// preflight, and `navigator.sendBeacon` cannot set headers). Always 204 for a valid beat:
/// a duplicate or implausible one is simply not counted (`X-Monsoon-Beat` says which).
#[utoipa::path(post, path = "/api/v1/sessions/{id}/heartbeat", params(("id" = String, Path)),
    request_body(content = Heartbeat, content_type = "text/plain"),
    responses((status = 204, description = "stored (or idempotently ignored)"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "the session's first beat without its proof of work"),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn heartbeat(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Bearer(bearer): Bearer,
    body: Bytes,
) -> Result<Response, ApiError> {
    let beat: Heartbeat = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("heartbeat: {e}")))?;
    let token = beat.token.as_deref().or(bearer.as_deref()).ok_or_else(|| {
        ApiError::Unauthorized("no session token (body `token` or Authorization: Bearer)".into())
    })?;
    let outcome = state.audience.heartbeat(&id, token, &beat).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(X_MONSOON_BEAT, HeaderValue::from_static(outcome.as_str()));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The token of an `Authorization: Bearer` header. Heartbeats are the hottest write of the
/// API: this reads the one header in place, where axum's `HeaderMap` extractor copies all.
struct Bearer(Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Bearer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Bearer(crate::bearer(&parts.headers).map(str::to_owned)))
    }
}

#[utoipa::path(get, path = "/api/v1/films/{slug}/stats", params(("slug" = String, Path)),
    responses((status = 200, body = FilmStats), (status = 404, body = ErrorBody),
        (status = 503, description = "the other nodes' figures could not be read (a shared database is down)", body = ErrorBody)))]
async fn film_stats(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    published(&state, &slug)?;
    let stats = state
        .audience
        .fresh_stats(&slug)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let mut response = Json(stats).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=2"),
    );
    Ok(response)
}

/// Query of a series: `metric` (see `SERIES_METRICS`), `from` (ms since the Unix epoch,
/// default 24 h ago), `step` (seconds, 60 to 86,400, default 60).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    pub metric: String,
    pub from: Option<i64>,
    pub step: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Series {
    pub film: String,
    pub metric: String,
    pub from: i64,
    pub step: i64,
    /// `[time_ms, value]` pairs, oldest first.
    #[schema(value_type = Vec<Vec<f64>>)]
    pub points: Vec<(i64, f64)>,
}

#[utoipa::path(get, path = "/api/v1/films/{slug}/stats/series", params(("slug" = String, Path), SeriesQuery),
    responses((status = 200, body = Series), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn film_series(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    query: Result<axum::extract::Query<SeriesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    published(&state, &slug)?;
    let axum::extract::Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if !monsoon_audience::SERIES_METRICS.contains(&query.metric.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "metric `{}` is not one of {}",
            query.metric,
            monsoon_audience::SERIES_METRICS.join(", ")
        )));
    }
    let step = query.step.unwrap_or(60);
    if !(60..=86_400).contains(&step) {
        return Err(ApiError::BadRequest(format!(
            "step {step} is outside 60..=86400 seconds"
        )));
    }
    // Minute rollups go back a month; anything far outside that is a mistake (and would
    // overflow the bucket arithmetic at the extremes of i64).
    let now = state.audience.now_ms();
    let from = query.from.unwrap_or(now - 24 * 3_600_000);
    let (earliest, latest) = (now - 400 * 86_400_000, now + 86_400_000);
    if !(earliest..=latest).contains(&from) {
        return Err(ApiError::BadRequest(format!(
            "from {from} is outside {earliest}..={latest} (ms since the Unix epoch, within 400 days before now and a day after)"
        )));
    }
    let points = state
        .audience
        .series(&slug, &query.metric, from, step * 1000);
    let mut response = Json(Series {
        film: slug,
        metric: query.metric,
        from,
        step,
        points,
    })
    .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=5"),
    );
    Ok(response)
}

/// The OpenAPI 3.1 document of the public API, derived from the Rust types.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Monsoon API",
        version = "1",
        description = "Catalog, playback sessions, heartbeats and audience figures."
    ),
    paths(list_films, get_film, mint_session, heartbeat, film_stats, film_series)
)]
pub struct ApiDoc;

async fn openapi() -> Response {
    let mut response = Json(ApiDoc::openapi()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_covers_the_api() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for path in [
            "/api/v1/films",
            "/api/v1/films/{slug}",
            "/api/v1/films/{slug}/sessions",
            "/api/v1/sessions/{id}/heartbeat",
            "/api/v1/films/{slug}/stats",
            "/api/v1/films/{slug}/stats/series",
        ] {
            assert!(paths.contains_key(path), "{path} is missing");
        }
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for schema in [
            "Heartbeat",
            "Minted",
            "FilmStats",
            "FilmView",
            "ErrorBody",
            "PlayerState",
            "CodecStats",
        ] {
            assert!(schemas.contains_key(schema), "{schema} is missing");
        }
        // The figures by network and rung, and bytes by codec.
        let stats = &schemas["FilmStats"]["properties"];
        for field in ["bytes", "watching_by_network", "watching_by_rung", "codecs"] {
            assert!(stats.get(field).is_some(), "FilmStats.{field} is missing");
        }
        assert!(schemas["CodecStats"]["properties"].get("bytes").is_some());
        // The wire contract's names, from the types themselves.
        let heartbeat = &schemas["Heartbeat"]["properties"];
        for field in [
            "token",
            "seq",
            "state",
            "play_ms",
            "rebuffer_ms",
            "startup_ms",
            "playhead_ms",
            "height",
            "bitrate_kbps",
            "fatal_error",
            "codec",
            "network",
        ] {
            assert!(
                heartbeat.get(field).is_some(),
                "Heartbeat.{field} is missing"
            );
        }
    }
}
