//! What a GET or HEAD of an object comes to, from its validators and the request's
//! preconditions, range and accepted encodings (RFC 9110 §13 conditional requests, §14 range
//! requests, §12.5.3 Accept-Encoding). Pure functions of the headers, whichever HTTP path
//! parsed them.

use std::time::SystemTime;

use axum::http::HeaderMap;
use monsoon_catalog::ObjectInfo;

/// A request's header values, whoever parsed it (hyper for the router, or the fast path).
pub(crate) trait RequestHeaders {
    /// The first value of header `name` (given in lowercase), if it is visible ASCII.
    fn value(&self, name: &str) -> Option<&str>;
}

impl RequestHeaders for HeaderMap {
    fn value(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The outcome of a GET or HEAD of an object, from its validators and the request's
/// preconditions and range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// 412: an `If-Match` or `If-Unmodified-Since` failed.
    PreconditionFailed,
    /// 304: the client's copy is current.
    NotModified,
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
    /// 200 with the whole representation.
    Whole,
    /// 206 with bytes `start..=end`.
    Part(u64, u64),
}

/// Applies the preconditions and the range to an object last modified at `last_modified`
/// (`last_modified_http` as an HTTP date), in the order of RFC 9110 §13.2.2.
pub(crate) fn decide(
    req: &impl RequestHeaders,
    is_get: bool,
    info: &ObjectInfo,
    last_modified: SystemTime,
    last_modified_http: &str,
) -> Decision {
    let etag = info.etag.as_str();
    let date = |name: &str| httpdate::parse_http_date(req.value(name)?).ok();
    let modified_after = |since: SystemTime| seconds(last_modified) > seconds(since);

    // 1-2. If-Match (strong comparison), else If-Unmodified-Since → 412.
    if let Some(value) = req.value("if-match") {
        if !etag_list_matches(value, etag, Comparison::Strong) {
            return Decision::PreconditionFailed;
        }
    } else if date("if-unmodified-since").is_some_and(modified_after) {
        return Decision::PreconditionFailed;
    }
    // 3-4. If-None-Match (weak comparison), else If-Modified-Since → 304 for GET and HEAD.
    let not_modified = match req.value("if-none-match") {
        Some(value) => etag_list_matches(value, etag, Comparison::Weak),
        None => date("if-modified-since").is_some_and(|since| !modified_after(since)),
    };
    if not_modified {
        return Decision::NotModified;
    }
    // 5. Range, for GET only (§14.2), unless If-Range names another version (§13.1.5).
    match req.value("range") {
        Some(range) if is_get && if_range_holds(req, etag, last_modified_http) => {
            match parse_range(range, info.size) {
                RangeAnswer::Whole => Decision::Whole,
                RangeAnswer::Part(start, end) => Decision::Part(start, end),
                RangeAnswer::Unsatisfiable => Decision::Unsatisfiable,
            }
        }
        _ => Decision::Whole,
    }
}

/// Whether the request's `Accept-Encoding` accepts gzip (RFC 9110 §12.5.3): `gzip` (or its
/// alias `x-gzip`) listed with a non-zero quality, or else `*` with one.
pub(crate) fn accepts_gzip(req: &impl RequestHeaders) -> bool {
    let Some(value) = req.value("accept-encoding") else {
        return false;
    };
    let mut any = false;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        let quality = parts
            .find_map(|p| {
                let p = p.trim();
                p.strip_prefix("q=").or_else(|| p.strip_prefix("Q="))
            })
            .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok());
        let accepted = quality.is_some_and(|q| q > 0.0);
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return accepted;
        }
        if coding == "*" {
            any = accepted;
        }
    }
    any
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    /// Both tags strong and identical (RFC 9110 §8.8.3.2).
    Strong,
    /// Identical once any `W/` prefix is dropped.
    Weak,
}

/// Whether an `If-Match` / `If-None-Match` list (`*`, or comma-separated tags) matches `etag`.
fn etag_list_matches(value: &str, etag: &str, comparison: Comparison) -> bool {
    if value.trim() == "*" {
        return true;
    }
    value.split(',').map(str::trim).any(|candidate| {
        let (weak, tag) = match candidate.strip_prefix("W/") {
            Some(tag) => (true, tag),
            None => (false, candidate),
        };
        tag == etag && (comparison == Comparison::Weak || !weak)
    })
}

