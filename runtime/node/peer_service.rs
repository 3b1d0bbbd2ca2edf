//! The gRPC services this node serves: `Peer` (protocol messages into this process's
//! roles) and `Operator` (answered by the coordinator, when it runs here).

use super::agent_task::AgentMsg;
use super::cluster::Cluster;
use super::coordinator_task::{CoordHandle, CoordMsg};
use crate::membership::{Event, Member, Registration};
use crate::tls::ConnInfo;
use crate::wire::pb;
use ebbtide_model::{AgentInput, CoordInput, PROTOCOL_VERSION};
use std::sync::Arc;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

/// The `Peer` service: decodes each message and queues it for the role it is meant for.
/// A message that cannot be queued is refused (the sender counts it lost).
#[derive(Debug)]
pub struct PeerService {
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) agent: mpsc::Sender<AgentMsg>,
    /// The membership task's events (static membership's joins and leaves arrive
    /// here).
    pub(crate) membership: mpsc::Sender<Event>,
    /// Under TLS: a message is taken only if the node id it speaks for (`from`, a
    /// `MembershipChange`'s `node_id`) is a name in the caller's certificate, so that
    /// one member cannot speak for another.
    pub(crate) bind_ids: bool,
}

/// `FAILED_PRECONDITION` naming the node that runs the coordinator, if known.
fn not_coordinator(cluster: &Cluster) -> Status {
    let who = cluster.leader().map_or_else(
        || "none is known yet".to_owned(),
        |(_, n)| format!("node {n} does"),
    );
    Status::failed_precondition(format!(
        "node {} does not run the coordinator ({who})",
        cluster.id
    ))
}

impl PeerService {
    /// Under TLS, refuses the call unless every sender id in `from` is one of the
    /// names of the caller's certificate (`PERMISSION_DENIED`, or `UNAUTHENTICATED`
    /// without one); checked before anything is decoded or queued.
    fn check_senders<'a>(
        &self,
        ext: &tonic::Extensions,
        field: &str,
        from: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), Status> {
        if !self.bind_ids {
            return Ok(());
        }
        let Some(names) = ext.get::<ConnInfo>().and_then(|c| c.client_names.clone()) else {
            return Err(Status::unauthenticated(
                "no client certificate: peers must present one signed by the cluster CA",
            ));
        };
        for (i, id) in from.into_iter().enumerate() {
            if !names.iter().any(|n| n == id) {
                let remote = ext.get::<ConnInfo>().and_then(|c| c.remote);
                tracing::warn!(
                    ?remote,
                    ?names,
                    sender = id,
                    "refused a peer call: it speaks for a node its certificate does not name"
                );
                let field = field.replace("{i}", &i.to_string());
                return Err(Status::permission_denied(format!(
                    "{field} is {id:?}, which is not a name in the caller's certificate {names:?}: \
                     a member may speak only for itself"
                )));
            }
        }
        Ok(())
    }

    /// The coordinator's queue, or `FAILED_PRECONDITION` naming the node that runs it.
    fn coordinator(&self) -> Result<mpsc::Sender<CoordMsg>, Status> {
        self.cluster
            .local_coordinator()
            .map(|h| h.tx)
            .ok_or_else(|| not_coordinator(&self.cluster))
    }
}

#[tonic::async_trait]
impl pb::peer_server::Peer for PeerService {
    async fn to_node(&self, req: Request<pb::NodeMessage>) -> Result<Response<pb::Ack>, Status> {
        self.check_senders(
            req.extensions(),
            "NodeMessage.from",
            [req.get_ref().from.as_str()],
        )?;
        let (from, msg) = req.into_inner().into_core().map_err(|e| {
            tracing::warn!(error = %e, "bad NodeMessage");
            Status::invalid_argument(e.to_string())
        })?;
        self.agent
            .try_send(AgentMsg::Input(AgentInput::Message { from, msg }))
            .map_err(|_| Status::resource_exhausted("node agent queue is full or closed"))?;
        Ok(Response::new(pb::Ack {}))
    }

