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
//! # Deadlines
//! Each connection is in one of three phases, and [`Deadlines`], a wrapper around the
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

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use poem::endpoint::BoxEndpoint;
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Endpoint, Response};
use prometheus::{IntCounterVec, IntGauge, Opts};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, Sleep};

/// File descriptors kept out of the connection cap: the listener, Redis (one multiplexed
/// connection, a pool of 16, a connection per cluster node), the Vonage client's pool,
/// stdio, the runtime's own. Generous: running out of them fails requests, not
/// connections.
pub const FD_RESERVE: u64 = 128;
/// How long `accept` pauses after an error such as `EMFILE`.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Largest request head (request line and headers). Node.js's default; ample for a
/// bearer token (at most 4 KiB), cookies and proxy headers, and with the cap it bounds
/// what slow heads can make the server buffer. Over it hyper answers 431 and closes.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// After a response that closes the connection, how long the server keeps reading (and
/// discarding) what the client still sends, so that a client still writing a body it
/// was refused (408, 413) reads the answer instead of a reset.
pub const LINGER: Duration = Duration::from_secs(1);
/// At most this much is discarded while lingering.
const LINGER_BYTES: usize = 1024 * 1024;

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
            Ok::<_, Infallible>(response.map(|body| Tracked { body, _done: done }))
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

/// Which deadline ended a connection, if one did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    Header,
    Idle,
    Send,
}

impl Cut {
    fn label(self) -> &'static str {
        match self {
            Cut::Header => "header_timeout",
            Cut::Idle => "idle_timeout",
            Cut::Send => "send_timeout",
        }
    }

    fn error(self) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, DeadlineExpired(self))
    }
}

/// The I/O error a deadline ends a connection with; found again in hyper's error.
#[derive(Debug)]
struct DeadlineExpired(Cut);

impl std::fmt::Display for DeadlineExpired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.label())
    }
}

impl std::error::Error for DeadlineExpired {}

fn deadline_of(e: &hyper::Error) -> Option<Cut> {
    let mut source = std::error::Error::source(e);
    while let Some(error) = source {
        // `io::Error::source` skips the error it wraps, so look inside it here.
        if let Some(DeadlineExpired(cut)) = error
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<DeadlineExpired>())
        {
            return Some(*cut);
        }
        source = error.source();
    }
    None
}

/// Where a connection is between requests; shared by the socket wrapper (which reads
/// it to pick a deadline) and the service (which moves it on per request).
#[derive(Debug)]
struct Exchange {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// The task of a read that waits with no deadline (the connection was busy), woken
    /// when the connection turns idle so that the idle deadline gets armed: hyper may
    /// poll for the next head before it drops the last response body.
    reader: Option<Waker>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// A request head is due: since `accept` or since its first byte.
    Head { since: Instant },
    /// No byte of the next request yet, since the last response was done.
    Idle { since: Instant },
    /// This many requests are being served (one, in HTTP/1.1; a count all the same).
    Busy(usize),
}

