//! `monsoon ingest --submit` (records a job instead of transcoding) and `monsoon jobs` (lists
//! them, prints one's log, or cancels one). The queue lives in the catalog's database
//! (`monsoon_db::PgJobs` on PostgreSQL, shared by a cluster's workers; `monsoon_db::SqliteJobs`
//! on one machine); the workers that run the jobs are `monsoon worker` (`worker.rs`) and, on
//! one machine, the one inside `monsoon serve`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use monsoon_backends::{Backends, DataDir};
use monsoon_catalog::operators::{Action, record_with};
use monsoon_catalog::{Job, NewJob};
use serde_json::json;

use crate::ingest::IngestArgs;

#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Print the jobs as one JSON array (each job with `eta_s`) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// How many jobs, newest first (1 to 1000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Cancel job ID (queued or running: its worker stops at its next renewal).
    #[arg(long, value_name = "ID", conflicts_with = "log")]
    pub cancel: Option<i64>,
    /// Print job ID's log (its newest 200 lines, oldest first, each with its time on the
    /// database's clock; with --json, one JSON array).
    #[arg(long, value_name = "ID")]
    pub log: Option<i64>,
}

/// `monsoon ingest FILE --slug S --submit`: the same checks and probe as an ingest, then a
/// queued job.
pub async fn submit(data: &DataDir, args: IngestArgs) -> anyhow::Result<ExitCode> {
    let json_output = args.json;
    let (plan, job) =
        monsoon_ingest::jobs::submission(args.request(), monsoon_ingest::jobs::DEFAULT_ATTEMPTS)
            .await?;
    let job = queue(&data.open().await?, &job).await?;
    if json_output {
        println!(
            "{}",
            json!({"event": "submitted", "job": job.id, "slug": job.slug, "master": job.master,
                   "duration_s": plan.source.duration_s, "rungs": plan.ladder.rungs.len()})
        );
    } else {
        eprintln!(
            "submitted job {} for `{}` ({}, {:.1} s, {} rungs); a `monsoon worker` (or, \
             on one machine, `monsoon serve`) will transcode it; `monsoon jobs` shows its progress",
            job.id,
            job.slug,
            job.master,
            plan.source.duration_s,
            plan.ladder.rungs.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Queues `job`, recorded in the audit log as the command line's.
pub async fn queue(backends: &Backends, job: &NewJob) -> anyhow::Result<Job> {
    let job = backends.jobs.submit(job).await?;
    let detail = json!({ "slug": job.slug });
    let id = job.id.to_string();
    record_with(backends.audit.as_ref(), Action::JobSubmitted, &id, detail).await;
    Ok(job)
}

pub async fn run(data: &DataDir, args: JobsArgs) -> anyhow::Result<ExitCode> {
    let backends = data.open().await?;
    let queue = backends.jobs;
    if let Some(id) = args.cancel {
        let by = monsoon_catalog::operators::cli_by();
        let who = monsoon_catalog::jobs::Canceller {
            by: &by,
            actor: monsoon_catalog::operators::CLI_ACTOR,
            detail: monsoon_catalog::operators::with_cli_user(json!({})),
        };
        let media = backends.media.as_ref();
        monsoon_catalog::jobs::cancel(queue.as_ref(), media, backends.audit.as_ref(), id, who)
            .await?;
        eprintln!("job {id} cancelled");
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(id) = args.log {
        if queue.get(id).await?.is_none() {
            anyhow::bail!("there is no job {id}");
        }
        let log = queue.log(id).await.context("reading the job's log")?;
        if args.json {
            println!("{}", serde_json::to_value(&log)?);
        } else {
            print!("{}", monsoon_catalog::jobs::log_text(&log));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let jobs = queue.list(args.limit).await.context("listing jobs")?;
    if args.json {
        let jobs: Vec<serde_json::Value> = jobs
            .iter()
            .map(|job| {
                let mut value = serde_json::to_value(job).unwrap_or_default();
                value["eta_s"] = json!(job.eta_s());
                value
            })
            .collect();
        println!("{}", serde_json::Value::Array(jobs));
    } else {
        print!("{}", monsoon_catalog::jobs::table(&jobs));
    }
    Ok(ExitCode::SUCCESS)
}
