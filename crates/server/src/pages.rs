//! Viewer pages rendered on the server with askama (templates checked at compile time).
//!
//! | path | page |
//! |---|---|
//! | `/` | catalog |
//! | `/films/{slug}` | film page |
//! | `/watch/{slug}` | player |

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Html;
use axum::routing::get;
use monsoon_catalog::Film;

use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/films/{slug}", get(film_page))
        .route("/watch/{slug}", get(watch_page))
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    films: Vec<Film>,
}

#[derive(Template)]
#[template(path = "film.html")]
struct FilmPage {
    film: Film,
    runtime_min: u32,
}

#[derive(Template)]
#[template(path = "watch.html")]
struct WatchPage {
    film: Film,
}

fn render(template: &impl Template) -> Result<Html<String>, ApiError> {
    template
        .render()
        .map(Html)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

async fn find(state: &AppState, slug: &str) -> Result<Film, ApiError> {
    state
        .films
        .get(slug)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no film with slug `{slug}`")))
}

async fn home(State(state): State<AppState>) -> Result<Html<String>, ApiError> {
    render(&Home {
        films: state.films.list().await?,
    })
}

async fn film_page(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Html<String>, ApiError> {
    let film = find(&state, &slug).await?;
    let runtime_min = film
        .meta
        .runtime_min
        .unwrap_or_else(|| (film.current.duration_s / 60.0).ceil() as u32);
    render(&FilmPage { film, runtime_min })
}

async fn watch_page(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Html<String>, ApiError> {
    render(&WatchPage {
        film: find(&state, &slug).await?,
    })
}
