//! HTTP for simulated viewers, and the latency and error figures of every request class.
//!
//! Built on hyper-util's legacy client rather than reqwest: the workspace already compiles
//! hyper for the server, so the client costs two small crates instead of reqwest's TLS,
//! cookie and redirect machinery, and it exposes what a load generator must control — the
//! connector's source address, the idle pool per host, and no hidden retries beyond
//! resending a request that never reached a closed keep-alive connection.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;

use super::scenario::{Connections, Network};

/// What a request is for; each class has its own latency histogram and error count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Mint,
    Heartbeat,
    Playlist,
    Segment,
    Stats,
}

impl Class {
    pub const ALL: [Class; 5] = [
        Class::Mint,
        Class::Heartbeat,
        Class::Playlist,
        Class::Segment,
        Class::Stats,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::Mint => "mint",
            Class::Heartbeat => "heartbeat",
            Class::Playlist => "playlist",
            Class::Segment => "segment",
            Class::Stats => "stats",
        }
    }
}

fn histogram() -> Histogram<u64> {
    // Microseconds from 1 µs to 10 min at 2 significant figures: a few kB per histogram.
    Histogram::new_with_bounds(1, 600_000_000, 2).expect("constant bounds are valid")
}

/// Counters of one request class. A mutex around the histograms is enough: recording is a
/// few nanoseconds and the simulator runs on two threads.
#[derive(Debug)]
pub struct ClassMetrics {
    /// Requests answered (any status).
    pub requests: AtomicU64,
    /// Transport errors, timeouts, and answers other than success or shedding.
    pub errors: AtomicU64,
    /// 429 or 503: the server shedding load (the client backs off).
    pub shed: AtomicU64,
    /// Body bytes received.
    pub bytes: AtomicU64,
    total: Mutex<Histogram<u64>>,
    window: Mutex<Histogram<u64>>,
}

/// Latency summary of a class, milliseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

impl ClassMetrics {
    fn new() -> Self {
        ClassMetrics {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            shed: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            total: Mutex::new(histogram()),
            window: Mutex::new(histogram()),
        }
    }

    fn record(&self, elapsed: Duration) {
        let us = (elapsed.as_micros() as u64).clamp(1, 600_000_000);
        for h in [&self.total, &self.window] {
            h.lock()
                .unwrap_or_else(|p| p.into_inner())
                .saturating_record(us);
        }
    }

    /// Latency over the whole run.
    pub fn total(&self) -> Latency {
        Latency::of(&self.total.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Latency since the last call (for the progress line), then starts a new window.
    pub fn take_window(&self) -> Latency {
        let mut h = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let latency = Latency::of(&h);
        h.reset();
        latency
    }
}

/// Every class's counters.
#[derive(Debug)]
pub struct Metrics {
    classes: [ClassMetrics; 5],
}

impl Metrics {
    pub fn new() -> Self {
        Metrics {
            classes: std::array::from_fn(|_| ClassMetrics::new()),
        }
    }

    pub fn class(&self, class: Class) -> &ClassMetrics {
        &self.classes[class as usize]
    }

    pub fn requests(&self) -> u64 {
        self.classes
            .iter()
            .map(|c| c.requests.load(Ordering::Relaxed))
            .sum()
    }

    pub fn errors(&self) -> u64 {
        self.classes
            .iter()
            .map(|c| c.errors.load(Ordering::Relaxed))
            .sum()
    }
}

/// An answer: the status, the headers the simulator reads, and the body (or its length).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    /// `Retry-After` in seconds.
    pub retry_after: Option<u64>,
    /// `X-Monsoon-Beat`: what the server did with a heartbeat.
    pub beat: Option<String>,
    /// The body, when asked for; else empty.
    pub body: Bytes,
    pub len: u64,
}

/// A request without an answer.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    /// No connection could be made: the server certainly never saw the request.
    pub connect: bool,
}

