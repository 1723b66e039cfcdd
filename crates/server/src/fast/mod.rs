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
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use rustix::fs::{Mode, OFlags};
use rustix::net::SendFlags;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use crate::AppState;
use crate::conn::ConnLimits;
use crate::delivery::{
    Decision, ObjectClass, RequestHeaders, Target, accepts_gzip, decide, load, load_gzipped,
    resolve, varies_by_encoding,
};

/// Requests with more headers than this go to hyper (which allows 100).
pub(crate) const MAX_HEADERS: usize = 32;
/// Bodies of at least this many bytes are sent from their file with `sendfile(2)`; smaller
/// ones from the memory cache (see BENCHMARKS.md for the measurement behind the choice).
pub(crate) const SENDFILE_MIN: u64 = 64 * 1024;
/// Files kept open for `sendfile`, like nginx's `open_file_cache`. Each costs a descriptor,
/// and the process has 20,000 for connections and files together.
const OPEN_FILES: usize = 1024;
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

/// The fast path's share of the server: the app state and the open files.
#[derive(Debug)]
pub(crate) struct FastPath {
    state: AppState,
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
    pub fn new(state: AppState) -> Self {
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
            let deadline = Instant::now() + limits.header_timeout;
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
        let size = target.info.size;
        let headers = Headers(headers);
        // As the router: the gzip copy for a whole object of text, to clients that take it.
        let gzip = varies_by_encoding(target.class, size) && accepts_gzip(&headers);
        let (status, range) = match decide(&headers, is_get, &target.info, &target.live) {
            Decision::Whole => (200, None),
            Decision::Part(start, end) => (206, Some((start, end))),
            Decision::NotModified => (304, None),
            Decision::PreconditionFailed | Decision::Unsatisfiable => return None,
        };
        let gzipped = if gzip && status == 200 {
            match gzipped.or_else(|| self.state.hot.get(&format!("{}#gzip", target.key()))) {
                Some(bytes) => Some(bytes),
                None => return Some(Plan::Compress(target.key())),
            }
        } else {
            None
        };
        let length = match (&gzipped, range) {
            (Some(bytes), _) => bytes.len() as u64,
            (None, Some((start, end))) => end - start + 1,
            (None, None) => size,
        };
        let representation = Representation {
            status,
            range,
            length,
            gzip,
        };
        let head = response_head(&representation, &target, close);
        let body = match gzipped {
            _ if !is_get || status == 304 => None,
            Some(bytes) => Some(Body::Gzipped(bytes)),
            None => Some(Body::Object {
                key: target.key(),
                start: range.map_or(0, |(start, _)| start),
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
            let bytes = reply.length.map_or("-".to_owned(), |n| n.to_string());
            tracing::info!(
                target: "monsoon::access",
                %method,
                %path,
                status = reply.status,
                bytes,
                micros = took.as_micros() as u64,
            );
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

/// What the head at the start of a buffer comes to, before anything is looked up.
pub(crate) enum Reading<'h, 'b> {
    /// The head is not complete yet.
    Incomplete,
    /// Not for the fast path (or not HTTP): hyper answers it.
    Defer,
    /// A request the fast path may answer, its headers, and the length of its head.
    Media {
        head: MediaHead<'b>,
        headers: &'h [httparse::Header<'b>],
        len: usize,
    },
}

/// Parses the request head at the start of `buf` with httparse, into `headers`, and applies
/// [`media_head`]'s rules.
pub(crate) fn read_head<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [httparse::Header<'b>; MAX_HEADERS],
    stopping: bool,
) -> Reading<'h, 'b> {
    let mut request = httparse::Request::new(headers);
    match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => match media_head(&request, stopping) {
            Some(head) => Reading::Media {
                head,
                headers: request.headers,
                len,
            },
            None => Reading::Defer,
        },
        Ok(httparse::Status::Partial) => Reading::Incomplete,
        Err(_) => Reading::Defer,
    }
}

/// A `GET` or `HEAD` of `/media/…` the fast path may answer, as its head says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MediaHead<'b> {
    pub method: &'static str,
    pub is_get: bool,
    /// The request target without its query.
    pub path: &'b str,
    pub slug: &'b str,
    /// The rest of the path after the slug (`{version}/{file}` or a top-level manifest).
    pub object: &'b str,
    /// The connection ends after the answer (`Connection: close`, or the server drains).
    pub close: bool,
}

/// The fast path's rules for a parsed head: HTTP/1.1 `GET` or `HEAD` of `/media/{slug}/…`
/// with nothing to percent-decode, one `Host`, no body, no upgrade and no `Expect`. `None`
/// hands the request to hyper.
pub(crate) fn media_head<'b>(
    request: &httparse::Request<'_, 'b>,
    stopping: bool,
) -> Option<MediaHead<'b>> {
    let (method, is_get) = match request.method? {
        "GET" => ("GET", true),
        "HEAD" => ("HEAD", false),
        _ => return None,
    };
    if request.version != Some(1) {
        return None;
    }
    let uri = request.path?;
    let path = uri.split_once('?').map_or(uri, |(path, _)| path);
    // The router percent-decodes paths; the fast path takes only those with nothing to
    // decode, so both see the same object name.
    if path.contains('%') {
        return None;
    }
    let (slug, object) = path.strip_prefix("/media/")?.split_once('/')?;

