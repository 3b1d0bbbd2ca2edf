//! Outgoing protocol messages: to this process's own roles through their channels, to
//! other nodes over gRPC. Each peer has a bounded queue per direction and a task that
//! sends what has queued up as one batch call (`ToNodeBatch`, `ToCoordinatorBatch`) over
//! a lazily connected tonic channel, one call in flight at a time. A batch is cut to fit
//! the peer's `--max-message-bytes` (the cluster's nodes share one limit: a batch over
//! it would be refused whole). A slow peer holds up only its own queue: the roles only
//! ever `try_send`, and each peer has its own pump. A message that finds its queue full,
//! or whose call fails, is lost, which the protocol tolerates; it is counted
//! (`ebbtide_messages_dropped_total`, by type and [`DropReason`]) and logged. To keep queues from filling in the
//! first place, a role that has work of its own to feed (the coordinator's queue of
//! client-added units) asks [`Transport::congested`] first and waits while it is.

use super::agent_task::AgentMsg;
use super::cluster::Cluster;
use super::coordinator_task::CoordMsg;
use super::env::{Fate, Net, WireFaults};
use super::metrics::{DropReason, Metrics};
use super::shell_bug::ShellBugs;
use crate::tls::NodeTls;
use crate::wire::pb;
use crate::wire::pb::peer_client::PeerClient;
use ebbtide_model::{AgentInput, CoordInput, ToCoordinator, ToNode};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};

/// Messages queued for one peer and direction before new ones are dropped.
const PEER_QUEUE: usize = 65_536;
/// Messages in one batch call at most.
const MAX_BATCH: usize = 2048;
/// Messages queued for one peer (or this node's own agent) above which the transport
/// says it is congested: two batches in the queue behind the one in flight is enough
/// to keep a peer busy, and more only holds memory.
const CONGESTED: usize = 4 * MAX_BATCH;

/// One peer's outgoing queues.
#[derive(Clone, Debug)]
struct PeerQueues {
    to_node: mpsc::Sender<(pb::NodeMessage, &'static str)>,
    to_coordinator: mpsc::Sender<(pb::CoordinatorMessage, &'static str)>,
}

/// Routes the core's `Send` outputs.
#[derive(Debug)]
pub struct Transport {
    id: String,
    /// Where peers are: addresses come and go with membership, so peers' queues are
    /// made on first use and made again when a node re-registers at another address.
    cluster: Arc<Cluster>,
    peers: Mutex<BTreeMap<String, (String, PeerQueues)>>,
    rpc_timeout: Duration,
    /// The largest message a peer decodes (`--max-message-bytes`): batches are cut to
    /// fit it.
    max_message_bytes: usize,
    agent: mpsc::Sender<AgentMsg>,
    metrics: Arc<Metrics>,
    /// The fault layer between this transport and the wire (simulations only).
    faults: Option<Arc<dyn WireFaults>>,
    /// Test-only shell bugs ([`ShellBugs`]).
    bugs: ShellBugs,
}

/// How this process dials its peers' gRPC services: in plain text, or over TLS with
/// its node certificate, requiring the peer's certificate to name the peer's id.
#[derive(Clone, Debug, Default)]
pub struct Dialer {
    tls: Option<Arc<NodeTls>>,
    /// The network to dial through; `None`: tonic's own connector (the OS's TCP).
    net: Option<Arc<dyn Net>>,
    /// HTTP/2 keep-alive interval (and timeout), if any ([`super::env::Env`]).
    keep_alive: Option<Duration>,
}

impl Dialer {
    /// Plain-text gRPC (no `--tls-*` flags).
    pub fn plain() -> Self {
        Dialer::default()
    }

    /// TLS with this node's certificate.
    pub fn tls(tls: Arc<NodeTls>) -> Self {
        Dialer {
            tls: Some(tls),
            ..Dialer::default()
        }
    }

    /// Dials through `net` (a simulated network) instead of the OS's TCP, with HTTP/2
    /// keep-alive pings every `keep_alive` if given.
    pub fn with_net(mut self, net: Option<Arc<dyn Net>>, keep_alive: Option<Duration>) -> Self {
        self.net = net;
        self.keep_alive = keep_alive;
        self
    }

    /// Whether calls go over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A lazily connected channel to node `node`'s gRPC address `addr`.
    pub fn channel(
        &self,
        node: &str,
        addr: &str,
        rpc_timeout: Duration,
    ) -> Result<Channel, String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|e| format!("bad address {addr:?}: {e}"))?
            .connect_timeout(Duration::from_secs(1))
            .timeout(rpc_timeout)
            .tcp_nodelay(true);
        if let Some(tls) = &self.tls {
            endpoint = endpoint
                .tls_config(tls.peer_client_config(node))
                .map_err(|e| format!("TLS to {node} at {addr}: {e}"))?;
        }
        if let Some(every) = self.keep_alive {
            endpoint = endpoint
                .http2_keep_alive_interval(every)
                .keep_alive_timeout(every)
                .keep_alive_while_idle(true);
        }
        let Some(net) = self.net.clone() else {
            return Ok(endpoint.connect_lazy());
        };
        // tonic's connector contract: a `tower::Service<Uri>` whose connections speak
        // hyper's IO traits (`TokioIo` adapts tokio's).
        let connector = tower::service_fn(move |uri: tonic::transport::Uri| {
            let net = net.clone();
            async move {
                let addr = uri.authority().map(|a| a.to_string()).ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, "no host:port")
                })?;
                net.connect(addr).await.map(hyper_util::rt::TokioIo::new)
            }
        });
        Ok(endpoint.connect_with_connector_lazy(connector))
    }
}

