//! The people who run the studio: operator accounts ([`Operators`]: argon2id password hashes,
//! sessions that expire), and the [`AuditLog`] of who did what and when. PostgreSQL and
//! SQLite implement both in `crates/db` (`migrations/*/…_operators.sql`); [`MemoryOperators`]
//! and [`MemoryAudit`] serve tests; [`conformance::run`] is the contract all three keep.
//!
//! Sessions are named by the SHA-256 of a secret only the operator's browser holds (its
//! cookie): a copy of the database signs nobody in. Session times, like audit times, are the
//! database's clock, so every node of a cluster agrees on which session has expired.

use std::ops::RangeInclusive;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Error, Result};

mod memory;
mod table;

pub use memory::{MemoryAudit, MemoryOperators};
pub use table::table;

#[allow(clippy::unwrap_used)]
pub mod conformance;

/// Bounds of what an account, a session and an audit entry hold; every backend refuses more.
pub mod limits {
    use std::ops::RangeInclusive;
    use std::time::Duration;

    /// An operator's name, characters.
    pub const NAME: RangeInclusive<usize> = 1..=32;
    /// A password, characters: long enough that guessing through the sign-in's rationing is
    /// hopeless, short enough that hashing one is bounded work.
    pub const PASSWORD: RangeInclusive<usize> = 12..=128;
    /// A session id: the hex SHA-256 of the cookie's secret.
    pub const SESSION_ID_CHARS: usize = 64;
    /// A session's life: from a second (tests) to 30 days.
    pub const SESSION: RangeInclusive<Duration> =
        Duration::from_secs(1)..=Duration::from_secs(30 * 86_400);
    /// An audit entry's actor, characters.
    pub const ACTOR_CHARS: usize = 64;
    /// An audit entry's subject (a slug, a job id, a name), characters; longer ones are cut.
    pub const SUBJECT_CHARS: usize = 200;
    /// An audit entry's detail as JSON text, bytes; a longer one is replaced by its cut text.
    pub const DETAIL_BYTES: usize = 4096;
    /// Entries one `AuditLog::list` returns at most.
    pub const LIST: u32 = 500;
}

/// The rule of operator names, as error messages state it.
pub const NAME_RULE: &str = "1 to 32 characters: lowercase letters a-z, digits, '.', '_' and \
     '-', starting with a letter (`token` and `cli` are reserved)";

/// The actor of what was done with the admin token (a script, or a sign-in with the token).
pub const TOKEN_ACTOR: &str = "token";
/// The actor of what was done on the command line (`monsoon operator`, `monsoon ingest`).
pub const CLI_ACTOR: &str = "cli";

/// Refuses a name that breaks [`NAME_RULE`], naming it.
pub fn validate_name(name: &str) -> Result<()> {
    let chars = name.chars().count();
    let valid = limits::NAME.contains(&chars)
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        && name != TOKEN_ACTOR
        && name != CLI_ACTOR;
    if valid {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "operator name `{}` is not valid: {NAME_RULE}",
            shown(name, 40)
        )))
    }
}

/// Refuses a password outside [`limits::PASSWORD`], saying its length and the rule (never
/// the password).
pub fn check_password(password: &str) -> Result<()> {
    let chars = password.chars().count();
    if limits::PASSWORD.contains(&chars) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "a password of {chars} characters is refused: it must have {} to {} characters",
            limits::PASSWORD.start(),
            limits::PASSWORD.end()
        )))
    }
}

/// The characters of [`generate_password`]: no `0`/`O`, `1`/`l`/`I`, easy to read aloud and
/// to type from a screen.
const GENERATED_ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// The length of [`generate_password`]'s passwords: 20 of 57 characters, over 116 bits.
pub const GENERATED_CHARS: usize = 20;

/// A random password of [`GENERATED_CHARS`] characters (within [`limits::PASSWORD`]), for an
/// account made or reset in the studio: shown once, never stored.
pub fn generate_password() -> Result<String> {
    let len = GENERATED_ALPHABET.len();
    // Rejection sampling: bytes past the largest multiple of the alphabet's size are
    // drawn again, so every character is equally likely.
    let limit = 256 - 256 % len;
    let mut out = String::with_capacity(GENERATED_CHARS);
    while out.len() < GENERATED_CHARS {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| Error::Backend(format!("no randomness: {e}")))?;
        for b in bytes {
            if usize::from(b) < limit && out.len() < GENERATED_CHARS {
                out.push(char::from(GENERATED_ALPHABET[usize::from(b) % len]));
            }
        }
    }
    Ok(out)
}

