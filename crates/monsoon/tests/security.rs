//! The security probe's defects about the premiere and the audience, replayed against the
//! real binary (`docs/SECURITY.md`): each test here failed before its fix.
//! `security_http.rs` and `security_ingest.rs` hold the connection, sign-in and ingest cases.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, ingest_clip, ingest_with_meta, make_clip};
use serde_json::{Value, json};

/// One raw HTTP/1.1 exchange (on the fast path for media): status, head, body.
fn raw(url: &str, request: &str) -> (u16, String, Vec<u8>) {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&bytes[..split]).to_lowercase();
    let status = head[9..12].parse().unwrap();
    (status, head, bytes[split + 4..].to_vec())
}

fn get(url: &str, path: &str, extra: &str) -> (u16, String, Vec<u8>) {
    raw(
        url,
        &format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n"),
    )
}

/// Every object of the version at `dir`, by the index the server serves from.
fn objects(dir: &Path) -> Vec<String> {
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("objects.json")).unwrap()).unwrap();
    let objects = index
        .get("objects")
        .and_then(Value::as_object)
        .unwrap_or_else(|| index.as_object().unwrap());
    objects.keys().cloned().collect()
}

#[test]
fn nothing_of_a_film_leaks_before_its_premiere_and_everything_plays_after() {
    let tmp = tempfile::tempdir().unwrap();
    // A trailer, released: it stays playable.
    let data = ingest_clip(tmp.path(), "trailer", 2, "320x180");
    let clip = tmp.path().join("soon.mp4");
    make_clip(&clip, 3, "320x180");
    let premiere = chrono::Utc::now() + chrono::Duration::seconds(45);
    ingest_with_meta(
        &data,
        &clip,
        "soon",
        &format!(
            "title = {{ vi = \"Sắp chiếu\", en = \"Soon\" }}\ntrailer = \"trailer\"\nfree_release = \"{}\"\n",
            premiere.to_rfc3339()
        ),
    );
    let dir = common::version_dir(&data, "soon");
    let version = dir.file_name().unwrap().to_string_lossy().into_owned();
    let server = Server::start(&data);
    let url = &server.url;

    // Every object under its versioned path, by GET, HEAD and Range, and paths that do not
    // exist: all 403, cached a few seconds at most.
    let mut paths: Vec<String> = objects(&dir)
        .iter()
        .map(|o| format!("/media/soon/{version}/{o}"))
        .collect();
    assert!(paths.iter().any(|p| p.ends_with(".m4s")), "{paths:?}");
    paths.extend([
        "/media/soon/master.m3u8".to_owned(),
        "/media/soon/manifest.mpd".to_owned(),
        format!("/media/soon/{version}/v180/seg_99999.m4s"),
        "/media/soon/v20990101T000000000Z/v180/seg_00000.m4s".to_owned(),
    ]);
    for path in &paths {
        for extra in ["", "Range: bytes=0-99\r\n"] {
            let (status, head, _) = get(url, path, extra);
            assert_eq!(status, 403, "{path} {extra:?}: {head}");
            assert!(head.contains("cache-control: max-age=5"), "{path}: {head}");
        }
        let (status, _, _) = raw(
            url,
            &format!("HEAD {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(status, 403, "HEAD {path}");
    }

    // Nothing public names the version: the API, the catalog, the film page.
    for path in ["/api/v1/films/soon", "/api/v1/films", "/", "/films/soon"] {
        let (status, _, body) = get(url, path, "");
        assert_eq!(status, 200, "{path}");
        let body = String::from_utf8_lossy(&body);
        assert!(
            !body.contains(&version),
            "{path} names the version:\n{body}"
        );
    }
    let film: Value = serde_json::from_slice(&get(url, "/api/v1/films/soon", "").2).unwrap();
    assert!(
        film["thumbnails_url"].is_null() && film["published_at"].is_null(),
        "{film}"
    );
    // The poster, at its stable URL, is what the premiere page shows.
    let poster = film["poster_url"].as_str().unwrap().to_owned();
    let (status, head, body) = get(url, &poster, "");
    assert_eq!(status, 200, "{poster}: {head}");
    assert!(
        head.contains("cache-control: public, max-age=300"),
        "{head}"
    );
    assert!(!body.is_empty());
    // The trailer plays.
    assert_eq!(get(url, "/media/trailer/master.m3u8", "").0, 200);

    // After the premiere, the same objects play (no refusal cached for long).
    let wait = (premiere - chrono::Utc::now()).to_std().unwrap_or_default();
    std::thread::sleep(wait + Duration::from_secs(1));
    // (The top-level manifests are served at their stable URLs only.)
    let stable_only = [
        format!("/media/soon/{version}/master.m3u8"),
        format!("/media/soon/{version}/manifest.mpd"),
    ];
    for path in paths
        .iter()
        .filter(|p| !p.contains("seg_99999") && !p.contains("v2099") && !stable_only.contains(p))
    {
        let (status, _, _) = get(url, path, "");
        assert!(status == 200, "{path} after the premiere: {status}");
    }
    let film: Value = serde_json::from_slice(&get(url, "/api/v1/films/soon", "").2).unwrap();
    assert!(film["thumbnails_url"].as_str().is_some(), "{film}");
}

/// A released film and an audience with short thresholds: 2 s views, 100 ms between beats.
fn audience_rig(extra: &str) -> (tempfile::TempDir, Server) {
    let tmp = tempfile::tempdir().unwrap();
    let data = ingest_clip(tmp.path(), "film", 2, "320x180");
    let config = tmp.path().join("monsoon.toml");
    std::fs::write(
        &config,
        format!(
            "[audience]\nview_threshold_ms = 2000\nmin_beat_gap_ms = 100\nliveness_ms = 5000\n\
             sample_every_ms = 200\nproof_bits = 10\n{extra}"
        ),
    )
    .unwrap();
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()]);
    (tmp, server)
}

