//! The cache tier as deployed (docs/DEPLOY.md): three `monsoon serve` nodes started with the
//! shipped `deploy/monsoon-node.toml`, on one PostgreSQL database and one three-node Garage
//! cluster (replication 3), behind nginx running the shipped `deploy/nginx-lb.conf` (only
//! addresses, ports and paths substituted). Every process is real, listens on 127.0.0.1 and is
//! killed when its handle drops, the test failing or not.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::player::{Viewer, beat_at, mint_at};
use common::{MONSOON, Server, free_port, nginx_binary};
use monsoon_engines::garage::Garage;
use monsoon_engines::postgres::Postgres;
use serde_json::{Value, json};

const NGINX_LB: &str = include_str!("../../../deploy/nginx-lb.conf");
const NODE_TOML: &str = include_str!("../../../deploy/monsoon-node.toml");
/// The nodes' addresses in the shipped nginx-lb.conf, in order.
const SHIPPED_NODES: [&str; 3] = ["10.0.0.11:8080", "10.0.0.12:8080", "10.0.0.13:8080"];
/// No socket of the test waits longer than this for an answer.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// `text` with `from` replaced by `to`, which must be there: a shipped file that no longer
/// says what the test substitutes fails here, not later in a puzzling way.
fn substitute(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the shipped file no longer has `{from}`"
    );
    text.replace(from, to)
}

/// nginx in the foreground, stopped with SIGTERM (the master then stops its workers).
struct Nginx {
    child: Child,
    addr: SocketAddr,
    error_log: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// A whole answer read from a `Connection: close` exchange.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// Reads an answer to the end of the connection; an error unless it is whole (a head, then
/// exactly `Content-Length` bytes, or nothing after a 204).
fn read_reply(mut stream: TcpStream) -> Result<Reply, String> {
    let mut bytes = Vec::new();
    stream
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading the answer: {e}"))?;
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(&bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return Err(format!("an incomplete head ({} bytes in all)", bytes.len()));
        }
        Err(e) => return Err(format!("a head that does not parse: {e}")),
    };
    let reply = Reply {
        status: response.code.unwrap_or(0),
        headers: response
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: bytes[head_len..].to_vec(),
    };
    // No body, and no Content-Length, in a 204 (RFC 9110 §8.6, §15.3.5).
    if reply.status == 204 {
        return if reply.body.is_empty() {
            Ok(reply)
        } else {
            Err(format!("a 204 with {} bytes after it", reply.body.len()))
        };
    }
    let length: usize = reply
        .header("content-length")
        .ok_or("no Content-Length")?
        .parse()
        .map_err(|e| format!("Content-Length: {e}"))?;
    if reply.body.len() != length {
        return Err(format!(
            "{} bytes of a {length}-byte body (cut short)",
            reply.body.len()
        ));
    }
    Ok(reply)
}

/// One request on a connection of its own.
fn exchange(addr: SocketAddr, request: &str) -> Result<Reply, String> {
    let mut stream = connect(addr).map_err(|e| format!("connecting to {addr}: {e}"))?;
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("sending the request: {e}"))?;
    read_reply(stream)
}

fn get(addr: SocketAddr, path: &str) -> Result<Reply, String> {
    exchange(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: phim.test\r\nConnection: close\r\n\r\n"),
    )
}

