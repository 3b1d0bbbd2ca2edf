//! A state's progress successors, stepped once and shared by the three readers that
//! need them.
//!
//! For a state whose drain is short of 0 and that does not surely move, three readers
//! step every progress action (deliveries, timers, polls, elections, watches, restarts
//! and leaves) from it, one after the other: L1's property asks whether the state is
//! quiescent ([`super::system::DrainModel::is_quiescent`]), the loss reduction asks which
//! deliveries a loss must take ([`super::losses`]), and then the checker steps every
//! action it is offered to find the successors. Each step clones, collects and
//! renumbers a state, and the first two readers stop only at the first step that rules
//! the state out, so they stepped much of it twice more (in CI's configuration with
//! every fault class they took a fifth of the checker's time).
//!
//! So the first reader steps them all at once and keeps the results in the state
//! itself ([`StepCache`], a field of [`SysState`] that takes no part in its equality,
//! hash or clone); the others read them, and the checker's `next_state` takes the
//! successor it asks for out of the cache instead of stepping again. The results are
//! the same as stepping again (a step is a function of the state and the action), so
//! the checker visits the same states and judges them the same way; `state_counts`
//! pins the counts, and `successors_are_the_steps` below compares every cached
//! successor with a fresh step.
//!
//! A walk (a random walk, the trace check's walk of a run) takes one action from each
//! state; for it, stepping every progress action only to answer L1 would be waste, so
//! a model made for walks ([`DrainModel::walking`]) keeps no cache and L1's test stops
//! at the first progress action that moves, as before.
//!
//! Only a state's own value holds its cache: a clone starts empty, and a step builds its
//! successor from a clone. A state changed in place after its cache was filled would
//! keep stale successors; nothing does that (steps, collection and renumbering change
//! fresh clones only), and in builds with debug assertions (`cargo test`) the cache
//! keeps a copy of the state it was filled for and asserts on every read that the state
//! is still equal to it.

use super::state::SysState;
use super::system::{Action, DrainModel};
use stateright::Model;
use std::sync::{Mutex, OnceLock};

/// One progress action and what stepping it gave: `Some(None)` when the step changed
/// nothing, `Some(Some(next))` its successor (collected and renumbered), `None` once the
/// checker took the successor out.
struct Step {
    action: Action,
    next: Mutex<Option<Option<SysState>>>,
}

struct Filled {
    /// The state the steps were taken from (debug builds only: the guard against a
    /// state changed in place after its cache was filled).
    #[cfg(debug_assertions)]
    of: Box<SysState>,
    steps: Box<[Step]>,
}

/// A state's progress successors, once some reader asked for them. Empty in a new or
/// cloned state; equal to every other cache and hashed as nothing, so that it changes
/// neither a state's identity nor its fingerprint.
#[derive(Default)]
pub struct StepCache(OnceLock<Filled>);

impl Clone for StepCache {
    /// Empty: a clone is about to be stepped into another state.
    fn clone(&self) -> Self {
        StepCache::default()
    }
}

impl PartialEq for StepCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for StepCache {}

impl std::hash::Hash for StepCache {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl std::fmt::Debug for StepCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let filled = self.0.get().map_or(0, |c| c.steps.len());
        write!(f, "StepCache({filled} steps)")
    }
}

/// What a progress action does to a state, as read from the cache.
pub enum Outcome<'a> {
    /// The step changes nothing.
    Nothing,
    /// The step leads to this state (collected and renumbered).
    To(&'a SysState),
}

impl StepCache {
    /// Whether a reader has stepped the state's progress actions.
    pub fn is_filled(&self) -> bool {
        self.0.get().is_some()
    }

    fn filled(&self, s: &SysState) -> Option<&Filled> {
        let filled = self.0.get()?;
        #[cfg(debug_assertions)]
        assert!(
            *filled.of == *s,
            "a state was changed in place after its successors were cached"
        );
        let _ = s;
        Some(filled)
    }
}

