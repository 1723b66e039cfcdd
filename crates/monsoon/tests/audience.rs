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
