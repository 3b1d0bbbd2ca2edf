//! The coordinator: liveness view, placement, operators, schedulers and the drain
//! controller (specs/protocol.md §5; rule ids C1–C18 are defined there).
//!
//! It is a state machine without I/O. [`Coordinator::handle`] takes one input and
//! appends the effects to `out`; after every input it runs one scheduling pass, so the
//! effects of a change go out in the same step ("ready"). Time enters only as timer
//! inputs: [`CoordTimer::Resend`] and [`CoordTimer::LivenessTtl`].

mod drain;
mod loads;
mod operators;
mod placement;
mod schedulers;
mod view;

pub use drain::{BlockReason, DrainError, DrainPhase, DrainReport};
pub use operators::{Operation, Phase, Purpose};
pub use view::{NodeRecord, Observed};

use crate::protocol::guards::{Guard, Guards};
use crate::protocol::ids::{Epoch, Key, OpId, Term};
use crate::protocol::liveness::{Liveness, ViewLiveness};
use crate::protocol::message::{ToCoordinator, ToNode, WorkState};
use drain::DrainState;
use loads::Loads;
use operators::Operators;
use placement::Placement;
use std::collections::BTreeSet;
use view::LivenessView;

/// What a new coordinator does with a drain it inherits: a node that reports Draining
/// in its bootstrap (C15).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum InheritedDrain {
    /// Keep moving work off it and drive it to Stopping, as the old coordinator would
    /// have (the default; see specs/decisions.md).
    #[default]
    Continue,
    /// Leave it alone until a client asks for that drain again.
    Freeze,
}

/// Tunables of the coordinator core. Intervals live in the runtime: the core only sees
/// timers fire. (Serde: the coordinator's `Start` record in the runtime's step trace.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CoordinatorConfig {
    /// The drain scheduler's budget: in-flight moves off draining nodes (C12).
    pub drain_batch: usize,
    /// What to do with an inherited drain (C15).
    pub inherited_drain: InheritedDrain,
    /// Whether a DrainNode call sends the session's liveness command again even when
    /// it was sent before. Off: a client may poll as fast as it likes, and the target
    /// receives the command once per pass that changes it plus once per resend tick
    /// (`specs/decisions.md`, "Stopping without a fresh view, and no resend per poll").
    /// On only in a checker variant that shows the choice changes no verdict.
    pub resend_on_poll: bool,
    /// Whether Stopping is requested only while the target's report is fresh. Off: the
    /// 0 requires a fresh view (C8), the request does not (same decision record).
    pub stopping_needs_fresh: bool,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            drain_batch: 16,
            inherited_drain: InheritedDrain::Continue,
            resend_on_poll: false,
            stopping_needs_fresh: false,
        }
    }
}

/// A timer the coordinator asks for.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum CoordTimer<N> {
    /// Resend whatever is unacknowledged: bootstrap requests, operation commands,
    /// liveness commands. Periodic.
    Resend,
    /// No report from this node within the liveness TTL: it becomes Unknown. Re-armed
    /// on every accepted report from it.
    LivenessTtl(N),
}

/// One input to the coordinator. (Serde: the runtime's step trace, replayed by
/// `ebbtide trace check`.)
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CoordInput<N, W> {
    /// A message from the node agent of `from`.
    Message { from: N, msg: ToCoordinator<W> },
    /// A timer fired.
    Timer(CoordTimer<N>),
    /// The membership service reports a new member: a new process (incarnation `epoch`,
    /// as its membership entry says) that hosts nothing yet.
    MemberJoined { node: N, epoch: Epoch },
    /// The membership service reports that a member left (its lease is gone: it crashed
    /// or fenced itself, and its work with it): the registration of incarnation `epoch`.
    /// A watch may report it late, after the node's next incarnation already reported
    /// to this coordinator: that leave is then ignored (C17).
    MemberLeft { node: N, epoch: Epoch },
    /// A client added a work unit that must run somewhere.
    AddUnit(W),
    /// A client deleted a work unit: stop it wherever it runs.
    DeleteUnit(W),
    /// An operator asked this coordinator to give up leadership (TiCDC's owner resign),
    /// or its node is leaving: it answers [`CoordOutput::Resign`] and serves no more.
    Resign,
}

