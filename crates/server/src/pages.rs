//! Viewer pages rendered on the server with askama (templates checked at compile time), in the
//! viewer's language ([`crate::i18n`]). They work without JavaScript; the player and the
//! premiere countdown add it.
//!
//! | path | page |
//! |---|---|
//! | `/` | catalog: a featured film, then rows |
//! | `/films/{slug}` | film page, or the premiere page (countdown) before the free release |
//! | `/films/{slug}/premiere.ics` | calendar event of the premiere ("remind me") |
//! | `/watch/{slug}` | player (303 to the film page before the premiere) |
//! | `/search?q=` | films whose title holds every word of `q`, with or without diacritics ([`crate::search`]); 400 past [`MAX_QUERY_CHARS`](crate::search::MAX_QUERY_CHARS) characters |
//! | any other path | 404 page ([`fallback`]); under `/api/`, `/admin/api/` and `/media/` the JSON error instead |
//!
//! A page that fails answers an error page in the viewer's language with the right status
//! ([`error_page`]): 404 (RFC 9110 §15.5.5), 400 (§15.5.1), 5xx (§15.6), each with a link
//! back to the catalog. The web app manifest and `/favicon.ico` are [`crate::webapp`]'s.
//!
//! Pages, and the operator's (`admin/`), carry [`page_headers`]: a Content-Security-Policy
//! that lets only this site's own scripts, styles, images and media load, plus the hashes of
//! the two inline scripts (the premiere countdown, the watch page's start); no framing; no referrer to other sites. Absolute
//! links (canonical, Open Graph, JSON-LD, calendar) come from configuration
//! ([`crate::Shared::site_url`]), never from the request's `Host`.

use std::collections::HashSet;
use std::sync::LazyLock;

use askama::Template;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::{DateTime, FixedOffset, Utc};
use monsoon_catalog::Film;

use crate::i18n::{self, Lang, Locale, Messages};
use crate::search::MAX_QUERY_CHARS;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/films/{slug}", get(film_page))
        .route("/films/{slug}/premiere.ics", get(premiere_ics))
        .route("/watch/{slug}", get(watch_page))
        .route("/search", get(search_page))
        .layer(axum::middleware::map_response(page_headers))
}

/// The premiere countdown, an inline script (so it runs without the built assets); the CSP
/// names its hash.
const COUNTDOWN_JS: &str = include_str!("../templates/countdown.js");

/// The watch page's start, its other inline script: it fetches the first segments of the floor
/// rung and its sound while the player's script is still on its way (docs/ARCHITECTURE.md,
/// "The player"). The CSP names its hash too.
const START_JS: &str = include_str!("../templates/start.js");

/// The Content-Security-Policy of every page (CSP Level 3, W3C): scripts, styles, images,
/// fonts, fetches and media from this origin only, plus the two inline scripts by their hashes.
/// hls.js plays through Media Source Extensions (`blob:` media URLs) and transmuxes in a worker
/// it starts from a `blob:` URL, and native HLS plays a slow first visit from `blob:`
/// playlists; nothing else needs an exception. No plugins (`object-src`), no
/// `<base>` rewriting relative URLs, forms post only here, and no site may frame a page
/// (`frame-ancestors`, with `X-Frame-Options` for older browsers): no clickjacking of the
/// operator's sign-in.
static CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = |script: &str| {
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script.as_bytes()))
    };
    let (countdown, start) = (hash(COUNTDOWN_JS), hash(START_JS));
    let policy = format!(
        "default-src 'self'; script-src 'self' 'sha256-{countdown}' 'sha256-{start}'; style-src 'self'; \
         img-src 'self'; media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    // Base64 and the fixed text are visible ASCII: this cannot fail, but if it did, the
    // stricter policy without the inline scripts would stand.
    HeaderValue::from_str(&policy).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        )
    })
});

