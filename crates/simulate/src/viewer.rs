//! One simulated viewer on the wire: mints a session, solves its proof of work, fetches the
//! playlists and (for a share of viewers) the segments, sends heartbeats as the player does
//! (`docs/AUDIENCE.md`), and leaves. What it plays is the model of `player.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde::Deserialize;
use tokio::sync::watch;

use super::client::{Class, Conn, Http};
use super::film::FilmPlan;
use super::player::{
    DEFAULT_ESTIMATE_KBPS, Download, Fetch, Leave, Player, State, choose_rung, next_gap,
};
use super::scenario::{Profile, Rng, Scenario};
use super::truth::{Slot, Truth};

/// What every viewer shares.
#[derive(Debug)]
pub struct Ctx {
    pub scenario: Scenario,
    pub film: FilmPlan,
    pub http: Http,
    pub truth: Truth,
    /// Viewers the controller asks to leave (the concurrency curve went down).
    pub leave_tickets: AtomicI64,
    /// What the server said of each heartbeat (`X-Monsoon-Beat`).
    pub outcomes: BeatOutcomes,
    /// Minted sessions whose heartbeat interval differs from the scenario's rules.
    pub interval_mismatches: AtomicU64,
    /// Viewer tasks not yet finished.
    pub tasks: AtomicI64,
}

/// Heartbeat outcomes as the server labels them.
#[derive(Debug, Default)]
pub struct BeatOutcomes {
    pub accepted: AtomicU64,
    pub duplicate: AtomicU64,
    pub too_soon: AtomicU64,
    pub implausible: AtomicU64,
    pub closed: AtomicU64,
}

impl BeatOutcomes {
    fn count(&self, label: Option<&str>) {
        let counter = match label {
            Some("accepted") => &self.accepted,
            Some("duplicate") => &self.duplicate,
            Some("too-soon") => &self.too_soon,
            Some("implausible") => &self.implausible,
            _ => &self.closed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Deserialize)]
struct Minted {
    session_id: String,
    token: String,
    heartbeat_interval_s: u64,
    /// The proof of work the first beat must carry (`docs/SECURITY.md`).
    #[serde(default)]
    proof_bits: u32,
}

/// Decrements a counter when dropped, so a viewer is counted out however its task ends.
struct CountedIn<'a>(&'a AtomicI64);

impl Drop for CountedIn<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One viewer's session on the wire.
struct Session {
    conn: Conn,
    slot: Arc<Slot>,
    path: String,
    token: String,
    seq: u64,
    /// The `seq` of the final beat, kept across its retries.
    final_seq: Option<u64>,
    acked_play_ms: u64,
    backoff: Duration,
    /// The session's proof of work, as a JSON string, sent with every beat (the server needs
    /// it on the first it accepts).
    proof: String,
    /// The first beat, resent byte for byte until acknowledged: the server's view counts
    /// playing time from the first beat it accepted, so both sides must agree on which.
    first: Option<FirstBeat>,
    /// A beat of this session was acknowledged.
    confirmed: bool,
}

/// The first beat as sent: its body and what the ground truth needs of it.
struct FirstBeat {
    body: Bytes,
    watching: bool,
    play_ms: u64,
}

