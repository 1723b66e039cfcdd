//! Connection handling: the accept loop, per-connection deadlines, per-address limits, and
//! graceful draining.
//!
//! Deadlines, so a slow or silent client cannot hold a connection (and its descriptor): see
//! [`deadline`].
//!
//! Each address (an IPv4 address or an IPv6 /64) may hold `max_connections_per_addr`
//! connections; more are closed at once. When the process runs out of descriptors, `accept`
//! fails until some close: the loop then sleeps [`ACCEPT_BACKOFF`] between attempts, never
//! spinning, and logs at most one line per [`ACCEPT_LOG_EVERY`].

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
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
use tokio::net::TcpListener;
use tokio::time::Instant;

mod deadline;

pub(crate) use deadline::BodyClock;
use deadline::{Deadlines, Prefixed, TimedBody};

use crate::client::{Peer, PerAddress};
use crate::fast::{Exit, FastPath};
use crate::limits::ConnLimits;
use crate::metrics::Metrics;

/// How long the accept loop sleeps after `accept` fails (out of descriptors, mostly): long
/// enough not to spin on a listener that stays readable, short enough that a freed descriptor
/// is used at once.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one log line about failing accepts, or refused connections, per this long.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(60);

/// What answers requests: the router, and the media fast path when it is on.
#[derive(Debug, Clone)]
pub(crate) struct Handlers {
    pub router: Router,
    pub fast: Option<Arc<FastPath>>,
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
        // An upload's PATCH has a deadline of its own, which its handler keeps.
        let (body, clock) =
            if crate::upload::owns_body_deadline(&parts.method, &parts.uri, &parts.headers) {
                (TimedBody::untimed(body), None)
            } else {
                TimedBody::new(body, self.body_timeout)
            };
        if let Some(clock) = clock {
            parts.extensions.insert(clock);
        }
        let request = Request::from_parts(parts, body);
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
