//! The node agent's task: owns the [`NodeAgent`] and feeds it, in order, the messages
//! from its channel and its heartbeat timer; turns its outputs into sends, workload
//! hooks, timers and writes to the data directory.

use super::env::AgentProbe;
use super::metrics::Metrics;
use super::shell_bug::ShellBugs;
use super::storage::DataDir;
use super::trace::{self, Tracer};
use super::transport::Transport;
use super::workload::Workload;
use super::ExitReason;
use crate::membership::Service;
use ebbtide_model::protocol::agent::Leader;
use ebbtide_model::{AgentInput, AgentOutput, Epoch, Liveness, NodeAgent, Term, ToNode};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{sleep_until, Instant};

/// What the agent's task receives.
#[derive(Debug)]
pub enum AgentMsg {
    /// A core input (a decoded message).
    Input(AgentInput<String, String>),
    /// A status query.
    Status(oneshot::Sender<AgentStatus>),
}

/// A node's own state, as its agent knows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AgentStatus {
    pub node: String,
    pub epoch: Epoch,
    pub liveness: Liveness,
    /// The coordinator this node reports to.
    pub leader: Option<Leader<String>>,
    /// The work units running here, in order.
    pub running: Vec<String>,
    /// Stopping and running nothing: the process may exit.
    pub drained: bool,
}

/// A handle to send to the agent's task.
#[derive(Clone, Debug)]
pub struct AgentHandle {
    pub(crate) tx: mpsc::Sender<AgentMsg>,
}

impl AgentHandle {
    /// This node's own state, or `None` if the agent's task is gone.
    pub async fn status(&self) -> Option<AgentStatus> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(AgentMsg::Status(reply)).await.ok()?;
        rx.await.ok()
    }

    /// The process is asked to leave (SIGTERM): the agent stops campaigning. Resolves
    /// once the agent has handled it.
    pub async fn leave(&self) -> Option<AgentStatus> {
        self.tx
            .send(AgentMsg::Input(AgentInput::Leave))
            .await
            .ok()?;
        self.status().await
    }
}

/// The agent's task and what it drives.
pub(crate) struct AgentTask {
    pub id: String,
    pub agent: NodeAgent<String, String>,
    pub transport: Arc<Transport>,
    pub data: DataDir,
    pub workload: Arc<dyn Workload>,
    pub tracer: Arc<Tracer>,
    pub metrics: Arc<Metrics>,
    pub heartbeat: Duration,
    /// With `--exit-when-drained`: how long to keep heartbeating once drained, so that
    /// the coordinator sees the node Stopping while clients poll.
    pub linger: Option<Duration>,
    /// Where to say that the process should exit (drained).
    pub exit: watch::Sender<Option<ExitReason>>,
    /// The core's `may_campaign` after every step, for the membership task.
    pub campaign: watch::Sender<bool>,
    /// The membership service, asked before every step whether this process still
    /// holds its lease (the lease clock).
    pub service: Service,
    /// The lease clock already turned into `LeaseLost`.
    pub lease_lost: bool,
    /// The environment's observer of this agent's state ([`super::env::Env::probe`]).
    pub probe: Option<Arc<dyn AgentProbe>>,
    /// Test-only shell bugs ([`ShellBugs`]): the ones this node was started with.
    pub bugs: ShellBugs,
    /// [`ShellBugs::agent_drops_bootstrap`]: the last term whose first bootstrap
    /// request this task dropped. This node's own, like the bug: a process-global
    /// counter would let one node's drop spare every other node of a simulation.
    pub dropped_bootstrap: Term,
}

