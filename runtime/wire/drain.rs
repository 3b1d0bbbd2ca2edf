//! The DrainNode answer: [`DrainReport`] or [`DrainError`] as a `DrainNodeResponse`.
//!
//! `phase` and `BlockReason.kind` are kebab-case strings, the same names the core
//! uses in JSON (its serde names), so that the HTTP and gRPC answers read alike.

use super::{check, pb, DecodeError};
use ebbtide_model::{BlockReason, DrainError, DrainPhase, DrainReport};

/// Every phase; `DrainPhase::as_str` gives their wire names.
const PHASES: [DrainPhase; 7] = [
    DrainPhase::NotRequested,
    DrainPhase::Bootstrapping,
    DrainPhase::Blocked,
    DrainPhase::WaitingForDraining,
    DrainPhase::MovingWork,
    DrainPhase::WaitingForStopping,
    DrainPhase::Done,
];

/// `BlockReason.kind` values, as the core's serde tags spell them.
mod kind {
    pub const BOOTSTRAPPING: &str = "bootstrapping";
    pub const ANOTHER_DRAIN: &str = "another-drain";
    pub const WAITING_FOR_DRAINING: &str = "waiting-for-draining";
    pub const WORK_ON_TARGET: &str = "work-on-target";
    pub const OPERATIONS_IN_FLIGHT: &str = "operations-in-flight";
    pub const NO_ALIVE_DESTINATION: &str = "no-alive-destination";
    pub const WAITING_FOR_STOPPING: &str = "waiting-for-stopping";
    pub const TARGET_UNKNOWN: &str = "target-unknown";
}

fn phase_from_wire(field: &str, name: String) -> Result<DrainPhase, DecodeError> {
    if name.is_empty() {
        return Err(DecodeError::Missing {
            field: field.to_owned(),
        });
    }
    PHASES
        .into_iter()
        .find(|p| p.as_str() == name)
        .ok_or_else(|| DecodeError::UnknownName {
            field: field.to_owned(),
            value: name,
        })
}

impl From<BlockReason<String>> for pb::BlockReason {
    fn from(r: BlockReason<String>) -> Self {
        let message = r.to_string();
        let (kind, node_id, count) = match r {
            BlockReason::Bootstrapping { missing } => (kind::BOOTSTRAPPING, None, Some(missing)),
            BlockReason::AnotherDrain { node } => (kind::ANOTHER_DRAIN, Some(node), None),
            BlockReason::WaitingForDraining { node } => {
                (kind::WAITING_FOR_DRAINING, Some(node), None)
            }
            BlockReason::WorkOnTarget { units } => (kind::WORK_ON_TARGET, None, Some(units)),
            BlockReason::OperationsInFlight { operations } => {
                (kind::OPERATIONS_IN_FLIGHT, None, Some(operations))
            }
            BlockReason::NoAliveDestination => (kind::NO_ALIVE_DESTINATION, None, None),
            BlockReason::WaitingForStopping { node } => {
                (kind::WAITING_FOR_STOPPING, Some(node), None)
            }
            BlockReason::TargetUnknown { node } => (kind::TARGET_UNKNOWN, Some(node), None),
        };
        pb::BlockReason {
            kind: kind.to_owned(),
            message,
            node_id,
            count: count.map(|c| c as u64),
        }
    }
}

/// `message` is ignored, and so are `node_id` and `count` where the kind has none.
impl TryFrom<pb::BlockReason> for BlockReason<String> {
    type Error = DecodeError;

    fn try_from(r: pb::BlockReason) -> Result<Self, DecodeError> {
        const NODE: &str = "BlockReason.node_id";
        const COUNT: &str = "BlockReason.count";
        let pb::BlockReason {
            kind,
            node_id,
            count,
            ..
        } = r;
        let node = move || check::id(NODE, check::required(NODE, node_id)?);
        let count = move || check::count(COUNT, check::required(COUNT, count)?);
        Ok(match kind.as_str() {
            kind::BOOTSTRAPPING => BlockReason::Bootstrapping { missing: count()? },
            kind::ANOTHER_DRAIN => BlockReason::AnotherDrain { node: node()? },
            kind::WAITING_FOR_DRAINING => BlockReason::WaitingForDraining { node: node()? },
            kind::WORK_ON_TARGET => BlockReason::WorkOnTarget { units: count()? },
            kind::OPERATIONS_IN_FLIGHT => BlockReason::OperationsInFlight {
                operations: count()?,
            },
            kind::NO_ALIVE_DESTINATION => BlockReason::NoAliveDestination,
            kind::WAITING_FOR_STOPPING => BlockReason::WaitingForStopping { node: node()? },
            kind::TARGET_UNKNOWN => BlockReason::TargetUnknown { node: node()? },
            "" => {
                return Err(DecodeError::Missing {
                    field: "BlockReason.kind".to_owned(),
                })
            }
            _ => {
                return Err(DecodeError::UnknownName {
                    field: "BlockReason.kind".to_owned(),
                    value: kind,
                })
            }
        })
    }
}

impl From<DrainReport<String>> for pb::DrainNodeResponse {
    fn from(r: DrainReport<String>) -> Self {
        pb::DrainNodeResponse {
            node_id: r.node,
            remaining: r.remaining,
            phase: r.phase.as_str().to_owned(),
            reasons: r.reasons.into_iter().map(Into::into).collect(),
            error: None,
        }
    }
}

