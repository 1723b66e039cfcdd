//! Connection handling: the accept loop, per-connection deadlines, per-address limits, and
//! graceful draining.
//!
//! Deadlines, so a slow or silent client cannot hold a connection (and its descriptor):
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
//! Each address (an IPv4 address or an IPv6 /64) may hold `max_connections_per_addr`
//! connections; more are closed at once. When the process runs out of descriptors, `accept`
//! fails until some close: the loop then sleeps [`ACCEPT_BACKOFF`] between attempts, never
//! spinning, and logs at most one line per [`ACCEPT_LOG_EVERY`].

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Bytes, HttpBody};
use axum::http::Request;
use axum::response::Response;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};

use crate::client::{Peer, PerAddress};
use crate::fast::{Exit, FastPath};
use crate::metrics::Metrics;

/// How long the accept loop sleeps after `accept` fails (out of descriptors, mostly): long
/// enough not to spin on a listener that stays readable, short enough that a freed descriptor
/// is used at once.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one log line about failing accepts, or refused connections, per this long.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(60);

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
    timer: Pin<Box<Sleep>>,
}

/// The blank line that ends a request head (RFC 9112 §2.1).
const HEAD_END: &[u8; 4] = b"\r\n\r\n";

impl<T> Deadlines<T> {
    pub fn new(inner: T, limits: Arc<ConnLimits>) -> Self {
        Self::with_head_deadline(inner, limits, None)
    }

    /// Like [`Deadlines::new`], for a connection whose current request head must be complete
    /// by `head_until` (it began on the fast path): hyper would start its own header timer
    /// afresh, and a client trickling its head across the handoff would get twice the time.
    pub fn with_head_deadline(
        inner: T,
        limits: Arc<ConnLimits>,
        head_until: Option<Instant>,
    ) -> Self {
        let now = Instant::now();
        let first = head_until.map_or(now + limits.header_timeout, |until| {
            until.min(now + limits.header_timeout)
        });
        Self {
            inner,
            timer: Box::pin(tokio::time::sleep_until(first)),
            limits,
            last_progress: now,
            write_blocked_since: None,
            head_until,
            head_end_seen: 0,
        }
    }

    fn deadline(&self) -> Instant {
        match self.write_blocked_since {
            Some(since) => since + self.limits.write_timeout,
            None => {
                let idle = self.last_progress + self.limits.header_timeout;
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
    ///
    /// Progress only ever moves the deadline later, so the timer is left where it is (firing
    /// early is harmless: it is then re-armed) unless the deadline moved earlier. Resetting the
    /// timer wheel on every pending read was a measurable cost at 1,000 connections.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let deadline = self.deadline();
        if deadline < self.timer.deadline() {
            self.timer.as_mut().reset(deadline);
        }
        while self.timer.as_mut().poll(cx).is_ready() {
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection deadline",
                ));
            }
            self.timer.as_mut().reset(deadline);
        }
        Ok(())
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

/// What answers requests: the router, and the media fast path when it is on.
#[derive(Debug, Clone)]
pub(crate) struct Handlers {
    pub router: Router,
    pub fast: Option<Arc<FastPath>>,
}

/// The request body's deadline, seen by the router: `edge` (lib.rs) answers 408 once it has
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

/// The router as hyper calls it on one connection: each request learns its TCP peer
/// ([`Peer`]) and gets its body deadline ([`TimedBody`], [`BodyClock`]).
#[derive(Debug, Clone)]
struct Edge {
    router: Router,
    peer: SocketAddr,
    body_timeout: Duration,
}

impl<B> tower::Service<Request<B>> for Edge
where
    B: HttpBody<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = <Router as tower::Service<Request<TimedBody<B>>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        <Router as tower::Service<Request<TimedBody<B>>>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(Peer(self.peer));
        let watch = (!body.is_end_stream()).then(|| {
            let expired = Arc::new(AtomicBool::new(false));
            parts.extensions.insert(BodyClock {
                expired: Arc::clone(&expired),
                timeout: self.body_timeout,
            });
            BodyWatch {
                deadline: Instant::now() + self.body_timeout,
                timer: None,
                expired,
            }
        });
        let request = Request::from_parts(parts, TimedBody { inner: body, watch });
        self.router.call(request)
    }
}