    async fn to_coordinator(
        &self,
        req: Request<pb::CoordinatorMessage>,
    ) -> Result<Response<pb::Ack>, Status> {
        self.check_senders(
            req.extensions(),
            "CoordinatorMessage.from",
            [req.get_ref().from.as_str()],
        )?;
        let coordinator = self.coordinator()?;
        let (from, msg) = req.into_inner().into_core().map_err(|e| {
            tracing::warn!(error = %e, "bad CoordinatorMessage");
            Status::invalid_argument(e.to_string())
        })?;
        coordinator
            .try_send(CoordMsg::Input(CoordInput::Message { from, msg }))
            .map_err(|_| Status::resource_exhausted("coordinator queue is full or closed"))?;
        Ok(Response::new(pb::Ack {}))
    }

    async fn to_node_batch(
        &self,
        req: Request<pb::NodeMessageBatch>,
    ) -> Result<Response<pb::Ack>, Status> {
        self.check_senders(
            req.extensions(),
            "messages[{i}].from",
            req.get_ref().messages.iter().map(|m| m.from.as_str()),
        )?;
        let mut bad = None;
        let mut full = false;
        for (i, m) in req.into_inner().messages.into_iter().enumerate() {
            match m.into_core() {
                Ok((from, msg)) => {
                    let input = AgentInput::Message { from, msg };
                    full |= self.agent.try_send(AgentMsg::Input(input)).is_err();
                }
                Err(e) => {
                    tracing::warn!(error = %e, index = i, "bad NodeMessage in a batch");
                    bad.get_or_insert((i, e));
                }
            }
        }
        batch_result(bad, full, "node agent")
    }

    async fn to_coordinator_batch(
        &self,
        req: Request<pb::CoordinatorMessageBatch>,
    ) -> Result<Response<pb::Ack>, Status> {
        self.check_senders(
            req.extensions(),
            "messages[{i}].from",
            req.get_ref().messages.iter().map(|m| m.from.as_str()),
        )?;
        let coordinator = self.coordinator()?;
        let mut bad = None;
        let mut full = false;
        for (i, m) in req.into_inner().messages.into_iter().enumerate() {
            match m.into_core() {
                Ok((from, msg)) => {
                    let input = CoordInput::Message { from, msg };
                    full |= coordinator.try_send(CoordMsg::Input(input)).is_err();
                }
                Err(e) => {
                    tracing::warn!(error = %e, index = i, "bad CoordinatorMessage in a batch");
                    bad.get_or_insert((i, e));
                }
            }
        }
        batch_result(bad, full, "coordinator")
    }

    async fn membership(
        &self,
        req: Request<pb::MembershipChange>,
    ) -> Result<Response<pb::Ack>, Status> {
        self.check_senders(
            req.extensions(),
            "MembershipChange.node_id",
            [req.get_ref().node_id.as_str()],
        )?;
        let m = req.into_inner();
        if m.node_id.is_empty() {
            return Err(Status::invalid_argument(
                "MembershipChange.node_id is empty",
            ));
        }
        if m.epoch == 0 {
            return Err(Status::invalid_argument(
                "MembershipChange.epoch must be >= 1",
            ));
        }
        // Only the coordinator's node takes them: the sender retries until it finds it.
        self.coordinator()?;
        let event = if m.joined {
            Event::Joined(Member {
                epoch: m.epoch,
                registration: Registration {
                    node: m.node_id,
                    grpc: m.grpc_address,
                    http: m.http_address,
                    version: PROTOCOL_VERSION,
                    pid: 0,
                    host: String::new(),
                    data_dir: String::new(),
                },
            })
        } else {
            Event::Left {
                node: m.node_id,
                epoch: m.epoch,
            }
        };
        self.membership
            .send(event)
            .await
            .map_err(|_| Status::unavailable("the membership task has stopped"))?;
        Ok(Response::new(pb::Ack {}))
    }
}

