//! The viewer app in a real browser: Debian's Chromium driven by playwright-core
//! (`web/e2e/viewer.mjs`) against the real binary serving real ingested films. Screenshots and
//! the measured figures go to `target/tmp/browser/`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, ingest_ok, ingest_ok_with, ingest_with_meta, make_clip, monsoon};

const ADMIN_TOKEN: &str = "browser-test-admin-token";
const OPERATOR: &str = "studio";
const OPERATOR_PASSWORD: &str = "browser test operator password";

#[test]
fn a_viewer_browses_watches_switches_resumes_and_an_operator_sees_it() {
    let (chromium, web) = browser();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // A film with rungs above and below 360p (480, 360, 234), long enough to play 30 s
    // throttled after a slow start.
    let film = dir.path().join("film.mp4");
    make_clip(&film, 70, "854x480");
    let trailer = dir.path().join("trailer.mp4");
    make_clip(&trailer, 8, "640x360");
    ingest_ok(&data, &trailer, "trailer");
    // Subtitles in two languages, for the player's menu (named, not coded).
    let subs_vi = dir.path().join("mua-do.vi.vtt");
    std::fs::write(&subs_vi, "WEBVTT\n\n00:01.000 --> 00:04.000\nXin chào\n").unwrap();
    let subs_en = dir.path().join("mua-do.en.vtt");
    std::fs::write(&subs_en, "WEBVTT\n\n00:01.000 --> 00:04.000\nHello\n").unwrap();
    let meta = dir.path().join("mua-do.toml");
    std::fs::write(
        &meta,
        r#"
title = { vi = "Mưa Đỏ", en = "Red Rain" }
synopsis = { vi = "Mùa hè năm 1972, 81 ngày đêm ở Thành cổ Quảng Trị.", en = "Summer 1972: 81 days and nights at the Quang Tri Citadel." }
director = ["Đặng Thái Huyền"]
writer = ["Chu Lai"]
cast = ["Đỗ Nhật Hoàng", "Lê Hạ Anh"]
genres = ["Chiến tranh"]
cinema_release = "2025-08-22"
free_release = "2025-11-20T20:00:00+07:00"
age_rating = "T13"
trailer = "trailer"
"#,
    )
    .unwrap();
    let (vi, en) = (
        format!("vi={}", subs_vi.display()),
        format!("en={}", subs_en.display()),
    );
    ingest_ok_with(
        &data,
        &film,
        "mua-do",
        &[
            "--meta",
            meta.to_str().unwrap(),
            "--subtitles",
            &vi,
            "--subtitles",
            &en,
        ],
    );
    let premiere_at = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    ingest_with_meta(
        &data,
        &trailer,
        "sap-chieu",
        &format!(
            "title = {{ vi = \"Sắp chiếu\", en = \"Coming soon\" }}\nfree_release = \"{premiere_at}\"\ntrailer = \"trailer\"\n"
        ),
    );

    // The studio's operator, made as an administrator would (the password on stdin).
    let mut add = Command::new(common::MONSOON)
        .arg("--data")
        .arg(&data)
        .args(["operator", "add", OPERATOR])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = add.stdin.take().unwrap();
        writeln!(stdin, "{OPERATOR_PASSWORD}").unwrap();
    }
    assert!(add.wait().unwrap().success());
    let config = dir.path().join("monsoon.toml");
    std::fs::write(
        &config,
        "[audience]\nheartbeat_interval_s = 2\nmin_beat_gap_ms = 1000\nview_threshold_ms = 5000\n",
    )
    .unwrap();
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()]);

    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    let status = Command::new("node")
        .arg(web.join("e2e/viewer.mjs"))
        .current_dir(&web)
        .env("BASE_URL", &server.url)
        .env("FILM", "mua-do")
        .env("PREMIERE", "sap-chieu")
        .env("OPERATOR", OPERATOR)
        .env("OPERATOR_PASSWORD", OPERATOR_PASSWORD)
        .env("ARTIFACTS", &artifacts)
        .env("CHROMIUM", &chromium)
        .status()
        .expect("node runs");
    assert!(
        status.success(),
        "the browser test failed; screenshots in {}",
        artifacts.display()
    );
    for shot in [
        "home",
        "film",
        "watch",
        "premiere",
        "home-en",
        "home-continue",
        "film-share-copied",
        "not-found",
        "not-found-en",
        "search",
        "admin",
        "watch-throttled",
        "watch-phone",
    ] {
        assert!(artifacts.join(format!("{shot}.png")).exists(), "{shot}.png");
    }

    // The player's heartbeats reached the audience figures: the first visit played well past
    // the (test) 5 s view threshold.
    let stats = server.get_json("/api/v1/films/mua-do/stats");
    assert!(stats["views"].as_u64().unwrap() >= 1, "{stats}");
    // A session counts from its first accepted beat, which waits for its proof of work: the
    // long visits count; a visit left within a second may not.
    assert!(stats["sessions"].as_u64().unwrap() >= 2, "{stats}");
    assert!(stats["playing_time_s"].as_f64().unwrap() >= 30.0, "{stats}");
    assert!(stats["startup_ms_p50"].as_u64().is_some(), "{stats}");
}

