//! The HTTP hardening of issue "Hardening", against the real `monsoon serve`: deadlines for
//! slow request heads and bodies, the per-address connection cap, running out of descriptors,
//! the operator's sign-in (rationed guesses, `Secure` cookie), page security headers, the
//! `Host` rule on both HTTP paths, links built from configuration, the `Bearer` scheme, and who
//! may read `/metrics`. docs/SECURITY.md says what each defends.
//!
//! Times are asserted only as bounds a few seconds wide around the configured deadlines, which
//! is what these promises are about.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{MONSOON, Server, ingest_clip, ingest_with_meta, make_clip, monsoon, version_dir};
use sha2::Digest as _;

const TOKEN: &str = "security-test-admin-token";

/// Writes `text` as `dir/name` and starts `monsoon serve --config` on it, with nothing from
/// the test harness's defaults (so `/metrics` has its real default) and the log in
/// `dir/name.log`.
fn start(data: &Path, dir: &Path, name: &str, text: &str) -> Server {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(&config, text).unwrap();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let mut command = Command::new(MONSOON);
    command
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0", "--access-log", "false"])
        .arg("--config")
        .arg(&config)
        .env_remove("MONSOON_METRICS")
        .env("RUST_LOG", "info")
        .stderr(log);
    Server::spawn(command)
}

/// `[admin]` with the token's hash, as `monsoon admin-token` prints it, and `extra` keys.
fn admin_table(data: &Path, extra: &str) -> String {
    let out = monsoon(data, &["admin-token", "--token", TOKEN]);
    assert!(out.status.success());
    format!("{}{extra}\n", String::from_utf8_lossy(&out.stdout))
}

fn addr(server: &Server) -> SocketAddr {
    server.url.trim_start_matches("http://").parse().unwrap()
}

/// A connection to `to` from the loopback address `from` (127.0.0.0/8 is all loopback).
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    socket.connect(&to.into()).unwrap();
    socket.into()
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| v.as_str())
    }
}

fn parse(bytes: &[u8]) -> Option<Reply> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(len) = response.parse(bytes).ok()? else {
        return None;
    };
    Some(Reply {
        status: response.code?,
        headers: response
            .headers
            .iter()
            .map(|h| {
                let value = String::from_utf8_lossy(h.value).into_owned();
                (h.name.to_owned(), value)
            })
            .collect(),
        body: String::from_utf8_lossy(&bytes[len..]).into_owned(),
    })
}

/// Sends `request` on `stream` and reads the response until the server closes.
fn exchange_on(mut stream: TcpStream, request: &str) -> Reply {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    parse(&bytes).unwrap_or_else(|| {
        panic!(
            "no complete response to {request:?}: {:?}",
            String::from_utf8_lossy(&bytes)
        )
    })
}

fn exchange(to: SocketAddr, request: &str) -> Reply {
    exchange_on(TcpStream::connect(to).unwrap(), request)
}

/// `GET path` with `extra` header lines, from `from`.
fn get_from(from: Ipv4Addr, to: SocketAddr, path: &str, extra: &str) -> Reply {
    exchange_on(
        connect_from(from, to),
        &format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n"),
    )
}

fn get(to: SocketAddr, path: &str, extra: &str) -> Reply {
    get_from(Ipv4Addr::LOCALHOST, to, path, extra)
}

/// Signs in with `token` from `from`, with the sign-in form's CSRF pair; the time the answer
/// took.
fn sign_in(from: Ipv4Addr, to: SocketAddr, token: &str, extra: &str) -> (Reply, Duration) {
    let body = format!("_csrf=pair&token={token}");
    let extra = format!("Cookie: monsoon_login=pair\r\n{extra}");
    let started = Instant::now();
    let reply = exchange_on(
        connect_from(from, to),
        &format!(
            "POST /admin/login HTTP/1.1\r\nHost: t\r\n{extra}Content-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    (reply, started.elapsed())
}

/// Reads from a clone of `stream` in a thread until the server closes (or resets) the
/// connection; the join handle gives the bytes received and when the end came.
fn watch_close(stream: &TcpStream) -> std::thread::JoinHandle<(Vec<u8>, Option<Instant>)> {
    let mut reader = stream.try_clone().unwrap();
    reader
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return (bytes, Some(Instant::now())),
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return (bytes, None);
                }
                Err(_) => return (bytes, Some(Instant::now())),
            }
        }
    })
}

