//! The `Peer` service's envelopes: [`ToNode`] and [`ToCoordinator`] with their sender.

use super::pb::{coordinator_message, node_message};
use super::{check, pb, DecodeError, WireEnum};
use ebbtide_model::{Liveness, ToCoordinator, ToNode, WorkState};

impl pb::NodeMessage {
    /// Wraps `msg`, sent by the coordinator that runs on node `from`.
    pub fn from_core(from: String, msg: ToNode<String>) -> Self {
        use node_message::Body;
        let body = match msg {
            ToNode::Bootstrap { term } => Body::BootstrapRequest(pb::BootstrapRequest { term }),
            ToNode::SetLiveness {
                target,
                epoch,
                term,
            } => Body::SetNodeLiveness(pb::SetNodeLiveness {
                target: target.to_wire(),
                epoch,
                term,
            }),
            ToNode::AddWork {
                work,
                epoch,
                term,
                op,
            } => Body::AddWork(pb::AddWork {
                work_id: work,
                epoch,
                term,
                op,
            }),
            ToNode::RemoveWork {
                work,
                epoch,
                term,
                op,
            } => Body::RemoveWork(pb::RemoveWork {
                work_id: work,
                epoch,
                term,
                op,
            }),
        };
        pb::NodeMessage {
            from,
            body: Some(body),
        }
    }

    /// The sender and the core message. Epochs may be 0 (the coordinator has not heard
    /// from the node yet); terms may not. See the [module docs](super).
    pub fn into_core(self) -> Result<(String, ToNode<String>), DecodeError> {
        use node_message::Body;
        let from = check::id("NodeMessage.from", self.from)?;
        let msg = match check::required("NodeMessage.body", self.body)? {
            Body::BootstrapRequest(m) => ToNode::Bootstrap {
                term: check::term("BootstrapRequest.term", m.term)?,
            },
            Body::SetNodeLiveness(m) => ToNode::SetLiveness {
                target: Liveness::from_wire("SetNodeLiveness.target", m.target)?,
                epoch: m.epoch,
                term: check::term("SetNodeLiveness.term", m.term)?,
            },
            Body::AddWork(m) => ToNode::AddWork {
                work: check::id("AddWork.work_id", m.work_id)?,
                epoch: m.epoch,
                term: check::term("AddWork.term", m.term)?,
                op: m.op,
            },
            Body::RemoveWork(m) => ToNode::RemoveWork {
                work: check::id("RemoveWork.work_id", m.work_id)?,
                epoch: m.epoch,
                term: check::term("RemoveWork.term", m.term)?,
                op: m.op,
            },
        };
        Ok((from, msg))
    }
}

impl pb::CoordinatorMessage {
    /// Wraps `msg`, sent by the node agent of node `from`.
    pub fn from_core(from: String, msg: ToCoordinator<String>) -> Self {
        use coordinator_message::Body;
        let body = match msg {
            ToCoordinator::BootstrapResponse {
                term,
                epoch,
                liveness,
                work,
                version,
            } => Body::BootstrapResponse(pb::BootstrapResponse {
                term,
                epoch,
                liveness: liveness.to_wire(),
                work_ids: work,
                version,
            }),
            ToCoordinator::Heartbeat { epoch, liveness } => Body::Heartbeat(pb::NodeHeartbeat {
                epoch,
                liveness: liveness.to_wire(),
            }),
            ToCoordinator::SetLivenessResponse { epoch, liveness } => {
                Body::SetNodeLivenessResponse(pb::SetNodeLivenessResponse {
                    epoch,
                    liveness: liveness.to_wire(),
                })
            }
            ToCoordinator::WorkStatus {
                work,
                epoch,
                term,
                op,
                status,
            } => Body::WorkStatus(pb::WorkStatus {
                work_id: work,
                epoch,
                term,
                op,
                state: status.to_wire(),
            }),
        };
        pb::CoordinatorMessage {
            from,
            body: Some(body),
        }
    }

    /// The sender and the core message. Every epoch must be >= 1 (a node always knows
    /// its own), and so must every term. See the [module docs](super).
    pub fn into_core(self) -> Result<(String, ToCoordinator<String>), DecodeError> {
        use coordinator_message::Body;
        let from = check::id("CoordinatorMessage.from", self.from)?;
        let msg = match check::required("CoordinatorMessage.body", self.body)? {
            Body::BootstrapResponse(m) => ToCoordinator::BootstrapResponse {
                term: check::term("BootstrapResponse.term", m.term)?,
                epoch: check::epoch("BootstrapResponse.epoch", m.epoch)?,
                liveness: Liveness::from_wire("BootstrapResponse.liveness", m.liveness)?,
                work: check::ids("BootstrapResponse.work_ids", m.work_ids)?,
                version: m.version,
            },
            Body::Heartbeat(m) => ToCoordinator::Heartbeat {
                epoch: check::epoch("NodeHeartbeat.epoch", m.epoch)?,
                liveness: Liveness::from_wire("NodeHeartbeat.liveness", m.liveness)?,
            },
            Body::SetNodeLivenessResponse(m) => ToCoordinator::SetLivenessResponse {
                epoch: check::epoch("SetNodeLivenessResponse.epoch", m.epoch)?,
                liveness: Liveness::from_wire("SetNodeLivenessResponse.liveness", m.liveness)?,
            },
            Body::WorkStatus(m) => ToCoordinator::WorkStatus {
                work: check::id("WorkStatus.work_id", m.work_id)?,
                epoch: check::epoch("WorkStatus.epoch", m.epoch)?,
                term: check::term("WorkStatus.term", m.term)?,
                op: m.op,
                status: WorkState::from_wire("WorkStatus.state", m.state)?,
            },
        };
        Ok((from, msg))
    }
}
