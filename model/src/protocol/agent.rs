//! The node agent: a node's own liveness, epoch and hosted work units (specs/protocol.md §4;
//! rule ids A1–A8 are defined there).

use crate::protocol::guards::{Guard, Guards};
use crate::protocol::ids::{Epoch, Key, OpId, Term, PROTOCOL_VERSION};
use crate::protocol::liveness::Liveness;
use crate::protocol::message::{ToCoordinator, ToNode, WorkState};
use std::collections::BTreeMap;

/// One input to the node agent. (Serde: the runtime's step trace, replayed by
/// `ebbtide trace check`.)
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AgentInput<N, W> {
    /// A message from the coordinator running on node `from`.
    Message { from: N, msg: ToNode<W> },
    /// The heartbeat timer fired.
    HeartbeatTimer,
    /// The election service says `leader` is coordinator for `term`: an event of this
    /// process's election watch, or this very process winning the election. Under
    /// [`Guard::ElectedTermsOnly`] (always on in the runtime), it is the only way a node
    /// with an election service comes to follow a newer term. A process that wins must
    /// feed its own win to its agent *before* it starts its [`Coordinator`]: otherwise a
    /// command of the deposed coordinator, still in flight, can drain the node that now
    /// coordinates (`specs/decisions.md`, "The winner learns its term when it wins").
    ///
    /// [`Coordinator`]: crate::protocol::Coordinator
    LeaderChanged { term: Term, leader: N },
    /// This node lost its membership lease: the coordinator may already have moved its
    /// work, so it fences itself (A6).
    LeaseLost,
    /// The process was asked to leave the cluster (SIGTERM): from now on it does not
    /// campaign, so leadership cannot come back to a node that is on its way out. Its
    /// shell then asks for its own drain through DrainNode, like any client.
    Leave,
}

/// One effect of the node agent.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum AgentOutput<N, W> {
    /// Send `msg` to the coordinator running on node `to`.
    Send { to: N, msg: ToCoordinator<W> },
    /// Start running a work unit (the workload's start hook).
    StartWork(W),
    /// Stop running a work unit (the workload's stop hook).
    StopWork(W),
    /// (Re)arm the periodic heartbeat timer.
    ArmHeartbeat,
    /// Persist the coordinator this node reports to (its term is the node's term floor):
    /// the next incarnation starts from it, so a deposed coordinator's commands stay
    /// fenced across restarts.
    PersistLeader(Leader<N>),
}

/// The coordinator a node reports to.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Leader<N> {
    pub term: Term,
    pub node: N,
}

/// What a node remembers of one work unit in this incarnation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
struct UnitRecord {
    running: bool,
    /// (term, op) of the last command applied to this unit.
    fence: (Term, OpId),
    /// What that command was acknowledged with.
    acked: WorkState,
}

/// A node's agent: owns the node's liveness and epoch and the work units it runs.
///
/// # Call contract
///
/// The agent performs no I/O: every effect is an [`AgentOutput`] appended to `out`, and
/// the shell (the runtime's agent task, the checker's node actor) carries it out. The
/// checker's exhaustive search holds for a shell that keeps these rules:
///
/// 1. **One incarnation, one agent.** Construct it with [`NodeAgent::new`]: an epoch
///    larger than every earlier one of this node, made durable before anything is
///    served, and the last [`Leader`] persisted by an earlier incarnation. Then call
///    [`NodeAgent::start`] once and apply its outputs, like those of any input.
/// 2. **One input at a time.** Feed [`NodeAgent::handle`] messages, the heartbeat timer
///    when it fires, the membership service's `LeaderChanged`/`LeaseLost`, and `Leave`
///    on a graceful shutdown. Getters (`liveness`, `leader`, `running`, `drained`,
///    `may_campaign`, ...) may be called between inputs; they never emit outputs.
/// 3. **Outputs in order.** Apply the outputs of a call in the order they were
///    appended, all of them before the next input. A crash part-way is allowed: what
///    was applied stays applied, the rest is lost, as messages the network loses.
/// 4. **`PersistLeader` first, durably.** [`AgentOutput::PersistLeader`] must be
///    durable (written and synced) before any output after it is applied: the sends
///    after it tell a coordinator that this node follows its term, and a restart must
///    not forget that term, the node's term floor, or a deposed coordinator's commands
///    would no longer be fenced. The agent always emits it before those sends.
/// 5. **A failed persist stops the node.** If `PersistLeader` cannot be made durable,
///    apply nothing more (no later output of that call, no further input) and end the
///    process: a crash, which the checker explores, and the next incarnation starts
///    from what is durable. Never log the failure and go on without the term floor.
/// 6. **Work hooks before their acknowledgement.** `StartWork`/`StopWork` must have
///    finished (the unit runs, or no longer runs) before the `Send` after them, which
///    acknowledges them, is applied.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeAgent<N, W> {
    epoch: Epoch,
    liveness: Liveness,
    leader: Option<Leader<N>>,
    units: BTreeMap<W, UnitRecord>,
    /// Asked to leave ([`AgentInput::Leave`]): never campaigns again.
    leaving: bool,
    /// Static membership: the one configured coordinator, whose bootstrap requests teach
    /// newer terms (there is no election service). `None`: an election service does.
    fixed_coordinator: Option<N>,
    guards: Guards,
}

impl<N: Key, W: Key> NodeAgent<N, W> {
    /// A new incarnation: `epoch` must be larger than every earlier epoch of this node,
    /// and `leader` is the last one persisted by an earlier incarnation, if any. It starts
    /// Alive and runs nothing.
    pub fn new(epoch: Epoch, leader: Option<Leader<N>>, guards: Guards) -> Self {
        NodeAgent {
            epoch,
            liveness: Liveness::Alive,
            leader,
            units: BTreeMap::new(),
            leaving: false,
            fixed_coordinator: None,
            guards,
        }
    }

    /// For static membership, where no election service exists: `node` is the one
    /// configured coordinator, and a newer term is accepted only from its bootstrap
    /// request (or from [`AgentInput::LeaderChanged`] naming it). Without this, the
    /// agent expects an election service: only [`AgentInput::LeaderChanged`] teaches a
    /// newer term, and every message of a term above the floor is ignored until then.
    pub fn with_fixed_coordinator(mut self, node: N) -> Self {
        self.fixed_coordinator = Some(node);
        self
    }

    /// The guards this agent runs with (all on in the runtime).
    pub fn guards(&self) -> Guards {
        self.guards
    }

    /// The configured coordinator under static membership, if any.
    pub fn fixed_coordinator(&self) -> Option<&N> {
        self.fixed_coordinator.as_ref()
    }