fn post(url: &str, body: &Value) -> (u16, String, Option<String>) {
    match ureq::post(url)
        .content_type("text/plain")
        .send(body.to_string())
    {
        Ok(mut r) => {
            let outcome = r
                .headers()
                .get("x-monsoon-beat")
                .map(|v| v.to_str().unwrap().to_owned());
            (
                r.status().as_u16(),
                r.body_mut().read_to_string().unwrap_or_default(),
                outcome,
            )
        }
        Err(ureq::Error::StatusCode(code)) => (code, String::new(), None),
        Err(e) => panic!("{url}: {e}"),
    }
}

fn post_err(url: &str, body: &Value) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .post(url)
        .content_type("text/plain")
        .send(body.to_string())
        .unwrap();
    (
        r.status().as_u16(),
        r.body_mut().read_to_string().unwrap_or_default(),
    )
}

struct Session {
    id: String,
    token: String,
    proof: String,
}

fn mint(server: &Server, viewer: Option<&str>) -> Session {
    let body = viewer.map_or(json!({}), |v| json!({ "viewer_id": v }));
    let (status, text, _) = post(&format!("{}/api/v1/films/film/sessions", server.url), &body);
    assert_eq!(status, 201, "{text}");
    let m: Value = serde_json::from_str(&text).unwrap();
    let id = m["session_id"].as_str().unwrap().to_owned();
    let bits = m["proof_bits"].as_u64().unwrap_or(0) as u32;
    Session {
        proof: monsoon_audience::proof::solve(&id, bits),
        id,
        token: m["token"].as_str().unwrap().to_owned(),
    }
}

fn beat_body(s: &Session, seq: u64, play_ms: u64) -> Value {
    json!({ "token": s.token, "proof": s.proof, "seq": seq, "state": "playing",
            "play_ms": play_ms, "startup_ms": 500, "height": 180 })
}

