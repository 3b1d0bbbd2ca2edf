//! What the handle and its background tasks share: the etcd client, the key layout,
//! this process's session (lease and registration) and the event gate.
//!
//! Every event goes through the [`Gate`], under one lock, into an unbounded queue that a
//! forwarder task empties into the node's channel in order. The gate is where the rules
//! that span tasks live: `Elected` only while a campaign is pending, `Deposed` exactly
//! once per won term, `Deposed` before `LeaseLost`, and nothing after `LeaseLost` or a
//! graceful leave. Events pushed before `start` wait in the queue.
//!
//! The queue is unbounded because the gate is a plain lock, taken by the tasks and by
//! the synchronous `campaign`, never held across an await: a bounded send would have to
//! wait under it. The events are few (membership and leadership changes, not requests),
//! so the queue stays short even when the node is slow to read.

use super::super::{Event, MembershipError};
use super::units::UnitReads;
use ebbtide_model::Term;
use etcd_client::Client;
use std::future::Future;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinHandle};

/// The keys of one cluster (see the module header for the layout).
#[derive(Clone, Debug)]
pub(super) struct Keys {
    root: String,
}

impl Keys {
    pub(super) fn new(cluster: &str) -> Self {
        Keys {
            root: format!("/{cluster}"),
        }
    }

    /// `/<cluster>/members/`: one key per live incarnation.
    pub(super) fn members_prefix(&self) -> String {
        format!("{}/members/", self.root)
    }

    pub(super) fn member(&self, node: &str) -> String {
        format!("{}/members/{node}", self.root)
    }

    /// `/<cluster>/epochs/<id>`: the last epoch handed to `id`; never under a lease.
    pub(super) fn epoch(&self, node: &str) -> String {
        format!("{}/epochs/{node}", self.root)
    }

    /// The election's name, as etcd's election API takes it.
    pub(super) fn election(&self) -> String {
        format!("{}/election", self.root)
    }

    /// The candidate key etcd's election API writes for `lease`: `<name>/<lease in hex>`
    /// (etcd's `concurrency.Election` names it so; `campaign` checks it).
    pub(super) fn candidate(&self, lease: i64) -> String {
        format!("{}/election/{lease:x}", self.root)
    }

    /// `/<cluster>/work/`: one key per desired work unit.
    pub(super) fn work_prefix(&self) -> String {
        format!("{}/work/", self.root)
    }

    pub(super) fn unit(&self, unit: &str) -> String {
        format!("{}/work/{unit}", self.root)
    }
}

/// This process's registration, fixed by `register`.
#[derive(Clone, Debug)]
pub(super) struct Session {
    /// The node id.
    pub(super) node: String,
    /// The lease that holds the registration and the candidacy.
    pub(super) lease: i64,
    /// `/<cluster>/members/<id>`.
    pub(super) member_key: String,
    /// The revision that created our registration key: a delete after it is ours.
    pub(super) created: i64,
}

/// Where this process stands in the election.
#[derive(Debug, Default)]
pub(super) enum Campaign {
    /// Not a candidate.
    #[default]
    Idle,
    /// A candidate: the task waits in etcd's `Campaign` call.
    Pending(AbortHandle),
    /// The leader of `term`; `watch` follows our leader key to see it vanish.
    Won {
        term: Term,
        watch: Option<AbortHandle>,
    },
}

/// The event gate (see the module docs).
#[derive(Debug)]
pub(super) struct Gate {
    /// `None` once closed (after `LeaseLost`, a leave, or the last handle dropped).
    queue: Option<mpsc::UnboundedSender<Event>>,
    pub(super) campaign: Campaign,
}

impl Gate {
    pub(super) fn is_closed(&self) -> bool {
        self.queue.is_none()
    }

    /// Queues `event` unless the gate is closed.
    pub(super) fn push(&mut self, event: Event) {
        if let Some(q) = &self.queue {
            // The forwarder is gone only when the node dropped its receiver: then nobody
            // listens, and dropping the event is all there is to do.
            let _ = q.send(event);
        }
    }

    /// Gives up a won leadership (sends `Deposed`) or a pending candidacy (aborts it).
    pub(super) fn withdraw(&mut self) {
        match std::mem::take(&mut self.campaign) {
            Campaign::Idle => {}
            Campaign::Pending(task) => task.abort(),
            Campaign::Won { watch, .. } => {
                if let Some(w) = watch {
                    w.abort();
                }
                self.push(Event::Deposed);
            }
        }
    }

