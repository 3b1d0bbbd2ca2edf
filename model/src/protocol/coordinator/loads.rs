//! Members ordered by load, so that the schedulers find the least- and most-loaded
//! destination (C11, C14) by walking from either end of an index instead of visiting
//! every member for every unit they place: with 128 members and a million units, the
//! scan was 128 map lookups per unit, and the balance scheduler repeated it after
//! every input.
//!
//! A node's load is what C11 compares: the units placed on it plus the units on their
//! way to it. [`Placement`](super::placement::Placement) and
//! [`Operators`](super::operators::Operators) own those two counts and report every
//! change of them here, where it happens, so the index cannot drift from them
//! (`Coordinator::bookkeeping_error` checks that it does not).

use crate::protocol::ids::Key;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};

/// Load per node, and the nodes by (load, id).
///
/// It is derived data: two coordinators with the same placement and operations have
/// the same loads, so equality and hashing ignore it, and the model checker's states
/// (which hash and compare coordinators) are exactly what they were without it.
#[derive(Clone, Debug)]
pub struct Loads<N: Ord> {
    load: BTreeMap<N, usize>,
    by_load: BTreeMap<usize, BTreeSet<N>>,
}

impl<N: Ord> Default for Loads<N> {
    fn default() -> Self {
        Loads {
            load: BTreeMap::new(),
            by_load: BTreeMap::new(),
        }
    }
}

impl<N: Ord> PartialEq for Loads<N> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<N: Ord> Eq for Loads<N> {}

impl<N: Ord> Hash for Loads<N> {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

impl<N: Key> Loads<N> {
    /// Indexes `node` (at load 0 if it is new): every member must be indexed, also
    /// while nothing runs on it, or it would never be found as a destination.
    pub fn track(&mut self, node: &N) {
        if !self.load.contains_key(node) {
            self.load.insert(node.clone(), 0);
            self.by_load.entry(0).or_default().insert(node.clone());
        }
    }

    /// The load of `node` (0 if it is not indexed).
    pub fn get(&self, node: &N) -> usize {
        self.load.get(node).copied().unwrap_or(0)
    }

    /// One more unit on `node`, or on its way to it.
    pub fn up(&mut self, node: &N) {
        self.shift(node, |l| l + 1);
    }

    /// `n` units fewer on `node`, or on their way to it.
    pub fn down(&mut self, node: &N, n: usize) {
        self.shift(node, |l| {
            debug_assert!(l >= n, "load of {node:?} below zero");
            l.saturating_sub(n)
        });
    }

    /// Re-keys `node` at its new load; the node id is moved between the two sets, not
    /// cloned.
    fn shift(&mut self, node: &N, to: impl FnOnce(usize) -> usize) {
        self.track(node);
        let Some(load) = self.load.get_mut(node) else {
            return;
        };
        let old = *load;
        let new = to(old);
        if new == old {
            return;
        }
        *load = new;
        let Some(set) = self.by_load.get_mut(&old) else {
            return;
        };
        let Some(id) = set.take(node) else {
            return;
        };
        if set.is_empty() {
            self.by_load.remove(&old);
        }
        self.by_load.entry(new).or_default().insert(id);
    }

    /// Every indexed node, least loaded first; equal loads in ascending id order (C11's
    /// "ties to the lowest id").
    pub fn ascending(&self) -> impl Iterator<Item = (usize, &N)> + '_ {
        self.by_load
            .iter()
            .flat_map(|(l, set)| set.iter().map(move |n| (*l, n)))
    }

    /// Every indexed node, most loaded first; equal loads still in ascending id order
    /// (the balance scheduler's origin: the most loaded, ties to the lowest id).
    pub fn descending(&self) -> impl Iterator<Item = (usize, &N)> + '_ {
        self.by_load
            .iter()
            .rev()
            .flat_map(|(l, set)| set.iter().map(move |n| (*l, n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ends_order_by_load_then_by_lowest_id() {
        let mut l = Loads::<u8>::default();
        for n in [3, 1, 2] {
            l.track(&n);
        }
        l.up(&1);
        l.up(&1);
        l.up(&3);
        l.up(&2);
        let asc: Vec<_> = l.ascending().collect();
        assert_eq!(asc, vec![(1, &2), (1, &3), (2, &1)]);
        l.down(&1, 2);
        let desc: Vec<_> = l.descending().collect();
        assert_eq!(desc, vec![(1, &2), (1, &3), (0, &1)]);
        assert_eq!(l.get(&1), 0);
        assert_eq!(l.get(&9), 0);
    }
}
