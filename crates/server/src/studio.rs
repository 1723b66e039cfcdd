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
//! ([`FIELDS`]). Saving writes the catalog's record only (`FilmRepository::update_meta`):
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

use std::sync::LazyLock;
use std::time::Duration;

use askama::Template;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::{DateTime, FixedOffset, Utc};
use monsoon_catalog::artwork::{ART_DIR, UPLOAD_BYTES};
use monsoon_catalog::rules::{AGE_RATINGS, FIELDS, age_rating_rule};
use monsoon_catalog::{
    ArtKind, Artwork, Error as CatalogError, FieldError, Film, FilmDraft, FilmMeta, Localized,
    validate_slug,
};
use monsoon_catalog::{FilmRepository, MediaStore};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::admin::{Operator, private};
use crate::i18n::{Lang, Locale};
use crate::{ApiError, AppState};
use monsoon_catalog::Action;

pub fn routes() -> Router<AppState> {
    let image_limit = DefaultBodyLimit::max(UPLOAD_BYTES);
    Router::new()
        .route("/admin/films", get(page))
        .route("/admin/films/new", get(page_new))
        .route("/admin/films/{slug}", get(page_edit))
        .route("/admin/api/films", get(list).post(create))
        .route(
            "/admin/api/films/{slug}",
            get(detail).put(update).delete(delete_draft),
        )
        .route("/admin/api/films/{slug}/film.toml", get(export).put(import))
        .route(
            "/admin/api/films/{slug}/poster",
            put(upload_poster).layer(image_limit),
        )
        .route(
            "/admin/api/films/{slug}/backdrop",
            put(upload_backdrop).layer(image_limit),
        )
        .layer(axum::middleware::map_response(crate::pages::page_headers))
        .route("/art/{slug}/{file}", get(art))
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

/// The studio's strings, in one language (`locales/studio.<lang>.toml`).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StudioMessages {
    pub title: String,
    pub new_film: String,
    pub edit_film: String,
    pub back_to_list: String,
    pub dashboard: String,
    pub col_title: String,
    pub col_slug: String,
    pub col_state: String,
    pub col_premiere: String,
    pub col_updated: String,
    pub state_published: String,
    pub state_draft: String,
    pub no_films: String,
    pub vietnamese: String,
    pub english: String,
    pub field_title: String,
    pub field_synopsis: String,
    pub field_slug: String,
    pub slug_hint: String,
    pub field_original_title: String,
    pub field_director: String,
    pub field_writer: String,
    pub field_cast: String,
    pub field_genres: String,
    pub one_per_line: String,
    pub field_runtime: String,
    pub field_country: String,
    pub field_company: String,
    pub field_cinema_release: String,
    pub field_free_release: String,
    pub free_release_hint: String,
    pub field_age_rating: String,
    pub no_rating: String,
    pub field_language: String,
    pub field_trailer: String,
    pub field_codecs: String,
    pub field_ladder: String,
    pub encoding: String,
    pub images: String,
    pub poster: String,
    pub backdrop: String,
    pub upload: String,
    pub images_hint: String,
    pub images_after_create: String,
    pub media: String,
    pub master: String,
    pub master_hint: String,
    pub upload_ingest: String,
    pub tracks: String,
    pub tracks_hint: String,
    pub track_kind: String,
    pub track_audio: String,
    pub track_subtitles: String,
    pub track_lang: String,
    pub track_label: String,
    pub add_track: String,
    pub jobs: String,
    pub col_job: String,
    pub col_progress: String,
    pub col_speed: String,
    pub col_eta: String,
    pub col_message: String,
    pub no_jobs: String,
    pub uploads_in_flight: String,
    pub col_file: String,
    pub col_job_state: String,
    pub no_uploads: String,
    pub cancel_job: String,
    pub show_log: String,
    pub hide_log: String,
    pub no_log: String,
    pub delete_draft: String,
    pub delete_confirm: String,
    pub deleted: String,
    pub hashing: String,
    pub uploading: String,
    pub checking: String,
    pub job_queued: String,
    pub save: String,
    pub create: String,
    pub saved: String,
    pub created: String,
    pub uploaded: String,
    pub problems: String,
    pub failed: String,
    pub example: String,
    pub public_page: String,
    pub countdown_page: String,
    pub draft_note: String,
    pub operators: String,
    pub operators_title: String,
    pub op_col_name: String,
    pub op_col_created: String,
    pub op_col_last_sign_in: String,
    pub op_col_state: String,
    pub op_col_actions: String,
    pub op_enabled: String,
    pub op_disabled: String,
    pub op_never: String,
    pub op_you: String,
    pub op_add: String,
    pub op_name: String,
    pub op_name_hint: String,
    pub op_password: String,
    pub op_password_hint: String,
    pub op_generate: String,
    pub op_create: String,
    pub op_disable: String,
    pub op_enable: String,
    pub op_reset: String,
    pub op_new_password: String,
    pub op_created: String,
    pub op_password_set: String,
    pub op_disabled_done: String,
    pub op_enabled_done: String,
    pub op_generated: String,
    pub op_self_note: String,
}

