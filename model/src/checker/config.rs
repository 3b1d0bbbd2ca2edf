//! What one model check explores.

use crate::protocol::{CoordinatorConfig, Guard, Guards, InheritedDrain};

/// The bounds and variants of one model check.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ModelConfig {
    /// Nodes in the cluster (2–8). `n0` starts as coordinator; the client drains the last.
    pub nodes: u8,
    /// How many nodes the client drains, one after the other (see
    /// [`ModelConfig::drain_order`]): the next is asked for once the one before answered
    /// 0 (a rolling upgrade). 1 to `nodes`.
    pub drains: u8,
    /// Work units that must run from the start (1–8).
    pub work: u8,
    /// Work units a client adds during the run (`POST /api/v2/work`), after the `work`
    /// units desired from the start: unit `work`, then `work + 1` …, each at any moment
    /// a coordinator is live. As the coordinator's call contract (item 4) asks, the
    /// unit is durable in the store (the data dir, etcd) before the coordinator is fed
    /// `AddUnit`; both happen in the client's step (a crash between them is the same
    /// as one right after, whose sends the network may hold for ever).
    pub added_work: u8,
    /// Checker variant: an added unit is fed to the coordinator and the client told,
    /// but the unit never reaches the store (a shell that breaks item 4 of the
    /// coordinator's call contract): the next coordinator does not know it.
    pub add_not_durable: bool,
    /// Node crashes (each followed by a restart or by leaving membership).
    pub node_crashes: u8,
    /// Coordinator failovers: the coordinator process dies while its node lives on.
    pub failovers: u8,
    /// Lease losses: a live node loses its membership lease, fences itself (steps to
    /// Stopping, stops its work, gives up leadership) and leaves (A6).
    pub lease_losses: u8,
    /// The client stops polling once the first coordinator is gone (a script that timed
    /// out, or lost its connection). L1 then asks only that the target ends up Stopping
    /// and empty: the decision of C15 rests on this variant.
    pub client_gives_up: bool,
    /// Operator resignations: an operator makes the current coordinator resign
    /// (`CoordInput::Resign`); the election then picks a node that may campaign.
    pub resigns: u8,
    /// Graceful leaves of the drain target (SIGTERM, `AgentInput::Leave`): it never
    /// campaigns again in that incarnation, and its coordinator, if it runs one, resigns.
    pub leaves: u8,
    /// Checker-only variant: the winner of an election learns its term from its
    /// election watch, late, like every other member, instead of in the step it wins.
    /// `specs/decisions.md` shows why the runtime must not do this.
    pub winner_learns_late: bool,
    /// How many messages the network may lose in one run (every copy of each); `None`
    /// for no limit. It always duplicates and reorders without limit.
    pub losses: Option<u8>,
    /// The drain scheduler's batch size.
    pub drain_batch: u8,
    /// What a new coordinator does with a drain it inherits.
    pub inherited_drain: InheritedDrain,
    /// How many times in one run a coordinator's liveness TTL may expire (a node's
    /// reports arriving too late); `None` for no limit.
    pub ttl_expiries: Option<u8>,
    /// Stray terms: how many distinct terms the election never issues (the largest
    /// issued term + 1, + 2 …) may appear in stray bootstrap requests, from any node to
    /// any other, at any time (a misconfigured or corrupted process). Each stray
    /// message, like every message, may come any number of times.
    pub stray_terms: u8,
    /// Remove permanently inert messages from the network (see `checker::gc`). Off only
    /// to check that collection changes no verdict, and to walk a trace (`ebbtide trace
    /// check`), whose messages must stay where the runtime sent them.
    pub gc: bool,
    /// Offer every loss at every step. Off (the default): a loss is offered only where
    /// it leaves a quiescent state with a drain stuck short of 0, an L1 violation (see
    /// `checker::losses` for why this changes no verdict). On only to show that, and
    /// always when `fair_rounds` is on (whose check judges every lossy state's
    /// continuation).
    pub every_loss: bool,
    /// Record in the history whether the coordinator failed, or the target crashed,
    /// while the target was Draining short of 0 (`History::failover_mid_drain`,
    /// `History::target_crashed_mid_drain`): what L2's two scenario properties ask, and
    /// nothing else reads. A record splits states the protocol never tells apart (a
    /// third more states in CI's first configuration), so an exhaustive check
    /// (`checker::run`) searches without it, then searches again with it, only until
    /// it finds both scenarios (`specs/decisions.md`, "Scenarios are witnessed by a
    /// search of their own"). On everywhere else: the Explorer, `--simulate`, the
    /// trace check.
    pub record_scenarios: bool,
    /// Put every state in canonical form (see `checker::canon`: operation ids renumbered
    /// densely). Off only to walk a trace, whose operation ids are the runtime's.
    pub canon: bool,
    /// Static membership (`ebbtide node --coordinator`): every agent knows `n0` as the
    /// one configured coordinator (`NodeAgent::with_fixed_coordinator`), and only `n0`
    /// is ever elected (a restart of its process starts the next term). Off: an
    /// election service, as with etcd.
    pub fixed_coordinator: bool,
    /// The client may ask for the drain of any node at any time, in any order, and
    /// several at once (what the runtime's HTTP API accepts), instead of the rolling
    /// upgrade of [`ModelConfig::drain_order`]; and any node, not only the last, may be
    /// asked to leave (`--leaves`). For walking traces; not in CI's configurations.
    pub drains_any_order: bool,
    /// The cluster starts with no coordinator, as the runtime's nodes do: the first one
    /// is elected in a step of its own (`Action::Elect`, term 1), which may never come
    /// (its process dies first). Off: `n0` starts as coordinator of term 1 in the
    /// initial state, which is smaller to check. For walking traces.
    pub elected_start: bool,
    /// Membership as etcd's watch delivers it: a process registers before its agent
    /// starts (a restart waits for the expiry of its last registration), and the live
    /// coordinator learns of a registration or of its expiry later, in a step of its
    /// own (`Action::NotifyJoin`, `Action::NotifyLeave`; a node's expiry before its next
    /// registration, or folded into the report of that registration; other nodes' in
    /// any order); a new
    /// coordinator starts from the registrations of its election step. With
    /// `elected_start`, no process runs at first: each starts in a step of its own. A node asked to
    /// leave resigns its coordinator in a later step too (`Action::Resign`, or deposed:
    /// `Action::CoordinatorCrash`). Off: a restart registers, and the coordinator is
    /// told, in the restart's step, and likewise a leave; a graceful leave resigns in
    /// its own step. For walking traces of elected membership.
    pub late_membership: bool,
    /// Elections that start no coordinator: the election issues a term (every watch
    /// reports it) whose winner fails to persist it and exits (`Action::ElectFails`,
    /// the runtime's `exit 4`; spends a node crash), or whose winner may no longer
    /// campaign (it became Draining, or was asked to leave, while its campaign was
    /// pending) and resigns at once (`Action::ElectDeclined`). For walking traces.
    pub failed_elections: bool,
    /// Checker variant: every DrainNode call re-sends the drain's liveness command
    /// (`CoordinatorConfig::resend_on_poll`; the runtime does not).
    pub resend_on_poll: bool,
    /// Checker variant: Stopping is requested only while the target's report is fresh
    /// (`CoordinatorConfig::stopping_needs_fresh`; the runtime does not).
    pub stopping_needs_fresh: bool,
    /// L1's fair-continuation check (`checker::fairness`): from every state (or every
    /// `fair_sample`-th, by hash), a fair continuation must reach a quiescent state within
    /// this many rounds. 0: off.
    pub fair_rounds: u8,
    /// Judge the fair continuation from one state in this many (1: every state).
    pub fair_sample: u32,
    /// Guards switched off (checker-only variants).
    #[serde(serialize_with = "serialize_guards")]
    pub guards: Guards,
}

