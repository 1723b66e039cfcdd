//! `/admin/api/jobs`: the ingest job queue (`monsoon_catalog::JobQueue`) as the operator's
//! dashboard shows it, behind the admin sign-in like every `/admin/api` route.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/admin/api/jobs?limit=` | `{"now", "jobs": […]}`, newest first ([`DEFAULT_LIMIT`], `limit` in [`LIMIT`]) |
//! | POST | `/admin/api/jobs` | `{"upload", "slug", "lang"?, "label"?}`: the ready upload becomes a job (201 with the job): a master an ingest of the film, an audio track or subtitles a track added to it (`lang` required) |
//! | GET | `/admin/api/jobs/{id}/log` | `{"id", "state", "lines": [{"at", "line", "stage"}, …]}`: the job's log, oldest line first (its newest [`LOG_LINES`](monsoon_catalog::jobs::limits::LOG_LINES) lines; 404 when there is no such job) |
//! | POST | `/admin/api/jobs/{id}/cancel` | the job, cancelled (409 when it is over, 404 when there is none); its log names the operator |
//!
//! The queue lives in a PostgreSQL database the workers share (`docs/INGEST.md`, "Jobs and
//! workers"); a server without one answers 404, saying so. Jobs are shown without the paths
//! the workers open (the master's directory, `film.toml`, the options): an operator's page
//! needs the master's file name, not the servers' file system.

use std::ops::RangeInclusive;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use monsoon_catalog::jobs::CancelError;
use monsoon_catalog::{Action, Job, JobLogLine, JobQueue, JobState};
use serde::{Deserialize, Serialize};

use crate::admin::{Operator, private};
use crate::upload::{ClaimedMaster, UploadKind};
use crate::{ApiError, AppState};
pub use monsoon_catalog::uploads::JobMaker;

/// The body of `POST /admin/api/jobs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewJobBody {
    /// The upload's id (`/admin/api/uploads/{id}`), ready.
    upload: String,
    slug: String,
    /// A track's language (audio and subtitles).
    lang: Option<String>,
    /// A track's name in the player's menus.
    label: Option<String>,
}

/// Jobs listed when the request does not say.
pub const DEFAULT_LIMIT: u32 = 100;
/// What `?limit=` may ask for.
pub const LIMIT: RangeInclusive<u32> = 1..=500;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/api/jobs", get(list).post(create))
        .route("/admin/api/jobs/{id}/log", get(log))
        .route("/admin/api/jobs/{id}/cancel", post(cancel))
}

/// A job as the dashboard shows it.
#[derive(Debug, Serialize)]
pub struct JobView<'a> {
    pub id: i64,
    pub slug: &'a str,
    /// The master's file name, without its directory.
    pub master_name: &'a str,
    pub state: JobState,
    /// Share of the master transcoded, 0 to 100.
    pub percent: f64,
    /// Transcoding speed, × real time.
    pub speed: f64,
    /// Seconds of transcoding left at the last speed (`Job::eta_s`), while running.
    pub eta_s: Option<f64>,
    /// The master's duration, seconds.
    pub duration_s: f64,
    pub attempts: u32,
    pub max_attempts: u32,
    /// The worker holding the lease (`host:pid`), while running.
    pub lease_owner: Option<&'a str>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// What is happening, or why it failed, in English words.
    pub message: &'a str,
    /// The same as data (`monsoon_catalog::Stage`, `{"name": "transcoding", "attempt": 1,
    /// …}`), which the pages say in their language; absent for a job last changed before
    /// stages were stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<&'a monsoon_catalog::Stage>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl<'a> From<&'a Job> for JobView<'a> {
    fn from(job: &'a Job) -> Self {
        Self {
            id: job.id,
            slug: &job.slug,
            master_name: job.master.rsplit('/').next().unwrap_or_default(),
            state: job.state,
            percent: job.percent,
            speed: job.speed,
            eta_s: job.eta_s(),
            duration_s: job.duration_s,
            attempts: job.attempts,
            max_attempts: job.max_attempts,
            lease_owner: job.lease_owner.as_deref(),
            lease_expires_at: job.lease_expires_at,
            message: &job.message,
            stage: job.stage.as_ref(),
            created_at: job.created_at,
            updated_at: job.updated_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
        }
    }
}

