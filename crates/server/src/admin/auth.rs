//! The checks of a password or the admin token: argon2, rationed per address and per name, a
//! few at once, slow when wrong (the module docs' **Guessing**).

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use monsoon_catalog::operators::{self, limits};
use sha2::Sha256;
use tokio::sync::Semaphore;

use crate::client::RateLimit;

/// argon2 checks running at once, server-wide; more are refused, not queued.
pub(super) const VERIFY_SLOTS: usize = 2;
/// Added to every wrong-password or wrong-token answer, after the check's slot is given back.
pub(super) const WRONG_DELAY: Duration = Duration::from_secs(1);
/// How long a token that verified is taken without another argon2 check.
pub(super) const VERIFIED_FOR: Duration = Duration::from_secs(600);
/// `Retry-After` when every check slot is taken: one check's time, rounded up.
const BUSY_RETRY_S: u64 = 1;

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
    pub(super) sessions: SessionTimes,
    /// What a name without an account is checked against: a hash of a random secret, made at
    /// start, so even the first such check costs what a real one does.
    decoy: String,
}

/// What a presented password or token comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
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
    /// docs (`admin/mod.rs`): a slot, off the event loop, the delay when wrong.
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
    pub(super) async fn check_token(self: &Arc<Self>, client: IpAddr, token: String) -> Verdict {
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
    pub(super) async fn check_password(
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

/// Fewest characters of an admin token an operator chooses (`monsoon admin-token --token`):
/// guessing must be hopeless even without argon2's cost.
pub const MIN_TOKEN_CHARS: usize = 16;

/// A new admin token: 24 random bytes in hex, 192 bits.
pub fn new_token() -> Result<String, String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(hex::encode(bytes))
}

/// Refuses a chosen token shorter than [`MIN_TOKEN_CHARS`], naming its length.
pub fn check_token(token: &str) -> Result<(), String> {
    let chars = token.chars().count();
    if chars < MIN_TOKEN_CHARS {
        return Err(format!(
            "the token has {chars} characters; an admin token needs at least {MIN_TOKEN_CHARS}"
        ));
    }
    Ok(())
}

/// An argon2id hash of `token` in PHC form, for `[admin] token_hash`.
pub fn hash_token(token: &str) -> Result<String, String> {
    operators::hash_password(token).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chosen_token_is_long_enough_and_a_new_one_is_192_bits() {
        let err = check_token("fifteen-chars-x").unwrap_err();
        assert!(
            err.contains("15 characters") && err.contains("at least 16"),
            "{err}"
        );
        assert!(check_token("sixteen-chars-xx").is_ok());
        let token = new_token().unwrap();
        assert_eq!(token.len(), 48);
        assert!(check_token(&token).is_ok());
        assert_ne!(token, new_token().unwrap());
    }

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
}