impl Exchange {
    fn new() -> Self {
        Self {
            state: Mutex::new(State {
                phase: Phase::Head {
                    since: Instant::now(),
                },
                reader: None,
            }),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // The lock guards plain data that no panic can leave half-updated.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut state)
    }

    fn request_started(self: &Arc<Self>) -> ResponseDone {
        self.with(|state| {
            state.phase = match state.phase {
                Phase::Busy(n) => Phase::Busy(n + 1),
                Phase::Head { .. } | Phase::Idle { .. } => Phase::Busy(1),
            }
        });
        ResponseDone(Arc::clone(self))
    }

    fn bytes_received(&self) {
        self.with(|state| {
            if let Phase::Idle { .. } = state.phase {
                state.phase = Phase::Head {
                    since: Instant::now(),
                };
            }
        });
    }

    /// The read deadline of the current phase, and what it is. With none (busy), `waker`
    /// is kept, in the same step, to be woken when the connection turns idle.
    fn read_deadline(&self, limits: &ConnectionLimits, waker: &Waker) -> Option<(Instant, Cut)> {
        self.with(|state| match state.phase {
            Phase::Head { since } => Some((since + limits.header_timeout, Cut::Header)),
            Phase::Idle { since } => Some((since + limits.idle_timeout, Cut::Idle)),
            Phase::Busy(_) => {
                if !state.reader.as_ref().is_some_and(|w| w.will_wake(waker)) {
                    state.reader = Some(waker.clone());
                }
                None
            }
        })
    }
}

/// Dropped with the response body: hyper has written it, or the connection ended.
struct ResponseDone(Arc<Exchange>);

impl Drop for ResponseDone {
    fn drop(&mut self) {
        let reader = self.0.with(|state| {
            state.phase = match state.phase {
                Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
                _ => Phase::Idle {
                    since: Instant::now(),
                },
            };
            match state.phase {
                Phase::Idle { .. } => state.reader.take(),
                _ => None,
            }
        });
        if let Some(reader) = reader {
            reader.wake();
        }
    }
}

/// A response body that marks the request done when hyper drops it.
struct Tracked<B> {
    body: B,
    _done: ResponseDone,
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The socket, with the deadline of the connection's phase on reads, a bound on writes
/// that make no progress, and a lingering close.
struct Deadlines<T> {
    inner: T,
    limits: ConnectionLimits,
    exchange: Arc<Exchange>,
    /// Armed while a read waits: the phase's deadline (or, when closing, the linger).
    read_timer: Option<Pin<Box<Sleep>>>,
    /// When a write started to wait for the client, and its timer.
    write_stalled: Option<(Instant, Pin<Box<Sleep>>)>,
    /// Closing: until when, and how much, to read and discard.
    linger: Option<(Instant, usize)>,
}

impl<T> Deadlines<T> {
    fn new(inner: T, limits: ConnectionLimits, exchange: Arc<Exchange>) -> Self {
        Self {
            inner,
            limits,
            exchange,
            read_timer: None,
            write_stalled: None,
            linger: None,
        }
    }

    /// Whether `deadline` has passed; else arms the read timer to wake the task then.
    fn read_timer_expired(&mut self, cx: &mut Context<'_>, deadline: Instant) -> bool {
        let timer = self
            .read_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        timer.as_mut().poll(cx).is_ready()
    }

    /// A write (or flush) returned `Pending`: cut once it has waited `send_timeout`.
    fn write_waits(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let send_timeout = self.limits.send_timeout;
        let (_, timer) = self.write_stalled.get_or_insert_with(|| {
            let now = Instant::now();
            (now, Box::pin(tokio::time::sleep_until(now + send_timeout)))
        });
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Cut::Send.error()),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Deadlines<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.exchange.bytes_received();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let this = &mut *self;
                match this.exchange.read_deadline(&this.limits, cx.waker()) {
                    Some((deadline, cut)) if this.read_timer_expired(cx, deadline) => {
                        Poll::Ready(Err(cut.error()))
                    }
                    _ => Poll::Pending,
                }
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Deadlines<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(result) => {
                self.write_stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.write_waits(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                self.write_stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.write_waits(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(result) => {
                self.write_stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.write_waits(cx).map(Err),
        }
    }

    /// Sends FIN, then reads and discards what the client still sends, for at most
    /// [`LINGER`] and [`LINGER_BYTES`], until it closes too. Closing a socket with
    /// unread data makes the kernel send a reset, and a client still writing its body
    /// would then see "connection reset" instead of the answer already sent (a 408 or
    /// 413). Normal clients close at once on FIN, so this costs them nothing.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.linger.is_none() {
            match Pin::new(&mut self.inner).poll_shutdown(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return self.write_waits(cx).map(Err),
            }
            self.linger = Some((Instant::now() + LINGER, 0));
        }
        let mut scratch = [0u8; 4096];
        loop {
            let Some((until, discarded)) = self.linger else {
                return Poll::Ready(Ok(()));
            };
            let mut discard = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut discard) {
                Poll::Ready(Ok(())) if discard.filled().is_empty() => {
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Ok(())) => {
                    let discarded = discarded + discard.filled().len();
                    if discarded > LINGER_BYTES {
                        return Poll::Ready(Ok(()));
                    }
                    self.linger = Some((until, discarded));
                }
                // The client reset or the socket failed: nothing left to wait for.
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending if self.read_timer_expired(cx, until) => {
                    return Poll::Ready(Ok(()));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
