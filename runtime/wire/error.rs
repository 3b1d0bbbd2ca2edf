//! What can be wrong with a decoded protobuf message.

use std::fmt;

/// Why a wire message does not convert to a core value. `field` names the offending
/// field as `Message.field` in proto terms (`BootstrapResponse.work_ids[2]`,
/// `NodeMessage.body`), so that a log line says what to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A required field is absent: an empty oneof, an unset message or optional field
    /// (in a JSON answer: a field that is absent or not of the expected type).
    Missing { field: String },
    /// An enum field holds `UNSPECIFIED` (0) or a number this build does not know.
    UnknownEnum { field: String, value: i32 },
    /// A string field that names one of a fixed set of values holds another one.
    UnknownName { field: String, value: String },
    /// A node id or work-unit id is empty.
    EmptyId { field: String },
    /// An epoch is 0 where the sender's real epoch (>= 1) is required.
    ZeroEpoch { field: String },
    /// A coordinator term is 0; every coordinator's term is >= 1.
    ZeroTerm { field: String },
    /// A number does not fit this platform's `usize`.
    OutOfRange { field: String, value: u64 },
    /// A drain answer says `remaining` 0 with a phase other than `done`. 0 means "safe
    /// to stop this node now", which only `done` says: such an answer is a bug or a
    /// forgery, and a client must not stop the node on it.
    ZeroNotDone { field: String, phase: String },
    /// An answer names another node than the one the request asked about (a drain
    /// answer for node `answered` to a request about node `asked`): whatever it says,
    /// it is not about the node asked.
    OtherNode {
        field: String,
        asked: String,
        answered: String,
    },
}

impl DecodeError {
    /// The offending field, as `Message.field`.
    pub fn field(&self) -> &str {
        match self {
            DecodeError::Missing { field }
            | DecodeError::UnknownEnum { field, .. }
            | DecodeError::UnknownName { field, .. }
            | DecodeError::EmptyId { field }
            | DecodeError::ZeroEpoch { field }
            | DecodeError::ZeroTerm { field }
            | DecodeError::OutOfRange { field, .. }
            | DecodeError::ZeroNotDone { field, .. }
            | DecodeError::OtherNode { field, .. } => field,
        }
    }

    /// Re-roots the field path under `parent`: `NodeStatus.epoch` nested in
    /// `ListNodesResponse.nodes[3]` becomes `ListNodesResponse.nodes[3].epoch`.
    pub(super) fn nested(mut self, parent: &str) -> Self {
        let field = match &mut self {
            DecodeError::Missing { field }
            | DecodeError::UnknownEnum { field, .. }
            | DecodeError::UnknownName { field, .. }
            | DecodeError::EmptyId { field }
            | DecodeError::ZeroEpoch { field }
            | DecodeError::ZeroTerm { field }
            | DecodeError::OutOfRange { field, .. }
            | DecodeError::ZeroNotDone { field, .. }
            | DecodeError::OtherNode { field, .. } => field,
        };
        let rest = field.find('.').map_or("", |i| &field[i..]);
        *field = format!("{parent}{rest}");
        self
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Missing { field } => write!(f, "{field}: missing"),
            DecodeError::UnknownEnum { field, value: 0 } => {
                write!(f, "{field}: unspecified (enum value 0)")
            }
            DecodeError::UnknownEnum { field, value } => {
                write!(f, "{field}: unknown enum value {value}")
            }
            DecodeError::UnknownName { field, value } => {
                write!(f, "{field}: unknown value {value:?}")
            }
            DecodeError::EmptyId { field } => write!(f, "{field}: empty id"),
            DecodeError::ZeroEpoch { field } => write!(f, "{field}: epoch 0, expected >= 1"),
            DecodeError::ZeroTerm { field } => write!(f, "{field}: term 0, expected >= 1"),
            DecodeError::OutOfRange { field, value } => {
                write!(f, "{field}: {value} is out of range")
            }
            DecodeError::ZeroNotDone { field, phase } => write!(
                f,
                "{field}: 0 with phase {phase:?}; only phase \"done\" may answer 0 (safe to stop)"
            ),
            DecodeError::OtherNode {
                field,
                asked,
                answered,
            } => write!(
                f,
                "{field}: the answer is about node {answered:?}, but node {asked:?} was asked"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}
