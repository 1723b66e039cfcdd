//! The HTTP/1.1 fast path of `/media`: the requests players and CDN caches make all day,
//! answered without hyper or the router.
//!
//! At 1,000 connections the origin's cost is copying segments into sockets and the per-request
//! work of a general HTTP stack (BENCHMARKS.md, Origin). This path reads a request head with
//! `httparse`, resolves it against the live catalog, and writes the response itself: bodies of
//! [`SENDFILE_MIN`] bytes or more with `sendfile(2)` from the page cache (no copy through user
//! space), smaller ones (playlists, and their gzip copies) from the hot memory cache. An idle
//! keep-alive connection holds no buffer.
//!
//! It answers only what it answers exactly as the router would: `GET` or `HEAD` over HTTP/1.1,
//! without a body, of an object of a film's current version, with the outcome 200, 206 or 304.
//! Every other request is handed, with the bytes already read, to hyper and the router, which
//! keep the connection from then on: errors, CORS preflights, HTTP/1.0, HTTP/2, the API and
//! the pages. The origin test
//! `the_fast_path_answers_byte_for_byte_as_the_router` holds the two to the same answers.

use std::fmt::Write as _;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use rustix::fs::{Mode, OFlags};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

mod head;
mod socket;

use head::MediaHead;
pub(crate) use head::{Headers, MAX_HEADERS, Reading, read_head};
use socket::Conn;

use crate::delivery::{
    Decision, Delivery, ObjectClass, Representation, Target, load, load_gzipped, resolve,
};
use crate::limits::ConnLimits;

/// Bodies of at least this many bytes are sent from their file with `sendfile(2)`; smaller
/// ones from the memory cache (see BENCHMARKS.md for the measurement behind the choice).
pub(crate) const SENDFILE_MIN: u64 = 64 * 1024;
/// Files kept open for `sendfile`, like nginx's `open_file_cache`. Each costs a descriptor,
/// and the process has 20,000 for connections and files together.
const OPEN_FILES: usize = 1024;
/// The fast path's share of the server: what delivery needs, and the open files.
#[derive(Debug)]
pub(crate) struct FastPath {
    state: Delivery,
    files: quick_cache::sync::Cache<String, Arc<std::fs::File>>,
    /// [`LiveCatalog::retired`](crate::live::LiveCatalog::retired) when `files` was last
    /// checked.
    files_retired: AtomicU64,
}

/// How a connection leaves the fast path.
#[derive(Debug)]
pub(crate) enum Exit {
    /// Closed: by the client, a deadline, an error, `Connection: close` or the drain.
    Closed,
    /// A request the fast path does not answer: hyper takes the connection over, starting with
    /// these bytes already read from it, and the head they begin must be complete by this
    /// deadline (one deadline per request, whichever path serves it).
    Handoff(TcpStream, Vec<u8>, Instant),
}

/// What one buffered request head comes to.
enum Plan {
    /// The head is not complete yet.
    Incomplete,
    /// Not for the fast path: hand the connection to hyper.
    Defer,
    /// The gzip copy of the object at this key is needed first.
    Compress(String),
    Reply(Reply),
}

/// A response decided while the request head was borrowed from the read buffer.
#[derive(Debug)]
struct Reply {
    /// Bytes of the request head, consumed once answered.
    request_len: usize,
    close: bool,
    head: String,
    body: Option<Body>,
    class: ObjectClass,
    status: u16,
    /// `Content-Length`, or none for 304.
    length: Option<u64>,
    started: std::time::Instant,
    /// Method and path, when access logging is on.
    log: Option<(&'static str, String)>,
}

#[derive(Debug)]
enum Body {
    /// Bytes `start..start + len` of the object at `key`.
    Object { key: String, start: u64, len: u64 },
    /// The object's gzip copy.
    Gzipped(bytes::Bytes),
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Object { len, .. } => *len,
            Body::Gzipped(bytes) => bytes.len() as u64,
        }
    }
}

impl FastPath {
    pub fn new(state: Delivery) -> Self {
        Self {
            state,
            files: quick_cache::sync::Cache::new(OPEN_FILES),
            files_retired: AtomicU64::new(0),
        }
    }

