//! The contract of [`Operators`] and [`AuditLog`]: `conformance::run(open, wait)` on a fresh,
//! empty database. Each `open` is a restart (the same database, reopened); `wait(d)` lets at
//! least `d` pass on the database's clock (a sleep for a database, a step of the hand clock in
//! memory). Sessions are either long (an hour: they cannot expire during the test) or short
//! and waited out, so the suite never races the clock. A broken promise panics.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::*;

pub type Open<'a> =
    &'a dyn Fn() -> Pin<Box<dyn Future<Output = (Arc<dyn Operators>, Arc<dyn AuditLog>)>>>;
pub type Wait<'a> = &'a dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()>>>;

const LONG: Duration = Duration::from_secs(3600);
const SHORT: Duration = Duration::from_secs(1);

/// A session id as the server makes them: 64 hex digits.
pub fn session_id(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

pub async fn run(open: Open<'_>, wait: Wait<'_>) {
    accounts_are_created_once_kept_and_validated(open).await;
    a_disabled_account_or_a_new_password_ends_its_sessions(open).await;
    sessions_end_at_their_absolute_end_when_idle_and_on_sign_out(open, wait).await;
    the_audit_log_is_newest_first_paged_and_bounded(open).await;
    the_last_enabled_account_stays_even_when_two_disable_each_other(open).await;
}

async fn accounts_are_created_once_kept_and_validated(open: Open<'_>) {
    let (operators, _) = open().await;
    let hash = hash_password("first password").unwrap();
    let lan = operators.create("lan", &hash).await.unwrap();
    assert_eq!(lan.name, "lan");
    assert_eq!(lan.disabled_at, None);
    assert_eq!(lan.last_sign_in_at, None, "signed in before any session");
    assert_eq!(lan.password_hash, hash);
    operators.create("an", &hash).await.unwrap();
    let taken = operators.create("lan", &hash).await.unwrap_err();
    assert!(matches!(taken, Error::Conflict(_)), "{taken}");
    assert!(taken.to_string().contains("`lan`"), "{taken}");
    for bad in ["Lan", "token", "", "a b"] {
        let err = operators.create(bad, &hash).await.unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{bad}: {err}");
    }
    let plain = operators.create("plain", "a password").await.unwrap_err();
    assert!(plain.to_string().contains("argon2"), "{plain}");
    drop(operators);
    let (operators, _) = open().await;
    assert_eq!(
        operators.find("lan").await.unwrap().as_ref(),
        Some(&lan),
        "lost or changed across a restart"
    );
    assert_eq!(operators.find("nobody").await.unwrap(), None);
    let names: Vec<String> = operators
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["an", "lan"], "listed by name");
    let new_hash = hash_password("second password").unwrap();
    assert!(operators.set_password("lan", &new_hash).await.unwrap());
    assert!(!operators.set_password("nobody", &new_hash).await.unwrap());
    let changed = operators.find("lan").await.unwrap().unwrap();
    assert!(verify_password(&changed.password_hash, "second password"));
    assert!(changed.updated_at >= lan.updated_at);
}

