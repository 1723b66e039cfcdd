//! The deadlines of a connection, so a slow or silent client cannot hold it (and its
//! descriptor) — one mechanism whichever HTTP path serves the request:
//! - a request head must arrive whole within `header_timeout` of the server waiting for it. On
//!   the fast path, `FastPath::serve` enforces it; hyper's `header_read_timeout` does on its
//!   own path. hyper starts that timer when it begins reading a head, so for a connection the
//!   fast path hands over in the middle of a head, [`Deadlines`] keeps the fast path's deadline
//!   until the head is complete: one deadline per request, whichever path serves it.
//! - hyper only starts its timer once HTTP/1 parsing begins, after hyper-util has sniffed the
//!   protocol, so a socket that never sends a byte would live forever. [`Deadlines`] closes a
//!   connection that sends nothing within `header_timeout` of opening (silent sockets), or moves
//!   no byte either way for that long (idle HTTP/2);
//! - a request body must arrive whole within `body_timeout` of its head ([`TimedBody`]): a POST
//!   trickling a byte every few seconds makes progress forever, so only a total deadline ends
//!   it. The client gets 408 and the connection closes (RFC 9110 §15.5.9);
//! - a connection whose writes make no progress for `write_timeout` (a client that stopped
//!   reading) is dropped. This is a progress timeout, not a total deadline: a viewer receiving
//!   20 kB/s keeps its connection as long as bytes move.
//!
//! The fast path's socket (`crate::fast`) keeps the same rules with the same pieces: its
//! deadlines come from [`ConnLimits::head_deadline`] and [`ConnLimits::write_deadline`], and
//! each connection waits on one [`crate::limits::DeadlineTimer`].
//!

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Bytes, HttpBody};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::limits::{ConnLimits, DeadlineTimer};

/// A transport with the deadlines described in the module docs.
#[derive(Debug)]
pub struct Deadlines<T> {
    inner: T,
    limits: Arc<ConnLimits>,
    last_progress: Instant,
    write_blocked_since: Option<Instant>,
    /// The deadline of a request head begun on the fast path, until the head is complete.
    head_until: Option<Instant>,
    /// How much of the end of a head (`\r\n\r\n`) the bytes read so far end with.
    head_end_seen: usize,
    timer: DeadlineTimer,
}

/// The blank line that ends a request head (RFC 9112 §2.1).
const HEAD_END: &[u8; 4] = b"\r\n\r\n";

impl<T> Deadlines<T> {
    /// `inner` with the deadlines of `limits`. `head_until`: when the connection's current
    /// request head must be complete, if it began on the fast path (hyper would start its own
    /// header timer afresh, and a client trickling its head across the handoff would get
    /// twice the time).
    pub fn with_head_deadline(
        inner: T,
        limits: Arc<ConnLimits>,
        head_until: Option<Instant>,
    ) -> Self {
        let now = Instant::now();
        let first = head_until.map_or(limits.head_deadline(now), |until| {
            until.min(limits.head_deadline(now))
        });
        Self {
            inner,
            timer: DeadlineTimer::new(first),
            limits,
            last_progress: now,
            write_blocked_since: None,
            head_until,
            head_end_seen: 0,
        }
    }

    fn deadline(&self) -> Instant {
        match self.write_blocked_since {
            Some(since) => self.limits.write_deadline(since),
            None => {
                let idle = self.limits.head_deadline(self.last_progress);
                self.head_until.map_or(idle, |until| until.min(idle))
            }
        }
    }

    /// Follows the bytes read until the end of the head whose deadline is carried over.
    fn scan_for_head_end(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.head_end_seen = if b == HEAD_END[self.head_end_seen] {
                self.head_end_seen + 1
            } else if b == b'\r' {
                1
            } else {
                0
            };
            if self.head_end_seen == HEAD_END.len() {
                self.head_until = None;
                return;
            }
        }
    }

    /// Arms the timer for the current deadline; an error once it has passed.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let deadline = self.deadline();
        match self.timer.poll_passed(cx, deadline) {
            Poll::Ready(()) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection deadline",
            )),
            Poll::Pending => Ok(()),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Deadlines<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.last_progress = Instant::now();
                    if self.head_until.is_some() {
                        self.scan_for_head_end(&buf.filled()[before..]);
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match self.check(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }
}

