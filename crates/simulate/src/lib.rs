//! Release day against a running server (`monsoon simulate`, run by the `monsoon-simulate`
//! binary). Simulated viewers arrive
//! along the scenario's curve, watch, beat and leave; the simulator keeps its own ground
//! truth of what the server should count and, at the end, compares it with the server's
//! `/api/v1/films/<slug>/stats`. Exit status 0 only if every compared figure is equal.
//!
//! | file | what |
//! |---|---|
//! | `scenario.rs` | the scenario file, its checks, the seeded generator |
//! | `film.rs` | the film's playlists, read once before the run |
//! | `client.rs` | HTTP (direct or pooled connections), latency histograms per class |
//! | `player.rs` | one viewer's playback model: buffer, ABR, pauses, seeks, in continuous time |
//! | `viewer.rs` | one viewer on the wire: mint, proof of work, playlists, segments, heartbeats |
//! | `truth.rs` | the ground truth |
//! | `report.rs` | the comparison table, JSON and SVG |
//! | `attack.rs` | `monsoon inflate`: an attacker's script, to measure what cheating gains |
//! | `stats.rs` | `monsoon stats`: a film's live audience figures, in the terminal |

pub mod attack;
mod client;
mod film;
mod player;
mod report;
mod scenario;
pub mod stats;
mod truth;
mod viewer;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use hyper::{Method, StatusCode};
use serde::Deserialize;
use tokio::sync::watch;

use client::{Class, Conn, Http};
use report::{ClassReport, Comparison, LiveCheck, Report, Sample, Window};
use scenario::{CurveKind, Scenario};
use viewer::Ctx;

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Scenario file (TOML); see bench/scenarios/.
    #[arg(long)]
    pub scenario: PathBuf,
    /// Base URL of a running `monsoon serve`.
    #[arg(long, env = "MONSOON_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The film to watch.
    #[arg(long)]
    pub film: String,
    /// Write the report as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write the concurrency chart (SVG) here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Multiply the arrival curve's values (e.g. 0.2 rehearses peak-60k at 12,000).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Stop arrivals after this many seconds instead of the scenario's `duration_s`.
    #[arg(long)]
    pub duration_s: Option<f64>,
}

/// The figures of `/stats` the simulator compares.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct ServerStats {
    views: u64,
    concurrent_viewers: u64,
    peak_concurrent_viewers: u64,
    playing_time_s: f64,
    sessions: u64,
}

async fn server_stats(http: &Http, conn: &Conn, slug: &str) -> Result<ServerStats, String> {
    let path = format!("/api/v1/films/{slug}/stats");
    let reply = http
        .send(conn, Class::Stats, Method::GET, &path, None, true)
        .await
        .map_err(|e| e.to_string())?;
    if reply.status != StatusCode::OK {
        return Err(format!("GET {path} answered {}", reply.status));
    }
    serde_json::from_slice(&reply.body).map_err(|e| format!("GET {path}: {e}"))
}

/// Mints one session to read the server's heartbeat interval: the one rule a client can see.
/// It stays a session without beats, made before the starting figures are read.
async fn check_rules(
    http: &Http,
    conn: &Conn,
    slug: &str,
    scenario: &Scenario,
) -> anyhow::Result<()> {
    #[derive(Deserialize)]
    struct Minted {
        heartbeat_interval_s: u64,
    }
    let path = format!("/api/v1/films/{slug}/sessions");
    let reply = http
        .send(conn, Class::Mint, Method::POST, &path, None, true)
        .await
        .map_err(|e| anyhow::anyhow!("POST {path}: {e}"))?;
    if reply.status != StatusCode::CREATED {
        bail!("POST {path} answered {}", reply.status);
    }
    let minted: Minted =
        serde_json::from_slice(&reply.body).with_context(|| format!("reading POST {path}"))?;
    if minted.heartbeat_interval_s != scenario.server.heartbeat_interval_s {
        bail!(
            "the server's heartbeat_interval_s is {} but the scenario's [server] says {}; \
             the scenario's rules must equal the server's [audience] settings",
            minted.heartbeat_interval_s,
            scenario.server.heartbeat_interval_s
        );
    }
    Ok(())
}

