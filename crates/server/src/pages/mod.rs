//! Viewer pages rendered on the server with askama (templates checked at compile time), in the
//! viewer's language ([`crate::i18n`]). They work without JavaScript; the player and the
//! premiere countdown add it.
//!
//! | path | page |
//! |---|---|
//! | `/` | catalog: a featured film, then rows |
//! | `/films/{slug}` | film page, or the premiere page (countdown) before the free release |
//! | `/films/{slug}/premiere.ics` | calendar event of the premiere ("remind me") |
//! | `/watch/{slug}` | player (303 to the film page before the premiere) |
//! | `/search?q=` | films whose title holds every word of `q`, with or without diacritics ([`crate::search`]); 400 past [`MAX_QUERY_CHARS`](crate::search::MAX_QUERY_CHARS) characters |
//! | any other path | 404 page ([`fallback`]); under `/api/`, `/admin/api/` and `/media/` the JSON error instead |
//!
//! A page that fails answers an error page in the viewer's language with the right status
//! ([`error_page`](render::error_page)): 404 (RFC 9110 §15.5.5), 400 (§15.5.1), 5xx (§15.6), each with a link
//! back to the catalog. The web app manifest and `/favicon.ico` are [`crate::webapp`]'s.
//!
//! Pages, and the operator's (`admin/`), carry [`page_headers`]: a Content-Security-Policy
//! that lets only this site's own scripts, styles, images and media load, plus the hashes of
//! the two inline scripts (the premiere countdown, the watch page's start); no framing; no referrer to other sites. Absolute
//! links (canonical, Open Graph, JSON-LD, calendar) come from configuration
//! ([`crate::Shared::site_url`]), never from the request's `Host`.
//!
//! Here: the routes, the home and search pages, and the film card they all show; `film.rs` the
//! film page and its calendar event, `watch.rs` the player's page, `render.rs` what every page
//! shares (its frame, rendering, the error pages), `headers.rs` the pages' security headers.

mod film;
mod headers;
mod render;
mod watch;

use std::collections::HashSet;

use askama::Template;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, FixedOffset, Utc};
use monsoon_catalog::Film;

use crate::i18n::{Locale, Messages};
use crate::search::MAX_QUERY_CHARS;
use crate::{ApiError, AppState};

pub(crate) use headers::page_headers;
pub(crate) use render::fallback;
pub use render::{Chrome, script_json};
use render::{page_or_error, render};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/films/{slug}", get(film::film_page))
        .route("/films/{slug}/premiere.ics", get(film::premiere_ics))
        .route("/watch/{slug}", get(watch::watch_page))
        .route("/search", get(search_page))
        .layer(axum::middleware::map_response(page_headers))
}

/// A film as a card or a hero.
#[derive(Debug)]
struct Card {
    slug: String,
    title: String,
    synopsis: String,
    poster: Option<String>,
    backdrop: Option<String>,
    premiere: Option<String>,
    /// Seconds, once it plays (the home page's script shows the viewer's progress with it).
    duration_s: Option<f64>,
}

impl Card {
    fn new(film: &Film, locale: Locale, now: DateTime<Utc>) -> Self {
        let lang = locale.lang.code();
        Self {
            slug: film.slug.clone(),
            title: film.meta.title.get(lang).to_owned(),
            synopsis: film.meta.synopsis.get(lang).to_owned(),
            poster: film.poster_url(),
            backdrop: film.backdrop_url(),
            premiere: film
                .meta
                .free_release
                .filter(|_| film.is_before_premiere(now))
                .map(|at| format_time(at, &locale.lang.messages().datetime_format)),
            duration_s: Some(film.current.duration_s)
                .filter(|d| d.is_finite() && *d > 0.0 && !film.is_before_premiere(now)),
        }
    }
}

fn format_time(at: DateTime<FixedOffset>, format: &str) -> String {
    at.format(format).to_string()
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    t: &'static Messages,
    c: Chrome,
    featured: Option<Card>,
    rows: Vec<Row>,
}

/// A titled shelf of cards on the home page.
#[derive(Debug)]
struct Row {
    title: &'static str,
    cards: Vec<Card>,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    t: &'static Messages,
    c: Chrome,
    query: String,
    /// `None` without a query (the page prompts for one).
    results: Option<Vec<Card>>,
}

async fn find(state: &AppState, slug: &str) -> Result<Film, ApiError> {
    state
        .films
        .get(slug)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no film with slug `{slug}`")))
}

async fn home(State(state): State<AppState>, locale: Locale, uri: Uri) -> Response {
    let page = home_inner(&state, locale).await;
    page_or_error(&state, locale, &uri, page)
}

/// The films the catalog lists: all but trailers, which are assets of their films.
fn listed(films: &[Film]) -> impl Iterator<Item = &Film> {
    let trailers: HashSet<&str> = films
        .iter()
        .filter_map(|f| f.meta.trailer.as_deref())
        .collect();
    films
        .iter()
        .filter(move |f| !trailers.contains(f.slug.as_str()))
}

async fn home_inner(state: &AppState, locale: Locale) -> Result<Response, ApiError> {
    let films = state.films.list().await?;
    let now = Utc::now();
    let (premieres, released): (Vec<&Film>, Vec<&Film>) =
        listed(&films).partition(|f| f.is_before_premiere(now));
    let card = |f: &&Film| Card::new(f, locale, now);
    let t = locale.lang.messages();
    let rows = [(&t.row_premieres, &premieres), (&t.row_all, &released)]
        .into_iter()
        .filter(|(_, films)| !films.is_empty())
        .map(|(title, films)| Row {
            title,
            cards: films.iter().map(card).collect(),
        })
        .collect();
    render(
        &Home {
            t,
            c: Chrome::new(state, locale, "/"),
            featured: released.first().or(premieres.first()).map(card),
            rows,
        },
        locale,
    )
}

#[derive(Debug, serde::Deserialize)]
struct SearchParams {
    q: Option<String>,
}

/// `/search?q=`: the films whose title holds every word of `q` ([`crate::search`]), in the
/// catalog's order, trailers left out as on the home page. Works without JavaScript: the
/// header's search box is a plain form.
async fn search_page(
    State(state): State<AppState>,
    locale: Locale,
    uri: Uri,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Response {
    let page = search_inner(&state, locale, params).await;
    page_or_error(&state, locale, &uri, page)
}

async fn search_inner(
    state: &AppState,
    locale: Locale,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let t = locale.lang.messages();
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let q = params.q.unwrap_or_default();
    if q.len() > 4 * MAX_QUERY_CHARS || q.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::BadRequest(
            t.search_too_long
                .replace("{max}", &MAX_QUERY_CHARS.to_string()),
        ));
    }
    let query = crate::search::Query::new(&q);
    let results = if query.is_empty() {
        None
    } else {
        let films = state.films.list().await?;
        let now = Utc::now();
        Some(
            listed(&films)
                .filter(|f| query.matches([f.meta.title.vi.as_str(), f.meta.title.en.as_str()]))
                .map(|f| Card::new(f, locale, now))
                .collect(),
        )
    };
    let encoded: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
    let mut c = Chrome::new(state, locale, &format!("/search?q={encoded}"));
    c.query = q.clone();
    render(
        &SearchPage {
            t,
            c,
            query: q,
            results,
        },
        locale,
    )
}
