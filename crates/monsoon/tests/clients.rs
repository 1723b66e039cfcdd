//! Every major client plays a Monsoon film, through every switch, from the real server:
//!
//! - in Debian's Chromium (`web/e2e/clients.mjs`, playwright-core): hls.js, shaka-player over
//!   HLS and over DASH, dash.js, and the browser's own HLS where it has one — switches down and
//!   up, the audio rendition, seeks and the audio-only rendition, with no stall;
//! - ffmpeg: the multivariant playlist and the MPD decoded whole, every program and
//!   representation they expose;
//! - GStreamer (`gst-launch-1.0 playbin3`): the multivariant playlist, the MPD and every media
//!   playlist decoded whole.
//!
//! Each test makes and ingests its own film (854×480, so the ladder has the 234, 360 and 432
//! rungs and both audio renditions, a48 and a128); one ingests it with an AV1 ladder beside
//! H.264 and plays it in every client, each keeping to one codec family. The browser reports go
//! to `target/tmp/clients/` and `target/tmp/clients-av1/`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Server, play_whole};

/// Long enough for the browser scenario: about 20 s of media with seeks up to 29 s.
const SECONDS: u32 = 36;
const SIZE: &str = "854x480";

/// A served film, `film`, with its server.
struct Film {
    _dir: tempfile::TempDir,
    server: Server,
    duration_s: f64,
    /// The media playlists the multivariant playlist names (video rungs and audio renditions).
    renditions: Vec<String>,
}

fn film() -> Film {
    film_in(&[], &["a128", "a48", "v234", "v360", "v432"])
}

/// The same film with an AV1 ladder beside H.264 (`--codecs h264,av1`): the AV1 floor pairs
/// with Opus (`o32`), and the version also has one multivariant playlist per codec family.
fn av1_film() -> Film {
    film_in(
        &["--codecs", "h264,av1"],
        &[
            "a128", "a48", "o32", "v234", "v234-av1", "v360", "v360-av1", "v432", "v432-av1",
        ],
    )
}

fn film_in(extra: &[&str], ladder: &[&str]) -> Film {
    let dir = tempfile::tempdir().unwrap();
    let data = common::ingest_clip_with(dir.path(), "film", SECONDS, SIZE, extra);
    let server = Server::start(&data);
    let film = server.get_json("/api/v1/films/film");
    let duration_s = film["duration_s"].as_f64().unwrap();
    let mut renditions: Vec<String> = film["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    renditions.sort();
    assert_eq!(renditions, ladder, "the ladder this suite is written for");
    Film {
        _dir: dir,
        server,
        duration_s,
        renditions,
    }
}

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web")
}

#[test]
fn browser_clients_play_through_every_switch_without_stalling() {
    browser_clients_play(&film(), "clients");
}

/// Every client plays a film with both codec families, and keeps to one: hls.js, shaka and
/// dash.js choose AV1 (Chromium decodes it), the browser's own HLS, given the H.264 family's
/// playlist, H.264; ffmpeg and GStreamer decode every stream of both families whole.
#[test]
fn every_client_plays_a_film_with_an_av1_ladder() {
    let film = av1_film();
    ffmpeg_decodes_whole(
        &film,
        &[
            "master.m3u8",
            "master-h264.m3u8",
            "master-av1.m3u8",
            "manifest.mpd",
        ],
    );
    gstreamer_decodes_whole(
        &film,
        &["master.m3u8", "master-h264.m3u8", "master-av1.m3u8"],
    );
    let report = browser_clients_play(&film, "clients-av1");
    let rows = report.as_array().unwrap();
    let family = |client: &str| {
        rows.iter()
            .find(|r| r["client"] == client)
            .map(|r| r["family"].as_str().unwrap_or_default().to_owned())
    };
    for client in ["hlsjs", "shaka-hls", "shaka-dash", "dashjs"] {
        assert_eq!(family(client).as_deref(), Some("av1"), "{report}");
    }
    if let Some(native) = family("native").filter(|f| !f.is_empty()) {
        assert_eq!(native, "h264", "{report}");
    }
}

/// Runs `web/e2e/clients.mjs` on `film`; its report (in `target/tmp/<artifacts>/`) has a row
/// per client, each of which passed every step it has.
fn browser_clients_play(film: &Film, artifacts: &str) -> serde_json::Value {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: `apt-get install chromium` (scripts/install-deps.sh does)"
    );
    let web = web_dir();
    for package in ["playwright-core", "hls.js", "shaka-player", "dashjs"] {
        assert!(
            web.join("node_modules").join(package).exists(),
            "web/node_modules/{package} is missing: run `make web`"
        );
    }
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join(artifacts);
    let _ = std::fs::remove_file(artifacts.join("report.json"));
    let status = Command::new("node")
        .arg(web.join("e2e/clients.mjs"))
        .current_dir(&web)
        .env("BASE_URL", &film.server.url)
        .env("FILM", "film")
        .env("ARTIFACTS", &artifacts)
        .env("CHROMIUM", &chromium)
        .status()
        .expect("node runs");
    assert!(status.success(), "a browser client failed (output above)");

    // Every client has a row; a skipped one says why.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(artifacts.join("report.json")).unwrap()).unwrap();
    let rows = report.as_array().unwrap();
    for client in ["hlsjs", "shaka-hls", "shaka-dash", "dashjs", "native"] {
        let row = rows
            .iter()
            .find(|r| r["client"] == client)
            .unwrap_or_else(|| panic!("no row for {client}: {report}"));
        if let Some(reason) = row.get("skipped") {
            assert!(!reason.as_str().unwrap().is_empty(), "{row}");
            continue;
        }
        for step in ["start", "seek"] {
            assert_eq!(row[step], "pass", "{client} {step}: {row}");
        }
    }
    // hls.js, the site's player, and both DASH players select renditions: none may be skipped.
    for client in ["hlsjs", "shaka-hls", "shaka-dash", "dashjs"] {
        let row = rows.iter().find(|r| r["client"] == client).unwrap();
        assert_eq!(row["down"], "pass", "{row}");
        assert_eq!(row["up"], "pass", "{row}");
    }
    report
}

