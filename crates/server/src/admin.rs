//! `/admin`: the operator's dashboard, behind an admin token.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/admin/login` | sign-in form |
//! | POST | `/admin/login` | checks the token, sets the session cookie, 303 to `/admin` |
//! | POST | `/admin/logout` | clears the cookie |
//! | GET | `/admin` | the dashboard (303 to the form without a session) |
//! | GET | `/admin/api/dashboard?film=` | figures and series for the charts, the origin's errors, egress and offload ([`crate::dashboard`]; 401 without a session) |
//! | GET | `/admin/api/dashboard.csv?film=` | the film's series as CSV ([`crate::dashboard`]) |
//! | GET | `/admin/api/jobs?limit=` | the ingest jobs (`jobs.rs`; 404 without a job queue) |
//! | POST | `/admin/api/jobs/{id}/cancel` | cancels a queued or running job (`jobs.rs`) |
//! | OPTIONS, POST, GET | `/admin/api/uploads` | tus 1.0 discovery and creation; the uploads listed (`upload/mod.rs`) |
//! | HEAD, PATCH, DELETE, GET | `/admin/api/uploads/{id}` | tus offset, bytes, termination; one upload's state (`upload/mod.rs`) |
//!
//! The token is never stored: `monsoon.toml` holds its argon2id hash (`[admin] token_hash`,
//! made by `monsoon admin-token`). Signing in trades the token for a cookie holding an expiry
//! signed with HMAC under a key made at start (a restart signs everyone out); the cookie is
//! `HttpOnly; SameSite=Strict`, and `Secure` whenever the client came over HTTPS (see
//! [`crate::client::https`]). Scripts (and Prometheus, for `/metrics`) may send
//! `Authorization: Bearer <token>` instead.
//!
//! argon2 is deliberately slow (tens of milliseconds and 19 MiB per check), so guesses are
//! rationed:
//! - each client address gets `[admin] sign_in_attempts_per_minute` checks (429 with
//!   `Retry-After` beyond);
//! - at most [`VERIFY_SLOTS`] checks run at once, off the event loop; one more is refused with
//!   429 at once rather than queued, so a stream of guesses never leaves the operator's own
//!   sign-in waiting behind it (at worst it is refused, and retried a second later);
//! - a wrong token is answered after [`WRONG_TOKEN_DELAY`], slept after the check has given its
//!   slot back: guessing is slow without slowing anyone else;
//! - a token that verified is remembered (as an HMAC under the process's key) for
//!   [`VERIFIED_FOR`], so a scraper sending it every 15 s costs one check, not one per scrape.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use askama::Template;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use hmac::{Hmac, Mac};
use monsoon_audience::FilmStats;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::Semaphore;

use crate::client::RateLimit;
use crate::i18n::{Locale, Messages};
use crate::{ApiError, AppState};

/// Name of the session cookie.
const COOKIE: &str = "monsoon_admin";
/// How long a sign-in lasts.
const SESSION: Duration = Duration::from_secs(12 * 3600);
/// argon2 checks running at once, server-wide; more are refused, not queued.
const VERIFY_SLOTS: usize = 2;
/// Added to every wrong-token answer, after the check's slot is given back.
const WRONG_TOKEN_DELAY: Duration = Duration::from_secs(1);
/// How long a token that verified is taken without another argon2 check.
const VERIFIED_FOR: Duration = Duration::from_secs(600);
/// `Retry-After` when every check slot is taken: one check's time, rounded up.
const BUSY_RETRY_S: u64 = 1;

/// The admin credentials of a running server.
#[derive(Debug)]
pub struct AdminAuth {
    /// argon2 PHC string of the token; `None` turns `/admin` off.
    token_hash: Option<String>,
    /// HMAC-SHA256 keyed with a random key made at start, cloned for each use.
    keyed: Hmac<Sha256>,
    verifying: Semaphore,
    attempts: RateLimit,
    /// HMAC of the token that last verified, and until when it stands.
    verified: Mutex<Option<([u8; 32], Instant)>>,
}

/// What a presented token comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Valid,
    Wrong,
    /// This address has used its attempts: retry after so many seconds.
    Limited(u64),
    /// Every check slot is taken: retry after so many seconds.
    Busy(u64),
}

