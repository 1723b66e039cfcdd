//! `/admin/films`: the studio's films — list, create (a draft: metadata, no media yet), edit
//! every `film.toml` field in Vietnamese and English side by side, upload the poster and the
//! backdrop. Behind the admin sign-in ([`Operator`]) like every `/admin` route.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/admin/films`, `/admin/films/new`, `/admin/films/{slug}` | the studio's page (`studio.html`, `web/src/studio.js`) |
//! | GET | `/admin/api/films` | `{"films": [FilmEntry]}`: published films and drafts, newest first |
//! | POST | `/admin/api/films` | `{"slug", "meta": FilmMeta}` → 201 and the draft; 400 `{code: "invalid", errors}`; 409 when the slug is taken |
//! | GET | `/admin/api/films/{slug}` | `FilmDetail`: the metadata, its state, its images and pages |
//! | PUT | `/admin/api/films/{slug}` | `FilmMeta` → the film, saved at once (no re-encoding); 400 `{code: "invalid", errors}` |
//! | DELETE | `/admin/api/films/{slug}` | 204: the draft and its images deleted; 409 for a published film (never deleted here) or a draft with a queued or running job; 404 when there is none |
//! | GET | `/admin/api/films/{slug}/film.toml` | the metadata as `film.toml`, for scripts |
//! | PUT | `/admin/api/films/{slug}/film.toml` | a `film.toml`'s text → the film, saved as a form's edit (its image paths ignored: upload the images); 400 `{code: "invalid", errors}` |
//! | PUT | `/admin/api/films/{slug}/poster`, `…/backdrop` | the image's bytes → `{"url"}`; 400 when it is no image or out of size, 413 past [`UPLOAD_BYTES`] |
//! | GET | `/art/{slug}/{file}` | an uploaded image, public, immutable (its name is its hash) |
//!
//! The rules are `monsoon_catalog`'s (`FilmMeta::validate`, `FilmMeta::check_trailer`), the
//! ones `film.toml` is held to: a 400 lists every broken rule as `{key, message, example}`,
//! which the form shows beside the field, and the form's hints are the same examples
//! ([`FIELDS`](monsoon_catalog::rules::FIELDS)). Saving writes the catalog's record only (`FilmRepository::update_meta`):
//! every node sees the edit on its next page (at once on PostgreSQL, which pushes it).
//!
//! Images are decoded and resized by the server's [`monsoon_catalog::ImageTool`] (ffmpeg, set
//! by the binary with [`crate::AppState::set_image_tool`]; without one, uploads answer 503)
//! and stored in the media store under `<slug>/art/`. A replaced image is removed
//! [`ART_GRACE`] later, if the film's metadata still does not name it then: pages are
//! rendered from the live catalog (this node's refreshed at once, the others' within their
//! refresh or at once on PostgreSQL), the public API's answers may be cached for seconds,
//! and a viewer's open page may load a lazy image later, so an image is removed only once
//! nothing served should still name it. Each upload also looks for older images of the film
//! that nothing names (left by a restart during a grace period) and removes them the same way.
//!
//! Here: the routes and what the forms share (finding a film, its rules, saving); `page.rs` the
//! studio's page and strings, `films.rs` the films' JSON API, `images.rs` the poster and backdrop.

mod films;
mod images;
mod page;

use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use monsoon_catalog::artwork::UPLOAD_BYTES;
use monsoon_catalog::{ArtKind, FieldError, Film, FilmDraft, FilmMeta, validate_slug};
use serde::Serialize;

use crate::admin::{Operator, private};
use crate::{ApiError, AppState};
use monsoon_catalog::Action;

pub use images::ART_GRACE;
pub use page::StudioMessages;
pub(crate) use page::messages;

pub fn routes() -> Router<AppState> {
    let image_limit = DefaultBodyLimit::max(UPLOAD_BYTES);
    Router::new()
        .route("/admin/films", get(page::page))
        .route("/admin/films/new", get(page::page_new))
        .route("/admin/films/{slug}", get(page::page_edit))
        .route("/admin/api/films", get(films::list).post(films::create))
        .route(
            "/admin/api/films/{slug}",
            get(films::detail)
                .put(films::update)
                .delete(films::delete_draft),
        )
        .route(
            "/admin/api/films/{slug}/film.toml",
            get(films::export).put(films::import),
        )
        .route(
            "/admin/api/films/{slug}/poster",
            put(images::upload_poster).layer(image_limit),
        )
        .route(
            "/admin/api/films/{slug}/backdrop",
            put(images::upload_backdrop).layer(image_limit),
        )
        .layer(axum::middleware::map_response(crate::pages::page_headers))
        .route("/art/{slug}/{file}", get(images::art))
}

