//! The contract of [`JobQueue`]: `conformance::run(open, wait)` on a fresh, empty queue. Each
//! `open` is a restart (the same queue, reopened); `wait(d)` lets at least `d` pass on the
//! queue's clock (a sleep for a database, a step of the hand clock in memory). Leases are
//! either long (an hour: they cannot expire during the test) or short and waited out, so the
//! suite never races the clock. A broken promise panics.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::{JobProgress, JobQueue, JobState, NewJob, Stage, limits};

pub type Open<'a> = &'a dyn Fn() -> Pin<Box<dyn Future<Output = Arc<dyn JobQueue>>>>;
pub type Wait<'a> = &'a dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()>>>;

const LONG: Duration = Duration::from_secs(3600);
const SHORT: Duration = Duration::from_millis(200);

pub fn job(slug: &str) -> NewJob {
    NewJob {
        slug: slug.into(),
        master: format!("/films/{slug}.mov"),
        film_toml: Some("[title]\nvi = \"Phim\"\n".into()),
        options: serde_json::json!({"quality": "fast"}),
        duration_s: 60.0,
        max_attempts: 3,
    }
}

fn transcoding() -> Stage {
    Stage::Transcoding {
        attempt: 1,
        of: 3,
        worker: "owner".into(),
    }
}

fn progress(percent: f64) -> JobProgress {
    JobProgress {
        percent,
        speed: 2.5,
        stage: transcoding(),
    }
}

/// A job's end as a worker records it: published, or failed for `reason`.
fn published() -> Stage {
    Stage::Published {
        version: "v1".into(),
        attempt: 1,
        of: 3,
        worker: "w".into(),
        verified: "v180 320x180 avc1.64001e 0.11 Mbit/s".into(),
    }
}

fn failed(reason: &str) -> Stage {
    Stage::Failed {
        reason: reason.into(),
        rule: None,
    }
}

fn released(worker: &str) -> Stage {
    Stage::Released {
        worker: worker.into(),
    }
}

pub async fn run(open: Open<'_>, wait: Wait<'_>) {
    submitted_jobs_are_queued_kept_and_bounded(open).await;
    claims_go_oldest_first_and_never_twice(open).await;
    concurrent_claims_share_out_the_jobs(open).await;
    a_lease_is_renewed_by_its_owner_only(open, wait).await;
    an_expired_lease_is_taken_over_and_attempts_are_bounded(open, wait).await;
    finished_released_and_cancelled_jobs(open).await;
    a_job_keeps_a_bounded_log_in_order_across_a_take_over(open, wait).await;
    every_stage_is_stored_as_itself(open).await;
}

/// Claims every claimable job with long leases, then finishes them (tests leave the queue
/// empty of claimable jobs).
async fn drain(queue: &dyn JobQueue) {
    while let Some(job) = queue.claim("drain", LONG).await.unwrap() {
        assert!(
            queue
                .finish(job.id, "drain", JobState::Done, &published())
                .await
                .unwrap()
        );
    }
}

async fn submitted_jobs_are_queued_kept_and_bounded(open: Open<'_>) {
    let queue = open().await;
    let submitted = queue.submit(&job("film")).await.unwrap();
    assert_eq!(submitted.state, JobState::Queued);
    assert_eq!((submitted.attempts, submitted.max_attempts), (0, 3));
    assert_eq!(submitted.slug, "film");
    assert_eq!(submitted.options["quality"], "fast");
    assert!(submitted.lease_owner.is_none() && submitted.started_at.is_none());
    drop(queue);
    let queue = open().await;
    assert_eq!(
        queue.get(submitted.id).await.unwrap().as_ref(),
        Some(&submitted),
        "lost or changed across a restart"
    );
    assert_eq!(queue.list(10).await.unwrap(), vec![submitted.clone()]);

    for (bad, says) in [
        (
            NewJob {
                master: "films/x.mov".into(),
                ..job("x")
            },
            "`films/x.mov` is not an absolute path",
        ),
        (
            NewJob {
                master: format!("/{}", "a".repeat(5000)),
                ..job("x")
            },
            "5001 bytes; the limit is 4096",
        ),
        (
            NewJob {
                max_attempts: 0,
                ..job("x")
            },
            "max_attempts = 0",
        ),
        (job("Not A Slug"), "`Not A Slug` is not valid"),
        (
            NewJob {
                film_toml: Some("x".repeat(300 * 1024)),
                ..job("x")
            },
            "the limit is 262144 bytes",
        ),
        (
            NewJob {
                options: serde_json::json!([1]),
                ..job("x")
            },
            "JSON object",
        ),
    ] {
        let err = queue.submit(&bad).await.unwrap_err().to_string();
        assert!(err.contains(says), "{err}");
    }
    assert_eq!(queue.list(10).await.unwrap().len(), 1, "a bad job was kept");
    drain(queue.as_ref()).await;
}

