//! The queue of ingest jobs that `monsoon worker`s take from: what a job is, the
//! [`JobQueue`] trait every backend implements (PostgreSQL in `crates/db/src/postgres/jobs.rs`),
//! [`MemoryJobs`] for tests, and [`conformance::run`], the contract both keep.
//!
//! A job is *leased*: a worker claims it for a while (`lease`), renews the lease as it works,
//! and finishes it. A worker that dies stops renewing; once its lease has expired, another
//! worker claims the job and starts it again (the publish protocol, `publish.rs`, left nothing
//! visible of the first attempt). Each claim is an attempt; a job whose lease expires on its
//! last attempt fails, with the reason. Lease times are the queue's clock (the database's
//! `now()` on PostgreSQL), never a worker's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Error, Result, film_limits, validate_slug};

/// Bounds of what a job holds; every backend refuses more (`NewJob::check`).
pub mod limits {
    use std::ops::RangeInclusive;
    use std::time::Duration;

    /// The master's path, bytes (Linux's `PATH_MAX`).
    pub const MASTER_BYTES: usize = 4096;
    /// The job's options as JSON text, bytes.
    pub const OPTIONS_BYTES: usize = 64 * 1024;
    /// A worker's name (the lease owner), bytes.
    pub const WORKER_BYTES: usize = 200;
    /// A job's message, characters; longer ones are cut (they are the queue's own words or
    /// an error's, never a client's).
    pub const MESSAGE_CHARS: usize = 2_000;
    /// Attempts a job may be given.
    pub const ATTEMPTS: RangeInclusive<u32> = 1..=10;
    /// A lease: more than nothing, at most a day.
    pub const LEASE: RangeInclusive<Duration> =
        Duration::from_millis(1)..=Duration::from_secs(86_400);
    /// Jobs one `list` returns at most.
    pub const LIST: u32 = 1_000;
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// Leased by a worker (or by one whose lease has expired and not been taken over yet).
    Running,
    /// Published.
    Done,
    /// Given up, with the reason in the message.
    Failed,
    /// Withdrawn by the operator.
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "done" => Self::Done,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            other => return Err(Error::Backend(format!("unknown job state `{other}`"))),
        })
    }

    /// Whether the job is over (done, failed or cancelled).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Cancelled)
    }
}

/// A job as submitted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewJob {
    /// The film's slug (`validate_slug`).
    pub slug: String,
    /// The master's absolute path: every worker must see the file there (a shared mount).
    pub master: String,
    /// The text of the film's `film.toml`, if it has one.
    pub film_toml: Option<String>,
    /// The other ingest options (quality, ladder cap, subtitles…), a JSON object the ingest
    /// crate writes and reads.
    pub options: serde_json::Value,
    /// The master's duration, seconds, as probed at submission (for the ETA).
    pub duration_s: f64,
    /// Claims the job may be given before it fails (`limits::ATTEMPTS`).
    pub max_attempts: u32,
}

impl NewJob {
    /// Holds the job to its bounds; the error names the field, the value and the rule.
    pub fn check(&self) -> Result<()> {
        let bad = |message: String| Err(Error::Backend(format!("job refused: {message}")));
        validate_slug(&self.slug)?;
        if !self.master.starts_with('/') || self.master.contains('\0') {
            return bad(format!(
                "master `{}` is not an absolute path: workers open it by the same path",
                self.master
            ));
        }
        if self.master.len() > limits::MASTER_BYTES {
            return bad(format!(
                "master is a path of {} bytes; the limit is {}",
                self.master.len(),
                limits::MASTER_BYTES
            ));
        }
        if let Some(text) = &self.film_toml
            && text.len() > film_limits::FILE_BYTES
        {
            return bad(format!(
                "film.toml is {} bytes long; the limit is {} bytes",
                text.len(),
                film_limits::FILE_BYTES
            ));
        }
        if !self.options.is_object() {
            return bad("options must be a JSON object".into());
        }
        let options = self.options.to_string().len();
        if options > limits::OPTIONS_BYTES {
            return bad(format!(
                "options are {options} bytes of JSON; the limit is {}",
                limits::OPTIONS_BYTES
            ));
        }
        if !(self.duration_s.is_finite() && self.duration_s >= 0.0) {
            return bad(format!(
                "duration {} s is not a finite, non-negative number",
                self.duration_s
            ));
        }
        if !limits::ATTEMPTS.contains(&self.max_attempts) {
            return bad(format!(
                "max_attempts = {} is outside {}..={}",
                self.max_attempts,
                limits::ATTEMPTS.start(),
                limits::ATTEMPTS.end()
            ));
        }
        Ok(())
    }
}

