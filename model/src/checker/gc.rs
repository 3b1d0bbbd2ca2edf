//! Garbage collection of permanently inert messages.
//!
//! The network duplicates: a delivered message stays, and may be delivered again at
//! any later time. Most messages soon become unable to change anything (a command of a
//! deposed coordinator, an acknowledgement of a finished operation, a report older than
//! what its receiver knows), yet each combination of them is a different state. This
//! module removes a message once no *future* state of the system can be changed by its
//! delivery, judged with facts that never go back: a node's epoch and persisted term
//! floor, coordinator terms (each used once), operation ids (never reused in a term), a
//! coordinator's bootstrap wait list (only shrinks) and its observed (epoch, liveness)
//! of a node (never decreases: S2).
//!
//! Removing a message is always a behaviour of the network (it may lose messages), and
//! removing an inert one removes no behaviour: its delivery would be a no-op (or would
//! only add messages that are themselves inert) in every state that can follow. So the
//! reachable states of the actors, the history and the verdict of every property are
//! the same with and without collection; `tests/gc_soundness.rs` checks exactly that on
//! small configurations, guards on and off. A rule that depends on a guard applies only
//! while that guard is on.

use super::actor::Msg;
use super::ids::NodeIx;
use super::system::{DrainModel, SysState};
use crate::protocol::{Epoch, Guard, Liveness, Term, ToCoordinator, ToNode};
use stateright::actor::Envelope;

/// Removes every permanently inert message from the network of `s`.
pub fn collect(m: &DrainModel, s: &mut SysState) {
    // Judge every message against the whole state before removing any (`inert` looks
    // at other messages in flight), and allocate only when some message is inert.
    let Some(first) = s.network.iter().position(|e| inert(m, s, e)) else {
        return;
    };
    let dead: Vec<bool> = (s.network.iter().enumerate())
        .map(|(i, e)| i == first || (i > first && inert(m, s, e)))
        .collect();
    s.network.retain_at(|i| !dead[i]);
}

/// The term floor of `node`: what its live agent follows, or what the down node
/// persisted (its next incarnation starts from it).
fn term_floor(s: &SysState, node: NodeIx) -> Term {
    if DrainModel::is_up(s, node) {
        DrainModel::node(s, node).agent.term_floor()
    } else {
        s.actor_storages[node.ix()]
            .as_ref()
            .and_then(|st| st.leader.as_ref())
            .map_or(0, |l| l.term)
    }
}

/// The live coordinator on `node`, if any.
fn coordinator_on(s: &SysState, node: NodeIx) -> Option<&super::actor::Coord> {
    if DrainModel::is_up(s, node) {
        DrainModel::node(s, node)
            .coordinator
            .as_deref()
            .map(|c| &**c)
    } else {
        None
    }
}

/// Whether the message `e` can never again change anything.
pub fn inert(m: &DrainModel, s: &SysState, e: &Envelope<Msg>) -> bool {
    let (src, dst) = (NodeIx::from(e.src), NodeIx::from(e.dst));
    let g = m.cfg.guards;
    match &e.msg {
        Msg::ToNode(cmd) => {
            let floor = term_floor(s, dst);
            match cmd {
                // A bootstrap request of a term at most the node's floor changes nothing
                // at the node (a floor never goes back, and only a newer term is learnt);
                // its answer is wanted only by the coordinator of that term while it waits
                // for this node, and that wait never starts again. (With term fencing off
                // an older term is answered too, and the same holds for the answer.)
                // With elected-terms-only, a node follows only terms the election issues,
                // so a bootstrap request of a term the election never issues (a stray
                // one) is ignored by every node, now and later.
                ToNode::Bootstrap { term } => {
                    (g.on(Guard::ElectedTermsOnly) && *term > m.cfg.max_term())
                        || *term <= floor
                            && !coordinator_on(s, src)
                                .is_some_and(|c| c.term() == *term && c.awaits(&dst))
                }
                // A1: a command of a term below the floor is ignored, and the floor
                // survives restarts.
                ToNode::SetLiveness { term, .. } => g.on(Guard::TermFencing) && *term < floor,
                ToNode::AddWork {
                    work,
                    epoch,
                    term,
                    op,
                }
                | ToNode::RemoveWork {
                    work,
                    epoch,
                    term,
                    op,
                } => {
                    if g.on(Guard::TermFencing) && *term < floor {
                        return true;
                    }
                    if !g.on(Guard::WorkFencing) {
                        return false;
                    }
                    // A command for an incarnation that is gone is ignored by every later
                    // one; within the incarnation, a command older than the unit's fence
                    // is ignored, and fences only grow.
                    if DrainModel::is_up(s, dst) {
                        let agent = &DrainModel::node(s, dst).agent;
                        *epoch < agent.epoch()
                            || (*epoch == agent.epoch()
                                && agent.fence(work).is_some_and(|f| f > (*term, *op)))
                    } else {
                        *epoch <= DrainModel::last_epoch(s, dst)
                    }
                }
            }
        }
        Msg::ToCoord(msg) => {
            let c = coordinator_on(s, dst);
            match msg {
                // Only the coordinator of that term, while it waits for this node, acts on
                // it; a coordinator's term is never reused and its wait never restarts.
                ToCoordinator::BootstrapResponse { term, .. } => {
                    !c.is_some_and(|c| c.term() == *term && c.awaits(&src))
                }
                // Only the coordinator of that term, while that very operation is in
                // flight, acts on it; operation ids are never reused within a term.
                ToCoordinator::WorkStatus { work, term, op, .. } => !c.is_some_and(|c| {
                    c.term() == *term && c.operation(work).is_some_and(|o| o.id == *op)
                }),
                // The model carries reports as `Msg::Report`.
                ToCoordinator::Heartbeat { .. } | ToCoordinator::SetLivenessResponse { .. } => {
                    false
                }
            }
        }
        Msg::Report { epoch, liveness } => report_inert(m, s, src, dst, (*epoch, *liveness)),
    }
}