/// Calls `f` with each progress action `m` offers in `s` and what it does, in the order
/// `offer` lists them, and returns the first `Some` that `f` returns (the remaining
/// steps are not read). Reads `s`'s cache if a reader filled it; else, with `keep`,
/// steps every progress action into the cache first, and without, steps them one at a
/// time and stops with `f`, keeping nothing (for a state nobody expands next).
pub fn find_progress<T>(
    m: &DrainModel,
    s: &SysState,
    keep: bool,
    mut f: impl FnMut(&Action, Outcome<'_>) -> Option<T>,
) -> Option<T> {
    let filled = match s.progress.filled(s) {
        Some(filled) => filled,
        None if !keep => {
            return progress_actions(m, s)
                .find_map(|action| f(&action, outcome(&m.next_state(s, action.clone()))));
        }
        None => {
            let steps = progress_actions(m, s)
                .map(|action| {
                    let next = m.next_state(s, action.clone());
                    Step {
                        action,
                        next: Mutex::new(Some(next)),
                    }
                })
                .collect();
            let _ = s.progress.0.set(Filled {
                #[cfg(debug_assertions)]
                of: Box::new(s.clone()),
                steps,
            });
            s.progress.filled(s).expect("just filled")
        }
    };
    for step in filled.steps.iter() {
        let next = step.next.lock().expect("not poisoned");
        let found = match &*next {
            Some(next) => f(&step.action, outcome(next)),
            // Taken by the checker: step it again (`take` cannot take it while this
            // holds the lock).
            None => f(&step.action, outcome(&m.next_state(s, step.action.clone()))),
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// The progress actions `m` offers in `s`, in `offer`'s order.
fn progress_actions(m: &DrainModel, s: &SysState) -> impl Iterator<Item = Action> {
    let mut actions = Vec::new();
    m.offer(s, &mut actions, false);
    actions.into_iter().filter(Action::is_progress)
}

/// A step's result as `find_progress` hands it on.
fn outcome(next: &Option<SysState>) -> Outcome<'_> {
    match next {
        None => Outcome::Nothing,
        Some(to) => Outcome::To(to),
    }
}

/// Whether some progress action changes `s` (with `keep`, filling its cache, as
/// [`find_progress`] does): `s` is not quiescent unless it surely moves otherwise.
pub fn some_progress_moves(m: &DrainModel, s: &SysState, keep: bool) -> bool {
    find_progress(m, s, keep, |_, outcome| match outcome {
        Outcome::To(to) if to != s => Some(()),
        _ => None,
    })
    .is_some()
}

/// The cached result of stepping `action` from `s`, taken out of the cache, or None if
/// `s` has no cache or `action` is not in it (or was taken before): then the caller
/// steps it. `Some(None)`: the step changes nothing.
pub fn take(s: &SysState, action: &Action) -> Option<Option<SysState>> {
    let filled = s.progress.filled(s)?;
    let step = filled.steps.iter().find(|step| step.action == *action)?;
    // Locked while `find_progress` reads the step: a reader that steps `s` from there
    // (or another thread reading the same state) finds it locked and steps afresh, to
    // the same result, rather than wait for its own lock.
    step.next.try_lock().ok()?.take()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::config::ModelConfig;
    use stateright::Model;

    /// Every successor read from a cache is the successor a fresh step gives, on every
    /// state of a small configuration (and with losses, which read the cache too).
    #[test]
    fn successors_are_the_steps() {
        let m = DrainModel::new(ModelConfig::two_nodes_one_unit());
        let mut seen = std::collections::HashSet::new();
        let mut todo = m.init_states();
        let mut compared = 0;
        while let Some(s) = todo.pop() {
            if !seen.insert(s.clone()) {
                continue;
            }
            let mut actions = Vec::new();
            m.actions(&s, &mut actions);
            find_progress(&m, &s, true, |a, outcome| {
                let fresh = m.next_state(&s, a.clone());
                match outcome {
                    Outcome::Nothing => assert_eq!(fresh, None, "{a:?}"),
                    Outcome::To(to) => assert_eq!(fresh.as_ref(), Some(to), "{a:?}"),
                }
                compared += 1;
                None::<()>
            });
            for a in actions {
                let fresh = s.clone();
                let stepped = m.next_state(&fresh, a.clone());
                let cached = m.next_state(&s, a.clone());
                assert_eq!(stepped, cached, "{a:?}");
                todo.extend(cached);
            }
        }
        assert!(compared > 1000, "only {compared} cached steps compared");
    }

    /// L1's test keeps a state's progress steps for a search, and none for a walk,
    /// which takes one action per state ([`DrainModel::walking`]).
    #[test]
    fn only_a_search_keeps_the_steps_of_l1s_test() {
        let search = DrainModel::new(ModelConfig::two_nodes_one_unit());
        let walk = DrainModel::new(ModelConfig::two_nodes_one_unit()).walking();
        let l1 = crate::checker::properties::catalogue()
            .into_iter()
            .find(|p| p.name == "L1")
            .expect("L1")
            .condition;
        let mut todo = search.init_states();
        let mut judged = 0;
        while let Some(s) = todo.pop() {
            if judged == 100 {
                break;
            }
            if crate::checker::properties::drain_short_of_zero(&search, &s)
                && !search.surely_moves(&s)
            {
                let (for_search, for_walk) = (s.clone(), s.clone());
                assert!(l1(&search, &for_search) && l1(&walk, &for_walk));
                assert!(for_search.progress.is_filled());
                assert!(!for_walk.progress.is_filled());
                judged += 1;
            }
            let mut actions = Vec::new();
            search.actions(&s, &mut actions);
            todo.extend(actions.into_iter().filter_map(|a| search.next_state(&s, a)));
        }
        assert_eq!(judged, 100);
    }

    /// The debug builds' guard: a state changed in place after its cache was filled is
    /// caught at the next read, instead of answering with the old state's successors.
    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "changed in place after its successors were cached")]
    fn a_state_changed_after_its_cache_was_filled_is_caught() {
        let m = DrainModel::new(ModelConfig::default());
        let mut s = m.init_states().remove(0);
        assert!(some_progress_moves(&m, &s, true));
        s.history.crashes += 1;
        let mut actions = Vec::new();
        m.actions(&s, &mut actions);
        let _ = m.next_state(&s, actions[0].clone());
    }
}