/// One effect of the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CoordOutput<N, W> {
    /// Send `msg` to the node agent of `to`.
    Send { to: N, msg: ToNode<W> },
    /// (Re)arm a timer.
    Arm(CoordTimer<N>),
    /// This coordinator's own node is no longer Alive: give up leadership.
    Resign,
}

/// A member as the status API shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NodeStatus<N> {
    pub node: N,
    pub epoch: Epoch,
    pub liveness: ViewLiveness,
    pub is_coordinator: bool,
    /// Work units placed on this node.
    pub units: usize,
    /// In-flight operations that involve this node.
    pub operations: usize,
}

/// The coordinator of one term.
///
/// # Call contract
///
/// The coordinator performs no I/O: every effect is a [`CoordOutput`] appended to
/// `out`, and the shell (the runtime's coordinator task, the checker's node actor)
/// carries it out. The checker's exhaustive search holds for a shell that keeps these
/// rules:
///
/// 1. **One term, one coordinator.** Construct it when this process wins the election
///    for `term`, with every member the membership service lists and the desired units
///    read from durable storage, and apply the outputs of [`Coordinator::new`] (its
///    bootstrap requests and the resend timer) before the first input.
/// 2. **One input at a time.** Feed [`Coordinator::handle`] messages, timers that
///    fired, membership events, units a client added or deleted, and `Resign`. Between
///    inputs, answer clients with [`Coordinator::drain_node`], which also emits outputs
///    (apply them like those of an input), and with the read-only getters
///    ([`Coordinator::drain_status`], [`Coordinator::nodes`], ...), which emit none.
/// 3. **Outputs in order.** Apply the outputs of a call in the order they were
///    appended, all of them before the next input. A crash part-way is allowed: the
///    unapplied sends are lost, as messages the network loses. [`CoordOutput::Arm`]
///    replaces the timer of the same name. The answer of `drain_node` may be returned
///    to the client before its outputs are applied: it says what the coordinator has
///    observed, and none of those outputs needs to have been applied for it to hold.
/// 4. **Nothing durable is emitted; durable inputs come first.** The coordinator emits
///    no write: the only state that outlives it is the set of desired units, which the
///    shell keeps (the data dir, or etcd) where the next coordinator loads it. A unit a
///    client adds must be durable there before `AddUnit` is fed, and the client told
///    only then; when the write fails, do not feed the unit and tell the client so.
///    Otherwise a failover forgets a unit the client was told is added, and the next
///    coordinator stops it as a stray. Likewise a unit a client deletes leaves durable
///    storage before `DeleteUnit` is fed, or a failover starts it again. (The checker
///    checks the rule for adding, `--added-work`: with `--add-not-durable`, a shell
///    that feeds the unit before storing it, S8 finds the unit lost at the next
///    failover. No route deletes units, so the model has no client that does.)
/// 5. **Stop at once when no longer the coordinator.** After a call that emits
///    [`CoordOutput::Resign`], apply the rest of that call's outputs (the checker does
///    too) and feed this coordinator nothing more. Likewise when the process loses the
///    leadership or its lease: feed nothing more, not even what waited in its queue or
///    its timers. Its late commands are fenced by term in the agents, but it must not
///    issue new ones.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Coordinator<N: Ord, W: Ord> {
    host: N,
    term: Term,
    guards: Guards,
    config: CoordinatorConfig,
    view: LivenessView<N>,
    /// Members that have not answered this coordinator's bootstrap request yet.
    awaiting: BTreeSet<N>,
    bootstrapped: bool,
    /// Work units that must run somewhere.
    desired: BTreeSet<W>,
    placement: Placement<N, W>,
    ops: Operators<N, W>,
    /// Every member (and every node that held load) by its load, for the schedulers;
    /// derived from `placement` and `ops`, which keep it up to date.
    loads: Loads<N>,
    /// Desired units that run nowhere and have no operation: waiting for a destination.
    unplaced: BTreeSet<W>,
    /// Units deleted while an operation was in flight on them.
    delete_after: BTreeSet<W>,
    /// Units that bootstrap answers reported running but that are not desired: stopped
    /// once the bootstrap is complete.
    strays: BTreeSet<(W, N, Epoch)>,
    drain: DrainState<N>,
    /// The draining node the drain scheduler served last (round robin).
    drain_cursor: Option<N>,
}