fn parse_messages(name: &str, text: &str) -> StudioMessages {
    toml::from_str(text).unwrap_or_else(|e| panic!("locales/{name}: {e}"))
}

static STUDIO_VI: LazyLock<StudioMessages> =
    LazyLock::new(|| parse_messages("studio.vi.toml", include_str!("../locales/studio.vi.toml")));
static STUDIO_EN: LazyLock<StudioMessages> =
    LazyLock::new(|| parse_messages("studio.en.toml", include_str!("../locales/studio.en.toml")));

pub(crate) fn messages(lang: Lang) -> &'static StudioMessages {
    match lang {
        Lang::Vi => &STUDIO_VI,
        Lang::En => &STUDIO_EN,
    }
}

/// The studio's page: the list, a new film's form or a film's.
#[derive(Template)]
#[template(path = "studio.html")]
struct StudioPage {
    t: &'static crate::i18n::Messages,
    s: &'static StudioMessages,
    c: crate::pages::Chrome,
    /// `list`, `new` or `edit`.
    mode: &'static str,
    slug: String,
    studio_css: String,
    studio_js: String,
    tus_js: String,
    /// The session's CSRF token, which the page's requests carry (`csrf.rs`).
    csrf: String,
    /// What the script needs: the mode, the slug, the strings and the rules, as JSON.
    config_json: String,
    /// The Vietnamese film classes, `(label, who may watch)`.
    ratings: &'static [(&'static str, &'static str)],
}

impl StudioPage {
    /// The list fields, one name a line in the form.
    fn lists(&self) -> [(&'static str, &'static str); 4] {
        let s = self.s;
        [
            ("director", s.field_director.as_str()),
            ("writer", s.field_writer.as_str()),
            ("cast", s.field_cast.as_str()),
            ("genres", s.field_genres.as_str()),
        ]
    }

    fn image_kinds(&self) -> [(&'static str, &'static str); 2] {
        [
            ("poster", self.s.poster.as_str()),
            ("backdrop", self.s.backdrop.as_str()),
        ]
    }

    /// The `film.toml` example of `key`: the form's hint is the file's rule.
    fn example(&self, key: &str) -> String {
        FIELDS
            .iter()
            .find(|f| f.key == key)
            .map(|f| format!("{key} = {}", f.example))
            .unwrap_or_default()
    }
}

async fn page(
    state: State<AppState>,
    locale: Locale,
    operator: Result<Operator, ApiError>,
) -> Response {
    render(&state, locale, operator.ok(), "list", String::new())
}

async fn page_new(
    state: State<AppState>,
    locale: Locale,
    operator: Result<Operator, ApiError>,
) -> Response {
    render(&state, locale, operator.ok(), "new", String::new())
}

async fn page_edit(
    state: State<AppState>,
    locale: Locale,
    operator: Result<Operator, ApiError>,
    Path(slug): Path<String>,
) -> Response {
    if validate_slug(&slug).is_err() {
        return ApiError::NotFound(format!("no film `{slug}`")).into_response();
    }
    render(&state, locale, operator.ok(), "edit", slug)
}

