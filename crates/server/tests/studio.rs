//! The studio's films (`/admin/films`, `crates/server/src/studio/`) in process: the router
//! over the in-memory catalog and store, with real ffmpeg for the image uploads. Creating a
//! draft, editing a published film's metadata (seen on the public page at once, no re-ingest),
//! the rules' errors by key, and the images.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use monsoon_audience::{Audience, Config};
use monsoon_catalog::publish::{Publisher, Staging};
use monsoon_catalog::repository::conformance::version;
use monsoon_catalog::{FilmMeta, FilmRepository, JobQueue, MemoryFilms, MemoryStore};
use monsoon_server::{
    AdminAuth, AppState, HotCache, MetricsAccess, Options, TrustedProxies, app, hash_token,
};
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "studio-test-admin-token";

/// A published film `film` (with a poster of its version) and an operator's token.
async fn state() -> (AppState, Arc<MemoryFilms>, tempfile::TempDir) {
    state_with_jobs(None).await
}

/// [`state`] with a job queue.
async fn state_with_jobs(
    jobs: Option<Arc<dyn monsoon_catalog::JobQueue>>,
) -> (AppState, Arc<MemoryFilms>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let staging = Staging::create(tmp.path(), "film", "v1").unwrap();
    std::fs::write(staging.path().join("master.m3u8"), "#EXTM3U\n").unwrap();
    std::fs::write(staging.path().join("poster.jpg"), b"\xff\xd8jpeg").unwrap();
    let films = Arc::new(MemoryFilms::new());
    let media = Arc::new(MemoryStore::new());
    let meta = FilmMeta {
        title: monsoon_catalog::Localized {
            vi: "Mưa đỏ".into(),
            en: "Red Rain".into(),
        },
        ..FilmMeta::default()
    };
    Publisher {
        films: films.as_ref(),
        media: media.as_ref(),
    }
    .publish("film", &meta, staging, &version("v1"), async {})
    .await
    .unwrap();
    let audience = Audience::open(
        Config::default(),
        b"key".to_vec(),
        Arc::new(monsoon_audience::memory::MemoryStore::new()),
    )
    .await
    .unwrap();
    let options = Options {
        hot: HotCache::new(1 << 20, 1 << 20),
        web_dir: tmp.path().join("web"),
        access_log: false,
        admin: AdminAuth::new(
            Some(hash_token(TOKEN).unwrap()),
            100,
            monsoon_server::SessionTimes::default(),
        )
        .unwrap(),
        public_url: Some("http://monsoon.test".into()),
        fast_path: false,
        trusted_proxies: TrustedProxies::default(),
        metrics: MetricsAccess::Public,
        jobs,
        operators: Arc::new(monsoon_catalog::operators::MemoryOperators::new()),
        audit: Arc::new(monsoon_catalog::operators::MemoryAudit::new()),
    };
    let state = AppState::new(films.clone(), media, Arc::new(audience), options)
        .await
        .unwrap();
    state.set_image_tool(Arc::new(monsoon_media::image::FfmpegImages));
    (state, films, tmp)
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: bytes::Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&self.body));
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn call(state: &AppState, method: &str, uri: &str, operator: bool, body: Body) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "monsoon.test");
    if operator {
        request = request.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    }
    let response = app(state.clone())
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

