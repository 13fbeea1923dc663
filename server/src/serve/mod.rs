//! The HTTP/1.1 server loop: connections accepted under a cap, every connection under
//! deadlines, and graceful shutdown. A slow or idle client holds one connection for a
//! bounded time, and never more than its share of the cap.
//!
//! # Why not `poem::Server`
//! poem 3.1's server builds hyper-util's `auto::Builder` without a timer, so hyper's
//! header read timeout never runs; its idle timeout only fires on a connection with no
//! I/O at all (a client trickling one byte every few seconds defeats it) and spawns a
//! task per connection to watch; it has no connection cap, and it ignores `accept`
//! errors, so at the file limit it spins. Here hyper's HTTP/1.1 connection is driven
//! directly and the poem endpoint is called per request. The request is built by poem's
//! own `From<(http::Request<Incoming>, LocalAddr, RemoteAddr, Scheme)>`, exactly as
//! poem's server builds it, so middleware sees the same request (`RemoteAddr` included,
//! which login throttling and `TrustedProxies` read).
//!
//! HTTP/1.1 only: h2c (cleartext HTTP/2 with prior knowledge) is not served. This API's
//! clients and the load balancers in front of it speak HTTP/1.1 to it, and HTTP/2 would
//! need deadlines of its own per stream.
//!
//! # Layout
//! - here: [`serve`], the accept loop under the cap, each connection served by hyper
//!   and drained on shutdown; [`ConnectionMetrics`].
//! - `limits`: [`ConnectionLimits`] and [`effective_max_connections`].
//! - `deadlines`: the connection's phase, and the socket wrapper that enforces its
//!   deadlines and lingers on close.
//!
//! # Deadlines
//! Each connection is in one of three phases, and `deadlines::Deadlines`, a wrapper around the
//! socket, enforces the bound of the phase it is in whenever hyper waits for bytes:
//! - **head**: from `accept`, or from the first byte of a later request, until the
//!   whole request head has arrived: at most `HTTP_HEADER_TIMEOUT`. A client sending
//!   half a head, however slowly, is cut then.
//! - **idle**: after a response, until the first byte of the next request: at most
//!   `HTTP_IDLE_TIMEOUT`. Separate from the head bound so that a load balancer's pooled
//!   connections can stay open longer than a head may take to arrive.
//! - **busy**: a request is being served. The body's deadline is the HTTP adapter's
//!   (`HTTP_BODY_TIMEOUT`, a 408), the handler's are the store's and the hasher's.
//!
//! In every phase, a write that makes no progress for `HTTP_SEND_TIMEOUT` (a client
//! that does not read its responses) ends the connection. hyper's own header timeout
//! is not used: it starts when hyper begins waiting for a head, so it cannot tell an
//! idle keep-alive connection from a slow head.
//!
//! # The cap
//! A permit of a semaphore sized `HTTP_MAX_CONNECTIONS` is taken *before* `accept` and
//! held by the connection. At the cap the server stops accepting: new clients wait in
//! the kernel's listen backlog until a connection ends (deadlines guarantee one does),
//! instead of the process running out of file descriptors. The cap is clamped below
//! `RLIMIT_NOFILE` minus [`FD_RESERVE`], after raising the soft limit to the hard one.
//! An `accept` error that is not about one connection (`EMFILE`, `ENFILE`, `ENOBUFS`,
//! `ENOMEM`) pauses accepting for [`ACCEPT_BACKOFF`] instead of spinning.

mod deadlines;
mod limits;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use poem::endpoint::BoxEndpoint;
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Endpoint, Response};
use prometheus::{IntCounterVec, IntGauge, Opts};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

pub use deadlines::LINGER;
use deadlines::{Deadlines, Exchange, deadline_of};
pub use limits::{ConnectionLimits, FD_RESERVE, effective_max_connections};

/// How long `accept` pauses after an error such as `EMFILE`.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Largest request head (request line and headers). Node.js's default; ample for a
/// bearer token (at most 4 KiB), cookies and proxy headers, and with the cap it bounds
/// what slow heads can make the server buffer. Over it hyper answers 431 and closes.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// What the server loop reports on `/metrics`.
#[derive(Clone, Debug)]
pub struct ConnectionMetrics {
    open: IntGauge,
    cut: IntCounterVec,
}