fn serialize_guards<S: serde::Serializer>(g: &Guards, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(g.disabled().map(Guard::name))
}

/// The fair-continuation bound of CI's third configuration: the smallest bound that
/// holds there is 17 rounds (`ebbtide check --nodes 3 --work 1 --drains 2
/// --fair-rounds 16` finds a state whose continuation takes longer).
pub const CI_FAIR_ROUNDS: u8 = 20;

impl Default for ModelConfig {
    /// The configuration CI checks exhaustively.
    fn default() -> Self {
        ModelConfig {
            nodes: 3,
            drains: 1,
            work: 2,
            added_work: 0,
            add_not_durable: false,
            node_crashes: 1,
            failovers: 1,
            lease_losses: 0,
            resigns: 0,
            leaves: 0,
            client_gives_up: false,
            winner_learns_late: false,
            losses: Some(1),
            ttl_expiries: Some(1),
            drain_batch: 1,
            inherited_drain: InheritedDrain::Continue,
            stray_terms: 1,
            gc: true,
            every_loss: false,
            record_scenarios: true,
            canon: true,
            fixed_coordinator: false,
            drains_any_order: false,
            elected_start: false,
            late_membership: false,
            failed_elections: false,
            resend_on_poll: false,
            stopping_needs_fresh: false,
            fair_rounds: 0,
            fair_sample: 1,
            guards: Guards::default(),
        }
    }
}