/// The bytes `message` adds to a batch: its field tag, its length, itself.
fn field_len(message: &impl prost::Message) -> usize {
    let len = message.encoded_len();
    1 + prost::length_delimiter_len(len) + len
}

/// Sends whatever queued up, as batches of at most `max_bytes` encoded (a single
/// message larger than that goes alone, and the peer refuses it), until the queue
/// closes.
// Two peers, the queue, the metrics, the test-only fault layer and bug, the size
// limit and the call: each is one plain argument of the one caller pair.
#[allow(clippy::too_many_arguments)]
async fn pump<M, F, Fut>(
    from: String,
    to: String,
    mut rx: mpsc::Receiver<(M, &'static str)>,
    metrics: Arc<Metrics>,
    faults: Option<Arc<dyn WireFaults>>,
    resend_twice: bool,
    max_bytes: usize,
    mut send: F,
) where
    M: prost::Message + Clone + Send + 'static,
    F: FnMut(Vec<M>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), tonic::Status>> + Send,
{
    // Room for the batch's own framing.
    let budget = max_bytes.saturating_sub(64).max(1);
    let mut queued = Vec::with_capacity(MAX_BATCH);
    loop {
        if queued.is_empty() && rx.recv_many(&mut queued, MAX_BATCH).await == 0 {
            return;
        }
        let mut bytes = 0;
        let mut n = 0;
        for (m, _) in &queued {
            let len = field_len(m);
            if n > 0 && bytes + len > budget {
                break;
            }
            bytes += len;
            n += 1;
        }
        let (mut batch, mut kinds): (Vec<M>, Vec<&'static str>) = queued.drain(..n).unzip();
        if let Some(faults) = &faults {
            (batch, kinds) = inject(&from, &to, faults, batch, kinds, &metrics, &send);
            if batch.is_empty() {
                continue;
            }
        }
        // The test-only bug `resend_batch_twice`: the batch goes again once its call
        // returned, as a retry after a timeout whose first call was delivered.
        let again = (resend_twice && !batch.is_empty()).then(|| batch.clone());
        let mut result = send(batch).await;
        if let Some(again) = again {
            if result.is_ok() {
                result = send(again).await;
            }
        }
        if let Some(faults) = &faults {
            faults.done(&from, &to, &kinds);
        }
        if let Err(status) = result {
            if let Some(reason) = h2_reason(&status) {
                metrics.h2_reset(&format!("{reason:?}"));
            }
            // INVALID_ARGUMENT: the peer skipped only the messages it names.
            if status.code() != tonic::Code::InvalidArgument {
                // RESOURCE_EXHAUSTED: the peer's queue into its agent or coordinator was
                // full (it kept the messages that fit; all are counted here).
                let reason = if status.code() == tonic::Code::ResourceExhausted {
                    DropReason::QueueFull
                } else {
                    DropReason::CallFailed
                };
                for k in &kinds {
                    metrics.dropped(k, reason);
                }
            }
            tracing::debug!(
                to,
                messages = kinds.len(),
                error = %status.message(),
                "batch send failed: messages lost"
            );
        }
    }
}

/// The HTTP/2 error code a failed call ended with, if it was a stream reset or a
/// connection closed with a code: tonic keeps h2's error as the status's source (hyper
/// may wrap it), so the chain of sources is searched for it.
fn h2_reason(status: &tonic::Status) -> Option<h2::Reason> {
    let mut next = std::error::Error::source(status);
    while let Some(e) = next {
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            return h2.reason();
        }
        next = e.source();
    }
    None
}

/// Applies the fault layer's plan to a batch: returns what goes now; lost messages
/// are counted as dropped, delayed ones are sent later, each in a call of its own.
fn inject<M, F, Fut>(
    from: &str,
    to: &str,
    faults: &Arc<dyn WireFaults>,
    batch: Vec<M>,
    kinds: Vec<&'static str>,
    metrics: &Arc<Metrics>,
    send: &F,
) -> (Vec<M>, Vec<&'static str>)
where
    M: Clone + Send + 'static,
    F: FnMut(Vec<M>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), tonic::Status>> + Send,
{
    let fates = faults.plan(from, to, &kinds);
    let (mut now, mut now_kinds) = (Vec::new(), Vec::new());
    for ((m, k), fate) in batch.into_iter().zip(kinds).zip(fates) {
        match fate {
            Fate::Send => {
                now.push(m);
                now_kinds.push(k);
            }
            Fate::Duplicate => {
                now.push(m.clone());
                now_kinds.push(k);
                now.push(m);
                now_kinds.push(k);
            }
            Fate::Drop => {
                metrics.dropped(k, DropReason::Injected);
                faults.done(from, to, &[k]);
            }
            Fate::Delay(after) => {
                let (mut send, faults) = (send.clone(), faults.clone());
                let (from, to) = (from.to_owned(), to.to_owned());
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let _ = send(vec![m]).await;
                    faults.done(&from, &to, &[k]);
                });
            }
        }
    }
    (now, now_kinds)
}

