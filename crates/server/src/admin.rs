//! `/admin`: the operator's studio, behind a sign-in.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/admin/login` | sign-in form (sets the form's CSRF cookie, `csrf.rs`) |
//! | POST | `/admin/login` | `name` + `password`, or `token`: starts a session, sets its cookie, 303 to `/admin` |
//! | POST | `/admin/logout` | ends the session (in the database: on every node) and clears the cookie |
//! | GET | `/admin` | the dashboard (303 to the form without a session) |
//! | GET | `/admin/api/dashboard?film=` | figures and series for the charts, the origin's errors, egress and offload ([`crate::dashboard`]; 401 without a session) |
//! | GET | `/admin/api/dashboard.csv?film=` | the film's series as CSV ([`crate::dashboard`]) |
//! | GET | `/admin/api/audit?limit=&before=` | the audit log, newest first (`audit.rs`) |
//! | GET | `/admin/api/jobs?limit=` | the ingest jobs (`jobs.rs`; 404 without a job queue) |
//! | POST | `/admin/api/jobs/{id}/cancel` | cancels a queued or running job (`jobs.rs`) |
//! | OPTIONS, POST, GET | `/admin/api/uploads` | tus 1.0 discovery and creation; the uploads listed (`upload/mod.rs`) |
//! | HEAD, PATCH, DELETE, GET | `/admin/api/uploads/{id}` | tus offset, bytes, termination; one upload's state (`upload/mod.rs`) |
//!
//! **Who.** Operators have accounts in the catalog database (`monsoon operator add <name>`;
//! `monsoon_catalog::Operators`), each with an argon2id password hash. The admin token of
//! `[admin] token_hash` (made by `monsoon admin-token`, stored only as its hash) stays for
//! scripts: they send `Authorization: Bearer <token>` (Prometheus too, for `/metrics`), or
//! sign in with it; what they do is recorded as done by `token`.
//!
//! **Sessions.** Signing in makes a 256-bit secret, sent as the `monsoon_admin` cookie
//! (`HttpOnly; SameSite=Strict; Path=/admin`, `Secure` whenever the client came over HTTPS, see
//! [`crate::client::https`]); the database keeps its SHA-256 with the operator's name. A
//! session ends at `[admin] session_absolute_s` after the sign-in whatever its use, after
//! `session_idle_s` without a request, at sign-out, and when its account is disabled or its
//! password changed. Any node sharing the database accepts it, and a restart signs nobody out.
//! Every state-changing request under `/admin` also needs the session's CSRF token (`csrf.rs`).
//!
//! **Guessing.** argon2 is deliberately slow (tens of milliseconds and 19 MiB per check), so
//! guesses, of a password or of the token, are rationed:
//! - each client address gets `[admin] sign_in_attempts_per_minute` checks, and so does each
//!   operator name, from whatever addresses (429 with `Retry-After` beyond);
//! - at most [`VERIFY_SLOTS`] checks run at once, off the event loop; one more is refused with
//!   429 at once rather than queued, so a stream of guesses never leaves the operator's own
//!   sign-in waiting behind it (at worst it is refused, and retried a second later);
//! - a wrong password or token is answered after [`WRONG_DELAY`], slept after the check has
//!   given its slot back: guessing is slow without slowing anyone else;
//! - a name with no account (or a disabled one) is checked against a hash all the same, so
//!   the answer's time does not say which names exist;
//! - a token that verified is remembered (as an HMAC under a key of the process) for
//!   [`VERIFIED_FOR`], so a scraper sending it every 15 s costs one check, not one per scrape.
//!
//! Sign-ins, sign-outs and refused sign-ins are written to the audit log
//! ([`crate::Shared::audit`]), with the client's address.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use hmac::{Hmac, Mac};
use monsoon_audience::FilmStats;
use monsoon_catalog::operators::{self, Action, TOKEN_ACTOR, limits};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::client::RateLimit;
use crate::i18n::{Locale, Messages};
use crate::{ApiError, AppState};