    /// Serves requests on `stream` until it closes or a request needs hyper. `stop` turns
    /// true when the server drains: idle connections then close, and the response in flight
    /// ends the connection.
    pub async fn serve(
        &self,
        stream: TcpStream,
        limits: &ConnLimits,
        stop: &mut watch::Receiver<bool>,
    ) -> Exit {
        let mut conn = Conn::new(stream, limits);
        let mut buf = Vec::new();
        loop {
            // A request's head must arrive within the header timeout of the server waiting
            // for it; bytes trickling in do not extend that (slowloris).
            let deadline = limits.head_deadline(Instant::now());
            let mut gzipped = None;
            let reply = loop {
                if !buf.is_empty() {
                    let stopping = *stop.borrow();
                    match self.plan(&buf, stopping, gzipped.take()) {
                        Plan::Reply(reply) => break reply,
                        Plan::Compress(key) => match load_gzipped(&self.state, &key).await {
                            // Planned again, with the copy at hand.
                            Ok(bytes) => {
                                gzipped = Some(bytes);
                                continue;
                            }
                            Err(_) => {
                                // The router answers the failure.
                                self.state.metrics.fast_path_handoff();
                                return Exit::Handoff(conn.stream, buf, deadline);
                            }
                        },
                        Plan::Incomplete if buf.len() < limits.max_header_bytes => {}
                        // Hyper answers oversized heads (431) and everything else.
                        Plan::Incomplete | Plan::Defer => {
                            self.state.metrics.fast_path_handoff();
                            return Exit::Handoff(conn.stream, buf, deadline);
                        }
                    }
                }
                match conn.read(&mut buf, deadline, stop).await {
                    Ok(n) if n > 0 => {}
                    _ => return Exit::Closed,
                }
            };
            buf.drain(..reply.request_len);
            if buf.is_empty() {
                // An idle connection holds no buffer.
                buf = Vec::new();
            }
            let close = reply.close;
            // Boxed: the task of an idle connection then holds only what waiting takes.
            if Box::pin(self.send(&mut conn, reply)).await.is_err() || close {
                return Exit::Closed;
            }
            if crate::coop::answered() {
                self.state.metrics.http_yield();
            }
        }
    }

    /// `gzipped`: the gzip copy of the object, if an earlier plan asked for it.
    fn plan(&self, buf: &[u8], stopping: bool, gzipped: Option<bytes::Bytes>) -> Plan {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match read_head(buf, &mut headers, stopping) {
            Reading::Incomplete => Plan::Incomplete,
            Reading::Defer => Plan::Defer,
            Reading::Media { head, headers, len } => self
                .reply(head, headers, len, gzipped)
                .unwrap_or(Plan::Defer),
        }
    }

