//! Accepting TLS connections: every handshake runs in its own task under
//! [`HANDSHAKE_TIMEOUT`], so a slow or hostile client holds up nobody, and a refused one
//! is logged with its address and the reason. A connection that completed its handshake
//! carries [`ConnInfo`]: the names of the client's verified certificate, if it sent one.

use super::{cert_names, HANDSHAKE_TIMEOUT};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Who is at the other end of a TLS connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// The client's address.
    pub remote: Option<SocketAddr>,
    /// The names of the client's certificate (see [`cert_names`]), verified against the
    /// cluster CA and `--tls-allowed-name` during the handshake; `None` when the client
    /// sent no certificate (allowed on the HTTP API only).
    pub client_names: Option<Arc<Vec<String>>>,
}

/// A connection that completed its TLS handshake.
#[derive(Debug)]
pub struct TlsConn {
    stream: TlsStream<TcpStream>,
    info: ConnInfo,
}

impl TlsConn {
    /// Who is at the other end.
    pub fn info(&self) -> &ConnInfo {
        &self.info
    }
}

/// tonic puts a connection's `ConnectInfo` in every request's extensions: the `Peer`
/// service reads the client's names from there.
impl tonic::transport::server::Connected for TlsConn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The connections of one TLS listener that completed their handshake, as a stream
/// (for tonic's `serve_with_incoming`). The accept loop stops when this is dropped.
#[derive(Debug)]
pub struct Incoming {
    rx: mpsc::Receiver<TlsConn>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Incoming {
    /// Accepts on `listener` with `config`; `what` names the server in logs ("gRPC",
    /// "HTTP"). Needs a tokio runtime.
    pub fn new(
        listener: TcpListener,
        config: Arc<rustls::ServerConfig>,
        what: &'static str,
    ) -> Self {
        let (tx, rx) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        let accept = tokio::spawn(accept_loop(listener, acceptor, tx, what));
        Incoming { rx, accept }
    }

    /// The next connection that completed its handshake.
    pub async fn next(&mut self) -> Option<TlsConn> {
        self.rx.recv().await
    }
}

impl tokio_stream::Stream for Incoming {
    type Item = Result<TlsConn, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|c| c.map(Ok))
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<TlsConn>,
    what: &'static str,
) {
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors, or a connection reset before accept: the
                // listener itself is fine.
                tracing::warn!(server = what, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, tx) = (acceptor.clone(), tx.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let client_names = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|leaf| Arc::new(cert_names(leaf)));
                    let info = ConnInfo {
                        remote: Some(remote),
                        client_names,
                    };
                    let _ = tx.send(TlsConn { stream, info }).await;
                }
                Ok(Err(e)) => {
                    let plain = e
                        .get_ref()
                        .and_then(|i| i.downcast_ref::<rustls::Error>())
                        .is_some_and(|r| {
                            matches!(
                                r,
                                rustls::Error::InvalidMessage(
                                    rustls::InvalidMessage::InvalidContentType
                                )
                            )
                        });
                    if plain {
                        tracing::warn!(server = what, %remote, "TLS handshake refused: the client spoke plain text to this TLS port (it should use https:// and the cluster CA)");
                    } else {
                        tracing::warn!(server = what, %remote, error = %e, "TLS handshake refused");
                    }
                }
                Err(_) => {
                    tracing::warn!(server = what, %remote, timeout = ?HANDSHAKE_TIMEOUT, "TLS handshake timed out");
                }
            }
        });
    }
}

/// Serves `router` (HTTP/1.1) on the connections of `incoming`, each request carrying
/// its connection's [`ConnInfo`] as an extension. Runs until `incoming` ends.
pub async fn serve_http(mut incoming: Incoming, router: axum::Router) {
    while let Some(conn) = incoming.next().await {
        let router = router.clone();
        tokio::spawn(async move {
            let info = conn.info.clone();
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(info.clone());
                    tower::ServiceExt::oneshot(router.clone(), req)
                },
            );
            let io = hyper_util::rt::TokioIo::new(conn);
            let res = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(30))
                .serve_connection(io, service)
                .await;
            if let Err(e) = res {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        });
    }
}