/// Name of the session cookie.
const COOKIE: &str = "monsoon_admin";
/// argon2 checks running at once, server-wide; more are refused, not queued.
const VERIFY_SLOTS: usize = 2;
/// Added to every wrong-password or wrong-token answer, after the check's slot is given back.
const WRONG_DELAY: Duration = Duration::from_secs(1);
/// How long a token that verified is taken without another argon2 check.
const VERIFIED_FOR: Duration = Duration::from_secs(600);
/// `Retry-After` when every check slot is taken: one check's time, rounded up.
const BUSY_RETRY_S: u64 = 1;
/// How long the sign-in form's CSRF cookie lasts.
const LOGIN_FORM_LIFE: Duration = Duration::from_secs(3600);

/// How long sessions last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimes {
    /// From the sign-in, whatever the session's use.
    pub absolute: Duration,
    /// Without a request.
    pub idle: Duration,
}

impl Default for SessionTimes {
    fn default() -> Self {
        Self {
            absolute: Duration::from_secs(12 * 3600),
            idle: Duration::from_secs(3600),
        }
    }
}

/// The admin credentials of a running server.
#[derive(Debug)]
pub struct AdminAuth {
    /// argon2 PHC string of the token; `None`: no token (operators' accounts only).
    token_hash: Option<String>,
    /// HMAC-SHA256 keyed with a random key made at start, for what is remembered of a token.
    keyed: Hmac<Sha256>,
    verifying: Semaphore,
    /// Checks by client address.
    attempts: RateLimit,
    /// Checks by operator name, whatever the address.
    per_name: RateLimit<String>,
    /// HMAC of the token that last verified, and until when it stands.
    verified: Mutex<Option<([u8; 32], Instant)>>,
    sessions: SessionTimes,
    /// What a name without an account is checked against: a hash of a random secret, made at
    /// start, so even the first such check costs what a real one does.
    decoy: String,
}

/// What a presented password or token comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Valid,
    Wrong,
    /// This address (or name) has used its attempts: retry after so many seconds.
    Limited(u64),
    /// Every check slot is taken: retry after so many seconds.
    Busy(u64),
    /// The database did not answer.
    Unavailable(String),
}

