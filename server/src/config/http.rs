//! The HTTP side: where to listen, what a request may be, whom to trust for the client's
//! address, every connection's deadlines and their cap, and the shutdown grace.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Args;
use ipnet::IpNet;

use super::error::{ConfigError, err};
use super::values::{Span, count, entries, span_in, span_where};
use super::vars::{
    BIND_ADDR, HTTP_BODY_TIMEOUT, HTTP_HEADER_TIMEOUT, HTTP_IDLE_TIMEOUT, HTTP_MAX_CONNECTIONS,
    HTTP_SEND_TIMEOUT, MAX_BODY_BYTES, SHUTDOWN_GRACE, TRUSTED_PROXIES,
};
use crate::serve::ConnectionLimits;

/// Shortest connection deadline: below it a healthy client on a slow network is cut.
pub const MIN_HTTP_TIMEOUT: Duration = Duration::from_millis(100);
/// Most connections `HTTP_MAX_CONNECTIONS` may allow (the file limit clamps it further).
pub const MAX_HTTP_CONNECTIONS: usize = 1_000_000;

/// What the HTTP server is built from.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub bind_addr: SocketAddr,
    pub max_body_bytes: usize,
    /// Proxies whose `X-Forwarded-For` names the client; empty: the TCP peer is the client.
    pub trusted_proxies: Vec<IpNet>,
    /// Read deadlines, the idle and send bounds, and the cap on open connections.
    pub connections: ConnectionLimits,
    /// After SIGTERM/SIGINT: how long in-flight requests (and the SMS in hand) get to finish.
    pub shutdown_grace: Duration,
}

#[derive(Args, Clone, Debug)]
pub struct HttpArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = BIND_ADDR,
        value_name = "ADDR",
        default_value_t = SocketAddr::from(([127, 0, 0, 1], 8080)),
        value_parser = bind_addr,
    )]
    pub bind_addr: SocketAddr,

    /// Largest accepted request body, in bytes (256 to 1048576).
    #[arg(
        long,
        env = MAX_BODY_BYTES,
        value_name = "BYTES",
        default_value_t = adapter_http::DEFAULT_MAX_BODY_BYTES,
        value_parser = body_bytes,
    )]
    pub max_body_bytes: usize,

    /// Comma-separated addresses or CIDR networks (`10.0.0.0/8, ::1`) of reverse proxies
    /// whose `X-Forwarded-For` names the client; unset: the TCP peer is always the client.
    #[arg(long, env = TRUSTED_PROXIES, value_name = "NETS")]
    pub trusted_proxies: Option<String>,

    /// Time for a whole request head to arrive, from `accept` or from the request's first
    /// byte (100ms to 5m).
    #[arg(
        long,
        env = HTTP_HEADER_TIMEOUT,
        value_name = "DURATION",
        default_value_t = Span(ConnectionLimits::default().header_timeout),
        value_parser = span_in(MIN_HTTP_TIMEOUT, Duration::from_secs(300), "100ms and 5m"),
    )]
    pub http_header_timeout: Span,

    /// Time for a whole request body to arrive once the head is in; then 408 (100ms to
    /// 10m).
    #[arg(
        long,
        env = HTTP_BODY_TIMEOUT,
        value_name = "DURATION",
        default_value_t = Span(ConnectionLimits::default().body_timeout),
        value_parser = span_in(MIN_HTTP_TIMEOUT, Duration::from_secs(600), "100ms and 10m"),
    )]
    pub http_body_timeout: Span,

    /// How long a keep-alive connection may wait for the first byte of its next request
    /// (100ms to 1h; keep a load balancer's idle timeout below it).
    #[arg(
        long,
        env = HTTP_IDLE_TIMEOUT,
        value_name = "DURATION",
        default_value_t = Span(ConnectionLimits::default().idle_timeout),
        value_parser = span_in(MIN_HTTP_TIMEOUT, Duration::from_secs(3600), "100ms and 1h"),
    )]
    pub http_idle_timeout: Span,

    /// How long a response may make no progress because the client does not read it
    /// (100ms to 10m).
    #[arg(
        long,
        env = HTTP_SEND_TIMEOUT,
        value_name = "DURATION",
        default_value_t = Span(ConnectionLimits::default().send_timeout),
        value_parser = span_in(MIN_HTTP_TIMEOUT, Duration::from_secs(600), "100ms and 10m"),
    )]
    pub http_send_timeout: Span,

    /// Open connections; more wait in the listen backlog (1 to 1000000, clamped to the
    /// file limit minus a reserve).
    #[arg(
        long,
        env = HTTP_MAX_CONNECTIONS,
        value_name = "N",
        default_value_t = ConnectionLimits::default().max_connections,
        value_parser = count::<usize, 1, { MAX_HTTP_CONNECTIONS as u64 }>,
    )]
    pub http_max_connections: usize,

    /// After SIGTERM/SIGINT, how long in-flight requests get to finish (at most 5m).
    #[arg(
        long,
        env = SHUTDOWN_GRACE,
        value_name = "DURATION",
        default_value_t = Span(Duration::from_secs(10)),
        value_parser = span_where(|d| d <= Duration::from_secs(300), "must be at most 5m"),
    )]
    pub shutdown_grace: Span,
}

impl HttpArgs {
    /// # Errors
    /// A `TRUSTED_PROXIES` entry that is neither an address nor a network.
    pub fn build(self) -> Result<HttpSettings, ConfigError> {
        let trusted_proxies = match &self.trusted_proxies {
            None => Vec::new(),
            Some(raw) => entries(raw).map(trusted_proxy).collect::<Result<_, _>>()?,
        };
        Ok(HttpSettings {
            bind_addr: self.bind_addr,
            max_body_bytes: self.max_body_bytes,
            trusted_proxies,
            connections: ConnectionLimits {
                header_timeout: self.http_header_timeout.0,
                body_timeout: self.http_body_timeout.0,
                idle_timeout: self.http_idle_timeout.0,
                send_timeout: self.http_send_timeout.0,
                max_connections: self.http_max_connections,
            },
            shutdown_grace: self.shutdown_grace.0,
        })
    }
}

fn bind_addr(raw: &str) -> Result<SocketAddr, String> {
    raw.trim()
        .parse()
        .map_err(|_| format!("expected an address such as 127.0.0.1:8080, got '{raw}'"))
}

fn body_bytes(raw: &str) -> Result<usize, String> {
    count::<usize, 256, { 1024 * 1024 }>(raw)
        .map_err(|_| "expected a byte count between 256 and 1048576".to_owned())
}

/// An address or a network, truncated to its prefix (`10.1.2.3/8` is `10.0.0.0/8`).
fn trusted_proxy(entry: &str) -> Result<IpNet, ConfigError> {
    entry
        .parse::<IpNet>()
        .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| {
            err(
                TRUSTED_PROXIES,
                format!(
                    "expected a comma-separated list of addresses or CIDR networks (10.0.0.0/8, ::1), got '{entry}'"
                ),
            )
        })
}