impl AgentTask {
    /// Runs until the channel closes or the node exits drained.
    pub async fn run(mut self, mut rx: mpsc::Receiver<AgentMsg>) {
        let mut hb: Option<Instant> = None;
        let mut out = Vec::new();
        self.agent.start(&mut out);
        self.probe();
        self.trace(trace::agent_start(&self.agent), &out);
        if let Err(e) = self.apply(out, &mut hb) {
            return self.stop(e);
        }
        let mut exit_at: Option<Instant> = None;
        loop {
            // `biased`: branches are polled in this order, not at random, so that a
            // run is a function of its inputs (a simulation's seed replays it). The
            // timers come first: each fires once per arming, so they cannot starve
            // the channel, while a busy channel could starve them.
            let stepped = tokio::select! {
                biased;
                _ = sleep_until(hb.unwrap_or_else(Instant::now)), if hb.is_some() => {
                    hb = None;
                    self.step(AgentInput::HeartbeatTimer, &mut hb)
                }
                _ = sleep_until(exit_at.unwrap_or_else(Instant::now)), if exit_at.is_some() => {
                    tracing::info!(node = %self.id, "drained: exiting");
                    let _ = self.exit.send(Some(ExitReason::Drained));
                    return self.answer_status_until_closed(rx).await;
                }
                msg = rx.recv() => match msg {
                    None => return,
                    Some(AgentMsg::Input(input)) => self.step(input, &mut hb),
                    Some(AgentMsg::Status(reply)) => {
                        let _ = reply.send(self.status());
                        Ok(())
                    }
                },
            };
            if let Err(e) = stepped {
                return self.stop(e);
            }
            self.campaign.send_if_modified(|may| {
                let now = self.agent.may_campaign();
                std::mem::replace(may, now) != now
            });
            if exit_at.is_none() && self.agent.drained() && self.exit.borrow().is_none() {
                if let Some(linger) = self.linger {
                    tracing::info!(node = %self.id, linger = ?linger, "Stopping and running nothing: exiting after the linger period");
                    exit_at = Some(Instant::now() + linger);
                }
            }
        }
    }

    /// After the agent asked to exit drained, its core takes no more steps: no
    /// heartbeat, no input. The node withdraws its registration next (`node_cmd`), and
    /// the model's process ends at its exit, before its registration goes: a heartbeat
    /// stepped in between was a run the model does not have (the trace check's
    /// refinement caught one in `etcd_cluster`'s slow-poller test, under load). Inputs
    /// that still arrive are dropped, as the model's network never delivers to an ended
    /// process; status queries are answered until the node shuts down.
    async fn answer_status_until_closed(self, mut rx: mpsc::Receiver<AgentMsg>) {
        while let Some(msg) = rx.recv().await {
            if let AgentMsg::Status(reply) = msg {
                let _ = reply.send(self.status());
            }
        }
    }

    fn status(&self) -> AgentStatus {
        AgentStatus {
            node: self.id.clone(),
            epoch: self.agent.epoch(),
            liveness: self.agent.liveness(),
            leader: self.agent.leader().cloned(),
            running: self.agent.running().cloned().collect(),
            drained: self.agent.drained(),
        }
    }

    /// One core step. First, the lease clock: once the local lease deadline has passed
    /// (the process may have been paused past it, and the cluster may have moved its
    /// work), the agent gets `LeaseLost` before anything else, so that it fences itself
    /// before it acts on an input that waited meanwhile. This is the shell turning a
    /// clock into a core input, as with the heartbeat timer; the membership task's
    /// `LeaseLost` (from the same deadline) follows and changes nothing more.
    fn step(
        &mut self,
        input: AgentInput<String, String>,
        hb: &mut Option<Instant>,
    ) -> Result<(), String> {
        if !self.lease_lost && !self.service.holds_lease() {
            self.lease_lost = true;
            tracing::error!(node = %self.id, "lease deadline passed: fencing before the next input");
            self.step_core(AgentInput::LeaseLost, hb)?;
        }
        self.step_core(input, hb)
    }

    /// The core/shell contract broke (a durable write failed): the agent applies
    /// nothing more, and the process exits (a crash, as the model has it: the next
    /// incarnation starts from what is durable).
    fn stop(&self, error: String) {
        tracing::error!(node = %self.id, error = %error, "stopping the node: it cannot keep its term floor durable");
        let _ = self.exit.send(Some(ExitReason::PersistFailed));
    }

