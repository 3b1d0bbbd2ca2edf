//! `ebbtide node`: runs one node process until it drains (`--exit-when-drained`) or
//! gets SIGINT/SIGTERM.

use crate::cli::{bad_usage, LogArgs, LogFormat, NodeArgs};
use ebbtide::node::{self, LogWorkload, NodeConfig};
use std::process::ExitCode;
use std::sync::Arc;

/// Sets up tracing to stderr, human-readable or JSON lines.
pub fn init_logging(log: &LogArgs) {
    let builder = tracing_subscriber::fmt()
        .with_max_level(log.log_level.0)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let res = match log.log_format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    if let Err(e) = res {
        eprintln!("warning: cannot set up logging: {e}");
    }
}

fn config(args: NodeArgs) -> Result<NodeConfig, String> {
    let mut cfg = NodeConfig::new(
        args.id,
        args.listen,
        args.http,
        args.data_dir,
        args.coordinator,
    );
    for (id, addr) in args.peers {
        if id == cfg.id {
            // Every node may be given the same list: its own entry is --listen's.
            continue;
        }
        if cfg.peers.insert(id.clone(), addr).is_some() {
            return Err(format!("--peer {id}: given more than once"));
        }
    }
    for (id, addr) in args.peer_http {
        if id == cfg.id {
            continue;
        }
        if cfg.peer_http.insert(id.clone(), addr).is_some() {
            return Err(format!("--peer-http {id}: given more than once"));
        }
    }
    cfg.heartbeat = args.heartbeat_interval;
    cfg.liveness_ttl = args.liveness_ttl;
    cfg.resend = args.resend_interval;
    cfg.drain_batch = args.drain_batch;
    cfg.exit_when_drained = args.exit_when_drained;
    cfg.exit_linger = args.exit_linger.unwrap_or(args.liveness_ttl);
    cfg.trace = args.trace;
    cfg.work_stop_delay = args.work_stop_delay;
    cfg.validate()?;
    Ok(cfg)
}

async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the node.
pub fn node(args: NodeArgs) -> ExitCode {
    init_logging(&args.log);
    let cfg = match config(args) {
        Ok(c) => c,
        Err(e) => return bad_usage(&e),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let workload = Arc::new(LogWorkload {
        stop_delay: cfg.work_stop_delay,
    });
    let code = rt.block_on(async {
        let mut node = match node::start(cfg, workload).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        tokio::select! {
            _ = node.drained() => {
                tracing::info!(node = %node.id, epoch = node.epoch, "drained: exiting with status 0");
            }
            _ = signal() => {
                tracing::info!(node = %node.id, "signal received: exiting");
            }
        }
        node.shutdown();
        ExitCode::SUCCESS
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}