/// Runs viewer `index` from arrival to departure. The controller counted it in `tasks` and
/// `truth.active` before spawning it.
pub async fn watch(ctx: Arc<Ctx>, index: u64, mut end: watch::Receiver<bool>) {
    let _task = CountedIn(&ctx.tasks);
    let mut present = Some(CountedIn(&ctx.truth.active));
    let scenario = &ctx.scenario;
    let mut rng = Rng::new(scenario.seed, index);
    let profile: Profile = scenario.pick_profile(&mut rng).clone();
    let real_segments = rng.f64() < scenario.viewing.segment_share;
    let viewing = &scenario.viewing;
    let intent = Instant::now();
    let conn = ctx.http.conn();

    let Some(minted) = mint(&ctx, &conn).await else {
        return;
    };
    if minted.heartbeat_interval_s != scenario.server.heartbeat_interval_s
        || scenario
            .server
            .proof_bits
            .is_some_and(|bits| bits != minted.proof_bits)
    {
        ctx.interval_mismatches.fetch_add(1, Ordering::Relaxed);
    }
    // What a player computes in the background while the film loads.
    let proof = {
        let (id, bits) = (minted.session_id.clone(), minted.proof_bits);
        tokio::task::spawn_blocking(move || monsoon_audience::proof::solve(&id, bits))
            .await
            .unwrap_or_default()
    };
    let mut session = Session {
        conn: conn.clone(),
        slot: ctx.truth.session(),
        path: format!("/api/v1/sessions/{}/heartbeat", minted.session_id),
        token: serde_json::to_string(&minted.token).unwrap_or_default(),
        seq: 0,
        final_seq: None,
        acked_play_ms: 0,
        backoff: Duration::ZERO,
        proof: serde_json::to_string(&proof).unwrap_or_default(),
        first: None,
        confirmed: false,
    };

    let film_ms = if viewing.film_s > 0.0 {
        viewing.film_s * 1000.0
    } else {
        ctx.film.length_ms
    };
    let mut p = Player {
        state: State::Startup,
        at: intent,
        intent,
        buffer_ms: 0.0,
        playhead_ms: 0.0,
        play_ms: 0.0,
        rebuffer_ms: 0.0,
        rebuffer_count: 0,
        startup_ms: 0,
        seek_ms: 0.0,
        bytes: 0,
        rung: 0,
        estimate_kbps: DEFAULT_ESTIMATE_KBPS,
        watch_ms: viewing.watch_s.sample(&mut rng) * 1000.0,
        film_ms,
        pause_at_ms: next_gap(&mut rng, viewing.pauses_per_hour),
        pause_until: None,
        seek_at_ms: next_gap(&mut rng, viewing.seeks_per_hour),
        next_segment: 0,
        download: None,
        downloads: 0,
        init_fetched: None,
        retry_download_at: None,
        first_frame: false,
        leave: None,
    };

    // The multivariant playlist, then the media playlist of the starting rung.
    let rung0 = choose_rung(&ctx.film, p.estimate_kbps);
    for path in [&ctx.film.master, &ctx.film.rungs[rung0].track.playlist] {
        if !fetch_retrying(&ctx, &conn, Class::Playlist, path).await {
            p.leave = Some(Leave::Error);
        }
    }

    let interval = Duration::from_secs(scenario.server.heartbeat_interval_s);
    let mut next_beat: Option<Instant> = None;
    let mut leave_at: Option<Instant> = None;
    let mut fetch: Option<(u64, Fetch)> = None;
    while p.leave.is_none() {
        let now = Instant::now();
        p.advance(now, &ctx, &mut rng);
        if p.leave.is_some() {
            break;
        }
        // At the end of the run viewers leave over one heartbeat interval, not all in the
        // same millisecond (a burst no audience produces).
        if *end.borrow() && leave_at.is_none() {
            leave_at = Some(now + interval.mul_f64(rng.f64()));
        }
        if leave_at.is_some_and(|at| now >= at) || take_ticket(&ctx.leave_tickets) {
            p.leave = Some(Leave::Ended);
            break;
        }
        // A seek drops the download in flight.
        if fetch
            .as_ref()
            .is_some_and(|(id, _)| p.download.as_ref().is_none_or(|d| d.id != *id))
        {
            fetch = None;
        }
        // First beat at first frame, then every interval ± 10 %.
        let due = if p.first_frame {
            p.first_frame = false;
            true
        } else {
            next_beat.is_some_and(|at| now >= at)
        };
        if due {
            let acked = beat(&ctx, &mut session, &p, p.state.wire(), false).await;
            let jitter = interval.mul_f64(0.9 + 0.2 * rng.f64());
            let wait = if acked {
                session.backoff = Duration::ZERO;
                jitter
            } else {
                jitter.max(session.backoff)
            };
            next_beat = Some(Instant::now() + wait);
            continue;
        }
        if p.retry_download_at.is_some_and(|at| now >= at) {
            p.retry_download_at = None;
        }
        if p.download.is_none()
            && p.retry_download_at.is_none()
            && p.buffer_ms < viewing.buffer_target_s * 1000.0
            && p.playhead_ms + p.buffer_ms < p.film_ms
        {
            fetch = start_download(&ctx, &conn, &mut p, &profile, &mut rng, real_segments, now);
        }
        let wake = [p.next_event(), next_beat, leave_at]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + interval)
            .min(now + interval);
        tokio::select! {
            () = tokio::time::sleep_until(wake.into()) => {}
            result = async { fetch.as_mut().map(|(_, f)| f.as_mut()).expect("guarded").await },
                if fetch.is_some() => {
                fetch = None;
                match result {
                    Ok(bytes) => {
                        if let Some(d) = p.download.as_mut() {
                            d.bytes = Some(bytes);
                            d.fetched = Some(Instant::now());
                        }
                    }
                    Err(_) => {
                        p.download = None;
                        p.retry_download_at = Some(Instant::now() + Duration::from_secs(1));
                    }
                }
            }
            _ = end.changed() => {}
        }
    }

    // Leaving: no longer present for the controller; the final beat (sendBeacon on page
    // hide) is exempt from the gap rule and retried until acknowledged.
    present.take();
    p.advance(Instant::now(), &ctx, &mut rng);
    let state = match p.leave {
        Some(Leave::Error) => "error",
        _ => "ended",
    };
    let deadline = Instant::now() + Duration::from_secs_f64(ctx.scenario.network.retry_for_s);
    let mut pause = Duration::from_millis(500);
    loop {
        if beat(&ctx, &mut session, &p, state, true).await {
            // Acknowledged: the final beat, or a first beat still waiting for its answer,
            // after which the final one goes at once.
            if session.final_seq.is_some() {
                break;
            }
            continue;
        }
        if Instant::now() >= deadline {
            ctx.truth.lost_final_beats.fetch_add(1, Ordering::Relaxed);
            break;
        }
        tokio::time::sleep(pause.max(session.backoff)).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
    ctx.truth.close(&session.slot);
}

