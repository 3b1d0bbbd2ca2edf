//! A small HTTP/1.1 client for ebbtide's API (the CLI client and the tests use it):
//! hyper over a TCP or TLS connection, one connection per request, JSON in and out.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// Per-request timeout.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP answer: status and body (JSON when it parses, a string otherwise).
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The server's error message, or the body as text.
    pub fn error_message(&self) -> String {
        match self.body.get("message").and_then(Value::as_str) {
            Some(m) => m.to_owned(),
            None => self.body.to_string(),
        }
    }
}

/// How a client reaches a node's HTTP API: plain, or TLS (verifying the node's
/// certificate against a CA, and presenting a client certificate if one is set), and
/// with or without a bearer token.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// TLS, for `https://` servers.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

impl ClientOptions {
    /// Plain HTTP, no token.
    pub fn plain() -> Self {
        ClientOptions::default()
    }
}

/// `host:port` from `--server` (an `http://` or `https://` prefix and a trailing `/`
/// are accepted).
pub fn authority(server: &str) -> Result<String, String> {
    let s = server.trim();
    let s = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .unwrap_or(s)
        .trim_end_matches('/');
    if s.is_empty() || s.contains('/') || !s.contains(':') {
        return Err(format!("--server {server:?}: expected host:port"));
    }
    Ok(s.to_owned())
}

/// The host of `host:port` (`[::1]:80` gives `::1`), as the TLS name to verify.
fn host_of(authority: &str) -> &str {
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Sends one request; `body` is sent as JSON.
pub async fn request(
    server: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Reply, String> {
    request_with(server, &ClientOptions::plain(), method, path, body).await
}

/// Sends one request with `opts` (TLS, token); `body` is sent as JSON.
pub async fn request_with(
    server: &str,
    opts: &ClientOptions,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Reply, String> {
    send(
        server,
        opts,
        method,
        path,
        body.map(|v| Bytes::from(v.to_string())),
    )
    .await
}

/// Sends a request with a raw body (for tests of malformed input).
pub async fn request_raw(
    server: &str,
    method: &str,
    path: &str,
    body: &str,
) -> Result<Reply, String> {
    request_raw_with(server, &ClientOptions::plain(), method, path, body).await
}

/// Sends a request with a raw body and `opts`.
pub async fn request_raw_with(
    server: &str,
    opts: &ClientOptions,
    method: &str,
    path: &str,
    body: &str,
) -> Result<Reply, String> {
    send(
        server,
        opts,
        method,
        path,
        Some(Bytes::from(body.to_owned())),
    )
    .await
}

/// Sends one request with an optional JSON body, within [`TIMEOUT`].
async fn send(
    server: &str,
    opts: &ClientOptions,
    method: &str,
    path: &str,
    body: Option<Bytes>,
) -> Result<Reply, String> {
    let auth = authority(server)?;
    let scheme = if opts.tls.is_some() { "https" } else { "http" };
    tokio::time::timeout(TIMEOUT, send_inner(&auth, opts, method, path, body))
        .await
        .map_err(|_| format!("{method} {scheme}://{auth}{path}: timed out after {TIMEOUT:?}"))?
        .map_err(|e| format!("{method} {scheme}://{auth}{path}: {e}"))
}

async fn send_inner(
    auth: &str,
    opts: &ClientOptions,
    method: &str,
    path: &str,
    body: Option<Bytes>,
) -> Result<Reply, String> {
    let stream = TcpStream::connect(auth).await.map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    match &opts.tls {
        None => exchange(TokioIo::new(stream), auth, opts, method, path, body).await,
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from(host_of(auth).to_owned())
                .map_err(|_| format!("{:?} is not a valid TLS server name", host_of(auth)))?;
            let tls = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            exchange(TokioIo::new(tls), auth, opts, method, path, body).await
        }
    }
}

async fn exchange<T>(
    io: T,
    auth: &str,
    opts: &ClientOptions,
    method: &str,
    path: &str,
    body: Option<Bytes>,
) -> Result<Reply, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, auth)
        .header(hyper::header::ACCEPT, "application/json");
    if body.is_some() {
        req = req.header(hyper::header::CONTENT_TYPE, "application/json");
    }
    if let Some(token) = &opts.token {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let req = req
        .body(Full::new(body.unwrap_or_default()))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let raw = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let body = serde_json::from_slice(&raw)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()));
    Ok(Reply { status, body })
}
