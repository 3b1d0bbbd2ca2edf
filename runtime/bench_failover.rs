//! `ebbtide bench failover`: how long a new coordinator takes to serve a cluster whose
//! desired units live in etcd, at any number of units.
//!
//! A failover's cost that grows with the cluster is the new coordinator's read of
//! `/<cluster>/work/` (paged, at one revision: `membership/etcd/units.rs`) and its
//! bootstrap of every member (each answers with the units it runs). This benchmark
//! seeds W units, starts N nodes in this process with etcd membership, lets every unit
//! be placed, then makes the coordinator resign and crash, and times each stage of the
//! takeover. The figures come from where they happen: the new leader's own read
//! counters ([`UnitReads`], which start at zero on a node that never coordinated, so a
//! load that reused a cached copy would show no pages), its coordinator's stats, and
//! the nodes' workloads (which unit runs where), not from timed tests.

use crate::bench_cmd::{fmt, listener, now_ms, peak_rss, rss, threads};
use crate::cli::{BenchFailoverArgs, FailoverKind};
use ebbtide::etcd_server::{find_etcd, EtcdOptions, EtcdServer};
use ebbtide::membership::etcd::{EtcdConfig, EtcdMembership, UnitReads};
use ebbtide::membership::Service;
use ebbtide::node::{self, CoordHandle, Listeners, Node, NodeConfig, Workload};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The header of the rows the runs print (one per failover).
pub const TABLE_HEADER: &str = "| nodes | units | failover | elected ms | load ms | pages | key MiB | bootstrapped ms | settled ms | moved | ran twice | RSS B/unit | peak RSS B/unit |";

/// The name of unit `i`: fixed width, so that etcd's key order is the numeric order.
fn unit_name(i: usize) -> String {
    format!("w{i:07}")
}

fn unit_index(name: &str) -> Option<usize> {
    name.strip_prefix('w')?.parse().ok()
}

/// Which node runs each unit, as the nodes' workloads say: the ground truth that "no
/// unit moved" and "no unit ran twice" are judged on.
struct Runs {
    /// Per unit: 0 when nobody runs it, `i + 1` while node `i` does.
    owner: Vec<AtomicU16>,
    /// Starts of a unit that another live node was running.
    twice: AtomicU64,
    /// Starts of names the benchmark never made.
    foreign: AtomicU64,
    /// Per node: crashed (its process would be gone, and its units with it).
    dead: Vec<AtomicBool>,
}