/// Writes `bytes` one at a time, `every` apart, until they run out, the peer is gone or
/// `until` passes.
fn trickle(stream: &mut TcpStream, bytes: &[u8], every: Duration, until: Instant) {
    for b in bytes {
        if Instant::now() >= until || stream.write_all(&[*b]).is_err() {
            return;
        }
        std::thread::sleep(every);
    }
}

#[test]
fn a_trickled_request_body_is_cut_at_the_body_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // One byte a second keeps the connection's progress timer (2 s) happy forever: only a
    // total deadline ends it.
    let server = start(
        &data,
        dir.path(),
        "slow-body",
        "[serve]\nheader_timeout_s = 2\nbody_timeout_s = 3\n",
    );
    let mut stream = TcpStream::connect(addr(&server)).unwrap();
    stream
        .write_all(
            b"POST /api/v1/films/nope/sessions HTTP/1.1\r\nHost: t\r\n\
              Content-Type: application/json\r\nContent-Length: 40\r\n\r\n",
        )
        .unwrap();
    let head_sent = Instant::now();
    let closed = watch_close(&stream);
    trickle(
        &mut stream,
        &[b' '; 40],
        Duration::from_secs(1),
        head_sent + Duration::from_secs(12),
    );
    let (bytes, end) = closed.join().unwrap();
    let end = end
        .expect("the trickled body kept its connection open")
        .duration_since(head_sent);
    let reply = parse(&bytes).expect("a response before the close");
    assert_eq!(reply.status, 408, "{reply:?}");
    assert_eq!(reply.header("connection"), "close");
    assert!(reply.body.contains("body_timeout_s"), "{}", reply.body);
    assert!(
        end >= Duration::from_millis(2500) && end < Duration::from_secs(6),
        "cut after {end:?}, not at the 3 s body deadline"
    );
}

#[test]
fn a_head_trickled_across_the_fast_path_handoff_is_cut_at_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(
        &data,
        dir.path(),
        "slow-head",
        "[serve]\nheader_timeout_s = 3\n",
    );
    let mut stream = TcpStream::connect(addr(&server)).unwrap();
    // 32 header lines: as many as the fast path parses. It waits for more of the head...
    let mut head = String::from("GET /healthz HTTP/1.1\r\nHost: t\r\n");
    for i in 0..31 {
        head.push_str(&format!("X-Pad-{i}: 1\r\n"));
    }
    stream.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let closed = watch_close(&stream);
    std::thread::sleep(Duration::from_secs(2));
    // ...until a 33rd header line arrives, 2 s in: the head goes to hyper, which allows 100
    // headers and would start its own 3 s header timer here. The rest trickles in, never
    // ending.
    stream.write_all(b"X-Late: 1\r\n").unwrap();
    trickle(
        &mut stream,
        b"X-Trickle: 0123456789abcdefghijklmnopqrstuvwxyz",
        Duration::from_millis(500),
        started + Duration::from_secs(9),
    );
    let (_, end) = closed.join().unwrap();
    let end = end
        .expect("the trickled head kept its connection open")
        .duration_since(started);
    assert!(
        end >= Duration::from_millis(2500) && end < Duration::from_millis(4200),
        "the head was cut after {end:?}, not at header_timeout (3 s) from its start"
    );
}