#[cfg(test)]
impl ModelConfig {
    /// The default faults on 2 nodes and 1 unit (about 26 k states, every one in about a
    /// second): the small configuration the checker's own unit tests search whole.
    pub(crate) fn two_nodes_one_unit() -> Self {
        ModelConfig {
            nodes: 2,
            work: 1,
            ..ModelConfig::default()
        }
    }
}

impl ModelConfig {
    /// CI's second configuration, checked after the default one (`ebbtide check --ci`):
    /// smaller, with a lease loss, so that what only lease losses exercise (a node that
    /// fences itself, `reject-while-stopping`) is checked exhaustively on every run.
    pub fn lease_loss() -> Self {
        ModelConfig {
            nodes: 2,
            work: 2,
            lease_losses: 1,
            drain_batch: 2,
            ..ModelConfig::default()
        }
    }

    /// CI's third configuration: what clients can do, with every fault but lease loss.
    /// The client drains two nodes one after the other (a completed drain stops
    /// blocking the next), keeps polling both after their 0, and reads DrainStatus of
    /// every node; and from every state, a fair continuation must settle within
    /// [`CI_FAIR_ROUNDS`] rounds (L1 without the quiescence argument). One work unit,
    /// so that it fits beside the others.
    pub fn clients() -> Self {
        ModelConfig {
            work: 1,
            drains: 2,
            fair_rounds: CI_FAIR_ROUNDS,
            ..ModelConfig::default()
        }
    }

    /// CI's fourth configuration: a client adds a unit while the cluster runs (C18),
    /// at any moment a coordinator is live, with the default faults (a node crash, a
    /// failover, a loss, a TTL expiry, a stray term): 2 nodes, 1 unit from the start
    /// and 1 added. The runtime's clients add work at any time (`POST /api/v2/work`),
    /// so the model's do too.
    pub fn added_work() -> Self {
        ModelConfig {
            nodes: 2,
            work: 1,
            added_work: 1,
            ..ModelConfig::default()
        }
    }

    /// CI's fifth configuration: the runtime's environment, as the trace check's walk
    /// has it (what the runtime can do, the model can do). The cluster starts
    /// with no coordinator; every process registers before its agent starts, and the
    /// coordinator hears of registrations and expiries later, from its watch; a new
    /// coordinator's view may lack what changed while none ran; elections may start
    /// no coordinator; the client drains and leaves any node, in any order. With a node
    /// crash, a coordinator failure, a lease loss and a resignation: 2 nodes, 1 unit.
    pub fn runtime_environment() -> Self {
        ModelConfig {
            nodes: 2,
            work: 1,
            lease_losses: 1,
            resigns: 1,
            losses: Some(0),
            ttl_expiries: Some(0),
            stray_terms: 0,
            elected_start: true,
            late_membership: true,
            failed_elections: true,
            drains_any_order: true,
            ..ModelConfig::default()
        }
    }

    /// CI's sixth configuration, the heaviest, checked last: the default with a lease
    /// loss, so one of every fault class at once (a node crash, a coordinator failover,
    /// a message loss, a TTL expiry, a lease loss, a stray term) on 3 nodes and 2 units.
    /// The others each leave a fault class out or shrink the cluster; this one is where
    /// a fence meets a failover, a crash and a loss in one run. (73.8 M unique states:
    /// about 7 minutes of CI's 2 cores, where the other five take under 2.)
    pub fn every_fault() -> Self {
        ModelConfig {
            lease_losses: 1,
            ..ModelConfig::default()
        }
    }

