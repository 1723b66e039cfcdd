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
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use monsoon_audience::{Heartbeat, Outcome};
use monsoon_catalog::{Film, FilmMeta, Rendition};
use serde::Serialize;

use crate::{ApiError, AppState};

/// Heartbeats and mint requests are a few hundred bytes; anything over this gets 413.
const MAX_BODY: usize = 8 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/films", get(list_films))
        .route("/films/{slug}", get(get_film))
        .route("/films/{slug}/stats", get(film_stats))
        .route("/films/{slug}/stats/series", get(film_series))
        .route("/films/{slug}/sessions", post(mint_session))
        .route("/sessions/{id}/heartbeat", post(heartbeat))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// A film as the API shows it: its metadata and where to play it.
#[derive(Debug, Serialize)]
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
    pub published_at: chrono::DateTime<chrono::Utc>,
}

impl From<Film> for FilmView {
    fn from(film: Film) -> Self {
        FilmView {
            hls_url: film.hls_url(),
            dash_url: film.dash_url(),
            poster_url: film.poster_url(),
            backdrop_url: film.backdrop_url(),
            thumbnails_url: film.thumbnails_url(),
            subtitles: film.current.subtitles.clone(),
            page_url: format!("/films/{}", film.slug),
            watch_url: format!("/watch/{}", film.slug),
            duration_s: film.current.duration_s,
            renditions: film.current.renditions,
            published_at: film.current.published_at,
            slug: film.slug,
            meta: film.meta,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct FilmList {
    pub films: Vec<FilmView>,
}

async fn list_films(State(state): State<AppState>) -> Result<Json<FilmList>, ApiError> {
    let films = state.films.list().await?;
    Ok(Json(FilmList {
        films: films.into_iter().map(FilmView::from).collect(),
    }))
}

async fn get_film(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<FilmView>, ApiError> {
    let film = state
        .films
        .get(&slug)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no film with slug `{slug}`")))?;
    Ok(Json(film.into()))
}

/// The optional body of a mint request.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    pub viewer_id: Option<String>,
}

fn published(state: &AppState, slug: &str) -> Result<(), ApiError> {
    state
        .live
        .get(slug)
        .map(|_| ())
        .ok_or_else(|| ApiError::NotFound(format!("no film with slug `{slug}`")))
}

async fn mint_session(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    published(&state, &slug)?;
    let request: MintRequest = if body.iter().all(u8::is_ascii_whitespace) {
        MintRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("mint request: {e}")))?
    };
    let minted = state.audience.mint(&slug, request.viewer_id).await?;
    let mut response = (StatusCode::CREATED, Json(minted)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Takes the JSON whatever the `Content-Type` (players send `text/plain` to avoid a CORS
/// preflight, and `navigator.sendBeacon` cannot set headers). Always 204 for a valid beat:
/// a duplicate or implausible one is simply not counted (`X-Monsoon-Beat` says which).
async fn heartbeat(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let beat: Heartbeat = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("heartbeat: {e}")))?;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token = beat.token.as_deref().or(bearer).ok_or_else(|| {
        ApiError::Unauthorized("no session token (body `token` or Authorization: Bearer)".into())
    })?;
    let outcome = state.audience.heartbeat(&id, token, &beat).await?;
    let label = match outcome {
        Outcome::Accepted => "accepted",
        Outcome::Duplicate => "duplicate",
        Outcome::TooSoon => "too-soon",
        Outcome::Implausible => "implausible",
        Outcome::Closed => "closed",
    };
    Ok((
        StatusCode::NO_CONTENT,
        [
            ("x-monsoon-beat", label),
            (header::CACHE_CONTROL.as_str(), "no-store"),
        ],
    )
        .into_response())
}

async fn film_stats(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    published(&state, &slug)?;
    let mut response = Json(state.audience.stats(&slug)).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=2"),
    );
    Ok(response)
}

/// Query of a series: `metric` (see `SERIES_METRICS`), `from` (ms since the Unix epoch,
/// default 24 h ago), `step` (seconds, 60 to 86,400, default 60).
#[derive(Debug, serde::Deserialize)]
pub struct SeriesQuery {
    pub metric: String,
    pub from: Option<i64>,
    pub step: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct Series {
    pub film: String,
    pub metric: String,
    pub from: i64,
    pub step: i64,
    /// `[time_ms, value]` pairs, oldest first.
    pub points: Vec<(i64, f64)>,
}

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
    let from = query
        .from
        .unwrap_or_else(|| state.audience.now_ms() - 24 * 3_600_000);
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