    /// Closes the gate: nothing is queued after this.
    fn close(&mut self) {
        self.queue = None;
    }
}

/// The background tasks, and the queue's receiving end until `start` takes it.
#[derive(Debug, Default)]
pub(super) struct Tasks {
    pub(super) running: Vec<AbortHandle>,
    pub(super) queue: Option<mpsc::UnboundedReceiver<Event>>,
    pub(super) forwarder: Option<JoinHandle<()>>,
    /// `start` ran.
    pub(super) started: bool,
    /// The tasks were stopped: a task spawned after that is aborted at once.
    pub(super) stopped: bool,
}

/// Everything one `EtcdMembership` and its tasks share.
pub(super) struct Shared {
    pub(super) client: Client,
    pub(super) keys: Keys,
    /// The configured lease TTL.
    pub(super) lease_ttl: Duration,
    /// The bound on one unary request (see `EtcdMembership::connect`).
    pub(super) rpc_timeout: Duration,
    pub(super) session: OnceLock<Session>,
    pub(super) gate: Mutex<Gate>,
    pub(super) tasks: Mutex<Tasks>,
    /// The local lease deadline (see `lease`), for the node's tasks to read before
    /// they act: once it has passed, this process may no longer act as a member.
    pub(super) deadline: Mutex<Option<tokio::time::Instant>>,
    /// What the reads of the desired units cost so far (see [`UnitReads`]).
    pub(super) unit_reads: Mutex<UnitReads>,
    /// The member view's generation: one more at every win, changed and compared only
    /// under the gate's lock. The member watch emits only under the generation its
    /// snapshot was read in, so that after `Elected` the next member event is a
    /// snapshot read after the win (see [`Shared::emit_member`]).
    pub(super) view: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    pub(super) fn new(
        client: Client,
        keys: Keys,
        lease_ttl: Duration,
        rpc_timeout: Duration,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Shared {
            client,
            keys,
            lease_ttl,
            rpc_timeout,
            session: OnceLock::new(),
            deadline: Mutex::new(None),
            unit_reads: Mutex::new(UnitReads::default()),
            view: tokio::sync::watch::Sender::new(0),
            gate: Mutex::new(Gate {
                queue: Some(tx),
                campaign: Campaign::Idle,
            }),
            tasks: Mutex::new(Tasks {
                queue: Some(rx),
                ..Tasks::default()
            }),
        }
    }

    /// The gate, locked. A panic elsewhere while holding it cannot leave it half
    /// updated (every update is a single assignment), so a poisoned lock is taken as is.
    pub(super) fn gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The read totals, locked (a poisoned lock is taken as is: they are counters).
    pub(super) fn unit_reads(&self) -> MutexGuard<'_, UnitReads> {
        self.unit_reads.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn tasks(&self) -> MutexGuard<'_, Tasks> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a member event of the view read in `generation`, if that is still the
    /// view's generation: false (and nothing queued) when a win made it stale since.
    pub(super) fn emit_member(&self, generation: u64, event: Event) -> bool {
        self.emit_members(generation, vec![event])
    }

    /// [`Shared::emit_member`] of several events, all or none.
    pub(super) fn emit_members(&self, generation: u64, events: Vec<Event>) -> bool {
        let mut gate = self.gate();
        if *self.view.borrow() != generation {
            return false;
        }
        for event in events {
            gate.push(event);
        }
        true
    }

    /// Queues `Elected` for `term` and makes the member view stale: the member watch
    /// reads a fresh snapshot after it (`Event::Elected`). Called with the gate held.
    pub(super) fn push_elected(&self, gate: &mut Gate, term: Term) {
        self.view.send_modify(|g| *g += 1);
        gate.push(Event::Elected { term });
    }

