//! Cross-site request forgery (OWASP's "CSRF Prevention Cheat Sheet"): one layer, over every
//! route under `/admin` whatever module adds it, refuses a state-changing request (any method
//! but GET, HEAD and OPTIONS) that a signed-in operator's browser could have been made to send
//! by another site, unless it carries its token:
//!
//! - with a session cookie, the session's token: an HMAC-SHA256, keyed by the cookie's secret,
//!   which only pages the server rendered for that session carry (`<meta name="csrf-token">`,
//!   the hidden `_csrf` field of forms);
//! - on `POST /admin/login`, before any session, a double-submit token: the sign-in form sets a
//!   random value in a cookie of its own and in its hidden field, and the two must match;
//! - with `Authorization: Bearer` (scripts, Prometheus), none: a browser never adds that
//!   header to a request another site starts (it is not a CORS-safelisted header, and `/admin`
//!   allows no cross-origin requests).
//!
//! The token travels in the `X-CSRF-Token` header (scripts: `adminFetch` in
//! `web/src/admin-fetch.js`) or, for a URL-encoded form, its `_csrf` field (read from at most
//! [`FORM_BYTES`] of body; a larger body or any other kind must use the header, so an upload
//! is never held in memory to look for it). A refusal is 403 saying what was missing. The
//! cookies are `SameSite=Strict` besides: this is the second line, for browsers that ignore it.
//!
//! The layer ([`CsrfLayer`]) wraps the whole router, so no `/admin` route can be added outside
//! it; every other request passes straight to the router, without the allocations of an
//! async middleware (they showed on the heartbeat path: BENCHMARKS.md, "Heartbeats").

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tower::{Layer, Service, ServiceExt};

use crate::{ApiError, AppState};

/// The header a script sends the token in.
pub const HEADER: &str = "x-csrf-token";
/// The form field a page's form sends it in.
pub const FIELD: &str = "_csrf";
/// The sign-in form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "monsoon_login";
/// A URL-encoded form is read this far for its `_csrf` field.
pub const FORM_BYTES: usize = 64 * 1024;

/// The session's token: HMAC-SHA256 keyed by the cookie's secret, hex.
pub fn session_token(secret: &[u8]) -> String {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(b"monsoon csrf");
    hex::encode(mac.finalize().into_bytes())
}

/// `a == b` in time that depends on their lengths only.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Whether `method` may change state: anything but GET, HEAD and OPTIONS (RFC 9110 §9.2.1's
/// safe methods, less TRACE, which the router answers with 405 anyway).
fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn under_admin(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/")
}

/// What the request must carry, if anything.
enum Expected {
    /// Nothing: not a state change under `/admin`, a Bearer request, or no session to forge.
    Nothing,
    Token(String),
    /// A sign-in without the form's cookie (it expired, or the form was not ours).
    NoLoginCookie,
}

fn expected(request: &Request) -> Expected {
    let path = request.uri().path();
    if !under_admin(path) || !changes_state(request.method()) {
        return Expected::Nothing;
    }
    let headers = request.headers();
    if path == "/admin/login" {
        return match crate::cookie(headers, LOGIN_COOKIE).filter(|v| !v.is_empty()) {
            Some(value) => Expected::Token(value.to_owned()),
            None => Expected::NoLoginCookie,
        };
    }
    if crate::bearer(headers).is_some() {
        return Expected::Nothing;
    }
    match crate::admin::session_secret(headers) {
        Some(secret) => Expected::Token(session_token(&secret)),
        // No session: the handler refuses (401) whatever was sent; nothing to forge.
        None => Expected::Nothing,
    }
}

fn header_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The layer: see the module docs.
#[derive(Clone)]
pub struct CsrfLayer(pub AppState);

impl<S> Layer<S> for CsrfLayer {
    type Service = Csrf<S>;

    fn layer(&self, inner: S) -> Csrf<S> {
        Csrf {
            state: self.0.clone(),
            inner,
        }
    }
}

/// [`CsrfLayer`]'s service.
#[derive(Clone)]
pub struct Csrf<S> {
    state: AppState,
    inner: S,
}

type Checked = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<S> Service<Request> for Csrf<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, Checked>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if !under_admin(request.uri().path()) || !changes_state(request.method()) {
            return Either::Left(self.inner.call(request));
        }
        // The clone that was made ready goes with the request (tower's `Service` contract).
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        Either::Right(Box::pin(
            async move { Ok(guard(state, request, ready).await) },
        ))
    }
}

/// The checks of the module docs on a state change under `/admin`; `inner` answers what
/// passes.
async fn guard<S>(state: AppState, request: Request, inner: S) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let pass = |request: Request| async move {
        match inner.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    };
    let expected = match expected(&request) {
        Expected::Nothing => return pass(request).await,
        Expected::NoLoginCookie => {
            return crate::admin::form_expired(&state, request.into_parts().0).await;
        }
        Expected::Token(token) => token,
    };
    if let Some(sent) = header_token(request.headers()) {
        return if same(&sent, &expected) {
            pass(request).await
        } else {
            refused(
                &state,
                request,
                "the X-CSRF-Token header is not this session's",
            )
            .await
        };
    }
    if !is_form(request.headers()) {
        return refused(
            &state,
            request,
            "no CSRF token: send the X-CSRF-Token header (the page's <meta name=\"csrf-token\">)",
        )
        .await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, FORM_BYTES).await else {
        return ApiError::PayloadTooLarge(format!(
            "a form over {FORM_BYTES} bytes must send its CSRF token in the X-CSRF-Token header"
        ))
        .into_response();
    };
    let sent = form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == FIELD)
        .map(|(_, value)| value.into_owned());
    let request = Request::from_parts(parts, Body::from(bytes));
    match sent {
        Some(sent) if same(&sent, &expected) => pass(request).await,
        Some(_) => {
            refused(
                &state,
                request,
                "the form's _csrf field is not this session's",
            )
            .await
        }
        None => {
            refused(
                &state,
                request,
                "the form has no _csrf field: reload the page it came from",
            )
            .await
        }
    }
}

async fn refused(state: &AppState, request: Request, why: &str) -> Response {
    if request.uri().path() == "/admin/login" {
        return crate::admin::form_expired(state, request.into_parts().0).await;
    }
    crate::admin::private(
        ApiError::Forbidden(format!("refused as a possible cross-site request: {why}"))
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_belong_to_their_session_and_compare_whole() {
        let a = session_token(&[1; 32]);
        assert_eq!(a.len(), 64);
        assert_eq!(a, session_token(&[1; 32]));
        assert_ne!(a, session_token(&[2; 32]));
        assert!(same(&a, &a.clone()));
        assert!(!same(&a, &a[..63]));
        assert!(!same(&a, ""));
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(changes_state(&method));
        }
        assert!(!changes_state(&Method::GET));
        assert!(under_admin("/admin") && under_admin("/admin/api/x"));
        assert!(!under_admin("/administrator") && !under_admin("/api/v1"));
    }
}
