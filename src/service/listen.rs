//! The service's accept loop: HTTP/1.1 connections with a header-read timeout, an idle timeout
//! and a cap on open connections, so clients that connect and send nothing (or half a request)
//! cannot hold the service.
//!
//! When the cap is reached, or the process runs out of descriptors, the oldest connection that
//! has no request being answered (one still sending its headers or its body, or idle between
//! requests) is closed to make room: a flood of half-sent requests pushes out itself, never
//! `/healthz` or a request whose body has arrived.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;

/// Connection limits of `jitsh serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// A client must send a request's whole header within this time.
    pub header_timeout: Duration,
    /// A connection with no bytes moving either way for this long is closed.
    pub idle_timeout: Duration,
    /// Open connections at most (lowered to fit the process's descriptor limit).
    pub max_connections: usize,
}

impl Default for ConnLimits {
    fn default() -> ConnLimits {
        ConnLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// Descriptors kept free for the database, the audit log, the directory and outgoing mail.
const RESERVED_FDS: u64 = 64;

/// `wanted`, lowered so that connections never take the descriptors the service itself needs.
pub(crate) fn effective_max(wanted: usize) -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    let room = usize::try_from(soft.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
    wanted.min(room).max(1)
}

#[derive(Debug)]
struct Conn {
    /// Requests on this connection whose body has arrived and whose answer is not yet made.
    busy: Arc<AtomicUsize>,
    close: Arc<Notify>,
}

/// Open connections by age (ids grow).
#[derive(Debug, Default)]
struct Table {
    next: u64,
    open: BTreeMap<u64, Conn>,
}

impl Table {
    /// Close the oldest connection with no request in progress; `false` if there is none.
    fn evict_one(&mut self) -> bool {
        let victim = self
            .open
            .iter()
            .find(|(_, c)| c.busy.load(Ordering::Acquire) == 0)
            .map(|(id, _)| *id);
        match victim.and_then(|id| self.open.remove(&id)) {
            Some(conn) => {
                conn.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Where connections come from: a TCP listener, or any [`axum::serve::Listener`] (a TLS
/// acceptor) through [`FromListener`].
pub trait Accept: Send {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Io, SocketAddr)>> + Send;
}

impl Accept for TcpListener {
    type Io = TcpStream;

    async fn accept(&mut self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = TcpListener::accept(self).await?;
        let _ = stream.set_nodelay(true);
        Ok((stream, peer))
    }
}

/// An [`axum::serve::Listener`] (which handles its own accept errors) as an [`Accept`].
#[derive(Debug)]
pub(crate) struct FromListener<L>(pub L);

impl<L> Accept for FromListener<L>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    type Io = L::Io;

    async fn accept(&mut self) -> io::Result<(L::Io, SocketAddr)> {
        Ok(self.0.accept().await)
    }
}

/// Serve `app` on `listener` until `shutdown` resolves; then let connections finish their
/// current request (at most `drain`).
pub async fn run<A: Accept>(
    mut listener: A,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let max = effective_max(limits.max_connections);
    tracing::info!(max_connections = max, "accepting connections");
    let table = Arc::new(Mutex::new(Table::default()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let admitted = admit(&table, max);
                    let Some((id, conn)) = admitted else {
                        // Every connection is answering a request: refuse this one.
                        drop(stream);
                        continue;
                    };
                    tasks.spawn(connection(
                        stream, peer, app.clone(), limits, id, conn, Arc::clone(&table), stop_rx.clone(),
                    ));
                }
                Err(e) => {
                    // Out of descriptors (or a connection reset before accept): make room and
                    // go on; the listener itself is fine.
                    let evicted = table.lock().map(|mut t| t.evict_one()).unwrap_or(false);
                    tracing::warn!(error = %e, evicted, "accept failed");
                    if !evicted {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            },
        }
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} }).await;
    tasks.abort_all();
}

/// What a connection task holds of its table entry: its in-progress count and its close signal.
type Handles = (Arc<AtomicUsize>, Arc<Notify>);

fn admit(table: &Mutex<Table>, max: usize) -> Option<(u64, Handles)> {
    let mut t = table.lock().ok()?;
    if t.open.len() >= max && !t.evict_one() {
        return None;
    }
    let id = t.next;
    t.next += 1;
    let busy = Arc::new(AtomicUsize::new(0));
    let close = Arc::new(Notify::new());
    t.open.insert(
        id,
        Conn {
            busy: Arc::clone(&busy),
            close: Arc::clone(&close),
        },
    );
    Some((id, (busy, close)))
}

/// Counts a request in progress for as long as it lives.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn new(busy: &Arc<AtomicUsize>) -> InFlight {
        busy.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(busy))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[allow(clippy::too_many_arguments, reason = "one connection's whole context")]
async fn connection<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    peer: SocketAddr,
    app: Router,
    limits: ConnLimits,
    id: u64,
    (busy, close): Handles,
    table: Arc<Mutex<Table>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let io = TokioIo::new(Idle::new(stream, limits.idle_timeout));
    let counter = Arc::clone(&busy);
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            // A request counts as in progress from the end of its body to its answer: a client
            // still sending the body is as evictable as one still sending headers.
            let in_flight = Arc::new(Mutex::new(None));
            let (parts, body) = req.into_parts();
            let body = Arrival::new(body, &counter, &in_flight);
            let req = hyper::Request::from_parts(parts, axum::body::Body::new(body));
            let app = app.clone();
            async move {
                let response = app.oneshot(req).await;
                if let Ok(mut slot) = in_flight.lock() {
                    slot.take();
                }
                response
            }
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let stopping = async move {
        // A `watch::Ref` must not live across an await: keep only the outcome.
        let _ = stop.wait_for(|s| *s).await.is_ok();
    };
    tokio::select! {
        _ = conn.as_mut() => {}
        () = close.notified() => {}
        () = stopping => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.as_mut().await;
        }
    }
    if let Ok(mut t) = table.lock() {
        t.open.remove(&id);
    }
}

