//! `ebbtide bench drain`: an in-process cluster on loopback (every node a real gRPC
//! and HTTP server in this process), W work units placed, the last node drained by a
//! polling client. Prints drain time, messages sent, coordinator time and memory per
//! work unit, and the floor that batch size and round trips allow; its last line is one
//! row of the scaling table that `tools/bench-table` collects over cluster sizes.

use crate::cli::BenchDrainArgs;
use ebbtide::node::{self, CoordAccess, CoordHandle, Listeners, Node, NodeConfig, Workload};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A workload that does nothing (the benchmark measures the control plane).
struct Noop;

impl Workload for Noop {
    fn start(&self, _unit: &str) {}
    fn stop(&self, _unit: &str) {}
    fn blocks(&self) -> bool {
        false
    }
}

pub(crate) fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// A socket on a free loopback port, kept bound and handed to the node, so that no
/// other process can take the port between the choice and the node's start.
pub(crate) fn listener() -> Result<(std::net::TcpListener, SocketAddr), String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| Ok((l.local_addr()?, l)))
        .map(|(a, l)| (l, a))
        .map_err(|e| format!("cannot bind a loopback port: {e}"))
}

/// The largest resident set size this process had (Linux; 0 elsewhere).
pub(crate) fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// The header of the row each run prints last (`tools/bench-table` prints it once).
pub const TABLE_HEADER: &str = "| nodes | units | placement s | us/unit | core us/unit | drain units | drain ms | RSS grew B/unit | peak RSS B/unit | dropped, queue full | h2 resets | threads |";

/// Resident set size of this process, in bytes (Linux; 0 elsewhere).
pub(crate) fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// CPU time (user + system) this process used so far (Linux; zero elsewhere).
fn cpu_time() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn sent_total(nodes: &[Node]) -> BTreeMap<String, u64> {
    counter_total(nodes, "ebbtide_messages_sent_total")
}

/// Messages lost on the way out, by `type/reason` (`add_work/queue_full`, ...),
/// summed over the nodes.
fn dropped_total(nodes: &[Node]) -> BTreeMap<String, u64> {
    counter_total(nodes, "ebbtide_messages_dropped_total")
        .into_iter()
        .map(|(labels, v)| (labels.replace("\",reason=\"", "/"), v))
        .collect()
}

