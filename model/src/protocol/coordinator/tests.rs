use super::*;
use crate::protocol::ids::PROTOCOL_VERSION;

type C = Coordinator<u8, u8>;
type Out = Vec<CoordOutput<u8, u8>>;
type Report = Result<DrainReport<u8>, DrainError<u8>>;

/// The node the coordinator runs on.
const HOST: u8 = 1;
const TERM: Term = 3;

const ALIVE: Liveness = Liveness::Alive;
const DRAINING: Liveness = Liveness::Draining;
const STOPPING: Liveness = Liveness::Stopping;
const RUNNING: WorkState = WorkState::Running;
const STOPPED: WorkState = WorkState::Stopped;
const REJECTED: WorkState = WorkState::Rejected;

// ----- driver -------------------------------------------------------------------------

/// A new coordinator on [`HOST`] for [`TERM`], not bootstrapped yet.
fn new_coord(members: &[u8], desired: &[u8], config: CoordinatorConfig) -> (C, Out) {
    let mut out = Vec::new();
    let c = Coordinator::new(
        HOST,
        TERM,
        members.iter().copied(),
        desired.iter().copied(),
        config,
        Guards::default(),
        &mut out,
    );
    (c, out)
}

fn input(c: &mut C, input: CoordInput<u8, u8>) -> Out {
    let mut out = Vec::new();
    c.handle(input, &mut out);
    out
}

/// `node`'s answer to the bootstrap request.
fn boot(c: &mut C, node: u8, epoch: Epoch, liveness: Liveness, work: &[u8]) -> Out {
    let msg = ToCoordinator::BootstrapResponse {
        term: c.term(),
        epoch,
        liveness,
        work: work.to_vec(),
        version: PROTOCOL_VERSION,
    };
    input(c, CoordInput::Message { from: node, msg })
}

/// A bootstrapped coordinator whose members (in `layout` order) answered at epoch 1 and
/// with `liveness`, running the units listed for them; those units are the desired
/// ones. Returns the outputs of the last bootstrap answer too.
fn coord_full(layout: &[(u8, Liveness, &[u8])], config: CoordinatorConfig) -> (C, Out) {
    let members: Vec<u8> = layout.iter().map(|(n, _, _)| *n).collect();
    let desired: Vec<u8> = layout
        .iter()
        .flat_map(|(_, _, w)| w.iter().copied())
        .collect();
    let (mut c, _) = new_coord(&members, &desired, config);
    let mut last = Vec::new();
    for (n, l, w) in layout {
        last = boot(&mut c, *n, 1, *l, w);
    }
    assert!(c.is_bootstrapped());
    (c, last)
}

/// A bootstrapped coordinator, every member Alive at epoch 1 and running what `layout`
/// lists. Layouts are chosen so that the bootstrap schedules nothing: that is asserted.
fn coord(layout: &[(u8, &[u8])]) -> C {
    let full: Vec<_> = layout.iter().map(|(n, w)| (*n, ALIVE, *w)).collect();
    let (c, last) = coord_full(&full, CoordinatorConfig::default());
    let node = full.last().unwrap().0;
    assert_eq!(last, vec![ttl(node)], "the layout must be quiet");
    check(&c);
    c
}

/// A bootstrapped coordinator with empty members.
fn nodes(ns: &[u8]) -> C {
    let layout: Vec<(u8, &[u8])> = ns.iter().map(|n| (*n, &[][..])).collect();
    coord(&layout)
}

fn config(drain_batch: usize, inherited_drain: InheritedDrain) -> CoordinatorConfig {
    CoordinatorConfig {
        drain_batch,
        inherited_drain,
        ..CoordinatorConfig::default()
    }
}

/// A heartbeat from `node`.
fn report(c: &mut C, node: u8, epoch: Epoch, liveness: Liveness) -> Out {
    let msg = ToCoordinator::Heartbeat { epoch, liveness };
    input(c, CoordInput::Message { from: node, msg })
}

/// A SetLivenessResponse from `node`.
fn respond(c: &mut C, node: u8, epoch: Epoch, liveness: Liveness) -> Out {
    let msg = ToCoordinator::SetLivenessResponse { epoch, liveness };
    input(c, CoordInput::Message { from: node, msg })
}

fn work_status(
    c: &mut C,
    node: u8,
    work: u8,
    epoch: Epoch,
    term: Term,
    op: OpId,
    status: WorkState,
) -> Out {
    let msg = ToCoordinator::WorkStatus {
        work,
        epoch,
        term,
        op,
        status,
    };
    input(c, CoordInput::Message { from: node, msg })
}

/// `node` acknowledges the operation in flight on `work` (at its recorded epoch).
fn ack(c: &mut C, node: u8, work: u8, status: WorkState) -> Out {
    let op = c.operation(&work).expect("an operation in flight").id;
    let epoch = c.record(&node).expect("a member").epoch;
    work_status(c, node, work, epoch, TERM, op, status)
}

fn expire(c: &mut C, node: u8) -> Out {
    input(c, CoordInput::Timer(CoordTimer::LivenessTtl(node)))
}

fn resend(c: &mut C) -> Out {
    input(c, CoordInput::Timer(CoordTimer::Resend))
}

fn drain(c: &mut C, node: u8) -> (Report, Out) {
    let mut out = Vec::new();
    let r = c.drain_node(&node, &mut out);
    (r, out)
}

fn send(to: u8, msg: ToNode<u8>) -> CoordOutput<u8, u8> {
    CoordOutput::Send { to, msg }
}

fn ttl(node: u8) -> CoordOutput<u8, u8> {
    CoordOutput::Arm(CoordTimer::LivenessTtl(node))
}

fn set_l(to: u8, target: Liveness, epoch: Epoch) -> CoordOutput<u8, u8> {
    send(
        to,
        ToNode::SetLiveness {
            target,
            epoch,
            term: TERM,
        },
    )
}

fn add_w(to: u8, work: u8, epoch: Epoch, op: OpId) -> CoordOutput<u8, u8> {
    send(
        to,
        ToNode::AddWork {
            work,
            epoch,
            term: TERM,
            op,
        },
    )
}

fn rem_w(to: u8, work: u8, epoch: Epoch, op: OpId) -> CoordOutput<u8, u8> {
    send(
        to,
        ToNode::RemoveWork {
            work,
            epoch,
            term: TERM,
            op,
        },
    )
}

fn bootstrap_req(to: u8) -> CoordOutput<u8, u8> {
    send(to, ToNode::Bootstrap { term: TERM })
}

fn answer(node: u8, remaining: u64, phase: DrainPhase, reasons: Vec<BlockReason<u8>>) -> Report {
    Ok(DrainReport {
        node,
        remaining,
        phase,
        reasons,
    })
}

fn done(node: u8) -> Report {
    answer(node, 0, DrainPhase::Done, vec![])
}

/// Order-insensitive comparison, for outputs whose order is not part of the contract.
fn assert_same_outputs(mut got: Out, want: Out) {
    let fmt = |o: &CoordOutput<u8, u8>| format!("{o:?}");
    got.sort_by_key(fmt);
    let mut want = want;
    want.sort_by_key(fmt);
    assert_eq!(got, want);
}

fn check(c: &C) {
    assert_eq!(c.bookkeeping_error(), None);
}

fn record(c: &C, node: u8) -> (Epoch, Liveness, ViewLiveness) {
    let r = c.record(&node).expect("a member");
    (r.epoch, r.liveness, r.view())
}

/// Drains `target` (empty, Alive at epoch 1) to completion: DrainNode answers 0.
fn complete_empty_drain(c: &mut C, target: u8) {
    let (_, out) = drain(c, target);
    assert_eq!(out, vec![set_l(target, DRAINING, 1)]);
    let out = respond(c, target, 1, DRAINING);
    assert_eq!(out, vec![ttl(target), set_l(target, STOPPING, 1)]);
    respond(c, target, 1, STOPPING);
    assert_eq!(drain(c, target), (done(target), vec![]));
}

// ----- C1–C3: observation ------------------------------------------------------------

#[test]
fn c1_a_report_with_a_lower_epoch_is_dropped() {
    let mut c = nodes(&[1, 2, 3]);
    assert_eq!(report(&mut c, 2, 2, ALIVE), vec![ttl(2)]);
    let before = c.clone();
    assert_eq!(report(&mut c, 2, 1, DRAINING), vec![]);
    assert_eq!(respond(&mut c, 2, 1, STOPPING), vec![]);
    assert_eq!(c, before);
    assert_eq!(record(&c, 2), (2, ALIVE, ViewLiveness::Alive));
    // A stale report does not refresh an expired node either.
    expire(&mut c, 2);
    assert_eq!(report(&mut c, 2, 1, ALIVE), vec![]);
    assert_eq!(record(&c, 2), (2, ALIVE, ViewLiveness::Unknown));
    check(&c);
}

#[test]
fn c1_reports_from_non_members_are_dropped() {
    let mut c = nodes(&[1, 2]);
    let before = c.clone();
    assert_eq!(report(&mut c, 7, 1, ALIVE), vec![]);
    assert_eq!(c, before);
    assert!(!c.is_member(&7));
    check(&c);
}

#[test]
fn c2_a_new_incarnation_requeues_the_units_of_the_old_one() {
    let mut c = coord(&[(1, &[12]), (2, &[10, 11]), (3, &[13])]);
    // The old incarnation's units died with it. Epoch 2 starts Alive and empty, so it is
    // the least loaded destination for the first of them.
    assert_eq!(
        report(&mut c, 2, 2, ALIVE),
        vec![ttl(2), add_w(2, 10, 2, 1), add_w(1, 11, 1, 2)]
    );
    assert_eq!(record(&c, 2), (2, ALIVE, ViewLiveness::Alive));
    assert_eq!(c.units_on(&2).count(), 0);
    assert_eq!(c.operations_involving(&2), 1);
    check(&c);
}

