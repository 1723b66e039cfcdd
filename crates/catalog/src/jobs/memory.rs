//! Jobs in memory, on a clock of the caller's: the reference of the contract and the queue of
//! the tests.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;

/// The clock of a [`MemoryJobs`].
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Jobs in memory, on a clock of the caller's (the tests move it by hand).
pub struct MemoryJobs {
    jobs: Mutex<Jobs>,
    clock: Clock,
}

/// The jobs and their logs, under one lock.
#[derive(Default)]
struct Jobs {
    jobs: BTreeMap<i64, Job>,
    logs: BTreeMap<i64, VecDeque<JobLogLine>>,
}

impl Jobs {
    /// Puts job `id` at `stage` and appends it to the job's log, keeping the newest
    /// `limits::LOG_LINES` lines.
    fn stage(&mut self, id: i64, at: DateTime<Utc>, stage: &Stage) {
        let stage = stage.bounded();
        let message = stage.message();
        if let Some(job) = self.jobs.get_mut(&id) {
            job.message.clone_from(&message);
            job.stage = Some(stage.clone());
            job.updated_at = at;
        }
        let log = self.logs.entry(id).or_default();
        log.push_back(JobLogLine {
            at,
            line: message,
            stage: Some(stage),
        });
        while log.len() > limits::LOG_LINES {
            log.pop_front();
        }
    }
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

    fn jobs(&self) -> std::sync::MutexGuard<'_, Jobs> {
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
        let mut all = self.jobs();
        let id = all.jobs.keys().next_back().map_or(1, |last| last + 1);
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
            message: String::new(),
            stage: None,
            created_at: now,
            updated_at: now,
            started_at: None,
            finished_at: None,
        };
        all.jobs.insert(id, job);
        all.stage(id, now, &Stage::Queued);
        Ok(all.jobs[&id].clone())
    }

    async fn claim(&self, worker: &str, lease: Duration) -> Result<Option<Job>> {
        check_lease(worker, lease)?;
        let now = (self.clock)();
        let until = self.until(lease)?;
        let mut all = self.jobs();
        let expired = |job: &Job| {
            job.state == JobState::Running && job.lease_expires_at.is_some_and(|t| t < now)
        };
        let mut lines = Vec::new();
        for job in all.jobs.values_mut() {
            if expired(job) && job.attempts >= job.max_attempts {
                let worker = job.lease_owner.take().unwrap_or_default();
                job.state = JobState::Failed;
                job.lease_expires_at = None;
                job.finished_at = Some(now);
                let attempts = job.attempts;
                lines.push((job.id, Stage::LeaseLost { worker, attempts }));
            }
        }
        for (id, stage) in lines {
            all.stage(id, now, &stage);
        }
        let Some(job) = all
            .jobs
            .values_mut()
            .find(|job| job.state == JobState::Queued || expired(job))
        else {
            return Ok(None);
        };
        let previous = match job.state {
            JobState::Running => job.lease_owner.as_deref(),
            _ => None,
        };
        let stage = Stage::claimed(worker, previous, job.attempts + 1, job.max_attempts);
        job.state = JobState::Running;
        job.attempts += 1;
        job.lease_owner = Some(worker.to_owned());
        job.lease_expires_at = Some(until);
        job.percent = 0.0;
        job.speed = 0.0;
        job.started_at.get_or_insert(now);
        let id = job.id;
        all.stage(id, now, &stage);
        Ok(Some(all.jobs[&id].clone()))
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
        let now = (self.clock)();
        let mut all = self.jobs();
        let Some(job) = all.jobs.get_mut(&id).filter(|job| held_by(job, worker)) else {
            return Ok(false);
        };
        job.lease_expires_at = Some(until);
        job.percent = progress.percent;
        job.speed = progress.speed;
        job.updated_at = now;
        if job.stage.as_ref() != Some(&progress.stage) {
            all.stage(id, now, &progress.stage);
        }
        Ok(true)
    }

    async fn finish(&self, id: i64, worker: &str, state: JobState, stage: &Stage) -> Result<bool> {
        if !matches!(state, JobState::Done | JobState::Failed) {
            return Err(Error::Backend(format!(
                "a job is finished as done or failed, not {}",
                state.as_str()
            )));
        }
        let now = (self.clock)();
        let mut all = self.jobs();
        let Some(job) = all.jobs.get_mut(&id).filter(|job| held_by(job, worker)) else {
            return Ok(false);
        };
        job.state = state;
        if state == JobState::Done {
            job.percent = 100.0;
        }
        job.lease_owner = None;
        job.lease_expires_at = None;
        job.finished_at = Some(now);
        all.stage(id, now, stage);
        Ok(true)
    }

    async fn release(&self, id: i64, worker: &str, stage: &Stage) -> Result<bool> {
        let now = (self.clock)();
        let mut all = self.jobs();
        let Some(job) = all.jobs.get_mut(&id).filter(|job| held_by(job, worker)) else {
            return Ok(false);
        };
        job.state = JobState::Queued;
        job.attempts = job.attempts.saturating_sub(1);
        job.lease_owner = None;
        job.lease_expires_at = None;
        all.stage(id, now, stage);
        Ok(true)
    }

    async fn cancel(&self, id: i64, by: &str) -> Result<bool> {
        let now = (self.clock)();
        let mut all = self.jobs();
        let Some(job) = all.jobs.get_mut(&id).filter(|job| !job.state.is_final()) else {
            return Ok(false);
        };
        job.state = JobState::Cancelled;
        job.lease_owner = None;
        job.lease_expires_at = None;
        job.finished_at = Some(now);
        all.stage(id, now, &Stage::Cancelled { by: by.to_owned() });
        Ok(true)
    }

    async fn list(&self, limit: u32) -> Result<Vec<Job>> {
        let limit = limit.min(limits::LIST) as usize;
        Ok(self
            .jobs()
            .jobs
            .values()
            .rev()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn get(&self, id: i64) -> Result<Option<Job>> {
        Ok(self.jobs().jobs.get(&id).cloned())
    }

    async fn log(&self, id: i64) -> Result<Vec<JobLogLine>> {
        Ok(self
            .jobs()
            .logs
            .get(&id)
            .map(|log| log.iter().cloned().collect())
            .unwrap_or_default())
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
                    &JobProgress {
                        percent: 0.0,
                        speed: 0.0,
                        stage: Stage::Queued,
                    }
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