impl From<DrainError<String>> for pb::DrainNodeResponse {
    fn from(e: DrainError<String>) -> Self {
        use pb::DrainRefusalKind as Kind;
        let message = e.to_string();
        let (kind, node) = match e {
            DrainError::UnknownNode(n) => (Kind::UnknownNode, n),
            DrainError::CoordinatorOwnNode(n) => (Kind::CoordinatorOwnNode, n),
            DrainError::LeftBeforeCompletion(n) => (Kind::LeftBeforeCompletion, n),
        };
        pb::DrainNodeResponse {
            node_id: node,
            error: Some(pb::DrainRefusal {
                kind: kind.into(),
                message,
            }),
            ..Default::default()
        }
    }
}

impl pb::DrainNodeResponse {
    /// The wire form of the core's DrainNode answer.
    pub fn from_core(answer: Result<DrainReport<String>, DrainError<String>>) -> Self {
        answer.map_or_else(Into::into, Into::into)
    }

    /// The core's DrainNode answer to a request about node `asked`: a report, or the
    /// refusal in `error`. With `error` set, `remaining`, `phase` and `reasons` are
    /// ignored. Refused as well: an answer about another node than `asked`, and
    /// `remaining` 0 with a phase other than `done` (see [`DrainProgress`]).
    pub fn into_core(
        self,
        asked: &str,
    ) -> Result<Result<DrainReport<String>, DrainError<String>>, DecodeError> {
        const NODE: &str = "DrainNodeResponse.node_id";
        let node = check::id(NODE, self.node_id)?;
        check_node(NODE, asked, &node)?;
        if let Some(refusal) = self.error {
            return refusal_from_wire(refusal.kind, node).map(Err);
        }
        let reasons = self
            .reasons
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                BlockReason::try_from(r)
                    .map_err(|e| e.nested(&format!("DrainNodeResponse.reasons[{i}]")))
            })
            .collect::<Result<_, _>>()?;
        let phase = phase_from_wire("DrainNodeResponse.phase", self.phase)?;
        check_zero("DrainNodeResponse.remaining", self.remaining, phase)?;
        Ok(Ok(DrainReport {
            node,
            remaining: self.remaining,
            phase,
            reasons,
        }))
    }
}

/// The HTTP API's drain answer (`GET`/`PUT /api/v2/drain/<id>`, the JSON object
/// `{"node", "remaining", "phase", "reasons"}`) as a client reads it, checked like
/// [`pb::DrainNodeResponse::into_core`]: it is about the node asked, and `remaining` is
/// 0 only with phase `done`. `reasons` are for people (each has a `message`) and are
/// not decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrainProgress {
    pub node: String,
    pub remaining: u64,
    pub phase: DrainPhase,
}

impl DrainProgress {
    /// Decodes the JSON answer to a request about node `asked`; fields are named
    /// `DrainReport.<field>`.
    pub fn from_json(asked: &str, body: &serde_json::Value) -> Result<Self, DecodeError> {
        const NODE: &str = "DrainReport.node";
        const REMAINING: &str = "DrainReport.remaining";
        const PHASE: &str = "DrainReport.phase";
        let missing = |field: &str| DecodeError::Missing {
            field: field.to_owned(),
        };
        let node = body["node"].as_str().ok_or_else(|| missing(NODE))?;
        let node = check::id(NODE, node.to_owned())?;
        let remaining = body["remaining"]
            .as_u64()
            .ok_or_else(|| missing(REMAINING))?;
        let phase = body["phase"].as_str().ok_or_else(|| missing(PHASE))?;
        let phase = phase_from_wire(PHASE, phase.to_owned())?;
        check_answer((NODE, REMAINING), asked, &node, remaining, phase)?;
        Ok(DrainProgress {
            node,
            remaining,
            phase,
        })
    }
}

/// What every drain answer a client acts on must satisfy, whichever route brought it
/// (forwarding between nodes, the CLI): it is about the node asked, and `remaining` is
/// 0 only with phase `done`. 0 means "safe to stop this node now"; the core never says
/// it otherwise, so such an answer is a bug or a forgery, never a permission.
fn check_answer(
    (node_field, remaining_field): (&str, &str),
    asked: &str,
    node: &str,
    remaining: u64,
    phase: DrainPhase,
) -> Result<(), DecodeError> {
    check_node(node_field, asked, node)?;
    check_zero(remaining_field, remaining, phase)
}

fn check_node(field: &str, asked: &str, node: &str) -> Result<(), DecodeError> {
    if node != asked {
        return Err(DecodeError::OtherNode {
            field: field.to_owned(),
            asked: asked.to_owned(),
            answered: node.to_owned(),
        });
    }
    Ok(())
}

fn check_zero(field: &str, remaining: u64, phase: DrainPhase) -> Result<(), DecodeError> {
    if remaining == 0 && phase != DrainPhase::Done {
        return Err(DecodeError::ZeroNotDone {
            field: field.to_owned(),
            phase: phase.as_str().to_owned(),
        });
    }
    Ok(())
}

fn refusal_from_wire(raw: i32, node: String) -> Result<DrainError<String>, DecodeError> {
    use pb::DrainRefusalKind as Kind;
    match Kind::try_from(raw) {
        Ok(Kind::UnknownNode) => Ok(DrainError::UnknownNode(node)),
        Ok(Kind::CoordinatorOwnNode) => Ok(DrainError::CoordinatorOwnNode(node)),
        Ok(Kind::LeftBeforeCompletion) => Ok(DrainError::LeftBeforeCompletion(node)),
        Ok(Kind::Unspecified) | Err(_) => Err(DecodeError::UnknownEnum {
            field: "DrainNodeResponse.error.kind".to_owned(),
            value: raw,
        }),
    }
}