#[test]
fn c2_a_new_incarnation_forgets_what_was_observed_of_the_old_one() {
    let mut c = nodes(&[1, 2, 3]);
    assert_eq!(report(&mut c, 2, 1, STOPPING), vec![ttl(2)]);
    assert!(c.observed_draining(&2, 1));
    assert_eq!(report(&mut c, 2, 2, ALIVE), vec![ttl(2)]);
    assert_eq!(record(&c, 2), (2, ALIVE, ViewLiveness::Alive));
    assert!(!c.observed_draining(&2, 1) && !c.observed_draining(&2, 2));
    // Alive again: a destination again.
    expire(&mut c, 1);
    assert_eq!(
        input(&mut c, CoordInput::AddUnit(10)),
        vec![add_w(2, 10, 2, 1)]
    );
    check(&c);
}

#[test]
fn c2_a_move_off_a_restarted_origin_goes_on_to_its_destination() {
    let mut c = coord(&[(1, &[12]), (2, &[10, 11]), (3, &[13])]);
    // Draining (no session needed: the drain scheduler moves work off it).
    assert_eq!(
        report(&mut c, 2, 1, DRAINING),
        vec![ttl(2), rem_w(2, 10, 1, 1), rem_w(2, 11, 1, 2)]
    );
    // It restarts before acknowledging: the units died with it, the adds go ahead.
    assert_eq!(
        report(&mut c, 2, 2, ALIVE),
        vec![
            add_w(1, 10, 1, 1),
            add_w(3, 11, 1, 2),
            ttl(2),
            // The empty new incarnation is Alive: balance moves one unit to it.
            rem_w(1, 12, 1, 3),
        ]
    );
    // A late Stopped from the old incarnation changes nothing.
    let before = c.clone();
    assert_eq!(work_status(&mut c, 2, 10, 1, TERM, 1, STOPPED), vec![]);
    assert_eq!(c, before);
    check(&c);
}

#[test]
fn c2_a_new_incarnation_settles_operations_that_involve_the_old_one() {
    let mut c = coord(&[(1, &[10]), (2, &[11]), (3, &[12])]);
    assert_eq!(
        input(&mut c, CoordInput::AddUnit(13)),
        vec![add_w(1, 13, 1, 1)]
    );
    assert_eq!(
        input(&mut c, CoordInput::AddUnit(14)),
        vec![add_w(2, 14, 1, 2)]
    );
    let out = report(&mut c, 2, 2, ALIVE);
    // The add to the old incarnation is dropped; 11 (placed there) and 14 are placed
    // again, on the empty new incarnation.
    assert_eq!(out, vec![ttl(2), add_w(2, 11, 2, 3), add_w(2, 14, 2, 4)]);
    assert_eq!(c.operations_involving(&2), 2);
    // The old incarnation's acknowledgement of op 2 is stale: ignored.
    let before = c.clone();
    assert_eq!(work_status(&mut c, 2, 14, 1, TERM, 2, RUNNING), vec![]);
    assert_eq!(work_status(&mut c, 2, 14, 1, TERM, 4, RUNNING), vec![]);
    assert_eq!(c, before);
    assert_eq!(ack(&mut c, 2, 14, RUNNING), vec![]);
    assert_eq!(c.placement_of(&14), Some(&2));
    check(&c);
}

#[test]
fn c3_a_same_epoch_regression_is_dropped() {
    let mut c = nodes(&[1, 2, 3]);
    assert_eq!(report(&mut c, 2, 1, DRAINING), vec![ttl(2)]);
    let before = c.clone();
    assert_eq!(report(&mut c, 2, 1, ALIVE), vec![]);
    assert_eq!(respond(&mut c, 2, 1, ALIVE), vec![]);
    assert_eq!(c, before);
    assert_eq!(record(&c, 2), (1, DRAINING, ViewLiveness::Draining));
    // The same liveness again is accepted (it refreshes the node).
    expire(&mut c, 2);
    assert_eq!(record(&c, 2).2, ViewLiveness::Unknown);
    assert_eq!(report(&mut c, 2, 1, ALIVE), vec![]);
    assert_eq!(record(&c, 2).2, ViewLiveness::Unknown);
    assert_eq!(report(&mut c, 2, 1, DRAINING), vec![ttl(2)]);
    assert_eq!(record(&c, 2).2, ViewLiveness::Draining);
    check(&c);
}

#[test]
fn heartbeat_and_set_liveness_response_have_the_same_effect() {
    // A few different starting states: plain, with a drain under way, not bootstrapped.
    let mut states = vec![coord(&[(1, &[10]), (2, &[11]), (3, &[12])])];
    let mut draining = states[0].clone();
    let _ = drain(&mut draining, 2);
    respond(&mut draining, 2, 1, DRAINING);
    states.push(draining);
    let mut expired = states[0].clone();
    expire(&mut expired, 3);
    states.push(expired);
    let (mut booting, _) = new_coord(&[1, 2, 3], &[10], CoordinatorConfig::default());
    boot(&mut booting, 1, 1, ALIVE, &[10]);
    states.push(booting);

    for base in &states {
        for node in [1, 2, 3, 4] {
            for epoch in 0..=3 {
                for liveness in Liveness::ALL {
                    let mut a = base.clone();
                    let mut b = base.clone();
                    let oa = report(&mut a, node, epoch, liveness);
                    let ob = respond(&mut b, node, epoch, liveness);
                    let what = format!("node {node} epoch {epoch} {liveness}");
                    assert_eq!(oa, ob, "{what}");
                    assert_eq!(a, b, "{what}");
                    check(&a);
                }
            }
        }
    }
}

// ----- C4: TTL -----------------------------------------------------------------------

#[test]
fn c4_a_node_without_a_report_within_the_ttl_is_unknown_and_no_destination() {
    let mut c = nodes(&[1, 2, 3]);
    assert_eq!(expire(&mut c, 1), vec![]);
    assert_eq!(expire(&mut c, 2), vec![]);
    assert_eq!(record(&c, 1), (1, ALIVE, ViewLiveness::Unknown));
    assert_eq!(
        input(&mut c, CoordInput::AddUnit(10)),
        vec![add_w(3, 10, 1, 1)]
    );
    // A report makes it fresh, and a destination, again.
    assert_eq!(report(&mut c, 1, 1, ALIVE), vec![ttl(1)]);
    assert_eq!(record(&c, 1).2, ViewLiveness::Alive);
    assert_eq!(
        input(&mut c, CoordInput::AddUnit(11)),
        vec![add_w(1, 11, 1, 2)]
    );
    let status: Vec<_> = c
        .nodes()
        .into_iter()
        .map(|s| (s.node, s.liveness))
        .collect();
    assert_eq!(
        status,
        vec![
            (1, ViewLiveness::Alive),
            (2, ViewLiveness::Unknown),
            (3, ViewLiveness::Alive)
        ]
    );
    check(&c);
}

#[test]
fn a_second_ttl_expiry_of_an_expired_node_changes_nothing_and_sends_nothing() {
    // The TTL timer of a node may fire again before it reports (a re-armed timer that
    // raced a late one, a duplicate firing): the record is already Unknown.
    let mut c = coord(&[(1, &[10]), (2, &[11]), (3, &[])]);
    let _ = drain(&mut c, 2);
    assert_eq!(expire(&mut c, 2), vec![]);
    assert_eq!(record(&c, 2), (1, ALIVE, ViewLiveness::Unknown));
    let before = c.clone();
    let status = c.drain_status(&2);
    assert_eq!(expire(&mut c, 2), vec![]);
    assert_eq!(c, before);
    assert_eq!(c.drain_status(&2), status);
    // A node never heard from (epoch 0) and a non-member expire to nothing too.
    let (mut fresh, _) = new_coord(&[1, 2], &[], CoordinatorConfig::default());
    let before = fresh.clone();
    assert_eq!(expire(&mut fresh, 2), vec![]);
    assert_eq!(expire(&mut fresh, 9), vec![]);
    assert_eq!(fresh, before);
    check(&c);
}

#[test]
fn c4_the_drain_does_not_complete_while_the_target_is_unknown() {
    let mut c = nodes(&[1, 2, 3]);
    let _ = drain(&mut c, 2);
    assert_eq!(
        respond(&mut c, 2, 1, DRAINING),
        vec![ttl(2), set_l(2, STOPPING, 1)]
    );
    assert_eq!(respond(&mut c, 2, 1, STOPPING), vec![ttl(2)]);
    assert_eq!(expire(&mut c, 2), vec![]);
    let unknown = answer(
        2,
        1,
        DrainPhase::WaitingForStopping,
        vec![
            BlockReason::TargetUnknown { node: 2 },
            BlockReason::WaitingForStopping { node: 2 },
        ],
    );
    assert_eq!(drain(&mut c, 2), (unknown.clone(), vec![]));
    assert_eq!(c.drain_status(&2), unknown);
    assert_eq!(report(&mut c, 2, 1, STOPPING), vec![ttl(2)]);
    assert_eq!(drain(&mut c, 2), (done(2), vec![]));
    check(&c);
}

// ----- C5–C10: the drain session -----------------------------------------------------

