//! The system model: node actors over an unordered, duplicating (and optionally lossy)
//! network, plus the environment: crashes and restarts, coordinator
//! failover through an election oracle (each member learns its result from its own
//! watch, late), membership, operators, and a client that drains a node.
//!
//! It implements [`stateright::Model`] directly over a state of its own ([`SysState`],
//! rather than through `ActorModel` and its `ActorModelState`) so that the environment's
//! actions can sit beside the actors' ones, so that every step can be judged against the
//! properties while its outputs are in hand, so that delivered messages are not
//! remembered in the state (stateright's `ActorModel` records the last one, which
//! multiplies the state space), and so that the state is cheap to clone and hash
//! (`state.rs` says how).

use super::actor::{Msg, NodeActor, NodeState, NodeTimer};
use super::config::ModelConfig;
use super::ids::{NodeIx, UnitIx};
use super::properties::{self, Violation};
pub use super::state::SysState;
use crate::protocol::{CoordInput, Epoch, Guard, Liveness, Term, ToNode};
use stateright::actor::{Actor, Command, Envelope, Out};
use stateright::{Model, Property};
use std::borrow::Cow;
use std::sync::Arc;

/// How many times a Stopping process may exit in one run. One is enough to cover the
/// rolling upgrade (drain, exit, restart as a new incarnation) and an exit before the
/// coordinator has seen Stopping; more would only repeat the drain with larger epochs.
pub const MAX_EXITS: u8 = 1;

/// The largest cluster the model checks (`ModelConfig::nodes`).
pub const MAX_NODES: usize = 8;

/// The environment's memory, and what the properties need to judge a state: oracle
/// counters, the client's progress, and the safety violations that steps committed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct History {
    /// The last term the election oracle handed out.
    pub term: Term,
    /// The node that won it: what every election watch reports now.
    pub leader: NodeIx,
    /// The term before it, and its winner: what a lagging watch may still report
    /// (`Action::WatchStale`, with late membership).
    pub prev_term: Term,
    pub prev_leader: NodeIx,
    pub crashes: u8,
    pub failovers: u8,
    /// Lease losses so far.
    pub lease_losses: u8,
    /// Operator resignations so far.
    pub resigns: u8,
    /// Graceful leaves of the target so far.
    pub leaves: u8,
    /// Planned exits of Stopping processes so far.
    pub exits: u8,
    /// Messages lost so far.
    pub losses: u8,
    /// Liveness TTL expiries so far.
    pub expiries: u8,
    /// Bit per node: holds a membership lease.
    pub members: u16,
    /// `--late-membership`: bit per node, a registration the live coordinator has not
    /// been told of yet (`Action::NotifyJoin`).
    pub unseen_joins: u16,
    /// `--late-membership`: bit per node, an expired registration the live coordinator
    /// has not been told of yet (`Action::NotifyLeave`).
    pub unseen_leaves: u16,
    /// `--late-membership`: bit per node, a registration made or expired while no
    /// coordinator ran (since the last one stopped). A new coordinator's view may lack
    /// exactly these changes (`Action::ElectView`): the runtime reads its view after it
    /// won, so it holds every change the coordinators before it could have seen, and
    /// may miss only those after its read (`specs/protocol.md`, "the new coordinator's
    /// view").
    pub uncoordinated: u16,
    /// `--late-membership`: per node, the epoch of its registration (the one a join
    /// names, and the one whose expiry a leave names).
    pub registered: [u8; MAX_NODES],
    /// `--late-membership`: per node, the epoch of the expired registration a pending
    /// leave names.
    pub left: [u8; MAX_NODES],
    /// Bit per node: lost its lease and fenced itself, while its registration is still
    /// in the membership service (etcd expires it later: the node's own deadline comes
    /// first). Cleared when the registration goes, or by a restart.
    pub fenced: u16,
    /// Per node: bit `e` is set when incarnation `e` ended in a crash (not a planned exit).
    /// (Arrays of the largest cluster, not vectors: a history is cloned with every
    /// successor state, and a vector is an allocation each time. Unused entries stay 0.)
    pub crash_ends: [u16; MAX_NODES],
    /// Per node: bit `e` is set when incarnation `e` reached Stopping.
    pub stopped: [u16; MAX_NODES],
    /// Bit per node: the client has called DrainNode for it.
    pub requested: u16,
    /// Bit per node: DrainNode has answered 0 for it (on any call, of any coordinator).
    pub zeros: u16,
    /// Units the client was told exist: the `work` desired from the start, then each
    /// one it added (`Action::AddWork`). S8 and L1 are about these; the store, which a
    /// new coordinator loads, holds the same ones ([`DrainModel::stored`]).
    pub promised: u8,
    /// The coordinator failed while the target was Draining and before 0. (This and the
    /// next are read by L2's scenario properties alone, and recorded only when
    /// [`ModelConfig::record_scenarios`] is on. A crash, a lease loss or a coordinator
    /// crash records them, the faults `properties::scenario_possible` names: a new way
    /// to record one must be named there too, or its search is skipped.)
    pub failover_mid_drain: bool,
    /// The target crashed while Draining and before 0.
    pub target_crashed_mid_drain: bool,
    /// Bit per property (S1 = bit 1 …): a step violated it.
    pub violations: u16,
}

impl History {
    fn mark(&mut self, v: Violation) {
        self.violations |= 1 << v as u16;
    }

    /// Whether a step violated `v`.
    pub fn violated(&self, v: Violation) -> bool {
        self.violations & (1 << v as u16) != 0
    }

    /// Whether `node` holds a membership lease.
    pub fn is_member(&self, node: NodeIx) -> bool {
        self.members & (1 << node.0) != 0
    }

    /// Whether `node` lost its lease and fenced itself, its registration not yet gone.
    pub fn is_fenced(&self, node: NodeIx) -> bool {
        self.fenced & (1 << node.0) != 0
    }

    /// Whether the client has asked to drain `node`.
    pub fn is_requested(&self, node: NodeIx) -> bool {
        self.requested & (1 << node.0) != 0
    }

    /// Whether DrainNode has answered 0 for `node`.
    pub fn is_zero(&self, node: NodeIx) -> bool {
        self.zeros & (1 << node.0) != 0
    }
}