/// The answer to a batch: the first bad message, or a full queue, or an Ack.
fn batch_result(
    bad: Option<(usize, crate::wire::DecodeError)>,
    full: bool,
    role: &str,
) -> Result<Response<pb::Ack>, Status> {
    if let Some((i, e)) = bad {
        return Err(Status::invalid_argument(format!("messages[{i}]: {e}")));
    }
    if full {
        return Err(Status::resource_exhausted(format!(
            "{role} queue is full: some messages were dropped"
        )));
    }
    Ok(Response::new(pb::Ack {}))
}

/// The `Operator` service: answered by the coordinator of this process; other nodes
/// refuse with `FAILED_PRECONDITION` naming the coordinator (their HTTP API forwards).
#[derive(Debug)]
pub struct OperatorService {
    pub(crate) cluster: Arc<Cluster>,
    /// The most units one AddWork may carry (`--max-units-per-request`).
    pub(crate) max_units: usize,
}

impl OperatorService {
    fn coordinator(&self) -> Result<CoordHandle, Status> {
        self.cluster
            .local_coordinator()
            .ok_or_else(|| not_coordinator(&self.cluster))
    }
}

fn gone() -> Status {
    Status::unavailable("the coordinator has stopped")
}

#[tonic::async_trait]
impl pb::operator_server::Operator for OperatorService {
    async fn drain_node(
        &self,
        req: Request<pb::DrainNodeRequest>,
    ) -> Result<Response<pb::DrainNodeResponse>, Status> {
        let node = req
            .into_inner()
            .into_core()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let answer = self.coordinator()?.drain(node).await.map_err(|_| gone())?;
        Ok(Response::new(pb::DrainNodeResponse::from_core(answer)))
    }

    async fn drain_status(
        &self,
        req: Request<pb::DrainNodeRequest>,
    ) -> Result<Response<pb::DrainNodeResponse>, Status> {
        let node = req
            .into_inner()
            .into_core()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let answer = self
            .coordinator()?
            .drain_status(node)
            .await
            .map_err(|_| gone())?;
        Ok(Response::new(pb::DrainNodeResponse::from_core(answer)))
    }

    async fn list_nodes(
        &self,
        _req: Request<pb::ListNodesRequest>,
    ) -> Result<Response<pb::ListNodesResponse>, Status> {
        let nodes = self.coordinator()?.nodes().await.map_err(|_| gone())?;
        Ok(Response::new(nodes.into_iter().collect()))
    }

    async fn add_work(
        &self,
        req: Request<pb::AddWorkRequest>,
    ) -> Result<Response<pb::AddWorkResponse>, Status> {
        let n = req.get_ref().work_ids.len();
        if n > self.max_units {
            return Err(Status::resource_exhausted(format!(
                "AddWorkRequest.work_ids has {n} units; at most {} per request \
                 (--max-units-per-request): split it",
                self.max_units
            )));
        }
        let units = req
            .into_inner()
            .into_core()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        match self.coordinator()?.add_units(units).await {
            Ok(Ok(_)) => Ok(Response::new(pb::AddWorkResponse {})),
            Ok(Err(e)) => Err(Status::internal(e)),
            Err(_) => Err(gone()),
        }
    }

    async fn list_work(
        &self,
        _req: Request<pb::ListWorkRequest>,
    ) -> Result<Response<pb::ListWorkResponse>, Status> {
        let list = self.coordinator()?.list_work().await.map_err(|_| gone())?;
        Ok(Response::new(list))
    }

    async fn resign(
        &self,
        _req: Request<pb::ResignRequest>,
    ) -> Result<Response<pb::ResignResponse>, Status> {
        self.coordinator()?.resign().await.map_err(|_| gone())?;
        Ok(Response::new(pb::ResignResponse {}))
    }
}