#[test]
fn c5_a_second_drain_while_one_is_active_answers_non_zero_with_the_reason() {
    let mut c = coord(&[(1, &[10]), (2, &[11]), (3, &[12, 13]), (4, &[14])]);
    assert_eq!(drain(&mut c, 2).1, vec![set_l(2, DRAINING, 1)]);
    let blocked = |node, remaining| {
        answer(
            node,
            remaining,
            DrainPhase::Blocked,
            vec![BlockReason::AnotherDrain { node: 2 }],
        )
    };
    let before = c.clone();
    assert_eq!(drain(&mut c, 3), (blocked(3, 2), vec![]));
    assert_eq!(drain(&mut c, 4), (blocked(4, 1), vec![]));
    assert_eq!(c.drain_status(&3), blocked(3, 2));
    assert_eq!(c, before);
    assert_eq!(c.drain_target(), Some(&2));
    check(&c);
}

/// The liveness command of a drain goes out once per change; polling again sends
/// nothing (a client may poll as fast as it likes); the resend timer repeats it.
#[test]
fn c6_a_drain_node_call_sends_the_liveness_command_once_and_the_resend_timer_repeats_it() {
    let mut c = nodes(&[1, 2, 3]);
    let waiting = answer(
        2,
        1,
        DrainPhase::WaitingForDraining,
        vec![BlockReason::WaitingForDraining { node: 2 }],
    );
    assert_eq!(
        drain(&mut c, 2),
        (waiting.clone(), vec![set_l(2, DRAINING, 1)])
    );
    for _ in 0..3 {
        assert_eq!(drain(&mut c, 2), (waiting.clone(), vec![]));
    }
    assert!(resend(&mut c).contains(&set_l(2, DRAINING, 1)));
    // Other inputs do not repeat it either.
    assert_eq!(report(&mut c, 3, 1, ALIVE), vec![ttl(3)]);
    assert_eq!(
        respond(&mut c, 2, 1, DRAINING),
        vec![ttl(2), set_l(2, STOPPING, 1)]
    );
    assert_eq!(report(&mut c, 2, 1, DRAINING), vec![ttl(2)]);
    let stopping = answer(
        2,
        1,
        DrainPhase::WaitingForStopping,
        vec![BlockReason::WaitingForStopping { node: 2 }],
    );
    for _ in 0..2 {
        assert_eq!(drain(&mut c, 2), (stopping.clone(), vec![]));
    }
    assert!(resend(&mut c).contains(&set_l(2, STOPPING, 1)));
    check(&c);
}

/// The checker's variant `--resend-on-poll`: every call sends the command again.
#[test]
fn c6_with_resend_on_poll_every_call_sends_the_liveness_command() {
    let layout = [(1, ALIVE, &[][..]), (2, ALIVE, &[]), (3, ALIVE, &[])];
    let config = CoordinatorConfig {
        resend_on_poll: true,
        ..CoordinatorConfig::default()
    };
    let (mut c, _) = coord_full(&layout, config);
    for _ in 0..3 {
        assert_eq!(drain(&mut c, 2).1, vec![set_l(2, DRAINING, 1)]);
    }
    check(&c);
}

#[test]
fn c7_draining_until_observed_then_stopping_only_when_nothing_remains() {
    let mut c = coord(&[(1, &[10]), (2, &[11]), (3, &[12])]);
    let (r, out) = drain(&mut c, 2);
    assert_eq!(out, vec![set_l(2, DRAINING, 1)]);
    assert_eq!(r.unwrap().phase, DrainPhase::WaitingForDraining);

    // Observed Draining: the drain scheduler moves the unit; no Stopping yet.
    assert_eq!(
        respond(&mut c, 2, 1, DRAINING),
        vec![ttl(2), rem_w(2, 11, 1, 1)]
    );
    let moving = |reasons| answer(2, 1, DrainPhase::MovingWork, reasons);
    assert_eq!(
        drain(&mut c, 2),
        (
            moving(vec![
                BlockReason::WorkOnTarget { units: 1 },
                BlockReason::OperationsInFlight { operations: 1 },
            ]),
            vec![]
        )
    );
    // Stopped on the target, but the move still involves it: no Stopping yet.
    assert_eq!(ack(&mut c, 2, 11, STOPPED), vec![add_w(1, 11, 1, 1)]);
    assert_eq!(
        drain(&mut c, 2),
        (
            moving(vec![BlockReason::OperationsInFlight { operations: 1 }]),
            vec![]
        )
    );
    // Nothing remains: Stopping, at the epoch observed Draining, in the same step.
    assert_eq!(ack(&mut c, 1, 11, RUNNING), vec![set_l(2, STOPPING, 1)]);
    assert_eq!(
        drain(&mut c, 2),
        (
            answer(
                2,
                1,
                DrainPhase::WaitingForStopping,
                vec![BlockReason::WaitingForStopping { node: 2 }]
            ),
            vec![]
        )
    );
    assert_eq!(respond(&mut c, 2, 1, STOPPING), vec![ttl(2)]);
    assert_eq!(drain(&mut c, 2), (done(2), vec![]));
    assert_eq!(c.placement_of(&11), Some(&1));
    check(&c);
}

#[test]
fn c7_stopping_is_never_requested_for_a_node_that_is_not_the_target() {
    let mut c = nodes(&[1, 2, 3]);
    // Draining and empty, but no session: nobody asks it to stop.
    assert_eq!(report(&mut c, 3, 1, DRAINING), vec![ttl(3)]);
    assert_eq!(drain(&mut c, 2).1, vec![set_l(2, DRAINING, 1)]);
    assert_eq!(report(&mut c, 3, 1, DRAINING), vec![ttl(3)]);
    assert_eq!(
        resend(&mut c)
            .iter()
            .filter(|o| matches!(o, CoordOutput::Send { to: 3, .. }))
            .count(),
        0
    );
    check(&c);
}

#[test]
fn c7_a_new_incarnation_of_the_target_is_driven_again_from_alive() {
    let mut c = nodes(&[1, 2, 3]);
    let _ = drain(&mut c, 2);
    assert_eq!(
        respond(&mut c, 2, 1, DRAINING),
        vec![ttl(2), set_l(2, STOPPING, 1)]
    );
    // The target restarts before it stopped: the drain is kept and starts over, at the
    // new epoch, from Draining (it is empty, but was not seen Draining at epoch 2).
    assert_eq!(
        report(&mut c, 2, 2, ALIVE),
        vec![ttl(2), set_l(2, DRAINING, 2)]
    );
    assert_eq!(c.drain_target(), Some(&2));
    // The old incarnation's late Stopping is stale.
    assert_eq!(respond(&mut c, 2, 1, STOPPING), vec![]);
    let waiting = answer(
        2,
        1,
        DrainPhase::WaitingForDraining,
        vec![BlockReason::WaitingForDraining { node: 2 }],
    );
    assert_eq!(drain(&mut c, 2), (waiting, vec![]));
    assert_eq!(
        respond(&mut c, 2, 2, DRAINING),
        vec![ttl(2), set_l(2, STOPPING, 2)]
    );
    assert_eq!(respond(&mut c, 2, 2, STOPPING), vec![ttl(2)]);
    assert_eq!(drain(&mut c, 2), (done(2), vec![]));
    check(&c);
}

#[test]
fn c8_remaining_is_the_larger_of_units_on_the_target_and_operations_involving_it() {
    let mut c = coord(&[(1, &[10]), (2, &[11, 12]), (3, &[13])]);
    let (r, _) = drain(&mut c, 2);
    assert_eq!(
        r,
        answer(
            2,
            2,
            DrainPhase::WaitingForDraining,
            vec![BlockReason::WaitingForDraining { node: 2 }]
        )
    );
    assert_eq!(
        respond(&mut c, 2, 1, DRAINING),
        vec![ttl(2), rem_w(2, 11, 1, 1), rem_w(2, 12, 1, 2)]
    );
    let moving = |remaining, reasons| answer(2, remaining, DrainPhase::MovingWork, reasons);
    let units = |units| BlockReason::WorkOnTarget { units };
    let ops = |operations| BlockReason::OperationsInFlight { operations };
    assert_eq!(c.drain_status(&2), moving(2, vec![units(2), ops(2)]));
    // One stopped: 1 placed, 2 in flight: 2 (not the sum, not only the placed ones).
    assert_eq!(ack(&mut c, 2, 11, STOPPED), vec![add_w(1, 11, 1, 1)]);
    assert_eq!(c.drain_status(&2), moving(2, vec![units(1), ops(2)]));
    assert_eq!(ack(&mut c, 2, 12, STOPPED), vec![add_w(3, 12, 1, 2)]);
    assert_eq!(c.drain_status(&2), moving(2, vec![ops(2)]));
    assert_eq!(ack(&mut c, 1, 11, RUNNING), vec![]);
    assert_eq!(c.drain_status(&2), moving(1, vec![ops(1)]));
    assert_eq!(ack(&mut c, 3, 12, RUNNING), vec![set_l(2, STOPPING, 1)]);
    assert_eq!(
        c.drain_status(&2),
        answer(
            2,
            1,
            DrainPhase::WaitingForStopping,
            vec![BlockReason::WaitingForStopping { node: 2 }]
        )
    );
    respond(&mut c, 2, 1, STOPPING);
    assert_eq!(c.drain_status(&2), done(2));
    assert_eq!(drain(&mut c, 2), (done(2), vec![]));
    check(&c);
}

