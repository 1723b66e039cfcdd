//! The playback model of one simulated viewer, in continuous time: [`Player::advance`] moves
//! it to "now" event by event (the buffer runs dry, a pause starts or ends, a seek, a download
//! lands, the viewer has watched enough), so a viewer task only wakes for events and
//! heartbeats — a few times per ten seconds — which is what lets one process hold 60,000 of
//! them. `viewer.rs` is the same viewer on the wire.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use super::film::FilmPlan;
use super::scenario::Rng;
use super::viewer::Ctx;

/// The player states of the heartbeat contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Startup,
    Playing,
    Paused,
    Seeking,
    Rebuffering,
}

impl State {
    pub(crate) fn wire(self) -> &'static str {
        match self {
            State::Startup => "startup",
            State::Playing => "playing",
            State::Paused => "paused",
            State::Seeking => "seeking",
            State::Rebuffering => "rebuffering",
        }
    }
}

/// Why a viewer stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leave {
    /// Watched as long as it meant to, reached the end, or was asked to go.
    Ended,
    /// Could not get the playlists: a fatal error.
    Error,
}

#[derive(Debug)]
pub(crate) struct Download {
    pub(crate) id: u64,
    pub(crate) started: Instant,
    /// Media length, ms.
    pub(crate) media_ms: f64,
    /// Modelled throughput of this download, kbit/s, and the round trip, ms.
    pub(crate) kbps: f64,
    pub(crate) rtt_ms: f64,
    pub(crate) rung: usize,
    /// Bytes when known (at once for a modelled download, when it lands for a real one).
    pub(crate) bytes: Option<u64>,
    /// When the real fetch finished (a modelled one "finishes" at once).
    pub(crate) fetched: Option<Instant>,
}

impl Download {
    /// When the segment is in the buffer: the bandwidth model's time, or the real fetch's
    /// if it is slower.
    pub(crate) fn done_at(&self) -> Option<Instant> {
        let bytes = self.bytes?;
        let model = Duration::from_secs_f64(
            (self.rtt_ms + bytes as f64 * 8.0 / self.kbps.max(1.0)) / 1000.0,
        );
        Some((self.started + model).max(self.fetched?))
    }
}

pub(crate) type Fetch = Pin<Box<dyn Future<Output = Result<u64, String>> + Send>>;

/// The playback model of one viewer.
#[derive(Debug)]
pub(crate) struct Player {
    pub(crate) state: State,
    pub(crate) at: Instant,
    pub(crate) intent: Instant,
    pub(crate) buffer_ms: f64,
    pub(crate) playhead_ms: f64,
    pub(crate) play_ms: f64,
    pub(crate) rebuffer_ms: f64,
    pub(crate) rebuffer_count: u64,
    pub(crate) startup_ms: u64,
    pub(crate) seek_ms: f64,
    pub(crate) bytes: u64,
    /// The rung playing now, and the throughput estimate (EWMA, kbit/s).
    pub(crate) rung: usize,
    pub(crate) estimate_kbps: f64,
    pub(crate) watch_ms: f64,
    pub(crate) film_ms: f64,
    pub(crate) pause_at_ms: f64,
    pub(crate) pause_until: Option<Instant>,
    pub(crate) seek_at_ms: f64,
    pub(crate) next_segment: u64,
    pub(crate) download: Option<Download>,
    pub(crate) downloads: u64,
    pub(crate) init_fetched: Option<usize>,
    pub(crate) retry_download_at: Option<Instant>,
    pub(crate) first_frame: bool,
    pub(crate) leave: Option<Leave>,
}

/// hls.js's starting estimate before any download was measured.
pub(crate) const DEFAULT_ESTIMATE_KBPS: f64 = 500.0;
/// Choose the highest rung whose peak bandwidth fits this share of the estimate.
pub(crate) const ABR_SAFETY: f64 = 0.8;

