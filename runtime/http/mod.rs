//! The HTTP API (axum): TiCDC-compatible v1 routes, ebbtide's own v2 routes and
//! `/metrics`. Requests about the cluster are answered by the coordinator, directly
//! when it runs in this process, forwarded over gRPC otherwise. Every error is a JSON
//! body `{"error": "<kind>", "message": "<what is wrong>"}` with a 4xx or 5xx status.

mod auth;
mod error;

pub use auth::ApiAuth;
pub use error::ApiError;

use auth::{BodyLimit, LimitedBody};

use crate::node::{AgentHandle, CallError, Cluster, CoordAccess, DrainAnswer, Metrics};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use ebbtide_model::{DrainError, Liveness};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the handlers share.
#[derive(Debug)]
pub struct AppState {
    /// Members, their addresses, and the way to the coordinator.
    pub cluster: Arc<Cluster>,
    /// This node's agent.
    pub agent: AgentHandle,
    /// This process's metrics.
    pub metrics: Arc<Metrics>,
    /// Whether an election can move leadership to another node (etcd membership).
    pub has_election: bool,
    /// Who may call (TLS client certificates, the bearer token).
    pub auth: Arc<ApiAuth>,
    /// What one request may cost.
    pub limits: crate::node::config::Limits,
}

impl AppState {
    /// The way to the coordinator, or 503 while none is known.
    fn coordinator(&self) -> Result<CoordAccess, ApiError> {
        self.cluster.coordinator().map_err(|m| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "coordinator-unavailable",
                m,
            )
        })
    }

    /// Every member's gRPC and HTTP address.
    fn addresses(&self) -> BTreeMap<String, crate::node::cluster::Address> {
        self.cluster.addresses()
    }
}

type St = State<Arc<AppState>>;

/// The API's routes, behind authentication ([`ApiAuth`]) and the body limit.
pub fn router(state: Arc<AppState>) -> Router {
    let auth = state.auth.clone();
    let limit = BodyLimit(state.limits.max_body_bytes);
    Router::new()
        .route("/api/v1/captures/drain", put(v1_drain))
        .route("/api/v1/captures", get(v1_captures))
        .route("/api/v1/health", get(v1_health))
        .route("/api/v1/status", get(v1_status))
        .route("/api/v1/owner/resign", post(v1_owner_resign))
        .route("/api/v2/nodes", get(v2_nodes))
        .route("/api/v2/drain/{id}", get(v2_drain_status).put(v2_drain))
        .route("/api/v2/work", get(v2_work_list).post(v2_work_add))
        .route("/api/v2/local", get(v2_local))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "this route does not take that method",
            )
        })
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            auth,
            auth::authenticate,
        ))
        .layer(axum::Extension(limit))
}

/// Parses a JSON body, naming what is wrong with it.
fn parse_body<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "malformed-json",
            "empty body: expected a JSON object",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        let kind = if e.is_data() {
            "invalid-request"
        } else {
            "malformed-json"
        };
        ApiError::bad_request(kind, format!("request body: {e}"))
    })
}

fn check_node_id(id: &str) -> Result<(), ApiError> {
    if id.trim().is_empty() {
        return Err(ApiError::bad_request(
            "invalid-request",
            "node id must not be empty",
        ));
    }
    Ok(())
}

/// A DrainNode answer, or the error for a refusal.
fn drain_result(answer: DrainAnswer) -> Result<ebbtide_model::DrainReport<String>, ApiError> {
    answer.map_err(|e| {
        let (status, kind) = match &e {
            DrainError::UnknownNode(_) => (StatusCode::NOT_FOUND, "unknown-node"),
            DrainError::CoordinatorOwnNode(_) => {
                let msg = format!(
                    "{e}: resign it first (POST /api/v1/owner/resign, or `ebbtide resign --server ADDR`), \
                     then drain the node once another node coordinates"
                );
                return ApiError::new(StatusCode::CONFLICT, "coordinator-own-node", msg);
            }
            DrainError::LeftBeforeCompletion(_) => (StatusCode::GONE, "left-before-completion"),
        };
        ApiError::new(status, kind, e.to_string())
    })
}