fn beat(server: &Server, s: &Session, body: &Value) -> (u16, Option<String>) {
    let (status, _, outcome) = post(
        &format!("{}/api/v1/sessions/{}/heartbeat", server.url, s.id),
        body,
    );
    (status, outcome)
}

fn stats(server: &Server) -> Value {
    server.get_json("/api/v1/films/film/stats")
}

#[test]
fn a_view_cannot_be_claimed_in_one_heartbeat() {
    let (_tmp, server) = audience_rig("");
    // The probe's attack: mint, wait, then one beat claiming the whole threshold.
    let s = mint(&server, None);
    std::thread::sleep(Duration::from_millis(2_100));
    assert_eq!(beat(&server, &s, &beat_body(&s, 1, 2_000)).0, 204);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stats(&server)["views"], 0, "one claim made a view");
    // Playing time the server sees accrue between beats does.
    std::thread::sleep(Duration::from_millis(2_000));
    assert_eq!(beat(&server, &s, &beat_body(&s, 2, 4_000)).0, 204);
    assert_eq!(stats(&server)["views"], 1);
}

#[test]
fn a_session_without_its_proof_of_work_counts_nothing() {
    let (_tmp, server) = audience_rig("");
    let s = mint(&server, None);
    let mut body = beat_body(&s, 1, 0);
    body["proof"] = json!("12345");
    let (status, message) = post_err(
        &format!("{}/api/v1/sessions/{}/heartbeat", server.url, s.id),
        &body,
    );
    assert_eq!(status, 403, "{message}");
    assert!(message.contains("proof of work"), "{message}");
    body.as_object_mut().unwrap().remove("proof");
    assert_eq!(beat(&server, &s, &body).0, 403);
    assert_eq!(stats(&server)["sessions"], 0);
    assert_eq!(beat(&server, &s, &beat_body(&s, 1, 0)).0, 204);
    assert_eq!(stats(&server)["sessions"], 1);
}

#[test]
fn many_sessions_of_one_viewer_are_one_concurrent_viewer_and_the_extra_are_set_apart() {
    let (_tmp, server) = audience_rig("max_sessions_per_viewer = 2\n");
    let sessions: Vec<Session> = (0..10)
        .map(|_| mint(&server, Some("one-viewer-01")))
        .collect();
    for s in &sessions {
        assert_eq!(beat(&server, s, &beat_body(s, 1, 0)).0, 204);
    }
    let figures = stats(&server);
    assert_eq!(figures["concurrent_viewers"], 1, "{figures}");
    assert_eq!(figures["sessions"], 2, "{figures}");
    assert_eq!(figures["suspicious_sessions"], 8, "{figures}");
    // The dashboard shows them (the admin API returns the same figures).
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(stats(&server)["peak_concurrent_viewers"], 1);
}