/// Takes one of the controller's leave tickets, if any is left.
fn take_ticket(tickets: &AtomicI64) -> bool {
    tickets
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n > 0).then_some(n - 1)
        })
        .is_ok()
}

/// Starts the next segment's download; returns the real fetch for a sampled viewer.
fn start_download(
    ctx: &Arc<Ctx>,
    conn: &Conn,
    p: &mut Player,
    profile: &Profile,
    rng: &mut Rng,
    real: bool,
    now: Instant,
) -> Option<(u64, Fetch)> {
    let film = &ctx.film;
    let rung = choose_rung(film, p.estimate_kbps);
    let segments = &film.rungs[rung].track.segments;
    let index = (p.next_segment % segments.len() as u64) as usize;
    let media_ms = segments[index].ms;
    let kbps = profile.kbps * (profile.sigma * rng.normal()).exp();
    let id = p.downloads + 1 + p.next_segment * 1_000_000;
    let modelled = |bitrate: u64| (bitrate as f64 * media_ms / 8_000.0) as u64;
    let mut download = Download {
        id,
        started: now,
        media_ms,
        kbps,
        rtt_ms: profile.rtt_ms,
        rung,
        bytes: None,
        fetched: None,
    };
    if !real {
        let audio = film.rungs[rung]
            .audio
            .as_ref()
            .map_or(0, |a| modelled(a.bitrate));
        download.bytes = Some(modelled(film.rungs[rung].track.bitrate) + audio);
        download.fetched = Some(now);
        p.download = Some(download);
        return None;
    }
    // A real player fetches the init segment of a rung before its first media segment, and
    // the audio segment beside the video one.
    let audio = film.rungs[rung].audio.as_ref();
    let mut paths = Vec::with_capacity(4);
    if p.init_fetched != Some(rung) {
        paths.extend(film.rungs[rung].track.init.clone());
        paths.extend(audio.and_then(|a| a.init.clone()));
        p.init_fetched = Some(rung);
    }
    paths.push(segments[index].path.clone());
    if let Some(audio) = audio {
        let i = (p.next_segment % audio.segments.len() as u64) as usize;
        paths.push(audio.segments[i].path.clone());
    }
    p.download = Some(download);
    let ctx = Arc::clone(ctx);
    let conn = conn.clone();
    let fetch: Fetch = Box::pin(async move {
        let mut total = 0;
        for path in paths {
            let reply = ctx
                .http
                .send(&conn, Class::Segment, Method::GET, &path, None, false)
                .await
                .map_err(|e| e.to_string())?;
            if !reply.status.is_success() {
                return Err(format!("GET {path}: {}", reply.status));
            }
            total += reply.len;
        }
        Ok(total)
    });
    Some((id, fetch))
}

