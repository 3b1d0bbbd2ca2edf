//! Each class of bad wire input is a [`DecodeError`] naming the field.

use crate::wire::pb::{self, coordinator_message as c, node_message as n};
use crate::wire::{DecodeError, WireEnum};
use ebbtide_model::{Liveness, ToNode};

fn to_node(body: n::Body) -> Result<(String, ToNode<String>), DecodeError> {
    pb::NodeMessage {
        from: "coord".to_owned(),
        body: Some(body),
    }
    .into_core()
}

fn to_coord(body: c::Body) -> DecodeError {
    pb::CoordinatorMessage {
        from: "node".to_owned(),
        body: Some(body),
    }
    .into_core()
    .unwrap_err()
}

fn missing(field: &str) -> DecodeError {
    DecodeError::Missing {
        field: field.to_owned(),
    }
}

fn unknown_enum(field: &str, value: i32) -> DecodeError {
    DecodeError::UnknownEnum {
        field: field.to_owned(),
        value,
    }
}

fn empty_id(field: &str) -> DecodeError {
    DecodeError::EmptyId {
        field: field.to_owned(),
    }
}

fn zero_epoch(field: &str) -> DecodeError {
    DecodeError::ZeroEpoch {
        field: field.to_owned(),
    }
}

fn zero_term(field: &str) -> DecodeError {
    DecodeError::ZeroTerm {
        field: field.to_owned(),
    }
}

fn heartbeat(epoch: u64, liveness: i32) -> c::Body {
    c::Body::Heartbeat(pb::NodeHeartbeat { epoch, liveness })
}

fn work_status(work_id: &str, epoch: u64, term: u64, state: i32) -> c::Body {
    c::Body::WorkStatus(pb::WorkStatus {
        work_id: work_id.to_owned(),
        epoch,
        term,
        op: 1,
        state,
    })
}

fn add_work(work_id: &str, epoch: u64, term: u64) -> pb::AddWork {
    pb::AddWork {
        work_id: work_id.to_owned(),
        epoch,
        term,
        op: 1,
    }
}

#[test]
fn unknown_or_unspecified_enum_values_are_rejected() {
    let alive = pb::Liveness::Alive as i32;
    let set = |target| {
        to_node(n::Body::SetNodeLiveness(pb::SetNodeLiveness {
            target,
            epoch: 1,
            term: 1,
        }))
    };
    assert_eq!(set(0), Err(unknown_enum("SetNodeLiveness.target", 0)));
    assert_eq!(set(42), Err(unknown_enum("SetNodeLiveness.target", 42)));
    assert_eq!(set(-1), Err(unknown_enum("SetNodeLiveness.target", -1)));
    assert_eq!(
        to_coord(heartbeat(1, 0)),
        unknown_enum("NodeHeartbeat.liveness", 0)
    );
    assert_eq!(
        to_coord(work_status("w", 1, 1, 9)),
        unknown_enum("WorkStatus.state", 9)
    );
    let status = pb::NodeStatus {
        node_id: "n".to_owned(),
        liveness: 0,
        ..Default::default()
    };
    let list = pb::ListNodesResponse {
        nodes: vec![status],
    };
    assert_eq!(
        list.into_core(),
        Err(unknown_enum("ListNodesResponse.nodes[0].liveness", 0))
    );
    assert_eq!(
        Liveness::from_wire("x", alive + 7),
        Err(unknown_enum("x", alive + 7))
    );
    let refused = pb::DrainNodeResponse {
        node_id: "n".to_owned(),
        error: Some(pb::DrainRefusal::default()),
        ..Default::default()
    };
    assert_eq!(
        refused.into_core("n"),
        Err(unknown_enum("DrainNodeResponse.error.kind", 0))
    );
}