/// One step of the system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The network delivers a message (it stays in the network: it may come again).
    Deliver { src: NodeIx, dst: NodeIx, msg: Msg },
    /// The network loses every copy of a message.
    Drop { src: NodeIx, dst: NodeIx, msg: Msg },
    /// A node's timer fires.
    Timer { node: NodeIx, timer: NodeTimer },
    /// A node's process crashes (a fault; bounded).
    Crash(NodeIx),
    /// A down node starts a new incarnation.
    Restart(NodeIx),
    /// A Stopping node's process exits, as Stopping nodes do.
    Exit(NodeIx),
    /// A live node loses its membership lease (a fault; bounded): at its own lease
    /// deadline it fences itself (Stopping, every unit stopped, leadership gone). Its
    /// registration stays until the membership service expires it, a later `Leave`:
    /// the deadline never comes after etcd's expiry, so the node is fenced before the
    /// coordinator can move its work.
    LeaseLoss(NodeIx),
    /// A member's registration goes: a down node's lease expires, or a node that fenced
    /// itself is expired by the membership service.
    Leave(NodeIx),
    /// `--late-membership`: the coordinator's membership watch reports a registration
    /// it has not been told of.
    NotifyJoin(NodeIx),
    /// `--late-membership`: the coordinator's membership watch reports an expired
    /// registration it has not been told of.
    NotifyLeave(NodeIx),
    /// `--static-membership`: a node's start announcement reaches the coordinator
    /// (`MemberJoined` of its last incarnation, which may have ended since), at any
    /// time after it started. A member the coordinator has not heard from yet is then
    /// known by that epoch (C17).
    Announce(NodeIx),
    /// The coordinator process dies; its node lives on (a fault; bounded).
    CoordinatorCrash(NodeIx),
    /// An operator makes the coordinator on this node resign (bounded).
    Resign(NodeIx),
    /// The drain target is asked to leave (SIGTERM; bounded): it never campaigns again
    /// in this incarnation, and resigns if it coordinates.
    GracefulLeave(NodeIx),
    /// The election oracle makes an Alive node coordinator of the next term.
    Elect(NodeIx),
    /// With late membership: as `Elect`, but the winner's own membership watch lags:
    /// its members are `view` (bit per node), some of the registrations and of the
    /// expired registrations not yet reported; its watch reports the rest later
    /// (`NotifyJoin`, `NotifyLeave`).
    ElectView { node: NodeIx, view: u16 },
    /// `failed_elections`: the election oracle makes an Alive node coordinator of the
    /// next term, but the winner fails to persist it and its process exits before its
    /// coordinator starts (a fault; spends a node crash).
    ElectFails(NodeIx),
    /// `failed_elections`: the election oracle makes a member that may no longer
    /// campaign (its withdrawal came too late) coordinator of the next term; it
    /// resigns at once, starting no coordinator and telling its agent nothing. Or the
    /// winner's process is gone while its registration, and so its candidacy, lives
    /// on until the lease expires: nobody acts on the win. Spends a resignation
    /// (`--resigns`).
    ElectDeclined(NodeIx),
    /// A node's election watch reports the latest (term, leader) to its agent: each
    /// member learns of an election on its own, late, skipping the terms it missed.
    Watch(NodeIx),
    /// With late membership: a lagging election watch reports the term before the
    /// latest, and its winner (a process that starts reads the election as it was a
    /// moment ago, then learns the latest).
    WatchStale(NodeIx),
    /// A stray bootstrap request of a term the election never issued arrives on the
    /// network, as if `src` had sent it to `dst` (a fault; `--stray-terms`).
    Stray {
        src: NodeIx,
        dst: NodeIx,
        term: Term,
    },
    /// The client calls DrainNode(node) (`PUT /api/v1/captures/drain`, `PUT
    /// /api/v2/drain/<node>`, `ebbtide drain`): it requests the drain, or asks again.
    /// The client keeps polling after 0, and drains the nodes of
    /// [`ModelConfig::drain_order`] one after the other.
    Poll(NodeIx),
    /// A client reads DrainStatus(node) (`GET /api/v2/drain/<node>`), of any node, at
    /// any time: it changes nothing, and every 0 it answers is judged by S3.
    Status(NodeIx),
    /// A client adds the next work unit (`POST /api/v2/work`, `--added-work`): it is
    /// stored, then fed to the live coordinator (`CoordInput::AddUnit`).
    AddWork,
}

impl Action {
    /// The variant's name, for counting actions by kind ([`super::census`]).
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Deliver { .. } => "Deliver",
            Action::Drop { .. } => "Drop",
            Action::Timer { .. } => "Timer",
            Action::Crash(_) => "Crash",
            Action::Restart(_) => "Restart",
            Action::Exit(_) => "Exit",
            Action::LeaseLoss(_) => "LeaseLoss",
            Action::Leave(_) => "Leave",
            Action::NotifyJoin(_) => "NotifyJoin",
            Action::NotifyLeave(_) => "NotifyLeave",
            Action::Announce(_) => "Announce",
            Action::CoordinatorCrash(_) => "CoordinatorCrash",
            Action::Resign(_) => "Resign",
            Action::GracefulLeave(_) => "GracefulLeave",
            Action::Elect(_) => "Elect",
            Action::ElectView { .. } => "ElectView",
            Action::ElectFails(_) => "ElectFails",
            Action::ElectDeclined(_) => "ElectDeclined",
            Action::Watch(_) => "Watch",
            Action::WatchStale(_) => "WatchStale",
            Action::Stray { .. } => "Stray",
            Action::Poll(_) => "Poll",
            Action::Status(_) => "Status",
            Action::AddWork => "AddWork",
        }
    }

    /// Whether fairness guarantees this action eventually happens when it stays
    /// enabled. Faults (losses, crashes, TTL expiry, failovers) and optional moves
    /// (a Stopping process exiting) are not; deliveries, timers, restarts or lease
    /// expiry of down nodes, elections and the client's polls are.
    pub fn is_progress(&self) -> bool {
        match self {
            Action::Deliver { .. }
            | Action::Restart(_)
            | Action::Leave(_)
            | Action::NotifyJoin(_)
            | Action::NotifyLeave(_)
            | Action::Elect(_)
            | Action::ElectView { .. }
            | Action::Watch(_)
            | Action::Poll(_) => true,
            Action::WatchStale(_) => false,
            Action::Timer { timer, .. } => !matches!(timer, NodeTimer::Ttl(_)),
            Action::Drop { .. }
            | Action::Crash(_)
            | Action::Exit(_)
            | Action::LeaseLoss(_)
            | Action::Stray { .. }
            | Action::ElectFails(_)
            | Action::ElectDeclined(_)
            | Action::Resign(_)
            | Action::GracefulLeave(_)
            | Action::Status(_)
            | Action::AddWork
            | Action::Announce(_)
            | Action::CoordinatorCrash(_) => false,
        }
    }
}

