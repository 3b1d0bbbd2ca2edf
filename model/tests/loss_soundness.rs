//! Taking losses only where they lead to an L1 violation (`checker/losses.rs`) changes
//! no verdict. Checked by exhaustive search of small configurations:
//!
//! - the states that offering every loss reaches (`every_loss`) are exactly the states
//!   the reduced search reaches, each with at most `--losses` of its messages taken out
//!   (all at once, then collected and renumbered), the loss counter aside;
//! - every property gets the same verdict either way, with every guard on and with
//!   guards off, `resend` among them (the one guard that only a loss shows).

mod support;

use ebbtide_model::checker::losses::without;
use ebbtide_model::checker::run::{RunOptions, Search};
use ebbtide_model::checker::{properties, Action, DrainModel, ModelConfig, SysState};
use ebbtide_model::{Guard, Guards};
use stateright::Model;
use std::collections::HashSet;
use support::{fingerprint, small};

/// The state but its loss counter.
fn projection(s: &SysState) -> u64 {
    let mut s = s.clone();
    s.history.losses = 0;
    fingerprint(&s)
}

/// Every state `m` reaches.
fn reachable(m: &DrainModel) -> Vec<SysState> {
    let mut states = Vec::new();
    support::for_each_reachable(m, |s| states.push(s.clone()));
    states
}

/// Calls `f` with every set of at most `max` indices below `n` (the empty one too).
fn subsets(n: usize, max: usize, f: &mut impl FnMut(&[usize])) {
    fn from(
        n: usize,
        max: usize,
        i0: usize,
        chosen: &mut Vec<usize>,
        f: &mut impl FnMut(&[usize]),
    ) {
        f(chosen);
        if chosen.len() == max {
            return;
        }
        for i in i0..n {
            chosen.push(i);
            from(n, max, i + 1, chosen, f);
            chosen.pop();
        }
    }
    from(n, max, 0, &mut Vec::new(), f)
}

fn same_states(cfg: ModelConfig) {
    let losses = cfg.losses.expect("a loss budget") as usize;
    let every = DrainModel::new(ModelConfig {
        every_loss: true,
        ..cfg.clone()
    });
    let reduced = DrainModel::new(ModelConfig {
        every_loss: false,
        ..cfg.clone()
    });
    let full: HashSet<u64> = reachable(&every).iter().map(projection).collect();
    let explored = reachable(&reduced);
    let mut stood_for = HashSet::new();
    for s in &explored {
        let budget = losses - s.history.losses as usize;
        subsets(s.network.len(), budget, &mut |set| {
            stood_for.insert(projection(&without(&reduced, s, set)));
        });
    }
    // The comparison has teeth: the lossless states alone do not stand for the
    // states with losses (a loss does reach states of its own).
    let lossless: HashSet<u64> = explored.iter().map(projection).collect();
    assert!(
        full.difference(&lossless).count() > 0,
        "{cfg:?}: no state needs a loss"
    );
    let missing = full.difference(&stood_for).count();
    let extra = stood_for.difference(&full).count();
    assert!(
        missing == 0 && extra == 0,
        "{cfg:?}: {missing} states with losses are not stood for, {extra} stood for are not reachable \
         (reachable with every loss: {}, explored: {})",
        full.len(),
        explored.len()
    );
    assert!(
        explored.len() < full.len(),
        "the reduction should shrink the state space ({} / {})",
        explored.len(),
        full.len()
    );
}

/// Every property's verdict, offering every loss and not.
fn same_verdicts(cfg: ModelConfig) {
    let verdicts = |every_loss| {
        let cfg = ModelConfig {
            every_loss,
            ..cfg.clone()
        };
        let opts = RunOptions {
            search: Search::Dfs,
            shorten_for: None,
            ..RunOptions::default()
        };
        support::statuses(&support::exhaustive(cfg, &opts))
    };
    assert_eq!(verdicts(true), verdicts(false), "{cfg:?}");
}