async fn send_json(state: &AppState, method: &str, uri: &str, body: &Value) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "monsoon.test")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json");
    request = request.header(header::ACCEPT, "application/json");
    let response = app(state.clone())
        .oneshot(request.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

fn keys(answer: &Answer) -> Vec<String> {
    answer.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_studio_is_the_operators() {
    let (state, _films, _tmp) = state().await;
    let page = call(&state, "GET", "/admin/films", false, Body::empty()).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.headers[header::LOCATION], "/admin/login?lang=vi");
    for (method, uri) in [
        ("GET", "/admin/api/films"),
        ("POST", "/admin/api/films"),
        ("GET", "/admin/api/films/film"),
        ("PUT", "/admin/api/films/film"),
        ("PUT", "/admin/api/films/film/poster"),
        ("GET", "/admin/api/films/film/film.toml"),
        ("DELETE", "/admin/api/films/film"),
    ] {
        let answer = call(&state, method, uri, false, Body::from("{}")).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
    }
    // Signed in: the pages, with the strict CSP and no inline script but the config's JSON.
    for uri in ["/admin/films", "/admin/films/new", "/admin/films/film"] {
        let page = call(&state, "GET", uri, true, Body::empty()).await;
        assert_eq!(page.status, StatusCode::OK, "{uri}");
        assert!(page.headers.contains_key(header::CONTENT_SECURITY_POLICY));
        assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
        let html = page.text();
        assert!(
            html.contains(r#"<script type="module" src="/static/studio."#),
            "{html}"
        );
        assert!(html.contains(r#"id="studio-config""#));
    }
    // The form's hints are film.toml's examples, and its ratings the Vietnamese classes.
    let form = call(&state, "GET", "/admin/films/film", true, Body::empty())
        .await
        .text();
    assert!(
        form.contains("title = { vi = &quot;Mưa Đỏ&quot;, en = &quot;Red Rain&quot; }")
            || form.contains("title = { vi = &#34;Mưa Đỏ&#34;"),
        "{form}"
    );
    assert!(
        form.contains(r#"<option value="T13">T13 — 13 and over</option>"#),
        "{form}"
    );
}

#[tokio::test]
async fn a_metadata_edit_is_on_the_public_page_at_once_and_keeps_the_version() {
    let (state, films, _tmp) = state().await;
    let before = films.get("film").await.unwrap().unwrap();
    let page = call(&state, "GET", "/films/film", false, Body::empty()).await;
    assert!(page.text().contains("Mưa đỏ"));

    let mut meta = call(&state, "GET", "/admin/api/films/film", true, Body::empty())
        .await
        .json()["meta"]
        .clone();
    meta["title"]["vi"] = json!("Mưa đỏ (bản đạo diễn)");
    meta["age_rating"] = json!("T16");
    let saved = send_json(&state, "PUT", "/admin/api/films/film", &meta).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text());
    assert_eq!(saved.json()["meta"]["title"]["vi"], "Mưa đỏ (bản đạo diễn)");
    assert_eq!(saved.json()["version"], "v1");

    let page = call(&state, "GET", "/films/film", false, Body::empty()).await;
    assert!(
        page.text().contains("Mưa đỏ (bản đạo diễn)"),
        "no re-ingest needed"
    );
    let after = films.get("film").await.unwrap().unwrap();
    assert_eq!(after.current, before.current, "the media are untouched");
    // The live catalog took it too (what /media and the API's film list read).
    let api = call(&state, "GET", "/api/v1/films/film", false, Body::empty()).await;
    assert!(api.text().contains("bản đạo diễn"), "{}", api.text());

    // Scripts keep film.toml: the export parses back to the same metadata.
    let toml = call(
        &state,
        "GET",
        "/admin/api/films/film/film.toml",
        true,
        Body::empty(),
    )
    .await;
    assert_eq!(toml.status, StatusCode::OK);
    assert_eq!(FilmMeta::parse_toml(&toml.text()).unwrap(), after.meta);
    // And import: a film.toml's text saved as an edit, its errors by key as the form's.
    let imported = call(
        &state,
        "PUT",
        "/admin/api/films/film/film.toml",
        true,
        Body::from("title = { vi = \"Mưa đỏ\", en = \"Red Rain\" }\ncast = [\"Đỗ Nhật Hoàng\"]\n"),
    )
    .await;
    assert_eq!(imported.status, StatusCode::OK, "{}", imported.text());
    assert_eq!(
        films.get("film").await.unwrap().unwrap().meta.cast,
        ["Đỗ Nhật Hoàng"]
    );
    let refused = call(
        &state,
        "PUT",
        "/admin/api/films/film/film.toml",
        true,
        Body::from("title = \"X\"\nsynopsys = 1\n"),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(keys(&refused), ["synopsys", "title"]);
    assert_eq!(
        films.get("film").await.unwrap().unwrap().meta.title.vi,
        "Mưa đỏ"
    );
}

#[tokio::test]
async fn every_broken_rule_is_a_400_naming_its_key_and_nothing_is_saved() {
    let (state, films, _tmp) = state().await;
    let bad = json!({
        "title": {"vi": "", "en": ""},
        "age_rating": "PG-13",
        "trailer": "no-such-film",
        "language": "Vietnamese",
        "cast": ["A\u{0007}"],
    });
    let answer = send_json(&state, "PUT", "/admin/api/films/film", &bad).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert_eq!(answer.json()["code"], "invalid");
    assert_eq!(
        keys(&answer),
        ["title", "cast[0]", "language", "age_rating", "trailer"]
    );
    let rating = &answer.json()["errors"][3];
    assert!(
        rating["message"]
            .as_str()
            .unwrap()
            .contains("Circular 05/2023/TT-BVHTTDL")
    );
    assert_eq!(rating["example"], "age_rating = \"T13\"");
    // Each names its rule and the values its message names, for the studio's translation.
    let errors = answer.json()["errors"].as_array().unwrap().clone();
    let rules: Vec<Value> = errors.iter().map(|e| e["rule"].clone()).collect();
    assert_eq!(
        rules,
        [
            json!({"name": "title_required"}),
            json!({"name": "control_character", "character": "U+0007", "at": 2}),
            json!({"name": "language_tag", "value": "Vietnamese"}),
            json!({"name": "age_rating", "value": "PG-13"}),
            json!({"name": "trailer_not_published", "value": "no-such-film"}),
        ]
    );
    assert_eq!(
        films.get("film").await.unwrap().unwrap().meta.title.vi,
        "Mưa đỏ"
    );

    // A new film: the slug is a rule too; a taken one is a conflict.
    let new = |slug: &str| json!({"slug": slug, "meta": {"title": {"vi": "Phim mới"}}});
    let answer = send_json(&state, "POST", "/admin/api/films", &new("Phim Mới")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(keys(&answer), ["slug"]);
    let answer = send_json(&state, "POST", "/admin/api/films", &new("film")).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text());
    assert!(answer.text().contains("slug `film` is taken"));
    // Not JSON at all: 400 saying so.
    let answer = call(
        &state,
        "PUT",
        "/admin/api/films/film",
        true,
        Body::from("title=x"),
    )
    .await;
    assert!(answer.status.is_client_error());
    let answer = send_json(
        &state,
        "PUT",
        "/admin/api/films/nobody",
        &json!({"title": {"vi": "A"}}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_draft_is_created_with_a_premiere_and_stays_private() {
    let (state, films, _tmp) = state().await;
    let created = send_json(
        &state,
        "POST",
        "/admin/api/films",
        &json!({"slug": "song-hong", "meta": {
            "title": {"vi": "Sông Hồng", "en": "Red River"},
            "free_release": "2027-01-01T20:00:00+07:00",
            "trailer": "film",
        }}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(
        created.headers[header::LOCATION],
        "/admin/api/films/song-hong"
    );
    assert_eq!(created.json()["state"], "draft");
    let draft = films.draft("song-hong").await.unwrap().unwrap();
    assert_eq!(
        draft.meta.free_release.unwrap().to_rfc3339(),
        "2027-01-01T20:00:00+07:00"
    );
    let list = call(&state, "GET", "/admin/api/films", true, Body::empty())
        .await
        .json();
    let states: Vec<(&str, &str)> = list["films"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["slug"].as_str().unwrap(), f["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("song-hong", "draft"), ("film", "published")]);
    // Viewers see nothing of it.
    assert_eq!(
        call(&state, "GET", "/films/song-hong", false, Body::empty())
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(
        !call(&state, "GET", "/", false, Body::empty())
            .await
            .text()
            .contains("Sông Hồng")
    );
    // Its metadata is edited like a film's.
    let mut meta = created.json()["meta"].clone();
    meta["synopsis"] = json!({"vi": "Một dòng sông.", "en": "A river."});
    assert_eq!(
        send_json(&state, "PUT", "/admin/api/films/song-hong", &meta)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        films
            .draft("song-hong")
            .await
            .unwrap()
            .unwrap()
            .meta
            .synopsis
            .en,
        "A river."
    );
}

/// An image made by ffmpeg: `size` pixels of colour, in `format` (`png`, `mjpeg`).
fn image(size: &str, codec: &str, ext: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(format!("image.{ext}"));
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={size}"),
            "-frames:v",
            "1",
            "-c:v",
            codec,
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(out).unwrap()
}

/// `(width, height)` of an image, by ffprobe.
fn dimensions(bytes: &[u8]) -> (u32, u32) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.jpg");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=width,height,codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text.trim().split(',').collect();
    assert_eq!(fields[0], "mjpeg", "{text}");
    (fields[1].parse().unwrap(), fields[2].parse().unwrap())
}

#[tokio::test]
async fn images_are_checked_resized_stored_and_shown() {
    let (state, films, _tmp) = state().await;
    // A portrait key art, larger than the pages use: resized within 640×960, aspect kept.
    let uploaded = call(
        &state,
        "PUT",
        "/admin/api/films/film/poster",
        true,
        Body::from(image("1000x1500", "png", "png")),
    )
    .await;
    assert_eq!(uploaded.status, StatusCode::OK, "{}", uploaded.text());
    let url = uploaded.json()["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with("/art/film/poster.") && url.ends_with(".jpg"),
        "{url}"
    );
    let art = call(&state, "GET", &url, false, Body::empty()).await;
    assert_eq!(art.status, StatusCode::OK);
    assert_eq!(art.headers[header::CONTENT_TYPE], "image/jpeg");
    assert_eq!(
        art.headers[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(dimensions(&art.body), (640, 960));
    // The pages show it, and a metadata edit keeps it.
    assert!(
        call(&state, "GET", "/films/film", false, Body::empty())
            .await
            .text()
            .contains(&url)
    );
    let meta = call(&state, "GET", "/admin/api/films/film", true, Body::empty())
        .await
        .json()["meta"]
        .clone();
    assert_eq!(
        send_json(&state, "PUT", "/admin/api/films/film", &meta)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        films
            .get("film")
            .await
            .unwrap()
            .unwrap()
            .poster_url()
            .as_deref(),
        Some(url.as_str())
    );

    // A small backdrop is not enlarged.
    let uploaded = call(
        &state,
        "PUT",
        "/admin/api/films/film/backdrop",
        true,
        Body::from(image("960x540", "mjpeg", "jpg")),
    )
    .await;
    assert_eq!(uploaded.status, StatusCode::OK, "{}", uploaded.text());
    let url = uploaded.json()["url"].as_str().unwrap().to_owned();
    let art = call(&state, "GET", &url, false, Body::empty()).await;
    assert_eq!(dimensions(&art.body), (960, 540));

    // Not an image, too small, too large: refused by key, nothing stored.
    let text = call(
        &state,
        "PUT",
        "/admin/api/films/film/poster",
        true,
        Body::from("hello, not a picture"),
    )
    .await;
    assert_eq!(text.status, StatusCode::BAD_REQUEST, "{}", text.text());
    assert_eq!(keys(&text), ["poster"]);
    assert!(
        text.text()
            .contains("not an image Monsoon takes: give a JPEG, PNG or WebP file")
    );
    assert_eq!(
        text.json()["errors"][0]["rule"],
        json!({"name": "not_image"})
    );
    let tiny = call(
        &state,
        "PUT",
        "/admin/api/films/film/poster",
        true,
        Body::from(image("100x100", "png", "png")),
    )
    .await;
    assert_eq!(tiny.status, StatusCode::BAD_REQUEST);
    assert!(
        tiny.text()
            .contains("100×100 pixels; it needs at least 160"),
        "{}",
        tiny.text()
    );
    assert_eq!(
        tiny.json()["errors"][0]["rule"],
        json!({"name": "image_too_small", "width": 100, "height": 100, "min": 160})
    );
    let huge = vec![0u8; monsoon_catalog::artwork::UPLOAD_BYTES + 1];
    let huge = call(
        &state,
        "PUT",
        "/admin/api/films/film/poster",
        true,
        Body::from(huge),
    )
    .await;
    assert_eq!(
        huge.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        huge.text()
    );
    assert_eq!(
        films
            .get("film")
            .await
            .unwrap()
            .unwrap()
            .poster_url()
            .as_deref()
            .map(|u| u.starts_with("/art/film/poster.")),
        Some(true)
    );
    // The art route serves nothing but art names.
    for bad in [
        "/art/film/poster.jpg",
        "/art/film/..%2F..%2Fetc",
        "/art/Film/poster.0123456789abcdef.jpg",
        "/art/film/poster.0123456789abcdef.jpg",
    ] {
        assert_eq!(
            call(&state, "GET", bad, false, Body::empty()).await.status,
            StatusCode::NOT_FOUND,
            "{bad}"
        );
    }
}

/// The status of `GET url`, with no sign-in (as a viewer).
async fn status_of(state: &AppState, url: &str) -> StatusCode {
    call(state, "GET", url, false, Body::empty()).await.status
}

#[tokio::test]
async fn a_draft_is_deleted_with_its_images_and_a_published_film_is_not() {
    let queue = Arc::new(monsoon_catalog::MemoryJobs::new());
    let (state, films, _tmp) = state_with_jobs(Some(queue.clone())).await;
    let draft =
        |slug: &str| json!({"slug": slug, "meta": {"title": {"vi": "Nháp", "en": "Draft"}}});
    let created = send_json(&state, "POST", "/admin/api/films", &draft("nhap")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let poster = call(
        &state,
        "PUT",
        "/admin/api/films/nhap/poster",
        true,
        Body::from(image("400x600", "png", "png")),
    )
    .await;
    assert_eq!(poster.status, StatusCode::OK, "{}", poster.text());
    let url = poster.json()["url"].as_str().unwrap().to_owned();
    assert_eq!(status_of(&state, &url).await, StatusCode::OK);

    // A published film is never deleted here: 409 naming the rule, nothing touched.
    let refused = call(
        &state,
        "DELETE",
        "/admin/api/films/film",
        true,
        Body::empty(),
    )
    .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text());
    assert!(
        refused.text().contains(
            "`film` is a published film: only a draft that was never published can be deleted"
        ),
        "{}",
        refused.text()
    );
    assert!(films.get("film").await.unwrap().is_some());
    assert_eq!(status_of(&state, "/films/film").await, StatusCode::OK);

    // A draft with a job that would publish it: 409 until the job is over.
    let job = queue
        .submit(&monsoon_catalog::NewJob {
            slug: "nhap".into(),
            ..monsoon_catalog::jobs::conformance::job("nhap")
        })
        .await
        .unwrap();
    let busy = call(
        &state,
        "DELETE",
        "/admin/api/films/nhap",
        true,
        Body::empty(),
    )
    .await;
    assert_eq!(busy.status, StatusCode::CONFLICT, "{}", busy.text());
    assert!(
        busy.text().contains(&format!("has job {} queued", job.id))
            && busy.text().contains("cancel the job"),
        "{}",
        busy.text()
    );
    assert!(films.draft("nhap").await.unwrap().is_some());
    assert!(queue.cancel(job.id, "operator lan").await.unwrap());

    // The draft: 204, gone with its images, audited; the slug free again.
    let deleted = call(
        &state,
        "DELETE",
        "/admin/api/films/nhap",
        true,
        Body::empty(),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    assert_eq!(deleted.headers[header::CACHE_CONTROL], "no-store");
    assert!(films.draft("nhap").await.unwrap().is_none());
    assert_eq!(status_of(&state, &url).await, StatusCode::NOT_FOUND);
    assert!(state.media.list("nhap").await.unwrap().is_empty());
    let entries = state.audit.list(10, None).await.unwrap();
    let entry = entries
        .iter()
        .find(|e| e.action == "draft_deleted")
        .expect("no audit entry for the deletion");
    assert_eq!(
        (entry.actor.as_str(), entry.subject.as_str()),
        ("token", "nhap")
    );
    assert_eq!(entry.detail["title"]["vi"], "Nháp");
    let again = call(
        &state,
        "DELETE",
        "/admin/api/films/nhap",
        true,
        Body::empty(),
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let list = call(&state, "GET", "/admin/api/films", true, Body::empty())
        .await
        .json();
    assert_eq!(list["films"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(
        send_json(&state, "POST", "/admin/api/films", &draft("nhap"))
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_replaced_image_is_removed_after_its_grace_period_once_nothing_names_it() {
    let (state, _films, _tmp) = state().await;
    let grace = std::time::Duration::from_millis(500);
    state.set_art_grace(grace);
    let upload = |size: &'static str| {
        let state = state.clone();
        async move {
            let answer = call(
                &state,
                "PUT",
                "/admin/api/films/film/poster",
                true,
                Body::from(image(size, "png", "png")),
            )
            .await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
            answer.json()["url"].as_str().unwrap().to_owned()
        }
    };
    // An image left by a restart during a grace period: nothing names it.
    let orphan = "/art/film/poster.0123456789abcdef.jpg";
    state
        .media
        .put(
            "film/art/poster.0123456789abcdef.jpg",
            axum::body::Bytes::from_static(b"\xff\xd8old"),
        )
        .await
        .unwrap();
    let backdrop = call(
        &state,
        "PUT",
        "/admin/api/films/film/backdrop",
        true,
        Body::from(image("960x540", "mjpeg", "jpg")),
    )
    .await
    .json()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = upload("400x600").await;
    let second = upload("500x750").await;
    assert_ne!(first, second);
    // Replaced, but pages rendered a moment ago may still name it: kept for the grace period.
    assert_eq!(status_of(&state, &first).await, StatusCode::OK);
    let page = call(&state, "GET", "/films/film", false, Body::empty())
        .await
        .text();
    assert!(page.contains(&second) && !page.contains(&first), "{page}");
    // The first one named again within the grace period (the same bytes, the same name): kept.
    assert_eq!(upload("400x600").await, first);
    // After it: the second (replaced) and the orphan are removed; the first and the backdrop,
    // which the film names, are not.
    let deadline = std::time::Instant::now() + grace * 20;
    while status_of(&state, &second).await == StatusCode::OK {
        assert!(
            std::time::Instant::now() < deadline,
            "the replaced image {second} was never removed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(grace).await;
    assert_eq!(status_of(&state, orphan).await, StatusCode::NOT_FOUND);
    assert_eq!(status_of(&state, &first).await, StatusCode::OK);
    assert_eq!(status_of(&state, &backdrop).await, StatusCode::OK);
    let mut left = state.media.list("film/art").await.unwrap();
    left.sort();
    let mut named = vec![
        format!("film/art/{}", first.rsplit('/').next().unwrap()),
        format!("film/art/{}", backdrop.rsplit('/').next().unwrap()),
    ];
    named.sort();
    assert_eq!(left, named);
}