/// The model of one configuration.
#[derive(Clone)]
pub struct DrainModel {
    pub cfg: Arc<ModelConfig>,
    actor: NodeActor,
    /// States from which the fair continuation is known to settle (L1's fairness check).
    pub(super) settled: Arc<super::fairness::Settled>,
    /// Whether the caller steps every action of each state it judges, as a search does,
    /// so that L1's quiescence test keeps the progress steps it takes for the loss
    /// reduction and `next_state` ([`super::successors`]); false for a walk
    /// ([`Self::walking`]).
    expands: bool,
}

impl DrainModel {
    /// The model of `cfg`.
    pub fn new(cfg: ModelConfig) -> Self {
        let cfg = Arc::new(cfg);
        DrainModel {
            actor: NodeActor { cfg: cfg.clone() },
            cfg,
            settled: Arc::default(),
            expands: true,
        }
    }

    /// The model for a caller that takes one action from each state it judges (a random
    /// walk, the trace check's walk of a run): L1's quiescence test then steps the
    /// progress actions only until one changes the state, and keeps none of them. (A
    /// walk that kept every progress step of every state it judged ran 1.3× slower.)
    pub fn walking(self) -> Self {
        DrainModel {
            expands: false,
            ..self
        }
    }

    fn nodes(&self) -> impl Iterator<Item = NodeIx> {
        (0..self.cfg.nodes).map(NodeIx)
    }

    /// How many units the durable store holds, which a new coordinator loads: every
    /// unit the client was told exists, or, when the shell feeds added units without
    /// storing them (`--add-not-durable`), only those desired from the start.
    pub fn stored(&self, state: &SysState) -> u8 {
        if self.cfg.add_not_durable {
            self.cfg.work
        } else {
            state.history.promised
        }
    }

    /// Whether `node`'s process is up.
    pub fn is_up(state: &SysState, node: NodeIx) -> bool {
        !state.crashed[node.ix()]
    }

    /// The node state of `node`.
    pub fn node(state: &SysState, node: NodeIx) -> &NodeState {
        &state.actor_states[node.ix()]
    }

    /// The live coordinator, if any: (its node, its state).
    pub fn coordinator(state: &SysState) -> Option<(NodeIx, &super::actor::Coord)> {
        state
            .actor_states
            .iter()
            .enumerate()
            .filter(|(i, _)| !state.crashed[*i])
            .find_map(|(i, s)| s.coordinator.as_deref().map(|c| (NodeIx(i as u8), &**c)))
    }

    /// Whether the environment surely changes `state` (so it is not quiescent), judged
    /// from the actors and the history alone: a down node that may restart or leave
    /// will; without a coordinator, an Alive member is elected.
    pub fn surely_moves(&self, state: &SysState) -> bool {
        self.nodes().any(|n| {
            !Self::is_up(state, n) && (state.history.is_member(n) || self.may_restart(state, n))
        }) || (Self::coordinator(state).is_none()
            && state.history.term < self.cfg.max_term()
            && self
                .nodes()
                .any(|n| state.history.is_member(n) && Self::node(state, n).agent.may_campaign()))
    }

    /// Whether no progress action changes `state`: under fairness, nothing more happens.
    /// Steps the progress actions only until one changes the state, unless they are
    /// cached already ([`Self::is_quiescent_expanding`]).
    pub fn is_quiescent(&self, state: &SysState) -> bool {
        !self.surely_moves(state) && !super::successors::some_progress_moves(self, state, false)
    }

    /// [`Self::is_quiescent`], for a state the caller is about to expand: steps every
    /// progress action into the state's cache, where the loss reduction and the
    /// checker's own `next_state` find them ([`super::successors`]). In a model made
    /// for walks ([`Self::walking`]), the same as `is_quiescent`.
    pub fn is_quiescent_expanding(&self, state: &SysState) -> bool {
        !self.surely_moves(state)
            && !super::successors::some_progress_moves(self, state, self.expands)
    }