/// The player's codec choice in a real browser (`web/e2e/codecs.mjs`): on a film with an
/// H.264 and an AV1 ladder, hls.js plays AV1 where this Chromium decodes it (dav1d) and H.264
/// where Media Source Extensions are made to refuse `av01`; a slow first visit plays the
/// H.264 floor natively; heartbeats name the codec and the figures split by it.
#[test]
fn the_player_plays_av1_where_decoded_and_h264_elsewhere() {
    let (chromium, web) = browser();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Short and small: rungs 234 and 360 in both codecs.
    let film = dir.path().join("film.mp4");
    make_clip(&film, 16, "640x360");
    ingest_ok_with(&data, &film, "hai-ma", &["--codecs", "h264,av1"]);
    // Both ladders published (wherever the store keeps the playlist: found by name).
    let master = walk(&data)
        .into_iter()
        .find(|p| p.ends_with("master.m3u8"))
        .map(std::fs::read_to_string)
        .unwrap()
        .unwrap();
    assert!(
        master.contains("av01.") && master.contains("avc1."),
        "{master}"
    );
    let hash = monsoon(&data, &["admin-token", "--token", ADMIN_TOKEN]);
    assert!(hash.status.success());
    let config = dir.path().join("monsoon.toml");
    std::fs::write(
        &config,
        format!(
            "[audience]\nheartbeat_interval_s = 2\nmin_beat_gap_ms = 1000\n\n{}",
            String::from_utf8_lossy(&hash.stdout)
        ),
    )
    .unwrap();
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()]);
    let status = Command::new("node")
        .arg(web.join("e2e/codecs.mjs"))
        .current_dir(&web)
        .env("BASE_URL", &server.url)
        .env("FILM", "hai-ma")
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("CHROMIUM", &chromium)
        .status()
        .expect("node runs");
    assert!(status.success(), "the codec test in the browser failed");
}

