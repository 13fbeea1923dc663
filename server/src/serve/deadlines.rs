//! Where a connection is between requests ([`Exchange`]), and the socket wrapper
//! ([`Deadlines`]) that enforces the deadline of that phase on every read, bounds writes
//! that make no progress, and closes with a linger (see the parent module's docs).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::limits::ConnectionLimits;

/// After a response that closes the connection, how long the server keeps reading (and
/// discarding) what the client still sends, so that a client still writing a body it
/// was refused (408, 413) reads the answer instead of a reset.
pub const LINGER: Duration = Duration::from_secs(1);
/// At most this much is discarded while lingering.
const LINGER_BYTES: usize = 1024 * 1024;

/// Which deadline ended a connection, if one did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cut {
    Header,
    Idle,
    Send,
}

impl Cut {
    pub(super) fn label(self) -> &'static str {
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

/// The deadline that ended a connection, if one did.
pub(super) fn deadline_of(e: &hyper::Error) -> Option<Cut> {
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
pub(super) struct Exchange {
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
    pub(super) fn new() -> Self {
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

    pub(super) fn request_started(self: &Arc<Self>) -> ResponseDone {
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
pub(super) struct ResponseDone(Arc<Exchange>);

impl ResponseDone {
    /// `body`, which marks the request done when hyper drops it.
    pub(super) fn track<B>(self, body: B) -> Tracked<B> {
        Tracked { body, _done: self }
    }
}

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
pub(super) struct Tracked<B> {
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
pub(super) struct Deadlines<T> {
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
    pub(super) fn new(inner: T, limits: ConnectionLimits, exchange: Arc<Exchange>) -> Self {
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
