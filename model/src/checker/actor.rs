//! Thin `Actor` adapters: each model node runs the core's [`NodeAgent`] and, while it
//! holds leadership, the core's [`Coordinator`], verbatim. The adapters only translate
//! core outputs into stateright commands (sends and timers).

use super::config::ModelConfig;
use super::ids::{NodeIx, UnitIx};
use super::state::stable_hasher;
use crate::protocol::agent::Leader;
use crate::protocol::{
    AgentInput, AgentOutput, CoordInput, CoordOutput, CoordTimer, Coordinator, DrainError,
    DrainReport, Epoch, Liveness, NodeAgent, Term, ToCoordinator, ToNode,
};
use stateright::actor::{model_timeout, Actor, Id, Out};
use std::borrow::Cow;
use std::sync::Arc;

/// The core types at the model's ids.
pub type Agent = NodeAgent<NodeIx, UnitIx>;
/// The core coordinator at the model's ids.
pub type Coord = Coordinator<NodeIx, UnitIx>;

/// A message on the model's network.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Msg {
    /// Coordinator → node agent.
    ToNode(ToNode<UnitIx>),
    /// Node agent → coordinator, other than a report.
    ToCoord(ToCoordinator<UnitIx>),
    /// A liveness report: a NodeHeartbeat or a SetNodeLivenessResponse. The coordinator
    /// handles the two alike (one routine, C1–C3), so the model carries them as one
    /// message: a response and a heartbeat with the same content are the same report.
    Report { epoch: Epoch, liveness: Liveness },
}

/// A timer of a model node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum NodeTimer {
    /// The agent's periodic heartbeat.
    Heartbeat,
    /// The coordinator's resend timer.
    Resend,
    /// The coordinator's liveness TTL for one node.
    Ttl(NodeIx),
}

/// What a node persists: its last epoch and the coordinator it last followed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct NodeStorage {
    pub epoch: Epoch,
    pub leader: Option<Leader<NodeIx>>,
}

/// What one model node holds: its agent and, if it leads, the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeState {
    pub agent: Agent,
    pub coordinator: Option<Arc<SharedCoord>>,
}

/// A coordinator as the model's states hold it: immutable, shared by every state that
/// has it unchanged, and hashed once, when it is made. stateright fingerprints every
/// state it generates by hashing it whole; the coordinator (a dozen ordered maps and
/// sets) was most of that work, and it is usually the same as in the parent state.
///
/// Equal coordinators have equal hashes, so `Hash` agrees with `Eq`, and `Eq` still
/// compares the whole value (after the hashes, which tell most unequal ones apart).
#[derive(Debug)]
pub struct SharedCoord {
    hash: u64,
    coord: Coord,
}

impl SharedCoord {
    /// Shares `coord`, computing its hash.
    pub fn new(coord: Coord) -> Arc<Self> {
        Arc::new(SharedCoord {
            hash: stable_hasher().hash_one(&coord),
            coord,
        })
    }
}

impl std::ops::Deref for SharedCoord {
    type Target = Coord;
    fn deref(&self) -> &Coord {
        &self.coord
    }
}

impl PartialEq for SharedCoord {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.coord == other.coord
    }
}

impl Eq for SharedCoord {}

impl std::hash::Hash for SharedCoord {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl NodeState {
    /// The canonical state of a node whose process is down (stateright keeps a state for
    /// crashed actors; one value for all of them keeps the state space small).
    pub fn down(cfg: &ModelConfig) -> Self {
        NodeState {
            agent: NodeActor::agent_of(cfg, 0, None),
            coordinator: None,
        }
    }
}

/// The model node actor.
#[derive(Clone)]
pub struct NodeActor {
    pub cfg: Arc<ModelConfig>,
}

type Cmds = Out<NodeActor>;

impl NodeActor {
    /// A new agent incarnation as this configuration's runtime makes it: under static
    /// membership it knows `n0` as its one coordinator.
    pub fn agent_of(cfg: &ModelConfig, epoch: Epoch, leader: Option<Leader<NodeIx>>) -> Agent {
        let agent = Agent::new(epoch, leader, cfg.guards);
        if cfg.fixed_coordinator {
            agent.with_fixed_coordinator(NodeIx(0))
        } else {
            agent
        }
    }