#[test]
fn remaining_counts_only_the_operations_that_involve_the_target() {
    let mut c = coord(&[(1, &[10]), (2, &[11, 12]), (3, &[13])]);
    let _ = drain(&mut c, 2);
    assert_eq!(
        respond(&mut c, 2, 1, DRAINING),
        vec![ttl(2), rem_w(2, 11, 1, 1), rem_w(2, 12, 1, 2)]
    );
    // Two operations that do not involve the target: a placement and a deletion.
    assert_eq!(
        input(&mut c, CoordInput::AddUnit(20)),
        vec![add_w(1, 20, 1, 3)]
    );
    assert_eq!(
        input(&mut c, CoordInput::DeleteUnit(13)),
        vec![rem_w(3, 13, 1, 4)]
    );
    assert_eq!(c.operations().count(), 4);
    assert_eq!(c.operations_involving(&2), 2);
    let moving = |remaining, reasons| answer(2, remaining, DrainPhase::MovingWork, reasons);
    let units = |units| BlockReason::WorkOnTarget { units };
    let ops = |operations| BlockReason::OperationsInFlight { operations };
    assert_eq!(c.drain_status(&2), moving(2, vec![units(2), ops(2)]));
    // The two moves finish while the other two operations are still in flight: the
    // target is empty, so Stopping is requested and the drain completes.
    assert_eq!(ack(&mut c, 2, 11, STOPPED), vec![add_w(1, 11, 1, 1)]);
    assert_eq!(ack(&mut c, 2, 12, STOPPED), vec![add_w(3, 12, 1, 2)]);
    assert_eq!(c.drain_status(&2), moving(2, vec![ops(2)]));
    assert_eq!(ack(&mut c, 1, 11, RUNNING), vec![]);
    assert_eq!(c.drain_status(&2), moving(1, vec![ops(1)]));
    assert_eq!(ack(&mut c, 3, 12, RUNNING), vec![set_l(2, STOPPING, 1)]);
    assert_eq!(c.operations().count(), 2);
    assert_eq!(c.operations_involving(&2), 0);
    respond(&mut c, 2, 1, STOPPING);
    assert_eq!(drain(&mut c, 2), (done(2), vec![]));
    check(&c);
}

#[test]
fn c8_without_an_alive_destination_the_answer_says_so() {
    let mut c = coord(&[(1, &[]), (2, &[10])]);
    expire(&mut c, 1);
    let _ = drain(&mut c, 2);
    assert_eq!(respond(&mut c, 2, 1, DRAINING), vec![ttl(2)]);
    assert_eq!(
        drain(&mut c, 2),
        (
            answer(
                2,
                1,
                DrainPhase::MovingWork,
                vec![
                    BlockReason::WorkOnTarget { units: 1 },
                    BlockReason::NoAliveDestination
                ]
            ),
            vec![]
        )
    );
    assert_eq!(
        report(&mut c, 1, 1, ALIVE),
        vec![ttl(1), rem_w(2, 10, 1, 1)]
    );
    check(&c);
}

#[test]
fn c8_zero_needs_stopping_at_the_draining_epoch_and_nothing_remaining() {
    let mut c = coord(&[(1, &[10]), (2, &[11]), (3, &[12])]);
    let _ = drain(&mut c, 2);
    // Observed Stopping, but a unit is still placed there: not 0.
    respond(&mut c, 2, 1, DRAINING);
    report(&mut c, 2, 1, STOPPING);
    let (r, _) = drain(&mut c, 2);
    let r = r.unwrap();
    assert_eq!((r.remaining, r.phase), (1, DrainPhase::MovingWork));
    ack(&mut c, 2, 11, STOPPED);
    assert_eq!(drain(&mut c, 2).0.unwrap().remaining, 1);
    ack(&mut c, 1, 11, RUNNING);
    assert_eq!(drain(&mut c, 2), (done(2), vec![]));

    // A Stopping report of a newer epoch than the one seen Draining: a new incarnation,
    // driven from the start again, not 0.
    let mut c = nodes(&[1, 2, 3]);
    let _ = drain(&mut c, 3);
    respond(&mut c, 3, 1, DRAINING);
    assert_eq!(
        report(&mut c, 3, 2, ALIVE),
        vec![ttl(3), set_l(3, DRAINING, 2)]
    );
    let (r, _) = drain(&mut c, 3);
    assert_eq!(r.unwrap().phase, DrainPhase::WaitingForDraining);
    check(&c);
}

#[test]
fn c8_a_target_first_seen_stopping_counts_as_seen_draining() {
    // A node that fenced itself (lease lost) reports Stopping without a Draining report
    // in between; Stopping is reachable only through Draining, so the drain completes.
    let mut c = nodes(&[1, 2, 3]);
    assert_eq!(report(&mut c, 2, 1, STOPPING), vec![ttl(2)]);
    assert_eq!(drain(&mut c, 2), (done(2), vec![]));
    check(&c);
}

#[test]
fn c9_a_completed_target_that_left_keeps_answering_zero() {
    let mut c = nodes(&[1, 2, 3]);
    complete_empty_drain(&mut c, 2);
    assert_eq!(input(&mut c, left(2)), vec![]);
    assert!(!c.is_member(&2));
    assert_eq!(c.drain_target(), None);
    assert_eq!(drain(&mut c, 2), (done(2), vec![]));
    assert_eq!(c.drain_status(&2), done(2));
    // The session is over: another drain is not blocked by it.
    assert_eq!(drain(&mut c, 3).1, vec![set_l(3, DRAINING, 1)]);
    check(&c);
}

#[test]
fn drain_status_of_a_node_nobody_asked_to_drain_is_never_zero() {
    let mut c = nodes(&[1, 2, 3]);
    let r = c.drain_status(&2).unwrap();
    assert_eq!((r.remaining, r.phase), (1, DrainPhase::NotRequested));
    // Nor once another node's drain has completed.
    complete_empty_drain(&mut c, 3);
    let r = c.drain_status(&2).unwrap();
    assert_eq!((r.remaining, r.phase), (1, DrainPhase::NotRequested));
    // It counts what runs there when that is more.
    let c = coord(&[(1, &[10]), (2, &[11, 12]), (3, &[13])]);
    assert_eq!(c.drain_status(&2).unwrap().remaining, 2);
    check(&c);
}

#[test]
fn drain_status_answers_only_the_session_of_the_node_asked() {
    // Node 4's drain completed (its session stays, completed, until another drain
    // starts), then node 2 got two units: node 2, asked about, answers for itself,
    // with what runs on it, never node 4's 0.
    let mut c = nodes(&[1, 2, 3, 4]);
    complete_empty_drain(&mut c, 4);
    for (w, to) in [(20, 1), (21, 2), (22, 3), (23, 1), (24, 2)] {
        let op = OpId::from(w - 19);
        assert_eq!(
            input(&mut c, CoordInput::AddUnit(w)),
            vec![add_w(to, w, 1, op)]
        );
        ack(&mut c, to, w, RUNNING);
    }
    assert_eq!(c.drain_target(), Some(&4));
    let not_requested = |remaining| answer(2, remaining, DrainPhase::NotRequested, vec![]);
    assert_eq!(c.drain_status(&2), not_requested(2));
    assert_eq!(
        c.drain_status(&3),
        answer(3, 1, DrainPhase::NotRequested, vec![])
    );
    assert_eq!(c.drain_status(&4), done(4));
    // Node 4 left: its tombstone answers 0 for node 4 only.
    input(&mut c, left(4));
    assert_eq!(c.drain_status(&4), done(4));
    assert_eq!(c.drain_status(&2), not_requested(2));
    check(&c);
}

#[test]
fn c9_a_target_that_leaves_drained_before_the_next_poll_is_a_tombstone() {
    // The client polled once; the target went Stopping and empty and left (it exited
    // after its drain) before the client polled again.
    let mut c = nodes(&[1, 2, 3]);
    let (_, out) = drain(&mut c, 2);
    assert_eq!(out, vec![set_l(2, DRAINING, 1)]);
    respond(&mut c, 2, 1, DRAINING);
    respond(&mut c, 2, 1, STOPPING);
    input(&mut c, left(2));
    assert_eq!(drain(&mut c, 2), (done(2), vec![]));
    check(&c);

    // A target that leaves before it is Stopping left before completion.
    let mut c = nodes(&[1, 2, 3]);
    let _ = drain(&mut c, 2);
    respond(&mut c, 2, 1, DRAINING);
    input(&mut c, left(2));
    assert_eq!(drain(&mut c, 2).0, Err(DrainError::LeftBeforeCompletion(2)));

    // So does one whose view went stale (it crashed while Stopping, and its lease
    // expired later): a silent node is not confirmed Stopping.
    let mut c = nodes(&[1, 2, 3]);
    let _ = drain(&mut c, 2);
    respond(&mut c, 2, 1, DRAINING);
    respond(&mut c, 2, 1, STOPPING);
    input(&mut c, CoordInput::Timer(CoordTimer::LivenessTtl(2)));
    input(&mut c, left(2));
    assert_eq!(drain(&mut c, 2).0, Err(DrainError::LeftBeforeCompletion(2)));
    check(&c);
}

#[test]
fn c9_a_node_that_joins_again_is_a_new_node_not_a_tombstone() {
    let mut c = nodes(&[1, 2, 3]);
    complete_empty_drain(&mut c, 2);
    input(&mut c, left(2));
    assert_eq!(
        input(&mut c, CoordInput::MemberJoined { node: 2, epoch: 2 }),
        vec![]
    );
    let (r, out) = drain(&mut c, 2);
    assert_eq!(out, vec![set_l(2, DRAINING, 2)]);
    assert_eq!(
        r,
        answer(
            2,
            1,
            DrainPhase::WaitingForDraining,
            vec![
                BlockReason::TargetUnknown { node: 2 },
                BlockReason::WaitingForDraining { node: 2 }
            ]
        )
    );
    check(&c);
}