impl AdminAuth {
    /// Checks the hash's format at start, so a typo in `monsoon.toml` is an error, not a
    /// token nobody can use. `sign_in_attempts_per_minute` is per client address and per
    /// operator name.
    pub fn new(
        token_hash: Option<String>,
        sign_in_attempts_per_minute: u32,
        sessions: SessionTimes,
    ) -> Result<Self, String> {
        if let Some(hash) = &token_hash
            && !operators::is_password_hash(hash)
        {
            return Err(
                "[admin] token_hash is not an argon2 hash; make one with `monsoon admin-token`"
                    .into(),
            );
        }
        if sign_in_attempts_per_minute == 0 {
            return Err(
                "[admin] sign_in_attempts_per_minute = 0 would lock every operator out; it must be 1 or more"
                    .into(),
            );
        }
        for (name, time) in [
            ("session_absolute_s", sessions.absolute),
            ("session_idle_s", sessions.idle),
        ] {
            operators::check_life(time).map_err(|_| {
                format!(
                    "[admin] {name} = {} is outside {}..={} seconds",
                    time.as_secs(),
                    limits::SESSION.start().as_secs(),
                    limits::SESSION.end().as_secs()
                )
            })?;
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| format!("no randomness: {e}"))?;
        let keyed = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| format!("HMAC key: {e}"))?;
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| format!("no randomness: {e}"))?;
        let decoy = operators::hash_password(&hex::encode(secret)).map_err(|e| e.to_string())?;
        Ok(Self {
            token_hash,
            keyed,
            verifying: Semaphore::new(VERIFY_SLOTS),
            attempts: RateLimit::new(sign_in_attempts_per_minute),
            per_name: RateLimit::new(sign_in_attempts_per_minute),
            verified: Mutex::new(None),
            sessions,
            decoy,
        })
    }

    /// Whether an admin token is configured.
    pub fn has_token(&self) -> bool {
        self.token_hash.is_some()
    }

    pub fn sessions(&self) -> SessionTimes {
        self.sessions
    }

    /// Runs one argon2 check of `secret` against `hash` under the rationing of the module
    /// docs: a slot, off the event loop, the delay when wrong.
    async fn verify(&self, hash: String, secret: String) -> Verdict {
        let Ok(permit) = self.verifying.try_acquire() else {
            return Verdict::Busy(BUSY_RETRY_S);
        };
        let valid = tokio::task::spawn_blocking(move || operators::verify_password(&hash, &secret))
            .await
            .unwrap_or(false);
        drop(permit);
        if valid {
            Verdict::Valid
        } else {
            tokio::time::sleep(WRONG_DELAY).await;
            Verdict::Wrong
        }
    }

    /// Checks the admin `token`, presented by `client`.
    async fn check_token(self: &Arc<Self>, client: IpAddr, token: String) -> Verdict {
        let Some(hash) = self.token_hash.clone() else {
            tokio::time::sleep(WRONG_DELAY).await;
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
        if self.verifying.available_permits() == 0 {
            self.attempts.refund(client);
            return Verdict::Busy(BUSY_RETRY_S);
        }
        let verdict = self.verify(hash, token).await;
        match verdict {
            Verdict::Valid => {
                let until = Instant::now() + VERIFIED_FOR;
                *self.verified.lock().unwrap_or_else(PoisonError::into_inner) = Some((tag, until));
            }
            Verdict::Busy(_) => self.attempts.refund(client),
            _ => {}
        }
        verdict
    }

    /// Checks operator `name`'s `password`, presented by `client`: `Valid` only for an
    /// enabled account whose hash it matches. A name without an account takes as long.
    async fn check_password(
        &self,
        operators: &dyn operators::Operators,
        client: IpAddr,
        name: &str,
        password: String,
    ) -> Verdict {
        let now = Instant::now();
        if let Err(wait) = self.attempts.take(client, now) {
            return Verdict::Limited(wait);
        }
        // Bounded, so a stream of invented names cannot grow the map without end (it is
        // bounded in entries too).
        let key: String = name.chars().take(limits::NAME.end() + 1).collect();
        if let Err(wait) = self.per_name.take_key(key.clone(), now) {
            return Verdict::Limited(wait);
        }
        if self.verifying.available_permits() == 0 {
            self.attempts.refund(client);
            self.per_name.refund_key(&key);
            return Verdict::Busy(BUSY_RETRY_S);
        }
        let account = if operators::validate_name(name).is_ok() {
            match operators.find(name).await {
                Ok(account) => account,
                Err(e) => return Verdict::Unavailable(e.to_string()),
            }
        } else {
            None
        };
        let enabled = account.as_ref().is_some_and(|a| a.disabled_at.is_none());
        let hash = match account {
            Some(account) => account.password_hash,
            None => self.decoy.clone(),
        };
        // A password longer than any allowed is wrong without hashing it; shorter ones are
        // hashed whatever their length, so the time says nothing of the rule.
        let password = if password.chars().count() > limits::PASSWORD.end() + 1 {
            String::new()
        } else {
            password
        };
        match self.verify(hash, password).await {
            Verdict::Valid if enabled => Verdict::Valid,
            Verdict::Valid => {
                tokio::time::sleep(WRONG_DELAY).await;
                Verdict::Wrong
            }
            Verdict::Busy(wait) => {
                self.attempts.refund(client);
                self.per_name.refund_key(&key);
                Verdict::Busy(wait)
            }
            other => other,
        }
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
}

/// The secret of the request's session cookie (32 bytes, sent as 64 hex digits), if it has
/// one of that shape.
pub(crate) fn session_secret(headers: &HeaderMap) -> Option<[u8; 32]> {
    let value = crate::cookie(headers, COOKIE)?;
    let mut secret = [0u8; 32];
    hex::decode_to_slice(value, &mut secret).ok()?;
    Some(secret)
}

/// The session id the database knows a secret by: its SHA-256, hex.
fn session_id(secret: &[u8; 32]) -> String {
    hex::encode(Sha256::digest(secret))
}

/// The client behind a request, as far as the admin rules care: its address (through trusted
/// proxies) and whether it came over HTTPS.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client {
    pub ip: IpAddr,
    pub https: bool,
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

/// How an [`Operator`] proved who it is.
#[derive(Debug, Clone)]
pub enum Via {
    /// A session cookie; `csrf` is the session's CSRF token, for the pages rendered for it.
    Session { csrf: String },
    /// `Authorization: Bearer <admin token>`.
    Token,
}

/// A signed-in operator: handlers that take it are protected. `name` is the account's, or
/// `token` for the admin token (a script, or a sign-in with it); it is the actor of what the
/// request does ([`crate::Shared::audit`]).
#[derive(Debug, Clone)]
pub struct Operator {
    pub name: String,
    pub via: Via,
    /// The client's address, for the audit log.
    pub ip: IpAddr,
}

impl Operator {
    /// The session's CSRF token for a page's `<meta name="csrf-token">` and forms' `_csrf`
    /// field; `None` for a Bearer request (it needs none).
    pub fn csrf(&self) -> Option<&str> {
        match &self.via {
            Via::Session { csrf } => Some(csrf),
            Via::Token => None,
        }
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    /// A request with an `Authorization` header is judged by it alone; one without, by its
    /// session cookie.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(operator) = parts.extensions.get::<Operator>() {
            return Ok(operator.clone());
        }
        let client = client_of(parts, state);
        let operator = if parts.headers.contains_key(header::AUTHORIZATION) {
            bearer_operator(parts, state, client).await?
        } else {
            session_operator(&parts.headers, state, client).await?
        };
        parts.extensions.insert(operator.clone());
        Ok(operator)
    }
}

