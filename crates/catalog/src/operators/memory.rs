//! Operators and the audit log in memory, on a clock of the caller's: the reference of the
//! contract and the backends of the router's tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::jobs::Clock;

/// Accounts and sessions in memory.
pub struct MemoryOperators {
    state: Mutex<State>,
    clock: Clock,
}

#[derive(Default)]
struct State {
    accounts: BTreeMap<String, Account>,
    sessions: BTreeMap<String, Session>,
}

impl std::fmt::Debug for MemoryOperators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryOperators").finish_non_exhaustive()
    }
}

impl Default for MemoryOperators {
    fn default() -> Self {
        Self::with_clock(Arc::new(Utc::now))
    }
}

impl MemoryOperators {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_clock(clock: Clock) -> Self {
        Self {
            state: Mutex::default(),
            clock,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    /// Disables `name` at `now` and ends its sessions; `false` when there is no such enabled
    /// account.
    fn disable(&mut self, name: &str, now: DateTime<Utc>) -> bool {
        match self.accounts.get_mut(name) {
            Some(account) if account.disabled_at.is_none() => {
                account.disabled_at = Some(now);
                self.sessions.retain(|_, s| s.operator != name);
                true
            }
            _ => false,
        }
    }
}

fn after(at: DateTime<Utc>, d: Duration) -> Result<DateTime<Utc>> {
    Ok(at + chrono::Duration::from_std(d).map_err(|e| Error::Backend(e.to_string()))?)
}

#[async_trait]
impl Operators for MemoryOperators {
    async fn create(&self, name: &str, password_hash: &str) -> Result<Account> {
        validate_name(name)?;
        check_hash(password_hash)?;
        let now = (self.clock)();
        let mut state = self.state();
        if state.accounts.contains_key(name) {
            return Err(taken(name));
        }
        let account = Account {
            name: name.to_owned(),
            password_hash: password_hash.to_owned(),
            created_at: now,
            updated_at: now,
            disabled_at: None,
            last_sign_in_at: None,
        };
        state.accounts.insert(name.to_owned(), account.clone());
        Ok(account)
    }

    async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool> {
        check_hash(password_hash)?;
        let now = (self.clock)();
        let mut state = self.state();
        let Some(account) = state.accounts.get_mut(name) else {
            return Ok(false);
        };
        account.password_hash = password_hash.to_owned();
        account.updated_at = now;
        state.sessions.retain(|_, s| s.operator != name);
        Ok(true)
    }

    async fn disable(&self, name: &str) -> Result<bool> {
        let now = (self.clock)();
        Ok(self.state().disable(name, now))
    }

    async fn disable_keeping_one(&self, name: &str) -> Result<bool> {
        let now = (self.clock)();
        let mut state = self.state();
        let enabled = |a: &Account| a.disabled_at.is_none();
        if state.accounts.get(name).is_some_and(enabled)
            && !state
                .accounts
                .values()
                .any(|a| enabled(a) && a.name != name)
        {
            return Err(super::last_enabled(name));
        }
        Ok(state.disable(name, now))
    }

    async fn enable(&self, name: &str) -> Result<bool> {
        let mut state = self.state();
        match state.accounts.get_mut(name) {
            Some(account) if account.disabled_at.is_some() => {
                account.disabled_at = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn find(&self, name: &str) -> Result<Option<Account>> {
        Ok(self.state().accounts.get(name).cloned())
    }

    async fn list(&self) -> Result<Vec<Account>> {
        Ok(self.state().accounts.values().cloned().collect())
    }

    async fn start_session(&self, id: &str, operator: &str, life: Duration) -> Result<Session> {
        check_session(id, life)?;
        let now = (self.clock)();
        let mut state = self.state();
        let enabled = state
            .accounts
            .get(operator)
            .is_some_and(|a| a.disabled_at.is_none());
        if !(enabled || operator == TOKEN_ACTOR) {
            return Err(no_account(operator));
        }
        state.sessions.retain(|_, s| s.expires_at > now);
        if state.sessions.contains_key(id) {
            return Err(Error::Conflict("the session id is taken".into()));
        }
        let session = Session {
            id: id.to_owned(),
            operator: operator.to_owned(),
            created_at: now,
            last_seen_at: now,
            expires_at: after(now, life)?,
        };
        state.sessions.insert(id.to_owned(), session.clone());
        if let Some(account) = state.accounts.get_mut(operator) {
            account.last_sign_in_at = Some(now);
        }
        Ok(session)
    }

    async fn session(&self, id: &str, idle: Duration) -> Result<Option<Session>> {
        let now = (self.clock)();
        let mut state = self.state();
        let Some(session) = state.sessions.get_mut(id) else {
            return Ok(None);
        };
        if now >= session.expires_at || now >= after(session.last_seen_at, idle)? {
            return Ok(None);
        }
        session.last_seen_at = now;
        Ok(Some(session.clone()))
    }

    async fn end_session(&self, id: &str) -> Result<bool> {
        Ok(self.state().sessions.remove(id).is_some())
    }
}

/// The error of a name already taken.
pub(crate) fn taken(name: &str) -> Error {
    Error::Conflict(format!("there is already an operator named `{name}`"))
}

/// The error of a session for a name that cannot sign in.
pub(crate) fn no_account(name: &str) -> Error {
    Error::Invalid(format!(
        "`{}` is not an enabled operator: no session for it",
        shown(name, 40)
    ))
}

/// The audit log in memory.
pub struct MemoryAudit {
    entries: Mutex<Vec<AuditEntry>>,
    clock: Clock,
}

impl std::fmt::Debug for MemoryAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryAudit").finish_non_exhaustive()
    }
}

impl Default for MemoryAudit {
    fn default() -> Self {
        Self {
            entries: Mutex::default(),
            clock: Arc::new(Utc::now),
        }
    }
}

impl MemoryAudit {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl AuditLog for MemoryAudit {
    async fn append(&self, entry: &NewAuditEntry) -> Result<AuditEntry> {
        let bounded = entry.bounded();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = AuditEntry {
            id: entries.last().map_or(1, |e| e.id + 1),
            at: (self.clock)(),
            actor: bounded.actor,
            action: bounded.action.to_owned(),
            subject: bounded.subject,
            detail: serde_json::from_str(&bounded.detail)
                .map_err(|e| Error::Backend(e.to_string()))?,
        };
        entries.push(entry.clone());
        Ok(entry)
    }

