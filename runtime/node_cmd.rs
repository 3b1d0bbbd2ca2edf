//! `ebbtide node`: runs one node process until it drains (`--exit-when-drained`) or
//! gets SIGINT/SIGTERM.

use crate::cli::{bad_usage, LogArgs, LogFormat, NodeArgs, SecurityArgs};
use ebbtide::node::shell_bug::ShellBugs;
use ebbtide::node::{self, Env, ExitReason, LogWorkload, NodeConfig, WorkLog};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

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

/// The TLS, token and limit flags into `cfg`; TLS to etcd from the --etcd-* flags, or
/// from --tls-* when the endpoints are https:// and no --etcd-ca is given.
fn security(cfg: &mut NodeConfig, a: SecurityArgs) {
    use ebbtide::node::config::{EtcdTls, Limits, Security};
    use ebbtide::tls::{FileArg, TlsFiles};
    let tls = match (a.tls_ca, a.tls_cert, a.tls_key) {
        (Some(ca), Some(cert), Some(key)) => Some(TlsFiles {
            ca: FileArg::new("--tls-ca", ca),
            cert: FileArg::new("--tls-cert", cert),
            key: FileArg::new("--tls-key", key),
        }),
        _ => None, // clap requires all three or none
    };
    let https = cfg.etcd.iter().any(|u| u.starts_with("https://"));
    let etcd_tls = match (a.etcd_ca, &tls) {
        (Some(ca), _) => Some(EtcdTls {
            ca: FileArg::new("--etcd-ca", ca),
            identity: a.etcd_cert.zip(a.etcd_key).map(|(c, k)| {
                (
                    FileArg::new("--etcd-cert", c),
                    FileArg::new("--etcd-key", k),
                )
            }),
        }),
        (None, Some(t)) if https => Some(EtcdTls {
            ca: t.ca.clone(),
            identity: Some((t.cert.clone(), t.key.clone())),
        }),
        _ => None,
    };
    cfg.security = Security {
        tls,
        allowed_names: a.tls_allowed_names,
        api_token_file: a.api_token_file,
        api_auth_reads: a.api_auth_reads,
        etcd_tls,
    };
    cfg.limits = Limits {
        max_body_bytes: a.max_body_bytes,
        max_message_bytes: a.max_message_bytes,
        max_units_per_request: a.max_units_per_request,
    };
}

fn config(args: NodeArgs) -> Result<NodeConfig, String> {
    if !args.etcd.is_empty() {
        if args.coordinator.is_some() {
            return Err(
                "--coordinator cannot be used with --etcd: the coordinator is elected".into(),
            );
        }
        if !args.peers.is_empty() || !args.peer_http.is_empty() {
            return Err(
                "--peer/--peer-http cannot be used with --etcd: members register in etcd".into(),
            );
        }
    } else if args.coordinator.is_none() {
        return Err(
            "--coordinator ID is required with static membership (or give --etcd URL to elect one)"
                .into(),
        );
    }
    let mut cfg = NodeConfig::new(
        args.id,
        args.listen,
        args.http,
        args.data_dir,
        args.coordinator.unwrap_or_default(),
    );
    cfg.etcd = args.etcd;
    cfg.cluster = args.cluster;
    cfg.lease_ttl = args.lease_ttl;
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
    cfg.shutdown_timeout = args.shutdown_timeout;
    security(&mut cfg, args.security);
    cfg.validate()?;
    Ok(cfg)
}

/// Resolves on the next SIGTERM or SIGINT.
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

/// Exit status after the membership lease was lost (the node fenced itself).
const EXIT_LEASE_LOST: u8 = 3;
/// Exit status after a durable write failed (the data dir cannot keep the term floor).
const EXIT_PERSIST_FAILED: u8 = 4;

/// Runs the node.
pub fn node(args: NodeArgs) -> ExitCode {
    init_logging(&args.log);
    let work_log = args.work_log.clone();
    let work_start_delay = args.work_start_delay;
    let cfg = match config(args) {
        Ok(c) => c,
        Err(e) => return bad_usage(&e),
    };
    // Production's environment; tests may switch shell bugs on through the hidden
    // EBBTIDE_SHELL_BUG (`node::shell_bug`), and a name this binary does not know is a
    // usage error rather than a run without the bug.
    let env = match ShellBugs::from_env() {
        Ok(bugs) => Env { bugs, ..Env::os() },
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
    let record = match &work_log {
        Some(path) => match WorkLog::open(path, &cfg.id) {
            Ok(r) => Some(r),
            Err(e) => return bad_usage(&e),
        },
        None => None,
    };
    let workload = Arc::new(LogWorkload {
        start_delay: work_start_delay,
        stop_delay: cfg.work_stop_delay,
        record,
    });
    let shutdown_timeout = cfg.shutdown_timeout;
    let code = rt.block_on(async {
        let mut node = match node::start_in(cfg, workload, env).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        let code = tokio::select! {
            reason = node.exited() => exit(&node, reason).await,
            _ = signal() => {
                tracing::info!(node = %node.id, timeout = ?shutdown_timeout, "SIGTERM: leaving gracefully (a second signal exits at once)");
                tokio::select! {
                    left = graceful_leave(&mut node, shutdown_timeout) => left,
                    _ = signal() => {
                        tracing::warn!(node = %node.id, "second signal: exiting at once; its units are re-placed when its lease expires");
                        ExitCode::from(1)
                    }
                }
            }
        };
        node.shutdown();
        code
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

/// The process asked to exit, for `reason`: its exit status.
async fn exit(node: &node::Node, reason: ExitReason) -> ExitCode {
    match reason {
        ExitReason::Drained => {
            node.leave().await;
            tracing::info!(node = %node.id, epoch = node.epoch, "drained: left membership, exiting with status 0");
            ExitCode::SUCCESS
        }
        ExitReason::PersistFailed => {
            tracing::error!(node = %node.id, epoch = node.epoch, "a durable write failed (see above): exiting with status {EXIT_PERSIST_FAILED}");
            ExitCode::from(EXIT_PERSIST_FAILED)
        }
        ExitReason::LeaseLost => {
            tracing::error!(node = %node.id, epoch = node.epoch, "membership lease lost: fenced, exiting with status {EXIT_LEASE_LOST}");
            ExitCode::from(EXIT_LEASE_LOST)
        }
    }
}

/// SIGTERM: [`node::Node::graceful_leave`], then exit 0. When the process must exit
/// meanwhile (a lost lease, a failed write), with that reason's status; when the leave
/// fails otherwise (the timeout passed, or the static coordinator cannot drain its own
/// node), 1 at once.
async fn graceful_leave(node: &mut node::Node, timeout: Duration) -> ExitCode {
    match node.graceful_leave(timeout).await {
        Ok(()) => {
            tracing::info!(node = %node.id, epoch = node.epoch, "exiting with status 0");
            ExitCode::SUCCESS
        }
        Err(node::LeaveError::Exit(reason)) => exit(node, reason).await,
        Err(e) => {
            tracing::warn!(node = %node.id, "{e}");
            ExitCode::from(1)
        }
    }
}