    fn new_agent(&self, epoch: Epoch, leader: Option<Leader<NodeIx>>) -> Agent {
        Self::agent_of(&self.cfg, epoch, leader)
    }

    fn agent_outputs(agent: &Agent, out: Vec<AgentOutput<NodeIx, UnitIx>>, o: &mut Cmds) {
        for x in out {
            match x {
                AgentOutput::Send { to, msg } => {
                    let msg = match msg {
                        ToCoordinator::Heartbeat { epoch, liveness }
                        | ToCoordinator::SetLivenessResponse { epoch, liveness } => {
                            Msg::Report { epoch, liveness }
                        }
                        m => Msg::ToCoord(m),
                    };
                    o.send(to.id(), msg)
                }
                AgentOutput::ArmHeartbeat => o.set_timer(NodeTimer::Heartbeat, model_timeout()),
                AgentOutput::PersistLeader(leader) => o.save(NodeStorage {
                    epoch: agent.epoch(),
                    leader: Some(leader),
                }),
                AgentOutput::StartWork(_) | AgentOutput::StopWork(_) => {}
            }
        }
    }

    /// Applies coordinator outputs; returns false when the coordinator resigned.
    fn coord_outputs(out: Vec<CoordOutput<NodeIx, UnitIx>>, o: &mut Cmds) -> bool {
        let mut leads = true;
        for x in out {
            match x {
                CoordOutput::Send { to, msg } => o.send(to.id(), Msg::ToNode(msg)),
                CoordOutput::Arm(CoordTimer::Resend) => {
                    o.set_timer(NodeTimer::Resend, model_timeout())
                }
                CoordOutput::Arm(CoordTimer::LivenessTtl(n)) => {
                    o.set_timer(NodeTimer::Ttl(n), model_timeout())
                }
                CoordOutput::Resign => leads = false,
            }
        }
        leads
    }

    /// Cancels the coordinator's timers on this node (it resigned or died).
    pub fn cancel_coordinator_timers(&self, o: &mut Cmds) {
        o.cancel_timer(NodeTimer::Resend);
        for n in 0..self.cfg.nodes {
            o.cancel_timer(NodeTimer::Ttl(NodeIx(n)));
        }
    }

    /// Runs one agent input; keeps `state` borrowed when nothing changed.
    pub fn agent_step(
        &self,
        state: &mut Cow<NodeState>,
        input: AgentInput<NodeIx, UnitIx>,
        o: &mut Cmds,
    ) {
        let mut agent = state.agent.clone();
        let mut out = Vec::new();
        agent.handle(input, &mut out);
        Self::agent_outputs(&agent, out, o);
        if agent != state.agent {
            state.to_mut().agent = agent;
        }
    }

    /// Runs one coordinator input, if this node leads; keeps `state` borrowed when
    /// nothing changed.
    pub fn coord_step(
        &self,
        state: &mut Cow<NodeState>,
        input: CoordInput<NodeIx, UnitIx>,
        o: &mut Cmds,
    ) {
        let Some(current) = &state.coordinator else {
            return;
        };
        let key = match &input {
            CoordInput::Message { from, msg } => Some(MemoInput::Message(*from, msg.clone())),
            CoordInput::Timer(t) => Some(MemoInput::Timer(t.clone())),
            CoordInput::MemberJoined { node, epoch } => Some(MemoInput::Joined(*node, *epoch)),
            CoordInput::MemberLeft { node, epoch } => Some(MemoInput::Left(*node, *epoch)),
            _ => None,
        };
        let step = || {
            let (after, out, ()) = run_coord(current, |c, out| c.handle(input, out));
            (after, out, None)
        };
        let (after, out, _) = match key {
            Some(key) => memo_step(current, key, step),
            None => step(),
        };
        self.apply_coord_step(state, after, out, o);
    }