/// ffmpeg decodes every stream it is offered: for HLS every variant (a program each) with its
/// audio, for DASH every representation.
#[test]
fn ffmpeg_decodes_every_variant_and_representation_whole() {
    ffmpeg_decodes_whole(&film(), &["master.m3u8", "manifest.mpd"]);
}

fn ffmpeg_decodes_whole(film: &Film, manifests: &[&str]) {
    for manifest in manifests {
        let url = format!("{}/media/film/{manifest}", film.server.url);
        let reached = play_whole(&url);
        assert!(
            reached >= film.duration_s - 0.5,
            "ffmpeg stopped at {reached} s of {} s in {manifest}",
            film.duration_s
        );
    }
}

/// The last presentation time each of playbin3's sinks received, by sink bin (`vbin`, `abin`),
/// from `fakesink silent=false` under `gst-launch-1.0 -v`.
fn gst_play(url: &str) -> Vec<(String, f64)> {
    let output = Command::new("gst-launch-1.0")
        .args(["-v", "playbin3"])
        .arg(format!("uri={url}"))
        .args([
            "video-sink=fakesink sync=false silent=false",
            "audio-sink=fakesink sync=false silent=false",
        ])
        .output()
        .expect("gst-launch-1.0 runs: `apt-get install gstreamer1.0-tools` (scripts/install-deps.sh does)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "gst-launch-1.0 failed on {url}: {stderr}\n{}",
        stdout
            .lines()
            .filter(|l| l.contains("ERROR"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    for line in stdout.lines().chain(stderr.lines()) {
        assert!(
            !line.starts_with("ERROR") && !line.starts_with("WARNING"),
            "GStreamer on {url}: {line}"
        );
    }
    let mut last: Vec<(String, f64)> = Vec::new();
    for line in stdout
        .lines()
        .filter(|l| l.contains("last-message = chain"))
    {
        let bin = if line.contains("GstBin:vbin") {
            "video"
        } else if line.contains("GstBin:abin") {
            "audio"
        } else {
            continue;
        };
        let Some(pts) = line
            .split("pts: ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .and_then(parse_clock)
        else {
            continue;
        };
        match last.iter_mut().find(|(b, _)| b == bin) {
            Some((_, t)) => *t = t.max(pts),
            None => last.push((bin.to_owned(), pts)),
        }
    }
    last.sort_by(|a, b| a.0.cmp(&b.0));
    last
}

/// `H:MM:SS.nnnnnnnnn` (GStreamer's clock time) in seconds.
fn parse_clock(s: &str) -> Option<f64> {
    let mut parts = s.trim().split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let sec: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + sec)
}

#[test]
fn gstreamer_decodes_the_multivariant_the_mpd_and_every_rendition_whole() {
    gstreamer_decodes_whole(&film(), &["master.m3u8"]);
}

/// GStreamer decodes `playlists`, the MPD and every rendition's media playlist of `film` whole.
fn gstreamer_decodes_whole(film: &Film, playlists: &[&str]) {
    let version = {
        let master = ureq::get(&format!("{}/media/film/master.m3u8", film.server.url))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        let uri = master
            .lines()
            .find(|l| l.ends_with("/index.m3u8") && !l.starts_with('#'))
            .unwrap()
            .to_owned();
        uri.split('/').next().unwrap().to_owned()
    };
    let mut urls: Vec<(String, Vec<&str>)> = playlists
        .iter()
        .chain(&["manifest.mpd"])
        .map(|p| ((*p).to_owned(), vec!["audio", "video"]))
        .collect();
    for r in &film.renditions {
        let kinds = if !r.starts_with('v') {
            vec!["audio"]
        } else {
            vec!["video"]
        };
        urls.push((format!("{version}/{r}/index.m3u8"), kinds));
    }
    for (path, kinds) in urls {
        let url = format!("{}/media/film/{path}", film.server.url);
        let reached = gst_play(&url);
        let got: Vec<&str> = reached.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(got, kinds, "{path}: GStreamer decoded {reached:?}");
        for (kind, t) in &reached {
            assert!(
                *t >= film.duration_s - 0.5,
                "{path}: GStreamer's {kind} stopped at {t} s of {} s",
                film.duration_s
            );
        }
    }
}
