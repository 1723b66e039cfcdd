//! Session tokens: `v1.<film>.<viewer>.<session>.<expiry-ms>.<hmac>`, the HMAC-SHA256 over
//! everything before it, with the server's secret. The server mints them; a client cannot make
//! one up (PeerTube's client-made session ids "can be spoofed by users to create fake views").

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What a valid token vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub film: String,
    pub viewer: String,
    pub session: String,
    pub expires_ms: i64,
}

/// Why a token was refused (all map to 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token belongs to another session")]
    WrongSession,
}

fn mac(key: &[u8], payload: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(payload.as_bytes());
    mac
}

/// Signs `claims` with `key`.
pub fn sign(key: &[u8], claims: &Claims) -> String {
    let payload = format!(
        "v1.{}.{}.{}.{}",
        claims.film, claims.viewer, claims.session, claims.expires_ms
    );
    let tag = hex::encode(mac(key, &payload).finalize().into_bytes());
    format!("{payload}.{tag}")
}

/// Checks `token` against `key`, `session` and the time `now_ms`.
pub fn verify(key: &[u8], token: &str, session: &str, now_ms: i64) -> Result<Claims, TokenError> {
    let (payload, tag) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let tag = hex::decode(tag).map_err(|_| TokenError::Malformed)?;
    mac(key, payload)
        .verify_slice(&tag)
        .map_err(|_| TokenError::BadSignature)?;
    let parts: Vec<&str> = payload.split('.').collect();
    let [version, film, viewer, token_session, expires] = parts.as_slice() else {
        return Err(TokenError::Malformed);
    };
    if *version != "v1" {
        return Err(TokenError::Malformed);
    }
    let expires_ms: i64 = expires.parse().map_err(|_| TokenError::Malformed)?;
    if *token_session != session {
        return Err(TokenError::WrongSession);
    }
    if now_ms >= expires_ms {
        return Err(TokenError::Expired);
    }
    Ok(Claims {
        film: (*film).to_owned(),
        viewer: (*viewer).to_owned(),
        session: session.to_owned(),
        expires_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            film: "mua-do".into(),
            viewer: "v1abc".into(),
            session: "s123".into(),
            expires_ms: 10_000,
        }
    }

    #[test]
    fn round_trip_expiry_and_tampering() {
        let key = b"secret";
        let token = sign(key, &claims());
        assert_eq!(verify(key, &token, "s123", 9_999), Ok(claims()));
        assert_eq!(
            verify(key, &token, "s123", 10_000),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(key, &token, "other", 0),
            Err(TokenError::WrongSession)
        );
        assert_eq!(
            verify(b"other key", &token, "s123", 0),
            Err(TokenError::BadSignature)
        );
        // Changing any claim breaks the signature.
        let forged = token.replace("mua-do", "other-film");
        assert_eq!(
            verify(key, &forged, "s123", 0),
            Err(TokenError::BadSignature)
        );
        let later = token.replace(".10000.", ".99999999.");
        assert_eq!(
            verify(key, &later, "s123", 0),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(key, "garbage", "s123", 0),
            Err(TokenError::Malformed)
        );
        assert_eq!(verify(key, "a.zz", "s123", 0), Err(TokenError::Malformed));
    }
}