async fn bearer_operator(
    parts: &Parts,
    state: &AppState,
    client: Client,
) -> Result<Operator, ApiError> {
    let auth = &state.admin;
    if !auth.has_token() {
        return Err(ApiError::Forbidden(
            "no admin token is configured ([admin] token_hash in monsoon.toml, made by \
             `monsoon admin-token`): sign in at /admin/login with an operator account"
                .into(),
        ));
    }
    let wrong = || {
        ApiError::Unauthorized(
            "the Authorization header must be `Bearer <admin token>`, with the right token".into(),
        )
    };
    let token = crate::bearer(&parts.headers).ok_or_else(wrong)?;
    match auth.check_token(client.ip, token.to_owned()).await {
        Verdict::Valid => Ok(Operator {
            name: TOKEN_ACTOR.to_owned(),
            via: Via::Token,
            ip: client.ip,
        }),
        Verdict::Wrong => Err(wrong()),
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
        Verdict::Unavailable(e) => Err(ApiError::Unavailable(e)),
    }
}

async fn session_operator(
    headers: &HeaderMap,
    state: &AppState,
    client: Client,
) -> Result<Operator, ApiError> {
    let Some(secret) = session_secret(headers) else {
        return Err(ApiError::Unauthorized(
            "sign in at /admin/login, or send Authorization: Bearer <admin token>".into(),
        ));
    };
    let session = state
        .operators
        .session(&session_id(&secret), state.admin.sessions.idle)
        .await
        .map_err(|e| ApiError::Unavailable(format!("the operators' database: {e}")))?;
    match session {
        Some(session) => Ok(Operator {
            name: session.operator,
            via: Via::Session {
                csrf: crate::csrf::session_token(&secret),
            },
            ip: client.ip,
        }),
        None => Err(ApiError::Unauthorized(
            "the session has ended (signed out, expired, or the account was disabled): sign in \
             again at /admin/login"
                .into(),
        )),
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
        .merge(crate::audit::routes())
        .merge(crate::jobs::routes())
        .layer(axum::middleware::map_response(crate::pages::page_headers))
}

#[derive(Template)]
#[template(path = "admin_login.html")]
struct LoginPage {
    t: &'static Messages,
    c: crate::pages::Chrome,
    error: Option<&'static str>,
    /// The page's language code: the form posts with it, so the answer and the dashboard
    /// after it are in the language the operator chose.
    lang: &'static str,
    /// The form's double-submit CSRF token (`csrf.rs`).
    csrf: String,
    /// The name typed, kept after a refusal.
    name: String,
    has_token: bool,
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
    admin_fetch_js: String,
    /// The session's CSRF token (`csrf.rs`).
    csrf: String,
    operator: String,
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
    Wrong,
    /// Too many attempts (this address's or name's, or all checks busy): retry after so many
    /// seconds.
    TooMany(u64),
    /// The form's CSRF cookie was missing or did not match: a form too old, or not ours.
    FormExpired,
    Unavailable,
}

/// The sign-in form with a fresh CSRF pair: the token in the page, the same in its cookie.
fn login_page(
    state: &AppState,
    locale: Locale,
    client_https: bool,
    status: StatusCode,
    refusal: Option<Refusal>,
    name: &str,
) -> Response {
    let t = locale.lang.messages();
    let mut token = [0u8; 32];
    if getrandom::fill(&mut token).is_err() {
        return ApiError::Internal("no randomness".into()).into_response();
    }
    let csrf = hex::encode(token);
    let page = LoginPage {
        t,
        c: crate::pages::Chrome::new(state, locale, "/admin/login"),
        error: refusal.map(|r| match r {
            Refusal::Wrong => t.admin_wrong_password.as_str(),
            Refusal::TooMany(_) => t.admin_too_many.as_str(),
            Refusal::FormExpired => t.admin_form_expired.as_str(),
            Refusal::Unavailable => t.admin_unavailable.as_str(),
        }),
        lang: locale.lang.code(),
        csrf: csrf.clone(),
        name: name.chars().take(*limits::NAME.end()).collect(),
        has_token: state.admin.has_token(),
    };
    let mut response = match page.render() {
        Ok(html) => private((status, Html(html)).into_response()),
        Err(e) => return ApiError::Internal(e.to_string()).into_response(),
    };
    let cookie = format!(
        "{}={csrf}; Max-Age={}; {}",
        crate::csrf::LOGIN_COOKIE,
        LOGIN_FORM_LIFE.as_secs(),
        cookie_attributes("/admin/login", client_https)
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    if let Some(Refusal::TooMany(wait)) = refusal {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
    }
    response
}

/// The answer to a sign-in whose form CSRF token was missing or wrong (`csrf.rs`): the form
/// again, with a fresh token, saying so (403). `head` is the request's, without its body.
pub(crate) async fn form_expired(state: &AppState, mut head: Parts) -> Response {
    let Ok(locale) = Locale::from_request_parts(&mut head, state).await;
    let client = client_of(&head, state);
    login_page(
        state,
        locale,
        client.https,
        StatusCode::FORBIDDEN,
        Some(Refusal::FormExpired),
        "",
    )
}

async fn login_form(State(state): State<AppState>, locale: Locale, client: Client) -> Response {
    login_page(&state, locale, client.https, StatusCode::OK, None, "")
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    /// The admin token, instead of a name and password.
    #[serde(default)]
    token: String,
}

/// A cookie's attributes: only for `path`, out of reach of scripts, never sent with a request
/// another site starts, and `Secure` when the client came over HTTPS (a `Secure` cookie set
/// over plain HTTP would never come back, so it is left off there).
fn cookie_attributes(path: &str, https: bool) -> String {
    let secure = if https { "; Secure" } else { "" };
    format!("Path={path}; HttpOnly; SameSite=Strict{secure}")
}

async fn login(
    State(state): State<AppState>,
    locale: Locale,
    client: Client,
    Form(form): Form<LoginForm>,
) -> Response {
    let by_token = !form.token.is_empty();
    let (actor, verdict) = if by_token {
        let verdict = state.admin.check_token(client.ip, form.token).await;
        (TOKEN_ACTOR.to_owned(), verdict)
    } else {
        let name = form.name.trim().to_owned();
        let verdict = state
            .admin
            .check_password(state.operators.as_ref(), client.ip, &name, form.password)
            .await;
        (name, verdict)
    };
    let refuse = |status, refusal| {
        let name = if by_token { "" } else { actor.as_str() };
        login_page(&state, locale, client.https, status, Some(refusal), name)
    };
    match verdict {
        Verdict::Valid => {}
        Verdict::Wrong => {
            let how = if by_token { "token" } else { "password" };
            state
                .audit_as(
                    &actor,
                    Action::SignInFailed,
                    &actor,
                    serde_json::json!({ "from": client.ip.to_string(), "with": how }),
                )
                .await;
            return refuse(StatusCode::UNAUTHORIZED, Refusal::Wrong);
        }
        Verdict::Limited(wait) | Verdict::Busy(wait) => {
            return refuse(StatusCode::TOO_MANY_REQUESTS, Refusal::TooMany(wait));
        }
        Verdict::Unavailable(e) => {
            tracing::error!(error = %e, "sign-in: the operators' database did not answer");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, Refusal::Unavailable);
        }
    }
    let mut secret = [0u8; 32];
    if getrandom::fill(&mut secret).is_err() {
        return ApiError::Internal("no randomness".into()).into_response();
    }
    let times = state.admin.sessions;
    if let Err(e) = state
        .operators
        .start_session(&session_id(&secret), &actor, times.absolute)
        .await
    {
        tracing::error!(error = %e, operator = %actor, "sign-in: no session started");
        return refuse(StatusCode::SERVICE_UNAVAILABLE, Refusal::Unavailable);
    }
    state
        .audit_as(
            &actor,
            Action::SignIn,
            &actor,
            serde_json::json!({ "from": client.ip.to_string() }),
        )
        .await;
    let session = format!(
        "{COOKIE}={}; Max-Age={}; {}",
        hex::encode(secret),
        times.absolute.as_secs(),
        cookie_attributes("/admin", client.https)
    );
    // The form's CSRF cookie has done its work.
    let spent = format!(
        "{}=; Max-Age=0; {}",
        crate::csrf::LOGIN_COOKIE,
        cookie_attributes("/admin/login", client.https)
    );
    let to = format!("/admin?lang={}", locale.lang.code());
    let mut response = private(Redirect::to(&to).into_response());
    for cookie in [session, spent] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Ends the session in the database (so no node accepts its cookie any more) and clears the
/// cookie.
async fn logout(State(state): State<AppState>, client: Client, headers: HeaderMap) -> Response {
    if let Some(secret) = session_secret(&headers) {
        let id = session_id(&secret);
        // Who it was, for the log: the session as it stands (an expired one is simply gone).
        let who = state
            .operators
            .session(&id, state.admin.sessions.idle)
            .await
            .ok()
            .flatten();
        match state.operators.end_session(&id).await {
            Ok(_) => {
                if let Some(session) = who {
                    state
                        .audit_as(
                            &session.operator,
                            Action::SignOut,
                            &session.operator,
                            serde_json::json!({ "from": client.ip.to_string() }),
                        )
                        .await;
                }
            }
            Err(e) => {
                return ApiError::Unavailable(format!(
                    "the session could not be ended (the operators' database: {e}); try again"
                ))
                .into_response();
            }
        }
    }
    let cookie = format!(
        "{COOKIE}=; Max-Age=0; {}",
        cookie_attributes("/admin", client.https)
    );
    private(([(header::SET_COOKIE, cookie)], Redirect::to("/admin/login")).into_response())
}

async fn dashboard(
    State(state): State<AppState>,
    locale: Locale,
    operator: Result<Operator, ApiError>,
) -> Result<Response, ApiError> {
    let Ok(operator) = operator else {
        let to = format!("/admin/login?lang={}", locale.lang.code());
        return Ok(private(Redirect::to(&to).into_response()));
    };
    let t = locale.lang.messages();
    let page = DashboardPage {
        t,
        c: crate::pages::Chrome::new(&state, locale, "/admin"),
        films: crate::dashboard::films(&state, locale.lang.code()),
        uplot_css: state.assets.url("uplot.css"),
        uplot_js: state.assets.url("uplot.js"),
        admin_css: state.assets.url("admin.css"),
        admin_js: state.assets.url("admin.js"),
        admin_fetch_js: state.assets.url("admin-fetch.js"),
        csrf: operator.csrf().unwrap_or_default().to_owned(),
        operator: operator.name.clone(),
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
            "actions": crate::audit::action_labels(t),
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
    /// Minute rollups of the last 24 hours, `[time_ms, value]`, by metric; sessions watching
    /// by network (`network:<name>`) and by rung (`rung:<height>`) among them.
    series: std::collections::BTreeMap<String, Vec<(i64, f64)>>,
    /// The rungs of the `rung:<height>` series: every height anyone watched at in the last
    /// 24 hours, lowest first.
    rungs: Vec<u32>,
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
    let rungs = crate::dashboard::rungs_of(&series);
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
            rungs,
            view_threshold_s: state.audience.config().view_threshold_ms as f64 / 1000.0,
            origin,
        })
        .into_response(),
    ))
}

