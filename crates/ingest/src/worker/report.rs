//! What a worker reports of a running job, and the lease keeper that writes it to the job's
//! row:
//! - every stage, in the order reported, however short it lasts: each is a line of the job's
//!   log (`JobQueue::log`), so a job that probes and transcodes in half a second still reads
//!   "probing …, transcoding …, publishing …";
//! - the latest percent and speed, at most once per [`PROGRESS_EVERY`];
//! - the lease renewed in the same statements, at least every third of its length.
//!
//! The keeper is the job row's only writer while the job runs, so stages cannot overtake
//! one another; [`Report::written`] lets the work wait for its stage to be in the row (the
//! publish waits for "publishing", its last word before the catalog commit).

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use monsoon_catalog::{JobProgress, JobQueue, Stage};
use tokio::sync::{Notify, watch};

use super::Settings;

/// How often progress is written to the job's row, at most.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// A running job's stages and progress, between the work that reports them and the keeper
/// ([`Report::keep_lease`]) that writes them.
#[derive(Debug)]
pub(super) struct Report {
    latest: Mutex<Latest>,
    /// Wakes the keeper when a stage is reported (percent and speed wait for its tick).
    stage_reported: Notify,
    /// How many stages are in the job's row.
    written: watch::Sender<u64>,
}

#[derive(Debug)]
struct Latest {
    /// The latest percent and speed, and the last stage written.
    progress: JobProgress,
    /// Whether percent or speed changed since they were last written.
    changed: bool,
    /// Stages reported and not yet written, oldest first.
    stages: VecDeque<Stage>,
    /// How many stages were ever reported.
    reported: u64,
}

impl Report {
    /// A report on a job claimed at `claimed`.
    pub(super) fn new(claimed: Stage) -> Self {
        Self {
            latest: Mutex::new(Latest {
                progress: JobProgress {
                    percent: 0.0,
                    speed: 0.0,
                    stage: claimed,
                },
                changed: false,
                stages: VecDeque::new(),
                reported: 0,
            }),
            stage_reported: Notify::new(),
            written: watch::Sender::new(0),
        }
    }

    fn latest(&self) -> MutexGuard<'_, Latest> {
        self.latest.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reports the job's next stage; returns its number, for [`Self::written`].
    pub(super) fn stage(&self, stage: Stage) -> u64 {
        let mut latest = self.latest();
        latest.stages.push_back(stage);
        latest.reported += 1;
        self.stage_reported.notify_one();
        latest.reported
    }

    /// Reports how far the current stage is.
    pub(super) fn progress(&self, percent: f64, speed: f64) {
        let mut latest = self.latest();
        latest.progress.percent = percent;
        latest.progress.speed = speed;
        latest.changed = true;
    }

    /// Returns once stage `n` is in the job's row: never, if the job stops being this
    /// worker's first (the keeper then returns, and the work is dropped).
    pub(super) async fn written(&self, n: u64) {
        let mut written = self.written.subscribe();
        if written.wait_for(|&w| w >= n).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// What to write next, and whether it is a stage: the oldest stage not yet written, with
    /// the latest percent and speed; else those if they changed or the lease is `due`.
    fn next(&self, due: bool) -> Option<(JobProgress, bool)> {
        let mut latest = self.latest();
        let stage = latest.stages.front().cloned();
        if stage.is_none() && !latest.changed && !due {
            return None;
        }
        latest.changed = false;
        let is_stage = stage.is_some();
        let progress = JobProgress {
            stage: stage.unwrap_or_else(|| latest.progress.stage.clone()),
            ..latest.progress
        };
        Some((progress, is_stage))
    }

    fn stage_written(&self, stage: Stage) {
        let mut latest = self.latest();
        latest.stages.pop_front();
        latest.progress.stage = stage;
        drop(latest);
        self.written.send_modify(|n| *n += 1);
    }

    /// Writes what is reported, renewing the lease, until the job is no longer this worker's;
    /// never returns while it is. A write that fails (a database hiccup) is tried again at
    /// the next tick; if that lasts past the lease, another worker takes the job and the
    /// next write that gets through says so.
    pub(super) async fn keep_lease(&self, queue: &dyn JobQueue, id: i64, settings: &Settings) {
        let renew_every = settings.lease / 3;
        let tick = PROGRESS_EVERY
            .min(renew_every)
            .max(Duration::from_millis(10));
        // The claim has just taken the lease.
        let mut renewed = Instant::now();
        loop {
            if let Some((progress, stage)) = self.next(renewed.elapsed() >= renew_every) {
                match queue
                    .renew(id, &settings.name, settings.lease, &progress)
                    .await
                {
                    Ok(true) => {
                        renewed = Instant::now();
                        if stage {
                            self.stage_written(progress.stage);
                            continue;
                        }
                    }
                    Ok(false) => return,
                    Err(e) => tracing::warn!(job = id, error = %e, "cannot renew the lease"),
                }
            }
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                () = self.stage_reported.notified() => {}
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use monsoon_catalog::{JobState, MemoryJobs, NewJob};

    use super::*;

    /// Stages reported faster than the keeper's tick are each a line of the job's log, in
    /// order; percent ticks are not lines; `written` returns once its stage is in the row.
    #[tokio::test]
    async fn every_stage_reaches_the_log_in_order_however_short() {
        let queue = MemoryJobs::new();
        let job = queue
            .submit(&NewJob {
                slug: "film".into(),
                master: "/m.mov".into(),
                film_toml: None,
                options: serde_json::json!({}),
                duration_s: 1.0,
                max_attempts: 1,
            })
            .await
            .unwrap();
        let settings = Settings {
            name: "w:1".into(),
            lease: Duration::from_secs(60),
            idle_poll: Duration::from_millis(10),
        };
        let claimed = queue.claim("w:1", settings.lease).await.unwrap().unwrap();
        let report = Report::new(claimed.stage.clone().unwrap());
        let (attempt, of, worker) = (1, 1, "w:1".to_owned());
        let stages = [
            Stage::Fetching {
                mb: 1.5,
                attempt,
                of,
                worker: worker.clone(),
            },
            Stage::Probing {
                attempt,
                of,
                worker: worker.clone(),
            },
            Stage::Transcoding {
                attempt,
                of,
                worker: worker.clone(),
            },
            Stage::Publishing {
                attempt,
                of,
                worker,
            },
        ];
        let work = async {
            let mut last = 0;
            for stage in &stages {
                last = report.stage(stage.clone());
                for percent in [10.0, 50.0, 90.0] {
                    report.progress(percent, 2.0);
                }
            }
            report.written(last).await;
        };
        let keeper = report.keep_lease(&queue, claimed.id, &settings);
        let run = async {
            tokio::select! {
                () = work => {}
                () = keeper => panic!("the lease was lost"),
            }
        };
        tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("`written` never returned");
        let row = queue.get(job.id).await.unwrap().unwrap();
        assert_eq!(row.state, JobState::Running);
        assert_eq!(row.stage.as_ref(), stages.last());
        let log: Vec<Stage> = queue
            .log(job.id)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|l| l.stage)
            .collect();
        assert_eq!(log[2..], stages, "{log:#?}");
    }
}