/// Calls that failed with an HTTP/2 error code (a stream reset, a GOAWAY with a
/// code), summed over the nodes and codes.
fn h2_resets_total(nodes: &[Node]) -> u64 {
    nodes
        .iter()
        .flat_map(|n| {
            n.metrics
                .encode()
                .lines()
                .filter(|l| l.starts_with("ebbtide_h2_resets_total{"))
                .filter_map(|l| l.rsplit_once(' ')?.1.trim().parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// OS threads of this process (Linux; 0 elsewhere).
pub(crate) fn threads() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Threads:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .unwrap_or(0)
}

fn counter_total(nodes: &[Node], name: &str) -> BTreeMap<String, u64> {
    let prefix = format!("{name}{{type=\"");
    let mut total = BTreeMap::new();
    for n in nodes {
        let text = n.metrics.encode();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(prefix.as_str()) else {
                continue;
            };
            let Some((kind, value)) = rest.split_once("\"} ") else {
                continue;
            };
            let v: u64 = value.trim().parse().unwrap_or(0);
            *total.entry(kind.to_owned()).or_insert(0) += v;
        }
    }
    total
}

fn diff(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

async fn settled(h: &CoordHandle, work: usize, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let s = h.stats().await.map_err(|_| "the coordinator stopped")?;
        let placed: usize = s.nodes.iter().map(|n| n.units).sum();
        if placed == work && s.operations == 0 && s.unplaced == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "work did not settle within {timeout:?}: {placed}/{work} placed, {} operations",
                s.operations
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn run(args: &BenchDrainArgs, dir: &std::path::Path) -> Result<(), String> {
    let ids: Vec<String> = (1..=args.nodes).map(|i| format!("n{i}")).collect();
    let mut sockets = Vec::new();
    for _ in &ids {
        let (grpc, grpc_addr) = listener()?;
        let (http, http_addr) = listener()?;
        sockets.push((Some(Listeners { grpc, http }), grpc_addr, http_addr));
    }
    let grpc: Vec<SocketAddr> = sockets.iter().map(|s| s.1).collect();
    let mut nodes = Vec::new();
    let cluster = format!("bench-{}-{}", std::process::id(), now_ms());
    let tls = if args.tls {
        Some(bench_certs(&ids, &dir.join("tls"))?)
    } else {
        None
    };
    for (i, id) in ids.iter().enumerate() {
        let mut cfg = NodeConfig::new(id.clone(), grpc[i], sockets[i].2, dir.join(id), "n1");
        if let Some(files) = &tls {
            cfg.security.tls = Some(files[i].clone());
        }
        if args.etcd.is_empty() {
            for (j, other) in ids.iter().enumerate() {
                if j != i {
                    cfg.peers.insert(other.clone(), grpc[j].to_string());
                }
            }
        } else {
            cfg.coordinator.clear();
            cfg.etcd = args.etcd.clone();
            cfg.cluster = cluster.clone();
        }
        cfg.heartbeat = args.heartbeat_interval;
        cfg.liveness_ttl = args.liveness_ttl;
        cfg.resend = args.resend_interval;
        cfg.drain_batch = args.drain_batch;
        nodes.push(node::start_on(cfg, Arc::new(Noop), sockets[i].0.take()).await?);
        if i == 0 {
            // n1 coordinates: under etcd it campaigns first, so it wins.
            let deadline = Instant::now() + Duration::from_secs(10);
            while nodes[0].coordinator().is_none() {
                if Instant::now() > deadline {
                    return Err("n1 did not become coordinator within 10s".into());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    let coord = nodes[0].coordinator().ok_or("n1 runs no coordinator")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ns = coord.nodes().await.map_err(|_| "the coordinator stopped")?;
        if ns.len() == args.nodes
            && ns
                .iter()
                .all(|n| n.liveness == ebbtide_model::ViewLiveness::Alive)
        {
            break;
        }
        if Instant::now() > deadline {
            return Err("the cluster did not come up within 10s".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Round trip of one gRPC call through the coordinator's task, for the floor.
    let remote = CoordAccess::remote(nodes[0].cluster.dialer(), "n1", &grpc[0].to_string())?;
    let mut rtts = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        remote.nodes().await.map_err(|e| e.to_string())?;
        rtts.push(t.elapsed());
    }
    // The fastest call is the floor's unit: others waited for a CPU.
    let rtt = rtts.iter().min().copied().unwrap_or_default();

    let rss0 = rss();
    let sent_before = sent_total(&nodes);
    let busy0 = coord.stats().await.map_err(|_| "coordinator stopped")?.busy;
    let units: Vec<String> = (0..args.work).map(|i| format!("w{i:06}")).collect();
    let t = Instant::now();
    coord
        .add_units(units)
        .await
        .map_err(|_| "the coordinator stopped")??;
    settled(&coord, args.work, Duration::from_secs(300)).await?;
    let place_time = t.elapsed();
    // Let duplicate acknowledgements of resent commands die down before measuring.
    tokio::time::sleep(args.resend_interval.max(Duration::from_millis(100)) * 2).await;
    settled(&coord, args.work, Duration::from_secs(60)).await?;
    let placed_stats = coord.stats().await.map_err(|_| "coordinator stopped")?;
    let rss1 = rss();
    let placement_sent = diff(&sent_total(&nodes), &sent_before);

    let target = ids.last().expect("nodes").clone();
    let on_target = placed_stats
        .nodes
        .iter()
        .find(|n| n.node == target)
        .map_or(0, |n| n.units);
    let sent0 = sent_total(&nodes);
    let (steps0, busy1) = (placed_stats.steps, placed_stats.busy);
    let cpu0 = cpu_time();
    let t = Instant::now();
    let mut polls = 0u64;
    loop {
        polls += 1;
        let report = coord
            .drain(target.clone())
            .await
            .map_err(|_| "the coordinator stopped")?
            .map_err(|e| e.to_string())?;
        if report.remaining == 0 {
            break;
        }
        if t.elapsed() > Duration::from_secs(600) {
            return Err(format!(
                "drain did not finish: remaining {}",
                report.remaining
            ));
        }
        tokio::time::sleep(args.poll_interval).await;
    }
    let drain_time = t.elapsed();
    let cpu = cpu_time().saturating_sub(cpu0);
    let after = coord.stats().await.map_err(|_| "coordinator stopped")?;
    let sent = diff(&sent_total(&nodes), &sent0);
    let total_sent: u64 = sent.values().sum();
    let busy = after.busy - busy1;
    let steps = after.steps - steps0;
    let dropped_kinds = dropped_total(&nodes);
    let dropped: u64 = dropped_kinds.values().sum();
    // The table's column: messages lost to backpressure. The others (a heartbeat sent
    // before its coordinator started, a call to a node that stopped) are in `lost:`.
    let queue_full: u64 = dropped_kinds
        .iter()
        .filter(|(k, _)| k.ends_with("/queue_full"))
        .map(|(_, v)| v)
        .sum();
    let resets = h2_resets_total(&nodes);

    let rounds = on_target.div_ceil(args.drain_batch.max(1)) as u32;
    // A round is a move: RemoveWork, its WorkStatus, AddWork, its WorkStatus, each a
    // one-way gRPC call of about one rtt; then SetLiveness and its response, twice
    // (Draining, then Stopping).
    let floor = rtt * (4 * rounds + 4);
    let per_unit = |d: Duration| d.as_secs_f64() * 1e6 / on_target.max(1) as f64;
    println!(
        "ebbtide bench drain: {} nodes ({} membership, {}), {} work units, batch {}, heartbeat {}, ttl {}, resend {}, poll {}",
        args.nodes,
        if args.etcd.is_empty() { "static" } else { "etcd" },
        if args.tls { "mutual TLS between nodes" } else { "plain gRPC" },
        args.work,
        args.drain_batch,
        fmt(args.heartbeat_interval),
        fmt(args.liveness_ttl),
        fmt(args.resend_interval),
        fmt(args.poll_interval)
    );
    println!(
        "placement:   {} units placed in {:.1} ms (coordinator busy {:.1} ms, {:.2} us/unit)",
        args.work,
        place_time.as_secs_f64() * 1e3,
        (busy1 - busy0).as_secs_f64() * 1e3,
        (busy1 - busy0).as_secs_f64() * 1e6 / args.work.max(1) as f64
    );
    println!(
        "             {} messages sent while placing ({:.2} per unit): {}",
        placement_sent.values().sum::<u64>(),
        placement_sent.values().sum::<u64>() as f64 / args.work.max(1) as f64,
        placement_sent
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "drain:       {target} with {on_target} units drained in {:.1} ms ({polls} DrainNode polls); the whole process used {} ms CPU meanwhile",
        drain_time.as_secs_f64() * 1e3,
        cpu.as_millis()
    );
    println!(
        "messages:    {total_sent} sent during the drain ({:.2} per unit moved): {}",
        total_sent as f64 / on_target.max(1) as f64,
        sent.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "coordinator: {steps} core steps, busy {:.1} ms during the drain = {:.2} us per unit moved, {:.2} us per step",
        busy.as_secs_f64() * 1e3,
        per_unit(busy),
        busy.as_secs_f64() * 1e6 / steps.max(1) as f64
    );
    println!(
        "memory:      RSS grew {:.1} MiB for {} units = {} bytes/unit (whole process: coordinator and {} agents)",
        rss1.saturating_sub(rss0) as f64 / (1024.0 * 1024.0),
        args.work,
        rss1.saturating_sub(rss0) / args.work.max(1) as u64,
        args.nodes
    );
    println!(
        "floor:       ceil({on_target}/{}) = {rounds} moves in sequence x 4 one-way calls + 4 (Draining, Stopping), fastest call {:.0} us => {:.1} ms; drain took {:.2}x the floor",
        args.drain_batch,
        rtt.as_secs_f64() * 1e6,
        floor.as_secs_f64() * 1e3,
        drain_time.as_secs_f64() / floor.as_secs_f64().max(1e-9)
    );
    println!(
        "             (scheduling is event-driven: heartbeat, ttl and resend intervals bound the drain only after a lost message; the client's poll interval adds up to {} to seeing 0)",
        fmt(args.poll_interval)
    );
    println!(
        "lost:        {dropped} messages dropped in the whole run{}, {resets} calls ended by an HTTP/2 reset; {} OS threads",
        if dropped_kinds.is_empty() {
            String::new()
        } else {
            format!(
                " (by type/reason: {})",
                dropped_kinds
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        },
        threads()
    );
    println!("{TABLE_HEADER}");
    println!(
        "| {} | {} | {:.2} | {:.2} | {:.2} | {on_target} | {:.0} | {} | {} | {queue_full} | {resets} | {} |",
        args.nodes,
        args.work,
        place_time.as_secs_f64(),
        place_time.as_secs_f64() * 1e6 / args.work.max(1) as f64,
        (busy1 - busy0).as_secs_f64() * 1e6 / args.work.max(1) as f64,
        drain_time.as_secs_f64() * 1e3,
        rss1.saturating_sub(rss0) / args.work.max(1) as u64,
        peak_rss() / args.work.max(1) as u64,
        threads()
    );
    for n in nodes {
        n.shutdown();
    }
    Ok(())
}

/// A CA and one certificate per node in `dir` (what `ebbtide certs` makes), as each
/// node's TLS files.
fn bench_certs(
    ids: &[String],
    dir: &std::path::Path,
) -> Result<Vec<ebbtide::tls::TlsFiles>, String> {
    use ebbtide::tls::{CertAuthority, FileArg, TlsFiles};
    let day = Duration::from_secs(86_400);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let ca = CertAuthority::generate("ebbtide bench CA", day)?;
    let write = |name: &str, text: &str| -> Result<std::path::PathBuf, String> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    };
    let ca_path = write("ca.pem", &ca.ca.cert_pem)?;
    let hosts = ["localhost".to_string(), "127.0.0.1".to_string()];
    ids.iter()
        .map(|id| {
            let c = ca.node(id, &hosts, day)?;
            Ok(TlsFiles {
                ca: FileArg::new("--tls-ca", &ca_path),
                cert: FileArg::new("--tls-cert", write(&format!("{id}.pem"), &c.cert_pem)?),
                key: FileArg::new("--tls-key", write(&format!("{id}-key.pem"), &c.key_pem)?),
            })
        })
        .collect()
}

pub(crate) fn fmt(d: Duration) -> String {
    ebbtide::node::config::fmt_duration(d)
}

/// Runs the drain benchmark.
pub fn drain(args: BenchDrainArgs) -> ExitCode {
    crate::node_cmd::init_logging(&args.log);
    if !(2..=256).contains(&args.nodes) {
        return crate::cli::bad_usage("--nodes must be 2-256");
    }
    if args.work == 0 {
        return crate::cli::bad_usage("--work must be at least 1");
    }
    if args.drain_batch == 0 {
        return crate::cli::bad_usage("--drain-batch must be at least 1");
    }
    let dir = std::env::temp_dir().join(format!("ebbtide-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
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
    let res = rt.block_on(run(&args, &dir));
    rt.shutdown_timeout(Duration::from_secs(1));
    let _ = std::fs::remove_dir_all(&dir);
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