/// A job as the queue holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub id: i64,
    pub slug: String,
    pub master: String,
    pub film_toml: Option<String>,
    pub options: serde_json::Value,
    pub duration_s: f64,
    pub state: JobState,
    /// Claims so far (a released job gets its attempt back).
    pub attempts: u32,
    pub max_attempts: u32,
    /// The worker holding the lease, while running.
    pub lease_owner: Option<String>,
    /// When the lease ends unless renewed, on the queue's clock.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Share of the master transcoded, 0 to 100.
    pub percent: f64,
    /// Transcoding speed, × real time.
    pub speed: f64,
    /// What is happening, or why it failed, in the operator's words.
    pub message: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the job was first claimed.
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Job {
    /// Seconds of transcoding left at the last reported speed, if there is one.
    pub fn eta_s(&self) -> Option<f64> {
        (self.state == JobState::Running && self.speed > 0.0 && self.percent > 0.0)
            .then(|| self.duration_s * (1.0 - self.percent / 100.0) / self.speed)
    }
}

/// Progress a worker reports with each renewal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobProgress {
    pub percent: f64,
    pub speed: f64,
    pub message: String,
}

impl JobProgress {
    /// Within bounds: percent in 0..=100, a finite non-negative speed, a message cut to
    /// `limits::MESSAGE_CHARS`. Backends store this.
    pub fn bounded(&self) -> Self {
        let finite = |x: f64| if x.is_finite() { x } else { 0.0 };
        Self {
            percent: finite(self.percent).clamp(0.0, 100.0),
            speed: finite(self.speed).max(0.0),
            message: bounded_message(&self.message),
        }
    }
}

/// `message` cut to `limits::MESSAGE_CHARS` characters.
pub fn bounded_message(message: &str) -> String {
    match message.char_indices().nth(limits::MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_owned(),
    }
}

/// Checks a worker's name and a lease against their bounds.
pub fn check_lease(worker: &str, lease: Duration) -> Result<()> {
    if worker.is_empty() || worker.len() > limits::WORKER_BYTES {
        return Err(Error::Backend(format!(
            "worker name `{worker}` must be 1 to {} bytes",
            limits::WORKER_BYTES
        )));
    }
    if !limits::LEASE.contains(&lease) {
        return Err(Error::Backend(format!(
            "a lease of {lease:?} is outside {:?}..={:?}",
            limits::LEASE.start(),
            limits::LEASE.end()
        )));
    }
    Ok(())
}

/// The message a job gets when its lease expired on its last attempt.
pub fn lease_lost_message(owner: &str, attempts: u32) -> String {
    format!(
        "failed: worker {owner} stopped renewing its lease on attempt {attempts} of {attempts} \
         (it died, was killed or lost the database); no attempt is left"
    )
}

/// The message a job gets when a worker takes it over from one whose lease expired.
pub fn taken_over_message(owner: &str, attempt: u32, max_attempts: u32) -> String {
    format!(
        "attempt {attempt} of {max_attempts}: taken over from worker {owner}, whose lease expired"
    )
}

/// The ingest jobs, shared by every worker.
#[async_trait]
pub trait JobQueue: Send + Sync + std::fmt::Debug {
    /// Records a queued job (checked with `NewJob::check`).
    async fn submit(&self, job: &NewJob) -> Result<Job>;

