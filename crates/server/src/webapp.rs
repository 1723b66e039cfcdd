//! What makes the site installable and gives it an icon: the web app manifest
//! (`/manifest.webmanifest`, W3C Web Application Manifest) and `/favicon.ico`, the one icon
//! URL browsers ask for without being told (pages name the SVG and PNG icons in `base.html`).
//!
//! The icons are our own artwork, drawn by `web/icons.mjs` at build time (an SVG, PNGs at the
//! sizes the manifest names, and an ICO holding PNGs) and listed in `web/dist/manifest.json`
//! like every asset, so the manifest names their fingerprinted URLs.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::i18n::Lang;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/manifest.webmanifest", get(manifest))
        .route("/favicon.ico", get(favicon))
}

/// The site's colours: the page background, also the splash screen's and the browser bar's.
pub const THEME_COLOR: &str = "#0d1117";

/// The manifest's media type (W3C Web Application Manifest, §"Media type registration").
const MANIFEST_TYPE: &str = "application/manifest+json";

/// An hour: the manifest names fingerprinted icons, so a new build must reach installs soon,
/// but browsers need not ask on every page.
const MANIFEST_CACHE: &str = "public, max-age=3600";

/// A day: the favicon's URL is fixed, so it cannot be cached for a year like the assets.
const FAVICON_CACHE: &str = "public, max-age=86400";

/// The manifest, in Vietnamese (the site's default language): name, icons (`any` and
/// `maskable`, W3C Web Application Manifest §"purpose member"), start URL, standalone display,
/// colours.
async fn manifest(State(state): State<AppState>) -> Response {
    let t = Lang::Vi.messages();
    let icon = |name: &str, sizes: &str, kind: &str, purpose: &str| {
        serde_json::json!({
            "src": state.assets.url(name), "sizes": sizes, "type": kind, "purpose": purpose,
        })
    };
    let body = serde_json::json!({
        "id": "/",
        "name": "Monsoon",
        "short_name": "Monsoon",
        "description": t.site_tagline,
        "lang": "vi",
        "dir": "ltr",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "theme_color": THEME_COLOR,
        "background_color": THEME_COLOR,
        "icons": [
            icon("icon.svg", "any", "image/svg+xml", "any"),
            icon("icon-192.png", "192x192", "image/png", "any"),
            icon("icon-512.png", "512x512", "image/png", "any"),
            icon("icon-maskable-192.png", "192x192", "image/png", "maskable"),
            icon("icon-maskable-512.png", "512x512", "image/png", "maskable"),
        ],
    });
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(MANIFEST_TYPE),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(MANIFEST_CACHE),
            ),
        ],
        body.to_string(),
    )
        .into_response()
}

/// `/favicon.ico`: the built ICO (PNG images inside, as ICO allows since Windows Vista), read
/// from the asset directory; 404 without a build.
async fn favicon(State(state): State<AppState>) -> Result<Response, ApiError> {
    let missing = || ApiError::NotFound("no favicon built (run `make web`)".to_owned());
    let file = state.assets.file("favicon.ico").ok_or_else(missing)?;
    let bytes = tokio::fs::read(state.web_dir.join(file))
        .await
        .map_err(|_| missing())?;
    Ok((
        [
            // The type IANA registered for ICO.
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("image/vnd.microsoft.icon"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(FAVICON_CACHE),
            ),
        ],
        bytes,
    )
        .into_response())
}
