//! Audience end to end: simulated viewers with a known ground truth against the real binary,
//! a `kill -9` in the middle, and a restart: nothing acknowledged is lost, nothing is doubled.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::Server;
use common::player::{Viewer, beat, mint, post};
use serde_json::{Value, json};

fn stats(server: &Server) -> Value {
    server.get_json("/api/v1/films/film/stats")
}

fn config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("monsoon.toml");
    std::fs::write(
        &path,
        "[audience]\nview_threshold_ms = 2000\nmin_beat_gap_ms = 100\nliveness_ms = 5000\nsample_every_ms = 200\n",
    )
    .unwrap();
    path
}

#[test]
fn figures_match_the_ground_truth_across_a_kill_9() {
    figures_match_the_ground_truth(&[]);
}

/// The same on PostgreSQL (a real one, of this test's own): the catalog and the audience in
/// the database, the media on local disk.
#[test]
fn figures_match_the_ground_truth_across_a_kill_9_on_postgres() {
    let pg = monsoon_engines::postgres::Postgres::start().unwrap();
    let url = pg.create_database("monsoon").unwrap();
    figures_match_the_ground_truth(&["--database", &url]);
}

/// Simulated viewers with a known ground truth, a `kill -9` of the server and a restart, on
/// the backends `storage` (global flags) names.
fn figures_match_the_ground_truth(storage: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::ingest_clip_with(tmp.path(), "film", 2, "320x180", storage);
    let config = config(tmp.path());
    let mut args = vec!["--config", config.to_str().unwrap()];
    args.extend_from_slice(storage);
    let mut server = Server::start_with(&data, &args);
    assert_eq!(
        data.join("catalog.db").exists(),
        storage.is_empty(),
        "the database is not the one named"
    );

    // 10 finish a view and leave, 10 pause early, 10 keep playing; one viewer watches twice.
    let mut leavers: Vec<Viewer> = (0..10).map(|_| mint(&server, None)).collect();
    let mut pausers: Vec<Viewer> = (0..10).map(|_| mint(&server, None)).collect();
    let mut players: Vec<Viewer> = (0..10).map(|_| mint(&server, None)).collect();
    let mut twice = [
        mint(&server, Some("same-viewer-01")),
        mint(&server, Some("same-viewer-01")),
    ];
    assert_eq!(twice[0].viewer, twice[1].viewer);

    for round in 0..6 {
        for v in leavers
            .iter_mut()
            .chain(players.iter_mut())
            .chain(twice.iter_mut())
        {
            assert_eq!(
                beat(&server, v, "playing", if round == 0 { 0 } else { 500 }),
                204
            );
        }
        for v in &mut pausers {
            let (state, played) = if round < 2 {
                ("playing", if round == 0 { 0 } else { 500 })
            } else {
                ("paused", 0)
            };
            assert_eq!(beat(&server, v, state, played), 204);
        }
        std::thread::sleep(Duration::from_millis(520));
    }
    for v in &mut leavers {
        assert_eq!(beat(&server, v, "ended", 0), 204);
    }
    // Ground truth so far: 2.5 s played by leavers, players and both "twice" sessions (one
    // view for that viewer), 0.5 s by pausers.
    let views = 10 + 10 + 1;
    let playing_ms: u64 = [&leavers[..], &pausers[..], &players[..], &twice[..]]
        .iter()
        .flat_map(|g| g.iter())
        .map(|v| v.acked_play_ms)
        .sum();
    std::thread::sleep(Duration::from_millis(400)); // one peak sample
    let before = stats(&server);
    assert_eq!(before["views"], views);
    assert_eq!(
        before["playing_time_s"].as_f64().unwrap(),
        playing_ms as f64 / 1000.0
    );
    assert_eq!(
        before["concurrent_viewers"], 11,
        "players, and one viewer watching in two sessions"
    );
    assert_eq!(before["peak_concurrent_viewers"], 31);

    // kill -9 and restart on the same data.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let server = Server::start_with(&data, &args);
    let after = stats(&server);
    for key in [
        "views",
        "views_24h",
        "playing_time_s",
        "peak_concurrent_viewers",
        "unique_viewers_24h",
    ] {
        assert_eq!(after[key], before[key], "{key} changed across kill -9");
    }

    // Players resend their last (acknowledged) beat, as after a network error: idempotent.
    for v in &mut players {
        v.seq -= 1;
        v.play_ms -= 500;
        assert_eq!(beat(&server, v, "playing", 500), 204);
    }
    std::thread::sleep(Duration::from_millis(520));
    for v in &mut players {
        assert_eq!(beat(&server, v, "playing", 500), 204);
    }
    for v in &mut twice {
        assert_eq!(beat(&server, v, "ended", 0), 204);
    }
    let end = stats(&server);
    assert_eq!(end["views"], views, "a view was counted twice");
    let playing_ms = playing_ms + 10 * 500;
    assert_eq!(
        end["playing_time_s"].as_f64().unwrap(),
        playing_ms as f64 / 1000.0
    );
    assert_eq!(end["concurrent_viewers"], 10);

    // A forged token is refused; the figures do not move.
    let mut forged = mint(&server, None);
    forged.token = forged.token.replace('.', ".x");
    assert_eq!(beat(&server, &mut forged, "playing", 0), 401);
    // Heartbeats too big are refused.
    let (status, _) = post(
        &format!(
            "{}/api/v1/sessions/{}/heartbeat",
            server.url, players[0].session
        ),
        &json!({ "token": "x".repeat(20_000) }),
    );
    assert_eq!(status, 413);
    assert_eq!(stats(&server)["views"], views);

    // History for charts: the concurrency series has the peak of 31 in some minute.
    let series =
        server.get_json("/api/v1/films/film/stats/series?metric=concurrent_viewers&step=60");
    let points = series["points"].as_array().unwrap();
    assert!(points.iter().any(|p| p[1] == 31.0), "{series}");
    let bad = ureq::get(&format!(
        "{}/api/v1/films/film/stats/series?metric=nonsense",
        server.url
    ))
    .call();
    assert!(matches!(bad, Err(ureq::Error::StatusCode(400))));

    // The same figures in the terminal and for Prometheus.
    let out = std::process::Command::new(common::MONSOON)
        .args(["stats", "film", "--url", &server.url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines()
            .any(|l| l.contains("views") && l.trim_end().ends_with(&views.to_string())),
        "{text}"
    );
    let metrics = ureq::get(&format!("{}/metrics", server.url))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        metrics.contains(&format!("monsoon_audience_views{{film=\"film\"}} {views}")),
        "{metrics}"
    );
    let missing = std::process::Command::new(common::MONSOON)
        .args(["stats", "nope", "--url", &server.url])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no film `nope`"));
}

