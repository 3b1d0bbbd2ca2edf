//! Who may call the HTTP API, and how much a request may carry.
//!
//! With TLS (`--tls-*`) or an API token (`--api-token-file`), every request that
//! changes the cluster (any method but GET and HEAD: drain, work add, resign) must be
//! authenticated, by a client certificate that the TLS handshake verified against the
//! cluster CA (and `--tls-allowed-name`), or by `Authorization: Bearer <token>`. The
//! read-only routes and `/metrics` stay open unless `--api-auth-reads`. Without TLS and
//! without a token nothing is checked (a one-machine cluster on loopback).

use super::ApiError;
use crate::tls::{constant_time_eq, ConnInfo};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// How the API authenticates its callers.
#[derive(Clone, Debug, Default)]
pub struct ApiAuth {
    /// TLS is on: a verified client certificate authenticates.
    pub tls: bool,
    /// The bearer token (`--api-token-file`), if any.
    pub token: Option<String>,
    /// The read-only routes need authentication too (`--api-auth-reads`).
    pub reads: bool,
}

impl ApiAuth {
    /// Whether anything is checked at all.
    fn enabled(&self) -> bool {
        self.tls || self.token.is_some()
    }

    /// What a caller may present, for the error message.
    fn ways(&self) -> &'static str {
        match (self.tls, self.token.is_some()) {
            (true, true) => "a client certificate signed by the cluster CA, or the header \"Authorization: Bearer <token>\" with the token of the node's --api-token-file",
            (true, false) => "a client certificate signed by the cluster CA (this node has no --api-token-file, so no bearer token is accepted)",
            _ => "the header \"Authorization: Bearer <token>\" with the token of the node's --api-token-file",
        }
    }

    /// Whether `req` is authenticated, or the 401 that says how to be.
    fn check(&self, req: &Request) -> Result<(), ApiError> {
        let has_cert = req
            .extensions()
            .get::<ConnInfo>()
            .is_some_and(|c| c.client_names.is_some());
        if has_cert {
            return Ok(());
        }
        let what = if req.method() == Method::GET || req.method() == Method::HEAD {
            "this node requires authentication for every route (--api-auth-reads)"
        } else {
            "this route changes the cluster"
        };
        let presented = req.headers().get(header::AUTHORIZATION);
        match (&self.token, presented) {
            (Some(token), Some(value)) => {
                let given = value
                    .to_str()
                    .ok()
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::trim);
                match given {
                    Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => Ok(()),
                    Some(_) => Err(unauthenticated(
                        "the bearer token does not match this node's --api-token-file".into(),
                    )),
                    None => Err(unauthenticated(format!(
                        "the Authorization header is not \"Bearer <token>\"; {what}: send {}",
                        self.ways()
                    ))),
                }
            }
            _ => Err(unauthenticated(format!("{what}: send {}", self.ways()))),
        }
    }
}

fn unauthenticated(message: String) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
}

/// The middleware: refuses unauthenticated requests with 401 and a JSON error (and
/// `WWW-Authenticate: Bearer` when a token would do).
pub async fn authenticate(State(auth): State<Arc<ApiAuth>>, req: Request, next: Next) -> Response {
    let read = req.method() == Method::GET || req.method() == Method::HEAD;
    if !auth.enabled() || (read && !auth.reads) {
        return next.run(req).await;
    }
    match auth.check(&req) {
        Ok(()) => next.run(req).await,
        Err(e) => {
            tracing::info!(method = %req.method(), path = %req.uri().path(), remote = ?req.extensions().get::<ConnInfo>().and_then(|c| c.remote), "refused an unauthenticated request");
            let mut resp = e.into_response();
            if auth.token.is_some() {
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"ebbtide\""),
                );
            }
            resp
        }
    }
}

/// A request body of at most `--max-body-bytes`: a larger one is refused with 413
/// `body-too-large`, at once when its `Content-Length` says so (before it is read),
/// else as soon as what was read passes the limit.
pub struct LimitedBody(pub Bytes);

/// The body limit, set by the router as an extension of every request.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        format!(
            "the request body is larger than this node's limit of {limit} bytes (--max-body-bytes)"
        ),
    )
}

impl<S: Send + Sync> FromRequest<S> for LimitedBody {
    type Rejection = ApiError;

    async fn from_request(req: Request<Body>, _state: &S) -> Result<Self, ApiError> {
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map_or(crate::node::config::Limits::default().max_body_bytes, |l| {
                l.0
            });
        let announced = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|n| n > limit as u64) {
            return Err(too_large(limit));
        }
        let body = req.into_body();
        match axum::body::to_bytes(body, limit).await {
            Ok(b) => Ok(LimitedBody(b)),
            Err(e) => {
                let mut cause = std::error::Error::source(&e);
                let mut length_limit = false;
                while let Some(c) = cause {
                    length_limit |= c.is::<http_body_util::LengthLimitError>();
                    cause = c.source();
                }
                if length_limit {
                    Err(too_large(limit))
                } else {
                    Err(ApiError::bad_request(
                        "bad-body",
                        format!("cannot read the request body: {e}"),
                    ))
                }
            }
        }
    }
}