    fn step_core(
        &mut self,
        input: AgentInput<String, String>,
        hb: &mut Option<Instant>,
    ) -> Result<(), String> {
        let before = self.agent.liveness();
        let traced = self.tracer.enabled().then(|| trace::agent_input(&input));
        if let AgentInput::Message {
            msg: ToNode::Bootstrap { term },
            ..
        } = &input
        {
            if self.bugs.agent_drops_bootstrap && self.dropped_bootstrap < *term {
                self.dropped_bootstrap = *term;
                if let Some(input) = traced {
                    self.trace(input, &[]);
                }
                return Ok(());
            }
        }
        let mut out = Vec::new();
        self.agent.handle(input, &mut out);
        self.probe();
        self.metrics.step("agent");
        if let Some(input) = traced {
            self.trace(input, &out);
        }
        let after = self.agent.liveness();
        if after != before {
            tracing::info!(node = %self.id, epoch = self.agent.epoch(), from = %before, to = %after, "liveness changed");
        }
        self.apply(out, hb)
    }

    fn probe(&self) {
        if let Some(p) = &self.probe {
            p.stepped(&self.id, self.agent.epoch(), self.agent.liveness());
        }
    }

    fn trace(&self, input: serde_json::Value, out: &[AgentOutput<String, String>]) {
        if self.tracer.enabled() {
            let outputs = trace::agent_outputs(out);
            let term = Some(self.agent.term_floor());
            self.tracer
                .record("agent", &self.id, self.agent.epoch(), term, input, outputs);
        }
    }

    /// Applies the core's outputs in order, as the core's contract asks
    /// ([`NodeAgent`]'s docs): `PersistLeader` is durable before any later output is
    /// applied, and if it cannot be made durable nothing after it is applied (a send
    /// after it would tell a coordinator that this node follows a term that a restart
    /// could forget).
    ///
    /// When the workload's hooks may block ([`Workload::blocks`]) and this step has any,
    /// the whole step's outputs are applied in one `block_in_place`: one thread handoff
    /// per step, not one per hook, and still in order.
    fn apply(
        &self,
        out: Vec<AgentOutput<String, String>>,
        hb: &mut Option<Instant>,
    ) -> Result<(), String> {
        let out = if self.bugs.send_before_persist {
            // The bug: the step's sends are applied first, the rest (the durable
            // write among it) after them.
            let (sends, rest): (Vec<_>, Vec<_>) = out
                .into_iter()
                .partition(|o| matches!(o, AgentOutput::Send { .. }));
            sends.into_iter().chain(rest).collect()
        } else {
            out
        };
        let hooks = out
            .iter()
            .any(|o| matches!(o, AgentOutput::StartWork(_) | AgentOutput::StopWork(_)));
        if hooks && self.workload.blocks() {
            blocking(|| self.apply_in_order(out, hb))
        } else {
            self.apply_in_order(out, hb)
        }
    }

    fn apply_in_order(
        &self,
        out: Vec<AgentOutput<String, String>>,
        hb: &mut Option<Instant>,
    ) -> Result<(), String> {
        for o in out {
            match o {
                AgentOutput::Send { to, msg } => self.transport.to_coordinator(&to, msg),
                // The core emits StartWork/StopWork exactly when a unit starts or
                // stops running, so the gauge follows them without a scan of every unit.
                AgentOutput::StartWork(w) => {
                    self.workload.start(&w);
                    self.metrics.running.inc();
                }
                AgentOutput::StopWork(w) if self.bugs.ack_before_stop => {
                    // The bug: the unit is given a grace period to stop, on a task of
                    // its own, while the acknowledgement goes out at once.
                    let workload = self.workload.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        workload.stop(&w);
                    });
                    self.metrics.running.dec();
                }
                AgentOutput::StopWork(w) => {
                    self.workload.stop(&w);
                    self.metrics.running.dec();
                }
                AgentOutput::ArmHeartbeat => *hb = Some(Instant::now() + self.heartbeat),
                AgentOutput::PersistLeader(l) => {
                    self.data.persist_leader(&l).map_err(|e| {
                        format!(
                            "cannot persist the leader (term {}) in {}: {e}",
                            l.term,
                            self.data.path().display()
                        )
                    })?;
                }
            }
        }
        Ok(())
    }
}