#[test]
fn one_loss() {
    same_states(small(0, 0, 1));
}

#[test]
fn one_loss_a_crash_and_a_failover() {
    same_states(small(1, 1, 1));
}

#[test]
fn two_losses() {
    same_states(small(0, 0, 2));
}

#[test]
fn one_loss_and_a_lease_loss() {
    same_states(ModelConfig {
        lease_losses: 1,
        ..small(0, 0, 1)
    });
}

#[test]
fn one_loss_and_an_added_unit() {
    same_states(ModelConfig {
        added_work: 1,
        ..small(0, 0, 1)
    });
}

#[test]
fn one_loss_in_the_runtime_environment() {
    same_states(ModelConfig {
        resigns: 1,
        elected_start: true,
        late_membership: true,
        failed_elections: true,
        drains_any_order: true,
        ..small(0, 0, 1)
    });
}

#[test]
fn one_loss_without_collection() {
    same_states(ModelConfig {
        gc: false,
        ..small(0, 0, 1)
    });
}

/// The guard only a loss shows: without the resend timer a lost command strands the
/// drain, and the reduced search must still find it.
#[test]
fn without_resend_both_find_l1() {
    let cfg = ModelConfig {
        guards: Guards::default().without(Guard::Resend),
        ..small(1, 1, 1)
    };
    same_verdicts(cfg);
}

/// Each guard off in turn, but two whose state spaces take minutes either way
/// (`drop-stale-reports`, `bootstrap-before-serving`: collection loses its rules
/// with them).
#[test]
fn verdicts_with_each_guard_off_in_turn() {
    let slow = [Guard::DropStaleReports, Guard::BootstrapBeforeServing];
    for g in Guard::ALL.into_iter().filter(|g| !slow.contains(g)) {
        same_verdicts(ModelConfig {
            guards: Guards::default().without(g),
            ..small(1, 1, 1)
        });
    }
}

/// The losses the reduced model offers in each state it reaches are exactly those that,
/// with at most `budget - 1` more, leave a quiescent state with a drain short of 0,
/// found here by trying every set of losses (the model first rules most states out
/// with a cheaper test, `losses::must_lose`, which this checks).
fn offers_exactly_the_losses_that_strand_a_drain(cfg: ModelConfig) {
    let losses = cfg.losses.expect("a loss budget") as usize;
    let m = DrainModel::new(cfg.clone());
    let mut offering = 0;
    for s in reachable(&m) {
        let budget = losses - s.history.losses as usize;
        let mut exact = vec![false; s.network.len()];
        if budget > 0 && properties::drain_short_of_zero(&m, &s) {
            subsets(s.network.len(), budget, &mut |set| {
                let after = without(&m, &s, set);
                if !set.is_empty()
                    && m.is_quiescent(&after)
                    && properties::drain_short_of_zero(&m, &after)
                {
                    for &i in set {
                        exact[i] = true;
                    }
                }
            });
        }
        let mut actions = Vec::new();
        m.actions(&s, &mut actions);
        let offered: Vec<bool> = s
            .network
            .iter()
            .map(|e| {
                actions.iter().any(|a| {
                    matches!(a, Action::Drop { src, dst, msg }
                        if src.id() == e.src && dst.id() == e.dst && *msg == e.msg)
                })
            })
            .collect();
        assert_eq!(offered, exact, "{cfg:?}");
        offering += usize::from(offered.contains(&true));
    }
    assert!(offering > 0, "{cfg:?}: no state offers a loss");
}

#[test]
fn offers_exactly_the_losses_that_strand_a_drain_without_resend() {
    let without_resend = |cfg: ModelConfig| ModelConfig {
        guards: Guards::default().without(Guard::Resend),
        ..cfg
    };
    offers_exactly_the_losses_that_strand_a_drain(without_resend(small(1, 1, 1)));
    offers_exactly_the_losses_that_strand_a_drain(without_resend(small(0, 0, 2)));
}