/// An argon2id hash of `secret` in PHC form (the `argon2` crate's defaults: 19 MiB, two
/// passes, RFC 9106's second recommended option).
pub fn hash_password(secret: &str) -> Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| Error::Backend(format!("no randomness: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Backend(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Backend(e.to_string()))
}

/// Whether `secret` matches the PHC `hash` (false for a hash that does not parse). Slow by
/// design: call it off the event loop.
pub fn verify_password(hash: &str, secret: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Whether `hash` is a PHC string argon2 reads.
pub fn is_password_hash(hash: &str) -> bool {
    argon2::password_hash::PasswordHash::new(hash).is_ok()
}

/// Refuses what is not an argon2 PHC string (a password stored by mistake).
pub fn check_hash(hash: &str) -> Result<()> {
    if is_password_hash(hash) {
        Ok(())
    } else {
        Err(Error::Invalid(
            "a password must be stored as its argon2 hash (hash_password)".into(),
        ))
    }
}

/// `text` cut to `max` characters, for messages and bounded fields.
fn shown(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// An operator account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub name: String,
    /// The argon2id PHC string of the password.
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    /// The last change of the password (or the creation).
    pub updated_at: DateTime<Utc>,
    /// When the account was disabled: it signs in no more.
    pub disabled_at: Option<DateTime<Utc>>,
    /// The start of its last session (a sign-in), when it has signed in since the database
    /// kept it.
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

/// A signed-in operator's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The hex SHA-256 of the cookie's secret.
    pub id: String,
    /// The operator's name, or [`TOKEN_ACTOR`] for a sign-in with the admin token.
    pub operator: String,
    pub created_at: DateTime<Utc>,
    /// The last request made with it.
    pub last_seen_at: DateTime<Utc>,
    /// Its absolute end, whatever its use.
    pub expires_at: DateTime<Utc>,
}

/// Checks a session id and a lifetime against their bounds.
/// The refusal of [`Operators::disable_keeping_one`] for the last enabled account.
pub fn last_enabled(name: &str) -> Error {
    Error::Conflict(format!(
        "`{name}` is the last active operator account: disabling it would leave no account to \
         sign in with"
    ))
}

pub fn check_session(id: &str, life: Duration) -> Result<()> {
    if id.len() != limits::SESSION_ID_CHARS || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Invalid(format!(
            "a session id must be {} hex digits",
            limits::SESSION_ID_CHARS
        )));
    }
    check_life(life)
}

/// Checks a session's lifetime (or idle time) against [`limits::SESSION`].
pub fn check_life(life: Duration) -> Result<()> {
    if limits::SESSION.contains(&life) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "a session time of {life:?} is outside {:?}..={:?}",
            limits::SESSION.start(),
            limits::SESSION.end()
        )))
    }
}

/// The operator accounts and their sessions.
#[async_trait]
pub trait Operators: Send + Sync + std::fmt::Debug {
    /// Records a new, enabled account (its name checked with [`validate_name`], its hash a PHC
    /// string). Refused with [`Error::Conflict`] when the name is taken, even by a disabled
    /// account.
    async fn create(&self, name: &str, password_hash: &str) -> Result<Account>;

    /// Replaces an account's password hash and ends its sessions (a disabled account stays
    /// disabled). `false`: no such account.
    async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool>;

    /// Disables an account and ends its sessions. `false`: no such account, or disabled
    /// already.
    async fn disable(&self, name: &str) -> Result<bool>;

    /// [`Operators::disable`], unless no other account would be left enabled: then nothing
    /// changes and it is refused with [`last_enabled`]'s [`Error::Conflict`]. One decision
    /// with the change: of two operators disabling each other at once, one is refused.
    async fn disable_keeping_one(&self, name: &str) -> Result<bool>;