async fn a_disabled_account_or_a_new_password_ends_its_sessions(open: Open<'_>) {
    let (operators, _) = open().await;
    let hash = hash_password("mai's password").unwrap();
    operators.create("mai", &hash).await.unwrap();
    operators.create("binh", &hash).await.unwrap();
    let started = operators
        .start_session(&session_id(1), "mai", LONG)
        .await
        .unwrap();
    assert_eq!(started.operator, "mai");
    assert!(started.expires_at > started.created_at);
    assert_eq!(
        operators
            .find("mai")
            .await
            .unwrap()
            .unwrap()
            .last_sign_in_at,
        Some(started.created_at),
        "a session is the account's last sign-in"
    );
    operators
        .start_session(&session_id(2), "binh", LONG)
        .await
        .unwrap();
    operators
        .start_session(&session_id(3), TOKEN_ACTOR, LONG)
        .await
        .unwrap();
    let again = operators.start_session(&session_id(1), "mai", LONG).await;
    assert!(again.is_err(), "a session id was given twice");
    for bad in ["short", &"g".repeat(64)] {
        assert!(
            operators.start_session(bad, "mai", LONG).await.is_err(),
            "{bad}"
        );
    }
    assert!(
        operators
            .start_session(&session_id(9), "nobody", LONG)
            .await
            .is_err(),
        "a session for no account"
    );

    // A new password signs the account out everywhere; others stay.
    assert!(operators.set_password("binh", &hash).await.unwrap());
    assert!(
        operators
            .session(&session_id(2), LONG)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        operators
            .session(&session_id(1), LONG)
            .await
            .unwrap()
            .is_some()
    );

    assert!(operators.disable("mai").await.unwrap());
    assert!(!operators.disable("mai").await.unwrap(), "disabled twice");
    assert!(!operators.disable("nobody").await.unwrap());
    assert!(
        operators
            .session(&session_id(1), LONG)
            .await
            .unwrap()
            .is_none(),
        "a disabled operator's session still stands"
    );
    assert!(
        operators
            .find("mai")
            .await
            .unwrap()
            .unwrap()
            .disabled_at
            .is_some()
    );
    assert!(
        operators
            .start_session(&session_id(4), "mai", LONG)
            .await
            .is_err(),
        "a disabled operator got a session"
    );

    // Enabled again: it signs in with the password it had, and is enabled once.
    assert!(operators.enable("mai").await.unwrap());
    assert!(!operators.enable("mai").await.unwrap(), "enabled twice");
    assert!(!operators.enable("nobody").await.unwrap());
    assert!(
        !operators.enable("binh").await.unwrap(),
        "binh was never disabled"
    );
    let mai = operators.find("mai").await.unwrap().unwrap();
    assert_eq!(mai.disabled_at, None);
    assert!(verify_password(&mai.password_hash, "mai's password"));
    operators
        .start_session(&session_id(5), "mai", LONG)
        .await
        .expect("an enabled-again operator gets a session");
    assert!(operators.disable("mai").await.unwrap());

    let token = operators
        .session(&session_id(3), LONG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token.operator, TOKEN_ACTOR);
    assert!(operators.end_session(&session_id(3)).await.unwrap());
}

async fn sessions_end_at_their_absolute_end_when_idle_and_on_sign_out(
    open: Open<'_>,
    wait: Wait<'_>,
) {
    let (operators, _) = open().await;
    operators
        .create("thu", &hash_password("thu's password").unwrap())
        .await
        .unwrap();
    // Absolute: a short life ends however busy the session is.
    let short = session_id(10);
    operators.start_session(&short, "thu", SHORT).await.unwrap();
    assert!(operators.session(&short, LONG).await.unwrap().is_some());
    wait(SHORT + Duration::from_millis(100)).await;
    assert!(
        operators.session(&short, LONG).await.unwrap().is_none(),
        "a session outlived its absolute end"
    );

    // Idle: used within the idle time it stands; left alone longer, it ends.
    let idle = session_id(11);
    let used = session_id(12);
    operators.start_session(&idle, "thu", LONG).await.unwrap();
    operators.start_session(&used, "thu", LONG).await.unwrap();
    let first = operators.session(&used, LONG).await.unwrap().unwrap();
    wait(Duration::from_millis(1200)).await;
    let second = operators.session(&used, LONG).await.unwrap().unwrap();
    assert!(
        second.last_seen_at > first.last_seen_at,
        "use is not recorded"
    );
    assert!(
        operators.session(&used, SHORT).await.unwrap().is_some(),
        "a session just used was idle"
    );
    assert!(
        operators.session(&idle, SHORT).await.unwrap().is_none(),
        "a session idle for longer than the idle time stands"
    );

    // Sign-out, seen by a restarted node.
    assert!(operators.end_session(&used).await.unwrap());
    assert!(!operators.end_session(&used).await.unwrap());
    drop(operators);
    let (operators, _) = open().await;
    assert!(operators.session(&used, LONG).await.unwrap().is_none());
}

