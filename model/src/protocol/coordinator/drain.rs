//! The drain controller: one drain session at a time, driven to Stopping, and the
//! DrainNode answer (specs/protocol.md §5, C5–C10).

use super::{CoordOutput, Coordinator};
use crate::protocol::guards::Guard;
use crate::protocol::ids::{Epoch, Key};
use crate::protocol::liveness::Liveness;
use crate::protocol::message::ToNode;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The one drain session.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Session<N> {
    pub target: N,
    /// The incarnation observed Draining, once it has been.
    pub draining_epoch: Option<Epoch>,
    /// The last liveness command sent for the target, so that a pass sends it once;
    /// the resend timer and every DrainNode call send it again.
    pub requested: Option<(Epoch, Liveness)>,
    /// DrainNode has answered 0.
    pub completed: bool,
    /// Started by this coordinator's bootstrap from a node that reported Draining.
    pub inherited: bool,
}

/// Drain sessions, current and past.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct DrainState<N: Ord> {
    pub session: Option<Session<N>>,
    /// Targets that DrainNode answered 0 for, still members, at the epoch that completed.
    /// They keep answering 0 until they leave (C9), even when another drain started.
    completed: BTreeMap<N, Epoch>,
    /// Targets that completed and then left membership: they answer 0 (C9).
    tombstones: BTreeSet<N>,
    /// Targets that left before completion: they answer an error saying so.
    abandoned: BTreeSet<N>,
}

impl<N: Ord> Default for DrainState<N> {
    fn default() -> Self {
        DrainState {
            session: None,
            completed: BTreeMap::new(),
            tombstones: BTreeSet::new(),
            abandoned: BTreeSet::new(),
        }
    }
}

impl<N: Key> DrainState<N> {
    pub fn start(&mut self, target: N, inherited: bool) {
        self.session = Some(Session {
            target,
            draining_epoch: None,
            requested: None,
            completed: false,
            inherited,
        });
    }

    /// DrainNode answered 0 for the session's target at `epoch`.
    pub fn complete(&mut self, epoch: Epoch) {
        if let Some(s) = &mut self.session {
            s.completed = true;
            self.completed.insert(s.target.clone(), epoch);
        }
    }

    /// Whether `node` completed its drain at its current incarnation `epoch`.
    pub fn is_completed(&self, node: &N, epoch: Epoch) -> bool {
        self.completed.get(node) == Some(&epoch)
    }

    /// The target restarted. A completed drain is over (the node is back); a pending
    /// one is driven again from Alive.
    pub fn on_new_incarnation(&mut self, node: &N) {
        self.completed.remove(node);
        if let Some(s) = &mut self.session {
            if s.target == *node {
                if s.completed {
                    self.session = None;
                } else {
                    s.draining_epoch = None;
                    s.requested = None;
                }
            }
        }
    }

    pub fn on_left(&mut self, node: &N) {
        if self.completed.remove(node).is_some() {
            self.tombstones.insert(node.clone());
        }
        if let Some(s) = &self.session {
            if s.target == *node {
                if !s.completed {
                    self.abandoned.insert(node.clone());
                }
                self.session = None;
            }
        }
    }

    /// A node with this id joined again: it is a new node, not a tombstone.
    pub fn forget_left(&mut self, node: &N) {
        self.tombstones.remove(node);
        self.abandoned.remove(node);
    }
}

/// The phase of a drain, as DrainNode reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrainPhase {
    /// No drain of this node was requested.
    NotRequested,
    /// The coordinator is new and waits for members' bootstrap answers.
    Bootstrapping,
    /// Another node's drain is in progress.
    Blocked,
    /// Asked the target to step to Draining; not observed yet.
    WaitingForDraining,
    /// Moving work units off the target.
    MovingWork,
    /// Empty; asked the target to step to Stopping; not observed yet.
    WaitingForStopping,
    /// The target is Stopping and empty: safe to stop it.
    Done,
}

impl DrainPhase {
    /// Kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DrainPhase::NotRequested => "not-requested",
            DrainPhase::Bootstrapping => "bootstrapping",
            DrainPhase::Blocked => "blocked",
            DrainPhase::WaitingForDraining => "waiting-for-draining",
            DrainPhase::MovingWork => "moving-work",
            DrainPhase::WaitingForStopping => "waiting-for-stopping",
            DrainPhase::Done => "done",
        }
    }
}

