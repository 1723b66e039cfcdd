//! `monsoon serve`: the origin, the API and the viewer pages on one listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use monsoon_server::AppState;

use crate::DataDir;
use crate::ingest::stop_signal;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Port 0 picks a free port (printed on start).
    #[arg(long, env = "MONSOON_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory of the built player assets (`make web` builds `web/dist`).
    #[arg(long, env = "MONSOON_WEB_DIR", default_value_os_t = default_web_dir())]
    pub web_dir: PathBuf,
}

/// `web/dist` of the source tree this binary was built from: right for `cargo run` and
/// `make`; installations set `--web-dir`.
pub fn default_web_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/dist"))
}

pub async fn run(data: &DataDir, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    serve(data, listener, args.web_dir, |_| {}).await?;
    Ok(ExitCode::SUCCESS)
}

/// Serves on `listener` until SIGINT or SIGTERM; `on_ready` gets the base URL once listening.
pub async fn serve(
    data: &DataDir,
    listener: tokio::net::TcpListener,
    web_dir: PathBuf,
    on_ready: impl FnOnce(&str),
) -> anyhow::Result<()> {
    let (films, media) = data.open().await?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}");
    let state = AppState {
        films,
        media,
        web_dir,
    };
    // Printed on stdout, one line, so scripts and tests can wait for it.
    println!("listening on {url}");
    on_ready(&url);
    monsoon_server::serve(listener, state, async {
        let signal = stop_signal().await;
        tracing::info!(signal, "shutting down");
    })
    .await?;
    Ok(())
}