    /// Enables a disabled account again (with its password as it was). `false`: no such
    /// account, or enabled already.
    async fn enable(&self, name: &str) -> Result<bool>;

    /// One account by name, or `None`.
    async fn find(&self, name: &str) -> Result<Option<Account>>;

    /// Every account, by name.
    async fn list(&self) -> Result<Vec<Account>>;

    /// Starts session `id` (see [`check_session`]) of `operator` — an enabled account, or
    /// [`TOKEN_ACTOR`] — ending `life` from now on the database's clock, and records it as the
    /// account's `last_sign_in_at`. Sessions whose absolute end has passed are removed on the
    /// way.
    async fn start_session(&self, id: &str, operator: &str, life: Duration) -> Result<Session>;

    /// Session `id` if it is neither past its absolute end nor idle for `idle` or more, and
    /// marks it used now. `None`: no such session, or expired.
    async fn session(&self, id: &str, idle: Duration) -> Result<Option<Session>>;

    /// Ends session `id` (signing out). `false`: there was none.
    async fn end_session(&self, id: &str) -> Result<bool>;
}

/// What an audit entry records. Stored as its `snake_case` name; entries read back keep the
/// name as text, so an older node reads the actions of a newer one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    SignIn,
    SignInFailed,
    SignOut,
    OperatorCreated,
    OperatorPasswordSet,
    OperatorDisabled,
    OperatorEnabled,
    JobSubmitted,
    JobCancelled,
    FilmCreated,
    FilmUpdated,
    DraftDeleted,
    FilmPublished,
    FilmScheduled,
    UploadCreated,
    UploadCancelled,
    TrackAdded,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "sign_in",
            Self::SignInFailed => "sign_in_failed",
            Self::SignOut => "sign_out",
            Self::OperatorCreated => "operator_created",
            Self::OperatorPasswordSet => "operator_password_set",
            Self::OperatorDisabled => "operator_disabled",
            Self::OperatorEnabled => "operator_enabled",
            Self::JobSubmitted => "job_submitted",
            Self::JobCancelled => "job_cancelled",
            Self::FilmCreated => "film_created",
            Self::FilmUpdated => "film_updated",
            Self::DraftDeleted => "draft_deleted",
            Self::FilmPublished => "film_published",
            Self::FilmScheduled => "film_scheduled",
            Self::UploadCreated => "upload_created",
            Self::UploadCancelled => "upload_cancelled",
            Self::TrackAdded => "track_added",
        }
    }
}

/// An audit entry as written.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    /// Who: an operator's name, [`TOKEN_ACTOR`] or [`CLI_ACTOR`] (for a failed sign-in, the
    /// name that was tried).
    pub actor: String,
    pub action: Action,
    /// What: a film's slug, a job's id, an operator's name; empty when nothing in particular.
    pub subject: String,
    /// The rest, as a JSON value (what changed, from which address).
    pub detail: serde_json::Value,
}

impl NewAuditEntry {
    pub fn new(
        actor: impl Into<String>,
        action: Action,
        subject: impl Into<String>,
        detail: serde_json::Value,
    ) -> Self {
        Self {
            actor: actor.into(),
            action,
            subject: subject.into(),
            detail,
        }
    }

    /// The entry within its bounds: actor and subject cut to their length, a detail longer
    /// than [`limits::DETAIL_BYTES`] replaced by `{"cut": "<the start of its JSON text>"}`.
    /// An entry is never refused for its size: what was done is recorded, whatever its shape.
    pub fn bounded(&self) -> BoundedEntry {
        let detail = self.detail.to_string();
        let detail = if detail.len() <= limits::DETAIL_BYTES {
            detail
        } else {
            serde_json::json!({ "cut": shown(&detail, limits::DETAIL_BYTES / 8) }).to_string()
        };
        BoundedEntry {
            actor: shown(&self.actor, limits::ACTOR_CHARS),
            action: self.action.as_str(),
            subject: shown(&self.subject, limits::SUBJECT_CHARS),
            detail,
        }
    }
}

/// A [`NewAuditEntry`] within bounds, as backends store it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundedEntry {
    pub actor: String,
    pub action: &'static str,
    pub subject: String,
    /// JSON text.
    pub detail: String,
}