    /// The actions enabled in `state`, into `actions`: with `losses`, the losses the
    /// checker takes (every one with `ModelConfig::every_loss`, else those that
    /// `super::losses` offers); without, none (quiescence asks only about progress).
    pub fn offer(&self, state: &SysState, actions: &mut Vec<Action>, losses: bool) {
        let up = |n: NodeIx| Self::is_up(state, n);
        let budget = match self.cfg.losses {
            _ if !losses => 0,
            None => u8::MAX,
            Some(limit) => limit.saturating_sub(state.history.losses),
        };
        // Which losses the reduction offers; without it, every one the budget allows.
        let gated = (budget > 0 && super::losses::reduced(&self.cfg))
            .then(|| super::losses::offered(self, state, budget));
        // (In flight is sorted by source, destination and message.)
        for (i, e) in state.network.iter().enumerate() {
            let lose = gated.as_ref().map_or(budget > 0, |offered| offered[i]);
            let (src, dst, msg) = (NodeIx::from(e.src), NodeIx::from(e.dst), &e.msg);
            if up(dst) {
                actions.push(Action::Deliver {
                    src,
                    dst,
                    msg: msg.clone(),
                });
            }
            if lose {
                actions.push(Action::Drop {
                    src,
                    dst,
                    msg: msg.clone(),
                });
            }
        }
        let may_expire = self
            .cfg
            .ttl_expiries
            .is_none_or(|limit| state.history.expiries < limit);
        for node in self.nodes().filter(|n| up(*n)) {
            // (In `NodeTimer`'s order.)
            actions.extend(
                state.timers_set[node.ix()]
                    .iter()
                    .filter(|t| may_expire || !matches!(t, NodeTimer::Ttl(_)))
                    .map(|timer| Action::Timer { node, timer }),
            );
        }
        let h = &state.history;
        let coordinator = Self::coordinator(state).map(|(n, _)| n);
        for node in self.nodes() {
            if up(node) {
                if h.crashes < self.cfg.node_crashes {
                    actions.push(Action::Crash(node));
                }
                if h.lease_losses < self.cfg.lease_losses && h.is_member(node) && !h.is_fenced(node)
                {
                    actions.push(Action::LeaseLoss(node));
                }
                let agent = &Self::node(state, node).agent;
                let leaves_drained = self.cfg.late_membership
                    && h.is_member(node)
                    && agent.leaving()
                    && agent.drained();
                if h.is_fenced(node) || leaves_drained {
                    // etcd expires the registration of a node that fenced itself, while
                    // that process still runs (it is about to exit 3); and a node asked
                    // to leave withdraws its registration once drained, before it exits.
                    actions.push(Action::Leave(node));
                }
                if h.exits < MAX_EXITS
                    && Self::node(state, node).agent.liveness() == Liveness::Stopping
                {
                    actions.push(Action::Exit(node));
                }
                if self.watch_pending(state, node) {
                    actions.push(Action::Watch(node));
                }
                if self.cfg.late_membership && self.stale_watch_pending(state, node) {
                    actions.push(Action::WatchStale(node));
                }
                if (node == self.cfg.target() || self.cfg.drains_any_order)
                    && h.leaves < self.cfg.leaves
                    && !Self::node(state, node).agent.leaving()
                {
                    actions.push(Action::GracefulLeave(node));
                }
            } else {
                // A node that lost its lease registers again only once its old
                // registration expired (etcd refuses a second live one of its id);
                // with late membership, as in the runtime, every process registers
                // before its agent starts, so a restart waits for the expiry.
                let registered = self.cfg.late_membership && h.is_member(node);
                if self.may_restart(state, node) && !h.is_fenced(node) && !registered {
                    actions.push(Action::Restart(node));
                }
                if h.is_member(node) {
                    actions.push(Action::Leave(node));
                }
            }
        }
        // With collection and `elected-terms-only`, a stray request is inert from the
        // start (`gc::inert`: no node follows a term the election never issues), so
        // `next_state` would answer none for every one: not offered at all (in CI's
        // first configuration, 166 M offers that came to nothing, `ebbtide bench check
        // --by-action`). `gc_soundness` shows the collection sound with stray terms
        // (`two_stray_terms`).
        let strays_inert = self.cfg.gc && self.cfg.guards.on(Guard::ElectedTermsOnly);
        for term in self.cfg.stray_term_values().filter(|_| !strays_inert) {
            for src in self.nodes() {
                for dst in self.nodes().filter(|d| *d != src) {
                    actions.push(Action::Stray { src, dst, term });
                }
            }
        }
        if coordinator.is_some() {
            for node in self.nodes() {
                // A node's expiry comes before its next registration (which waits
                // for it), or not at all: a report of the new registration alone
                // stands for both (the runtime's watch may show only the new value).
                if h.unseen_joins & (1 << node.0) != 0 {
                    actions.push(Action::NotifyJoin(node));
                }
                if h.unseen_leaves & (1 << node.0) != 0 {
                    actions.push(Action::NotifyLeave(node));
                }
            }
        }
        match coordinator {
            Some(host) => {
                if h.failovers < self.cfg.failovers {
                    actions.push(Action::CoordinatorCrash(host));
                }
                if h.resigns < self.cfg.resigns {
                    actions.push(Action::Resign(host));
                }
                let gave_up = self.cfg.client_gives_up && h.term > 1;
                if !gave_up {
                    // Each drain in order once the one before it answered 0; every
                    // drain already asked for, again and again, even after its 0.
                    let mut previous_done = true;
                    if self.cfg.drains_any_order {
                        actions.extend(self.nodes().map(Action::Poll));
                    }
                    for node in self
                        .cfg
                        .drain_order()
                        .filter(|_| !self.cfg.drains_any_order)
                    {
                        if previous_done || h.is_requested(node) {
                            actions.push(Action::Poll(node));
                        }
                        previous_done = h.is_zero(node);
                    }
                }
                for node in self.nodes() {
                    actions.push(Action::Status(node));
                    if self.cfg.fixed_coordinator && state.actor_storages[node.ix()].is_some() {
                        actions.push(Action::Announce(node));
                    }
                }
                if h.promised < self.cfg.all_units() {
                    actions.push(Action::AddWork);
                }
            }
            None if h.term < self.cfg.max_term() => {
                // Static membership has one coordinator, n0: its restarts start new terms.
                let fixed = self.cfg.fixed_coordinator;
                for node in self.nodes().filter(|n| !fixed || n.0 == 0) {
                    if up(node) && h.is_member(node) && Self::node(state, node).agent.may_campaign()
                    {
                        if self.cfg.failed_elections && h.crashes < self.cfg.node_crashes {
                            actions.push(Action::ElectFails(node));
                        }
                        actions.push(Action::Elect(node));
                        if self.cfg.late_membership {
                            // Every view but the fresh one (`Elect`) that differs from
                            // the registry only where it changed while no coordinator
                            // ran, with the winner in it.
                            let me = 1u16 << node.0;
                            for view in Self::stale_views(h) {
                                if view & me != 0 {
                                    actions.push(Action::ElectView { node, view });
                                }
                            }
                        }
                    } else if self.cfg.failed_elections
                        && h.is_member(node)
                        && h.resigns < self.cfg.resigns
                    {
                        // A member that may no longer campaign, or whose process is gone
                        // while its registration (and candidacy) lives on.
                        actions.push(Action::ElectDeclined(node));
                    }
                }
            }
            None => {}
        }
    }

    // ----- applying a step ---------------------------------------------------------

    /// Runs `f` on `node`'s actor state and returns the new system state, or None when
    /// the step changed nothing and sent nothing. `fired` is the timer that fired, if
    /// any: re-arming it alone is no change.
    fn run_node(
        &self,
        state: &SysState,
        node: NodeIx,
        fired: Option<&NodeTimer>,
        delivered: Option<&Msg>,
        f: impl FnOnce(&NodeActor, &mut Cow<NodeState>, &mut Out<NodeActor>),
    ) -> Option<SysState> {
        let before = &*state.actor_states[node.ix()];
        let mut st = Cow::Borrowed(before);
        let mut out = Out::new();
        f(&self.actor, &mut st, &mut out);
        if matches!(st, Cow::Borrowed(_)) && self.no_effect(state, node, fired, &out) {
            // Nothing changes, but what it sends is judged all the same: a run that lost
            // one of these messages takes this step (`super::losses` relies on it).
            let sends = out
                .iter()
                .any(|c| matches!(c, Command::Send(_, Msg::ToNode(_))));
            let unjudged = || {
                let mut h = state.history.clone();
                self.judge_step(&mut h, node, before, before, &out, delivered);
                h == state.history
            };
            if !sends || unjudged() {
                return None;
            }
        }
        let mut next = state.clone();
        if let Some(t) = fired {
            next.timers_set[node.ix()].cancel(t);
        }
        match st {
            Cow::Owned(after) => {
                self.judge_step(&mut next.history, node, before, &after, &out, delivered);
                next.actor_states[node.ix()] = Arc::new(after);
            }
            // The actor state did not change: the successor keeps sharing it.
            Cow::Borrowed(after) => {
                self.judge_step(&mut next.history, node, before, after, &out, delivered);
            }
        }
        self.apply_commands(&mut next, node, out);
        Some(next)
    }