    async fn list(&self, limit: u32, before: Option<i64>) -> Result<Vec<AuditEntry>> {
        check_list(limit)?;
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        Ok(entries
            .iter()
            .rev()
            .filter(|e| before.is_none_or(|b| e.id < b))
            .take(limit as usize)
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract in memory, the clock moved by hand.
    #[tokio::test]
    async fn operators_and_audit_in_memory_keep_the_contract() {
        let now = Arc::new(Mutex::new(Utc::now()));
        let clock = {
            let now = Arc::clone(&now);
            Arc::new(move || *now.lock().unwrap_or_else(|p| p.into_inner())) as Clock
        };
        let operators: Arc<dyn Operators> = Arc::new(MemoryOperators::with_clock(clock));
        let audit: Arc<dyn AuditLog> = Arc::new(MemoryAudit::new());
        conformance::run(
            &|| {
                let (operators, audit) = (Arc::clone(&operators), Arc::clone(&audit));
                Box::pin(async move { (operators, audit) })
            },
            &|d| {
                let now = Arc::clone(&now);
                Box::pin(async move {
                    let mut now = now.lock().unwrap_or_else(|p| p.into_inner());
                    *now += chrono::Duration::from_std(d).unwrap_or_default();
                })
            },
        )
        .await;
    }

    #[test]
    fn names_and_passwords_are_held_to_their_rules() {
        for good in ["an", "a", "lan.nguyen", "ops_2", "b-team", &"a".repeat(32)] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "An",
            "1an",
            "-a",
            "lan nguyen",
            "lân",
            "token",
            "cli",
            &"a".repeat(33),
        ] {
            let err = validate_name(bad).unwrap_err().to_string();
            assert!(
                err.contains("lowercase letters") && err.contains("1 to 32"),
                "{err}"
            );
        }
        assert!(check_password(&"x".repeat(12)).is_ok());
        assert!(check_password(&"ư".repeat(128)).is_ok());
        let short = check_password("hunter2").unwrap_err().to_string();
        assert!(
            short.contains("7 characters") && short.contains("12 to 128"),
            "{short}"
        );
        assert!(!short.contains("hunter2"));
        assert!(check_password(&"x".repeat(129)).is_err());
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse battery "));
        assert!(!verify_password("not a hash", "correct horse battery"));
    }

    #[test]
    fn an_entry_too_large_is_cut_not_refused() {
        let entry = NewAuditEntry::new(
            "a".repeat(100),
            Action::FilmUpdated,
            "s".repeat(300),
            serde_json::json!({ "title": "x".repeat(10_000) }),
        );
        let bounded = entry.bounded();
        assert_eq!(bounded.actor.chars().count(), limits::ACTOR_CHARS + 1);
        assert_eq!(bounded.subject.chars().count(), limits::SUBJECT_CHARS + 1);
        assert!(bounded.detail.len() <= limits::DETAIL_BYTES);
        let detail: serde_json::Value = serde_json::from_str(&bounded.detail).unwrap();
        assert!(
            detail["cut"]
                .as_str()
                .unwrap()
                .starts_with("{\"title\":\"xxx")
        );
        assert_eq!(bounded.action, "film_updated");
    }
}