    /// Leases the oldest claimable job to `worker` for `lease`: a queued one, or a running one
    /// whose lease has expired (taken over). Each claim is an attempt; a running job whose
    /// lease expired on its last attempt is failed instead, with the reason. Two workers
    /// claiming at once never get the same job. `None`: nothing to do.
    async fn claim(&self, worker: &str, lease: Duration) -> Result<Option<Job>>;

    /// Extends `worker`'s lease on job `id` to `lease` from now and records its progress.
    /// `false`: the job is not `worker`'s any more (taken over, cancelled): stop working on it.
    async fn renew(
        &self,
        id: i64,
        worker: &str,
        lease: Duration,
        progress: &JobProgress,
    ) -> Result<bool>;

    /// Ends `worker`'s job `id` as `state` (`Done` or `Failed`) with `message`. `false`: the
    /// job was not `worker`'s any more, and is left as it is.
    async fn finish(&self, id: i64, worker: &str, state: JobState, message: &str) -> Result<bool>;

    /// Gives `worker`'s job `id` back to the queue (a worker stopping): queued, its lease
    /// cleared, its attempt given back. `false`: it was not `worker`'s.
    async fn release(&self, id: i64, worker: &str, message: &str) -> Result<bool>;

    /// Cancels job `id` if it is queued or running (a running job's worker learns it at its
    /// next renewal). `false`: it is over already, or there is no such job.
    async fn cancel(&self, id: i64) -> Result<bool>;

    /// The newest `limit` jobs (at most `limits::LIST`), newest first.
    async fn list(&self, limit: u32) -> Result<Vec<Job>>;

    /// One job, or `None`.
    async fn get(&self, id: i64) -> Result<Option<Job>>;
}

/// The clock of a [`MemoryJobs`].
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Jobs in memory, on a clock of the caller's (the tests move it by hand).
pub struct MemoryJobs {
    jobs: Mutex<BTreeMap<i64, Job>>,
    clock: Clock,
}

impl std::fmt::Debug for MemoryJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryJobs").finish_non_exhaustive()
    }
}

impl Default for MemoryJobs {
    fn default() -> Self {
        Self::with_clock(Arc::new(Utc::now))
    }
}

impl MemoryJobs {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_clock(clock: Clock) -> Self {
        Self {
            jobs: Mutex::default(),
            clock,
        }
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, BTreeMap<i64, Job>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn until(&self, lease: Duration) -> Result<DateTime<Utc>> {
        let lease = chrono::Duration::from_std(lease).map_err(|e| Error::Backend(e.to_string()))?;
        Ok((self.clock)() + lease)
    }
}

/// Whether `job` is `worker`'s, running.
fn held_by(job: &Job, worker: &str) -> bool {
    job.state == JobState::Running && job.lease_owner.as_deref() == Some(worker)
}

#[async_trait]
impl JobQueue for MemoryJobs {
    async fn submit(&self, new: &NewJob) -> Result<Job> {
        new.check()?;
        let now = (self.clock)();
        let mut jobs = self.jobs();
        let id = jobs.keys().next_back().map_or(1, |last| last + 1);
        let job = Job {
            id,
            slug: new.slug.clone(),
            master: new.master.clone(),
            film_toml: new.film_toml.clone(),
            options: new.options.clone(),
            duration_s: new.duration_s,
            state: JobState::Queued,
            attempts: 0,
            max_attempts: new.max_attempts,
            lease_owner: None,
            lease_expires_at: None,
            percent: 0.0,
            speed: 0.0,
            message: "queued".into(),
            created_at: now,
            updated_at: now,
            started_at: None,
            finished_at: None,
        };
        jobs.insert(id, job.clone());
        Ok(job)
    }