#[test]
fn c9_a_target_that_left_before_completion_answers_an_error() {
    let mut c = nodes(&[1, 2, 3]);
    let _ = drain(&mut c, 2);
    respond(&mut c, 2, 1, DRAINING);
    assert_eq!(input(&mut c, left(2)), vec![]);
    let left = Err(DrainError::LeftBeforeCompletion(2));
    assert_eq!(drain(&mut c, 2), (left.clone(), vec![]));
    assert_eq!(c.drain_status(&2), left);
    assert_eq!(c.drain_target(), None);
    // The abandoned session does not block another drain.
    assert_eq!(drain(&mut c, 3).1, vec![set_l(3, DRAINING, 1)]);
    check(&c);
}

#[test]
fn c9_an_unknown_node_answers_an_error() {
    let mut c = nodes(&[1, 2]);
    assert_eq!(drain(&mut c, 7), (Err(DrainError::UnknownNode(7)), vec![]));
    assert_eq!(c.drain_status(&7), Err(DrainError::UnknownNode(7)));
    assert_eq!(c.drain_target(), None);
    check(&c);
}

#[test]

fn c9_a_completed_target_keeps_answering_zero_while_another_drain_runs() {
    let mut c = nodes(&[1, 2, 3]);
    complete_empty_drain(&mut c, 2);
    let _ = drain(&mut c, 3);
    // The client of node 2 polls again before stopping it: it was told 0.
    assert_eq!(drain(&mut c, 2).0, done(2));
}

#[test]

fn c9_a_completed_target_that_left_after_another_drain_began_is_a_tombstone() {
    let mut c = nodes(&[1, 2, 3]);
    complete_empty_drain(&mut c, 2);
    let _ = drain(&mut c, 3);
    input(&mut c, left(2));
    assert_eq!(drain(&mut c, 2), (done(2), vec![]));
}

#[test]
fn c10_draining_the_coordinators_own_node_is_refused() {
    let mut c = nodes(&[1, 2]);
    let before = c.clone();
    let refused = Err(DrainError::CoordinatorOwnNode(HOST));
    assert_eq!(drain(&mut c, HOST), (refused.clone(), vec![]));
    assert_eq!(c.drain_status(&HOST), refused);
    assert_eq!(c, before);
    // Also before the bootstrap, and also while another drain runs.
    let (mut fresh, _) = new_coord(&[1, 2], &[], CoordinatorConfig::default());
    assert_eq!(drain(&mut fresh, HOST), (refused.clone(), vec![]));
    let _ = drain(&mut c, 2);
    assert_eq!(drain(&mut c, HOST), (refused, vec![]));
    check(&c);
}

#[test]
fn c10_the_coordinator_resigns_when_its_own_node_is_not_alive() {
    let mut c = nodes(&[1, 2]);
    assert_eq!(report(&mut c, HOST, 1, ALIVE), vec![ttl(HOST)]);
    assert_eq!(report(&mut c, 2, 1, DRAINING), vec![ttl(2)]);
    assert_eq!(
        report(&mut c, HOST, 1, DRAINING),
        vec![CoordOutput::Resign, ttl(HOST)]
    );
    assert_eq!(
        respond(&mut c, HOST, 1, STOPPING),
        vec![CoordOutput::Resign, ttl(HOST)]
    );
    // Seen in the bootstrap answer too.
    let (mut b, _) = new_coord(&[1, 2], &[], CoordinatorConfig::default());
    assert_eq!(
        boot(&mut b, HOST, 1, DRAINING, &[]),
        vec![CoordOutput::Resign, ttl(HOST)]
    );
    check(&c);
}

// ----- C11–C14: scheduling -----------------------------------------------------------

#[test]
fn c11_destinations_are_the_least_loaded_ties_to_the_lowest_id() {
    let mut c = coord(&[(1, &[10]), (2, &[]), (3, &[])]);
    assert_eq!(
        input(&mut c, CoordInput::AddUnit(11)),
        vec![add_w(2, 11, 1, 1)]
    );
    // In-flight adds count as load.
    assert_eq!(
        input(&mut c, CoordInput::AddUnit(12)),
        vec![add_w(3, 12, 1, 2)]
    );
    assert_eq!(
        input(&mut c, CoordInput::AddUnit(13)),
        vec![add_w(1, 13, 1, 3)]
    );
    assert_eq!(
        input(&mut c, CoordInput::AddUnit(14)),
        vec![add_w(2, 14, 1, 4)]
    );
    check(&c);
}

#[test]
fn c11_draining_stopping_and_unknown_nodes_are_never_destinations() {
    let mut c = nodes(&[1, 2, 3, 4]);
    report(&mut c, 2, 1, DRAINING);
    report(&mut c, 3, 1, STOPPING);
    expire(&mut c, 4);
    input(&mut c, CoordInput::MemberJoined { node: 5, epoch: 1 });
    for (op, w) in [10, 11, 12].into_iter().enumerate() {
        assert_eq!(
            input(&mut c, CoordInput::AddUnit(w)),
            vec![add_w(1, w, 1, op as OpId + 1)]
        );
    }
    // No destination at all: the unit waits.
    expire(&mut c, 1);
    assert_eq!(input(&mut c, CoordInput::AddUnit(13)), vec![]);
    assert!(c.is_unplaced(&13));
    check(&c);
}

#[test]
fn c12_the_drain_budget_is_shared_round_robin_across_draining_nodes() {
    let (mut c, _) = new_coord(
        &[1, 2, 3, 4],
        &[10, 11, 12, 13, 14, 15],
        config(2, InheritedDrain::Continue),
    );
    boot(&mut c, 1, 1, ALIVE, &[]);
    boot(&mut c, 2, 1, DRAINING, &[10, 11, 12]);
    boot(&mut c, 3, 1, DRAINING, &[13, 14, 15]);
    // Two moves in flight at most: one off each draining node.
    assert_eq!(
        boot(&mut c, 4, 1, ALIVE, &[]),
        vec![ttl(4), rem_w(2, 10, 1, 1), rem_w(3, 13, 1, 2)]
    );
    // Half done: still two in flight, no new move.
    assert_eq!(ack(&mut c, 2, 10, STOPPED), vec![add_w(1, 10, 1, 1)]);
    // Done: the budget has room again, and it is node 2's turn (3 was served last).
    assert_eq!(ack(&mut c, 1, 10, RUNNING), vec![rem_w(2, 11, 1, 3)]);
    assert_eq!(ack(&mut c, 3, 13, STOPPED), vec![add_w(4, 13, 1, 2)]);
    // And then node 3's.
    assert_eq!(ack(&mut c, 4, 13, RUNNING), vec![rem_w(3, 14, 1, 4)]);
    assert_eq!(
        c.operations()
            .filter(|(_, op)| op.purpose == Purpose::Drain)
            .count(),
        2
    );
    check(&c);
}

#[test]
fn c12_other_operations_do_not_consume_the_drain_budget() {
    let (mut c, last) = coord_full(
        &[(1, ALIVE, &[10]), (2, ALIVE, &[11, 14]), (3, ALIVE, &[12])],
        config(1, InheritedDrain::Continue),
    );
    assert_eq!(last, vec![ttl(3)]);
    // A placement and a deletion in flight.
    assert_eq!(
        input(&mut c, CoordInput::AddUnit(13)),
        vec![add_w(1, 13, 1, 1)]
    );
    assert_eq!(
        input(&mut c, CoordInput::DeleteUnit(12)),
        vec![rem_w(3, 12, 1, 2)]
    );
    // The drain scheduler still has its whole budget (1 move).
    assert_eq!(
        report(&mut c, 2, 1, DRAINING),
        vec![ttl(2), rem_w(2, 11, 1, 3)]
    );
    // Placement goes on while the drain budget is used up.
    assert_eq!(
        input(&mut c, CoordInput::AddUnit(15)),
        vec![add_w(1, 15, 1, 4)]
    );
    assert_eq!(ack(&mut c, 2, 11, STOPPED), vec![add_w(3, 11, 1, 3)]);
    assert_eq!(ack(&mut c, 3, 11, RUNNING), vec![rem_w(2, 14, 1, 5)]);
    check(&c);
}

#[test]
fn c13_a_move_removes_first_and_adds_only_after_the_stop_is_acknowledged() {
    let mut c = coord(&[(1, &[10]), (2, &[11]), (3, &[12])]);
    assert_eq!(
        report(&mut c, 2, 1, DRAINING),
        vec![ttl(2), rem_w(2, 11, 1, 1)]
    );
    let op = c.operation(&11).unwrap().clone();
    assert_eq!(
        (op.purpose, op.phase, op.origin, op.dest),
        (
            Purpose::Drain,
            Phase::Removing { from: 2, epoch: 1 },
            Some(2),
            Some(1)
        )
    );
    assert_eq!(c.placement_of(&11), Some(&2));
    // Acknowledgements that are not the origin's Stopped do not advance it.
    let before = c.clone();
    for (node, epoch, status) in [
        (1, 1, RUNNING),
        (2, 1, RUNNING),
        (1, 1, STOPPED),
        (2, 2, STOPPED),
    ] {
        assert_eq!(
            work_status(&mut c, node, 11, epoch, TERM, 1, status),
            vec![]
        );
    }
    assert_eq!(c, before);
    assert_eq!(ack(&mut c, 2, 11, STOPPED), vec![add_w(1, 11, 1, 1)]);
    assert_eq!(
        c.operation(&11).unwrap().phase,
        Phase::Adding { to: 1, epoch: 1 }
    );
    assert_eq!(c.placement_of(&11), None);
    assert!(!c.is_unplaced(&11));
    assert_eq!(ack(&mut c, 1, 11, RUNNING), vec![]);
    assert_eq!(c.placement_of(&11), Some(&1));
    assert!(c.operation(&11).is_none());
    check(&c);
}

