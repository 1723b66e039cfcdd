//! Who is asking: the client's address (through trusted proxies), and the limits kept per
//! address — open connections ([`PerAddress`]) and operator sign-in attempts ([`RateLimit`]).
//!
//! Limits are kept per *address key*: an IPv4 address, or the /64 prefix of an IPv6 address,
//! since one IPv6 host is handed a whole /64 (RFC 4291 §2.5.4, RFC 7421) and could otherwise
//! step around any per-address limit by changing its interface identifier.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::http::HeaderMap;

/// The TCP peer of a request, put in its extensions by the connection layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub SocketAddr);

/// The key limits are kept under (see the module docs).
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Networks whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed (`[serve]
/// trusted_proxies`): the reverse proxy or load balancer in front, and nothing else, since
/// anyone can send those headers.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Parses addresses (`10.0.0.5`) and networks in CIDR notation (`10.0.0.0/8`,
    /// `fd00::/8`, RFC 4632 §3.1).
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut networks = Vec::with_capacity(entries.len());
        for entry in entries {
            let bad = |why: &str| {
                format!(
                    "[serve] trusted_proxies: `{entry}` {why}; write an address (10.0.0.5) or a network (10.0.0.0/8)"
                )
            };
            let (addr, len) = match entry.split_once('/') {
                Some((addr, len)) => (addr, Some(len)),
                None => (entry.as_str(), None),
            };
            let ip: IpAddr = addr
                .trim()
                .parse()
                .map_err(|_| bad("is not an IP address"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len = match len {
                Some(len) => len
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|l| *l <= max)
                    .ok_or_else(|| bad(&format!("has a prefix length outside 0..={max}")))?,
                None => max,
            };
            networks.push((ip, len));
        }
        Ok(Self(networks))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|&(net, len)| in_network(ip, net, len))
    }
}

/// An IPv4-mapped IPv6 address (a dual-stack listener's view of an IPv4 peer) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn in_network(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// The address of the client behind a request: the TCP peer, or — when the peer is a trusted
/// proxy — the nearest address in `X-Forwarded-For` that is not a trusted proxy itself
/// (entries further left were written by the client and prove nothing).
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = canonical(peer);
    if !trusted.contains(peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map_while(|hop| hop.trim().parse::<IpAddr>().ok())
        .collect();
    hops.iter()
        .rev()
        .map(|ip| canonical(*ip))
        .find(|ip| !trusted.contains(*ip))
        .or_else(|| hops.first().copied())
        .unwrap_or(peer)
}