pub(crate) fn report_json(r: &ebbtide_model::DrainReport<String>) -> Value {
    let reasons: Vec<Value> = r
        .reasons
        .iter()
        .map(|reason| {
            let mut v = serde_json::to_value(reason).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("message".into(), Value::String(reason.to_string()));
            }
            v
        })
        .collect();
    json!({
        "node": r.node,
        "remaining": r.remaining,
        "phase": r.phase,
        "reasons": reasons,
    })
}

#[derive(Deserialize)]
struct CaptureDrain {
    capture_id: String,
}

/// `PUT /api/v1/captures/drain` `{"capture_id": "<ID>"}` → `202 {"current_table_count": n}`.
async fn v1_drain(State(s): St, LimitedBody(body): LimitedBody) -> Result<Response, ApiError> {
    let req: CaptureDrain = parse_body(&body)?;
    check_node_id(&req.capture_id)?;
    let report = drain_result(s.coordinator()?.drain(req.capture_id).await?)?;
    let body = Json(json!({ "current_table_count": report.remaining }));
    Ok((StatusCode::ACCEPTED, body).into_response())
}

/// `GET /api/v1/captures` → `[{"id", "is_owner", "address"}]`; `address` is the
/// node's HTTP address (TiUP finds the owner by comparing it with the address it
/// reaches the node at); its gRPC address only when the HTTP one is not known (a
/// static member started without `--peer-http`).
async fn v1_captures(State(s): St) -> Result<Json<Value>, ApiError> {
    let nodes = s.coordinator()?.nodes().await?;
    let addresses = s.addresses();
    let list: Vec<Value> = nodes
        .iter()
        .map(|n| {
            let a = addresses.get(&n.node);
            json!({
                "id": n.node,
                "is_owner": n.is_coordinator,
                "address": a
                    .and_then(|a| a.http.clone().or_else(|| Some(a.grpc.clone())))
                    .unwrap_or_default(),
            })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

/// `GET /api/v1/status` → TiCDC's capture status: `{"version", "git_hash", "id",
/// "pid", "is_owner", "liveness"}`, `liveness` 0 while Alive and 1 otherwise
/// (TiCDC's `LivenessCaptureAlive`/`LivenessCaptureStopping`). Answered by this node
/// itself, never forwarded: TiUP asks it of each node to see it back up.
async fn v1_status(State(s): St) -> Result<Json<Value>, ApiError> {
    let st = agent_status(&s).await?;
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "git_hash": "",
        "id": st.node,
        "pid": std::process::id(),
        "is_owner": s.cluster.local_coordinator().is_some(),
        "liveness": u8::from(st.liveness != Liveness::Alive),
        "epoch": st.epoch,
    })))
}

/// `POST /api/v1/owner/resign`: the coordinator gives up leadership, and another
/// Alive node takes over (TiUP calls it before it upgrades the owner's node).
/// Forwarded to the coordinator when it runs elsewhere. 200 `{}` once it resigned.
async fn v1_owner_resign(State(s): St) -> Result<Json<Value>, ApiError> {
    if !s.has_election {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no-election",
            "static membership (--coordinator) has a fixed coordinator and no other candidate; \
             run the nodes with --etcd to move leadership",
        ));
    }
    s.coordinator()?.resign().await?;
    Ok(Json(json!({})))
}

/// This node's own state, or 503 once its agent has stopped.
async fn agent_status(s: &AppState) -> Result<crate::node::AgentStatus, ApiError> {
    s.agent.status().await.ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "agent-stopped",
            "the node agent has stopped",
        )
    })
}

