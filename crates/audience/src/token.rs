//! Session tokens: `v2.<film>.<viewer>.<session>.<issued-ms>.<expiry-ms>.<hmac>`, the
//! HMAC-SHA256 over everything before it, with the server's secret. The server mints them; a
//! client cannot make one up (PeerTube's client-made session ids "can be spoofed by users to
//! create fake views"). Minting keeps nothing on the server: the token is the session until
//! its first heartbeat, so a flood of mints costs no memory. Tokens of the previous form,
//! `v1.<film>.<viewer>.<session>.<expiry-ms>.<hmac>`, are still accepted (without an issue
//! time) so that viewers watching across an upgrade keep counting.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What a valid token vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub film: String,
    pub viewer: String,
    pub session: String,
    /// When the session was minted (absent from `v1` tokens).
    pub issued_ms: Option<i64>,
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
        "v2.{}.{}.{}.{}.{}",
        claims.film,
        claims.viewer,
        claims.session,
        claims.issued_ms.unwrap_or(0),
        claims.expires_ms
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
    let (film, viewer, token_session, issued, expires) = match parts.as_slice() {
        ["v2", film, viewer, session, issued, expires] => {
            (film, viewer, session, Some(issued), expires)
        }
        ["v1", film, viewer, session, expires] => (film, viewer, session, None, expires),
        _ => return Err(TokenError::Malformed),
    };
    let expires_ms: i64 = expires.parse().map_err(|_| TokenError::Malformed)?;
    let issued_ms = match issued {
        Some(at) => Some(at.parse().map_err(|_| TokenError::Malformed)?),
        None => None,
    };
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
        issued_ms,
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
            issued_ms: Some(1_000),
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

    #[test]
    fn tokens_of_the_first_form_still_verify() {
        let key = b"secret";
        let payload = "v1.mua-do.v1abc.s123.10000";
        let tag = hex::encode(mac(key, payload).finalize().into_bytes());
        let claims = verify(key, &format!("{payload}.{tag}"), "s123", 0).unwrap();
        assert_eq!((claims.issued_ms, claims.expires_ms), (None, 10_000));
    }
}