    /// Whether `out`, from a step of `node` that left its actor state unchanged, changes
    /// nothing either: every message is already in flight (or inert), every timer already
    /// armed (or the one that fired, re-armed, or a liveness TTL that can no longer fire:
    /// [`super::canon::ttl_timers_dead`]), every cancelled timer already unarmed, every
    /// save already stored.
    fn no_effect(
        &self,
        state: &SysState,
        node: NodeIx,
        fired: Option<&NodeTimer>,
        out: &Out<NodeActor>,
    ) -> bool {
        let i = node.ix();
        let timers = &state.timers_set[i];
        out.iter().all(|c| match c {
            Command::Send(dst, msg) => {
                let env = Envelope {
                    src: node.id(),
                    dst: *dst,
                    msg: msg.clone(),
                };
                state.network.contains(&env) || (self.cfg.gc && super::gc::inert(self, state, &env))
            }
            Command::SetTimer(t, _) => {
                Some(t) == fired
                    || timers.contains(t)
                    || (matches!(t, NodeTimer::Ttl(_))
                        && super::canon::ttl_timers_dead(self, state))
            }
            Command::CancelTimer(t) => Some(t) != fired && !timers.contains(t),
            Command::Save(x) => state.actor_storages[i].as_ref() == Some(x),
            Command::ChooseRandom(..) => false,
        })
    }

    fn apply_commands(&self, next: &mut SysState, node: NodeIx, out: Out<NodeActor>) {
        let i = node.ix();
        for c in out {
            match c {
                Command::Send(dst, msg) => {
                    next.network.insert(Envelope {
                        src: node.id(),
                        dst,
                        msg,
                    });
                }
                Command::SetTimer(t, _) => {
                    next.timers_set[i].set(t);
                }
                Command::CancelTimer(t) => {
                    next.timers_set[i].cancel(&t);
                }
                Command::Save(e) => next.actor_storages[i] = Some(e),
                Command::ChooseRandom(..) => unreachable!("the model makes no random choices"),
            }
        }
    }

    /// Judges one node step against the step properties (S1, S2, S4, S6, S10).
    fn judge_step(
        &self,
        h: &mut History,
        node: NodeIx,
        before: &NodeState,
        after: &NodeState,
        out: &Out<NodeActor>,
        delivered: Option<&Msg>,
    ) {
        let (a0, a1) = (&before.agent, &after.agent);
        if a1.liveness() == Liveness::Stopping {
            h.stopped[node.ix()] |= 1 << a1.epoch();
        }
        if a0.epoch() == a1.epoch() && a0.epoch() != 0 {
            // S1: one incarnation only steps forward, and a command moves it one step at
            // a time (a node that lost its lease walks every step at once, A6).
            let (l0, l1) = (a0.liveness(), a1.liveness());
            let skipped = l1 > l0 && l0.successor() != Some(l1) && delivered.is_some();
            if l1 < l0 || skipped {
                h.mark(Violation::S1);
            }
            // S4: a Stopping node never starts a work unit.
            if l1 == Liveness::Stopping && a1.running().any(|w| !a0.runs(w)) {
                h.mark(Violation::S4);
            }
            // S6: a liveness command is applied only by the incarnation it names.
            if let Some(Msg::ToNode(ToNode::SetLiveness { epoch, .. })) = delivered {
                if l1 != l0 && *epoch != a0.epoch() {
                    h.mark(Violation::S6);
                }
            }
        }
        let (c0, c1) = (before.coordinator.as_deref(), after.coordinator.as_deref());
        // S2: within one term, the observed (epoch, liveness) of a node never decreases.
        if let (Some(c0), Some(c1)) = (c0, c1) {
            if c0.term() == c1.term() {
                for (n, r1) in c1.records() {
                    if let Some(r0) = c0.record(n) {
                        if (r1.epoch, r1.liveness) < (r0.epoch, r0.liveness) {
                            h.mark(Violation::S2);
                        }
                    }
                }
            }
        }
        let Some(coord) = c1.or(c0) else { return };
        for c in out.iter() {
            let Command::Send(dst, Msg::ToNode(msg)) = c else {
                continue;
            };
            let dst = NodeIx::from(*dst);
            match msg {
                // S6: Stopping only for an incarnation this coordinator observed Draining.
                ToNode::SetLiveness {
                    target: Liveness::Stopping,
                    epoch,
                    ..
                } if !coord.observed_draining(&dst, *epoch) => h.mark(Violation::S6),
                // S4: a new placement only on a node observed Alive and fresh.
                ToNode::AddWork { work, op, .. } => {
                    let resend = c0.and_then(|c| c.operation(work)).is_some_and(|o| {
                        o.id == *op
                            && matches!(&o.phase, crate::protocol::coordinator::Phase::Adding { to, .. } if *to == dst)
                    });
                    let alive = coord.record(&dst).is_some_and(|r| r.is_alive_and_fresh());
                    if !resend && !alive {
                        h.mark(Violation::S4);
                    }
                    // S10: no new placement on the target of a pending drain.
                    if !resend && coord.is_pending_drain_target(&dst) {
                        h.mark(Violation::S10);
                    }
                }
                _ => {}
            }
        }
    }

    /// Takes `node` down: its process is gone with its timers and volatile state.
    fn take_down(&self, next: &mut SysState, node: NodeIx) {
        let i = node.ix();
        next.crashed[i] = true;
        next.timers_set[i].cancel_all();
        next.actor_states[i] = Arc::new(NodeState::down(&self.cfg));
    }

    /// Feeds a membership event to the live coordinator, if any.
    fn tell_coordinator(&self, next: &mut SysState, input: CoordInput<NodeIx, UnitIx>) {
        if let Some((host, _)) = Self::coordinator(next) {
            let stepped = self.run_node(next, host, None, None, |a, st, o| {
                a.coord_step(st, input, o)
            });
            if let Some(s) = stepped {
                *next = s;
            }
        }
    }

    /// Whether the last incarnation of `node` ended in a crash (rather than an exit).
    fn crashed_last(state: &SysState, node: NodeIx) -> bool {
        let last = Self::last_epoch(state, node);
        state.history.crash_ends[node.ix()] & (1 << last) != 0
    }