async fn the_audit_log_is_newest_first_paged_and_bounded(open: Open<'_>) {
    let (_, audit) = open().await;
    assert!(audit.list(10, None).await.unwrap().is_empty());
    let mut ids = Vec::new();
    for (i, action) in [Action::SignIn, Action::FilmUpdated, Action::JobCancelled]
        .into_iter()
        .enumerate()
    {
        let entry = audit
            .append(&NewAuditEntry::new(
                "lan",
                action,
                format!("film-{i}"),
                serde_json::json!({ "n": i, "from": "192.0.2.1" }),
            ))
            .await
            .unwrap();
        assert_eq!(entry.action, action.as_str());
        ids.push(entry.id);
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");
    let huge = audit
        .append(&NewAuditEntry::new(
            "x".repeat(500),
            Action::FilmCreated,
            "s".repeat(1000),
            serde_json::json!({ "big": "y".repeat(100_000) }),
        ))
        .await
        .unwrap();
    assert!(huge.actor.chars().count() <= limits::ACTOR_CHARS + 1);
    assert!(huge.subject.chars().count() <= limits::SUBJECT_CHARS + 1);
    assert!(huge.detail.to_string().len() <= limits::DETAIL_BYTES);
    drop(audit);
    let (_, audit) = open().await;
    let all = audit.list(10, None).await.unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0], huge, "lost or changed across a restart");
    assert_eq!(all[1].action, "job_cancelled");
    assert_eq!(all[1].subject, "film-2");
    assert_eq!(all[1].detail["from"], "192.0.2.1");
    assert_eq!(all[3].actor, "lan");
    assert!(
        all.windows(2).all(|w| w[0].at >= w[1].at),
        "not newest first"
    );
    let page = audit.list(2, Some(ids[2])).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.id).collect::<Vec<_>>(),
        [ids[1], ids[0]],
        "before= pages to older entries"
    );
    assert_eq!(audit.list(1, None).await.unwrap()[0].id, huge.id);
    for bad in [0, limits::LIST + 1] {
        assert!(audit.list(bad, None).await.is_err(), "limit {bad}");
    }
}

async fn the_last_enabled_account_stays_even_when_two_disable_each_other(open: Open<'_>) {
    let (operators, _) = open().await;
    let hash = hash_password("a password").unwrap();
    for name in ["quoc", "hoa"] {
        operators.create(name, &hash).await.unwrap();
    }
    // Only these two enabled.
    for account in operators.list().await.unwrap() {
        if !["quoc", "hoa"].contains(&account.name.as_str()) {
            operators.disable(&account.name).await.unwrap();
        }
    }
    assert!(!operators.disable_keeping_one("nobody").await.unwrap());
    // Each disables the other, at once, again and again: one is refused every time.
    for round in 0..20 {
        let (quoc, hoa) = tokio::join!(
            operators.disable_keeping_one("quoc"),
            operators.disable_keeping_one("hoa")
        );
        let done = [&quoc, &hoa]
            .iter()
            .filter(|r| matches!(r, Ok(true)))
            .count();
        assert_eq!(done, 1, "round {round}: {quoc:?} {hoa:?}");
        let (refused, name) = if quoc.is_err() {
            (quoc, "quoc")
        } else {
            (hoa, "hoa")
        };
        match refused {
            Err(Error::Conflict(m)) => assert!(m.contains("last active"), "{m}"),
            other => panic!("round {round}: `{name}` was not refused as the last: {other:?}"),
        }
        let enabled: Vec<_> = operators
            .list()
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.disabled_at.is_none())
            .map(|a| a.name)
            .collect();
        assert_eq!(enabled, [name], "round {round}");
        let other = if name == "quoc" { "hoa" } else { "quoc" };
        assert!(
            !operators.disable_keeping_one(other).await.unwrap(),
            "disabled twice"
        );
        assert!(operators.enable(other).await.unwrap());
    }
}
