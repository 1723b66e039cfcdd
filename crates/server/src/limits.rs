//! The limits of the HTTP listener, and the one deadline mechanism that enforces them, shared
//! by the accept loop ([`crate::conn`]) and the media fast path ([`crate::fast`]): both compute
//! their deadlines with [`ConnLimits::head_deadline`] and [`ConnLimits::write_deadline`] and
//! wait on them with a [`DeadlineTimer`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Timeouts and limits of the HTTP listener.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// A client must deliver a request's headers within this time of the server waiting for
    /// them: on a new connection, and between requests on a keep-alive one (its idle timeout).
    pub header_timeout: Duration,
    /// A request body must arrive whole within this time of its head.
    pub body_timeout: Duration,
    /// A response write may make no progress for this long before the connection is dropped.
    pub write_timeout: Duration,
    /// Largest request head (request line plus headers), bytes; larger gets 431.
    pub max_header_bytes: usize,
    /// On shutdown, readiness turns false at once but connections are still accepted this
    /// long, so load balancers polling `/readyz` stop sending before the port closes.
    pub readiness_grace: Duration,
    /// Then in-flight responses get this long to finish.
    pub drain_deadline: Duration,
    /// Connections one address (IPv4, or IPv6 /64) may hold open; 0 for no limit.
    pub max_connections_per_addr: u32,
}

impl ConnLimits {
    /// When a request head must be complete if the server began waiting for it at `waiting`:
    /// bytes trickling in do not extend it (slowloris). On an idle keep-alive connection this
    /// is its idle timeout.
    pub fn head_deadline(&self, waiting: Instant) -> Instant {
        waiting + self.header_timeout
    }

    /// When a response whose writes have made no progress since `blocked` is given up: a
    /// progress timeout, not a total one, so a slow viewer keeps its connection while bytes
    /// move.
    pub fn write_deadline(&self, blocked: Instant) -> Instant {
        blocked + self.write_timeout
    }
}

/// A connection's one timer. It is moved only when a deadline comes earlier than it is set
/// for: progress only ever moves a connection's deadline later, so the timer then fires early,
/// finds the deadline not passed and is re-armed once. Resetting the timer wheel on every
/// wait instead was a measurable cost at 1,000 connections (BENCHMARKS.md, "Origin").
#[derive(Debug)]
pub(crate) struct DeadlineTimer(Pin<Box<Sleep>>);

impl DeadlineTimer {
    /// A timer first set for `first`.
    pub fn new(first: Instant) -> Self {
        Self(Box::pin(tokio::time::sleep_until(first)))
    }

    /// A timer set for no deadline yet.
    pub fn unset() -> Self {
        Self::new(Instant::now() + Duration::from_secs(365 * 86_400))
    }

    /// Ready once `deadline` has passed.
    pub fn poll_passed(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        if deadline < self.0.deadline() {
            self.0.as_mut().reset(deadline);
        }
        while self.0.as_mut().poll(cx).is_ready() {
            if Instant::now() >= deadline {
                return Poll::Ready(());
            }
            self.0.as_mut().reset(deadline);
        }
        Poll::Pending
    }

    /// Resolves once `deadline` has passed.
    pub fn passed(&mut self, deadline: Instant) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| self.poll_passed(cx, deadline))
    }
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
            readiness_grace: Duration::from_secs(2),
            drain_deadline: Duration::from_secs(10),
            max_connections_per_addr: 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_timer_set_early_waits_for_a_later_deadline_and_moves_for_an_earlier_one() {
        let start = Instant::now();
        let later = start + Duration::from_millis(120);
        let mut timer = DeadlineTimer::new(start + Duration::from_millis(10));
        // Fires at 10 ms, finds the deadline not passed, re-arms: never resolves early.
        tokio::time::timeout(Duration::from_secs(10), timer.passed(later))
            .await
            .expect("the later deadline passes");
        assert!(Instant::now() >= later, "resolved before its deadline");

        let mut unset = DeadlineTimer::unset();
        let soon = Instant::now() + Duration::from_millis(20);
        tokio::time::timeout(Duration::from_secs(10), unset.passed(soon))
            .await
            .expect("an earlier deadline moves the timer");
        assert!(Instant::now() >= soon);
    }
}
