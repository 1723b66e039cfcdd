//! How a worker is set up: the `[worker]` table of `monsoon.toml`, its name, and a worker
//! running as a task ([`Background`]), which `monsoon worker` and `monsoon serve`'s own
//! worker (`[worker] in_serve`) both are.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use monsoon_catalog::{AuditLog, FilmRepository, JobQueue, MediaStore};
use serde::Deserialize;
use tokio::sync::watch;

use super::{Settings, Workplace, run};

/// The `[worker]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Seconds a claimed job stays this worker's without a renewal.
    pub lease_s: u64,
    /// Seconds an idle worker waits before asking for a job again.
    pub poll_s: u64,
    /// Whether `monsoon serve` runs an ingest worker of its own (jobs submitted from the studio
    /// or `monsoon ingest --submit`); unset: on one machine (SQLite) it does, on PostgreSQL
    /// (a cluster, whose transcoding is for `monsoon worker`s) it does not.
    pub in_serve: Option<bool>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            lease_s: 30,
            poll_s: 2,
            in_serve: None,
        }
    }
}

impl Config {
    /// The worker's settings, named `name`, once the table is checked: the error names the
    /// key, its value and the rule.
    pub fn settings(&self, name: String) -> Result<Settings, String> {
        if !(1..=3600).contains(&self.lease_s) {
            return Err(format!(
                "[worker] lease_s = {}: a lease is 1 to 3600 seconds",
                self.lease_s
            ));
        }
        if !(1..=60).contains(&self.poll_s) {
            return Err(format!(
                "[worker] poll_s = {}: an idle worker asks again every 1 to 60 seconds",
                self.poll_s
            ));
        }
        Ok(Settings {
            name,
            lease: Duration::from_secs(self.lease_s),
            idle_poll: Duration::from_secs(self.poll_s),
        })
    }
}

/// This process's worker name, its jobs' lease owner: `host:pid`.
pub fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    let host: String = host.chars().take(150).collect();
    format!("{host}:{}", std::process::id())
}

/// What a worker running as a task owns: the shared queue, catalog, media store and audit
/// log, and its own data directory's staging and locks.
#[derive(Debug, Clone)]
pub struct Backing {
    pub queue: Arc<dyn JobQueue>,
    pub films: Arc<dyn FilmRepository>,
    pub media: Arc<dyn MediaStore>,
    pub audit: Arc<dyn AuditLog>,
    pub staging: PathBuf,
    pub locks: PathBuf,
}

/// The worker loop ([`run`]) as a task, until [`Background::stop`].
#[derive(Debug)]
pub struct Background {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Background {
    pub fn spawn(backing: Backing, settings: Settings) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let place = Workplace {
                films: backing.films.as_ref(),
                media: backing.media.as_ref(),
                audit: backing.audit.as_ref(),
                staging: &backing.staging,
                locks: &backing.locks,
            };
            run(backing.queue.as_ref(), place, &settings, stopped).await;
        });
        Self { stop, task }
    }

    /// Stops the worker: the job at hand, if any, goes back to the queue.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn worker_settings_are_bounded_and_named() {
        assert!(Config::default().settings("w".into()).is_ok());
        let err = Config {
            lease_s: 0,
            ..Config::default()
        }
        .settings("w".into())
        .unwrap_err();
        assert!(
            err.contains("lease_s = 0") && err.contains("1 to 3600"),
            "{err}"
        );
        let err = Config {
            poll_s: 61,
            ..Config::default()
        }
        .settings("w".into())
        .unwrap_err();
        assert!(err.contains("poll_s = 61"), "{err}");
    }
}
