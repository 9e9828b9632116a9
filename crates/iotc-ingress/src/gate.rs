//! Admission of TCP connections: at most `max_connections` at once (a semaphore, as
//! mini-redis does: the accept loop waits for a permit, so further clients queue in the
//! kernel's listen backlog), and a deadline by which a connection must have proved who it is.
//!
//! The deadline is enforced at two places. Until the connection becomes an AP WebSocket,
//! reads fail once it has passed, so a client that opens a socket and says nothing (or only
//! HTTP without upgrading) is dropped. After the upgrade the WebSocket handler enforces it
//! with a close frame (1008), since only it knows when a message carried a valid token.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Hands out connection permits and deadlines.
#[derive(Clone)]
pub struct Gate {
    permits: Arc<Semaphore>,
    deadline: Duration,
}

impl Gate {
    pub fn new(max_connections: usize, deadline: Duration) -> Self {
        Gate {
            permits: Arc::new(Semaphore::new(max_connections)),
            deadline,
        }
    }

    /// Waits for a free slot, then for a connection.
    pub async fn accept(&self, tcp: &TcpListener) -> (Gated<TcpStream>, SocketAddr) {
        let permit = match self.permits.clone().acquire_owned().await {
            Ok(permit) => permit,
            // The semaphore is never closed.
            Err(_) => std::future::pending().await,
        };
        loop {
            match tcp.accept().await {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    return (Gated::new(stream, permit, self.deadline), peer);
                }
                Err(e) => {
                    // Out of file descriptors, or an aborted handshake: try again shortly.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// What the request handlers know about the connection they run on.
#[derive(Debug)]
pub struct ConnState {
    /// When the connection was accepted.
    pub accepted: Instant,
    /// Deadline to send a message with a valid token.
    pub deadline: Instant,
    websocket: AtomicBool,
}

impl ConnState {
    /// The WebSocket handler owns the deadline from now on.
    pub fn became_websocket(&self) {
        self.websocket.store(true, Ordering::Relaxed);
    }
}

/// A connection holding its permit (released when it closes) and its deadline.
pub struct Gated<S> {
    inner: S,
    _permit: OwnedSemaphorePermit,
    state: Arc<ConnState>,
    timer: Pin<Box<Sleep>>,
}

impl<S> Gated<S> {
    fn new(inner: S, permit: OwnedSemaphorePermit, deadline: Duration) -> Self {
        let accepted = Instant::now();
        Gated {
            inner,
            _permit: permit,
            state: Arc::new(ConnState {
                accepted,
                deadline: accepted + deadline,
                websocket: AtomicBool::new(false),
            }),
            timer: Box::pin(tokio::time::sleep_until(accepted + deadline)),
        }
    }

    pub fn state(&self) -> Arc<ConnState> {
        self.state.clone()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Gated<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.state.websocket.load(Ordering::Relaxed) && self.timer.as_mut().poll(cx).is_ready()
        {
            metrics::counter!("iotc_ingress_auth_deadline_total", "phase" => "http").increment(1);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no authenticated message before the deadline",
            )));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Gated<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The plain listener behind the gate.
pub struct GatedListener {
    tcp: TcpListener,
    gate: Gate,
}

impl GatedListener {
    pub fn new(tcp: TcpListener, gate: Gate) -> Self {
        GatedListener { tcp, gate }
    }
}

impl axum::serve::Listener for GatedListener {
    type Io = Gated<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        self.gate.accept(&self.tcp).await
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
