//! Ingest jobs and workers, end to end: the real binary, real ffmpeg and a real, throw-away
//! PostgreSQL. `monsoon ingest --submit` queues, `monsoon worker`s transcode and publish,
//! `monsoon jobs --json` is how the tests (as an operator's script would) watch the queue, and
//! a `monsoon serve` on the same database shows it to the operator (`/admin/api/jobs`).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{MONSOON, Server, make_clip, play_whole, tree};
use monsoon_engines::postgres::Postgres;
use serde_json::{Value, json};

/// The operator's token of the servers of these tests.
const ADMIN_TOKEN: &str = "jobs-test-admin-token";

/// A PostgreSQL database and a media directory every process of a test shares.
struct Cluster {
    _pg: Postgres,
    tmp: tempfile::TempDir,
    url: String,
    media: String,
}

impl Cluster {
    fn new() -> Cluster {
        let pg = Postgres::start().unwrap();
        let url = pg.create_database("monsoon").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let media = format!("file://{}", tmp.path().join("media").display());
        Cluster {
            _pg: pg,
            tmp,
            url,
            media,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `monsoon --data <tmp/cli> --database … --media … ARGS`.
    fn monsoon(&self, args: &[&str]) -> Output {
        Command::new(MONSOON)
            .arg("--data")
            .arg(self.path("cli"))
            .args(["--database", &self.url, "--media", &self.media])
            .args(args)
            .output()
            .unwrap()
    }

    /// Submits `clip` as `slug` (`--quality fast`); asserts it was accepted.
    fn submit(&self, clip: &Path, slug: &str) {
        let out = self.monsoon(&[
            "ingest",
            clip.to_str().unwrap(),
            "--slug",
            slug,
            "--quality",
            "fast",
            "--submit",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("submitted job"), "{stderr}");
    }

    /// Every job, newest first, as `monsoon jobs --json` prints them.
    fn jobs(&self) -> Vec<Value> {
        let out = self.monsoon(&["jobs", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    fn job(&self, slug: &str) -> Value {
        self.jobs()
            .into_iter()
            .find(|j| j["slug"] == slug)
            .unwrap_or_else(|| panic!("no job for {slug}"))
    }

    /// Polls the queue until `done(job of slug)`; fails on a failed job, or after 5 minutes
    /// (a guard against hanging, not a measurement).
    fn wait_for(&self, slug: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let job = self.job(slug);
            if done(&job) {
                return job;
            }
            assert_ne!(job["state"], "failed", "{slug} failed: {job}");
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "{slug}: never {what}: {job}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A `monsoon worker` with the data directory `dir` and `--lease-s lease`.
    fn worker(&self, dir: &str, lease: u32) -> Worker {
        let log =
            std::fs::File::create(self.path(&format!("{dir}.{}.log", self.workers()))).unwrap();
        let child = Command::new(MONSOON)
            .arg("--data")
            .arg(self.path(dir))
            .args(["--database", &self.url, "--media", &self.media])
            .args(["worker", "--lease-s", &lease.to_string(), "--poll-s", "1"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Worker(child)
    }

    fn workers(&self) -> usize {
        std::fs::read_dir(self.tmp.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".log"))
            })
            .count()
    }

    /// A `monsoon serve` on the cluster's database, its dashboard opened by [`ADMIN_TOKEN`].
    fn server(&self) -> Server {
        let admin = self.monsoon(&["admin-token", "--token", ADMIN_TOKEN]);
        assert!(admin.status.success());
        let config = self.path("server.toml");
        std::fs::write(&config, &admin.stdout).unwrap();
        Server::start_with(
            &self.path("server"),
            &[
                "--config",
                config.to_str().unwrap(),
                "--database",
                &self.url,
                "--media",
                &self.media,
            ],
        )
    }
}

/// The jobs as the server's dashboard reads them (`GET /admin/api/jobs`, with the token).
fn dashboard_jobs(server: &Server) -> Vec<Value> {
    let mut response = ureq::get(&format!("{}/admin/api/jobs", server.url))
        .header("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .call()
        .unwrap();
    assert_eq!(
        response.headers()["cache-control"].to_str().unwrap(),
        "no-store"
    );
    let body: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    body["jobs"].as_array().unwrap().clone()
}

/// A running worker, killed when dropped.
struct Worker(Child);

impl Worker {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Whether `owner` (a job's `lease_owner`, `host:pid`) is this worker.
    fn owns(&self, job: &Value) -> bool {
        job["lease_owner"]
            .as_str()
            .is_some_and(|o| o.ends_with(&format!(":{}", self.pid())))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether the catalog (through a server) has `slug`.
fn published(server: &Server, slug: &str) -> bool {
    server.get_json("/api/v1/films")["films"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["slug"] == slug)
}

/// Plays `slug` whole over HLS once the server's live catalog (refreshed every second, or at
/// once by the database's NOTIFY) has its version; returns the media time reached.
fn play(server: &Server, slug: &str) -> f64 {
    let url = format!("{}/media/{slug}/master.m3u8", server.url);
    let start = Instant::now();
    while ureq::get(&url).call().is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{url} never served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    play_whole(&url)
}

/// Segments written so far under a staging directory.
fn segments_in(staging: &Path) -> usize {
    tree(staging)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "m4s"))
        .count()
}

#[test]
fn two_workers_publish_two_submitted_films_at_once() {
    let cluster = Cluster::new();
    for slug in ["mua-do", "song-hong"] {
        let clip = cluster.path(&format!("{slug}.mp4"));
        make_clip(&clip, 10, "640x360");
        cluster.submit(&clip, slug);
    }
    let server = cluster.server();
    assert_eq!(server.get_json("/api/v1/films")["films"], json!([]));
    let queued = cluster.jobs();
    assert_eq!(queued.len(), 2);
    assert!(queued.iter().all(|j| j["state"] == "queued"), "{queued:?}");
    // The dashboard sees the same queue, newest first, with the masters' names, not their
    // paths.
    let shown = dashboard_jobs(&server);
    let ids = |jobs: &[Value]| jobs.iter().map(|j| j["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&shown), ids(&queued));
    assert_eq!(shown[0]["slug"], "song-hong");
    assert_eq!(shown[0]["master_name"], "song-hong.mp4");
    assert!(
        shown
            .iter()
            .all(|j| j["state"] == "queued" && j["eta_s"].is_null() && j.get("master").is_none()),
        "{shown:?}"
    );

    let _a = cluster.worker("a", 30);
    let _b = cluster.worker("b", 30);
    let mut done = Vec::new();
    for slug in ["mua-do", "song-hong"] {
        done.push(cluster.wait_for(slug, "done", |j| j["state"] == "done"));
    }
    for job in &done {
        assert_eq!(job["percent"], 100.0);
        assert_eq!(job["attempts"], 1);
        assert!(job["lease_owner"].is_null());
    }
    // Each worker took one, and the two ran at the same time (their claims and ends, on the
    // database's clock, interleave).
    let by = |job: &Value| {
        let message = job["message"].as_str().unwrap().to_owned();
        message.split(" by worker ").nth(1).unwrap().to_owned()
    };
    assert_ne!(by(&done[0]), by(&done[1]), "{done:?}");
    let time = |job: &Value, key: &str| {
        chrono::DateTime::parse_from_rfc3339(job[key].as_str().unwrap()).unwrap()
    };
    assert!(
        time(&done[0], "started_at") < time(&done[1], "finished_at")
            && time(&done[1], "started_at") < time(&done[0], "finished_at"),
        "the two jobs did not overlap: {done:?}"
    );

    // And both done, as the workers left them.
    let shown = dashboard_jobs(&server);
    for job in &done {
        let seen = shown.iter().find(|j| j["id"] == job["id"]).unwrap();
        assert_eq!(seen["state"], "done", "{seen}");
        assert_eq!(seen["percent"], 100.0);
        assert_eq!(seen["message"], job["message"]);
        assert_eq!(seen["finished_at"], job["finished_at"]);
    }
    for slug in ["mua-do", "song-hong"] {
        assert!(published(&server, slug));
        let played = play(&server, slug);
        assert!((played - 10.0).abs() < 0.5, "{slug} played {played} s");
    }
    for dir in ["a", "b"] {
        assert!(tree(&cluster.path(dir).join("staging")).is_empty());
    }
}

#[test]
fn a_killed_worker_leaves_nothing_and_its_job_is_taken_over() {
    let cluster = Cluster::new();
    let clip = cluster.path("long.mp4");
    make_clip(&clip, 20, "1280x720");
    cluster.submit(&clip, "long");
    let server = cluster.server();
    // The three workers share one data directory (one machine), so the sweep of staging
    // directories left by dead processes is seen.
    let staging = cluster.path("node").join("staging");

    // Worker A, mid-transcode (segments written in its staging directory), is killed -9.
    let mut a = cluster.worker("node", 3);
    let job = cluster.wait_for("long", "running on A", |j| {
        a.owns(j) && segments_in(&staging) > 0
    });
    assert_eq!(job["attempts"], 1);
    a.0.kill().unwrap();
    a.0.wait().unwrap();
    assert!(!published(&server, "long"), "half a film was published");
    assert_eq!(
        cluster.job("long")["state"],
        "running",
        "A's lease still stands"
    );

    // B takes the job over once A's lease expired, as attempt 2, and sweeps A's leftovers.
    let b = cluster.worker("node", 3);
    let job = cluster.wait_for("long", "taken over by B", |j| {
        b.owns(j) && segments_in(&staging) > 0
    });
    assert_eq!(job["attempts"], 2);
    let left: Vec<String> = std::fs::read_dir(&staging)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.iter()
            .all(|name| name.ends_with(&format!(".{}", b.pid()))),
        "A's staging directory was not swept: {left:?}"
    );

    // SIGTERM: B drops its work and releases the job, which goes back to the queue.
    let status = Command::new("kill")
        .args(["-TERM", &b.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut b = b;
    let exit = b.0.wait().unwrap();
    assert!(exit.success(), "worker B exited with {exit}");
    let job = cluster.job("long");
    assert_eq!(job["state"], "queued", "{job}");
    assert!(job["lease_owner"].is_null() && job["lease_expires_at"].is_null());
    assert_eq!(job["attempts"], 1, "the released attempt is given back");
    assert!(
        job["message"].as_str().unwrap().contains("released"),
        "{job}"
    );
    assert!(tree(&staging).is_empty(), "B left {:?}", tree(&staging));
    assert!(!published(&server, "long"));

    // C finishes it: one version published, playable, nothing left in staging.
    let _c = cluster.worker("node", 3);
    let job = cluster.wait_for("long", "done", |j| j["state"] == "done");
    assert_eq!(job["attempts"], 2);
    assert!(published(&server, "long"));
    let played = play(&server, "long");
    assert!((played - 20.0).abs() < 0.5, "played {played} s");
    assert!(tree(&staging).is_empty());
    common::version_dir(cluster.tmp.path(), "long");
}

#[test]
fn bad_submissions_are_refused_naming_the_value_and_the_rule() {
    let cluster = Cluster::new();
    let clip = cluster.path("clip.mp4");
    make_clip(&clip, 1, "320x180");

    // A master that is not there: the CLI's own error, nothing queued.
    let missing = cluster.path("missing.mp4");
    let out = cluster.monsoon(&[
        "ingest",
        missing.to_str().unwrap(),
        "--slug",
        "film",
        "--submit",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&missing.display().to_string()) && stderr.contains("file not found"),
        "{stderr}"
    );
    let out = cluster.monsoon(&[
        "ingest",
        clip.to_str().unwrap(),
        "--slug",
        "Phim!",
        "--submit",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("slug `Phim!` is not valid"), "{stderr}");
    assert_eq!(cluster.jobs(), Vec::<Value>::new());

    // A relative path is recorded absolute (what workers open); a queued job can be cancelled
    // once, and is never claimed.
    let out = Command::new(MONSOON)
        .current_dir(cluster.tmp.path())
        .arg("--data")
        .arg(cluster.path("cli"))
        .args(["--database", &cluster.url, "--media", &cluster.media])
        .args(["ingest", "clip.mp4", "--slug", "film", "--submit"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job = cluster.job("film");
    let absolute = std::fs::canonicalize(&clip).unwrap();
    assert_eq!(job["master"], absolute.to_str().unwrap());
    let id = job["id"].to_string();
    assert!(cluster.monsoon(&["jobs", "--cancel", &id]).status.success());
    let again = cluster.monsoon(&["jobs", "--cancel", &id]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        !again.status.success() && stderr.contains(&format!("job {id} is cancelled")),
        "{stderr}"
    );
    let table = String::from_utf8_lossy(&cluster.monsoon(&["jobs"]).stdout).into_owned();
    assert!(
        table.starts_with("ID") && table.contains("cancelled"),
        "{table}"
    );
}

/// `--config` (or `MONSOON_CONFIG`) is read by every command, not only `serve`: its
/// `[storage]` is where `ingest --submit` queues and where `jobs` looks, and a `--database`
/// flag wins over it.
#[test]
fn every_command_reads_the_settings_files_storage() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let clip = tmp.path().join("clip.mp4");
    make_clip(&clip, 1, "320x180");
    let shared = tmp.path().join("shared.db");
    let config = tmp.path().join("monsoon.toml");
    let database = format!("sqlite://{}", shared.display());
    std::fs::write(&config, format!("[storage]\ndatabase = \"{database}\"\n")).unwrap();
    let config = config.to_str().unwrap();
    let jobs = |extra: &[&str], env: Option<&str>| -> Vec<Value> {
        let mut command = Command::new(MONSOON);
        command
            .arg("--data")
            .arg(&data)
            .args(["jobs", "--json"])
            .args(extra);
        if let Some(config) = env {
            command.env("MONSOON_CONFIG", config);
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };

    let clip = clip.to_str().unwrap();
    let out = common::monsoon(
        &data,
        &[
            "ingest", clip, "--slug", "film", "--submit", "--config", config,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        shared.is_file(),
        "the job went elsewhere than the file's [storage]"
    );
    assert_eq!(jobs(&["--config", config], None)[0]["slug"], "film");
    assert_eq!(jobs(&[], Some(config))[0]["slug"], "film");
    // Without the file, the data directory's own catalog: no job there.
    assert_eq!(jobs(&[], None), Vec::<Value>::new());
    let own = format!("sqlite://{}", data.join("catalog.db").display());
    assert_eq!(
        jobs(&["--database", &own], Some(config)),
        Vec::<Value>::new()
    );

    // A file that is not there is refused by any command, naming it; but `admin-token`,
    // which makes the file's `[admin]` line, runs before the file exists.
    let out = common::monsoon(&data, &["jobs", "--config", "/nonexistent/monsoon.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("/nonexistent/monsoon.toml"),
        "{stderr}"
    );
    let out = Command::new(MONSOON)
        .arg("admin-token")
        .env("MONSOON_CONFIG", "/nonexistent/monsoon.toml")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("token_hash = "),
        "{stdout}"
    );
}

/// On one machine (SQLite, the default), `monsoon ingest --submit` queues a job that
/// `monsoon serve`'s own worker (`[worker] in_serve`, on by default there) transcodes and
/// publishes; `monsoon jobs` and the dashboard show it from queued to done.
#[test]
fn on_one_machine_the_server_transcodes_submitted_jobs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let clip = tmp.path().join("clip.mp4");
    make_clip(&clip, 8, "320x180");
    let monsoon = |args: &[&str]| -> Output {
        Command::new(MONSOON)
            .arg("--data")
            .arg(&data)
            .args(args)
            .output()
            .unwrap()
    };
    let out = monsoon(&[
        "ingest",
        clip.to_str().unwrap(),
        "--slug",
        "film",
        "--quality",
        "fast",
        "--submit",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("submitted job 1 for `film`"), "{stderr}");
    let out = monsoon(&["jobs", "--json"]);
    let jobs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(jobs[0]["state"], "queued", "{jobs}");

    let admin = monsoon(&["admin-token", "--token", ADMIN_TOKEN]);
    assert!(admin.status.success());
    let config = tmp.path().join("server.toml");
    std::fs::write(&config, &admin.stdout).unwrap();
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()]);
    let start = Instant::now();
    loop {
        let jobs = dashboard_jobs(&server);
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_ne!(jobs[0]["state"], "failed", "{jobs:?}");
        if jobs[0]["state"] == "done" {
            assert_eq!(jobs[0]["percent"], 100.0, "{jobs:?}");
            // The job says what was published: the ladder, verified.
            let message = jobs[0]["message"].as_str().unwrap();
            assert!(
                message.contains("; verified: v180 320x180 avc1.")
                    && message.contains("a128 mp4a.40.2"),
                "{message}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the server never transcoded the job: {jobs:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let reached = play(&server, "film");
    assert!(reached > 7.5, "played {reached} s of 8");

    // A track job: English subtitles, added by the same worker without a re-encode.
    let srt = tmp.path().join("en.srt");
    std::fs::write(&srt, "1\n00:00:00,000 --> 00:00:02,000\nHello\n\n").unwrap();
    let out = monsoon(&[
        "add-track",
        "film",
        "--subtitles",
        srt.to_str().unwrap(),
        "--lang",
        "en",
        "--submit",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("submitted job 2"), "{stderr}");
    // Like `ingest --submit`, the track's job is in the audit log as the command line's.
    let mut response = ureq::get(&format!("{}/admin/api/audit", server.url))
        .header("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .call()
        .unwrap();
    let audit: Value =
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    let submitted = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "job_submitted" && e["subject"] == "2");
    assert_eq!(submitted.unwrap()["actor"], "cli", "{audit}");
    let start = Instant::now();
    loop {
        let jobs = dashboard_jobs(&server);
        assert_ne!(jobs[0]["state"], "failed", "{jobs:?}");
        if jobs[0]["state"] == "done" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "{jobs:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let master_url = format!("{}/media/film/master.m3u8", server.url);
    let start = Instant::now();
    while !ureq::get(&master_url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
        .contains("TYPE=SUBTITLES,URI=")
    {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the subtitles never appear"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