/// `GET /api/v1/health`: 200 while this node is Alive, 503 otherwise.
async fn v1_health(State(s): St) -> Result<Response, ApiError> {
    let st = agent_status(&s).await?;
    let body = json!({ "node": st.node, "epoch": st.epoch, "liveness": st.liveness });
    if st.liveness == Liveness::Alive {
        Ok((StatusCode::OK, Json(body)).into_response())
    } else {
        let msg = format!("node {} is {}, not alive", st.node, st.liveness);
        let mut body = body;
        body["error"] = json!("not-alive");
        body["message"] = json!(msg);
        Ok((StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response())
    }
}

/// `GET /api/v2/nodes`: every member as the coordinator sees it.
async fn v2_nodes(State(s): St) -> Result<Json<Value>, ApiError> {
    let nodes = s.coordinator()?.nodes().await?;
    let addresses = s.addresses();
    let list: Vec<Value> = nodes
        .iter()
        .map(|n| {
            let a = addresses.get(&n.node);
            json!({
                "id": n.node,
                "epoch": n.epoch,
                "liveness": n.liveness,
                "is_coordinator": n.is_coordinator,
                "units": n.units,
                "operations": n.operations,
                "address": a.map(|a| a.grpc.clone()),
                "http_address": a.and_then(|a| a.http.clone()),
            })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

/// `GET /api/v2/drain/{id}`: what DrainNode would answer now (requests nothing).
async fn v2_drain_status(State(s): St, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    check_node_id(&id)?;
    let report = drain_result(s.coordinator()?.drain_status(id).await?)?;
    Ok(Json(report_json(&report)))
}

/// `PUT /api/v2/drain/{id}`: DrainNode, with the phase and the reasons.
async fn v2_drain(State(s): St, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    check_node_id(&id)?;
    let report = drain_result(s.coordinator()?.drain(id).await?)?;
    Ok(Json(report_json(&report)))
}

#[derive(Deserialize)]
struct AddWork {
    work_ids: Vec<String>,
}

/// `POST /api/v2/work` `{"work_ids": [...]}`: adds work units.
async fn v2_work_add(
    State(s): St,
    LimitedBody(body): LimitedBody,
) -> Result<Json<Value>, ApiError> {
    let req: AddWork = parse_body(&body)?;
    if req.work_ids.is_empty() {
        return Err(ApiError::bad_request(
            "invalid-request",
            "work_ids is empty",
        ));
    }
    if let Some(i) = req.work_ids.iter().position(|w| w.trim().is_empty()) {
        return Err(ApiError::bad_request(
            "invalid-request",
            format!("work_ids[{i}] is empty"),
        ));
    }
    let n = req.work_ids.len();
    if n > s.limits.max_units_per_request {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-many-units",
            format!(
                "work_ids has {n} units; this node takes at most {} per request \
                 (--max-units-per-request): send them in several requests",
                s.limits.max_units_per_request
            ),
        ));
    }
    s.coordinator()?.add_units(req.work_ids).await?;
    Ok(Json(json!({ "accepted": n })))
}

/// `GET /api/v2/work`: every work unit and where it runs.
async fn v2_work_list(State(s): St) -> Result<Json<Value>, ApiError> {
    let list = s.coordinator()?.list_work().await?;
    let units: Vec<Value> = list
        .placements
        .iter()
        .map(|p| {
            let state = crate::wire::pb::PlacementState::try_from(p.state).map_or(
                "unknown",
                |st| match st {
                    crate::wire::pb::PlacementState::Running => "running",
                    crate::wire::pb::PlacementState::Stopping => "stopping",
                    crate::wire::pb::PlacementState::Starting => "starting",
                    crate::wire::pb::PlacementState::Unplaced => "unplaced",
                    crate::wire::pb::PlacementState::Unspecified => "unknown",
                },
            );
            let node = (!p.node_id.is_empty()).then(|| p.node_id.clone());
            json!({ "id": p.work_id, "node": node, "state": state })
        })
        .collect();
    Ok(Json(Value::Array(units)))
}

/// `GET /api/v2/local`: this node's own state as its agent knows it (not forwarded).
async fn v2_local(State(s): St) -> Result<Json<Value>, ApiError> {
    let st = agent_status(&s).await?;
    Ok(Json(json!({
        "node": st.node,
        "epoch": st.epoch,
        "liveness": st.liveness,
        "leader": st.leader,
        "running": st.running,
        "drained": st.drained,
        "coordinator": s.cluster.coordinator_id(),
    })))
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(s): St) -> Response {
    if let Some(h) = s.cluster.local_coordinator() {
        // Refreshes the coordinator's gauges.
        let _ = h.stats().await;
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Unavailable(m) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "coordinator-unavailable",
                m,
            ),
            CallError::Invalid(m) => ApiError::bad_request("invalid-request", m),
            CallError::TooLarge(m) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", m),
            CallError::Internal(m) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m)
            }
        }
    }
}