/// Runs workload hooks that may block, without stalling other tasks where possible.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::StaticMembership;
    use crate::node::cluster::{Address, Cluster};
    use crate::node::coordinator_task::{CoordHandle, CoordMsg};
    use ebbtide_model::{Guards, ToNode};
    use std::sync::Mutex;

    /// Records the workload hooks it is asked to run.
    #[derive(Debug, Default)]
    struct Hooks(Mutex<Vec<String>>);

    impl Workload for Hooks {
        fn start(&self, unit: &str) {
            self.0.lock().unwrap().push(format!("start {unit}"));
        }
        fn stop(&self, unit: &str) {
            self.0.lock().unwrap().push(format!("stop {unit}"));
        }
    }

    /// A running agent task for node n1, which also runs the coordinator (the agent's
    /// sends land in `coord_rx`), with its channels and its data directory (removed
    /// when dropped); a heartbeat every 10 ms.
    struct TestNode {
        dir: std::path::PathBuf,
        data: DataDir,
        agent_tx: mpsc::Sender<AgentMsg>,
        coord_rx: mpsc::Receiver<CoordMsg>,
        exit_rx: watch::Receiver<Option<ExitReason>>,
        hooks: Arc<Hooks>,
        running: tokio::task::JoinHandle<()>,
    }

    impl TestNode {
        /// Starts the task on a fresh data directory named after `test`.
        fn start(test: &str, linger: Option<Duration>) -> TestNode {
            let dir = std::env::temp_dir()
                .join(format!("ebbtide-agent-task-{test}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let data = DataDir::open(&dir).unwrap();
            let own = Address {
                epoch: 1,
                grpc: "127.0.0.1:1".to_owned(),
                http: None,
            };
            let cluster = Arc::new(Cluster::new("n1", own));
            let (coord_tx, coord_rx) = mpsc::channel(64);
            cluster.set_local_coordinator(Some(CoordHandle { tx: coord_tx }));
            let (agent_tx, agent_rx) = mpsc::channel(16);
            let metrics = Arc::new(Metrics::new());
            let transport = Arc::new(Transport::new(
                cluster,
                agent_tx.clone(),
                Duration::from_secs(1),
                metrics.clone(),
            ));
            let (exit, exit_rx) = watch::channel(None);
            let (campaign, _campaign_rx) = watch::channel(false);
            let hooks = Arc::new(Hooks::default());
            let task = AgentTask {
                id: "n1".to_owned(),
                agent: NodeAgent::new(1, None, Guards::ALL_ON)
                    .with_fixed_coordinator("n1".to_owned()),
                transport,
                data: data.clone(),
                workload: hooks.clone(),
                tracer: Arc::new(Tracer::open(None).unwrap()),
                metrics,
                heartbeat: Duration::from_millis(10),
                linger,
                exit,
                campaign,
                service: Service::Static(StaticMembership::new(data.clone())),
                lease_lost: false,
                probe: None,
                bugs: ShellBugs::default(),
                dropped_bootstrap: 0,
            };
            let running = tokio::spawn(task.run(agent_rx));
            TestNode {
                dir,
                data,
                agent_tx,
                coord_rx,
                exit_rx,
                hooks,
                running,
            }
        }

        /// Hands the agent a message from its coordinator (n1).
        async fn deliver(&self, msg: ToNode<String>) {
            let input = AgentInput::Message {
                from: "n1".to_owned(),
                msg,
            };
            self.agent_tx.send(AgentMsg::Input(input)).await.unwrap();
        }

        /// What the agent sent its coordinator since the last call, one line each.
        fn sent(&mut self) -> Vec<String> {
            std::iter::from_fn(|| self.coord_rx.try_recv().ok())
                .map(|m| match m {
                    CoordMsg::Input(input) => format!("{input:?}"),
                    other => format!("{other:?}"),
                })
                .collect()
        }
    }

    impl Drop for TestNode {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// The core/shell contract (`NodeAgent`'s call contract, items 4 and 5): when
    /// `PersistLeader` cannot be made durable, the task applies no output after it (the
    /// bootstrap answer that follows is never sent), takes no further input, and asks
    /// the process to exit with `PersistFailed`.
    #[tokio::test]
    async fn a_failed_persist_leader_applies_nothing_after_it_and_stops_the_node() {
        let mut node = TestNode::start("persist", None);
        // The leader record's temporary file cannot be created: it is a directory.
        std::fs::create_dir_all(node.dir.join("leader.json.tmp").join("blocker")).unwrap();

        // The coordinator's bootstrap request teaches term 1: PersistLeader, then the
        // bootstrap answer.
        node.deliver(ToNode::Bootstrap { term: 1 }).await;
        tokio::time::timeout(Duration::from_secs(5), &mut node.running)
            .await
            .expect("the agent task stops")
            .unwrap();
        assert_eq!(
            *node.exit_rx.borrow_and_update(),
            Some(ExitReason::PersistFailed)
        );
        // No input is taken any more, and no output after the failed write was applied:
        // no bootstrap answer, no heartbeat, no work hook.
        assert!(node
            .agent_tx
            .send(AgentMsg::Input(AgentInput::HeartbeatTimer))
            .await
            .is_err());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(node.sent(), Vec::<String>::new());
        assert!(node.hooks.0.lock().unwrap().is_empty());
        assert_eq!(node.data.leader(), Ok(None));
    }

    /// Once the drained agent asked to exit, its core takes no more steps until the
    /// node shuts down: the node withdraws its registration after that request
    /// (`node_cmd`), and the model's process ends at its exit, so a heartbeat stepped
    /// in between (the task once kept looping, and its armed heartbeat fired) is a run
    /// the model does not have. Deterministic, on tokio's paused clock: many heartbeat
    /// periods pass after the exit request, an input arrives, and nothing is sent;
    /// status queries are still answered.
    #[tokio::test(start_paused = true)]
    async fn after_asking_to_exit_drained_the_agent_takes_no_more_steps() {
        let mut node = TestNode::start("exit", Some(Duration::from_millis(25)));

        // Term 1, then Draining and Stopping for this incarnation: with no unit, the
        // agent is drained and asks to exit after the linger period.
        let set = |target| ToNode::SetLiveness {
            target,
            epoch: 1,
            term: 1,
        };
        node.deliver(ToNode::Bootstrap { term: 1 }).await;
        node.deliver(set(Liveness::Draining)).await;
        node.deliver(set(Liveness::Stopping)).await;
        tokio::time::timeout(Duration::from_secs(5), node.exit_rx.changed())
            .await
            .expect("the drained agent asks to exit")
            .unwrap();
        assert_eq!(*node.exit_rx.borrow_and_update(), Some(ExitReason::Drained));
        // Before the request, the agent answered and heartbeated (so heartbeats were
        // armed: the quiet below is not for lack of a timer).
        let before = node.sent();
        assert!(
            before.iter().any(|m| m.contains("Heartbeat")),
            "heartbeats before the exit request: {before:?}"
        );

        node.deliver(ToNode::Bootstrap { term: 2 }).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(node.sent(), Vec::<String>::new());
        assert_eq!(node.data.leader().unwrap().map(|l| l.term), Some(1));
        let handle = AgentHandle {
            tx: node.agent_tx.clone(),
        };
        let status = handle.status().await.expect("status is still answered");
        assert!(status.drained, "{status:?}");
    }
}