/// The answer of `GET /admin/api/jobs`.
#[derive(Debug, Serialize)]
struct JobList<'a> {
    /// This server's time of the answer (the jobs' times are the queue's clock: the
    /// database's).
    now: DateTime<Utc>,
    jobs: Vec<JobView<'a>>,
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    /// Taken as text, so a bad one is refused naming it.
    limit: Option<String>,
}

/// `limit` as asked, within [`LIMIT`]; the error names the value and the rule.
fn parse_limit(limit: Option<&str>) -> Result<u32, ApiError> {
    let Some(text) = limit else {
        return Ok(DEFAULT_LIMIT);
    };
    text.parse::<u32>()
        .ok()
        .filter(|n| LIMIT.contains(n))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "limit={:?} must be a whole number from {} to {}",
                shown(text),
                LIMIT.start(),
                LIMIT.end()
            ))
        })
}

/// A value from the request, for an error message: cut to 40 characters (the query and the
/// path are the client's; the error need not carry all of them back).
fn shown(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The server's job queue, or the 404 saying why there is none.
fn queue(state: &AppState) -> Result<&dyn JobQueue, ApiError> {
    state.jobs.as_deref().ok_or_else(|| {
        ApiError::NotFound(
            "jobs need a PostgreSQL database: the ingest job queue lives in the database \
             `monsoon worker`s share, and this server's is SQLite; set [storage] database = \
             \"postgres://…\" (MONSOON_DATABASE, --database)"
                .into(),
        )
    })
}

/// Every answer here is the operator's alone, errors included: never stored by a cache.
fn answer(result: Result<Response, ApiError>) -> Response {
    private(result.unwrap_or_else(IntoResponse::into_response))
}

async fn list(
    State(state): State<AppState>,
    _: Operator,
    Query(query): Query<ListQuery>,
) -> Response {
    answer(
        async {
            let limit = parse_limit(query.limit.as_deref())?;
            let jobs = queue(&state)?.list(limit).await?;
            Ok(Json(JobList {
                now: Utc::now(),
                jobs: jobs.iter().map(JobView::from).collect(),
            })
            .into_response())
        }
        .await,
    )
}

async fn create(
    State(state): State<AppState>,
    operator: Operator,
    Json(body): Json<NewJobBody>,
) -> Response {
    answer(
        async {
            monsoon_catalog::validate_slug(&body.slug)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            let queue = queue(&state)?;
            let (uploads, maker) = state
                .uploads
                .get()
                .ok_or_else(|| ApiError::NotFound("uploads are off on this server".into()))?;
            let view = uploads
                .get(&body.upload)
                .map_err(|e| ApiError::NotFound(e.to_string()))?;
            if view.kind != UploadKind::Master && body.lang.is_none() {
                return Err(ApiError::BadRequest(format!(
                    "upload {} is {} for a track: give its \"lang\" (a language tag, e.g. \"en\")",
                    body.upload,
                    match view.kind {
                        UploadKind::Audio => "audio",
                        _ => "subtitles",
                    }
                )));
            }
            if view.kind != UploadKind::Master && state.films.get(&body.slug).await?.is_none() {
                return Err(ApiError::NotFound(format!(
                    "there is no published film `{}` to add a track to",
                    body.slug
                )));
            }
            // Out of the uploads, kept beside them for the job's attempts.
            let dir = uploads.dir().join(CLAIMED_DIR);
            std::fs::create_dir_all(&dir)
                .map_err(|e| ApiError::Internal(format!("{}: {e}", dir.display())))?;
            let claimed = uploads
                .claim_into(&body.upload, &dir)
                .map_err(|e| match e {
                    crate::UploadError::NotFound(m) => ApiError::NotFound(m),
                    other => ApiError::Conflict(other.to_string()),
                })?;
            let job = match maker
                .job(
                    &body.slug,
                    &claimed,
                    body.lang.as_deref(),
                    body.label.as_deref(),
                )
                .await
            {
                Ok(job) => job,
                Err(refusal) => {
                    // The file failed the job's checks: nothing will ever open it.
                    remove_claimed(&claimed);
                    return Err(ApiError::Refused(refusal));
                }
            };
            // Into the media store, for a worker anywhere. If that fails the claimed file stays
            // on this node ([`sweep_claimed`] deletes it after [`CLAIMED_ORPHAN_AGE`]).
            let job = submit_staged(&state, queue, job, &body.upload, &claimed).await?;
            // The store holds the file now (on the local store, the same inode).
            remove_claimed(&claimed);
            // Submitted, as `monsoon ingest --submit` and `add-track --submit` record it: the
            // worker records `film_published` or `track_added` once it is done.
            let detail = serde_json::json!({
                "slug": job.slug, "file": claimed.filename, "kind": claimed.kind,
            });
            state
                .audit(&operator, Action::JobSubmitted, &job.id.to_string(), detail)
                .await;
            let mut response = Json(JobView::from(&job)).into_response();
            *response.status_mut() = axum::http::StatusCode::CREATED;
            Ok(response)
        }
        .await,
    )
}

/// Where claimed uploads are kept (under the uploads' directory) while they are checked and
/// put into the media store; [`sweep_claimed`] deletes what a failure there left behind.
pub const CLAIMED_DIR: &str = "claimed";

/// Deletes the claimed copy of an upload that no job will read from this node.
fn remove_claimed(claimed: &ClaimedMaster) {
    if let Err(e) = std::fs::remove_file(&claimed.path) {
        tracing::warn!(file = %claimed.path.display(), error = %e, "cannot delete a claimed upload");
    }
}

/// Submits `job` for the claimed upload `upload`, with the file put into the media store
/// first ([`stage`]); if the queue refuses it, the store's copy goes again.
async fn submit_staged(
    state: &AppState,
    queue: &dyn JobQueue,
    mut job: monsoon_catalog::NewJob,
    upload: &str,
    claimed: &ClaimedMaster,
) -> Result<monsoon_catalog::Job, ApiError> {
    let incoming = stage(state, upload, claimed).await?;
    job.options["incoming"] =
        serde_json::to_value(&incoming).map_err(|e| ApiError::Internal(e.to_string()))?;
    match queue.submit(&job).await {
        Ok(job) => Ok(job),
        Err(e) => {
            let _ = state.media.delete_prefix(incoming.prefix()).await;
            Err(e.into())
        }
    }
}

/// A claimed file that no job of the queue's newest [`LIST`](monsoon_catalog::jobs::limits::LIST)
/// names is deleted once it has been there this long: its job could not be made (the
/// handler deletes the file itself then, unless it stopped mid-way) or is older than the
/// newest thousand — over, since workers claim the oldest first.
pub const CLAIMED_ORPHAN_AGE: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// Deletes the files of `dir` (`<uploads>/claimed/`) whose jobs are all over (done, failed or
/// cancelled): a job queued or running (a retry after a release or a take-over included)
/// keeps its file. A file no job names is deleted once it is [`CLAIMED_ORPHAN_AGE`] old (by
/// the time it was moved here). Returns the files deleted.
pub async fn sweep_claimed(
    queue: &dyn JobQueue,
    dir: &std::path::Path,
    orphan_age: std::time::Duration,
) -> Result<Vec<std::path::PathBuf>, String> {
    use std::collections::HashMap;
    use std::os::unix::fs::MetadataExt as _;

    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    let files: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    if files.is_empty() {
        return Ok(Vec::new());
    }
    // Every job's master, by path (jobs record it absolute, symbolic links resolved).
    let jobs = queue
        .list(monsoon_catalog::jobs::limits::LIST)
        .await
        .map_err(|e| format!("listing the jobs: {e}"))?;
    let mut over: HashMap<std::path::PathBuf, bool> = HashMap::new();
    for job in &jobs {
        let all_over = over
            .entry(std::path::PathBuf::from(&job.master))
            .or_insert(true);
        *all_over &= job.state.is_final();
    }
    let now = std::time::SystemTime::now();
    let mut deleted = Vec::new();
    for path in files {
        let resolved = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let named = over.get(&resolved).or_else(|| over.get(&path)).copied();
        let delete = match named {
            Some(all_over) => all_over,
            None => std::fs::metadata(&path).is_ok_and(|m| {
                // Moved here (a rename) at its change time.
                let moved = std::time::UNIX_EPOCH
                    + std::time::Duration::from_secs(u64::try_from(m.ctime()).unwrap_or(0));
                now.duration_since(moved).is_ok_and(|age| age >= orphan_age)
            }),
        };
        if !delete {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => deleted.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot delete a claimed upload")
            }
        }
    }
    Ok(deleted)
}

