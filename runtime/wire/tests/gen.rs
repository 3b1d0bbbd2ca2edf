//! quickcheck generators of valid core values (non-empty ids, epochs and terms >= 1
//! where the wire requires them), wrapped because the core types are foreign.

use crate::wire::pb;
use ebbtide_model::{
    BlockReason, DrainError, DrainPhase, DrainReport, Liveness, NodeStatus, ToCoordinator, ToNode,
    ViewLiveness, WorkState,
};
use quickcheck::{Arbitrary, Gen};

/// A non-empty id.
pub fn id(g: &mut Gen) -> String {
    let mut s = String::arbitrary(g);
    if s.is_empty() {
        s.push(*g.choose(&['n', 'w', 'é', '0']).unwrap());
    }
    s
}

/// An epoch or term >= 1.
pub fn positive(g: &mut Gen) -> u64 {
    u64::arbitrary(g).max(1)
}

/// Any count that fits every platform's `usize`.
fn count(g: &mut Gen) -> usize {
    u32::arbitrary(g) as usize
}

fn liveness(g: &mut Gen) -> Liveness {
    *g.choose(&Liveness::ALL).unwrap()
}

fn work_state(g: &mut Gen) -> WorkState {
    *g.choose(&[WorkState::Running, WorkState::Stopped, WorkState::Rejected])
        .unwrap()
}

pub const VIEW_LIVENESS: [ViewLiveness; 4] = [
    ViewLiveness::Alive,
    ViewLiveness::Draining,
    ViewLiveness::Stopping,
    ViewLiveness::Unknown,
];

pub const PHASES: [DrainPhase; 7] = [
    DrainPhase::NotRequested,
    DrainPhase::Bootstrapping,
    DrainPhase::Blocked,
    DrainPhase::WaitingForDraining,
    DrainPhase::MovingWork,
    DrainPhase::WaitingForStopping,
    DrainPhase::Done,
];

/// One of each `ToNode` variant, from one sender. Coordinator epochs may be 0.
#[derive(Clone, Debug)]
pub struct EveryToNode(pub String, pub Vec<ToNode<String>>);

impl Arbitrary for EveryToNode {
    fn arbitrary(g: &mut Gen) -> Self {
        let msgs = vec![
            ToNode::Bootstrap { term: positive(g) },
            ToNode::SetLiveness {
                target: liveness(g),
                epoch: u64::arbitrary(g),
                term: positive(g),
            },
            ToNode::AddWork {
                work: id(g),
                epoch: u64::arbitrary(g),
                term: positive(g),
                op: u64::arbitrary(g),
            },
            ToNode::RemoveWork {
                work: id(g),
                epoch: u64::arbitrary(g),
                term: positive(g),
                op: u64::arbitrary(g),
            },
        ];
        EveryToNode(id(g), msgs)
    }
}

/// One of each `ToCoordinator` variant, from one sender.
#[derive(Clone, Debug)]
pub struct EveryToCoordinator(pub String, pub Vec<ToCoordinator<String>>);

impl Arbitrary for EveryToCoordinator {
    fn arbitrary(g: &mut Gen) -> Self {
        let work = (0..usize::arbitrary(g) % 5).map(|_| id(g)).collect();
        let msgs = vec![
            ToCoordinator::BootstrapResponse {
                term: positive(g),
                epoch: positive(g),
                liveness: liveness(g),
                work,
                version: u32::arbitrary(g),
            },
            ToCoordinator::Heartbeat {
                epoch: positive(g),
                liveness: liveness(g),
            },
            ToCoordinator::SetLivenessResponse {
                epoch: positive(g),
                liveness: liveness(g),
            },
            ToCoordinator::WorkStatus {
                work: id(g),
                epoch: positive(g),
                term: positive(g),
                op: u64::arbitrary(g),
                status: work_state(g),
            },
        ];
        EveryToCoordinator(id(g), msgs)
    }
}

/// Every `BlockReason` variant, in random order.
pub fn every_reason(g: &mut Gen) -> Vec<BlockReason<String>> {
    let mut reasons = vec![
        BlockReason::Bootstrapping { missing: count(g) },
        BlockReason::AnotherDrain { node: id(g) },
        BlockReason::WaitingForDraining { node: id(g) },
        BlockReason::WorkOnTarget { units: count(g) },
        BlockReason::OperationsInFlight {
            operations: count(g),
        },
        BlockReason::NoAliveDestination,
        BlockReason::WaitingForStopping { node: id(g) },
        BlockReason::TargetUnknown { node: id(g) },
    ];
    for i in (1..reasons.len()).rev() {
        reasons.swap(i, usize::arbitrary(g) % (i + 1));
    }
    reasons
}