#[test]
fn unknown_names_are_rejected() {
    let report = |phase: &str, kind: &str| pb::DrainNodeResponse {
        node_id: "n".to_owned(),
        remaining: 1,
        phase: phase.to_owned(),
        reasons: vec![pb::BlockReason {
            kind: kind.to_owned(),
            ..Default::default()
        }],
        error: None,
    };
    let unknown_name = |field: &str, value: &str| DecodeError::UnknownName {
        field: field.to_owned(),
        value: value.to_owned(),
    };
    assert_eq!(
        report("paused", "no-alive-destination").into_core("n"),
        Err(unknown_name("DrainNodeResponse.phase", "paused"))
    );
    assert_eq!(
        report("done", "bored").into_core("n"),
        Err(unknown_name("DrainNodeResponse.reasons[0].kind", "bored"))
    );
}

#[test]
fn missing_bodies_and_fields_are_rejected() {
    let to_node = pb::NodeMessage {
        from: "coord".to_owned(),
        body: None,
    };
    assert_eq!(to_node.into_core(), Err(missing("NodeMessage.body")));
    let to_coord = pb::CoordinatorMessage {
        from: "node".to_owned(),
        body: None,
    };
    assert_eq!(
        to_coord.into_core(),
        Err(missing("CoordinatorMessage.body"))
    );
    let report = |reason: pb::BlockReason| {
        pb::DrainNodeResponse {
            node_id: "n".to_owned(),
            remaining: 1,
            phase: "moving-work".to_owned(),
            reasons: vec![pb::BlockReason::default(), reason],
            error: None,
        }
        .into_core("n")
    };
    let kind = |k: &str| pb::BlockReason {
        kind: k.to_owned(),
        ..Default::default()
    };
    assert_eq!(
        report(kind("another-drain")),
        Err(missing("DrainNodeResponse.reasons[0].kind"))
    );
    let mut without_kind = pb::DrainNodeResponse::from_core(Err(
        ebbtide_model::DrainError::UnknownNode("n".to_owned()),
    ));
    without_kind.error = None;
    assert_eq!(
        without_kind.into_core("n"),
        Err(missing("DrainNodeResponse.phase"))
    );
    let only = |reason: pb::BlockReason| {
        pb::DrainNodeResponse {
            node_id: "n".to_owned(),
            remaining: 1,
            phase: "moving-work".to_owned(),
            reasons: vec![reason],
            error: None,
        }
        .into_core("n")
    };
    assert_eq!(
        only(kind("another-drain")),
        Err(missing("DrainNodeResponse.reasons[0].node_id"))
    );
    assert_eq!(
        only(kind("work-on-target")),
        Err(missing("DrainNodeResponse.reasons[0].count"))
    );
}

#[test]
fn empty_ids_are_rejected() {
    let anonymous = pb::NodeMessage {
        from: String::new(),
        body: Some(n::Body::BootstrapRequest(pb::BootstrapRequest { term: 1 })),
    };
    assert_eq!(anonymous.into_core(), Err(empty_id("NodeMessage.from")));
    let anonymous = pb::CoordinatorMessage {
        from: String::new(),
        body: Some(heartbeat(1, 1)),
    };
    assert_eq!(
        anonymous.into_core(),
        Err(empty_id("CoordinatorMessage.from"))
    );
    assert_eq!(
        to_node(n::Body::AddWork(add_work("", 1, 1))),
        Err(empty_id("AddWork.work_id"))
    );
    let remove = pb::RemoveWork {
        work_id: String::new(),
        epoch: 1,
        term: 1,
        op: 1,
    };
    assert_eq!(
        to_node(n::Body::RemoveWork(remove)),
        Err(empty_id("RemoveWork.work_id"))
    );
    assert_eq!(
        to_coord(work_status("", 1, 1, 1)),
        empty_id("WorkStatus.work_id")
    );
    let bootstrap = pb::BootstrapResponse {
        term: 1,
        epoch: 1,
        liveness: 1,
        work_ids: vec!["w".to_owned(), String::new()],
        version: 1,
    };
    assert_eq!(
        to_coord(c::Body::BootstrapResponse(bootstrap)),
        empty_id("BootstrapResponse.work_ids[1]")
    );
    assert_eq!(
        pb::DrainNodeRequest::default().into_core(),
        Err(empty_id("DrainNodeRequest.node_id"))
    );
    let add = pb::AddWorkRequest {
        work_ids: vec![String::new()],
    };
    assert_eq!(add.into_core(), Err(empty_id("AddWorkRequest.work_ids[0]")));
    assert_eq!(
        pb::DrainNodeResponse::default().into_core("n"),
        Err(empty_id("DrainNodeResponse.node_id"))
    );
    let reason = pb::BlockReason {
        kind: "target-unknown".to_owned(),
        node_id: Some(String::new()),
        ..Default::default()
    };
    let report = pb::DrainNodeResponse {
        node_id: "n".to_owned(),
        remaining: 1,
        phase: "moving-work".to_owned(),
        reasons: vec![reason],
        ..Default::default()
    };
    assert_eq!(
        report.into_core("n"),
        Err(empty_id("DrainNodeResponse.reasons[0].node_id"))
    );
}