impl AdminAuth {
    /// Checks the hash's format at start, so a typo in `monsoon.toml` is an error, not a
    /// dashboard nobody can enter. `sign_in_attempts_per_minute` is per client address. The
    /// cookies are signed under a key made now: a restart signs everyone out.
    pub fn new(
        token_hash: Option<String>,
        sign_in_attempts_per_minute: u32,
    ) -> Result<Self, String> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| format!("no randomness: {e}"))?;
        Self::with_key(token_hash, sign_in_attempts_per_minute, &key)
    }

    /// [`AdminAuth::new`] signing the cookies under `key`: nodes that share it accept each
    /// other's cookies (an operator behind a load balancer stays signed in whichever node
    /// answers), and a restart signs nobody out.
    pub fn with_key(
        token_hash: Option<String>,
        sign_in_attempts_per_minute: u32,
        key: &[u8],
    ) -> Result<Self, String> {
        if let Some(hash) = &token_hash {
            PasswordHash::new(hash).map_err(|e| {
                format!("[admin] token_hash is not an argon2 hash ({e}); make one with `monsoon admin-token`")
            })?;
        }
        if sign_in_attempts_per_minute == 0 {
            return Err(
                "[admin] sign_in_attempts_per_minute = 0 would lock every operator out; it must be 1 or more"
                    .into(),
            );
        }
        if key.len() < 32 {
            return Err(format!(
                "the admin cookie key has {} bytes; it needs at least 32",
                key.len()
            ));
        }
        let keyed = Hmac::<Sha256>::new_from_slice(key).map_err(|e| format!("HMAC key: {e}"))?;
        Ok(Self {
            token_hash,
            keyed,
            verifying: Semaphore::new(VERIFY_SLOTS),
            attempts: RateLimit::new(sign_in_attempts_per_minute),
            verified: Mutex::new(None),
        })
    }

    pub fn enabled(&self) -> bool {
        self.token_hash.is_some()
    }

    /// Checks `token`, presented by `client`, under the rationing of the module docs.
    async fn check(self: &Arc<Self>, client: IpAddr, token: String) -> Verdict {
        let Some(hash) = self.token_hash.clone() else {
            return Verdict::Wrong;
        };
        if self.recently_verified(&token) {
            return Verdict::Valid;
        }
        let mut tag = [0u8; 32];
        tag.copy_from_slice(&self.token_mac(&token).finalize().into_bytes());
        if let Err(wait) = self.attempts.take(client, Instant::now()) {
            return Verdict::Limited(wait);
        }
        let Ok(permit) = self.verifying.try_acquire() else {
            self.attempts.refund(client);
            return Verdict::Busy(BUSY_RETRY_S);
        };
        let valid = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|parsed| {
                argon2::Argon2::default()
                    .verify_password(token.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
        drop(permit);
        if valid {
            let until = Instant::now() + VERIFIED_FOR;
            *self.verified.lock().unwrap_or_else(PoisonError::into_inner) = Some((tag, until));
            return Verdict::Valid;
        }
        tokio::time::sleep(WRONG_TOKEN_DELAY).await;
        Verdict::Wrong
    }

    /// The token's HMAC under the process's key: what is remembered of a token that verified.
    fn token_mac(&self, token: &str) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(b"token.");
        mac.update(token.as_bytes());
        mac
    }

    /// Whether `token` verified within [`VERIFIED_FOR`] (compared in constant time).
    fn recently_verified(&self, token: &str) -> bool {
        let verified = *self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        verified.is_some_and(|(tag, until)| {
            Instant::now() < until && self.token_mac(token).verify_slice(&tag).is_ok()
        })
    }

    fn mac(&self, expiry_ms: u128) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(format!("admin.{expiry_ms}").as_bytes());
        mac
    }

    /// A signed cookie value valid for [`SESSION`].
    fn issue(&self) -> String {
        let expiry = now_ms() + SESSION.as_millis();
        let tag = hex::encode(self.mac(expiry).finalize().into_bytes());
        format!("{expiry}.{tag}")
    }

    fn cookie_is_valid(&self, value: &str) -> bool {
        let Some((expiry, tag)) = value.split_once('.') else {
            return false;
        };
        let (Ok(expiry), Ok(tag)) = (expiry.parse::<u128>(), hex::decode(tag)) else {
            return false;
        };
        expiry > now_ms() && self.mac(expiry).verify_slice(&tag).is_ok()
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// The client behind a request, as far as the admin rules care: its address (through trusted
/// proxies) and whether it came over HTTPS.
#[derive(Debug, Clone, Copy)]
struct Client {
    ip: IpAddr,
    https: bool,
}

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(client_of(parts, state))
    }
}

