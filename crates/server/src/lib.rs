//! The HTTP face of Monsoon, on axum: media delivery (`/media`), the JSON API (`/api/v1`),
//! the viewer pages (`/`, `/films`, `/watch`) and the static assets of the player.
//!
//! Handlers are thin: they parse, call the catalog or the media store through their traits,
//! and map the result. The app is built by [`app`] so tests drive it in-process.

mod api;
mod delivery;
mod error;
mod pages;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use monsoon_catalog::{FilmRepository, MediaStore};
use tower_http::services::ServeDir;

pub use error::ApiError;

/// Everything a request handler may need, shared by all of them.
#[derive(Debug, Clone)]
pub struct AppState {
    pub films: Arc<dyn FilmRepository>,
    pub media: Arc<dyn MediaStore>,
    /// Built player assets (`web/dist`), served under `/static`.
    pub web_dir: PathBuf,
}

/// The whole application router.
pub fn app(state: AppState) -> Router {
    let static_files = ServeDir::new(&state.web_dir);
    Router::new()
        .route("/healthz", get(healthz))
        .merge(pages::routes())
        .nest("/api/v1", api::routes())
        .nest("/media", delivery::routes())
        .nest_service("/static", static_files)
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Serves `state` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
