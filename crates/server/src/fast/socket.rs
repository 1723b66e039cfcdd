//! A fast-path connection's socket: reads into a per-thread scratch buffer, writes with
//! deadlines, and `sendfile(2)` with the cork.

use std::io::{self, IoSlice};

use rustix::net::SendFlags;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::limits::{ConnLimits, DeadlineTimer};

/// Open fast-path connections of this thread above which `sendfile` responses are corked.
/// The count is exact on the per-core runtimes `monsoon serve` uses; on a multi-threaded
/// runtime tasks move between threads and it drifts, which only changes when corking starts.
const CORK_ABOVE_CONNECTIONS: usize = 256;

thread_local! {
    /// Fast-path connections open on this thread (each HTTP thread runs its own listener).
    static OPEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Most bytes taken from a socket per read while receiving request heads.
const READ_CHUNK: usize = 16 * 1024;

/// A connection with the deadlines of [`ConnLimits`], kept with one [`DeadlineTimer`] (the
/// mechanism hyper's connections use too, `crate::conn`).
pub(super) struct Conn<'l> {
    pub stream: TcpStream,
    limits: &'l ConnLimits,
    timer: DeadlineTimer,
    /// Whether a short read may clear the socket's read readiness. Only on a
    /// single-threaded runtime: there the I/O driver runs on this thread, between task
    /// polls, so it cannot record a new edge between the read and the clearing; on a
    /// multi-threaded one another worker could, and the wake-up would be lost.
    short_read_drains: bool,
    _counted: Counted,
}

/// Counts a connection in [`OPEN`] while it lives.
struct Counted;

impl Counted {
    pub fn new() -> Self {
        OPEN.set(OPEN.get() + 1);
        Counted
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        OPEN.set(OPEN.get().saturating_sub(1));
    }
}

