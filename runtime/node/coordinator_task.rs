//! The coordinator's task: owns the [`Coordinator`] and feeds it, in order, decoded
//! messages, timer firings and client requests from its channel; turns its outputs
//! into sends and timers.

use super::metrics::{Metrics, NodeLabel, NodeStateLabels};
use super::shell_bug::ShellBugs;
use super::trace::{self, Tracer};
use super::transport::Transport;
use crate::membership::Service;
use crate::wire::pb;
use ebbtide_model::{
    CoordInput, CoordOutput, CoordTimer, Coordinator, DrainError, DrainReport, NodeStatus,
};
use serde_json::json;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant};

/// DrainNode's answer.
pub type DrainAnswer = Result<DrainReport<String>, DrainError<String>>;

/// What the coordinator's task receives.
#[derive(Debug)]
pub enum CoordMsg {
    /// A core input (a decoded message).
    Input(CoordInput<String, String>),
    /// DrainNode: requests the drain and answers.
    Drain(String, oneshot::Sender<DrainAnswer>),
    /// What DrainNode would answer now.
    DrainStatus(String, oneshot::Sender<DrainAnswer>),
    /// Every member.
    Nodes(oneshot::Sender<Vec<NodeStatus<String>>>),
    /// Every work unit and where it runs.
    ListWork(oneshot::Sender<pb::ListWorkResponse>),
    /// Adds work units (persisted first); answers how many were new.
    AddUnits(Vec<String>, oneshot::Sender<Result<usize, String>>),
    /// Figures for metrics and benchmarks.
    Stats(oneshot::Sender<CoordStats>),
    /// An operator asks this coordinator to give up leadership (owner resign): it
    /// steps `CoordInput::Resign`, answers, and stops.
    Resign(oneshot::Sender<()>),
    /// This process no longer holds the leadership (deposed): stop at once, without a
    /// step (the core has nothing to say: its commands are fenced by term).
    Stop,
}

/// Why a coordinator task ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordExit {
    /// The core resigned: an operator asked, or its own node is no longer Alive.
    Resigned,
    /// It was stopped (deposed), or its channel closed.
    Stopped,
}

/// Figures about the coordinator.
#[derive(Clone, Debug)]
pub struct CoordStats {
    pub nodes: Vec<NodeStatus<String>>,
    /// The current drain target and what DrainNode would answer for it.
    pub drain: Option<DrainReport<String>>,
    /// Core inputs handled.
    pub steps: u64,
    /// Time spent inside the core (`handle`, `drain_node`).
    pub busy: Duration,
    /// Operations in flight.
    pub operations: usize,
    /// Units waiting for a destination.
    pub unplaced: usize,
    /// Units a client added (durable already) that wait to be fed to the core.
    pub pending: usize,
    /// Every member the core started with answered its bootstrap (C15): only then does
    /// it know where every unit runs, and schedule.
    pub bootstrapped: bool,
}

/// The coordinator is gone (it resigned, or the process is shutting down).
#[derive(Clone, Debug)]
pub struct Gone;

/// A handle to send to the coordinator's task.
#[derive(Clone, Debug)]
pub struct CoordHandle {
    pub(crate) tx: mpsc::Sender<CoordMsg>,
}

