//! Where a configuration's state space comes from: for each kind of action, how often
//! it is offered, how often `next_state` prunes it (it would change nothing), how many
//! successor states it generates and how many of those are new. `ebbtide bench check
//! --by-action` prints it.
//!
//! Each successor the checker generates costs a clone of the whole state, a hash and a
//! lookup in the visited set, new or not; each pruned one costs only the step. So an
//! action kind with many generated and few new states is where a reduction (an
//! interleaving that need not be explored, a step merged into another) would pay, and
//! one with a high share of new states is what makes the space large.
//!
//! The census is a depth-first search of its own over [`DrainModel`] (stateright's
//! checkers do not say which action produced a state). The model has no boundary (its
//! bounds are the budgets in the state), so the census visits exactly the states
//! `ebbtide check` does (`census_visits_what_the_checker_visits`).
//! Its visited set keeps a 64-bit hash per state: 8 bytes a state, plus the stack.
//! Each offer's time includes two clock reads (tens of nanoseconds), which inflates the
//! share of kinds offered often and pruned at once: measure a change by `ebbtide bench
//! check`, not by the census's times. Where the loss reduction stepped a state's progress
//! actions already, in `actions` ([`super::successors`]), `next_state` takes them from
//! the state's cache, and the census does not count the time of those steps.

use super::system::{DrainModel, SysState};
use stateright::Model;
use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::time::{Duration, Instant};

/// What one kind of action did over a whole search.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KindCount {
    /// How often `actions` offered it.
    pub offered: u64,
    /// How often `next_state` answered none: no state change.
    pub pruned: u64,
    /// Successor states generated (offered, not pruned).
    pub generated: u64,
    /// Generated states not visited before.
    pub new: u64,
    /// Time in `next_state` and in hashing its result.
    pub time: Duration,
}

/// A whole search's counts, by [`super::Action::kind`].
#[derive(Clone, Debug, Default)]
pub struct Census {
    /// Every state visited (the initial ones included).
    pub unique: u64,
    pub by_kind: BTreeMap<&'static str, KindCount>,
    /// Wall time of the search.
    pub elapsed: Duration,
}

/// Searches every state of `model`, counting by action kind;
/// `progress` is called every 2^20 states with the count so far.
pub fn census(model: &DrainModel, mut progress: impl FnMut(u64)) -> Census {
    let start = Instant::now();
    // A fixed-seed hasher: the same fingerprints on every run.
    let hasher = super::state::stable_hasher();
    let fingerprint = |s: &SysState| {
        let mut h = hasher.build_hasher();
        s.hash(&mut h);
        std::hash::Hasher::finish(&h)
    };
    let mut seen: HashSet<u64> = HashSet::new();
    let mut stack: Vec<SysState> = Vec::new();
    for s in model.init_states() {
        if seen.insert(fingerprint(&s)) {
            stack.push(s);
        }
    }
    let mut by_kind: BTreeMap<&'static str, KindCount> = BTreeMap::new();
    let mut actions = Vec::new();
    let mut next_report = 1u64 << 20;
    while let Some(s) = stack.pop() {
        model.actions(&s, &mut actions);
        for a in actions.drain(..) {
            let c = by_kind.entry(a.kind()).or_default();
            c.offered += 1;
            let t = Instant::now();
            let next = model.next_state(&s, a).map(|n| {
                let f = fingerprint(&n);
                (n, f)
            });
            c.time += t.elapsed();
            match next {
                Some((next, f)) => {
                    c.generated += 1;
                    if seen.insert(f) {
                        c.new += 1;
                        stack.push(next);
                    }
                }
                None => c.pruned += 1,
            }
        }
        if seen.len() as u64 >= next_report {
            progress(seen.len() as u64);
            next_report += 1 << 20;
        }
    }
    Census {
        unique: seen.len() as u64,
        by_kind,
        elapsed: start.elapsed(),
    }
}

impl Census {
    /// A Markdown table: a row per kind of action, then the totals.
    pub fn table(&self) -> String {
        let total = self
            .by_kind
            .values()
            .fold(KindCount::default(), |mut t, c| {
                t.offered += c.offered;
                t.pruned += c.pruned;
                t.generated += c.generated;
                t.new += c.new;
                t.time += c.time;
                t
            });
        let secs = total.time.as_secs_f64().max(1e-9);
        let mut out = String::from(
            "| action | offered | pruned | generated | new | new per generated | share of new | step+hash s | share of time |\n|---|---|---|---|---|---|---|---|---|\n",
        );
        let row = |name: &str, c: &KindCount| {
            format!(
                "| {name} | {} | {} | {} | {} | {:.2} | {:.0} % | {:.1} | {:.0} % |\n",
                c.offered,
                c.pruned,
                c.generated,
                c.new,
                c.new as f64 / c.generated.max(1) as f64,
                c.new as f64 * 100.0 / total.new.max(1) as f64,
                c.time.as_secs_f64(),
                c.time.as_secs_f64() * 100.0 / secs
            )
        };
        for (name, c) in &self.by_kind {
            out.push_str(&row(name, c));
        }
        out.push_str(&row("all", &total));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::ModelConfig;

    /// The census visits the states the checker does: the same count as stateright's
    /// exhaustive search of the same model, and every new state is counted once.
    #[test]
    fn census_visits_what_the_checker_visits() {
        use stateright::Checker;
        let cfg = ModelConfig {
            nodes: 2,
            work: 1,
            ..ModelConfig::default()
        };
        let model = DrainModel::new(cfg);
        let c = census(&model, |_| {});
        let checked = model.clone().checker().spawn_dfs().join();
        assert_eq!(c.unique as usize, checked.unique_state_count());
        let new: u64 = c.by_kind.values().map(|k| k.new).sum();
        assert_eq!(new + model.init_states().len() as u64, c.unique);
        for (kind, k) in &c.by_kind {
            assert_eq!(k.offered, k.pruned + k.generated, "{kind}");
            assert!(k.new <= k.generated, "{kind}");
        }
        assert!(c.by_kind["Deliver"].new > 0);
        assert!(c.table().lines().count() == c.by_kind.len() + 3);
    }
}
