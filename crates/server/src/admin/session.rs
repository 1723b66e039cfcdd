//! Who a request comes from: the client (address, HTTPS) and the [`Operator`] it is signed in
//! as, by its session cookie or `Authorization: Bearer <admin token>`.

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use monsoon_catalog::operators::TOKEN_ACTOR;
use sha2::{Digest, Sha256};

use super::auth::{VERIFY_SLOTS, Verdict};
use crate::{ApiError, AppState};

/// Name of the session cookie.
pub(super) const COOKIE: &str = "monsoon_admin";

/// The secret of the request's session cookie (32 bytes, sent as 64 hex digits), if it has
/// one of that shape.
pub(crate) fn session_secret(headers: &HeaderMap) -> Option<[u8; 32]> {
    let value = crate::cookie(headers, COOKIE)?;
    let mut secret = [0u8; 32];
    hex::decode_to_slice(value, &mut secret).ok()?;
    Some(secret)
}

/// The session id the database knows a secret by: its SHA-256, hex.
pub(super) fn session_id(secret: &[u8; 32]) -> String {
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

pub(super) fn client_of(parts: &Parts, state: &AppState) -> Client {
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

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

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