/// Runs [`sweep_claimed`] on `dir` every `every`, for as long as the server runs.
pub fn spawn_claimed_sweeper(
    queue: std::sync::Arc<dyn JobQueue>,
    dir: std::path::PathBuf,
    every: std::time::Duration,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match sweep_claimed(queue.as_ref(), &dir, CLAIMED_ORPHAN_AGE).await {
                Ok(deleted) => {
                    for file in deleted {
                        tracing::info!(file = %file.display(), "claimed upload deleted: its jobs are over");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "sweeping the claimed uploads failed; retrying")
                }
            }
        }
    });
}

/// A job id from the path; the error names the value and the rule.
fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "job id {:?} must be a whole number from 1 to {}",
            shown(id),
            i64::MAX
        ))
    })
}

/// The answer of `GET /admin/api/jobs/{id}/log`.
#[derive(Debug, Serialize)]
struct JobLog {
    id: i64,
    state: JobState,
    /// Oldest first, times on the queue's clock.
    lines: Vec<JobLogLine>,
}

async fn log(State(state): State<AppState>, _: Operator, Path(id): Path<String>) -> Response {
    answer(
        async {
            let id = parse_id(&id)?;
            let queue = queue(&state)?;
            let job = queue
                .get(id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("there is no job {id}")))?;
            let lines = queue.log(id).await?;
            Ok(Json(JobLog {
                id,
                state: job.state,
                lines,
            })
            .into_response())
        }
        .await,
    )
}