fn render(
    state: &AppState,
    locale: Locale,
    operator: Option<Operator>,
    mode: &'static str,
    slug: String,
) -> Response {
    let Some(operator) = operator else {
        let to = format!("/admin/login?lang={}", locale.lang.code());
        return private(Redirect::to(&to).into_response());
    };
    let s = messages(locale.lang);
    let path = match mode {
        "new" => "/admin/films/new".to_owned(),
        "edit" => format!("/admin/films/{slug}"),
        _ => "/admin/films".to_owned(),
    };
    let page = StudioPage {
        t: locale.lang.messages(),
        s,
        c: crate::pages::Chrome::new(state, locale, &path),
        mode,
        slug: slug.clone(),
        studio_css: state.assets.url("studio.css"),
        studio_js: state.assets.url("studio.js"),
        tus_js: state.assets.url("tus.js"),
        csrf: operator.csrf().unwrap_or_default().to_owned(),
        config_json: crate::pages::script_json(&serde_json::json!({
            "mode": mode,
            "slug": slug,
            "upload_js": state.assets.url("upload.js"),
            "upload_hash_js": state.assets.url("upload-hash.js"),
            "sha256_js": state.assets.url("sha256.js"),
            "lang": locale.lang.code(),
            "strings": s,
            "age_rating_rule": age_rating_rule(),
        })),
        ratings: AGE_RATINGS,
    };
    match page.render() {
        Ok(html) => private(Html(html).into_response()),
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}

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

async fn list(State(state): State<AppState>, _: Operator) -> Result<Response, ApiError> {
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

async fn detail(
    State(state): State<AppState>,
    _: Operator,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    Ok(private(Json(find(&state, &slug).await?).into_response()))
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

#[derive(Debug, Deserialize)]
struct NewFilm {
    slug: String,
    meta: FilmMeta,
}

async fn create(
    State(state): State<AppState>,
    operator: Operator,
    body: Result<Json<NewFilm>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(NewFilm { slug, mut meta }) = body.map_err(bad_json)?;
    // Paths name files on an operator's disk in film.toml; an upload is the studio's way.
    (meta.poster, meta.backdrop, meta.artwork) = (None, None, Artwork::default());
    let mut errors = Vec::new();
    if let Err(e) = validate_slug(&slug) {
        errors.push(FieldError::new("slug", e.to_string()));
        errors[0].example = "slug = \"mua-do\"".into();
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

async fn update(
    State(state): State<AppState>,
    operator: Operator,
    Path(slug): Path<String>,
    body: Result<Json<FilmMeta>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(mut meta) = body.map_err(bad_json)?;
    let stored = find(&state, &slug).await?;
    // The images are the uploads' to change.
    (meta.poster, meta.backdrop) = (None, None);
    meta.artwork = stored.meta.artwork.clone();
    let errors = check(&state, &slug, &meta).await?;
    if !errors.is_empty() {
        return Ok(invalid(errors));
    }
    save(&state, &slug, &meta).await?;
    audit_save(&state, &operator, &slug, &stored.meta, &meta).await;
    Ok(private(Json(find(&state, &slug).await?).into_response()))
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

/// Deletes a draft that was never published, and its images. A published film is never
/// deleted here (409, naming the rule): its versions are the publish protocol's. A draft
/// with a queued or running job is not either (409): the job would publish it.
async fn delete_draft(
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

/// How long a replaced poster or backdrop is kept before it is removed: pages and answers
/// rendered before the change (another node's, a cache's, a viewer's open page) may still name
/// it meanwhile.
pub const ART_GRACE: Duration = Duration::from_secs(600);

/// The images under `<slug>/art/` that `meta` does not name, as keys.
fn unnamed_art(keys: Vec<String>, meta: Option<&FilmMeta>) -> Vec<String> {
    keys.into_iter()
        .filter(|key| {
            let file = key.rsplit('/').next().unwrap_or_default();
            meta.is_none_or(|meta| {
                meta.artwork.poster.as_deref() != Some(file)
                    && meta.artwork.backdrop.as_deref() != Some(file)
            })
        })
        .collect()
}

/// Removes the images of `slug` that its metadata does not name now and still does not name
/// after the grace period (a later upload or a restore in between keeps them).
fn retire_unnamed_art(state: &AppState, slug: &str) {
    let films: std::sync::Arc<dyn FilmRepository> = std::sync::Arc::clone(&state.films);
    let media: std::sync::Arc<dyn MediaStore> = std::sync::Arc::clone(&state.media);
    let grace = Duration::from_millis(
        state
            .art_grace_ms
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    let slug = slug.to_owned();
    tokio::spawn(async move {
        let prefix = format!("{slug}/{ART_DIR}");
        let unnamed = async |films: &dyn FilmRepository, keys: Vec<String>| {
            let meta = monsoon_catalog::stored_meta(films, &slug).await?;
            // A film or draft that is gone: its images went with it (a deleted draft).
            Ok::<_, CatalogError>(meta.map(|meta| unnamed_art(keys, Some(&meta))))
        };
        let result = async {
            let keys = media.list(&prefix).await?;
            let Some(stale) = unnamed(films.as_ref(), keys).await? else {
                return Ok(Vec::new());
            };
            if stale.is_empty() {
                return Ok(Vec::new());
            }
            tokio::time::sleep(grace).await;
            let Some(still) = unnamed(films.as_ref(), stale).await? else {
                return Ok(Vec::new());
            };
            for key in &still {
                media.delete_prefix(key).await?;
            }
            Ok::<_, CatalogError>(still)
        }
        .await;
        match result {
            Ok(removed) => {
                for key in removed {
                    tracing::info!(%key, "replaced image removed after its grace period");
                }
            }
            Err(e) => tracing::warn!(%slug, error = %e, "replaced images were not removed"),
        }
    });
}

async fn export(
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

async fn import(
    State(state): State<AppState>,
    operator: Operator,
    Path(slug): Path<String>,
    body: Result<String, axum::extract::rejection::StringRejection>,
) -> Result<Response, ApiError> {
    let text = body.map_err(|r| {
        ApiError::BadRequest(format!("film.toml must be UTF-8 text: {}", r.body_text()))
    })?;
    let stored = find(&state, &slug).await?;
    let mut meta = match FilmMeta::parse_toml(&text) {
        Ok(meta) => meta,
        Err(errors) => return Ok(invalid(errors)),
    };
    // Paths on a script's disk mean nothing here; the images are uploaded.
    (meta.poster, meta.backdrop) = (None, None);
    meta.artwork = stored.meta.artwork.clone();
    let errors = check(&state, &slug, &meta).await?;
    if !errors.is_empty() {
        return Ok(invalid(errors));
    }
    save(&state, &slug, &meta).await?;
    audit_save(&state, &operator, &slug, &stored.meta, &meta).await;
    Ok(private(Json(find(&state, &slug).await?).into_response()))
}

async fn upload_poster(
    state: State<AppState>,
    operator: Operator,
    slug: Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    upload(state, operator, slug, body, ArtKind::Poster).await
}

async fn upload_backdrop(
    state: State<AppState>,
    operator: Operator,
    slug: Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    upload(state, operator, slug, body, ArtKind::Backdrop).await
}

async fn upload(
    State(state): State<AppState>,
    operator: Operator,
    Path(slug): Path<String>,
    body: Result<Bytes, BytesRejection>,
    kind: ArtKind,
) -> Result<Response, ApiError> {
    let bytes = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(format!(
            "the image is larger than the limit of {UPLOAD_BYTES} bytes (16 MiB)"
        )),
        _ => ApiError::BadRequest(rejection.body_text()),
    })?;
    let mut meta = find(&state, &slug).await?.meta;
    let Some(tool) = state.images.get() else {
        return Err(ApiError::Unavailable(
            "this server has no image tool (ffmpeg): images cannot be uploaded".into(),
        ));
    };
    if bytes.is_empty() {
        return Ok(invalid(vec![FieldError::new(
            kind.name(),
            "the upload is empty",
        )]));
    }
    let jpeg = match tool.artwork(bytes, kind.max_size()).await {
        Ok(jpeg) => jpeg,
        Err(message) => {
            let mut error = FieldError::new(kind.name(), format!("`{}`: {message}", kind.name()));
            error.example = String::new();
            return Ok(invalid(vec![error]));
        }
    };
    let hash = hex::encode(&sha2::Sha256::digest(&jpeg)[..8]);
    let file = kind.file_name(&hash);
    state
        .media
        .put(&format!("{slug}/{ART_DIR}/{file}"), Bytes::from(jpeg))
        .await?;
    match kind {
        ArtKind::Poster => meta.artwork.poster = Some(file),
        ArtKind::Backdrop => meta.artwork.backdrop = Some(file),
    }
    save(&state, &slug, &meta).await?;
    // The image replaced, and any other that nothing names, once nothing served may.
    retire_unnamed_art(&state, &slug);
    let image = match kind {
        ArtKind::Poster => "poster",
        ArtKind::Backdrop => "backdrop",
    };
    state
        .audit(
            &operator,
            Action::FilmUpdated,
            &slug,
            serde_json::json!({ "image": image }),
        )
        .await;
    let url = monsoon_catalog::art_url(&slug, &meta, kind);
    Ok(private(
        Json(serde_json::json!({ "url": url })).into_response(),
    ))
}

/// An uploaded image: public (the pages show it, the premiere's too), and immutable — its name
/// is its content's hash.
async fn art(
    State(state): State<AppState>,
    Path((slug, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("no image `{slug}/{file}`"));
    let named = [ArtKind::Poster, ArtKind::Backdrop]
        .into_iter()
        .any(|kind| kind.is_file_name(&file));
    if validate_slug(&slug).is_err() || !named {
        return Err(not_found());
    }
    let bytes = match state
        .media
        .get(&format!("{slug}/{ART_DIR}/{file}"), None)
        .await
    {
        Ok(bytes) => bytes,
        Err(CatalogError::NotFound(_)) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogs_have_every_string() {
        // Parsing with deny_unknown_fields and no defaults: a key missing or extra panics.
        assert_eq!(messages(Lang::Vi).save, "Lưu");
        assert_eq!(messages(Lang::En).save, "Save");
    }
}
