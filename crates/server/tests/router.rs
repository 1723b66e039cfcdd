//! The in-process tier: the application's router called as a function (`app(state)`), over
//! the in-memory backends — no ffmpeg, no socket, no database file. What the end-to-end
//! suites check against the real binary, this checks in milliseconds, and it is where a
//! handler's test goes first (`docs/TESTING.md`).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use chrono::{Duration, Utc};
use http_body_util::BodyExt;
use monsoon_audience::{Audience, Config};
use monsoon_catalog::operators::{MemoryAudit, MemoryOperators};
use monsoon_catalog::publish::{Publisher, Staging};
use monsoon_catalog::repository::conformance::version;
use monsoon_catalog::{
    FilmMeta, JobProgress, JobQueue, JobState, MemoryFilms, MemoryJobs, MemoryStore, NewJob, Stage,
};
use monsoon_server::{
    AdminAuth, AppState, HotCache, MetricsAccess, Options, SessionTimes, TrustedProxies, app,
    hash_token,
};
use serde_json::Value;
use tower::ServiceExt;

/// A film published into memory: a multivariant playlist, one rung, a poster.
async fn state(free_release: Option<chrono::DateTime<Utc>>) -> (AppState, tempfile::TempDir) {
    state_with(
        free_release,
        AdminAuth::new(None, 10, SessionTimes::default()).unwrap(),
        None,
    )
    .await
}

/// [`state`] with the given admin credentials and job queue.
async fn state_with(
    free_release: Option<chrono::DateTime<Utc>>,
    admin: AdminAuth,
    jobs: Option<Arc<dyn JobQueue>>,
) -> (AppState, tempfile::TempDir) {
    state_on(
        free_release,
        admin,
        jobs,
        Arc::new(MemoryOperators::new()),
        Arc::new(MemoryAudit::new()),
        false,
    )
    .await
}

/// [`state_with`] on the given operators and audit log, with the access log on or off.
async fn state_on(
    free_release: Option<chrono::DateTime<Utc>>,
    admin: AdminAuth,
    jobs: Option<Arc<dyn JobQueue>>,
    operators: Arc<dyn monsoon_catalog::operators::Operators>,
    audit: Arc<dyn monsoon_catalog::operators::AuditLog>,
    access_log: bool,
) -> (AppState, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let staging = Staging::create(tmp.path(), "film", "v1").unwrap();
    let dir = staging.path();
    std::fs::create_dir_all(dir.join("v360")).unwrap();
    let master = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n{}#EXT-X-STREAM-INF:BANDWIDTH=500000,RESOLUTION=640x360\nv1/v360/index.m3u8\n",
        "#EXT-X-INDEPENDENT-SEGMENTS\n".repeat(10)
    );
    std::fs::write(dir.join("master.m3u8"), master).unwrap();
    std::fs::write(dir.join("manifest.mpd"), "<MPD/>").unwrap();
    std::fs::write(
        dir.join("v360/index.m3u8"),
        "#EXTM3U\n#EXTINF:6,\nseg_00000.m4s\n",
    )
    .unwrap();
    std::fs::write(dir.join("v360/init.mp4"), b"init").unwrap();
    std::fs::write(
        dir.join("v360/seg_00000.m4s"),
        (0..=255u8).collect::<Vec<u8>>(),
    )
    .unwrap();
    std::fs::write(dir.join("poster.jpg"), b"\xff\xd8jpeg").unwrap();

    let films = Arc::new(MemoryFilms::new());
    let media = Arc::new(MemoryStore::new());
    let meta = FilmMeta {
        free_release: free_release.map(|at| at.fixed_offset()),
        ..FilmMeta::untitled("film")
    };
    Publisher {
        films: films.as_ref(),
        media: media.as_ref(),
    }
    .publish("film", &meta, staging, &version("v1"), async {})
    .await
    .unwrap();
    let audience = Audience::open(
        Config {
            proof_bits: 0,
            min_beat_gap_ms: 0,
            ..Config::default()
        },
        b"key".to_vec(),
        Arc::new(monsoon_audience::memory::MemoryStore::new()),
    )
    .await
    .unwrap();
    let options = Options {
        hot: HotCache::new(1 << 20, 1 << 20),
        web_dir: tmp.path().join("web"),
        access_log,
        admin,
        public_url: Some("http://monsoon.test".into()),
        fast_path: false,
        trusted_proxies: TrustedProxies::default(),
        metrics: MetricsAccess::Public,
        jobs,
        operators,
        audit,
    };
    let state = AppState::new(films, media, Arc::new(audience), options)
        .await
        .unwrap();
    (state, tmp)
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: bytes::Bytes,
}

async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        request = request.header(header::HOST, "monsoon.test");
    }
    let response = app(state.clone())
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

async fn get(state: &AppState, uri: &str, headers: &[(&str, &str)]) -> Answer {
    call(state, "GET", uri, headers, "").await
}