impl Failure {
    fn unsent(message: &str) -> Self {
        Failure {
            message: message.to_owned(),
            connect: true,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

type HyperClient = Client<HttpConnector, Full<Bytes>>;

/// The origin as viewers reach it.
#[derive(Debug)]
pub struct Http {
    base: String,
    connections: Connections,
    sources: Vec<Option<IpAddr>>,
    shared: Vec<HyperClient>,
    pool: Option<Arc<Semaphore>>,
    timeout: Duration,
    pub metrics: Arc<Metrics>,
    next: AtomicUsize,
}

/// One viewer's way to the origin: its own client in direct mode, a share of the pool in
/// pooled mode. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Conn {
    client: HyperClient,
    pool: Option<Arc<Semaphore>>,
}

/// The server closes keep-alive connections idle for `header_timeout_s` (10 s by default);
/// the client must drop them first, or a request sent on a connection the server is closing
/// fails for no fault of the server.
const IDLE_TIMEOUT: Duration = Duration::from_secs(8);

fn client(source: Option<IpAddr>, max_idle: usize) -> HyperClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_local_address(source);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_max_idle_per_host(max_idle)
        .build(connector)
}

impl Http {
    pub fn new(base: &str, network: &Network) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        let uri: Uri = base
            .parse()
            .map_err(|e| anyhow::anyhow!("--url `{base}` is not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            anyhow::bail!(
                "--url `{base}` must be http://host[:port] (the simulator speaks plain HTTP/1.1)"
            );
        }
        let sources: Vec<Option<IpAddr>> = if network.source_addrs.is_empty() {
            vec![None]
        } else {
            network.source_addrs.iter().copied().map(Some).collect()
        };
        let (shared, pool) = match network.connections {
            Connections::Direct => (Vec::new(), None),
            Connections::Pooled => {
                // Split the pool over the source addresses; the semaphore bounds requests in
                // flight, so connections never exceed `pool_size`.
                let per = network.pool_size.div_ceil(sources.len());
                (
                    sources.iter().map(|s| client(*s, per)).collect(),
                    Some(Arc::new(Semaphore::new(network.pool_size))),
                )
            }
        };
        Ok(Http {
            base,
            connections: network.connections,
            sources,
            shared,
            pool,
            timeout: Duration::from_secs_f64(network.request_timeout_s),
            metrics: Arc::new(Metrics::new()),
            next: AtomicUsize::new(0),
        })
    }

    /// A connection handle for one viewer.
    pub fn conn(&self) -> Conn {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        match self.connections {
            // Two idle connections: a heartbeat may go out while a segment downloads.
            Connections::Direct => Conn {
                client: client(self.sources[i % self.sources.len()], 2),
                pool: None,
            },
            Connections::Pooled => Conn {
                client: self.shared[i % self.shared.len()].clone(),
                pool: self.pool.clone(),
            },
        }
    }

    /// Sends one request and records it under `class`. `keep_body`: return the body (else
    /// only its length is counted, as a player's media buffer would take it).
    pub async fn send(
        &self,
        conn: &Conn,
        class: Class,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        keep_body: bool,
    ) -> Result<Reply, Failure> {
        let metrics = self.metrics.class(class);
        // Latency includes waiting for a pooled connection: a pool too small shows up here.
        let started = Instant::now();
        let _permit = match &conn.pool {
            Some(pool) => Some(
                pool.acquire()
                    .await
                    .map_err(|_| Failure::unsent("the connection pool closed"))?,
            ),
            None => None,
        };
        let result = tokio::time::timeout(
            self.timeout,
            exchange(&conn.client, &self.base, method, path, body, keep_body),
        )
        .await
        .unwrap_or_else(|_| {
            Err(Failure {
                message: format!("no answer within {:?}", self.timeout),
                connect: false,
            })
        });
        match &result {
            Ok(reply) => {
                metrics.requests.fetch_add(1, Ordering::Relaxed);
                metrics.bytes.fetch_add(reply.len, Ordering::Relaxed);
                metrics.record(started.elapsed());
                if matches!(
                    reply.status,
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                ) {
                    metrics.shed.fetch_add(1, Ordering::Relaxed);
                } else if !reply.status.is_success() {
                    metrics.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(_) => {
                metrics.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }
}

async fn exchange(
    client: &HyperClient,
    base: &str,
    method: Method,
    path: &str,
    body: Option<Bytes>,
    keep_body: bool,
) -> Result<Reply, Failure> {
    let uri: Uri = format!("{base}{path}")
        .parse()
        .map_err(|e| Failure::unsent(&format!("{base}{path}: {e}")))?;
    let mut request = Request::builder().method(method).uri(uri);
    if body.is_some() {
        // What players send: no CORS preflight, and sendBeacon cannot set another type.
        request = request.header(hyper::header::CONTENT_TYPE, "text/plain");
    }
    let request = request
        .body(Full::new(body.unwrap_or_default()))
        .map_err(|e| Failure::unsent(&e.to_string()))?;
    let response = client.request(request).await.map_err(|e| Failure {
        message: chain(&e),
        connect: e.is_connect(),
    })?;
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let retry_after = header("retry-after").and_then(|v| v.parse().ok());
    let beat = header("x-monsoon-beat");
    let mut incoming = response.into_body();
    let mut len = 0u64;
    let mut kept = Vec::new();
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| Failure {
            message: format!("body: {}", chain(&e)),
            connect: false,
        })?;
        if let Ok(data) = frame.into_data() {
            len += data.len() as u64;
            if keep_body {
                kept.extend_from_slice(&data);
            }
        }
    }
    Ok(Reply {
        status,
        retry_after,
        beat,
        body: Bytes::from(kept),
        len,
    })
}

/// An error with its causes: hyper's own message ("client error (Connect)") names no cause.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
