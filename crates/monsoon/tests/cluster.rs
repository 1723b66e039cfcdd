//! Several `monsoon serve` nodes on one PostgreSQL database (a real, throw-away one) and one
//! media store: what one learns, every other serves.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use std::process::{Command, Stdio};

use common::Server;
use monsoon_engines::garage::Garage;
use monsoon_engines::postgres::Postgres;
use serde_json::{Value, json};

/// The operators' token of the cluster tests.
const ADMIN_TOKEN: &str = "cluster-test-admin-token";

/// A node with a data directory of its own and the shared `storage` flags. Its catalog polls
/// only once a minute, so whatever it picks up sooner was pushed to it.
fn node(dir: &Path, name: &str, storage: &[&str]) -> Server {
    let admin = common::monsoon(dir, &["admin-token", "--token", ADMIN_TOKEN]);
    assert!(admin.status.success());
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "[serve]\ncatalog_refresh_ms = 60000\n{}",
            String::from_utf8_lossy(&admin.stdout)
        ),
    )
    .unwrap();
    let mut args = vec!["--config", config.to_str().unwrap()];
    args.extend_from_slice(storage);
    Server::start_with(&dir.join(name), &args)
}

fn duration_s(server: &Server) -> f64 {
    server.get_json("/api/v1/films/film")["duration_s"]
        .as_f64()
        .unwrap()
}

#[test]
fn nodes_share_the_catalog_the_media_and_the_token_key() {
    let pg = Postgres::start().unwrap();
    let url = pg.create_database("monsoon").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let media = format!("file://{}", tmp.path().join("media").display());
    let storage = ["--database", url.as_str(), "--media", media.as_str()];
    common::ingest_clip_with(tmp.path(), "film", 2, "320x180", &storage);
    let a = node(tmp.path(), "a", &storage);
    let b = node(tmp.path(), "b", &storage);
    // The first version is a 2 s clip, the second a 4 s one.
    assert!(duration_s(&a) < 3.0 && duration_s(&b) < 3.0);

    // A session minted on one node beats on the other: the token key is the database's.
    let minted = ureq::post(&format!("{}/api/v1/films/film/sessions", a.url))
        .send("")
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let minted: Value = serde_json::from_str(&minted).unwrap();
    let session = minted["session_id"].as_str().unwrap();
    let bits = minted["proof_bits"].as_u64().unwrap() as u32;
    let beat = json!({
        "token": minted["token"], "proof": monsoon_audience::proof::solve(session, bits),
        "seq": 1, "state": "playing", "play_ms": 0, "rebuffer_ms": 0, "rebuffer_count": 0,
        "startup_ms": 600, "seek_ms": 0, "playhead_ms": 0, "height": 180, "bitrate_kbps": 110,
        "bytes": 0, "dropped_frames": 0, "fatal_error": false
    });
    let answer = ureq::post(&format!("{}/api/v1/sessions/{session}/heartbeat", b.url))
        .content_type("text/plain")
        .send(beat.to_string())
        .unwrap();
    assert_eq!(answer.status(), 204);
    assert!(!tmp.path().join("a/audience.key").exists());

    // An operator signed in on one node stays signed in on the other (the session is the
    // database's).
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    let signed_in = agent
        .post(&format!("{}/admin/login", a.url))
        .header("Cookie", "monsoon_login=pair")
        .content_type("application/x-www-form-urlencoded")
        .send(format!("_csrf=pair&token={ADMIN_TOKEN}"))
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let dashboard = agent
        .get(&format!("{}/admin/api/dashboard?film=film", b.url))
        .header("Cookie", &cookie)
        .call()
        .unwrap();
    assert_eq!(dashboard.status(), 200, "signed out by the other node");

    // A new version published by the CLI reaches both nodes by the database's push, long
    // before their once-a-minute poll.
    let clip = tmp.path().join("longer.mp4");
    common::make_clip(&clip, 4, "320x180");
    let published = Instant::now();
    common::ingest_ok_with(&tmp.path().join("cli"), &clip, "film", &storage);
    let published = published.elapsed();
    for server in [&a, &b] {
        let start = Instant::now();
        while duration_s(server) < 3.0 {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the new version never reached {}",
                server.url
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "{}: serving the new version {:?} after the ingest returned (the ingest took {published:?})",
            server.url,
            start.elapsed()
        );
        // And it plays, from the shared store.
        let playlist = ureq::get(&format!("{}/media/film/master.m3u8", server.url))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        assert!(playlist.starts_with("#EXTM3U"), "{playlist}");
    }
}

