//! Helpers shared by the model's integration tests: enumerating a configuration's
//! states, the small configurations the soundness tests compare, and running a check
//! that must be exhaustive. Each test file that needs them says `mod support;`.
#![allow(dead_code)] // each test file uses its own part

use ebbtide_model::checker::run::{self, CheckReport, RunOptions, Status};
use ebbtide_model::checker::{DrainModel, ModelConfig, SysState};
use stateright::Model;
use std::collections::{HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};

/// The whole state, hashed: states are told apart by it.
pub fn fingerprint(s: &SysState) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// Calls `visit` once with every state `m` reaches (breadth first, as the checker
/// steps: `actions`, then `next_state`), and returns how many there are. Only
/// fingerprints are kept, so a caller that needs less than the states keeps less.
pub fn for_each_reachable(m: &DrainModel, mut visit: impl FnMut(&SysState)) -> usize {
    let mut seen = HashSet::new();
    let mut queue: VecDeque<SysState> = m.init_states().into();
    queue.retain(|s| seen.insert(fingerprint(s)));
    let mut actions = Vec::new();
    while let Some(s) = queue.pop_front() {
        visit(&s);
        m.actions(&s, &mut actions);
        for a in actions.drain(..) {
            if let Some(next) = m.next_state(&s, a) {
                if seen.insert(fingerprint(&next)) {
                    queue.push_back(next);
                }
            }
        }
    }
    seen.len()
}

/// Two nodes, one work unit, with `node_crashes` crashes, `failovers` coordinator
/// failovers and `losses` message losses; every other setting as by default.
pub fn small(node_crashes: u8, failovers: u8, losses: u8) -> ModelConfig {
    ModelConfig {
        nodes: 2,
        work: 1,
        node_crashes,
        failovers,
        losses: Some(losses),
        ..ModelConfig::default()
    }
}

/// `run`'s report of `cfg`, which must have searched every state.
pub fn exhaustive(cfg: ModelConfig, opts: &RunOptions) -> CheckReport {
    let report = run::run(cfg, opts, |_| {});
    assert!(
        report.exhaustive,
        "{:?}: the search stopped early",
        report.config
    );
    report
}

/// The same, and every `always` property must hold.
pub fn all_hold(cfg: ModelConfig, opts: &RunOptions) -> CheckReport {
    let report = exhaustive(cfg, opts);
    for p in &report.properties {
        if p.kind == "always" {
            assert_eq!(p.status, Status::Holds, "{:?}: {}", report.config, p.name);
        }
    }
    report
}

/// Each property's status, in report order.
pub fn statuses(report: &CheckReport) -> Vec<(&'static str, Status)> {
    report
        .properties
        .iter()
        .map(|p| (p.name, p.status))
        .collect()
}
