//! Refinement: the run, step by step, is a behaviour of the checked model.
//!
//! Replay (`replay.rs`) shows that each process ran the core faithfully; it cannot show
//! that the *environment* the runtime gave the cores (which messages arrived when,
//! which process started with which epoch and leader, which terms the elections
//! issued, what clients asked) is one the model checker explored. This walk does: it
//! puts the cluster's steps in one order and takes each through the stateright
//! model's own transition function ([`DrainModel::step`], with collection and
//! canonical renaming off, so that the model's network and operation ids stay the
//! runtime's), and at every step checks that
//!
//! 1. the step is an action the model allows in that state (a message delivered was
//!    sent and is in the model's network; a timer that fired is armed; a restart,
//!    an election, a poll or an added unit is among [`Model::actions`]);
//! 2. the node's core in the model, fed the same input, gives exactly the outputs the
//!    runtime logged, and the model's step leaves that core exactly where feeding the
//!    input leaves it (so the action really is that input: up to the renaming of ids,
//!    the model's core and the replayed one are the same state);
//! 3. every `always` property of the model holds on the state reached.
//!
//! **Ids.** Node names, unit names and terms are renamed to the model's small ids by
//! rank, which keeps their order (the core breaks ties by id order): the first
//! coordinator must be the first node by name, its units the first units by name, and
//! units added later must come after them, added in name order (the model adds `w0`,
//! `w1`, … in turn). A trace that cannot be renamed so is reported, not guessed at.
//!
//! **Order.** Each process is two chains (its agent's records and its coordinator's,
//! each in `seq` order): the two cores share nothing but messages, which the model's
//! network carries. The walk takes, of the chain heads the model allows next, the one
//! with the smallest timestamp (simulated time under the simulation, where the order
//! is exact up to steps at the same instant; the wall clock of each process in a real
//! run, where a step that is not yet allowed simply waits for its cause).
//!
//! **Steps the trace does not log.** A process's end is not logged: a node's next
//! incarnation starts after a hidden `Crash` of the one before (all of whose steps
//! came first). A coordinator's `Start` is the model's `Elect`, which also tells the
//! winner's agent its term in the same step; the runtime logs that `LeaderChanged`
//! as the agent's next step, and the walk checks that it is, with the outputs the
//! model's step gave. A step the model has no action for, which changes nothing and
//! sends nothing new (a repeated `LeaderChanged`, a `MemberJoined` of a member), is a
//! stutter.

use super::parse::{Place, Process, Record, Role};
use super::{Check, Failure};
use ebbtide_model::checker::actor::{Agent, Coord, Msg, NodeActor, NodeTimer};
use ebbtide_model::checker::properties;
use ebbtide_model::checker::system::{Action, DrainModel, SysState};
use ebbtide_model::checker::{ModelConfig, NodeIx, UnitIx};
use ebbtide_model::protocol::agent::Leader;
use ebbtide_model::{
    AgentInput, CoordInput, CoordOutput, CoordTimer, Guard, Guards, ToCoordinator,
};
use serde_json::{json, Map, Value};
use stateright::actor::Envelope;
use stateright::{Expectation, Model};
use std::collections::BTreeSet;
use std::fmt;

/// What a walk covered.
#[derive(Debug)]
pub struct Refined {
    /// Records taken through the model (every record of the trace).
    pub steps: usize,
    /// Steps that left the model's state as it was (a duplicate delivered again, a
    /// heartbeat that changes nothing, a `LeaderChanged` already learnt): not in
    /// [`Refined::path`].
    pub stutters: usize,
    /// Process ends the walk inserted (the trace does not log them).
    pub hidden_crashes: usize,
    /// Elections the walk inserted whose winner resigned at once (only watches report
    /// them).
    pub hidden_elections: usize,
    /// Elections whose coordinator started from a view that lacks registration changes
    /// made after its snapshot was read (`Action::ElectView`): the model allows a view
    /// to miss only changes made while no coordinator ran, and is checked safe with
    /// them (`specs/protocol.md`, "the new coordinator's view").
    pub lagging_views: usize,
    /// Registrations and expiries the walk inserted (late membership: the trace logs
    /// only the coordinator's notice of them).
    pub hidden_membership: usize,
    /// Of which ends inside a logged step, whose persist never became durable (see
    /// `Walk::cut_short`).
    pub cut_short: usize,
    /// The model configuration the walk ran under.
    pub nodes: u8,
    pub units: u8,
    pub static_membership: bool,
    /// The model's actions that changed its state, from its initial state (for
    /// `--explore`: each one a step of the Explorer).
    pub path: Vec<Action>,
    /// The configuration, to rebuild the model that walked.
    pub config: ModelConfig,
}

impl fmt::Display for Refined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a behaviour of the model ({} membership, {} nodes, {} units; {} model steps, \
             {} further steps changed nothing; {} process ends inserted, {} of them inside \
             a step whose persist was lost; {} elections from a view read before a later \
             registration change)",
            if self.static_membership {
                "static"
            } else {
                "elected"
            },
            self.nodes,
            self.units,
            self.path.len(),
            self.stutters,
            self.hidden_crashes,
            self.cut_short,
            self.lagging_views
        )
    }
}

use super::replay::{AgentStart, CoordStart};

fn start_body(r: &Record) -> Option<&Value> {
    r.input.as_object().and_then(|o| o.get("Start"))
}

/// The renaming of the trace's ids to the model's.
struct Names {
    nodes: Vec<String>,
    units: Vec<String>,
    /// The terms elections issued (coordinators started with, or winners learnt),
    /// ascending: model term `i + 1`.
    terms: Vec<u64>,
    /// Of which (model numbering) those whose winner neither started a coordinator nor
    /// learnt its term: it resigned at once (`Action::ElectDeclined`).
    declined: BTreeSet<u64>,
    /// Each term's winner (model numbering), as the records name it.
    leaders: std::collections::BTreeMap<u64, String>,
}

impl Names {
    fn node(&self, name: &str) -> Option<NodeIx> {
        self.nodes
            .binary_search_by(|n| n.as_str().cmp(name))
            .ok()
            .map(|i| NodeIx(i as u8))
    }

    fn unit(&self, name: &str) -> Option<UnitIx> {
        self.units
            .binary_search_by(|n| n.as_str().cmp(name))
            .ok()
            .map(|i| UnitIx(i as u8))
    }

    fn term(&self, term: u64) -> Option<u64> {
        if term == 0 {
            return Some(0);
        }
        self.terms.binary_search(&term).ok().map(|i| i as u64 + 1)
    }

    /// `v` with node and unit names replaced by the model's indices and every `term`
    /// by its rank.
    fn map(&self, v: &Value) -> Result<Value, String> {
        Ok(match v {
            Value::String(s) => match (self.node(s), self.unit(s)) {
                (Some(n), _) => json!(n.0),
                (None, Some(u)) => json!(u.0),
                (None, None) => v.clone(),
            },
            Value::Array(a) => {
                Value::Array(a.iter().map(|x| self.map(x)).collect::<Result<_, _>>()?)
            }
            Value::Object(o) => {
                let mut m = Map::new();
                for (k, x) in o {
                    let x = match (k.as_str(), x.as_u64()) {
                        ("term", Some(t)) => json!(self.term(t).ok_or_else(|| format!(
                            "term {t} is no coordinator's term in the trace"
                        ))?),
                        _ => self.map(x)?,
                    };
                    m.insert(k.clone(), x);
                }
                Value::Object(m)
            }
            _ => v.clone(),
        })
    }