fn post(addr: SocketAddr, path: &str, body: &str) -> Result<Reply, String> {
    exchange(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: phim.test\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// Starts node `i` of the tier listening on an address (`127.0.0.1:0` for any).
type SpawnNode = Box<dyn Fn(usize, &str) -> Server>;

/// The whole tier. Fields drop in order: nginx, then the nodes, then the stores, then the
/// directory.
struct Tier {
    nginx: Nginx,
    /// `None` once killed.
    nodes: Vec<Option<Server>>,
    /// Starts node `i` listening on the given address.
    spawn_node: SpawnNode,
    _garage: Garage,
    _pg: Postgres,
    _tmp: tempfile::TempDir,
}

impl Tier {
    /// PostgreSQL, Garage (3 nodes), a 60 s film ingested into both, three nodes, nginx.
    fn start() -> Tier {
        Self::start_with("")
    }

    /// [`Tier::start`] with `audience` added to the nodes' `[audience]` table.
    fn start_with(audience: &str) -> Tier {
        let tmp = tempfile::tempdir().unwrap();
        let pg = Postgres::start().unwrap();
        let database = pg.create_database("monsoon").unwrap();
        let garage = Garage::start_cluster(3).unwrap();
        let media = |endpoint: &str| {
            format!(
                "s3://{}?endpoint={endpoint}&region={}",
                garage.bucket(),
                garage.region()
            )
        };
        let credentials = [
            ("AWS_ACCESS_KEY_ID", garage.access_key_id().to_owned()),
            (
                "AWS_SECRET_ACCESS_KEY",
                garage.secret_access_key().to_owned(),
            ),
        ];

        // The film: 60 s, so that each rendition has ten 6 s segments.
        let clip = tmp.path().join("film.mp4");
        common::make_clip(&clip, 60, "320x180");
        let out = Command::new(MONSOON)
            .arg("--data")
            .arg(tmp.path().join("cli"))
            .args(common::ingest_args(&clip, "film"))
            .args([
                "--database",
                &database,
                "--media",
                &media(&garage.endpoint()),
            ])
            .envs(credentials.clone())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ingest: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        // The shipped node configuration; the proof of work is made cheap (the test solves
        // one per session), every other setting is the file's. Flags give each node its
        // address and the stores: node i reads through Garage node i.
        let config = tmp.path().join("monsoon-node.toml");
        std::fs::write(
            &config,
            substitute(
                NODE_TOML,
                "proof_bits = 18",
                &format!("proof_bits = 4\n{audience}"),
            ),
        )
        .unwrap();
        let endpoints = garage.endpoints();
        let root = tmp.path().to_path_buf();
        let spawn_node = {
            let media: Vec<String> = endpoints.iter().map(|e| media(e)).collect();
            let database = database.clone();
            let credentials = credentials.clone();
            move |i: usize, listen: &str| {
                let dir = root.join(format!("node{i}"));
                std::fs::create_dir_all(&dir).unwrap();
                let log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("serve.log"))
                    .unwrap();
                let mut command = Command::new(MONSOON);
                command
                    .arg("--data")
                    .arg(&dir)
                    .args(["serve", "--config", config.to_str().unwrap()])
                    .args(["--listen", listen, "--web-dir"])
                    .arg(dir.join("no-web-assets"))
                    .args(["--database", &database, "--media", &media[i]])
                    .envs(credentials.clone())
                    // Read by the test as a monitoring system would.
                    .env("MONSOON_METRICS", "public")
                    .stderr(log);
                Server::spawn(command)
            }
        };
        let nodes = (0..3)
            .map(|i| Some(spawn_node(i, "127.0.0.1:0")))
            .collect::<Vec<_>>();

        // The shipped nginx configuration with this test's addresses, port and cache.
        let dir = tmp.path().join("nginx");
        for sub in ["logs", "tmp", "cache"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let port = free_port();
        let mut lb = substitute(NGINX_LB, "listen 80;", &format!("listen 127.0.0.1:{port};"));
        lb = substitute(
            &lb,
            "/var/cache/nginx/monsoon",
            &dir.join("cache").display().to_string(),
        );
        for (shipped, node) in SHIPPED_NODES.iter().zip(&nodes) {
            let addr = node.as_ref().unwrap().addr().to_string();
            lb = substitute(&lb, shipped, &addr);
        }
        let d = dir.display();
        let conf = dir.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "user root;\nworker_processes 2;\npid {d}/nginx.pid;\nerror_log {d}/logs/error.log;\n\
                 events {{ worker_connections 4096; }}\nhttp {{\n access_log off;\n \
                 client_body_temp_path {d}/tmp;\n proxy_temp_path {d}/tmp;\n fastcgi_temp_path {d}/tmp;\n \
                 uwsgi_temp_path {d}/tmp;\n scgi_temp_path {d}/tmp;\n{lb}\n}}\n"
            ),
        )
        .unwrap();
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let nginx = Nginx {
            child,
            addr,
            error_log: dir.join("logs/error.log"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Tier {
            nginx,
            nodes,
            spawn_node: Box::new(spawn_node),
            _garage: garage,
            _pg: pg,
            _tmp: tmp,
        }
    }

    /// Starts node `i` again, on the address it had (the one nginx knows), after a kill.
    fn restart(&mut self, i: usize, addr: SocketAddr) {
        assert!(self.nodes[i].is_none(), "node {i} is running");
        self.nodes[i] = Some((self.spawn_node)(i, &addr.to_string()));
    }

    fn live_nodes(&self) -> impl Iterator<Item = &Server> {
        self.nodes.iter().flatten()
    }

    /// Segment requests the live nodes have answered (their `/metrics`).
    fn origin_segment_requests(&self) -> u64 {
        self.live_nodes()
            .map(|node| {
                let metrics = get(node.addr(), "/metrics").unwrap();
                assert_eq!(metrics.status, 200);
                String::from_utf8(metrics.body)
                    .unwrap()
                    .lines()
                    .filter(|l| {
                        l.starts_with("monsoon_media_requests_total{")
                            && l.contains("class=\"segment\"")
                    })
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                    .sum::<u64>()
            })
            .sum()
    }

    /// Every init segment and media segment of the film, by its path, from the playlists
    /// (read through nginx).
    fn segment_paths(&self) -> Vec<String> {
        let text = |path: &str| {
            let reply = get(self.nginx.addr, path).unwrap();
            assert_eq!(reply.status, 200, "{path}");
            String::from_utf8(reply.body).unwrap()
        };
        let uris = |playlist: &str| -> Vec<String> {
            let mut uris = Vec::new();
            for line in playlist.lines() {
                if let Some(rest) = line.split("URI=\"").nth(1) {
                    uris.push(rest.split('"').next().unwrap().to_owned());
                } else if !line.starts_with('#') && !line.trim().is_empty() {
                    uris.push(line.trim().to_owned());
                }
            }
            uris
        };
        let mut paths = Vec::new();
        for media_playlist in uris(&text("/media/film/master.m3u8")) {
            let url = format!("/media/film/{media_playlist}");
            let base = &url[..url.rfind('/').unwrap() + 1];
            for uri in uris(&text(&url)) {
                paths.push(format!("{base}{uri}"));
            }
        }
        paths.sort();
        paths.dedup();
        assert!(
            paths.iter().filter(|p| p.ends_with(".m4s")).count() >= 20,
            "{paths:?}"
        );
        paths
    }

    /// Lines of nginx's error log about node `addr`.
    fn nginx_errors_about(&self, addr: SocketAddr) -> Vec<String> {
        std::fs::read_to_string(&self.nginx.error_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&format!("upstream: \"http://{addr}")))
            .map(str::to_owned)
            .collect()
    }
}

#[test]
fn a_cold_segment_stampede_of_1000_requests_reaches_the_origins_once() {
    let tier = Tier::start();
    let path = tier
        .segment_paths()
        .into_iter()
        .find(|p| p.ends_with(".m4s"))
        .unwrap();
    let before = tier.origin_segment_requests();

    // 1,000 connections, then 1,000 requests written one after the other before any answer
    // is read: nginx has them all at once.
    let streams: Vec<TcpStream> = (0..1000)
        .map(|_| connect(tier.nginx.addr).unwrap())
        .collect();
    let request = format!("GET {path} HTTP/1.1\r\nHost: phim.test\r\nConnection: close\r\n\r\n");
    let streams: Vec<TcpStream> = streams
        .into_iter()
        .map(|mut s| {
            s.write_all(request.as_bytes()).unwrap();
            s
        })
        .collect();
    let replies: Vec<Reply> = streams
        .into_iter()
        .map(|s| read_reply(s).unwrap())
        .collect();
    let origin = tier.origin_segment_requests() - before;

    let mut statuses = BTreeMap::new();
    for reply in &replies {
        assert_eq!(reply.status, 200);
        *statuses
            .entry(reply.header("x-cache-status").unwrap_or("-").to_owned())
            .or_insert(0) += 1;
    }
    let direct = get(tier.live_nodes().next().unwrap().addr(), &path).unwrap();
    assert_eq!(direct.status, 200);
    assert!(
        replies.iter().all(|r| r.body == direct.body),
        "an answer through nginx differs from the node's"
    );
    eprintln!(
        "1000 concurrent requests for cold {path} ({} bytes) through nginx: cache statuses \
         {statuses:?}; segment requests reaching the 3 nodes: {origin}",
        direct.body.len()
    );
    assert_eq!(origin, 1, "the origins saw {origin} requests, not one");
    // The counter does count this node's answers (the one above was direct).
    assert_eq!(tier.origin_segment_requests() - before, 2);
}

/// What was asked (a path, or a heartbeat's seq), whether the node was already killed when it
/// was sent, and the answer or what went wrong.
type Answered<T> = (String, bool, Result<T, String>);

/// A session minted through nginx, with its proof of work.
struct Session {
    id: String,
    token: Value,
    proof: String,
}

/// Heartbeat `seq` of `session` through nginx; its status and `X-Monsoon-Beat`.
fn beat(addr: SocketAddr, session: &Session, seq: u64) -> Result<(u16, String), String> {
    let body = json!({
        "token": session.token, "proof": session.proof,
        "seq": seq, "state": "playing", "play_ms": 0, "rebuffer_ms": 0, "rebuffer_count": 0,
        "startup_ms": 600, "seek_ms": 0, "playhead_ms": 0, "height": 180, "bitrate_kbps": 110,
        "bytes": 0, "dropped_frames": 0, "fatal_error": false
    });
    let reply = post(
        addr,
        &format!("/api/v1/sessions/{}/heartbeat", session.id),
        &body.to_string(),
    )?;
    Ok((
        reply.status,
        reply.header("x-monsoon-beat").unwrap_or("-").to_owned(),
    ))
}

#[test]
fn killing_a_node_mid_run_fails_no_segment_request_or_heartbeat_through_nginx() {
    let mut tier = Tier::start();
    let paths = tier.segment_paths();
    let nginx = tier.nginx.addr;

    // Sessions minted through nginx (on whichever node), their beats balanced round robin over
    // the nodes like every other request.
    let sessions: Vec<Session> = (0..24)
        .map(|_| {
            let reply = post(nginx, "/api/v1/films/film/sessions", "").unwrap();
            assert_eq!(
                reply.status,
                201,
                "{}",
                String::from_utf8_lossy(&reply.body)
            );
            let minted: Value = serde_json::from_slice(&reply.body).unwrap();
            let id = minted["session_id"].as_str().unwrap().to_owned();
            let bits = minted["proof_bits"].as_u64().unwrap() as u32;
            Session {
                proof: monsoon_audience::proof::solve(&id, bits),
                token: minted["token"].clone(),
                id,
            }
        })
        .collect();

    // Each object asked for three times in a row, objects one after the other: the first ask
    // of each is a miss that reaches a node, so misses go on after the kill.
    let jobs: Vec<&str> = paths
        .iter()
        .flat_map(|p| [p.as_str(); 3])
        .collect::<Vec<_>>();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let killed = AtomicBool::new(false);
    let results: Mutex<Vec<Answered<Reply>>> = Mutex::new(Vec::new());
    let beats: Mutex<Vec<Answered<(u16, String)>>> = Mutex::new(Vec::new());
    let victim = tier.nodes[1].as_ref().unwrap().addr();
    let beats_after_kill = AtomicUsize::new(0);
    let run = Instant::now();

    std::thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(path) = jobs.get(i) else { break };
                    let after = killed.load(Ordering::SeqCst);
                    let reply = get(nginx, path);
                    results
                        .lock()
                        .unwrap()
                        .push((path.to_string(), after, reply));
                    done.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        // Heartbeats, a round of every session every 100 ms, until the segments are done
        // and two rounds have been sent wholly after the kill.
        scope.spawn(|| {
            let mut seq = 0;
            loop {
                seq += 1;
                let after = killed.load(Ordering::SeqCst);
                for session in &sessions {
                    let answer = beat(nginx, session, seq);
                    beats.lock().unwrap().push((
                        format!("seq {seq} of {}", session.id),
                        after,
                        answer,
                    ));
                }
                if after {
                    beats_after_kill.fetch_add(1, Ordering::SeqCst);
                }
                if done.load(Ordering::SeqCst) == jobs.len()
                    && beats_after_kill.load(Ordering::SeqCst) >= 2
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        // The kill of node 1, once a third of the requests are answered.
        let deadline = Instant::now() + Duration::from_secs(120);
        while done.load(Ordering::SeqCst) < jobs.len() / 3 {
            assert!(Instant::now() < deadline, "the run did not progress");
            std::thread::sleep(Duration::from_millis(1));
        }
        // Frozen first (SIGSTOP) for half a second, so that requests are in flight on it —
        // sent, unanswered — when it dies, as in a crash under load; then SIGKILL.
        let mut node = tier.nodes[1].take().unwrap();
        let stopped = Command::new("kill")
            .args(["-STOP", &node.child.id().to_string()])
            .status()
            .unwrap();
        assert!(stopped.success());
        std::thread::sleep(Duration::from_millis(500));
        node.child.kill().unwrap();
        node.child.wait().unwrap();
        killed.store(true, Ordering::SeqCst);
    });

    // Every answer whole, 200, and the bytes a surviving node serves.
    let survivor = tier.nodes[0].as_ref().unwrap().addr();
    let expected: BTreeMap<&str, Vec<u8>> = paths
        .iter()
        .map(|p| (p.as_str(), get(survivor, p).unwrap().body))
        .collect();
    let results = results.into_inner().unwrap();
    let mut failures = Vec::new();
    let (mut after_kill, mut misses_after_kill) = (0, 0);
    for (path, after, reply) in &results {
        match reply {
            Ok(r) if r.status == 200 && r.body == expected[path.as_str()] => {
                if *after {
                    after_kill += 1;
                    if r.header("x-cache-status") == Some("MISS") {
                        misses_after_kill += 1;
                    }
                }
            }
            Ok(r) => failures.push(format!("{path}: {} or other bytes", r.status)),
            Err(e) => failures.push(format!("{path}: {e}")),
        }
    }
    let run = run.elapsed();
    let beats = beats.into_inner().unwrap();
    // One audience over the nodes: a session's beats, wherever they land (and after its node
    // died), are accepted at most once per minimum gap between beats (5 s by default), as on
    // one node. Nodes that each kept their own sessions accepted a moved session's beat again.
    let mut accepted: BTreeMap<&str, u64> = BTreeMap::new();
    for (beat, _, answer) in &beats {
        if matches!(answer, Ok((204, outcome)) if outcome == "accepted") {
            let session = beat.rsplit(' ').next().unwrap_or_default();
            *accepted.entry(session).or_insert(0) += 1;
        }
    }
    let most = 1 + run.as_millis() as u64 / 5_000;
    assert_eq!(
        accepted.len(),
        sessions.len(),
        "a session was never accepted: {accepted:?}"
    );
    assert!(
        accepted.values().all(|n| *n <= most),
        "a session accepted more than {most} times in {run:?}: {accepted:?}"
    );
    let beat_failures: Vec<String> = beats
        .iter()
        .filter(|(_, _, answer)| !matches!(answer, Ok((204, _))))
        .map(|(beat, _, answer)| format!("{beat}: {answer:?}"))
        .collect();
    let mut outcomes = BTreeMap::new();
    for (_, _, answer) in &beats {
        if let Ok((_, outcome)) = answer {
            *outcomes.entry(outcome.clone()).or_insert(0) += 1;
        }
    }
    let tried_dead = tier.nginx_errors_about(victim);
    let media_retried = tried_dead.iter().filter(|l| l.contains("/media/")).count();
    let beats_retried = tried_dead
        .iter()
        .filter(|l| l.contains("/heartbeat"))
        .count();
    // Sent to the node and unanswered when it died: only `non_idempotent` lets nginx send
    // such a POST again.
    let beats_in_flight = tried_dead
        .iter()
        .filter(|l| l.contains("/heartbeat") && l.contains("while reading response header"))
        .count();
    eprintln!(
        "node {victim} frozen then killed with SIGKILL after {} of {} segment requests: {} failed; {after_kill} \
         answered after the kill, {misses_after_kill} of them misses served by a node; {} \
         heartbeats ({:?}), {} failed; nginx's attempts on the dead node, each retried on \
         another: {media_retried} media, {beats_retried} heartbeats ({beats_in_flight} of them \
         sent and unanswered when it died)",
        jobs.len() / 3,
        results.len(),
        failures.len(),
        beats.len(),
        outcomes,
        beat_failures.len(),
    );
    assert_eq!(results.len(), jobs.len());
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(beat_failures.is_empty(), "{beat_failures:#?}");
    // The run did reach the nodes after the kill, and nginx did try the dead one.
    assert!(misses_after_kill > 0, "no miss after the kill");
    assert!(
        media_retried > 0 && beats_in_flight > 0,
        "nginx never tried the dead node ({media_retried} media, {beats_in_flight} heartbeats in \
         flight): \
         {tried_dead:#?}"
    );
}

#[test]
fn make_cluster_check_serves_the_film_through_nginx_and_stops_everything() {
    // The script `make cluster` runs, in its --check mode, with the binary under test (no
    // build inside the test): PostgreSQL, three Garage nodes, three serve nodes and nginx from
    // the shipped files, a 12 s film ingested, the master playlist and a segment fetched
    // through nginx, then everything stopped.
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = Command::new("bash")
        .arg(format!("{root}/scripts/cluster.sh"))
        .arg("--check")
        .env("MONSOON_BIN", MONSOON)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("cluster check ok: master playlist and "),
        "{stdout}\n{stderr}"
    );
    // Every process it started was waited for before its directory was removed.
    let work = stdout
        .lines()
        .find_map(|l| l.strip_prefix("cluster files: "))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no `cluster files:` line: {stdout}"));
    assert!(!std::path::Path::new(work).exists(), "{work} left behind");
}

/// Viewers with a known ground truth play through nginx, which balances every request round
/// robin over the three nodes (the shipped configuration). One node is killed with `kill -9`
/// mid-run and restarted later on its address. Views, playing time, concurrency and the peak
/// equal the ground truth, read through nginx and from every node.
#[test]
fn viewers_through_nginx_count_exactly_across_a_kill_9_and_a_restart() {
    let mut tier = Tier::start_with(
        "view_threshold_ms = 2000\nmin_beat_gap_ms = 100\nliveness_ms = 5000\nsample_every_ms = 200\n",
    );
    let lb = format!("http://{}", tier.nginx.addr);
    let victim = tier.nodes[1].as_ref().unwrap().addr();

    let mut leavers: Vec<Viewer> = (0..10).map(|_| mint_at(&lb, None)).collect();
    let mut pausers: Vec<Viewer> = (0..10).map(|_| mint_at(&lb, None)).collect();
    let mut players: Vec<Viewer> = (0..10).map(|_| mint_at(&lb, None)).collect();
    let mut twice = [
        mint_at(&lb, Some("same-viewer-01")),
        mint_at(&lb, Some("same-viewer-01")),
    ];
    for round in 0..8 {
        if round == 3 {
            let mut node = tier.nodes[1].take().unwrap();
            node.child.kill().unwrap();
            node.child.wait().unwrap();
        }
        if round == 6 {
            tier.restart(1, victim);
        }
        let played = if round == 0 { 0 } else { 500 };
        for v in leavers
            .iter_mut()
            .chain(players.iter_mut())
            .chain(twice.iter_mut())
        {
            assert_eq!(beat_at(&lb, v, "playing", played), 204, "round {round}");
        }
        for v in &mut pausers {
            let (state, played) = if round < 2 {
                ("playing", played)
            } else {
                ("paused", 0)
            };
            assert_eq!(beat_at(&lb, v, state, played), 204, "round {round}");
        }
        std::thread::sleep(Duration::from_millis(520));
    }
    for v in &mut leavers {
        assert_eq!(beat_at(&lb, v, "ended", 0), 204);
    }
    // Ground truth: 3.5 s played by each of the 10 leavers, the 10 players and the 2 sessions
    // of the viewer who watched twice (one view for that viewer), 0.5 s by each pauser.
    let views = 10 + 10 + 1;
    let playing_ms: u64 = [&leavers[..], &pausers[..], &players[..], &twice[..]]
        .iter()
        .flat_map(|g| g.iter())
        .map(|v| v.acked_play_ms)
        .sum();
    assert_eq!(playing_ms, 22 * 3_500 + 10 * 500);
    // A sample on every node after the last beat.
    std::thread::sleep(Duration::from_millis(700));
    let through_nginx = |path: &str| -> Value {
        let reply = get(tier.nginx.addr, path).unwrap();
        assert_eq!(reply.status, 200);
        serde_json::from_slice(&reply.body).unwrap()
    };
    let mut figures = vec![(
        "nginx".to_owned(),
        through_nginx("/api/v1/films/film/stats"),
    )];
    for node in tier.live_nodes() {
        figures.push((node.url.clone(), node.get_json("/api/v1/films/film/stats")));
    }
    assert_eq!(figures.len(), 4, "a node is missing");
    for (from, stats) in &figures {
        assert_eq!(stats["views"], views, "{from}: {stats}");
        assert_eq!(
            stats["playing_time_s"].as_f64().unwrap(),
            playing_ms as f64 / 1000.0,
            "{from}: {stats}"
        );
        assert_eq!(
            stats["concurrent_viewers"], 11,
            "{from}: players, and one viewer in two sessions: {stats}"
        );
        assert_eq!(stats["peak_concurrent_viewers"], 31, "{from}: {stats}");
        assert_eq!(stats["suspicious_sessions"], 0, "{from}: {stats}");
    }
}
