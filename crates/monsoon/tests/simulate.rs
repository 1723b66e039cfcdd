//! The release-day simulator end to end: `monsoon simulate` with the smoke scenario against a
//! real `monsoon serve` configured with the scenario's rules, and its refusals of bad input.
//! No timing is asserted: only that the server's figures equal the simulator's ground truth.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{MONSOON, Server};
use serde_json::Value;

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../bench/scenarios")
        .join(name)
}

/// A monsoon.toml whose [audience] table holds the scenario's [server] rules.
fn server_config(dir: &Path, scenario: &Path) -> PathBuf {
    let text = std::fs::read_to_string(scenario).unwrap();
    let parsed: toml::Table = toml::from_str(&text).unwrap();
    let mut audience = parsed["server"].as_table().unwrap().clone();
    // A busy two-core test machine may delay one beat by seconds: let the plausibility rule
    // allow for it (it is tested on its own in the audience crate).
    audience.insert("rate_grace_ms".into(), toml::Value::Integer(10_000));
    audience.insert("sample_every_ms".into(), toml::Value::Integer(500));
    let mut file = toml::Table::new();
    file.insert("audience".into(), toml::Value::Table(audience));
    let path = dir.join("monsoon.toml");
    std::fs::write(&path, toml::to_string(&file).unwrap()).unwrap();
    path
}

fn simulate(args: &[&str]) -> Output {
    Command::new(MONSOON)
        .arg("simulate")
        .args(args)
        .output()
        .expect("monsoon simulate runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_smoke_scenario_matches_the_ground_truth() {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::ingest_clip(tmp.path(), "film", 4, "320x180");
    let smoke = scenario("smoke.toml");
    let config = server_config(tmp.path(), &smoke);
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()]);
    let report = tmp.path().join("report.json");
    let plot = tmp.path().join("plot.svg");
    let out = simulate(&[
        "--scenario",
        smoke.to_str().unwrap(),
        "--url",
        &server.url,
        "--film",
        "film",
        "--report",
        report.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    for row in report["comparison"].as_array().unwrap() {
        assert_eq!(row["difference"], 0.0, "{row}");
    }
    let figure = |name: &str| {
        report["comparison"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["figure"] == name)
            .unwrap()["server"]
            .as_f64()
            .unwrap()
    };
    assert!(figure("views") > 0.0, "{report:#}");
    assert!(figure("playing_time_s") > 0.0);
    assert_eq!(report["live"]["outside"], 0);
    for class in ["mint", "heartbeat", "playlist", "segment"] {
        assert!(
            report["requests"][class]["requests"].as_u64().unwrap() > 0,
            "no {class} requests"
        );
    }
    // The server agrees on its own terms too.
    let stats = server.get_json("/api/v1/films/film/stats");
    assert_eq!(stats["views"].as_f64().unwrap(), figure("views"));
    assert!(std::fs::read_to_string(&plot).unwrap().contains("<svg"));
}

#[test]
fn bad_input_is_refused_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let smoke = scenario("smoke.toml");
    let run = |scenario: &Path, url: &str, film: &str| {
        simulate(&[
            "--scenario",
            scenario.to_str().unwrap(),
            "--url",
            url,
            "--film",
            film,
        ])
    };

    let missing = tmp.path().join("nope.toml");
    let out = run(&missing, "http://127.0.0.1:1", "film");
    assert!(!out.status.success());
    assert!(text(&out).contains("nope.toml"), "{}", text(&out));

    let original = std::fs::read_to_string(&smoke).unwrap();
    for (bad, expected) in [
        (
            original.replace("seed = 7", "seed = 7\nseeds = 8"),
            "unknown field `seeds`",
        ),
        (original.replace("share = 0.4", "share = 0.5"), "sum to 1.1"),
        (original.replace("seed = 7", "seed = \"seven\""), "seed"),
    ] {
        let path = tmp.path().join("bad.toml");
        std::fs::write(&path, bad).unwrap();
        let out = run(&path, "http://127.0.0.1:1", "film");
        assert!(!out.status.success());
        assert!(text(&out).contains(expected), "{expected}: {}", text(&out));
    }

    // Nothing listens on port 1.
    let out = run(&smoke, "http://127.0.0.1:1", "film");
    assert!(!out.status.success());
    assert!(text(&out).contains("cannot reach"), "{}", text(&out));

    // A server without that film.
    let data = tmp.path().join("data");
    let server = Server::start(&data);
    let out = run(&smoke, &server.url, "no-such-film");
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no film `no-such-film`"),
        "{}",
        text(&out)
    );
}
