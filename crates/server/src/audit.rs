//! `/admin/api/audit`: the audit log (`monsoon_catalog::AuditLog`) as the studio shows it, and
//! [`Shared::audit`], which every handler that changes something calls.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/admin/api/audit?limit=&before=` | `{"entries": […]}`, newest first ([`DEFAULT_LIMIT`], `limit` in [`LIMIT`]); `before` (an entry's id) pages to older ones |
//!
//! An entry: `id`, `at` (the database's clock), `actor` (an operator's name, `token` for the
//! admin token, `cli` for the command line), `action` (`sign_in`, `film_updated`…, see
//! `monsoon_catalog::Action`), `subject` (a slug, a job id, a name) and `detail` (JSON).

use std::ops::RangeInclusive;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use monsoon_catalog::{Action, AuditEntry, NewAuditEntry};
use serde::{Deserialize, Serialize};

use crate::admin::{Operator, private};
use crate::i18n::Messages;
use crate::{ApiError, AppState, Shared};

/// Entries listed when the request does not say.
pub const DEFAULT_LIMIT: u32 = 100;
/// What `?limit=` may ask for.
pub const LIMIT: RangeInclusive<u32> = 1..=monsoon_catalog::operators::limits::LIST;

pub fn routes() -> Router<AppState> {
    Router::new().route("/admin/api/audit", get(list))
}

impl Shared {
    /// Records that `operator` did `action` to `subject` (a slug, a job id…), with `detail`
    /// (what changed; the client's address is added as `from`). Call it once the change is
    /// made. A failure to record is logged, not returned: the change stands either way.
    pub async fn audit(
        &self,
        operator: &Operator,
        action: Action,
        subject: &str,
        mut detail: serde_json::Value,
    ) {
        if let Some(object) = detail.as_object_mut() {
            object
                .entry("from")
                .or_insert_with(|| operator.ip.to_string().into());
        }
        self.audit_as(&operator.name, action, subject, detail).await;
    }

    /// [`Shared::audit`] for an actor that is not a signed-in operator (a refused sign-in).
    pub async fn audit_as(
        &self,
        actor: &str,
        action: Action,
        subject: &str,
        detail: serde_json::Value,
    ) {
        let entry = NewAuditEntry::new(actor, action, subject, detail);
        if let Err(e) = self.audit.append(&entry).await {
            tracing::error!(
                error = %e, actor, action = action.as_str(), subject,
                "the audit log did not take an entry"
            );
        }
    }
}

/// The labels of the actions, by name, in the page's language.
pub fn action_labels(t: &Messages) -> serde_json::Value {
    serde_json::json!({
        "sign_in": t.audit_sign_in,
        "sign_in_failed": t.audit_sign_in_failed,
        "sign_out": t.audit_sign_out,
        "operator_created": t.audit_operator_created,
        "operator_password_set": t.audit_operator_password_set,
        "operator_disabled": t.audit_operator_disabled,
        "operator_enabled": t.audit_operator_enabled,
        "job_submitted": t.audit_job_submitted,
        "job_cancelled": t.audit_job_cancelled,
        "film_created": t.audit_film_created,
        "film_updated": t.audit_film_updated,
        "film_published": t.audit_film_published,
        "film_scheduled": t.audit_film_scheduled,
        "upload_created": t.audit_upload_created,
        "upload_cancelled": t.audit_upload_cancelled,
        "track_added": t.audit_track_added,
    })
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    /// Taken as text, so a bad one is refused naming it.
    limit: Option<String>,
    before: Option<String>,
}

/// The answer of `GET /admin/api/audit`.
#[derive(Debug, Serialize)]
struct Entries {
    entries: Vec<AuditEntry>,
}

fn parse_query(query: &ListQuery) -> Result<(u32, Option<i64>), ApiError> {
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| LIMIT.contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "limit={:?} must be a whole number from {} to {}",
                    cut(text),
                    LIMIT.start(),
                    LIMIT.end()
                ))
            })?,
    };
    let before = query
        .before
        .as_deref()
        .map(|text| {
            text.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "before={:?} must be an entry's id, a whole number from 1 to {}",
                    cut(text),
                    i64::MAX
                ))
            })
        })
        .transpose()?;
    Ok((limit, before))
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

async fn list(
    State(state): State<AppState>,
    _: Operator,
    Query(query): Query<ListQuery>,
) -> Response {
    let answer = async {
        let (limit, before) = parse_query(&query)?;
        let entries = state
            .audit
            .list(limit, before)
            .await
            .map_err(|e| ApiError::Unavailable(format!("the audit log: {e}")))?;
        Ok::<_, ApiError>(Json(Entries { entries }).into_response())
    }
    .await;
    private(answer.unwrap_or_else(IntoResponse::into_response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_and_before_are_whole_numbers_in_range_and_errors_name_them() {
        let q = |limit: Option<&str>, before: Option<&str>| ListQuery {
            limit: limit.map(str::to_owned),
            before: before.map(str::to_owned),
        };
        assert_eq!(parse_query(&q(None, None)).unwrap(), (DEFAULT_LIMIT, None));
        assert_eq!(
            parse_query(&q(Some("500"), Some("42"))).unwrap(),
            (500, Some(42))
        );
        for (limit, before, says) in [
            (Some("0"), None, "limit=\"0\""),
            (Some("501"), None, "1 to 500"),
            (Some("x"), None, "limit=\"x\""),
            (None, Some("0"), "before=\"0\""),
            (None, Some("-3"), "entry's id"),
        ] {
            let message = parse_query(&q(limit, before)).unwrap_err().to_string();
            assert!(message.contains(says), "{message}");
        }
    }
}