impl fmt::Display for DrainPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a drain has not finished.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum BlockReason<N> {
    /// `missing` members have not answered the new coordinator's bootstrap.
    Bootstrapping { missing: usize },
    /// Another node is being drained; one drain at a time.
    AnotherDrain { node: N },
    /// The target has not been observed Draining yet.
    WaitingForDraining { node: N },
    /// Work units still placed on the target.
    WorkOnTarget { units: usize },
    /// Operations in flight that involve the target.
    OperationsInFlight { operations: usize },
    /// No node is Alive and fresh to take the target's work.
    NoAliveDestination,
    /// The target is empty but not observed Stopping yet.
    WaitingForStopping { node: N },
    /// No fresh report from the target within the liveness TTL.
    TargetUnknown { node: N },
}

impl<N: fmt::Display> fmt::Display for BlockReason<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockReason::Bootstrapping { missing } => write!(
                f,
                "coordinator is bootstrapping: {missing} member(s) have not answered"
            ),
            BlockReason::AnotherDrain { node } => {
                write!(f, "another drain in progress (node {node})")
            }
            BlockReason::WaitingForDraining { node } => {
                write!(f, "waiting for node {node} to report Draining")
            }
            BlockReason::WorkOnTarget { units } => {
                write!(f, "{units} work unit(s) still on target")
            }
            BlockReason::OperationsInFlight { operations } => {
                write!(f, "{operations} operation(s) in flight on target")
            }
            BlockReason::NoAliveDestination => f.write_str("no Alive destination"),
            BlockReason::WaitingForStopping { node } => {
                write!(f, "waiting for node {node} to report Stopping")
            }
            BlockReason::TargetUnknown { node } => {
                write!(f, "no fresh report from node {node}")
            }
        }
    }
}

/// The DrainNode answer: `remaining` (0 only when the target may be stopped) and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DrainReport<N> {
    pub node: N,
    pub remaining: u64,
    pub phase: DrainPhase,
    pub reasons: Vec<BlockReason<N>>,
}

/// DrainNode requests that are refused.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "error", content = "node", rename_all = "kebab-case")]
pub enum DrainError<N> {
    /// Not a member, and never drained to completion.
    UnknownNode(N),
    /// The coordinator runs on this node: move leadership away first (C10).
    CoordinatorOwnNode(N),
    /// The node left membership before its drain completed.
    LeftBeforeCompletion(N),
}

impl<N: fmt::Display> fmt::Display for DrainError<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DrainError::UnknownNode(n) => write!(f, "unknown node {n}: not a member"),
            DrainError::CoordinatorOwnNode(n) => write!(
                f,
                "node {n} runs the coordinator: move leadership away before draining it"
            ),
            DrainError::LeftBeforeCompletion(n) => {
                write!(f, "node {n} left the cluster before its drain completed")
            }
        }
    }
}

impl<N: fmt::Debug + fmt::Display> std::error::Error for DrainError<N> {}

impl<N: Key, W: Key> Coordinator<N, W> {
    /// DrainNode(node): requests the drain (again: it is idempotent; a lost command is
    /// re-sent by the resend timer, not by every call) and answers `remaining`. Never 0 before `node` is
    /// observed Stopping, fresh, at the epoch observed Draining, with nothing left on it.
    pub fn drain_node(
        &mut self,
        node: &N,
        out: &mut Vec<CoordOutput<N, W>>,
    ) -> Result<DrainReport<N>, DrainError<N>> {
        if let Some(answer) = self.drain_precheck(node) {
            return answer;
        }
        let current = matches!(&self.drain.session, Some(s) if s.target == *node);
        if !current {
            self.drain.start(node.clone(), false);
        }
        self.drive_session(out, self.config.resend_on_poll);
        self.schedule(out);
        let report = self.session_report();
        if report.remaining == 0 {
            let epoch = self.view.get(node).map_or(0, |r| r.epoch);
            self.drain.complete(epoch);
        }
        Ok(report)
    }

