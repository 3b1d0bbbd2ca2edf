//! The membership task: turns membership events into the core's inputs and runs this
//! process's coordinator while it holds the leadership.
//!
//! - `Snapshot`/`Joined`/`Left` update the directory ([`Cluster`]) and, while a
//!   coordinator runs here, become `MemberJoined`/`MemberLeft`.
//! - `Leader` becomes the agent's `LeaderChanged` (the agent decides whether to follow).
//! - `Elected` starts a [`Coordinator`] with the registered members and the desired
//!   units the service keeps; it bootstraps (C15). An elected service's members are
//!   those of the fresh `Snapshot` that follows the win, never the watch's view before
//!   it. `Deposed` stops it at once.
//! - `LeaseLost` becomes the agent's `LeaseLost` (it fences itself), then the process
//!   exits: one process is one incarnation, so a supervisor restarts it as a new one.
//! - The agent says after every step whether it may campaign (`may_campaign`, a core
//!   decision); the task campaigns or withdraws accordingly. A coordinator whose core
//!   resigns makes the task resign the election too.

use super::agent_task::AgentMsg;
use super::cluster::Cluster;
use super::coordinator_task::{CoordExit, CoordHandle, CoordMsg, CoordTask};
use super::metrics::Metrics;
use super::shell_bug::ShellBugs;
use super::trace::Tracer;
use super::transport::Transport;
use super::ExitReason;
use crate::membership::{Event, Service};
use ebbtide_model::{AgentInput, CoordInput, Coordinator, CoordinatorConfig, Guards, Term};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// What a coordinator of this process needs.
#[derive(Clone)]
pub(crate) struct CoordSetup {
    pub transport: Arc<Transport>,
    pub tracer: Arc<Tracer>,
    pub metrics: Arc<Metrics>,
    pub resend: Duration,
    pub liveness_ttl: Duration,
    pub drain_batch: usize,
    /// Test-only shell bugs ([`ShellBugs`]): the ones this node was started with.
    pub bugs: ShellBugs,
}

/// The coordinator while it runs here.
struct Running {
    term: Term,
    handle: CoordHandle,
    task: JoinHandle<CoordExit>,
}

/// The membership task and what it drives.
pub(crate) struct MembershipTask {
    pub cluster: Arc<Cluster>,
    pub service: Service,
    pub agent: mpsc::Sender<AgentMsg>,
    /// The agent's `may_campaign`, after every step.
    pub campaign: watch::Receiver<bool>,
    pub setup: CoordSetup,
    /// Where to say that the process must exit.
    pub exit: watch::Sender<Option<ExitReason>>,
    /// Whether the member list is known: a service with a watch sends a `Snapshot`
    /// first; static membership knows its members from its flags.
    pub members_known: bool,
    /// An election won before the member list was known (an elected service's win is
    /// always followed by a fresh snapshot): the coordinator starts once it is, with
    /// every member in its bootstrap (a member left out would be taken for a new
    /// process that runs nothing, while it may run units of the last term).
    pub pending_term: Option<Term>,
}