/// A request body that marks its request in progress once the last byte has arrived.
struct Arrival {
    inner: hyper::body::Incoming,
    busy: Arc<AtomicUsize>,
    in_flight: Arc<Mutex<Option<InFlight>>>,
}

impl Arrival {
    fn new(
        inner: hyper::body::Incoming,
        busy: &Arc<AtomicUsize>,
        in_flight: &Arc<Mutex<Option<InFlight>>>,
    ) -> Arrival {
        let arrival = Arrival {
            inner,
            busy: Arc::clone(busy),
            in_flight: Arc::clone(in_flight),
        };
        if hyper::body::Body::is_end_stream(&arrival.inner) {
            arrival.arrived();
        }
        arrival
    }

    fn arrived(&self) {
        if let Ok(mut slot) = self.in_flight.lock() {
            if slot.is_none() {
                *slot = Some(InFlight::new(&self.busy));
            }
        }
    }
}

impl hyper::body::Body for Arrival {
    type Data = hyper::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || this.inner.is_end_stream() {
            this.arrived();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// A stream that fails with `TimedOut` once no bytes have moved for `idle`.
struct Idle<S> {
    inner: S,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<S> Idle<S> {
    fn new(inner: S, idle: Duration) -> Idle<S> {
        Idle {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }

    fn moved(&mut self) {
        let at = Instant::now() + self.idle;
        self.deadline.as_mut().reset(at);
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle too long")
}

impl<S: AsyncRead + Unpin> AsyncRead for Idle<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.moved();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Idle<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.moved();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.moved();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    async fn get(addr: SocketAddr) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    /// Any `axum::serve::Listener` (the TLS acceptor is one) serves through the same loop.
    #[tokio::test]
    async fn serves_from_a_plain_listener_and_from_any_axum_listener() {
        let app = Router::new().route("/x", axum::routing::get(|| async { "hello" }));
        for adapted in [false, true] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let shutdown = async move {
                let _ = stopped.await;
            };
            let limits = ConnLimits::default();
            let app = app.clone();
            let server = tokio::spawn(async move {
                let drain = Duration::from_secs(1);
                if adapted {
                    run(FromListener(listener), app, limits, shutdown, drain).await;
                } else {
                    run(listener, app, limits, shutdown, drain).await;
                }
            });
            let answer = get(addr).await;
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            assert!(answer.ends_with("hello"), "{answer}");
            let _ = stop.send(());
            server.await.unwrap();
        }
    }

    #[test]
    fn the_cap_fits_the_descriptor_limit() {
        assert!(effective_max(usize::MAX) < usize::MAX);
        assert_eq!(effective_max(0), 1);
        assert_eq!(effective_max(3), 3);
    }
}