fn client_of(parts: &Parts, state: &AppState) -> Client {
    // In-process tests call the router without a connection: no peer, the unspecified address.
    let peer = parts
        .extensions
        .get::<crate::client::Peer>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |p| p.0.ip());
    let trusted = &state.trusted_proxies;
    Client {
        ip: crate::client::client_ip(peer, &parts.headers, trusted),
        https: crate::client::https(state.public_url.as_deref(), peer, &parts.headers, trusted),
    }
}

/// Proof that a request comes from a signed-in operator; handlers that take it are protected.
#[derive(Debug)]
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = &state.admin;
        if !auth.enabled() {
            return Err(ApiError::Forbidden(
                "the admin API is off: set [admin] token_hash in monsoon.toml".into(),
            ));
        }
        if crate::cookie(&parts.headers, COOKIE).is_some_and(|v| auth.cookie_is_valid(v)) {
            return Ok(Operator);
        }
        let unauthorized = || {
            ApiError::Unauthorized(
                "sign in at /admin/login or send Authorization: Bearer <admin token>".into(),
            )
        };
        let Some(token) = crate::bearer(&parts.headers) else {
            return Err(unauthorized());
        };
        let client = client_of(parts, state);
        match auth.check(client.ip, token.to_owned()).await {
            Verdict::Valid => Ok(Operator),
            Verdict::Wrong => Err(unauthorized()),
            Verdict::Limited(wait) => Err(ApiError::TooManyRequests(
                format!(
                    "too many admin token attempts from {}: [admin] sign_in_attempts_per_minute; retry in {wait} s",
                    client.ip
                ),
                wait,
            )),
            Verdict::Busy(wait) => Err(ApiError::TooManyRequests(
                format!("{VERIFY_SLOTS} admin token checks are running; retry in {wait} s"),
                wait,
            )),
        }
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(dashboard))
        // Typed by hand or kept in bookmarks with the slash.
        .route(
            "/admin/",
            get(|| async { axum::response::Redirect::permanent("/admin") }),
        )
        .route("/admin/login", get(login_form).post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/api/dashboard", get(dashboard_data))
        .merge(crate::dashboard::routes())
        .merge(crate::jobs::routes())
        .layer(axum::middleware::map_response(crate::pages::page_headers))
}

#[derive(Template)]
#[template(path = "admin_login.html")]
struct LoginPage {
    t: &'static Messages,
    c: crate::pages::Chrome,
    error: Option<&'static str>,
    enabled: bool,
    /// The page's language code: the form posts with it, so the answer and the dashboard
    /// after it are in the language the operator chose.
    lang: &'static str,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct DashboardPage {
    t: &'static Messages,
    c: crate::pages::Chrome,
    /// (slug, title in the page's language), by title.
    films: Vec<(String, String)>,
    uplot_css: String,
    uplot_js: String,
    admin_css: String,
    admin_js: String,
    /// The page's strings for the script, as JSON.
    strings_json: String,
}

pub(crate) fn private(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Why the sign-in form is shown again.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    WrongToken,
    /// Too many attempts (this address's, or all checks busy): retry after so many seconds.
    TooMany(u64),
}

fn login_page(
    state: &AppState,
    locale: Locale,
    status: StatusCode,
    refusal: Option<Refusal>,
) -> Response {
    let t = locale.lang.messages();
    let page = LoginPage {
        t,
        c: crate::pages::Chrome::new(state, locale, "/admin/login"),
        error: refusal.map(|r| match r {
            Refusal::WrongToken => t.admin_wrong_token.as_str(),
            Refusal::TooMany(_) => t.admin_too_many.as_str(),
        }),
        enabled: state.admin.enabled(),
        lang: locale.lang.code(),
    };
    let mut response = match page.render() {
        Ok(html) => private((status, Html(html)).into_response()),
        Err(e) => return ApiError::Internal(e.to_string()).into_response(),
    };
    if let Some(Refusal::TooMany(wait)) = refusal {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
    }
    response
}

async fn login_form(State(state): State<AppState>, locale: Locale) -> Response {
    let status = if state.admin.enabled() {
        StatusCode::OK
    } else {
        StatusCode::FORBIDDEN
    };
    login_page(&state, locale, status, None)
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
}

/// The session cookie's attributes: only for `/admin`, out of reach of scripts, never sent with
/// a request another site starts, and `Secure` when the client came over HTTPS (a `Secure`
/// cookie set over plain HTTP would never come back, so it is left off there).
fn cookie_attributes(client: Client) -> &'static str {
    if client.https {
        "Path=/admin; HttpOnly; SameSite=Strict; Secure"
    } else {
        "Path=/admin; HttpOnly; SameSite=Strict"
    }
}

