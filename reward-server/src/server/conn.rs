//! Connection-level limits of both listeners: how many connections may be open, how long a
//! client may take to send a request's headers (or sit idle between requests), and how many
//! HTTP/2 streams one connection may open. Without them a slowloris client, a flood of idle
//! connections or a stream flood holds the server's sockets and memory with no request ever
//! reaching admission control.
//!
//! The HTTP listener is served here by hyper directly (axum's `serve` sets no timer, so no
//! timeout of hyper's applies); the gRPC listener's connections pass through [`capped`] and tonic
//! gets the HTTP/2 limits from [`ConnectionLimits`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_stream::{Stream, StreamExt};

use super::metrics;

/// Default most connections open at once on each listener: 4,096. Past it a new connection is
/// closed at once (counted as `reward_rejected_total{reason="connection_limit"}`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default longest time a client may take to send a request's headers, and to send the next
/// request on an idle keep-alive HTTP/1 connection: 10 s. Then the connection is closed.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default longest time a client may take to send a request's body: 30 s (a 64 MiB body at
/// 2.2 MB/s). Then the request fails with 408.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default most concurrent HTTP/2 streams per connection, on both listeners: 256.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 256;
/// HTTP/2 keep-alive: a ping after this long without frames, 30 s; a connection that does not
/// answer within [`HTTP2_KEEPALIVE_TIMEOUT`] is closed.
pub const HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// See [`HTTP2_KEEPALIVE_INTERVAL`]: 20 s.
pub const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The connection-level limits, one set for both listeners.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Most connections open at once, per listener. Defaults to 4,096.
    pub max_connections: usize,
    /// Longest wait for a request's headers, or for the next request on an idle connection.
    /// Defaults to 10 s.
    pub header_read_timeout: Duration,
    /// Longest wait for a request's body. Defaults to 30 s.
    pub body_read_timeout: Duration,
    /// Most concurrent HTTP/2 streams per connection. Defaults to 256.
    pub max_concurrent_streams: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
        }
    }
}

impl ConnectionLimits {
    /// Checks the limits: each must be positive.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.max_connections > 0, "max_connections must be at least 1");
        anyhow::ensure!(!self.header_read_timeout.is_zero(), "header_read_timeout must be positive");
        anyhow::ensure!(!self.body_read_timeout.is_zero(), "body_read_timeout must be positive");
        anyhow::ensure!(self.max_concurrent_streams > 0, "max_concurrent_streams must be at least 1");
        Ok(())
    }
}

/// Takes a permit for a new connection, or refuses it (the caller drops the connection).
fn admit_connection(permits: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
    match permits.clone().try_acquire_owned() {
        Ok(permit) => Some(permit),
        Err(_) => {
            metrics::rejected("connection_limit");
            None
        }
    }
}

/// The gRPC listener's connections, each holding a permit of `permits` while open (a connection
/// past the cap is closed at once), handed on once their first bytes arrive: one that sends
/// nothing within `first_bytes_within` is closed (tonic, like hyper, would wait for its HTTP/2
/// preface for good).
pub fn capped<Io, E>(
    incoming: impl Stream<Item = Result<Io, E>> + Send + 'static,
    permits: Arc<Semaphore>,
    first_bytes_within: Duration,
) -> impl Stream<Item = Result<Accepted<Io>, E>> + Send + 'static
where
    Io: AsyncRead + Unpin + Send + 'static,
    E: Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(128);
    tokio::spawn(async move {
        tokio::pin!(incoming);
        loop {
            let conn = tokio::select! {
                conn = incoming.next() => conn,
                () = tx.closed() => return, // the server stopped
            };
            match conn {
                None => return,
                Some(Err(e)) => {
                    if tx.send(Err(e)).await.is_err() {
                        return;
                    }
                }
                Some(Ok(io)) => {
                    let Some(permit) = admit_connection(&permits) else { continue };
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        if let Some(mut io) = first_bytes(io, first_bytes_within).await {
                            io._permit = Some(permit);
                            let _ = tx.send(Ok(io)).await;
                        }
                    });
                }
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

impl<Io: tonic::transport::server::Connected> tonic::transport::server::Connected for Accepted<Io> {
    type ConnectInfo = Io::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// Serves `router` on `listener` with hyper until `stop` resolves, then stops accepting and
/// lets open connections finish their requests (the caller bounds how long). Every connection
/// holds a permit (at most `max_connections` open), HTTP/1 headers must arrive within
/// `header_read_timeout` (which also closes a keep-alive connection idle that long), and HTTP/2
/// connections get the stream cap and keep-alive pings.
pub async fn serve_http<L>(
    mut listener: L,
    router: axum::Router,
    limits: &ConnectionLimits,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .keep_alive_interval(HTTP2_KEEPALIVE_INTERVAL)
        .keep_alive_timeout(HTTP2_KEEPALIVE_TIMEOUT);
    let builder = Arc::new(builder);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let service = hyper_util::service::TowerToHyperService::new(router);
    tokio::pin!(stop);
    loop {
        let (io, _peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let Some(permit) = admit_connection(&permits) else {
            drop(io);
            continue;
        };
        let (builder, service, watcher, wait) = (builder.clone(), service.clone(), graceful.watcher(), limits.header_read_timeout);
        tokio::spawn(async move {
            // hyper reads the first bytes to tell HTTP/1 from HTTP/2 with no timer: a client that
            // connects and sends nothing would be held for good. Wait for them here, bounded.
            let Some(io) = first_bytes(io, wait).await else { return };
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service).into_owned();
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!("HTTP connection ended with an error: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Waits up to `within` for a new connection's first bytes; `None` when none came (the client
/// sent nothing, closed, or failed). The bytes read are read again first.
async fn first_bytes<Io: AsyncRead + Unpin>(mut io: Io, within: Duration) -> Option<Accepted<Io>> {
    use tokio::io::AsyncReadExt;
    let mut prefix = vec![0u8; 4096];
    match tokio::time::timeout(within, io.read(&mut prefix)).await {
        Ok(Ok(n)) if n > 0 => {
            prefix.truncate(n);
            Some(Accepted { prefix, pos: 0, io, _permit: None })
        }
        _ => None,
    }
}

/// An accepted connection whose first bytes were already read (they are read again first),
/// holding its listener's connection permit while it is open when the listener hands it on.
pub struct Accepted<Io> {
    prefix: Vec<u8>,
    pos: usize,
    io: Io,
    _permit: Option<OwnedSemaphorePermit>,
}

impl<Io: AsyncRead + Unpin> AsyncRead for Accepted<Io> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = (self.prefix.len() - self.pos).min(buf.remaining());
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            if self.pos == self.prefix.len() {
                self.prefix = Vec::new();
                self.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Accepted<Io> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn first_bytes_are_read_again_and_silence_is_refused() {
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        client.write_all(b"rest").await.unwrap();
        drop(client);
        let mut io = first_bytes(server, Duration::from_secs(1)).await.expect("bytes came");
        let mut all = String::new();
        io.read_to_string(&mut all).await.unwrap();
        assert_eq!(all, "GET / HTTP/1.1\r\nrest");

        let (_silent, server) = tokio::io::duplex(64);
        let started = std::time::Instant::now();
        assert!(first_bytes(server, Duration::from_millis(100)).await.is_none());
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