impl<N: Key, W: Key> Coordinator<N, W> {
    /// A new coordinator for `term`, running on node `host`, with the current members
    /// and the work units that must run. It asks every member for its state and serves
    /// nothing until all have answered (C15).
    pub fn new(
        host: N,
        term: Term,
        members: impl IntoIterator<Item = N>,
        desired: impl IntoIterator<Item = W>,
        config: CoordinatorConfig,
        guards: Guards,
        out: &mut Vec<CoordOutput<N, W>>,
    ) -> Self {
        let mut view = LivenessView::default();
        let mut awaiting = BTreeSet::new();
        let mut loads = Loads::default();
        for m in members {
            view.add(m.clone());
            loads.track(&m);
            awaiting.insert(m);
        }
        let mut c = Coordinator {
            host,
            term,
            guards,
            config,
            view,
            awaiting,
            bootstrapped: false,
            desired: desired.into_iter().collect(),
            placement: Placement::default(),
            ops: Operators::default(),
            loads,
            unplaced: BTreeSet::new(),
            delete_after: BTreeSet::new(),
            strays: BTreeSet::new(),
            drain: DrainState::default(),
            drain_cursor: None,
        };
        c.send_bootstrap(out);
        out.push(CoordOutput::Arm(CoordTimer::Resend));
        if !c.guards.on(Guard::BootstrapBeforeServing) || c.awaiting.is_empty() {
            // (Without the guard, a checker-only variant: serve at once, knowing nothing
            // of what runs where.)
            c.finish_bootstrap(out);
        }
        c
    }

    /// Handles one input, then runs one scheduling pass.
    pub fn handle(&mut self, input: CoordInput<N, W>, out: &mut Vec<CoordOutput<N, W>>) {
        match input {
            CoordInput::Message { from, msg } => self.on_message(from, msg, out),
            CoordInput::Timer(CoordTimer::Resend) => self.resend(out),
            CoordInput::Timer(CoordTimer::LivenessTtl(node)) => {
                self.view.expire(&node);
            }
            CoordInput::MemberJoined { node, epoch } => self.on_member_joined(node, epoch, out),
            CoordInput::MemberLeft { node, epoch } => self.on_member_left(&node, epoch, out),
            CoordInput::AddUnit(w) => {
                if self.desired.insert(w.clone()) && self.bootstrapped {
                    self.unplaced.insert(w);
                }
            }
            CoordInput::DeleteUnit(w) => self.on_delete(w, out),
            CoordInput::Resign => {
                out.push(CoordOutput::Resign);
                return;
            }
        }
        if self.bootstrapped {
            self.schedule(out);
        }
    }

    // ----- accessors -------------------------------------------------------------

    /// The node this coordinator runs on.
    pub fn host(&self) -> &N {
        &self.host
    }

    /// The guards this coordinator runs with (all on in the runtime).
    pub fn guards(&self) -> Guards {
        self.guards
    }

    /// The tunables it was built with.
    pub fn config(&self) -> CoordinatorConfig {
        self.config
    }

    /// This coordinator's term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// Whether every member answered the bootstrap request.
    pub fn is_bootstrapped(&self) -> bool {
        self.bootstrapped
    }