/// Allows one log line per [`ACCEPT_LOG_EVERY`] across all HTTP threads, and counts the lines
/// it held back.
#[derive(Debug)]
struct LogThrottle {
    /// Milliseconds since `START` of the last line, plus one (0: never).
    last: AtomicU64,
    held_back: AtomicU64,
}

impl LogThrottle {
    const fn new() -> Self {
        Self {
            last: AtomicU64::new(0),
            held_back: AtomicU64::new(0),
        }
    }

    /// `Some(lines held back since the last one)` if a line may be written now.
    fn allow(&self) -> Option<u64> {
        static START: std::sync::LazyLock<std::time::Instant> =
            std::sync::LazyLock::new(std::time::Instant::now);
        let now = u64::try_from(START.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1;
        let last = self.last.load(Ordering::Relaxed);
        let every = u64::try_from(ACCEPT_LOG_EVERY.as_millis()).unwrap_or(u64::MAX);
        let due = last == 0 || now.saturating_sub(last) >= every;
        // Of threads finding it due at once, one writes the line.
        if !due
            || self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.held_back.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.held_back.swap(0, Ordering::Relaxed))
    }
}

static ACCEPT_FAILURES: LogThrottle = LogThrottle::new();
static REFUSALS: LogThrottle = LogThrottle::new();

/// Whether an `accept` error means the process (or the system) is out of descriptors or
/// memory: nothing to do but wait for some to be freed.
fn out_of_resources(e: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(
        Errno::from_io_error(e),
        Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM)
    )
}

/// After a failed `accept`: waits [`ACCEPT_BACKOFF`] (the listener stays readable while the
/// connection waits in the backlog, so retrying at once would spin) and logs, at most once per
/// [`ACCEPT_LOG_EVERY`]. The connections waiting are accepted as soon as descriptors free up.
async fn accept_failed(e: &io::Error, metrics: &Metrics) {
    metrics.accept_error();
    if let Some(held_back) = ACCEPT_FAILURES.allow() {
        if out_of_resources(e) {
            tracing::warn!(
                error = %e,
                held_back,
                every = ?ACCEPT_LOG_EVERY,
                "cannot accept connections: out of file descriptors (raise `ulimit -n` or \
                 LimitNOFILE); retrying, logged at most once per interval"
            );
        } else {
            tracing::warn!(
                error = %e,
                held_back,
                every = ?ACCEPT_LOG_EVERY,
                "accept failed; retrying, logged at most once per interval"
            );
        }
    }
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}

/// Serves on `listener` until `shutdown` resolves: HTTP/1.1 media requests on the fast path
/// (when `fast` is given), everything else with hyper and `app`. Then readiness turns false
/// (so `/readyz` answers 503) for `limits.readiness_grace`, the listener closes, and in-flight
/// requests get `limits.drain_deadline` to finish; HTTP/1 responses finishing during the
/// drain carry `Connection: close`. `per_address` counts connections by address, across the
/// listeners of every thread.
pub(crate) async fn serve(
    listener: TcpListener,
    handlers: Handlers,
    limits: ConnLimits,
    per_address: Option<Arc<PerAddress>>,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let limits = Arc::new(limits);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256);
    let builder = Arc::new(builder);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // Fast-path connections watch `stop`; each task holds a receiver, so the sender sees
    // when the last one has ended.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    let grace = tokio::time::sleep(Duration::MAX / 4);
    tokio::pin!(grace);
    let mut stopping = false;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        accept_failed(&e, &metrics).await;
                        continue;
                    }
                };
                let admitted = match &per_address {
                    Some(table) => match table.admit(peer.ip()) {
                        Some(admitted) => Some(admitted),
                        None => {
                            refuse(stream, peer, &limits, &metrics);
                            continue;
                        }
                    },
                    None => None,
                };
                let _ = stream.set_nodelay(true);
                let Handlers { router, fast } = handlers.clone();
                let (limits, metrics) = (Arc::clone(&limits), Arc::clone(&metrics));
                let (builder, watcher, mut stop) =
                    (Arc::clone(&builder), graceful.watcher(), stop_rx.clone());
                tokio::spawn(async move {
                    metrics.connection_opened();
                    let handoff = match &fast {
                        Some(fast) => match fast.serve(stream, &limits, &mut stop).await {
                            Exit::Closed => None,
                            Exit::Handoff(stream, read, head_until) => {
                                Some((stream, read, Some(head_until)))
                            }
                        },
                        None => Some((stream, Vec::new(), None)),
                    };
                    if let Some((stream, read, head_until)) = handoff
                        && !*stop.borrow()
                    {
                        let body_timeout = limits.body_timeout;
                        let io = TokioIo::new(Deadlines::with_head_deadline(
                            Prefixed::new(read, stream),
                            limits,
                            head_until,
                        ));
                        let service = TowerToHyperService::new(Edge { router, peer, body_timeout });
                        let connection = builder.serve_connection_with_upgrades(io, service).into_owned();
                        // Boxed: an idle fast-path connection's task stays small.
                        let _ = Box::pin(watcher.watch(connection)).await;
                    }
                    drop(stop);
                    drop(admitted);
                    metrics.connection_closed();
                });
            }
            () = &mut shutdown, if !stopping => {
                stopping = true;
                ready.store(false, Ordering::SeqCst);
                grace.as_mut().reset(Instant::now() + limits.readiness_grace);
            }
            () = &mut grace, if stopping => break,
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(stop_rx);
    let drained = async {
        tokio::join!(graceful.shutdown(), stop_tx.closed());
    };
    tokio::select! {
        () = drained => tracing::info!("drained"),
        () = tokio::time::sleep(limits.drain_deadline) => {
            tracing::warn!(deadline = ?limits.drain_deadline, "drain deadline passed; closing the rest");
        }
    }
    Ok(())
}