    fn typed<T: serde::de::DeserializeOwned>(&self, v: &Value) -> Result<T, String> {
        serde_json::from_value(self.map(v)?)
            .map_err(|e| format!("cannot read as a model value: {e}"))
    }
}

/// Where one record is: (process, index in its records).
type At = (usize, usize);

/// What the winner's agent must log next: the `LeaderChanged` the model's `Elect` fed
/// it, with the outputs that gave.
struct PendingLeader {
    term: u64,
    outputs: Vec<Value>,
}

struct Walk<'a> {
    processes: &'a [Process],
    names: Names,
    model: DrainModel,
    state: SysState,
    walked: Vec<Vec<bool>>,
    /// Per process: the next unwalked record of its agent chain and of its coordinator
    /// chain (indices into its records).
    heads: Vec<[Option<usize>; 2]>,
    /// Per model node: the process it runs now.
    current: Vec<Option<usize>>,
    pending_leader: Vec<Option<PendingLeader>>,
    /// Per model node: the process whose coordinator the model's coordinator there is.
    coordinators: Vec<Option<usize>>,
    /// Per model node: a graceful leave resigned its coordinator in the model; the
    /// runtime's `Resign` record is still to come.
    pending_resign: Vec<bool>,
    /// `EBBTIDE_REFINE_DEBUG` is set: print each record walked and each model action
    /// taken (read once, not per step).
    debug: bool,
    out: Refined,
}

fn fail(r: &Record, what: String) -> Box<Failure> {
    Box::new(Failure::new(Check::Refinement, r, what))
}

/// Walks the trace through the model; the first step that is not a behaviour of the
/// model is the failure.
pub fn refine(processes: &[Process]) -> Result<Refined, Box<Failure>> {
    let mut walk = Walk::new(processes)?;
    walk.run()?;
    Ok(walk.out)
}

impl<'a> Walk<'a> {
    fn new(processes: &'a [Process]) -> Result<Self, Box<Failure>> {
        let first_record = processes
            .iter()
            .flat_map(|p| p.records.first())
            .min_by_key(|r| (r.ts_us, r.place().file, r.place().line));
        let Some(first_record) = first_record else {
            return Err(Box::new(Failure {
                check: Check::Refinement,
                place: Place {
                    file: Default::default(),
                    line: 0,
                },
                process: String::new(),
                what: "the trace has no records".into(),
                input: Value::Null,
                logged: vec![],
                core_gave: None,
            }));
        };
        // The coordinator starts, by term: the first is the model's initial state.
        let mut starts: Vec<(&Record, CoordStart)> = Vec::new();
        let mut agent_starts: Vec<(&Record, AgentStart)> = Vec::new();
        let mut added: BTreeSet<String> = BTreeSet::new();
        let mut elected: BTreeSet<u64> = BTreeSet::new();
        // Every (term, leader) a `LeaderChanged` reports.
        let mut reports: Vec<(u64, String)> = Vec::new();
        let mut nodes: BTreeSet<String> = BTreeSet::new();
        for r in processes.iter().flat_map(|p| &p.records) {
            nodes.insert(r.node.clone());
            if let Some(body) = start_body(r) {
                let bad = |e: serde_json::Error| fail(r, format!("unreadable Start record: {e}"));
                match r.role {
                    Role::Coordinator => {
                        let s: CoordStart = serde_json::from_value(body.clone()).map_err(bad)?;
                        nodes.extend(s.members.iter().cloned());
                        starts.push((r, s));
                    }
                    Role::Agent => {
                        agent_starts.push((r, serde_json::from_value(body.clone()).map_err(bad)?))
                    }
                }
            } else if let Some(u) = r.input.get("AddUnit").and_then(Value::as_str) {
                added.insert(u.to_owned());
            } else if let Some(l) = r.input.get("LeaderChanged") {
                if let (Some(t), Some(leader)) = (l["term"].as_u64(), l["leader"].as_str()) {
                    // A winner learning its own term with no coordinator start after
                    // it: its process died with the step (`ElectFails`, taken where the
                    // step was cut short), or it resigned, a leave having come first (a
                    // declined election, then its watch's report).
                    reports.push((t, leader.to_owned()));
                }
            }
        }
        starts.sort_by_key(|(_, s)| s.term);
        let Some((first_start, first)) = starts.first() else {
            return Err(fail(
                first_record,
                "no coordinator ever started: the model starts with one".into(),
            ));
        };
        let nodes: Vec<String> = nodes.into_iter().collect();
        if nodes.len() < 2 || nodes.len() > ebbtide_model::checker::system::MAX_NODES {
            return Err(fail(
                first_start,
                format!(
                    "{} nodes: the model has 2 to {}",
                    nodes.len(),
                    ebbtide_model::checker::system::MAX_NODES
                ),
            ));
        }
        let mut initial: Vec<String> = first.desired.clone();
        initial.sort();
        let added: Vec<String> = added.into_iter().filter(|u| !initial.contains(u)).collect();
        let mut units = initial.clone();
        units.extend(added.iter().cloned());
        if units.windows(2).any(|w| w[0] >= w[1]) {
            return Err(fail(
                first_start,
                "units added later sort before units desired from the start: the model's \
                 ids cannot keep their order"
                    .into(),
            ));
        }
        if units.len() > u8::MAX as usize {
            return Err(fail(
                first_start,
                format!("{} units: the model has at most 255", units.len()),
            ));
        }
        if starts.windows(2).any(|w| w[0].1.term == w[1].1.term) {
            return Err(fail(
                first_start,
                "two coordinators started with the same term".into(),
            ));
        }
        elected.extend(starts.iter().map(|(_, s)| s.term));
        // Terms only watches report: elections whose winner resigned at once.
        let watched: BTreeSet<u64> = reports.iter().map(|(t, _)| *t).collect();
        let declined_raw: Vec<u64> = watched.difference(&elected).copied().collect();
        elected.extend(declined_raw.iter().copied());
        let terms: Vec<u64> = elected.into_iter().collect();
        let declined: BTreeSet<u64> = declined_raw
            .iter()
            .map(|t| terms.binary_search(t).expect("a term") as u64 + 1)
            .collect();
        let mut leaders = std::collections::BTreeMap::new();
        for (t, n) in reports {
            if let Ok(i) = terms.binary_search(&t) {
                leaders.insert(i as u64 + 1, n);
            }
        }
        for (_, st) in &starts {
            if let Ok(i) = terms.binary_search(&st.term) {
                leaders.insert(i as u64 + 1, st.host.clone());
            }
        }
        let mut guards_off: BTreeSet<&String> = first.guards_off.iter().collect();
        guards_off.extend(agent_starts.iter().flat_map(|(_, s)| &s.guards_off));
        let mut guards = Guards::ALL_ON;
        for g in guards_off {
            guards = guards.without(
                g.parse::<Guard>()
                    .map_err(|e| fail(first_start, format!("guard {g}: {e}")))?,
            );
        }
        let fixed = agent_starts
            .iter()
            .any(|(_, s)| s.fixed_coordinator.is_some());
        if let Some((r, s)) = agent_starts
            .iter()
            .find(|(_, s)| s.fixed_coordinator.as_ref() != fixed.then_some(&nodes[0]))
        {
            return Err(fail(
                r,
                format!(
                    "agent configured with coordinator {:?}: the model's static membership \
                     has every agent follow its first node ({}), and elected membership none",
                    s.fixed_coordinator, nodes[0]
                ),
            ));
        }
        let c = &first.config;
        let cfg = ModelConfig {
            nodes: nodes.len() as u8,
            drains: nodes.len() as u8,
            work: initial.len() as u8,
            added_work: added.len() as u8,
            node_crashes: u8::MAX,
            failovers: u8::MAX,
            lease_losses: u8::MAX,
            resigns: u8::MAX,
            leaves: u8::MAX,
            losses: None,
            ttl_expiries: None,
            stray_terms: 0,
            drain_batch: c.drain_batch.min(u8::MAX as usize) as u8,
            inherited_drain: c.inherited_drain,
            resend_on_poll: c.resend_on_poll,
            stopping_needs_fresh: c.stopping_needs_fresh,
            gc: false,
            canon: false,
            fixed_coordinator: fixed,
            drains_any_order: true,
            elected_start: true,
            late_membership: !fixed,
            failed_elections: true,
            guards,
            ..ModelConfig::default()
        };
        if cfg.coordinator() != *c {
            return Err(fail(
                first_start,
                format!("coordinator configuration {c:?} cannot be the model's"),
            ));
        }
        let model = DrainModel::new(cfg.clone()).walking();
        let state = model.init_states().remove(0);
        let n = processes.len();
        let mut walk = Walk {
            processes,
            names: Names {
                nodes,
                units,
                terms,
                declined,
                leaders,
            },
            state,
            walked: processes
                .iter()
                .map(|p| vec![false; p.records.len()])
                .collect(),
            heads: vec![[None, None]; n],
            current: vec![None; cfg.nodes as usize],
            pending_leader: (0..cfg.nodes).map(|_| None).collect(),
            coordinators: vec![None; cfg.nodes as usize],
            pending_resign: vec![false; cfg.nodes as usize],
            debug: std::env::var_os("EBBTIDE_REFINE_DEBUG").is_some(),
            out: Refined {
                steps: 0,
                stutters: 0,
                hidden_crashes: 0,
                cut_short: 0,
                hidden_membership: 0,
                hidden_elections: 0,
                lagging_views: 0,
                nodes: cfg.nodes,
                units: cfg.all_units(),
                static_membership: fixed,
                path: Vec::new(),
                config: cfg,
            },
            model,
        };
        walk.init()?;
        Ok(walk)
    }

