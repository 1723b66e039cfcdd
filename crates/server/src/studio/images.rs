//! The poster and the backdrop: uploads decoded and resized by the image tool, stored under
//! `<slug>/art/`, served immutable at `/art/…`, and replaced ones removed after [`ART_GRACE`].

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use monsoon_catalog::artwork::{ART_DIR, UPLOAD_BYTES};
use monsoon_catalog::{ArtKind, Error as CatalogError, FieldError, FilmMeta, Rule, validate_slug};
use monsoon_catalog::{FilmRepository, MediaStore};
use sha2::Digest as _;

use super::{find, invalid, save};
use crate::admin::{Operator, private};
use crate::{ApiError, AppState};
use monsoon_catalog::Action;

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

pub(super) async fn upload_poster(
    state: State<AppState>,
    operator: Operator,
    slug: Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    upload(state, operator, slug, body, ArtKind::Poster).await
}

pub(super) async fn upload_backdrop(
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
        let error = FieldError::new(kind.name(), "the upload is empty").because(Rule::EmptyUpload);
        return Ok(invalid(vec![error]));
    }
    let jpeg = match tool.artwork(bytes, kind.max_size()).await {
        Ok(jpeg) => jpeg,
        Err(mut refused) => {
            refused.message = format!("`{}`: {}", kind.name(), refused.message);
            return Ok(invalid(vec![FieldError {
                example: String::new(),
                ..refused.at(kind.name())
            }]));
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
pub(super) async fn art(
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