#[test]
fn each_address_may_hold_only_so_many_connections() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(
        &data,
        dir.path(),
        "cap",
        "[serve]\nmax_connections_per_addr = 4\nheader_timeout_s = 30\nmetrics = \"public\"\n",
    );
    let to = addr(&server);
    let one = Ipv4Addr::new(127, 0, 0, 1);
    // Four keep-alive connections from 127.0.0.1, each proven served (so each is counted).
    let mut held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut stream = connect_from(one, to);
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.ends_with(b"ok\n") {
                let n = stream.read(&mut chunk).unwrap();
                assert!(n > 0, "a held connection closed");
                buf.extend_from_slice(&chunk[..n]);
            }
            stream
        })
        .collect();

    // The fifth from the same address is closed without an answer.
    let mut fifth = connect_from(one, to);
    fifth
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = fifth.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let mut got = Vec::new();
    let _ = fifth.read_to_end(&mut got);
    assert!(
        got.is_empty(),
        "over the cap, yet answered: {:?}",
        String::from_utf8_lossy(&got)
    );

    // Another address is served meanwhile.
    let other = get_from(Ipv4Addr::new(127, 0, 0, 2), to, "/healthz", "");
    assert_eq!(other.status, 200);

    // The cap counts open connections: once one closes, the address is served again.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut stream = connect_from(one, to);
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        if let Some(reply) = parse(&bytes) {
            assert_eq!(reply.status, 200);
            let refused = reply
                .body
                .lines()
                .find_map(|l| l.strip_prefix("monsoon_connections_refused_total "))
                .and_then(|n| n.trim().parse::<u64>().ok());
            assert!(refused.is_some_and(|n| n >= 1), "{}", reply.body);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "127.0.0.1 is still refused after a close"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn out_of_descriptors_the_server_waits_quietly_and_recovers_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("fds.toml");
    std::fs::write(&config, "[serve]\nheader_timeout_s = 60\n").unwrap();
    let log_path = dir.path().join("fds.log");
    let mut command = Command::new("bash");
    // The soft limit only: an unprivileged process may lower it, and the server inherits it.
    command
        .args([
            "-c",
            r#"ulimit -Sn 256 && exec "$0" "$@""#,
            MONSOON,
            "--data",
        ])
        .arg(&data)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--access-log",
            "false",
            "--config",
        ])
        .arg(&config)
        .env_remove("MONSOON_METRICS")
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&log_path).unwrap());
    let server = Server::spawn(command);
    let to = addr(&server);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.child.id())).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.split_whitespace().nth(3) == Some("256")),
        "the server does not run with 256 descriptors: {limits}"
    );
    assert_eq!(get(to, "/healthz", "").status, 200);
    let lines_before = std::fs::read_to_string(&log_path).unwrap().lines().count();

    // 400 idle connections: more than the server has descriptors for.
    let idle: Vec<TcpStream> = (0..400).map(|_| TcpStream::connect(to).unwrap()).collect();
    std::thread::sleep(Duration::from_secs(1));
    let mut probe = TcpStream::connect(to).unwrap();
    probe
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let starved = matches!(probe.read_to_end(&mut got), Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut));
    assert!(
        starved,
        "descriptors were not exhausted: the test proves nothing"
    );
    // Stay out of descriptors a while: a loop logging each failed accept would write
    // dozens of lines a second.
    std::thread::sleep(Duration::from_secs(3));
    drop(idle);
    drop(probe);

    let closed = Instant::now();
    loop {
        let answered = TcpStream::connect(to).ok().and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .ok()?;
            let mut bytes = Vec::new();
            let _ = s.read_to_end(&mut bytes);
            parse(&bytes)
        });
        if answered.is_some_and(|r| r.status == 200) {
            break;
        }
        assert!(
            closed.elapsed() < Duration::from_secs(3),
            "/healthz still unanswered {:?} after the idle connections closed",
            closed.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(&log_path).unwrap();
    let new: Vec<&str> = log.lines().skip(lines_before).collect();
    let accept_lines = new.iter().filter(|l| l.contains("accept")).count();
    assert!(
        (1..=2).contains(&accept_lines) && new.len() <= 5,
        "{accept_lines} lines about accepting, {} in all, in 4 s out of descriptors:\n{}",
        new.len(),
        new.join("\n")
    );
}

