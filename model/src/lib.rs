//! ebbtide's drain protocol, as pure transition functions, and the model that checks it.
//!
//! - [`protocol`]: the node agent and the coordinator as state machines without I/O.
//!   Every input (a decoded message, a timer firing, a membership change, a client
//!   request) goes in through a `handle` call; every effect (a message to send, a timer
//!   to arm, a work unit to start or stop) comes out as a value. No clock, no socket,
//!   no thread: the runtime and the model checker drive the very same code.
//! - [`checker`]: the stateright model of a cluster of node agents, a coordinator that
//!   fails over, a draining client and a network that loses, duplicates and reorders,
//!   with the properties of specs/protocol.md §6.
#![forbid(unsafe_code)]

pub mod checker;
pub mod protocol;

pub use protocol::*;
