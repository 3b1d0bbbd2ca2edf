//! The wire protocol (`proto/ebbtide/v1/ebbtide.proto`) and its conversions to and
//! from the protocol core's types, with node ids and work ids as `String`.
//!
//! - [`pb`]: the generated messages, and the tonic clients and servers of the `Peer`
//!   and `Client` services.
//! - Encoding is infallible: `pb::NodeMessage::from_core`,
//!   `pb::CoordinatorMessage::from_core`, `pb::DrainNodeResponse::from_core`, and
//!   `From` for the rest.
//! - Decoding (`into_core`, `TryFrom`, [`WireEnum::from_wire`]) never panics: bad
//!   input is a [`DecodeError`] that names the field.
//!
//! # What decoding checks
//!
//! - Node ids and work ids are non-empty, including every sender (`from`).
//! - Enums are known values other than `UNSPECIFIED`; a oneof `body` is set.
//! - Terms are >= 1 wherever they appear: every coordinator's term is, and a node
//!   only echoes the term of the command it answers.
//! - Epochs in node → coordinator messages (`BootstrapResponse`, `NodeHeartbeat`,
//!   `SetNodeLivenessResponse`, `WorkStatus`) are >= 1: a node always knows its own
//!   epoch, and epochs start at 1 (specs/protocol.md §2).
//! - Epochs in coordinator → node messages (`SetNodeLiveness`, `AddWork`,
//!   `RemoveWork`) may be 0. They are the coordinator's belief, and 0 means "not heard
//!   from that node yet": the core sends `SetLiveness` with epoch 0 to a member that
//!   has not reported (`drive_session`), and fills AddWork/RemoveWork epochs with
//!   `map_or(0, ..)`. Rejecting them here would drop commands the core means to send;
//!   the node agent's epoch fence (A2) already refuses them and answers its real
//!   epoch. `NodeStatus.epoch` may be 0 for the same reason.
//! - Operation ids are not checked: the core only compares them.
//! - `BootstrapResponse.version` is carried as is; the core decides what to do with it.
//! - A drain answer (`DrainNodeResponse`, and the HTTP API's JSON as
//!   [`DrainProgress`] reads it) is about the node asked, and says `remaining` 0 only
//!   with phase `done`: a client stops a node on 0, so a 0 in any other phase is
//!   refused, not acted on.

mod check;
mod client;
mod drain;
mod enums;
mod error;
mod peer;
#[cfg(test)]
mod tests;

pub use drain::DrainProgress;
pub use enums::WireEnum;
pub use error::DecodeError;

/// The code generated from `proto/ebbtide/v1/ebbtide.proto` by `build.rs`.
pub mod pb {
    tonic::include_proto!("ebbtide.v1");
}
