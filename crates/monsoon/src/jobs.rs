//! `monsoon ingest --submit` (records a job instead of transcoding) and `monsoon jobs` (lists
//! them, prints one's log, or cancels one). The queue lives in the catalog's database (`monsoon_db::PgJobs` on
//! PostgreSQL, shared by a cluster's workers; `monsoon_db::SqliteJobs` on one machine); the
//! workers that run the jobs are `monsoon worker` (`worker.rs`) and, on one machine, the one
//! inside `monsoon serve`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use monsoon_catalog::{Job, JobState};
use serde_json::json;

use crate::ingest::IngestArgs;
use monsoon_backends::DataDir;

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
    let backends = data.open(&Default::default()).await?;
    let job = backends.jobs.submit(&job).await?;
    crate::operator::record_with(
        backends.audit.as_ref(),
        monsoon_catalog::Action::JobSubmitted,
        &job.id.to_string(),
        json!({ "slug": job.slug }),
    )
    .await;
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

pub async fn run(data: &DataDir, args: JobsArgs) -> anyhow::Result<ExitCode> {
    let backends = data.open(&Default::default()).await?;
    let queue = backends.jobs;
    if let Some(id) = args.cancel {
        let user = std::env::var("USER").unwrap_or_default();
        let by = if user.is_empty() {
            monsoon_catalog::operators::CLI_ACTOR.to_owned()
        } else {
            format!("{} ({user})", monsoon_catalog::operators::CLI_ACTOR)
        };
        if queue.cancel(id, &by).await? {
            // A queued job never reaches a worker: its uploaded file, if any, goes now.
            if let Some(job) = queue.get(id).await?
                && let Err(e) =
                    monsoon_catalog::Incoming::remove_if_over(&job, backends.media.as_ref()).await
            {
                eprintln!("cannot remove the cancelled job's uploaded file: {e}");
            }
            crate::operator::record(
                backends.audit.as_ref(),
                monsoon_catalog::Action::JobCancelled,
                &id.to_string(),
            )
            .await;
            eprintln!("job {id} cancelled");
            return Ok(ExitCode::SUCCESS);
        }
        let state = queue.get(id).await?.map(|job| job.state);
        anyhow::bail!(match state {
            Some(state) => format!(
                "job {id} is {}: only a queued or running job can be cancelled",
                state.as_str()
            ),
            None => format!("there is no job {id}"),
        });
    }
    if let Some(id) = args.log {
        if queue.get(id).await?.is_none() {
            anyhow::bail!("there is no job {id}");
        }
        let log = queue.log(id).await.context("reading the job's log")?;
        if args.json {
            println!("{}", serde_json::to_value(&log)?);
        } else {
            for line in &log {
                println!(
                    "{}  {}",
                    line.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    line.line.replace(['\n', '\r'], " ")
                );
            }
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
        print!("{}", table(&jobs));
    }
    Ok(ExitCode::SUCCESS)
}

/// The jobs as an aligned text table.
fn table(jobs: &[Job]) -> String {
    let mut rows = vec![
        [
            "ID", "SLUG", "STATE", "DONE", "SPEED", "ETA", "TRIES", "MESSAGE",
        ]
        .map(String::from),
    ];
    for job in jobs {
        let running = job.state == JobState::Running;
        rows.push([
            job.id.to_string(),
            job.slug.clone(),
            job.state.as_str().to_owned(),
            format!("{:.1}%", job.percent),
            if running && job.speed > 0.0 {
                format!("{:.2}×", job.speed)
            } else {
                "-".into()
            },
            job.eta_s().map_or("-".into(), clock),
            format!("{}/{}", job.attempts, job.max_attempts),
            job.message.replace(['\n', '\r'], " "),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        for (cell, width) in row.iter().zip(&widths) {
            out.push_str(cell);
            out.push_str(&" ".repeat(width - cell.chars().count() + 2));
        }
        out.push_str(&row[7]);
        out.push('\n');
    }
    out
}

/// Seconds as `h:mm:ss`.
fn clock(seconds: f64) -> String {
    let s = seconds.round().clamp(0.0, 359_999.0) as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_aligns_and_shows_the_eta_of_running_jobs() {
        assert_eq!(clock(3725.4), "1:02:05");
        let mut job = Job {
            id: 7,
            slug: "mua-do".into(),
            master: "/films/mua-do.mov".into(),
            film_toml: None,
            options: json!({}),
            duration_s: 600.0,
            state: JobState::Running,
            attempts: 1,
            max_attempts: 3,
            lease_owner: Some("host:1".into()),
            lease_expires_at: None,
            percent: 50.0,
            speed: 2.0,
            message: "transcoding".into(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            started_at: None,
            finished_at: None,
        };
        let text = table(std::slice::from_ref(&job));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[1].contains("50.0%") && lines[1].contains("2.00×"),
            "{text}"
        );
        // 300 s of film left at 2× real time.
        assert!(lines[1].contains("0:02:30"), "{text}");
        assert_eq!(lines[0].find("STATE"), lines[1].find("running"));
        job.state = JobState::Done;
        assert!(!table(&[job]).contains("0:02:30"));
    }
}