#[test]
fn sign_in_guesses_are_rationed_per_address_slow_and_never_queued() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let admin = admin_table(&data, "sign_in_attempts_per_minute = 3");
    let server = start(&data, dir.path(), "sign-in", &admin);
    let to = addr(&server);
    let ip = |last: u8| Ipv4Addr::new(127, 0, 0, last);

    // A wrong token is answered slowly (a constant one-second delay)...
    let (wrong, took) = sign_in(ip(1), to, "wrong-token", "");
    assert_eq!(wrong.status, 401);
    assert!(
        took >= Duration::from_secs(1),
        "a wrong token was answered in {took:?}"
    );

    // ...and the delay holds no check slot: with guesses from four addresses waiting out
    // their delay, the operator signs in at once (were slots held, or guesses queued, the
    // operator would get in only after them).
    let barrier = Arc::new(Barrier::new(4));
    let guesses: Vec<_> = (0..4)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let (reply, _) = sign_in(ip(20 + i), to, "another-wrong-token", "");
                (reply.status, Instant::now())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    let mut operator = None;
    for _ in 0..100 {
        let (reply, _) = sign_in(ip(30), to, TOKEN, "");
        if reply.status == 303 {
            operator = Some(Instant::now());
            break;
        }
        // Refused while every slot is busy checking: never queued.
        assert_eq!(reply.status, 429, "{reply:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let operator = operator.expect("the operator never got in");
    let answered: Vec<(u16, Instant)> = guesses.into_iter().map(|g| g.join().unwrap()).collect();
    let slow_guesses: Vec<Instant> = answered
        .iter()
        .filter(|(status, _)| *status == 401)
        .map(|(_, at)| *at)
        .collect();
    assert!(!slow_guesses.is_empty(), "{answered:?}");
    assert!(
        slow_guesses.iter().all(|at| operator < *at),
        "the operator got in only after the guesses were answered"
    );

    // Three checks a minute per address: the fourth is refused, with when to come back.
    for _ in 0..2 {
        assert_eq!(sign_in(ip(1), to, "wrong-token", "").0.status, 401);
    }
    let (limited, _) = sign_in(ip(1), to, "wrong-token", "");
    assert_eq!(limited.status, 429);
    let retry: u64 = limited.header("retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After: {retry}");
    // Another address still gets its own checks.
    assert_eq!(sign_in(ip(2), to, "wrong-token", "").0.status, 401);

    // Eight guesses at once, from eight addresses: the checks beyond the running ones are
    // refused at once (429), not queued.
    let barrier = Arc::new(Barrier::new(8));
    let guesses: Vec<_> = (0..8)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                sign_in(ip(100 + i), to, "wrong-token", "").0
            })
        })
        .collect();
    let replies: Vec<Reply> = guesses.into_iter().map(|g| g.join().unwrap()).collect();
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert!(
        replies.iter().all(|r| matches!(r.status, 401 | 429)),
        "{replies:?}"
    );
    assert!(
        !refused.is_empty(),
        "eight simultaneous guesses were all checked: a queue"
    );
    assert!(
        refused.iter().all(|r| r.header("retry-after") == "1"),
        "{refused:?}"
    );
}