/// A report of `(epoch, liveness)` from `src` to `dst` is inert when its content is
/// older than `src`'s real state and every coordinator that could receive it will have
/// recorded something newer first: C1 and C3 then drop it. The current coordinator
/// on `dst` has such a record now, or will take it from a bootstrap answer newer than
/// the report; a future coordinator there bootstraps `src` afresh, and its answer
/// reflects a state at least as new as today's.
fn report_inert(
    m: &DrainModel,
    s: &SysState,
    src: NodeIx,
    dst: NodeIx,
    report: (Epoch, Liveness),
) -> bool {
    let g = m.cfg.guards;
    if !(g.on(Guard::DropStaleReports)
        && g.on(Guard::DropRegressingReports)
        && g.on(Guard::BootstrapBeforeServing))
    {
        return false;
    }
    // The least that any future report or bootstrap answer of `src` can say.
    let real = if DrainModel::is_up(s, src) {
        let a = &DrainModel::node(s, src).agent;
        (a.epoch(), a.liveness())
    } else {
        (DrainModel::last_epoch(s, src) + 1, Liveness::Alive)
    };
    if report >= real {
        return false;
    }
    // A coordinator that has no record of `src` yet may take one from a bootstrap
    // answer (as new as `src` is today), or, with late membership, from a join of
    // `src`'s last registration, which may outlive its process: that record names only
    // the epoch (Alive, Unknown), so a report of that epoch could still count (it makes
    // the record fresh). Only an older incarnation's is dropped for sure (C1).
    // (`tests/gc_soundness.rs`, the runtime's environment with a crash, found this.)
    let no_record_yet = !m.cfg.late_membership || report.0 < DrainModel::last_epoch(s, src);
    let Some(c) = coordinator_on(s, dst) else {
        return no_record_yet;
    };
    if c.awaits(&src) {
        // Its record of `src` will come from a bootstrap answer already in flight, or
        // from a newer one (or, with late membership, from a join).
        return no_record_yet
            && bootstrap_answers_in_flight(s, src, dst, c.term()).all(|answer| answer > report);
    }
    // (With late membership, a later coordinator on `dst` may also record `src` from
    // its join: so `no_record_yet` in every case.)
    match c.record(&src) {
        Some(rec) => no_record_yet && (rec.epoch, rec.liveness) > report,
        // Not a member: it is told of `src` later (by a join or a bootstrap answer).
        None => no_record_yet,
    }
}

fn bootstrap_answers_in_flight(
    s: &SysState,
    src: NodeIx,
    dst: NodeIx,
    term: Term,
) -> impl Iterator<Item = (Epoch, Liveness)> + '_ {
    s.network.iter().filter_map(move |e| match &e.msg {
        Msg::ToCoord(ToCoordinator::BootstrapResponse {
            term: t,
            epoch,
            liveness,
            ..
        }) if e.src == src.id() && e.dst == dst.id() && *t == term => Some((*epoch, *liveness)),
        _ => None,
    })
}