async fn claims_go_oldest_first_and_never_twice(open: Open<'_>) {
    let queue = open().await;
    let first = queue.submit(&job("first")).await.unwrap();
    let second = queue.submit(&job("second")).await.unwrap();
    assert!(second.id > first.id);
    assert_eq!(
        queue.list(1).await.unwrap()[0].id,
        second.id,
        "newest first"
    );

    let a = queue.claim("worker-a", LONG).await.unwrap().unwrap();
    assert_eq!(a.id, first.id, "the oldest job goes first");
    assert_eq!(a.state, JobState::Running);
    assert_eq!(a.attempts, 1);
    assert_eq!(a.lease_owner.as_deref(), Some("worker-a"));
    assert!(a.lease_expires_at.unwrap() > a.started_at.unwrap());
    let b = queue.claim("worker-b", LONG).await.unwrap().unwrap();
    assert_eq!(b.id, second.id);
    assert!(
        queue.claim("worker-c", LONG).await.unwrap().is_none(),
        "a leased job was claimed again"
    );
    for (job, worker) in [(a, "worker-a"), (b, "worker-b")] {
        assert!(
            queue
                .finish(job.id, worker, JobState::Done, &published())
                .await
                .unwrap()
        );
    }
}

async fn concurrent_claims_share_out_the_jobs(open: Open<'_>) {
    let queue = open().await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(queue.submit(&job(&format!("many-{i}"))).await.unwrap().id);
    }
    let claims = (0..12).map(|w| {
        let queue = Arc::clone(&queue);
        async move { queue.claim(&format!("w{w}"), LONG).await.unwrap() }
    });
    let mut claimed: Vec<(i64, String)> = futures_join_all(claims)
        .await
        .into_iter()
        .flatten()
        .map(|job| (job.id, job.lease_owner.unwrap()))
        .collect();
    claimed.sort();
    assert_eq!(
        claimed.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        ids,
        "every job claimed exactly once"
    );
    for (id, worker) in claimed {
        assert!(
            queue
                .finish(id, &worker, JobState::Done, &published())
                .await
                .unwrap()
        );
    }
}

/// Runs `futures` concurrently on the current task (no extra dependency).
async fn futures_join_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in set.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