/// Puts claimed upload `upload` into the media store under its private incoming key,
/// streamed (a multipart upload on S3, a hard link on the local store when the uploads and
/// the media share a file system): the job then names the key, so that a worker on any
/// machine can fetch it, and nothing depends on this node's disk.
async fn stage(
    state: &AppState,
    upload: &str,
    claimed: &ClaimedMaster,
) -> Result<monsoon_catalog::Incoming, ApiError> {
    // The operator reads what failed; the server's paths go to its log only.
    let internal = |e: String| {
        tracing::error!(
            upload,
            path = %claimed.path.display(),
            error = %e,
            "a claimed upload could not be put into the media store; its file is kept"
        );
        ApiError::Internal(format!(
            "upload {upload} ({}) could not be put into the media store: {e}",
            claimed.filename
        ))
    };
    let name = claimed
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| internal("its file has no UTF-8 name".into()))?;
    let key =
        monsoon_catalog::Incoming::key_of(upload, name).map_err(|e| internal(e.to_string()))?;
    let size = std::fs::metadata(&claimed.path)
        .map_err(|e| internal(e.to_string()))?
        .len();
    state
        .media
        .put_file(&key, &claimed.path)
        .await
        .map_err(|e| internal(e.to_string()))?;
    Ok(monsoon_catalog::Incoming { key, size })
}