/// Tracks added to a published film (`monsoon add-track`) in the player (`web/e2e/tracks.mjs`):
/// the audio menu names the dub beside the film's own language, choosing it plays the dub's
/// segments, and the added subtitles show; and in shaka-player over the DASH manifest, the dub
/// and the subtitles are listed and choosing the dub plays its segments.
#[test]
fn the_player_switches_to_an_added_audio_language_and_subtitles() {
    let (chromium, web) = browser();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let film = dir.path().join("film.mp4");
    make_clip(&film, 30, "640x360");
    ingest_ok(&data, &film, "song-nuoc");
    let dub = dir.path().join("en.wav");
    common::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=880:sample_rate=48000",
        "-t",
        "30",
        dub.to_str().unwrap(),
    ]);
    let srt = dir.path().join("en.srt");
    std::fs::write(
        &srt,
        "1\n00:00:00,000 --> 00:00:30,000\nHello from the subtitles\n\n",
    )
    .unwrap();
    for args in [
        vec!["--audio", dub.to_str().unwrap(), "--label", "English (dub)"],
        vec!["--subtitles", srt.to_str().unwrap()],
    ] {
        let mut all = vec!["add-track", "song-nuoc", "--lang", "en"];
        all.extend(args);
        let out = monsoon(&data, &all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let server = Server::start(&data);
    let status = Command::new("node")
        .arg(web.join("e2e/tracks.mjs"))
        .current_dir(&web)
        .env("BASE_URL", &server.url)
        .env("FILM", "song-nuoc")
        .env("DUB", "English (dub)")
        .env("CHROMIUM", &chromium)
        .status()
        .expect("node runs");
    assert!(status.success(), "the tracks test in the browser failed");
}

/// The operator's dashboard in a real browser (`web/e2e/dashboard.mjs`): players on named
/// links beat, and an operator on a 360 px phone in Vietnamese and on a desktop in English
/// reads axes in the page's language (24-hour, day/month), whole-number and % ticks, charts
/// captioned with their windows, the configured view threshold, titles in the picker, the
/// split by network, rung and codec (with bytes), the day's sessions watching by rung drawn a
/// line a rung, the origin's errors by class, and downloads the CSV (a column a rung); the language is kept through sign-in and nothing overflows the phone's width.
#[test]
fn an_operator_reads_the_dashboard_in_their_language_on_a_phone_and_downloads_the_csv() {
    let (chromium, web) = browser();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let film = dir.path().join("film.mp4");
    make_clip(&film, 4, "640x360");
    ingest_with_meta(
        &data,
        &film,
        "bao-lua",
        "title = { vi = \"Bão Lửa\", en = \"Firestorm\" }\n",
    );
    let hash = monsoon(&data, &["admin-token", "--token", ADMIN_TOKEN]);
    assert!(hash.status.success());
    let config = dir.path().join("monsoon.toml");
    // No proof of work (the script beats as players would, without solving one), a view at
    // 7 s, viewers live for 10 minutes (the whole test), a sample every half second.
    std::fs::write(
        &config,
        format!(
            "[audience]\nheartbeat_interval_s = 2\nmin_beat_gap_ms = 1000\nview_threshold_ms = 7000\n\
             proof_bits = 0\nliveness_ms = 600000\nsample_every_ms = 500\n\n{}",
            String::from_utf8_lossy(&hash.stdout)
        ),
    )
    .unwrap();
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()]);
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    let status = Command::new("node")
        .arg(web.join("e2e/dashboard.mjs"))
        .current_dir(&web)
        .env("BASE_URL", &server.url)
        .env("FILM", "bao-lua")
        .env("TITLE_VI", "Bão Lửa")
        .env("TITLE_EN", "Firestorm")
        .env("VIEW_THRESHOLD_S", "7")
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("ARTIFACTS", &artifacts)
        .env("CHROMIUM", &chromium)
        .status()
        .expect("node runs");
    assert!(
        status.success(),
        "the dashboard test in the browser failed; screenshots in {}",
        artifacts.display()
    );
    for shot in ["admin-phone-vi", "admin-en"] {
        assert!(artifacts.join(format!("{shot}.png")).exists(), "{shot}.png");
    }
}