    /// What DrainNode(node) would answer now, without requesting anything.
    pub fn drain_status(&self, node: &N) -> Result<DrainReport<N>, DrainError<N>> {
        if let Some(answer) = self.drain_precheck(node) {
            return answer;
        }
        match &self.drain.session {
            Some(s) if s.target == *node => Ok(self.session_report()),
            // Nobody asked to drain this node: it may receive work at any moment, so it
            // is not safe to stop, however little it runs now. Never 0 (a script that
            // polls with GET instead of PUT must not stop an Alive node).
            _ => Ok(DrainReport {
                node: node.clone(),
                remaining: self.remaining_on(node).max(1) as u64,
                phase: DrainPhase::NotRequested,
                reasons: Vec::new(),
            }),
        }
    }

    /// The answers that do not depend on a session of `node`.
    fn drain_precheck(&self, node: &N) -> Option<Result<DrainReport<N>, DrainError<N>>> {
        if self.guards.on(Guard::RefuseOwnNode) && *node == self.host {
            return Some(Err(DrainError::CoordinatorOwnNode(node.clone())));
        }
        if !self.view.contains(node) {
            return Some(if self.drain.tombstones.contains(node) {
                Ok(DrainReport {
                    node: node.clone(),
                    remaining: 0,
                    phase: DrainPhase::Done,
                    reasons: Vec::new(),
                })
            } else if self.drain.abandoned.contains(node) {
                Err(DrainError::LeftBeforeCompletion(node.clone()))
            } else {
                Err(DrainError::UnknownNode(node.clone()))
            });
        }
        let epoch = self.view.get(node).map_or(0, |r| r.epoch);
        if self.drain.is_completed(node, epoch) {
            // C9: once 0 was answered, it stays 0 until the node leaves or restarts.
            return Some(Ok(DrainReport {
                node: node.clone(),
                remaining: 0,
                phase: DrainPhase::Done,
                reasons: Vec::new(),
            }));
        }
        let blocked = |phase, reason| {
            Some(Ok(DrainReport {
                node: node.clone(),
                remaining: self.remaining_on(node).max(1) as u64,
                phase,
                reasons: vec![reason],
            }))
        };
        if !self.bootstrapped {
            let missing = self.awaiting.len();
            return blocked(
                DrainPhase::Bootstrapping,
                BlockReason::Bootstrapping { missing },
            );
        }
        match &self.drain.session {
            Some(s) if s.target != *node && !s.completed => blocked(
                DrainPhase::Blocked,
                BlockReason::AnotherDrain {
                    node: s.target.clone(),
                },
            ),
            _ => None,
        }
    }

    /// C8: the larger of units placed on `node` and operations involving it.
    pub(super) fn remaining_on(&self, node: &N) -> usize {
        let placed = self.placement.count(node);
        if self.guards.on(Guard::CountInFlight) {
            placed.max(self.ops.involving(node))
        } else {
            placed
        }
    }

    fn session_report(&self) -> DrainReport<N> {
        let s = self.drain.session.as_ref().expect("a drain session");
        let t = &s.target;
        let rec = self.view.get(t).copied().unwrap_or_default();
        let raw = self.remaining_on(t);
        let observed_draining = rec.epoch > 0 && s.draining_epoch == Some(rec.epoch);
        // C8 also asks for a fresh view. Not a switchable guard: in a model where
        // every timer may fire at any moment it protects no safety property (see
        // specs/decisions.md), but a silent node is not confirmed Stopping.
        if observed_draining && rec.liveness == Liveness::Stopping && rec.fresh && raw == 0 {
            return DrainReport {
                node: t.clone(),
                remaining: 0,
                phase: DrainPhase::Done,
                reasons: Vec::new(),
            };
        }
        let mut reasons = Vec::new();
        if !rec.fresh {
            reasons.push(BlockReason::TargetUnknown { node: t.clone() });
        }
        let phase = if !observed_draining {
            reasons.push(BlockReason::WaitingForDraining { node: t.clone() });
            DrainPhase::WaitingForDraining
        } else if raw > 0 {
            let units = self.placement.count(t);
            if units > 0 {
                reasons.push(BlockReason::WorkOnTarget { units });
            }
            let operations = self.ops.involving(t);
            if operations > 0 {
                reasons.push(BlockReason::OperationsInFlight { operations });
            }
            if self.best_destination(Some(t)).is_none() {
                reasons.push(BlockReason::NoAliveDestination);
            }
            DrainPhase::MovingWork
        } else {
            reasons.push(BlockReason::WaitingForStopping { node: t.clone() });
            DrainPhase::WaitingForStopping
        };
        DrainReport {
            node: t.clone(),
            remaining: raw.max(1) as u64,
            phase,
            reasons,
        }
    }

