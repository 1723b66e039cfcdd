//! End-to-end: the real `monsoon` binary, real ffmpeg, a real HTTP client.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const MONSOON: &str = env!("CARGO_BIN_EXE_monsoon");

/// Makes a test clip with a tone (`audio`) or without.
fn make_clip(path: &Path, seconds: u32, size: &str) {
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

fn monsoon(data: &Path, args: &[&str]) -> Output {
    Command::new(MONSOON)
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("monsoon runs")
}

/// A running `monsoon serve`, stopped when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(data: &Path) -> Server {
        let mut child = Command::new(MONSOON)
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
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

    fn get_json(&self, path: &str) -> serde_json::Value {
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

/// Decodes every stream of `url` to the end with ffmpeg and returns the media time reached.
fn play_whole(url: &str) -> f64 {
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

#[test]
fn ingest_serve_and_play_hls_and_dash() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = tmp.path().join("clip.mp4");
    make_clip(&clip, 8, "640x360");
    let meta = tmp.path().join("film.toml");
    std::fs::write(&meta, "title = { vi = \"Phim thử\", en = \"Test film\" }\n").unwrap();
    let data = tmp.path().join("data");

    let out = monsoon(
        &data,
        &[
            "ingest",
            clip.to_str().unwrap(),
            "--slug",
            "test-film",
            "--meta",
            meta.to_str().unwrap(),
            "--quality",
            "fast",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let server = Server::start(&data);
    assert_eq!(
        ureq::get(&format!("{}/healthz", server.url))
            .call()
            .unwrap()
            .status(),
        200
    );

    let films = server.get_json("/api/v1/films");
    let films = films["films"].as_array().expect("a list");
    assert_eq!(films.len(), 1);
    assert_eq!(films[0]["slug"], "test-film");
    assert_eq!(films[0]["title"]["vi"], "Phim thử");
    assert_eq!(films[0]["title"]["en"], "Test film");
    assert_eq!(films[0]["hls_url"], "/media/test-film/master.m3u8");
    assert_eq!(films[0]["dash_url"], "/media/test-film/manifest.mpd");
    let film = server.get_json("/api/v1/films/test-film");
    assert_eq!(film["slug"], "test-film");

    let hls = play_whole(&format!("{}/media/test-film/master.m3u8", server.url));
    assert!(hls > 7.5, "HLS decoded only {hls} s of 8");
    let dash = play_whole(&format!("{}/media/test-film/manifest.mpd", server.url));
    assert!(dash > 7.5, "DASH decoded only {dash} s of 8");

    for page in ["/", "/films/test-film", "/watch/test-film"] {
        let body = ureq::get(&format!("{}{page}", server.url))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        assert!(body.contains("Phim thử"), "{page} does not show the title");
    }
    let missing = ureq::get(&format!("{}/api/v1/films/nope", server.url)).call();
    assert!(matches!(missing, Err(ureq::Error::StatusCode(404))));
}

/// Lists every file under `root`, relative, sorted: what "unchanged" is compared on.
fn tree(root: &Path) -> Vec<PathBuf> {
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

#[test]
fn bad_inputs_are_refused_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let clip = tmp.path().join("good.mp4");
    make_clip(&clip, 2, "320x180");
    let out = monsoon(
        &data,
        &[
            "ingest",
            clip.to_str().unwrap(),
            "--slug",
            "film",
            "--quality",
            "fast",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let media_before = tree(&data.join("media"));
    let films_before = Server::start(&data).get_json("/api/v1/films");

    let empty = tmp.path().join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let text = tmp.path().join("playlist.mp4");
    std::fs::write(&text, "#EXTM3U\n#EXTINF:10,\n/etc/passwd\n").unwrap();
    let missing = tmp.path().join("missing.mp4");

    let cases: [(&Path, &str); 3] = [
        (&missing, "not found"),
        (&empty, "empty"),
        (&text, "not a media file"),
    ];
    for (file, reason) in cases {
        let out = monsoon(&data, &["ingest", file.to_str().unwrap(), "--slug", "film"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{} was accepted", file.display());
        assert!(
            stderr.contains(file.to_str().unwrap()),
            "message does not name the file: {stderr}"
        );
        assert!(
            stderr.contains(reason),
            "message does not say `{reason}`: {stderr}"
        );
    }

    let bad_slug = monsoon(&data, &["ingest", clip.to_str().unwrap(), "--slug", "../x"]);
    assert!(!bad_slug.status.success());
    assert!(String::from_utf8_lossy(&bad_slug.stderr).contains("`../x`"));

    assert_eq!(tree(&data.join("media")), media_before);
    assert_eq!(Server::start(&data).get_json("/api/v1/films"), films_before);
}