impl<T> Deadlines<T> {
    /// Bookkeeping after a write attempt: progress resets the clocks; a blocked write starts
    /// (or continues) the write-progress deadline.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match result {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.last_progress = Instant::now();
                    self.write_blocked_since = None;
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if self.write_blocked_since.is_none() {
                    self.write_blocked_since = Some(Instant::now());
                }
                match self.check(cx) {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(e)),
                }
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Deadlines<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.after_write(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.after_write(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A transport whose first bytes were already read (by the fast path): reads return those
/// first, then the transport's own.
#[derive(Debug)]
pub struct Prefixed<T> {
    prefix: Vec<u8>,
    read: usize,
    inner: T,
}

impl<T> Prefixed<T> {
    pub fn new(prefix: Vec<u8>, inner: T) -> Self {
        Self {
            prefix,
            read: 0,
            inner,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.read < this.prefix.len() {
            let n = buf.remaining().min(this.prefix.len() - this.read);
            buf.put_slice(&this.prefix[this.read..this.read + n]);
            this.read += n;
            if this.read == this.prefix.len() {
                this.prefix = Vec::new();
                this.read = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The request body's deadline, seen by the router: `edge.rs` answers 408 once it has
/// passed.
#[derive(Debug, Clone)]
pub(crate) struct BodyClock {
    pub expired: Arc<AtomicBool>,
    pub timeout: Duration,
}

/// A request body that must arrive whole by a deadline (`body_timeout` after its head).
#[derive(Debug)]
pub(crate) struct TimedBody<B> {
    inner: B,
    /// None for a request without a body: nothing to wait for, nothing allocated.
    watch: Option<BodyWatch>,
}

#[derive(Debug)]
struct BodyWatch {
    deadline: Instant,
    /// Armed the first time the body is not there yet (most bodies come with their head).
    timer: Option<Pin<Box<Sleep>>>,
    expired: Arc<AtomicBool>,
}

impl<B: HttpBody> TimedBody<B> {
    /// `body` with a deadline `timeout` from now, and the clock the router sees; neither for
    /// a request without a body (nothing to wait for, nothing allocated).
    pub fn new(body: B, timeout: Duration) -> (Self, Option<BodyClock>) {
        if body.is_end_stream() {
            return (
                Self {
                    inner: body,
                    watch: None,
                },
                None,
            );
        }
        let expired = Arc::new(AtomicBool::new(false));
        let clock = BodyClock {
            expired: Arc::clone(&expired),
            timeout,
        };
        let watch = BodyWatch {
            deadline: Instant::now() + timeout,
            timer: None,
            expired,
        };
        (
            Self {
                inner: body,
                watch: Some(watch),
            },
            Some(clock),
        )
    }
}

impl<B> TimedBody<B> {
    /// `body` without a deadline: for a request whose handler keeps one of its own (an
    /// upload's PATCH, `crate::upload`).
    pub fn untimed(body: B) -> Self {
        Self {
            inner: body,
            watch: None,
        }
    }
}

impl<B> HttpBody for TimedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                let Some(watch) = &mut this.watch else {
                    return Poll::Pending;
                };
                let deadline = watch.deadline;
                let timer = watch
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                watch.expired.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "request body deadline",
                )
                .into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_head_deadline_carried_over_holds_until_the_blank_line() {
        let limits = Arc::new(ConnLimits::default());
        let due = Instant::now() + Duration::from_secs(2);
        let mut d = Deadlines::with_head_deadline((), Arc::clone(&limits), Some(due));
        // Earlier than the idle deadline (10 s): the carried one governs.
        assert_eq!(d.deadline(), due);
        d.scan_for_head_end(b"GET / HTTP/1.1\r\nHost: t\r\nX-A: 1\r");
        d.scan_for_head_end(b"\n\r");
        assert_eq!(d.head_until, Some(due), "not a blank line yet");
        d.scan_for_head_end(b"\nbody");
        assert_eq!(d.head_until, None);
        assert!(d.deadline() > due, "then only the idle deadline is left");

        let mut odd = Deadlines::with_head_deadline((), limits, Some(due));
        odd.scan_for_head_end(b"\r\r\n\r\r\n\r");
        assert_eq!(odd.head_until, Some(due));
        odd.scan_for_head_end(b"\n");
        assert_eq!(odd.head_until, None);
    }
}
