//! Signing in (`/admin/login`: the form and its CSRF cookie, a name and password or the token)
//! and out (`/admin/logout`), each written to the audit log.

use std::time::Duration;

use askama::Template;
use axum::Form;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use monsoon_catalog::operators::{Action, TOKEN_ACTOR, limits};
use serde::Deserialize;

use super::auth::Verdict;
use super::private;
use super::session::{COOKIE, Client, client_of, session_id, session_secret};
use crate::i18n::{Locale, Messages};
use crate::{ApiError, AppState};

/// How long the sign-in form's CSRF cookie lasts.
const LOGIN_FORM_LIFE: Duration = Duration::from_secs(3600);

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

pub(super) async fn login_form(
    State(state): State<AppState>,
    locale: Locale,
    client: Client,
) -> Response {
    login_page(&state, locale, client.https, StatusCode::OK, None, "")
}

#[derive(Debug, Deserialize)]
pub(super) struct LoginForm {
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

pub(super) async fn login(
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
pub(super) async fn logout(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
) -> Response {
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