impl Runs {
    fn new(units: usize, nodes: usize) -> Self {
        Runs {
            owner: (0..units).map(|_| AtomicU16::new(0)).collect(),
            twice: AtomicU64::new(0),
            foreign: AtomicU64::new(0),
            dead: (0..nodes).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    fn snapshot(&self) -> Vec<u16> {
        self.owner
            .iter()
            .map(|o| o.load(Ordering::SeqCst))
            .collect()
    }

    /// Node `i` died: nothing of it runs any more.
    fn crash(&self, i: usize) {
        self.dead[i].store(true, Ordering::SeqCst);
        let me = i as u16 + 1;
        for o in &self.owner {
            let _ = o.compare_exchange(me, 0, Ordering::SeqCst, Ordering::SeqCst);
        }
    }
}

/// A node's workload: records in [`Runs`] what it starts and stops.
struct Tracked {
    runs: Arc<Runs>,
    node: usize,
}

impl Workload for Tracked {
    fn start(&self, unit: &str) {
        if self.runs.dead[self.node].load(Ordering::SeqCst) {
            return;
        }
        let Some(o) = unit_index(unit).and_then(|i| self.runs.owner.get(i)) else {
            self.runs.foreign.fetch_add(1, Ordering::SeqCst);
            return;
        };
        let me = self.node as u16 + 1;
        let before = o.swap(me, Ordering::SeqCst);
        if before != 0 && before != me {
            self.runs.twice.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn stop(&self, unit: &str) {
        if let Some(o) = unit_index(unit).and_then(|i| self.runs.owner.get(i)) {
            let me = self.node as u16 + 1;
            let _ = o.compare_exchange(me, 0, Ordering::SeqCst, Ordering::SeqCst);
        }
    }

    fn blocks(&self) -> bool {
        false
    }
}

/// The etcd this benchmark starts when no `--etcd` is given: `EBBTIDE_ETCD`, else
/// `etcd` on `PATH`, on free loopback ports in a temporary directory, with the backend
/// quota `quota`; killed and removed when dropped.
fn own_etcd(quota: usize) -> Result<EtcdServer, String> {
    let bin = find_etcd()?.ok_or(
        "no etcd binary on PATH (and EBBTIDE_ETCD unset): install etcd-server, \
         set EBBTIDE_ETCD=/path/to/etcd, or give --etcd URL of a running one",
    )?;
    EtcdServer::start(
        bin,
        EtcdOptions {
            quota_backend_bytes: Some(quota),
            dir_prefix: "ebbtide-bench-etcd".into(),
            ..EtcdOptions::default()
        },
    )
}

/// Writes the W desired units, `concurrency` transactions in flight (etcd commits
/// concurrent proposals with one disk sync, one at a time costs a sync each).
async fn seed(m: &EtcdMembership, work: usize, concurrency: usize) -> Result<usize, String> {
    let units: Vec<String> = (0..work).map(unit_name).collect();
    let per = work.div_ceil(concurrency.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in units.chunks(per.max(1)) {
        let (m, chunk) = (m.clone(), chunk.to_vec());
        tasks.spawn(async move { m.add_units(&chunk).await });
    }
    let mut added = 0;
    while let Some(r) = tasks.join_next().await {
        added += r
            .map_err(|e| format!("a seeding task failed: {e}"))?
            .map_err(|e| format!("seeding the units: {e}"))?;
    }
    Ok(added)
}

fn reads(n: &Node) -> UnitReads {
    match &n.service {
        Service::Etcd(e) => e.unit_reads(),
        _ => UnitReads::default(),
    }
}

fn index_of(id: &str) -> Option<usize> {
    id.strip_prefix('n')?.parse::<usize>().ok()?.checked_sub(1)
}

/// Waits until `h` is bootstrapped with `work` units placed and nothing in flight.
async fn settled(h: &CoordHandle, work: usize, deadline: Instant) -> Result<(), String> {
    loop {
        let s = h.stats().await.map_err(|_| "the coordinator stopped")?;
        let placed: usize = s.nodes.iter().map(|n| n.units).sum();
        if s.bootstrapped && placed == work && s.operations == 0 && s.unplaced == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "work did not settle in time: {placed}/{work} placed, {} operations, {} unplaced, bootstrapped {}",
                s.operations, s.unplaced, s.bootstrapped
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What one failover measured.
struct Outcome {
    kind: &'static str,
    elected: Duration,
    load: UnitReads,
    bootstrapped: Duration,
    settled: Duration,
    moved: usize,
    twice: u64,
    rss: u64,
}

/// The running coordinator's node index and term.
fn current(nodes: &[Option<Node>]) -> Option<(usize, u64)> {
    nodes.iter().enumerate().find_map(|(i, n)| {
        let n = n.as_ref()?;
        n.coordinator()?;
        Some((i, n.cluster.leader()?.0))
    })
}

async fn one_failover(
    kind: FailoverKind,
    nodes: &mut [Option<Node>],
    runs: &Runs,
    args: &BenchFailoverArgs,
) -> Result<Outcome, String> {
    let (old, old_term) = current(nodes).ok_or("no coordinator runs")?;
    let before = runs.snapshot();
    let twice0 = runs.twice.load(Ordering::SeqCst);
    let reads0: Vec<UnitReads> = nodes
        .iter()
        .map(|n| n.as_ref().map(reads).unwrap_or_default())
        .collect();
    let old_id = format!("n{}", old + 1);
    let t0 = Instant::now();
    let kind = match kind {
        FailoverKind::Resign => {
            let http = nodes[old].as_ref().expect("current").http_addr.to_string();
            let reply = ebbtide::client::request(&http, "POST", "/api/v1/owner/resign", None)
                .await
                .map_err(|e| format!("POST /api/v1/owner/resign to {old_id}: {e}"))?;
            if reply.status != 200 {
                return Err(format!(
                    "POST /api/v1/owner/resign to {old_id}: {} {}",
                    reply.status, reply.body
                ));
            }
            "resign"
        }
        FailoverKind::Crash | FailoverKind::Both => {
            let n = nodes[old].take().expect("current");
            runs.crash(old);
            // Its tasks end and the last handle on its etcd session goes: the lease is
            // no longer kept alive and expires a TTL later, as a dead process's would.
            n.shutdown();
            "crash"
        }
    };
    let deadline = t0 + args.timeout;
    let timeout = |what: &str| format!("{kind} of {old_id}: {what} within {:?}", args.timeout);

    // Elected: a survivor sees a newer leader.
    let (new, term, elected) = loop {
        let seen = nodes.iter().flatten().find_map(|n| {
            let (term, id) = n.cluster.leader()?;
            (term > old_term).then_some((id, term))
        });
        if let Some((id, term)) = seen {
            let i = index_of(&id)
                .filter(|i| nodes.get(*i).is_some_and(Option::is_some))
                .ok_or_else(|| format!("the new leader {id:?} is not a running node"))?;
            break (i, term, t0.elapsed());
        }
        if Instant::now() > deadline {
            return Err(timeout("no new leader"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let new_node = nodes[new].as_ref().expect("running");
    // Its coordinator starts once it has read every unit.
    let coord = loop {
        if let Some(h) = new_node.coordinator() {
            break h;
        }
        if Instant::now() > deadline {
            return Err(timeout("the new coordinator did not start"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let r = reads(new_node);
    let r0 = reads0[new];
    let load = UnitReads {
        loads: r.loads - r0.loads,
        pages: r.pages - r0.pages,
        units: r.units - r0.units,
        key_bytes: r.key_bytes - r0.key_bytes,
        time: r.time - r0.time,
    };
    let bootstrapped = loop {
        let s = coord
            .stats()
            .await
            .map_err(|_| "the new coordinator stopped")?;
        if s.bootstrapped {
            break t0.elapsed();
        }
        if Instant::now() > deadline {
            return Err(timeout("the new coordinator did not bootstrap"));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    settled(&coord, args.work, deadline).await?;
    let settled_at = t0.elapsed();
    let after = runs.snapshot();
    let dead = old as u16 + 1;
    let crashed = kind == "crash";
    let mut moved = 0;
    let mut replaced = 0;
    for (b, a) in before.iter().zip(&after) {
        if crashed && *b == dead {
            replaced += usize::from(*a != 0);
        } else if a != b {
            moved += 1;
        }
    }
    let nowhere = after.iter().filter(|o| **o == 0).count();
    if nowhere > 0 {
        return Err(format!(
            "{kind} of {old_id}: the new coordinator counts every unit placed, but {nowhere} run nowhere"
        ));
    }
    let outcome = Outcome {
        kind,
        elected,
        load,
        bootstrapped,
        settled: settled_at,
        moved,
        twice: runs.twice.load(Ordering::SeqCst) - twice0,
        rss: rss(),
    };
    let new_id = format!("n{}", new + 1);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let how = if crashed {
        format!(
            "{old_id} (term {old_term}) crashed: its lease expires {} later",
            fmt(args.lease_ttl)
        )
    } else {
        format!("{old_id} (term {old_term}) resigned through POST /api/v1/owner/resign")
    };
    println!(
        "{kind}: {how}; {new_id} seen elected (term {term}) at {:.1} ms",
        ms(elected)
    );
    println!(
        "        {new_id} loaded {} units from etcd in {:.1} ms: {} load(s), {} pages, {:.2} MiB of keys (before: {} loads, {} pages); {} coordinator start(s) in its metrics",
        load.units,
        ms(load.time),
        load.loads,
        load.pages,
        load.key_bytes as f64 / (1024.0 * 1024.0),
        r0.loads,
        r0.pages,
        new_node.metrics.coordinator_starts.get()
    );
    println!(
        "        every member answered its bootstrap at {:.1} ms; every unit placed, nothing in flight at {:.1} ms",
        ms(bootstrapped),
        ms(settled_at)
    );
    println!(
        "        {moved} units moved, {replaced} of the dead node's units placed elsewhere, {} started while another live node ran them; RSS {:.1} MiB",
        outcome.twice,
        outcome.rss as f64 / (1024.0 * 1024.0)
    );
    Ok(outcome)
}

async fn run(args: &BenchFailoverArgs, dir: &Path, endpoints: Vec<String>) -> Result<(), String> {
    let cluster = format!("bench-failover-{}-{}", std::process::id(), now_ms());
    let seeder = EtcdMembership::connect(EtcdConfig {
        endpoints: endpoints.clone(),
        cluster: cluster.clone(),
        lease_ttl: args.lease_ttl,
        connect_timeout: Duration::from_secs(10),
        tls: None,
    })
    .await
    .map_err(|e| format!("--etcd {}: {e}", endpoints.join(",")))?;
    let t = Instant::now();
    let added = seed(&seeder, args.work, args.seed_concurrency).await?;
    let seed_time = t.elapsed();
    drop(seeder);
    println!(
        "ebbtide bench failover: {} nodes (etcd membership, plain gRPC), {} work units, lease TTL {}, heartbeat {}, liveness TTL {}, resend {}",
        args.nodes,
        args.work,
        fmt(args.lease_ttl),
        fmt(args.heartbeat_interval),
        fmt(args.liveness_ttl),
        fmt(args.resend_interval)
    );
    println!(
        "seed:    {added} units written to etcd ({}, cluster {cluster}) in {:.1} s, {} transactions in flight: {:.0} units/s",
        endpoints.join(","),
        seed_time.as_secs_f64(),
        args.seed_concurrency,
        added as f64 / seed_time.as_secs_f64().max(1e-9)
    );

    let runs = Arc::new(Runs::new(args.work, args.nodes));
    let rss0 = rss();
    let deadline = Instant::now() + args.timeout;
    let mut nodes: Vec<Option<Node>> = Vec::new();
    let t = Instant::now();
    for i in 0..args.nodes {
        let id = format!("n{}", i + 1);
        let (grpc, grpc_addr) = listener()?;
        let (http, http_addr) = listener()?;
        let mut cfg = NodeConfig::new(id.clone(), grpc_addr, http_addr, dir.join(&id), "");
        cfg.etcd = endpoints.clone();
        cfg.cluster = cluster.clone();
        cfg.lease_ttl = args.lease_ttl;
        cfg.heartbeat = args.heartbeat_interval;
        cfg.liveness_ttl = args.liveness_ttl;
        cfg.resend = args.resend_interval;
        let workload = Arc::new(Tracked {
            runs: runs.clone(),
            node: i,
        });
        let n = node::start_on(cfg, workload, Some(Listeners { grpc, http })).await?;
        nodes.push(Some(n));
        if i == 0 {
            // n1 campaigns first, so it wins; its coordinator starts once it has read
            // every unit.
            while nodes[0].as_ref().and_then(Node::coordinator).is_none() {
                if Instant::now() > deadline {
                    return Err(format!(
                        "n1 did not become coordinator within {:?}",
                        args.timeout
                    ));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    let first = nodes[0].as_ref().expect("n1");
    let first_load = reads(first);
    let coord = first.coordinator().ok_or("n1 runs no coordinator")?;
    settled(&coord, args.work, deadline).await?;
    let placed = t.elapsed();
    let unowned = runs
        .owner
        .iter()
        .filter(|o| o.load(Ordering::SeqCst) == 0)
        .count();
    if unowned > 0 {
        return Err(format!(
            "the coordinator counts every unit placed, but {unowned} run nowhere"
        ));
    }
    let rss1 = rss();
    println!(
        "start:   n1 elected and loaded {} units in {:.1} ms ({} pages, {:.2} MiB of keys); all {} units running on {} nodes {:.1} s after the first node started; RSS grew {:.1} MiB = {} B/unit",
        first_load.units,
        first_load.time.as_secs_f64() * 1e3,
        first_load.pages,
        first_load.key_bytes as f64 / (1024.0 * 1024.0),
        args.work,
        args.nodes,
        placed.as_secs_f64(),
        rss1.saturating_sub(rss0) as f64 / (1024.0 * 1024.0),
        rss1.saturating_sub(rss0) / args.work as u64
    );
    let kinds = match args.failover {
        FailoverKind::Both => vec![FailoverKind::Resign, FailoverKind::Crash],
        k => vec![k],
    };
    let mut rows = Vec::new();
    for kind in kinds {
        let o = one_failover(kind, &mut nodes, &runs, args).await?;
        rows.push(format!(
            "| {} | {} | {} | {:.0} | {:.0} | {} | {:.1} | {:.0} | {:.0} | {} | {} | {} | {} |",
            args.nodes,
            args.work,
            o.kind,
            o.elected.as_secs_f64() * 1e3,
            o.load.time.as_secs_f64() * 1e3,
            o.load.pages,
            o.load.key_bytes as f64 / (1024.0 * 1024.0),
            o.bootstrapped.as_secs_f64() * 1e3,
            o.settled.as_secs_f64() * 1e3,
            o.moved,
            o.twice,
            o.rss / args.work as u64,
            peak_rss() / args.work as u64,
        ));
    }
    let foreign = runs.foreign.load(Ordering::SeqCst);
    println!(
        "end:     {} OS threads; {foreign} starts of units the benchmark did not make",
        threads()
    );
    println!("{TABLE_HEADER}");
    for r in rows {
        println!("{r}");
    }
    for n in nodes.into_iter().flatten() {
        n.shutdown();
    }
    Ok(())
}

/// Runs the failover benchmark.
pub fn failover(args: BenchFailoverArgs) -> ExitCode {
    crate::node_cmd::init_logging(&args.log);
    if !(2..=256).contains(&args.nodes) {
        return crate::cli::bad_usage(&format!("--nodes {}: must be 2-256", args.nodes));
    }
    if args.work == 0 || args.work > 10_000_000 {
        return crate::cli::bad_usage(&format!("--work {}: must be 1-10000000", args.work));
    }
    if args.failover == FailoverKind::Both && args.nodes < 3 {
        return crate::cli::bad_usage(
            "--nodes 2 with --failover both: the crash would leave one node; use 3 or more",
        );
    }
    if args.seed_concurrency == 0 {
        return crate::cli::bad_usage("--seed-concurrency must be at least 1");
    }
    if args.liveness_ttl >= args.lease_ttl {
        return crate::cli::bad_usage(&format!(
            "--liveness-ttl {} must be shorter than --lease-ttl {}",
            fmt(args.liveness_ttl),
            fmt(args.lease_ttl)
        ));
    }
    let own = if args.etcd.is_empty() {
        match own_etcd(args.etcd_quota) {
            Ok(e) => Some(e),
            Err(e) => {
                eprintln!("error: cannot start etcd: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        None
    };
    let endpoints = match &own {
        Some(e) => vec![e.endpoint()],
        None => args.etcd.clone(),
    };
    let dir = std::env::temp_dir().join(format!("ebbtide-bench-failover-{}", std::process::id()));
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
    let res = rt.block_on(run(&args, &dir, endpoints));
    rt.shutdown_timeout(Duration::from_secs(1));
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(e) = &own {
        println!(
            "etcd:    started by the benchmark (quota {} MiB); its data dir held {:.1} MiB at the end",
            args.etcd_quota >> 20,
            e.disk_bytes() as f64 / (1024.0 * 1024.0)
        );
    }
    drop(own);
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