impl Transport {
    /// A transport for node `id`; peers are connected lazily, on their first message.
    pub fn new(
        cluster: Arc<Cluster>,
        agent: mpsc::Sender<AgentMsg>,
        rpc_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Transport {
            id: cluster.id.clone(),
            cluster,
            peers: Mutex::new(BTreeMap::new()),
            rpc_timeout,
            max_message_bytes: super::config::Limits::default().max_message_bytes,
            agent,
            metrics,
            faults: None,
            bugs: ShellBugs::default(),
        }
    }

    /// Puts the fault layer `faults` between this transport and the wire, and
    /// switches on the test-only shell bugs `bugs`.
    pub fn with_faults(mut self, faults: Option<Arc<dyn WireFaults>>, bugs: ShellBugs) -> Self {
        self.faults = faults;
        self.bugs = bugs;
        self
    }

    /// Cuts batches to fit `bytes` (the cluster's `--max-message-bytes`).
    pub fn with_max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Whether a queue this transport feeds (a peer's, or this node's own agent's)
    /// holds more than a few batches: a role feeding work of its own pace should wait
    /// until it drains rather than fill it to the point of dropping messages.
    pub fn congested(&self) -> bool {
        let backlog = |cap: usize, max: usize| max - cap > CONGESTED;
        if backlog(self.agent.capacity(), self.agent.max_capacity()) {
            return true;
        }
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers
            .values()
            .any(|(_, q)| backlog(q.to_node.capacity(), q.to_node.max_capacity()))
    }

    /// The queues of peer `to`, started on first use (must run inside a tokio
    /// runtime); `None` if its address is not known.
    fn peer(&self, to: &str) -> Option<PeerQueues> {
        let addr = self.cluster.grpc_of(to)?;
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((a, q)) = peers.get(to) {
            if *a == addr {
                return Some(q.clone());
            }
        }
        let ch = match self.cluster.dialer().channel(to, &addr, self.rpc_timeout) {
            Ok(ch) => ch,
            Err(e) => {
                tracing::warn!(to, error = %e, "cannot reach peer");
                return None;
            }
        };
        let client = PeerClient::new(ch);
        let (to_node, rx) = mpsc::channel(PEER_QUEUE);
        let c = client.clone();
        tokio::spawn(pump(
            self.id.clone(),
            to.to_owned(),
            rx,
            self.metrics.clone(),
            self.faults.clone(),
            self.bugs.resend_batch_twice,
            self.max_message_bytes,
            move |messages| {
                let mut c = c.clone();
                async move {
                    c.to_node_batch(pb::NodeMessageBatch { messages })
                        .await
                        .map(drop)
                }
            },
        ));
        let (to_coordinator, rx) = mpsc::channel(PEER_QUEUE);
        tokio::spawn(pump(
            self.id.clone(),
            to.to_owned(),
            rx,
            self.metrics.clone(),
            self.faults.clone(),
            self.bugs.resend_batch_twice,
            self.max_message_bytes,
            move |messages| {
                let mut c = client.clone();
                async move {
                    c.to_coordinator_batch(pb::CoordinatorMessageBatch { messages })
                        .await
                        .map(drop)
                }
            },
        ));
        let q = PeerQueues {
            to_node,
            to_coordinator,
        };
        // Replacing an entry drops the old queues' senders: their pumps end.
        peers.insert(to.to_owned(), (addr, q.clone()));
        Some(q)
    }

    /// Sends a coordinator's message to the agent of node `to`.
    pub fn to_node(&self, to: &str, msg: ToNode<String>) {
        let kind = node_msg_kind(&msg);
        self.metrics.sent(kind);
        let queued = if to == self.id {
            let input = AgentInput::Message {
                from: self.id.clone(),
                msg,
            };
            self.agent
                .try_send(AgentMsg::Input(input))
                .map_err(DropReason::of_try_send)
        } else if let Some(peer) = self.peer(to) {
            let msg = match msg {
                ToNode::SetLiveness { target, term, .. } if self.bugs.drop_liveness_epoch => {
                    ToNode::SetLiveness {
                        target,
                        epoch: 0,
                        term,
                    }
                }
                msg => msg,
            };
            let m = pb::NodeMessage::from_core(self.id.clone(), msg);
            peer.to_node
                .try_send((m, kind))
                .map_err(DropReason::of_try_send)
        } else {
            // Membership is still reaching this process (a peer's registration comes
            // through the watch): lost, like any message; the coordinator resends.
            tracing::debug!(to, kind, "no address for node yet: message dropped");
            Err(DropReason::NoRoute)
        };
        if let Err(reason) = queued {
            self.metrics.dropped(kind, reason);
        }
    }

    /// Sends an agent's message to the coordinator running on node `to`.
    pub fn to_coordinator(&self, to: &str, msg: ToCoordinator<String>) {
        let kind = coord_msg_kind(&msg);
        self.metrics.sent(kind);
        let queued = if to == self.id {
            // No coordinator here (yet, or any more): under static membership the
            // coordinator starts only after its node's agent has followed its term, so
            // the agent's first heartbeat may find none.
            match self.cluster.local_coordinator() {
                Some(c) => {
                    let input = CoordInput::Message {
                        from: self.id.clone(),
                        msg,
                    };
                    c.tx.try_send(CoordMsg::Input(input))
                        .map_err(DropReason::of_try_send)
                }
                None => Err(DropReason::NoRoute),
            }
        } else if let Some(peer) = self.peer(to) {
            let m = pb::CoordinatorMessage::from_core(self.id.clone(), msg);
            peer.to_coordinator
                .try_send((m, kind))
                .map_err(DropReason::of_try_send)
        } else {
            // Membership is still reaching this process (a peer's registration comes
            // through the watch): lost, like any message; the coordinator resends.
            tracing::debug!(to, kind, "no address for node yet: message dropped");
            Err(DropReason::NoRoute)
        };
        if let Err(reason) = queued {
            self.metrics.dropped(kind, reason);
        }
    }
}

/// The metrics label of a coordinator → node message.
pub fn node_msg_kind<W>(m: &ToNode<W>) -> &'static str {
    match m {
        ToNode::Bootstrap { .. } => "bootstrap_request",
        ToNode::SetLiveness { .. } => "set_node_liveness",
        ToNode::AddWork { .. } => "add_work",
        ToNode::RemoveWork { .. } => "remove_work",
    }
}