    /// The response to the request `head`, if the fast path answers it (see the module docs).
    fn reply(
        &self,
        head: MediaHead<'_>,
        headers: &[httparse::Header<'_>],
        request_len: usize,
        gzipped: Option<bytes::Bytes>,
    ) -> Option<Plan> {
        let started = std::time::Instant::now();
        let MediaHead {
            method,
            is_get,
            path,
            slug,
            object,
            close,
        } = head;
        let target = resolve(&self.state, slug, object).ok()?;
        let answer = Representation::of(&target, &Headers(headers), is_get);
        // The router answers refusals (412, 416).
        if !matches!(
            answer.decision,
            Decision::Whole | Decision::Part(..) | Decision::NotModified
        ) {
            return None;
        }
        let gzipped = if answer.gzip && answer.decision == Decision::Whole {
            match gzipped.or_else(|| self.state.hot.get(&format!("{}#gzip", target.key()))) {
                Some(bytes) => Some(bytes),
                None => return Some(Plan::Compress(target.key())),
            }
        } else {
            None
        };
        let length = answer.length(target.info.size, gzipped.as_ref().map(|b| b.len()));
        let head = response_head(&answer, &target, length, close);
        let status = answer.status().as_u16();
        let range = match answer.decision {
            Decision::Part(start, _) => Some(start),
            _ => None,
        };
        let body = match gzipped {
            _ if !is_get || status == 304 => None,
            Some(bytes) => Some(Body::Gzipped(bytes)),
            None => Some(Body::Object {
                key: target.key(),
                start: range.unwrap_or(0),
                len: length,
            }),
        };
        Some(Plan::Reply(Reply {
            request_len,
            close,
            head,
            body,
            class: target.class,
            status,
            length: (status != 304).then_some(length),
            started,
            log: self.state.access_log.then(|| (method, path.to_owned())),
        }))
    }

    async fn send(&self, conn: &mut Conn<'_>, reply: Reply) -> io::Result<()> {
        // What the router's metric and access log measure: the time to a response ready to
        // send, not the transfer (a slow viewer's download is not a slow origin).
        let took = reply.started.elapsed();
        let head = reply.head.as_bytes();
        let result = match &reply.body {
            None => conn.write_all(head, &[]).await,
            Some(body) => self.send_body(conn, head, body).await,
        };
        if let Err(e) = &result {
            tracing::debug!(error = %e, "fast path: response not finished");
        }
        let sent = reply.body.as_ref().map_or(0, Body::len);
        let metrics = &self.state.metrics;
        metrics.media_request(reply.class, reply.status, sent, took);
        metrics.fast_path_request();
        if let Some((method, path)) = &reply.log {
            crate::access_line(method, path, reply.status, reply.length, took);
        }
        result
    }

    async fn send_body(&self, conn: &mut Conn<'_>, head: &[u8], body: &Body) -> io::Result<()> {
        let (key, start, len) = match body {
            Body::Gzipped(bytes) => return conn.write_all(head, bytes).await,
            Body::Object { key, start, len } => (key, *start, *len),
        };
        if len >= SENDFILE_MIN
            && let Some(file) = self.open(key)?
        {
            return conn.send_file(head, &file, start, len).await;
        }
        let bytes = load(&self.state, key)
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
        let end = usize::try_from(start + len).map_err(io::Error::other)?;
        let start = usize::try_from(start).map_err(io::Error::other)?;
        let part = bytes
            .get(start..end)
            .ok_or_else(|| io::Error::other(format!("{key} is shorter than its index says")))?;
        conn.write_all(head, part).await
    }

    /// The open file of `key`, or none if the store has no local files. Symlinks are not
    /// followed: published objects are regular files.
    ///
    /// Once a version is retired its files are deleted, and an open descriptor would keep
    /// their disk space (a 4K film's top rung alone is gigabytes): the cache is emptied at the
    /// next file response after that.
    fn open(&self, key: &str) -> io::Result<Option<Arc<std::fs::File>>> {
        let retired = self.state.live.retired();
        if self.files_retired.load(Ordering::Relaxed) != retired {
            self.files_retired.store(retired, Ordering::Relaxed);
            self.files.clear();
        }
        if let Some(file) = self.files.get(key) {
            return Ok(Some(file));
        }
        let Some(path) = self.state.media.local_path(key) else {
            return Ok(None);
        };
        let fd = rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .map_err(|e| io::Error::other(format!("opening {}: {e}", path.display())))?;
        let file = Arc::new(std::fs::File::from(fd));
        self.files.insert(key.to_owned(), Arc::clone(&file));
        Ok(Some(file))
    }
}

/// The status line and headers of `answer`, as the router writes them
/// ([`Representation::write_headers`]), then the connection's own.
fn response_head(answer: &Representation, target: &Target<'_>, length: u64, close: bool) -> String {
    let mut h = String::with_capacity(640);
    let status = answer.status();
    let _ = write!(
        h,
        "HTTP/1.1 {} {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or_default()
    );
    answer.write_headers(target, length, &mut h);
    if close {
        h.push_str("connection: close\r\n");
    }
    h.push_str("date: ");
    push_date(&mut h);
    h.push_str("\r\n\r\n");
    h
}

/// Appends the current HTTP date, formatted once a second per thread.
fn push_date(out: &mut String) {
    thread_local! {
        static DATE: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((0, String::new())) };
    }
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != secs || text.is_empty() {
            *text = httpdate::fmt_http_date(now);
            *at = secs;
        }
        out.push_str(text);
    });
}