impl Player {
    /// Advances the model to `to`, applying every event on the way.
    pub(crate) fn advance(&mut self, to: Instant, ctx: &Ctx, rng: &mut Rng) {
        while self.leave.is_none() {
            let t = self.at;
            // The next event in play time (only while playing) or wall time.
            let mut next: Option<(Instant, u8)> = None;
            let mut consider = |when: Instant, kind: u8| {
                if next.is_none_or(|(n, _)| when < n) {
                    next = Some((when, kind));
                }
            };
            let after = |ms: f64| t + Duration::from_secs_f64(ms.max(0.0) / 1000.0);
            if self.state == State::Playing {
                // Leaving first: at the film's end the buffer runs dry at the same instant.
                consider(after(self.watch_ms - self.play_ms), 1);
                consider(after(self.film_ms - self.playhead_ms), 1);
                consider(after(self.buffer_ms), 0);
                consider(after(self.pause_at_ms - self.play_ms), 2);
                consider(after(self.seek_at_ms - self.play_ms), 3);
            }
            if let (State::Paused, Some(until)) = (self.state, self.pause_until) {
                consider(until, 4);
            }
            if let Some(done) = self.download.as_ref().and_then(Download::done_at) {
                consider(done.max(t), 5);
            }
            let (when, kind) = match next {
                Some((when, kind)) if when <= to => (when, kind),
                _ => {
                    self.integrate(to);
                    return;
                }
            };
            self.integrate(when);
            match kind {
                0 => {
                    self.state = State::Rebuffering;
                    self.rebuffer_count += 1;
                }
                1 => self.leave = Some(Leave::Ended),
                2 => {
                    self.state = State::Paused;
                    let pause = ctx.scenario.viewing.pause_s.sample(rng);
                    self.pause_until = Some(when + Duration::from_secs_f64(pause));
                    self.pause_at_ms =
                        self.play_ms + next_gap(rng, ctx.scenario.viewing.pauses_per_hour);
                }
                3 => {
                    // A forward seek of half a minute to five minutes: the buffer is gone.
                    let jump = 30_000.0 + rng.f64() * 270_000.0;
                    self.playhead_ms = (self.playhead_ms + jump).min(self.film_ms - 1_000.0);
                    let seg_ms = ctx.film.length_ms / ctx.film.rungs[0].track.segments.len() as f64;
                    self.next_segment = (self.playhead_ms / seg_ms) as u64;
                    self.buffer_ms = 0.0;
                    self.download = None;
                    self.state = State::Seeking;
                    self.seek_at_ms =
                        self.play_ms + next_gap(rng, ctx.scenario.viewing.seeks_per_hour);
                }
                4 => {
                    self.pause_until = None;
                    self.state = if self.buffer_ms > 0.0 {
                        State::Playing
                    } else {
                        State::Rebuffering
                    };
                }
                _ => self.landed(when),
            }
        }
    }

    /// Counts the time from `self.at` to `to` in the current state.
    pub(crate) fn integrate(&mut self, to: Instant) {
        let dt = to.saturating_duration_since(self.at).as_secs_f64() * 1000.0;
        self.at = self.at.max(to);
        match self.state {
            State::Playing => {
                let dt = dt.min(self.buffer_ms);
                self.play_ms += dt;
                self.playhead_ms += dt;
                self.buffer_ms -= dt;
            }
            State::Rebuffering => self.rebuffer_ms += dt,
            State::Seeking => self.seek_ms += dt,
            State::Startup | State::Paused => {}
        }
    }

    /// A download landed at `when`: into the buffer, into the estimate.
    pub(crate) fn landed(&mut self, when: Instant) {
        let Some(d) = self.download.take() else {
            return;
        };
        let bytes = d.bytes.unwrap_or(0);
        self.bytes += bytes;
        self.buffer_ms += d.media_ms;
        self.next_segment += 1;
        let took_ms = when.saturating_duration_since(d.started).as_secs_f64() * 1000.0;
        if took_ms > 0.0 {
            let measured = bytes as f64 * 8.0 / took_ms;
            self.estimate_kbps = if self.downloads == 0 {
                measured
            } else {
                0.7 * self.estimate_kbps + 0.3 * measured
            };
        }
        self.downloads += 1;
        self.rung = d.rung;
        if matches!(
            self.state,
            State::Startup | State::Rebuffering | State::Seeking
        ) {
            if self.state == State::Startup {
                self.startup_ms = when.saturating_duration_since(self.intent).as_millis() as u64;
                self.first_frame = true;
            }
            self.state = State::Playing;
        }
    }

    /// When the model next needs attention on its own.
    pub(crate) fn next_event(&self) -> Option<Instant> {
        let at = |ms: f64| self.at + Duration::from_secs_f64(ms.max(0.0) / 1000.0);
        let mut times: Vec<Instant> = Vec::with_capacity(6);
        if self.state == State::Playing {
            times.push(at(self
                .buffer_ms
                .min(self.watch_ms - self.play_ms)
                .min(self.film_ms - self.playhead_ms)
                .min(self.pause_at_ms - self.play_ms)
                .min(self.seek_at_ms - self.play_ms)));
        }
        times.extend(self.pause_until);
        times.extend(self.download.as_ref().and_then(Download::done_at));
        times.extend(self.retry_download_at);
        times.into_iter().min()
    }
}

/// Play time until the next Poisson event at `per_hour`, ms (never, if zero).
pub(crate) fn next_gap(rng: &mut Rng, per_hour: f64) -> f64 {
    if per_hour <= 0.0 {
        f64::INFINITY
    } else {
        rng.exponential(3_600_000.0 / per_hour)
    }
}

/// The highest rung whose peak bandwidth fits the estimate with a safety margin.
pub(crate) fn choose_rung(film: &FilmPlan, estimate_kbps: f64) -> usize {
    let budget = estimate_kbps * 1000.0 * ABR_SAFETY;
    film.rungs
        .iter()
        .rposition(|r| r.bandwidth as f64 <= budget)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(crate) fn next_gap_is_never_for_a_zero_rate() {
        let mut rng = Rng::new(1, 1);
        assert!(next_gap(&mut rng, 0.0).is_infinite());
        let mean: f64 = (0..10_000).map(|_| next_gap(&mut rng, 60.0)).sum::<f64>() / 10_000.0;
        assert!((mean - 60_000.0).abs() < 3_000.0, "{mean}");
    }
}