/// `If-Range` (RFC 9110 §13.1.5): the range applies only if the validator names this exact
/// representation — a strong entity tag, or exactly its Last-Modified date.
fn if_range_holds(req: &impl RequestHeaders, etag: &str, lm: &str) -> bool {
    match req.value("if-range") {
        None => true,
        Some(v) if v.starts_with('"') => v == etag,
        Some(v) if v.starts_with("W/") => false,
        Some(v) => v == lm,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum RangeAnswer {
    /// Serve the whole representation with 200 (no range, several ranges, or bad syntax).
    Whole,
    /// Serve bytes `start..=end` with 206.
    Part(u64, u64),
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

/// RFC 9110 §14.1.2. Several ranges get the whole body (no multipart: it only helps an
/// attacker amplify, CVE-2011-3192); syntax errors are ignored as §14.2 allows.
fn parse_range(value: &str, size: u64) -> RangeAnswer {
    use http_range_header::{EndPosition, RangeUnsatisfiableError, StartPosition};
    let parsed = match http_range_header::parse_range_header(value) {
        Ok(parsed) => parsed,
        // `bytes=-0` asks for nothing: unsatisfiable rather than malformed.
        Err(RangeUnsatisfiableError::ZeroSuffix) => return RangeAnswer::Unsatisfiable,
        Err(_) => return RangeAnswer::Whole,
    };
    let [range] = parsed.ranges.as_slice() else {
        return RangeAnswer::Whole;
    };
    if size == 0 {
        return RangeAnswer::Unsatisfiable;
    }
    let start = match range.start {
        StartPosition::Index(i) => i,
        // A suffix longer than the representation selects all of it.
        StartPosition::FromLast(n) => size.saturating_sub(n),
    };
    let end = match range.end {
        EndPosition::Index(i) => i.min(size - 1),
        EndPosition::LastByte => size - 1,
    };
    if start >= size || start > end {
        RangeAnswer::Unsatisfiable
    } else {
        RangeAnswer::Part(start, end)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, header};

    use super::*;

    #[test]
    fn ranges_per_rfc_9110() {
        use RangeAnswer::*;
        assert_eq!(parse_range("bytes=0-99", 1000), Part(0, 99));
        assert_eq!(parse_range("bytes=900-", 1000), Part(900, 999));
        assert_eq!(parse_range("bytes=-100", 1000), Part(900, 999));
        assert_eq!(parse_range("bytes=-5000", 1000), Part(0, 999));
        assert_eq!(parse_range("bytes=990-2000", 1000), Part(990, 999));
        assert_eq!(parse_range("bytes=1000-", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-0", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-9", 1000), Whole);
        assert_eq!(parse_range("items=0-1", 1000), Whole);
        assert_eq!(parse_range("bytes=abc", 1000), Whole);
    }

    #[test]
    fn entity_tag_comparison() {
        let tag = "\"abc\"";
        assert!(etag_list_matches("\"abc\"", tag, Comparison::Strong));
        assert!(etag_list_matches("\"x\", \"abc\"", tag, Comparison::Strong));
        assert!(!etag_list_matches("W/\"abc\"", tag, Comparison::Strong));
        assert!(etag_list_matches("W/\"abc\"", tag, Comparison::Weak));
        assert!(etag_list_matches("*", tag, Comparison::Strong));
        assert!(!etag_list_matches("\"abcd\"", tag, Comparison::Weak));
    }

    #[test]
    fn accept_encoding_per_rfc_9110() {
        let accepts = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).unwrap(),
            );
            accepts_gzip(&headers)
        };
        assert!(accepts("gzip"));
        assert!(accepts("gzip, deflate, br, zstd"));
        assert!(accepts("br;q=1.0, GZIP;q=0.5"));
        assert!(accepts("x-gzip"));
        assert!(accepts("identity, *;q=0.1"));
        assert!(!accepts("br;q=1.0, gzip;q=0"));
        assert!(!accepts("gzip;q=0.000, *"));
        assert!(!accepts("br, deflate"));
        assert!(!accepts("identity"));
        assert!(!accepts("*;q=0"));
        assert!(!accepts("gzip;q=abc"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    /// Header values by name, as a test writes them.
    struct Values(Vec<(&'static str, String)>);

    impl RequestHeaders for Values {
        fn value(&self, name: &str) -> Option<&str> {
            self.0
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// Range header values: anything, and near misses of the RFC 9110 §14.1.1 grammar.
        fn range_value() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                "bytes=[0-9]{0,21}-[0-9]{0,21}",
                "bytes=-[0-9]{0,21}",
                "(bytes|Bytes|items)? ?= ?[0-9]{0,4} ?- ?[0-9]{0,4}(, ?[0-9]{0,4}-[0-9]{0,4}){0,2}",
            ]
        }

        fn object_size() -> impl Strategy<Value = u64> {
            prop_oneof![Just(0u64), Just(1), 0..100_000u64, any::<u64>()]
        }

        proptest! {
            #[test]
            fn a_range_never_reaches_outside_the_object(value in range_value(), size in object_size()) {
                if let RangeAnswer::Part(start, end) = parse_range(&value, size) {
                    prop_assert!(start <= end && end < size, "{value:?} of {size}: {start}-{end}");
                }
            }

            #[test]
            fn a_single_range_is_served_as_asked(start in 0..10_000u64, len in 1..10_000u64, size in 1..20_000u64) {
                let end = start + len - 1;
                let answer = parse_range(&format!("bytes={start}-{end}"), size);
                if start < size {
                    prop_assert_eq!(answer, RangeAnswer::Part(start, end.min(size - 1)));
                } else {
                    prop_assert_eq!(answer, RangeAnswer::Unsatisfiable);
                }
            }

            #[test]
            fn conditionals_and_ranges_together_stay_inside_the_object(
                values in proptest::collection::vec((0..6usize, prop_oneof![
                    any::<String>(),
                    Just("\"e\"".to_owned()),
                    Just("W/\"e\"".to_owned()),
                    Just("*".to_owned()),
                    Just("Thu, 01 Jan 1970 00:00:00 GMT".to_owned()),
                    range_value(),
                ]), 0..6),
                size in object_size(),
                is_get: bool,
            ) {
                const NAMES: [&str; 6] =
                    ["if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "range", "if-range"];
                let req = Values(values.into_iter().map(|(i, v)| (NAMES[i], v)).collect());
                let info = ObjectInfo { size, etag: "\"e\"".to_owned() };
                let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
                let decision = decide(&req, is_get, &info, at, &httpdate::fmt_http_date(at));
                if let Decision::Part(start, end) = decision {
                    prop_assert!(is_get && start <= end && end < size, "{decision:?} of {size}");
                }
            }
        }
    }
}