#[test]
fn a_hostile_heartbeat_cannot_take_honest_ones_down_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = ingest_clip(tmp.path(), "film", 2, "320x180");
    let config = tmp.path().join("monsoon.toml");
    std::fs::write(
        &config,
        "[audience]\nview_threshold_ms = 2000\nmin_beat_gap_ms = 100\nproof_bits = 8\n",
    )
    .unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let mut server = Server::start_with(&data, &args);
    let honest: Vec<Session> = (0..200).map(|_| mint(&server, None)).collect();
    let hostile = mint(&server, None);
    let url = server.url.clone();
    // Honest beats and hostile ones at once, so that they share the writer's batches.
    let hostile_url = format!("{url}/api/v1/sessions/{}/heartbeat", hostile.id);
    let (statuses, refused) = std::thread::scope(|scope| {
        let attacker = scope.spawn(|| {
            let mut refused = Vec::new();
            for (i, field) in ["play_ms", "rebuffer_ms", "bytes", "seq", "startup_ms"]
                .iter()
                .cycle()
                .take(40)
                .enumerate()
            {
                let mut body = beat_body(&hostile, i as u64 + 1, 0);
                body[*field] = json!(u64::MAX - i as u64);
                refused.push(post_err(&hostile_url, &body));
            }
            refused
        });
        let workers: Vec<_> = honest
            .chunks(50)
            .map(|chunk| {
                let url = url.clone();
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|s| {
                            post(
                                &format!("{url}/api/v1/sessions/{}/heartbeat", s.id),
                                &beat_body(s, 1, 0),
                            )
                            .0
                        })
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        let statuses: Vec<u16> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        (statuses, attacker.join().unwrap())
    });
    assert!(statuses.iter().all(|s| *s == 204), "{statuses:?}");
    for (status, message) in &refused {
        assert_eq!(*status, 400, "{message}");
        assert!(message.contains("limit"), "{message}");
    }
    assert_eq!(stats(&server)["sessions"], 200);

    // Every acknowledged beat survives kill -9: memory never ran ahead of the commit.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let server = Server::start_with(&data, &args);
    assert_eq!(stats(&server)["sessions"], 200);
}

#[test]
fn figures_stay_bounded_whatever_a_player_reports() {
    let (_tmp, server) = audience_rig("");
    let s = mint(&server, None);
    assert_eq!(beat(&server, &s, &beat_body(&s, 1, 0)).0, 204);
    // Each field at the top of its range is accepted; a rebuffer ratio stays a ratio.
    std::thread::sleep(Duration::from_millis(200));
    let mut body = beat_body(&s, 2, 100);
    body["rebuffer_ms"] = json!(monsoon_audience::heartbeat::limits::TIME_MS);
    body["startup_ms"] = json!(monsoon_audience::heartbeat::limits::STARTUP_MS);
    body["height"] = json!(monsoon_audience::heartbeat::limits::HEIGHT);
    assert_eq!(beat(&server, &s, &body).0, 204);
    let figures = stats(&server);
    let ratio = figures["rebuffer_ratio"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&ratio), "{figures}");
    // One more is refused with the field named.
    for (field, value) in [
        (
            "startup_ms",
            json!(monsoon_audience::heartbeat::limits::STARTUP_MS + 1),
        ),
        ("height", json!(u32::MAX)),
        ("bitrate_kbps", json!(u32::MAX)),
    ] {
        let mut body = beat_body(&s, 3, 100);
        body[field] = value;
        let (status, message) = post_err(
            &format!("{}/api/v1/sessions/{}/heartbeat", server.url, s.id),
            &body,
        );
        assert_eq!(status, 400, "{field}: {message}");
        assert!(message.contains(field), "{message}");
    }
    // Series bounds are checked, not overflowed.
    for from in [i64::MIN, i64::MAX, -1] {
        let (status, _, _) = get(
            &server.url,
            &format!("/api/v1/films/film/stats/series?metric=views&from={from}"),
            "",
        );
        assert_eq!(status, 400, "from={from}");
    }
}

#[test]
fn minting_costs_the_server_nothing() {
    let (_tmp, server) = audience_rig("");
    let pid = server.child.id();
    let rss = || -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
            .unwrap()
    };
    // Warm up the allocator and the connection path.
    for _ in 0..200 {
        mint(&server, None);
    }
    let before = rss();
    let started = Instant::now();
    let url = format!("{}/api/v1/films/film/sessions", server.url);
    let agent = ureq::Agent::new_with_defaults();
    for _ in 0..20_000 {
        let r = agent.post(&url).send("").unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    let grown_kb = rss().saturating_sub(before);
    assert_eq!(stats(&server)["sessions"], 0);
    // 20,000 sessions kept would be ~30 MB (1.5 KB each); minting keeps none.
    assert!(
        grown_kb < 8_000,
        "RSS grew {grown_kb} kB over 20,000 mints in {:?}",
        started.elapsed()
    );
}