impl ConnectionMetrics {
    /// Registers `jwt_todo_http_connections`, `jwt_todo_http_connections_max` (set to
    /// `cap`) and `jwt_todo_http_connections_cut_total{reason}`.
    ///
    /// # Errors
    /// The names are already registered.
    pub fn register(registry: &prometheus::Registry, cap: usize) -> prometheus::Result<Self> {
        let open = IntGauge::new("jwt_todo_http_connections", "Open client connections.")?;
        let max = IntGauge::new(
            "jwt_todo_http_connections_max",
            "Connections the server accepts at once (HTTP_MAX_CONNECTIONS, clamped by the file limit).",
        )?;
        let cut = IntCounterVec::new(
            Opts::new(
                "jwt_todo_http_connections_cut_total",
                "Connections ended by a deadline: header_timeout, idle_timeout, send_timeout.",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(open.clone()))?;
        registry.register(Box::new(max.clone()))?;
        registry.register(Box::new(cut.clone()))?;
        max.set(i64::try_from(cap).unwrap_or(i64::MAX));
        Ok(Self { open, cut })
    }
}

/// How connections end when the server stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Stopping {
    Serving,
    /// Finish the request in flight, then close; idle connections close at once.
    Draining,
    /// The grace period is over: drop whatever is left.
    Cut,
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting at once,
/// lets connections finish their request in flight for up to `grace` and cuts the rest.
///
/// # Errors
/// None today: `accept` errors are logged and retried. The signature keeps room for a
/// listener that can fail for good.
pub async fn serve(
    listener: TcpListener,
    app: BoxEndpoint<'static, Response>,
    limits: ConnectionLimits,
    metrics: ConnectionMetrics,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
) -> io::Result<()> {
    let local = listener.local_addr()?;
    let app = Arc::new(app);
    let cap = limits.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(cap));
    let (stopping, stop) = watch::channel(Stopping::Serving);
    tokio::pin!(shutdown);

    loop {
        // The permit first: at the cap, clients wait in the kernel's backlog.
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_closed) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if about_one_connection(&e) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; pausing");
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    }
                }
            },
        };
        tokio::spawn(serve_connection(Connection {
            stream,
            peer,
            local,
            app: Arc::clone(&app),
            limits,
            metrics: metrics.clone(),
            stop: stop.clone(),
            _permit: permit,
        }));
    }

    // Closing the listener refuses new connections (and resets those still in its
    // backlog: they were never in flight).
    drop(listener);
    let _ = stopping.send(Stopping::Draining);
    let all = u32::try_from(cap).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after SHUTDOWN_GRACE; closing their connections");
        let _ = stopping.send(Stopping::Cut);
        // Cut connections end at their next poll; do not wait on a stuck one forever.
        let _ = tokio::time::timeout(Duration::from_secs(1), slots.acquire_many(all)).await;
    }
    Ok(())
}

/// `accept` errors that concern the one connection being accepted (it was reset before
/// we took it, ...): the next `accept` may well succeed at once.
fn about_one_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// One accepted connection and what it needs to be served.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    app: Arc<BoxEndpoint<'static, Response>>,
    limits: ConnectionLimits,
    metrics: ConnectionMetrics,
    stop: watch::Receiver<Stopping>,
    /// A slot of the cap, given back when the connection ends.
    _permit: OwnedSemaphorePermit,
}

async fn serve_connection(connection: Connection) {
    let Connection {
        stream,
        peer,
        local,
        app,
        limits,
        metrics,
        mut stop,
        _permit,
    } = connection;
    let _open = OpenConnection::new(&metrics.open);

    let exchange = Arc::new(Exchange::new());
    let io = Deadlines::new(stream, limits, Arc::clone(&exchange));
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        // Called once the head is in, before hyper reads on: the connection is busy
        // until the response body is dropped (written, or the connection ended).
        let done = exchange.request_started();
        let app = Arc::clone(&app);
        async move {
            let req = poem::Request::from((
                req,
                LocalAddr(local.into()),
                RemoteAddr(peer.into()),
                Scheme::HTTP,
            ));
            let response: hyper::Response<_> = app.get_response(req).await.into();
            Ok::<_, Infallible>(response.map(|body| done.track(body)))
        }
    });

    let mut builder = http1::Builder::new();
    builder
        // Our deadlines replace it (see the module docs); without a timer hyper would
        // otherwise warn that its 30 s default cannot run.
        .header_read_timeout(None)
        .max_header_size(MAX_HEAD_BYTES);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);

    let served = tokio::select! {
        served = conn.as_mut() => Some(served),
        _ = stop.wait_for(|s| *s >= Stopping::Draining) => None,
    };
    let served = match served {
        Some(served) => served,
        None => {
            // Idle: closes now. Busy: finishes the request, answers it with
            // `Connection: close`, then closes.
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                served = conn.as_mut() => served,
                _ = stop.wait_for(|s| *s == Stopping::Cut) => return,
            }
        }
    };
    if let Err(e) = served {
        match deadline_of(&e) {
            Some(reason) => {
                metrics.cut.with_label_values(&[reason.label()]).inc();
                tracing::debug!(%peer, reason = reason.label(), "connection cut");
            }
            None => tracing::debug!(%peer, error = %e, "connection ended with an error"),
        }
    }
}

/// Counts a connection in `jwt_todo_http_connections` while alive.
struct OpenConnection(IntGauge);

impl OpenConnection {
    fn new(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}