    async fn claim(&self, worker: &str, lease: Duration) -> Result<Option<Job>> {
        check_lease(worker, lease)?;
        let now = (self.clock)();
        let until = self.until(lease)?;
        let mut jobs = self.jobs();
        let expired = |job: &Job| {
            job.state == JobState::Running && job.lease_expires_at.is_some_and(|t| t < now)
        };
        for job in jobs.values_mut() {
            if expired(job) && job.attempts >= job.max_attempts {
                job.state = JobState::Failed;
                job.message =
                    lease_lost_message(job.lease_owner.as_deref().unwrap_or("?"), job.attempts);
                job.lease_owner = None;
                job.lease_expires_at = None;
                job.updated_at = now;
                job.finished_at = Some(now);
            }
        }
        let Some(job) = jobs
            .values_mut()
            .find(|job| job.state == JobState::Queued || expired(job))
        else {
            return Ok(None);
        };
        job.message = match (&job.state, &job.lease_owner) {
            (JobState::Running, Some(owner)) => {
                taken_over_message(owner, job.attempts + 1, job.max_attempts)
            }
            _ => format!("attempt {} of {}", job.attempts + 1, job.max_attempts),
        };
        job.state = JobState::Running;
        job.attempts += 1;
        job.lease_owner = Some(worker.to_owned());
        job.lease_expires_at = Some(until);
        job.percent = 0.0;
        job.speed = 0.0;
        job.updated_at = now;
        job.started_at.get_or_insert(now);
        Ok(Some(job.clone()))
    }

    async fn renew(
        &self,
        id: i64,
        worker: &str,
        lease: Duration,
        progress: &JobProgress,
    ) -> Result<bool> {
        check_lease(worker, lease)?;
        let until = self.until(lease)?;
        let progress = progress.bounded();
        let mut jobs = self.jobs();
        let Some(job) = jobs.get_mut(&id).filter(|job| held_by(job, worker)) else {
            return Ok(false);
        };
        job.lease_expires_at = Some(until);
        job.percent = progress.percent;
        job.speed = progress.speed;
        job.message = progress.message;
        job.updated_at = (self.clock)();
        Ok(true)
    }

    async fn finish(&self, id: i64, worker: &str, state: JobState, message: &str) -> Result<bool> {
        if !matches!(state, JobState::Done | JobState::Failed) {
            return Err(Error::Backend(format!(
                "a job is finished as done or failed, not {}",
                state.as_str()
            )));
        }
        let now = (self.clock)();
        let mut jobs = self.jobs();
        let Some(job) = jobs.get_mut(&id).filter(|job| held_by(job, worker)) else {
            return Ok(false);
        };
        job.state = state;
        if state == JobState::Done {
            job.percent = 100.0;
        }
        job.message = bounded_message(message);
        job.lease_owner = None;
        job.lease_expires_at = None;
        job.updated_at = now;
        job.finished_at = Some(now);
        Ok(true)
    }

    async fn release(&self, id: i64, worker: &str, message: &str) -> Result<bool> {
        let mut jobs = self.jobs();
        let Some(job) = jobs.get_mut(&id).filter(|job| held_by(job, worker)) else {
            return Ok(false);
        };
        job.state = JobState::Queued;
        job.attempts = job.attempts.saturating_sub(1);
        job.lease_owner = None;
        job.lease_expires_at = None;
        job.message = bounded_message(message);
        job.updated_at = (self.clock)();
        Ok(true)
    }

    async fn cancel(&self, id: i64) -> Result<bool> {
        let now = (self.clock)();
        let mut jobs = self.jobs();
        let Some(job) = jobs.get_mut(&id).filter(|job| !job.state.is_final()) else {
            return Ok(false);
        };
        job.state = JobState::Cancelled;
        job.message = "cancelled by the operator".into();
        job.lease_owner = None;
        job.lease_expires_at = None;
        job.updated_at = now;
        job.finished_at = Some(now);
        Ok(true)
    }

    async fn list(&self, limit: u32) -> Result<Vec<Job>> {
        let limit = limit.min(limits::LIST) as usize;
        Ok(self.jobs().values().rev().take(limit).cloned().collect())
    }