async fn a_lease_is_renewed_by_its_owner_only(open: Open<'_>, wait: Wait<'_>) {
    let queue = open().await;
    let submitted = queue.submit(&job("renewed")).await.unwrap();
    let claimed = queue.claim("owner", SHORT).await.unwrap().unwrap();
    assert_eq!(claimed.id, submitted.id);
    // Renewed for an hour, the lease outlives the short one it replaced.
    assert!(
        queue
            .renew(claimed.id, "owner", LONG, &progress(42.5))
            .await
            .unwrap()
    );
    assert!(
        !queue
            .renew(claimed.id, "stranger", LONG, &progress(99.0))
            .await
            .unwrap(),
        "a stranger renewed the lease"
    );
    wait(SHORT * 2).await;
    assert!(
        queue.claim("thief", LONG).await.unwrap().is_none(),
        "a renewed lease was taken over"
    );
    let seen = queue.get(claimed.id).await.unwrap().unwrap();
    assert_eq!((seen.percent, seen.speed), (42.5, 2.5));
    assert_eq!(seen.message, "transcoding (attempt 1 of 3, worker owner)");
    assert_eq!(seen.stage, Some(transcoding()));
    assert_eq!(seen.lease_owner.as_deref(), Some("owner"));
    assert!(seen.eta_s().unwrap() > 0.0);
    // Progress is bounded whatever a worker reports.
    let wild = JobProgress {
        percent: f64::NAN,
        speed: -3.0,
        stage: Stage::AddingTrack {
            track: "x".repeat(10_000),
            attempt: 1,
            of: 3,
            worker: "owner".into(),
        },
    };
    assert!(queue.renew(claimed.id, "owner", LONG, &wild).await.unwrap());
    let seen = queue.get(claimed.id).await.unwrap().unwrap();
    assert_eq!((seen.percent, seen.speed), (0.0, 0.0));
    assert!(seen.message.chars().count() <= super::limits::MESSAGE_CHARS + 1);
    assert_eq!(seen.stage, Some(wild.stage.bounded()));
    assert!(
        queue
            .finish(claimed.id, "owner", JobState::Done, &published())
            .await
            .unwrap()
    );
}

async fn an_expired_lease_is_taken_over_and_attempts_are_bounded(open: Open<'_>, wait: Wait<'_>) {
    let queue = open().await;
    let submitted = queue
        .submit(&NewJob {
            max_attempts: 2,
            ..job("fragile")
        })
        .await
        .unwrap();
    let first = queue.claim("doomed", SHORT).await.unwrap().unwrap();
    assert_eq!(first.id, submitted.id);
    wait(SHORT * 2).await;
    // The dead worker's lease expired: another takes the job over, as attempt 2.
    let second = queue.claim("heir", SHORT).await.unwrap().unwrap();
    assert_eq!(second.id, submitted.id);
    assert_eq!(second.attempts, 2);
    assert_eq!(second.lease_owner.as_deref(), Some("heir"));
    assert!(
        second.message.contains("taken over from worker doomed"),
        "{}",
        second.message
    );
    assert_eq!(
        second.stage,
        Some(Stage::TakenOver {
            attempt: 2,
            of: 2,
            from: "doomed".into(),
            worker: "heir".into()
        })
    );
    // The first worker, back from the dead, owns nothing.
    assert!(
        !queue
            .renew(first.id, "doomed", LONG, &progress(50.0))
            .await
            .unwrap()
    );
    assert!(
        !queue
            .finish(first.id, "doomed", JobState::Done, &published())
            .await
            .unwrap()
    );
    assert!(
        !queue
            .release(first.id, "doomed", &released("doomed"))
            .await
            .unwrap()
    );
    // The last attempt's lease expires too: the job fails with the reason, and is not
    // claimed again.
    wait(SHORT * 2).await;
    assert!(queue.claim("third", LONG).await.unwrap().is_none());
    let failed = queue.get(submitted.id).await.unwrap().unwrap();
    assert_eq!(failed.state, JobState::Failed);
    assert!(failed.lease_owner.is_none() && failed.finished_at.is_some());
    assert!(
        failed.message.contains("worker heir") && failed.message.contains("attempt 2 of 2"),
        "{}",
        failed.message
    );
    assert_eq!(
        failed.stage,
        Some(Stage::LeaseLost {
            worker: "heir".into(),
            attempts: 2
        })
    );
}

