//! The `Host` header rule of RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request)
//! status code to any HTTP/1.1 request message that lacks a Host header field and to any
//! request message that contains more than one Host header field line or a Host header field
//! with an invalid field value."
//!
//! The router checks every request (`edge.rs`); the fast path hands requests that
//! break the rule to the router, so both paths give the same 400.

use axum::http::{HeaderMap, Version, header};

/// Whether `value` is a valid `Host` (RFC 9110 §7.2): `uri-host [ ":" port ]`, where `uri-host`
/// is an IP literal in brackets, an IPv4 address or a registered name (RFC 3986 §3.2.2). The
/// name may not be empty: an `http` URI with an empty host is invalid (RFC 9110 §4.2.1).
pub(crate) fn valid_host(value: &[u8]) -> bool {
    let (host, port) = if value.first() == Some(&b'[') {
        let Some(end) = value.iter().position(|&b| b == b']') else {
            return false;
        };
        let Ok(literal) = std::str::from_utf8(&value[1..end]) else {
            return false;
        };
        if literal.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match &value[end + 1..] {
            [] => (&value[..=end], None),
            [b':', port @ ..] => (&value[..=end], Some(port)),
            _ => return false,
        }
    } else {
        match value.iter().position(|&b| b == b':') {
            Some(colon) => (&value[..colon], Some(&value[colon + 1..])),
            None => (value, None),
        }
    };
    let port_ok = port.is_none_or(|p| p.iter().all(u8::is_ascii_digit));
    let name_ok = host.first() == Some(&b'[') || (!host.is_empty() && reg_name(host));
    port_ok && name_ok
}

/// `reg-name = *( unreserved / pct-encoded / sub-delims )` (RFC 3986 §3.2.2); IPv4 addresses
/// are made of the same characters.
fn reg_name(name: &[u8]) -> bool {
    let mut i = 0;
    while i < name.len() {
        let b = name[i];
        if b == b'%' {
            let hex = name.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
            continue;
        }
        let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        let sub_delim = matches!(
            b,
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
        );
        if !(unreserved || sub_delim) {
            return false;
        }
        i += 1;
    }
    true
}

/// Why a request breaks the `Host` rule, if it does. HTTP/1.0 may omit the header; HTTP/2
/// carries the authority in `:authority` instead (RFC 9113 §8.3.1), but neither may send two or
/// an invalid one.
pub(crate) fn host_problem(version: Version, headers: &HeaderMap) -> Option<String> {
    let mut hosts = headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) if version == Version::HTTP_11 => Some(
            "the request has no Host header; HTTP/1.1 requests must carry exactly one (RFC 9112 §3.2)"
                .into(),
        ),
        (None, _) => None,
        (Some(_), Some(_)) => Some(format!(
            "the request has {} Host headers; it may carry only one (RFC 9112 §3.2)",
            headers.get_all(header::HOST).iter().count()
        )),
        (Some(value), None) if valid_host(value.as_bytes()) => None,
        (Some(value), None) => {
            let shown: String = String::from_utf8_lossy(value.as_bytes())
                .chars()
                .take(100)
                .collect();
            Some(format!(
                "Host `{shown}` is not a valid host[:port] (RFC 9110 §7.2, RFC 3986 §3.2.2)"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn hosts_follow_rfc_3986() {
        for good in [
            "example.com",
            "phim.example.vn:443",
            "127.0.0.1:8080",
            "[::1]:8080",
            "[2001:db8::1]",
            "xn--phim-abc.vn",
            "a%20b",
            "t",
            "host:",
        ] {
            assert!(valid_host(good.as_bytes()), "{good} is valid");
        }
        for bad in [
            "",
            ":80",
            "exa mple.com",
            "example.com:80:80",
            "example.com:http",
            "user@example.com",
            "example.com/path",
            "[::1",
            "[nope]",
            "[::1]x",
            "a%2",
            "a%zz",
            "é.vn",
            "evil.com\\@good.com",
        ] {
            assert!(!valid_host(bad.as_bytes()), "{bad:?} is invalid");
        }
    }

    #[test]
    fn one_valid_host_is_required_of_http_1_1() {
        let mut headers = HeaderMap::new();
        assert!(host_problem(Version::HTTP_11, &headers).is_some());
        assert!(host_problem(Version::HTTP_10, &headers).is_none());
        assert!(host_problem(Version::HTTP_2, &headers).is_none());
        headers.insert(header::HOST, HeaderValue::from_static("example.com"));
        assert!(host_problem(Version::HTTP_11, &headers).is_none());
        headers.append(header::HOST, HeaderValue::from_static("other.example"));
        let two = host_problem(Version::HTTP_2, &headers).unwrap();
        assert!(two.contains("2 Host headers"), "{two}");
        headers.insert(header::HOST, HeaderValue::from_static("bad host"));
        let bad = host_problem(Version::HTTP_10, &headers).unwrap();
        assert!(bad.contains("`bad host`"), "{bad}");
    }
}