#[test]
fn c13_the_destination_is_chosen_again_if_it_is_no_longer_valid() {
    for invalidate in ["expire", "draining"] {
        let mut c = coord(&[(1, &[10, 13]), (2, &[11]), (3, &[12])]);
        assert_eq!(
            report(&mut c, 2, 1, DRAINING),
            vec![ttl(2), rem_w(2, 11, 1, 1)]
        );
        assert_eq!(c.operation(&11).unwrap().dest, Some(3));
        if invalidate == "expire" {
            assert_eq!(expire(&mut c, 3), vec![]);
        } else {
            // Node 3 drains too: its own unit moves to 1, the only Alive node.
            assert_eq!(
                report(&mut c, 3, 1, DRAINING),
                vec![ttl(3), rem_w(3, 12, 1, 2)]
            );
        }
        assert_eq!(
            ack(&mut c, 2, 11, STOPPED),
            vec![add_w(1, 11, 1, 1)],
            "{invalidate}"
        );
        assert_eq!(c.operation(&11).unwrap().dest, Some(1));
        check(&c);
    }
}

#[test]
fn c13_a_move_without_any_destination_left_requeues_the_unit() {
    let mut c = coord(&[(1, &[10]), (2, &[11]), (3, &[12])]);
    report(&mut c, 2, 1, DRAINING);
    expire(&mut c, 1);
    expire(&mut c, 3);
    assert_eq!(ack(&mut c, 2, 11, STOPPED), vec![]);
    assert!(c.operation(&11).is_none());
    assert!(c.is_unplaced(&11));
    check(&c);
    assert_eq!(
        report(&mut c, 3, 1, ALIVE),
        vec![ttl(3), add_w(3, 11, 1, 2)]
    );
    check(&c);
}

#[test]
fn c14_balance_moves_one_unit_from_the_most_to_the_least_loaded() {
    let (mut c, last) = coord_full(
        &[
            (1, ALIVE, &[10, 11, 12]),
            (2, ALIVE, &[]),
            (3, ALIVE, &[13]),
        ],
        CoordinatorConfig::default(),
    );
    // Loads 3, 0, 1: one move from 1 to 2, and only one at a time.
    assert_eq!(last, vec![ttl(3), rem_w(1, 10, 1, 1)]);
    let op = c.operation(&10).unwrap();
    assert_eq!((op.purpose, op.dest), (Purpose::Balance, Some(2)));
    assert_eq!(ack(&mut c, 1, 10, STOPPED), vec![add_w(2, 10, 1, 1)]);
    // Loads 2, 1, 1: balanced (they differ by less than 2).
    assert_eq!(ack(&mut c, 2, 10, RUNNING), vec![]);
    assert_eq!(c.placement_of(&10), Some(&2));
    check(&c);

    // A difference of exactly 2 is enough; ties go to the lowest ids.
    let (c, last) = coord_full(
        &[
            (1, ALIVE, &[]),
            (2, ALIVE, &[10, 11]),
            (3, ALIVE, &[12, 13]),
            (4, ALIVE, &[]),
        ],
        CoordinatorConfig::default(),
    );
    assert_eq!(last, vec![ttl(4), rem_w(2, 10, 1, 1)]);
    assert_eq!(c.operation(&10).unwrap().dest, Some(1));
    check(&c);
}

#[test]
fn c14_balance_pauses_while_a_node_is_draining() {
    let (mut c, last) = coord_full(
        &[
            (1, ALIVE, &[10, 11, 12]),
            (2, ALIVE, &[]),
            (3, DRAINING, &[]),
        ],
        config(16, InheritedDrain::Freeze),
    );
    assert_eq!(last, vec![ttl(3)]);
    assert_eq!(c.drain_target(), None);
    // The draining node restarts, Alive: nothing drains any more, balance resumes.
    assert_eq!(
        report(&mut c, 3, 2, ALIVE),
        vec![ttl(3), rem_w(1, 10, 1, 1)]
    );
    check(&c);
}

#[test]
fn c14_balance_pauses_while_a_drain_session_is_active() {
    let base = coord(&[(1, &[10, 11]), (2, &[12])]);
    // Control: a new empty node gets a unit by balance.
    let mut c = base.clone();
    input(&mut c, CoordInput::MemberJoined { node: 3, epoch: 1 });
    assert_eq!(
        report(&mut c, 3, 1, ALIVE),
        vec![ttl(3), rem_w(1, 10, 1, 1)]
    );
    // With a drain requested (the target still reports Alive), it does not.
    let mut c = base;
    let _ = drain(&mut c, 2);
    input(&mut c, CoordInput::MemberJoined { node: 3, epoch: 1 });
    assert_eq!(report(&mut c, 3, 1, ALIVE), vec![ttl(3)]);
    assert!(c.operations().next().is_none());
    check(&c);
}

// ----- C15: bootstrap ----------------------------------------------------------------

#[test]
fn c15_nothing_is_served_before_every_member_answered() {
    let (mut c, out) = new_coord(&[1, 2, 3], &[10, 11, 12], CoordinatorConfig::default());
    assert_eq!(
        out,
        vec![
            bootstrap_req(1),
            bootstrap_req(2),
            bootstrap_req(3),
            CoordOutput::Arm(CoordTimer::Resend)
        ]
    );
    assert!(!c.is_bootstrapped());
    assert_eq!(boot(&mut c, 1, 1, ALIVE, &[10]), vec![ttl(1)]);
    // A heartbeat before the bootstrap answer carries no placement: not observed.
    assert_eq!(report(&mut c, 2, 1, ALIVE), vec![]);
    assert_eq!(record(&c, 2), (0, ALIVE, ViewLiveness::Unknown));
    let (r, out) = drain(&mut c, 2);
    assert_eq!(
        r,
        answer(
            2,
            1,
            DrainPhase::Bootstrapping,
            vec![BlockReason::Bootstrapping { missing: 2 }]
        )
    );
    assert_eq!(out, vec![]);
    assert_eq!(c.drain_target(), None);
    assert_eq!(input(&mut c, CoordInput::AddUnit(13)), vec![]);
    // An answer to another term, and a repeated answer, are ignored.
    let stale = ToCoordinator::BootstrapResponse {
        term: TERM - 1,
        epoch: 1,
        liveness: ALIVE,
        work: vec![11],
        version: PROTOCOL_VERSION,
    };
    assert_eq!(
        input(
            &mut c,
            CoordInput::Message {
                from: 2,
                msg: stale
            }
        ),
        vec![]
    );
    assert!(c.awaits(&2));
    assert_eq!(boot(&mut c, 1, 1, ALIVE, &[10]), vec![]);
    assert_eq!(boot(&mut c, 2, 1, ALIVE, &[11]), vec![ttl(2)]);
    assert_eq!(c.drain_status(&1), Err(DrainError::CoordinatorOwnNode(1)));
    assert_eq!(
        c.drain_status(&3),
        answer(
            3,
            1,
            DrainPhase::Bootstrapping,
            vec![BlockReason::Bootstrapping { missing: 1 }]
        )
    );
    assert!(c.operations().next().is_none());
    // The last answer: units stay where they run, the rest are placed.
    assert_eq!(
        boot(&mut c, 3, 1, ALIVE, &[]),
        vec![ttl(3), add_w(3, 12, 1, 1), add_w(1, 13, 1, 2)]
    );
    assert!(c.is_bootstrapped());
    assert_eq!(c.placement_of(&10), Some(&1));
    assert_eq!(c.placement_of(&11), Some(&2));
    check(&c);
}

#[test]
fn c15_undesired_units_reported_in_the_bootstrap_are_stopped() {
    let (mut c, _) = new_coord(&[1, 2], &[10], CoordinatorConfig::default());
    // Nothing is served before the bootstrap completes, deletions included.
    assert_eq!(boot(&mut c, 1, 1, ALIVE, &[10, 20]), vec![ttl(1)]);
    assert!(c.operation(&20).is_none());
    assert_eq!(
        boot(&mut c, 2, 1, ALIVE, &[]),
        vec![ttl(2), rem_w(1, 20, 1, 1)]
    );
    assert_eq!(c.operation(&20).unwrap().purpose, Purpose::Delete);
    assert_eq!(ack(&mut c, 1, 20, STOPPED), vec![]);
    assert!(c.operation(&20).is_none());
    assert_eq!(c.placement_of(&20), None);
    check(&c);
}

#[test]
fn c15_bootstrap_completes_when_the_last_awaited_member_leaves() {
    let (mut c, _) = new_coord(&[1, 2], &[10], CoordinatorConfig::default());
    assert_eq!(boot(&mut c, 1, 1, ALIVE, &[]), vec![ttl(1)]);
    assert_eq!(input(&mut c, left(2)), vec![add_w(1, 10, 1, 1)]);
    assert!(c.is_bootstrapped());
    check(&c);
}