#[tokio::test]
async fn media_comes_with_its_validators_ranges_and_caching() {
    let (state, _tmp) = state(None).await;
    let master = get(&state, "/media/film/master.m3u8", &[]).await;
    assert_eq!(master.status, StatusCode::OK);
    assert!(master.body.starts_with(b"#EXTM3U"));
    assert!(
        master.headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("max-age=60")
    );

    let segment = "/media/film/v1/v360/seg_00000.m4s";
    let whole = get(&state, segment, &[]).await;
    assert_eq!(whole.body.len(), 256);
    assert!(
        whole.headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let etag = whole.headers[header::ETAG].to_str().unwrap().to_owned();

    let part = get(&state, segment, &[("range", "bytes=10-19")]).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers[header::CONTENT_RANGE], "bytes 10-19/256");
    assert_eq!(&part.body[..], &(10..20u8).collect::<Vec<u8>>()[..]);

    let cached = get(&state, segment, &[("if-none-match", &etag)]).await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    let past = get(&state, segment, &[("range", "bytes=900-")]).await;
    assert_eq!(past.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(past.headers[header::CONTENT_RANGE], "bytes */256");

    let gzip = get(
        &state,
        "/media/film/master.m3u8",
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(gzip.headers[header::CONTENT_ENCODING], "gzip");
    assert_eq!(gzip.headers[header::VARY], "accept-encoding");

    for missing in [
        "/media/film/v1/v360/seg_00001.m4s",
        "/media/film/v2/v360/init.mp4",
        "/media/nope/master.m3u8",
    ] {
        assert_eq!(
            get(&state, missing, &[]).await.status,
            StatusCode::NOT_FOUND,
            "{missing}"
        );
    }
}

/// Players on other origins must be able to read every media answer, refusals and errors
/// included (a 403 before the premiere, a 404), and to send `Range` after a preflight.
#[tokio::test]
async fn every_media_answer_is_readable_across_origins() {
    let (state, _tmp) = state(None).await;
    let origin = [("origin", "https://player.example")];
    let segment = "/media/film/v1/v360/seg_00000.m4s";
    let etag = get(&state, segment, &[]).await.headers[header::ETAG]
        .to_str()
        .unwrap()
        .to_owned();
    for (uri, extra, status) in [
        (segment, None, StatusCode::OK),
        (
            segment,
            Some(("range", "bytes=0-9")),
            StatusCode::PARTIAL_CONTENT,
        ),
        (
            segment,
            Some(("if-none-match", etag.as_str())),
            StatusCode::NOT_MODIFIED,
        ),
        (
            segment,
            Some(("if-match", "\"other\"")),
            StatusCode::PRECONDITION_FAILED,
        ),
        (
            segment,
            Some(("range", "bytes=900-")),
            StatusCode::RANGE_NOT_SATISFIABLE,
        ),
        ("/media/film/v1/v360/nope.m4s", None, StatusCode::NOT_FOUND),
    ] {
        let mut headers = origin.to_vec();
        headers.extend(extra);
        let answer = get(&state, uri, &headers).await;
        assert_eq!(answer.status, status, "{uri} {extra:?}");
        assert_eq!(
            answer.headers["access-control-allow-origin"], "*",
            "{uri} {extra:?}"
        );
        assert_eq!(
            answer.headers.get_all(header::VARY).iter().count(),
            1,
            "one Vary line: {uri} {extra:?}"
        );
    }
    let preflight = call(
        &state,
        "OPTIONS",
        segment,
        &[
            ("origin", "https://player.example"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "range"),
        ],
        "",
    )
    .await;
    assert_eq!(preflight.status, StatusCode::OK);
    assert_eq!(preflight.headers["access-control-allow-origin"], "*");
    let allowed = preflight.headers["access-control-allow-headers"]
        .to_str()
        .unwrap();
    assert!(allowed.contains("range"), "{allowed}");
}

#[tokio::test]
async fn before_the_premiere_only_the_artwork_is_served() {
    let (state, _tmp) = state(Some(Utc::now() + Duration::days(30))).await;
    for path in [
        "/media/film/master.m3u8",
        "/media/film/v1/v360/seg_00000.m4s",
        "/media/film/v1/v360/init.mp4",
        "/media/film/v1/poster.jpg",
        "/media/film/v9/nothing.m4s",
    ] {
        let answer = get(&state, path, &[]).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(answer.headers[header::CACHE_CONTROL], "max-age=5", "{path}");
    }
    let poster = get(&state, "/media/film/poster.jpg", &[]).await;
    assert_eq!(poster.status, StatusCode::OK);
    assert_eq!(poster.headers[header::CACHE_CONTROL], "public, max-age=300");
    let film: Value =
        serde_json::from_slice(&get(&state, "/api/v1/films/film", &[]).await.body).unwrap();
    assert_eq!(film["poster_url"], "/media/film/poster.jpg");
    assert!(
        film["published_at"].is_null() && film["thumbnails_url"].is_null(),
        "{film}"
    );
    assert_eq!(
        call(&state, "POST", "/api/v1/films/film/sessions", &[], "")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_session_is_minted_beats_and_counts() {
    let (state, _tmp) = state(None).await;
    let minted = call(&state, "POST", "/api/v1/films/film/sessions", &[], "").await;
    assert_eq!(minted.status, StatusCode::CREATED);
    let minted: Value = serde_json::from_slice(&minted.body).unwrap();
    let id = minted["session_id"].as_str().unwrap();
    let body = format!(
        r#"{{"token":"{}","seq":1,"state":"playing","play_ms":0}}"#,
        minted["token"].as_str().unwrap()
    );
    let beat = call(
        &state,
        "POST",
        &format!("/api/v1/sessions/{id}/heartbeat"),
        &[],
        &body,
    )
    .await;
    assert_eq!(beat.status, StatusCode::NO_CONTENT);
    assert_eq!(beat.headers["x-monsoon-beat"], "accepted");
    let again = call(
        &state,
        "POST",
        &format!("/api/v1/sessions/{id}/heartbeat"),
        &[],
        &body,
    )
    .await;
    assert_eq!(again.headers["x-monsoon-beat"], "duplicate");
    let stats: Value =
        serde_json::from_slice(&get(&state, "/api/v1/films/film/stats", &[]).await.body).unwrap();
    assert_eq!(
        (
            stats["sessions"].as_u64(),
            stats["concurrent_viewers"].as_u64()
        ),
        (Some(1), Some(1))
    );

    // Out of bounds: refused with the field named, nothing counted.
    let hostile = body
        .replace(r#""play_ms":0"#, r#""play_ms":18446744073709551615"#)
        .replace(r#""seq":1"#, r#""seq":2"#);
    let refused = call(
        &state,
        "POST",
        &format!("/api/v1/sessions/{id}/heartbeat"),
        &[],
        &hostile,
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&refused.body).contains("play_ms"));
}

#[tokio::test]
async fn a_request_without_exactly_one_valid_host_is_refused() {
    let (state, _tmp) = state(None).await;
    assert_eq!(get(&state, "/healthz", &[]).await.status, StatusCode::OK);
    let bad = get(&state, "/healthz", &[("host", "bad host")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

/// What a tracing subscriber writes, kept for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn with_the_access_log_on_every_answer_has_its_line_refusals_too() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let lines = || {
        let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .filter(|l| l.contains("monsoon::access"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };

    let (quiet, _tmp) = state(None).await;
    assert_eq!(get(&quiet, "/healthz", &[]).await.status, StatusCode::OK);
    assert!(
        lines().is_empty(),
        "logged with the access log off: {:?}",
        lines()
    );

    let (state, _tmp) = state_on(
        None,
        AdminAuth::new(None, 10, SessionTimes::default()).unwrap(),
        None,
        Arc::new(MemoryOperators::new()),
        Arc::new(MemoryAudit::new()),
        true,
    )
    .await;
    let segment = get(&state, "/media/film/v1/v360/seg_00000.m4s", &[]).await;
    assert_eq!(segment.status, StatusCode::OK);
    let refused = get(&state, "/healthz", &[("host", "bad host")]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let lines = lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, wanted) in lines.iter().zip([
        "method=GET path=/media/film/v1/v360/seg_00000.m4s status=200 bytes=\"256\"",
        "method=GET path=/healthz status=400",
    ]) {
        assert!(line.contains(wanted), "`{line}` lacks `{wanted}`");
        assert!(line.contains("micros="), "`{line}` lacks its time");
    }
}

/// The operator's token of the job tests.
const TOKEN: &str = "router-test-admin-token";

/// A job for `slug` whose master is `/srv/masters/<slug>.mov`, ten minutes long.
fn new_job(slug: &str) -> NewJob {
    NewJob {
        slug: slug.into(),
        master: format!("/srv/masters/{slug}.mov"),
        film_toml: Some("title = \"secret\"\n".into()),
        options: serde_json::json!({"quality": "fast", "meta_dir": "/srv/meta"}),
        duration_s: 600.0,
        max_attempts: 3,
    }
}

#[tokio::test]
async fn the_jobs_api_is_the_operators_and_shows_the_queue_without_paths() {
    let admin = || {
        AdminAuth::new(
            Some(hash_token(TOKEN).unwrap()),
            10,
            SessionTimes::default(),
        )
        .unwrap()
    };
    let bearer = format!("Bearer {TOKEN}");
    let signed_in = [("authorization", bearer.as_str())];

    // Without a queue (a SQLite database): 404, saying what jobs need, never cached.
    let (state, _tmp) = state_with(None, admin(), None).await;
    let none = get(&state, "/admin/api/jobs", &signed_in).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert_eq!(none.headers[header::CACHE_CONTROL], "no-store");
    let error: Value = serde_json::from_slice(&none.body).unwrap();
    assert_eq!(error["code"], "not_found");
    assert!(
        error["message"].as_str().unwrap().contains("PostgreSQL"),
        "{error}"
    );
    // The dashboard's jobs section starts hidden; its script shows it when the API answers.
    let page = get(&state, "/admin", &signed_in).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        String::from_utf8_lossy(&page.body).contains(r#"<section id="jobs" class="jobs" hidden"#)
    );

    // A queue with a running job (half done at 2× real time) and a newer queued one.
    let queue = Arc::new(MemoryJobs::new());
    let running = queue.submit(&new_job("mua-do")).await.unwrap();
    let lease = std::time::Duration::from_secs(30);
    queue.claim("node:1", lease).await.unwrap().unwrap();
    let progress = JobProgress {
        percent: 50.0,
        speed: 2.0,
        stage: Stage::Transcoding {
            attempt: 1,
            of: 3,
            worker: "node:1".into(),
        },
    };
    assert!(
        queue
            .renew(running.id, "node:1", lease, &progress)
            .await
            .unwrap()
    );
    let queued = queue.submit(&new_job("song-hong")).await.unwrap();
    let (state, _tmp) = state_with(None, admin(), Some(queue.clone() as Arc<dyn JobQueue>)).await;

    // Nobody signed in: 401, whatever the request.
    for (method, uri) in [
        ("GET", "/admin/api/jobs"),
        ("GET", "/admin/api/jobs?limit=0"),
        ("GET", "/admin/api/jobs/1/log"),
        ("POST", "/admin/api/jobs/1/cancel"),
    ] {
        let refused = call(&state, method, uri, &[], "").await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert_eq!(refused.headers[header::CACHE_CONTROL], "no-store");
    }
    assert_eq!(
        queue.get(running.id).await.unwrap().unwrap().state,
        JobState::Running
    );

    let listed = get(&state, "/admin/api/jobs", &signed_in).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.headers[header::CACHE_CONTROL], "no-store");
    let text = String::from_utf8_lossy(&listed.body);
    // No path the workers open reaches the page: the master's name only.
    assert!(
        !text.contains("/srv/") && !text.contains("secret"),
        "{text}"
    );
    let body: Value = serde_json::from_slice(&listed.body).unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(body["now"].as_str().unwrap()).is_ok());
    let jobs = body["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    // Newest first.
    let (first, second) = (&jobs[0], &jobs[1]);
    assert_eq!(first["id"], queued.id);
    assert_eq!(first["slug"], "song-hong");
    assert_eq!(first["master_name"], "song-hong.mov");
    assert_eq!(first["state"], "queued");
    assert_eq!(first["attempts"], 0);
    assert!(first["eta_s"].is_null() && first["lease_owner"].is_null());
    assert!(first["started_at"].is_null());
    assert_eq!(second["id"], running.id);
    assert_eq!(second["state"], "running");
    assert_eq!(second["master_name"], "mua-do.mov");
    assert_eq!(
        (second["percent"].as_f64(), second["speed"].as_f64()),
        (Some(50.0), Some(2.0))
    );
    // 300 s of film left at 2× real time, as `monsoon jobs` computes it (`Job::eta_s`).
    assert_eq!(second["eta_s"].as_f64(), Some(150.0));
    assert_eq!(
        (second["attempts"].as_u64(), second["max_attempts"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(second["lease_owner"], "node:1");
    assert_eq!(
        second["message"],
        "transcoding (attempt 1 of 3, worker node:1)"
    );
    // The stage as data, for the pages to say in their language.
    assert_eq!(
        second["stage"],
        serde_json::json!({"name": "transcoding", "attempt": 1, "of": 3, "worker": "node:1"})
    );
    assert!(second["started_at"].is_string() && second["finished_at"].is_null());
    for job in jobs {
        for key in ["master", "film_toml", "options"] {
            assert!(job.get(key).is_none(), "{key} in {job}");
        }
    }

    // `limit`: the newest so many, within 1..=500; anything else refused, naming it.
    let one = get(&state, "/admin/api/jobs?limit=1", &signed_in).await;
    let one: Value = serde_json::from_slice(&one.body).unwrap();
    assert_eq!(one["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(one["jobs"][0]["id"], queued.id);
    for bad in ["0", "501", "-3", "many", ""] {
        let refused = get(&state, &format!("/admin/api/jobs?limit={bad}"), &signed_in).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "limit={bad}");
        assert_eq!(refused.headers[header::CACHE_CONTROL], "no-store");
        let message = serde_json::from_slice::<Value>(&refused.body).unwrap()["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            message.contains(&format!("limit=\"{bad}\"")) && message.contains("from 1 to 500"),
            "{message}"
        );
    }

    // Cancelling: the queued job once (then it is over: 409); no such job 404; a bad id 400.
    let cancel = |id: &str| format!("/admin/api/jobs/{id}/cancel");
    let cancelled = call(&state, "POST", &cancel("2"), &signed_in, "").await;
    assert_eq!(cancelled.status, StatusCode::OK);
    let job: Value = serde_json::from_slice(&cancelled.body).unwrap();
    assert_eq!(
        (job["id"].as_i64(), job["state"].as_str()),
        (Some(2), Some("cancelled"))
    );
    // Recorded in the audit log, as done by the token.
    let entries = state.audit.list(10, None).await.unwrap();
    let entry = entries
        .iter()
        .find(|e| e.action == "job_cancelled")
        .expect("no audit entry for the cancel");
    assert_eq!(
        (entry.actor.as_str(), entry.subject.as_str()),
        ("token", "2")
    );
    assert_eq!(entry.detail["slug"], "song-hong");
    let again = call(&state, "POST", &cancel("2"), &signed_in, "").await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(String::from_utf8_lossy(&again.body).contains("job 2 is cancelled"));
    assert_eq!(
        call(&state, "POST", &cancel("99"), &signed_in, "")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let bad = call(&state, "POST", &cancel("0"), &signed_in, "").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&bad.body).contains(r#"job id \"0\""#));
    assert_eq!(
        queue.get(running.id).await.unwrap().unwrap().state,
        JobState::Running
    );

    // Each job's log, oldest line first, times on the queue's clock: the running one claimed
    // by its worker, then its stage (one line, however many ticks); the cancelled one naming
    // who cancelled it.
    let log = |id: &str| format!("/admin/api/jobs/{id}/log");
    let lines = |body: &[u8]| -> Vec<String> {
        let body: Value = serde_json::from_slice(body).unwrap();
        body["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                assert!(chrono::DateTime::parse_from_rfc3339(l["at"].as_str().unwrap()).is_ok());
                assert!(l["stage"]["name"].is_string(), "{l}");
                l["line"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    let running_log = get(&state, &log(&running.id.to_string()), &signed_in).await;
    assert_eq!(running_log.status, StatusCode::OK);
    assert_eq!(running_log.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(
        lines(&running_log.body),
        [
            "queued",
            "attempt 1 of 3: claimed by worker node:1",
            "transcoding (attempt 1 of 3, worker node:1)"
        ]
    );
    let cancelled_log = get(&state, &log("2"), &signed_in).await;
    let body: Value = serde_json::from_slice(&cancelled_log.body).unwrap();
    assert_eq!(
        (body["id"].as_i64(), body["state"].as_str()),
        (Some(2), Some("cancelled"))
    );
    assert_eq!(
        lines(&cancelled_log.body),
        ["queued", "cancelled by operator token"]
    );
    assert_eq!(
        get(&state, &log("99"), &signed_in).await.status,
        StatusCode::NOT_FOUND
    );
    let bad = get(&state, &log("x1"), &signed_in).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&bad.body).contains(r#"job id \"x1\""#));
}

/// Every route under `/admin` that the server's source declares, as `(path, methods)`: the
/// string literal after each `.route(` in `crates/server/src`, whichever module adds it.
/// Parameters (`{id}`) are filled with `1`.
fn admin_routes() -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (at, _) in text.match_indices(".route(") {
                    let rest = &text[at..];
                    let Some(open) = rest.find('"') else { continue };
                    let literal = &rest[open + 1..];
                    let route = &literal[..literal.find('"').unwrap()];
                    if route == "/admin" || route.starts_with("/admin/") {
                        out.push(route.to_owned());
                    }
                }
            }
        }
    }
    let mut routes = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut routes,
    );
    routes.sort();
    routes.dedup();
    routes
        .into_iter()
        .map(|route| {
            route
                .split('/')
                .map(|part| if part.starts_with('{') { "1" } else { part })
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect()
}

/// A session of operator `lan`, started in the state's database as a sign-in would: the
/// cookie header value, and its CSRF token (as the page's meta tag holds it).
async fn session(state: &AppState) -> (String, String) {
    use sha2::Digest;
    let secret = [42u8; 32];
    let _ = state
        .operators
        .create("lan", &hash_token("lan's long password").unwrap())
        .await;
    state
        .operators
        .start_session(
            &hex::encode(sha2::Sha256::digest(secret)),
            "lan",
            std::time::Duration::from_secs(3600),
        )
        .await
        .unwrap();
    let cookie = format!("monsoon_admin={}", hex::encode(secret));
    let page = get(state, "/admin", &[("cookie", &cookie)]).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = String::from_utf8_lossy(&page.body).into_owned();
    let csrf = html
        .split(r#"<meta name="csrf-token" content=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("no csrf-token meta tag on the dashboard")
        .to_owned();
    assert_eq!(csrf.len(), 64, "{csrf}");
    assert!(
        html.contains(&format!(r#"name="_csrf" value="{csrf}""#)),
        "the sign-out form has no _csrf field"
    );
    (cookie, csrf)
}

/// The acceptance rule "no form accepts a request without its CSRF token", for every route
/// under /admin the source declares (a route added tomorrow is in the list): with a valid
/// session cookie, each state-changing method is refused with 403 without the token, with
/// another session's, in the header or in a form's field. The token makes the same request
/// pass the guard, and a Bearer request needs none.
#[tokio::test]
async fn every_state_changing_admin_request_needs_the_sessions_csrf_token() {
    let admin = AdminAuth::new(
        Some(hash_token(TOKEN).unwrap()),
        10,
        SessionTimes::default(),
    );
    let (state, _tmp) = state_with(None, admin.unwrap(), None).await;
    let (cookie, csrf) = session(&state).await;
    let routes = admin_routes();
    for known in [
        "/admin/login",
        "/admin/logout",
        "/admin/api/jobs/1/cancel",
        "/admin/api/audit",
    ] {
        assert!(
            routes.contains(&known.to_owned()),
            "{known} not found in {routes:?}"
        );
    }
    let other = "0".repeat(64);
    let form = "application/x-www-form-urlencoded";
    for route in &routes {
        for method in ["POST", "PUT", "PATCH", "DELETE"] {
            for (headers, body) in [
                (vec![("cookie", cookie.as_str())], String::new()),
                (
                    vec![
                        ("cookie", cookie.as_str()),
                        ("x-csrf-token", other.as_str()),
                    ],
                    String::new(),
                ),
                (
                    vec![("cookie", cookie.as_str()), ("content-type", form)],
                    format!("_csrf={other}&name=x"),
                ),
                (
                    vec![("cookie", cookie.as_str()), ("content-type", form)],
                    "name=x".to_owned(),
                ),
            ] {
                let answer = call(&state, method, route, &headers, &body).await;
                assert_eq!(
                    answer.status,
                    StatusCode::FORBIDDEN,
                    "{method} {route} with {headers:?} {body:?} was not refused"
                );
            }
        }
    }
    // The session is intact and nothing was done: no sign-out was recorded.
    assert_eq!(
        get(&state, "/admin/api/audit", &[("cookie", &cookie)])
            .await
            .status,
        StatusCode::OK
    );
    let refused = call(
        &state,
        "POST",
        "/admin/api/jobs/1/cancel",
        &[("cookie", &cookie)],
        "",
    )
    .await;
    let message: Value = serde_json::from_slice(&refused.body).unwrap();
    assert!(
        message["message"]
            .as_str()
            .unwrap()
            .contains("X-CSRF-Token"),
        "{message}"
    );
    assert!(state.audit.list(10, None).await.unwrap().is_empty());

    // With the token (header or field), the guard lets the request through to its handler.
    let with_header = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let passed = call(&state, "POST", "/admin/api/jobs/1/cancel", &with_header, "").await;
    assert_eq!(passed.status, StatusCode::NOT_FOUND, "no job queue here");
    let bearer = format!("Bearer {TOKEN}");
    let scripted = call(
        &state,
        "POST",
        "/admin/api/jobs/1/cancel",
        &[("authorization", &bearer)],
        "",
    )
    .await;
    assert_eq!(scripted.status, StatusCode::NOT_FOUND);
    let signed_out = call(
        &state,
        "POST",
        "/admin/logout",
        &[("cookie", &cookie), ("content-type", form)],
        &format!("_csrf={csrf}"),
    )
    .await;
    assert_eq!(signed_out.status, StatusCode::SEE_OTHER);
    assert_eq!(
        get(&state, "/admin/api/audit", &[("cookie", &cookie)])
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "the session outlived its sign-out"
    );
    let entries = state.audit.list(10, None).await.unwrap();
    assert_eq!(
        (entries[0].action.as_str(), entries[0].actor.as_str()),
        ("sign_out", "lan")
    );

    // The sign-in form: its field must match its cookie.
    for (headers, body) in [
        (
            vec![("content-type", form)],
            format!("_csrf={other}&token={TOKEN}"),
        ),
        (
            vec![("content-type", form), ("cookie", "monsoon_login=abc")],
            format!("_csrf={other}&token={TOKEN}"),
        ),
        (
            vec![("content-type", form), ("cookie", "monsoon_login=abc")],
            format!("token={TOKEN}"),
        ),
    ] {
        let answer = call(&state, "POST", "/admin/login", &headers, &body).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{headers:?} {body}");
        assert!(
            answer
                .headers
                .get(header::SET_COOKIE)
                .is_some_and(|c| c.to_str().unwrap().starts_with("monsoon_login="))
        );
    }
    let signed_in = call(
        &state,
        "POST",
        "/admin/login",
        &[("content-type", form), ("cookie", "monsoon_login=abc")],
        &format!("_csrf=abc&token={TOKEN}"),
    )
    .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
}

/// The text of an answer's body.
fn text(answer: &Answer) -> String {
    String::from_utf8_lossy(&answer.body).into_owned()
}

/// The operators' page (crates/server/src/operators.rs) on a real SQLite file: accounts added
/// by the CLI's rules (a bad name and a short password refused naming the value and the rule),
/// a generated password shown once and working, disable, enable and a new password, an
/// operator refused disabling themself, every form refused without the session's CSRF token,
/// and every change in the audit log with who did it and no password in it.
#[tokio::test]
async fn operators_are_managed_from_the_studio_by_the_clis_rules_guarded_and_audited() {
    use monsoon_catalog::operators::{AuditLog, NAME_RULE, Operators, verify_password};
    let db_dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        monsoon_db::SqliteCatalog::open(&db_dir.path().join("catalog.db"))
            .await
            .unwrap(),
    );
    let (state, _tmp) = state_on(
        None,
        AdminAuth::new(
            Some(hash_token(TOKEN).unwrap()),
            10,
            SessionTimes::default(),
        )
        .unwrap(),
        None,
        Arc::clone(&db) as Arc<dyn Operators>,
        Arc::clone(&db) as Arc<dyn AuditLog>,
        false,
    )
    .await;
    let (cookie, csrf) = session(&state).await;
    let form = "application/x-www-form-urlencoded";
    let with_form = [("cookie", cookie.as_str()), ("content-type", form)];
    let post = |uri: &'static str, body: String| {
        let state = state.clone();
        let headers = with_form;
        async move { call(&state, "POST", uri, &headers, &body).await }
    };

    // Signed out: the page sends to the sign-in, the API and the forms answer 401.
    let page = get(&state, "/admin/operators", &[]).await;
    assert!(page.status.is_redirection(), "{}", page.status);
    assert_eq!(
        get(&state, "/admin/api/operators", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    let stranger = call(
        &state,
        "POST",
        "/admin/operators",
        &[("content-type", form)],
        "name=eve&password=eve%27s+long+password",
    )
    .await;
    assert_eq!(stranger.status, StatusCode::UNAUTHORIZED);

    // The studio's nav links the page, which lists the signed-in operator.
    let films = get(&state, "/admin/films", &[("cookie", &cookie)]).await;
    assert!(text(&films).contains(r#"href="/admin/operators""#));
    let page = get(&state, "/admin/operators", &[("cookie", &cookie)]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        text(&page).contains(r#"data-operator="lan""#),
        "{}",
        text(&page)
    );
    assert!(text(&page).contains(&format!(r#"name="_csrf" value="{csrf}""#)));

    // Added by the CLI's rules.
    let added = post(
        "/admin/operators",
        format!("_csrf={csrf}&name=mai&password=mai%27s+long+password"),
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", text(&added));
    assert!(text(&added).contains(r#"data-operator="mai""#));
    let mai = db.find("mai").await.unwrap().unwrap();
    assert!(verify_password(&mai.password_hash, "mai's long password"));
    assert_eq!(mai.disabled_at, None);
    let bad_name = post(
        "/admin/operators",
        format!("_csrf={csrf}&name=Bad+Name&password=a+long+enough+password"),
    )
    .await;
    assert_eq!(bad_name.status, StatusCode::BAD_REQUEST);
    // Refusals are in the page's language: Vietnamese unless English is chosen.
    assert!(
        text(&bad_name).contains("Tên “Bad Name” không hợp lệ: từ 1 đến 32 ký tự"),
        "{}",
        text(&bad_name)
    );
    let in_english = post(
        "/admin/operators?lang=en",
        format!("_csrf={csrf}&name=Bad+Name&password=a+long+enough+password"),
    )
    .await;
    assert_eq!(in_english.status, StatusCode::BAD_REQUEST);
    assert!(text(&in_english).contains("operator name `Bad Name` is not valid"));
    let rule_start = NAME_RULE.split('\'').next().unwrap();
    assert!(
        text(&in_english).contains(rule_start),
        "{rule_start} not said"
    );
    assert!(
        text(&bad_name).contains(r#"value="Bad Name""#),
        "the typed name is not kept"
    );
    let short = post(
        "/admin/operators",
        format!("_csrf={csrf}&name=binh&password=short"),
    )
    .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(
        text(&short).contains("Mật khẩu 5 ký tự bị từ chối: mật khẩu cần từ 12 đến 128 ký tự"),
        "{}",
        text(&short)
    );
    let taken = post(
        "/admin/operators",
        format!("_csrf={csrf}&name=mai&password=another+long+password"),
    )
    .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(text(&taken).contains("Đã có người vận hành tên “mai”"));
    assert!(db.find("binh").await.unwrap().is_none(), "a refusal saved");
    let names: Vec<String> = Operators::list(db.as_ref())
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["lan", "mai"]);

    // A generated password, shown once, signs in.
    let generated = post(
        "/admin/operators",
        format!("_csrf={csrf}&name=binh&generate=on"),
    )
    .await;
    assert_eq!(
        generated.status,
        StatusCode::CREATED,
        "{}",
        text(&generated)
    );
    assert_eq!(
        generated.headers.get(header::CACHE_CONTROL).unwrap(),
        "no-store"
    );
    let shown = text(&generated)
        .split(r#"<code id="generated-password">"#)
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("no generated password on the page")
        .to_owned();
    assert_eq!(shown.chars().count(), 20, "{shown}");
    let binh = db.find("binh").await.unwrap().unwrap();
    assert!(verify_password(&binh.password_hash, &shown));
    let again = get(&state, "/admin/operators", &[("cookie", &cookie)]).await;
    assert!(
        !text(&again).contains(&shown),
        "the password is shown twice"
    );

    // No operator disables themself; the account stays active.
    let own = post("/admin/operators/lan/disable", format!("_csrf={csrf}")).await;
    assert_eq!(own.status, StatusCode::CONFLICT);
    assert!(
        text(&own).contains("“lan” là tài khoản của chính bạn: không thể tự khóa"),
        "{}",
        text(&own)
    );
    assert_eq!(db.find("lan").await.unwrap().unwrap().disabled_at, None);

    // Without the session's token, nothing is done.
    for (uri, body) in [
        ("/admin/operators/mai/disable", String::new()),
        (
            "/admin/operators/mai/password",
            "password=a+new+long+password".to_owned(),
        ),
        (
            "/admin/operators",
            "name=eve&password=eve%27s+long+password".to_owned(),
        ),
    ] {
        let refused = post(uri, body).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{uri}");
    }
    assert_eq!(
        db.find("mai").await.unwrap().unwrap(),
        mai,
        "changed without a token"
    );
    assert!(db.find("eve").await.unwrap().is_none());

    // Disable, enable, a new password.
    let disabled = post("/admin/operators/mai/disable", format!("_csrf={csrf}")).await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", text(&disabled));
    assert!(db.find("mai").await.unwrap().unwrap().disabled_at.is_some());
    let twice = post("/admin/operators/mai/disable", format!("_csrf={csrf}")).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    let enabled = post("/admin/operators/mai/enable", format!("_csrf={csrf}")).await;
    assert_eq!(enabled.status, StatusCode::OK, "{}", text(&enabled));
    assert_eq!(db.find("mai").await.unwrap().unwrap().disabled_at, None);
    let twice = post("/admin/operators/mai/enable", format!("_csrf={csrf}")).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert!(text(&twice).contains("Tài khoản “mai” đang hoạt động rồi"));
    let reset = post(
        "/admin/operators/mai/password",
        format!("_csrf={csrf}&password=mai%27s+new+password"),
    )
    .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", text(&reset));
    let mai = db.find("mai").await.unwrap().unwrap();
    assert!(verify_password(&mai.password_hash, "mai's new password"));
    let short = post(
        "/admin/operators/mai/password",
        format!("_csrf={csrf}&password=tiny"),
    )
    .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(text(&short).contains("Mật khẩu 4 ký tự bị từ chối"));
    for (uri, status) in [
        ("/admin/operators/nobody/disable", StatusCode::NOT_FOUND),
        ("/admin/operators/nobody/enable", StatusCode::NOT_FOUND),
        (
            "/admin/operators/No%20Body/disable",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let answer = post(uri, format!("_csrf={csrf}")).await;
        assert_eq!(answer.status, status, "{uri}: {}", text(&answer));
    }
    let big = post(
        "/admin/operators",
        format!("_csrf={csrf}&name=big&password={}", "x".repeat(8000)),
    )
    .await;
    assert!(big.status.is_client_error(), "{}", big.status);
    assert!(db.find("big").await.unwrap().is_none());

    // The API lists the accounts without their hashes; `lan` signed in.
    let listed = get(&state, "/admin/api/operators", &[("cookie", &cookie)]).await;
    assert_eq!(listed.status, StatusCode::OK);
    let listed: Value = serde_json::from_slice(&listed.body).unwrap();
    let operators = listed["operators"].as_array().unwrap();
    assert_eq!(operators.len(), 3);
    assert_eq!(operators[1]["name"], "lan");
    assert!(operators[1]["last_sign_in_at"].is_string(), "{listed}");
    assert!(operators[0]["last_sign_in_at"].is_null(), "{listed}");
    assert!(!listed.to_string().contains("argon2"), "{listed}");

    // Every change is in the audit log, done by `lan`, and no password is.
    let audit = get(&state, "/admin/api/audit", &[("cookie", &cookie)]).await;
    let audit: Value = serde_json::from_slice(&audit.body).unwrap();
    let done: Vec<(String, String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
                e["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("operator_password_set", "mai"),
        ("operator_enabled", "mai"),
        ("operator_disabled", "mai"),
        ("operator_created", "binh"),
        ("operator_created", "mai"),
    ];
    assert_eq!(
        done,
        expected
            .iter()
            .map(|(a, s)| ("lan".to_owned(), (*a).to_owned(), (*s).to_owned()))
            .collect::<Vec<_>>(),
        "{audit}"
    );
    assert_eq!(audit["entries"][3]["detail"]["generated"], true);
    for secret in [shown.as_str(), "mai's new password", "mai%27s"] {
        assert!(
            !audit.to_string().contains(secret),
            "{secret} in the audit log"
        );
    }

    // The admin token (a script; it needs no CSRF token) disables the others, but not the
    // last active account: someone can always sign in.
    let bearer = format!("Bearer {TOKEN}");
    let script = [("authorization", bearer.as_str()), ("content-type", form)];
    for name in ["mai", "binh"] {
        let uri = format!("/admin/operators/{name}/disable");
        let answer = call(&state, "POST", &uri, &script, "").await;
        assert_eq!(answer.status, StatusCode::OK, "{name}: {}", text(&answer));
    }
    let last = call(&state, "POST", "/admin/operators/lan/disable", &script, "").await;
    assert_eq!(last.status, StatusCode::CONFLICT);
    assert!(
        text(&last).contains("“lan” là tài khoản người vận hành cuối cùng còn hoạt động"),
        "{}",
        text(&last)
    );
    assert_eq!(db.find("lan").await.unwrap().unwrap().disabled_at, None);
    let newest = AuditLog::list(db.as_ref(), 1, None).await.unwrap();
    assert_eq!(
        (
            newest[0].actor.as_str(),
            newest[0].action.as_str(),
            newest[0].subject.as_str()
        ),
        ("token", "operator_disabled", "binh")
    );
}

/// Sessions watching by rung over the last 24 hours on the dashboard: three players beat at
/// 360p, 720p and 720p, the engine samples its minute, and the dashboard's JSON carries the
/// rungs and a `rung:<height>` series each with those counts, and its CSV a column each, by
/// height.
#[tokio::test]
async fn the_dashboard_shows_sessions_watching_by_rung_over_the_day_in_json_and_csv() {
    let (state, _tmp) = state(None).await;
    let (cookie, _) = session(&state).await;
    for height in [360, 720, 720] {
        let minted = call(&state, "POST", "/api/v1/films/film/sessions", &[], "").await;
        assert_eq!(minted.status, StatusCode::CREATED);
        let minted: Value = serde_json::from_slice(&minted.body).unwrap();
        let beat = call(
            &state,
            "POST",
            &format!(
                "/api/v1/sessions/{}/heartbeat",
                minted["session_id"].as_str().unwrap()
            ),
            &[],
            &format!(
                r#"{{"token":"{}","seq":1,"state":"playing","play_ms":0,"height":{height}}}"#,
                minted["token"].as_str().unwrap()
            ),
        )
        .await;
        assert_eq!(beat.headers["x-monsoon-beat"], "accepted");
    }
    state.audience.sample().await.unwrap();

    let answer = get(
        &state,
        "/admin/api/dashboard?film=film",
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let json: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(json["rungs"], serde_json::json!([360, 720]), "{json}");
    let last = |series: &str| json["series"][series].as_array().unwrap().last().unwrap()[1].clone();
    assert_eq!(last("rung:360"), 1.0);
    assert_eq!(last("rung:720"), 2.0);
    assert_eq!(last("concurrent_viewers"), 3.0);
    assert!(
        json["series"]["rung:1080"].is_null(),
        "a rung nobody watched"
    );

    let csv = get(
        &state,
        "/admin/api/dashboard.csv?film=film",
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(csv.status, StatusCode::OK);
    let text = text(&csv);
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert!(
        lines[0].ends_with(",bytes,rung:360,rung:720"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(&format!("{},3,", &lines[1][..20])),
        "{text}"
    );
    assert!(lines[1].ends_with(",1,2"), "{text}");
}
