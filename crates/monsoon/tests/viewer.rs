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

/// Posts the sign-in form `body` with the form's double-submit CSRF pair (`csrf.rs`): any
/// value will do, as long as the cookie and the field agree.
fn post_login(url: &str, body: &str) -> Reply {
    let mut response = agent()
        .post(url)
        .header("Cookie", "monsoon_login=viewer-test")
        .content_type("application/x-www-form-urlencoded")
        .send(format!("_csrf=viewer-test&{body}"))
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

    // Without [admin] token_hash nor any account: the form says how to make an account, and
    // the API refuses.
    let plain = config(dir.path(), false);
    let off = Server::start_with(&data, &["--config", &plain]);
    let login = get(&format!("{}/admin/login", off.url), &[]);
    assert_eq!(login.status, 200);
    assert!(
        login.body.contains("monsoon operator add"),
        "{}",
        login.body
    );
    let api = get(&format!("{}/admin/api/dashboard?film=film", off.url), &[]);
    assert_eq!(api.status, 401);
    let bearer = get(
        &format!("{}/admin/api/dashboard?film=film", off.url),
        &[("Authorization", "Bearer some-token-some-token")],
    );
    assert_eq!(bearer.status, 403);
    assert!(bearer.body.contains("token_hash"), "{}", bearer.body);
    drop(off);

    let with_admin = config(dir.path(), true);
    let server = Server::start_with(&data, &["--config", &with_admin]);
    let url = &server.url;
    let dashboard = get(&format!("{url}/admin"), &[]);
    assert_eq!(dashboard.status, 303);
    // To the sign-in form, in the language of the request (the form posts with it).
    assert_eq!(dashboard.header("location"), "/admin/login?lang=vi");
    let english = get(&format!("{url}/admin?lang=en"), &[]);
    assert_eq!(english.header("location"), "/admin/login?lang=en");
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

    let wrong = post_login(&format!("{url}/admin/login"), "token=nope");
    assert_eq!(wrong.status, 401);
    assert!(!wrong.header("set-cookie").contains("monsoon_admin="));
    let signed_in = post_login(
        &format!("{url}/admin/login?lang=en"),
        &format!("token={TOKEN}"),
    );
    assert_eq!(signed_in.status, 303);
    assert_eq!(signed_in.header("location"), "/admin?lang=en");
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
    assert!(json["series"]["bytes"].is_array());
    assert_eq!(json["view_threshold_s"], 30.0, "{json}");
    assert!(
        json["origin"]["failed_24h"]["segment"]["client"].is_u64(),
        "{json}"
    );
    // The CSV of the series: the operator's, as an attachment.
    let csv = format!("{url}/admin/api/dashboard.csv?film=film");
    assert_eq!(get(&csv, &[]).status, 401);
    let download = get(&csv, &[("Cookie", &cookie)]);
    assert_eq!(download.status, 200);
    assert_eq!(download.header("content-type"), "text/csv; charset=utf-8");
    assert!(
        download
            .header("content-disposition")
            .starts_with("attachment; filename=\"monsoon-film-"),
        "{}",
        download.header("content-disposition")
    );
    assert_eq!(download.header("cache-control"), "no-store");
    assert!(
        download.body.starts_with(
            "time,concurrent_viewers,views,views_24h,playing_time_s,rebuffer_ratio,startup_ms_p95,bytes\r\n"
        ),
        "{}",
        download.body
    );
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

/// `GET` with the body as bytes (icons).
fn get_bytes(url: &str) -> (u16, ureq::http::HeaderMap, Vec<u8>) {
    let mut response = agent().get(url).call().unwrap();
    let bytes = response.body_mut().read_to_vec().unwrap();
    (
        response.status().as_u16(),
        response.headers().clone(),
        bytes,
    )
}

#[test]
fn unknown_pages_are_404_pages_in_the_viewers_language_and_apis_keep_json() {
    let dir = tempfile::tempdir().unwrap();
    let data = ingest_clip(dir.path(), "released", 4, "320x180");
    let server = Server::start(&data);
    let url = &server.url;

    for (path, lang, title) in [
        ("/films/typo", "vi", "Không tìm thấy trang"),
        ("/watch/typo", "vi", "Không tìm thấy trang"),
        ("/films/typo/premiere.ics", "vi", "Không tìm thấy trang"),
        ("/no/such/page", "vi", "Không tìm thấy trang"),
        ("/films/typo?lang=en", "en", "Page not found"),
        ("/watch/typo?lang=en", "en", "Page not found"),
        ("/no/such/page?lang=en", "en", "Page not found"),
    ] {
        let page = get(&format!("{url}{path}"), &[]);
        assert_eq!(page.status, 404, "{path}");
        assert!(
            page.header("content-type").starts_with("text/html"),
            "{path}: {}",
            page.header("content-type")
        );
        assert!(
            page.body.contains(&format!(r#"<html lang="{lang}">"#)),
            "{path}"
        );
        assert!(page.body.contains(title), "{path}: {}", page.body);
        // A way back to the catalog, and the pages' security headers.
        assert!(
            page.body.contains(r#"<a class="button" href="/">"#),
            "{path}"
        );
        assert!(
            page.header("content-security-policy")
                .contains("default-src 'self'"),
            "{path}"
        );
        assert_eq!(page.header("cache-control"), "max-age=5", "{path}");
    }
    // The switch of a 404 page leads to the same path in the other language, remembered.
    let english = get(&format!("{url}/films/typo?lang=en"), &[]);
    assert!(english.body.contains(r#"href="/films/typo?lang=vi""#));
    assert!(english.header("set-cookie").starts_with("lang=en;"));
    let remembered = get(&format!("{url}/no/such/page"), &[("Cookie", "lang=en")]);
    assert!(remembered.body.contains("Page not found"));

    // The APIs keep their JSON error contract.
    for path in [
        "/api/v1/films/typo",
        "/api/v1/no-such-endpoint",
        "/api",
        "/admin/api/nothing",
    ] {
        let answer = get(&format!("{url}{path}"), &[]);
        assert_eq!(answer.status, 404, "{path}");
        assert!(
            answer
                .header("content-type")
                .starts_with("application/json"),
            "{path}"
        );
        let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(json["code"], "not_found", "{path}");
    }
    // The known pages still answer.
    assert_eq!(get(&format!("{url}/films/released"), &[]).status, 200);
}

#[test]
fn a_failing_catalog_answers_a_5xx_page_not_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let data = ingest_clip(dir.path(), "released", 4, "320x180");
    let server = Server::start(&data);
    let url = &server.url;
    assert_eq!(get(&format!("{url}/"), &[]).status, 200);

    // The database loses its films table under the running server: a real failure.
    let db = rusqlite::Connection::open(data.join("catalog.db")).unwrap();
    db.execute_batch("ALTER TABLE films RENAME TO films_away")
        .unwrap();
    for (path, lang, title) in [
        ("/", "vi", "Máy chủ gặp sự cố"),
        ("/films/released", "vi", "Máy chủ gặp sự cố"),
        ("/search?q=released", "vi", "Máy chủ gặp sự cố"),
        ("/?lang=en", "en", "The server ran into a problem"),
    ] {
        let page = get(&format!("{url}{path}"), &[]);
        assert_eq!(page.status, 500, "{path}: {}", page.body);
        assert!(
            page.header("content-type").starts_with("text/html"),
            "{path}"
        );
        assert!(page.body.contains(&format!(r#"<html lang="{lang}">"#)));
        assert!(page.body.contains(title), "{path}: {}", page.body);
        assert!(page.body.contains(r#"<a class="button" href="/">"#));
        // The cause is the log's, not the viewer's.
        assert!(
            !page.body.contains("no such table"),
            "{path}: {}",
            page.body
        );
        assert_eq!(page.header("cache-control"), "no-store");
    }
    // The API still answers its JSON.
    let api = get(&format!("{url}/api/v1/films"), &[]);
    assert_eq!(api.status, 500);
    assert!(api.header("content-type").starts_with("application/json"));

    db.execute_batch("ALTER TABLE films_away RENAME TO films")
        .unwrap();
    assert_eq!(get(&format!("{url}/"), &[]).status, 200);
}

#[test]
fn search_finds_titles_with_or_without_diacritics_and_bounds_its_query() {
    let dir = tempfile::tempdir().unwrap();
    let data = ingest_clip(dir.path(), "other", 4, "320x180");
    let clip = dir.path().join("mua-do.mp4");
    make_clip(&clip, 4, "320x180");
    ingest_with_meta(
        &data,
        &clip,
        "mua-do",
        "title = { vi = \"Mưa Đỏ\", en = \"Red Rain\" }\ngenres = [\"Chiến tranh\", \"Phim thể nghiệm\"]\ncountry = \"Việt Nam\"\n",
    );
    let server = Server::start(&data);
    let url = &server.url;
    let found = r#"<a href="/films/mua-do">"#;

    for q in [
        "mua+do",
        "M%C6%B0a+%C4%90%E1%BB%8F", // Mưa Đỏ
        "m%C6%B0a+%C4%91%E1%BB%8F", // mưa đỏ
        "MUA",
        "do",
        "red+rain",
        "Mu%CC%9Ba", // Mưa, decomposed
    ] {
        let page = get(&format!("{url}/search?q={q}"), &[]);
        assert_eq!(page.status, 200, "{q}");
        assert!(page.body.contains(found), "{q}: {}", page.body);
        assert!(!page.body.contains(r#"href="/films/other""#), "{q}");
        assert!(page.body.contains("Kết quả cho"), "{q}");
    }
    let none = get(&format!("{url}/search?q=mua+xuan"), &[]);
    assert_eq!(none.status, 200);
    assert!(!none.body.contains(found));
    assert!(none.body.contains("Không có phim nào khớp"));
    // Without a query: a prompt, no listing.
    let prompt = get(&format!("{url}/search"), &[]);
    assert_eq!(prompt.status, 200);
    assert!(!prompt.body.contains(found));
    // English, and the switch keeps the query.
    let english = get(&format!("{url}/search?q=mua+do&lang=en"), &[]);
    assert!(english.body.contains("Results for"));
    assert!(english.body.contains(found));
    assert!(
        english
            .body
            .contains(r#"href="/search?q=mua+do&#38;lang=vi""#),
        "{}",
        english.body
    );
    // The box in every page's header works without JavaScript: a GET form to /search.
    assert!(
        english
            .body
            .contains(r#"<form class="search" role="search" action="/search" method="get">"#)
    );
    assert!(english.body.contains(r#"value="mua do""#));

    // The query is escaped wherever it is shown.
    let hostile = get(
        &format!("{url}/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
        &[],
    );
    assert_eq!(hostile.status, 200);
    assert!(!hostile.body.contains("<script>alert"));
    assert!(
        hostile
            .body
            .contains("“&#60;script&#62;alert(1)&#60;/script&#62;”"),
        "{}",
        hostile.body
    );

    // Bounded: 100 characters pass, 101 are a clear 400 page in the viewer's language.
    let at_limit = "đ".repeat(100);
    let encoded = "%C4%91";
    let page = get(&format!("{url}/search?q={}", encoded.repeat(100)), &[]);
    assert_eq!(page.status, 200, "{} characters", at_limit.chars().count());
    let long = get(&format!("{url}/search?q={}", encoded.repeat(101)), &[]);
    assert_eq!(long.status, 400);
    assert!(long.header("content-type").starts_with("text/html"));
    assert!(long.body.contains("tối đa 100 ký tự"), "{}", long.body);
    let long_en = get(&format!("{url}/search?q={}&lang=en", "a".repeat(5000)), &[]);
    assert_eq!(long_en.status, 400);
    assert!(long_en.body.contains("at most 100 characters"));
    let twice = get(&format!("{url}/search?q=a&q=b"), &[]);
    assert_eq!(twice.status, 400);
    assert!(twice.header("content-type").starts_with("text/html"));

    // Genres and country: Vietnamese as written, English translated; unknown ones unchanged.
    let vi = get(&format!("{url}/films/mua-do"), &[]);
    assert!(
        vi.body.contains("<dd>Chiến tranh, Phim thể nghiệm</dd>"),
        "{}",
        vi.body
    );
    assert!(vi.body.contains("<dd>Việt Nam</dd>"));
    let en = get(&format!("{url}/films/mua-do?lang=en"), &[]);
    assert!(
        en.body.contains("<dd>War, Phim thể nghiệm</dd>"),
        "{}",
        en.body
    );
    assert!(en.body.contains("<dd>Vietnam</dd>"));
}

#[test]
fn the_site_has_a_favicon_and_an_installable_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let data = ingest_clip(dir.path(), "released", 4, "320x180");
    let server = Server::start(&data);
    let url = &server.url;

    let home = get(&format!("{url}/"), &[]);
    assert!(
        home.body
            .contains(r#"<link rel="manifest" href="/manifest.webmanifest">"#)
    );
    assert!(
        home.body
            .contains(r#"<link rel="icon" href="/favicon.ico""#)
    );
    assert!(home.body.contains(r#"type="image/svg+xml""#));

    let manifest = get(&format!("{url}/manifest.webmanifest"), &[]);
    assert_eq!(manifest.status, 200);
    assert_eq!(manifest.header("content-type"), "application/manifest+json");
    assert_eq!(manifest.header("cache-control"), "public, max-age=3600");
    let json: serde_json::Value = serde_json::from_str(&manifest.body).unwrap();
    assert_eq!(json["name"], "Monsoon");
    assert_eq!(json["short_name"], "Monsoon");
    assert_eq!(json["start_url"], "/");
    assert_eq!(json["display"], "standalone");
    assert_eq!(json["lang"], "vi");
    assert!(json["theme_color"].as_str().unwrap().starts_with('#'));
    assert!(json["background_color"].as_str().unwrap().starts_with('#'));
    let icons = json["icons"].as_array().unwrap();
    let mut sizes = Vec::new();
    for icon in icons {
        let src = icon["src"].as_str().unwrap();
        let (status, headers, bytes) = get_bytes(&format!("{url}{src}"));
        assert_eq!(status, 200, "{src}");
        let kind = icon["type"].as_str().unwrap();
        assert_eq!(headers.get("content-type").unwrap(), kind, "{src}");
        if kind == "image/png" {
            // PNG signature, then IHDR's width and height (W3C PNG, §5.2 and §11.2.2).
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{src}");
            let side = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
            let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
            assert_eq!(icon["sizes"], format!("{side}x{height}"), "{src}");
            sizes.push((side, icon["purpose"].as_str().unwrap().to_owned()));
        }
    }
    for needed in [(192, "any"), (512, "any"), (512, "maskable")] {
        assert!(
            sizes.contains(&(needed.0, needed.1.to_owned())),
            "no {needed:?} icon in {sizes:?}"
        );
    }

    let (status, headers, ico) = get_bytes(&format!("{url}/favicon.ico"));
    assert_eq!(status, 200);
    assert_eq!(
        headers.get("content-type").unwrap(),
        "image/vnd.microsoft.icon"
    );
    assert_eq!(
        headers.get("cache-control").unwrap(),
        "public, max-age=86400"
    );
    // ICONDIR: reserved 0, type 1 (icon), then the count of images.
    assert_eq!(&ico[..4], &[0, 0, 1, 0]);
    assert!(u16::from_le_bytes([ico[4], ico[5]]) >= 1);
}
