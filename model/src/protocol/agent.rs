//! The node agent: a node's own liveness, epoch and hosted work units (PROTOCOL.md §4).

use crate::protocol::guards::{Guard, Guards};
use crate::protocol::ids::{Epoch, Key, OpId, Term, PROTOCOL_VERSION};
use crate::protocol::liveness::Liveness;
use crate::protocol::message::{ToCoordinator, ToNode, WorkState};
use std::collections::BTreeMap;

/// One input to the node agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentInput<N, W> {
    /// A message from the coordinator running on node `from`.
    Message { from: N, msg: ToNode<W> },
    /// The heartbeat timer fired.
    HeartbeatTimer,
    /// The election service says `leader` is coordinator for `term` (a watch event, or
    /// this very process winning the election).
    LeaderChanged { term: Term, leader: N },
    /// This node lost its membership lease: the coordinator may already have moved its
    /// work, so it fences itself (§4.6).
    LeaseLost,
}

/// One effect of the node agent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeAgent<N, W> {
    epoch: Epoch,
    liveness: Liveness,
    leader: Option<Leader<N>>,
    units: BTreeMap<W, UnitRecord>,
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
            guards,
        }
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
        self.units
            .iter()
            .filter(|(_, u)| u.running)
            .map(|(w, _)| w)
    }

    /// Whether `work` runs here.
    pub fn runs(&self, work: &W) -> bool {
        self.units.get(work).is_some_and(|u| u.running)
    }

    /// How many work units run here.
    pub fn running_count(&self) -> usize {
        self.units.values().filter(|u| u.running).count()
    }

    /// Every (term, op) this agent remembers as a fence.
    pub fn fences(&self) -> impl Iterator<Item = (Term, OpId)> + '_ {
        self.units.values().map(|u| u.fence)
    }

    /// Renames operation ids, for a model checker that renumbers them without changing
    /// their order (the protocol only compares them). `rename` must preserve order
    /// within each term.
    pub fn rename_ops(&mut self, rename: &dyn Fn(Term, OpId) -> OpId) {
        for u in self.units.values_mut() {
            u.fence.1 = rename(u.fence.0, u.fence.1);
        }
    }

    /// Whether this node may campaign to become coordinator: only while Alive.
    pub fn may_campaign(&self) -> bool {
        !self.guards.on(Guard::CampaignOnlyAlive) || self.liveness == Liveness::Alive
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
            AgentInput::HeartbeatTimer => {
                self.heartbeat(out);
                out.push(AgentOutput::ArmHeartbeat);
            }
            AgentInput::LeaderChanged { term, leader } => {
                if term > self.term_floor() {
                    self.learn_leader(term, leader, out);
                    self.heartbeat(out);
                }
            }
            AgentInput::LeaseLost => self.fence_self(out),
        }
    }

    fn on_message(&mut self, from: N, msg: ToNode<W>, out: &mut Vec<AgentOutput<N, W>>) {
        match msg {
            ToNode::Bootstrap { term } => {
                if !self.current_term(term) {
                    return;
                }
                if term > self.term_floor() {
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
                // Rule 1: a coordinator older than the current one is ignored.
                if !self.current_term(term) {
                    return;
                }
                // Rule 2: a command for another incarnation changes nothing, but is answered
                // with our real epoch. Rule 3: otherwise attempt the single-step store.
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
        if !self.current_term(term) {
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
            // Rule 4: a Stopping node starts no new work unit.
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
    /// term than the one this node follows (rule 1). Only a bootstrap request or the
    /// election service make a node follow a newer coordinator.
    fn current_term(&self, term: Term) -> bool {
        term >= self.term_floor() || !self.guards.on(Guard::TermFencing)
    }

    fn learn_leader(&mut self, term: Term, node: N, out: &mut Vec<AgentOutput<N, W>>) {
        let leader = Leader { term, node };
        self.leader = Some(leader.clone());
        out.push(AgentOutput::PersistLeader(leader));
    }

    /// Rule 6: step forward to Stopping locally and stop every work unit.
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