    /// Members that have not answered the bootstrap request yet.
    pub fn awaiting_bootstrap(&self) -> impl Iterator<Item = &N> + '_ {
        self.awaiting.iter()
    }

    /// Whether `node` has not answered the bootstrap request yet.
    pub fn awaits(&self, node: &N) -> bool {
        self.awaiting.contains(node)
    }

    /// The recorded observation of `node`, if it is a member.
    pub fn record(&self, node: &N) -> Option<&NodeRecord> {
        self.view.get(node)
    }

    /// Every member and its recorded observation.
    pub fn records(&self) -> impl Iterator<Item = (&N, &NodeRecord)> + '_ {
        self.view.iter()
    }

    /// Whether `node` is a member.
    pub fn is_member(&self, node: &N) -> bool {
        self.view.contains(node)
    }

    /// Where `work` is believed to run.
    pub fn placement_of(&self, work: &W) -> Option<&N> {
        self.placement.node_of(work)
    }

    /// The units believed to run on `node`.
    pub fn units_on(&self, node: &N) -> impl Iterator<Item = &W> + '_ {
        self.placement.on(node)
    }

    /// The in-flight operation on `work`, if any.
    pub fn operation(&self, work: &W) -> Option<&Operation<N>> {
        self.ops.get(work)
    }

    /// Every in-flight operation.
    pub fn operations(&self) -> impl Iterator<Item = (&W, &Operation<N>)> + '_ {
        self.ops.iter()
    }

    /// How many in-flight operations involve `node`.
    pub fn operations_involving(&self, node: &N) -> usize {
        self.ops.involving(node)
    }

    /// Whether `work` is desired and waiting for a destination.
    pub fn is_unplaced(&self, work: &W) -> bool {
        self.unplaced.contains(work)
    }

    /// How many desired units wait for a destination.
    pub fn unplaced_count(&self) -> usize {
        self.unplaced.len()
    }

    /// The desired work units.
    pub fn desired(&self) -> impl Iterator<Item = &W> + '_ {
        self.desired.iter()
    }

    /// The drain session's target, if a session exists.
    pub fn drain_target(&self) -> Option<&N> {
        self.drain.session.as_ref().map(|s| &s.target)
    }

    /// Whether the current drain session was inherited from a previous coordinator.
    pub fn drain_inherited(&self) -> bool {
        self.drain.session.as_ref().is_some_and(|s| s.inherited)
    }

    /// Whether this coordinator has observed `node` at `epoch` as Draining (or beyond).
    pub fn observed_draining(&self, node: &N, epoch: Epoch) -> bool {
        self.view
            .get(node)
            .is_some_and(|r| r.epoch == epoch && r.liveness >= Liveness::Draining)
    }

    /// The id of each operation in flight, by unit.
    pub fn op_ids(&self) -> impl Iterator<Item = (&W, OpId)> + '_ {
        self.ops.iter().map(|(w, op)| (w, op.id))
    }

    /// The last operation id handed out: the next is larger.
    pub fn last_op_id(&self) -> OpId {
        self.ops.last_id()
    }

    /// Renames operation ids, for a model checker that renumbers them without changing
    /// the order of any one unit's ids (the protocol only compares those: agents fence
    /// each unit's commands by (term, op), and an acknowledgement is matched to its
    /// unit's operation by equality). `rename(unit, op)` must keep each unit's order;
    /// `last` becomes the last id handed out, and must be at least every renamed id, so
    /// that the next one is newer than all of them.
    pub fn rename_ops(&mut self, rename: &dyn Fn(&W, OpId) -> OpId, last: OpId) {
        self.ops.rename(rename, last);
    }

    /// Every member as the status API shows it.
    pub fn nodes(&self) -> Vec<NodeStatus<N>> {
        self.view
            .iter()
            .map(|(n, rec)| NodeStatus {
                node: n.clone(),
                epoch: rec.epoch,
                liveness: rec.view(),
                is_coordinator: *n == self.host,
                units: self.placement.count(n),
                operations: self.ops.involving(n),
            })
            .collect()
    }

    /// Checks the coordinator's own bookkeeping: every desired unit is exactly one of
    /// placed, being added by an operation, or unplaced. Returns the first breach.
    pub fn bookkeeping_error(&self) -> Option<String> {
        if !self.bootstrapped || !self.guards.on(Guard::BootstrapBeforeServing) {
            return None;
        }
        for w in &self.desired {
            let placed = self.placement.node_of(w).is_some();
            let adding =
                matches!(self.ops.get(w), Some(op) if matches!(op.phase, Phase::Adding { .. }));
            let unplaced = self.unplaced.contains(w);
            if [placed, adding, unplaced].iter().filter(|b| **b).count() != 1 {
                return Some(format!(
                    "unit {w:?}: placed={placed} adding={adding} unplaced={unplaced}"
                ));
            }
        }
        self.loads_error()
    }

    /// Checks the load index against the counts it is derived from: every member is
    /// indexed at the units placed on it plus the units on their way to it. Checks the
    /// view's count of draining members against its records too.
    fn loads_error(&self) -> Option<String> {
        let draining = self
            .view
            .iter()
            .any(|(_, r)| r.epoch > 0 && r.liveness >= Liveness::Draining);
        if draining != self.view.any_draining() {
            return Some(format!(
                "a member drains: {draining}, but the view's count says {}",
                self.view.any_draining()
            ));
        }
        for (n, _) in self.view.iter() {
            let load = self.placement.count(n) + self.ops.incoming(n);
            let indexed = self.loads.ascending().any(|(l, m)| m == n && l == load);
            if !indexed || self.loads.get(n) != load {
                return Some(format!(
                    "node {n:?}: load {load}, but the index says {}",
                    self.loads.get(n)
                ));
            }
        }
        None
    }

    // ----- messages --------------------------------------------------------------

    fn on_message(&mut self, from: N, msg: ToCoordinator<W>, out: &mut Vec<CoordOutput<N, W>>) {
        match msg {
            ToCoordinator::BootstrapResponse {
                term,
                epoch,
                liveness,
                work,
                version: _,
            } => self.on_bootstrap_response(from, term, epoch, liveness, work, out),
            ToCoordinator::Heartbeat { epoch, liveness }
            | ToCoordinator::SetLivenessResponse { epoch, liveness } => {
                // Before its bootstrap answer, a member's reports carry no placement: wait.
                if self.awaiting.contains(&from) && self.guards.on(Guard::BootstrapBeforeServing) {
                    return;
                }
                self.observe(&from, epoch, liveness, out);
            }
            ToCoordinator::WorkStatus {
                work,
                epoch,
                term,
                op,
                status,
            } => self.on_work_status(from, work, epoch, term, op, status, out),
        }
    }

    fn on_bootstrap_response(
        &mut self,
        from: N,
        term: Term,
        epoch: Epoch,
        liveness: Liveness,
        work: Vec<W>,
        out: &mut Vec<CoordOutput<N, W>>,
    ) {
        if term != self.term || !self.awaiting.contains(&from) {
            return;
        }
        // C1: the answer of an incarnation older than one already known (by a report or
        // a registration) comes from a process that is gone: its units run nowhere. The
        // bootstrap waits for the current incarnation's answer (the resend asks again).
        let stale = self.view.get(&from).is_some_and(|r| epoch < r.epoch);
        if stale && self.guards.on(Guard::DropStaleReports) {
            return;
        }
        self.awaiting.remove(&from);
        self.observe(&from, epoch, liveness, out);
        for w in work {
            if !self.desired.contains(&w) {
                // Deleted while nobody was coordinating: stop it once serving.
                self.strays.insert((w, from.clone(), epoch));
            } else if self.placement.node_of(&w).is_none() && self.ops.get(&w).is_none() {
                self.unplaced.remove(&w);
                self.placement.place(w, from.clone(), &mut self.loads);
            }
        }
        if self.awaiting.is_empty() && !self.bootstrapped {
            self.finish_bootstrap(out);
        }
    }

    fn finish_bootstrap(&mut self, out: &mut Vec<CoordOutput<N, W>>) {
        self.bootstrapped = true;
        for (w, node, epoch) in std::mem::take(&mut self.strays) {
            let current = self.view.get(&node).is_some_and(|r| r.epoch == epoch);
            if current && self.ops.get(&w).is_none() {
                self.start_removal(w, node, epoch, Purpose::Delete, None, out);
            }
        }
        for w in &self.desired {
            if self.placement.node_of(w).is_none() && self.ops.get(w).is_none() {
                self.unplaced.insert(w.clone());
            }
        }
        if self.config.inherited_drain == InheritedDrain::Continue && self.drain.session.is_none() {
            let inherited = self
                .view
                .iter()
                .find(|(_, r)| r.epoch > 0 && r.liveness == Liveness::Draining)
                .map(|(n, _)| n.clone());
            if let Some(target) = inherited {
                self.drain.start(target, true);
            }
        }
    }

    /// The one observation routine for every report (C1–C3). Returns how the view
    /// changed.
    fn observe(
        &mut self,
        node: &N,
        epoch: Epoch,
        liveness: Liveness,
        out: &mut Vec<CoordOutput<N, W>>,
    ) -> Observed {
        let observed = self.view.observe(node, epoch, liveness, self.guards);
        match observed {
            Observed::Dropped => return observed,
            Observed::NewIncarnation => self.forget_incarnation(node, out),
            Observed::Recorded { .. } => {}
        }
        if *node == self.host
            && self
                .view
                .get(node)
                .is_some_and(|r| r.liveness != Liveness::Alive)
        {
            out.push(CoordOutput::Resign);
        }
        out.push(CoordOutput::Arm(CoordTimer::LivenessTtl(node.clone())));
        observed
    }

    #[allow(clippy::too_many_arguments)]
    fn on_work_status(
        &mut self,
        from: N,
        work: W,
        epoch: Epoch,
        term: Term,
        op_id: OpId,
        status: WorkState,
        out: &mut Vec<CoordOutput<N, W>>,
    ) {
        if term != self.term {
            return;
        }
        let Some(op) = self.ops.get(&work) else {
            return;
        };
        if op.id != op_id {
            return;
        }
        match (&op.phase, status) {
            (Phase::Removing { from: f, epoch: e }, WorkState::Stopped)
                if *f == from && *e == epoch =>
            {
                let purpose = op.purpose;
                self.placement.unplace(&work, &mut self.loads);
                if purpose == Purpose::Delete {
                    self.ops.remove(&work, &mut self.loads);
                } else {
                    self.start_adding(work, out);
                }
            }
            (Phase::Adding { to, epoch: e }, WorkState::Running) if *to == from && *e == epoch => {
                self.ops.remove(&work, &mut self.loads);
                self.placement.place(work.clone(), from, &mut self.loads);
                if self.delete_after.remove(&work) {
                    self.delete_placed(work, out);
                }
            }
            (Phase::Adding { to, epoch: e }, WorkState::Rejected) if *to == from && *e == epoch => {
                self.ops.remove(&work, &mut self.loads);
                self.requeue(work);
                // A node rejects new work only while Stopping: that is an observation.
                self.observe(&from, epoch, Liveness::Stopping, out);
            }
            _ => {}
        }
    }

    // ----- membership and incarnations -------------------------------------------

    fn on_member_joined(&mut self, node: N, epoch: Epoch, out: &mut Vec<CoordOutput<N, W>>) {
        if self.view.contains(&node) {
            // C17: a newer incarnation registered, so every older one is gone: from now
            // on only this one's reports count (a late bootstrap answer of an older one
            // would count units that run nowhere), and if it replaces one the
            // coordinator heard from, that one's units wait for a new destination, as
            // when the new incarnation reports first. A fresh snapshot of the registry
            // (a new coordinator's view, a watch started over) lists only the new one,
            // with no leave before it (S8; the checker found both with late membership
            // and a lease loss). The member stays in the bootstrap if it was: the new
            // process answers the next resend.
            if self.view.registered(&node, epoch) {
                self.forget_incarnation(&node, out);
            }
            return;
        }
        self.loads.track(&node);
        self.view.add_incarnation(node.clone(), epoch);
        self.drain.forget_left(&node);
    }

    fn on_member_left(&mut self, node: &N, epoch: Epoch, out: &mut Vec<CoordOutput<N, W>>) {
        // C17: the leave of a registration older than the incarnation already observed
        // arrived late (the watch lagged behind the new incarnation's own reports).
        // Taking it would forget the new incarnation and place its units again while
        // they run there (S5; the runtime's simulation found it, elected mode seed 3).
        match self.view.get(node) {
            None => return,
            Some(r) if r.epoch > epoch => return,
            Some(_) => {}
        }
        // C9: a target that leaves while DrainNode would answer it 0 (Stopping,
        // fresh, empty, nothing in flight: it exited after its drain, before a client
        // polled again) completed its drain: its tombstone answers 0 however late a
        // client polls. Anything less is a leave before completion.
        if self.drain_target() == Some(node)
            && self.drain_status(node).is_ok_and(|r| r.remaining == 0)
        {
            let epoch = self.view.get(node).map_or(0, |r| r.epoch);
            self.drain.complete(epoch);
        }
        self.view.remove(node);
        self.lose_node(node, out);
        self.drain.on_left(node);
        if self.awaiting.remove(node) && self.awaiting.is_empty() && !self.bootstrapped {
            self.finish_bootstrap(out);
        }
    }

    /// C2: a new incarnation of `node` was observed. The old one is gone with its
    /// work; a pending drain of this node is kept and driven again from Alive.
    fn forget_incarnation(&mut self, node: &N, out: &mut Vec<CoordOutput<N, W>>) {
        self.lose_node(node, out);
        self.drain.on_new_incarnation(node);
    }

    /// Everything believed to run on `node`'s old incarnation is gone: operations that
    /// involve it are settled and its units wait for a new destination.
    fn lose_node(&mut self, node: &N, out: &mut Vec<CoordOutput<N, W>>) {
        let involved: Vec<W> = self
            .ops
            .iter()
            .filter(|(_, op)| op.involves(node))
            .map(|(w, _)| w.clone())
            .collect();
        for w in involved {
            let Some(op) = self.ops.get(&w) else { continue };
            match &op.phase {
                Phase::Removing { from, .. } if from == node => {
                    // The unit died with the origin: the removal is done.
                    self.placement.unplace(&w, &mut self.loads);
                    if op.purpose == Purpose::Delete {
                        self.ops.remove(&w, &mut self.loads);
                    } else {
                        self.start_adding(w, out);
                    }
                }
                Phase::Removing { .. } => {
                    // Only the planned destination is gone: choose again when adding.
                    self.ops.update(&w, |op| op.dest = None, &mut self.loads);
                }
                Phase::Adding { to, .. } if to == node => {
                    self.ops.remove(&w, &mut self.loads);
                    self.requeue(w);
                }
                Phase::Adding { .. } => {
                    // The origin is gone but the unit is already being added elsewhere.
                    self.ops.update(&w, |op| op.origin = None, &mut self.loads);
                }
            }
        }
        for w in self.placement.evict(node, &mut self.loads) {
            self.requeue(w);
        }
    }

    /// `work` runs nowhere and has no operation: place it again if it is still desired.
    fn requeue(&mut self, work: W) {
        self.delete_after.remove(&work);
        if self.desired.contains(&work) {
            self.unplaced.insert(work);
        }
    }

    // ----- operations --------------------------------------------------------------

    fn on_delete(&mut self, work: W, out: &mut Vec<CoordOutput<N, W>>) {
        if !self.desired.remove(&work) {
            return;
        }
        if self.unplaced.remove(&work) {
            return;
        }
        if self.ops.get(&work).is_some() {
            self.delete_after.insert(work);
        } else {
            self.delete_placed(work, out);
        }
    }

    fn delete_placed(&mut self, work: W, out: &mut Vec<CoordOutput<N, W>>) {
        if let Some(node) = self.placement.node_of(&work).cloned() {
            let epoch = self.view.get(&node).map_or(0, |r| r.epoch);
            self.start_removal(work, node, epoch, Purpose::Delete, None, out);
        }
    }

    /// Starts an operation that stops `work` on `from` first (a move or a delete).
    fn start_removal(
        &mut self,
        work: W,
        from: N,
        epoch: Epoch,
        purpose: Purpose,
        dest: Option<N>,
        out: &mut Vec<CoordOutput<N, W>>,
    ) {
        let id = self.ops.next_id();
        let phase = Phase::Removing {
            from: from.clone(),
            epoch,
        };
        self.ops.insert(
            work.clone(),
            Operation {
                id,
                purpose,
                phase,
                origin: Some(from.clone()),
                dest,
            },
            &mut self.loads,
        );
        out.push(CoordOutput::Send {
            to: from,
            msg: ToNode::RemoveWork {
                work,
                epoch,
                term: self.term,
                op: id,
            },
        });
    }

    /// Starts an operation that adds an unplaced `work` on `to`.
    fn start_add(&mut self, work: W, to: N, out: &mut Vec<CoordOutput<N, W>>) {
        let id = self.ops.next_id();
        let epoch = self.view.get(&to).map_or(0, |r| r.epoch);
        self.unplaced.remove(&work);
        self.ops.insert(
            work.clone(),
            Operation {
                id,
                purpose: Purpose::Place,
                phase: Phase::Adding {
                    to: to.clone(),
                    epoch,
                },
                origin: None,
                dest: Some(to.clone()),
            },
            &mut self.loads,
        );
        out.push(CoordOutput::Send {
            to,
            msg: ToNode::AddWork {
                work,
                epoch,
                term: self.term,
                op: id,
            },
        });
    }

    /// The removal half of a move is done: add the unit on its destination, chosen
    /// again if the planned one is no longer Alive and fresh.
    fn start_adding(&mut self, work: W, out: &mut Vec<CoordOutput<N, W>>) {
        let Some(op) = self.ops.get(&work) else {
            return;
        };
        let planned = op.dest.clone().filter(|d| self.is_destination(d));
        let origin = op.origin.clone();
        let Some(to) = planned.or_else(|| self.best_destination(origin.as_ref())) else {
            self.ops.remove(&work, &mut self.loads);
            self.requeue(work);
            return;
        };
        let epoch = self.view.get(&to).map_or(0, |r| r.epoch);
        let id = op.id;
        self.ops.update(
            &work,
            |op| {
                op.phase = Phase::Adding {
                    to: to.clone(),
                    epoch,
                };
                op.dest = Some(to.clone());
            },
            &mut self.loads,
        );
        out.push(CoordOutput::Send {
            to,
            msg: ToNode::AddWork {
                work,
                epoch,
                term: self.term,
                op: id,
            },
        });
    }

    // ----- timers ------------------------------------------------------------------

    fn send_bootstrap(&self, out: &mut Vec<CoordOutput<N, W>>) {
        for m in &self.awaiting {
            out.push(CoordOutput::Send {
                to: m.clone(),
                msg: ToNode::Bootstrap { term: self.term },
            });
        }
    }

    /// The resend timer: everything unacknowledged goes out again.
    fn resend(&mut self, out: &mut Vec<CoordOutput<N, W>>) {
        out.push(CoordOutput::Arm(CoordTimer::Resend));
        if !self.guards.on(Guard::Resend) {
            return;
        }
        self.send_bootstrap(out);
        for (w, op) in self.ops.iter() {
            let (to, msg) = match &op.phase {
                Phase::Removing { from, epoch } => (
                    from.clone(),
                    ToNode::RemoveWork {
                        work: w.clone(),
                        epoch: *epoch,
                        term: self.term,
                        op: op.id,
                    },
                ),
                Phase::Adding { to, epoch } => (
                    to.clone(),
                    ToNode::AddWork {
                        work: w.clone(),
                        epoch: *epoch,
                        term: self.term,
                        op: op.id,
                    },
                ),
            };
            out.push(CoordOutput::Send { to, msg });
        }
        if self.bootstrapped {
            self.drive_session(out, true);
        }
    }
}

#[cfg(test)]
mod tests;
