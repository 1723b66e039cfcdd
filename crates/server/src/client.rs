//! Who is asking: the client's address, and the limits kept per address: open connections
//! ([`PerAddress`]).
//!
//! Limits are kept per *address key*: an IPv4 address, or the /64 prefix of an IPv6 address,
//! since one IPv6 host is handed a whole /64 (RFC 4291 §2.5.4, RFC 7421) and could otherwise
//! step around any per-address limit by changing its interface identifier.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