    /// The epoch of `node`'s last incarnation (its current one while up; 0 before it
    /// first started).
    pub fn last_epoch(state: &SysState, node: NodeIx) -> Epoch {
        state.actor_storages[node.ix()]
            .as_ref()
            .map_or(0, |s| s.epoch)
    }

    /// A down node restarts after a crash (the crash spent the budget), or after a
    /// planned exit while the budget lasts (spending it): `--node-crashes` bounds every
    /// process restart of the run.
    fn may_restart(&self, state: &SysState, node: NodeIx) -> bool {
        let first = state.actor_storages[node.ix()].is_none();
        first || Self::crashed_last(state, node) || state.history.crashes < self.cfg.node_crashes
    }

    /// Whether `node`'s election watch has something to tell its agent: it is an up
    /// member whose agent follows an older term than the last one elected. (An agent
    /// that follows the last term has nothing to learn from the watch, however it
    /// learnt it; the watch only ever reports the latest.)
    pub fn watch_pending(&self, state: &SysState, node: NodeIx) -> bool {
        Self::is_up(state, node)
            && state.history.is_member(node)
            && !state.history.is_fenced(node)
            && Self::node(state, node).agent.term_floor() < state.history.term
    }

    /// With late membership: the views a new coordinator may start from besides the
    /// registry itself. Each differs from the registry only at nodes whose registration
    /// changed while no coordinator ran ([`History::uncoordinated`]): it may lack a
    /// registration made then, or still show one that expired then.
    pub fn stale_views(h: &History) -> impl Iterator<Item = u16> + '_ {
        let base = h.members & !h.uncoordinated;
        let changed = h.uncoordinated;
        // Every subset of `changed`, from `changed` itself down to the empty one.
        let mut next = Some(changed);
        std::iter::from_fn(move || {
            let subset = next?;
            next = (subset != 0).then(|| (subset - 1) & changed);
            Some(base | subset)
        })
        .filter(move |v| *v != h.members)
    }

    /// Whether a lagging watch of `node` may still report the term before the latest.
    pub fn stale_watch_pending(&self, state: &SysState, node: NodeIx) -> bool {
        let h = &state.history;
        Self::is_up(state, node)
            && h.is_member(node)
            && !h.is_fenced(node)
            && h.prev_term > 0
            && Self::node(state, node).agent.term_floor() < h.prev_term
    }

    /// A new term is issued to `winner`. (The term before it is kept only with late
    /// membership, the one configuration that lets a watch lag: elsewhere it would only
    /// tell apart states that behave alike.)
    fn issue_term(&self, h: &mut History, winner: NodeIx) {
        if self.cfg.late_membership {
            h.prev_term = h.term;
            h.prev_leader = h.leader;
        }
        h.term += 1;
        h.leader = winner;
    }

    /// Whether a failure now is one of L2's scenarios (the target Draining, short of
    /// 0) and is to be recorded ([`ModelConfig::record_scenarios`]).
    fn target_mid_drain(&self, state: &SysState) -> bool {
        if !self.cfg.record_scenarios {
            return false;
        }
        let t = self.cfg.target();
        let h = &state.history;
        h.is_requested(t)
            && !h.is_zero(t)
            && Self::is_up(state, t)
            && Self::node(state, t).agent.liveness() == Liveness::Draining
    }
}

impl Model for DrainModel {
    type State = SysState;
    type Action = Action;

    fn init_states(&self) -> Vec<SysState> {
        let n = self.cfg.nodes as usize;
        let mut state = SysState {
            actor_states: Vec::with_capacity(n),
            network: Default::default(),
            timers_set: Default::default(),
            crashed: Default::default(),
            history: History {
                term: if self.cfg.elected_start { 0 } else { 1 },
                leader: NodeIx(0),
                prev_term: 0,
                prev_leader: NodeIx(0),
                crashes: 0,
                failovers: 0,
                lease_losses: 0,
                resigns: 0,
                leaves: 0,
                exits: 0,
                losses: 0,
                expiries: 0,
                members: if self.cfg.late_membership && self.cfg.elected_start {
                    0
                } else {
                    (1u16 << n) - 1
                },
                unseen_joins: 0,
                unseen_leaves: 0,
                uncoordinated: 0,
                registered: [0; MAX_NODES],
                left: [0; MAX_NODES],
                fenced: 0,
                crash_ends: [0; MAX_NODES],
                stopped: [0; MAX_NODES],
                requested: 0,
                zeros: 0,
                promised: self.cfg.work,
                failover_mid_drain: false,
                target_crashed_mid_drain: false,
                violations: 0,
            },
            actor_storages: vec![None; n],
            progress: Default::default(),
        };
        for node in self.nodes() {
            if self.cfg.late_membership && self.cfg.elected_start {
                // No process runs yet: each registers, then starts, in a step of its
                // own (`Action::Restart` of a node that never ran).
                state
                    .actor_states
                    .push(Arc::new(NodeState::down(&self.cfg)));
                state.crashed[node.ix()] = true;
                continue;
            }
            let mut out = Out::new();
            let s = self.actor.on_start(node.id(), &None, &mut out);
            state.actor_states.push(Arc::new(s));
            self.apply_commands(&mut state, node, out);
        }
        vec![state]
    }

    fn actions(&self, state: &SysState, actions: &mut Vec<Action>) {
        self.offer(state, actions, true);
    }

    fn next_state(&self, state: &SysState, action: Action) -> Option<SysState> {
        // A progress step a reader took before (`super::successors`).
        if let Some(cached) = super::successors::take(state, &action) {
            return cached;
        }
        let mut next = self.step(state, action)?;
        self.normalize(&mut next);
        Some(next)
    }

    fn format_action(&self, action: &Action) -> String {
        super::describe::action(action)
    }

    /// The Explorer's view of the state a step leads to (shown unless "Current state?"
    /// is ticked, which shows the full `Debug` print): [`super::describe::state_view`].
    fn format_step(&self, last_state: &SysState, action: Action) -> Option<String> {
        let next = self.next_state(last_state, action)?;
        Some(super::describe::state_view(self, &next))
    }

    /// The Explorer's picture of a path: [`super::diagram`].
    fn as_svg(&self, path: stateright::Path<SysState, Action>) -> Option<String> {
        Some(super::diagram::svg(self, &path.into_vec()))
    }

    fn properties(&self) -> Vec<Property<Self>> {
        properties::all()
    }
}