#[test]
fn c15_an_inherited_drain_continues_by_default() {
    let (mut c, last) = coord_full(
        &[(1, ALIVE, &[10]), (2, DRAINING, &[11]), (3, ALIVE, &[12])],
        CoordinatorConfig::default(),
    );
    assert_eq!(last, vec![ttl(3), rem_w(2, 11, 1, 1)]);
    assert_eq!(c.drain_target(), Some(&2));
    assert!(c.drain_inherited());
    assert_eq!(ack(&mut c, 2, 11, STOPPED), vec![add_w(1, 11, 1, 1)]);
    // Driven to Stopping without any client call.
    assert_eq!(ack(&mut c, 1, 11, RUNNING), vec![set_l(2, STOPPING, 1)]);
    assert_eq!(
        drain(&mut c, 3).0,
        answer(
            3,
            1,
            DrainPhase::Blocked,
            vec![BlockReason::AnotherDrain { node: 2 }]
        )
    );
    respond(&mut c, 2, 1, STOPPING);
    assert_eq!(drain(&mut c, 2), (done(2), vec![]));
    check(&c);
}

#[test]
fn c15_a_frozen_inherited_drain_moves_nothing_until_a_client_asks() {
    let (mut c, last) = coord_full(
        &[(1, ALIVE, &[10]), (2, DRAINING, &[11]), (3, ALIVE, &[12])],
        config(16, InheritedDrain::Freeze),
    );
    assert_eq!(last, vec![ttl(3)]);
    assert_eq!(c.drain_target(), None);
    assert_same_outputs(resend(&mut c), vec![CoordOutput::Arm(CoordTimer::Resend)]);
    assert_eq!(report(&mut c, 2, 1, DRAINING), vec![ttl(2)]);
    assert_eq!(c.placement_of(&11), Some(&2));
    // A client asks: the work moves in the same call (it is already Draining).
    let (r, out) = drain(&mut c, 2);
    assert_eq!(out, vec![rem_w(2, 11, 1, 1)]);
    assert_eq!(
        r,
        answer(
            2,
            1,
            DrainPhase::MovingWork,
            vec![
                BlockReason::WorkOnTarget { units: 1 },
                BlockReason::OperationsInFlight { operations: 1 }
            ]
        )
    );
    assert!(!c.drain_inherited());
    check(&c);
}

// ----- C6, C13, C17, C18: work status, membership, timers, units ---------------------

#[test]
fn work_status_with_a_stale_term_op_epoch_or_sender_is_ignored() {
    let mut c = coord(&[(1, &[10]), (2, &[11]), (3, &[12])]);
    assert_eq!(
        input(&mut c, CoordInput::AddUnit(13)),
        vec![add_w(1, 13, 1, 1)]
    );
    let before = c.clone();
    for (node, epoch, term, op, status) in [
        (1, 1, TERM - 1, 1, RUNNING),
        (1, 1, TERM + 1, 1, RUNNING),
        (1, 1, TERM, 2, RUNNING),
        (1, 2, TERM, 1, RUNNING),
        (2, 1, TERM, 1, RUNNING),
        (1, 1, TERM, 1, STOPPED),
    ] {
        assert_eq!(
            work_status(&mut c, node, 13, epoch, term, op, status),
            vec![]
        );
        assert_eq!(c, before, "{node} {epoch} {term} {op} {status:?}");
    }
    // A status for a unit without an operation is ignored too.
    assert_eq!(work_status(&mut c, 1, 10, 1, TERM, 1, STOPPED), vec![]);
    assert_eq!(c, before);
    assert_eq!(work_status(&mut c, 1, 13, 1, TERM, 1, RUNNING), vec![]);
    assert_eq!(c.placement_of(&13), Some(&1));
    // A duplicate after completion changes nothing.
    let before = c.clone();
    assert_eq!(work_status(&mut c, 1, 13, 1, TERM, 1, RUNNING), vec![]);
    assert_eq!(c, before);
    check(&c);
}

#[test]
fn rejected_requeues_the_unit() {
    let mut c = coord(&[(1, &[11]), (2, &[]), (3, &[12])]);
    assert_eq!(
        input(&mut c, CoordInput::AddUnit(10)),
        vec![add_w(2, 10, 1, 1)]
    );
    report(&mut c, 2, 1, DRAINING);
    report(&mut c, 2, 1, STOPPING);
    assert_eq!(
        c.operation(&10).unwrap().phase,
        Phase::Adding { to: 2, epoch: 1 }
    );
    // A rejection is also an observation: the node is Stopping.
    assert_eq!(
        ack(&mut c, 2, 10, REJECTED),
        vec![ttl(2), add_w(1, 10, 1, 2)]
    );
    // With no destination, it waits unplaced.
    expire(&mut c, 1);
    expire(&mut c, 3);
    // (Node 1 runs the coordinator: learning it is Stopping, it resigns.)
    assert_eq!(
        ack(&mut c, 1, 10, REJECTED),
        vec![CoordOutput::Resign, ttl(1)]
    );
    assert_eq!(c.record(&1).unwrap().liveness, Liveness::Stopping);
    assert!(c.is_unplaced(&10));
    assert!(c.operation(&10).is_none());
    check(&c);
}

#[test]
fn member_left_requeues_its_units_and_settles_its_operations() {
    let mut c = coord(&[(1, &[10]), (2, &[11]), (3, &[12])]);
    assert_eq!(
        input(&mut c, CoordInput::AddUnit(13)),
        vec![add_w(1, 13, 1, 1)]
    );
    assert_eq!(
        input(&mut c, CoordInput::AddUnit(14)),
        vec![add_w(2, 14, 1, 2)]
    );
    assert_eq!(
        input(&mut c, left(2)),
        vec![add_w(3, 11, 1, 3), add_w(1, 14, 1, 4)]
    );
    assert!(!c.is_member(&2));
    assert_eq!(c.operations_involving(&2), 0);
    assert_eq!(c.units_on(&2).count(), 0);
    // A late acknowledgement from the departed node is ignored.
    let before = c.clone();
    assert_eq!(work_status(&mut c, 2, 14, 1, TERM, 2, RUNNING), vec![]);
    assert_eq!(c, before);
    // Leaving again, or a node never known leaving, changes nothing.
    assert_eq!(input(&mut c, left(2)), vec![]);
    assert_eq!(input(&mut c, left(9)), vec![]);
    assert_eq!(c, before);
    check(&c);
}

#[test]
fn member_left_as_the_destination_of_a_move_chooses_another() {
    let mut c = coord(&[(1, &[10, 13]), (2, &[11]), (3, &[12])]);
    assert_eq!(
        report(&mut c, 2, 1, DRAINING),
        vec![ttl(2), rem_w(2, 11, 1, 1)]
    );
    assert_eq!(c.operation(&11).unwrap().dest, Some(3));
    assert_eq!(input(&mut c, left(3)), vec![add_w(1, 12, 1, 2)]);
    assert_eq!(c.operation(&11).unwrap().dest, None);
    assert_eq!(ack(&mut c, 2, 11, STOPPED), vec![add_w(1, 11, 1, 1)]);
    check(&c);
}

#[test]

fn member_left_as_the_origin_of_a_move_adds_the_unit_on_its_destination() {
    let mut c = coord(&[(1, &[10]), (2, &[11]), (3, &[12])]);
    assert_eq!(
        report(&mut c, 2, 1, DRAINING),
        vec![ttl(2), rem_w(2, 11, 1, 1)]
    );
    // The unit died with its origin: the add goes ahead at once.
    assert_eq!(input(&mut c, left(2)), vec![add_w(1, 11, 1, 1)]);
    check(&c);
}

#[test]
fn member_joined_is_known_at_its_epoch_but_unknown_until_it_reports() {
    let mut c = nodes(&[1, 2]);
    assert_eq!(
        input(&mut c, CoordInput::MemberJoined { node: 4, epoch: 7 }),
        vec![]
    );
    assert!(c.is_member(&4));
    assert!(!c.awaits(&4));
    assert_eq!(record(&c, 4), (7, ALIVE, ViewLiveness::Unknown));
    assert_eq!(
        input(&mut c, CoordInput::AddUnit(12)),
        vec![add_w(1, 12, 1, 1)]
    );
    assert_eq!(
        input(&mut c, CoordInput::AddUnit(13)),
        vec![add_w(2, 13, 1, 2)]
    );
    // An older incarnation's report is stale.
    assert_eq!(report(&mut c, 4, 6, ALIVE), vec![]);
    // Its own report is the same incarnation, not a new one: recorded, now a destination.
    assert_eq!(report(&mut c, 4, 7, ALIVE), vec![ttl(4)]);
    assert_eq!(record(&c, 4), (7, ALIVE, ViewLiveness::Alive));
    assert_eq!(
        input(&mut c, CoordInput::AddUnit(14)),
        vec![add_w(4, 14, 7, 3)]
    );
    // Joining again at the same incarnation, or an older one's late join, changes
    // nothing.
    let before = c.clone();
    for epoch in [7, 6] {
        let join = CoordInput::MemberJoined { node: 4, epoch };
        assert_eq!(input(&mut c, join), vec![]);
        assert_eq!(c, before);
    }
    check(&c);
}

#[test]
fn c17_a_join_of_a_newer_incarnation_ends_the_one_the_coordinator_knows() {
    let mut c = coord(&[(1, &[10]), (2, &[11]), (3, &[])]);
    // A fresh snapshot lists node 2's next incarnation, with no leave of epoch 1 before
    // it: epoch 1's unit runs nowhere now, and waits for a new destination.
    let out = input(&mut c, CoordInput::MemberJoined { node: 2, epoch: 2 });
    assert_eq!(out, vec![add_w(3, 11, 1, 1)]);
    assert_eq!(record(&c, 2), (2, ALIVE, ViewLiveness::Unknown));
    // Epoch 1's late report is stale.
    assert_eq!(report(&mut c, 2, 1, ALIVE), vec![]);
    check(&c);
}

