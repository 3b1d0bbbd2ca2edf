//! The node process: a node agent, the coordinator when this node is the configured
//! one, the gRPC `Peer`/`Operator` services and the HTTP API.
//!
//! Each role is one task that owns its core state and handles its inputs in order from
//! an mpsc channel (decoded messages, client requests) and its own timers. The tasks
//! hold no protocol decision: they convert bytes and clock ticks into core inputs, and
//! core outputs into bytes, timers, workload hooks and data-directory writes.
//!
//! [`start`] runs on the OS's network, disk and clock; [`start_in`] is the same code in
//! another environment ([`mod@env`]: a deterministic simulation's, in `tests/sim.rs`).
//!
//! Membership is static (`--peer`); the coordinator is the node named by
//! `--coordinator`, and its term is its own epoch, which grows with every restart, so a
//! restarted coordinator always has a newer term than the one nodes persisted.

pub mod agent_task;
pub mod api;
pub mod cluster;
pub mod config;
pub mod coordinator_task;
pub mod env;
mod membership_task;
pub mod metrics;
pub mod peer_service;
#[doc(hidden)]
pub mod shell_bug;
pub mod storage;
pub mod trace;
pub mod transport;
pub mod workload;

pub use agent_task::{AgentHandle, AgentStatus};
pub use api::{CallError, CoordAccess};
pub use cluster::Cluster;
pub use config::NodeConfig;
pub use coordinator_task::{CoordHandle, CoordStats, DrainAnswer};
pub use env::Env;
pub use metrics::Metrics;
pub use workload::{LogWorkload, WorkLog, Workload};

use crate::membership::etcd::{EtcdConfig, EtcdMembership};
use crate::membership::{Event, MembershipError, Registration, Service, StaticMembership};
use agent_task::AgentTask;
use cluster::Address;
use ebbtide_model::{Epoch, Guards, NodeAgent, PROTOCOL_VERSION};
use membership_task::{CoordSetup, MembershipTask};
use std::net::SocketAddr;
use std::sync::Arc;
use storage::DataDir;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use trace::Tracer;

/// Capacity of each role's input channel; a full channel drops the message (the
/// protocol tolerates loss, and the coordinator resends).
const QUEUE: usize = 65_536;

/// Why a node process should exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// Stopping and running nothing, with `--exit-when-drained` (status 0).
    Drained,
    /// The membership lease was lost: the node fenced itself (status 3; a supervisor
    /// restarts it as a new incarnation).
    LeaseLost,
    /// A durable write the core's contract requires (the persisted leader, the term
    /// floor) failed: the node stops applying outputs and exits (status 4), like a
    /// crash, rather than go on without it.
    PersistFailed,
}

/// Why a graceful leave ([`Node::graceful_leave`]) ended without leaving; the process
/// should then exit at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaveError {
    /// The process must exit meanwhile, for this reason (not `Drained`): with that
    /// reason's status, as it would without the leave.
    Exit(ExitReason),
    /// The timeout passed before the drain finished: its units are re-placed when its
    /// lease expires.
    TimedOut(std::time::Duration),
    /// Static membership: the coordinator's own node cannot be drained (no other node
    /// can take over).
    StaticCoordinator,
}

impl std::fmt::Display for LeaveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeaveError::Exit(r) => write!(f, "the process must exit ({r:?}) before its drain finished"),
            LeaveError::TimedOut(t) => write!(f, "--shutdown-timeout {t:?} passed before the drain finished: exiting at once; its units are re-placed when its lease expires"),
            LeaveError::StaticCoordinator => f.write_str("static membership: the coordinator's own node cannot be drained (no other candidate); exiting without a drain"),
        }
    }
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    /// This node's id.
    pub id: String,
    /// This incarnation's epoch.
    pub epoch: Epoch,
    /// The bound gRPC address.
    pub grpc_addr: SocketAddr,
    /// The bound HTTP address.
    pub http_addr: SocketAddr,
    /// This node's agent.
    pub agent: AgentHandle,
    /// What this process knows of the cluster (the coordinator included).
    pub cluster: Arc<Cluster>,
    /// The membership service.
    pub service: Service,
    /// This process's metrics.
    pub metrics: Arc<Metrics>,
    exit: watch::Receiver<Option<ExitReason>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Held for the process's lifetime: the data directory's lock.
    _data: DataDir,
}