/// GETs `path`, retrying failures for `retry_for_s`; true once it succeeded.
async fn fetch_retrying(ctx: &Ctx, conn: &Conn, class: Class, path: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs_f64(ctx.scenario.network.retry_for_s);
    let mut pause = Duration::from_millis(250);
    loop {
        match ctx
            .http
            .send(conn, class, Method::GET, path, None, false)
            .await
        {
            Ok(r) if r.status.is_success() => return true,
            Ok(r) if r.status == StatusCode::NOT_FOUND => return false,
            _ => {}
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// Mints a session, retrying failures (a restarting server) for `retry_for_s`.
async fn mint(ctx: &Ctx, conn: &Conn) -> Option<Minted> {
    let path = format!("/api/v1/films/{}/sessions", ctx.film.slug);
    let deadline = Instant::now() + Duration::from_secs_f64(ctx.scenario.network.retry_for_s);
    let mut pause = Duration::from_millis(250);
    loop {
        let result = ctx
            .http
            .send(conn, Class::Mint, Method::POST, &path, None, true)
            .await;
        match result {
            Ok(r) if r.status == StatusCode::CREATED => {
                if let Ok(minted) = serde_json::from_slice::<Minted>(&r.body) {
                    return Some(minted);
                }
            }
            Ok(r) => {
                if let Some(s) = r.retry_after {
                    pause = pause.max(Duration::from_secs(s));
                }
            }
            // Minting keeps nothing on the server: a lost answer leaves nothing behind.
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// Sends a heartbeat with the cumulative counters; true if acknowledged (204). A final beat
/// keeps its `seq` across retries, so a retry of a beat the server already applied is a
/// harmless duplicate.
async fn beat(ctx: &Ctx, s: &mut Session, p: &Player, state: &str, last: bool) -> bool {
    // Until the first beat is acknowledged, it is the one sent, unchanged.
    let (body, watching, play_ms) = match &s.first {
        Some(first) if !s.confirmed => (first.body.clone(), first.watching, first.play_ms),
        _ => {
            if !last {
                s.seq += 1;
            } else if s.final_seq.is_none() {
                s.seq += 1;
                s.final_seq = Some(s.seq);
            }
            let play_ms = (p.play_ms as u64).max(s.acked_play_ms);
            let rung = &ctx.film.rungs[p.rung];
            let body = Bytes::from(format!(
                concat!(
                    r#"{{"token":{},"proof":{},"seq":{},"state":"{}","play_ms":{},"#,
                    r#""rebuffer_ms":{},"rebuffer_count":{},"startup_ms":{},"seek_ms":{},"#,
                    r#""playhead_ms":{},"height":{},"bitrate_kbps":{},"bytes":{},"#,
                    r#""dropped_frames":0,"fatal_error":{}}}"#
                ),
                s.token,
                s.proof,
                s.seq,
                state,
                play_ms,
                p.rebuffer_ms as u64,
                p.rebuffer_count,
                p.startup_ms,
                p.seek_ms as u64,
                p.playhead_ms as u64,
                rung.height,
                rung.bandwidth / 1000,
                p.bytes,
                state == "error",
            ));
            let watching = matches!(state, "startup" | "playing" | "seeking" | "rebuffering");
            if s.first.is_none() {
                s.first = Some(FirstBeat {
                    body: body.clone(),
                    watching,
                    play_ms,
                });
            }
            (body, watching, play_ms)
        }
    };
    ctx.truth.sending(&s.slot, watching);
    let sent = ctx.truth.now_ms();
    let reply = ctx
        .http
        .send(
            &s.conn,
            Class::Heartbeat,
            Method::POST,
            &s.path,
            Some(body),
            false,
        )
        .await;
    let acked = match &reply {
        Ok(r) if r.status == StatusCode::NO_CONTENT => {
            ctx.outcomes.count(r.beat.as_deref());
            true
        }
        Ok(r) => {
            if matches!(
                r.status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            ) {
                // On 429/503, double the wait, at most 60 s (docs/AUDIENCE.md).
                let told = Duration::from_secs(r.retry_after.unwrap_or(1));
                s.backoff = (s.backoff * 2).max(told).min(Duration::from_secs(60));
            }
            false
        }
        Err(e) => {
            if !e.connect {
                ctx.truth.unanswered(&s.slot);
            }
            false
        }
    };
    ctx.truth
        .answered(&s.slot, acked, sent, watching, play_ms, s.acked_play_ms);
    if acked {
        s.acked_play_ms = play_ms;
        s.confirmed = true;
    }
    acked
}