/// The security headers of every page: [`CSP`], no framing (RFC 7034), and no `Referer` to
/// other sites (`same-origin`, Referrer Policy, W3C): a film or dashboard URL is nobody else's
/// business.
pub(crate) async fn page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, CSP.clone());
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// What every page's frame needs: language, stylesheet, icons, the language switch, the
/// search box.
#[derive(Debug)]
pub struct Chrome {
    pub lang: &'static str,
    pub css: String,
    /// The viewer pages' script (continue watching, share), for the pages that use it.
    pub js: String,
    pub icon_svg: String,
    pub apple_icon: String,
    /// What the search box shows: the query on the search page, else nothing.
    pub query: String,
    pub max_query: usize,
    /// The same page in the other language (a plain link: works without JavaScript).
    pub switch_href: String,
    pub switch_text: &'static str,
    pub switch_label: &'static str,
    pub switch_lang: &'static str,
}

impl Chrome {
    /// The frame of the page at `path`, which may carry a query (the switch adds `lang`).
    pub fn new(state: &AppState, locale: Locale, path: &str) -> Self {
        let other = locale.lang.other();
        let join = if path.contains('?') { '&' } else { '?' };
        Self {
            lang: locale.lang.code(),
            css: state.assets.url("site.css"),
            js: state.assets.url("site.js"),
            icon_svg: state.assets.url("icon.svg"),
            apple_icon: state.assets.url("apple-touch-icon.png"),
            query: String::new(),
            max_query: MAX_QUERY_CHARS,
            switch_href: format!("{path}{join}lang={}", other.code()),
            switch_text: locale.lang.messages().switch_to.as_str(),
            switch_label: locale.lang.messages().switch_label.as_str(),
            switch_lang: other.code(),
        }
    }
}

/// JSON for a `<script type="application/json">` or JSON-LD block: `<` is escaped so no
/// string can close the script element.
pub fn script_json(value: &serde_json::Value) -> String {
    value.to_string().replace('<', "\\u003c")
}

/// A film as a card or a hero.
#[derive(Debug)]
struct Card {
    slug: String,
    title: String,
    synopsis: String,
    poster: Option<String>,
    backdrop: Option<String>,
    premiere: Option<String>,
    /// Seconds, once it plays (the home page's script shows the viewer's progress with it).
    duration_s: Option<f64>,
}

impl Card {
    fn new(film: &Film, locale: Locale, now: DateTime<Utc>) -> Self {
        let lang = locale.lang.code();
        Self {
            slug: film.slug.clone(),
            title: film.meta.title.get(lang).to_owned(),
            synopsis: film.meta.synopsis.get(lang).to_owned(),
            poster: film.poster_url(),
            backdrop: film.backdrop_url(),
            premiere: film
                .meta
                .free_release
                .filter(|_| film.is_before_premiere(now))
                .map(|at| format_time(at, &locale.lang.messages().datetime_format)),
            duration_s: Some(film.current.duration_s)
                .filter(|d| d.is_finite() && *d > 0.0 && !film.is_before_premiere(now)),
        }
    }
}

fn format_time(at: DateTime<FixedOffset>, format: &str) -> String {
    at.format(format).to_string()
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    t: &'static Messages,
    c: Chrome,
    featured: Option<Card>,
    rows: Vec<Row>,
}

/// A titled shelf of cards on the home page.
#[derive(Debug)]
struct Row {
    title: &'static str,
    cards: Vec<Card>,
}