impl Node {
    /// The coordinator, when it runs in this process.
    pub fn coordinator(&self) -> Option<CoordHandle> {
        self.cluster.local_coordinator()
    }

    /// Resolves when the node wants to exit, with the reason.
    pub async fn exited(&mut self) -> ExitReason {
        loop {
            if let Some(r) = *self.exit.borrow_and_update() {
                return r;
            }
            if self.exit.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Leaves membership for good: the coordinator gets `MemberLeft` for this
    /// incarnation, so a completed drain of it stays answered 0.
    pub async fn leave(&self) {
        self.service.leave(&self.cluster, self.epoch).await;
    }

    /// The graceful leave (SIGTERM to `ebbtide node`): the agent stops campaigning (the
    /// core's `Leave`); if this node coordinates it resigns first (a coordinator refuses
    /// to drain its own node, C10, and the core resigns anyway once its node is not
    /// Alive); then it asks for its own drain through DrainNode like any client, until
    /// the answer is 0 (its units run elsewhere and it is Stopping), and leaves
    /// membership for good ([`Node::leave`]). The process may then exit.
    ///
    /// Errors ([`LeaveError`]), after which the process should exit at once (its units
    /// are re-placed when its lease expires, or its restart is seen): the process must
    /// exit meanwhile (a lost lease, a failed durable write), `timeout` passed before the
    /// drain finished, or this is the coordinator of a static membership (no other node
    /// can take over, so nothing could drain this one).
    pub async fn graceful_leave(&self, timeout: std::time::Duration) -> Result<(), LeaveError> {
        let deadline = tokio::time::Instant::now() + timeout;
        // A process that must exit does not wait for its own drain: its agent task may
        // be gone (a failed write stops it), while its lease is still kept alive, so a
        // new coordinator's bootstrap would wait for that agent's answer, and every
        // drain with it, until the timeout. `Drained` is no reason to stop: it is what
        // the leave waits for, and the leave completes as usual.
        let mut exit = self.exit.clone();
        let must_exit = async {
            loop {
                if let Some(r) = *exit.borrow_and_update() {
                    if r != ExitReason::Drained {
                        return r;
                    }
                }
                if exit.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        let leave = async {
            self.agent.leave().await;
            let mut last = String::new();
            loop {
                if let Some(h) = self.coordinator() {
                    if self.service.has_election() {
                        tracing::info!(node = %self.id, "this node coordinates: resigning before its drain");
                        let _ = h.resign().await;
                    } else {
                        return Err(LeaveError::StaticCoordinator);
                    }
                }
                let answer = match self.cluster.coordinator() {
                    Ok(c) => c.drain(self.id.clone()).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                match answer {
                    Ok(Ok(r)) if r.remaining == 0 => return Ok(()),
                    Ok(Ok(r)) => {
                        let now = format!("remaining {} ({})", r.remaining, r.phase);
                        if now != last {
                            tracing::info!(node = %self.id, "own drain: {now}");
                            last = now;
                        }
                    }
                    Ok(Err(e)) => tracing::info!(node = %self.id, "own drain refused: {e}"),
                    Err(e) => tracing::info!(node = %self.id, "own drain: {e}"),
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        };
        let left = tokio::select! {
            biased;
            reason = must_exit => Err(LeaveError::Exit(reason)),
            left = tokio::time::timeout_at(deadline, leave) => {
                left.unwrap_or(Err(LeaveError::TimedOut(timeout)))
            }
        };
        if left.is_ok() {
            self.leave().await;
            tracing::info!(node = %self.id, epoch = self.epoch, "drained and left membership");
        }
        left
    }

    /// Stops every task of this node (servers included).
    pub fn shutdown(self) {
        if let Some(h) = self.cluster.local_coordinator() {
            let _ = h.tx.try_send(coordinator_task::CoordMsg::Stop);
        }
        for t in self.tasks {
            t.abort();
        }
    }
}

/// A bound listener: the OS's, or one of the environment's network.
enum Listener {
    Os(TcpListener),
    Net(Arc<dyn env::NetListener>),
}

impl Listener {
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Listener::Os(l) => l.local_addr(),
            Listener::Net(l) => l.local_addr(),
        }
    }
}

async fn bind(env: &Env, flag: &str, addr: SocketAddr) -> Result<Listener, String> {
    let bound = match &env.net {
        None => TcpListener::bind(addr).await.map(Listener::Os),
        Some(net) => net.bind(addr).await.map(Listener::Net),
    };
    bound.map_err(|e| format!("{flag} {addr}: cannot listen: {e}"))
}

/// Sockets a caller bound before starting the node, which then serves on them instead
/// of binding `--listen` and `--http` itself. A caller that needs to know a node's
/// ports before it starts (an in-process cluster whose nodes name each other as peers)
/// binds port 0 and keeps the socket: finding a free port by binding and releasing it,
/// then binding again, races with every other process doing the same (the benchmark at
/// 64 nodes failed 2 starts in 3 with "Address already in use").
#[derive(Debug)]
pub struct Listeners {
    /// For the gRPC services (in place of `--listen`).
    pub grpc: std::net::TcpListener,
    /// For the HTTP API (in place of `--http`).
    pub http: std::net::TcpListener,
}

fn adopt(flag: &str, l: std::net::TcpListener) -> Result<TcpListener, String> {
    l.set_nonblocking(true)
        .and_then(|()| TcpListener::from_std(l))
        .map_err(|e| format!("{flag}: cannot serve on the given socket: {e}"))
}

/// Starts a node: locks its data directory, takes the next epoch (from the data dir,
/// or from etcd and then recorded in the data dir) before serving anything, then starts
/// the agent, the membership task (which starts the coordinator when this process
/// leads) and the servers.
pub async fn start(cfg: NodeConfig, workload: Arc<dyn Workload>) -> Result<Node, String> {
    start_in(cfg, workload, Env::os()).await
}

/// [`start`], serving on `listeners` when given (`cfg.listen` and `cfg.http` are then
/// not bound).
pub async fn start_on(
    cfg: NodeConfig,
    workload: Arc<dyn Workload>,
    listeners: Option<Listeners>,
) -> Result<Node, String> {
    start_with(cfg, workload, Env::os(), listeners).await
}

/// [`start`] in the environment `env` (a simulation's network, disk and clock): the
/// same code, with only the seams of [`mod@env`] swapped.
pub async fn start_in(
    cfg: NodeConfig,
    workload: Arc<dyn Workload>,
    env: Env,
) -> Result<Node, String> {
    start_with(cfg, workload, env, None).await
}

async fn start_with(
    cfg: NodeConfig,
    workload: Arc<dyn Workload>,
    env: Env,
    listeners: Option<Listeners>,
) -> Result<Node, String> {
    cfg.validate()?;
    let security = load_security(&cfg)?;
    if env.net.is_some() && security.tls.is_some() {
        return Err("TLS is not supported over a simulated network".into());
    }
    let mut data = DataDir::open_on(env.disk.clone(), &cfg.data_dir)?;
    if env.bugs.skip_fsync {
        data = data.without_fsync();
    }
    let (grpc, http) = match listeners {
        Some(l) => (
            Listener::Os(adopt("--listen", l.grpc)?),
            Listener::Os(adopt("--http", l.http)?),
        ),
        None => (
            bind(&env, "--listen", cfg.listen).await?,
            bind(&env, "--http", cfg.http).await?,
        ),
    };
    let grpc_addr = grpc.local_addr().map_err(|e| e.to_string())?;
    let http_addr = http.local_addr().map_err(|e| e.to_string())?;
    warn_exposed(&cfg, grpc_addr, http_addr, &security);
    let registration = Registration {
        node: cfg.id.clone(),
        grpc: grpc_addr.to_string(),
        http: http_addr.to_string(),
        version: PROTOCOL_VERSION,
        pid: std::process::id(),
        host: hostname(),
        data_dir: std::fs::canonicalize(&cfg.data_dir)
            .unwrap_or_else(|_| cfg.data_dir.clone())
            .display()
            .to_string(),
    };
    let (events_tx, events_rx) = mpsc::channel::<Event>(QUEUE);
    let (service, epoch) = join(
        &cfg,
        &data,
        registration,
        events_tx.clone(),
        security.etcd.clone(),
        env.membership.clone(),
    )
    .await?;
    let leader = data.leader()?;
    let tracer = Arc::new(Tracer::open(cfg.trace.as_deref())?.with_clock(env.clock));
    let metrics = Arc::new(Metrics::new());

    let dialer = match &security.tls {
        Some(tls) => transport::Dialer::tls(tls.clone()),
        None => transport::Dialer::plain(),
    }
    .with_net(env.net.clone(), env.keep_alive);
    let cluster = Arc::new(
        Cluster::new(
            &cfg.id,
            Address {
                epoch,
                grpc: grpc_addr.to_string(),
                http: Some(http_addr.to_string()),
            },
        )
        .with_dialer(dialer),
    );
    if let Service::Static(_) = &service {
        for (id, grpc) in &cfg.peers {
            let http = cfg.peer_http.get(id).cloned();
            let address = Address {
                epoch: 0,
                grpc: grpc.clone(),
                http,
            };
            cluster.upsert(id, address);
        }
        // The configured coordinator; its term (its epoch) is not known here.
        cluster.set_leader(0, &cfg.coordinator);
    }

    let (agent_tx, agent_rx) = mpsc::channel(QUEUE);
    let rpc_timeout = cfg.liveness_ttl.max(std::time::Duration::from_secs(1));
    let transport = Arc::new(
        transport::Transport::new(
            cluster.clone(),
            agent_tx.clone(),
            rpc_timeout,
            metrics.clone(),
        )
        .with_faults(env.faults.clone(), env.bugs)
        .with_max_message_bytes(cfg.limits.max_message_bytes),
    );
    let mut tasks = Vec::new();

    let (exit_tx, exit_rx) = watch::channel(None);
    let agent_core = match &service {
        // Static membership has no election service: the configured coordinator's
        // bootstrap is what teaches each newer term (its epoch).
        Service::Static(_) => NodeAgent::new(epoch, leader, Guards::ALL_ON)
            .with_fixed_coordinator(cfg.coordinator.clone()),
        // etcd: a newer term is followed only once the election shows it.
        Service::Etcd(_) | Service::Custom(_) => NodeAgent::new(epoch, leader, Guards::ALL_ON),
    };
    let (campaign_tx, campaign_rx) = watch::channel(agent_core.may_campaign());
    let agent = AgentTask {
        id: cfg.id.clone(),
        agent: agent_core,
        transport: transport.clone(),
        data: data.clone(),
        workload,
        tracer: tracer.clone(),
        metrics: metrics.clone(),
        heartbeat: cfg.heartbeat,
        linger: cfg.exit_when_drained.then_some(cfg.exit_linger),
        exit: exit_tx.clone(),
        campaign: campaign_tx,
        service: service.clone(),
        lease_lost: false,
        probe: env.probe.clone(),
        bugs: env.bugs,
        dropped_bootstrap: 0,
    };

    let membership = MembershipTask {
        cluster: cluster.clone(),
        service: service.clone(),
        agent: agent_tx.clone(),
        campaign: campaign_rx,
        setup: CoordSetup {
            transport,
            tracer,
            metrics: metrics.clone(),
            resend: cfg.resend,
            liveness_ttl: cfg.liveness_ttl,
            drain_batch: cfg.drain_batch,
            bugs: env.bugs,
        },
        exit: exit_tx,
        members_known: matches!(service, Service::Static(_)),
        pending_term: None,
    };
    // The coordinator (if this node leads) first, so that its own node's first reports
    // find it: under static membership the configured node wins at once.
    if let Service::Static(s) = &service {
        if cfg.is_coordinator() {
            events_tx
                .send(Event::Elected { term: epoch })
                .await
                .map_err(|_| "membership task gone".to_string())?;
        } else {
            let (s, cluster) = (s.clone(), cluster.clone());
            tasks.push(tokio::spawn(async move {
                s.announce(&cluster, epoch, true).await;
            }));
        }
    }
    tasks.push(tokio::spawn(membership.run(events_rx)));
    // Let the membership task take the events queued so far (the coordinator starts)
    // before the agent's first report goes out.
    tokio::task::yield_now().await;
    tasks.push(tokio::spawn(agent.run(agent_rx)));

    let peer = peer_service::PeerService {
        cluster: cluster.clone(),
        agent: agent_tx.clone(),
        membership: events_tx,
        bind_ids: security.tls.is_some(),
    };
    let operator = peer_service::OperatorService {
        cluster: cluster.clone(),
        max_units: cfg.limits.max_units_per_request,
    };
    let max_message = cfg.limits.max_message_bytes;
    let grpc_tls = security.tls.as_ref().map(|t| t.grpc_server_config());
    tasks.push(tokio::spawn(async move {
        let router = tonic::transport::Server::builder()
            .add_service(
                crate::wire::pb::peer_server::PeerServer::new(peer)
                    .max_decoding_message_size(max_message),
            )
            .add_service(
                crate::wire::pb::operator_server::OperatorServer::new(operator)
                    .max_decoding_message_size(max_message),
            );
        let res = match (grpc, grpc_tls) {
            (Listener::Os(grpc), Some(config)) => {
                router
                    .serve_with_incoming(crate::tls::Incoming::new(grpc, config, "gRPC"))
                    .await
            }
            // TCP_NODELAY, as the TLS listener and every dialer set it: without it a
            // small answer (a batch's Ack) can wait for the delayed ACK of the one
            // before it, 40 ms on Linux, and a peer's pump has one call in flight.
            (Listener::Os(grpc), None) => {
                let incoming =
                    tonic::transport::server::TcpIncoming::from(grpc).with_nodelay(Some(true));
                router.serve_with_incoming(incoming).await
            }
            // An environment's network carries plain text (validated at start).
            (Listener::Net(grpc), _) => router.serve_with_incoming(env::Incoming::new(grpc)).await,
        };
        if let Err(e) = res {
            tracing::error!(error = %e, "gRPC server failed");
        }
    }));

    let agent = AgentHandle { tx: agent_tx };
    let state = crate::http::AppState {
        cluster: cluster.clone(),
        agent: agent.clone(),
        metrics: metrics.clone(),
        has_election: service.has_election(),
        auth: Arc::new(crate::http::ApiAuth {
            tls: security.tls.is_some(),
            token: security.token.clone(),
            reads: cfg.security.api_auth_reads,
        }),
        limits: cfg.limits,
    };
    let router = crate::http::router(Arc::new(state));
    let http_tls = security.tls.as_ref().map(|t| t.http_server_config());
    tasks.push(tokio::spawn(async move {
        let res = match (http, http_tls) {
            (Listener::Os(http), Some(config)) => {
                crate::tls::serve_http(crate::tls::Incoming::new(http, config, "HTTP"), router)
                    .await;
                Ok(())
            }
            (Listener::Os(http), None) => axum::serve(http, router).await,
            (Listener::Net(http), _) => axum::serve(env::Incoming::new(http), router).await,
        };
        if let Err(e) = res {
            tracing::error!(error = %e, "HTTP server failed");
        }
    }));

    tracing::info!(
        node = %cfg.id,
        epoch,
        grpc = %grpc_addr,
        http = %http_addr,
        membership = match &service {
            Service::Static(_) => "static",
            Service::Etcd(_) => "etcd",
            Service::Custom(_) => "custom",
        },
        tls = security.tls.is_some(),
        api_token = security.token.is_some(),
        "node started"
    );
    Ok(Node {
        id: cfg.id,
        epoch,
        grpc_addr,
        http_addr,
        agent,
        cluster,
        service,
        metrics,
        exit: exit_rx,
        tasks,
        _data: data,
    })
}

/// Joins the membership service: returns it with this incarnation's epoch, which is
/// durable in the data dir before anything is served.
async fn join(
    cfg: &NodeConfig,
    data: &DataDir,
    registration: Registration,
    events: mpsc::Sender<Event>,
    tls: Option<tonic::transport::ClientTlsConfig>,
    custom: Option<Arc<dyn crate::membership::ElectedMembership>>,
) -> Result<(Service, Epoch), String> {
    let endpoints = match custom {
        Some(_) => "membership".to_owned(),
        None => format!("--etcd {}", cfg.etcd.join(",")),
    };
    let service = match custom {
        Some(c) => Service::Custom(c),
        None if !cfg.uses_etcd() => {
            let epoch = data.next_epoch()?;
            return Ok((Service::Static(StaticMembership::new(data.clone())), epoch));
        }
        None => Service::Etcd(
            EtcdMembership::connect(EtcdConfig {
                endpoints: cfg.etcd.clone(),
                cluster: cfg.cluster.clone(),
                lease_ttl: cfg.lease_ttl,
                connect_timeout: ETCD_CONNECT_TIMEOUT,
                tls,
            })
            .await
            .map_err(|e| format!("{endpoints}: {e}"))?,
        ),
    };
    // A registration of our id that names this machine and this data dir is a dead
    // earlier incarnation (we hold the data dir's lock): wait for its lease to expire.
    let patience = tokio::time::Instant::now() + cfg.lease_ttl + std::time::Duration::from_secs(2);
    let member = loop {
        match service
            .register(registration.clone(), data.last_epoch()?)
            .await
        {
            Ok(m) => break m,
            Err(MembershipError::IdTaken { holder, .. })
                if holder.host == registration.host
                    && holder.data_dir == registration.data_dir
                    && tokio::time::Instant::now() < patience =>
            {
                tracing::info!(node = %cfg.id, pid = holder.pid, "an earlier incarnation's registration is still live: waiting for its lease to expire");
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(e) => return Err(format!("{endpoints}: {e}")),
        }
    };
    data.record_epoch(member.epoch)?;
    service.start(events);
    Ok((service, member.epoch))
}

/// The node's TLS material and API token, loaded and checked before anything is
/// bound or registered.
struct LoadedSecurity {
    tls: Option<Arc<crate::tls::NodeTls>>,
    token: Option<String>,
    etcd: Option<tonic::transport::ClientTlsConfig>,
}

fn load_security(cfg: &NodeConfig) -> Result<LoadedSecurity, String> {
    let s = &cfg.security;
    let tls = match &s.tls {
        Some(files) => Some(Arc::new(crate::tls::NodeTls::load(
            files,
            &s.allowed_names,
            Some(&cfg.id),
        )?)),
        None => None,
    };
    let token = match &s.api_token_file {
        Some(path) => {
            let file = crate::tls::FileArg::new("--api-token-file", path);
            let token = crate::tls::read_token(&file)?;
            if crate::tls::readable_by_others(path) {
                tracing::warn!(file = %path.display(), "--api-token-file can be read by other users of this machine: chmod 600 it");
            }
            Some(token)
        }
        None => None,
    };
    let etcd = match &s.etcd_tls {
        Some(e) => Some(crate::tls::etcd_client_config(
            &e.ca,
            e.identity.as_ref().map(|(c, k)| (c, k)),
        )?),
        None => None,
    };
    Ok(LoadedSecurity { tls, token, etcd })
}

/// Binding a non-loopback address without TLS exposes the node: say to whom, and what.
fn warn_exposed(cfg: &NodeConfig, grpc: SocketAddr, http: SocketAddr, s: &LoadedSecurity) {
    if s.tls.is_some() {
        return;
    }
    if !grpc.ip().is_loopback() {
        tracing::warn!(
            "--listen {grpc} is not a loopback address and TLS is off (no --tls-ca/--tls-cert/--tls-key): \
             anyone who can reach it can send this node protocol messages as any member (a forged \
             coordinator's bootstrap, liveness and work commands) and, when it coordinates, drain \
             nodes, add work and resign it through the Operator service"
        );
    }
    if !http.ip().is_loopback() {
        if s.token.is_some() {
            let reads = if cfg.security.api_auth_reads {
                "and so do reads"
            } else {
                "and anyone who can reach the address can read the cluster's state and metrics"
            };
            tracing::warn!(
                "--http {http} is not a loopback address and TLS is off: drain, work add and resign \
                 need the API token, but it travels in clear text, {reads}"
            );
        } else {
            tracing::warn!(
                "--http {http} is not a loopback address and TLS is off, without --api-token-file: \
                 anyone who can reach it can drain any node, add work units, resign the coordinator \
                 and read the cluster's state and metrics"
            );
        }
    }
}

/// How long a node waits for etcd at start before it gives up with an error.
const ETCD_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// This machine's name, as the kernel has it ("" where unknown).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}