async fn cancel(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
) -> Response {
    answer(
        async {
            let id = parse_id(&id)?;
            let who = monsoon_catalog::jobs::Canceller {
                by: &format!("operator {}", operator.name),
                actor: &operator.name,
                detail: serde_json::json!({ "from": operator.ip.to_string() }),
            };
            let job = monsoon_catalog::jobs::cancel(
                queue(&state)?,
                state.media.as_ref(),
                state.audit.as_ref(),
                id,
                who,
            )
            .await
            .map_err(|e| match e {
                CancelError::NoJob(_) => ApiError::NotFound(e.to_string()),
                CancelError::Over { .. } => ApiError::Conflict(e.to_string()),
                CancelError::Catalog(e) => e.into(),
            })?;
            Ok(Json(JobView::from(&job)).into_response())
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The files left in `dir`, by name, sorted.
    fn names(paths: impl IntoIterator<Item = std::path::PathBuf>) -> Vec<String> {
        let mut names: Vec<String> = paths
            .into_iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn left(dir: &std::path::Path) -> Vec<String> {
        names(std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()))
    }

    #[tokio::test]
    async fn claimed_uploads_are_deleted_once_their_jobs_are_over() {
        use monsoon_catalog::jobs::conformance::job;
        use monsoon_catalog::{MemoryJobs, NewJob};
        use std::time::Duration;

        let tmp = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(tmp.path()).unwrap();
        let queue = MemoryJobs::new();
        let long = Duration::from_secs(3600);
        let new = |name: &str| {
            std::fs::write(dir.join(name), b"master").unwrap();
            NewJob {
                master: dir.join(name).display().to_string(),
                ..job("film")
            }
        };
        // Claimed oldest first: done, failed, running, then retried (released by its worker:
        // queued again, as a worker stopping leaves it).
        for name in ["done.mov", "failed.mov", "running.mov", "retried.mov"] {
            queue.submit(&new(name)).await.unwrap();
        }
        for end in [Some(JobState::Done), Some(JobState::Failed), None] {
            let claimed = queue.claim("w", long).await.unwrap().unwrap();
            if let Some(state) = end {
                let over = monsoon_catalog::Stage::Failed {
                    reason: "over".into(),
                    rule: None,
                };
                assert!(queue.finish(claimed.id, "w", state, &over).await.unwrap());
            }
        }
        let retried = queue.claim("w", long).await.unwrap().unwrap();
        let stopping = monsoon_catalog::Stage::Released { worker: "w".into() };
        assert!(queue.release(retried.id, "w", &stopping).await.unwrap());
        let cancelled = queue.submit(&new("cancelled.mov")).await.unwrap();
        assert!(queue.cancel(cancelled.id, "operator lan").await.unwrap());
        queue.submit(&new("queued.mov")).await.unwrap();
        // Named by two jobs: one over, one queued.
        let first = queue.submit(&new("shared.mov")).await.unwrap();
        assert!(queue.cancel(first.id, "operator lan").await.unwrap());
        queue.submit(&new("shared.mov")).await.unwrap();
        // Named by no job.
        std::fs::write(dir.join("orphan.mov"), b"master").unwrap();

        let deleted = sweep_claimed(&queue, &dir, long).await.unwrap();
        assert_eq!(names(deleted), ["cancelled.mov", "done.mov", "failed.mov"]);
        assert_eq!(
            left(&dir),
            [
                "orphan.mov",
                "queued.mov",
                "retried.mov",
                "running.mov",
                "shared.mov"
            ]
        );

        // The retried job finds its file, and once it is done the file goes; an orphan goes
        // once it is old enough (here at once).
        let again = queue.claim("w2", long).await.unwrap().unwrap();
        assert_eq!(again.id, retried.id);
        assert!(std::path::Path::new(&again.master).is_file());
        assert!(
            queue
                .finish(
                    again.id,
                    "w2",
                    JobState::Done,
                    &monsoon_catalog::Stage::Queued
                )
                .await
                .unwrap()
        );
        let deleted = sweep_claimed(&queue, &dir, Duration::ZERO).await.unwrap();
        assert_eq!(names(deleted), ["orphan.mov", "retried.mov"]);
        assert_eq!(left(&dir), ["queued.mov", "running.mov", "shared.mov"]);

        // No directory yet: nothing to do.
        assert!(
            sweep_claimed(&queue, &dir.join("absent"), long)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_limit_is_a_whole_number_within_its_range_and_the_error_names_it() {
        assert_eq!(parse_limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(parse_limit(Some("1")).unwrap(), 1);
        assert_eq!(parse_limit(Some("500")).unwrap(), 500);
        for bad in ["0", "501", "-1", "ten", "", "1.5", "99999999999"] {
            let message = parse_limit(Some(bad)).unwrap_err().to_string();
            assert!(
                message.contains(&format!("limit=\"{bad}\"")) && message.contains("1 to 500"),
                "{message}"
            );
        }
    }
}
