//! The `Client` service's requests and listings (DrainNode's answer is in `drain`).

use super::{check, pb, DecodeError, WireEnum};
use ebbtide_model::protocol::coordinator::Phase;
use ebbtide_model::{Coordinator, NodeStatus, ViewLiveness};
use std::collections::BTreeSet;

impl pb::DrainNodeRequest {
    /// The node to drain (non-empty).
    pub fn into_core(self) -> Result<String, DecodeError> {
        check::id("DrainNodeRequest.node_id", self.node_id)
    }
}

impl pb::AddWorkRequest {
    /// The work units to add, each non-empty.
    pub fn into_core(self) -> Result<Vec<String>, DecodeError> {
        check::ids("AddWorkRequest.work_ids", self.work_ids)
    }
}

impl From<NodeStatus<String>> for pb::NodeStatus {
    fn from(s: NodeStatus<String>) -> Self {
        pb::NodeStatus {
            node_id: s.node,
            epoch: s.epoch,
            liveness: s.liveness.to_wire(),
            is_coordinator: s.is_coordinator,
            units: s.units as u64,
            operations: s.operations as u64,
        }
    }
}

/// `epoch` may be 0: a member the coordinator has not heard from yet.
impl TryFrom<pb::NodeStatus> for NodeStatus<String> {
    type Error = DecodeError;

    fn try_from(s: pb::NodeStatus) -> Result<Self, DecodeError> {
        Ok(NodeStatus {
            node: check::id("NodeStatus.node_id", s.node_id)?,
            epoch: s.epoch,
            liveness: ViewLiveness::from_wire("NodeStatus.liveness", s.liveness)?,
            is_coordinator: s.is_coordinator,
            units: check::count("NodeStatus.units", s.units)?,
            operations: check::count("NodeStatus.operations", s.operations)?,
        })
    }
}

impl FromIterator<NodeStatus<String>> for pb::ListNodesResponse {
    fn from_iter<I: IntoIterator<Item = NodeStatus<String>>>(nodes: I) -> Self {
        pb::ListNodesResponse {
            nodes: nodes.into_iter().map(Into::into).collect(),
        }
    }
}

impl pb::ListNodesResponse {
    /// Every member, in wire order.
    pub fn into_core(self) -> Result<Vec<NodeStatus<String>>, DecodeError> {
        self.nodes
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                NodeStatus::try_from(s)
                    .map_err(|e| e.nested(&format!("ListNodesResponse.nodes[{i}]")))
            })
            .collect()
    }
}

impl pb::ListWorkResponse {
    /// Every work unit `c` knows, ordered by id: the desired ones, and deleted ones that
    /// are still being stopped.
    pub fn from_coordinator(c: &Coordinator<String, String>) -> Self {
        let units: BTreeSet<&String> = c.desired().chain(c.operations().map(|(w, _)| w)).collect();
        pb::ListWorkResponse {
            placements: units.into_iter().map(|w| placement(c, w)).collect(),
        }
    }
}

/// An in-flight operation decides the state; otherwise the unit runs where it is
/// placed, or nowhere. Before bootstrap completes, units are unplaced.
fn placement(c: &Coordinator<String, String>, work: &String) -> pb::WorkPlacement {
    use pb::PlacementState as State;
    let (node, state) = match c.operation(work).map(|op| &op.phase) {
        Some(Phase::Removing { from, .. }) => (from.clone(), State::Stopping),
        Some(Phase::Adding { to, .. }) => (to.clone(), State::Starting),
        None => match c.placement_of(work) {
            Some(node) => (node.clone(), State::Running),
            None => (String::new(), State::Unplaced),
        },
    };
    pb::WorkPlacement {
        work_id: work.clone(),
        node_id: node,
        state: state.into(),
    }
}
