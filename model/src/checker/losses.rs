//! Which message losses the checker takes.
//!
//! A loss changes no actor. It only takes a message out of the network, so that the
//! message is never delivered, unless it is sent again. Every run with losses is
//! therefore shadowed by the run without them in which the lost messages simply stay
//! undelivered: the same steps are enabled in the same order, every actor, timer,
//! storage and history field is the same (but the loss counter), and its network holds
//! the lossy run's network and the lost messages. Where the lossy run sends a lost
//! message again, the lossless one already holds it (the step changes nothing there).
//! Collection keeps this: what is inert with more messages in flight is inert with
//! fewer (`gc::inert` reads the network only for bootstrap answers a report must not
//! overtake, and asks that *every* one of them be newer). So each state a lossy run
//! reaches is, up to the renumbering of operation ids, some lossless state with at
//! most `--losses` messages taken out (and collected after them).
//!
//! What can a loss then change in a verdict? The safety properties read the actors and
//! the history, which the lossless run has too. A step the lossy run takes but the
//! lossless one does not (it only re-sends a lost message) is judged anyway: the model
//! judges every step whose sends it prunes as already in flight
//! (`DrainModel::run_node`). Only L1 reads the network: a quiescent state may exist
//! only because a message is gone. So the checker explores the lossless runs and takes
//! a loss exactly where it leads to an L1 violation: in a state where a drain is short
//! of 0 ([`super::properties::drain_short_of_zero`]), the loss of `m` is offered when
//! the state without `m` and at most `budget - 1` further messages is quiescent.
//! A correct protocol then never loses anything in the checker, and a protocol that
//! needs its resend timer (`--without resend`) is caught, with the loss in the
//! counterexample.
//!
//! `model/tests/loss_soundness.rs` checks the claim on small configurations, each with
//! every guard on and with guards off: the states with losses that exhaustive search
//! reaches offering every loss (`ModelConfig::every_loss`) are exactly the lossless
//! states the reduced search reaches with at most `--losses` messages taken out, and
//! both searches give the same verdict for every property.
//!
//! The fair-continuation check (`--fair-rounds`) judges the continuation of every
//! state, lossy ones too, so it is not reduced: with it, every loss is offered.

use super::config::ModelConfig;
use super::properties;
use super::state::SysState;
use super::successors::{self, Outcome};
use super::system::{Action, DrainModel};

/// Whether a check of `cfg` offers only the losses that lead to an L1 violation.
pub fn reduced(cfg: &ModelConfig) -> bool {
    !cfg.every_loss && cfg.fair_rounds == 0 && cfg.losses.is_some_and(|l| l > 0)
}

/// For each envelope in flight in `s` (in order), whether its loss is offered when at
/// most `budget` more messages may be lost: whether the loss of it and of at most
/// `budget - 1` others leaves a quiescent state with a drain short of 0.
pub fn offered(m: &DrainModel, s: &SysState, budget: u8) -> Vec<bool> {
    let n = s.network.len();
    let mut offer = vec![false; n];
    if budget == 0 || !properties::drain_short_of_zero(m, s) || m.surely_moves(s) {
        return offer;
    }
    let Some(needed) = must_lose(m, s, budget as usize) else {
        return offer;
    };
    // Every set of at most `budget` envelopes that holds the needed ones, as sorted
    // indices.
    let mut chosen = Vec::with_capacity(budget as usize);
    subsets(n, budget as usize, 0, &mut chosen, &mut |set| {
        if set.iter().all(|&i| offer[i]) || !needed.iter().all(|i| set.contains(i)) {
            return;
        }
        let after = without(m, s, set);
        if m.is_quiescent(&after) && properties::drain_short_of_zero(m, &after) {
            for &i in set {
                offer[i] = true;
            }
        }
    });
    offer
}

/// The envelopes (as indices) that every loss leading to a quiescent state must take,
/// or None if no `budget` losses can: a progress action that changes more than the
/// network of `s` (once collected and renumbered) changes the state without those
/// messages too (actors, timers, storages and history step the same whatever is in
/// flight, and a step pruned there would be pruned here), unless it is the delivery of
/// a lost message. So each such delivery's message must be lost, and any other such
/// action rules every loss out. A cheap filter before the exact check, which most
/// states never reach (`tests/loss_soundness.rs` compares the two).
fn must_lose(m: &DrainModel, s: &SysState, budget: usize) -> Option<Vec<usize>> {
    let mut needed: Vec<usize> = Vec::new();
    // The progress steps come from `s`'s cache: L1's property stepped them all already
    // (`super::successors`), and the checker takes its successors from there too.
    let ruled_out = successors::find_progress(m, s, true, |a, outcome| {
        let Outcome::To(next) = outcome else {
            return None;
        };
        let beyond_network = next.actor_states != s.actor_states
            || next.timers_set != s.timers_set
            || next.crashed != s.crashed
            || next.actor_storages != s.actor_storages
            || next.history != s.history;
        if !beyond_network {
            return None;
        }
        let Action::Deliver { src, dst, msg } = a else {
            return Some(());
        };
        let i = s
            .network
            .iter()
            .position(|e| e.src == src.id() && e.dst == dst.id() && e.msg == *msg)
            .expect("a delivery of a message in flight");
        if !needed.contains(&i) {
            needed.push(i);
            if needed.len() > budget {
                return Some(());
            }
        }
        None
    });
    ruled_out.is_none().then_some(needed)
}

/// `s` after losing the envelopes at the indices `set` at once, collected and
/// renumbered as the checker does after a step.
pub fn without(m: &DrainModel, s: &SysState, set: &[usize]) -> SysState {
    let mut after = s.clone();
    after.network.retain_at(|i| !set.contains(&i));
    after.history.losses += set.len() as u8;
    m.normalize(&mut after);
    after
}

/// Calls `f` with every nonempty set of at most `max` indices below `n` that extends
/// `chosen` with indices from `from` on, in increasing order.
fn subsets(
    n: usize,
    max: usize,
    from: usize,
    chosen: &mut Vec<usize>,
    f: &mut impl FnMut(&[usize]),
) {
    for i in from..n {
        chosen.push(i);
        f(chosen);
        if chosen.len() < max {
            subsets(n, max, i + 1, chosen, f);
        }
        chosen.pop();
    }
}