/// Heartbeats name the codec played; the figures split sessions and playing time by it,
/// exactly, across a `kill -9` (SQLite and PostgreSQL); a codec outside `h264`, `av1` is
/// refused naming the field.
#[test]
fn the_figures_split_by_codec_across_a_kill_9() {
    codec_split(&[]);
}

#[test]
fn the_figures_split_by_codec_across_a_kill_9_on_postgres() {
    let pg = monsoon_engines::postgres::Postgres::start().unwrap();
    let url = pg.create_database("monsoon").unwrap();
    codec_split(&["--database", &url]);
}

fn codec_split(storage: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::ingest_clip_with(tmp.path(), "film", 2, "320x180", storage);
    let config = config(tmp.path());
    let mut args = vec!["--config", config.to_str().unwrap()];
    args.extend_from_slice(storage);
    let mut server = Server::start_with(&data, &args);

    // Three players on AV1, two on H.264, one that names no codec (an older player).
    let mut viewers: Vec<Viewer> = [
        Some("av1"),
        Some("av1"),
        Some("av1"),
        Some("h264"),
        Some("h264"),
        None,
    ]
    .into_iter()
    .map(|codec| Viewer {
        codec,
        ..mint(&server, None)
    })
    .collect();
    for round in 0..3 {
        for v in &mut viewers {
            assert_eq!(
                beat(&server, v, "playing", if round == 0 { 0 } else { 500 }),
                204
            );
        }
        std::thread::sleep(Duration::from_millis(520));
    }
    let split = |figures: &Value| -> Vec<(String, u64, f64)> {
        figures["codecs"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(codec, s)| {
                (
                    codec.clone(),
                    s["sessions"].as_u64().unwrap(),
                    s["playing_time_s"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let played = |viewers: &[Viewer], codec: &str| -> f64 {
        viewers
            .iter()
            .filter(|v| v.codec == Some(codec))
            .map(|v| v.acked_play_ms)
            .sum::<u64>() as f64
            / 1000.0
    };
    let expected = vec![
        ("av1".to_string(), 3, played(&viewers, "av1")),
        ("h264".to_string(), 2, played(&viewers, "h264")),
    ];
    assert_eq!(played(&viewers, "av1"), 3.0);
    let before = stats(&server);
    assert_eq!(split(&before), expected, "{before}");

    // kill -9 and restart on the same data: the split is what was acknowledged.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let server = Server::start_with(&data, &args);
    let after = stats(&server);
    assert_eq!(split(&after), expected, "{after}");

    // Beats after the restart go on adding to the same codec.
    std::thread::sleep(Duration::from_millis(520));
    for v in &mut viewers {
        assert_eq!(beat(&server, v, "playing", 500), 204);
    }
    assert_eq!(played(&viewers, "av1"), 4.5);
    let end = stats(&server);
    assert_eq!(
        split(&end),
        vec![
            ("av1".to_string(), 3, played(&viewers, "av1")),
            ("h264".to_string(), 2, played(&viewers, "h264")),
        ],
        "{end}"
    );

    // Anything else is refused, the field named, and the figures do not move.
    for bad in ["vp9", "AV1", "avc1.64001f", ""] {
        let v = &viewers[0];
        let body = json!({
            "token": v.token, "seq": v.seq + 1, "state": "playing", "play_ms": v.play_ms,
            "codec": bad,
        });
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut r = agent
            .post(&format!(
                "{}/api/v1/sessions/{}/heartbeat",
                server.url, v.session
            ))
            .content_type("text/plain")
            .send(body.to_string())
            .unwrap();
        let status = r.status().as_u16();
        let message = r.body_mut().read_to_string().unwrap();
        assert_eq!(status, 400, "{bad}: {message}");
        assert!(message.contains("codec"), "{bad}: {message}");
    }
    assert_eq!(split(&stats(&server)), split(&end));
}
