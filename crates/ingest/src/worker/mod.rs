//! `monsoon worker`'s loop: claim a job from the shared [`JobQueue`], run the ingest pipeline
//! on it ([`crate::plan_with`] then [`Plan::publish`](crate::Plan::publish)), renew the lease
//! with the progress while it runs, and finish it.
//!
//! - Every stage reaches the job's row and its log, in order; percent and speed at most once
//!   a second (`PROGRESS_EVERY`); the lease is renewed at least every third of its length, in
//!   the same statements (`report.rs`).
//! - A renewal that finds the job no longer this worker's (taken over after an expired lease,
//!   or cancelled) stops ffmpeg and drops the version being built: nothing is published.
//!   Just before the catalog commit the lease is renewed once more, and a lost one holds the
//!   commit back until the work is dropped.
//! - `stop` (SIGTERM) drops the work the same way and releases the job: queued again, its
//!   lease cleared, its attempt given back.
//! - A worker killed outright leaves nothing visible (the publish protocol's promise,
//!   `monsoon_catalog::publish`); its lease expires and another worker starts the job again.

mod report;
mod setup;

pub use report::PROGRESS_EVERY;
pub use setup::{Background, Backing, Config, default_name};

use std::path::Path;
use std::time::{Duration, Instant};

use monsoon_catalog::publish::{Publisher, sweep_staging};
use monsoon_catalog::{FilmRepository, Incoming, Job, JobQueue, JobState, MediaStore, Stage};
use monsoon_media::Progress;
use tokio::sync::watch;

use crate::{Destination, Published};
use report::Report;

/// How a worker works.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The worker's name, the lease owner: unique among workers (`host:pid`).
    pub name: String,
    /// How long a claim or renewal holds a job.
    pub lease: Duration,
    /// How long an idle worker waits before asking the queue again.
    pub idle_poll: Duration,
}

/// Where a worker builds and publishes versions (its data directory's staging and locks, the
/// shared catalog and media store).
#[derive(Debug, Clone, Copy)]
pub struct Workplace<'a> {
    pub films: &'a dyn FilmRepository,
    pub media: &'a dyn MediaStore,
    /// Where a publish is recorded (who: the worker; what: the film and its version).
    pub audit: &'a dyn monsoon_catalog::AuditLog,
    pub staging: &'a Path,
    pub locks: &'a Path,
}

/// How one job ended, for this worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(Published),
    /// For `reason` (the error's chain), and the rule a file breaks when a person can mend it.
    Failed {
        reason: String,
        rule: Option<monsoon_catalog::Rule>,
    },
    /// The job stopped being this worker's (taken over or cancelled).
    Lost,
    /// `stop` came; the job was released.
    Released,
}

/// Takes and runs jobs until `stop` turns true.
pub async fn run(
    queue: &dyn JobQueue,
    place: Workplace<'_>,
    settings: &Settings,
    mut stop: watch::Receiver<bool>,
) {
    // Staging directories of dead processes (a worker killed here before) go first.
    sweep_staging(place.staging);
    tracing::info!(worker = %settings.name, lease = ?settings.lease, "waiting for jobs");
    let mut swept: Option<Instant> = None;
    while !*stop.borrow() {
        if swept.is_none_or(|at| at.elapsed() >= SWEEP_INCOMING_EVERY) {
            swept = Some(Instant::now());
            match sweep_incoming(queue, place.media).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("removed the uploaded files of {n} jobs over"),
                Err(e) => tracing::warn!(error = %e, "cannot sweep the uploaded files"),
            }
        }
        match queue.claim(&settings.name, settings.lease).await {
            Ok(Some(job)) => {
                run_job(queue, place, settings, &job, &mut stop).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot claim a job; trying again"),
        }
        tokio::select! {
            () = tokio::time::sleep(settings.idle_poll) => {}
            _ = stop.wait_for(|stopped| *stopped) => {}
        }
    }
    tracing::info!(worker = %settings.name, "stopped");
}

/// How often a worker looks for uploaded files of jobs that are over ([`sweep_incoming`]).
pub const SWEEP_INCOMING_EVERY: Duration = Duration::from_secs(600);

