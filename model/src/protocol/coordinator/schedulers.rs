//! The schedulers (specs/protocol.md §5, C11–C14): basic placement, drain and balance.
//! They run once after every input, and each costs what changed, not the cluster size:
//! basic placement visits only unplaced units, the drain scheduler only units on
//! draining nodes and only within its budget, and placement and balance find their
//! destination (and balance its origin) at the ends of the load index (`loads.rs`).

use super::operators::{Phase, Purpose};
use super::{CoordOutput, Coordinator, InheritedDrain};
use crate::protocol::guards::Guard;
use crate::protocol::ids::Key;
use crate::protocol::liveness::Liveness;
use crate::protocol::message::ToNode;

impl<N: Key, W: Key> Coordinator<N, W> {
    /// One scheduling pass: drive the drain session, then place, drain and balance.
    pub(super) fn schedule(&mut self, out: &mut Vec<CoordOutput<N, W>>) {
        self.drive_session(out, false);
        self.place_unplaced(out);
        self.move_off_draining(out);
        self.balance(out);
        // Moves may have emptied the drain target: ask it to stop in the same pass.
        self.drive_session(out, false);
    }

    /// C11: a valid destination is a member observed Alive, with a fresh report, and
    /// not the target of a pending drain (each clause its own guard, for the checker).
    pub(super) fn is_destination(&self, node: &N) -> bool {
        let Some(rec) = self.view.get(node) else {
            return false;
        };
        let on = |g| self.guards.on(g);
        let reported = rec.epoch > 0;
        let alive = rec.liveness == Liveness::Alive || !on(Guard::AliveDestination);
        let fresh = rec.fresh || !on(Guard::FreshDestination);
        let spared = on(Guard::SpareDrainTarget) && self.is_pending_drain_target(node);
        reported && alive && fresh && !spared
    }

    /// The least-loaded valid destination other than `exclude`; ties go to the lowest id.
    /// The load index is walked from its least-loaded end, so this costs the members
    /// skipped (not valid destinations, or `exclude`), not every member.
    pub(super) fn best_destination(&self, exclude: Option<&N>) -> Option<N> {
        self.loads
            .ascending()
            .map(|(_, n)| n)
            .find(|n| Some(*n) != exclude && self.is_destination(n))
            .cloned()
    }

    /// Basic placement: every unplaced unit goes to the least-loaded destination.
    fn place_unplaced(&mut self, out: &mut Vec<CoordOutput<N, W>>) {
        while !self.unplaced.is_empty() {
            let Some(to) = self.best_destination(None) else {
                return;
            };
            let Some(w) = self.unplaced.pop_first() else {
                return;
            };
            self.start_add(w, to, out);
        }
    }

    /// Whether the drain scheduler moves work off `node` (observed Draining or Stopping).
    fn drains(&self, node: &N, liveness: Liveness) -> bool {
        if liveness < Liveness::Draining {
            return false;
        }
        match self.config.inherited_drain {
            InheritedDrain::Continue => true,
            // Freeze: only the drain a client asked this coordinator for.
            InheritedDrain::Freeze => self
                .drain
                .session
                .as_ref()
                .is_some_and(|s| s.target == *node),
        }
    }

    /// C12: moves work off Draining/Stopping nodes, at most `drain_batch` moves in
    /// flight, round-robin across draining nodes, least-loaded destination first.
    fn move_off_draining(&mut self, out: &mut Vec<CoordOutput<N, W>>) {
        let mut budget = self
            .config
            .drain_batch
            .saturating_sub(self.ops.drain_moves());
        if budget == 0 || !self.view.any_draining() {
            return;
        }
        let draining: Vec<N> = self
            .view
            .iter()
            // Liveness first: it rules out every node while nothing drains, without a
            // lookup per member per input.
            .filter(|(n, rec)| {
                rec.epoch > 0 && self.drains(n, rec.liveness) && self.placement.count(n) > 0
            })
            .map(|(n, _)| n.clone())
            .collect();
        if draining.is_empty() {
            return;
        }
        // Start after the node served last.
        let start = self
            .drain_cursor
            .as_ref()
            .and_then(|c| draining.iter().position(|n| n > c))
            .unwrap_or(0);
        let mut exhausted = vec![false; draining.len()];
        let mut i = start;
        while budget > 0 && exhausted.iter().any(|e| !e) {
            let idx = i % draining.len();
            i += 1;
            if exhausted[idx] {
                continue;
            }
            let node = &draining[idx];
            let candidate = self
                .placement
                .on(node)
                .find(|w| self.ops.get(w).is_none())
                .cloned();
            let Some(w) = candidate else {
                exhausted[idx] = true;
                continue;
            };
            let Some(to) = self.best_destination(Some(node)) else {
                return; // no destination for anything
            };
            let node = node.clone();
            self.start_move(w, node.clone(), to, Purpose::Drain, out);
            self.drain_cursor = Some(node);
            budget -= 1;
        }
    }

    /// C14: while any node drains, balance pauses. Otherwise one move at a time
    /// from the most to the least loaded Alive node, when they differ by two or more.
    fn balance(&mut self, out: &mut Vec<CoordOutput<N, W>>) {
        if self.ops.balance_moves() > 0 {
            return;
        }
        let draining = self.view.any_draining();
        let session = self.drain.session.as_ref().is_some_and(|s| !s.completed);
        if draining || session {
            return;
        }
        // Least loaded and most loaded, from the two ends of the load index; ties go
        // to the lowest id.
        let least = self.loads.ascending().find(|(_, n)| self.is_destination(n));
        let most = self
            .loads
            .descending()
            .find(|(_, n)| self.is_destination(n));
        let (Some((lo, to)), Some((hi, from))) = (least, most) else {
            return;
        };
        let gap = if self.guards.on(Guard::BalanceHysteresis) {
            2
        } else {
            1
        };
        if hi < lo + gap {
            return;
        }
        let candidate = self
            .placement
            .on(from)
            .find(|w| self.ops.get(w).is_none())
            .cloned();
        if let Some(w) = candidate {
            let (from, to) = (from.clone(), to.clone());
            self.start_move(w, from, to, Purpose::Balance, out);
        }
    }

    /// Starts moving `work` from `from` to `to`: remove first, add after the stop is
    /// acknowledged (C13).
    fn start_move(
        &mut self,
        work: W,
        from: N,
        to: N,
        purpose: Purpose,
        out: &mut Vec<CoordOutput<N, W>>,
    ) {
        let epoch = self.view.get(&from).map_or(0, |r| r.epoch);
        self.start_removal(work.clone(), from, epoch, purpose, Some(to.clone()), out);
        if !self.guards.on(Guard::RemoveBeforeAdd) {
            // Checker-only variant: add on the destination at once, in parallel.
            let to_epoch = self.view.get(&to).map_or(0, |r| r.epoch);
            let mut id = 0;
            self.ops.update(
                &work,
                |op| {
                    op.phase = Phase::Adding {
                        to: to.clone(),
                        epoch: to_epoch,
                    };
                    id = op.id;
                },
                &mut self.loads,
            );
            self.placement.unplace(&work, &mut self.loads);
            out.push(CoordOutput::Send {
                to,
                msg: ToNode::AddWork {
                    work,
                    epoch: to_epoch,
                    term: self.term,
                    op: id,
                },
            });
        }
    }
}
