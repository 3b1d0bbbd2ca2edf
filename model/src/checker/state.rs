//! The system's state, in the model's own representation.
//!
//! stateright's `ActorModelState` keeps the network and each node's timers in hash
//! sets. A hash set is hashed by hashing every element with a hasher of its own and
//! sorting those hashes (so that the order of the table does not matter), and cloned
//! by copying its table; `ActorModelState` also carries a map of random choices per
//! node, which this model never makes. The checker clones and fingerprints every state
//! it generates (153 M of them in CI's first configuration), so these costs were paid
//! for every step.
//!
//! Here the network is a vector kept sorted ([`Flight`]): its order is canonical, so it
//! is hashed and compared element by element, and cloned with one allocation. A node's
//! timers are a bitset ([`TimerSet`]). The elements and their equality are the same as
//! before, so the states are the same states and the checker finds the same number of
//! them; only the fingerprints' values differ.

use super::actor::{Msg, NodeState, NodeStorage, NodeTimer};
use super::ids::NodeIx;
use super::successors::StepCache;
use super::system::{History, MAX_NODES};
use stateright::actor::Envelope;
use std::sync::Arc;

/// The checker's own hasher (the coordinator's cached hash, the coordinator memo, the
/// fair-continuation check, the census and the random walk): aHash with fixed seeds,
/// so the same hashes in every run and on every thread. (stateright fingerprints the
/// states it visits with its own.)
pub fn stable_hasher() -> ahash::RandomState {
    ahash::RandomState::with_seeds(1, 2, 3, 4)
}

/// A state of the whole system.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SysState {
    /// Each node's agent and, while it leads, its coordinator (a down node holds
    /// [`NodeState::down`]).
    pub actor_states: Vec<Arc<NodeState>>,
    /// The messages in flight.
    pub network: Flight,
    /// Each node's armed timers (only the first `nodes` entries are ever set).
    pub timers_set: [TimerSet; MAX_NODES],
    /// Whether each node's process is down.
    pub crashed: [bool; MAX_NODES],
    /// The environment's memory and the properties' witnesses.
    pub history: History,
    /// What each node persisted (None: it never ran).
    pub actor_storages: Vec<Option<NodeStorage>>,
    /// Its progress successors, once a reader asked for them ([`super::successors`]):
    /// not part of the state (equal in every state, hashed as nothing, empty in a clone).
    pub progress: StepCache,
}

impl std::fmt::Debug for SysState {
    /// Every field but the cache of successors, which is not part of the state.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SysState")
            .field("actor_states", &self.actor_states)
            .field("network", &self.network)
            .field("timers_set", &self.timers_set)
            .field("crashed", &self.crashed)
            .field("history", &self.history)
            .field("actor_storages", &self.actor_storages)
            .finish()
    }
}

/// The messages in flight: a set of envelopes, kept sorted by (source, destination,
/// message). The network duplicates and reorders, so a message is either in flight or
/// not; how many copies does not matter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flight(Vec<Envelope<Msg>>);

impl Flight {
    /// The envelopes in flight, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Envelope<Msg>> {
        self.0.iter()
    }

    /// How many distinct messages are in flight.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `env` is in flight.
    pub fn contains(&self, env: &Envelope<Msg>) -> bool {
        self.0.binary_search(env).is_ok()
    }

    /// Puts `env` in flight; false if it already was.
    pub fn insert(&mut self, env: Envelope<Msg>) -> bool {
        match self.0.binary_search(&env) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, env);
                true
            }
        }
    }

    /// Takes every copy of `env` out of flight; false if none was there.
    pub fn remove(&mut self, env: &Envelope<Msg>) -> bool {
        match self.0.binary_search(env) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Keeps only the envelopes whose index (in order, before any is removed) `keep`
    /// says true for; the order stays sorted.
    pub fn retain_at(&mut self, mut keep: impl FnMut(usize) -> bool) {
        let mut i = 0;
        self.0.retain(|_| {
            i += 1;
            keep(i - 1)
        });
    }

    /// Replaces each envelope by `f` of it, then sorts again (`f` may change the
    /// order, or make two envelopes equal).
    pub fn rewrite(&mut self, f: impl FnMut(&mut Envelope<Msg>)) {
        self.0.iter_mut().for_each(f);
        self.0.sort_unstable();
        self.0.dedup();
    }
}