async fn login(
    State(state): State<AppState>,
    locale: Locale,
    client: Client,
    Form(form): Form<LoginForm>,
) -> Response {
    if !state.admin.enabled() {
        return login_page(&state, locale, StatusCode::FORBIDDEN, None);
    }
    let refusal = match state.admin.check(client.ip, form.token).await {
        Verdict::Valid => None,
        Verdict::Wrong => Some((StatusCode::UNAUTHORIZED, Refusal::WrongToken)),
        Verdict::Limited(wait) | Verdict::Busy(wait) => {
            Some((StatusCode::TOO_MANY_REQUESTS, Refusal::TooMany(wait)))
        }
    };
    if let Some((status, refusal)) = refusal {
        return login_page(&state, locale, status, Some(refusal));
    }
    let cookie = format!(
        "{COOKIE}={}; Max-Age={}; {}",
        state.admin.issue(),
        SESSION.as_secs(),
        cookie_attributes(client)
    );
    let to = format!("/admin?lang={}", locale.lang.code());
    private(([(header::SET_COOKIE, cookie)], Redirect::to(&to)).into_response())
}

async fn logout(client: Client) -> Response {
    let cookie = format!("{COOKIE}=; Max-Age=0; {}", cookie_attributes(client));
    private(([(header::SET_COOKIE, cookie)], Redirect::to("/admin/login")).into_response())
}

async fn dashboard(
    State(state): State<AppState>,
    locale: Locale,
    operator: Result<Operator, ApiError>,
) -> Result<Response, ApiError> {
    if operator.is_err() {
        let to = format!("/admin/login?lang={}", locale.lang.code());
        return Ok(private(Redirect::to(&to).into_response()));
    }
    let t = locale.lang.messages();
    let page = DashboardPage {
        t,
        c: crate::pages::Chrome::new(&state, locale, "/admin"),
        films: crate::dashboard::films(&state, locale.lang.code()),
        uplot_css: state.assets.url("uplot.css"),
        uplot_js: state.assets.url("uplot.js"),
        admin_css: state.assets.url("admin.css"),
        admin_js: state.assets.url("admin.js"),
        strings_json: crate::pages::script_json(&serde_json::json!({
            "concurrent": t.chart_concurrent,
            "views": t.chart_views,
            "startup": t.chart_startup,
            "rebuffer": t.chart_rebuffer,
            "updated": t.admin_updated,
            "audio_only": t.audio_only,
            "codec_sessions": t.codec_sessions,
            "last_hour": t.chart_last_hour,
            "last_day": t.chart_last_day,
            "origin_sent": t.chart_origin_sent,
            "players_bytes": t.chart_players_bytes,
            "network_unknown": t.network_unknown,
            "failed_client": t.failed_client,
            "failed_server": t.failed_server,
            "offload_none": t.offload_none,
            "since": t.since,
            "view_threshold": t.view_threshold_note,
            "players_fatal": t.players_fatal,
            "codec_downloaded": t.codec_downloaded,
            "progress": t.jobs_progress,
            "real_time": t.jobs_real_time,
            "states": {
                "queued": t.job_queued,
                "running": t.job_running,
                "done": t.job_done,
                "failed": t.job_failed,
                "cancelled": t.job_cancelled,
            },
        })),
    };
    let html = page
        .render()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(private(Html(html).into_response()))
}

#[derive(Debug, Deserialize)]
struct DashboardQuery {
    film: String,
}

/// Everything the dashboard draws, in one poll.
#[derive(Debug, Serialize)]
struct Dashboard {
    /// Server time of the figures, ms since the Unix epoch.
    now: i64,
    stats: FilmStats,
    /// Minute rollups of the last 24 hours, `[time_ms, value]`, by metric.
    series: std::collections::BTreeMap<&'static str, Vec<(i64, f64)>>,
    /// Playing time that makes a view (`[audience] view_threshold_ms`), seconds.
    view_threshold_s: f64,
    /// The origin's errors, egress and the cache tier's offload ([`crate::dashboard`]).
    origin: crate::dashboard::Origin,
}

async fn dashboard_data(
    State(state): State<AppState>,
    _: Operator,
    Query(query): Query<DashboardQuery>,
) -> Result<Response, ApiError> {
    if state.live.get(&query.film).is_none() {
        return Err(ApiError::NotFound(format!(
            "no film with slug `{}`",
            query.film
        )));
    }
    let now = state.audience.now_ms();
    let series = crate::dashboard::series(&state, &query.film, now);
    let origin_now = crate::dashboard::sample(&state);
    let origin = crate::dashboard::origin(&state.metrics.origin_history(), origin_now);
    Ok(private(
        Json(Dashboard {
            now,
            stats: state
                .audience
                .fresh_stats(&query.film)
                .await
                .map_err(|e| ApiError::Unavailable(e.to_string()))?,
            series,
            view_threshold_s: state.audience.config().view_threshold_ms as f64 / 1000.0,
            origin,
        })
        .into_response(),
    ))
}

