//! `/admin`: the operator's dashboard, behind an admin token.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/admin/login` | sign-in form |
//! | POST | `/admin/login` | checks the token, sets the session cookie, 303 to `/admin` |
//! | POST | `/admin/logout` | clears the cookie |
//! | GET | `/admin` | the dashboard (303 to the form without a session) |
//! | GET | `/admin/api/dashboard?film=` | figures and series for the charts (401 without a session) |
//!
//! The token is never stored: `monsoon.toml` holds its argon2id hash (`[admin] token_hash`,
//! made by `monsoon admin-token`). Signing in trades the token for a cookie holding an expiry
//! signed with HMAC under a key made at start (a restart signs everyone out). Scripts may send
//! `Authorization: Bearer <token>` instead; argon2 is deliberately slow, so such checks run
//! one at a time off the event loop and cannot be used to flood the CPU.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

use crate::i18n::{Locale, Messages};
use crate::{ApiError, AppState};

/// Name of the session cookie.
const COOKIE: &str = "monsoon_admin";
/// How long a sign-in lasts.
const SESSION: Duration = Duration::from_secs(12 * 3600);

/// The admin credentials of a running server.
#[derive(Debug)]
pub struct AdminAuth {
    /// argon2 PHC string of the token; `None` turns `/admin` off.
    token_hash: Option<String>,
    cookie_key: [u8; 32],
    /// One argon2 verification at a time.
    verifying: Semaphore,
}

impl AdminAuth {
    /// Checks the hash's format at start, so a typo in `monsoon.toml` is an error, not a
    /// dashboard nobody can enter.
    pub fn new(token_hash: Option<String>) -> Result<Self, String> {
        if let Some(hash) = &token_hash {
            PasswordHash::new(hash).map_err(|e| {
                format!("[admin] token_hash is not an argon2 hash ({e}); make one with `monsoon admin-token`")
            })?;
        }
        let mut cookie_key = [0u8; 32];
        getrandom::fill(&mut cookie_key).map_err(|e| format!("no randomness: {e}"))?;
        Ok(Self {
            token_hash,
            cookie_key,
            verifying: Semaphore::new(1),
        })
    }

    pub fn enabled(&self) -> bool {
        self.token_hash.is_some()
    }

    /// True if `token` matches the configured hash (slow by design).
    async fn verify_token(self: &Arc<Self>, token: String) -> bool {
        let Some(hash) = self.token_hash.clone() else {
            return false;
        };
        let Ok(_permit) = self.verifying.acquire().await else {
            return false;
        };
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|parsed| {
                argon2::Argon2::default()
                    .verify_password(token.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false)
    }

    fn mac(&self, expiry_ms: u128) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.cookie_key)
            .expect("HMAC takes a key of any length");
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
        let bearer = crate::bearer(&parts.headers);
        if let Some(token) = bearer
            && auth.verify_token(token.to_owned()).await
        {
            return Ok(Operator);
        }
        Err(ApiError::Unauthorized(
            "sign in at /admin/login or send Authorization: Bearer <admin token>".into(),
        ))
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
}

