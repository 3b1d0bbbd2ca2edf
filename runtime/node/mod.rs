//! The node process: a node agent, the coordinator when this node is the configured
//! one, the gRPC `Peer`/`Operator` services and the HTTP API.
//!
//! Each role is one task that owns its core state and handles its inputs in order from
//! an mpsc channel (decoded messages, client requests) and its own timers. The tasks
//! hold no protocol decision: they convert bytes and clock ticks into core inputs, and
//! core outputs into bytes, timers, workload hooks and data-directory writes.
//!
//! Membership is static (`--peer`); the coordinator is the node named by
//! `--coordinator`, and its term is its own epoch, which grows with every restart, so a
//! restarted coordinator always has a newer term than the one nodes persisted.

pub mod agent_task;
pub mod api;
pub mod config;
pub mod coordinator_task;
pub mod metrics;
pub mod peer_service;
pub mod storage;
pub mod trace;
pub mod transport;
pub mod workload;

pub use agent_task::{AgentHandle, AgentStatus};
pub use api::{CallError, CoordAccess};
pub use config::NodeConfig;
pub use coordinator_task::{CoordHandle, CoordStats, DrainAnswer};
pub use metrics::Metrics;
pub use workload::{LogWorkload, Workload};

use agent_task::AgentTask;
use coordinator_task::CoordTask;
use ebbtide_model::{Coordinator, CoordinatorConfig, Epoch, Guards, NodeAgent};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use storage::DataDir;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use trace::Tracer;

/// Capacity of each role's input channel; a full channel drops the message (the
/// protocol tolerates loss, and the coordinator resends).
const QUEUE: usize = 65_536;

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
    /// The coordinator, when it runs here.
    pub coordinator: Option<CoordHandle>,
    /// This process's metrics.
    pub metrics: Arc<Metrics>,
    exit: watch::Receiver<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Node {
    /// Resolves when the node has drained and wants to exit (`--exit-when-drained`).
    pub async fn drained(&mut self) {
        while !*self.exit.borrow() {
            if self.exit.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Stops every task of this node (servers included).
    pub fn shutdown(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

async fn bind(flag: &str, addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("{flag} {addr}: cannot listen: {e}"))
}

/// Starts a node: persists the next epoch before serving anything, then starts the
/// roles and the servers.
pub async fn start(cfg: NodeConfig, workload: Arc<dyn Workload>) -> Result<Node, String> {
    cfg.validate()?;
    let data = DataDir::open(&cfg.data_dir)?;
    let epoch = data.next_epoch()?;
    let leader = data.leader()?;
    let grpc = bind("--listen", cfg.listen).await?;
    let http = bind("--http", cfg.http).await?;
    let grpc_addr = grpc.local_addr().map_err(|e| e.to_string())?;
    let http_addr = http.local_addr().map_err(|e| e.to_string())?;
    let tracer = Arc::new(Tracer::open(cfg.trace.as_deref())?);
    let metrics = Arc::new(Metrics::new());

    let (agent_tx, agent_rx) = mpsc::channel(QUEUE);
    let (coord_tx, coord_rx) = if cfg.is_coordinator() {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let transport = Arc::new(transport::Transport::new(
        &cfg,
        agent_tx.clone(),
        coord_tx.clone(),
        metrics.clone(),
    )?);
    let mut tasks = Vec::new();

    // The coordinator first, so that its own node's first reports find it.
    if let (Some(rx), true) = (coord_rx, cfg.is_coordinator()) {
        let desired = data.units()?;
        let config = CoordinatorConfig {
            drain_batch: cfg.drain_batch,
            ..CoordinatorConfig::default()
        };
        let mut out = Vec::new();
        let coordinator = Coordinator::new(
            cfg.id.clone(),
            epoch,
            cfg.members(),
            desired,
            config,
            Guards::ALL_ON,
            &mut out,
        );
        let mut task = CoordTask {
            id: cfg.id.clone(),
            coordinator,
            transport: transport.clone(),
            data: data.clone(),
            tracer: tracer.clone(),
            metrics: metrics.clone(),
            resend: cfg.resend,
            liveness_ttl: cfg.liveness_ttl,
            timers: BTreeMap::new(),
            steps: 0,
            busy: std::time::Duration::ZERO,
        };
        task.started(out, cfg.drain_batch);
        tasks.push(tokio::spawn(task.run(rx)));
    }

    let (exit_tx, exit_rx) = watch::channel(false);
    let agent = AgentTask {
        id: cfg.id.clone(),
        // Static membership: no election service; the configured coordinator's bootstrap
        // teaches each newer term.
        agent: NodeAgent::new(epoch, leader, Guards::ALL_ON)
            .with_fixed_coordinator(cfg.coordinator.clone()),
        transport,
        data,
        workload,
        tracer,
        metrics: metrics.clone(),
        heartbeat: cfg.heartbeat,
        exit: cfg.exit_when_drained.then_some((cfg.exit_linger, exit_tx)),
    };
    tasks.push(tokio::spawn(agent.run(agent_rx)));

    let coordinator = coord_tx.map(|tx| CoordHandle { tx });
    let peer = peer_service::PeerService {
        id: cfg.id.clone(),
        coordinator_id: cfg.coordinator.clone(),
        agent: agent_tx.clone(),
        coordinator: coordinator.as_ref().map(|c| c.tx.clone()),
    };
    let operator = peer_service::OperatorService {
        id: cfg.id.clone(),
        coordinator_id: cfg.coordinator.clone(),
        coordinator: coordinator.clone(),
    };
    tasks.push(tokio::spawn(async move {
        let res = tonic::transport::Server::builder()
            .add_service(crate::wire::pb::peer_server::PeerServer::new(peer))
            .add_service(crate::wire::pb::operator_server::OperatorServer::new(
                operator,
            ))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(grpc))
            .await;
        if let Err(e) = res {
            tracing::error!(error = %e, "gRPC server failed");
        }
    }));

    let access = match &coordinator {
        Some(h) => CoordAccess::Local(h.clone()),
        None => {
            let addr = cfg
                .address_of(&cfg.coordinator)
                .ok_or_else(|| format!("--coordinator {}: no address", cfg.coordinator))?;
            CoordAccess::remote(&cfg.coordinator, &addr)?
        }
    };
    let agent = AgentHandle { tx: agent_tx };
    let state = crate::http::AppState {
        id: cfg.id.clone(),
        coordinator_id: cfg.coordinator.clone(),
        addresses: cfg
            .members()
            .into_iter()
            .filter_map(|m| cfg.address_of(&m).map(|a| (m, a)))
            .collect(),
        http_addresses: cfg
            .members()
            .into_iter()
            .filter_map(|m| cfg.http_address_of(&m).map(|a| (m, a)))
            .collect(),
        coordinator: access,
        agent: agent.clone(),
        metrics: metrics.clone(),
    };
    let router = crate::http::router(Arc::new(state));
    tasks.push(tokio::spawn(async move {
        if let Err(e) = axum::serve(http, router).await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    }));

    tracing::info!(
        node = %cfg.id,
        epoch,
        grpc = %grpc_addr,
        http = %http_addr,
        coordinator = %cfg.coordinator,
        "node started"
    );
    Ok(Node {
        id: cfg.id,
        epoch,
        grpc_addr,
        http_addr,
        agent,
        coordinator,
        metrics,
        exit: exit_rx,
        tasks,
    })
}