/// An audit entry as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Increasing with each entry: `before=` pages with it.
    pub id: i64,
    /// When, on the database's clock.
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: serde_json::Value,
}

/// Checks `list`'s `limit` against [`limits::LIST`].
pub fn check_list(limit: u32) -> Result<()> {
    const RANGE: RangeInclusive<u32> = 1..=limits::LIST;
    if RANGE.contains(&limit) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "limit {limit} is outside 1..={}",
            limits::LIST
        )))
    }
}

/// Appends `entry` to `audit`; a failure is a warning in the log, naming the entry, and no
/// error: what it records is done already.
pub async fn append_or_warn(audit: &dyn AuditLog, entry: &NewAuditEntry) {
    if let Err(e) = audit.append(entry).await {
        tracing::warn!(
            error = %e, actor = entry.actor, action = entry.action.as_str(),
            subject = entry.subject, "not recorded in the audit log"
        );
    }
}

/// `detail` (a JSON object) with the shell's user (`$USER`, when set) as `user`: who ran the
/// command line, which records its changes as [`CLI_ACTOR`].
pub fn with_cli_user(mut detail: serde_json::Value) -> serde_json::Value {
    let user = std::env::var("USER").unwrap_or_default();
    if let Some(object) = detail.as_object_mut()
        && !user.is_empty()
    {
        object.insert("user".into(), user.into());
    }
    detail
}

/// The command line as a job's log names who acted: `cli (lan)`, with the shell's user
/// (`$USER`, when set).
pub fn cli_by() -> String {
    match std::env::var("USER").unwrap_or_default() {
        user if user.is_empty() => CLI_ACTOR.to_owned(),
        user => format!("{CLI_ACTOR} ({user})"),
    }
}

/// Writes what the command line did to the audit log, by [`CLI_ACTOR`] with the shell's user
/// in the detail; a failure is a warning (the change is made).
pub async fn record(audit: &dyn AuditLog, action: Action, subject: &str) {
    record_with(audit, action, subject, serde_json::json!({})).await;
}

/// [`record`] with a detail (a JSON object; `user` is added to it).
pub async fn record_with(
    audit: &dyn AuditLog,
    action: Action,
    subject: &str,
    detail: serde_json::Value,
) {
    let entry = NewAuditEntry::new(CLI_ACTOR, action, subject, with_cli_user(detail));
    append_or_warn(audit, &entry).await;
}

/// Who did what, when: appended to, never changed.
#[async_trait]
pub trait AuditLog: Send + Sync + std::fmt::Debug {
    /// Records `entry` ([`NewAuditEntry::bounded`]) at the database's time.
    async fn append(&self, entry: &NewAuditEntry) -> Result<AuditEntry>;

    /// The newest `limit` entries (at most [`limits::LIST`]) older than entry `before` when
    /// given, newest first.
    async fn list(&self, limit: u32, before: Option<i64>) -> Result<Vec<AuditEntry>>;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_keep_the_password_rule_and_differ() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.chars().count(), GENERATED_CHARS);
        check_password(&a).unwrap();
        assert!(a.bytes().all(|c| GENERATED_ALPHABET.contains(&c)), "{a}");
        assert_ne!(a, b, "two generated passwords are the same");
    }

    #[tokio::test]
    async fn the_command_line_records_as_cli_with_the_shell_user_and_keeps_the_detail() {
        let audit = MemoryAudit::new();
        record_with(
            &audit,
            Action::JobSubmitted,
            "7",
            serde_json::json!({ "slug": "mua-do" }),
        )
        .await;
        let entries = audit.list(10, None).await.unwrap();
        let entry = &entries[0];
        assert_eq!(
            (
                entry.actor.as_str(),
                entry.action.as_str(),
                entry.subject.as_str()
            ),
            (CLI_ACTOR, "job_submitted", "7")
        );
        assert_eq!(entry.detail["slug"], "mua-do");
        match std::env::var("USER").unwrap_or_default() {
            user if user.is_empty() => assert!(entry.detail.get("user").is_none()),
            user => assert_eq!(entry.detail["user"], user),
        }
    }
}
