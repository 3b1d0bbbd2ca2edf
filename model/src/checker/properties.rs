//! The properties of specs/protocol.md §6. Most clauses are judged against the real
//! state of the nodes (what they run, their actual liveness); the few that are about
//! what a coordinator may send are judged against its belief (`specs/properties.md`
//! lists which, and what real-state consequence each protects).
//!
//! Step properties (S1, S2, S3, S4, S6, S10) are judged by the step that could break them,
//! with its inputs and outputs in hand, and remembered in the history; state properties
//! (S5, S7, S8, S9) are judged on every state. L1 is judged on quiescent states; L2 are
//! reachability witnesses.

use super::ids::{NodeIx, UnitIx};
use super::system::{DrainModel, SysState};
use crate::protocol::Liveness;
use stateright::{Expectation, Property};

/// The safety properties that a single step can break.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Violation {
    S1 = 1,
    S2 = 2,
    S3 = 3,
    S4 = 4,
    S6 = 6,
    S10 = 10,
}

/// One property: its id, kind, statement, and how the model judges it.
pub struct PropertyInfo {
    pub name: &'static str,
    pub expectation: Expectation,
    pub statement: &'static str,
    pub condition: fn(&DrainModel, &SysState) -> bool,
}

/// Every property, in report order.
pub fn catalogue() -> Vec<PropertyInfo> {
    use Expectation::{Always, Sometimes};
    vec![
        PropertyInfo {
            name: "S1",
            expectation: Always,
            statement: "no liveness regression: an incarnation only steps forward, one step at a time",
            condition: |_, s| !s.history.violated(Violation::S1),
        },
        PropertyInfo {
            name: "S2",
            expectation: Always,
            statement: "the coordinator's observed (epoch, liveness) of a node never decreases within a term",
            condition: |_, s| !s.history.violated(Violation::S2),
        },
        PropertyInfo {
            name: "S3",
            expectation: Always,
            statement: "no premature zero: DrainNode and DrainStatus answer 0 for a node only when it is really Stopping (or gone after Stopping), empty, with no operation involving it in flight",
            condition: |_, s| !s.history.violated(Violation::S3),
        },
        PropertyInfo {
            name: "S4",
            expectation: Always,
            statement: "no new placement on a node observed Draining, Stopping or Unknown; a Stopping node never starts a work unit",
            condition: |_, s| !s.history.violated(Violation::S4),
        },
        PropertyInfo {
            name: "S5",
            expectation: Always,
            statement: "single host: no work unit runs on two nodes at once",
            condition: single_host,
        },
        PropertyInfo {
            name: "S6",
            expectation: Always,
            statement: "epoch fencing: a liveness command is applied only by the incarnation it names; Stopping only to an incarnation its sender observed Draining",
            condition: |_, s| !s.history.violated(Violation::S6),
        },
        PropertyInfo {
            name: "S7",
            expectation: Always,
            statement: "a node that is not Alive is never the coordinator",
            condition: coordinator_alive,
        },
        PropertyInfo {
            name: "S8",
            expectation: Always,
            statement: "no lost work: every unit runs somewhere or the coordinator will place it, unless a crash or a lost lease awaits recovery",
            condition: no_lost_work,
        },
        PropertyInfo {
            name: "S9",
            expectation: Always,
            statement: "a node follows only an elected coordinator: no node's term floor (live or persisted) exceeds the largest term the election issued",
            condition: floors_elected,
        },
        PropertyInfo {
            name: "S10",
            expectation: Always,
            statement: "no new placement on the target of a pending drain (requested, not yet answered 0)",
            condition: |_, s| !s.history.violated(Violation::S10),
        },
        PropertyInfo {
            name: "L1",
            expectation: Always,
            statement: "every requested drain reaches 0: no quiescent state leaves one unanswered while another node is Alive (with a client that gives up at failover: leaves a Draining node short of Stopping and empty)",
            condition: drain_not_stuck,
        },
        PropertyInfo {
            name: "L1 settles",
            expectation: Always,
            statement: "no livelock: from every state, a fair continuation (every message delivered, every timer fired, no faults) becomes quiescent within the bound of --fair-rounds (judged only when it is set)",
            condition: super::fairness::settles,
        },
        PropertyInfo {
            name: "L2 drain completes",
            expectation: Sometimes,
            statement: "some run drains the target to 0",
            condition: |m, s| s.history.is_zero(m.cfg.target()),
        },
        PropertyInfo {
            name: "L2 failover mid-drain",
            expectation: Sometimes,
            statement: "some run loses the coordinator while the target is Draining, and still drains it to 0",
            condition: |m, s| s.history.is_zero(m.cfg.target()) && s.history.failover_mid_drain,
        },
        PropertyInfo {
            name: "L2 restart mid-drain",
            expectation: Sometimes,
            statement: "some run crashes the target while Draining, restarts it, and still drains it to 0",
            condition: |m, s| {
                s.history.is_zero(m.cfg.target()) && s.history.target_crashed_mid_drain
            },
        },
    ]
}