    /// Applies a coordinator step that led to `after` (None: unchanged).
    fn apply_coord_step(
        &self,
        state: &mut Cow<NodeState>,
        after: Option<Arc<SharedCoord>>,
        out: Vec<CoordOutput<NodeIx, UnitIx>>,
        o: &mut Cmds,
    ) {
        if !Self::coord_outputs(out, o) {
            state.to_mut().coordinator = None;
            self.cancel_coordinator_timers(o);
        } else if let Some(after) = after {
            state.to_mut().coordinator = Some(after);
        }
    }

    /// The client's DrainNode call, answered by this node's coordinator.
    pub fn drain_node(
        &self,
        state: &mut Cow<NodeState>,
        target: NodeIx,
        o: &mut Cmds,
    ) -> Option<Result<DrainReport<NodeIx>, DrainError<NodeIx>>> {
        let current = state.coordinator.as_ref()?;
        let (after, out, answer) = memo_step(current, MemoInput::Drain(target), || {
            let (after, out, answer) = run_coord(current, |c, out| c.drain_node(&target, out));
            (after, out, Some(answer))
        });
        self.apply_coord_step(state, after, out, o);
        answer
    }

    /// The election oracle made this node coordinator of `term`.
    pub fn become_coordinator(
        &self,
        id: NodeIx,
        state: &mut Cow<NodeState>,
        term: Term,
        members: Vec<NodeIx>,
        stored: u8,
        o: &mut Cmds,
    ) {
        // The winner's agent learns its term in the step it wins (the campaign's result,
        // fed to the agent before the coordinator starts), so that no command of an older
        // coordinator, still in flight, can change this node's liveness from now on. Every
        // other member learns it from its election watch, later (`Action::Watch`).
        if !self.cfg.winner_learns_late {
            self.agent_step(state, AgentInput::LeaderChanged { term, leader: id }, o);
        }
        let mut out = Vec::new();
        // The desired units it loads from the store.
        let units = (0..stored).map(UnitIx);
        let coord = Coord::new(
            id,
            term,
            members,
            units,
            self.cfg.coordinator(),
            self.cfg.guards,
            &mut out,
        );
        self.apply_coord_step(state, Some(SharedCoord::new(coord)), out, o);
    }
}

/// Runs `f` on a copy of `current`: the coordinator after it (None when unchanged, so
/// that the state keeps sharing `current`), its outputs, and what `f` returned.
fn run_coord<A>(
    current: &SharedCoord,
    f: impl FnOnce(&mut Coord, &mut Vec<CoordOutput<NodeIx, UnitIx>>) -> A,
) -> (
    Option<Arc<SharedCoord>>,
    Vec<CoordOutput<NodeIx, UnitIx>>,
    A,
) {
    let mut coord = Coord::clone(current);
    let mut out = Vec::new();
    let answer = f(&mut coord, &mut out);
    let after = (coord != current.coord).then(|| SharedCoord::new(coord));
    (after, out, answer)
}

/// The coordinator inputs whose steps are memoized: messages, timers, membership
/// changes and DrainNode.
#[derive(Clone, PartialEq, Eq, Hash)]
enum MemoInput {
    Message(NodeIx, ToCoordinator<UnitIx>),
    Timer(CoordTimer<NodeIx>),
    Joined(NodeIx, Epoch),
    Left(NodeIx, Epoch),
    Drain(NodeIx),
}

type Answer = Result<DrainReport<NodeIx>, DrainError<NodeIx>>;
type Stepped = (
    Option<Arc<SharedCoord>>,
    Vec<CoordOutput<NodeIx, UnitIx>>,
    Option<Answer>,
);

/// One memoized coordinator step: from `before`, `input` leads to `after` (None: the
/// coordinator is unchanged) with outputs `out` (and DrainNode's answer).
struct MemoEntry {
    before: Arc<SharedCoord>,
    input: MemoInput,
    stepped: Stepped,
}

/// Slots of the per-thread memo of coordinator steps (direct mapped).
const MEMO_SLOTS: usize = 1 << 14;

thread_local! {
    static MEMO: std::cell::RefCell<Vec<Option<MemoEntry>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The coordinator's step from `current` on `input`, computed by `step` or recalled.
///
/// The coordinator is a pure function of its state and input, and the same coordinator
/// (shared, unchanged, by many system states that differ elsewhere) receives the same
/// messages and timers in state after state; each step cloned it, ran it, compared it
/// with the original and dropped a copy. A memo hit costs a lookup and a clone of the
/// outputs. A hit needs the very coordinator (the entry holds it, so its address is not
/// reused while it is there) or an equal one, and an equal input: the result is what
/// `step` would return.
fn memo_step(
    current: &Arc<SharedCoord>,
    input: MemoInput,
    step: impl FnOnce() -> Stepped,
) -> Stepped {
    let slot = (stable_hasher().hash_one((current.hash, &input)) as usize) % MEMO_SLOTS;
    MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        if memo.is_empty() {
            memo.resize_with(MEMO_SLOTS, || None);
        }
        if let Some(e) = &memo[slot] {
            if e.input == input && (Arc::ptr_eq(&e.before, current) || e.before == *current) {
                return e.stepped.clone();
            }
        }
        let stepped = step();
        memo[slot] = Some(MemoEntry {
            before: current.clone(),
            input,
            stepped: stepped.clone(),
        });
        stepped
    })
}

