//! Garbage collection of inert messages changes no verdict: with and without it, the
//! same actor states, timers, storages and history are reachable (only the network
//! differs, and the loss budget spent on messages that could never matter). Checked by
//! exhaustive search of small configurations, with every guard on and with the guards
//! that the collection rules depend on switched off.

mod support;

use ebbtide_model::checker::actor::{Coord, NodeState, SharedCoord};
use ebbtide_model::checker::{DrainModel, ModelConfig, SysState};
use ebbtide_model::{Guard, Guards};
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use support::small;

/// Everything but the network and the loss counter, in a normal form: operation ids
/// ranked over the actors alone, per term and unit (the model ranks them over the
/// network too, and the network is what differs; renumbering in order is a symmetry of
/// the protocol), and timers sorted.
fn projection(s: &SysState) -> u64 {
    let mut history = s.history.clone();
    history.losses = 0;
    let mut ids: Vec<(u64, u8, u64)> = Vec::new();
    for node in &s.actor_states {
        ids.extend(node.agent.fences().map(|(w, (t, op))| (t, w.0, op)));
        if let Some(c) = &node.coordinator {
            ids.extend(c.op_ids().map(|(w, op)| (c.term(), w.0, op)));
        }
    }
    ids.sort_unstable();
    ids.dedup();
    let rank = |w: u8, t: u64, op: u64| -> u64 {
        if op == 0 {
            return 0;
        }
        ids.iter()
            .filter(|(t2, w2, o2)| *t2 == t && *w2 == w && *o2 > 0 && *o2 <= op)
            .count() as u64
    };
    let largest = |t: u64| -> u64 {
        ids.iter()
            .filter(|(t2, _, _)| *t2 == t)
            .map(|(_, w, op)| rank(*w, t, *op))
            .max()
            .unwrap_or(0)
    };
    let actors: Vec<NodeState> = s
        .actor_states
        .iter()
        .map(|n| {
            let mut n = NodeState::clone(n);
            n.agent.rename_ops(&|w, t, op| rank(w.0, t, op));
            if let Some(c) = &n.coordinator {
                let mut c = Coord::clone(c);
                let t = c.term();
                c.rename_ops(&|w, op| rank(w.0, t, op), largest(t));
                n.coordinator = Some(SharedCoord::new(c));
            }
            n
        })
        .collect();
    let mut h = DefaultHasher::new();
    (
        &actors,
        &s.timers_set,
        &s.crashed,
        &s.actor_storages,
        &history,
    )
        .hash(&mut h);
    h.finish()
}

/// Every reachable projection of `cfg`, and how many states were visited. Every loss
/// is offered (`every_loss`): collection is checked against the whole lossy space, the
/// one `tests/loss_soundness.rs` shows the checker's reduced one stands for.
fn reachable(cfg: ModelConfig) -> (HashSet<u64>, usize) {
    let m = DrainModel::new(ModelConfig {
        every_loss: true,
        ..cfg
    });
    let mut projections = HashSet::new();
    let states = support::for_each_reachable(&m, |s| {
        projections.insert(projection(s));
    });
    (projections, states)
}

fn same_with_and_without_gc(cfg: ModelConfig) {
    let (with, n_with) = reachable(ModelConfig {
        gc: true,
        ..cfg.clone()
    });
    let (without, n_without) = reachable(ModelConfig {
        gc: false,
        ..cfg.clone()
    });
    assert!(
        n_with < n_without,
        "collection should shrink the state space"
    );
    let only_with: Vec<_> = with.difference(&without).collect();
    let only_without: Vec<_> = without.difference(&with).collect();
    assert!(
        only_with.is_empty() && only_without.is_empty(),
        "{cfg:?}: {} projections only with GC, {} only without (of {} / {}); states {n_with} / {n_without}",
        only_with.len(),
        only_without.len(),
        with.len(),
        without.len()
    );
}

#[test]
fn no_faults() {
    same_with_and_without_gc(small(0, 0, 0));
}

#[test]
fn one_loss() {
    same_with_and_without_gc(small(0, 0, 1));
}

#[test]
fn one_crash() {
    same_with_and_without_gc(small(1, 0, 0));
}

#[test]
fn one_failover() {
    same_with_and_without_gc(small(0, 1, 0));
}

#[test]
fn one_lease_loss() {
    same_with_and_without_gc(ModelConfig {
        lease_losses: 1,
        ..small(0, 0, 0)
    });
}

fn without(g: Guard, cfg: ModelConfig) {
    same_with_and_without_gc(ModelConfig {
        guards: Guards::default().without(g),
        ttl_expiries: Some(0),
        ..cfg
    });
}

// The collection rules that depend on a guard are switched off with it; these check
// that the rules left still remove nothing that matters.

#[test]
fn without_term_fencing() {
    without(Guard::TermFencing, small(0, 1, 0));
}

#[test]
fn without_work_fencing() {
    without(Guard::WorkFencing, small(1, 0, 0));
}

#[test]
#[ignore = "minutes and gigabytes without collection; run with --ignored"]
fn without_drop_stale_reports() {
    without(Guard::DropStaleReports, small(1, 0, 0));
}

#[test]
fn without_elected_terms_only() {
    without(Guard::ElectedTermsOnly, small(0, 1, 0));
}

#[test]
fn a_resignation_and_a_graceful_leave() {
    same_with_and_without_gc(ModelConfig {
        resigns: 1,
        leaves: 1,
        ..small(0, 0, 0)
    });
}

#[test]
fn two_stray_terms() {
    same_with_and_without_gc(ModelConfig {
        stray_terms: 2,
        ..small(0, 1, 0)
    });
}

#[test]
fn without_drop_regressing_reports() {
    without(Guard::DropRegressingReports, small(0, 1, 0));
}

#[test]
#[ignore = "minutes and gigabytes without collection; run with --ignored"]
fn without_bootstrap_before_serving() {
    without(Guard::BootstrapBeforeServing, small(0, 1, 0));
}

/// A unit a client adds (no faults: with a failover and a loss, the run without
/// collection has millions of states and takes gigabytes).
#[test]
fn an_added_unit() {
    same_with_and_without_gc(ModelConfig {
        added_work: 1,
        ..small(0, 0, 0)
    });
}

/// The runtime's environment (CI's fifth configuration's walk settings: a cluster that
/// starts with no coordinator, late membership, lagging views, elections that start no
/// coordinator, drains of any node), with a resignation.
#[test]
fn the_runtime_environment() {
    same_with_and_without_gc(ModelConfig {
        resigns: 1,
        elected_start: true,
        late_membership: true,
        failed_elections: true,
        drains_any_order: true,
        ..small(0, 0, 0)
    });
}

/// As [`the_runtime_environment`], with a node crash instead of the resignation (and
/// no TTL expiry or stray term: minutes otherwise). This found reports collected that
/// a coordinator could still take: with late membership, a coordinator may record a
/// member from its join, below what the member's bootstrap answer would say.
#[test]
fn the_runtime_environment_with_a_crash() {
    same_with_and_without_gc(ModelConfig {
        elected_start: true,
        late_membership: true,
        failed_elections: true,
        drains_any_order: true,
        ttl_expiries: Some(0),
        stray_terms: 0,
        ..small(1, 0, 0)
    });
}
