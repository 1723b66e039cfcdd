//! `monsoon inflate`: an attacker's script, written as well as we can write one, so that what
//! it manages to add to a film's audience figures is measured rather than guessed
//! (`bench/inflate.sh`, `docs/SECURITY.md`).
//!
//! It runs on one thread (a current-thread runtime; the proofs of work are solved on it), so
//! `taskset -c 1 monsoon inflate …` is one core's worth of cheating. Strategies:
//!
//! - `single-claim` — the probe's attack: mint, solve, wait until a 30 s claim is plausible,
//!   send one beat claiming the whole view;
//! - `one-viewer` — every session under one viewer id, each playing by the rules;
//! - `protocol` — a fresh viewer id per session and every rule followed: a first beat at
//!   once, then one every interval with playing time growing as fast as the server allows,
//!   for as long as the run lasts. The most a script can get without real phones.
//!
//! It prints what it did as JSON; the server's `/stats` before and after say what it gained.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::{Args, ValueEnum};
use hyper::{Method, StatusCode};
use serde::Deserialize;

use super::client::{Class, Http};
use super::scenario::Network;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    SingleClaim,
    OneViewer,
    Protocol,
}

#[derive(Debug, Args)]
pub struct InflateArgs {
    /// Base URL of a running `monsoon serve`.
    #[arg(long, env = "MONSOON_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The film whose figures to inflate.
    #[arg(long)]
    pub film: String,
    #[arg(long, value_enum)]
    pub strategy: Strategy,
    /// How long to attack, seconds.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// The server's view threshold, ms (its `[audience] view_threshold_ms`).
    #[arg(long, default_value_t = 30_000)]
    pub view_threshold_ms: u64,
}

#[derive(Deserialize)]
struct Minted {
    session_id: String,
    token: String,
    heartbeat_interval_s: u64,
    #[serde(default)]
    proof_bits: u32,
}

struct Fake {
    minted: Minted,
    proof: String,
    started: Instant,
    seq: u64,
}

#[derive(Debug, Default, serde::Serialize)]
struct Tally {
    strategy: Option<Strategy>,
    seconds: f64,
    sessions: u64,
    proof_bits: u32,
    /// CPU (this thread's wall time) spent solving proofs, seconds.
    proof_s: f64,
    beats: u64,
    accepted: u64,
    refused: u64,
    /// Beats the server answered with something else than `accepted` (`implausible`, …).
    not_counted: u64,
}

/// The server's plausibility rule (`docs/AUDIENCE.md`): playing time at most wall-clock time
/// since the mint × 1.05 + 1 s. A cheater claims just under it.
fn plausible_ms(since_mint: Duration) -> u64 {
    (since_mint.as_millis() as f64 * 1.04) as u64 + 900
}

pub fn run(args: InflateArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(attack(args))
}

async fn attack(args: InflateArgs) -> anyhow::Result<ExitCode> {
    let network: Network = toml::from_str(
        "connections = \"pooled\"\npool_size = 16\nrequest_timeout_s = 10\n\
         [[profiles]]\nname = \"x\"\nshare = 1\nkbps = 1000\nrtt_ms = 1\n",
    )
    .context("the attacker's network")?;
    let http = Http::new(&args.url, &network)?;
    let conn = http.conn();
    let mint_path = format!("/api/v1/films/{}/sessions", args.film);
    let viewer = serde_json::json!({ "viewer_id": "one-viewer-of-many" }).to_string();
    let start = Instant::now();
    let end = start + Duration::from_secs(args.seconds);
    let mut tally = Tally {
        strategy: Some(args.strategy),
        ..Tally::default()
    };
    let mut fakes: Vec<Fake> = Vec::new();
    // (when, which fake): the next beat due.
    let mut due: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if let Some(Reverse((at, i))) = due.peek().copied()
            && at <= now
        {
            due.pop();
            let fake = &mut fakes[i];
            fake.seq += 1;
            let since = fake.started.elapsed();
            let play_ms = if args.strategy == Strategy::SingleClaim {
                args.view_threshold_ms
            } else {
                plausible_ms(since)
            };
            let body = format!(
                r#"{{"token":"{}","proof":"{}","seq":{},"state":"playing","play_ms":{play_ms},"startup_ms":400,"height":234}}"#,
                fake.minted.token, fake.proof, fake.seq
            );
            let path = format!("/api/v1/sessions/{}/heartbeat", fake.minted.session_id);
            tally.beats += 1;
            match http
                .send(
                    &conn,
                    Class::Heartbeat,
                    Method::POST,
                    &path,
                    Some(Bytes::from(body)),
                    false,
                )
                .await
            {
                Ok(r) if r.status == StatusCode::NO_CONTENT => {
                    if r.beat.as_deref() == Some("accepted") {
                        tally.accepted += 1;
                    } else {
                        tally.not_counted += 1;
                    }
                }
                _ => tally.refused += 1,
            }
            if args.strategy != Strategy::SingleClaim {
                let interval = Duration::from_secs(fake.minted.heartbeat_interval_s);
                due.push(Reverse((Instant::now() + interval, i)));
            }
            continue;
        }
        // Nothing due: one more session.
        let body = match args.strategy {
            Strategy::OneViewer => Some(Bytes::from(viewer.clone())),
            _ => None,
        };
        let reply = http
            .send(&conn, Class::Mint, Method::POST, &mint_path, body, true)
            .await;
        let Ok(reply) = reply else { continue };
        if reply.status != StatusCode::CREATED {
            anyhow::bail!("minting answered {}", reply.status);
        }
        let minted: Minted = serde_json::from_slice(&reply.body).context("the mint's answer")?;
        let solving = Instant::now();
        let proof = monsoon_audience::proof::solve(&minted.session_id, minted.proof_bits);
        tally.proof_s += solving.elapsed().as_secs_f64();
        tally.proof_bits = minted.proof_bits;
        tally.sessions += 1;
        let first = match args.strategy {
            // Wait until a whole view's claim is plausible, then claim it at once.
            Strategy::SingleClaim => {
                Instant::now() + Duration::from_millis(args.view_threshold_ms * 100 / 104)
            }
            _ => Instant::now(),
        };
        due.push(Reverse((first, fakes.len())));
        fakes.push(Fake {
            minted,
            proof,
            started: Instant::now(),
            seq: 0,
        });
    }
    tally.seconds = start.elapsed().as_secs_f64();
    println!("{}", serde_json::to_string(&tally)?);
    Ok(ExitCode::SUCCESS)
}
