//! The messages between node agents and the coordinator (specs/protocol.md §3).
//!
//! The wire protocol in `proto/` carries the same content; the runtime converts.
//! Senders are not part of the messages: the transport knows who sent what.

use crate::protocol::ids::{Epoch, OpId, Term};
use crate::protocol::liveness::Liveness;

/// Coordinator → node.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum ToNode<W> {
    /// A new coordinator asks every member for its state.
    Bootstrap { term: Term },
    /// Ask the node to step its liveness forward to `target`. `epoch` is the incarnation
    /// the coordinator believes current.
    SetLiveness {
        target: Liveness,
        epoch: Epoch,
        term: Term,
    },
    /// Start `work` on the incarnation `epoch`.
    AddWork {
        work: W,
        epoch: Epoch,
        term: Term,
        op: OpId,
    },
    /// Stop `work` on the incarnation `epoch`.
    RemoveWork {
        work: W,
        epoch: Epoch,
        term: Term,
        op: OpId,
    },
}

/// Node → coordinator.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum ToCoordinator<W> {
    /// The answer to a bootstrap request of coordinator `term`.
    BootstrapResponse {
        term: Term,
        epoch: Epoch,
        liveness: Liveness,
        /// The work units running on this node, sorted.
        work: Vec<W>,
        version: u32,
    },
    /// Periodic, and at once after every liveness change.
    Heartbeat { epoch: Epoch, liveness: Liveness },
    /// Answers every SetLiveness, a refused one too, with the liveness in effect and the
    /// node's real epoch.
    SetLivenessResponse { epoch: Epoch, liveness: Liveness },
    /// Acknowledges an AddWork or RemoveWork, or reports a rejection while Stopping.
    WorkStatus {
        work: W,
        epoch: Epoch,
        term: Term,
        op: OpId,
        status: WorkState,
    },
}

/// The state of a work unit on a node, as acknowledged.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum WorkState {
    Running,
    Stopped,
    /// The node refused to start it (it is Stopping).
    Rejected,
}

impl WorkState {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkState::Running => "running",
            WorkState::Stopped => "stopped",
            WorkState::Rejected => "rejected",
        }
    }
}
