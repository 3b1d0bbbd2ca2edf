//! Where the coordinator believes each work unit runs, indexed both ways so that per-node
//! questions cost what that node holds, not what the cluster holds.

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
    pub fn place(&mut self, work: W, node: N) {
        self.unplace(&work);
        self.by_node
            .entry(node.clone())
            .or_default()
            .insert(work.clone());
        self.by_unit.insert(work, node);
    }

    /// Forgets where `work` runs; returns the node it was on.
    pub fn unplace(&mut self, work: &W) -> Option<N> {
        let node = self.by_unit.remove(work)?;
        if let Some(set) = self.by_node.get_mut(&node) {
            set.remove(work);
            if set.is_empty() {
                self.by_node.remove(&node);
            }
        }
        Some(node)
    }

    /// Forgets every unit on `node` and returns them.
    pub fn evict(&mut self, node: &N) -> BTreeSet<W> {
        let units = self.by_node.remove(node).unwrap_or_default();
        for w in &units {
            self.by_unit.remove(w);
        }
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
        p.place(1, 10);
        p.place(2, 10);
        p.place(1, 11);
        assert_eq!(p.node_of(&1), Some(&11));
        assert_eq!(p.count(&10), 1);
        assert_eq!(p.count(&11), 1);
        assert_eq!(p.evict(&10).into_iter().collect::<Vec<_>>(), vec![2]);
        assert_eq!(p.node_of(&2), None);
        assert_eq!(p.unplace(&1), Some(11));
        assert!(p.is_empty());
    }
}