    let mut close = stopping;
    let mut hosts = 0;
    for header in request.headers.iter() {
        let name = header.name;
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("host") {
            // The router answers 400 to a missing, repeated or invalid Host (RFC 9112
            // §3.2), with the same bytes on either path.
            if !crate::host::valid_host(header.value) {
                return None;
            }
            hosts += 1;
        } else if is("content-length") {
            if header.value != b"0" {
                return None;
            }
        } else if is("transfer-encoding") || is("upgrade") || is("expect") {
            return None;
        } else if is("connection") {
            for token in header.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"upgrade") {
                    return None;
                }
            }
        }
    }
    if hosts != 1 {
        return None;
    }
    Some(MediaHead {
        method,
        is_get,
        path,
        slug,
        object,
        close,
    })
}

/// httparse's headers, read as the router reads a `HeaderMap`.
pub(crate) struct Headers<'h, 'b>(pub &'h [httparse::Header<'b>]);

impl RequestHeaders for Headers<'_, '_> {
    fn value(&self, name: &str) -> Option<&str> {
        let header = self.0.iter().find(|h| h.name.eq_ignore_ascii_case(name))?;
        // `HeaderValue::to_str`'s rule: visible ASCII and tabs only.
        header
            .value
            .iter()
            .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
            .then(|| std::str::from_utf8(header.value).ok())
            .flatten()
    }
}

/// What a response sends, as far as its head tells.
struct Representation {
    status: u16,
    /// The bytes of a 206.
    range: Option<(u64, u64)>,
    /// `Content-Length` (not sent on a 304).
    length: u64,
    /// Whether the gzip copy is the representation a 200 (or the one a 304 confirms) carries.
    gzip: bool,
}

