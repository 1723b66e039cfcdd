//! A throw-away PostgreSQL cluster: `initdb` in a temporary directory, `postgres` on a free
//! port of 127.0.0.1 (and a Unix socket in the same directory, never the system's), trust
//! authentication for its one role, `fsync` on as in production. Debian's `postgresql`
//! package provides the programs (in `/usr/lib/postgresql/<major>/bin`).
//!
//! PostgreSQL refuses to run as root; when the tests run as root (CI machines do), the cluster
//! runs as the `postgres` account the Debian package creates, in a directory handed to it.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::{Process, find_program, free_port, on_path, wait_until};

/// The role the cluster is made with; it owns every database.
pub const USER: &str = "monsoon";

/// A running cluster, stopped and deleted when dropped.
#[derive(Debug)]
pub struct Postgres {
    server: Process,
    port: u16,
    bin: PathBuf,
    run_as: Option<(u32, u32)>,
    // Dropped after `server` (fields drop in order): the files outlive the process.
    dir: tempfile::TempDir,
}

impl Postgres {
    /// Makes and starts a new cluster.
    pub fn start() -> anyhow::Result<Self> {
        let bin = Self::bin_dir()?;
        let dir = tempfile::Builder::new().prefix("monsoon-pg-").tempdir()?;
        let run_as = run_as()?;
        if let Some((uid, gid)) = run_as {
            chown(dir.path(), uid, gid)?;
        }
        let data = dir.path().join("data");
        let init = command(&bin.join("initdb"), run_as)
            .args([
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--username",
            ])
            .arg(USER)
            .arg("-D")
            .arg(&data)
            .output()
            .context("running initdb")?;
        if !init.status.success() {
            bail!(
                "initdb failed ({}): {}",
                init.status,
                String::from_utf8_lossy(&init.stderr)
            );
        }
        let port = free_port()?;
        let log = dir.path().join("postgres.log");
        let log_file = std::fs::File::create(&log)?;
        if let Some((uid, gid)) = run_as {
            chown(&log, uid, gid)?;
        }
        let server = command(&bin.join("postgres"), run_as)
            .arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
            .arg(dir.path())
            // Enough for several nodes' pools; the rest is PostgreSQL's defaults, fsync on.
            .args(["-c", "max_connections=200"])
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .context("starting postgres")?;
        let this = Self {
            server: Process(server),
            port,
            bin,
            run_as,
            dir,
        };
        wait_until("PostgreSQL", Duration::from_secs(30), &log, || {
            this.pg_isready()
        })?;
        Ok(this)
    }

    /// `postgres://` URL of database `name` of this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{database}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates database `name` and returns its URL.
    pub fn create_database(&self, name: &str) -> anyhow::Result<String> {
        let out = command(&self.bin.join("createdb"), self.run_as)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                name,
            ])
            .output()
            .context("running createdb")?;
        if !out.status.success() {
            bail!(
                "createdb {name} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(self.url(name))
    }

    /// Kills the server at once (SIGKILL), as a crash of its machine's process would.
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// The directory of the cluster's files (its data is `data/` in it, its log
    /// `postgres.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn pg_isready(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The directory of the PostgreSQL server programs: `MONSOON_PG_BIN`, the newest
    /// `/usr/lib/postgresql/<major>/bin`, or the directory of `initdb` on the `PATH`.
    fn bin_dir() -> anyhow::Result<PathBuf> {
        if let Some(dir) = std::env::var_os("MONSOON_PG_BIN") {
            return Ok(PathBuf::from(dir));
        }
        let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|dirs| {
                dirs.filter_map(|d| d.ok())
                    .map(|d| d.path().join("bin").join("initdb"))
                    .collect()
            })
            .unwrap_or_default();
        candidates.sort_by(|a, b| b.cmp(a));
        candidates.extend(on_path("initdb"));
        let initdb = find_program(&candidates, "PostgreSQL (Debian package `postgresql`)")?;
        // On the PATH it may be a link to the real directory, which also holds `postgres`.
        let initdb = std::fs::canonicalize(&initdb).unwrap_or(initdb);
        Ok(initdb.parent().map(Path::to_path_buf).unwrap_or_default())
    }
}

/// The account to run PostgreSQL as: none (this one) unless this is root, then `postgres`.
fn run_as() -> anyhow::Result<Option<(u32, u32)>> {
    let id = |flag: &str, user: Option<&str>| -> anyhow::Result<u32> {
        let out = Command::new("id").arg(flag).args(user).output()?;
        if !out.status.success() {
            bail!(
                "`id {flag} {}` failed: {}",
                user.unwrap_or(""),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
    };
    if id("-u", None)? != 0 {
        return Ok(None);
    }
    let uid = id("-u", Some("postgres")).context(
        "PostgreSQL does not run as root, and there is no `postgres` account to run it as \
         (the Debian package `postgresql` creates it)",
    )?;
    Ok(Some((uid, id("-g", Some("postgres"))?)))
}

fn chown(path: &Path, uid: u32, gid: u32) -> anyhow::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .with_context(|| format!("handing {} to the postgres account", path.display()))
}

fn command(program: &Path, run_as: Option<(u32, u32)>) -> Command {
    let mut command = Command::new(program);
    if let Some((uid, gid)) = run_as {
        command.uid(uid).gid(gid);
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_starts_takes_databases_and_stops() {
        let pg = Postgres::start().unwrap();
        let url = pg.create_database("films").unwrap();
        assert!(url.ends_with("/films"), "{url}");
        let dir = pg.dir().to_path_buf();
        let port = pg.port();
        drop(pg);
        assert!(!dir.exists(), "the cluster's files outlive it");
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "something still listens on {port}"
        );
    }
}