    /// C7: Draining is requested until observed; Stopping only for the session
    /// target, only when nothing remains on it, and only with the epoch of the
    /// incarnation observed Draining (each clause its own guard, for the checker). With
    /// `resend`, the command goes out again even if it was sent before.
    pub(super) fn drive_session(&mut self, out: &mut Vec<CoordOutput<N, W>>, resend: bool) {
        if !self.guards.on(Guard::StoppingOnlyTarget) {
            self.stop_every_empty_draining_node(out);
        }
        let Some(s) = &self.drain.session else { return };
        let Some(rec) = self.view.get(&s.target).copied() else {
            return;
        };
        let mut draining_epoch = s.draining_epoch;
        if draining_epoch.is_none() && rec.epoch > 0 && rec.liveness >= Liveness::Draining {
            draining_epoch = Some(rec.epoch);
        }
        // Without the epoch clause, any incarnation once observed Draining will do.
        let observed = if self.guards.on(Guard::StoppingAtDrainingEpoch) {
            draining_epoch == Some(rec.epoch)
        } else {
            draining_epoch.is_some()
        };
        let want = if !observed || rec.epoch == 0 {
            Some((rec.epoch, Liveness::Draining))
        } else if rec.liveness == Liveness::Stopping
            || (self.config.stopping_needs_fresh && !rec.fresh)
        {
            // Observed Stopping: nothing more to send. (Or, in the checker's variant
            // that wants a fresh view first, not fresh yet.)
            None
        } else if self.empty_enough_to_stop(&s.target) {
            Some((rec.epoch, Liveness::Stopping))
        } else {
            None
        };
        let target = s.target.clone();
        let s = self.drain.session.as_mut().expect("checked above");
        s.draining_epoch = draining_epoch;
        let Some((epoch, liveness)) = want else {
            return;
        };
        if resend || s.requested != Some((epoch, liveness)) {
            s.requested = Some((epoch, liveness));
            out.push(CoordOutput::Send {
                to: target,
                msg: ToNode::SetLiveness {
                    target: liveness,
                    epoch,
                    term: self.term,
                },
            });
        }
    }

    /// The checker's variant without `stopping-only-target`: Stopping goes to every node
    /// observed Draining (at its recorded epoch) once nothing remains on it, whether or
    /// not it is the session's target.
    fn stop_every_empty_draining_node(&self, out: &mut Vec<CoordOutput<N, W>>) {
        let target = self.drain.session.as_ref().map(|s| &s.target);
        for (node, rec) in self.view.iter() {
            let draining = rec.epoch > 0 && rec.liveness == Liveness::Draining;
            if Some(node) != target && draining && self.empty_enough_to_stop(node) {
                out.push(CoordOutput::Send {
                    to: node.clone(),
                    msg: ToNode::SetLiveness {
                        target: Liveness::Stopping,
                        epoch: rec.epoch,
                        term: self.term,
                    },
                });
            }
        }
    }

    /// C7's first clause: nothing remains on `node` (`stopping-when-empty`; without the
    /// guard, any node will do).
    fn empty_enough_to_stop(&self, node: &N) -> bool {
        !self.guards.on(Guard::StoppingWhenEmpty) || self.remaining_on(node) == 0
    }

    /// The target of a drain that is requested and not yet answered 0: no destination
    /// for new work (`spare-drain-target`).
    pub fn is_pending_drain_target(&self, node: &N) -> bool {
        self.drain
            .session
            .as_ref()
            .is_some_and(|s| s.target == *node && !s.completed)
    }
}