/// The status line and headers, as the router and its layers (nosniff, CORS) write them.
fn response_head(r: &Representation, target: &Target<'_>, close: bool) -> String {
    let class = target.class;
    let mut h = String::with_capacity(640);
    let reason = match r.status {
        200 => "OK",
        206 => "Partial Content",
        _ => "Not Modified",
    };
    // A 206 is always of the object itself, whose tag is strong; the gzip copy's is weak.
    let weak = if r.gzip && r.status != 206 { "W/" } else { "" };
    let _ = write!(
        h,
        "HTTP/1.1 {} {reason}\r\netag: {weak}{}\r\nlast-modified: {}\r\ncache-control: {}\r\n",
        r.status,
        target.info.etag,
        target.live.last_modified_http,
        target.cache_control()
    );
    if r.status != 304 {
        let _ = write!(h, "content-type: {}\r\n", class.content_type(target.file));
        if r.gzip && r.status == 200 {
            h.push_str("content-encoding: gzip\r\n");
        } else {
            h.push_str("accept-ranges: bytes\r\n");
        }
        if let Some((start, end)) = r.range {
            let _ = write!(
                h,
                "content-range: bytes {start}-{end}/{}\r\n",
                target.info.size
            );
        }
        let _ = write!(h, "content-length: {}\r\n", r.length);
    }
    h.push_str("x-content-type-options: nosniff\r\n");
    if varies_by_encoding(class, target.info.size) {
        h.push_str("vary: accept-encoding\r\n");
    }
    h.push_str(
        "vary: origin, access-control-request-method, access-control-request-headers\r\n\
         access-control-allow-origin: *\r\n\
         access-control-expose-headers: content-length,content-range,accept-ranges,etag\r\n",
    );
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

/// A connection with the deadlines of [`ConnLimits`], kept with one timer that is moved only
/// when a deadline comes earlier (re-arming a timer on every wait costs at 1,000 connections).
struct Conn<'l> {
    stream: TcpStream,
    limits: &'l ConnLimits,
    timer: Pin<Box<Sleep>>,
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
    fn new() -> Self {
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
    fn new(stream: TcpStream, limits: &'l ConnLimits) -> Self {
        let far = Instant::now() + Duration::from_secs(365 * 86_400);
        let flavor = tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor());
        Self {
            stream,
            limits,
            timer: Box::pin(tokio::time::sleep_until(far)),
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
        if deadline < self.timer.deadline() {
            self.timer.as_mut().reset(deadline);
        }
        let stopped = async move {
            match stop {
                Some(stop) => {
                    let _ = stop.wait_for(|stopping| *stopping).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                biased;
                ready = self.stream.ready(interest) => {
                    ready?;
                    return Ok(());
                }
                () = &mut stopped => return Err(io::Error::other("draining")),
                () = self.timer.as_mut() => {
                    if Instant::now() >= deadline {
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                    self.timer.as_mut().reset(deadline);
                }
            }
        }
    }

    /// Appends what has arrived to `buf`; 0 at EOF. Reads go through a per-thread scratch
    /// buffer, so a connection allocates only for the bytes it actually received (a
    /// readiness event with nothing to read, or an idle connection, costs no buffer).
    async fn read(
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
                    let deadline = since + self.limits.write_timeout;
                    self.ready(Interest::WRITABLE, deadline, None).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn write_all(&mut self, mut head: &[u8], mut body: &[u8]) -> io::Result<()> {
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
    async fn send_file(
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn media_head_of(buf: &[u8]) -> Option<(MediaHead<'_>, usize)> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match read_head(buf, &mut headers, false) {
            Reading::Media { head, len, .. } => Some((head, len)),
            _ => None,
        }
    }

    #[test]
    fn what_the_fast_path_takes_and_what_it_hands_over() {
        fn head(text: &str) -> Option<MediaHead<'_>> {
            media_head_of(text.as_bytes()).map(|(h, _)| h)
        }
        let ok =
            head("GET /media/film/v1/v360/seg_00001.m4s?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!(
            (ok.slug, ok.object, ok.close),
            ("film", "v1/v360/seg_00001.m4s", false)
        );
        let close = head(
            "HEAD /media/f/master.m3u8 HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n",
        );
        assert!(close.is_some_and(|h| h.close && !h.is_get));
        for deferred in [
            "POST /media/f/master.m3u8 HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /media/f/master.m3u8 HTTP/1.0\r\nHost: a\r\n\r\n",
            "GET /media/f/%2e%2e/x HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /media/f/master.m3u8 HTTP/1.1\r\n\r\n",
            "GET /media/f/master.m3u8 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET /media/f/master.m3u8 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
            "GET /media/f/master.m3u8 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /media/f/master.m3u8 HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\r\n",
            "GET /api/v1/films HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /media/film HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            assert!(head(deferred).is_none(), "{deferred:?}");
        }
    }

    proptest! {
        #[test]
        fn any_bytes_are_read_without_panicking(buf in proptest::collection::vec(any::<u8>(), 0..2048)) {
            if let Some((_, len)) = media_head_of(&buf) {
                prop_assert!(len <= buf.len());
            }
        }

        #[test]
        fn any_header_values_are_read_without_panicking(
            name in "[A-Za-z-]{1,20}",
            value in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut buf = b"GET /media/f/v1/a.m4s HTTP/1.1\r\nHost: a\r\n".to_vec();
            buf.extend_from_slice(name.as_bytes());
            buf.extend_from_slice(b": ");
            buf.extend_from_slice(&value);
            buf.extend_from_slice(b"\r\n\r\n");
            // A value may hold a bare LF, which httparse takes as a line end: the head can end
            // before the buffer does, never after it.
            if let Some((head, len)) = media_head_of(&buf) {
                prop_assert!(len <= buf.len());
                prop_assert_eq!(head.object, "v1/a.m4s");
            }
        }
    }
}