#[derive(Template)]
#[template(path = "admin_login.html")]
struct LoginPage {
    t: &'static Messages,
    c: crate::pages::Chrome,
    error: Option<&'static str>,
    enabled: bool,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct DashboardPage {
    t: &'static Messages,
    c: crate::pages::Chrome,
    films: Vec<String>,
    uplot_css: String,
    uplot_js: String,
    admin_css: String,
    admin_js: String,
    /// The page's strings for the script, as JSON.
    strings_json: String,
}

fn private(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn login_page(state: &AppState, locale: Locale, status: StatusCode, error: bool) -> Response {
    let t = locale.lang.messages();
    let page = LoginPage {
        t,
        c: crate::pages::Chrome::new(state, locale, "/admin/login"),
        error: error.then_some(t.admin_wrong_token.as_str()),
        enabled: state.admin.enabled(),
    };
    match page.render() {
        Ok(html) => private((status, Html(html)).into_response()),
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}

async fn login_form(State(state): State<AppState>, locale: Locale) -> Response {
    let status = if state.admin.enabled() {
        StatusCode::OK
    } else {
        StatusCode::FORBIDDEN
    };
    login_page(&state, locale, status, false)
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(state): State<AppState>,
    locale: Locale,
    Form(form): Form<LoginForm>,
) -> Response {
    if !state.admin.enabled() {
        return login_page(&state, locale, StatusCode::FORBIDDEN, false);
    }
    if !state.admin.verify_token(form.token).await {
        return login_page(&state, locale, StatusCode::UNAUTHORIZED, true);
    }
    let cookie = format!(
        "{COOKIE}={}; Path=/admin; Max-Age={}; HttpOnly; SameSite=Strict",
        state.admin.issue(),
        SESSION.as_secs()
    );
    private(([(header::SET_COOKIE, cookie)], Redirect::to("/admin")).into_response())
}

async fn logout() -> Response {
    let cookie = format!("{COOKIE}=; Path=/admin; Max-Age=0; HttpOnly; SameSite=Strict");
    private(([(header::SET_COOKIE, cookie)], Redirect::to("/admin/login")).into_response())
}

async fn dashboard(
    State(state): State<AppState>,
    locale: Locale,
    operator: Result<Operator, ApiError>,
) -> Result<Response, ApiError> {
    if operator.is_err() {
        return Ok(private(Redirect::to("/admin/login").into_response()));
    }
    let t = locale.lang.messages();
    let mut films = state.live.slugs();
    films.sort();
    let page = DashboardPage {
        t,
        c: crate::pages::Chrome::new(&state, locale, "/admin"),
        films,
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
    let from = now - 24 * 3_600_000;
    let series = [
        "concurrent_viewers",
        "views",
        "startup_ms_p95",
        "rebuffer_ratio",
    ]
    .into_iter()
    .map(|metric| {
        (
            metric,
            state.audience.series(&query.film, metric, from, 60_000),
        )
    })
    .collect();
    Ok(private(
        Json(Dashboard {
            now,
            stats: state.audience.stats(&query.film),
            series,
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

    #[tokio::test]
    async fn a_token_verifies_against_its_hash_and_nothing_else_does() {
        let hash = hash_token("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        let auth = Arc::new(AdminAuth::new(Some(hash)).unwrap());
        assert!(auth.verify_token("correct horse".into()).await);
        assert!(!auth.verify_token("correct horse ".into()).await);
        assert!(!auth.verify_token(String::new()).await);
        let off = Arc::new(AdminAuth::new(None).unwrap());
        assert!(!off.enabled());
        assert!(!off.verify_token("correct horse".into()).await);
    }

    #[test]
    fn a_malformed_hash_is_refused_at_start() {
        let err = AdminAuth::new(Some("plaintext-token".into())).unwrap_err();
        assert!(err.contains("token_hash"), "{err}");
    }

    #[test]
    fn session_cookies_are_signed_and_expire() {
        let auth = AdminAuth::new(None).unwrap();
        let value = auth.issue();
        assert!(auth.cookie_is_valid(&value));
        let (expiry, tag) = value.split_once('.').unwrap();
        // Extending the expiry breaks the signature.
        let later = expiry.parse::<u128>().unwrap() + 1;
        assert!(!auth.cookie_is_valid(&format!("{later}.{tag}")));
        // A cookie signed by another server (another key) is refused.
        assert!(!AdminAuth::new(None).unwrap().cookie_is_valid(&value));
        // An expired one is refused.
        let past = 1_000u128;
        let tag = hex::encode(auth.mac(past).finalize().into_bytes());
        assert!(!auth.cookie_is_valid(&format!("{past}.{tag}")));
        assert!(!auth.cookie_is_valid("garbage"));
    }
}