/// The metrics label of a node → coordinator message.
pub fn coord_msg_kind<W>(m: &ToCoordinator<W>) -> &'static str {
    match m {
        ToCoordinator::BootstrapResponse { .. } => "bootstrap_response",
        ToCoordinator::Heartbeat { .. } => "heartbeat",
        ToCoordinator::SetLivenessResponse { .. } => "set_node_liveness_response",
        ToCoordinator::WorkStatus { .. } => "work_status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_ended_by_an_http2_reset_names_its_code() {
        let reset = h2::Error::from(h2::Reason::REFUSED_STREAM);
        let status = tonic::Status::from_error(Box::new(reset));
        assert_eq!(h2_reason(&status), Some(h2::Reason::REFUSED_STREAM));
        assert_eq!(
            h2_reason(&tonic::Status::unavailable("connection refused")),
            None
        );
    }

    fn add_work(i: u64) -> pb::NodeMessage {
        let msg = ToNode::AddWork {
            work: format!("w{i:06}"),
            epoch: 1,
            term: 1,
            op: i,
        };
        pb::NodeMessage::from_core("n1".to_owned(), msg)
    }

    /// A batch never encodes to more than the peer's `--max-message-bytes`: what queued
    /// up is cut into several calls, in order, and nothing is dropped.
    #[tokio::test]
    async fn batches_are_cut_to_fit_the_message_limit() {
        let one = field_len(&add_work(0));
        // Room for three messages (and the framing allowance), not four.
        let max_bytes = 64 + 3 * one + one / 2;
        let (tx, rx) = mpsc::channel(64);
        for i in 0..10 {
            tx.try_send((add_work(i), "add_work")).unwrap();
        }
        drop(tx);
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = calls.clone();
        let metrics = Arc::new(Metrics::new());
        pump(
            "n1".to_owned(),
            "n2".to_owned(),
            rx,
            metrics.clone(),
            None,
            false,
            max_bytes,
            move |batch: Vec<pb::NodeMessage>| {
                let ops: Vec<u64> = batch
                    .iter()
                    .map(|m| match m.clone().into_core() {
                        Ok((_, ToNode::AddWork { op, .. })) => op,
                        other => panic!("unexpected {other:?}"),
                    })
                    .collect();
                seen.lock().unwrap().push(ops);
                async { Ok(()) }
            },
        )
        .await;
        let calls = calls.lock().unwrap().clone();
        assert_eq!(
            calls,
            vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7, 8], vec![9]]
        );
        assert!(!metrics.encode().contains("ebbtide_messages_dropped_total{"));
    }

    /// A drop names its reason: a full queue is backpressure, a missing receiver is not
    /// (`bench drain`'s table counts only the first).
    #[test]
    fn a_dropped_message_is_counted_with_its_reason() {
        let own = super::super::cluster::Address {
            epoch: 1,
            grpc: "127.0.0.1:1".to_owned(),
            http: None,
        };
        let cluster = Arc::new(Cluster::new("n1", own));
        let (agent, _agent_rx) = mpsc::channel(1);
        let metrics = Arc::new(Metrics::new());
        let t = Transport::new(cluster, agent, Duration::from_secs(1), metrics.clone());
        let add = |op| ToNode::AddWork {
            work: "w1".to_owned(),
            epoch: 1,
            term: 1,
            op,
        };
        // The agent's queue holds one message: the second is lost to backpressure.
        t.to_node("n1", add(1));
        t.to_node("n1", add(2));
        // No coordinator runs in this process, and n9's address is unknown.
        let heartbeat = ToCoordinator::Heartbeat {
            epoch: 1,
            liveness: ebbtide_model::Liveness::Alive,
        };
        t.to_coordinator("n1", heartbeat);
        t.to_node("n9", add(3));
        let text = metrics.encode();
        let count = |labels: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("ebbtide_messages_dropped_total{{{labels}}} ")))
                .map(|l| l.rsplit_once(' ').expect("a value").1.to_owned())
        };
        assert_eq!(
            count("type=\"add_work\",reason=\"queue_full\"").as_deref(),
            Some("1"),
            "{text}"
        );
        assert_eq!(
            count("type=\"heartbeat\",reason=\"no_route\"").as_deref(),
            Some("1"),
            "{text}"
        );
        assert_eq!(
            count("type=\"add_work\",reason=\"no_route\"").as_deref(),
            Some("1"),
            "{text}"
        );
    }
}