#[test]
fn zero_epochs_from_nodes_are_rejected() {
    assert_eq!(to_coord(heartbeat(0, 1)), zero_epoch("NodeHeartbeat.epoch"));
    let response = pb::SetNodeLivenessResponse {
        epoch: 0,
        liveness: 1,
    };
    assert_eq!(
        to_coord(c::Body::SetNodeLivenessResponse(response)),
        zero_epoch("SetNodeLivenessResponse.epoch")
    );
    let bootstrap = pb::BootstrapResponse {
        term: 1,
        epoch: 0,
        liveness: 1,
        work_ids: Vec::new(),
        version: 1,
    };
    assert_eq!(
        to_coord(c::Body::BootstrapResponse(bootstrap)),
        zero_epoch("BootstrapResponse.epoch")
    );
    assert_eq!(
        to_coord(work_status("w", 0, 1, 1)),
        zero_epoch("WorkStatus.epoch")
    );
}

/// A coordinator that has not heard from a node yet names epoch 0; the node's own
/// epoch fence refuses it, not the decoder.
#[test]
fn zero_epochs_from_the_coordinator_are_accepted() {
    let set = pb::SetNodeLiveness {
        target: pb::Liveness::Draining as i32,
        epoch: 0,
        term: 3,
    };
    assert_eq!(
        to_node(n::Body::SetNodeLiveness(set)),
        Ok((
            "coord".to_owned(),
            ToNode::SetLiveness {
                target: Liveness::Draining,
                epoch: 0,
                term: 3
            }
        ))
    );
    assert!(to_node(n::Body::AddWork(add_work("w", 0, 1))).is_ok());
}

#[test]
fn zero_terms_are_rejected() {
    assert_eq!(
        to_node(n::Body::BootstrapRequest(pb::BootstrapRequest { term: 0 })),
        Err(zero_term("BootstrapRequest.term"))
    );
    let set = pb::SetNodeLiveness {
        target: 1,
        epoch: 1,
        term: 0,
    };
    assert_eq!(
        to_node(n::Body::SetNodeLiveness(set)),
        Err(zero_term("SetNodeLiveness.term"))
    );
    assert_eq!(
        to_node(n::Body::AddWork(add_work("w", 1, 0))),
        Err(zero_term("AddWork.term"))
    );
    let remove = pb::RemoveWork {
        work_id: "w".to_owned(),
        epoch: 1,
        term: 0,
        op: 1,
    };
    assert_eq!(
        to_node(n::Body::RemoveWork(remove)),
        Err(zero_term("RemoveWork.term"))
    );
    let bootstrap = pb::BootstrapResponse {
        term: 0,
        epoch: 1,
        liveness: 1,
        work_ids: Vec::new(),
        version: 1,
    };
    assert_eq!(
        to_coord(c::Body::BootstrapResponse(bootstrap)),
        zero_term("BootstrapResponse.term")
    );
    assert_eq!(
        to_coord(work_status("w", 1, 0, 1)),
        zero_term("WorkStatus.term")
    );
}

#[test]
fn errors_display_the_field_and_are_std_errors() {
    let e = to_coord(heartbeat(0, 1));
    assert_eq!(e.field(), "NodeHeartbeat.epoch");
    assert_eq!(e.to_string(), "NodeHeartbeat.epoch: epoch 0, expected >= 1");
    let e: Box<dyn std::error::Error> = Box::new(unknown_enum("SetNodeLiveness.target", 0));
    assert_eq!(
        e.to_string(),
        "SetNodeLiveness.target: unspecified (enum value 0)"
    );
    let e = unknown_enum("WorkStatus.state", 9);
    assert_eq!(e.to_string(), "WorkStatus.state: unknown enum value 9");
}