async fn finished_released_and_cancelled_jobs(open: Open<'_>) {
    let queue = open().await;
    // Released: back in the queue with its attempt given back, and claimed again.
    let submitted = queue.submit(&job("released")).await.unwrap();
    let claimed = queue.claim("stopping", LONG).await.unwrap().unwrap();
    assert!(
        queue
            .release(claimed.id, "stopping", &released("stopping"))
            .await
            .unwrap()
    );
    let released = queue.get(submitted.id).await.unwrap().unwrap();
    assert_eq!(released.state, JobState::Queued);
    assert_eq!(released.attempts, 0);
    assert!(released.lease_owner.is_none() && released.lease_expires_at.is_none());
    assert_eq!(
        released.message,
        "released by worker stopping, which was stopped; queued for the next worker"
    );
    assert_eq!(released.stage, Some(self::released("stopping")));
    let again = queue.claim("next", LONG).await.unwrap().unwrap();
    assert_eq!((again.id, again.attempts), (submitted.id, 1));

    // Failed: over, with the message, never claimed again.
    assert!(
        queue
            .finish(
                again.id,
                "next",
                JobState::Failed,
                &failed("the master is gone")
            )
            .await
            .unwrap()
    );
    let failed = queue.get(again.id).await.unwrap().unwrap();
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.message, "the master is gone");
    assert_eq!(failed.stage, Some(self::failed("the master is gone")));
    assert!(failed.lease_owner.is_none() && failed.finished_at.is_some());
    assert!(queue.claim("next", LONG).await.unwrap().is_none());
    assert!(
        !queue.cancel(again.id, "operator lan").await.unwrap(),
        "a failed job was cancelled"
    );
    assert!(
        queue
            .finish(again.id, "next", JobState::Queued, &published())
            .await
            .is_err()
    );

    // Cancelled while queued: never claimed. Cancelled while running: the worker's next
    // renewal says stop.
    let queued = queue.submit(&job("cancel-queued")).await.unwrap();
    assert!(queue.cancel(queued.id, "operator lan").await.unwrap());
    assert!(queue.claim("w", LONG).await.unwrap().is_none());
    assert_eq!(
        queue.get(queued.id).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
    let running = queue.submit(&job("cancel-running")).await.unwrap();
    let claimed = queue.claim("w", LONG).await.unwrap().unwrap();
    assert_eq!(claimed.id, running.id);
    assert!(queue.cancel(running.id, "operator lan").await.unwrap());
    assert!(
        !queue
            .renew(running.id, "w", LONG, &progress(10.0))
            .await
            .unwrap()
    );
    assert!(
        !queue
            .finish(running.id, "w", JobState::Done, &published())
            .await
            .unwrap()
    );
    assert!(queue.get(-1).await.unwrap().is_none());
    assert!(!queue.cancel(-1, "operator lan").await.unwrap());
}

/// The lines of job `id`'s log, checked to be stamped in order.
async fn lines(queue: &dyn JobQueue, id: i64) -> Vec<String> {
    let log = queue.log(id).await.unwrap();
    assert!(
        log.windows(2).all(|w| w[0].at <= w[1].at),
        "log lines out of time order: {log:?}"
    );
    log.into_iter().map(|l| l.line).collect()
}

