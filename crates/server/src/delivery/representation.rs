//! A media response as data: what is sent for a GET or HEAD of an object, decided once from
//! the request and the object, then written by whichever HTTP path serves the request — the
//! router into a `HeaderMap`, the fast path into the bytes of its response head. Both write
//! the same headers in the same order because both call [`Representation::write_headers`];
//! the origin test `the_fast_path_answers_byte_for_byte_as_the_router` holds them to it.

use std::fmt::{self, Write as _};

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::Target;
use super::conditional::{Decision, RequestHeaders, accepts_gzip, decide};

/// `Cache-Control` of a refusal (412, 416): short, like every error, so a cache never keeps
/// one past the object's next change.
const REFUSAL_CACHE: &str = "max-age=5";

/// Text bodies smaller than this go out as they are: gzip's framing and a `Vary` cost more
/// than compression saves on them.
const GZIP_MIN: u64 = 256;

/// The CORS response headers of every `/media` answer, errors included (the Fetch Standard's
/// CORS protocol): players on other origins read manifests and segments, with ranges and
/// validators. Preflights are answered by tower-http's CORS layer (`super::routes`).
pub(crate) const CORS: [(&str, &str); 3] = [
    (
        "vary",
        "origin, access-control-request-method, access-control-request-headers",
    ),
    ("access-control-allow-origin", "*"),
    (
        "access-control-expose-headers",
        "content-length,content-range,accept-ranges,etag",
    ),
];

/// Whether the responses for an object of `class` and `size` bytes depend on the request's
/// `Accept-Encoding`: text of [`GZIP_MIN`] bytes or more is sent gzipped to clients that
/// accept gzip.
pub(crate) fn varies_by_encoding(class: super::ObjectClass, size: u64) -> bool {
    class.is_compressible() && size >= GZIP_MIN
}

/// Where a response's headers go: a `HeaderMap` (the router) or the text of a response head
/// (the fast path). Names are lowercase.
pub(crate) trait HeaderSink {
    fn header(&mut self, name: &'static str, value: &str);
    /// A value to be formatted (numbers, or parts joined).
    fn header_fmt(&mut self, name: &'static str, value: fmt::Arguments<'_>);
}

impl HeaderSink for String {
    fn header(&mut self, name: &'static str, value: &str) {
        self.push_str(name);
        self.push_str(": ");
        self.push_str(value);
        self.push_str("\r\n");
    }

    fn header_fmt(&mut self, name: &'static str, value: fmt::Arguments<'_>) {
        let _ = write!(self, "{name}: {value}\r\n");
    }
}

impl HeaderSink for HeaderMap {
    fn header(&mut self, name: &'static str, value: &str) {
        // Every value is built from validated parts (the object index's tags, our dates and
        // numbers); one that is not a valid field value is left out rather than sent broken.
        if let Ok(value) = HeaderValue::from_str(value) {
            self.append(HeaderName::from_static(name), value);
        }
    }

    fn header_fmt(&mut self, name: &'static str, value: fmt::Arguments<'_>) {
        self.header(name, &value.to_string());
    }
}

/// The answer to a GET or HEAD of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Representation {
    pub decision: Decision,
    /// Whether the gzip copy is what a 200 carries (or what a 304 confirms). Its bytes differ
    /// from the object's, so its tag is weak (as nginx's gzip module makes it) and caches
    /// never mix the two. A range is always of the object itself.
    pub gzip: bool,
}

impl Representation {
    /// Decides the answer from the request's preconditions, range and `Accept-Encoding`.
    pub fn of(target: &Target<'_>, req: &impl RequestHeaders, is_get: bool) -> Self {
        let decision = decide(
            req,
            is_get,
            &target.info,
            target.version.last_modified,
            &target.version.last_modified_http,
        );
        let gzip = matches!(decision, Decision::Whole | Decision::NotModified)
            && varies_by_encoding(target.class, target.info.size)
            && accepts_gzip(req);
        Self { decision, gzip }
    }

    pub fn status(&self) -> StatusCode {
        match self.decision {
            Decision::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Decision::NotModified => StatusCode::NOT_MODIFIED,
            Decision::Unsatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
            Decision::Whole => StatusCode::OK,
            Decision::Part(..) => StatusCode::PARTIAL_CONTENT,
        }
    }

    /// Bytes of the body of a 200 or 206: the part asked for, the gzip copy (of
    /// `gzipped_len` bytes) or the whole object; none for the other statuses.
    pub fn length(&self, size: u64, gzipped_len: Option<usize>) -> u64 {
        match self.decision {
            Decision::Part(start, end) => end - start + 1,
            Decision::Whole => match gzipped_len {
                Some(len) if self.gzip => len as u64,
                _ => size,
            },
            _ => 0,
        }
    }

    /// Every header of the response but those of the connection (`Date`, `Connection`), in
    /// the order both paths send them. `length` is [`Representation::length`].
    pub fn write_headers(&self, target: &Target<'_>, length: u64, out: &mut impl HeaderSink) {
        let (info, class) = (&target.info, target.class);
        let lm = target.version.last_modified_http.as_str();
        let etag = info.etag.as_str();
        match self.decision {
            Decision::PreconditionFailed => {
                out.header("etag", etag);
                out.header("last-modified", lm);
                out.header("cache-control", REFUSAL_CACHE);
            }
            Decision::Unsatisfiable => {
                out.header_fmt("content-range", format_args!("bytes */{}", info.size));
                out.header("cache-control", REFUSAL_CACHE);
            }
            Decision::NotModified | Decision::Whole | Decision::Part(..) => {
                if self.gzip {
                    out.header_fmt("etag", format_args!("W/{etag}"));
                } else {
                    out.header("etag", etag);
                }
                out.header("last-modified", lm);
                out.header("cache-control", target.cache_control());
            }
        }
        if matches!(self.decision, Decision::Whole | Decision::Part(..)) {
            out.header("content-type", class.content_type(target.file));
            if self.gzip {
                out.header("content-encoding", "gzip");
            } else {
                out.header("accept-ranges", "bytes");
            }
            if let Decision::Part(start, end) = self.decision {
                out.header_fmt(
                    "content-range",
                    format_args!("bytes {start}-{end}/{}", info.size),
                );
            }
            out.header_fmt("content-length", format_args!("{length}"));
        }
        out.header("x-content-type-options", "nosniff");
        if varies_by_encoding(class, info.size) {
            out.header("vary", "accept-encoding");
        }
        for (name, value) in CORS {
            out.header(name, value);
        }
    }
}