#[test]
fn the_session_cookie_is_secure_when_the_client_came_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let admin = admin_table(&data, "sign_in_attempts_per_minute = 1");
    let cookie = |reply: &Reply| reply.header("set-cookie").to_owned();
    let secure = |c: &str| c.split(';').any(|a| a.trim() == "Secure");

    // A site published as https:// is reached over HTTPS, whatever the hop to Monsoon.
    let https_site = start(
        &data,
        dir.path(),
        "https-site",
        &format!("[serve]\npublic_url = \"https://phim.example.vn\"\n{admin}"),
    );
    let to = addr(&https_site);
    let (signed_in, _) = sign_in(Ipv4Addr::LOCALHOST, to, TOKEN, "");
    assert_eq!(signed_in.status, 303);
    let set = cookie(&signed_in);
    assert!(
        secure(&set) && set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let logout = exchange(
        to,
        "POST /admin/logout HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert!(secure(&cookie(&logout)), "{}", cookie(&logout));
    drop(https_site);

    // Without it, a trusted proxy's X-Forwarded-Proto says; anyone else's is ignored.
    let proxied = start(
        &data,
        dir.path(),
        "proxied",
        &format!("[serve]\ntrusted_proxies = [\"127.0.0.1\"]\n{admin}"),
    );
    let to = addr(&proxied);
    let https = "X-Forwarded-Proto: https\r\n";
    let proxy = Ipv4Addr::new(127, 0, 0, 1);
    let stranger = Ipv4Addr::new(127, 0, 0, 2);
    let (via_proxy, _) = sign_in(proxy, to, TOKEN, https);
    assert!(secure(&cookie(&via_proxy)), "{}", cookie(&via_proxy));
    let (forged, _) = sign_in(stranger, to, TOKEN, https);
    assert_eq!(forged.status, 303);
    assert!(!secure(&cookie(&forged)), "{}", cookie(&forged));
    let (plain, _) = sign_in(proxy, to, TOKEN, "");
    assert!(!secure(&cookie(&plain)), "{}", cookie(&plain));

    // The proxy's X-Forwarded-For names the client the sign-in limit (1 a minute) counts;
    // a stranger's is its own claim, and its own address counts.
    let from = |client: &str| format!("X-Forwarded-For: {client}\r\n");
    assert_eq!(
        sign_in(proxy, to, "wrong", &from("203.0.113.1")).0.status,
        401
    );
    assert_eq!(
        sign_in(proxy, to, "wrong", &from("203.0.113.1")).0.status,
        429
    );
    assert_eq!(
        sign_in(proxy, to, "wrong", &from("203.0.113.2")).0.status,
        401
    );
    assert_eq!(
        sign_in(stranger, to, "wrong", &from("203.0.113.3"))
            .0
            .status,
        401
    );
    assert_eq!(
        sign_in(stranger, to, "wrong", &from("203.0.113.4"))
            .0
            .status,
        429
    );
}

/// A released film, one premiering in two days, and the data directory.
fn two_films(dir: &Path) -> PathBuf {
    let data = ingest_clip(dir, "released", 4, "320x180");
    let clip = dir.join("soon.mp4");
    make_clip(&clip, 4, "320x180");
    let at = chrono::Utc::now() + chrono::Duration::days(2);
    ingest_with_meta(
        &data,
        &clip,
        "soon",
        &format!(
            "title = {{ vi = \"Sắp chiếu\", en = \"Coming soon\" }}\nfree_release = \"{}\"\n",
            at.to_rfc3339()
        ),
    );
    data
}

/// The text between `open` and the next `close`, for every occurrence.
fn between<'a>(text: &'a str, open: &str, close: &str) -> Vec<&'a str> {
    text.split(open)
        .skip(1)
        .filter_map(|rest| rest.split(close).next())
        .collect()
}

#[test]
fn pages_carry_a_strict_policy_their_own_markup_satisfies() {
    let dir = tempfile::tempdir().unwrap();
    let data = two_films(dir.path());
    let server = start(&data, dir.path(), "csp", &admin_table(&data, ""));
    let to = addr(&server);
    let (signed_in, _) = sign_in(Ipv4Addr::LOCALHOST, to, TOKEN, "");
    let session = signed_in
        .header("set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let pages = [
        ("/", String::new()),
        ("/films/released", String::new()),
        ("/films/soon", String::new()),
        ("/watch/released", String::new()),
        ("/admin/login", String::new()),
        ("/admin", format!("Cookie: {session}\r\n")),
    ];
    let mut inline_scripts = 0;
    for (path, extra) in &pages {
        let page = get(to, path, extra);
        assert_eq!(page.status, 200, "{path}");
        let csp = page.header("content-security-policy");
        for directive in [
            "default-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                csp.split(';').any(|d| d.trim() == directive),
                "{path}: no `{directive}` in {csp:?}"
            );
        }
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert_eq!(page.header("x-frame-options"), "DENY", "{path}");
        assert_eq!(page.header("referrer-policy"), "same-origin", "{path}");

        // What the policy would block is not in the markup: inline scripts other than data
        // blocks must be named by hash, and nothing inline may style or handle events.
        let script_src = csp
            .split(';')
            .find(|d| d.trim().starts_with("script-src"))
            .unwrap();
        for script in page.body.split("<script").skip(1) {
            let (attributes, rest) = script.split_once('>').unwrap();
            let data_block = attributes.contains("type=\"application/json\"")
                || attributes.contains("type=\"application/ld+json\"");
            if attributes.contains("src=") {
                let src = between(attributes, "src=\"", "\"")[0];
                assert!(
                    src.starts_with('/') && !src.starts_with("//"),
                    "{path}: {src}"
                );
            } else if !data_block {
                let code = rest.split("</script>").next().unwrap();
                let hash = base64::engine::general_purpose::STANDARD
                    .encode(sha2::Sha256::digest(code.as_bytes()));
                assert!(
                    script_src.contains(&format!("'sha256-{hash}'")),
                    "{path}: an inline script the policy would block"
                );
                inline_scripts += 1;
            }
        }
        for attribute in [
            " style=\"",
            " onclick=",
            " onload=",
            " onerror=",
            "javascript:",
        ] {
            assert!(
                !page.body.contains(attribute),
                "{path}: `{attribute}` in the markup"
            );
        }
        for url in between(&page.body, "href=\"", "\"")
            .into_iter()
            .chain(between(&page.body, "src=\"", "\""))
        {
            let own = url.starts_with(&format!("{}/", server.url));
            assert!(
                own || (url.starts_with('/') && !url.starts_with("//")) || url.starts_with('#'),
                "{path}: {url} is not of this site"
            );
        }
    }
    assert_eq!(
        inline_scripts, 2,
        "the premiere countdown and the watch page's start are the inline scripts"
    );
}

