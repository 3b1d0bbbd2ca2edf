//! The protocol core: pure, deterministic, no I/O, no clocks.
//!
//! The two roles are [`NodeAgent`] (one per node process) and [`Coordinator`] (one per
//! cluster, elected). Both follow the same shape: `handle(input, &mut outputs)`, where
//! timers are outputs to arm and inputs when they fire.
//!
//! The protocol they implement is `specs/protocol.md`: rule ids cited in this crate
//! (agent rules A1–A8, coordinator rules C1–C18) and sections (§N) are defined there.

pub mod agent;
pub mod coordinator;
pub mod guards;
pub mod ids;
pub mod liveness;
pub mod message;

pub use agent::{AgentInput, AgentOutput, NodeAgent};
pub use coordinator::{
    BlockReason, CoordInput, CoordOutput, CoordTimer, Coordinator, CoordinatorConfig, DrainError,
    DrainPhase, DrainReport, InheritedDrain, NodeStatus,
};
pub use guards::{Guard, Guards};
pub use ids::{Epoch, Key, OpId, Term, PROTOCOL_VERSION};
pub use liveness::{Liveness, ViewLiveness};
pub use message::{ToCoordinator, ToNode, WorkState};