impl<'l> Conn<'l> {
    pub fn new(stream: TcpStream, limits: &'l ConnLimits) -> Self {
        let flavor = tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor());
        Self {
            stream,
            limits,
            timer: DeadlineTimer::unset(),
            short_read_drains: matches!(flavor, Ok(tokio::runtime::RuntimeFlavor::CurrentThread)),
            _counted: Counted::new(),
        }
    }

    /// Waits until the socket is ready for `interest`; fails at `deadline`, or once `stop`
    /// (if given) turns true.
    async fn ready(
        &mut self,
        interest: Interest,
        deadline: Instant,
        stop: Option<&mut watch::Receiver<bool>>,
    ) -> io::Result<()> {
        let stopped = async move {
            match stop {
                Some(stop) => {
                    let _ = stop.wait_for(|stopping| *stopping).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::pin!(stopped);
        tokio::select! {
            biased;
            ready = self.stream.ready(interest) => ready.map(drop),
            () = &mut stopped => Err(io::Error::other("draining")),
            () = self.timer.passed(deadline) => Err(io::ErrorKind::TimedOut.into()),
        }
    }

    /// Appends what has arrived to `buf`; 0 at EOF. Reads go through a per-thread scratch
    /// buffer, so a connection allocates only for the bytes it actually received (a
    /// readiness event with nothing to read, or an idle connection, costs no buffer).
    pub async fn read(
        &mut self,
        buf: &mut Vec<u8>,
        deadline: Instant,
        stop: &mut watch::Receiver<bool>,
    ) -> io::Result<usize> {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<u8>> =
                std::cell::RefCell::new(vec![0; READ_CHUNK]);
        }
        loop {
            self.ready(Interest::READABLE, deadline, Some(&mut *stop))
                .await?;
            let read: io::Result<usize> = SCRATCH.with_borrow_mut(|scratch| {
                let n = self.stream.try_read(scratch)?;
                buf.extend_from_slice(&scratch[..n]);
                Ok(n)
            });
            match read {
                Ok(n) if n > 0 && n < READ_CHUNK && self.short_read_drains => {
                    // A short read emptied the socket: forget its readiness now, as nginx
                    // does, instead of learning it from one more `recv` that fails with
                    // EAGAIN after every response. Data arriving later raises a new edge,
                    // which this thread's event loop only sees after this task yields, so
                    // nothing is missed (see `Conn::short_read_drains`).
                    let _ = self.stream.try_io(Interest::READABLE, || {
                        Err::<(), _>(io::ErrorKind::WouldBlock.into())
                    });
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                result => return result,
            }
        }
    }

    /// Repeats `attempt` until it reports the response written, waiting for the socket to
    /// drain whenever it would block. The write-progress timeout: the connection is given up
    /// once no attempt has moved a byte for `write_timeout`.
    async fn write_until(
        &mut self,
        mut attempt: impl FnMut(&TcpStream) -> io::Result<bool>,
    ) -> io::Result<()> {
        let mut blocked_since = None;
        loop {
            match attempt(&self.stream) {
                Ok(true) => return Ok(()),
                Ok(false) => blocked_since = None,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let since = *blocked_since.get_or_insert_with(Instant::now);
                    let deadline = self.limits.write_deadline(since);
                    self.ready(Interest::WRITABLE, deadline, None).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub async fn write_all(&mut self, mut head: &[u8], mut body: &[u8]) -> io::Result<()> {
        self.write_until(|stream| {
            if head.is_empty() && body.is_empty() {
                return Ok(true);
            }
            let n = stream.try_write_vectored(&[IoSlice::new(head), IoSlice::new(body)])?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            let from_head = n.min(head.len());
            head = &head[from_head..];
            body = &body[n - from_head..];
            Ok(false)
        })
        .await
    }

    /// Sends `head`, then bytes `start..start + len` of `file` straight from the page cache.
    ///
    /// When this thread serves many connections, the socket is corked meanwhile (nginx's
    /// `tcp_nopush`), so the response leaves in full-sized segments: uncorked, `sendfile`
    /// pushes a partial segment at every pipe-full of pages (13.3 packets per 268 KB response
    /// on loopback against 10.0 corked). Fewer packets win when the CPU is shared by many
    /// flows (+5–10 % at 1,000 connections); with few connections the two extra system
    /// calls and the held tail cost more than they save (−20 % at 64). See BENCHMARKS.md.
    pub async fn send_file(
        &mut self,
        head: &[u8],
        file: &std::fs::File,
        start: u64,
        len: u64,
    ) -> io::Result<()> {
        if OPEN.get() < CORK_ABOVE_CONNECTIONS {
            return self.send_head_and_file(head, file, start, len).await;
        }
        rustix::net::sockopt::set_tcp_cork(&self.stream, true)?;
        let sent = self.send_head_and_file(head, file, start, len).await;
        // Uncorking pushes the last partial segment out.
        let uncorked = rustix::net::sockopt::set_tcp_cork(&self.stream, false);
        sent?;
        Ok(uncorked?)
    }

    /// `send_file` without touching the cork.
    async fn send_head_and_file(
        &mut self,
        mut head: &[u8],
        file: &std::fs::File,
        start: u64,
        len: u64,
    ) -> io::Result<()> {
        let mut offset = start;
        let end = start + len;
        self.write_until(|stream| {
            if !head.is_empty() {
                // MSG_MORE: the head leaves with the body's first bytes, corked or not.
                let n = stream.try_io(Interest::WRITABLE, || {
                    Ok(rustix::net::send(stream, head, SendFlags::MORE)?)
                })?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                head = &head[n..];
                return Ok(false);
            }
            if offset >= end {
                return Ok(true);
            }
            let count = usize::try_from(end - offset)
                .unwrap_or(usize::MAX)
                .min(1 << 30);
            let n = stream.try_io(Interest::WRITABLE, || {
                Ok(rustix::fs::sendfile(
                    stream,
                    file,
                    Some(&mut offset),
                    count,
                )?)
            })?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shorter than its object index says",
                ));
            }
            Ok(false)
        })
        .await
    }
}
