//! Helpers shared by the end-to-end tests: the real binary, real ffmpeg, a real HTTP client.

#![allow(clippy::unwrap_used, dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub mod player;

pub const MONSOON: &str = env!("CARGO_BIN_EXE_monsoon");

/// Makes a test clip with a tone (`audio`) or without.
pub fn make_clip(path: &Path, seconds: u32, size: &str) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={size}:rate=25:duration={seconds}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=440:duration={seconds}"))
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-shortest",
        ])
        .arg(path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
}

pub fn monsoon(data: &Path, args: &[&str]) -> Output {
    Command::new(MONSOON)
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("monsoon runs")
}

/// A running `monsoon serve`, stopped when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    pub fn start(data: &Path) -> Server {
        Self::start_with(data, &[])
    }

    /// Starts `monsoon serve` with extra arguments (e.g. `--config`). `/metrics` is public
    /// here (the suites read it as a monitoring system would); `security_http.rs` tests who may
    /// read it, with [`Server::spawn`].
    pub fn start_with(data: &Path, args: &[&str]) -> Server {
        let mut command = Command::new(MONSOON);
        command
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0", "--access-log", "false"])
            .args(args)
            .env("MONSOON_METRICS", "public")
            .stderr(Stdio::null());
        Self::spawn(command)
    }

    /// Runs `command` (a `monsoon serve`, possibly through a wrapper) with its stdout piped,
    /// and waits for its `listening on` line.
    pub fn spawn(mut command: Command) -> Server {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .expect("monsoon serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("a line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Server { child, url }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.url.trim_start_matches("http://").parse().unwrap()
    }

    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let mut response = ureq::get(&format!("{}{path}", self.url))
            .call()
            .expect("GET succeeds");
        let text = response.body_mut().read_to_string().expect("a body");
        serde_json::from_str(&text).expect("JSON body")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    monsoon_engines::free_port().unwrap()
}

/// The nginx binary: `MONSOON_NGINX`, else on the `PATH` or in Debian's `/usr/sbin` (not on
/// every user's `PATH`), where `scripts/install-deps.sh` looks too. The suites compare Monsoon
/// with nginx and test the nginx cache tier, so a machine without it fails here, saying what
/// to install, rather than passing on half of them.
pub fn nginx_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MONSOON_NGINX") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "MONSOON_NGINX={} is not a file: nginx is required",
            path.display()
        );
        return path;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("nginx is not installed: `apt-get install nginx` (scripts/install-deps.sh does)")
        })
}

/// Decodes every stream of `url` to the end with ffmpeg and returns the media time reached.
pub fn play_whole(url: &str) -> f64 {
    let output = Command::new("ffmpeg")
        .args([
            "-v", "error", "-xerror", "-i", url, "-map", "0", "-f", "null", "-",
        ])
        .args(["-progress", "pipe:1", "-nostats"])
        .output()
        .expect("ffmpeg runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ffmpeg failed on {url}: {stderr}");
    assert!(
        stderr.trim().is_empty(),
        "ffmpeg reported errors on {url}: {stderr}"
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("out_time_us="))
        .filter_map(|us| us.parse::<f64>().ok())
        .fold(0.0, f64::max)
        / 1e6
}

/// Lists every file under `root`, relative, sorted: what "unchanged" is compared on.
pub fn tree(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Runs ffmpeg with `args` (quiet, overwrite) and asserts it succeeded.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ffprobe's JSON for `path` with extra `args` (e.g. `-show_frames`).
pub fn ffprobe(path: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json"])
        .args(args)
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The newest version directory of `slug` under `data/media` (version names sort by their
/// time; a replaced version stays for its grace period).
pub fn version_dir(data: &Path, slug: &str) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(data.join("media").join(slug))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    dirs.into_iter().max().expect("a version directory")
}

/// Concatenates a rendition's init segment and media segments into one playable file.
pub fn join_rendition(dir: &Path, out: &Path) {
    let mut bytes = std::fs::read(dir.join("init.mp4")).unwrap();
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "m4s"))
        .collect();
    segments.sort();
    for seg in segments {
        bytes.extend(std::fs::read(seg).unwrap());
    }
    std::fs::write(out, bytes).unwrap();
}

