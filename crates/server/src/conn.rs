//! Connection handling: the accept loop, per-connection deadlines, and graceful draining.
//!
//! `header_timeout` bounds the time a client has to send a request's headers: hyper's
//! `header_read_timeout` enforces it from the moment hyper waits for a request head, which
//! also closes keep-alive connections idle that long between requests. But hyper only starts
//! that timer once HTTP/1 parsing begins, after hyper-util has sniffed the protocol, so a
//! socket that never sends a byte would live forever. The [`Deadlines`] wrapper closes, at the
//! transport level:
//! - a connection that sends nothing within `header_timeout` of opening (silent sockets), or
//!   moves no byte either way for that long (idle HTTP/2);
//! - a connection whose writes make no progress for `write_timeout` (a client that stopped
//!   reading). This is a progress timeout, not a total deadline: a viewer receiving 20 kB/s
//!   keeps its connection as long as bytes move.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};

use crate::fast::{Exit, FastPath};
use crate::metrics::Metrics;

/// Timeouts and limits of the HTTP listener.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// A client must deliver a request's headers within this time of the server waiting for
    /// them: on a new connection, and between requests on a keep-alive one (its idle timeout).
    pub header_timeout: Duration,
    /// A response write may make no progress for this long before the connection is dropped.
    pub write_timeout: Duration,
    /// Largest request head (request line plus headers), bytes; larger gets 431.
    pub max_header_bytes: usize,
    /// On shutdown, readiness turns false at once but connections are still accepted this
    /// long, so load balancers polling `/readyz` stop sending before the port closes.
    pub readiness_grace: Duration,
    /// Then in-flight responses get this long to finish.
    pub drain_deadline: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
            readiness_grace: Duration::from_secs(2),
            drain_deadline: Duration::from_secs(10),
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
    timer: Pin<Box<Sleep>>,
}

impl<T> Deadlines<T> {
    pub fn new(inner: T, limits: Arc<ConnLimits>) -> Self {
        let now = Instant::now();
        Self {
            inner,
            timer: Box::pin(tokio::time::sleep_until(now + limits.header_timeout)),
            limits,
            last_progress: now,
            write_blocked_since: None,
        }
    }

    fn deadline(&self) -> Instant {
        match self.write_blocked_since {
            Some(since) => since + self.limits.write_timeout,
            None => self.last_progress + self.limits.header_timeout,
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

/// Serves on `listener` until `shutdown` resolves: HTTP/1.1 media requests on the fast path
/// (when `fast` is given), everything else with hyper and `app`. Then readiness turns false
/// (so `/readyz` answers 503) for `limits.readiness_grace`, the listener closes, and in-flight
/// requests get `limits.drain_deadline` to finish; HTTP/1 responses finishing during the
/// drain carry `Connection: close`.
pub(crate) async fn serve(
    listener: TcpListener,
    handlers: Handlers,
    limits: ConnLimits,
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
                let (stream, _) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let Handlers { router: app, fast } = handlers.clone();
                let (limits, metrics) = (Arc::clone(&limits), Arc::clone(&metrics));
                let (builder, watcher, mut stop) =
                    (Arc::clone(&builder), graceful.watcher(), stop_rx.clone());
                tokio::spawn(async move {
                    metrics.connection_opened();
                    let handoff = match &fast {
                        Some(fast) => match fast.serve(stream, &limits, &mut stop).await {
                            Exit::Closed => None,
                            Exit::Handoff(stream, read) => Some((stream, read)),
                        },
                        None => Some((stream, Vec::new())),
                    };
                    if let Some((stream, read)) = handoff
                        && !*stop.borrow()
                    {
                        let io = TokioIo::new(Deadlines::new(Prefixed::new(read, stream), limits));
                        let service = TowerToHyperService::new(app);
                        let connection = builder.serve_connection_with_upgrades(io, service).into_owned();
                        // Boxed: an idle fast-path connection's task stays small.
                        let _ = Box::pin(watcher.watch(connection)).await;
                    }
                    drop(stop);
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

/// Serves on `addr` from `threads` OS threads, each with its own single-threaded runtime and
/// its own `SO_REUSEPORT` listener: no work stealing and no cross-core wake-ups on the hot path
/// (the design of the statico benchmark's fastest Rust server). Returns once every thread
/// has drained after `shutdown` fires. `on_bound` gets the bound address (useful with port 0).
pub(crate) fn serve_per_core(
    addr: std::net::SocketAddr,
    threads: usize,
    handlers: Handlers,
    limits: ConnLimits,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> io::Result<(std::net::SocketAddr, Vec<std::thread::JoinHandle<()>>)> {
    let first = bind_reuseport(addr)?;
    let bound = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..threads.max(1) {
        listeners.push(bind_reuseport(bound)?);
    }
    let mut handles = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let (handlers, limits, metrics, ready) = (
            handlers.clone(),
            limits.clone(),
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
                    if let Err(e) = serve(listener, handlers, limits, metrics, ready, stop).await {
                        tracing::error!(error = %e, "HTTP listener failed");
                    }
                });
            })?;
        handles.push(handle);
    }
    Ok((bound, handles))
}
