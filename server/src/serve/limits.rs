//! [`ConnectionLimits`]: the deadlines and the cap of every connection, their defaults,
//! and the cap as the file limit allows it.

use std::time::Duration;

/// File descriptors kept out of the connection cap: the listener, Redis (one multiplexed
/// connection, a pool of 16, a connection per cluster node), the Vonage client's pool,
/// stdio, the runtime's own. Generous: running out of them fails requests, not
/// connections.
pub const FD_RESERVE: u64 = 128;

/// Deadlines and the cap that keep slow or idle clients from holding connections
/// (README, "Connections").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `HTTP_HEADER_TIMEOUT`: the whole request head, from `accept` or from the first
    /// byte of a later request.
    pub header_timeout: Duration,
    /// `HTTP_BODY_TIMEOUT`: the whole request body, once the head is in (enforced by the
    /// HTTP adapter, which answers 408).
    pub body_timeout: Duration,
    /// `HTTP_IDLE_TIMEOUT`: between a response and the first byte of the next request.
    pub idle_timeout: Duration,
    /// `HTTP_SEND_TIMEOUT`: a write that makes no progress (the client does not read).
    pub send_timeout: Duration,
    /// `HTTP_MAX_CONNECTIONS`: open connections, before the file-limit clamp.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            // A head is one or two TCP segments: 10 s covers retransmissions on a bad
            // mobile network, and bounds a slowloris connection to 10 s.
            header_timeout: Duration::from_secs(10),
            // 16 KiB (MAX_BODY_BYTES) at 2G speeds takes a few seconds; 1 MiB, the
            // largest allowed, about 3 minutes there. 30 s is generous for this API.
            body_timeout: Duration::from_secs(30),
            // Longer than the idle timeout of common load balancers (AWS ALB and nginx
            // upstreams: 60 s), so the balancer, not us, closes a pooled connection and
            // never sends a request on one we just closed (a 502).
            idle_timeout: Duration::from_secs(75),
            // nginx's `send_timeout` is 60 s; a stall of 30 s is several TCP
            // retransmission timeouts.
            send_timeout: Duration::from_secs(30),
            max_connections: 4096,
        }
    }
}

/// The cap actually used: `configured`, clamped below the file limit minus
/// [`FD_RESERVE`]. Raises the soft `RLIMIT_NOFILE` to the hard one first (as Go's runtime
/// does), since a soft limit of 1024 is still a common default.
pub fn effective_max_connections(configured: usize) -> usize {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

    let limit = getrlimit(Resource::Nofile);
    let mut soft = limit.current;
    // `None` is unlimited.
    let below_hard = match (limit.current, limit.maximum) {
        (Some(soft), Some(hard)) => soft < hard,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if below_hard {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => soft = limit.maximum,
            Err(e) => tracing::warn!(error = %e, "cannot raise the soft file limit"),
        }
    }
    match soft {
        None => configured,
        Some(soft) => {
            let room = usize::try_from(soft.saturating_sub(FD_RESERVE))
                .unwrap_or(usize::MAX)
                .max(1);
            if room < configured {
                tracing::warn!(
                    configured,
                    effective = room,
                    file_limit = soft,
                    "HTTP_MAX_CONNECTIONS is above the file limit (RLIMIT_NOFILE) minus a reserve; using the lower cap"
                );
            }
            configured.min(room)
        }
    }
}
