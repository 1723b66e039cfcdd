//! The simulator's ground truth: what the server should count, built only from heartbeats it
//! acknowledged (204), by the server's own rules (`docs/AUDIENCE.md`).
//!
//! - **sessions**: sessions with an acknowledged beat (minting keeps nothing on the server; a
//!   session's first beat is resent, the same bytes, until acknowledged, so both sides agree
//!   on it);
//! - **views**: sessions whose acknowledged cumulative `play_ms` grew by the view threshold
//!   since their first acknowledged beat (every session has its own viewer id, so the
//!   one-per-hour de-duplication never applies);
//! - **playing time**: Σ over sessions of the last acknowledged `play_ms`. Counters are
//!   cumulative, so a lost or refused beat changes nothing once a later one is acknowledged,
//!   and a session's final beat is retried until it is;
//! - **concurrent viewers**: sessions whose last acknowledged beat is within the liveness
//!   window and whose state is startup, playing, seeking or rebuffering.
//!
//! Concurrency is a moment's figure and the server stamps a beat somewhere between our send
//! and its answer, so the live comparison gives a range: `low` counts only sessions that are
//! certainly watching, `high` also those that may be (a beat in flight that starts watching,
//! a last beat near the liveness edge). The server's figure must fall within it.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One session as the ground truth sees it. Times are ms since the run started.
#[derive(Debug)]
pub struct Slot {
    /// When the last acknowledged beat was sent, and when its answer came (-1: none yet).
    sent_ms: AtomicI64,
    acked_ms: AtomicI64,
    /// Its last acknowledged state was a watching one, and the one before.
    watching: AtomicBool,
    was_watching: AtomicBool,
    /// A beat in flight: 0 none, 1 watching, 2 not watching.
    in_flight: AtomicU8,
    done: AtomicBool,
    /// `play_ms` of the first acknowledged beat (-1: none yet), and whether the view counted.
    first_play_ms: AtomicI64,
    viewed: AtomicBool,
    /// A beat went out and its answer was lost: the server may hold the session.
    maybe_applied: AtomicBool,
}

/// The aggregates, updated by every viewer on every acknowledged beat.
#[derive(Debug)]
pub struct Truth {
    start: Instant,
    liveness_ms: i64,
    view_threshold_ms: u64,
    pub sessions: AtomicU64,
    pub views: AtomicU64,
    pub play_ms: AtomicU64,
    /// Sessions whose last acknowledged state is a watching one, liveness aside.
    pub watching: AtomicI64,
    /// Viewer tasks alive (minting, watching, paused or leaving).
    pub active: AtomicI64,
    /// Sessions never acknowledged whose beats may have been applied (answers lost in a
    /// restart): the server may count a session we never saw.
    pub unconfirmed_sessions: AtomicU64,
    /// Final beats never acknowledged within the retry time.
    pub lost_final_beats: AtomicU64,
    slots: Mutex<Vec<Arc<Slot>>>,
}

/// A moment's concurrency range, see the module comment.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Concurrency {
    pub low: u64,
    pub high: u64,
}

/// How close to the liveness edge a session's status is uncertain, ms: the server's clock and
/// ours differ by the request's transit and queueing.
const EDGE_MS: i64 = 1_000;

impl Truth {
    pub fn new(liveness_ms: u64, view_threshold_ms: u64) -> Self {
        Truth {
            start: Instant::now(),
            liveness_ms: liveness_ms as i64,
            view_threshold_ms,
            sessions: AtomicU64::new(0),
            views: AtomicU64::new(0),
            play_ms: AtomicU64::new(0),
            watching: AtomicI64::new(0),
            active: AtomicI64::new(0),
            unconfirmed_sessions: AtomicU64::new(0),
            lost_final_beats: AtomicU64::new(0),
            slots: Mutex::new(Vec::new()),
        }
    }

    /// Milliseconds since the run started.
    pub fn now_ms(&self) -> i64 {
        self.start.elapsed().as_millis() as i64
    }

