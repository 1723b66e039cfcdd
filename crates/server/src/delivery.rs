//! `/media`: manifests and segments from the media store.
//!
//! | path | object |
//! |---|---|
//! | `/media/{slug}/master.m3u8` | HLS multivariant playlist of the current version |
//! | `/media/{slug}/manifest.mpd` | DASH manifest of the current version |
//! | `/media/{slug}/{version}/{*file}` | everything else, under its versioned, immutable path |
//!
//! Only the film's current version is served: a version left on disk by a killed ingest, or
//! one being replaced, is invisible.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use monsoon_catalog::{DASH_MANIFEST, Film, MULTIVARIANT_PLAYLIST};
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/{slug}/{file}", get(manifest))
        .route("/{slug}/{version}/{*file}", get(versioned))
}

/// What kind of object a path names: decides media type and caching.
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
    pub fn of(file: &str) -> Option<Self> {
        let ext = file.rsplit_once('.').map(|(_, e)| e)?;
        Some(match ext {
            "m3u8" if file == MULTIVARIANT_PLAYLIST => ObjectClass::Multivariant,
            "m3u8" => ObjectClass::MediaPlaylist,
            "mpd" => ObjectClass::Mpd,
            "m4s" => ObjectClass::Segment,
            "mp4" => ObjectClass::InitSegment,
            "jpg" | "jpeg" => ObjectClass::Image,
            "vtt" => ObjectClass::Text,
            _ => return None,
        })
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ObjectClass::Multivariant | ObjectClass::MediaPlaylist => {
                "application/vnd.apple.mpegurl"
            }
            ObjectClass::Mpd => "application/dash+xml",
            ObjectClass::Segment => "video/iso.segment",
            ObjectClass::InitSegment => "video/mp4",
            ObjectClass::Image => "image/jpeg",
            ObjectClass::Text => "text/vtt; charset=utf-8",
        }
    }

    /// Cache lifetimes: versioned objects never change; the top-level manifests point at the
    /// current version and may change on re-ingest.
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

async fn current_film(state: &AppState, slug: &str) -> Result<Film, ApiError> {
    state
        .films
        .get(slug)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no film with slug `{slug}`")))
}

async fn manifest(
    State(state): State<AppState>,
    Path((slug, file)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    if file != MULTIVARIANT_PLAYLIST && file != DASH_MANIFEST {
        return Err(ApiError::NotFound(format!("no manifest `{file}`")));
    }
    let film = current_film(&state, &slug).await?;
    let key = format!("{slug}/{}/{file}", film.current.version);
    send(&state, &key, &file, request).await
}

async fn versioned(
    State(state): State<AppState>,
    Path((slug, version, file)): Path<(String, String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let film = current_film(&state, &slug).await?;
    if film.current.version != version {
        return Err(ApiError::NotFound(format!(
            "no version `{version}` of `{slug}`"
        )));
    }
    let key = format!("{slug}/{version}/{file}");
    send(&state, &key, &file, request).await
}

async fn send(
    state: &AppState,
    key: &str,
    file: &str,
    request: Request,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("no media object `{key}`"));
    let class = ObjectClass::of(file).ok_or_else(not_found)?;
    let path = state.media.local_path(key).ok_or_else(not_found)?;
    if !path.is_file() {
        return Err(not_found());
    }
    let response = ServeFile::new(path)
        .oneshot(request)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut response = response.map(Body::new).into_response();
    if response.status().is_success() || response.status().as_u16() == 304 {
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(class.content_type()),
        );
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(class.cache_control()),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Content-Length, Content-Range, Accept-Ranges"),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
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
}
