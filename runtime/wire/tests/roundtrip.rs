//! core → wire → bytes → wire → core is the identity, for every variant.

use super::gen::{
    AnyWire, EveryDrainAnswer, EveryNodeStatus, EveryToCoordinator, EveryToNode, PHASES,
    VIEW_LIVENESS,
};
use crate::wire::{pb, DrainProgress, WireEnum};
use ebbtide_model::{
    CoordInput, Coordinator, CoordinatorConfig, DrainError, Guards, Liveness, NodeStatus,
    ToCoordinator, ViewLiveness, WorkState,
};
use prost::Message;
use quickcheck::{quickcheck, Gen};

/// Through bytes, as a peer would see it.
fn via_bytes<M: Message + Default>(m: &M) -> M {
    M::decode(m.encode_to_vec().as_slice()).expect("prost decodes what it encoded")
}

quickcheck! {
    fn to_node_round_trips(every: EveryToNode) -> bool {
        let EveryToNode(from, msgs) = every;
        for msg in msgs {
            let wire = via_bytes(&pb::NodeMessage::from_core(from.clone(), msg.clone()));
            assert_eq!(wire.into_core(), Ok((from.clone(), msg)));
        }
        true
    }

    fn to_coordinator_round_trips(every: EveryToCoordinator) -> bool {
        let EveryToCoordinator(from, msgs) = every;
        for msg in msgs {
            let wire = via_bytes(&pb::CoordinatorMessage::from_core(from.clone(), msg.clone()));
            assert_eq!(wire.into_core(), Ok((from.clone(), msg)));
        }
        true
    }

    fn drain_answers_round_trip(every: EveryDrainAnswer) -> bool {
        for answer in every.0 {
            let asked = match &answer {
                Ok(r) => r.node.clone(),
                Err(DrainError::UnknownNode(n))
                | Err(DrainError::CoordinatorOwnNode(n))
                | Err(DrainError::LeftBeforeCompletion(n)) => n.clone(),
            };
            let wire = via_bytes(&pb::DrainNodeResponse::from_core(answer.clone()));
            assert_eq!(wire.into_core(&asked), Ok(answer));
        }
        true
    }

    /// What the HTTP API writes for a drain report is what the CLI's decoder reads.
    fn drain_reports_as_json_decode_for_the_client(every: EveryDrainAnswer) -> bool {
        for report in every.0.into_iter().flatten() {
            let json = crate::http::report_json(&report);
            let progress = DrainProgress::from_json(&report.node, &json);
            assert_eq!(
                progress,
                Ok(DrainProgress {
                    node: report.node.clone(),
                    remaining: report.remaining,
                    phase: report.phase,
                })
            );
        }
        true
    }

    fn node_status_round_trips(every: EveryNodeStatus) -> bool {
        let wire = via_bytes(&every.0.iter().cloned().collect::<pb::ListNodesResponse>());
        assert_eq!(wire.into_core(), Ok(every.0));
        true
    }

    /// Arbitrary wire input never panics, and whatever decodes encodes back to itself.
    fn any_wire_input_decodes_or_errors(any: AnyWire) -> bool {
        let AnyWire(to_node, to_coord) = any;
        match to_node.clone().into_core() {
            Ok((from, msg)) => assert_eq!(pb::NodeMessage::from_core(from, msg), to_node),
            Err(e) => assert!(!e.field().is_empty(), "{e:?}"),
        }
        match to_coord.clone().into_core() {
            Ok((from, msg)) => assert_eq!(pb::CoordinatorMessage::from_core(from, msg), to_coord),
            Err(e) => assert!(!e.field().is_empty(), "{e:?}"),
        }
        true
    }

    /// Random bytes never panic the decoders either.
    fn random_bytes_never_panic(bytes: Vec<u8>) -> bool {
        if let Ok(m) = pb::NodeMessage::decode(bytes.as_slice()) {
            let _ = m.into_core();
        }
        if let Ok(m) = pb::CoordinatorMessage::decode(bytes.as_slice()) {
            let _ = m.into_core();
        }
        if let Ok(m) = pb::DrainNodeResponse::decode(bytes.as_slice()) {
            let asked = m.node_id.clone();
            let _ = m.into_core(&asked);
        }
        if let Ok(m) = pb::ListNodesResponse::decode(bytes.as_slice()) {
            let _ = m.into_core();
        }
        true
    }
}

#[test]
fn enums_round_trip() {
    for l in Liveness::ALL {
        assert_eq!(Liveness::from_wire("f", l.to_wire()), Ok(l));
    }
    for l in VIEW_LIVENESS {
        assert_eq!(ViewLiveness::from_wire("f", l.to_wire()), Ok(l));
    }
    for s in [WorkState::Running, WorkState::Stopped, WorkState::Rejected] {
        assert_eq!(WorkState::from_wire("f", s.to_wire()), Ok(s));
    }
}

/// Wire names are the core's JSON names, so HTTP and gRPC answers read alike.
#[test]
fn wire_names_match_the_core_json_names() {
    for phase in PHASES {
        let json = serde_json::to_value(phase).unwrap();
        assert_eq!(json.as_str(), Some(phase.as_str()));
    }
    for reason in super::gen::every_reason(&mut Gen::new(10)) {
        let json = serde_json::to_value(&reason).unwrap();
        let wire = pb::BlockReason::from(reason.clone());
        assert_eq!(
            json["reason"].as_str(),
            Some(wire.kind.as_str()),
            "{reason:?}"
        );
        assert_eq!(wire.message, reason.to_string());
    }
}

#[test]
fn list_work_shows_placement_and_operations() {
    use pb::PlacementState as State;
    let node = |s: &str| s.to_owned();
    let mut out = Vec::new();
    let mut c = Coordinator::new(
        node("a"),
        1,
        [node("a"), node("b")],
        [node("w1"), node("w2")],
        CoordinatorConfig::default(),
        Guards::default(),
        &mut out,
    );
    let listed = |c: &Coordinator<String, String>| -> Vec<(String, String, State)> {
        pb::ListWorkResponse::from_coordinator(c)
            .placements
            .into_iter()
            .map(|p| (p.state(), p.work_id, p.node_id))
            .map(|(state, work, node)| (work, node, state))
            .collect()
    };
    let unplaced = |w: &str| (node(w), String::new(), State::Unplaced);
    assert_eq!(listed(&c), vec![unplaced("w1"), unplaced("w2")]);
    for (from, work) in [("a", vec![node("w1")]), ("b", vec![])] {
        let msg = ToCoordinator::BootstrapResponse {
            term: 1,
            epoch: 1,
            liveness: Liveness::Alive,
            work,
            version: 1,
        };
        let from = node(from);
        c.handle(CoordInput::Message { from, msg }, &mut out);
    }
    let work = listed(&c);
    assert_eq!(work[0], (node("w1"), node("a"), State::Running));
    assert_eq!(work[1].0, "w2");
    assert_eq!(work[1].2, State::Starting, "{work:?}");
    assert!(!work[1].1.is_empty());
}

#[test]
fn node_status_keeps_an_unknown_epoch() {
    let status = NodeStatus {
        node: "n".to_owned(),
        epoch: 0,
        liveness: ViewLiveness::Unknown,
        is_coordinator: false,
        units: 0,
        operations: 0,
    };
    let wire = pb::NodeStatus::from(status.clone());
    assert_eq!(NodeStatus::try_from(wire), Ok(status));
}