/// Whether the client reached the site over HTTPS, as far as the server can know: the site's
/// configured `public_url` is `https://` (a TLS-terminating proxy or CDN in front), or a
/// trusted proxy says so in `X-Forwarded-Proto`.
pub(crate) fn https(
    public_url: Option<&str>,
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> bool {
    if public_url.is_some_and(|url| url.starts_with("https://")) {
        return true;
    }
    trusted.contains(canonical(peer))
        && headers
            .get_all("x-forwarded-proto")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// Open connections per address key, capped (`[serve] max_connections_per_addr`).
#[derive(Debug)]
pub(crate) struct PerAddress {
    cap: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One admitted connection, counted until dropped.
#[derive(Debug)]
pub(crate) struct Admitted {
    table: Arc<PerAddress>,
    key: IpAddr,
}

impl PerAddress {
    pub fn new(cap: u32) -> Self {
        Self {
            cap,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a new connection from `ip`, or `None` if its address already has `cap` open.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let key = address_key(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(Admitted {
            table: Arc::clone(self),
            key,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self
            .table
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Addresses a [`RateLimit`] remembers at most; beyond, it forgets those whose allowance has
/// refilled (they are as good as new), and refuses newcomers if none has.
const MAX_TRACKED: usize = 65_536;

/// Attempts per key (an address, an operator's name): a token bucket holding `per_minute`
/// attempts, refilled at `per_minute` a minute.
#[derive(Debug)]
pub(crate) struct RateLimit<K = IpAddr> {
    per_minute: u32,
    buckets: Mutex<HashMap<K, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl<K: std::hash::Hash + Eq> RateLimit<K> {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn burst(&self) -> f64 {
        f64::from(self.per_minute)
    }

    /// Tokens per second.
    fn rate(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.rate()).min(self.burst())
    }

    /// Takes one attempt for `key` at `now`; when none is left, the whole seconds until one is.
    pub fn take_key(&self, key: K, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&key) {
            let burst = self.burst();
            buckets.retain(|_, b| self.refilled(b, now) < burst);
            if buckets.len() >= MAX_TRACKED {
                return Err(60);
            }
        }
        let fresh = Bucket {
            tokens: self.burst(),
            at: now,
        };
        let bucket = buckets.entry(key).or_insert(fresh);
        bucket.tokens = self.refilled(bucket, now);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            // Less a microsecond, so float rounding never adds a whole second.
            let wait = (1.0 - bucket.tokens) / self.rate() - 1e-6;
            Err(wait.ceil().max(1.0) as u64)
        }
    }

    /// Gives back an attempt taken for a request that was then refused for another reason.
    pub fn refund_key(&self, key: &K) {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(bucket) = buckets.get_mut(key) {
            bucket.tokens = (bucket.tokens + 1.0).min(self.burst());
        }
    }
}

impl RateLimit<IpAddr> {
    /// Takes one attempt for `ip` (IPv6 by its /64) at `now`.
    pub fn take(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        self.take_key(address_key(ip), now)
    }

    pub fn refund(&self, ip: IpAddr) {
        self.refund_key(&address_key(ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_addresses_are_kept_by_their_64_bit_prefix() {
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa::1")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            address_key(ip("2001:db8:1:2:bbbb::9")),
            address_key(ip("2001:db8:1:2::1"))
        );
        assert_ne!(
            address_key(ip("2001:db8:1:3::1")),
            address_key(ip("2001:db8:1:2::1"))
        );
        assert_eq!(address_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(address_key(ip("192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn trusted_proxies_are_addresses_and_networks() {
        let trusted =
            TrustedProxies::parse(&["10.0.0.0/8".into(), "192.0.2.1".into(), "fd00::/8".into()])
                .unwrap();
        assert!(trusted.contains(ip("10.200.3.4")));
        assert!(trusted.contains(ip("::ffff:10.1.1.1")));
        assert!(trusted.contains(ip("192.0.2.1")));
        assert!(!trusted.contains(ip("192.0.2.2")));
        assert!(trusted.contains(ip("fd12::1")));
        assert!(!trusted.contains(ip("2001:db8::1")));
        let all = TrustedProxies::parse(&["0.0.0.0/0".into()]).unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            let err = TrustedProxies::parse(&[bad.into()]).unwrap_err();
            assert!(
                err.contains(bad) && err.contains("trusted_proxies"),
                "{err}"
            );
        }
    }

    #[test]
    fn the_client_is_the_nearest_untrusted_hop() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.9, 10.0.0.3".parse().unwrap(),
        );
        // From the proxy: the client it saw (the forged left entry is ignored).
        assert_eq!(
            client_ip(ip("10.0.0.2"), &headers, &trusted),
            ip("203.0.113.9")
        );
        // From anyone else, the header is the sender's own words: the peer counts.
        assert_eq!(
            client_ip(ip("198.51.100.1"), &headers, &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn https_is_known_from_the_public_url_or_a_trusted_proxy() {
        let trusted = TrustedProxies::parse(&["127.0.0.1".into()]).unwrap();
        let mut forwarded = HeaderMap::new();
        forwarded.insert("x-forwarded-proto", "https".parse().unwrap());
        let none = HeaderMap::new();
        let peer = ip("127.0.0.1");
        let stranger = ip("127.0.0.2");
        assert!(https(
            Some("https://phim.example"),
            stranger,
            &none,
            &trusted
        ));
        assert!(!https(Some("http://phim.example"), peer, &none, &trusted));
        assert!(https(None, peer, &forwarded, &trusted));
        assert!(!https(None, stranger, &forwarded, &trusted));
    }

    #[test]
    fn a_connection_cap_counts_open_connections_per_address() {
        let table = Arc::new(PerAddress::new(2));
        let a = ip("192.0.2.1");
        let first = table.admit(a).unwrap();
        let _second = table.admit(a).unwrap();
        assert!(table.admit(a).is_none());
        assert!(table.admit(ip("192.0.2.2")).is_some());
        drop(first);
        assert!(table.admit(a).is_some());
    }

    #[test]
    fn a_rate_limit_allows_a_burst_then_one_attempt_per_refill() {
        let limit = RateLimit::new(3);
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limit.take(a, t0), Ok(()));
        }
        // 3 a minute: the next attempt is 20 s away.
        assert_eq!(limit.take(a, t0), Err(20));
        assert_eq!(limit.take(ip("192.0.2.2"), t0), Ok(()));
        assert_eq!(limit.take(a, t0 + Duration::from_secs(19)), Err(1));
        assert_eq!(limit.take(a, t0 + Duration::from_secs(21)), Ok(()));
        limit.refund(a);
        assert_eq!(limit.take(a, t0 + Duration::from_secs(21)), Ok(()));
        assert!(limit.take(a, t0 + Duration::from_secs(21)).is_err());
    }
}