/// A drain answer a client would act on is about the node asked, and says 0 only with
/// phase `done`: gRPC (forwarding between nodes) and the HTTP JSON (the CLI) alike.
#[test]
fn drain_answers_about_another_node_or_zero_before_done_are_rejected() {
    use crate::wire::DrainProgress;
    use ebbtide_model::{DrainError, DrainPhase, DrainReport};
    let zero_not_done = |field: &str, phase: &str| DecodeError::ZeroNotDone {
        field: field.to_owned(),
        phase: phase.to_owned(),
    };
    let other_node = |field: &str, asked: &str, answered: &str| DecodeError::OtherNode {
        field: field.to_owned(),
        asked: asked.to_owned(),
        answered: answered.to_owned(),
    };
    let report = |node: &str, remaining: u64, phase: &str| pb::DrainNodeResponse {
        node_id: node.to_owned(),
        remaining,
        phase: phase.to_owned(),
        reasons: Vec::new(),
        error: None,
    };
    let done = Ok(Ok(DrainReport {
        node: "n2".to_owned(),
        remaining: 0,
        phase: DrainPhase::Done,
        reasons: Vec::new(),
    }));
    assert_eq!(report("n2", 0, "done").into_core("n2"), done);
    for phase in [
        "not-requested",
        "bootstrapping",
        "blocked",
        "waiting-for-draining",
        "moving-work",
        "waiting-for-stopping",
    ] {
        assert_eq!(
            report("n2", 0, phase).into_core("n2"),
            Err(zero_not_done("DrainNodeResponse.remaining", phase))
        );
        assert!(report("n2", 1, phase).into_core("n2").is_ok());
    }
    // Another node's 0 (say, the completed drain of n3) is not n2's.
    let other = other_node("DrainNodeResponse.node_id", "n2", "n3");
    assert_eq!(report("n3", 0, "done").into_core("n2"), Err(other.clone()));
    assert_eq!(
        report("n3", 4, "moving-work").into_core("n2"),
        Err(other.clone())
    );
    let refusal = pb::DrainNodeResponse::from_core(Err(DrainError::UnknownNode("n3".into())));
    assert_eq!(refusal.into_core("n2"), Err(other));
    let e = report("n2", 0, "moving-work").into_core("n2").unwrap_err();
    assert_eq!(
        e.to_string(),
        "DrainNodeResponse.remaining: 0 with phase \"moving-work\"; only phase \"done\" may answer 0 (safe to stop)"
    );
    let e = report("n3", 0, "done").into_core("n2").unwrap_err();
    assert_eq!(
        e.to_string(),
        "DrainNodeResponse.node_id: the answer is about node \"n3\", but node \"n2\" was asked"
    );

    // The HTTP API's JSON, as the CLI reads it.
    let json = |node: &str, remaining: u64, phase: &str| serde_json::json!({"node": node, "remaining": remaining, "phase": phase, "reasons": []});
    assert_eq!(
        DrainProgress::from_json("n2", &json("n2", 0, "done")),
        Ok(DrainProgress {
            node: "n2".to_owned(),
            remaining: 0,
            phase: DrainPhase::Done,
        })
    );
    assert_eq!(
        DrainProgress::from_json("n2", &json("n2", 0, "not-requested")),
        Err(zero_not_done("DrainReport.remaining", "not-requested"))
    );
    assert_eq!(
        DrainProgress::from_json("n2", &json("n3", 0, "done")),
        Err(other_node("DrainReport.node", "n2", "n3"))
    );
    assert_eq!(
        DrainProgress::from_json("n2", &serde_json::json!({"node": "n2", "phase": "done"})),
        Err(missing("DrainReport.remaining"))
    );
    assert_eq!(
        DrainProgress::from_json("n2", &json("n2", 3, "paused")),
        Err(DecodeError::UnknownName {
            field: "DrainReport.phase".to_owned(),
            value: "paused".to_owned(),
        })
    );
}