/// L2's scenario properties: the only readers of the history's scenario records
/// (`ModelConfig::record_scenarios`), witnessed by a search of their own
/// (`checker::run`).
pub const SCENARIOS: [&str; 2] = ["L2 failover mid-drain", "L2 restart mid-drain"];

/// Whether `cfg` has the fault a scenario needs at all: the coordinator fails by a
/// crash of its node, a failover or a lease loss (`failover_mid_drain`); the target
/// fails by a crash (`target_crashed_mid_drain`). Where it has none, no state records
/// the scenario and the search for it is skipped (`scenario_soundness` shows the full
/// search agrees).
pub fn scenario_possible(cfg: &super::config::ModelConfig, name: &str) -> bool {
    match name {
        "L2 failover mid-drain" => cfg.node_crashes + cfg.failovers + cfg.lease_losses > 0,
        "L2 restart mid-drain" => cfg.node_crashes > 0,
        _ => false,
    }
}

/// The properties as stateright wants them.
pub fn all() -> Vec<Property<DrainModel>> {
    catalogue()
        .into_iter()
        .map(|p| Property {
            expectation: p.expectation,
            name: p.name,
            condition: p.condition,
        })
        .collect()
}

/// S5.
fn single_host(model: &DrainModel, s: &SysState) -> bool {
    (0..model.cfg.all_units()).map(UnitIx).all(|w| {
        (0..model.cfg.nodes)
            .map(NodeIx)
            .filter(|n| DrainModel::is_up(s, *n) && DrainModel::node(s, *n).agent.runs(&w))
            .count()
            <= 1
    })
}

/// S7.
fn coordinator_alive(_: &DrainModel, s: &SysState) -> bool {
    match DrainModel::coordinator(s) {
        Some((host, _)) => DrainModel::node(s, host).agent.liveness() == Liveness::Alive,
        None => true,
    }
}

/// S9.
fn floors_elected(model: &DrainModel, s: &SysState) -> bool {
    let issued = s.history.term;
    (0..model.cfg.nodes).map(NodeIx).all(|n| {
        let live = DrainModel::is_up(s, n) && DrainModel::node(s, n).agent.term_floor() > issued;
        let persisted = s.actor_storages[n.ix()]
            .as_ref()
            .and_then(|st| st.leader.as_ref())
            .is_some_and(|l| l.term > issued);
        !live && !persisted
    })
}

/// Whether the incarnation `epoch` of `node` is dead and ended in a crash: the
/// coordinator may still believe in it until it learns otherwise.
fn crash_pending(s: &SysState, node: NodeIx, epoch: u64) -> bool {
    let current = DrainModel::is_up(s, node).then(|| DrainModel::node(s, node).agent.epoch());
    current != Some(epoch) && s.history.crash_ends[node.ix()] & (1 << epoch) != 0
}

