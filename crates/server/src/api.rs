//! `/api/v1`: the public JSON API.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/films` | every published film, newest first |
//! | GET | `/films/{slug}` | one film |

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use monsoon_catalog::{Film, FilmMeta, Rendition};
use serde::Serialize;

use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/films", get(list_films))
        .route("/films/{slug}", get(get_film))
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