impl MembershipTask {
    /// Runs until the event channel closes or the lease is lost.
    pub async fn run(mut self, mut events: mpsc::Receiver<Event>) {
        let mut running: Option<Running> = None;
        // The first campaign decision is taken at once.
        self.campaign.mark_changed();
        loop {
            tokio::select! {
                biased;
                ev = events.recv() => {
                    let Some(ev) = ev else { return };
                    if !self.on_event(ev, &mut running).await {
                        return;
                    }
                }
                exit = async { (&mut running.as_mut().expect("guarded").task).await }, if running.is_some() => {
                    let r = running.take().expect("guarded");
                    self.cluster.set_local_coordinator(None);
                    tracing::info!(node = %self.cluster.id, term = r.term, ?exit, "coordinator stopped");
                    if let Ok(CoordExit::Resigned) = exit {
                        self.resign_election().await;
                        // Campaign again if the core still allows it: another
                        // candidate queued before us wins first.
                        self.campaign.mark_changed();
                    }
                }
                changed = self.campaign.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let may = *self.campaign.borrow_and_update();
                    // Withdraw whether or not a coordinator runs here: its core
                    // resigns once its own node is not Alive, but a node that is only
                    // a candidate runs none, and its queued campaign would win the
                    // next failover (S7; the `keep_candidacy` shell bug skips this).
                    if may {
                        self.service.campaign();
                    } else if self.service.has_election() && !self.setup.bugs.keep_candidacy {
                        if let Err(e) = self.service.resign().await {
                            tracing::warn!(error = %e, "cannot withdraw from the election");
                        }
                    }
                }
            }
        }
    }

    fn agent(&self, input: AgentInput<String, String>) {
        if self.agent.try_send(AgentMsg::Input(input)).is_err() {
            tracing::warn!("node agent queue full or closed: membership event dropped");
        }
    }

    /// Feeds `input` to the agent and waits until its step is applied (its outputs,
    /// persists included, done): false if the agent's task is gone (it stopped, for
    /// example on a failed persist).
    async fn agent_has_handled(&self, input: AgentInput<String, String>) -> bool {
        let (reply, applied) = tokio::sync::oneshot::channel();
        self.agent.send(AgentMsg::Input(input)).await.is_ok()
            && self.agent.send(AgentMsg::Status(reply)).await.is_ok()
            && applied.await.is_ok()
    }

    fn coordinator(&self, running: &Option<Running>, input: CoordInput<String, String>) {
        if let Some(r) = running {
            if r.handle.tx.try_send(CoordMsg::Input(input)).is_err() {
                tracing::warn!("coordinator queue full or closed: membership event dropped");
            }
        }
    }

    /// Handles one event; false when the process must stop.
    async fn on_event(&mut self, ev: Event, running: &mut Option<Running>) -> bool {
        match ev {
            Event::Snapshot(members) => {
                let listed: BTreeMap<String, u64> = members
                    .iter()
                    .map(|m| (m.node().to_owned(), m.epoch))
                    .collect();
                for (node, addr) in self.cluster.addresses() {
                    if node != self.cluster.id && !listed.contains_key(&node) {
                        self.cluster.remove(&node, addr.epoch);
                        let epoch = addr.epoch;
                        self.coordinator(running, CoordInput::MemberLeft { node, epoch });
                    }
                }
                for m in members {
                    self.cluster.upsert_member(&m);
                    let input = CoordInput::MemberJoined {
                        node: m.node().to_owned(),
                        epoch: m.epoch,
                    };
                    self.coordinator(running, input);
                }
                self.members_known = true;
                if let Some(term) = self.pending_term.take() {
                    self.elected(term, running).await;
                }
            }
            Event::Joined(m) => {
                self.cluster.upsert_member(&m);
                let input = CoordInput::MemberJoined {
                    node: m.node().to_owned(),
                    epoch: m.epoch,
                };
                self.coordinator(running, input);
            }
            Event::Left { node, epoch } => {
                tracing::info!(%node, epoch, "member left");
                self.cluster.remove(&node, epoch);
                self.coordinator(running, CoordInput::MemberLeft { node, epoch });
            }
            Event::Leader { term, node } => {
                self.cluster.set_leader(term, &node);
                self.agent(AgentInput::LeaderChanged { term, leader: node });
            }
            Event::Elected { term } => {
                if self.service.has_election() && !self.setup.bugs.coordinator_from_watch_view {
                    // The coordinator starts from the fresh snapshot that follows the
                    // win (`Event::Elected`): the view this task has so far may lag
                    // behind what the coordinators before it saw.
                    self.stop_coordinator(running, "elected again");
                    self.members_known = false;
                }
                if self.members_known {
                    self.elected(term, running).await;
                } else {
                    self.pending_term = Some(term);
                }
            }
            Event::Deposed => self.stop_coordinator(running, "leadership lost"),
            Event::LeaseLost => {
                self.stop_coordinator(running, "membership lease lost");
                tracing::error!(node = %self.cluster.id, "membership lease lost: fencing this node and exiting");
                // The agent fences itself (Stopping, every unit stopped) before the
                // process exits: the exit waits for this input to be handled.
                let (reply, done) = tokio::sync::oneshot::channel();
                if self
                    .agent
                    .send(AgentMsg::Input(AgentInput::LeaseLost))
                    .await
                    .is_ok()
                {
                    let _ = self.agent.send(AgentMsg::Status(reply)).await;
                    let _ = done.await;
                }
                let _ = self.exit.send(Some(ExitReason::LeaseLost));
                return false;
            }
        }
        true
    }

    /// Gives up the leadership this process holds (its coordinator resigned, or it won
    /// but may not coordinate); a failure is only logged.
    async fn resign_election(&self) {
        if let Err(e) = self.service.resign().await {
            tracing::warn!(error = %e, "cannot resign the election");
        }
    }

    /// This process won the election for `term`: it serves, unless the core no longer
    /// lets it campaign (it became Draining, or was asked to leave, while its campaign
    /// was pending), in which case it resigns at once instead of serving.
    async fn elected(&mut self, term: Term, running: &mut Option<Running>) {
        self.stop_coordinator(running, "elected again");
        if !*self.campaign.borrow() {
            tracing::warn!(node = %self.cluster.id, term, "won the election but may no longer campaign: resigning at once");
            self.resign_election().await;
            return;
        }
        // This very process won: its own agent follows the new term, and has made it
        // durable, before its coordinator starts. That is the model's election (the
        // winner learns its term in the step it wins, `Action::Elect`): no command of
        // an older coordinator can change this node's liveness once a coordinator of
        // the new term runs, and if the persist fails the process exits before any
        // coordinator of a term its node never followed has sent anything. (Found by
        // `ebbtide trace check`'s walk through the model: the coordinator used to start
        // first, and a failed persist left a run the model has no step for.)
        self.cluster.set_leader(term, &self.cluster.id.clone());
        let learnt = AgentInput::LeaderChanged {
            term,
            leader: self.cluster.id.clone(),
        };
        if self.setup.bugs.coordinator_before_term {
            // The shell bug: the coordinator first, the agent's term queued behind it.
            self.agent(learnt);
        } else if !self.agent_has_handled(learnt).await {
            tracing::warn!(node = %self.cluster.id, term, "the agent is gone: the coordinator does not start");
            return;
        } else if !*self.campaign.borrow() {
            // A leave (SIGTERM) queued to the agent before the win was applied first: the
            // node may no longer campaign, so it does not coordinate either. It resigns
            // without a coordinator; its agent follows the term it won, as a watch
            // would have told it (the model's declined election, then its `Watch`). The
            // simulation found this (elected seed 101): the coordinator used to start,
            // on a node whose leave had already passed the point where it resigns one.
            tracing::warn!(node = %self.cluster.id, term, "won the election, but a leave came first: resigning");
            self.resign_election().await;
            return;
        }
        match self.start_coordinator(term).await {
            Ok(r) => *running = Some(r),
            Err(e) => {
                tracing::error!(error = %e, term, "cannot start the coordinator: resigning");
                let _ = self.service.resign().await;
                self.campaign.mark_changed();
            }
        }
    }

    /// Stops this process's coordinator at once, if it runs, and removes it from the
    /// directory so that nothing is routed to it any more.
    fn stop_coordinator(&self, running: &mut Option<Running>, why: &str) {
        if let Some(r) = running.take() {
            tracing::warn!(node = %self.cluster.id, term = r.term, why, "the coordinator stops");
            r.task.abort();
            self.cluster.set_local_coordinator(None);
        }
    }

    async fn start_coordinator(&self, term: Term) -> Result<Running, String> {
        // Read afresh at every start (on etcd: every page of the work prefix): units
        // added under an earlier term by another coordinator are known only there.
        let t0 = std::time::Instant::now();
        let desired = self.service.units().await.map_err(|e| e.to_string())?;
        let load = t0.elapsed();
        let s = &self.setup;
        s.metrics.coordinator_starts.inc();
        s.metrics.units_loaded.set(desired.len() as i64);
        s.metrics.units_load_seconds.set(load.as_secs_f64());
        let config = CoordinatorConfig {
            drain_batch: s.drain_batch,
            ..CoordinatorConfig::default()
        };
        let mut out = Vec::new();
        let coordinator = Coordinator::new(
            self.cluster.id.clone(),
            term,
            self.cluster.members(),
            desired,
            config,
            Guards::ALL_ON,
            &mut out,
        );
        let (tx, rx) = mpsc::channel(super::QUEUE);
        let handle = CoordHandle { tx };
        // Installed before its first outputs go out, so that this node's own agent's
        // answers find it.
        self.cluster.set_local_coordinator(Some(handle.clone()));
        let mut task = CoordTask {
            id: self.cluster.id.clone(),
            coordinator,
            transport: s.transport.clone(),
            service: self.service.clone(),
            tracer: s.tracer.clone(),
            metrics: s.metrics.clone(),
            resend: s.resend,
            liveness_ttl: s.liveness_ttl,
            timers: BTreeMap::new(),
            steps: 0,
            busy: Duration::ZERO,
            pending: Default::default(),
            bugs: s.bugs,
        };
        task.started(out);
        tracing::info!(node = %self.cluster.id, term, units = s.metrics.units_loaded.get(), load_ms = load.as_millis() as u64, "elected: the coordinator starts");
        Ok(Running {
            term,
            handle,
            task: tokio::spawn(task.run(rx)),
        })
    }
}
