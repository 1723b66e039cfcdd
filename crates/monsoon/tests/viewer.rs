//! The viewer app and the dashboard over plain HTTP against the real binary: language switch,
//! premiere gating, link previews, static asset caching, and the admin protection. (The same
//! pages in a real browser: `browser.rs`.)

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{Server, ingest_clip, ingest_with_meta, make_clip, monsoon};

const TOKEN: &str = "viewer-test-admin-token";

struct Reply {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |v| v.to_str().unwrap_or(""))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into()
}

fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = agent().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.call().unwrap();
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.body_mut().read_to_string().unwrap_or_default(),
    }
}

fn post_form(url: &str, body: &str) -> Reply {
    let mut response = agent()
        .post(url)
        .content_type("application/x-www-form-urlencoded")
        .send(body)
        .unwrap();
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.body_mut().read_to_string().unwrap_or_default(),
    }
}

fn config(dir: &Path, admin: bool) -> String {
    let mut text = String::new();
    if admin {
        let out = monsoon(&dir.join("data"), &["admin-token", "--token", TOKEN]);
        assert!(out.status.success());
        text.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    let path = dir.join(if admin { "admin.toml" } else { "plain.toml" });
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn pages_speak_vietnamese_first_and_gate_the_premiere() {
    let dir = tempfile::tempdir().unwrap();
    let data = ingest_clip(dir.path(), "released", 4, "320x180");
    let clip = dir.path().join("soon.mp4");
    make_clip(&clip, 4, "320x180");
    let at = chrono::Utc::now() + chrono::Duration::hours(30);
    ingest_with_meta(
        &data,
        &clip,
        "soon",
        &format!(
            "title = {{ vi = \"Sắp chiếu\", en = \"Coming soon\" }}\nfree_release = \"{}\"\n",
            at.to_rfc3339()
        ),
    );
    let server = Server::start(&data);
    let url = &server.url;

    // Vietnamese by default; `?lang=en` switches and sets the cookie; the cookie remembers.
    let home = get(&format!("{url}/"), &[]);
    assert!(home.body.contains(r#"<html lang="vi">"#));
    assert!(home.body.contains("Sắp công chiếu"), "no premieres row");
    assert_eq!(home.header("vary"), "Cookie");
    let english = get(&format!("{url}/films/released?lang=en"), &[]);
    assert!(english.body.contains(r#"<html lang="en">"#));
    assert!(english.body.contains("Watch free"));
    assert!(english.header("set-cookie").starts_with("lang=en;"));
    let remembered = get(&format!("{url}/"), &[("Cookie", "lang=en")]);
    assert!(remembered.body.contains("Premiering soon"));

    // Link previews: absolute Open Graph image and a schema.org Movie.
    let film = get(&format!("{url}/films/released"), &[]);
    assert!(film.body.contains(&format!(
        r#"<meta property="og:image" content="{url}/media/released/"#
    )));
    assert!(film.body.contains(r#""@type":"Movie""#));

    // Before the premiere: countdown page, manifests and sessions refused, watch redirects.
    let premiere = get(&format!("{url}/films/soon"), &[]);
    assert_eq!(premiere.status, 200);
    assert!(premiere.body.contains(r#"id="countdown""#));
    assert!(premiere.body.contains("/films/soon/premiere.ics"));
    for manifest in ["master.m3u8", "manifest.mpd"] {
        let refused = get(&format!("{url}/media/soon/{manifest}"), &[]);
        assert_eq!(refused.status, 403, "{manifest}");
        assert!(refused.body.contains("premieres at"), "{}", refused.body);
        assert_eq!(refused.header("cache-control"), "max-age=5");
    }
    let mint = agent()
        .post(&format!("{url}/api/v1/films/soon/sessions"))
        .send("")
        .unwrap();
    assert_eq!(mint.status().as_u16(), 403);
    let watch = get(&format!("{url}/watch/soon"), &[]);
    assert_eq!(watch.status, 303);
    assert_eq!(watch.header("location"), "/films/soon");
    let ics = get(&format!("{url}/films/soon/premiere.ics"), &[]);
    assert!(ics.header("content-type").starts_with("text/calendar"));
    let start = at.format("DTSTART:%Y%m%dT%H%M%SZ").to_string();
    assert!(ics.body.contains(&start), "{}", ics.body);
    // The released film plays.
    assert_eq!(
        get(&format!("{url}/media/released/master.m3u8"), &[]).status,
        200
    );
    assert_eq!(
        get(&format!("{url}/films/released/premiere.ics"), &[]).status,
        404
    );

    // Static assets: fingerprinted names cached for a year, served precompressed.
    let css = home
        .body
        .split("href=\"/static/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let asset = get(&format!("{url}/static/{css}"), &[("Accept-Encoding", "br")]);
    assert_eq!(asset.status, 200, "{css}");
    assert_eq!(
        asset.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    if css.split('.').count() == 3 {
        assert_eq!(asset.header("content-encoding"), "br");
    }
}

#[test]
fn the_dashboard_and_its_api_refuse_without_the_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = ingest_clip(dir.path(), "film", 4, "320x180");

    // Without [admin] token_hash: the dashboard is off, and says how to turn it on.
    let plain = config(dir.path(), false);
    let off = Server::start_with(&data, &["--config", &plain]);
    let login = get(&format!("{}/admin/login", off.url), &[]);
    assert_eq!(login.status, 403);
    assert!(login.body.contains("token_hash"));
    let api = get(&format!("{}/admin/api/dashboard?film=film", off.url), &[]);
    assert_eq!(api.status, 403);
    drop(off);

    let with_admin = config(dir.path(), true);
    let server = Server::start_with(&data, &["--config", &with_admin]);
    let url = &server.url;
    let dashboard = get(&format!("{url}/admin"), &[]);
    assert_eq!(dashboard.status, 303);
    assert_eq!(dashboard.header("location"), "/admin/login");
    let slash = get(&format!("{url}/admin/"), &[]);
    assert_eq!((slash.status, slash.header("location")), (308, "/admin"));
    let api = format!("{url}/admin/api/dashboard?film=film");
    assert_eq!(get(&api, &[]).status, 401);
    assert_eq!(
        get(&api, &[("Cookie", "monsoon_admin=99999999999999.00")]).status,
        401
    );
    assert_eq!(
        get(&api, &[("Authorization", "Bearer wrong-token-wrong-token")]).status,
        401
    );

    let wrong = post_form(&format!("{url}/admin/login"), "token=nope");
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_empty());
    let signed_in = post_form(&format!("{url}/admin/login"), &format!("token={TOKEN}"));
    assert_eq!(signed_in.status, 303);
    let cookie = signed_in.header("set-cookie").to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_owned();

    let page = get(&format!("{url}/admin"), &[("Cookie", &cookie)]);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("cache-control"), "no-store");
    let figures = get(&api, &[("Cookie", &cookie)]);
    assert_eq!(figures.status, 200);
    let json: serde_json::Value = serde_json::from_str(&figures.body).unwrap();
    assert_eq!(json["stats"]["film"], "film");
    assert!(json["series"]["concurrent_viewers"].is_array());
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(get(&api, &[("Authorization", &bearer)]).status, 200);
    let missing = get(
        &format!("{url}/admin/api/dashboard?film=nope"),
        &[("Cookie", &cookie)],
    );
    assert_eq!(missing.status, 404);
}

#[test]
fn a_malformed_admin_hash_stops_the_server_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[admin]\ntoken_hash = \"hunter2\"\n").unwrap();
    let out = monsoon(
        &dir.path().join("data"),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("token_hash"), "{stderr}");
    let short = monsoon(
        &dir.path().join("data"),
        &["admin-token", "--token", "short"],
    );
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 16"));
}