    async fn get(&self, id: i64) -> Result<Option<Job>> {
        Ok(self.jobs().get(&id).cloned())
    }
}

/// The contract of [`JobQueue`]: `conformance::run(open, wait)` on a fresh, empty queue. Each
/// `open` is a restart (the same queue, reopened); `wait(d)` lets at least `d` pass on the
/// queue's clock (a sleep for a database, a step of the hand clock in memory). Leases are
/// either long (an hour: they cannot expire during the test) or short and waited out, so the
/// suite never races the clock. A broken promise panics.
#[allow(clippy::unwrap_used)]
pub mod conformance {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::time::Duration;

    use super::{JobProgress, JobQueue, JobState, NewJob};

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

    fn progress(percent: f64) -> JobProgress {
        JobProgress {
            percent,
            speed: 2.5,
            message: "transcoding".into(),
        }
    }

    pub async fn run(open: Open<'_>, wait: Wait<'_>) {
        submitted_jobs_are_queued_kept_and_bounded(open).await;
        claims_go_oldest_first_and_never_twice(open).await;
        concurrent_claims_share_out_the_jobs(open).await;
        a_lease_is_renewed_by_its_owner_only(open, wait).await;
        an_expired_lease_is_taken_over_and_attempts_are_bounded(open, wait).await;
        finished_released_and_cancelled_jobs(open).await;
    }