    /// A minted session (counted once a beat of it is acknowledged).
    pub fn session(&self) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            sent_ms: AtomicI64::new(-1),
            acked_ms: AtomicI64::new(-1),
            watching: AtomicBool::new(false),
            was_watching: AtomicBool::new(false),
            in_flight: AtomicU8::new(0),
            done: AtomicBool::new(false),
            first_play_ms: AtomicI64::new(-1),
            viewed: AtomicBool::new(false),
            maybe_applied: AtomicBool::new(false),
        });
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(slot.clone());
        slot
    }

    /// A beat is about to be sent.
    pub fn sending(&self, slot: &Slot, watching: bool) {
        slot.in_flight
            .store(if watching { 1 } else { 2 }, Ordering::SeqCst);
    }

    /// A beat went out but its answer was lost (not a refused connection): the server may
    /// have applied it.
    pub fn unanswered(&self, slot: &Slot) {
        slot.maybe_applied.store(true, Ordering::SeqCst);
    }

    /// The beat sent at `sent_ms` got an answer; `acked` if it was a 204. `previous_play_ms`
    /// is the session's last acknowledged playing time.
    pub fn answered(
        &self,
        slot: &Slot,
        acked: bool,
        sent_ms: i64,
        watching: bool,
        play_ms: u64,
        previous_play_ms: u64,
    ) {
        if acked {
            if slot.first_play_ms.load(Ordering::SeqCst) < 0 {
                slot.first_play_ms.store(play_ms as i64, Ordering::SeqCst);
                self.sessions.fetch_add(1, Ordering::Relaxed);
            }
            self.play_ms
                .fetch_add(play_ms - previous_play_ms, Ordering::Relaxed);
            let first = slot.first_play_ms.load(Ordering::SeqCst) as u64;
            if play_ms.saturating_sub(first) >= self.view_threshold_ms
                && !slot.viewed.swap(true, Ordering::SeqCst)
            {
                self.views.fetch_add(1, Ordering::Relaxed);
            }
            let was = slot.watching.swap(watching, Ordering::SeqCst);
            slot.was_watching.store(was, Ordering::SeqCst);
            match (was, watching) {
                (false, true) => self.watching.fetch_add(1, Ordering::Relaxed),
                (true, false) => self.watching.fetch_sub(1, Ordering::Relaxed),
                _ => 0,
            };
            slot.sent_ms.store(sent_ms, Ordering::SeqCst);
            slot.acked_ms.store(self.now_ms(), Ordering::SeqCst);
        }
        slot.in_flight.store(0, Ordering::SeqCst);
    }

    /// The session is over (its final beat acknowledged, or given up).
    pub fn close(&self, slot: &Slot) {
        slot.done.store(true, Ordering::SeqCst);
        if slot.first_play_ms.load(Ordering::SeqCst) < 0
            && slot.maybe_applied.load(Ordering::SeqCst)
        {
            self.unconfirmed_sessions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Concurrency as the server may have counted it at some moment since `since_ms` (when
    /// the `/stats` request went out) and now (when its answer came), as a range.
    pub fn concurrency(&self, since_ms: i64) -> Concurrency {
        let now = self.now_ms();
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        // Closed sessions stay until they are certainly out of the window.
        slots.retain(|s| {
            !(s.done.load(Ordering::SeqCst)
                && s.acked_ms.load(Ordering::SeqCst) < since_ms
                && (!s.watching.load(Ordering::SeqCst)
                    || now - s.acked_ms.load(Ordering::SeqCst) > self.liveness_ms + EDGE_MS))
        });
        let (mut low, mut high) = (0, 0);
        for s in slots.iter() {
            let watching = s.watching.load(Ordering::SeqCst);
            let sent = s.sent_ms.load(Ordering::SeqCst);
            let acked = s.acked_ms.load(Ordering::SeqCst);
            // The state may differ on the server's side of the moment: a beat in flight, or
            // one acknowledged during the poll that changed it.
            let changing = s.in_flight.load(Ordering::SeqCst) != 0
                || (acked >= since_ms && s.was_watching.load(Ordering::SeqCst) != watching);
            // Certainly live: young even counted from the send (the server stamped the beat
            // after it) at the latest moment the server may have counted.
            let certain = sent >= 0 && now - (sent - EDGE_MS) <= self.liveness_ms;
            // Possibly live: young counted from the answer (the server stamped it before)
            // at the earliest moment.
            let possible = acked >= 0 && since_ms - (acked + EDGE_MS) <= self.liveness_ms;
            if watching && certain && !changing {
                low += 1;
            }
            if (watching && possible) || changing {
                high += 1;
            }
        }
        Concurrency { low, high }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_beats_make_views_playing_time_and_concurrency() {
        let t = Truth::new(30_000, 4_000);
        let a = t.session();
        let b = t.session();
        t.sending(&a, true);
        let c = t.concurrency(0);
        assert_eq!((c.low, c.high), (0, 1));
        t.answered(&a, true, 0, true, 0, 0);
        t.answered(&b, true, 0, true, 0, 0);
        assert_eq!(t.sessions.load(Ordering::Relaxed), 2);
        t.answered(&a, true, 0, true, 5_000, 0);
        let since = t.now_ms() + 1;
        // Refused: counts nothing.
        t.answered(&b, false, 0, false, 5_000, 0);
        assert_eq!(t.views.load(Ordering::Relaxed), 1);
        assert_eq!(t.play_ms.load(Ordering::Relaxed), 5_000);
        let c = t.concurrency(since);
        assert_eq!((c.low, c.high), (2, 2));
        t.answered(&a, true, 0, false, 6_000, 5_000);
        t.close(&a);
        assert_eq!(t.views.load(Ordering::Relaxed), 1);
        assert_eq!(t.play_ms.load(Ordering::Relaxed), 6_000);
        // Over a poll from 0, `b` started and `a` stopped watching: anything from 0 to 2.
        let c = t.concurrency(0);
        assert_eq!((c.low, c.high), (0, 2));
        let c = t.concurrency(t.now_ms() + 1);
        assert_eq!((c.low, c.high), (1, 1));
        assert_eq!(t.watching.load(Ordering::Relaxed), 1);
    }
}

#[cfg(test)]
mod view_tests {
    use super::*;

    #[test]
    fn a_view_counts_playing_time_since_the_first_acknowledged_beat() {
        let t = Truth::new(30_000, 4_000);
        let a = t.session();
        // The first acknowledged beat already claims 3 s: only what accrues after counts.
        t.answered(&a, true, 0, true, 3_000, 0);
        t.answered(&a, true, 0, true, 6_000, 3_000);
        assert_eq!(t.views.load(Ordering::Relaxed), 0);
        t.answered(&a, true, 0, true, 7_000, 6_000);
        t.answered(&a, true, 0, true, 9_000, 7_000);
        assert_eq!(t.views.load(Ordering::Relaxed), 1);
        // A session never acknowledged, whose beat may have landed, is unconfirmed.
        let b = t.session();
        t.unanswered(&b);
        t.close(&b);
        t.close(&a);
        assert_eq!(t.sessions.load(Ordering::Relaxed), 1);
        assert_eq!(t.unconfirmed_sessions.load(Ordering::Relaxed), 1);
    }
}