/// `monsoon` with the global `storage` flags and the S3 credentials of `garage`.
fn monsoon_on(garage: &Garage, data: &Path, storage: &[&str]) -> Command {
    let mut command = Command::new(common::MONSOON);
    command
        .arg("--data")
        .arg(data)
        .args(storage)
        .env("AWS_ACCESS_KEY_ID", garage.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", garage.secret_access_key());
    command
}

/// The media in a real Garage, the catalog and the audience in a real PostgreSQL: the CLI
/// publishes into both, and two nodes with nothing of their own play the film whole, HLS and
/// DASH, with the HTTP semantics of the local store (a range, a validator).
#[test]
fn a_film_in_object_storage_plays_from_every_node() {
    let pg = Postgres::start().unwrap();
    let url = pg.create_database("monsoon").unwrap();
    let garage = Garage::start().unwrap();
    let media = format!(
        "s3://{}?endpoint={}&region={}",
        garage.bucket(),
        garage.endpoint(),
        garage.region()
    );
    let storage = ["--database", url.as_str(), "--media", media.as_str()];
    let tmp = tempfile::tempdir().unwrap();
    let clip = tmp.path().join("film.mp4");
    common::make_clip(&clip, 3, "320x180");
    let out = monsoon_on(&garage, &tmp.path().join("cli"), &storage)
        .args(common::ingest_args(&clip, "film"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !tmp.path().join("cli/media").exists(),
        "the media went to the local disk, not the store"
    );

    let nodes: Vec<Server> = ["a", "b"]
        .iter()
        .map(|name| {
            let mut command = monsoon_on(&garage, &tmp.path().join(name), &storage);
            command
                .args(["serve", "--listen", "127.0.0.1:0", "--access-log", "false"])
                .stderr(Stdio::null());
            Server::spawn(command)
        })
        .collect();
    for node in &nodes {
        let hls = common::play_whole(&format!("{}/media/film/master.m3u8", node.url));
        assert!(hls > 2.5, "HLS from {} decoded only {hls} s of 3", node.url);
        let dash = common::play_whole(&format!("{}/media/film/manifest.mpd", node.url));
        assert!(
            dash > 2.5,
            "DASH from {} decoded only {dash} s of 3",
            node.url
        );
    }

    // The same object through both nodes: the same validator, a range, a 304.
    let playlist = nodes[0].get_json("/api/v1/films/film");
    assert_eq!(playlist["slug"], "film");
    let master = |node: &Server| {
        ureq::get(&format!("{}/media/film/master.m3u8", node.url))
            .call()
            .unwrap()
    };
    let etag =
        |r: &ureq::http::Response<ureq::Body>| r.headers()["etag"].to_str().unwrap().to_owned();
    let (a, b) = (master(&nodes[0]), master(&nodes[1]));
    assert_eq!(
        etag(&a),
        etag(&b),
        "two nodes, two validators for one object"
    );
    let ranged = ureq::get(&format!("{}/media/film/master.m3u8", nodes[1].url))
        .header("Range", "bytes=0-6")
        .call()
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.into_body().read_to_string().unwrap(), "#EXTM3U");
    let fresh = ureq::get(&format!("{}/media/film/master.m3u8", nodes[0].url))
        .header("If-None-Match", &etag(&b))
        .call();
    assert!(matches!(fresh, Ok(ref r) if r.status() == 304), "{fresh:?}");
}