/// The armed timers of one node: a bit for the heartbeat, one for the resend timer and
/// one per node for its liveness TTL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TimerSet(u16);

impl TimerSet {
    fn bit(timer: &NodeTimer) -> u16 {
        match timer {
            NodeTimer::Heartbeat => 1,
            NodeTimer::Resend => 2,
            NodeTimer::Ttl(node) => 4 << node.0,
        }
    }

    /// Arms `timer` (arming an armed timer changes nothing).
    pub fn set(&mut self, timer: NodeTimer) {
        self.0 |= Self::bit(&timer);
    }

    /// Disarms `timer`.
    pub fn cancel(&mut self, timer: &NodeTimer) {
        self.0 &= !Self::bit(timer);
    }

    /// Disarms every timer for which `keep` says false.
    pub fn retain(&mut self, keep: impl Fn(&NodeTimer) -> bool) {
        let dead: u16 = self
            .iter()
            .filter(|t| !keep(t))
            .fold(0, |bits, t| bits | Self::bit(&t));
        self.0 &= !dead;
    }

    /// Disarms every timer (the process is gone).
    pub fn cancel_all(&mut self) {
        self.0 = 0;
    }

    /// Whether `timer` is armed.
    pub fn contains(&self, timer: &NodeTimer) -> bool {
        self.0 & Self::bit(timer) != 0
    }

    /// Whether no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The armed timers, in `NodeTimer`'s order (heartbeat, resend, TTLs by node).
    pub fn iter(&self) -> impl Iterator<Item = NodeTimer> + '_ {
        let bits = self.0;
        [NodeTimer::Heartbeat, NodeTimer::Resend]
            .into_iter()
            .chain((0..MAX_NODES as u8).map(|n| NodeTimer::Ttl(NodeIx(n))))
            .filter(move |t| bits & Self::bit(t) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Liveness;

    fn report(src: usize, epoch: u64) -> Envelope<Msg> {
        Envelope {
            src: src.into(),
            dst: 0.into(),
            msg: Msg::Report {
                epoch,
                liveness: Liveness::Alive,
            },
        }
    }

    #[test]
    fn flight_is_a_sorted_set_whatever_the_order_of_insertion() {
        let (a, b, c) = (report(1, 1), report(2, 1), report(1, 2));
        let mut one = Flight::default();
        let mut other = Flight::default();
        for e in [&a, &b, &c] {
            assert!(one.insert(e.clone()));
        }
        for e in [&c, &a, &b, &a] {
            other.insert(e.clone());
        }
        assert_eq!(one, other);
        assert_eq!(one.len(), 3);
        assert!(
            !one.insert(b.clone()),
            "a message already in flight is not added"
        );
        assert!(one.iter().is_sorted());
        assert!(one.remove(&a) && !one.remove(&a) && !one.contains(&a));
        assert!(one.contains(&b) && one.contains(&c));
    }

    #[test]
    fn timer_set_holds_each_timer_apart_and_lists_them_in_order() {
        let mut t = TimerSet::default();
        let all: Vec<NodeTimer> = [NodeTimer::Heartbeat, NodeTimer::Resend]
            .into_iter()
            .chain((0..MAX_NODES as u8).map(|n| NodeTimer::Ttl(NodeIx(n))))
            .collect();
        for timer in all.iter().rev() {
            t.set(timer.clone());
        }
        assert_eq!(t.iter().collect::<Vec<_>>(), all);
        t.cancel(&NodeTimer::Ttl(NodeIx(3)));
        assert!(!t.contains(&NodeTimer::Ttl(NodeIx(3))));
        assert!(t.contains(&NodeTimer::Ttl(NodeIx(2))) && t.contains(&NodeTimer::Ttl(NodeIx(4))));
        assert_eq!(t.iter().count(), all.len() - 1);
        t.cancel_all();
        assert!(t.is_empty());
    }
}