/// Every kind of DrainNode answer: one report per phase (the first with every block
/// reason), and every refusal.
#[derive(Clone, Debug)]
pub struct EveryDrainAnswer(pub Vec<Result<DrainReport<String>, DrainError<String>>>);

impl Arbitrary for EveryDrainAnswer {
    fn arbitrary(g: &mut Gen) -> Self {
        let mut answers: Vec<_> = PHASES
            .into_iter()
            .enumerate()
            .map(|(i, phase)| {
                let reasons = if i == 0 || bool::arbitrary(g) {
                    every_reason(g)
                } else {
                    Vec::new()
                };
                // As the core answers: 0 with `done` and only then.
                let remaining = if phase == DrainPhase::Done {
                    0
                } else {
                    u64::arbitrary(g).max(1)
                };
                Ok(DrainReport {
                    node: id(g),
                    remaining,
                    phase,
                    reasons,
                })
            })
            .collect();
        answers.push(Err(DrainError::UnknownNode(id(g))));
        answers.push(Err(DrainError::CoordinatorOwnNode(id(g))));
        answers.push(Err(DrainError::LeftBeforeCompletion(id(g))));
        EveryDrainAnswer(answers)
    }
}

/// One `NodeStatus` per view liveness; epochs may be 0.
#[derive(Clone, Debug)]
pub struct EveryNodeStatus(pub Vec<NodeStatus<String>>);

impl Arbitrary for EveryNodeStatus {
    fn arbitrary(g: &mut Gen) -> Self {
        let nodes = VIEW_LIVENESS
            .into_iter()
            .map(|liveness| NodeStatus {
                node: id(g),
                epoch: u64::arbitrary(g),
                liveness,
                is_coordinator: bool::arbitrary(g),
                units: count(g),
                operations: count(g),
            })
            .collect();
        EveryNodeStatus(nodes)
    }
}

/// Wire input as a peer might send it: ids possibly empty, numbers often 0, enum
/// numbers often unspecified or unknown, bodies possibly missing.
#[derive(Clone, Debug)]
pub struct AnyWire(pub pb::NodeMessage, pub pb::CoordinatorMessage);

fn any_id(g: &mut Gen) -> String {
    if bool::arbitrary(g) {
        String::new()
    } else {
        id(g)
    }
}

fn any_num(g: &mut Gen) -> u64 {
    let any = u64::arbitrary(g);
    *g.choose(&[0, 1, 2, any]).unwrap()
}

fn any_enum(g: &mut Gen) -> i32 {
    let any = i32::arbitrary(g);
    *g.choose(&[-1, 0, 1, 2, 3, 4, any]).unwrap()
}

impl Arbitrary for AnyWire {
    fn arbitrary(g: &mut Gen) -> Self {
        use pb::{coordinator_message as c, node_message as n};
        let node_body = match u8::arbitrary(g) % 5 {
            0 => None,
            1 => Some(n::Body::BootstrapRequest(pb::BootstrapRequest {
                term: any_num(g),
            })),
            2 => Some(n::Body::SetNodeLiveness(pb::SetNodeLiveness {
                target: any_enum(g),
                epoch: any_num(g),
                term: any_num(g),
            })),
            3 => Some(n::Body::AddWork(pb::AddWork {
                work_id: any_id(g),
                epoch: any_num(g),
                term: any_num(g),
                op: any_num(g),
            })),
            _ => Some(n::Body::RemoveWork(pb::RemoveWork {
                work_id: any_id(g),
                epoch: any_num(g),
                term: any_num(g),
                op: any_num(g),
            })),
        };
        let coord_body = match u8::arbitrary(g) % 5 {
            0 => None,
            1 => Some(c::Body::BootstrapResponse(pb::BootstrapResponse {
                term: any_num(g),
                epoch: any_num(g),
                liveness: any_enum(g),
                work_ids: (0..u8::arbitrary(g) % 4).map(|_| any_id(g)).collect(),
                version: u32::arbitrary(g),
            })),
            2 => Some(c::Body::Heartbeat(pb::NodeHeartbeat {
                epoch: any_num(g),
                liveness: any_enum(g),
            })),
            3 => Some(c::Body::SetNodeLivenessResponse(
                pb::SetNodeLivenessResponse {
                    epoch: any_num(g),
                    liveness: any_enum(g),
                },
            )),
            _ => Some(c::Body::WorkStatus(pb::WorkStatus {
                work_id: any_id(g),
                epoch: any_num(g),
                term: any_num(g),
                op: any_num(g),
                state: any_enum(g),
            })),
        };
        AnyWire(
            pb::NodeMessage {
                from: any_id(g),
                body: node_body,
            },
            pb::CoordinatorMessage {
                from: any_id(g),
                body: coord_body,
            },
        )
    }
}