impl CoordHandle {
    async fn ask<T>(&self, f: impl FnOnce(oneshot::Sender<T>) -> CoordMsg) -> Result<T, Gone> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(f(reply)).await.map_err(|_| Gone)?;
        rx.await.map_err(|_| Gone)
    }

    /// DrainNode.
    pub async fn drain(&self, node: String) -> Result<DrainAnswer, Gone> {
        self.ask(|r| CoordMsg::Drain(node, r)).await
    }

    /// What DrainNode would answer now.
    pub async fn drain_status(&self, node: String) -> Result<DrainAnswer, Gone> {
        self.ask(|r| CoordMsg::DrainStatus(node, r)).await
    }

    /// Every member.
    pub async fn nodes(&self) -> Result<Vec<NodeStatus<String>>, Gone> {
        self.ask(CoordMsg::Nodes).await
    }

    /// Every work unit and where it runs.
    pub async fn list_work(&self) -> Result<pb::ListWorkResponse, Gone> {
        self.ask(CoordMsg::ListWork).await
    }

    /// Adds work units; answers how many were new, or why they could not be persisted.
    pub async fn add_units(&self, units: Vec<String>) -> Result<Result<usize, String>, Gone> {
        self.ask(|r| CoordMsg::AddUnits(units, r)).await
    }

    /// Figures for metrics and benchmarks.
    pub async fn stats(&self) -> Result<CoordStats, Gone> {
        self.ask(CoordMsg::Stats).await
    }

    /// Owner resign: the coordinator gives up leadership and stops.
    pub async fn resign(&self) -> Result<(), Gone> {
        self.ask(CoordMsg::Resign).await
    }
}

/// The coordinator's task and what it drives.
pub(crate) struct CoordTask {
    pub id: String,
    pub coordinator: Coordinator<String, String>,
    pub transport: Arc<Transport>,
    /// Where the desired work units are kept (the data dir, or etcd).
    pub service: Service,
    pub tracer: Arc<Tracer>,
    pub metrics: Arc<Metrics>,
    pub resend: Duration,
    pub liveness_ttl: Duration,
    pub timers: BTreeMap<CoordTimer<String>, Instant>,
    pub steps: u64,
    pub busy: Duration,
    /// Units a client added, already durable and answered, not yet fed to the core as
    /// `AddUnit`. A client may add a million units in one request; stepping them all at
    /// once would queue a million AddWork messages for the peers (which drop what does
    /// not fit) while the nodes' acknowledgements pile up unread in this task's own
    /// channel (dropped too, then resent by the core's resend timer: the storm that kept
    /// the 1M-unit run from finishing). So they are fed [`FEED_CHUNK`] at a time,
    /// only while the channel is empty (messages from peers go first) and the transport
    /// is not congested. This decides only when the core sees an input it would see
    /// anyway; what the core does with it is unchanged.
    pub pending: VecDeque<String>,
    /// Test-only shell bugs ([`ShellBugs`]): the ones this node was started with.
    pub bugs: ShellBugs,
}

/// `AddUnit` inputs fed to the core in one go before the task looks at its channel
/// again: a few milliseconds of core work. Large enough that each peer's pump finds
/// several AddWork messages to batch even with a hundred peers (with 256, at 128 nodes,
/// most calls carried one or two, and `writev` was 13% of the profile); small enough
/// that the acknowledgements waiting meanwhile stay far below the channel's capacity.
const FEED_CHUNK: usize = 2048;

/// True at once when the transport has room; false after a millisecond when it is
/// congested (then the task looks again). Lazy: the check runs only when nothing else
/// is ready, not once per message.
async fn room(transport: Arc<Transport>) -> bool {
    if transport.congested() {
        tokio::time::sleep(Duration::from_millis(1)).await;
        return false;
    }
    true
}

impl CoordTask {
    /// Applies the outputs of `Coordinator::new` and records that start: call it before
    /// the first input, while the core is as `new` built it.
    pub fn started(&mut self, out: Vec<CoordOutput<String, String>>) {
        if self.tracer.enabled() {
            let input = trace::coord_start(&self.coordinator, self.resend, self.liveness_ttl);
            self.trace(input, &out);
        }
        self.apply(out);
    }