/// Removes the incoming files (`monsoon_catalog::Incoming`) of the newest jobs that are over
/// for good but still have one: those the queue itself failed when the lease of their last
/// attempt expired (no worker saw that end), or whose removal failed. Never an object without
/// a job (one may be on its way into the queue), never a queued or running job's. Returns how
/// many jobs' files it removed.
pub async fn sweep_incoming(queue: &dyn JobQueue, media: &dyn MediaStore) -> crate::Result<usize> {
    let keys = media.list(monsoon_catalog::store::INCOMING_PREFIX).await?;
    if keys.is_empty() {
        return Ok(0);
    }
    let mut removed = 0;
    for job in queue.list(monsoon_catalog::jobs::limits::LIST).await? {
        let Ok(Some(incoming)) = Incoming::of(&job.options) else {
            continue;
        };
        if job.state.is_final()
            && keys
                .iter()
                .any(|k| monsoon_catalog::store::under(k, incoming.prefix()))
        {
            media.delete_prefix(incoming.prefix()).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Runs one claimed job to its end and records it.
pub async fn run_job(
    queue: &dyn JobQueue,
    place: Workplace<'_>,
    settings: &Settings,
    job: &Job,
    stop: &mut watch::Receiver<bool>,
) -> Outcome {
    let id = job.id;
    let name = settings.name.as_str();
    let (attempt, of, worker) = (job.attempts, job.max_attempts, name.to_owned());
    tracing::info!(job = id, slug = %job.slug, "{}", job.message);
    let report = Report::new(
        job.stage
            .clone()
            .unwrap_or_else(|| Stage::claimed(name, None, attempt, of)),
    );

    let work = async {
        let destination = Destination {
            publisher: Publisher {
                films: place.films,
                media: place.media,
            },
            staging: place.staging,
            locks: place.locks,
        };
        // A file uploaded through the studio is in the media store: fetched into this
        // worker's staging first (removed with `fetched` when the work ends or is dropped).
        let fetched = fetch_incoming(place, job, name, &report).await?;
        let job = fetched.as_ref().map_or(job, |f| &f.job);
        report.stage(Stage::Probing {
            attempt,
            of,
            worker: worker.clone(),
        });
        let track = crate::jobs::track(job)?;
        let plan = match &track {
            Some(_) => None,
            None => {
                let (request, meta) = crate::jobs::request(job)?;
                // A job without a film.toml (the studio's, into a draft or over a published
                // film) publishes the metadata stored for the slug, as `monsoon ingest`
                // without --meta does: an edit in the studio is never reset by an ingest.
                Some(match &job.film_toml {
                    Some(_) => crate::plan_with(request, meta).await?,
                    None => crate::plan_stored(request, place.films).await?,
                })
            }
        };
        let duration_s = plan
            .as_ref()
            .map_or(job.duration_s, |p| p.source.duration_s)
            .max(0.001);
        report.stage(match &track {
            Some(t) => Stage::AddingTrack {
                track: t.label().to_owned(),
                attempt,
                of,
                worker: worker.clone(),
            },
            None => Stage::Transcoding {
                attempt,
                of,
                worker: worker.clone(),
            },
        });
        let on_progress = |p: Progress| {
            report.progress(
                (p.out_time_s / duration_s * 100.0).clamp(0.0, 100.0),
                p.speed,
            );
        };
        // The last word before the catalog commit, waited for: a lease lost by now (a long
        // pause, a partition) holds the commit back until the keeper notices and the work is
        // dropped.
        let before_commit = async {
            report.progress(100.0, 0.0);
            let publishing = report.stage(Stage::Publishing {
                attempt,
                of,
                worker: worker.clone(),
            });
            report.written(publishing).await;
        };
        match (plan, track) {
            (Some(plan), _) => plan.publish(destination, on_progress, before_commit).await,
            (None, Some(track)) => {
                crate::tracks::add(destination, &job.slug, &track, on_progress, before_commit).await
            }
            (None, None) => Err(crate::Error::Job(format!("job {id} has nothing to do"))),
        }
    };

    let outcome = tokio::select! {
        result = work => match result {
            Ok(published) => Outcome::Done(published),
            Err(e) => Outcome::Failed {
                reason: naming_incoming(monsoon_catalog::chain(&e), place.staging, job),
                rule: e.refusal().rule,
            },
        },
        () = report.keep_lease(queue, id, settings) => Outcome::Lost,
        _ = stop.wait_for(|stopped| *stopped) => Outcome::Released,
    };
    // The work is dropped here (ffmpeg killed, staging removed) before the job is recorded.
    let recorded = match &outcome {
        Outcome::Done(published) => {
            // The verification (keyframes at every segment start, bit-rate budgets, codec
            // strings, every object in place) passed, or nothing would be published.
            let stage = Stage::Published {
                version: published.version.clone(),
                attempt,
                of,
                worker: worker.clone(),
                verified: published.ladder.join(", "),
            };
            tracing::info!(job = id, "{stage}");
            let entry = monsoon_catalog::NewAuditEntry::new(
                format!("worker {name}"),
                match crate::jobs::track(job) {
                    Ok(Some(_)) => monsoon_catalog::Action::TrackAdded,
                    _ => monsoon_catalog::Action::FilmPublished,
                },
                &published.slug,
                serde_json::json!({ "version": published.version, "job": id }),
            );
            monsoon_catalog::operators::append_or_warn(place.audit, &entry).await;
            finish(queue, id, name, JobState::Done, &stage).await
        }
        Outcome::Failed { reason, rule } => {
            tracing::warn!(job = id, "failed: {reason}");
            let stage = Stage::Failed {
                reason: reason.clone(),
                rule: rule.clone(),
            };
            finish(queue, id, name, JobState::Failed, &stage).await
        }
        Outcome::Released => {
            let stage = Stage::Released {
                worker: worker.clone(),
            };
            tracing::info!(job = id, "{stage}");
            queue.release(id, name, &stage).await
        }
        Outcome::Lost => {
            tracing::warn!(
                job = id,
                "the job is no longer this worker's (taken over after an expired lease, or \
                 cancelled); its work was dropped, nothing was published"
            );
            Ok(true)
        }
    };
    match recorded {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            job = id,
            "the job was taken over or cancelled before its end was recorded"
        ),
        Err(e) => tracing::warn!(job = id, error = %e, "cannot record the job's end"),
    }
    remove_incoming_if_over(queue, place.media, job).await;
    outcome
}

/// A job's uploaded file, fetched from the media store into this worker's staging: the job
/// as the pipeline reads it (its `master` the local copy), and the directory, removed when
/// this is dropped.
#[derive(Debug)]
struct Fetched {
    dir: std::path::PathBuf,
    job: Job,
}

impl Drop for Fetched {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Fetches `job`'s incoming file (`monsoon_catalog::Incoming`), if it has one, streamed into
/// `<staging>/incoming-<job>.<pid>/` (swept like any staging directory if this process dies),
/// and checks its size. A missing object fails the job saying so.
async fn fetch_incoming(
    place: Workplace<'_>,
    job: &Job,
    name: &str,
    report: &Report,
) -> crate::Result<Option<Fetched>> {
    let Some(incoming) = Incoming::of(&job.options)? else {
        return Ok(None);
    };
    report.stage(Stage::Fetching {
        // MB to one decimal, as the stage's words show it.
        mb: (incoming.size as f64 / 1e5).round() / 10.0,
        attempt: job.attempts,
        of: job.max_attempts,
        worker: name.to_owned(),
    });
    let dir = fetch_dir(place.staging, job.id);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|source| crate::Error::Path {
        path: dir.clone(),
        source,
    })?;
    let mut fetched = Fetched {
        dir,
        job: job.clone(),
    };
    let file = fetched.dir.join(incoming.file_name());
    let size = match place.media.get_file(&incoming.key, &file).await {
        Ok(size) => size,
        Err(monsoon_catalog::Error::NotFound(_)) => {
            return Err(crate::Error::Job(format!(
                "the uploaded file `{}` is no longer in the media store (the job was \
                 cancelled, or the object removed): upload the file again and make a new job",
                incoming.key
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if size != incoming.size {
        return Err(crate::Error::Job(format!(
            "the uploaded file `{}` is {size} bytes in the media store; {} were uploaded: \
             upload the file again and make a new job",
            incoming.key, incoming.size
        )));
    }
    fetched.job.master = file
        .to_str()
        .ok_or_else(|| crate::Error::Job(format!("{}: the path is not UTF-8", file.display())))?
        .to_owned();
    Ok(Some(fetched))
}

/// Where this process fetches job `id`'s uploaded file.
fn fetch_dir(staging: &Path, id: i64) -> std::path::PathBuf {
    staging.join(format!("incoming-{id}.{}", std::process::id()))
}

/// `reason` naming the uploaded file by its key rather than by this worker's fetched copy
/// (which is gone by the time the operator reads it).
fn naming_incoming(reason: String, staging: &Path, job: &Job) -> String {
    match Incoming::of(&job.options) {
        Ok(Some(incoming)) => {
            let fetched = fetch_dir(staging, job.id).join(incoming.file_name());
            reason.replace(&fetched.display().to_string(), &incoming.key)
        }
        _ => reason,
    }
}

/// Removes `job`'s incoming file from the media store once the job is over for good (done,
/// failed, cancelled: `JobState::is_final`, as the queue says now); a job queued again (a
/// release, a take-over) keeps it for its next attempt.
async fn remove_incoming_if_over(queue: &dyn JobQueue, media: &dyn MediaStore, job: &Job) {
    if !matches!(Incoming::of(&job.options), Ok(Some(_))) {
        return;
    }
    match queue.get(job.id).await {
        Ok(Some(now)) => match Incoming::remove_if_over(&now, media).await {
            Ok(true) => tracing::info!(job = job.id, "its uploaded file is removed"),
            Ok(false) => {}
            Err(e) => tracing::warn!(job = job.id, error = %e, "cannot remove its uploaded file"),
        },
        Ok(None) => {}
        Err(e) => tracing::warn!(job = job.id, error = %e, "cannot read the job's state"),
    }
}

/// Records the job's end, trying a few times through a database hiccup (if it never gets
/// through, the lease expires and another worker does the job again: wasteful, not wrong).
async fn finish(
    queue: &dyn JobQueue,
    id: i64,
    name: &str,
    state: JobState,
    stage: &Stage,
) -> monsoon_catalog::Result<bool> {
    let mut tries = 0;
    loop {
        match queue.finish(id, name, state, stage).await {
            Err(e) if tries < 4 => {
                tries += 1;
                tracing::warn!(job = id, error = %e, "cannot record the job's end; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use bytes::Bytes;
    use monsoon_catalog::{MemoryJobs, MemoryStore, NewJob};

    use super::*;

    fn job_with(slug: &str, upload: &str) -> NewJob {
        NewJob {
            slug: slug.into(),
            master: format!("/data/uploads/claimed/{upload}.mov"),
            film_toml: None,
            options: serde_json::json!({"incoming": {
                "key": format!("_incoming/{upload}/{upload}.mov"), "size": 1}}),
            duration_s: 1.0,
            max_attempts: 1,
        }
    }

    /// A job the queue failed itself (its last attempt's lease expired, no worker saw it)
    /// loses its uploaded file to the sweep; a queued job's file, and a file no job names
    /// yet, stay.
    #[tokio::test]
    async fn the_sweep_removes_the_files_of_jobs_over_and_nothing_else() {
        let (queue, media) = (MemoryJobs::new(), MemoryStore::new());
        for upload in ["aaaa", "bbbb", "cccc"] {
            media
                .put(
                    &format!("_incoming/{upload}/{upload}.mov"),
                    Bytes::from_static(b"x"),
                )
                .await
                .unwrap();
        }
        let dead = queue.submit(&job_with("dead", "aaaa")).await.unwrap();
        queue
            .claim("gone", Duration::from_millis(10))
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        // The next claim finds the lease of the last attempt expired: the job fails.
        assert!(
            queue
                .claim("next", Duration::from_secs(60))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            queue.get(dead.id).await.unwrap().unwrap().state,
            JobState::Failed
        );
        queue.submit(&job_with("waiting", "bbbb")).await.unwrap();
        assert_eq!(sweep_incoming(&queue, &media).await.unwrap(), 1);
        assert_eq!(
            media.list("_incoming").await.unwrap(),
            vec![
                "_incoming/bbbb/bbbb.mov".to_owned(),
                "_incoming/cccc/cccc.mov".to_owned()
            ]
        );
        assert_eq!(sweep_incoming(&queue, &media).await.unwrap(), 0);
    }

    /// A job's uploaded file stays through a release (the job goes back to the queue) and
    /// goes when the job fails for good; a file of the wrong size fails the job saying so;
    /// the worker's fetched copy never outlives the attempt.
    #[tokio::test]
    async fn the_uploaded_file_outlives_a_release_and_goes_when_the_job_is_over() {
        let tmp = tempfile::tempdir().unwrap();
        let (staging, locks) = (tmp.path().join("staging"), tmp.path().join("locks"));
        let (queue, media) = (MemoryJobs::new(), MemoryStore::new());
        let films = monsoon_catalog::MemoryFilms::new();
        let audit = monsoon_catalog::operators::MemoryAudit::default();
        let place = Workplace {
            films: &films,
            media: &media,
            audit: &audit,
            staging: &staging,
            locks: &locks,
        };
        let settings = Settings {
            name: "w:1".into(),
            lease: Duration::from_secs(60),
            idle_poll: Duration::from_millis(10),
        };
        let job = |upload: &str, size: u64| NewJob {
            options: serde_json::json!({"quality": "fast", "max_height": null, "incoming": {
                "key": format!("_incoming/{upload}/{upload}.mov"), "size": size}}),
            max_attempts: 3,
            ..job_with("film", upload)
        };
        let body = Bytes::from_static(b"not a film");
        for upload in ["aaaa", "bbbb"] {
            media
                .put(&format!("_incoming/{upload}/{upload}.mov"), body.clone())
                .await
                .unwrap();
        }
        let leftovers = || std::fs::read_dir(&staging).map_or(0, |d| d.count());

        // The wrong size: failed, saying so; the object goes with the job.
        queue.submit(&job("aaaa", 11)).await.unwrap();
        let claimed = queue.claim("w:1", settings.lease).await.unwrap().unwrap();
        let (_stop, mut running) = watch::channel(false);
        let Outcome::Failed { reason, .. } =
            run_job(&queue, place, &settings, &claimed, &mut running).await
        else {
            panic!("not failed");
        };
        assert!(
            reason.contains("is 10 bytes in the media store; 11 were uploaded"),
            "{reason}"
        );
        assert_eq!(media.head("_incoming/aaaa/aaaa.mov").await.unwrap(), None);
        assert_eq!(leftovers(), 0);

        // Released (the worker stopping): queued again, the object kept for the next attempt.
        let second = queue.submit(&job("bbbb", 10)).await.unwrap();
        let claimed = queue.claim("w:1", settings.lease).await.unwrap().unwrap();
        let (_stopped, mut stopping) = watch::channel(true);
        assert_eq!(
            run_job(&queue, place, &settings, &claimed, &mut stopping).await,
            Outcome::Released
        );
        assert_eq!(
            queue.get(second.id).await.unwrap().unwrap().state,
            JobState::Queued
        );
        assert_eq!(
            media.head("_incoming/bbbb/bbbb.mov").await.unwrap(),
            Some(10)
        );
        assert_eq!(leftovers(), 0);

        // The next attempt fetches it, ffprobe refuses the bytes: failed for good, removed.
        let claimed = queue.claim("w:1", settings.lease).await.unwrap().unwrap();
        assert_eq!(claimed.id, second.id);
        let outcome = run_job(&queue, place, &settings, &claimed, &mut running).await;
        let Outcome::Failed { reason, .. } = outcome else {
            panic!("not failed: {outcome:?}");
        };
        assert!(!reason.contains("media store"), "fetched whole: {reason}");
        assert!(
            reason.starts_with("_incoming/bbbb/bbbb.mov: not a media file"),
            "{reason}"
        );
        assert_eq!(media.head("_incoming/bbbb/bbbb.mov").await.unwrap(), None);
        assert_eq!(leftovers(), 0);
    }
}
