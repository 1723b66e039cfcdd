//! The queue of ingest jobs that `monsoon worker`s take from: what a job is, the
//! [`JobQueue`] trait every backend implements (PostgreSQL in `crates/db/src/postgres/jobs.rs`),
//! [`MemoryJobs`] for tests, and [`conformance::run`], the contract both keep. What the studio
//! and the command line both do with it: [`cancel()`] a job, show the jobs as a [`table`].
//!
//! A job is *leased*: a worker claims it for a while (`lease`), renews the lease as it works,
//! and finishes it. A worker that dies stops renewing; once its lease has expired, another
//! worker claims the job and starts it again (the publish protocol, `publish.rs`, left nothing
//! visible of the first attempt). Each claim is an attempt; a job whose lease expires on its
//! last attempt fails, with the reason. Lease times are the queue's clock (the database's
//! `now()` on PostgreSQL), never a worker's.

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
    /// Lines a job's log keeps (the newest); each is cut to `MESSAGE_CHARS`.
    pub const LOG_LINES: usize = 200;
    /// Who cancelled a job (an operator's name, `monsoon jobs`), bytes.
    pub const BY_BYTES: usize = 200;
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

/// An uploaded file a job reads from the media store rather than from a path (a master or a
/// track uploaded through the studio, on its way to a worker that may be on another machine):
/// the job's options carry it as `"incoming": {"key", "size"}`. The worker fetches the object
/// into its own staging directory and checks its size; the object is removed once the job is
/// over for good (`JobState::is_final`), never on a retry. `key` is under
/// [`crate::store::INCOMING_PREFIX`], which the origin never serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incoming {
    pub key: String,
    /// Bytes.
    pub size: u64,
}

impl Incoming {
    /// The key of upload `upload`'s file `file_name` (its name on the server, `<id>.<ext>`).
    pub fn key_of(upload: &str, file_name: &str) -> Result<String> {
        if upload.contains('/') || file_name.contains('/') {
            return Err(Error::Backend(format!(
                "upload `{upload}`, file `{file_name}`: a part of a key holds no `/`"
            )));
        }
        let key = format!("{}/{upload}/{file_name}", crate::store::INCOMING_PREFIX);
        crate::store::check_key(&key)?;
        Ok(key)
    }

    /// The incoming file of job options `options`, if they name one; an unreadable one, or a
    /// key outside [`crate::store::INCOMING_PREFIX`], is an error (the queue is shared).
    pub fn of(options: &serde_json::Value) -> Result<Option<Self>> {
        let Some(value) = options.get("incoming") else {
            return Ok(None);
        };
        let incoming: Self = serde_json::from_value(value.clone())
            .map_err(|e| Error::Backend(format!("the job's incoming file is not readable: {e}")))?;
        crate::store::check_key(&incoming.key)?;
        let parts: Vec<&str> = incoming.key.split('/').collect();
        if parts.len() != 3 || parts[0] != crate::store::INCOMING_PREFIX {
            return Err(Error::Backend(format!(
                "the job's incoming file `{}` is not `{}/<upload>/<file>`",
                incoming.key,
                crate::store::INCOMING_PREFIX
            )));
        }
        Ok(Some(incoming))
    }