/// Facts shown under the synopsis, in order: (label, value).
type Facts = Vec<(&'static str, String)>;

#[derive(Template)]
#[template(path = "film.html")]
struct FilmPage {
    t: &'static Messages,
    c: Chrome,
    card: Card,
    /// The title in the other language, when it differs.
    other_title: Option<String>,
    facts: Facts,
    /// Seconds to the premiere, when it is ahead.
    countdown_s: Option<i64>,
    /// The countdown as text, for pages without JavaScript.
    countdown_text: String,
    premiere_iso: String,
    trailer: Option<String>,
    page_url: String,
    image_url: Option<String>,
    json_ld: String,
    countdown_json: String,
    countdown_js: &'static str,
}

#[derive(Template)]
#[template(path = "watch.html")]
struct WatchPage {
    t: &'static Messages,
    c: Chrome,
    card: Card,
    hls_url: String,
    /// What a viewer can save for offline viewing, with its size.
    offline: Vec<OfflineOption>,
    offline_json: String,
    /// What [`START_JS`] fetches: the first segments of [`Film::start_renditions`].
    start_json: String,
    start_js: &'static str,
    player_js: String,
    thumbnails: Option<String>,
    /// (language code, WebVTT URL)
    subtitles: Vec<(String, String)>,
    player_json: String,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    t: &'static Messages,
    c: Chrome,
    query: String,
    /// `None` without a query (the page prompts for one).
    results: Option<Vec<Card>>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    t: &'static Messages,
    c: Chrome,
    title: &'static str,
    text: String,
}

fn render(template: &impl Template, locale: Locale) -> Result<Response, ApiError> {
    let html = template
        .render()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut response = Html(html).into_response();
    let headers = response.headers_mut();
    // Pages depend on the language cookie: shared caches must keep them apart.
    headers.insert(header::VARY, HeaderValue::from_static("Cookie"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if locale.switched
        && let Ok(cookie) = HeaderValue::from_str(&locale.cookie())
    {
        headers.insert(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// A page in the viewer's language for an error (RFC 9110 §15.5, §15.6), with the error's
/// status and a link back to the catalog. A client error says what was wrong when it is the
/// viewer's to fix (400); a server error says nothing of its cause, which goes to the log.
/// Cached as briefly as the API's errors (5 s), server errors not at all.
fn error_page(state: &AppState, locale: Locale, uri: &Uri, error: ApiError) -> Response {
    let status = error.status();
    let t = locale.lang.messages();
    let (title, text) = if status == StatusCode::NOT_FOUND {
        (&t.not_found_title, t.not_found_text.clone())
    } else if status.is_client_error() {
        (&t.bad_request_title, error.to_string())
    } else {
        tracing::error!(error = %error, path = uri.path(), "page failed");
        (&t.server_error_title, t.server_error_text.clone())
    };
    let page = ErrorPage {
        t,
        c: Chrome::new(state, locale, safe_path(uri)),
        title,
        text,
    };
    let Ok(mut response) = render(&page, locale) else {
        return error.into_response();
    };
    *response.status_mut() = status;
    let cache = if status.is_server_error() {
        "no-store"
    } else {
        "max-age=5"
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// The request's path for the error page's language switch, or `/` when it could be read as
/// another site (`//host`, `/\host`: WHATWG URL parsing treats `\` as `/`).
fn safe_path(uri: &Uri) -> &str {
    let path = uri.path();
    let rest = path.strip_prefix('/').unwrap_or("/");
    if rest.starts_with(['/', '\\']) || !path.starts_with('/') {
        "/"
    } else {
        path
    }
}

/// A page handler's answer: the page, or its error as a page.
fn page_or_error(
    state: &AppState,
    locale: Locale,
    uri: &Uri,
    page: Result<Response, ApiError>,
) -> Response {
    page.unwrap_or_else(|e| error_page(state, locale, uri, e))
}

/// Whatever no route matched: a 404 page, except under the JSON APIs and media, whose clients
/// read the JSON error contract (`ApiError`).
pub(crate) async fn fallback(State(state): State<AppState>, locale: Locale, uri: Uri) -> Response {
    let path = uri.path();
    let not_found = ApiError::NotFound(format!("nothing at `{path}`"));
    if ["/api/", "/admin/api/", "/media/"]
        .iter()
        .any(|prefix| path.starts_with(prefix) || path == prefix.trim_end_matches('/'))
    {
        return not_found.into_response();
    }
    page_headers(error_page(&state, locale, &uri, not_found)).await
}

async fn find(state: &AppState, slug: &str) -> Result<Film, ApiError> {
    state
        .films
        .get(slug)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no film with slug `{slug}`")))
}

async fn home(State(state): State<AppState>, locale: Locale, uri: Uri) -> Response {
    let page = home_inner(&state, locale).await;
    page_or_error(&state, locale, &uri, page)
}

async fn home_inner(state: &AppState, locale: Locale) -> Result<Response, ApiError> {
    let films = state.films.list().await?;
    // Trailers are assets of their films, not catalog entries.
    let trailers: HashSet<&str> = films
        .iter()
        .filter_map(|f| f.meta.trailer.as_deref())
        .collect();
    let now = Utc::now();
    let (premieres, released): (Vec<&Film>, Vec<&Film>) = films
        .iter()
        .filter(|f| !trailers.contains(f.slug.as_str()))
        .partition(|f| f.is_before_premiere(now));
    let card = |f: &&Film| Card::new(f, locale, now);
    let t = locale.lang.messages();
    let rows = [(&t.row_premieres, &premieres), (&t.row_all, &released)]
        .into_iter()
        .filter(|(_, films)| !films.is_empty())
        .map(|(title, films)| Row {
            title,
            cards: films.iter().map(card).collect(),
        })
        .collect();
    render(
        &Home {
            t,
            c: Chrome::new(state, locale, "/"),
            featured: released.first().or(premieres.first()).map(card),
            rows,
        },
        locale,
    )
}

/// A film's running time in whole minutes, rounded to the nearest (a 60.04 s film is 1
/// minute, not 2), and at least 1 for anything that plays; 0 when unknown.
fn runtime_minutes(duration_s: f64) -> u32 {
    if !duration_s.is_finite() || duration_s <= 0.0 {
        return 0;
    }
    // At most a day (the catalog's bound is far below); the cast cannot overflow.
    (duration_s.min(86_400.0) / 60.0).round().max(1.0) as u32
}

fn facts(film: &Film, lang: Lang, runtime_min: u32) -> Facts {
    let t = lang.messages();
    let meta = &film.meta;
    let mut facts: Facts = Vec::new();
    let mut list = |label: &'static str, items: &[String]| {
        if !items.is_empty() {
            facts.push((label, items.join(", ")));
        }
    };
    list(&t.director, &meta.director);
    list(&t.writer, &meta.writer);
    list(&t.cast, &meta.cast);
    let genres: Vec<String> = meta.genres.iter().map(|g| i18n::label(g, lang)).collect();
    list(&t.genres, &genres);
    if runtime_min > 0 {
        facts.push((&t.runtime, format!("{runtime_min} {}", t.minutes)));
    }
    if let Some(date) = meta.cinema_release {
        facts.push((&t.cinema_release, date.format(&t.date_format).to_string()));
    }
    if let Some(at) = meta.free_release {
        facts.push((&t.free_release, format_time(at, &t.datetime_format)));
    }
    if let Some(rating) = &meta.age_rating {
        facts.push((&t.age_rating, rating.clone()));
    }
    if let Some(country) = &meta.country {
        facts.push((&t.country, i18n::label(country, lang)));
    }
    if let Some(company) = &meta.production_company {
        facts.push((&t.production_company, company.clone()));
    }
    facts
}

/// `2 ngày 3 giờ 4 phút 5 giây`, as the script writes it.
fn countdown(seconds: i64, t: &Messages) -> String {
    let parts = [
        (seconds / 86_400, &t.days),
        (seconds % 86_400 / 3600, &t.hours),
        (seconds % 3600 / 60, &t.mins),
        (seconds % 60, &t.secs),
    ];
    parts
        .iter()
        .map(|(n, unit)| format!("{n} {unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// schema.org `Movie`, for search engines and link previews.
fn json_ld(film: &Film, page_url: &str, image: Option<&str>, runtime_min: u32) -> String {
    let meta = &film.meta;
    let people = |names: &[String]| {
        names
            .iter()
            .map(|n| serde_json::json!({"@type": "Person", "name": n}))
            .collect::<Vec<_>>()
    };
    let mut movie = serde_json::json!({
        "@context": "https://schema.org",
        "@type": "Movie",
        "name": meta.title.get("vi"),
        "url": page_url,
        "description": meta.synopsis.get("vi"),
        "duration": format!("PT{runtime_min}M"),
        "director": people(&meta.director),
        "author": people(&meta.writer),
        "actor": people(&meta.cast),
        "genre": meta.genres,
        "inLanguage": "vi",
        "isAccessibleForFree": true,
    });
    let extra = [
        (
            "alternateName",
            Some(meta.title.en.clone()).filter(|s| !s.is_empty()),
        ),
        ("image", image.map(str::to_owned)),
        ("contentRating", meta.age_rating.clone()),
        ("countryOfOrigin", meta.country.clone()),
        ("dateCreated", meta.cinema_release.map(|d| d.to_string())),
    ];
    for (key, value) in extra {
        if let Some(value) = value {
            movie[key] = serde_json::Value::String(value);
        }
    }
    script_json(&movie)
}

async fn film_page(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    locale: Locale,
    uri: Uri,
) -> Response {
    let page = film_inner(&state, &slug, locale).await;
    page_or_error(&state, locale, &uri, page)
}

async fn film_inner(state: &AppState, slug: &str, locale: Locale) -> Result<Response, ApiError> {
    let film = find(state, slug).await?;
    let t = locale.lang.messages();
    let now = Utc::now();
    let runtime_min = film
        .meta
        .runtime_min
        .unwrap_or_else(|| runtime_minutes(film.current.duration_s));
    let site = state.site_url();
    let page_url = format!("{site}/films/{slug}");
    let image_url = film
        .backdrop_url()
        .or(film.poster_url())
        .map(|p| format!("{site}{p}"));
    let countdown_s = film
        .meta
        .free_release
        .filter(|_| film.is_before_premiere(now))
        .map(|at| (at.with_timezone(&Utc) - now).num_seconds().max(0));
    let trailer = film
        .meta
        .trailer
        .as_deref()
        .filter(|t| state.live.get(t).is_some())
        .map(|t| format!("/watch/{t}"));
    let other_lang = locale.lang.other().code();
    let card = Card::new(&film, locale, now);
    let other_title = Some(film.meta.title.get(other_lang).to_owned())
        .filter(|other| *other != card.title && !other.is_empty());
    let page = FilmPage {
        t,
        c: Chrome::new(state, locale, &format!("/films/{slug}")),
        other_title,
        facts: facts(&film, locale.lang, runtime_min),
        countdown_text: countdown_s.map(|r| countdown(r, t)).unwrap_or_default(),
        countdown_s,
        premiere_iso: film
            .meta
            .free_release
            .map(|at| at.to_rfc3339())
            .unwrap_or_default(),
        trailer,
        json_ld: json_ld(&film, &page_url, image_url.as_deref(), runtime_min),
        countdown_json: script_json(&serde_json::json!({
            "units": [&t.days, &t.hours, &t.mins, &t.secs],
            "done": t.premiere_now,
        })),
        countdown_js: COUNTDOWN_JS,
        page_url,
        image_url,
        card,
    };
    render(&page, locale)
}

/// A way to save a film for offline viewing (`web/src/offline.js`): the data saver's rung with
/// its sound, or the sound alone.
#[derive(Debug)]
struct OfflineOption {
    kind: &'static str,
    label: String,
    /// About how large, from the renditions' average bit rates and the running time.
    bytes: u64,
    size: String,
}

fn offline_options(film: &Film, locale: Locale, t: &Messages) -> Vec<OfflineOption> {
    use monsoon_catalog::RenditionKind;
    let lowest = |kind| {
        film.current
            .renditions
            .iter()
            .filter(|r| r.kind == kind)
            .min_by_key(|r| r.average_bitrate)
    };
    let bytes = |bits_per_s: u64| (bits_per_s as f64 * film.current.duration_s / 8.0) as u64;
    let mut options = Vec::new();
    let sound = lowest(RenditionKind::Audio);
    if let (Some(video), Some(sound)) = (lowest(RenditionKind::Video), sound) {
        let size = bytes(video.average_bitrate + sound.average_bitrate);
        options.push(OfflineOption {
            kind: "saver",
            label: format!("{} · {}p", t.data_saver, video.height),
            bytes: size,
            size: megabytes(size, locale),
        });
    }
    if let Some(sound) = sound {
        let size = bytes(sound.average_bitrate);
        options.push(OfflineOption {
            kind: "audio",
            label: t.audio_only.clone(),
            bytes: size,
            size: megabytes(size, locale),
        });
    }
    options
}

/// "12,4 MB" in Vietnamese, "12.4 MB" in English (decimal megabytes, as phones show them).
fn megabytes(bytes: u64, locale: Locale) -> String {
    let text = format!("{:.1} MB", bytes as f64 / 1e6);
    match locale.lang {
        crate::i18n::Lang::Vi => text.replace('.', ","),
        crate::i18n::Lang::En => text,
    }
}

/// "Remind me": an iCalendar event (RFC 5545) for the premiere, with an alarm 15 minutes
/// before, that any phone's calendar imports.
async fn premiere_ics(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    locale: Locale,
    uri: Uri,
) -> Response {
    let answer = ics_inner(&state, &slug, locale).await;
    page_or_error(&state, locale, &uri, answer)
}

async fn ics_inner(state: &AppState, slug: &str, locale: Locale) -> Result<Response, ApiError> {
    let film = find(state, slug).await?;
    let at = film.meta.free_release.ok_or_else(|| {
        ApiError::NotFound(format!("`{slug}` has no premiere time (free_release)"))
    })?;
    let t = locale.lang.messages();
    let start = at.with_timezone(&Utc);
    // At least a minute, at most a day (a record's duration is never trusted to fit a
    // `chrono::Duration`).
    let runtime_s = (film.current.duration_s.ceil() as i64).clamp(60, 86_400);
    let body = crate::ics::premiere(&crate::ics::Premiere {
        slug,
        title: film.meta.title.get(locale.lang.code()),
        reminder: &t.premiere_reminder,
        url: &format!("{}/films/{slug}", state.site_url()),
        stamp: Utc::now(),
        start,
        end: start + chrono::Duration::seconds(runtime_s),
    });
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{slug}.ics\""),
            ),
        ],
        body,
    )
        .into_response())
}

async fn watch_page(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    locale: Locale,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let page = watch_inner(&state, &slug, locale, &headers).await;
    page_or_error(&state, locale, &uri, page)
}

async fn watch_inner(
    state: &AppState,
    slug: &str,
    locale: Locale,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let film = find(state, slug).await?;
    if film.is_before_premiere(Utc::now()) {
        return Ok(Redirect::to(&format!("/films/{slug}")).into_response());
    }
    let t = locale.lang.messages();
    // The browser's data-saving mode (the `Save-Data` client hint, RFC 8942 §2 and the Save-Data
    // specification of the WICG): the data saver starts on unless the viewer chose otherwise.
    let save_data = headers
        .get("save-data")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("on"));
    let version = &film.current.version;
    let subtitles = film
        .current
        .subtitles
        .iter()
        .map(|lang| {
            (
                lang.clone(),
                format!("/media/{slug}/{version}/subs/{lang}.vtt"),
            )
        })
        .collect();
    let player_json = script_json(&serde_json::json!({
        "film": slug,
        "duration_s": film.current.duration_s,
        // The proof-of-work worker and the SHA-256 it loads (web/src/proof.js).
        "proof_worker": state.assets.url("proof.js"),
        "sha256_js": state.assets.url("sha256.js"),
        // Loaded by the player only when it needs it (docs/ARCHITECTURE.md, "The player").
        "hls_js": state.assets.url("hls.js"),
        "save_data": save_data,
        // The offline section's script, loaded by the player after the first frame.
        "offline_js": state.assets.url("offline.js"),
        "strings": {
            "play": t.play, "pause": t.pause, "mute": t.mute, "unmute": t.unmute,
            "auto": t.auto, "audio_only": t.audio_only, "off": t.subtitles_off,
            "resumed": t.resumed, "network_error": t.network_error,
            "playback_failed": t.playback_failed,
        },
    }));
    let chrome = Chrome::new(state, locale, &format!("/watch/{slug}"));
    let c_css = chrome.css.clone();
    let page = WatchPage {
        t,
        c: chrome,
        hls_url: film.hls_url(),
        start_json: script_json(&serde_json::json!({
            "film": slug,
            "duration_s": film.current.duration_s,
            "renditions": film.start_renditions(),
            "segment_s": monsoon_catalog::SEGMENT_SECONDS,
            "segment_pattern": monsoon_catalog::SEGMENT_PATTERN,
        })),
        start_js: START_JS,
        offline: offline_options(&film, locale, t),
        offline_json: script_json(&serde_json::json!({
            "film": slug,
            "sw": state.assets.sw_url(),
            // The page and what it loads, saved with the film so that it opens offline.
            "shell": [
                format!("/watch/{slug}"), c_css.clone(), state.assets.url("player.js"),
                state.assets.url("hls.js"), state.assets.url("proof.js"),
                state.assets.url("sha256.js"), state.assets.url("offline.js"),
            ],
            "strings": {
                "saving": t.offline_saving, "saved": t.offline_saved, "paused": t.offline_paused,
                "no_space": t.offline_no_space, "failed": t.offline_failed,
                "unsupported": t.offline_unsupported,
            },
        })),
        player_js: state.assets.url("player.js"),
        thumbnails: film.thumbnails_url(),
        subtitles,
        player_json,
        card: Card::new(&film, locale, Utc::now()),
    };
    let mut response = render(&page, locale)?;
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Cookie, Save-Data"));
    Ok(response)
}

#[derive(Debug, serde::Deserialize)]
struct SearchParams {
    q: Option<String>,
}

/// `/search?q=`: the films whose title holds every word of `q` ([`crate::search`]), in the
/// catalog's order, trailers left out as on the home page. Works without JavaScript: the
/// header's search box is a plain form.
async fn search_page(
    State(state): State<AppState>,
    locale: Locale,
    uri: Uri,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Response {
    let page = search_inner(&state, locale, params).await;
    page_or_error(&state, locale, &uri, page)
}

async fn search_inner(
    state: &AppState,
    locale: Locale,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let t = locale.lang.messages();
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let q = params.q.unwrap_or_default();
    if q.len() > 4 * MAX_QUERY_CHARS || q.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::BadRequest(
            t.search_too_long
                .replace("{max}", &MAX_QUERY_CHARS.to_string()),
        ));
    }
    let query = crate::search::Query::new(&q);
    let results = if query.is_empty() {
        None
    } else {
        let films = state.films.list().await?;
        let trailers: HashSet<&str> = films
            .iter()
            .filter_map(|f| f.meta.trailer.as_deref())
            .collect();
        let now = Utc::now();
        Some(
            films
                .iter()
                .filter(|f| !trailers.contains(f.slug.as_str()))
                .filter(|f| query.matches([f.meta.title.vi.as_str(), f.meta.title.en.as_str()]))
                .map(|f| Card::new(f, locale, now))
                .collect(),
        )
    };
    let encoded: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
    let mut c = Chrome::new(state, locale, &format!("/search?q={encoded}"));
    c.query = q.clone();
    render(
        &SearchPage {
            t,
            c,
            query: q,
            results,
        },
        locale,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_rounds_to_the_nearest_minute_and_is_never_zero_for_a_film() {
        for (seconds, minutes) in [
            (60.0, 1),
            (60.04, 1),
            (70.0, 1),
            (89.9, 1),
            (90.0, 2),
            (20.0, 1),
            (0.4, 1),
            (5400.0, 90),
            (5429.0, 90),
            (5430.0, 91),
            (0.0, 0),
            (-3.0, 0),
            (f64::NAN, 0),
            (f64::INFINITY, 0),
        ] {
            assert_eq!(runtime_minutes(seconds), minutes, "{seconds} s");
        }
    }

    #[test]
    fn the_error_page_switch_never_links_to_another_site() {
        for (uri, path) in [
            ("/films/typo", "/films/typo"),
            ("/", "/"),
            ("//evil.example/x", "/"),
            ("/%5Cevil.example", "/%5Cevil.example"),
            ("/\\evil.example", "/"),
        ] {
            let uri: Uri = uri.parse().unwrap();
            assert_eq!(safe_path(&uri), path);
        }
    }
}