    fn record(&self, (p, i): At) -> &'a Record {
        &self.processes[p].records[i]
    }

    fn node_of(&self, r: &Record) -> Result<NodeIx, Box<Failure>> {
        self.names
            .node(&r.node)
            .ok_or_else(|| fail(r, format!("unknown node {}", r.node)))
    }

    /// Matches the model's initial state against the first incarnation of every node and
    /// the first coordinator, and marks their `Start` records walked.
    fn init(&mut self) -> Result<(), Box<Failure>> {
        let cfg = self.model.cfg.clone();
        if cfg.late_membership {
            // No process runs in the model's initial state: each first start is a
            // step (`Restart`) the walk takes at its `Start` record.
            return self.finish_init();
        }
        for node in 0..cfg.nodes {
            let name = &self.names.nodes[node as usize];
            // The node's first process: the one whose agent starts with the lowest epoch.
            let first = self
                .processes
                .iter()
                .enumerate()
                .filter_map(|(p, proc_)| {
                    let (i, r) = proc_
                        .records
                        .iter()
                        .enumerate()
                        .find(|(_, r)| r.role == Role::Agent && &r.node == name)?;
                    Some((r.epoch, p, i, r))
                })
                .min_by_key(|x| x.0);
            let Some((_, p, i, r)) = first else {
                let r = self.processes[0].records.first().expect("a record");
                return Err(fail(r, format!("node {name} has no agent in the trace")));
            };
            let s: AgentStart = start_body(r)
                .and_then(|b| serde_json::from_value(b.clone()).ok())
                .ok_or_else(|| fail(r, "the first agent record of a node is no Start".into()))?;
            if s.epoch != 1 || s.leader.is_some() {
                return Err(fail(
                    r,
                    format!(
                        "node {name} starts as epoch {} with leader {:?}: the model starts every \
                         node as epoch 1 knowing no leader (a data dir from an earlier run?)",
                        s.epoch, s.leader
                    ),
                ));
            }
            let mut direct = NodeActor::agent_of(&cfg, 1, None);
            let mut out = Vec::new();
            direct.start(&mut out);
            self.compare_outputs(r, &ser_all(&out), &r.outputs)?;
            self.walked[p][i] = true;
            self.current[node as usize] = Some(p);
            let model_agent = &DrainModel::node(&self.state, NodeIx(node)).agent;
            if *model_agent != direct {
                return Err(fail(
                    r,
                    format!("the model's initial agent of {name} is not the trace's"),
                ));
            }
        }
        self.finish_init()
    }

    fn finish_init(&mut self) -> Result<(), Box<Failure>> {
        for p in 0..self.processes.len() {
            self.advance(p);
        }
        Ok(())
    }

    fn direct_coordinator(
        &self,
        host: NodeIx,
        term: u64,
        members: Vec<NodeIx>,
        desired: Vec<UnitIx>,
    ) -> (Coord, Vec<CoordOutput<NodeIx, UnitIx>>) {
        let mut out = Vec::new();
        let c = Coord::new(
            host,
            term,
            members,
            desired,
            self.model.cfg.coordinator(),
            self.model.cfg.guards,
            &mut out,
        );
        (c, out)
    }

    /// Moves process `p`'s chain heads past walked records.
    fn advance(&mut self, p: usize) {
        for (k, role) in [Role::Agent, Role::Coordinator].into_iter().enumerate() {
            self.heads[p][k] = self.processes[p]
                .records
                .iter()
                .enumerate()
                .position(|(i, r)| r.role == role && !self.walked[p][i]);
        }
    }

    fn all_walked(&self, p: usize) -> bool {
        self.walked[p].iter().all(|w| *w)
    }

    fn run(&mut self) -> Result<(), Box<Failure>> {
        loop {
            let mut heads: Vec<At> = (0..self.processes.len())
                .flat_map(|p| self.heads[p].iter().flatten().map(move |&i| (p, i)))
                .collect();
            if heads.is_empty() {
                self.out.steps = self.walked.iter().map(Vec::len).sum();
                return Ok(());
            }
            heads.sort_by_key(|&at| {
                let r = self.record(at);
                (r.ts_us, r.place().file, r.place().line)
            });
            let next = heads.iter().copied().find(|&at| self.allowed(at).is_ok());
            let Some(at) = next else {
                if self.debug {
                    for &h in &heads {
                        eprintln!("stuck {}: {:?}", self.record(h).place(), self.allowed(h));
                    }
                }
                let at = heads[0];
                let why = self.allowed(at).expect_err("not allowed");
                return Err(fail(
                    self.record(at),
                    format!("no step of the trace is one the model allows next; the earliest waits because {why}"),
                ));
            };
            if self.debug {
                let r = self.record(at);
                eprintln!(
                    "walk {} {}",
                    r.place(),
                    r.input.to_string().chars().take(100).collect::<String>()
                );
            }
            self.take(at)?;
            self.walked[at.0][at.1] = true;
            self.advance(at.0);
        }
    }

    /// Whether the model may take record `at` now; if not, why.
    fn allowed(&self, (p, i): At) -> Result<(), String> {
        let r = self.record((p, i));
        let node = self.names.node(&r.node).ok_or("an unknown node")?;
        let is_start = start_body(r).is_some();
        if r.role == Role::Agent && is_start && self.model.cfg.late_membership {
            // A process registers before its agent starts; if the next election's
            // snapshot of the members lacks this node, it registered after that
            // election, whatever the timestamps say.
            let epoch = start_body(r).and_then(|b| b["epoch"].as_u64());
            if let Some((members, joined)) = self.next_election(&r.node, epoch) {
                // (Unless the live coordinator is the one told of it.)
                let told_now = DrainModel::coordinator(&self.state)
                    .and_then(|(host, _)| self.coordinators[host.ix()])
                    .is_some_and(|q| self.will_report_join(q, &r.node, epoch));
                if !members.contains(&r.node) && joined && !told_now {
                    return Err(format!(
                        "the next election's members lack {}: it registers after it",
                        r.node
                    ));
                }
            }
        }
        if r.role == Role::Agent && is_start {
            return match self.current[node.ix()] {
                Some(q) if !self.all_walked(q) => Err(format!(
                    "{}'s earlier process {} still has steps to take",
                    r.node, self.processes[q].name
                )),
                _ => Ok(()),
            };
        }
        if self.current[node.ix()] != Some(p) {
            return Err(format!("its process has not started on {} yet", r.node));
        }
        let has_coord = DrainModel::node(&self.state, node).coordinator.is_some();
        if r.role == Role::Coordinator {
            if is_start {
                self.election_waits(p, i)?;
                if let Some((host, _)) = DrainModel::coordinator(&self.state) {
                    // It must have taken its last step.
                    if self.coordinator_busy(host) {
                        return Err(format!(
                            "the coordinator on {} still has steps to take",
                            self.names.nodes[host.ix()]
                        ));
                    }
                }
                return Ok(());
            }
            let resigning = self.pending_resign[node.ix()] && r.input == "Resign";
            if !has_coord && !resigning {
                return Err(format!("the model has no coordinator on {}", r.node));
            }
        }
        let left = r.input.get("MemberLeft").and_then(|m| m["node"].as_str());
        if let Some(left) = left.filter(|_| !self.model.cfg.late_membership) {
            // A registration goes once its process has ended: after its last step.
            let gone = self.names.node(left).ok_or("an unknown node left")?;
            if let Some(q) = self.current[gone.ix()].filter(|q| !self.all_walked(*q)) {
                return Err(format!(
                    "{left} left, but its process {} still has steps to take",
                    self.processes[q].name
                ));
            }
        }
        if let Some(j) = r
            .input
            .get("MemberJoined")
            .filter(|_| self.model.cfg.late_membership)
        {
            // A registration is its process's: the walk starts that incarnation first.
            let n = j["node"].as_str().and_then(|n| self.names.node(n));
            let epoch = j["epoch"].as_u64();
            if let (Some(n), Some(epoch)) = (n, epoch) {
                let runs = DrainModel::is_up(&self.state, n) && self.agent(n).epoch() == epoch;
                let ran = self.state.history.registered[n.ix()] as u64 == epoch;
                if !runs && !ran && self.agent(n).epoch() < epoch {
                    return Err(format!(
                        "incarnation {epoch} of {} has not started yet",
                        j["node"]
                    ));
                }
            }
        }
        if let Some(l) = r.input.get("LeaderChanged") {
            // A watch reports an election that happened: the elections up to its term
            // must be walkable (the winner learning its own term is that election).
            if let Some(term) = l["term"].as_u64().and_then(|t| self.names.term(t)) {
                let own = l["leader"].as_str() == Some(r.node.as_str());
                let upto = if own || !self.names.declined.contains(&term) {
                    term
                } else {
                    term + 1
                };
                if let Some(why) = self.catch_up_waits(upto) {
                    return Err(why);
                }
                if !own && !self.names.declined.contains(&term) && term > self.state.history.term {
                    return Err(format!("the election of its term ({l}) is not walked yet"));
                }
            }
        }
        self.election_waits(p, i)?;
        if let Some(m) = r.input.get("Message") {
            let (src, msg) = self.envelope(r, m).map_err(|f| f.what)?;
            let env = Envelope {
                src: src.id(),
                dst: node.id(),
                msg,
            };
            if !self.state.network.contains(&env) {
                return Err(format!(
                    "its message ({m}) is not in the model's network yet"
                ));
            }
        }
        Ok(())
    }

    /// The model message a receipt is, and its sender.
    fn envelope(&self, r: &Record, m: &Value) -> Result<(NodeIx, Msg), Box<Failure>> {
        let from: NodeIx = self.names.typed(&m["from"]).map_err(|e| fail(r, e))?;
        let msg = match r.role {
            Role::Agent => Msg::ToNode(self.names.typed(&m["msg"]).map_err(|e| fail(r, e))?),
            Role::Coordinator => match self.names.typed(&m["msg"]).map_err(|e| fail(r, e))? {
                ToCoordinator::Heartbeat { epoch, liveness }
                | ToCoordinator::SetLivenessResponse { epoch, liveness } => {
                    Msg::Report { epoch, liveness }
                }
                other => Msg::ToCoord(other),
            },
        };
        Ok((from, msg))
    }

    fn compare_outputs(
        &self,
        r: &Record,
        model: &[Value],
        logged: &[Value],
    ) -> Result<(), Box<Failure>> {
        let logged: Vec<Value> = logged
            .iter()
            .map(|v| self.names.map(v))
            .collect::<Result<_, _>>()
            .map_err(|e| fail(r, e))?;
        if model != logged {
            let mut f = fail(
                r,
                "the model's core, fed this input in the model's state, gives other outputs \
                 than the runtime logged (ids in the model's numbering)"
                    .into(),
            );
            f.logged = logged;
            f.core_gave = Some(Value::Array(model.to_vec()));
            return Err(f);
        }
        Ok(())
    }

    /// Takes the model action `action` (checking that the model allows it), or stutters
    /// when the model's step changes nothing.
    fn act(&mut self, r: &Record, action: Action) -> Result<(), Box<Failure>> {
        let cheap = matches!(action, Action::Deliver { .. } | Action::Timer { .. });
        if !cheap {
            let mut actions = Vec::new();
            self.model.actions(&self.state, &mut actions);
            if !actions.contains(&action) {
                let node_actions: Vec<String> = actions
                    .iter()
                    .filter(|a| !matches!(a, Action::Deliver { .. } | Action::Drop { .. }))
                    .map(|a| self.model.format_action(a))
                    .collect();
                return Err(fail(
                    r,
                    format!(
                        "the model does not allow {} here; it allows: {}",
                        self.model.format_action(&action),
                        node_actions.join(", ")
                    ),
                ));
            }
        }
        if self.debug {
            eprintln!("  act {}", self.model.format_action(&action));
        }
        if let Some(next) = self.model.step(&self.state, action.clone()) {
            self.state = next;
            self.out.path.push(action);
        } else {
            self.out.stutters += 1;
        }
        self.judge(r)
    }

    /// Every `always` property on the current state.
    fn judge(&self, r: &Record) -> Result<(), Box<Failure>> {
        for p in properties::catalogue() {
            if p.expectation == Expectation::Always && !(p.condition)(&self.model, &self.state) {
                return Err(fail(
                    r,
                    format!(
                        "the model's state after this step breaks {}: {}",
                        p.name, p.statement
                    ),
                ));
            }
        }
        Ok(())
    }

    fn agent(&self, node: NodeIx) -> &Agent {
        &DrainModel::node(&self.state, node).agent
    }

    fn coord(&self, node: NodeIx) -> Option<&Coord> {
        DrainModel::node(&self.state, node)
            .coordinator
            .as_deref()
            .map(|c| &**c)
    }

    fn take(&mut self, at: At) -> Result<(), Box<Failure>> {
        let r = self.record(at);
        let node = self.node_of(r)?;
        match r.role {
            Role::Agent => self.take_agent(at, r, node),
            Role::Coordinator => self.take_coordinator(at, r, node),
        }
    }

    fn take_agent(&mut self, (p, i): At, r: &Record, node: NodeIx) -> Result<(), Box<Failure>> {
        if let Some(body) = start_body(r) {
            let s: AgentStart = serde_json::from_value(body.clone())
                .map_err(|e| fail(r, format!("unreadable Start: {e}")))?;
            if DrainModel::is_up(&self.state, node) {
                self.end_process(r, node)?;
            }
            if self.model.cfg.late_membership && self.state.history.is_member(node) {
                // A process registers before its agent starts, and etcd takes a new
                // registration of a node only once the last one expired.
                self.act(r, Action::Leave(node))?;
                self.out.hidden_membership += 1;
            }
            let leader: Option<Leader<NodeIx>> = self
                .names
                .typed(&serde_json::to_value(&s.leader).expect("json"))
                .map_err(|e| fail(r, e))?;
            let mut direct = NodeActor::agent_of(&self.model.cfg, s.epoch, leader);
            let mut out = Vec::new();
            direct.start(&mut out);
            self.act(r, Action::Restart(node))?;
            if *self.agent(node) != direct {
                let m = self.agent(node);
                return Err(fail(
                    r,
                    format!(
                        "the model restarts {} as epoch {} following {:?}; the runtime started \
                         epoch {} following {:?}",
                        r.node,
                        m.epoch(),
                        m.leader(),
                        s.epoch,
                        s.leader
                    ),
                ));
            }
            self.compare_outputs(r, &ser_all(&out), &r.outputs)?;
            self.current[node.ix()] = Some(p);
            self.pending_leader[node.ix()] = None;
            return Ok(());
        }
        if self.cut_short((p, i), r, node)? {
            return Ok(());
        }
        let input: AgentInput<NodeIx, UnitIx> =
            self.names.typed(&r.input).map_err(|e| fail(r, e))?;
        // The winner's agent learnt its term before its coordinator started (as the
        // runtime does it): both are the model's one election step.
        if let AgentInput::LeaderChanged { term, leader } = &input {
            if *leader == node && self.pending_leader[node.ix()].is_none() {
                self.catch_up(r, *term)?;
            }
            let next = self.state.history.term + 1;
            if *leader == node && *term == next && self.pending_leader[node.ix()].is_none() {
                if let Some(j) = self.start_of_term(p, next) {
                    let start = self.record((p, j));
                    let outputs = self.elect(start, node)?;
                    self.coordinators[node.ix()] = Some(p);
                    self.walked[p][j] = true;
                    return self.compare_outputs(r, &outputs, &r.outputs);
                }
            }
        }
        if let Some(pending) = self.pending_leader[node.ix()].take() {
            let expected = AgentInput::LeaderChanged {
                term: pending.term,
                leader: node,
            };
            if input != expected {
                return Err(fail(
                    r,
                    format!(
                        "the model's election told {}'s agent its term {} in the step it won; \
                         the runtime's agent took another step first",
                        r.node, pending.term
                    ),
                ));
            }
            return self.compare_outputs(r, &pending.outputs, &r.outputs);
        }
        // The input fed to the model's agent directly: its outputs and the state after.
        let mut direct = self.agent(node).clone();
        let mut out = Vec::new();
        direct.handle(input.clone(), &mut out);
        self.compare_outputs(r, &ser_all(&out), &r.outputs)?;
        let action = match input {
            AgentInput::Message { from, msg } => Some(Action::Deliver {
                src: from,
                dst: node,
                msg: Msg::ToNode(msg),
            }),
            AgentInput::HeartbeatTimer => {
                if !self.state.timers_set[node.ix()].contains(&NodeTimer::Heartbeat) {
                    return Err(fail(r, "the heartbeat fired, but the model has no heartbeat timer armed on this node".into()));
                }
                Some(Action::Timer {
                    node,
                    timer: NodeTimer::Heartbeat,
                })
            }
            AgentInput::LeaderChanged { term, leader } => {
                // Only a registered node watches the election.
                // Elections before it that no record of their winner shows.
                self.catch_up(r, term + 1)?;
                let h = &self.state.history;
                if (term, leader) == (h.term, h.leader)
                    && self.model.watch_pending(&self.state, node)
                {
                    Some(Action::Watch(node))
                } else if (term, leader) == (h.prev_term, h.prev_leader)
                    && self.model.stale_watch_pending(&self.state, node)
                {
                    Some(Action::WatchStale(node))
                } else {
                    None
                }
            }
            // A second notice of one lost lease is the first's repeat.
            // (Or of a registration that is already gone: the agent fenced itself
            // before, and the core's step changes nothing.)
            AgentInput::LeaseLost
                if self.state.history.is_fenced(node) || !self.state.history.is_member(node) =>
            {
                None
            }
            AgentInput::LeaseLost => Some(Action::LeaseLoss(node)),
            AgentInput::Leave => {
                // The model's graceful leave also resigns this node's coordinator; the
                // runtime logs that as the coordinator's next step.
                self.pending_resign[node.ix()] =
                    self.coord(node).is_some() && !self.model.cfg.late_membership;
                Some(Action::GracefulLeave(node))
            }
        };
        match action {
            Some(a) => self.act(r, a)?,
            None => self.stutter(r, node, &out, direct != *self.agent(node))?,
        }
        if *self.agent(node) != direct {
            return Err(fail(
                r,
                "the model's step leaves this agent elsewhere than the input does".into(),
            ));
        }
        Ok(())
    }

    /// Whether agent record `at` is a step its process did not live to apply: the last
    /// step of the process, logged with a `PersistLeader` that the node's next
    /// incarnation does not start from (the write failed, `exit 4`, or the process
    /// died before it was durable). The shell applies outputs in order, and no send
    /// after a persist goes out before the persist is durable, so such a step had no
    /// effect: the model's equivalent is the crash before it, which the walk takes
    /// instead (a send of it that someone received would then fail the walk).
    fn cut_short(&mut self, (p, i): At, r: &Record, node: NodeIx) -> Result<bool, Box<Failure>> {
        let persisted = r.outputs.iter().find_map(|o| o.get("PersistLeader"));
        let Some(persisted) = persisted else {
            return Ok(false);
        };
        let last = !self.processes[p].records[i + 1..]
            .iter()
            .any(|x| x.role == Role::Agent);
        if !last {
            return Ok(false);
        }
        // The node's next incarnation, by epoch.
        let next_start = self
            .processes
            .iter()
            .flat_map(|q| q.records.iter())
            .filter(|x| x.role == Role::Agent && x.node == r.node && x.epoch > r.epoch)
            .filter_map(start_body)
            .min_by_key(|b| b["epoch"].as_u64());
        let Some(next_start) = next_start else {
            return Ok(false);
        };
        if next_start.get("leader") == Some(persisted) {
            return Ok(false);
        }
        // A winner that did not live to persist its new term: the model's failed
        // election (the term was issued: watches report it).
        if let Some(t) = r
            .input
            .get("LeaderChanged")
            .and_then(|l| l["term"].as_u64())
        {
            // The report, even cut short, shows the elections up to its term happened.
            if let Some(t) = self.names.term(t) {
                let own = r.input["LeaderChanged"]["leader"].as_str() == Some(r.node.as_str());
                self.catch_up(r, if own { t } else { t + 1 })?;
            }
        }
        let won = r.input.get("LeaderChanged").is_some_and(|l| {
            l["leader"].as_str() == Some(r.node.as_str())
                && l["term"].as_u64().and_then(|t| self.names.term(t))
                    == Some(self.state.history.term + 1)
        });
        if won {
            self.depose(r)?;
        }
        let action = if won {
            Action::ElectFails(node)
        } else {
            Action::Crash(node)
        };
        self.act(r, action)?;
        self.out.hidden_crashes += 1;
        self.out.cut_short += 1;
        Ok(true)
    }

    /// A step with no model action: allowed when it changes nothing and sends nothing
    /// the model's network lacks.
    fn stutter<O: serde::Serialize>(
        &mut self,
        r: &Record,
        _node: NodeIx,
        out: &[O],
        changed: bool,
    ) -> Result<(), Box<Failure>> {
        let sends_nothing = ser_all(out).iter().all(|o| o.get("Send").is_none());
        if changed || !sends_nothing {
            return Err(fail(
                r,
                "the model has no action for this step, and it is not a stutter (it changes \
                 the core's state or sends)"
                    .into(),
            ));
        }
        self.out.stutters += 1;
        Ok(())
    }

    /// The model's election of `node`, for the coordinator `Start` record `r`: checks
    /// the term, members and units the model's election hands the new coordinator,
    /// its outputs and state, and answers the outputs the winner's agent gave on
    /// learning its term (in the same model step).
    fn elect(&mut self, r: &Record, node: NodeIx) -> Result<Vec<Value>, Box<Failure>> {
        let s = self.names.typed_start(r)?;
        self.catch_up(r, s.term)?;
        let term = self.state.history.term + 1;
        if s.term != term {
            return Err(fail(
                r,
                format!("the model's next election issues term {term}, the runtime's coordinator starts term {} (model numbering)", s.term),
            ));
        }
        self.depose(r)?;
        // The winner's watch may lag: its members are then a view short of the
        // registrations (or still showing expired ones), which its watch reports later.
        let registry: Vec<NodeIx> = (0..self.model.cfg.nodes)
            .map(NodeIx)
            .filter(|n| self.state.history.is_member(*n))
            .collect();
        // A registration the snapshot lacks whose process took its last step has
        // expired (the process ended: the model's node goes down and leaves first), and
        // so has one whose process fenced itself (it runs on until it exits).
        if self.model.cfg.late_membership {
            for n in registry.iter().copied().filter(|n| !s.members.contains(n)) {
                let ended = self.current[n.ix()].is_none_or(|q| self.all_walked(q));
                if ended || self.state.history.is_fenced(n) {
                    self.expire(r, n)?;
                }
            }
        }
        let registry: Vec<NodeIx> = (0..self.model.cfg.nodes)
            .map(NodeIx)
            .filter(|n| self.state.history.is_member(*n))
            .collect();
        let lagging = self.model.cfg.late_membership && s.members != registry;
        let members: Vec<NodeIx> = if lagging { s.members.clone() } else { registry };
        if s.members != members {
            return Err(fail(
                r,
                format!(
                    "the coordinator starts with members {:?}; the model's election hands it {:?}",
                    s.members, members
                ),
            ));
        }
        let stored: Vec<UnitIx> = (0..self.model.stored(&self.state)).map(UnitIx).collect();
        let mut desired = s.desired.clone();
        desired.sort();
        if desired != stored {
            return Err(fail(
                r,
                format!(
                    "the coordinator loads units {desired:?}; the model's store holds {stored:?}"
                ),
            ));
        }
        let (direct, out) = self.direct_coordinator(node, term, members, desired);
        self.compare_outputs(r, &ser_all(&out), &r.outputs)?;
        let mut agent = self.agent(node).clone();
        let mut agent_out = Vec::new();
        agent.handle(
            AgentInput::LeaderChanged { term, leader: node },
            &mut agent_out,
        );
        let h = &self.state.history;
        let why_not = if !DrainModel::is_up(&self.state, node) {
            Some("its process is down")
        } else if !h.is_member(node) {
            Some("it is no member")
        } else if !self.agent(node).may_campaign() {
            Some("its agent may not campaign (not Alive, or leaving)")
        } else if DrainModel::coordinator(&self.state).is_some() {
            Some("another coordinator is live")
        } else {
            None
        };
        if let Some(why) = why_not {
            return Err(fail(
                r,
                format!(
                    "the model cannot elect {} here: {why}",
                    self.names.nodes[node.ix()]
                ),
            ));
        }
        let action = if lagging {
            let view = s.members.iter().fold(0u16, |v, n| v | 1 << n.0);
            self.out.lagging_views += 1;
            Action::ElectView { node, view }
        } else {
            Action::Elect(node)
        };
        self.act(r, action)?;
        if self.coord(node) != Some(&direct) {
            return Err(fail(
                r,
                "the model's elected coordinator is not the trace's".into(),
            ));
        }
        if *self.agent(node) != agent {
            return Err(fail(
                r,
                "the model's winner's agent is not where its term leaves it".into(),
            ));
        }
        Ok(ser_all(&agent_out))
    }

    /// Late membership: `node`'s registration expires (hidden: the trace logs only the
    /// coordinator's later notice of it). A registration expires once its process
    /// ended, or after the node fenced itself.
    fn expire(&mut self, r: &Record, node: NodeIx) -> Result<(), Box<Failure>> {
        let h = &self.state.history;
        let a = self.agent(node);
        let withdraws = a.leaving() && a.drained();
        if DrainModel::is_up(&self.state, node) && !h.is_fenced(node) && !withdraws {
            self.fence_early(node)?;
        }
        let h = &self.state.history;
        let a = self.agent(node);
        if DrainModel::is_up(&self.state, node) && !h.is_fenced(node) && a.leaving() && a.drained()
        {
            // A node asked to leave withdraws its registration once drained.
            self.act(r, Action::Leave(node))?;
            self.out.hidden_membership += 1;
            return Ok(());
        }
        let h = &self.state.history;
        if DrainModel::is_up(&self.state, node) && !h.is_fenced(node) {
            let q = self.current[node.ix()];
            if q.is_some_and(|q| !self.all_walked(q)) {
                return Err(fail(
                    r,
                    format!(
                        "{}'s registration expired while its process runs, not fenced",
                        self.names.nodes[node.ix()]
                    ),
                ));
            }
            self.end_process(r, node)?;
        }
        self.act(r, Action::Leave(node))?;
        self.out.hidden_membership += 1;
        Ok(())
    }

    /// A process fences itself at its own lease deadline, before etcd expires its
    /// registration. A process that was not scheduled then (frozen, or slow) logs its
    /// `LeaseLost` when it runs again, after the expiry; if that is its next step, it
    /// took none in between, and the walk takes it now, where the deadline was.
    fn fence_early(&mut self, node: NodeIx) -> Result<(), Box<Failure>> {
        let Some(q) = self.current[node.ix()] else {
            return Ok(());
        };
        let next = (0..self.processes[q].records.len()).find(|&i| !self.walked[q][i]);
        let Some(i) = next else {
            return Ok(());
        };
        let r = self.record((q, i));
        if r.role == Role::Agent && r.input == "LeaseLost" {
            self.take((q, i))?;
            self.walked[q][i] = true;
            self.advance(q);
        }
        Ok(())
    }

    /// Late membership: the coordinator's watch reports `node`'s registration of `epoch`.
    fn joined(
        &mut self,
        r: &Record,
        node: NodeIx,
        epoch: u64,
    ) -> Result<Option<Action>, Box<Failure>> {
        let h = &self.state.history;
        if h.registered[node.ix()] as u64 != epoch {
            return Err(fail(
                r,
                format!(
                    "the watch reports {}'s registration of epoch {epoch}; the model's last is epoch {}",
                    self.names.nodes[node.ix()],
                    h.registered[node.ix()]
                ),
            ));
        }
        Ok((h.unseen_joins & (1 << node.0) != 0).then_some(Action::NotifyJoin(node)))
    }

    /// Late membership: the coordinator's watch reports the expiry of `node`'s
    /// registration of `epoch`.
    fn left(
        &mut self,
        r: &Record,
        node: NodeIx,
        epoch: u64,
    ) -> Result<Option<Action>, Box<Failure>> {
        let h = &self.state.history;
        if h.is_member(node) && h.registered[node.ix()] as u64 == epoch {
            self.expire(r, node)?;
        }
        let h = &self.state.history;
        if h.unseen_leaves & (1 << node.0) == 0 {
            return Ok(None);
        }
        if h.left[node.ix()] as u64 != epoch {
            return Err(fail(
                r,
                format!(
                    "the watch reports the expiry of {}'s registration of epoch {epoch}; the model's expired one is epoch {}",
                    self.names.nodes[node.ix()],
                    h.left[node.ix()]
                ),
            ));
        }
        Ok(Some(Action::NotifyLeave(node)))
    }

    /// An election's snapshot names registrations made before it: their processes
    /// start (register) first, whatever the timestamps say.
    fn election_waits(&self, p: usize, i: usize) -> Result<(), String> {
        let r = self.record((p, i));
        let is_start = start_body(r).is_some();
        let election = if is_start && r.role == Role::Coordinator {
            Some((p, i))
        } else {
            r.input
                .get("LeaderChanged")
                .filter(|l| l["leader"].as_str() == Some(r.node.as_str()))
                .and_then(|l| l["term"].as_u64())
                .and_then(|t| self.names.term(t))
                .and_then(|t| self.start_of_term(p, t).map(|j| (p, j)))
        };
        if let Some(at) = election.filter(|_| self.model.cfg.late_membership) {
            let members = start_body(self.record(at)).map(|b| b["members"].clone());
            let members: Vec<String> = members
                .and_then(|m| serde_json::from_value(m).ok())
                .unwrap_or_default();
            for m in &members {
                if let Some(n) = self.names.node(m) {
                    if !self.state.history.is_member(n) && !DrainModel::is_up(&self.state, n) {
                        return Err(format!(
                            "its snapshot names {m}, whose process has not started (registered) yet"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The next coordinator `Start` not walked yet (the lowest term): its members, and
    /// whether that coordinator's watch later reports `node`'s registration of `epoch`
    /// (which then came after its snapshot).
    fn next_election(&self, node: &str, epoch: Option<u64>) -> Option<(Vec<String>, bool)> {
        let (p, i) = self
            .processes
            .iter()
            .enumerate()
            .flat_map(|(p, proc_)| {
                proc_.records.iter().enumerate().filter_map(move |(i, x)| {
                    (x.role == Role::Coordinator && !self.walked[p][i] && start_body(x).is_some())
                        .then_some((p, i))
                })
            })
            .min_by_key(|&(p, i)| {
                start_body(&self.processes[p].records[i]).and_then(|b| b["term"].as_u64())
            })?;
        let body = start_body(&self.processes[p].records[i])?;
        let members: Vec<String> = serde_json::from_value(body["members"].clone()).ok()?;
        let joined = self.will_report_join(p, node, epoch);
        Some((members, joined))
    }

    /// Takes the elections before model term `upto` that no record of their winner
    /// shows ([`Names::declined`]): its winner resigned at once (it may no longer
    /// campaign, or its process is gone), or its process ended before it learnt its
    /// term.
    fn catch_up(&mut self, r: &Record, upto: u64) -> Result<(), Box<Failure>> {
        loop {
            let next = self.state.history.term + 1;
            if next >= upto || !self.names.declined.contains(&next) {
                return Ok(());
            }
            let Some(leader) = self
                .names
                .leaders
                .get(&next)
                .and_then(|n| self.names.node(n))
            else {
                return Err(fail(
                    r,
                    format!("no record names the winner of term {next} (model numbering)"),
                ));
            };
            self.depose(r)?;
            let a = self.agent(leader);
            let action = if DrainModel::is_up(&self.state, leader) && a.may_campaign() {
                self.current[leader.ix()] = None;
                self.out.hidden_crashes += 1;
                Action::ElectFails(leader)
            } else {
                Action::ElectDeclined(leader)
            };
            self.act(r, action)?;
            self.out.hidden_elections += 1;
        }
    }

    /// Whether the declined elections before model term `upto` can be taken now: a
    /// winner whose process still runs and may campaign ends first.
    fn catch_up_waits(&self, upto: u64) -> Option<String> {
        let mut next = self.state.history.term + 1;
        while next < upto {
            if !self.names.declined.contains(&next) {
                return Some(format!(
                    "the election of term {next} (model numbering) is not walked yet"
                ));
            }
            let leader = self
                .names
                .leaders
                .get(&next)
                .and_then(|n| self.names.node(n))?;
            let campaigns =
                DrainModel::is_up(&self.state, leader) && self.agent(leader).may_campaign();
            let running = self.current[leader.ix()].is_some_and(|q| !self.all_walked(q));
            if campaigns && running {
                return Some(format!(
                    "the winner of term {next} (model numbering) still runs and may campaign: its end comes first"
                ));
            }
            next += 1;
        }
        None
    }

    /// The end of `node`'s process, which the trace does not log: the model's crash.
    fn end_process(&mut self, r: &Record, node: NodeIx) -> Result<(), Box<Failure>> {
        self.act(r, Action::Crash(node))?;
        self.out.hidden_crashes += 1;
        self.current[node.ix()] = None;
        Ok(())
    }

    /// Whether the model's coordinator on `host` has steps of its process not walked yet.
    fn coordinator_busy(&self, host: NodeIx) -> bool {
        self.coordinators[host.ix()].is_some_and(|q| {
            self.processes[q]
                .records
                .iter()
                .enumerate()
                .any(|(i, x)| x.role == Role::Coordinator && !self.walked[q][i])
        })
    }

    /// Whether the coordinator of process `q` is still to be told (a record not walked
    /// yet) of `node`'s registration of `epoch`.
    fn will_report_join(&self, q: usize, node: &str, epoch: Option<u64>) -> bool {
        self.processes[q].records.iter().enumerate().any(|(k, x)| {
            !self.walked[q][k]
                && x.role == Role::Coordinator
                && x.input.get("MemberJoined").is_some_and(|j| {
                    j["node"].as_str() == Some(node) && j["epoch"].as_u64() == epoch
                })
        })
    }

    /// Before an election: the coordinator before it stopped (deposed, or its task ended
    /// with its leadership) without a record, which is the model's coordinator failure.
    /// It must have taken its last step.
    fn depose(&mut self, r: &Record) -> Result<(), Box<Failure>> {
        let Some((host, _)) = DrainModel::coordinator(&self.state) else {
            return Ok(());
        };
        if self.coordinator_busy(host) {
            return Err(fail(
                r,
                format!(
                    "a new election while the coordinator on {} still takes steps",
                    self.names.nodes[host.ix()]
                ),
            ));
        }
        self.act(r, Action::CoordinatorCrash(host))?;
        self.out.hidden_crashes += 1;
        Ok(())
    }

    /// The unwalked coordinator `Start` of term `term` (model numbering) in process `p`.
    fn start_of_term(&self, p: usize, term: u64) -> Option<usize> {
        self.processes[p]
            .records
            .iter()
            .enumerate()
            .position(|(i, x)| {
                !self.walked[p][i]
                    && x.role == Role::Coordinator
                    && start_body(x)
                        .and_then(|b| b["term"].as_u64())
                        .and_then(|t| self.names.term(t))
                        == Some(term)
            })
    }

    fn take_coordinator(
        &mut self,
        (p, _): At,
        r: &Record,
        node: NodeIx,
    ) -> Result<(), Box<Failure>> {
        if start_body(r).is_some() {
            let outputs = self.elect(r, node)?;
            let term = self.state.history.term;
            self.coordinators[node.ix()] = Some(p);
            self.pending_leader[node.ix()] = Some(PendingLeader { term, outputs });
            return Ok(());
        }
        if std::mem::take(&mut self.pending_resign[node.ix()]) && r.input == "Resign" {
            // The graceful leave's resignation, which the model's step took with it.
            return self.compare_outputs(r, &[json!("Resign")], &r.outputs);
        }
        let Some(before) = self.coord(node).cloned() else {
            return Err(fail(r, "the model has no coordinator here".into()));
        };
        let mut direct = before.clone();
        let mut out = Vec::new();
        let mut answer = None;
        let input = &r.input;
        let action = if let Some(n) = input.get("DrainNode") {
            let target: NodeIx = self.names.typed(n).map_err(|e| fail(r, e))?;
            answer =
                Some(serde_json::to_value(direct.drain_node(&target, &mut out)).expect("json"));
            Some(Action::Poll(target))
        } else if let Some(n) = input.get("DrainStatus") {
            let target: NodeIx = self.names.typed(n).map_err(|e| fail(r, e))?;
            answer = Some(serde_json::to_value(direct.drain_status(&target)).expect("json"));
            Some(Action::Status(target))
        } else {
            let input: CoordInput<NodeIx, UnitIx> =
                self.names.typed(input).map_err(|e| fail(r, e))?;
            direct.handle(input.clone(), &mut out);
            match input {
                CoordInput::Message { from, .. } => {
                    let (_, msg) = self.envelope(r, &r.input["Message"])?;
                    Some(Action::Deliver {
                        src: from,
                        dst: node,
                        msg,
                    })
                }
                CoordInput::Timer(t) => {
                    let timer = match t {
                        CoordTimer::Resend => NodeTimer::Resend,
                        CoordTimer::LivenessTtl(n) => NodeTimer::Ttl(n),
                    };
                    if !self.state.timers_set[node.ix()].contains(&timer) {
                        return Err(fail(
                            r,
                            format!("timer {timer:?} fired, but the model has it unarmed"),
                        ));
                    }
                    Some(Action::Timer { node, timer })
                }
                CoordInput::MemberJoined {
                    node: joined,
                    epoch,
                } if self.model.cfg.late_membership => self.joined(r, joined, epoch)?,
                CoordInput::MemberLeft { node: left, epoch } if self.model.cfg.late_membership => {
                    self.left(r, left, epoch)?
                }
                // Static membership: a node's start announcement, of its last
                // incarnation (an older one's must change nothing: a stutter).
                CoordInput::MemberJoined {
                    node: joined,
                    epoch,
                } => (epoch > 0 && DrainModel::last_epoch(&self.state, joined) == epoch)
                    .then_some(Action::Announce(joined)),
                CoordInput::MemberLeft { node: left, .. } => {
                    // Its process ended (the trace logs no end): the model's node goes
                    // down first.
                    if DrainModel::is_up(&self.state, left) && !self.state.history.is_fenced(left) {
                        self.end_process(r, left)?;
                    }
                    Some(Action::Leave(left))
                }
                CoordInput::AddUnit(u) => {
                    if u == UnitIx(self.state.history.promised) {
                        Some(Action::AddWork)
                    } else {
                        None
                    }
                }
                CoordInput::DeleteUnit(_) => None,
                CoordInput::Resign => Some(Action::Resign(node)),
            }
        };
        let mut got = ser_all(&out);
        if let Some(a) = answer {
            got.push(json!({ "Answer": a }));
        }
        self.compare_outputs(r, &got, &r.outputs)?;
        let resigned = out.iter().any(|o| matches!(o, CoordOutput::Resign));
        match action {
            Some(a) => self.act(r, a)?,
            None => self.stutter(r, node, &out, direct != before)?,
        }
        let after = self.coord(node);
        let same = if resigned {
            after.is_none()
        } else {
            after == Some(&direct)
        };
        if !same {
            return Err(fail(
                r,
                "the model's step leaves this coordinator elsewhere than the input does".into(),
            ));
        }
        Ok(())
    }
}

impl Names {
    /// A coordinator `Start` in the model's ids.
    fn typed_start(&self, r: &Record) -> Result<TypedStart, Box<Failure>> {
        let body = start_body(r).expect("a Start");
        let members: Vec<NodeIx> = self.typed(&body["members"]).map_err(|e| fail(r, e))?;
        let desired: Vec<UnitIx> = self.typed(&body["desired"]).map_err(|e| fail(r, e))?;
        let term = body["term"]
            .as_u64()
            .and_then(|t| self.term(t))
            .ok_or_else(|| fail(r, "a Start without a term".into()))?;
        let mut members = members;
        members.sort();
        Ok(TypedStart {
            term,
            members,
            desired,
        })
    }
}

/// A coordinator `Start` record in the model's ids.
struct TypedStart {
    term: u64,
    members: Vec<NodeIx>,
    desired: Vec<UnitIx>,
}

fn ser_all<T: serde::Serialize>(out: &[T]) -> Vec<Value> {
    out.iter()
        .map(|o| serde_json::to_value(o).expect("core outputs serialize"))
        .collect()
}