    /// The file's name (the key's last part).
    pub fn file_name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or_default()
    }

    /// The upload's own prefix, `_incoming/<upload>`: what is removed when the job is over.
    pub fn prefix(&self) -> &str {
        self.key.rsplit_once('/').map_or(&self.key, |(dir, _)| dir)
    }

    /// Removes the incoming object of `job`, if it has one and the job is over for good;
    /// whether there was one to remove. Called by whoever sees the job end (its worker, the
    /// operator's cancel): a second removal is harmless.
    pub async fn remove_if_over(job: &Job, media: &dyn crate::MediaStore) -> Result<bool> {
        if !job.state.is_final() {
            return Ok(false);
        }
        match Self::of(&job.options)? {
            Some(incoming) => media.delete_prefix(incoming.prefix()).await.map(|()| true),
            None => Ok(false),
        }
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
    /// What is happening, or why it failed, in English words (`stage`'s message).
    pub message: String,
    /// The same as data, for the studio and the dashboard to say in the operator's language;
    /// `None` for a job last changed before stages were stored.
    pub stage: Option<Stage>,
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
#[derive(Debug, Clone, PartialEq)]
pub struct JobProgress {
    pub percent: f64,
    pub speed: f64,
    /// The stage the work is in: a new one is a line of the job's log.
    pub stage: Stage,
}

impl JobProgress {
    /// Within bounds: percent in 0..=100, a finite non-negative speed, the stage
    /// `Stage::bounded`. Backends store this.
    pub fn bounded(&self) -> Self {
        let finite = |x: f64| if x.is_finite() { x } else { 0.0 };
        Self {
            percent: finite(self.percent).clamp(0.0, 100.0),
            speed: finite(self.speed).max(0.0),
            stage: self.stage.bounded(),
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

/// A line of a job's log: what happened to it, when, on the queue's clock.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobLogLine {
    /// When it was written, on the queue's clock (the database's).
    pub at: DateTime<Utc>,
    /// What happened, in English words (`stage`'s message, cut to `limits::MESSAGE_CHARS`).
    pub line: String,
    /// The same as data; `None` for a line written before stages were stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
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

    /// Ends `worker`'s job `id` as `state` (`Done` or `Failed`) at `stage`. `false`: the
    /// job was not `worker`'s any more, and is left as it is.
    async fn finish(&self, id: i64, worker: &str, state: JobState, stage: &Stage) -> Result<bool>;

    /// Gives `worker`'s job `id` back to the queue (a worker stopping): queued, its lease
    /// cleared, its attempt given back, at `stage`. `false`: it was not `worker`'s.
    async fn release(&self, id: i64, worker: &str, stage: &Stage) -> Result<bool>;

    /// Cancels job `id` if it is queued or running (a running job's worker learns it at its
    /// next renewal), saying `by` whom (`Stage::Cancelled`). `false`: it is over already, or
    /// there is no such job.
    async fn cancel(&self, id: i64, by: &str) -> Result<bool>;

    /// The newest `limit` jobs (at most `limits::LIST`), newest first.
    async fn list(&self, limit: u32) -> Result<Vec<Job>>;

    /// One job, or `None`.
    async fn get(&self, id: i64) -> Result<Option<Job>>;

    /// Job `id`'s log, oldest line first: the newest `limits::LOG_LINES` lines. Every change
    /// of a job's stage (its message) is a line — submitted, claimed (and by whom, or taken over from
    /// whom), each new stage a worker reports (its percent ticks are not), released, failed
    /// (and why), done, cancelled (and by whom) — stamped with the queue's clock. Empty when
    /// there is no such job.
    async fn log(&self, id: i64) -> Result<Vec<JobLogLine>>;
}

mod cancel;
mod memory;
mod stage;
mod table;

pub use cancel::{CancelError, Canceller, cancel};
pub use memory::{Clock, MemoryJobs};
pub use stage::Stage;
pub use table::{log_text, table};

#[allow(clippy::unwrap_used)]
pub mod conformance;

#[cfg(test)]
mod tests {
    use super::*;

    /// An incoming file is `_incoming/<upload>/<file>` and nothing else: a job naming another
    /// key (a published film's, the whole prefix) is refused, so its removal never reaches
    /// beyond the upload's own prefix.
    #[test]
    fn an_incoming_file_is_an_uploads_own_key() {
        let key = Incoming::key_of("0123abcd", "0123abcd.mov").unwrap();
        assert_eq!(key, "_incoming/0123abcd/0123abcd.mov");
        assert!(Incoming::key_of("a/b", "x.mov").is_err());
        assert!(Incoming::key_of("..", "x.mov").is_err());
        let options = serde_json::json!({"incoming": {"key": key, "size": 7}});
        let incoming = Incoming::of(&options).unwrap().unwrap();
        assert_eq!(
            (incoming.file_name(), incoming.prefix(), incoming.size),
            ("0123abcd.mov", "_incoming/0123abcd", 7)
        );
        assert_eq!(Incoming::of(&serde_json::json!({})).unwrap(), None);
        for bad in [
            "film/v1/seg.m4s",
            "_incoming",
            "_incoming/x",
            "_incoming/x/y/z",
            "_incoming/../film/x",
        ] {
            let options = serde_json::json!({"incoming": {"key": bad, "size": 1}});
            assert!(Incoming::of(&options).is_err(), "{bad}");
        }
        let extra = serde_json::json!({"incoming": {"key": key, "size": 1, "url": "x"}});
        assert!(Incoming::of(&extra).is_err());
    }
}