    /// Spawns a background task that stops with the others.
    pub(super) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) -> AbortHandle {
        let handle = tokio::spawn(task).abort_handle();
        let mut tasks = self.tasks();
        if tasks.stopped {
            handle.abort();
        } else {
            tasks.running.retain(|t| !t.is_finished());
            tasks.running.push(handle.clone());
        }
        handle
    }

    /// The lease is lost (`why` says how): `Deposed` if we lead, then `LeaseLost`, then
    /// nothing more; every background task stops.
    /// Publishes the local lease deadline (it only moves forward).
    pub(super) fn set_deadline(&self, at: tokio::time::Instant) {
        let mut d = self.deadline.lock().unwrap_or_else(|e| e.into_inner());
        if d.is_none_or(|old| old < at) {
            *d = Some(at);
        }
    }

    /// The local lease deadline, once a lease was granted.
    pub(super) fn deadline(&self) -> Option<tokio::time::Instant> {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn fence(&self, why: &str) {
        {
            let mut gate = self.gate();
            if gate.is_closed() {
                return;
            }
            tracing::error!(
                reason = why,
                "membership lease lost: this process must fence itself"
            );
            gate.withdraw();
            gate.push(Event::LeaseLost);
            gate.close();
        }
        self.stop_tasks();
    }

    /// Closes the gate without `LeaseLost` (a graceful leave, or the last handle
    /// dropped) and stops the tasks. With `depose`, a won leadership is given up first.
    pub(super) fn close_quietly(&self, depose: bool) {
        {
            let mut gate = self.gate();
            if depose {
                gate.withdraw();
            } else if let Campaign::Pending(task) = std::mem::take(&mut gate.campaign) {
                task.abort();
            }
            gate.close();
        }
        self.stop_tasks();
    }

    /// Aborts every background task but the forwarder, which ends by itself once it
    /// has delivered what the closed gate let through.
    fn stop_tasks(&self) {
        let running = {
            let mut tasks = self.tasks();
            tasks.stopped = true;
            std::mem::take(&mut tasks.running)
        };
        for t in running {
            t.abort();
        }
    }

    /// A pause between retries of a failed stream: short against the TTL, so that a
    /// keep-alive gets through soon after etcd is back.
    pub(super) fn retry_pause(&self) -> Duration {
        (self.lease_ttl / 10).clamp(Duration::from_millis(50), Duration::from_millis(500))
    }

    /// Runs one unary request with the request bound, mapping its error.
    pub(super) async fn rpc<T>(
        &self,
        what: &str,
        request: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, MembershipError> {
        match tokio::time::timeout(self.rpc_timeout, request).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(map_error(what, e)),
            Err(_) => Err(MembershipError::Unreachable(format!(
                "{what}: etcd did not answer within {:?}",
                self.rpc_timeout
            ))),
        }
    }
}

/// An etcd client error as a [`MembershipError`]: transport trouble is `Unreachable`
/// (try again later), and so are gRPC's "unavailable", "deadline exceeded" and
/// "cancelled", and an "unknown" status that tonic made from a broken connection (it
/// carries the transport error as its source; one etcd sent has none). The rest is
/// `Failed`.
pub(super) fn map_error(what: &str, e: etcd_client::Error) -> MembershipError {
    use etcd_client::Error as E;
    use tonic::Code;
    let unreachable = match &e {
        E::TransportError(_) | E::IoError(_) => true,
        E::GRpcStatus(s) => match s.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => true,
            Code::Unknown => std::error::Error::source(s).is_some(),
            _ => false,
        },
        _ => false,
    };
    if unreachable {
        MembershipError::Unreachable(format!("{what}: {e}"))
    } else {
        MembershipError::Failed(format!("{what}: {e}"))
    }
}

/// Whether etcd answered that the lease does not exist (expired or revoked).
pub(super) fn is_lease_not_found(e: &etcd_client::Error) -> bool {
    use etcd_client::Error as E;
    match e {
        // etcd-client's own check of the first keep-alive answer (TTL <= 0).
        E::LeaseKeepAliveError(m) => m.contains("lease not found"),
        E::GRpcStatus(s) => s.message().contains("requested lease not found"),
        _ => false,
    }
}

/// The failures of one retry loop, logged so that an etcd outage is one warning per task
/// (and one line when it recovers), not one per retry.
#[derive(Debug)]
pub(super) struct Failures {
    task: &'static str,
    run: u32,
}

impl Failures {
    pub(super) fn new(task: &'static str) -> Self {
        Failures { task, run: 0 }
    }

    /// One more failure; `error` says what.
    pub(super) fn failed(&mut self, error: &dyn std::fmt::Display) {
        if self.run == 0 {
            tracing::warn!(task = self.task, error = %error, "etcd request failed; retrying");
        } else {
            tracing::debug!(task = self.task, error = %error, attempt = self.run + 1, "etcd request failed again");
        }
        self.run += 1;
    }

    /// A success: ends the run of failures.
    pub(super) fn succeeded(&mut self) {
        if self.run > 0 {
            tracing::info!(task = self.task, failures = self.run, "etcd answers again");
            self.run = 0;
        }
    }
}
