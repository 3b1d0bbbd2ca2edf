//! The stateright model of ebbtide's drain protocol.
//!
//! Node agents and coordinators are the core's state machines, driven through thin
//! `Actor` adapters ([`actor`]); [`system`] adds the environment (network faults,
//! crashes, failover, membership, the draining client) and [`properties`] the
//! properties of specs/protocol.md §6.

pub mod actor;
pub mod canon;
pub mod census;
pub mod config;
pub mod describe;
pub mod diagram;
pub mod fairness;
pub mod gc;
pub mod ids;
pub mod losses;
pub mod properties;
pub mod run;
pub mod simulate;
pub mod state;
pub mod successors;
pub mod system;

pub use config::ModelConfig;
pub use ids::{NodeIx, UnitIx};
pub use state::SysState;
pub use system::{Action, DrainModel, History};