/// Records a studio change in the audit log (`crate::audit`), once it is committed: a save
/// that moves the premiere is `film_scheduled` (with the new time), any other `film_updated`.
async fn audit_save(
    state: &AppState,
    operator: &Operator,
    slug: &str,
    before: &FilmMeta,
    after: &FilmMeta,
) {
    let (action, detail) = if before.free_release != after.free_release {
        (
            Action::FilmScheduled,
            serde_json::json!({ "free_release": after.free_release }),
        )
    } else {
        (Action::FilmUpdated, serde_json::json!({}))
    };
    state.audit(operator, action, slug, detail).await;
}

/// One film (or draft) as the studio's form edits it.
#[derive(Debug, Serialize)]
struct FilmDetail {
    slug: String,
    state: &'static str,
    meta: FilmMeta,
    poster_url: Option<String>,
    backdrop_url: Option<String>,
    /// The public film page (the premiere's countdown before `free_release`); `None` for a
    /// draft, which has none yet.
    page_url: Option<String>,
    /// The version served, for a published film.
    version: Option<String>,
    updated_at: DateTime<Utc>,
}

impl FilmDetail {
    fn of_film(film: Film) -> Self {
        Self {
            poster_url: film.poster_url(),
            backdrop_url: film.backdrop_url(),
            page_url: Some(format!("/films/{}", film.slug)),
            version: Some(film.current.version.clone()),
            updated_at: film.updated_at,
            state: "published",
            slug: film.slug,
            meta: film.meta,
        }
    }

    fn of_draft(draft: FilmDraft) -> Self {
        let art = |kind| monsoon_catalog::art_url(&draft.slug, &draft.meta, kind);
        Self {
            poster_url: art(ArtKind::Poster),
            backdrop_url: art(ArtKind::Backdrop),
            page_url: None,
            version: None,
            updated_at: draft.updated_at,
            state: "draft",
            slug: draft.slug,
            meta: draft.meta,
        }
    }
}

/// The film or the draft `slug`, or 404.
async fn find(state: &AppState, slug: &str) -> Result<FilmDetail, ApiError> {
    let not_found = || ApiError::NotFound(format!("no film or draft with slug `{slug}`"));
    validate_slug(slug).map_err(|_| not_found())?;
    if let Some(film) = state.films.get(slug).await? {
        return Ok(FilmDetail::of_film(film));
    }
    match state.films.draft(slug).await? {
        Some(draft) => Ok(FilmDetail::of_draft(draft)),
        None => Err(not_found()),
    }
}

/// The answer to metadata that breaks rules: 400 and every broken rule.
fn invalid(errors: Vec<FieldError>) -> Response {
    let message = monsoon_catalog::rules::describe(&errors);
    private(
        (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({
                "code": "invalid",
                "message": message,
                "errors": errors,
            })),
        )
            .into_response(),
    )
}

/// Every rule of `meta` for the film `slug`, the catalog's included (the trailer).
async fn check(state: &AppState, slug: &str, meta: &FilmMeta) -> Result<Vec<FieldError>, ApiError> {
    let mut errors = meta.validate();
    if let Some(error) = meta.check_trailer(slug, state.films.as_ref()).await? {
        errors.push(error);
    }
    Ok(errors)
}

fn bad_json(rejection: JsonRejection) -> ApiError {
    ApiError::BadRequest(format!(
        "the body is not the JSON expected: {}",
        rejection.body_text()
    ))
}

/// Stores `meta` as the film's (or the draft's), and has this node's live catalog take it at
/// once (the others follow within their refresh, or at once on PostgreSQL).
async fn save(state: &AppState, slug: &str, meta: &FilmMeta) -> Result<(), ApiError> {
    if !state.films.update_meta(slug, meta).await? {
        return Err(ApiError::NotFound(format!(
            "no film or draft with slug `{slug}`"
        )));
    }
    if let Err(e) = state
        .live
        .refresh(state.films.as_ref(), state.media.as_ref())
        .await
    {
        tracing::warn!(error = %e, "catalog refresh after a metadata edit failed");
    }
    Ok(())
}
