//! Reading a request head on the fast path: httparse, then the rules that decide whether the
//! fast path answers it (RFC 9112 §2–3) or hands it to hyper.

use crate::delivery::RequestHeaders;

/// Requests with more headers than this go to hyper (which allows 100).
pub(crate) const MAX_HEADERS: usize = 32;
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
