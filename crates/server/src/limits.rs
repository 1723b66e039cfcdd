//! The limits of the HTTP listener, shared by the accept loop ([`crate::conn`]) and the media
//! fast path ([`crate::fast`]).

use std::time::Duration;

/// Timeouts and limits of the HTTP listener.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// A client must deliver a request's headers within this time of the server waiting for
    /// them: on a new connection, and between requests on a keep-alive one (its idle timeout).
    pub header_timeout: Duration,
    /// A request body must arrive whole within this time of its head.
    pub body_timeout: Duration,
    /// A response write may make no progress for this long before the connection is dropped.
    pub write_timeout: Duration,
    /// Largest request head (request line plus headers), bytes; larger gets 431.
    pub max_header_bytes: usize,
    /// On shutdown, readiness turns false at once but connections are still accepted this
    /// long, so load balancers polling `/readyz` stop sending before the port closes.
    pub readiness_grace: Duration,
    /// Then in-flight responses get this long to finish.
    pub drain_deadline: Duration,
    /// Connections one address (IPv4, or IPv6 /64) may hold open; 0 for no limit.
    pub max_connections_per_addr: u32,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
            readiness_grace: Duration::from_secs(2),
            drain_deadline: Duration::from_secs(10),
            max_connections_per_addr: 1024,
        }
    }
}
