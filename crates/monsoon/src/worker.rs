//! `monsoon worker`: takes ingest jobs from the queue in the catalog's database and runs them
//! (`monsoon_ingest::worker`), until SIGINT or SIGTERM, which releases the job at hand.
//!
//! Settings: built-in defaults → `[worker]` of `--config monsoon.toml` → `MONSOON_WORKER_*`
//! environment variables → flags. Versions are built in this worker's `--data` directory
//! (`staging/`, `locks/`); the catalog and the media store are the shared ones of
//! `[storage]`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use serde::Deserialize;
use tokio::sync::watch;

use crate::DataDir;
use crate::backends::StorageConfig;

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Settings file (TOML: `[worker]` and `[storage]`); see monsoon.example.toml.
    #[arg(long, env = "MONSOON_CONFIG")]
    pub config: Option<PathBuf>,
    /// Seconds a job stays this worker's without a renewal (1 to 3600); renewed every third.
    #[arg(long, env = "MONSOON_WORKER_LEASE_S")]
    pub lease_s: Option<u64>,
    /// Seconds an idle worker waits before asking for a job again (1 to 60).
    #[arg(long, env = "MONSOON_WORKER_POLL_S")]
    pub poll_s: Option<u64>,
}

/// The `[worker]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Seconds a claimed job stays this worker's without a renewal.
    pub lease_s: u64,
    /// Seconds an idle worker waits before asking for a job again.
    pub poll_s: u64,
    /// Whether `monsoon serve` runs an ingest worker of its own (jobs submitted from the studio
    /// or `monsoon ingest --submit`); unset: on one machine (SQLite) it does, on PostgreSQL
    /// (a cluster, whose transcoding is for `monsoon worker`s) it does not.
    pub in_serve: Option<bool>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            lease_s: 30,
            poll_s: 2,
            in_serve: None,
        }
    }
}

impl WorkerConfig {
    fn check(&self) -> anyhow::Result<()> {
        if !(1..=3600).contains(&self.lease_s) {
            bail!(
                "[worker] lease_s = {}: a lease is 1 to 3600 seconds",
                self.lease_s
            );
        }
        if !(1..=60).contains(&self.poll_s) {
            bail!(
                "[worker] poll_s = {}: an idle worker asks again every 1 to 60 seconds",
                self.poll_s
            );
        }
        Ok(())
    }
}

/// This worker's name, its jobs' lease owner: `host:pid`.
pub fn name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    let host: String = host.chars().take(150).collect();
    format!("{host}:{}", std::process::id())
}

pub async fn run(data: &DataDir, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let (mut config, file_storage) = match &args.config {
        Some(path) => {
            let settings = crate::serve::read_config(path)?;
            (settings.worker, settings.storage)
        }
        None => (WorkerConfig::default(), StorageConfig::default()),
    };
    if let Some(v) = args.lease_s {
        config.lease_s = v;
    }
    if let Some(v) = args.poll_s {
        config.poll_s = v;
    }
    config.check()?;
    let backends = data.open(&file_storage).await?;
    let queue = backends.jobs;

    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        let signal = crate::ingest::stop_signal().await;
        eprintln!("{signal}: stopping; the job at hand (if any) goes back to the queue");
        let _ = stop.send(true);
    });
    let settings = monsoon_ingest::worker::Settings {
        name: name(),
        lease: Duration::from_secs(config.lease_s),
        idle_poll: Duration::from_secs(config.poll_s),
    };
    let staging = data.staging();
    let locks = data.root.join("locks");
    let place = monsoon_ingest::worker::Workplace {
        films: backends.films.as_ref(),
        media: backends.media.as_ref(),
        audit: backends.audit.as_ref(),
        staging: &staging,
        locks: &locks,
    };
    eprintln!(
        "worker {} taking ingest jobs (lease {} s)",
        settings.name, config.lease_s
    );
    monsoon_ingest::worker::run(queue.as_ref(), place, &settings, stopped).await;
    Ok(ExitCode::SUCCESS)
}

/// The ingest worker inside a `monsoon serve` (`[worker] in_serve`): the same loop as
/// `monsoon worker`, on the server's backends, building versions in its data directory.
#[derive(Debug)]
pub struct InServe {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl InServe {
    pub fn spawn(
        data: &DataDir,
        config: &WorkerConfig,
        backends: &crate::backends::Backends,
    ) -> anyhow::Result<Self> {
        let queue = Arc::clone(&backends.jobs);
        let (films, media) = (Arc::clone(&backends.films), Arc::clone(&backends.media));
        let audit = Arc::clone(&backends.audit);
        config.check()?;
        let settings = monsoon_ingest::worker::Settings {
            name: format!("{} (serve)", name()),
            lease: Duration::from_secs(config.lease_s),
            idle_poll: Duration::from_secs(config.poll_s),
        };
        let (staging, locks) = (data.staging(), data.root.join("locks"));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let place = monsoon_ingest::worker::Workplace {
                films: films.as_ref(),
                media: media.as_ref(),
                audit: audit.as_ref(),
                staging: &staging,
                locks: &locks,
            };
            monsoon_ingest::worker::run(queue.as_ref(), place, &settings, stopped).await;
        });
        Ok(Self { stop, task })
    }

    /// Stops the worker: the job at hand, if any, goes back to the queue.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_settings_are_bounded_and_named() {
        assert!(WorkerConfig::default().check().is_ok());
        let err = WorkerConfig {
            lease_s: 0,
            poll_s: 2,
            in_serve: None,
        }
        .check()
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("lease_s = 0") && err.contains("1 to 3600"),
            "{err}"
        );
        assert!(
            WorkerConfig {
                lease_s: 30,
                poll_s: 61,
                in_serve: None,
            }
            .check()
            .is_err()
        );
    }
}
