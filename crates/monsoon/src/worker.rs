//! `monsoon worker`: takes ingest jobs from the queue in the catalog's database and runs them
//! (`monsoon_ingest::worker`), until SIGINT or SIGTERM, which releases the job at hand.
//!
//! Settings: built-in defaults → `[worker]` of `monsoon.toml` → `MONSOON_WORKER_*`
//! environment variables → flags. Versions are built in this worker's `--data` directory
//! (`staging/`, `locks/`); the catalog and the media store are the shared ones of
//! `[storage]`.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use monsoon_backends::{Backends, DataDir};
use monsoon_ingest::worker::{Background, Backing, Config, default_name};

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Seconds a job stays this worker's without a renewal (1 to 3600); renewed every third.
    #[arg(long, env = "MONSOON_WORKER_LEASE_S")]
    pub lease_s: Option<u64>,
    /// Seconds an idle worker waits before asking for a job again (1 to 60).
    #[arg(long, env = "MONSOON_WORKER_POLL_S")]
    pub poll_s: Option<u64>,
}

pub async fn run(data: &DataDir, mut config: Config, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    config.lease_s = args.lease_s.unwrap_or(config.lease_s);
    config.poll_s = args.poll_s.unwrap_or(config.poll_s);
    let worker = config
        .settings(default_name())
        .map_err(anyhow::Error::msg)?;
    let backends = data.open().await?;
    eprintln!(
        "worker {} taking ingest jobs (lease {} s)",
        worker.name, config.lease_s
    );
    let worker = Background::spawn(backing(data, &backends), worker);
    let signal = crate::ingest::stop_signal().await;
    eprintln!("{signal}: stopping; the job at hand (if any) goes back to the queue");
    worker.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// The ingest worker inside a `monsoon serve` (`[worker] in_serve`): the same loop as
/// `monsoon worker`, on the server's backends, building versions in its data directory.
pub fn in_serve(
    data: &DataDir,
    config: &Config,
    backends: &Backends,
) -> anyhow::Result<Background> {
    let settings = config
        .settings(format!("{} (serve)", default_name()))
        .map_err(anyhow::Error::msg)?;
    Ok(Background::spawn(backing(data, backends), settings))
}

fn backing(data: &DataDir, backends: &Backends) -> Backing {
    Backing {
        queue: Arc::clone(&backends.jobs),
        films: Arc::clone(&backends.films),
        media: Arc::clone(&backends.media),
        audit: Arc::clone(&backends.audit),
        staging: data.staging().to_owned(),
        locks: data.locks().to_owned(),
    }
}
