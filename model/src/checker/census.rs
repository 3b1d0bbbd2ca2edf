//! Where a configuration's state space comes from: for each kind of action, how often
//! it is offered, how often `next_state` prunes it (it would change nothing), how many
//! successor states it generates and how many of those are new. `ebbtide bench check
//! --by-action` prints it. [`by_part`] counts, in the same search, how much each part of
//! the state multiplies the state space (`--by-part`).
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
use std::hash::{BuildHasher, Hash, Hasher};
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
pub fn census(model: &DrainModel, progress: impl FnMut(u64)) -> Census {
    census_visiting(model, |_| {}, progress)
}

/// [`census`], calling `visit` on every state it visits (once each).
fn census_visiting(
    model: &DrainModel,
    mut visit: impl FnMut(&SysState),
    mut progress: impl FnMut(u64),
) -> Census {
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
        visit(&s);
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

/// How much each part of the state multiplies the state space: for each part, the
/// number of distinct states left when that part is left out of every state. A part
/// whose omission leaves nearly as many states distinguishes few states that the rest
/// does not already; one whose omission divides the count by 5 is where a reduction
/// (a message that need not be kept, a counter that need not be exact) would pay. The
/// parts: each node's agent, coordinator, persisted storage and armed timers; which
/// nodes are down; the messages in flight of each kind; and each field of the history.
/// (Parts are named from the state's serialisation, so a new field or message kind
/// appears by itself.)
///
/// It keeps a 64-bit hash per state and part (about 50 parts for 3 nodes): for the
/// configurations of minutes it wants gigabytes, and serialising each state costs
/// several times its step. `ebbtide bench check --by-part` prints it.
#[derive(Clone, Debug, Default)]
pub struct PartCensus {
    /// The per-action census of the same search.
    pub census: Census,
    /// Each part, with the distinct states left without it; by that count, smallest
    /// first.
    pub without: Vec<(String, u64)>,
    /// Distinct states with every part: the census's unique count, unless the parts
    /// miss something that tells states apart.
    pub with_every_part: u64,
}

/// [`census`], and [`PartCensus`] of the same search.
pub fn by_part(model: &DrainModel, progress: impl FnMut(u64)) -> PartCensus {
    let hasher = super::state::stable_hasher();
    // Part name → the projections (without that part) seen so far. A part first met in
    // a later state (a message kind) was absent from every earlier one, so an earlier
    // state's projection without it is its projection with every part: `whole`.
    let mut whole: HashSet<u64> = HashSet::new();
    let mut without: BTreeMap<String, HashSet<u64>> = BTreeMap::new();
    let census = census_visiting(
        model,
        |s| {
            // Each part keyed by its name once; a projection combines the keyed parts.
            let mut parts = parts_of(s, &hasher);
            for (name, part) in parts.iter_mut() {
                *part = hasher.hash_one((name, *part));
            }
            let projection = |skip: Option<&str>| {
                let mut h = hasher.build_hasher();
                for (name, keyed) in &parts {
                    if Some(name.as_str()) != skip {
                        h.write_u64(*keyed);
                    }
                }
                h.finish()
            };
            let all = projection(None);
            for name in parts.keys() {
                if !without.contains_key(name) {
                    without.insert(name.clone(), whole.clone());
                }
            }
            for (name, seen) in without.iter_mut() {
                // A part absent from `s` (a kind of message not in flight) leaves it whole.
                let present = parts.contains_key(name);
                seen.insert(if present { projection(Some(name)) } else { all });
            }
            whole.insert(all);
        },
        progress,
    );
    let mut without: Vec<(String, u64)> = (without.into_iter())
        .map(|(name, seen)| (name, seen.len() as u64))
        .collect();
    without.sort_by_key(|(name, n)| (*n, name.clone()));
    PartCensus {
        census,
        without,
        with_every_part: whole.len() as u64,
    }
}

/// The parts of `s`, each hashed: name → hash.
fn parts_of(s: &SysState, hasher: &ahash::RandomState) -> BTreeMap<String, u64> {
    let mut parts = BTreeMap::new();
    for (i, node) in s.actor_states.iter().enumerate() {
        parts.insert(format!("n{i}.agent"), hasher.hash_one(&node.agent));
        parts.insert(
            format!("n{i}.coordinator"),
            hasher.hash_one(&node.coordinator),
        );
        parts.insert(
            format!("n{i}.storage"),
            hasher.hash_one(&s.actor_storages[i]),
        );
        parts.insert(format!("n{i}.timers"), hasher.hash_one(s.timers_set[i]));
    }
    parts.insert("down".into(), hasher.hash_one(s.crashed));
    let mut kinds: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in s.network.iter() {
        let kind = variant_path(&serde_json::to_value(&e.msg).unwrap_or_default());
        kinds.entry(kind).or_default().push(hasher.hash_one(e));
    }
    for (kind, envelopes) in kinds {
        parts.insert(format!("in flight: {kind}"), hasher.hash_one(envelopes));
    }
    if let serde_json::Value::Object(fields) = serde_json::to_value(&s.history).unwrap_or_default()
    {
        for (field, value) in fields {
            parts.insert(
                format!("history.{field}"),
                hasher.hash_one(value.to_string()),
            );
        }
    }
    parts
}

/// The enum variants a serialised message names: `{"ToNode":{"Bootstrap":{..}}}` is
/// `ToNode.Bootstrap`, `{"Report":{"epoch":..}}` is `Report`.
fn variant_path(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) if m.len() == 1 => {
            let (name, inner) = m.iter().next().expect("one entry");
            if name.starts_with(char::is_uppercase) {
                match variant_path(inner) {
                    rest if rest.is_empty() => name.clone(),
                    rest => format!("{name}.{rest}"),
                }
            } else {
                String::new()
            }
        }
        serde_json::Value::String(s) if s.starts_with(char::is_uppercase) => s.clone(),
        _ => String::new(),
    }
}

impl PartCensus {
    /// A Markdown table: a row per part, the parts that multiply most first.
    pub fn table(&self) -> String {
        let unique = self.census.unique;
        let mut out = String::from(
            "| left out | distinct states without it | states per state without it |\n|---|---|---|\n",
        );
        for (name, n) in &self.without {
            out.push_str(&format!(
                "| {name} | {n} | {:.2} |\n",
                unique as f64 / (*n).max(1) as f64
            ));
        }
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
        let model = DrainModel::new(ModelConfig::two_nodes_one_unit());
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

    /// The parts cover the whole state (every state stays distinct with all of them),
    /// leaving one out never adds states, a part that never changes in the
    /// configuration multiplies nothing, and the messages in flight multiply.
    #[test]
    fn parts_cover_the_state_and_name_what_multiplies() {
        let p = by_part(&DrainModel::new(ModelConfig::two_nodes_one_unit()), |_| {});
        let unique = p.census.unique;
        assert_eq!(p.with_every_part, unique, "a part of the state is missing");
        let count = |name: &str| {
            (p.without.iter())
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("no part {name}: {:?}", p.without))
                .1
        };
        assert_eq!(
            count("history.resigns"),
            unique,
            "no resignations configured"
        );
        assert!(count("in flight: Report") < unique);
        assert!(p.without.iter().all(|(_, n)| *n <= unique));
        assert!(p.without.windows(2).all(|w| w[0].1 <= w[1].1), "sorted");
        assert_eq!(p.table().lines().count(), p.without.len() + 2);
    }
}