/// Ingests `file` as `slug` into `data` with `--quality fast`, asserting success.
pub fn ingest_ok(data: &Path, file: &Path, slug: &str) {
    ingest_ok_with(data, file, slug, &[]);
}

/// Ingests `file` as `slug` with `meta` as its `film.toml` (written beside `file`).
pub fn ingest_with_meta(data: &Path, file: &Path, slug: &str, meta: &str) {
    let path = file.with_file_name(format!("{slug}.toml"));
    std::fs::write(&path, meta).unwrap();
    ingest_ok_with(data, file, slug, &["--meta", path.to_str().unwrap()]);
}

/// The arguments of `monsoon ingest FILE --slug SLUG --quality fast`.
pub fn ingest_args<'a>(file: &'a Path, slug: &'a str) -> Vec<&'a str> {
    vec![
        "ingest",
        file.to_str().unwrap(),
        "--slug",
        slug,
        "--quality",
        "fast",
    ]
}

/// [`ingest_ok`] with more arguments.
pub fn ingest_ok_with(data: &Path, file: &Path, slug: &str, extra: &[&str]) {
    let mut args = ingest_args(file, slug);
    args.extend_from_slice(extra);
    let out = monsoon(data, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes a `seconds`-long clip of `size` in `dir` and ingests it as `slug` into `dir/data`;
/// returns the data directory.
pub fn ingest_clip(dir: &Path, slug: &str, seconds: u32, size: &str) -> PathBuf {
    ingest_clip_with(dir, slug, seconds, size, &[])
}

/// [`ingest_clip`] with more arguments (e.g. `--database URL`).
pub fn ingest_clip_with(
    dir: &Path,
    slug: &str,
    seconds: u32,
    size: &str,
    extra: &[&str],
) -> PathBuf {
    let data = dir.join("data");
    let clip = dir.join(format!("{slug}.mp4"));
    make_clip(&clip, seconds, size);
    ingest_ok_with(&data, &clip, slug, extra);
    data
}

/// A data directory that already holds one published film, `film`, so "unchanged" means
/// something.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub data: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let data = ingest_clip(tmp.path(), "film", 2, "320x180");
        Fixture { tmp, data }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Ingests `file` as `slug` with `extra` arguments; returns (success, stderr).
    pub fn ingest(&self, file: &Path, slug: &str, extra: &[&str]) -> (bool, String) {
        let mut args = ingest_args(file, slug);
        args.extend_from_slice(extra);
        let out = monsoon(&self.data, &args);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Asserts that `monsoon ingest file --slug film [extra]` fails saying each of `said`, and
    /// leaves the published files, the catalog and the staging area as they were.
    pub fn assert_refused(&self, file: &Path, extra: &[&str], said: &[&str]) {
        let media_before = tree(&self.data.join("media"));
        let films_before = Server::start(&self.data).get_json("/api/v1/films");
        let (ok, stderr) = self.ingest(file, "film", extra);
        assert!(!ok, "{} was accepted", file.display());
        for words in said {
            assert!(
                stderr.contains(words),
                "message does not say `{words}`: {stderr}"
            );
        }
        assert_eq!(
            tree(&self.data.join("media")),
            media_before,
            "published files changed"
        );
        let films = Server::start(&self.data).get_json("/api/v1/films");
        assert_eq!(films, films_before, "the catalog changed");
        assert!(
            tree(&self.data.join("staging")).is_empty(),
            "staging left behind"
        );
    }

    /// [`Fixture::assert_refused`] with a message that names the file and says `reason`.
    pub fn assert_refused_naming(&self, file: &Path, reason: &str) {
        self.assert_refused(file, &[], &[&file.display().to_string(), reason]);
    }

    /// Asserts that `file` is accepted as `slug` and returns its published version directory.
    pub fn assert_accepted(&self, file: &Path, slug: &str) -> PathBuf {
        let (ok, stderr) = self.ingest(file, slug, &[]);
        assert!(ok, "{} was refused: {stderr}", file.display());
        version_dir(&self.data, slug)
    }
}
