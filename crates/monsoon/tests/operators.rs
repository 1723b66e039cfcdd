//! Operator accounts against the real binary: `monsoon operator` on the command line, the
//! sign-in with a name and a password on `monsoon serve`, sessions that end (idle, absolute,
//! sign-out, a disabled account), the CSRF guard, guesses rationed per address and per name,
//! and the audit log of all of it (`crates/server/src/{admin/,csrf.rs,audit.rs}`;
//! docs/SECURITY.md).
//!
//! Times are asserted only as lower bounds of a configured delay; sessions are given lives of
//! seconds and waited out.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{MONSOON, Server, ingest_clip};
use serde_json::Value;

const PASSWORD: &str = "lan's long password";

/// `monsoon operator ARGS…` with `stdin` as its standard input.
fn operator(data: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(MONSOON)
        .arg("--data")
        .arg(data)
        .arg("operator")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    /// Every value of header `name`.
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The `name=value` of the cookie `name` this reply sets, if it does.
    fn cookie(&self, name: &str) -> Option<String> {
        self.all("set-cookie")
            .into_iter()
            .filter_map(|c| c.split(';').next())
            .find(|pair| pair.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

/// One request from the loopback address `from`, read until the server closes.
fn request(from: Ipv4Addr, to: SocketAddr, head: &str, body: &str) -> Reply {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    socket.connect(&to.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let text = format!(
        "{head}Host: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(text.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(len) = response.parse(&bytes).unwrap() else {
        panic!("incomplete response: {:?}", String::from_utf8_lossy(&bytes));
    };
    Reply {
        status: response.code.unwrap(),
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
        body: String::from_utf8_lossy(&bytes[len..]).into_owned(),
    }
}

const HOME: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn get(to: SocketAddr, path: &str, cookie: &str) -> Reply {
    let cookie = if cookie.is_empty() {
        String::new()
    } else {
        format!("Cookie: {cookie}\r\n")
    };
    request(HOME, to, &format!("GET {path} HTTP/1.1\r\n{cookie}"), "")
}

fn post_form(from: Ipv4Addr, to: SocketAddr, path: &str, cookie: &str, body: &str) -> Reply {
    request(
        from,
        to,
        &format!(
            "POST {path} HTTP/1.1\r\nCookie: {cookie}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n"
        ),
        body,
    )
}

/// The value of `<input … name="{name}" value="…">` or `<meta name="{name}" content="…">`.
fn field(html: &str, name: &str) -> String {
    [
        format!(r#"name="{name}" value=""#),
        format!(r#"<meta name="{name}" content=""#),
    ]
    .iter()
    .find_map(|open| html.split(open.as_str()).nth(1))
    .and_then(|rest| rest.split('"').next())
    .unwrap_or_else(|| panic!("no {name} in {html}"))
    .to_owned()
}

/// Signs in as `name` from `from` the way a browser does: the form (its CSRF cookie and
/// field), then the post. The reply, and how long the post took.
fn sign_in(from: Ipv4Addr, to: SocketAddr, name: &str, password: &str) -> (Reply, Duration) {
    let form = get(to, "/admin/login", "");
    assert_eq!(form.status, 200);
    let login_cookie = form.cookie("monsoon_login").expect("no form cookie");
    let csrf = field(&form.body, "_csrf");
    let body = format!(
        "_csrf={csrf}&name={name}&password={}",
        password.replace(' ', "+").replace('\'', "%27")
    );
    let started = Instant::now();
    let reply = post_form(from, to, "/admin/login", &login_cookie, &body);
    (reply, started.elapsed())
}

/// A session: its cookie and its CSRF token, read from the dashboard.
fn session(to: SocketAddr, name: &str) -> (String, String) {
    let (reply, _) = sign_in(HOME, to, name, PASSWORD);
    assert_eq!(reply.status, 303, "{reply:?}");
    let cookie = reply.cookie("monsoon_admin").expect("no session cookie");
    let page = get(to, "/admin", &cookie);
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains(&format!(r#"<strong id="operator">{name}</strong>"#))
    );
    (cookie, field(&page.body, "csrf-token"))
}

fn audit(to: SocketAddr, cookie: &str) -> Vec<Value> {
    let reply = get(to, "/admin/api/audit?limit=500", cookie);
    assert_eq!(reply.status, 200, "{reply:?}");
    let body: Value = serde_json::from_str(&reply.body).unwrap();
    body["entries"].as_array().unwrap().clone()
}

fn has(entries: &[Value], actor: &str, action: &str, subject: &str) -> bool {
    entries
        .iter()
        .any(|e| e["actor"] == actor && e["action"] == action && e["subject"] == subject)
}

fn start(data: &Path, dir: &Path, admin: &str) -> Server {
    let config = dir.join("operators.toml");
    std::fs::write(&config, format!("[admin]\n{admin}\n")).unwrap();
    Server::start_with(data, &["--config", config.to_str().unwrap()])
}

#[test]
fn operators_sign_in_with_a_password_their_sessions_end_and_everything_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let data = ingest_clip(dir.path(), "film", 2, "320x180");

    // The command line: a good account, and every refusal naming its rule.
    let added = operator(&data, &["add", "lan"], &format!("{PASSWORD}\n"));
    assert!(added.status.success(), "{}", said(&added));
    for (args, stdin, says) in [
        (vec!["add", "Lan"], PASSWORD, "lowercase letters"),
        (vec!["add", "token"], PASSWORD, "reserved"),
        (
            vec!["add", "an"],
            "hunter2",
            "7 characters is refused: it must have 12 to 128",
        ),
        (
            vec!["add", "lan"],
            PASSWORD,
            "already an operator named `lan`",
        ),
        (vec!["disable", "nobody"], "", "no operator named `nobody`"),
    ] {
        let out = operator(&data, &args, stdin);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(said(&out).contains(says), "{args:?}: {}", said(&out));
        assert!(!said(&out).contains("hunter2"), "the password was repeated");
    }
    assert!(
        operator(&data, &["add", "binh"], &format!("{PASSWORD}\n"))
            .status
            .success()
    );
    let listed = operator(&data, &["list", "--json"], "");
    let accounts: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(accounts[0]["name"], "binh");
    assert_eq!(accounts[1]["name"], "lan");
    assert!(accounts[1]["disabled_at"].is_null());
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains("argon2"),
        "hashes listed"
    );

    // Sessions of seconds, to be waited out.
    let server = start(
        &data,
        dir.path(),
        "session_absolute_s = 5\nsession_idle_s = 2",
    );
    let to = server.addr();

    // A wrong password and an unknown name: the same answer, both slow.
    for name in ["lan", "nobody"] {
        let (wrong, took) = sign_in(HOME, to, name, "not the password");
        assert_eq!(wrong.status, 401, "{name}: {wrong:?}");
        assert!(
            took >= Duration::from_secs(1),
            "{name}: answered in {took:?}"
        );
        assert!(wrong.cookie("monsoon_admin").is_none());
        assert!(
            wrong.body.contains("Sai tên hoặc mật khẩu"),
            "{}",
            wrong.body
        );
    }

    // Signed in: the studio names the operator; every change needs the CSRF token.
    let (cookie, csrf) = session(to, "lan");
    let forged = post_form(HOME, to, "/admin/logout", &cookie, "");
    assert_eq!(forged.status, 403, "{forged:?}");
    assert!(forged.body.contains("_csrf"), "{}", forged.body);
    let forged = request(
        HOME,
        to,
        &format!(
            "POST /admin/api/jobs/1/cancel HTTP/1.1\r\nCookie: {cookie}\r\nX-CSRF-Token: {}\r\n",
            "0".repeat(64)
        ),
        "",
    );
    assert_eq!(forged.status, 403, "{forged:?}");
    assert_eq!(
        get(to, "/admin/api/audit", &cookie).status,
        200,
        "the session ended"
    );

    // The audit log: the CLI's accounts and publish, the refused sign-ins, the sign-in.
    let entries = audit(to, &cookie);
    assert!(
        has(&entries, "cli", "operator_created", "lan"),
        "{entries:#?}"
    );
    assert!(
        has(&entries, "cli", "film_published", "film"),
        "{entries:#?}"
    );
    assert!(
        has(&entries, "lan", "sign_in_failed", "lan"),
        "{entries:#?}"
    );
    assert!(
        has(&entries, "nobody", "sign_in_failed", "nobody"),
        "{entries:#?}"
    );
    assert!(has(&entries, "lan", "sign_in", "lan"), "{entries:#?}");
    assert_eq!(entries[0]["action"], "sign_in", "newest first");
    assert_eq!(entries[0]["detail"]["from"], "127.0.0.1");
    let page = get(to, "/admin/api/audit?limit=2", &cookie);
    let page: Value = serde_json::from_str(&page.body).unwrap();
    let older = get(
        to,
        &format!(
            "/admin/api/audit?limit=500&before={}",
            page["entries"][1]["id"]
        ),
        &cookie,
    );
    let older: Value = serde_json::from_str(&older.body).unwrap();
    assert_eq!(
        older["entries"].as_array().unwrap().len(),
        entries.len() - 2
    );
    let bad = get(to, "/admin/api/audit?limit=9999", &cookie);
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("limit=\\\"9999\\\""), "{}", bad.body);

    // Sign-out ends the session on the server: the same cookie is refused after.
    let out = post_form(HOME, to, "/admin/logout", &cookie, &format!("_csrf={csrf}"));
    assert_eq!(out.status, 303, "{out:?}");
    assert_eq!(get(to, "/admin/api/audit", &cookie).status, 401);
    assert_eq!(get(to, "/admin", &cookie).status, 303);

    // Idle: a session left alone longer than session_idle_s ends.
    let (idle, _) = session(to, "lan");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        get(to, "/admin/api/audit", &idle).status,
        401,
        "idle session stood"
    );

    // Absolute: used every half second (never idle), it still ends at session_absolute_s.
    let (busy, _) = session(to, "lan");
    let started = Instant::now();
    loop {
        let status = get(to, "/admin/api/audit?limit=1", &busy).status;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the session never ended"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Disabled on the command line while signed in: refused at once, and no new sign-in.
    let (binh, _) = session(to, "binh");
    let disabled = operator(&data, &["disable", "binh"], "");
    assert!(disabled.status.success(), "{}", said(&disabled));
    assert_eq!(get(to, "/admin/api/audit", &binh).status, 401);
    let (refused, _) = sign_in(HOME, to, "binh", PASSWORD);
    assert_eq!(refused.status, 401);
    let again = operator(&data, &["disable", "binh"], "");
    assert!(
        said(&again).contains("disabled already"),
        "{}",
        said(&again)
    );
    // Enabled again on the command line: it signs in with the password it had.
    let enabled = operator(&data, &["enable", "binh"], "");
    assert!(enabled.status.success(), "{}", said(&enabled));
    let (back, _) = sign_in(HOME, to, "binh", PASSWORD);
    assert_eq!(back.status, 303, "an enabled-again operator cannot sign in");
    let again = operator(&data, &["enable", "binh"], "");
    assert!(said(&again).contains("active already"), "{}", said(&again));
    let nobody = operator(&data, &["enable", "nobody"], "");
    assert!(
        said(&nobody).contains("no operator named `nobody`"),
        "{}",
        said(&nobody)
    );

    let (cookie, _) = session(to, "lan");
    let entries = audit(to, &cookie);
    assert!(has(&entries, "lan", "sign_out", "lan"), "{entries:#?}");
    assert!(
        has(&entries, "cli", "operator_disabled", "binh"),
        "{entries:#?}"
    );
    assert!(
        has(&entries, "cli", "operator_enabled", "binh"),
        "{entries:#?}"
    );
    assert!(
        has(&entries, "binh", "sign_in_failed", "binh"),
        "{entries:#?}"
    );
}

#[test]
fn guesses_are_rationed_per_name_from_any_address_and_the_form_needs_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(
        operator(&data, &["add", "lan"], &format!("{PASSWORD}\n"))
            .status
            .success()
    );
    let server = start(&data, dir.path(), "sign_in_attempts_per_minute = 2");
    let to = server.addr();
    let ip = |last: u8| Ipv4Addr::new(127, 0, 0, last);

    // Two guesses at `lan`'s password from two addresses; the third, from a third address,
    // is refused for the name.
    assert_eq!(sign_in(ip(2), to, "lan", "guess one guess").0.status, 401);
    assert_eq!(sign_in(ip(3), to, "lan", "guess two guess").0.status, 401);
    let (limited, _) = sign_in(ip(4), to, "lan", PASSWORD);
    assert_eq!(limited.status, 429, "{limited:?}");
    let retry: u64 = limited.all("retry-after")[0].parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After: {retry}");
    // That address may still try another name.
    assert_eq!(
        sign_in(ip(4), to, "someone", "guess three guess").0.status,
        401
    );

    // The sign-in form refuses a post without its cookie, or with a field that differs.
    let form = get(to, "/admin/login", "");
    let login_cookie = form.cookie("monsoon_login").unwrap();
    for (cookie, body) in [
        (
            "",
            format!("_csrf={}&name=lan&password=x", field(&form.body, "_csrf")),
        ),
        (login_cookie.as_str(), "name=lan&password=x".to_owned()),
        (
            login_cookie.as_str(),
            "_csrf=forged&name=lan&password=x".to_owned(),
        ),
    ] {
        let refused = post_form(ip(9), to, "/admin/login", cookie, &body);
        assert_eq!(refused.status, 403, "{cookie:?} {body}");
        assert!(refused.cookie("monsoon_admin").is_none());
        // The form again, with a fresh pair.
        assert!(refused.cookie("monsoon_login").is_some());
        assert!(refused.body.contains("hết hạn"), "{}", refused.body);
    }
    // None of those was a guess: the address still has its two checks.
    assert_eq!(
        sign_in(ip(9), to, "other", "guess four guess").0.status,
        401
    );
    assert_eq!(
        sign_in(ip(9), to, "another", "guess five guess").0.status,
        401
    );
    assert_eq!(
        sign_in(ip(9), to, "athird", "guess six guess").0.status,
        429
    );
}
