//! Where the coordinator believes each work unit runs, indexed both ways so that per-node
//! questions cost what that node holds, not what the cluster holds. Every change of a
//! node's count is reported to the load index ([`Loads`]) where it happens.

use super::loads::Loads;
use crate::protocol::ids::Key;
use std::collections::{BTreeMap, BTreeSet};

/// Believed placement: unit → node, and node → units.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Placement<N: Ord, W: Ord> {
    by_unit: BTreeMap<W, N>,
    by_node: BTreeMap<N, BTreeSet<W>>,
}

impl<N: Ord, W: Ord> Default for Placement<N, W> {
    fn default() -> Self {
        Placement {
            by_unit: BTreeMap::new(),
            by_node: BTreeMap::new(),
        }
    }
}

impl<N: Key, W: Key> Placement<N, W> {
    /// Records `work` as running on `node` (moving it if it was elsewhere).
    pub fn place(&mut self, work: W, node: N, loads: &mut Loads<N>) {
        self.unplace(&work, loads);
        if self
            .by_node
            .entry(node.clone())
            .or_default()
            .insert(work.clone())
        {
            loads.up(&node);
        }
        self.by_unit.insert(work, node);
    }

    /// Forgets where `work` runs; returns the node it was on.
    pub fn unplace(&mut self, work: &W, loads: &mut Loads<N>) -> Option<N> {
        let node = self.by_unit.remove(work)?;
        if let Some(set) = self.by_node.get_mut(&node) {
            if set.remove(work) {
                loads.down(&node, 1);
            }
            if set.is_empty() {
                self.by_node.remove(&node);
            }
        }
        Some(node)
    }

    /// Forgets every unit on `node` and returns them.
    pub fn evict(&mut self, node: &N, loads: &mut Loads<N>) -> BTreeSet<W> {
        let units = self.by_node.remove(node).unwrap_or_default();
        for w in &units {
            self.by_unit.remove(w);
        }
        loads.down(node, units.len());
        units
    }

    /// Whether nothing is tracked.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.by_unit.is_empty()
    }

    /// The node `work` runs on.
    pub fn node_of(&self, work: &W) -> Option<&N> {
        self.by_unit.get(work)
    }

    /// The units on `node`, in order.
    pub fn on(&self, node: &N) -> impl Iterator<Item = &W> + '_ {
        self.by_node.get(node).into_iter().flatten()
    }

    /// How many units run on `node`.
    pub fn count(&self, node: &N) -> usize {
        self.by_node.get(node).map_or(0, BTreeSet::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_indexes_agree() {
        let mut p = Placement::<u8, u8>::default();
        let l = &mut Loads::default();
        p.place(1, 10, l);
        p.place(2, 10, l);
        p.place(1, 11, l);
        assert_eq!(p.node_of(&1), Some(&11));
        assert_eq!((p.count(&10), l.get(&10)), (1, 1));
        assert_eq!((p.count(&11), l.get(&11)), (1, 1));
        assert_eq!(p.evict(&10, l).into_iter().collect::<Vec<_>>(), vec![2]);
        assert_eq!(p.node_of(&2), None);
        assert_eq!(p.unplace(&1, l), Some(11));
        assert!(p.is_empty());
        assert_eq!((l.get(&10), l.get(&11)), (0, 0));
    }
}