/// The studio's whole path for a film (`web/e2e/studio-media.mjs`), on one machine whose
/// server runs the jobs itself: create a film, upload its master through a network cut and a
/// page reload (resumed, one upload), the job's progress moving to done, the film playing; a
/// dub and subtitles added from the studio, and the player switching to them; a title edited
/// and shown on the public page without a new version.
#[test]
fn an_operator_creates_uploads_publishes_and_dubs_a_film_from_the_studio() {
    let (chromium, web) = browser();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let master = dir.path().join("song-nuoc.mp4");
    make_clip(&master, 24, "854x480");
    let size = std::fs::metadata(&master).unwrap().len();
    assert!(
        size > 600_000,
        "the master is {size} B: too small to cut mid-upload"
    );
    let dub = dir.path().join("song-nuoc.en.wav");
    common::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=880:sample_rate=48000",
        "-t",
        "24",
        dub.to_str().unwrap(),
    ]);
    // A dub mixed for another cut: 6 s for a film of 24.
    let short_dub = dir.path().join("song-nuoc.fr.wav");
    common::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        "6",
        short_dub.to_str().unwrap(),
    ]);
    let subs = dir.path().join("song-nuoc.en.srt");
    std::fs::write(
        &subs,
        "1\n00:00:00,000 --> 00:00:24,000\nHello from the studio\n\n",
    )
    .unwrap();
    std::fs::create_dir_all(&data).unwrap();
    let hash = monsoon(&data, &["admin-token", "--token", ADMIN_TOKEN]);
    assert!(hash.status.success());
    let config = dir.path().join("monsoon.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[uploads]\nmin_free_bytes = 0\n",
            String::from_utf8_lossy(&hash.stdout)
        ),
    )
    .unwrap();
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()]);
    let status = Command::new("node")
        .arg(web.join("e2e/studio-media.mjs"))
        .current_dir(&web)
        .env("BASE_URL", &server.url)
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("MASTER", &master)
        .env("DUB", &dub)
        .env("SHORT_DUB", &short_dub)
        .env("SUBS", &subs)
        .env("SLUG", "song-nuoc")
        .env("CHROMIUM", &chromium)
        .status()
        .expect("node runs");
    assert!(status.success(), "the studio's path in the browser failed");
}

/// Debian's Chromium (or `CHROMIUM`) and the `web/` directory with its npm packages, which every
/// test here drives; a test fails at once, saying what to install, when one is missing.
fn browser() -> (String, std::path::PathBuf) {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: `apt-get install chromium` (scripts/install-deps.sh does)"
    );
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    assert!(
        web.join("node_modules/playwright-core").exists(),
        "web/node_modules is missing: run `make web`"
    );
    (chromium, web)
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The studio (`web/e2e/studio.mjs`): an operator edits a published film's title and premiere
/// and uploads its poster, and viewers see each on the film page without a re-ingest; a bad
/// field shows its rule beside it; a draft is created with a premiere and stays private.
#[test]
fn an_operator_edits_a_film_in_the_studio_and_viewers_see_it_without_a_re_ingest() {
    let (chromium, web) = browser();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let film = dir.path().join("film.mp4");
    make_clip(&film, 4, "320x180");
    ingest_with_meta(
        &data,
        &film,
        "mua-do",
        "title = { vi = \"Mưa Đỏ\", en = \"Red Rain\" }\nage_rating = \"T13\"\n",
    );
    let poster = dir.path().join("poster.png");
    let made = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=600x900",
            "-frames:v",
            "1",
        ])
        .arg(&poster)
        .status()
        .unwrap();
    assert!(made.success());
    let hash = monsoon(&data, &["admin-token", "--token", ADMIN_TOKEN]);
    assert!(hash.status.success());
    let config = dir.path().join("monsoon.toml");
    std::fs::write(&config, &hash.stdout).unwrap();
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()]);
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&artifacts).unwrap();
    let status = Command::new("node")
        .arg(web.join("e2e/studio.mjs"))
        .current_dir(&web)
        .env("BASE_URL", &server.url)
        .env("FILM", "mua-do")
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("POSTER", &poster)
        .env("ARTIFACTS", &artifacts)
        .env("CHROMIUM", &chromium)
        .status()
        .expect("node runs");
    assert!(
        status.success(),
        "the studio test in the browser failed; screenshots in {}",
        artifacts.display()
    );
    // What the browser saved is in the catalog: the title, and a draft.
    let film = server.get_json("/api/v1/films/mua-do");
    assert!(film.to_string().contains("bản đạo diễn"), "{film}");
}