    /// Claims every claimable job with long leases, then finishes them (tests leave the queue
    /// empty of claimable jobs).
    async fn drain(queue: &dyn JobQueue) {
        while let Some(job) = queue.claim("drain", LONG).await.unwrap() {
            assert!(
                queue
                    .finish(job.id, "drain", JobState::Done, "drained")
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
                    .finish(job.id, worker, JobState::Done, "published")
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
                    .finish(id, &worker, JobState::Done, "published")
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
        assert_eq!(seen.message, "transcoding");
        assert_eq!(seen.lease_owner.as_deref(), Some("owner"));
        assert!(seen.eta_s().unwrap() > 0.0);
        // Progress is bounded whatever a worker reports.
        let wild = JobProgress {
            percent: f64::NAN,
            speed: -3.0,
            message: "x".repeat(10_000),
        };
        assert!(queue.renew(claimed.id, "owner", LONG, &wild).await.unwrap());
        let seen = queue.get(claimed.id).await.unwrap().unwrap();
        assert_eq!((seen.percent, seen.speed), (0.0, 0.0));
        assert!(seen.message.chars().count() <= super::limits::MESSAGE_CHARS + 1);
        assert!(
            queue
                .finish(claimed.id, "owner", JobState::Done, "published")
                .await
                .unwrap()
        );
    }

    async fn an_expired_lease_is_taken_over_and_attempts_are_bounded(
        open: Open<'_>,
        wait: Wait<'_>,
    ) {
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
        // The first worker, back from the dead, owns nothing.
        assert!(
            !queue
                .renew(first.id, "doomed", LONG, &progress(50.0))
                .await
                .unwrap()
        );
        assert!(
            !queue
                .finish(first.id, "doomed", JobState::Done, "published")
                .await
                .unwrap()
        );
        assert!(!queue.release(first.id, "doomed", "stopping").await.unwrap());
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
    }

    async fn finished_released_and_cancelled_jobs(open: Open<'_>) {
        let queue = open().await;
        // Released: back in the queue with its attempt given back, and claimed again.
        let submitted = queue.submit(&job("released")).await.unwrap();
        let claimed = queue.claim("stopping", LONG).await.unwrap().unwrap();
        assert!(
            queue
                .release(claimed.id, "stopping", "released: the worker stopped")
                .await
                .unwrap()
        );
        let released = queue.get(submitted.id).await.unwrap().unwrap();
        assert_eq!(released.state, JobState::Queued);
        assert_eq!(released.attempts, 0);
        assert!(released.lease_owner.is_none() && released.lease_expires_at.is_none());
        assert_eq!(released.message, "released: the worker stopped");
        let again = queue.claim("next", LONG).await.unwrap().unwrap();
        assert_eq!((again.id, again.attempts), (submitted.id, 1));

        // Failed: over, with the message, never claimed again.
        assert!(
            queue
                .finish(again.id, "next", JobState::Failed, "the master is gone")
                .await
                .unwrap()
        );
        let failed = queue.get(again.id).await.unwrap().unwrap();
        assert_eq!(failed.state, JobState::Failed);
        assert_eq!(failed.message, "the master is gone");
        assert!(failed.lease_owner.is_none() && failed.finished_at.is_some());
        assert!(queue.claim("next", LONG).await.unwrap().is_none());
        assert!(
            !queue.cancel(again.id).await.unwrap(),
            "a failed job was cancelled"
        );
        assert!(
            queue
                .finish(again.id, "next", JobState::Queued, "x")
                .await
                .is_err()
        );

        // Cancelled while queued: never claimed. Cancelled while running: the worker's next
        // renewal says stop.
        let queued = queue.submit(&job("cancel-queued")).await.unwrap();
        assert!(queue.cancel(queued.id).await.unwrap());
        assert!(queue.claim("w", LONG).await.unwrap().is_none());
        assert_eq!(
            queue.get(queued.id).await.unwrap().unwrap().state,
            JobState::Cancelled
        );
        let running = queue.submit(&job("cancel-running")).await.unwrap();
        let claimed = queue.claim("w", LONG).await.unwrap().unwrap();
        assert_eq!(claimed.id, running.id);
        assert!(queue.cancel(running.id).await.unwrap());
        assert!(
            !queue
                .renew(running.id, "w", LONG, &progress(10.0))
                .await
                .unwrap()
        );
        assert!(
            !queue
                .finish(running.id, "w", JobState::Done, "published")
                .await
                .unwrap()
        );
        assert!(queue.get(-1).await.unwrap().is_none());
        assert!(!queue.cancel(-1).await.unwrap());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract on the in-memory queue, its clock moved by hand.
    #[tokio::test]
    async fn jobs_in_memory_keep_the_contract() {
        let now = Arc::new(Mutex::new(Utc::now()));
        let clock = {
            let now = Arc::clone(&now);
            Arc::new(move || *now.lock().unwrap_or_else(|p| p.into_inner())) as Clock
        };
        let queue: Arc<dyn JobQueue> = Arc::new(MemoryJobs::with_clock(clock));
        conformance::run(
            &|| {
                let queue = Arc::clone(&queue);
                Box::pin(async move { queue })
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

    /// Without a step of the clock, a lease never expires in memory, however short.
    #[tokio::test]
    async fn a_lease_holds_until_the_clock_passes_it() {
        let now = Utc::now();
        let queue = MemoryJobs::with_clock(Arc::new(move || now));
        queue.submit(&conformance::job("film")).await.unwrap();
        let job = queue
            .claim("a", Duration::from_millis(1))
            .await
            .unwrap()
            .unwrap();
        assert!(
            queue
                .claim("b", Duration::from_secs(1))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            queue
                .renew(
                    job.id,
                    "a",
                    Duration::from_millis(1),
                    &JobProgress::default()
                )
                .await
                .unwrap()
        );
    }

    #[test]
    fn leases_and_worker_names_are_bounded() {
        assert!(
            check_lease("w", Duration::ZERO)
                .unwrap_err()
                .to_string()
                .contains("0ns")
        );
        assert!(check_lease("w", Duration::from_secs(86_401)).is_err());
        assert!(check_lease("", Duration::from_secs(1)).is_err());
        assert!(check_lease(&"w".repeat(201), Duration::from_secs(1)).is_err());
        assert!(check_lease("host:42", Duration::from_secs(30)).is_ok());
        assert_eq!(bounded_message(&"é".repeat(2_001)).chars().count(), 2_001);
        assert_eq!(bounded_message("short"), "short");
    }
}