#[test]
fn a_missing_repeated_or_invalid_host_is_answered_400_on_both_paths() {
    let dir = tempfile::tempdir().unwrap();
    let data = ingest_clip(dir.path(), "film", 4, "320x180");
    let version = version_dir(&data, "film");
    let segment = format!(
        "/media/film/{}/v180/init.mp4",
        version.file_name().unwrap().to_string_lossy()
    );
    let fast = start(&data, dir.path(), "fast", "[serve]\nmetrics = \"public\"\n");
    let router = start(
        &data,
        dir.path(),
        "router",
        "[serve]\nfast_path = false\nmetrics = \"public\"\n",
    );
    for (name, server) in [("fast path", &fast), ("router", &router)] {
        let to = addr(server);
        for path in [segment.as_str(), "/healthz", "/"] {
            for (case, head) in [
                ("no Host", String::new()),
                ("two Hosts", "Host: a.example\r\nHost: b.example\r\n".into()),
                ("an empty Host", "Host: \r\n".into()),
                ("a Host with a path", "Host: a.example/x\r\n".into()),
                ("a Host with two ports", "Host: a.example:80:80\r\n".into()),
                ("a Host with user info", "Host: u@a.example\r\n".into()),
            ] {
                let reply = exchange(
                    to,
                    &format!("GET {path} HTTP/1.1\r\n{head}Connection: close\r\n\r\n"),
                );
                assert_eq!(reply.status, 400, "{name}: {case} on {path}: {reply:?}");
                assert!(reply.body.contains("RFC 9"), "{}", reply.body);
            }
            let ok = exchange(
                to,
                &format!("GET {path} HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n"),
            );
            assert_eq!(ok.status, 200, "{name}: {path}");
            // HTTP/1.0 may leave the Host out.
            let old = exchange(to, &format!("GET {path} HTTP/1.0\r\n\r\n"));
            assert_eq!(old.status, 200, "{name}: HTTP/1.0 {path}");
        }
    }
    // The fast path answered the valid media requests itself (the 400s are the router's, the
    // same bytes either way).
    let metrics = get(addr(&fast), "/metrics", "").body;
    assert!(
        metrics.contains("monsoon_fast_path_requests_total 1\n"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("fast_path"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn links_in_pages_come_from_configuration_never_from_the_host_header() {
    let dir = tempfile::tempdir().unwrap();
    let data = two_films(dir.path());
    // A client (or a cache's key) naming another site, and claiming HTTPS.
    let evil = |to: SocketAddr, path: &str| {
        exchange(
            to,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: evil.example\r\nX-Forwarded-Proto: https\r\n\
                 Connection: close\r\n\r\n"
            ),
        )
    };

    let published = start(
        &data,
        dir.path(),
        "published",
        "[serve]\npublic_url = \"https://phim.example.vn/\"\n",
    );
    let to = addr(&published);
    let film = evil(to, "/films/released");
    assert!(
        film.body
            .contains(r#"<link rel="canonical" href="https://phim.example.vn/films/released">"#),
        "{}",
        film.body
    );
    assert!(
        film.body.contains(
            r#"<meta property="og:url" content="https://phim.example.vn/films/released">"#
        )
    );
    assert!(
        film.body
            .contains(r#""url":"https://phim.example.vn/films/released""#)
    );
    let ics = evil(to, "/films/soon/premiere.ics");
    assert!(
        ics.body
            .contains("URL:https://phim.example.vn/films/soon\r\n"),
        "{}",
        ics.body
    );
    for reply in [&film, &ics] {
        assert!(!reply.body.contains("evil.example"), "{}", reply.body);
    }
    drop(published);

    // Unset: the address the server listens on, whatever the request says.
    let local = start(&data, dir.path(), "local", "");
    let to = addr(&local);
    let film = evil(to, "/films/released");
    let own = format!("{}/films/released", local.url);
    assert!(
        film.body
            .contains(&format!(r#"<meta property="og:url" content="{own}">"#)),
        "{}",
        film.body
    );
    let ics = evil(to, "/films/soon/premiere.ics");
    assert!(
        ics.body
            .contains(&format!("URL:{}/films/soon\r\n", local.url)),
        "{}",
        ics.body
    );
    for reply in [&film, &ics] {
        assert!(!reply.body.contains("evil.example"), "{}", reply.body);
    }
    let log = std::fs::read_to_string(dir.path().join("local.log")).unwrap();
    assert!(log.contains("public_url is unset"), "{log}");

    // A public_url that is not a site's root stops the server, naming it and the rule.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[serve]\npublic_url = \"phim.example.vn/films\"\n").unwrap();
    let out = monsoon(
        &data,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            bad.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("phim.example.vn/films") && stderr.contains("https://"),
        "{stderr}"
    );
}

#[test]
fn metrics_are_for_the_operator_by_default_and_the_bearer_scheme_ignores_case() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&data, dir.path(), "metrics-admin", &admin_table(&data, ""));
    let to = addr(&server);
    let anonymous = get(to, "/metrics", "");
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    // The auth scheme is case-insensitive (RFC 9110 §11.1), as Prometheus and curl may write it.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let scraped = get(
            to,
            "/metrics",
            &format!("Authorization: {scheme} {TOKEN}\r\n"),
        );
        assert_eq!(scraped.status, 200, "{scheme}");
        assert!(
            scraped.body.contains("monsoon_open_connections"),
            "{}",
            scraped.body
        );
        let dashboard = get(
            to,
            "/admin/api/dashboard?film=nope",
            &format!("Authorization: {scheme} {TOKEN}\r\n"),
        );
        // Past the token check: the film is what is missing.
        assert_eq!(dashboard.status, 404, "{scheme}: {dashboard:?}");
    }
    let wrong = get(to, "/metrics", "Authorization: Bearer not-the-token\r\n");
    assert_eq!(wrong.status, 401);
    drop(server);

    let public = start(
        &data,
        dir.path(),
        "metrics-public",
        "[serve]\nmetrics = \"public\"\n",
    );
    assert_eq!(get(addr(&public), "/metrics", "").status, 200);
    let off = start(
        &data,
        dir.path(),
        "metrics-off",
        "[serve]\nmetrics = \"off\"\n",
    );
    assert_eq!(get(addr(&off), "/metrics", "").status, 404);
    // "admin" without an admin token: only a signed-in operator's browser can read them (no
    // script can), and the server says so at start.
    let closed = start(&data, dir.path(), "metrics-no-token", "");
    assert_eq!(get(addr(&closed), "/metrics", "").status, 401);
    let scraped = get(
        addr(&closed),
        "/metrics",
        &format!("Authorization: Bearer {TOKEN}\r\n"),
    );
    assert_eq!(scraped.status, 403);
    let log = std::fs::read_to_string(dir.path().join("metrics-no-token.log")).unwrap();
    assert!(log.contains("metrics = \"admin\""), "{log}");
}
