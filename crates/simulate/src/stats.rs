//! `monsoon stats SLUG` (`monsoon-simulate stats`): a running server's live audience figures,
//! in the terminal. A client of the public API like the rest of this crate; a blocking `ureq`
//! request is all one question needs, without the simulator's runtime and pools.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::Value;

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The film.
    pub slug: String,
    /// Base URL of a running `monsoon serve`.
    #[arg(long, env = "MONSOON_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Print the JSON as the API returns it.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &StatsArgs) -> anyhow::Result<ExitCode> {
    let url = format!(
        "{}/api/v1/films/{}/stats",
        args.url.trim_end_matches('/'),
        args.slug
    );
    let text = match ureq::get(&url).call() {
        Ok(mut response) => response.body_mut().read_to_string()?,
        Err(ureq::Error::StatusCode(404)) => {
            anyhow::bail!("no film `{}` at {}", args.slug, args.url)
        }
        Err(e) => return Err(e).with_context(|| format!("asking {url}")),
    };
    if args.json {
        println!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    let stats: Value = serde_json::from_str(&text).context("reading the stats")?;
    let number = |key: &str| stats[key].as_f64().unwrap_or(0.0);
    let opt_ms = |key: &str| {
        stats[key]
            .as_u64()
            .map_or("—".to_owned(), |ms| format!("{ms} ms"))
    };
    let peak_at = stats["peak_at"]
        .as_i64()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or("—".to_owned(), |t| {
            t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
        });
    let rows = [
        ("watching now", format!("{}", number("concurrent_viewers"))),
        (
            "peak",
            format!("{} at {peak_at}", number("peak_concurrent_viewers")),
        ),
        ("views", format!("{}", number("views"))),
        ("views, last 24 h", format!("{}", number("views_24h"))),
        (
            "unique viewers, 24 h",
            format!("{}", number("unique_viewers_24h")),
        ),
        (
            "playing time",
            format!("{:.1} h", number("playing_time_s") / 3600.0),
        ),
        (
            "completion",
            format!("{:.1} %", number("completion_rate") * 100.0),
        ),
        (
            "startup p50 / p95",
            format!(
                "{} / {}",
                opt_ms("startup_ms_p50"),
                opt_ms("startup_ms_p95")
            ),
        ),
        (
            "rebuffering",
            format!("{:.2} %", number("rebuffer_ratio") * 100.0),
        ),
        (
            "exits before start",
            format!("{}", number("exits_before_start")),
        ),
        ("failures", format!("{}", number("failures"))),
        (
            "suspicious (apart)",
            format!("{}", number("suspicious_sessions")),
        ),
    ];
    println!("{}", args.slug);
    for (label, value) in rows {
        println!("  {label:<22} {value}");
    }
    Ok(ExitCode::SUCCESS)
}