impl DrainModel {
    /// What follows every step: inert messages collected, operation ids renumbered.
    pub fn normalize(&self, next: &mut SysState) {
        if self.cfg.gc {
            super::gc::collect(self, next);
        }
        if self.cfg.canon {
            super::canon::canonicalize(self, next);
        }
    }

    /// One step, before garbage collection and canonical renaming (the sequence diagram
    /// replays steps with it to see what each one sent, and `ebbtide trace check` walks
    /// a run's steps with it).
    pub fn step(&self, state: &SysState, action: Action) -> Option<SysState> {
        match action {
            Action::Deliver { src, dst, msg } => {
                self.run_node(state, dst, None, Some(&msg), |a, st, o| {
                    a.on_msg(dst.id(), st, src.id(), msg.clone(), o)
                })
            }
            Action::Drop { src, dst, msg } => {
                let mut next = state.clone();
                if self.cfg.losses.is_some() {
                    next.history.losses += 1;
                }
                next.network.remove(&Envelope {
                    src: src.id(),
                    dst: dst.id(),
                    msg,
                });
                Some(next)
            }
            Action::Timer { node, timer } => {
                let expiry = matches!(timer, NodeTimer::Ttl(_));
                let mut next = self.run_node(state, node, Some(&timer), None, |a, st, o| {
                    a.on_timeout(node.id(), st, &timer, o)
                })?;
                if expiry && self.cfg.ttl_expiries.is_some() {
                    next.history.expiries += 1;
                }
                Some(next)
            }
            Action::Crash(node) => {
                let mut next = state.clone();
                let was_coordinator = Self::node(state, node).coordinator.is_some();
                let epoch = Self::node(state, node).agent.epoch();
                if was_coordinator && self.target_mid_drain(state) {
                    next.history.failover_mid_drain = true;
                }
                if node == self.cfg.target() && self.target_mid_drain(state) {
                    next.history.target_crashed_mid_drain = true;
                }
                next.history.crashes += 1;
                next.history.crash_ends[node.ix()] |= 1 << epoch;
                self.take_down(&mut next, node);
                Some(next)
            }
            Action::Exit(node) => {
                let mut next = state.clone();
                next.history.exits += 1;
                self.take_down(&mut next, node);
                Some(next)
            }
            Action::Restart(node) => {
                let mut next = state.clone();
                let i = node.ix();
                let first = state.actor_storages[i].is_none();
                if !Self::crashed_last(state, node) && !first {
                    next.history.crashes += 1;
                }
                let mut out = Out::new();
                let s = self
                    .actor
                    .on_start(node.id(), &state.actor_storages[i], &mut out);
                next.crashed[i] = false;
                next.actor_states[i] = Arc::new(s);
                self.apply_commands(&mut next, node, out);
                // A new process takes a new membership lease; it learns the leader from
                // its election watch later, in a step of its own (`Action::Watch`).
                next.history.fenced &= !(1 << node.0);
                if !next.history.is_member(node) {
                    next.history.members |= 1 << node.0;
                    let epoch = Self::node(&next, node).agent.epoch();
                    if self.cfg.late_membership {
                        // Registered before its agent starts; the coordinator's watch
                        // reports it later.
                        next.history.registered[i] = epoch as u8;
                        next.history.unseen_joins |= 1 << node.0;
                        if Self::coordinator(state).is_none() {
                            next.history.uncoordinated |= 1 << node.0;
                        }
                    } else {
                        self.tell_coordinator(&mut next, CoordInput::MemberJoined { node, epoch });
                    }
                }
                Some(next)
            }
            Action::LeaseLoss(node) => {
                let mut next = state.clone();
                next.history.lease_losses += 1;
                if Self::node(state, node).coordinator.is_some() && self.target_mid_drain(state) {
                    next.history.failover_mid_drain = true;
                }
                // Leadership is held by the lease: it goes in the same instant.
                let mut next = self
                    .run_node(&next, node, None, None, |a, st, o| {
                        if st.coordinator.is_some() {
                            st.to_mut().coordinator = None;
                            a.cancel_coordinator_timers(o);
                        }
                        a.agent_step(st, crate::protocol::AgentInput::LeaseLost, o)
                    })
                    .unwrap_or(next);
                // Its registration stays until the membership service expires it, a
                // separate, later step (`Leave`): the node's own lease deadline comes
                // first, so it is fenced before the cluster can move its work.
                next.history.fenced |= 1 << node.0;
                Some(next)
            }
            Action::Leave(node) => {
                let mut next = state.clone();
                next.history.members &= !(1 << node.0);
                next.history.fenced &= !(1 << node.0);
                // The registration that goes is the node's last incarnation's.
                let epoch = Self::last_epoch(state, node);
                if self.cfg.late_membership {
                    // The coordinator's watch reports it later, if one is live now (a
                    // coordinator elected later starts without it).
                    let epoch = state.history.registered[node.ix()];
                    next.history.unseen_leaves |= 1 << node.0;
                    next.history.left[node.ix()] = epoch;
                    if Self::coordinator(state).is_none() {
                        next.history.uncoordinated |= 1 << node.0;
                    }
                    return Some(next);
                }
                self.tell_coordinator(&mut next, CoordInput::MemberLeft { node, epoch });
                Some(next)
            }
            Action::NotifyJoin(node) => {
                let h = &state.history;
                if h.unseen_joins & (1 << node.0) == 0 {
                    return None;
                }
                let mut next = state.clone();
                next.history.unseen_joins &= !(1 << node.0);
                // A pending report of an older registration's expiry is folded into it
                // (a fresh snapshot lists only the new one). The expiry of this very
                // registration is reported after it.
                let i = node.ix();
                if h.left[i] != h.registered[i] {
                    next.history.unseen_leaves &= !(1 << node.0);
                }
                let epoch = state.history.registered[i] as u64;
                self.tell_coordinator(&mut next, CoordInput::MemberJoined { node, epoch });
                Some(next)
            }
            Action::Announce(node) => {
                // Its last incarnation's (the process may have ended since it sent it).
                let epoch = Self::last_epoch(state, node);
                if epoch == 0 {
                    return None;
                }
                let mut next = state.clone();
                self.tell_coordinator(&mut next, CoordInput::MemberJoined { node, epoch });
                Some(next)
            }
            Action::NotifyLeave(node) => {
                if state.history.unseen_leaves & (1 << node.0) == 0 {
                    return None;
                }
                let mut next = state.clone();
                next.history.unseen_leaves &= !(1 << node.0);
                let epoch = state.history.left[node.ix()] as u64;
                self.tell_coordinator(&mut next, CoordInput::MemberLeft { node, epoch });
                Some(next)
            }
            Action::CoordinatorCrash(host) => {
                let mut next = state.clone();
                if self.target_mid_drain(state) {
                    next.history.failover_mid_drain = true;
                }
                next.history.failovers += 1;
                let mut st = Cow::Borrowed(&*state.actor_states[host.ix()]);
                let mut out = Out::new();
                st.to_mut().coordinator = None;
                self.actor.cancel_coordinator_timers(&mut out);
                next.actor_states[host.ix()] = Arc::new(st.into_owned());
                self.apply_commands(&mut next, host, out);
                Some(next)
            }
            Action::Resign(host) => {
                let mut next = self.run_node(state, host, None, None, |a, st, o| {
                    a.coord_step(st, CoordInput::Resign, o)
                })?;
                next.history.resigns += 1;
                Some(next)
            }
            Action::GracefulLeave(node) => {
                // With late membership, as in the runtime, the node withdraws from the
                // election and its coordinator stops later, in a step of its own (a
                // `Resign`, or deposed: `CoordinatorCrash`).
                let later = self.cfg.late_membership;
                let mut next = self.run_node(state, node, None, None, |a, st, o| {
                    a.agent_step(st, crate::protocol::AgentInput::Leave, o);
                    if !later {
                        a.coord_step(st, CoordInput::Resign, o);
                    }
                })?;
                next.history.leaves += 1;
                Some(next)
            }
            Action::Elect(node) | Action::ElectView { node, .. } => {
                let h = &state.history;
                let view = match action {
                    Action::ElectView { view, .. } => {
                        if !Self::stale_views(h).any(|v| v == view) || view & (1 << node.0) == 0 {
                            return None;
                        }
                        Some(view)
                    }
                    _ => None,
                };
                let term = state.history.term + 1;
                let seen = |n: NodeIx| match view {
                    Some(v) => v & (1 << n.0) != 0,
                    None => h.is_member(n),
                };
                let members: Vec<NodeIx> = self.nodes().filter(|n| seen(*n)).collect();
                let mut next = self.run_node(state, node, None, None, |a, st, o| {
                    a.become_coordinator(node, st, term, members, self.stored(state), o)
                })?;
                self.issue_term(&mut next.history, node);
                debug_assert_eq!(next.history.term, term);
                next.history.uncoordinated = 0;
                // Its members are the registrations of this step: nothing is unseen.
                // With a lagging view, its watch will report the registrations the view
                // lacks (and the expiries it still shows, which stay unseen).
                match view {
                    None => {
                        next.history.unseen_joins = 0;
                        next.history.unseen_leaves = 0;
                    }
                    Some(v) => {
                        // Its watch starts from its view: it reports the registrations
                        // the view lacks, and the expiries of those it still shows. A
                        // member in the view is its current registration (an expiry
                        // before it is older than the view: never reported).
                        let members = next.history.members;
                        next.history.unseen_joins = members & !v;
                        next.history.unseen_leaves &= v & !members;
                    }
                }
                Some(next)
            }
            Action::ElectFails(node) => {
                // The term is issued; the winner's process dies with its persist.
                let mut next = state.clone();
                self.issue_term(&mut next.history, node);
                next.history.unseen_joins = 0;
                next.history.unseen_leaves = 0;
                next.history.crashes += 1;
                let epoch = Self::node(state, node).agent.epoch();
                next.history.crash_ends[node.ix()] |= 1 << epoch;
                self.take_down(&mut next, node);
                Some(next)
            }
            Action::ElectDeclined(node) => {
                // A resignation at once: it spends the resignation budget.
                let mut next = state.clone();
                next.history.resigns += 1;
                self.issue_term(&mut next.history, node);
                next.history.unseen_joins = 0;
                next.history.unseen_leaves = 0;
                Some(next)
            }
            Action::WatchStale(node) => {
                if !self.stale_watch_pending(state, node) {
                    return None;
                }
                let input = crate::protocol::AgentInput::LeaderChanged {
                    term: state.history.prev_term,
                    leader: state.history.prev_leader,
                };
                self.run_node(state, node, None, None, |a, st, o| {
                    a.agent_step(st, input, o)
                })
            }
            Action::Watch(node) => {
                if !self.watch_pending(state, node) {
                    return None;
                }
                let input = crate::protocol::AgentInput::LeaderChanged {
                    term: state.history.term,
                    leader: state.history.leader,
                };
                self.run_node(state, node, None, None, |a, st, o| {
                    a.agent_step(st, input, o)
                })
            }
            Action::Stray { src, dst, term } => {
                let env = Envelope {
                    src: src.id(),
                    dst: dst.id(),
                    msg: Msg::ToNode(ToNode::Bootstrap { term }),
                };
                if state.network.contains(&env)
                    || (self.cfg.gc && super::gc::inert(self, state, &env))
                {
                    // Already there, or collected at once: no new state.
                    return None;
                }
                let mut next = state.clone();
                next.network.insert(env);
                Some(next)
            }
            Action::Poll(node) => {
                let (host, _) = Self::coordinator(state)?;
                let mut answer = None;
                let stepped = self.run_node(state, host, None, None, |a, st, o| {
                    answer = a.drain_node(st, node, o);
                });
                let changed = stepped.is_some();
                let mut next = stepped.unwrap_or_else(|| state.clone());
                next.history.requested |= 1 << node.0;
                if let Some(Ok(report)) = answer {
                    if report.remaining == 0 {
                        next.history.zeros |= 1 << node.0;
                        if !properties::zero_is_safe(&next, host, node) {
                            next.history.mark(Violation::S3);
                        }
                    }
                }
                if !changed && next.history == state.history {
                    return None;
                }
                Some(next)
            }
            Action::AddWork => {
                let (host, _) = Self::coordinator(state)?;
                let h = &state.history;
                if h.promised >= self.cfg.all_units() {
                    return None;
                }
                let unit = UnitIx(h.promised);
                let mut next = state.clone();
                self.tell_coordinator(&mut next, CoordInput::AddUnit(unit));
                debug_assert!(Self::coordinator(&next).is_some_and(|(n, _)| n == host));
                next.history.promised += 1;
                Some(next)
            }
            Action::Status(node) => {
                let (host, c) = Self::coordinator(state)?;
                let zero = c.drain_status(&node).is_ok_and(|r| r.remaining == 0);
                if !zero || properties::zero_is_safe(state, host, node) {
                    return None;
                }
                let mut next = state.clone();
                next.history.mark(Violation::S3);
                Some(next)
            }
        }
    }
}
