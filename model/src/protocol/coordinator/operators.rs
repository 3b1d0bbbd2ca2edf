//! Operators: the in-flight operations that add, move and stop work units.
//!
//! A move is remove-then-add (C13): the unit is stopped on its origin, and that stop
//! is acknowledged, before it is added on its destination, so it never runs twice.

use super::loads::Loads;
use crate::protocol::ids::{Epoch, Key, OpId};
use std::collections::BTreeMap;

/// Why an operation exists; the drain scheduler's budget counts only its own moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// Basic placement of an unplaced unit.
    Place,
    /// The balance scheduler.
    Balance,
    /// The drain scheduler, moving work off a draining node.
    Drain,
    /// The unit was deleted: stop it.
    Delete,
}

/// Where an operation stands.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Phase<N> {
    /// RemoveWork sent to `from` (incarnation `epoch`), waiting for Stopped.
    Removing { from: N, epoch: Epoch },
    /// AddWork sent to `to` (incarnation `epoch`), waiting for Running or Rejected.
    Adding { to: N, epoch: Epoch },
}

/// One in-flight operation on one work unit.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Operation<N> {
    pub id: OpId,
    pub purpose: Purpose,
    pub phase: Phase<N>,
    /// The node the unit leaves (moves and deletes), for as long as the operation lives.
    pub origin: Option<N>,
    /// The node the unit is meant for (adds and moves); chosen again when the move
    /// reaches its adding phase if this one is no longer a valid destination. In the
    /// adding phase it is always the node being added to.
    pub dest: Option<N>,
}

impl<N: Key> Operation<N> {
    /// Whether this operation involves `node` as origin or destination.
    pub fn involves(&self, node: &N) -> bool {
        self.origin.as_ref() == Some(node) || self.dest.as_ref() == Some(node)
    }

    fn nodes(&self) -> impl Iterator<Item = &N> + '_ {
        let dest = self
            .dest
            .as_ref()
            .filter(|d| Some(*d) != self.origin.as_ref());
        self.origin.iter().chain(dest)
    }
}

/// Every in-flight operation, at most one per work unit, with per-node counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Operators<N: Ord, W: Ord> {
    ops: BTreeMap<W, Operation<N>>,
    involving: BTreeMap<N, usize>,
    incoming: BTreeMap<N, usize>,
    drain_moves: usize,
    balance_moves: usize,
    last_id: OpId,
}

impl<N: Ord, W: Ord> Default for Operators<N, W> {
    fn default() -> Self {
        Operators {
            ops: BTreeMap::new(),
            involving: BTreeMap::new(),
            incoming: BTreeMap::new(),
            drain_moves: 0,
            balance_moves: 0,
            last_id: 0,
        }
    }
}

impl<N: Key, W: Key> Operators<N, W> {
    /// A fresh operation id (unique within the coordinator's term).
    pub fn next_id(&mut self) -> OpId {
        self.last_id += 1;
        self.last_id
    }

    /// The last id handed out.
    pub fn last_id(&self) -> OpId {
        self.last_id
    }

    /// Renames every id, and sets the last one handed out (see
    /// `Coordinator::rename_ops`).
    pub fn rename(&mut self, rename: &dyn Fn(&W, OpId) -> OpId, last: OpId) {
        for (w, op) in self.ops.iter_mut() {
            op.id = rename(w, op.id);
        }
        self.last_id = last;
    }

    /// The operation on `work`, if any.
    pub fn get(&self, work: &W) -> Option<&Operation<N>> {
        self.ops.get(work)
    }

    /// Every operation, by work unit.
    pub fn iter(&self) -> impl Iterator<Item = (&W, &Operation<N>)> + '_ {
        self.ops.iter()
    }

    /// Whether nothing is tracked.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// How many operations involve `node` as origin or destination.
    pub fn involving(&self, node: &N) -> usize {
        self.involving.get(node).copied().unwrap_or(0)
    }

    /// How many operations will add a unit to `node`.
    pub fn incoming(&self, node: &N) -> usize {
        self.incoming.get(node).copied().unwrap_or(0)
    }

    /// In-flight moves started by the drain scheduler.
    pub fn drain_moves(&self) -> usize {
        self.drain_moves
    }

    /// In-flight moves started by the balance scheduler.
    pub fn balance_moves(&self) -> usize {
        self.balance_moves
    }

    /// Starts tracking `op` on `work`.
    pub fn insert(&mut self, work: W, op: Operation<N>, loads: &mut Loads<N>) {
        self.remove(&work, loads);
        self.count(&op, true, loads);
        self.ops.insert(work, op);
    }

    /// Stops tracking the operation on `work`.
    pub fn remove(&mut self, work: &W, loads: &mut Loads<N>) -> Option<Operation<N>> {
        let op = self.ops.remove(work)?;
        self.count(&op, false, loads);
        Some(op)
    }

    /// Changes the operation on `work` in place, keeping the counts right (the unit's
    /// own id is moved out and back, not cloned).
    pub fn update(&mut self, work: &W, f: impl FnOnce(&mut Operation<N>), loads: &mut Loads<N>) {
        let Some((work, mut op)) = self.ops.remove_entry(work) else {
            return;
        };
        self.count(&op, false, loads);
        f(&mut op);
        self.count(&op, true, loads);
        self.ops.insert(work, op);
    }

    fn count(&mut self, op: &Operation<N>, add: bool, loads: &mut Loads<N>) {
        fn bump<N: Key>(map: &mut BTreeMap<N, usize>, node: &N, add: bool) {
            if add {
                *map.entry(node.clone()).or_insert(0) += 1;
            } else if let Some(c) = map.get_mut(node) {
                *c -= 1;
                if *c == 0 {
                    map.remove(node);
                }
            }
        }
        for node in op.nodes() {
            bump(&mut self.involving, node, add);
        }
        if let Some(to) = &op.dest {
            bump(&mut self.incoming, to, add);
            if add {
                loads.up(to);
            } else {
                loads.down(to, 1);
            }
        }
        let counter = match op.purpose {
            Purpose::Drain => Some(&mut self.drain_moves),
            Purpose::Balance => Some(&mut self.balance_moves),
            Purpose::Place | Purpose::Delete => None,
        };
        if let Some(c) = counter {
            if add {
                *c += 1;
            } else {
                *c -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mv(from: u8, to: u8) -> Operation<u8> {
        Operation {
            id: 1,
            purpose: Purpose::Drain,
            phase: Phase::Removing { from, epoch: 1 },
            origin: Some(from),
            dest: Some(to),
        }
    }

    #[test]
    fn counts_follow_inserts_updates_and_removals() {
        let mut ops = Operators::<u8, u8>::default();
        let l = &mut Loads::default();
        ops.insert(7, mv(1, 2), l);
        assert_eq!((ops.involving(&1), ops.involving(&2)), (1, 1));
        assert_eq!((ops.incoming(&2), ops.drain_moves()), (1, 1));
        ops.update(
            &7,
            |op| {
                op.phase = Phase::Adding { to: 3, epoch: 1 };
                op.dest = Some(3);
            },
            l,
        );
        assert_eq!(
            (ops.involving(&1), ops.involving(&2), ops.involving(&3)),
            (1, 0, 1)
        );
        assert_eq!((ops.incoming(&2), ops.incoming(&3)), (0, 1));
        assert_eq!((l.get(&2), l.get(&3)), (0, 1));
        ops.remove(&7, l);
        assert_eq!(
            (ops.involving(&1), ops.incoming(&3), ops.drain_moves()),
            (0, 0, 0)
        );
        assert!(ops.is_empty());
    }
}