/// Closes a connection over its address's limit at once, with a reset (`SO_LINGER` 0): the
/// client learns right away, and the server keeps no `TIME_WAIT` state for it.
fn refuse(stream: tokio::net::TcpStream, peer: SocketAddr, limits: &ConnLimits, metrics: &Metrics) {
    metrics.connection_refused();
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
    if let Some(held_back) = REFUSALS.allow() {
        tracing::warn!(
            address = %crate::client::address_key(peer.ip()),
            limit = limits.max_connections_per_addr,
            held_back,
            "refusing connections over the per-address limit ([serve] \
             max_connections_per_addr); logged at most once a minute"
        );
    }
}

/// Binds `addr` with `SO_REUSEPORT`, so several listeners share the port and the kernel
/// spreads new connections over them.
pub fn bind_reuseport(addr: std::net::SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// Binds `threads` listeners (at least one) sharing `addr` with `SO_REUSEPORT`; returns the
/// bound address (useful with port 0) and the listeners, for [`serve_per_core`].
pub(crate) fn bind_per_core(
    addr: SocketAddr,
    threads: usize,
) -> io::Result<(SocketAddr, Vec<std::net::TcpListener>)> {
    let first = bind_reuseport(addr)?;
    let bound = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..threads.max(1) {
        listeners.push(bind_reuseport(bound)?);
    }
    Ok((bound, listeners))
}

/// Serves on `listeners` from as many OS threads, each with its own single-threaded runtime and
/// its own `SO_REUSEPORT` listener: no work stealing and no cross-core wake-ups on the hot path
/// (the design of the statico benchmark's fastest Rust server). The per-address connection
/// count is shared by all of them. Returns the threads, which end once drained after
/// `shutdown` fires.
pub(crate) fn serve_per_core(
    listeners: Vec<std::net::TcpListener>,
    handlers: Handlers,
    limits: ConnLimits,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> io::Result<Vec<std::thread::JoinHandle<()>>> {
    let per_address = (limits.max_connections_per_addr > 0)
        .then(|| Arc::new(PerAddress::new(limits.max_connections_per_addr)));
    let mut handles = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let (handlers, limits, per_address, metrics, ready) = (
            handlers.clone(),
            limits.clone(),
            per_address.clone(),
            Arc::clone(&metrics),
            Arc::clone(&ready),
        );
        let mut shutdown = shutdown.clone();
        let handle = std::thread::Builder::new()
            .name(format!("monsoon-http-{i}"))
            .spawn(move || {
                crate::coop::track();
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .on_thread_park(crate::coop::parking)
                    .on_thread_unpark(crate::coop::unparked)
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start an HTTP runtime");
                        return;
                    }
                };
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        return;
                    };
                    let stop = async move {
                        let _ = shutdown.wait_for(|stop| *stop).await;
                    };
                    let served = serve(
                        listener,
                        handlers,
                        limits,
                        per_address,
                        metrics,
                        ready,
                        stop,
                    );
                    if let Err(e) = served.await {
                        tracing::error!(error = %e, "HTTP listener failed");
                    }
                });
            })?;
        handles.push(handle);
    }
    Ok(handles)
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