#[test]
fn c17_a_join_during_the_bootstrap_keeps_the_member_awaited_and_its_older_answer_stale() {
    let (mut c, _) = new_coord(&[1, 2], &[10], CoordinatorConfig::default());
    boot(&mut c, 1, 1, ALIVE, &[]);
    // Node 2 restarted before it answered: its registration names epoch 3.
    assert_eq!(
        input(&mut c, CoordInput::MemberJoined { node: 2, epoch: 3 }),
        vec![]
    );
    assert!(c.awaits(&2));
    // Epoch 2's answer, sent before it died, counts nothing: unit 10 runs nowhere.
    assert_eq!(boot(&mut c, 2, 2, ALIVE, &[10]), vec![]);
    assert!(c.awaits(&2));
    // The resend asks again; the new process answers, and the bootstrap completes with
    // unit 10 unplaced (placed on node 1 or 2, not believed running on node 2).
    assert_same_outputs(
        resend(&mut c),
        vec![bootstrap_req(2), CoordOutput::Arm(CoordTimer::Resend)],
    );
    let out = boot(&mut c, 2, 3, ALIVE, &[]);
    assert!(!c.awaits(&2));
    assert!(out.iter().any(|o| matches!(
        o,
        CoordOutput::Send {
            msg: ToNode::AddWork { work: 10, .. },
            ..
        }
    )));
    check(&c);
}

#[test]
fn the_resend_timer_resends_bootstrap_requests_until_answered() {
    let (mut c, _) = new_coord(&[1, 2, 3], &[], CoordinatorConfig::default());
    boot(&mut c, 2, 1, ALIVE, &[]);
    assert_same_outputs(
        resend(&mut c),
        vec![
            bootstrap_req(1),
            bootstrap_req(3),
            CoordOutput::Arm(CoordTimer::Resend),
        ],
    );
    boot(&mut c, 1, 1, ALIVE, &[]);
    boot(&mut c, 3, 1, ALIVE, &[]);
    assert_same_outputs(resend(&mut c), vec![CoordOutput::Arm(CoordTimer::Resend)]);
    check(&c);
}

#[test]
fn the_resend_timer_resends_operation_commands_and_the_drain_command() {
    let mut c = coord(&[(1, &[10]), (2, &[11]), (3, &[12])]);
    let _ = drain(&mut c, 2);
    assert_eq!(
        input(&mut c, CoordInput::AddUnit(13)),
        vec![add_w(1, 13, 1, 1)]
    );
    let arm = CoordOutput::Arm(CoordTimer::Resend);
    assert_same_outputs(
        resend(&mut c),
        vec![add_w(1, 13, 1, 1), set_l(2, DRAINING, 1), arm.clone()],
    );
    assert_eq!(
        respond(&mut c, 2, 1, DRAINING),
        vec![ttl(2), rem_w(2, 11, 1, 2)]
    );
    // Draining is observed: no liveness command while work remains.
    assert_same_outputs(
        resend(&mut c),
        vec![add_w(1, 13, 1, 1), rem_w(2, 11, 1, 2), arm.clone()],
    );
    ack(&mut c, 1, 13, RUNNING);
    ack(&mut c, 2, 11, STOPPED);
    assert_same_outputs(resend(&mut c), vec![add_w(3, 11, 1, 2), arm.clone()]);
    assert_eq!(ack(&mut c, 3, 11, RUNNING), vec![set_l(2, STOPPING, 1)]);
    assert_same_outputs(resend(&mut c), vec![set_l(2, STOPPING, 1), arm.clone()]);
    respond(&mut c, 2, 1, STOPPING);
    assert_same_outputs(resend(&mut c), vec![arm]);
    check(&c);
}

#[test]
fn add_unit_places_it_once() {
    let mut c = coord(&[(1, &[10]), (2, &[])]);
    assert_eq!(input(&mut c, CoordInput::AddUnit(10)), vec![]);
    assert_eq!(
        input(&mut c, CoordInput::AddUnit(11)),
        vec![add_w(2, 11, 1, 1)]
    );
    assert_eq!(input(&mut c, CoordInput::AddUnit(11)), vec![]);
    assert_eq!(c.desired().copied().collect::<Vec<_>>(), vec![10, 11]);
    check(&c);
}

#[test]
fn delete_unit_of_a_placed_unit_stops_it() {
    let mut c = coord(&[(1, &[10]), (2, &[11])]);
    assert_eq!(
        input(&mut c, CoordInput::DeleteUnit(11)),
        vec![rem_w(2, 11, 1, 1)]
    );
    assert_eq!(c.desired().copied().collect::<Vec<_>>(), vec![10]);
    let op = c.operation(&11).unwrap();
    assert_eq!(
        (op.purpose, &op.phase),
        (Purpose::Delete, &Phase::Removing { from: 2, epoch: 1 })
    );
    assert_eq!(c.drain_status(&2).unwrap().remaining, 1);
    assert_eq!(ack(&mut c, 2, 11, STOPPED), vec![]);
    assert!(c.operation(&11).is_none());
    assert_eq!(c.placement_of(&11), None);
    assert!(!c.is_unplaced(&11));
    check(&c);
}

#[test]
fn delete_unit_of_an_unplaced_unit_just_forgets_it() {
    let mut c = nodes(&[1, 2]);
    expire(&mut c, 1);
    expire(&mut c, 2);
    assert_eq!(input(&mut c, CoordInput::AddUnit(12)), vec![]);
    assert!(c.is_unplaced(&12));
    assert_eq!(input(&mut c, CoordInput::DeleteUnit(12)), vec![]);
    assert!(!c.is_unplaced(&12));
    assert_eq!(c.desired().count(), 0);
    // Deleting an unknown unit changes nothing.
    let before = c.clone();
    assert_eq!(input(&mut c, CoordInput::DeleteUnit(99)), vec![]);
    assert_eq!(c, before);
    check(&c);
}

#[test]
fn delete_unit_while_it_is_being_added_stops_it_once_it_runs() {
    let mut c = coord(&[(1, &[10]), (2, &[])]);
    assert_eq!(
        input(&mut c, CoordInput::AddUnit(13)),
        vec![add_w(2, 13, 1, 1)]
    );
    assert_eq!(input(&mut c, CoordInput::DeleteUnit(13)), vec![]);
    assert_eq!(ack(&mut c, 2, 13, RUNNING), vec![rem_w(2, 13, 1, 2)]);
    assert_eq!(ack(&mut c, 2, 13, STOPPED), vec![]);
    assert!(c.operations().next().is_none());
    assert_eq!(c.placement_of(&13), None);
    check(&c);

    // Rejected instead: nothing runs, nothing is left to stop.
    let mut c = coord(&[(1, &[10]), (2, &[])]);
    input(&mut c, CoordInput::AddUnit(13));
    input(&mut c, CoordInput::DeleteUnit(13));
    assert_eq!(ack(&mut c, 2, 13, REJECTED), vec![ttl(2)]);
    assert!(c.operations().next().is_none());
    assert!(!c.is_unplaced(&13));
    check(&c);
}

#[test]
fn delete_unit_during_a_move_ends_with_it_running_nowhere() {
    let mut c = coord(&[(1, &[10]), (2, &[11]), (3, &[12])]);
    assert_eq!(
        report(&mut c, 2, 1, DRAINING),
        vec![ttl(2), rem_w(2, 11, 1, 1)]
    );
    assert_eq!(input(&mut c, CoordInput::DeleteUnit(11)), vec![]);
    // Play the acknowledgements out, whatever is asked for, until nothing is in flight.
    for _ in 0..4 {
        let Some(op) = c.operation(&11).cloned() else {
            break;
        };
        match op.phase {
            Phase::Removing { from, .. } => ack(&mut c, from, 11, STOPPED),
            Phase::Adding { to, .. } => ack(&mut c, to, 11, RUNNING),
        };
    }
    assert!(c.operation(&11).is_none());
    assert_eq!(c.placement_of(&11), None);
    assert!(!c.is_unplaced(&11));
    check(&c);
}

/// `MemberLeft` of the node's latest registration, whatever its epoch.
fn left(node: u8) -> CoordInput<u8, u8> {
    CoordInput::MemberLeft {
        node,
        epoch: crate::protocol::Epoch::MAX,
    }
}

/// C17: a leave that the watch reports late, after the node's next incarnation has
/// already reported, is of the older registration and is ignored: the units placed on
/// the new incarnation stay there (taking it would place them again while they run:
/// S5, found by the runtime's simulation).
#[test]
fn c17_a_late_leave_of_an_older_registration_is_ignored() {
    let mut c = coord(&[(1, &[]), (2, &[10])]);
    // Node 2 restarts: epoch 2 reports before the watch reports epoch 1's leave.
    report(&mut c, 2, 2, ALIVE);
    assert_eq!(record(&c, 2).0, 2);
    let before = c.clone();
    // The late leave of epoch 1's registration changes nothing.
    let late = CoordInput::MemberLeft { node: 2, epoch: 1 };
    assert_eq!(input(&mut c, late), vec![]);
    assert_eq!(c, before);
    // The leave of epoch 2's registration is taken: node 2 is gone.
    input(&mut c, CoordInput::MemberLeft { node: 2, epoch: 2 });
    assert!(c.record(&2).is_none());
    check(&c);
}