/// An argon2id hash of `token` in PHC form, for `[admin] token_hash`.
pub fn hash_token(token: &str) -> Result<String, String> {
    operators::hash_password(token).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    fn auth(hash: Option<String>, per_minute: u32) -> Arc<AdminAuth> {
        Arc::new(AdminAuth::new(hash, per_minute, SessionTimes::default()).unwrap())
    }

    #[tokio::test]
    async fn a_token_verifies_against_its_hash_and_nothing_else_does() {
        let hash = hash_token("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        let auth = auth(Some(hash), 100);
        assert_eq!(
            auth.check_token(ip(1), "correct horse".into()).await,
            Verdict::Valid
        );
        let (trailing, empty) = tokio::join!(
            auth.check_token(ip(1), "correct horse ".into()),
            auth.check_token(ip(2), String::new())
        );
        assert_eq!((trailing, empty), (Verdict::Wrong, Verdict::Wrong));
        let off = self::auth(None, 100);
        assert!(!off.has_token());
        assert_eq!(
            off.check_token(ip(1), "correct horse".into()).await,
            Verdict::Wrong
        );
    }

    #[tokio::test]
    async fn guesses_are_rationed_per_address_and_refused_when_every_slot_is_busy() {
        let auth = auth(Some(hash_token("correct horse").unwrap()), 2);
        let started = Instant::now();
        let (a, b) = tokio::join!(
            auth.check_token(ip(1), "a".into()),
            auth.check_token(ip(1), "b".into())
        );
        assert_eq!((a, b), (Verdict::Wrong, Verdict::Wrong));
        // A wrong token is answered slowly.
        assert!(started.elapsed() >= WRONG_DELAY);
        // Two a minute: the third guess from the address waits about 30 s.
        let limited = auth.check_token(ip(1), "c".into()).await;
        assert!(matches!(limited, Verdict::Limited(20..=30)), "{limited:?}");
        // Every slot taken: refused at once, and the attempt is not counted.
        let slots = auth
            .verifying
            .try_acquire_many(VERIFY_SLOTS as u32)
            .unwrap();
        assert_eq!(
            auth.check_token(ip(2), "correct horse".into()).await,
            Verdict::Busy(1)
        );
        drop(slots);
        assert_eq!(
            auth.check_token(ip(2), "correct horse".into()).await,
            Verdict::Valid
        );
        // The token that verified is taken without a check, even from a limited address.
        assert_eq!(
            auth.check_token(ip(1), "correct horse".into()).await,
            Verdict::Valid
        );
        let limited = auth.check_token(ip(1), "correct horse!".into()).await;
        assert!(matches!(limited, Verdict::Limited(_)), "{limited:?}");
    }

    #[tokio::test]
    async fn passwords_are_rationed_per_name_too_and_unknown_names_are_checked_all_the_same() {
        let operators = monsoon_catalog::operators::MemoryOperators::new();
        use monsoon_catalog::operators::Operators as _;
        operators
            .create("lan", &hash_token("lan's long password").unwrap())
            .await
            .unwrap();
        let auth = auth(None, 2);
        let check = |from: u8, name: &'static str, password: &'static str| {
            let (auth, operators) = (&auth, &operators);
            async move {
                auth.check_password(operators, ip(from), name, password.into())
                    .await
            }
        };
        assert_eq!(check(1, "lan", "lan's long password").await, Verdict::Valid);
        let started = Instant::now();
        assert_eq!(check(2, "lan", "a wrong password").await, Verdict::Wrong);
        assert!(started.elapsed() >= WRONG_DELAY);
        // Two a minute for the name, whatever the address: the third from a fresh address is
        // refused.
        assert!(matches!(
            check(3, "lan", "another guess").await,
            Verdict::Limited(_)
        ));
        // An unknown name is checked against the decoy: wrong, slowly.
        let started = Instant::now();
        assert_eq!(
            check(4, "nobody", "lan's long password").await,
            Verdict::Wrong
        );
        assert!(started.elapsed() >= WRONG_DELAY);
        assert!(auth.decoy.starts_with("$argon2id$"));
        // A disabled account signs in no more, with the right password.
        operators.disable("lan").await.unwrap();
        let auth = self::auth(None, 10);
        assert_eq!(
            auth.check_password(&operators, ip(5), "lan", "lan's long password".into())
                .await,
            Verdict::Wrong
        );
    }

    #[test]
    fn bad_settings_are_refused_at_start() {
        let times = SessionTimes::default();
        let err = AdminAuth::new(Some("plaintext-token".into()), 10, times).unwrap_err();
        assert!(err.contains("token_hash"), "{err}");
        let err = AdminAuth::new(None, 0, times).unwrap_err();
        assert!(err.contains("sign_in_attempts_per_minute"), "{err}");
        let err = AdminAuth::new(
            None,
            10,
            SessionTimes {
                idle: Duration::ZERO,
                ..times
            },
        )
        .unwrap_err();
        assert!(err.contains("session_idle_s = 0"), "{err}");
    }

    #[test]
    fn a_session_cookie_is_32_bytes_of_hex_and_the_database_knows_only_its_hash() {
        let mut headers = HeaderMap::new();
        let secret = [7u8; 32];
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("lang=vi; {COOKIE}={}", hex::encode(secret))).unwrap(),
        );
        assert_eq!(session_secret(&headers), Some(secret));
        let id = session_id(&secret);
        assert_eq!(id.len(), 64);
        assert_ne!(id, hex::encode(secret));
        for bad in ["", "zz", "99999999999999.00", &"a".repeat(66)] {
            headers.insert(
                header::COOKIE,
                HeaderValue::from_str(&format!("{COOKIE}={bad}")).unwrap(),
            );
            assert_eq!(session_secret(&headers), None, "{bad}");
        }
    }
}