/// An argon2id hash of `token` in PHC form, for `[admin] token_hash`.
pub fn hash_token(token: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(token.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[tokio::test]
    async fn a_token_verifies_against_its_hash_and_nothing_else_does() {
        let hash = hash_token("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        let auth = Arc::new(AdminAuth::new(Some(hash), 100).unwrap());
        assert_eq!(
            auth.check(ip(1), "correct horse".into()).await,
            Verdict::Valid
        );
        let (trailing, empty) = tokio::join!(
            auth.check(ip(1), "correct horse ".into()),
            auth.check(ip(2), String::new())
        );
        assert_eq!((trailing, empty), (Verdict::Wrong, Verdict::Wrong));
        let off = Arc::new(AdminAuth::new(None, 100).unwrap());
        assert!(!off.enabled());
        assert_eq!(
            off.check(ip(1), "correct horse".into()).await,
            Verdict::Wrong
        );
    }

    #[tokio::test]
    async fn guesses_are_rationed_per_address_and_refused_when_every_slot_is_busy() {
        let auth = Arc::new(AdminAuth::new(Some(hash_token("correct horse").unwrap()), 2).unwrap());
        let started = Instant::now();
        let (a, b) = tokio::join!(auth.check(ip(1), "a".into()), auth.check(ip(1), "b".into()));
        assert_eq!((a, b), (Verdict::Wrong, Verdict::Wrong));
        // A wrong token is answered slowly.
        assert!(started.elapsed() >= WRONG_TOKEN_DELAY);
        // Two a minute: the third guess from the address waits about 30 s.
        let limited = auth.check(ip(1), "c".into()).await;
        assert!(matches!(limited, Verdict::Limited(20..=30)), "{limited:?}");
        // Every slot taken: refused at once, and the attempt is not counted.
        let slots = auth
            .verifying
            .try_acquire_many(VERIFY_SLOTS as u32)
            .unwrap();
        assert_eq!(
            auth.check(ip(2), "correct horse".into()).await,
            Verdict::Busy(1)
        );
        drop(slots);
        assert_eq!(
            auth.check(ip(2), "correct horse".into()).await,
            Verdict::Valid
        );
        // The token that verified is taken without a check, even from a limited address.
        assert_eq!(
            auth.check(ip(1), "correct horse".into()).await,
            Verdict::Valid
        );
        let limited = auth.check(ip(1), "correct horse!".into()).await;
        assert!(matches!(limited, Verdict::Limited(_)), "{limited:?}");
    }

    #[test]
    fn a_malformed_hash_is_refused_at_start() {
        let err = AdminAuth::new(Some("plaintext-token".into()), 10).unwrap_err();
        assert!(err.contains("token_hash"), "{err}");
        let err = AdminAuth::new(None, 0).unwrap_err();
        assert!(err.contains("sign_in_attempts_per_minute"), "{err}");
    }

    #[test]
    fn session_cookies_are_signed_and_expire() {
        let auth = AdminAuth::new(None, 10).unwrap();
        let value = auth.issue();
        assert!(auth.cookie_is_valid(&value));
        let (expiry, tag) = value.split_once('.').unwrap();
        // Extending the expiry breaks the signature.
        let later = expiry.parse::<u128>().unwrap() + 1;
        assert!(!auth.cookie_is_valid(&format!("{later}.{tag}")));
        // A cookie signed by another server (another key) is refused; one sharing the key
        // accepts it.
        assert!(!AdminAuth::new(None, 10).unwrap().cookie_is_valid(&value));
        let shared = [7u8; 32];
        let (a, b) = (
            AdminAuth::with_key(None, 10, &shared).unwrap(),
            AdminAuth::with_key(None, 10, &shared).unwrap(),
        );
        assert!(b.cookie_is_valid(&a.issue()));
        assert!(AdminAuth::with_key(None, 10, &[7u8; 8]).is_err());
        // An expired one is refused.
        let past = 1_000u128;
        let tag = hex::encode(auth.mac(past).finalize().into_bytes());
        assert!(!auth.cookie_is_valid(&format!("{past}.{tag}")));
        assert!(!auth.cookie_is_valid("garbage"));
    }
}