    /// This incarnation's epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The node's liveness.
    pub fn liveness(&self) -> Liveness {
        self.liveness
    }

    /// The coordinator this node reports to, if it knows one.
    pub fn leader(&self) -> Option<&Leader<N>> {
        self.leader.as_ref()
    }

    /// The newest coordinator term this node has accepted (0 if none): commands of an
    /// older term are ignored.
    pub fn term_floor(&self) -> Term {
        self.leader.as_ref().map_or(0, |l| l.term)
    }

    /// (term, op) of the last command applied to `work` in this incarnation, if any.
    pub fn fence(&self, work: &W) -> Option<(Term, OpId)> {
        self.units.get(work).map(|u| u.fence)
    }

    /// The work units running here, in order.
    pub fn running(&self) -> impl Iterator<Item = &W> + '_ {
        self.units.iter().filter(|(_, u)| u.running).map(|(w, _)| w)
    }

    /// Whether `work` runs here.
    pub fn runs(&self, work: &W) -> bool {
        self.units.get(work).is_some_and(|u| u.running)
    }

    /// How many work units run here.
    pub fn running_count(&self) -> usize {
        self.units.values().filter(|u| u.running).count()
    }

    /// Every unit this agent remembers, with its fence: the (term, op) of the last
    /// command applied to it.
    pub fn fences(&self) -> impl Iterator<Item = (&W, (Term, OpId))> + '_ {
        self.units.iter().map(|(w, u)| (w, u.fence))
    }

    /// Renames operation ids, for a model checker that renumbers them without changing
    /// their order (the protocol only compares the ids of one unit's commands).
    /// `rename(unit, term, op)` must preserve the order of each unit's ids within each
    /// term.
    pub fn rename_ops(&mut self, rename: &dyn Fn(&W, Term, OpId) -> OpId) {
        for (w, u) in self.units.iter_mut() {
            u.fence.1 = rename(w, u.fence.0, u.fence.1);
        }
    }

    /// Whether this node may campaign to become coordinator: only while Alive, and not
    /// once it was asked to leave.
    pub fn may_campaign(&self) -> bool {
        !self.leaving
            && (!self.guards.on(Guard::CampaignOnlyAlive) || self.liveness == Liveness::Alive)
    }

    /// Whether this process was asked to leave the cluster.
    pub fn leaving(&self) -> bool {
        self.leaving
    }

    /// Whether the process may exit now: it is Stopping and runs nothing.
    pub fn drained(&self) -> bool {
        self.liveness == Liveness::Stopping && self.running_count() == 0
    }

    /// Call once when the incarnation starts: arms the heartbeat and reports at once if a
    /// coordinator is known.
    pub fn start(&mut self, out: &mut Vec<AgentOutput<N, W>>) {
        out.push(AgentOutput::ArmHeartbeat);
        self.heartbeat(out);
    }

    /// Handles one input.
    pub fn handle(&mut self, input: AgentInput<N, W>, out: &mut Vec<AgentOutput<N, W>>) {
        match input {
            AgentInput::Message { from, msg } => self.on_message(from, msg, out),
            AgentInput::HeartbeatTimer => self.on_heartbeat_timer(out),
            AgentInput::LeaderChanged { term, leader } => {
                let fixed_elsewhere = self
                    .fixed_coordinator
                    .as_ref()
                    .is_some_and(|f| *f != leader);
                if term > self.term_floor() && !fixed_elsewhere {
                    self.learn_leader(term, leader, out);
                    self.heartbeat(out);
                }
            }
            AgentInput::LeaseLost => self.fence_self(out),
            AgentInput::Leave => self.leaving = true,
        }
    }

    fn on_message(&mut self, from: N, msg: ToNode<W>, out: &mut Vec<AgentOutput<N, W>>) {
        match msg {
            ToNode::Bootstrap { term } => {
                if !self.current_term(term) {
                    return;
                }
                if term > self.term_floor() {
                    // A term nobody told this node about: with an election service, a
                    // node follows a newer coordinator only once its watch shows that
                    // term (the coordinator asks again after that); with a fixed
                    // coordinator, only that node's bootstrap teaches a newer term.
                    let trusted = match &self.fixed_coordinator {
                        Some(f) => *f == from,
                        None => false,
                    };
                    if !trusted && self.guards.on(Guard::ElectedTermsOnly) {
                        return;
                    }
                    self.learn_leader(term, from.clone(), out);
                }
                let msg = ToCoordinator::BootstrapResponse {
                    term,
                    epoch: self.epoch,
                    liveness: self.liveness,
                    work: self.running().cloned().collect(),
                    version: PROTOCOL_VERSION,
                };
                out.push(AgentOutput::Send { to: from, msg });
            }
            ToNode::SetLiveness {
                target,
                epoch,
                term,
            } => {
                // A1: a coordinator older than the current one is ignored (and, with
                // elected-terms-only, a newer one this node does not follow yet).
                if !self.current_term(term) || !self.followed_term(term) {
                    return;
                }
                // A2: a command for another incarnation changes nothing, but is answered
                // with our real epoch. A3: otherwise attempt the single-step store.
                let names_us = epoch == self.epoch || !self.guards.on(Guard::EpochFencing);
                if names_us && self.liveness.store(target, self.guards) {
                    self.heartbeat(out);
                }
                let msg = ToCoordinator::SetLivenessResponse {
                    epoch: self.epoch,
                    liveness: self.liveness,
                };
                out.push(AgentOutput::Send { to: from, msg });
            }
            ToNode::AddWork {
                work,
                epoch,
                term,
                op,
            } => self.on_work_command(from, work, epoch, term, op, true, out),
            ToNode::RemoveWork {
                work,
                epoch,
                term,
                op,
            } => self.on_work_command(from, work, epoch, term, op, false, out),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_work_command(
        &mut self,
        from: N,
        work: W,
        epoch: Epoch,
        term: Term,
        op: OpId,
        add: bool,
        out: &mut Vec<AgentOutput<N, W>>,
    ) {
        if !self.current_term(term) || !self.followed_term(term) {
            return;
        }
        let fenced = self.guards.on(Guard::WorkFencing);
        if fenced && epoch != self.epoch {
            // Meant for another incarnation of this node: that one's work is gone.
            return;
        }
        let fence = (term, op);
        if let Some(unit) = self.units.get(&work) {
            if fenced && fence < unit.fence {
                return; // an older command, overtaken by a newer one
            }
            if fenced && fence == unit.fence {
                let status = unit.acked;
                self.ack(from, work, term, op, status, out);
                return;
            }
        }
        let was_running = self.runs(&work);
        let status = if !add {
            if was_running {
                out.push(AgentOutput::StopWork(work.clone()));
            }
            WorkState::Stopped
        } else if was_running {
            WorkState::Running
        } else if self.liveness == Liveness::Stopping && self.guards.on(Guard::RejectWhileStopping)
        {
            // A4: a Stopping node starts no new work unit.
            WorkState::Rejected
        } else {
            out.push(AgentOutput::StartWork(work.clone()));
            WorkState::Running
        };
        let running = status == WorkState::Running;
        self.units.insert(
            work.clone(),
            UnitRecord {
                running,
                fence,
                acked: status,
            },
        );
        self.ack(from, work, term, op, status, out);
    }

    fn ack(
        &self,
        to: N,
        work: W,
        term: Term,
        op: OpId,
        status: WorkState,
        out: &mut Vec<AgentOutput<N, W>>,
    ) {
        let msg = ToCoordinator::WorkStatus {
            work,
            epoch: self.epoch,
            term,
            op,
            status,
        };
        out.push(AgentOutput::Send { to, msg });
    }

    /// Whether a message of coordinator term `term` may be acted on: not when an older
    /// term than the one this node follows (A1). Only a bootstrap request or the
    /// election service make a node follow a newer coordinator.
    fn current_term(&self, term: Term) -> bool {
        term >= self.term_floor() || !self.guards.on(Guard::TermFencing)
    }

    /// Whether a command of term `term` comes from a coordinator this node follows: not
    /// when its term is above the floor (elected-terms-only). A newer coordinator's
    /// commands wait until the node has learnt its term; the coordinator resends them.
    fn followed_term(&self, term: Term) -> bool {
        term <= self.term_floor() || !self.guards.on(Guard::ElectedTermsOnly)
    }

    fn learn_leader(&mut self, term: Term, node: N, out: &mut Vec<AgentOutput<N, W>>) {
        let leader = Leader { term, node };
        self.leader = Some(leader.clone());
        out.push(AgentOutput::PersistLeader(leader));
    }

    /// A6: step forward to Stopping locally and stop every work unit.
    fn fence_self(&mut self, out: &mut Vec<AgentOutput<N, W>>) {
        let mut changed = false;
        while let Some(next) = self.liveness.successor() {
            changed |= self.liveness.store(next, self.guards);
        }
        for (work, unit) in self.units.iter_mut() {
            if unit.running {
                unit.running = false;
                unit.acked = WorkState::Stopped;
                out.push(AgentOutput::StopWork(work.clone()));
                changed = true;
            }
        }
        if changed {
            self.heartbeat(out);
        }
    }

    /// The heartbeat timer fired: report to the leader, and arm the timer again. The
    /// same as [`Self::handle`] of [`AgentInput::HeartbeatTimer`], for a caller that has
    /// the agent only by reference: it changes nothing in the agent, so the model
    /// checker, which fires a heartbeat in nearly every state it visits, need not copy
    /// the agent to find out that it did not.
    pub fn on_heartbeat_timer(&self, out: &mut Vec<AgentOutput<N, W>>) {
        self.heartbeat(out);
        out.push(AgentOutput::ArmHeartbeat);
    }

    fn heartbeat(&self, out: &mut Vec<AgentOutput<N, W>>) {
        if let Some(leader) = &self.leader {
            out.push(AgentOutput::Send {
                to: leader.node.clone(),
                msg: ToCoordinator::Heartbeat {
                    epoch: self.epoch,
                    liveness: self.liveness,
                },
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type A = NodeAgent<u8, u8>;
    type Out = Vec<AgentOutput<u8, u8>>;

    /// The coordinator this agent follows (term [`TERM`]).
    const COORD: u8 = 9;
    /// Another node, a newer coordinator in some tests.
    const OTHER: u8 = 8;
    const TERM: Term = 2;
    const EPOCH: Epoch = 5;

    const ALIVE: Liveness = Liveness::Alive;
    const DRAINING: Liveness = Liveness::Draining;
    const STOPPING: Liveness = Liveness::Stopping;

    /// The guards that the agent checks.
    const AGENT_GUARDS: [Guard; 7] = [
        Guard::SingleStep,
        Guard::TermFencing,
        Guard::EpochFencing,
        Guard::WorkFencing,
        Guard::RejectWhileStopping,
        Guard::CampaignOnlyAlive,
        Guard::ElectedTermsOnly,
    ];

    /// Incarnation [`EPOCH`] following [`COORD`] at [`TERM`], Alive, running nothing.
    fn agent_with(guards: Guards) -> A {
        NodeAgent::new(
            EPOCH,
            Some(Leader {
                term: TERM,
                node: COORD,
            }),
            guards,
        )
    }

    fn agent() -> A {
        agent_with(Guards::default())
    }

    fn step(a: &mut A, input: AgentInput<u8, u8>) -> Out {
        let mut out = Vec::new();
        a.handle(input, &mut out);
        out
    }

    /// A message from `from`.
    fn msg(a: &mut A, from: u8, msg: ToNode<u8>) -> Out {
        step(a, AgentInput::Message { from, msg })
    }

    fn set(target: Liveness, epoch: Epoch, term: Term) -> ToNode<u8> {
        ToNode::SetLiveness {
            target,
            epoch,
            term,
        }
    }

    fn add(work: u8, epoch: Epoch, term: Term, op: OpId) -> ToNode<u8> {
        ToNode::AddWork {
            work,
            epoch,
            term,
            op,
        }
    }

    fn remove(work: u8, epoch: Epoch, term: Term, op: OpId) -> ToNode<u8> {
        ToNode::RemoveWork {
            work,
            epoch,
            term,
            op,
        }
    }

    fn heartbeat(to: u8, epoch: Epoch, liveness: Liveness) -> AgentOutput<u8, u8> {
        AgentOutput::Send {
            to,
            msg: ToCoordinator::Heartbeat { epoch, liveness },
        }
    }

    fn response(to: u8, epoch: Epoch, liveness: Liveness) -> AgentOutput<u8, u8> {
        AgentOutput::Send {
            to,
            msg: ToCoordinator::SetLivenessResponse { epoch, liveness },
        }
    }

    fn status(to: u8, work: u8, term: Term, op: OpId, status: WorkState) -> AgentOutput<u8, u8> {
        AgentOutput::Send {
            to,
            msg: ToCoordinator::WorkStatus {
                work,
                epoch: EPOCH,
                term,
                op,
                status,
            },
        }
    }

    /// Steps the agent forward to `liveness` through its coordinator.
    fn at(mut a: A, liveness: Liveness) -> A {
        while a.liveness() < liveness {
            let next = a.liveness().successor().unwrap();
            msg(&mut a, COORD, set(next, EPOCH, TERM));
        }
        assert_eq!(a.liveness(), liveness);
        a
    }

    /// An agent running `units`, started by ops 1, 2, ... of [`TERM`].
    fn running(liveness: Liveness, units: &[u8]) -> A {
        let mut a = agent();
        for (i, w) in units.iter().enumerate() {
            msg(&mut a, COORD, add(*w, EPOCH, TERM, i as OpId + 1));
        }
        at(a, liveness)
    }

    /// Everything observable of an agent except its guards.
    type Snapshot = (
        Epoch,
        Liveness,
        Option<Leader<u8>>,
        Vec<u8>,
        Vec<(u8, (Term, OpId))>,
    );

    fn snapshot(a: &A) -> Snapshot {
        (
            a.epoch(),
            a.liveness(),
            a.leader().cloned(),
            a.running().copied().collect(),
            a.fences().map(|(w, f)| (*w, f)).collect(),
        )
    }

    // ----- A1: older term ----------------------------------------------------------

    #[test]
    fn a1_set_liveness_from_an_older_term_is_ignored() {
        let mut a = agent();
        let before = snapshot(&a);
        assert_eq!(msg(&mut a, COORD, set(DRAINING, EPOCH, TERM - 1)), vec![]);
        assert_eq!(snapshot(&a), before);
        // Wrong epoch too: still no answer (A1 comes before A2).
        assert_eq!(
            msg(&mut a, COORD, set(DRAINING, EPOCH - 1, TERM - 1)),
            vec![]
        );
        assert_eq!(snapshot(&a), before);
    }

    #[test]
    fn a1_the_current_term_is_obeyed_a_newer_one_only_once_learnt() {
        let mut a = agent();
        assert_eq!(
            msg(&mut a, COORD, set(DRAINING, EPOCH, TERM)),
            vec![
                heartbeat(COORD, EPOCH, DRAINING),
                response(COORD, EPOCH, DRAINING)
            ]
        );
        // A newer term that the election has not shown this node: ignored, unanswered.
        let before = snapshot(&a);
        assert_eq!(msg(&mut a, OTHER, set(STOPPING, EPOCH, TERM + 1)), vec![]);
        assert_eq!(snapshot(&a), before);
        // Once the watch shows it, the same command is obeyed.
        step(
            &mut a,
            AgentInput::LeaderChanged {
                term: TERM + 1,
                leader: OTHER,
            },
        );
        assert_eq!(
            msg(&mut a, OTHER, set(STOPPING, EPOCH, TERM + 1)),
            vec![
                heartbeat(OTHER, EPOCH, STOPPING),
                response(OTHER, EPOCH, STOPPING)
            ]
        );
    }

    #[test]
    fn a1_without_elected_terms_only_a_newer_term_is_obeyed() {
        let mut a = agent_with(Guards::default().without(Guard::ElectedTermsOnly));
        assert_eq!(
            msg(&mut a, OTHER, set(DRAINING, EPOCH, TERM + 1)),
            vec![
                heartbeat(COORD, EPOCH, DRAINING),
                response(OTHER, EPOCH, DRAINING)
            ]
        );
    }

    // ----- A2: wrong epoch ---------------------------------------------------------

    #[test]
    fn a2_set_liveness_for_another_epoch_is_answered_with_the_real_epoch() {
        for wrong in [0, EPOCH - 1, EPOCH + 1] {
            let mut a = agent();
            let before = snapshot(&a);
            assert_eq!(
                msg(&mut a, COORD, set(DRAINING, wrong, TERM)),
                vec![response(COORD, EPOCH, ALIVE)],
                "epoch {wrong}"
            );
            assert_eq!(snapshot(&a), before);
        }
        let mut a = at(agent(), DRAINING);
        assert_eq!(
            msg(&mut a, COORD, set(STOPPING, EPOCH - 1, TERM)),
            vec![response(COORD, EPOCH, DRAINING)]
        );
        assert_eq!(a.liveness(), DRAINING);
    }

    // ----- A3: single-step store ---------------------------------------------------

    #[test]
    fn a3_a_single_step_heartbeats_at_once_and_answers() {
        let mut a = agent();
        assert_eq!(
            msg(&mut a, COORD, set(DRAINING, EPOCH, TERM)),
            vec![
                heartbeat(COORD, EPOCH, DRAINING),
                response(COORD, EPOCH, DRAINING)
            ]
        );
        assert_eq!(a.liveness(), DRAINING);
        assert_eq!(
            msg(&mut a, COORD, set(STOPPING, EPOCH, TERM)),
            vec![
                heartbeat(COORD, EPOCH, STOPPING),
                response(COORD, EPOCH, STOPPING)
            ]
        );
        assert_eq!(a.liveness(), STOPPING);
    }

    #[test]
    fn a3_backwards_skipping_and_same_requests_change_nothing_but_are_answered() {
        for from in Liveness::ALL {
            for target in Liveness::ALL {
                if from.successor() == Some(target) {
                    continue;
                }
                let mut a = at(agent(), from);
                let before = snapshot(&a);
                assert_eq!(
                    msg(&mut a, COORD, set(target, EPOCH, TERM)),
                    vec![response(COORD, EPOCH, from)],
                    "{from} -> {target}"
                );
                assert_eq!(snapshot(&a), before, "{from} -> {target}");
            }
        }
    }

    // ----- A4: work commands -------------------------------------------------------

    #[test]
    fn a4_add_work_is_accepted_while_alive_and_draining() {
        let mut a = agent();
        assert_eq!(
            msg(&mut a, COORD, add(7, EPOCH, TERM, 1)),
            vec![
                AgentOutput::StartWork(7),
                status(COORD, 7, TERM, 1, WorkState::Running)
            ]
        );
        let mut a = at(a, DRAINING);
        assert_eq!(
            msg(&mut a, COORD, add(8, EPOCH, TERM, 2)),
            vec![
                AgentOutput::StartWork(8),
                status(COORD, 8, TERM, 2, WorkState::Running)
            ]
        );
        assert_eq!(a.running().copied().collect::<Vec<_>>(), vec![7, 8]);
        assert_eq!(a.fence(&8), Some((TERM, 2)));
    }

    #[test]
    fn a4_add_work_is_rejected_while_stopping() {
        let mut a = at(agent(), STOPPING);
        assert_eq!(
            msg(&mut a, COORD, add(7, EPOCH, TERM, 1)),
            vec![status(COORD, 7, TERM, 1, WorkState::Rejected)]
        );
        assert!(!a.runs(&7));
        assert_eq!(a.fence(&7), Some((TERM, 1)));
        assert!(a.drained());
    }

    #[test]
    fn a4_add_work_of_a_running_unit_is_acknowledged_without_restarting_it() {
        let mut a = running(STOPPING, &[7]);
        assert_eq!(
            msg(&mut a, COORD, add(7, EPOCH, TERM, 5)),
            vec![status(COORD, 7, TERM, 5, WorkState::Running)]
        );
        assert!(a.runs(&7));
    }

    #[test]
    fn a4_remove_work_is_always_honoured() {
        for liveness in Liveness::ALL {
            let mut a = running(liveness, &[7]);
            assert_eq!(
                msg(&mut a, COORD, remove(7, EPOCH, TERM, 5)),
                vec![
                    AgentOutput::StopWork(7),
                    status(COORD, 7, TERM, 5, WorkState::Stopped)
                ],
                "{liveness}"
            );
            assert!(!a.runs(&7));
            // A unit that does not run here is acknowledged as stopped.
            assert_eq!(
                msg(&mut a, COORD, remove(6, EPOCH, TERM, 6)),
                vec![status(COORD, 6, TERM, 6, WorkState::Stopped)],
                "{liveness}"
            );
        }
    }

    #[test]
    fn a4_a_duplicate_of_the_last_command_is_acknowledged_again() {
        let mut a = agent();
        msg(&mut a, COORD, add(7, EPOCH, TERM, 1));
        let before = snapshot(&a);
        assert_eq!(
            msg(&mut a, COORD, add(7, EPOCH, TERM, 1)),
            vec![status(COORD, 7, TERM, 1, WorkState::Running)]
        );
        assert_eq!(snapshot(&a), before);

        msg(&mut a, COORD, remove(7, EPOCH, TERM, 2));
        assert_eq!(
            msg(&mut a, COORD, remove(7, EPOCH, TERM, 2)),
            vec![status(COORD, 7, TERM, 2, WorkState::Stopped)]
        );

        // A rejection is re-acknowledged as one, with the same fence.
        let mut a = at(a, STOPPING);
        msg(&mut a, COORD, add(6, EPOCH, TERM, 3));
        assert_eq!(
            msg(&mut a, COORD, add(6, EPOCH, TERM, 3)),
            vec![status(COORD, 6, TERM, 3, WorkState::Rejected)]
        );
        // The acknowledgement goes to whoever asked.
        assert_eq!(
            msg(&mut a, OTHER, add(6, EPOCH, TERM, 3)),
            vec![status(OTHER, 6, TERM, 3, WorkState::Rejected)]
        );
    }

    #[test]
    fn a4_an_older_command_for_the_same_unit_is_ignored() {
        let mut a = agent();
        msg(&mut a, COORD, add(7, EPOCH, TERM, 5));
        let before = snapshot(&a);
        assert_eq!(msg(&mut a, COORD, remove(7, EPOCH, TERM, 4)), vec![]);
        assert_eq!(snapshot(&a), before);

        // (term, op) is compared by term first: op 9 of an older term is older. (A
        // command of a newer term than the floor applies only without elected-terms-only;
        // with it, the floor rises first and term fencing ignores the older command.)
        let mut a = agent_with(Guards::default().without(Guard::ElectedTermsOnly));
        msg(&mut a, COORD, add(7, EPOCH, TERM, 5));
        msg(&mut a, OTHER, remove(7, EPOCH, TERM + 1, 1));
        assert!(!a.runs(&7));
        let before = snapshot(&a);
        assert_eq!(msg(&mut a, COORD, add(7, EPOCH, TERM, 9)), vec![]);
        assert_eq!(snapshot(&a), before);
        assert_eq!(a.fence(&7), Some((TERM + 1, 1)));

        // Fences are per unit: another unit is not affected.
        assert_eq!(
            msg(&mut a, COORD, add(6, EPOCH, TERM, 1)),
            vec![
                AgentOutput::StartWork(6),
                status(COORD, 6, TERM, 1, WorkState::Running)
            ]
        );
    }

    #[test]
    fn a4_a_work_command_for_another_epoch_is_ignored() {
        let mut a = running(ALIVE, &[7]);
        let before = snapshot(&a);
        assert_eq!(msg(&mut a, COORD, add(6, EPOCH - 1, TERM, 9)), vec![]);
        assert_eq!(msg(&mut a, COORD, remove(7, EPOCH + 1, TERM, 9)), vec![]);
        assert_eq!(msg(&mut a, COORD, remove(7, 0, TERM, 9)), vec![]);
        assert_eq!(snapshot(&a), before);
    }

    #[test]
    fn a4_a_work_command_from_an_older_term_is_ignored() {
        let mut a = running(ALIVE, &[7]);
        let before = snapshot(&a);
        assert_eq!(msg(&mut a, COORD, add(6, EPOCH, TERM - 1, 9)), vec![]);
        assert_eq!(msg(&mut a, COORD, remove(7, EPOCH, TERM - 1, 9)), vec![]);
        assert_eq!(snapshot(&a), before);
    }

    // ----- A5: heartbeats ----------------------------------------------------------

    #[test]
    fn a5_the_heartbeat_timer_reports_to_the_leader_and_rearms() {
        let mut a = at(agent(), DRAINING);
        assert_eq!(
            step(&mut a, AgentInput::HeartbeatTimer),
            vec![heartbeat(COORD, EPOCH, DRAINING), AgentOutput::ArmHeartbeat]
        );
    }

    #[test]
    fn a5_without_a_known_leader_nothing_is_sent() {
        let mut a: A = NodeAgent::new(EPOCH, None, Guards::default());
        assert_eq!(
            step(&mut a, AgentInput::HeartbeatTimer),
            vec![AgentOutput::ArmHeartbeat]
        );
        let mut out = Vec::new();
        a.start(&mut out);
        assert_eq!(out, vec![AgentOutput::ArmHeartbeat]);
        // With no leader known, every term is newer than the floor: ignored.
        assert_eq!(msg(&mut a, COORD, set(DRAINING, EPOCH, 1)), vec![]);
        assert_eq!(a.leader(), None);
        // (Without elected-terms-only, it is applied and answered to whoever asked.)
        let mut a: A = NodeAgent::new(
            EPOCH,
            None,
            Guards::default().without(Guard::ElectedTermsOnly),
        );
        assert_eq!(
            msg(&mut a, COORD, set(DRAINING, EPOCH, 1)),
            vec![response(COORD, EPOCH, DRAINING)]
        );
        assert_eq!(a.leader(), None);
    }

    #[test]
    fn a5_start_arms_the_timer_and_reports_at_once() {
        let mut a = agent();
        let mut out = Vec::new();
        a.start(&mut out);
        assert_eq!(
            out,
            vec![AgentOutput::ArmHeartbeat, heartbeat(COORD, EPOCH, ALIVE)]
        );
    }

    // ----- A6: lease lost ----------------------------------------------------------

    #[test]
    fn a6_lease_lost_steps_to_stopping_stops_everything_and_heartbeats() {
        for liveness in [ALIVE, DRAINING] {
            let mut a = running(liveness, &[3, 1, 2]);
            msg(&mut a, COORD, remove(2, EPOCH, TERM, 9));
            assert_eq!(
                step(&mut a, AgentInput::LeaseLost),
                vec![
                    AgentOutput::StopWork(1),
                    AgentOutput::StopWork(3),
                    heartbeat(COORD, EPOCH, STOPPING),
                ],
                "{liveness}"
            );
            assert_eq!(a.liveness(), STOPPING);
            assert_eq!(a.running_count(), 0);
            assert!(a.drained());
            assert!(!a.may_campaign());
            // It is Stopping now: new work is rejected.
            assert_eq!(
                msg(&mut a, COORD, add(4, EPOCH, TERM, 10)),
                vec![status(COORD, 4, TERM, 10, WorkState::Rejected)]
            );
        }
    }

    #[test]
    fn a6_lease_lost_when_already_stopped_and_empty_changes_nothing() {
        let mut a = at(agent(), STOPPING);
        let before = snapshot(&a);
        assert_eq!(step(&mut a, AgentInput::LeaseLost), vec![]);
        assert_eq!(snapshot(&a), before);
    }

    #[test]
    fn a6_lease_lost_with_units_only_stops_them() {
        // Already Stopping with a unit still running: only the unit changes.
        let mut a = running(STOPPING, &[1]);
        assert_eq!(
            step(&mut a, AgentInput::LeaseLost),
            vec![AgentOutput::StopWork(1), heartbeat(COORD, EPOCH, STOPPING)]
        );
        assert!(a.drained());
    }

    // ----- A7, A8: bootstrap, leader, campaigning ----------------------------------

    #[test]
    fn bootstrap_is_answered_with_epoch_liveness_sorted_running_units_and_version() {
        let mut a = running(DRAINING, &[3, 1, 4, 2]);
        msg(&mut a, COORD, remove(4, EPOCH, TERM, 10));
        assert_eq!(
            msg(&mut a, COORD, ToNode::Bootstrap { term: TERM }),
            vec![AgentOutput::Send {
                to: COORD,
                msg: ToCoordinator::BootstrapResponse {
                    term: TERM,
                    epoch: EPOCH,
                    liveness: DRAINING,
                    work: vec![1, 2, 3],
                    version: PROTOCOL_VERSION,
                },
            }]
        );
    }

    #[test]
    fn bootstrap_of_a_newer_term_is_ignored_until_the_election_shows_it() {
        let mut a = running(ALIVE, &[1]);
        let before = snapshot(&a);
        // A stray term, however large: ignored, unanswered, and not persisted.
        for term in [TERM + 1, u64::MAX] {
            assert_eq!(msg(&mut a, OTHER, ToNode::Bootstrap { term }), vec![]);
            assert_eq!(snapshot(&a), before);
            assert_eq!(a.term_floor(), TERM);
        }
        // The election shows TERM + 1: the coordinator's next bootstrap is answered.
        step(
            &mut a,
            AgentInput::LeaderChanged {
                term: TERM + 1,
                leader: OTHER,
            },
        );
        assert_eq!(
            msg(&mut a, OTHER, ToNode::Bootstrap { term: TERM + 1 }),
            vec![AgentOutput::Send {
                to: OTHER,
                msg: ToCoordinator::BootstrapResponse {
                    term: TERM + 1,
                    epoch: EPOCH,
                    liveness: ALIVE,
                    work: vec![1],
                    version: PROTOCOL_VERSION,
                },
            }]
        );
    }

    #[test]
    fn fixed_coordinator_teaches_newer_terms_by_its_bootstrap_only() {
        let mut a = running(ALIVE, &[1]).with_fixed_coordinator(OTHER);
        assert_eq!(a.fixed_coordinator(), Some(&OTHER));
        let before = snapshot(&a);
        // Another node's bootstrap of a newer term, or a watch event naming another
        // node, teaches nothing.
        assert_eq!(msg(&mut a, 3, ToNode::Bootstrap { term: TERM + 5 }), vec![]);
        assert_eq!(
            step(
                &mut a,
                AgentInput::LeaderChanged {
                    term: TERM + 5,
                    leader: 3
                }
            ),
            vec![]
        );
        // Nor does a command of a newer term, even from the configured node.
        assert_eq!(msg(&mut a, OTHER, set(DRAINING, EPOCH, TERM + 1)), vec![]);
        assert_eq!(snapshot(&a), before);
        // The configured node's bootstrap of a newer term does.
        let leader = Leader {
            term: TERM + 1,
            node: OTHER,
        };
        assert_eq!(
            msg(&mut a, OTHER, ToNode::Bootstrap { term: TERM + 1 }),
            vec![
                AgentOutput::PersistLeader(leader.clone()),
                AgentOutput::Send {
                    to: OTHER,
                    msg: ToCoordinator::BootstrapResponse {
                        term: TERM + 1,
                        epoch: EPOCH,
                        liveness: ALIVE,
                        work: vec![1],
                        version: PROTOCOL_VERSION,
                    },
                },
            ]
        );
        assert_eq!(a.leader(), Some(&leader));
        // Its commands of that term are obeyed now; older terms stay fenced.
        assert_eq!(
            msg(&mut a, OTHER, set(DRAINING, EPOCH, TERM + 1)),
            vec![
                heartbeat(OTHER, EPOCH, DRAINING),
                response(OTHER, EPOCH, DRAINING)
            ]
        );
        assert_eq!(msg(&mut a, COORD, set(STOPPING, EPOCH, TERM)), vec![]);
    }

    #[test]
    fn without_elected_terms_only_any_bootstrap_of_a_newer_term_teaches_the_leader() {
        let mut a = running(ALIVE, &[1]);
        a.guards = a.guards.without(Guard::ElectedTermsOnly);
        let leader = Leader {
            term: TERM + 1,
            node: OTHER,
        };
        assert_eq!(
            msg(&mut a, OTHER, ToNode::Bootstrap { term: TERM + 1 }),
            vec![
                AgentOutput::PersistLeader(leader.clone()),
                AgentOutput::Send {
                    to: OTHER,
                    msg: ToCoordinator::BootstrapResponse {
                        term: TERM + 1,
                        epoch: EPOCH,
                        liveness: ALIVE,
                        work: vec![1],
                        version: PROTOCOL_VERSION,
                    },
                },
            ]
        );
        assert_eq!(a.leader(), Some(&leader));
        assert_eq!(a.term_floor(), TERM + 1);
        // Heartbeats now go to the new leader.
        assert_eq!(
            step(&mut a, AgentInput::HeartbeatTimer),
            vec![heartbeat(OTHER, EPOCH, ALIVE), AgentOutput::ArmHeartbeat]
        );
    }

    #[test]
    fn bootstrap_of_the_same_term_answers_without_changing_the_leader() {
        let mut a = agent();
        let out = msg(&mut a, OTHER, ToNode::Bootstrap { term: TERM });
        assert_eq!(
            out,
            vec![AgentOutput::Send {
                to: OTHER,
                msg: ToCoordinator::BootstrapResponse {
                    term: TERM,
                    epoch: EPOCH,
                    liveness: ALIVE,
                    work: vec![],
                    version: PROTOCOL_VERSION,
                },
            }]
        );
        assert_eq!(a.leader().map(|l| (l.term, l.node)), Some((TERM, COORD)));
    }

    #[test]
    fn bootstrap_of_an_older_term_is_ignored() {
        let mut a = agent();
        let before = snapshot(&a);
        assert_eq!(
            msg(&mut a, OTHER, ToNode::Bootstrap { term: TERM - 1 }),
            vec![]
        );
        assert_eq!(snapshot(&a), before);
    }

    #[test]
    fn leader_changed_is_learnt_only_for_a_newer_term() {
        let mut a = at(agent(), DRAINING);
        let leader = Leader {
            term: TERM + 1,
            node: OTHER,
        };
        assert_eq!(
            step(
                &mut a,
                AgentInput::LeaderChanged {
                    term: TERM + 1,
                    leader: OTHER,
                }
            ),
            vec![
                AgentOutput::PersistLeader(leader.clone()),
                heartbeat(OTHER, EPOCH, DRAINING),
            ]
        );
        assert_eq!(a.leader(), Some(&leader));
        for (term, node) in [(TERM + 1, COORD), (TERM, COORD), (1, 3)] {
            let before = snapshot(&a);
            assert_eq!(
                step(&mut a, AgentInput::LeaderChanged { term, leader: node }),
                vec![],
                "term {term}"
            );
            assert_eq!(snapshot(&a), before);
        }
    }

    #[test]
    fn leader_changed_teaches_a_node_without_a_leader() {
        let mut a: A = NodeAgent::new(EPOCH, None, Guards::default());
        assert_eq!(a.term_floor(), 0);
        assert_eq!(
            step(
                &mut a,
                AgentInput::LeaderChanged {
                    term: 1,
                    leader: COORD
                }
            ),
            vec![
                AgentOutput::PersistLeader(Leader {
                    term: 1,
                    node: COORD
                }),
                heartbeat(COORD, EPOCH, ALIVE),
            ]
        );
    }

    #[test]
    fn commands_do_not_change_the_leader() {
        let mut a = agent_with(Guards::default().without(Guard::ElectedTermsOnly));
        let leader = a.leader().cloned();
        // A newer-term liveness command is obeyed, answered to its sender, but the
        // heartbeat still goes to the leader and nothing is persisted.
        assert_eq!(
            msg(&mut a, OTHER, set(DRAINING, EPOCH, TERM + 1)),
            vec![
                heartbeat(COORD, EPOCH, DRAINING),
                response(OTHER, EPOCH, DRAINING)
            ]
        );
        assert_eq!(
            msg(&mut a, OTHER, add(7, EPOCH, TERM + 1, 1)),
            vec![
                AgentOutput::StartWork(7),
                status(OTHER, 7, TERM + 1, 1, WorkState::Running)
            ]
        );
        assert_eq!(
            msg(&mut a, OTHER, remove(7, EPOCH, TERM + 1, 2)),
            vec![
                AgentOutput::StopWork(7),
                status(OTHER, 7, TERM + 1, 2, WorkState::Stopped)
            ]
        );
        assert_eq!(a.leader().cloned(), leader);
        assert_eq!(a.term_floor(), TERM);
    }

    #[test]
    fn may_campaign_only_while_alive() {
        assert!(agent().may_campaign());
        assert!(!at(agent(), DRAINING).may_campaign());
        assert!(!at(agent(), STOPPING).may_campaign());
    }

    #[test]
    fn a_new_incarnation_starts_alive_running_nothing() {
        let leader = Leader {
            term: 4,
            node: COORD,
        };
        let a: A = NodeAgent::new(7, Some(leader.clone()), Guards::default());
        assert_eq!(snapshot(&a), (7, ALIVE, Some(leader), vec![], vec![]));
        assert_eq!(a.term_floor(), 4);
        assert!(!a.drained());
    }

    // ----- guards ------------------------------------------------------------------

    #[test]
    fn without_single_step_skips_and_backward_steps_are_stored() {
        let g = Guards::default().without(Guard::SingleStep);
        let mut a = agent_with(g);
        assert_eq!(
            msg(&mut a, COORD, set(STOPPING, EPOCH, TERM)),
            vec![
                heartbeat(COORD, EPOCH, STOPPING),
                response(COORD, EPOCH, STOPPING)
            ]
        );
        assert_eq!(
            msg(&mut a, COORD, set(ALIVE, EPOCH, TERM)),
            vec![
                heartbeat(COORD, EPOCH, ALIVE),
                response(COORD, EPOCH, ALIVE)
            ]
        );
        // The same value is still no change.
        assert_eq!(
            msg(&mut a, COORD, set(ALIVE, EPOCH, TERM)),
            vec![response(COORD, EPOCH, ALIVE)]
        );
    }

    #[test]
    fn without_term_fencing_older_terms_are_obeyed() {
        let mut a = agent_with(Guards::default().without(Guard::TermFencing));
        assert_eq!(
            msg(&mut a, 3, set(DRAINING, EPOCH, TERM - 1)),
            vec![
                heartbeat(COORD, EPOCH, DRAINING),
                response(3, EPOCH, DRAINING)
            ]
        );
        assert_eq!(
            msg(&mut a, 3, add(7, EPOCH, TERM - 1, 1)),
            vec![
                AgentOutput::StartWork(7),
                status(3, 7, TERM - 1, 1, WorkState::Running)
            ]
        );
        // An old bootstrap is answered, but the old coordinator is not followed again.
        let out = msg(&mut a, 3, ToNode::Bootstrap { term: TERM - 1 });
        assert_eq!(out.len(), 1);
        assert!(matches!(
            &out[0],
            AgentOutput::Send { to: 3, msg: ToCoordinator::BootstrapResponse { term, .. } } if *term == TERM - 1
        ));
        assert_eq!(a.term_floor(), TERM);
    }

    #[test]
    fn without_epoch_fencing_set_liveness_for_another_epoch_is_applied() {
        let mut a = agent_with(Guards::default().without(Guard::EpochFencing));
        assert_eq!(
            msg(&mut a, COORD, set(DRAINING, EPOCH - 1, TERM)),
            vec![
                heartbeat(COORD, EPOCH, DRAINING),
                response(COORD, EPOCH, DRAINING)
            ]
        );
        assert_eq!(a.liveness(), DRAINING);
        // Work commands are fenced by their own guard.
        assert_eq!(msg(&mut a, COORD, add(7, EPOCH - 1, TERM, 1)), vec![]);
    }

    #[test]
    fn without_work_fencing_stale_and_foreign_work_commands_are_applied() {
        let mut a = agent_with(Guards::default().without(Guard::WorkFencing));
        // Another incarnation's command.
        assert_eq!(
            msg(&mut a, COORD, add(7, EPOCH - 1, TERM, 5)),
            vec![
                AgentOutput::StartWork(7),
                status(COORD, 7, TERM, 5, WorkState::Running)
            ]
        );
        // An older command for the same unit.
        assert_eq!(
            msg(&mut a, COORD, remove(7, EPOCH, TERM, 4)),
            vec![
                AgentOutput::StopWork(7),
                status(COORD, 7, TERM, 4, WorkState::Stopped)
            ]
        );
        assert_eq!(a.fence(&7), Some((TERM, 4)));
        // A duplicate is applied again rather than only re-acknowledged.
        msg(&mut a, COORD, add(6, EPOCH, TERM, 1));
        msg(&mut a, COORD, remove(6, EPOCH, TERM, 2));
        assert_eq!(
            msg(&mut a, COORD, add(6, EPOCH, TERM, 1)),
            vec![
                AgentOutput::StartWork(6),
                status(COORD, 6, TERM, 1, WorkState::Running)
            ]
        );
        // Term fencing still applies.
        assert_eq!(msg(&mut a, COORD, add(5, EPOCH, TERM - 1, 9)), vec![]);
    }

    #[test]
    fn without_reject_while_stopping_a_stopping_node_starts_new_work() {
        let a = agent_with(Guards::default().without(Guard::RejectWhileStopping));
        let mut a = at(a, STOPPING);
        assert_eq!(
            msg(&mut a, COORD, add(7, EPOCH, TERM, 1)),
            vec![
                AgentOutput::StartWork(7),
                status(COORD, 7, TERM, 1, WorkState::Running)
            ]
        );
        assert!(a.runs(&7));
    }

    #[test]
    fn without_campaign_only_alive_any_node_may_campaign() {
        let a = agent_with(Guards::default().without(Guard::CampaignOnlyAlive));
        assert!(a.may_campaign());
        assert!(at(a.clone(), DRAINING).may_campaign());
        assert!(at(a, STOPPING).may_campaign());
    }

    /// One scenario per agent guard that exercises exactly the behaviour that guard names.
    /// Returns what is observable: the agent's state, every output and, for the campaign
    /// probe only, `may_campaign`.
    fn probe(guard: Guard, guards: Guards) -> (Snapshot, Out, Option<bool>) {
        let mut a = agent_with(guards);
        let mut out = Vec::new();
        match guard {
            Guard::SingleStep => {
                out.extend(msg(&mut a, COORD, set(STOPPING, EPOCH, TERM)));
            }
            Guard::TermFencing => {
                out.extend(msg(&mut a, COORD, set(DRAINING, EPOCH, TERM - 1)));
                out.extend(msg(&mut a, COORD, add(7, EPOCH, TERM - 1, 1)));
            }
            Guard::EpochFencing => {
                out.extend(msg(&mut a, COORD, set(DRAINING, EPOCH + 1, TERM)));
            }
            Guard::WorkFencing => {
                out.extend(msg(&mut a, COORD, add(7, EPOCH + 1, TERM, 1)));
                out.extend(msg(&mut a, COORD, add(6, EPOCH, TERM, 5)));
                out.extend(msg(&mut a, COORD, remove(6, EPOCH, TERM, 4)));
            }
            Guard::RejectWhileStopping => {
                a = at(a, STOPPING);
                out.extend(msg(&mut a, COORD, add(7, EPOCH, TERM, 1)));
            }
            Guard::CampaignOnlyAlive => {
                a = at(a, DRAINING);
                out.extend(msg(&mut a, COORD, set(DRAINING, EPOCH, TERM)));
            }
            Guard::ElectedTermsOnly => {
                out.extend(msg(&mut a, OTHER, ToNode::Bootstrap { term: TERM + 1 }));
                out.extend(msg(&mut a, COORD, set(DRAINING, EPOCH, TERM + 2)));
            }
            other => panic!("{other} is not an agent guard"),
        }
        let campaign = (guard == Guard::CampaignOnlyAlive).then(|| a.may_campaign());
        (snapshot(&a), out, campaign)
    }

    #[test]
    fn each_agent_guard_switched_off_changes_exactly_its_own_behaviour() {
        for off in AGENT_GUARDS {
            let without = Guards::default().without(off);
            for probed in AGENT_GUARDS {
                let on = probe(probed, Guards::default());
                let changed = probe(probed, without);
                if probed == off {
                    assert_ne!(on, changed, "without {off}: its own behaviour must change");
                } else {
                    assert_eq!(on, changed, "without {off}: {probed} must be unaffected");
                }
            }
        }
    }

    #[test]
    fn coordinator_side_guards_do_not_change_the_agent() {
        for off in Guard::ALL.into_iter().filter(|g| !AGENT_GUARDS.contains(g)) {
            for probed in AGENT_GUARDS {
                assert_eq!(
                    probe(probed, Guards::default()),
                    probe(probed, Guards::default().without(off)),
                    "without {off}: {probed}"
                );
            }
        }
    }
}