    /// Runs until the channel closes, the coordinator resigns, or it is stopped.
    pub async fn run(mut self, mut rx: mpsc::Receiver<CoordMsg>) -> CoordExit {
        loop {
            let next = self.timers.values().min().copied();
            let feed = !self.pending.is_empty();
            let transport = self.transport.clone();
            tokio::select! {
                biased;
                msg = rx.recv() => match msg {
                    None | Some(CoordMsg::Stop) => return CoordExit::Stopped,
                    Some(_) if self.lease_gone() => return CoordExit::Stopped,
                    Some(msg) => {
                        if !self.on_msg(msg).await {
                            return CoordExit::Resigned;
                        }
                    }
                },
                _ = sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                    if self.lease_gone() {
                        return CoordExit::Stopped;
                    }
                    let now = Instant::now();
                    let mut due: Vec<(Instant, CoordTimer<String>)> = self
                        .timers
                        .iter()
                        .filter(|(_, at)| **at <= now)
                        .map(|(t, at)| (*at, t.clone()))
                        .collect();
                    due.sort();
                    for (_, t) in due {
                        self.timers.remove(&t);
                        if !self.step(CoordInput::Timer(t)) {
                            return CoordExit::Resigned;
                        }
                    }
                }
                room = room(transport), if feed => {
                    if !room {
                        continue;
                    }
                    if self.lease_gone() {
                        return CoordExit::Stopped;
                    }
                    if !self.feed(FEED_CHUNK) {
                        return CoordExit::Resigned;
                    }
                }
            }
        }
    }

    /// Whether this process's membership lease may already have expired (the local
    /// deadline passed, say while the process was paused): then its leadership may
    /// have passed to another node, and this coordinator must not act again, not even
    /// on what waited in its queue or its timers meanwhile. It stops as if deposed.
    fn lease_gone(&self) -> bool {
        let gone = !self.service.holds_lease();
        if gone {
            tracing::warn!(node = %self.id, term = self.coordinator.term(), "lease deadline passed: the coordinator stops");
        }
        gone
    }

    /// Handles one message; false once the coordinator resigned.
    async fn on_msg(&mut self, msg: CoordMsg) -> bool {
        match msg {
            CoordMsg::Input(input) => return self.step(input),
            CoordMsg::Drain(node, reply) => {
                let t0 = std::time::Instant::now();
                let mut out = Vec::new();
                let mut answer = self.coordinator.drain_node(&node, &mut out);
                if self.bugs.answer_remaining_one_less {
                    if let Ok(report) = &mut answer {
                        report.remaining = report.remaining.saturating_sub(1);
                    }
                }
                self.busy += t0.elapsed();
                self.steps += 1;
                self.metrics.step("coordinator");
                if self.tracer.enabled() {
                    let mut outputs = trace::coord_outputs(&out);
                    outputs.push(json!({"Answer": answer}));
                    self.record(json!({"DrainNode": node}), outputs);
                }
                let _ = reply.send(answer);
                return self.apply(out);
            }
            CoordMsg::DrainStatus(node, reply) => {
                let answer = self.coordinator.drain_status(&node);
                if self.tracer.enabled() {
                    // Not a step (a read-only getter), but an answer a client acts on:
                    // traced so that S3 is checked on it too.
                    self.record(
                        json!({ "DrainStatus": node }),
                        vec![json!({ "Answer": answer })],
                    );
                }
                let _ = reply.send(answer);
            }
            CoordMsg::Nodes(reply) => {
                let _ = reply.send(self.coordinator.nodes());
            }
            CoordMsg::ListWork(reply) => {
                if !self.feed(usize::MAX) {
                    return false;
                }
                let _ = reply.send(pb::ListWorkResponse::from_coordinator(&self.coordinator));
            }
            CoordMsg::AddUnits(units, reply) => {
                // What is durable is the core's desired units and the pending ones:
                // feed those first, so that `all` below is the whole set.
                if !self.feed(usize::MAX) {
                    return false;
                }
                let mut all: std::collections::BTreeSet<&String> =
                    self.coordinator.desired().collect();
                let new: Vec<String> = units.iter().filter(|u| all.insert(*u)).cloned().collect();
                if !new.is_empty() {
                    // Durable first: a unit the coordinator placed must survive its
                    // failover, so the next coordinator loads it.
                    let all: Vec<&String> = all.into_iter().collect();
                    if let Err(e) = self.service.add_units(&all, &new).await {
                        let _ = reply.send(Err(e.to_string()));
                        return true;
                    }
                }
                let _ = reply.send(Ok(new.len()));
                self.pending.extend(units);
            }
            CoordMsg::Stats(reply) => {
                let _ = reply.send(self.stats());
            }
            CoordMsg::Resign(reply) => {
                tracing::info!(node = %self.id, term = self.coordinator.term(), "owner resign requested");
                let resigned = !self.step(CoordInput::Resign);
                let _ = reply.send(());
                return !resigned;
            }
            CoordMsg::Stop => return false,
        }
        true
    }

    fn stats(&self) -> CoordStats {
        let nodes = self.coordinator.nodes();
        let drain = self
            .coordinator
            .drain_target()
            .and_then(|t| self.coordinator.drain_status(t).ok());
        for n in &nodes {
            for state in ["alive", "draining", "stopping", "unknown"] {
                let v = i64::from(n.liveness.as_str() == state);
                self.metrics
                    .liveness
                    .get_or_create(&NodeStateLabels {
                        node: n.node.clone(),
                        state: state.to_owned(),
                    })
                    .set(v);
            }
            let label = NodeLabel {
                node: n.node.clone(),
            };
            self.metrics.units.get_or_create(&label).set(n.units as i64);
            self.metrics
                .operations
                .get_or_create(&label)
                .set(n.operations as i64);
        }
        if let Some(d) = &drain {
            self.metrics
                .remaining
                .get_or_create(&NodeLabel {
                    node: d.node.clone(),
                })
                .set(d.remaining as i64);
        }
        CoordStats {
            drain,
            steps: self.steps,
            busy: self.busy,
            operations: self.coordinator.operations().count(),
            unplaced: self.coordinator.unplaced_count(),
            pending: self.pending.len(),
            bootstrapped: self.coordinator.is_bootstrapped(),
            nodes,
        }
    }

    fn epoch(&self) -> u64 {
        self.coordinator.record(&self.id).map_or(0, |r| r.epoch)
    }

    /// Feeds up to `n` pending units to the core; false once the coordinator resigned.
    fn feed(&mut self, n: usize) -> bool {
        for _ in 0..n {
            let Some(unit) = self.pending.pop_front() else {
                break;
            };
            if !self.step(CoordInput::AddUnit(unit)) {
                return false;
            }
        }
        true
    }

    /// One core step; false once the coordinator resigned.
    fn step(&mut self, input: CoordInput<String, String>) -> bool {
        let traced = self.tracer.enabled().then(|| trace::coord_input(&input));
        let t0 = std::time::Instant::now();
        let mut out = Vec::new();
        self.coordinator.handle(input, &mut out);
        self.busy += t0.elapsed();
        self.steps += 1;
        self.metrics.step("coordinator");
        if let Some(input) = traced {
            self.trace(input, &out);
        }
        self.apply(out)
    }

    fn trace(&self, input: serde_json::Value, out: &[CoordOutput<String, String>]) {
        if self.tracer.enabled() {
            self.record(input, trace::coord_outputs(out));
        }
    }

    /// Writes one trace record of this coordinator: `input` and what came of it.
    fn record(&self, input: serde_json::Value, outputs: Vec<serde_json::Value>) {
        self.tracer.record(
            "coordinator",
            &self.id,
            self.epoch(),
            Some(self.coordinator.term()),
            input,
            outputs,
        );
    }

    /// Applies outputs; false on `Resign`.
    fn apply(&mut self, out: Vec<CoordOutput<String, String>>) -> bool {
        let mut resign = false;
        for o in out {
            match o {
                CoordOutput::Send { to, msg } => self.transport.to_node(&to, msg),
                CoordOutput::Arm(t) => {
                    let after = match &t {
                        CoordTimer::Resend => self.resend,
                        CoordTimer::LivenessTtl(_) => self.liveness_ttl,
                    };
                    self.timers.insert(t, Instant::now() + after);
                }
                CoordOutput::Resign => resign = !self.bugs.coordinator_ignores_resign,
            }
        }
        if resign {
            tracing::warn!(node = %self.id, term = self.coordinator.term(), "the coordinator resigns");
        }
        !resign
    }
}