async fn a_job_keeps_a_bounded_log_in_order_across_a_take_over(open: Open<'_>, wait: Wait<'_>) {
    let queue = open().await;
    let submitted = queue.submit(&job("logged")).await.unwrap();
    let id = submitted.id;
    assert_eq!(lines(queue.as_ref(), id).await, ["queued"]);
    assert!(queue.log(-1).await.unwrap().is_empty());

    // Claimed; two stages, each reported with several percent ticks: one line a stage.
    let first = queue.claim("doomed", SHORT).await.unwrap().unwrap();
    for percent in [1.0, 2.0, 3.0] {
        assert!(
            queue
                .renew(id, "doomed", SHORT, &progress(percent))
                .await
                .unwrap()
        );
    }
    let publishing = JobProgress {
        stage: Stage::Publishing {
            attempt: 1,
            of: 3,
            worker: "doomed".into(),
        },
        ..progress(100.0)
    };
    assert!(queue.renew(id, "doomed", SHORT, &publishing).await.unwrap());
    assert!(queue.renew(id, "doomed", SHORT, &publishing).await.unwrap());
    assert_eq!(first.id, id);
    // The worker dies; another takes the job over. The log survives a restart and the
    // take-over, and goes on.
    wait(SHORT * 2).await;
    drop(queue);
    let queue = open().await;
    let second = queue.claim("heir", LONG).await.unwrap().unwrap();
    assert_eq!(second.id, id);
    assert!(queue.release(id, "heir", &released("heir")).await.unwrap());
    let third = queue.claim("heir", LONG).await.unwrap().unwrap();
    assert_eq!(third.id, id);
    assert!(
        queue
            .finish(id, "heir", JobState::Failed, &failed("the master is gone"))
            .await
            .unwrap()
    );
    // Each line is its stage's English message, and the stage itself.
    let stages = [
        Stage::Queued,
        Stage::claimed("doomed", None, 1, 3),
        transcoding(),
        publishing.stage,
        Stage::claimed("heir", Some("doomed"), 2, 3),
        released("heir"),
        Stage::claimed("heir", None, 2, 3),
        failed("the master is gone"),
    ];
    let log = queue.log(id).await.unwrap();
    assert_eq!(log.len(), stages.len(), "{log:#?}");
    for (line, stage) in log.iter().zip(&stages) {
        assert_eq!(line.stage.as_ref(), Some(stage), "{log:#?}");
        assert_eq!(line.line, stage.message(), "{log:#?}");
    }
    assert_eq!(
        lines(queue.as_ref(), id).await[1],
        "attempt 1 of 3: claimed by worker doomed"
    );
    let other = queue.submit(&job("other-log")).await.unwrap();
    assert_eq!(
        lines(queue.as_ref(), other.id).await,
        ["queued"],
        "logs mixed"
    );
    assert!(queue.cancel(other.id, "operator lan").await.unwrap());
    assert_eq!(
        lines(queue.as_ref(), other.id).await,
        ["queued", "cancelled by operator lan"]
    );

    // Bounded: the newest `LOG_LINES` lines, each cut to `MESSAGE_CHARS`.
    let busy = queue.submit(&job("chatty")).await.unwrap();
    let claimed = queue.claim("chatty", LONG).await.unwrap().unwrap();
    assert_eq!(claimed.id, busy.id);
    let stages = limits::LOG_LINES + 10;
    for stage in 0..stages {
        let reason = if stage == stages - 1 {
            "x".repeat(10_000)
        } else {
            format!("stage {stage}")
        };
        let stage = JobProgress {
            stage: failed(&reason),
            ..progress(50.0)
        };
        assert!(queue.renew(busy.id, "chatty", LONG, &stage).await.unwrap());
    }
    let log = lines(queue.as_ref(), busy.id).await;
    assert_eq!(log.len(), limits::LOG_LINES);
    assert_eq!(log[0], format!("stage {}", stages - limits::LOG_LINES));
    assert_eq!(log[limits::LOG_LINES - 2], format!("stage {}", stages - 2));
    assert_eq!(
        log[limits::LOG_LINES - 1].chars().count(),
        limits::MESSAGE_CHARS + 1,
        "a line is cut to MESSAGE_CHARS and an ellipsis"
    );
    assert!(
        queue
            .finish(busy.id, "chatty", JobState::Done, &published())
            .await
            .unwrap()
    );
}

/// Every kind of stage, reported by a worker, reads back as itself from the job and from its
/// log, beside its English message.
async fn every_stage_is_stored_as_itself(open: Open<'_>) {
    let queue = open().await;
    let id = queue.submit(&job("staged")).await.unwrap().id;
    assert_eq!(queue.claim("stager", LONG).await.unwrap().unwrap().id, id);
    for stage in Stage::every() {
        let progress = JobProgress {
            stage: stage.clone(),
            ..progress(10.0)
        };
        assert!(queue.renew(id, "stager", LONG, &progress).await.unwrap());
        let seen = queue.get(id).await.unwrap().unwrap();
        assert_eq!(seen.stage.as_ref(), Some(&stage));
        assert_eq!(seen.message, stage.message());
        let log = queue.log(id).await.unwrap();
        let last = log.last().unwrap();
        assert_eq!(last.stage.as_ref(), Some(&stage));
        assert_eq!(last.line, stage.message());
    }
    assert!(
        queue
            .finish(id, "stager", JobState::Done, &published())
            .await
            .unwrap()
    );
}