/// S8.
fn no_lost_work(model: &DrainModel, s: &SysState) -> bool {
    // No live coordinator, or one still bootstrapping: a failover is being recovered.
    let Some((_, c)) = DrainModel::coordinator(s) else {
        return true;
    };
    if !c.is_bootstrapped() {
        return true;
    }
    (0..s.history.promised).map(UnitIx).all(|w| {
        let runs = (0..model.cfg.nodes)
            .map(NodeIx)
            .any(|n| DrainModel::is_up(s, n) && DrainModel::node(s, n).agent.runs(&w));
        runs || c.operation(&w).is_some()
            || c.is_unplaced(&w)
            || c.placement_of(&w).is_some_and(|n| {
                let believed = c.record(n).map_or(0, |r| r.epoch);
                // A node that lost its lease fenced itself at once, and the cluster may
                // move its work only once its registration expires: until then the
                // unit runs nowhere, as after a crash.
                // (With late membership, until the coordinator's watch reports the
                // expiry of its registration, the recovery still awaits.)
                crash_pending(s, *n, believed)
                    || s.history.is_fenced(*n)
                    || s.history.unseen_leaves & (1 << n.0) != 0
            })
    })
}

/// L1: in a quiescent state, every requested drain has answered 0, unless it cannot:
/// the node is gone, it runs the coordinator (C10 refuses), or no other node is
/// Alive to take its work.
fn drain_not_stuck(model: &DrainModel, s: &SysState) -> bool {
    !drain_short_of_zero(model, s) || !model.is_quiescent_expanding(s)
}

/// Whether some requested drain has not answered 0 and still can: a quiescent state
/// with one violates L1. (It reads only the actors and the history, not the network.)
pub fn drain_short_of_zero(model: &DrainModel, s: &SysState) -> bool {
    let h = &s.history;
    let short = |t: NodeIx| h.is_requested(t) && !h.is_zero(t) && may_complete(model, s, t);
    (0..model.cfg.nodes).map(NodeIx).any(short)
}

/// Whether the requested drain of `t` can still complete, so that a quiescent state
/// short of 0 is a liveness failure.
fn may_complete(model: &DrainModel, s: &SysState, t: NodeIx) -> bool {
    let h = &s.history;
    if !DrainModel::is_up(s, t) || !h.is_member(t) {
        return false;
    }
    if DrainModel::coordinator(s).is_some_and(|(host, _)| host == t) {
        return false;
    }
    let other_alive = (0..model.cfg.nodes).map(NodeIx).any(|n| {
        n != t
            && DrainModel::is_up(s, n)
            && DrainModel::node(s, n).agent.liveness() == Liveness::Alive
    });
    if !other_alive {
        return false;
    }
    if model.cfg.client_gives_up && h.term > 1 {
        // Nobody will ask again. A node still Alive never took the request (or came
        // back as a new incarnation): the request died with the coordinator that held
        // it, and nothing durable remembers it. A node that is Draining must still end
        // Stopping and empty.
        let agent = &DrainModel::node(s, t).agent;
        if agent.liveness() == Liveness::Alive
            || (agent.liveness() == Liveness::Stopping && agent.running_count() == 0)
        {
            return false;
        }
    }
    true
}

/// S3, judged whenever a coordinator (on `host`) answers 0 for `node`, to DrainNode or
/// DrainStatus: the node is really Stopping (or its incarnation that the coordinator saw
/// Stopping did stop and is gone), it runs nothing, and no operation involving it is in
/// flight.
pub fn zero_is_safe(s: &SysState, host: NodeIx, node: NodeIx) -> bool {
    let t = node;
    let c = DrainModel::node(s, host)
        .coordinator
        .as_deref()
        .expect("the coordinator that answered");
    let up = DrainModel::is_up(s, t);
    let agent = &DrainModel::node(s, t).agent;
    if up && agent.running_count() > 0 {
        return false;
    }
    if c.operations_involving(&t) > 0 {
        return false;
    }
    if up && agent.liveness() == Liveness::Stopping {
        return true;
    }
    // Gone, or restarted: the incarnation the coordinator believed in must have stopped.
    let stopped = s.history.stopped[t.ix()];
    match c.record(&t) {
        Some(r) => stopped & (1 << r.epoch) != 0,
        None => stopped != 0,
    }
}
