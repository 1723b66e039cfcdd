//! Real engines, started on 127.0.0.1 for the tests, the benchmarks and the local cluster:
//! each in a temporary directory of its own, on a free port, and stopped (by its PID) when
//! its handle is dropped. Nothing here is a mock: the conformance suites of the storage traits
//! run against these engines exactly as production runs against a deployed one.
//!
//! An engine that is not installed is an error naming the package to install (the tests
//! fail rather than skip; `scripts/install-deps.sh` installs them).

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub mod garage;
pub mod postgres;

/// A port nothing listens on now (the engine binds it right after; a race with another
/// process is possible but harmless in a test: the engine then fails to start, loudly).
pub fn free_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// The first of `candidates` that exists as a file, or an error naming `package`.
pub(crate) fn find_program(candidates: &[PathBuf], package: &str) -> anyhow::Result<PathBuf> {
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .with_context(|| {
            format!(
                "none of {} exists: install {package} (scripts/install-deps.sh does)",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// `name` on the `PATH`, as a candidate for [`find_program`].
pub(crate) fn on_path(name: &str) -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until `ready` says yes, or fails after `limit` with `what` and the log at `log`.
pub(crate) fn wait_until(
    what: &str,
    limit: Duration,
    log: &Path,
    mut ready: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let tail = std::fs::read_to_string(log).unwrap_or_default();
    bail!("{what} was not ready after {limit:?}; its log:\n{tail}")
}

/// A child process that is killed and reaped when dropped.
#[derive(Debug)]
pub(crate) struct Process(pub(crate) Child);

impl Process {
    /// Kills the process at once (SIGKILL), as a crash would.
    pub(crate) fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
