//! The web app's static assets (`/static`): built by `web/build.mjs` into a directory of
//! fingerprinted, precompressed files listed in `manifest.json`.
//!
//! Pages ask [`Assets::url`] for a logical name (`player.js`) and get the fingerprinted URL
//! (`/static/player.3f9a1c2b7d.js`), which is cached for a year: a new build has new names.
//! The directory is read at start, not embedded, so `cargo build` never needs npm; without a
//! build, pages still render (naming the unbuilt files) and the player is simply missing.

use std::collections::HashMap;
use std::path::Path;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::services::ServeDir;

/// Logical asset name → fingerprinted file name.
/// File name of the service worker in the built assets.
const SERVICE_WORKER: &str = "sw.js";

#[derive(Debug, Clone, Default)]
pub struct Assets {
    files: HashMap<String, String>,
}

impl Assets {
    /// Reads `manifest.json` of a built asset directory; empty (with a warning) when missing.
    pub fn load(dir: &Path) -> Self {
        let path = dir.join("manifest.json");
        let files = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "unreadable asset manifest");
                HashMap::new()
            }),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e,
                    "no built web assets (run `make web`): pages render without the player");
                HashMap::new()
            }
        };
        Self { files }
    }

    /// The URL of a logical asset, fingerprinted when built.
    pub fn url(&self, name: &str) -> String {
        format!(
            "/static/{}",
            self.files.get(name).map_or(name, String::as_str)
        )
    }

    /// The service worker (`web/src/sw.js`): not fingerprinted, because its URL is its identity
    /// to the browser (W3C Service Workers §3.2), and revalidated on every registration.
    pub fn sw_url(&self) -> String {
        format!("/static/{SERVICE_WORKER}")
    }

    /// The fingerprinted file name of a logical asset, when built.
    pub fn file(&self, name: &str) -> Option<&str> {
        self.files.get(name).map(String::as_str)
    }

    fn is_fingerprinted(&self, file: &str) -> bool {
        self.files.values().any(|f| f == file)
    }
}

/// `/static`: the files, their precompressed forms by `Accept-Encoding`, and a year of caching
/// for fingerprinted names (anything else must be revalidated).
pub fn routes(dir: &Path, assets: Assets) -> Router {
    let files = ServeDir::new(dir)
        .precompressed_br()
        .precompressed_gzip()
        .append_index_html_on_directories(false);
    Router::new()
        .fallback_service(files)
        .layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                let immutable = request
                    .uri()
                    .path()
                    .rsplit('/')
                    .next()
                    .is_some_and(|file| assets.is_fingerprinted(file));
                let worker = request.uri().path().rsplit('/').next() == Some(SERVICE_WORKER);
                async move {
                    let mut response: Response = next.run(request).await;
                    if worker {
                        // It serves the whole site's saved films, so its scope is `/`, above
                        // its own directory (W3C Service Workers §8.3, `Service-Worker-Allowed`).
                        response
                            .headers_mut()
                            .insert("service-worker-allowed", HeaderValue::from_static("/"));
                    }
                    let value = if immutable && response.status().is_success() {
                        "public, max-age=31536000, immutable"
                    } else if response.status().is_success() {
                        "no-cache"
                    } else {
                        "max-age=5"
                    };
                    response
                        .headers_mut()
                        .insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
                    response
                }
            },
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_to_fingerprinted_urls_when_built() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("manifest.json"),
            r#"{"player.js": "player.0123456789.js"}"#,
        )
        .unwrap();
        let assets = Assets::load(dir.path());
        assert_eq!(assets.url("player.js"), "/static/player.0123456789.js");
        assert!(assets.is_fingerprinted("player.0123456789.js"));
        // Unbuilt: the plain name, never a panic.
        assert_eq!(assets.url("site.css"), "/static/site.css");
        assert_eq!(
            Assets::load(&dir.path().join("missing")).url("player.js"),
            "/static/player.js"
        );
    }
}
