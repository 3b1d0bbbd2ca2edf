//! Leaving L2's scenario records out of the exhaustive search changes no verdict
//! (`ModelConfig::record_scenarios`, `specs/decisions.md`, "Scenarios are witnessed by
//! a search of their own"):
//! - the records change no step: the states reachable without them are exactly the
//!   states reachable with them, records cleared (and the records do split states:
//!   there are more with them);
//! - `checker::run`'s two searches (exhaustive without records, then with records
//!   until each scenario has a witness) report what one search with records reports,
//!   for every property, where the scenarios are reached, where they cannot be
//!   (`properties::scenario_possible`), where a possible one is never reached (the
//!   second search then runs to the end), and with a guard off.

mod support;

use ebbtide_model::checker::properties::SCENARIOS;
use ebbtide_model::checker::run::{RunOptions, Status};
use ebbtide_model::checker::{DrainModel, ModelConfig};
use ebbtide_model::Guard;
use std::collections::HashSet;
use support::fingerprint;

/// Every reachable state of `cfg` (fingerprints), with its scenario records cleared,
/// and how many states there are.
fn reachable(cfg: ModelConfig) -> (HashSet<u64>, usize) {
    let mut cleared = HashSet::new();
    let states = support::for_each_reachable(&DrainModel::new(cfg), |s| {
        let mut c = s.clone();
        c.history.failover_mid_drain = false;
        c.history.target_crashed_mid_drain = false;
        cleared.insert(fingerprint(&c));
    });
    (cleared, states)
}

fn same_states_with_and_without_records(cfg: ModelConfig) {
    let (with, n_with) = reachable(ModelConfig {
        record_scenarios: true,
        ..cfg.clone()
    });
    let (without, n_without) = reachable(ModelConfig {
        record_scenarios: false,
        ..cfg.clone()
    });
    assert!(
        n_with > n_without,
        "{cfg:?}: the records should split states ({n_with} with, {n_without} without)"
    );
    assert_eq!(without.len(), n_without, "cleared states are the states");
    assert!(
        with == without,
        "{cfg:?}: {} states only with records (cleared), {} only without",
        with.difference(&without).count(),
        without.difference(&with).count()
    );
}

/// Every property's status: `run`'s two searches, and one search with records.
fn same_verdicts(cfg: ModelConfig) -> Vec<(&'static str, Status)> {
    let statuses = |apart: bool| {
        let opts = RunOptions {
            threads: 2,
            shorten_for: None,
            scenarios_apart: apart,
            ..RunOptions::default()
        };
        let report = support::exhaustive(cfg.clone(), &opts);
        assert_eq!(report.scenario_search.is_some(), apart && possible(&cfg));
        support::statuses(&report)
    };
    let apart = statuses(true);
    let single = statuses(false);
    assert_eq!(apart, single, "{cfg:?}");
    single
}

fn possible(cfg: &ModelConfig) -> bool {
    SCENARIOS
        .iter()
        .any(|n| ebbtide_model::checker::properties::scenario_possible(cfg, n))
}

fn status(verdicts: &[(&'static str, Status)], name: &str) -> Status {
    verdicts.iter().find(|(n, _)| *n == name).unwrap().1
}

/// `support::small` with one message loss and `lease_losses` lease losses.
fn small(node_crashes: u8, failovers: u8, lease_losses: u8) -> ModelConfig {
    ModelConfig {
        lease_losses,
        ..support::small(node_crashes, failovers, 1)
    }
}

#[test]
fn same_states_crash_failover_loss() {
    same_states_with_and_without_records(small(1, 1, 0));
}

#[test]
fn same_states_lease_loss() {
    same_states_with_and_without_records(small(1, 0, 1));
}

#[test]
fn same_states_two_drains() {
    same_states_with_and_without_records(ModelConfig {
        drains: 2,
        ..small(1, 1, 0)
    });
}

#[test]
fn same_states_late_membership() {
    // CI's fifth configuration without its failover, resignation and drains of any
    // node (1.5 M states with them: too many to keep here).
    same_states_with_and_without_records(ModelConfig {
        failovers: 0,
        resigns: 0,
        drains_any_order: false,
        ..ModelConfig::runtime_environment()
    });
}

#[test]
fn same_verdicts_where_both_scenarios_are_reached() {
    let v = same_verdicts(small(1, 1, 1));
    for name in SCENARIOS {
        assert_eq!(status(&v, name), Status::Holds, "{name}");
    }
}

#[test]
fn same_verdicts_where_no_scenario_can_be() {
    let v = same_verdicts(small(0, 0, 0));
    for name in SCENARIOS {
        assert_eq!(status(&v, name), Status::NotReached, "{name}");
    }
    // A lease loss alone can take the coordinator mid-drain; nothing crashes the target.
    let v = same_verdicts(small(0, 0, 1));
    assert_eq!(status(&v, SCENARIOS[1]), Status::NotReached);
}

#[test]
fn same_verdicts_where_a_possible_scenario_is_never_reached() {
    // A client that gives up at the first failover never sees the drain finish after
    // one: the second search looks everywhere for that witness, in vain.
    let v = same_verdicts(ModelConfig {
        client_gives_up: true,
        ..small(0, 1, 0)
    });
    assert_eq!(status(&v, SCENARIOS[0]), Status::NotReached);
}

#[test]
fn same_verdicts_with_a_guard_off() {
    let mut cfg = small(1, 1, 0);
    cfg.guards = cfg.guards.without(Guard::EpochFencing);
    let v = same_verdicts(cfg);
    assert!(v.iter().any(|(_, s)| *s == Status::Violated));
}
