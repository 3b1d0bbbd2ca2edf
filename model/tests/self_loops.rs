//! No step the checker takes leads back to the state it left.
//!
//! A successor equal to its state adds nothing to the search (the state is already
//! visited) yet costs a whole step: the clone, collection, renaming, the fingerprint
//! and a lookup in the visited set. `DrainModel::run_node` prunes a step that changes
//! nothing *before* building its successor; this test holds that pruning to the states
//! as the checker sees them, after collection and renaming. Before it looked past the
//! raw step, a report that only re-armed a liveness TTL (which canonicalization strips
//! once no TTL may expire any more) was 27 % of the successors generated in CI's first
//! configuration (`ebbtide bench check --by-action`).

mod support;

use ebbtide_model::checker::{DrainModel, ModelConfig};
use stateright::Model;
use support::{for_each_reachable, small};

/// Every reachable state of `cfg`, every action offered there: its successor, if any,
/// differs from the state. Returns how many states were visited.
fn assert_no_self_loops(cfg: ModelConfig) -> usize {
    let m = DrainModel::new(cfg.clone());
    let mut loops = Vec::new();
    let mut actions = Vec::new();
    let states = for_each_reachable(&m, |s| {
        m.actions(s, &mut actions);
        for a in actions.drain(..) {
            if m.next_state(s, a.clone()).is_some_and(|next| next == *s) {
                loops.push(m.format_action(&a));
            }
        }
    });
    loops.sort();
    loops.dedup();
    assert!(
        loops.is_empty(),
        "{cfg:?}: steps that lead back to their own state: {loops:?}"
    );
    states
}

#[test]
fn no_self_loops_with_a_crash_a_failover_and_a_loss() {
    assert!(assert_no_self_loops(small(1, 1, 1)) > 1000);
}

#[test]
fn no_self_loops_with_three_nodes() {
    let cfg = ModelConfig {
        work: 1,
        node_crashes: 0,
        failovers: 0,
        losses: Some(0),
        ..ModelConfig::default()
    };
    let n = assert_no_self_loops(cfg);
    assert!(n > 100, "{n} states");
}

#[test]
fn no_self_loops_with_a_lease_loss() {
    let cfg = ModelConfig {
        lease_losses: 1,
        ..small(0, 0, 0)
    };
    assert!(assert_no_self_loops(cfg) > 100);
}

#[test]
fn no_self_loops_in_the_runtime_environment() {
    let cfg = ModelConfig {
        lease_losses: 0,
        resigns: 0,
        ..ModelConfig::runtime_environment()
    };
    assert!(assert_no_self_loops(cfg) > 100);
}