    /// The configurations `ebbtide check --ci` checks, in order.
    pub fn ci() -> Vec<ModelConfig> {
        vec![
            ModelConfig::default(),
            ModelConfig::lease_loss(),
            ModelConfig::clients(),
            ModelConfig::added_work(),
            ModelConfig::runtime_environment(),
            ModelConfig::every_fault(),
        ]
    }

    /// Every unit the run may know: the `work` desired from the start and the
    /// `added_work` a client may add.
    pub fn all_units(&self) -> u8 {
        self.work + self.added_work
    }

    /// Checks the bounds; the message names the setting and what is wrong with it.
    pub fn validate(&self) -> Result<(), String> {
        if !(2..=super::system::MAX_NODES as u8).contains(&self.nodes) {
            return Err(format!(
                "--nodes must be between 2 and {} (got {}): a drain needs a node to move work to",
                super::system::MAX_NODES,
                self.nodes
            ));
        }
        if !(1..=self.nodes).contains(&self.drains) {
            return Err(format!(
                "--drains must be between 1 and --nodes ({}) (got {})",
                self.nodes, self.drains
            ));
        }
        if !(1..=8).contains(&self.work) {
            return Err(format!(
                "--work must be between 1 and 8 (got {})",
                self.work
            ));
        }
        if u16::from(self.work) + u16::from(self.added_work) > 8 {
            return Err(format!(
                "--work plus --added-work must be at most 8 (got {} + {})",
                self.work, self.added_work
            ));
        }
        if self.node_crashes > 4 {
            return Err(format!(
                "--node-crashes must be at most 4 (got {}): every crash multiplies the state space",
                self.node_crashes
            ));
        }
        if self.lease_losses > 4 {
            return Err(format!(
                "--lease-losses must be at most 4 (got {})",
                self.lease_losses
            ));
        }
        if self.failovers > 4 {
            return Err(format!(
                "--failovers must be at most 4 (got {})",
                self.failovers
            ));
        }
        if self.resigns > 4 {
            return Err(format!(
                "--resigns must be at most 4 (got {})",
                self.resigns
            ));
        }
        if self.leaves > 4 {
            return Err(format!("--leaves must be at most 4 (got {})", self.leaves));
        }
        if self.stray_terms > 4 {
            return Err(format!(
                "--stray-terms must be at most 4 (got {})",
                self.stray_terms
            ));
        }
        if self.drain_batch == 0 {
            return Err("--drain-batch must be at least 1".to_string());
        }
        Ok(())
    }

    /// The node the client drains.
    pub fn target(&self) -> super::NodeIx {
        super::NodeIx(self.nodes - 1)
    }

    /// The nodes the client drains, in order: the last node first (the target), then
    /// the one before it, and so on.
    pub fn drain_order(&self) -> impl Iterator<Item = super::NodeIx> {
        let last = self.nodes - 1;
        (0..self.drains).map(move |k| super::NodeIx(last - k))
    }

    /// The coordinator configuration every elected coordinator uses.
    pub fn coordinator(&self) -> CoordinatorConfig {
        CoordinatorConfig {
            drain_batch: self.drain_batch as usize,
            resend_on_poll: self.resend_on_poll,
            stopping_needs_fresh: self.stopping_needs_fresh,
            inherited_drain: self.inherited_drain,
        }
    }

    /// The largest term the election oracle hands out: the first, one per failover and
    /// per crash, one per operator resignation or leave, and one per resignation of a
    /// coordinator whose node stopped being Alive (at most one per node).
    pub fn max_term(&self) -> u64 {
        1 + self.failovers as u64
            + self.node_crashes as u64
            + self.lease_losses as u64
            + self.resigns as u64
            + self.leaves as u64
            + self.nodes as u64
    }

    /// The stray terms: terms the election never issues.
    pub fn stray_term_values(&self) -> impl Iterator<Item = u64> {
        let max = self.max_term();
        (1..=self.stray_terms as u64).map(move |k| max + k)
    }
}
