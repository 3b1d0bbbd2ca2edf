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

use ebbtide_model::checker::properties::SCENARIOS;
use ebbtide_model::checker::run::{self, RunOptions, Status};
use ebbtide_model::checker::{DrainModel, ModelConfig, SysState};
use ebbtide_model::Guard;
use stateright::Model;
use std::collections::{HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};

fn fingerprint(s: &SysState) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// Every reachable state of `cfg` (fingerprints), with its scenario records cleared.
fn reachable(cfg: ModelConfig) -> (HashSet<u64>, usize) {
    let m = DrainModel::new(cfg);
    let mut seen = HashSet::new();
    let mut cleared = HashSet::new();
    let mut queue: VecDeque<SysState> = m.init_states().into();
    for s in &queue {
        seen.insert(fingerprint(s));
    }
    let mut actions = Vec::new();
    while let Some(s) = queue.pop_front() {
        let mut c = s.clone();
        c.history.failover_mid_drain = false;
        c.history.target_crashed_mid_drain = false;
        cleared.insert(fingerprint(&c));
        m.actions(&s, &mut actions);
        for a in actions.drain(..) {
            if let Some(next) = m.next_state(&s, a) {
                if seen.insert(fingerprint(&next)) {
                    queue.push_back(next);
                }
            }
        }
    }
    (cleared, seen.len())
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
        let report = run::run(cfg.clone(), &opts, |_| {});
        assert!(report.exhaustive);
        assert_eq!(report.scenario_search.is_some(), apart && possible(&cfg));
        report
            .properties
            .iter()
            .map(|p| (p.name, p.status))
            .collect::<Vec<_>>()
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

fn small(node_crashes: u8, failovers: u8, lease_losses: u8) -> ModelConfig {
    ModelConfig {
        nodes: 2,
        work: 1,
        node_crashes,
        failovers,
        lease_losses,
        ..ModelConfig::default()
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
    same_states_with_and_without_records(ModelConfig {
        losses: Some(0),
        ttl_expiries: Some(0),
        stray_terms: 0,
        elected_start: true,
        late_membership: true,
        failed_elections: true,
        ..small(1, 0, 1)
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