impl Actor for NodeActor {
    type Msg = Msg;
    type State = NodeState;
    type Timer = NodeTimer;
    /// A node's persisted epoch and leader: a restart comes back with epoch + 1, Alive.
    type Storage = NodeStorage;
    type Random = ();

    fn on_start(&self, id: Id, storage: &Option<NodeStorage>, o: &mut Out<Self>) -> NodeState {
        let epoch = storage.as_ref().map_or(1, |s| s.epoch + 1);
        let leader = storage.as_ref().and_then(|s| s.leader.clone());
        o.save(NodeStorage {
            epoch,
            leader: leader.clone(),
        });
        let mut out = Vec::new();
        let mut agent = self.new_agent(epoch, leader);
        agent.start(&mut out);
        Self::agent_outputs(&agent, out, o);
        let mut state = Cow::Owned(NodeState {
            agent,
            coordinator: None,
        });
        let me = NodeIx::from(id);
        if storage.is_none() && me == NodeIx(0) && !self.cfg.elected_start {
            // The cluster starts with n0 as coordinator of term 1.
            let members = (0..self.cfg.nodes).map(NodeIx).collect();
            self.become_coordinator(me, &mut state, 1, members, self.cfg.work, o);
        }
        state.into_owned()
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<NodeState>, src: Id, msg: Msg, o: &mut Out<Self>) {
        let from = NodeIx::from(src);
        match msg {
            Msg::ToNode(msg) => self.agent_step(state, AgentInput::Message { from, msg }, o),
            Msg::ToCoord(msg) => self.coord_step(state, CoordInput::Message { from, msg }, o),
            Msg::Report { epoch, liveness } => {
                let msg = ToCoordinator::Heartbeat { epoch, liveness };
                self.coord_step(state, CoordInput::Message { from, msg }, o)
            }
        }
    }

    fn on_timeout(
        &self,
        _id: Id,
        state: &mut Cow<NodeState>,
        timer: &NodeTimer,
        o: &mut Out<Self>,
    ) {
        match timer {
            NodeTimer::Heartbeat => {
                // `AgentInput::HeartbeatTimer`, without copying the agent: it stays as it is.
                let mut out = Vec::new();
                state.agent.on_heartbeat_timer(&mut out);
                Self::agent_outputs(&state.agent, out, o);
            }
            NodeTimer::Resend => self.coord_step(state, CoordInput::Timer(CoordTimer::Resend), o),
            NodeTimer::Ttl(n) => {
                self.coord_step(state, CoordInput::Timer(CoordTimer::LivenessTtl(*n)), o)
            }
        }
    }

    fn name(&self) -> String {
        String::new()
    }
}
