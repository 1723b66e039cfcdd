//! The films' JSON API under `/admin/api/films`: the list, a draft's creation, metadata edits
//! (as JSON or as `film.toml`), and a draft's deletion.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, FixedOffset, Utc};
use monsoon_catalog::artwork::ART_DIR;
use monsoon_catalog::{
    ArtKind, Artwork, Error as CatalogError, FieldError, FilmMeta, Localized, Rule, validate_slug,
};
use serde::{Deserialize, Serialize};

use super::{FilmDetail, audit_save, bad_json, check, find, invalid, save};
use crate::admin::{Operator, private};
use crate::{ApiError, AppState};
use monsoon_catalog::Action;

/// A film or a draft in the studio's list.
#[derive(Debug, Serialize)]
struct FilmEntry {
    slug: String,
    /// `published` or `draft`.
    state: &'static str,
    title: Localized,
    free_release: Option<DateTime<FixedOffset>>,
    updated_at: DateTime<Utc>,
    poster_url: Option<String>,
}

pub(super) async fn list(State(state): State<AppState>, _: Operator) -> Result<Response, ApiError> {
    let films = state.films.list().await?;
    let drafts = state.films.drafts().await?;
    let mut entries: Vec<FilmEntry> = drafts
        .into_iter()
        .map(|d| FilmEntry {
            poster_url: monsoon_catalog::art_url(&d.slug, &d.meta, ArtKind::Poster),
            slug: d.slug,
            state: "draft",
            free_release: d.meta.free_release,
            title: d.meta.title,
            updated_at: d.updated_at,
        })
        .collect();
    entries.extend(films.into_iter().map(|f| FilmEntry {
        poster_url: f.poster_url(),
        state: "published",
        free_release: f.meta.free_release,
        updated_at: f.updated_at,
        slug: f.slug,
        title: f.meta.title,
    }));
    Ok(private(
        Json(serde_json::json!({ "films": entries })).into_response(),
    ))
}

pub(super) async fn detail(
    State(state): State<AppState>,
    _: Operator,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    Ok(private(Json(find(&state, &slug).await?).into_response()))
}

#[derive(Debug, Deserialize)]
pub(super) struct NewFilm {
    slug: String,
    meta: FilmMeta,
}

pub(super) async fn create(
    State(state): State<AppState>,
    operator: Operator,
    body: Result<Json<NewFilm>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(NewFilm { slug, mut meta }) = body.map_err(bad_json)?;
    // Paths name files on an operator's disk in film.toml; an upload is the studio's way.
    (meta.poster, meta.backdrop, meta.artwork) = (None, None, Artwork::default());
    let mut errors = Vec::new();
    if let Err(e) = validate_slug(&slug) {
        let value = slug.clone();
        errors.push(FieldError {
            example: "slug = \"mua-do\"".into(),
            ..FieldError::new("slug", e.to_string()).because(Rule::Slug { value })
        });
    }
    errors.extend(check(&state, &slug, &meta).await?);
    if !errors.is_empty() {
        return Ok(invalid(errors));
    }
    let draft = match state.films.create_draft(&slug, &meta).await {
        Ok(draft) => draft,
        Err(e @ CatalogError::Taken(_)) => return Err(ApiError::Conflict(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    state
        .audit(
            &operator,
            Action::FilmCreated,
            &slug,
            serde_json::json!({ "draft": true }),
        )
        .await;
    let mut response = Json(FilmDetail::of_draft(draft)).into_response();
    *response.status_mut() = StatusCode::CREATED;
    if let Ok(location) = HeaderValue::from_str(&format!("/admin/api/films/{slug}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(private(response))
}

pub(super) async fn update(
    State(state): State<AppState>,
    operator: Operator,
    Path(slug): Path<String>,
    body: Result<Json<FilmMeta>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(meta) = body.map_err(bad_json)?;
    let stored = find(&state, &slug).await?;
    replace(&state, &operator, &slug, &stored.meta, meta).await
}

/// Saves `meta` over the film's `stored` metadata and answers its detail, or the rules it
/// breaks (400) with nothing saved. The images stay the uploads' to change: paths a request
/// names mean nothing here.
async fn replace(
    state: &AppState,
    operator: &Operator,
    slug: &str,
    stored: &FilmMeta,
    mut meta: FilmMeta,
) -> Result<Response, ApiError> {
    (meta.poster, meta.backdrop) = (None, None);
    meta.artwork = stored.artwork.clone();
    let errors = check(state, slug, &meta).await?;
    if !errors.is_empty() {
        return Ok(invalid(errors));
    }
    save(state, slug, &meta).await?;
    audit_save(state, operator, slug, stored, &meta).await;
    Ok(private(Json(find(state, slug).await?).into_response()))
}

/// Deletes a draft that was never published, and its images. A published film is never
/// deleted here (409, naming the rule): its versions are the publish protocol's. A draft
/// with a queued or running job is not either (409): the job would publish it.
pub(super) async fn delete_draft(
    State(state): State<AppState>,
    operator: Operator,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    let found = find(&state, &slug).await?;
    let published = || {
        ApiError::Conflict(format!(
            "`{slug}` is a published film: only a draft that was never published can be \
             deleted"
        ))
    };
    if found.state == "published" {
        return Err(published());
    }
    if let Some(queue) = state.jobs.as_deref()
        && let Some(job) = queue
            .list(monsoon_catalog::jobs::limits::LIST)
            .await?
            .into_iter()
            .find(|job| job.slug == slug && !job.state.is_final())
    {
        return Err(ApiError::Conflict(format!(
            "the draft `{slug}` has job {} {}, which would publish it: cancel the job before \
             deleting the draft",
            job.id,
            job.state.as_str()
        )));
    }
    if !state.films.delete_draft(&slug).await? {
        // Published (or deleted) since it was read.
        return Err(match state.films.get(&slug).await? {
            Some(_) => published(),
            None => ApiError::NotFound(format!("no film or draft with slug `{slug}`")),
        });
    }
    // A draft has no public page: nothing served names its images.
    if let Err(e) = state
        .media
        .delete_prefix(&format!("{slug}/{ART_DIR}"))
        .await
    {
        tracing::warn!(%slug, error = %e, "the deleted draft's images were not removed");
    }
    state
        .audit(
            &operator,
            Action::DraftDeleted,
            &slug,
            serde_json::json!({ "title": found.meta.title }),
        )
        .await;
    Ok(private(StatusCode::NO_CONTENT.into_response()))
}

pub(super) async fn export(
    State(state): State<AppState>,
    _: Operator,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    let mut meta = find(&state, &slug).await?.meta;
    // Not film.toml keys: the uploaded images stay in the catalog.
    meta.artwork = Artwork::default();
    let text = toml::to_string(&meta).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(private(
        (
            [(header::CONTENT_TYPE, "application/toml; charset=utf-8")],
            format!("# film.toml of `{slug}`, exported from the studio\n{text}"),
        )
            .into_response(),
    ))
}

pub(super) async fn import(
    State(state): State<AppState>,
    operator: Operator,
    Path(slug): Path<String>,
    body: Result<String, axum::extract::rejection::StringRejection>,
) -> Result<Response, ApiError> {
    let text = body.map_err(|r| {
        ApiError::BadRequest(format!("film.toml must be UTF-8 text: {}", r.body_text()))
    })?;
    let stored = find(&state, &slug).await?;
    let meta = match FilmMeta::parse_toml(&text) {
        Ok(meta) => meta,
        Err(errors) => return Ok(invalid(errors)),
    };
    // Paths on a script's disk mean nothing here either.
    replace(&state, &operator, &slug, &stored.meta, meta).await
}
