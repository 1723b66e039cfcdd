//! The HTTP threads give their core up when they have run long without a pause.
//!
//! A thread that never runs out of work (a saturated server) keeps its core until the
//! scheduler's tick ends its slice, and everything else runnable on that core waits for it:
//! at `HZ=250`, one or two ticks of 4 ms. The kernel reconsiders only at a tick, when the
//! running thread sleeps, or when a task wakes up there; a task already waiting does not wake
//! up, and a saturated thread does not sleep. So an HTTP thread that has answered [`RUN`]
//! requests without sleeping in between calls `sched_yield`, which lets a waiting task have
//! the core at once and returns at once when none waits. BENCHMARKS.md has the measurement
//! (the saturated playlist's p99 went from two ticks to under two milliseconds).
//!
//! Only threads that [`track`] count: the per-core HTTP runtimes, whose park hooks call
//! [`parking`] and [`unparked`].

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Requests a thread answers without sleeping before it yields. 64 playlist answers take
/// about 0.6 ms of CPU; 64 segments take 3–6 ms (each is one long `sendfile`), so a thread
/// sending segments rarely yields. Counted on the fast path, where the volume is.
pub(crate) const RUN: u32 = 64;

/// A park shorter than this found events ready and did not sleep.
const SLEPT: Duration = Duration::from_micros(30);

thread_local! {
    /// Requests answered since this thread last slept; `None` where it is not tracked.
    static ANSWERED: Cell<Option<u32>> = const { Cell::new(None) };
    static PARKED_AT: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Starts counting on this thread.
pub(crate) fn track() {
    ANSWERED.set(Some(0));
}

/// The runtime is about to wait for events.
pub(crate) fn parking() {
    PARKED_AT.set(Some(Instant::now()));
}

/// The runtime has events again.
pub(crate) fn unparked() {
    if let Some(at) = PARKED_AT.take() {
        woke(at.elapsed());
    }
}

/// After a park of `parked`: if the thread slept, the run starts over.
fn woke(parked: Duration) {
    if parked >= SLEPT && ANSWERED.get().is_some() {
        ANSWERED.set(Some(0));
    }
}

/// A response has gone out. Yields the core if this thread has answered [`RUN`] requests
/// since it last slept, and says whether it did.
pub(crate) fn answered() -> bool {
    let Some(n) = ANSWERED.get() else {
        return false;
    };
    if n + 1 < RUN {
        ANSWERED.set(Some(n + 1));
        return false;
    }
    ANSWERED.set(Some(0));
    std::thread::yield_now();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(times: u32) -> u32 {
        (0..times).filter(|_| answered()).count() as u32
    }

    #[test]
    fn a_thread_yields_after_a_run_without_sleep_and_a_sleep_starts_it_over() {
        // Untracked threads never yield.
        assert_eq!(answer(3 * RUN), 0);
        track();
        assert_eq!(answer(RUN - 1), 0);
        assert_eq!(answer(1), 1, "the RUN-th answer without a sleep yields");
        assert_eq!(answer(2 * RUN), 2);

        // A park that returns at once (events were ready) does not end the run.
        assert_eq!(answer(RUN - 1), 0);
        woke(Duration::from_micros(2));
        assert_eq!(answer(1), 1);

        // A sleep does.
        assert_eq!(answer(RUN - 1), 0);
        woke(SLEPT);
        assert_eq!(answer(RUN - 1), 0);
        assert_eq!(answer(1), 1);

        // The runtime's hooks measure the park.
        assert_eq!(answer(RUN - 1), 0);
        parking();
        std::thread::sleep(SLEPT * 4);
        unparked();
        assert_eq!(answer(RUN - 1), 0);
    }
}