pub async fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let mut scenario = Scenario::load(&args.scenario)?;
    if !(args.scale > 0.0 && args.scale.is_finite()) {
        bail!("--scale {} must be a positive number", args.scale);
    }
    for point in &mut scenario.arrivals.points {
        point[1] *= args.scale;
    }
    if let Some(d) = args.duration_s {
        scenario.duration_s = d;
    }
    scenario
        .check()
        .with_context(|| format!("scenario {} with the flags", args.scenario.display()))?;
    let name = args
        .scenario
        .file_stem()
        .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned());

    let http = Http::new(&args.url, &scenario.network)?;
    let film = film::FilmPlan::load(&http, &args.film)
        .await
        .with_context(|| format!("preparing film `{}` at {}", args.film, args.url))?;
    let probe = http.conn();
    check_rules(&http, &probe, &args.film, &scenario).await?;
    let baseline = server_stats(&http, &probe, &args.film)
        .await
        .map_err(|e| anyhow::anyhow!("reading the starting figures: {e}"))?;
    if baseline.concurrent_viewers > 0 {
        bail!(
            "film `{}` has {} concurrent viewers before the run; the comparison needs a quiet \
             film (wait liveness_ms = {} ms, or use another film)",
            args.film,
            baseline.concurrent_viewers,
            scenario.server.liveness_ms
        );
    }
    eprintln!(
        "simulate: {name} against {} film `{}` ({} rungs, {:.1} s of media), {:?} connections, seed {}",
        args.url,
        args.film,
        film.rungs.len(),
        film.length_ms / 1000.0,
        scenario.network.connections,
        scenario.seed
    );

    let truth = truth::Truth::new(
        scenario.server.liveness_ms,
        scenario.server.view_threshold_ms,
    );
    let ctx = Arc::new(Ctx {
        scenario,
        film,
        http,
        truth,
        leave_tickets: AtomicI64::new(0),
        outcomes: viewer::BeatOutcomes::default(),
        interval_mismatches: AtomicU64::new(0),
        tasks: AtomicI64::new(0),
    });
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let live = Arc::new(Mutex::new(LiveCheck::default()));

    let poller = tokio::spawn(poll_stats(
        ctx.clone(),
        args.film.clone(),
        baseline,
        stop.clone(),
        samples.clone(),
        live.clone(),
    ));
    let windows = Arc::new(Mutex::new(Vec::<Window>::new()));
    let progress = tokio::spawn(progress(
        ctx.clone(),
        stop.clone(),
        samples.clone(),
        windows.clone(),
    ));

    // Arrivals, then everyone leaves, then the last beats settle.
    let (end_tx, end_rx) = watch::channel(false);
    arrive(&ctx, &end_rx).await;
    let _ = end_tx.send(true);
    let settle = Instant::now() + Duration::from_secs_f64(ctx.scenario.settle_s);
    while ctx.tasks.load(Ordering::SeqCst) > 0 && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stranded = ctx.tasks.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    let _ = poller.await;
    let _ = progress.await;
    drop(end_tx);

    // The quiet moment: every viewer gone and every final beat answered.
    let mut last_error = String::new();
    let mut end = None;
    for _ in 0..30 {
        match server_stats(&ctx.http, &probe, &args.film).await {
            Ok(s) => {
                end = Some(s);
                break;
            }
            Err(e) => last_error = e,
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let end = end.ok_or_else(|| anyhow::anyhow!("reading the final figures: {last_error}"))?;
    let since = ctx.truth.now_ms();
    let quiet = ctx.truth.concurrency(since);

    let report = build_report(
        &ctx,
        &name,
        &args,
        started.elapsed().as_secs_f64(),
        baseline,
        end,
        quiet,
        stranded,
        &samples.lock().unwrap_or_else(|p| p.into_inner()),
        &windows.lock().unwrap_or_else(|p| p.into_inner()),
        &live.lock().unwrap_or_else(|p| p.into_inner()),
    );
    println!("{}", report.table());
    if let Some(path) = &args.report {
        report.write_json(path)?;
    }
    if let Some(path) = &args.plot {
        report.plot(path)?;
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Spawns viewers along the curve until `duration_s`, every 100 ms.
async fn arrive(ctx: &Arc<Ctx>, end: &watch::Receiver<bool>) {
    const TICK: Duration = Duration::from_millis(100);
    let s = &ctx.scenario;
    let start = Instant::now();
    let mut index = 0u64;
    let mut owed = 0.0f64;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let t = start.elapsed().as_secs_f64();
        if t >= s.duration_s {
            return;
        }
        let target = s.curve_at(t);
        let present = ctx.truth.active.load(Ordering::SeqCst) as f64;
        let mut wanted = match s.arrivals.curve {
            CurveKind::Concurrency => {
                // Surplus viewers leave; missing ones arrive.
                let surplus = (present - target).floor().max(0.0);
                ctx.leave_tickets.store(surplus as i64, Ordering::SeqCst);
                (target - present).max(0.0)
            }
            CurveKind::Rate => {
                owed += target * TICK.as_secs_f64();
                let n = owed.floor();
                owed -= n;
                n
            }
        };
        if s.arrivals.max_arrivals_per_s > 0.0 {
            wanted = wanted.min((s.arrivals.max_arrivals_per_s * TICK.as_secs_f64()).ceil());
        }
        if s.arrivals.max_sessions > 0 {
            wanted = wanted.min(s.arrivals.max_sessions.saturating_sub(index) as f64);
            if index >= s.arrivals.max_sessions && ctx.truth.active.load(Ordering::SeqCst) == 0 {
                return;
            }
        }
        for _ in 0..wanted as u64 {
            ctx.tasks.fetch_add(1, Ordering::SeqCst);
            ctx.truth.active.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(viewer::watch(ctx.clone(), index, end.clone()));
            index += 1;
        }
    }
}

/// Polls `/stats` every `stats_every_s`: the live comparison and the chart's series.
async fn poll_stats(
    ctx: Arc<Ctx>,
    slug: String,
    baseline: ServerStats,
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    live: Arc<Mutex<LiveCheck>>,
) {
    let conn = ctx.http.conn();
    let every = Duration::from_secs_f64(ctx.scenario.stats_every_s);
    while !stop.load(Ordering::SeqCst) {
        let since = ctx.truth.now_ms();
        let answer = server_stats(&ctx.http, &conn, &slug).await;
        let range = ctx.truth.concurrency(since);
        let server = answer.ok().map(|s| {
            s.concurrent_viewers
                .saturating_sub(baseline.concurrent_viewers)
        });
        {
            let mut live = live.lock().unwrap_or_else(|p| p.into_inner());
            live.polls += 1;
            match server {
                None => live.unanswered += 1,
                Some(v) if v < range.low || v > range.high => {
                    live.outside += 1;
                    live.worst = live
                        .worst
                        .max(range.low.saturating_sub(v))
                        .max(v.saturating_sub(range.high));
                }
                Some(_) => {}
            }
        }
        samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Sample {
                t_s: since as f64 / 1000.0,
                server,
                low: range.low,
                high: range.high,
                viewers: ctx.truth.active.load(Ordering::SeqCst),
            });
        tokio::time::sleep(every).await;
    }
}

/// The progress line on stderr, and its window in the report.
async fn progress(
    ctx: Arc<Ctx>,
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    windows: Arc<Mutex<Vec<Window>>>,
) {
    let every = Duration::from_secs_f64(ctx.scenario.progress_every_s);
    let metrics = ctx.http.metrics.clone();
    let mut last_requests = 0;
    let mut last_errors = 0;
    let mut last = Instant::now();
    let started = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(every).await;
        let requests = metrics.requests();
        let rate = (requests - last_requests) as f64 / last.elapsed().as_secs_f64();
        last_requests = requests;
        last = Instant::now();
        let errors = metrics.errors();
        let window: BTreeMap<String, f64> = [
            Class::Mint,
            Class::Heartbeat,
            Class::Playlist,
            Class::Segment,
        ]
        .iter()
        .map(|c| (c.name().to_owned(), metrics.class(*c).take_window().p99_ms))
        .collect();
        let p99: Vec<String> = window
            .iter()
            .map(|(class, ms)| format!("{class} {ms:.1}"))
            .collect();
        windows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Window {
                t_s: started.elapsed().as_secs_f64(),
                requests_per_s: rate,
                errors: errors - last_errors,
                p99_ms: window,
            });
        last_errors = errors;
        let shed: u64 = Class::ALL
            .iter()
            .map(|c| metrics.class(*c).shed.load(Ordering::Relaxed))
            .sum();
        let server = samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last()
            .map_or_else(
                || "-".to_owned(),
                |s| {
                    format!(
                        "{} (truth {}..{})",
                        s.server.map_or_else(|| "?".to_owned(), |v| v.to_string()),
                        s.low,
                        s.high
                    )
                },
            );
        eprintln!(
            "[{:>5.0}s] viewers {} sessions {} views {} | {:.0} req/s errors {} shed {} | p99 ms {} | server concurrent {}",
            ctx.truth.now_ms() as f64 / 1000.0,
            ctx.truth.active.load(Ordering::SeqCst),
            ctx.truth.sessions.load(Ordering::Relaxed),
            ctx.truth.views.load(Ordering::Relaxed),
            rate,
            errors,
            shed,
            p99.join(", "),
            server
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn build_report(
    ctx: &Ctx,
    name: &str,
    args: &SimulateArgs,
    wall_s: f64,
    baseline: ServerStats,
    end: ServerStats,
    quiet: truth::Concurrency,
    stranded: i64,
    samples: &[Sample],
    windows: &[Window],
    live: &LiveCheck,
) -> Report {
    let truth = &ctx.truth;
    let s = &ctx.scenario;
    let views = truth.views.load(Ordering::SeqCst);
    let play_ms = truth.play_ms.load(Ordering::SeqCst);
    let sessions = truth.sessions.load(Ordering::SeqCst);
    let unconfirmed = truth.unconfirmed_sessions.load(Ordering::SeqCst);
    // The server sums playing time in ms and divides by 1000 as f64: round the difference of
    // two such sums back to whole ms.
    let server_play_ms = ((end.playing_time_s - baseline.playing_time_s) * 1000.0).round();
    let server_sessions = end.sessions.saturating_sub(baseline.sessions);
    let mut comparison = vec![
        Comparison {
            figure: "views".into(),
            server: (end.views - baseline.views.min(end.views)) as f64,
            truth: views as f64,
            difference: end.views as f64 - baseline.views as f64 - views as f64,
            rule: "exact",
        },
        Comparison {
            figure: "playing_time_s".into(),
            server: server_play_ms / 1000.0,
            truth: play_ms as f64 / 1000.0,
            difference: (server_play_ms - play_ms as f64) / 1000.0,
            rule: "exact to the ms",
        },
    ];
    let cc = end.concurrent_viewers;
    comparison.push(Comparison {
        figure: "concurrent (at end)".into(),
        server: cc as f64,
        truth: quiet.low as f64,
        difference: cc as f64 - (cc.clamp(quiet.low, quiet.high.max(quiet.low))) as f64,
        rule: "exact once quiet",
    });
    // A session whose beats' answers were all lost may still exist on the server.
    let extra = server_sessions as f64 - sessions as f64;
    comparison.push(Comparison {
        figure: "sessions".into(),
        server: server_sessions as f64,
        truth: sessions as f64,
        difference: if (0.0..=unconfirmed as f64).contains(&extra) {
            0.0
        } else {
            extra
        },
        rule: "exact, + unconfirmed sessions",
    });

    let mut requests = BTreeMap::new();
    for class in Class::ALL {
        let m = ctx.http.metrics.class(class);
        requests.insert(
            class.name().to_owned(),
            ClassReport {
                requests: m.requests.load(Ordering::SeqCst),
                errors: m.errors.load(Ordering::SeqCst),
                shed: m.shed.load(Ordering::SeqCst),
                bytes: m.bytes.load(Ordering::SeqCst),
                latency: m.total(),
            },
        );
    }
    let o = &ctx.outcomes;
    let beats: BTreeMap<String, u64> = [
        ("accepted", &o.accepted),
        ("duplicate", &o.duplicate),
        ("too-soon", &o.too_soon),
        ("implausible", &o.implausible),
        ("closed", &o.closed),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.load(Ordering::SeqCst)))
    .collect();

    // The hold: the second half of the time the curve spends at its top.
    let top = s.arrivals.points.iter().map(|p| p[1]).fold(0.0, f64::max);
    let at_top: Vec<&Sample> = samples
        .iter()
        .filter(|x| x.t_s < s.duration_s && s.curve_at(x.t_s) >= top * 0.999)
        .collect();
    let held_watching = (s.arrivals.curve == CurveKind::Concurrency && at_top.len() >= 2)
        .then(|| at_top[at_top.len() / 2..].iter().map(|x| x.low).min())
        .flatten();

    let lost = truth.lost_final_beats.load(Ordering::SeqCst);
    let mismatches = ctx.interval_mismatches.load(Ordering::SeqCst);
    let ok = comparison.iter().all(|c| c.difference == 0.0)
        && live.outside == 0
        && lost == 0
        && mismatches == 0
        && stranded == 0
        && sessions > 0;
    if stranded > 0 {
        eprintln!(
            "simulate: {stranded} viewers had not left {} s after the end",
            s.settle_s
        );
    }
    Report {
        scenario: name.to_owned(),
        description: s.description.clone(),
        url: args.url.clone(),
        film: args.film.clone(),
        connections: s.network.connections,
        pool_size: s.network.pool_size,
        segment_share: s.viewing.segment_share,
        wall_s,
        sessions,
        peak_viewers: samples.iter().map(|x| x.viewers).max().unwrap_or(0),
        peak_watching: samples.iter().map(|x| x.low).max().unwrap_or(0),
        held_watching,
        server_peak_concurrent: end.peak_concurrent_viewers,
        comparison,
        live: live.clone(),
        requests,
        beats,
        unconfirmed_sessions: unconfirmed,
        lost_final_beats: lost,
        stranded_viewers: stranded,
        simulator_cpu_s: own_cpu_s(),
        interval_mismatches: mismatches,
        series: samples.to_vec(),
        windows: windows.to_vec(),
        ok,
    }
}

/// CPU seconds this process used (user + system, from /proc), for the report.
fn own_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // The kernel's USER_HZ is 100 on every Linux architecture this runs on.
    Some(ticks / 100.0)
}
