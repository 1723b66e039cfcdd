//! Cancelling a job, the one way both the studio (`POST /admin/api/jobs/{id}/cancel`,
//! `crates/server/src/jobs.rs`) and the command line (`monsoon jobs --cancel ID`) do it: the
//! queue's cancel, the uploaded master removed at once, an audit entry; a refusal names the job
//! and the rule.

use crate::operators::{Action, AuditLog, NewAuditEntry};
use crate::{Error, Incoming, Job, JobQueue, JobState, MediaStore};

/// Who cancels a job, as the job's log and the audit log name them.
#[derive(Debug, Clone)]
pub struct Canceller<'a> {
    /// In the job's message and log ([`super::Stage::Cancelled`]): `operator lan`,
    /// `cli (lan)`.
    pub by: &'a str,
    /// The audit entry's actor: an operator's name, `token`, or `cli`
    /// ([`crate::operators::CLI_ACTOR`]).
    pub actor: &'a str,
    /// The audit entry's detail, a JSON object (the client's address, the shell's user); the
    /// job's `slug` is added to it.
    pub detail: serde_json::Value,
}

/// Why a job was not cancelled. The studio answers the first 404 and the second 409.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("there is no job {0}")]
    NoJob(i64),
    #[error("job {id} is {}: only a queued or running job can be cancelled", .state.as_str())]
    Over { id: i64, state: JobState },
    /// The queue could not be asked.
    #[error(transparent)]
    Catalog(#[from] Error),
}

/// Cancels job `id` if it is queued or running (a running job's worker stops at its next
/// renewal), removes its uploaded master now if it has one (a queued job never reaches a
/// worker that would), and records [`Action::JobCancelled`] by `who`. A file that cannot be
/// removed, or an entry the audit log does not take, is a warning: the job is cancelled all the
/// same. Returns the job as it is now.
pub async fn cancel(
    queue: &dyn JobQueue,
    media: &dyn MediaStore,
    audit: &dyn AuditLog,
    id: i64,
    who: Canceller<'_>,
) -> Result<Job, CancelError> {
    let cancelled = queue.cancel(id, who.by).await?;
    let job = queue.get(id).await?.ok_or(CancelError::NoJob(id))?;
    if !cancelled {
        return Err(CancelError::Over {
            id,
            state: job.state,
        });
    }
    if let Err(e) = Incoming::remove_if_over(&job, media).await {
        tracing::warn!(job = id, error = %e, "cannot remove the cancelled job's uploaded file");
    }
    let mut detail = who.detail;
    if let Some(object) = detail.as_object_mut() {
        object.insert("slug".into(), job.slug.clone().into());
    }
    let entry = NewAuditEntry::new(who.actor, Action::JobCancelled, id.to_string(), detail);
    crate::operators::append_or_warn(audit, &entry).await;
    Ok(job)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::jobs::conformance::job;
    use crate::{MemoryJobs, MemoryStore, operators::MemoryAudit};

    #[tokio::test]
    async fn a_cancel_is_audited_once_and_a_second_is_refused_naming_the_state() {
        let queue = MemoryJobs::new();
        let media = MemoryStore::new();
        let audit = MemoryAudit::new();
        let queued = queue.submit(&job("song-hong")).await.unwrap();
        let who = || Canceller {
            by: "operator lan",
            actor: "lan",
            detail: serde_json::json!({ "from": "127.0.0.1" }),
        };
        let cancelled = cancel(&queue, &media, &audit, queued.id, who())
            .await
            .unwrap();
        assert_eq!(cancelled.state, JobState::Cancelled);
        assert!(
            cancelled.message.contains("operator lan"),
            "{}",
            cancelled.message
        );
        let entries = audit.list(10, None).await.unwrap();
        assert_eq!(entries.len(), 1);
        let entry = &entries[0];
        assert_eq!(
            (
                entry.actor.as_str(),
                entry.action.as_str(),
                entry.subject.as_str()
            ),
            ("lan", "job_cancelled", queued.id.to_string().as_str())
        );
        assert_eq!(
            entry.detail,
            serde_json::json!({ "from": "127.0.0.1", "slug": "song-hong" })
        );

        let again = cancel(&queue, &media, &audit, queued.id, who()).await;
        assert_eq!(
            again.unwrap_err().to_string(),
            format!(
                "job {} is cancelled: only a queued or running job can be cancelled",
                queued.id
            )
        );
        let none = cancel(&queue, &media, &audit, 99, who()).await;
        assert!(matches!(none, Err(CancelError::NoJob(99))));
        assert_eq!(none.unwrap_err().to_string(), "there is no job 99");
        assert_eq!(audit.list(10, None).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn the_uploaded_file_of_a_cancelled_job_goes_at_once() {
        let queue = MemoryJobs::new();
        let media = MemoryStore::new();
        let audit = MemoryAudit::new();
        let key = Incoming::key_of("up1", "up1.mov").unwrap();
        media
            .put(&key, bytes::Bytes::from_static(b"master"))
            .await
            .unwrap();
        let mut new = job("song-hong");
        new.options = serde_json::json!({ "incoming": { "key": key, "size": 6 } });
        let queued = queue.submit(&new).await.unwrap();
        let who = Canceller {
            by: "cli (lan)",
            actor: crate::operators::CLI_ACTOR,
            detail: serde_json::json!({ "user": "lan" }),
        };
        cancel(&queue, &media, &audit, queued.id, who)
            .await
            .unwrap();
        assert_eq!(media.head(&key).await.unwrap(), None);
        let entries = audit.list(10, None).await.unwrap();
        assert_eq!(
            entries[0].detail,
            serde_json::json!({ "user": "lan", "slug": "song-hong" })
        );
    }
}
