//! Deterministic simulation of the real node runtime (turmoil).
//!
//! Every host runs the real node, `ebbtide::node::start_in`: its tonic `Peer` and
//! `Operator` services and clients over turmoil's TCP, its axum HTTP API on a turmoil
//! listener, the real agent, coordinator and membership tasks on turmoil's simulated
//! clock, its data directory on turmoil's simulated disk (unsynced writes are lost on a
//! crash). Only the seams of `ebbtide::node::env` are swapped (`sim/net.rs`), the
//! workload hooks record what runs where (`sim/judge.rs`), and membership is the
//! static one (`--peer`, `--coordinator n1`), as the shipped `fixed.rs` has it, or, in
//! the elected mode (`elected_seeds_keep_safety_and_drains_complete`, labels that start
//! with `elected`), a simulated etcd (`sim/membership.rs`) behind the node's
//! `ElectedMembership` seam (`Env::membership`): leases kept alive by each host,
//! nodes cut off from etcd (a lost lease: the node fences itself and exits 3, and is
//! restarted), nodes told to leave (SIGTERM: each leaves gracefully as `ebbtide node`
//! does, `Node::graceful_leave`, the coordinator resigning first, then exits and is
//! restarted), the coordinator elected and failing over, S7 judged on the election's
//! leader (a membership task that keeps a drained node's candidacy fails it,
//! `bite_keep_candidacy_is_caught_by_s7`).
//!
//! A run is one `u64` seed: turmoil's own randomness (message latencies), the fault
//! layer's (loss, duplication, delay of protocol messages, between the transport and
//! the wire), the driver's (crashes and restarts of nodes, the coordinator's included;
//! links held and released), the disk's (the leader record's fsync fails now and
//! then: the node exits `PersistFailed`, and the driver crashes it a few ms later and
//! restarts it, as a supervisor would) and the clients' (work added, drains requested
//! through the v1 and v2 routes, polls at any time). Safety (S3, S4, S5) is judged on the real
//! state at every hook and every answer of 0; L1 at the end, once faults stopped.
//! Then the run's step traces go through `ebbtide trace check` (`trace_check`): each
//! incarnation replays on a fresh core with exactly its logged outputs, and S5 and S3
//! hold on the merged trace, and no incarnation starts below a term floor an earlier
//! one reported, so a shell that hides state, skips a step or persists late fails too;
//! and the run, walked step by step through the stateright model, is a behaviour of it
//! (`trace_check::refine`), so a shell whose environment the model does not have fails
//! too (`bite_coordinator_before_term_is_caught_by_the_refinement`).
//!
//! `EBBTIDE_SEED=123 cargo test --test sim -- --nocapture` replays one seed; each
//! run's step traces (one JSON-lines file per node) are under `target/sim-traces/`.
//!
//! What makes a seed replay byte for byte (`a_seed_replays_byte_for_byte`):
//!
//! - every `select!` a node runs under simulation is `biased` (the agent's, the
//!   coordinator's and the membership task's), so branch order is not tokio's random;
//! - the step trace's `ts_us` is simulated time (`Tracer::with_clock`), not the
//!   system clock; each host's tracer is written by one single-threaded runtime, so
//!   `seq` (taken before the file lock) is in file order;
//! - the runtime iterates `BTreeMap`s where order reaches behaviour (it already did:
//!   the transport's peers, the coordinator's timers, the cluster directory);
//! - the workload hooks are the recording ones here, which never sleep a real thread
//!   (the default workload's stop delay would);
//! - every random choice (faults, crashes, holds, clients) comes from the seed;
//! - each run is a process of its own (see [`run`]: tokio's task ids are per process,
//!   and a crash drops a host's tasks in their order);
//! - the tracer's process names come from the simulated clock, not the pid.
//!
//! Safety is judged at the instant it can change: S4 and S5 in the workload hooks
//! (every start), S3 at every answer of 0 a client receives (see `judge.rs` for what
//! "in flight" means here); crashes and restarts are applied between `sim.step()`s.

#[path = "sim/client.rs"]
mod client;
#[path = "sim/judge.rs"]
mod judge;
#[path = "sim/membership.rs"]
mod membership;
#[path = "sim/net.rs"]
mod net;

use ebbtide::node::env::Env;
use ebbtide::node::shell_bug::ShellBugs;
use ebbtide::node::NodeConfig;
use judge::{Faults, Judge, Probe, Recorder, Rng};
use net::{sim_micros, SimDisk, SimNet};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NODES: [&str; 4] = ["n1", "n2", "n3", "n4"];
const COORDINATOR: &str = "n1";
const GRPC: u16 = 7000;
const HTTP: u16 = 8080;
/// How long faults happen; then everything is repaired and the clients check L1.
const FAULTS_FOR: Duration = Duration::from_secs(20);
/// The seeds a default run takes.
const SEEDS: u64 = 64;
/// The elected mode's seeds (`elected_seeds_keep_safety_and_drains_complete`).
const ELECTED_SEEDS: u64 = 24;
/// The simulated etcd's lease TTL (elected mode).
const LEASE_TTL: Duration = Duration::from_secs(2);
/// S7 (elected mode): how long the election's leader may be an incarnation whose agent
/// is not Alive. The core stops campaigning at once, and the node resigns; a resign
/// waits for the service for at most its bound (the TTL), and a lease not kept alive
/// expires after the TTL; watch events may be late by up to 200 ms.
const S7_GRACE: Duration = Duration::from_millis(3000);

/// How long a graceful leave may take before the process exits anyway (elected mode).
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// What went wrong in one run, and where its traces are.
struct Outcome {
    violations: Vec<String>,
    traces: PathBuf,
    summary: String,
}

fn traces_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/sim-traces")
}

/// A node's flags; `elected`: the members and the coordinator come from the simulated
/// etcd (`Env::membership`), so no `--peer`, and `--coordinator` is the node itself
/// (ignored under an elected membership; it only keeps the static flags valid).
fn config(node: &str, ips: &BTreeMap<String, IpAddr>, trace: PathBuf, elected: bool) -> NodeConfig {
    let ip = ips[node];
    let mut cfg = NodeConfig::new(
        node,
        SocketAddr::new(ip, GRPC),
        SocketAddr::new(ip, HTTP),
        "/data",
        if elected { node } else { COORDINATOR },
    );
    for (id, ip) in ips {
        if id != node && !elected {
            cfg.peers.insert(id.clone(), format!("{ip}:{GRPC}"));
            cfg.peer_http.insert(id.clone(), format!("{ip}:{HTTP}"));
        }
    }
    cfg.lease_ttl = LEASE_TTL;
    cfg.heartbeat = Duration::from_millis(200);
    cfg.liveness_ttl = Duration::from_millis(1000);
    cfg.resend = Duration::from_millis(300);
    cfg.trace = Some(trace);
    // Shorter than production's 60 s, so that within a run a graceful leave that
    // cannot finish (its coordinator cut off, a drain that waits) also times out.
    cfg.shutdown_timeout = SHUTDOWN_TIMEOUT;
    cfg
}

/// Runs seed `seed` with the shell bugs `bugs` in a process of its own (this test
/// binary again, running only [`sim_child`]); traces go to
/// `target/sim-traces/<label>-seed-<seed>/`.
///
/// Why a process of its own: a crash drops the host's tokio runtime, which drops its
/// tasks in an order that depends on their task ids, and tokio numbers tasks with one
/// counter per process; each dropped turmoil socket sends a FIN or RST whose latency
/// is drawn from the simulation's RNG, so the drop order shifts every draw after it.
/// Two runs of one seed in one process (or beside other simulations on other test
/// threads) start from different counters and diverge after the first crash; in a
/// fresh process the counter starts where it always does.
fn run(seed: u64, bugs: ShellBugs, label: &str) -> Outcome {
    let traces = traces_root().join(format!("{label}-seed-{seed}"));
    let _ = std::fs::remove_dir_all(&traces);
    // The bugs travel as the binary takes them (`EBBTIDE_SHELL_BUG`, by name), and
    // the child sets them on each node's `Env`: one type, one spelling.
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "sim_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("EBBTIDE_SIM_CHILD", format!("{seed} {label}"))
        .env(ShellBugs::VAR, bugs.names())
        .output()
        .expect("run the simulation's process");
    let outcome = std::fs::read_to_string(traces.join("outcome.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    let Some(o) = outcome else {
        return Outcome {
            violations: vec![format!(
                "the simulation's process failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )],
            traces,
            summary: format!("seed {seed}: no outcome"),
        };
    };
    let violations = o["violations"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Outcome {
        violations,
        traces,
        summary: o["summary"].as_str().unwrap_or_default().to_owned(),
    }
}

/// One simulation, in the process [`run`] started for it (a helper, not a test of
/// its own: without `EBBTIDE_SIM_CHILD` it does nothing, hence `ignore`).
#[test]
#[ignore = "a helper that run() starts in a process of its own"]
fn sim_child() {
    let Ok(spec) = std::env::var("EBBTIDE_SIM_CHILD") else {
        return;
    };
    let (seed, label) = spec.split_once(' ').expect("seed and label");
    let seed: u64 = seed.parse().expect("seed");
    let bugs = ShellBugs::from_env().expect("the shell bugs run() names");
    let o = run_here(seed, bugs, label);
    let json = serde_json::json!({ "violations": o.violations, "summary": o.summary });
    std::fs::write(o.traces.join("outcome.json"), json.to_string()).expect("outcome");
}

/// One simulation in this process; a label that starts with `elected` runs the
/// elected mode (the simulated etcd, `sim/membership.rs`), any other the static one.
fn run_here(seed: u64, bugs: ShellBugs, label: &str) -> Outcome {
    let elected = label.starts_with("elected");
    let traces = traces_root().join(format!("{label}-seed-{seed}"));
    let _ = std::fs::remove_dir_all(&traces);
    std::fs::create_dir_all(&traces).expect("trace dir");
    let judge: Judge = Arc::default();
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(240))
        .tick_duration(Duration::from_millis(1))
        .rng_seed(seed)
        .build();
    let ips: BTreeMap<String, IpAddr> = NODES
        .iter()
        .map(|n| (n.to_string(), sim.lookup(*n)))
        .collect();
    let faults = Arc::new(Faults::new(seed, judge.clone()));
    let no_margin = label.starts_with("elected-no-margin");
    let etcd = elected.then(|| membership::World::new(seed, LEASE_TTL, no_margin));
    // Each host's SIGTERM bell (elected mode), rung by the driver.
    let bells: BTreeMap<&str, Arc<tokio::sync::Notify>> =
        NODES.iter().map(|n| (*n, Arc::default())).collect();
    for node in NODES {
        let cfg = config(node, &ips, traces.join(format!("{node}.jsonl")), elected);
        let (judge, faults, etcd) = (judge.clone(), faults.clone(), etcd.clone());
        let bell = bells[node].clone();
        sim.host(node, move || {
            let env = Env {
                net: Some(Arc::new(SimNet)),
                disk: Arc::new(SimDisk(faults.clone())),
                clock: Some(sim_micros),
                faults: Some(faults.clone()),
                keep_alive: Some(Duration::from_secs(1)),
                probe: Some(Arc::new(Probe(judge.clone()))),
                // A new incarnation's handle on the shared etcd.
                membership: etcd.clone().map(|w| {
                    Arc::new(membership::SimMembership::new(w, node))
                        as Arc<dyn ebbtide::membership::ElectedMembership>
                }),
                bugs,
            };
            let workload = Arc::new(Recorder {
                node: node.to_owned(),
                judge: judge.clone(),
            });
            let (cfg, judge, bell) = (cfg.clone(), judge.clone(), bell.clone());
            async move {
                let id = cfg.id.clone();
                let shutdown_timeout = cfg.shutdown_timeout;
                let mut node = match ebbtide::node::start_in(cfg, workload, env).await {
                    Ok(node) => node,
                    // Elected mode: a node cut off from etcd cannot join, and exits;
                    // the driver restarts it, as a supervisor would.
                    Err(e) if elected && e.contains("unreachable") => {
                        judge.lock().unwrap().exited.push(id);
                        std::future::pending::<()>().await;
                        return Ok(());
                    }
                    Err(e) => return Err(e.into()),
                };
                // As `ebbtide node` runs: until the process asks to exit (a durable
                // write failed, or the lease was lost) or gets SIGTERM (elected mode:
                // the driver sends it), which makes it leave gracefully as the binary
                // does (`Node::graceful_leave`). Either way it then exits: the driver
                // crashes the host, and restarts it later, as a supervisor (or an
                // upgrade) would.
                // Woken by the driver, not polled: a run without a SIGTERM schedules
                // exactly what it did without this. A wake-up whose signal is not in
                // `sigterm` was meant for an earlier incarnation (it crashed first).
                let sigterm = {
                    let (judge, id, bell) = (judge.clone(), id.clone(), bell.clone());
                    async move {
                        loop {
                            bell.notified().await;
                            if judge.lock().unwrap().sigterm.remove(&id) {
                                return;
                            }
                        }
                    }
                };
                tokio::select! {
                    biased;
                    reason = node.exited() => {
                        if reason == ebbtide::node::ExitReason::LeaseLost {
                            judge.lock().unwrap().lease_lost_exits += 1;
                        }
                    }
                    () = sigterm => {
                        let left = node.graceful_leave(shutdown_timeout).await;
                        let mut s = judge.lock().unwrap();
                        match left {
                            Ok(()) => s.left += 1,
                            Err(ebbtide::node::LeaveError::Exit(reason)) => {
                                s.leave_interrupted += 1;
                                if reason == ebbtide::node::ExitReason::LeaseLost {
                                    s.lease_lost_exits += 1;
                                }
                            }
                            Err(_) => s.leave_failed += 1,
                        }
                    }
                }
                judge.lock().unwrap().exited.push(id);
                std::future::pending::<()>().await;
                Ok(())
            }
        });
    }
    let report = Arc::new(Mutex::new(client::Report::default()));
    sim.client(
        "client",
        client::run(seed, ips, judge.clone(), report.clone(), FAULTS_FOR),
    );

    let mut rng = Rng::new(seed ^ 0xd41e_c7ed);
    // The SIGTERMs' own generator, so that the other faults' draws stay what they were.
    let mut leave_rng = Rng::new(seed ^ 0x1ea7_e5ed);
    let mut sigterms = 0;
    let mut leaving: Option<&str> = None;
    let mut down: BTreeMap<&str, Duration> = BTreeMap::new();
    let mut exiting: BTreeMap<&str, Duration> = BTreeMap::new();
    let mut held: Vec<(&str, &str, Duration)> = Vec::new();
    let mut next_fault = Duration::from_secs(2);
    let mut faulting = true;
    let (mut crashes, mut holds, mut exits, mut cuts) = (0, 0, 0, 0);
    loop {
        let step = sim.step();
        let now = sim.elapsed();
        let mut s = judge.lock().unwrap();
        s.now = now;
        match step {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                s.violations
                    .push(format!("at {now:?}: the simulation failed: {e}"));
                break;
            }
        }
        if !s.violations.is_empty() {
            break;
        }
        let repair_all = faulting && now >= FAULTS_FOR;
        if repair_all {
            faulting = false;
            faults.on.store(false, Ordering::Relaxed);
        }
        if let Some(etcd) = &etcd {
            let mut w = etcd.lock().unwrap();
            if repair_all {
                w.repair();
            }
            w.tick(now);
            // S7 on the real state: the election's leader is an incarnation whose agent
            // is Alive (within the grace the resign takes).
            if let Some((node, epoch)) = w.leader() {
                if let Some(&(e, since)) = s.not_alive_since.get(&node) {
                    if e == epoch && !s.down.contains(&node) && now - since > S7_GRACE {
                        let msg = format!(
                            "S7: {node} (epoch {epoch}) leads the election, its agent not Alive since {since:?}"
                        );
                        s.violation(msg);
                    }
                }
            }
            // A node is asked to leave (SIGTERM, as an operator taking it out for an
            // upgrade does), one at a time: it leaves gracefully, exits and is
            // restarted as a new incarnation. Any node: the leader resigns first.
            if leaving.is_some_and(|n| down.contains_key(n)) {
                // It exited (or crashed meanwhile, and the signal died with it).
                leaving = None;
            }
            if faulting && now >= next_fault && leaving.is_none() && leave_rng.chance(0.03) {
                let node = *leave_rng.pick(&NODES);
                if !down.contains_key(node) && !exiting.contains_key(node) {
                    s.sigterm.insert(node.to_owned());
                    bells[node].notify_one();
                    leaving = Some(node);
                    sigterms += 1;
                }
            }
            // A node cut off from etcd for a while (half the time the leader): longer
            // than the TTL, it loses its lease, fences itself and exits; the leader's
            // loss is a failover.
            if faulting && now >= next_fault && rng.chance(0.04) {
                let node = match w.leader() {
                    Some((leader, _)) if rng.chance(0.5) => leader,
                    _ => rng.pick(&NODES).to_string(),
                };
                w.cut(&node, now + Duration::from_millis(rng.range(300, 4000)));
                cuts += 1;
            }
        }
        // A process that asked to exit is gone a little later (its runtime shuts
        // down; what other tasks had queued may still leave meanwhile), then its
        // supervisor restarts it.
        for node in std::mem::take(&mut s.exited) {
            let node = *NODES.iter().find(|n| **n == node).expect("a node");
            exiting.insert(node, now + Duration::from_millis(rng.range(1, 50)));
        }
        for (node, at) in std::mem::take(&mut exiting) {
            if at > now && !repair_all {
                exiting.insert(node, at);
            } else if !down.contains_key(node) {
                sim.crash(node);
                s.crashed(node);
                exits += 1;
                let back = Duration::from_millis(rng.range(200, 3000));
                down.insert(node, now + back);
            }
        }
        for (node, at) in std::mem::take(&mut down) {
            if at <= now || repair_all {
                sim.bounce(node);
            } else {
                down.insert(node, at);
            }
        }
        held.retain(|&(a, b, at)| {
            let due = at <= now || repair_all;
            if due {
                sim.release(a, b);
            }
            !due
        });
        if faulting && now >= next_fault {
            next_fault = now + Duration::from_millis(250);
            if down.len() < 2 && rng.chance(0.03) {
                let node = *rng.pick(&NODES);
                if !down.contains_key(node) {
                    sim.crash(node);
                    s.crashed(node);
                    crashes += 1;
                    let back = Duration::from_millis(rng.range(200, 3000));
                    down.insert(node, now + back);
                }
            }
            if rng.chance(0.05) {
                let a = *rng.pick(&NODES);
                let b = *rng.pick(&NODES);
                if a != b {
                    sim.hold(a, b);
                    holds += 1;
                    held.push((a, b, now + Duration::from_millis(rng.range(100, 2000))));
                }
            }
        }
    }
    let mut s = judge.lock().unwrap();
    let r = report.lock().unwrap();
    // The same run, checked a second way: every node's step trace replays on fresh
    // cores, and S5 and S3 hold on the merged trace (`ebbtide trace check`).
    let files: Vec<PathBuf> = NODES
        .iter()
        .map(|n| traces.join(format!("{n}.jsonl")))
        .collect();
    let traced = match ebbtide::trace_check::check_files(&files) {
        // And the run is a behaviour of the model, walked step by step through it.
        Ok(summary) => match summary.refinement() {
            Ok(r) => format!(
                "trace check: {} steps replayed; {} model steps, {} process ends inserted",
                summary.steps,
                r.path.len(),
                r.hidden_crashes
            ),
            Err(e) => {
                s.violations.push(format!("trace check: {e}"));
                "trace check failed".to_owned()
            }
        },
        Err(e) => {
            s.violations.push(format!("trace check: {e}"));
            "trace check failed".to_owned()
        }
    };
    let summary = format!(
        "seed {seed}: {:?} simulated, {}, {crashes} crashes, {exits} exits, {holds} holds, drains of {:?}, {} units, {} zeros ({} with an AddWork to the node in the fault layer), {} answered, {} unanswered",
        sim.elapsed(),
        faults.rates(),
        r.drains,
        r.desired.len(),
        r.zeros,
        s.zeros_with_add_in_flight,
        r.answered,
        r.unanswered
    ) + &etcd.map_or(String::new(), |e| {
        let w = e.lock().unwrap();
        format!(
            "; elected: {cuts} cuts from etcd, {} lease expiries, {} exits on a lost lease, {sigterms} SIGTERMs ({} left gracefully, {} cut short by an exit, {} timed out), leaders {:?}",
            w.expiries, s.lease_lost_exits, s.left, s.leave_interrupted, s.leave_failed, w.leaders
        )
    }) + "; " + &traced;
    Outcome {
        violations: s.violations.clone(),
        traces,
        summary,
    }
}

/// The seeds to run: `EBBTIDE_SEED`, or `0..EBBTIDE_SEEDS`, or `0..count`.
fn seeds(count: u64) -> Vec<u64> {
    if let Ok(s) = std::env::var("EBBTIDE_SEED") {
        return vec![s.trim().parse().expect("EBBTIDE_SEED: a u64")];
    }
    let count = std::env::var("EBBTIDE_SEEDS")
        .map(|s| s.trim().parse().expect("EBBTIDE_SEEDS: a u64"))
        .unwrap_or(count);
    (0..count).collect()
}

fn explain(o: &Outcome, seed: u64) -> String {
    format!(
        "{}\n{}\nreplay: EBBTIDE_SEED={seed} cargo test --test sim -- --nocapture\ntraces: {}",
        o.summary,
        o.violations.join("\n"),
        o.traces.display()
    )
}

/// Safety on every step and L1 at the end, for every seed.
#[test]
fn seeds_keep_safety_and_drains_complete() {
    for seed in seeds(SEEDS) {
        let o = run(seed, ShellBugs::default(), "ok");
        eprintln!("{}", o.summary);
        assert!(o.violations.is_empty(), "{}", explain(&o, seed));
    }
}

/// The elected mode: membership and the coordinator come from a simulated etcd
/// (`sim/membership.rs`): leases kept alive by each host (a crashed node's lease
/// expires), nodes cut off from etcd (longer than the TTL: the lease is lost, the node
/// fences itself and exits 3, and is restarted as a new incarnation), the leader among
/// them (failover to another node), watch events late, nodes told to leave (SIGTERM: a
/// graceful leave as `ebbtide node` makes it, then a restart). Safety (S3, S4, S5, and S7 on
/// the election's leader) on every step, L1 at the end, then the trace check.
#[test]
fn elected_seeds_keep_safety_and_drains_complete() {
    for seed in seeds(ELECTED_SEEDS) {
        let o = run(seed, ShellBugs::default(), "elected");
        eprintln!("elected: {}", o.summary);
        assert!(o.violations.is_empty(), "{}", explain(&o, seed));
    }
}

/// The margin of `membership::fence_deadline` matters: with keep-alives that arrive at
/// once and a process that fences at `sent + ttl` exactly (the instant the service
/// expires its lease), the coordinator may restart a member's units before that member
/// fenced, and a unit runs on two nodes (S5). Caught within 20 seeds (seed 13 first).
#[test]
fn bite_no_lease_margin_is_caught() {
    caught(ShellBugs::default(), "elected-no-margin", 20);
}

/// S7 bites in the elected mode: with `keep_candidacy` the membership task never
/// withdraws from the election when its agent may no longer campaign (it leaves that to
/// the coordinator's own resign, which a node that is only a candidate does not run).
/// A drained node keeps its place in the election's queue, and a failover (the leader
/// cut off from etcd, or crashed) elects it long after it stopped being Alive. The
/// task's own check when it wins (it resigns at once a win it may no longer take) does
/// not save it: the judge sees the election's leader, and for that moment it is a node
/// that is not Alive. Seed 1 is the first S7 sees (n4, not Alive since 0.5 s, elected
/// at 6.0 s; 12 of the first 24 seeds); the trace check's walk through the model sees
/// it already at seed 0 (a Stopping n3 wins term 6 and learns it: the model's election
/// never makes a node that may not campaign coordinator, and declines no win it acted
/// on).
#[test]
fn bite_keep_candidacy_is_caught_by_s7_or_the_refinement() {
    let bugs = ShellBugs {
        keep_candidacy: true,
        ..ShellBugs::default()
    };
    let judges = ["S7:", "trace check: check refinement"];
    caught_by_one_of(bugs, "elected-bite-keep-candidacy", 3, &judges);
}

/// The other half of the resign: with `coordinator_ignores_resign` the coordinator
/// task keeps serving after its core resigned. S7 does not see it: when its own node
/// goes Draining the membership task withdraws from the election, which stops the
/// coordinator anyway; but an owner resign (the clients ask for one when a drain's
/// target coordinates) or a graceful leave's leaves a coordinator that the election
/// still makes leader and the core said serves no more. The trace check sees the next
/// input fed after `Resign` (the call contract's item 5), and L1 sometimes (the drain
/// of that node is refused for good). Seed 0 catches it (both judges); 10 of the first
/// 24 seeds do, all by the trace check, none by S7.
#[test]
fn bite_coordinator_ignores_resign_is_caught_by_the_trace_check() {
    let bugs = ShellBugs {
        coordinator_ignores_resign: true,
        ..ShellBugs::default()
    };
    caught_by(bugs, "elected-bite-ignores-resign", 3, "trace check:");
}

/// Same seed, same run: the step traces of two runs are the same bytes (four seeds
/// with crashes, restarts, held links and message faults; or `EBBTIDE_SEED`).
///
/// One elected seed too (seed 14: seven leaders, fourteen lease expiries, two SIGTERMs,
/// one of whose leaves the process's own exit cut short), unless `EBBTIDE_SEED` names
/// the one to replay.
#[test]
fn a_seed_replays_byte_for_byte() {
    let elected = std::env::var("EBBTIDE_SEED").is_err().then_some(14);
    let runs = seeds(4)
        .into_iter()
        .map(|s| (s, "replay"))
        .chain(elected.map(|s| (s, "elected-replay")));
    for (seed, label) in runs {
        let a = run(seed, ShellBugs::default(), &format!("{label}-a"));
        let b = run(seed, ShellBugs::default(), &format!("{label}-b"));
        for node in NODES {
            let file = format!("{node}.jsonl");
            let ta = std::fs::read(a.traces.join(&file)).unwrap_or_default();
            let tb = std::fs::read(b.traces.join(&file)).unwrap_or_default();
            assert!(!ta.is_empty(), "seed {seed}: {file}: no trace");
            assert!(
                ta == tb,
                "seed {seed}: {} and {} differ",
                a.traces.join(&file).display(),
                b.traces.join(&file).display()
            );
        }
    }
}

/// A shell bug is caught within `within` seeds.
fn caught(bugs: ShellBugs, label: &str, within: u64) {
    caught_by(bugs, label, within, "");
}

/// A shell bug is caught within `within` seeds by a violation that starts with `judge`,
/// or does after its time (`"S7:"`, `"trace check:"`; `""`: any violation). A seed that
/// fails only in another way fails the test: the bug was meant to show in `judge`.
fn caught_by(bugs: ShellBugs, label: &str, within: u64, judge: &str) {
    caught_by_one_of(bugs, label, within, &[judge]);
}

/// [`caught_by`], by any of `judges`.
fn caught_by_one_of(bugs: ShellBugs, label: &str, within: u64, judges: &[&str]) {
    for seed in 0..within {
        let o = run(seed, bugs, label);
        eprintln!("{label}: {}", o.summary);
        if o.violations.is_empty() {
            continue;
        }
        let by_judge = o.violations.iter().any(|v| {
            judges.iter().any(|judge| {
                v.starts_with(judge)
                    || v.split_once(": ")
                        .is_some_and(|(_, what)| what.starts_with(judge))
            })
        });
        assert!(
            by_judge,
            "{label}: seed {seed} failed, but not by {judges:?}:\n{}",
            explain(&o, seed)
        );
        eprintln!("{label}: caught by seed {seed}:\n{}", explain(&o, seed));
        return;
    }
    panic!("{label}: not caught within {within} seeds");
}

/// The refinement bites: with `coordinator_before_term` the membership task starts a
/// won term's coordinator before its agent has made the term durable (the runtime's
/// order until the walk through the model found it). Replay and the safety checks
/// pass every such run; when the agent's persist then fails (`exit 4`), the run is
/// one the model has no step for: its election is one step, the winner's term
/// durable in it. Seed 4 is the first to catch it.
#[test]
fn bite_coordinator_before_term_is_caught_by_the_refinement() {
    let bugs = ShellBugs {
        coordinator_before_term: true,
        ..ShellBugs::default()
    };
    caught_by(
        bugs,
        "bite-coordinator-before-term",
        12,
        "trace check: check refinement",
    );
}

/// The new coordinator's first view must be read after its win: with
/// `coordinator_from_watch_view` the membership task starts it from what its watch has
/// shown so far, as the runtime did until the model, widened to the runtime's lagging
/// watches, found that unsafe (a lagging view may lack a member that runs units). The
/// refinement catches it: the model lets a new coordinator's view lack only changes
/// made while no coordinator ran.
#[test]
fn bite_coordinator_from_watch_view_is_caught_by_the_refinement() {
    let bugs = ShellBugs {
        coordinator_from_watch_view: true,
        ..ShellBugs::default()
    };
    caught_by_one_of(
        bugs,
        "elected-bite-coordinator-from-watch-view",
        40,
        &["trace check: check refinement", "S5:"],
    );
}

#[test]
fn bite_drop_liveness_epoch_is_caught() {
    let bugs = ShellBugs {
        drop_liveness_epoch: true,
        ..ShellBugs::default()
    };
    caught(bugs, "bite-drop-liveness-epoch", 3);
}

#[test]
fn bite_ack_before_stop_is_caught() {
    let bugs = ShellBugs {
        ack_before_stop: true,
        ..ShellBugs::default()
    };
    caught(bugs, "bite-ack-before-stop", 3);
}

#[test]
fn bite_skip_fsync_is_caught() {
    let bugs = ShellBugs {
        skip_fsync: true,
        ..ShellBugs::default()
    };
    caught(bugs, "bite-skip-fsync", 8);
}

/// The agent task applies a step's sends before its `PersistLeader`
/// (`send_before_persist`). It shows when the persist then fails (the simulated disk
/// fails the leader record's fsync now and then; the node exits `PersistFailed` and
/// is crashed a few ms later, while its queued answer still leaves): the coordinator
/// heard the node follow the new term, the next incarnation starts from the older
/// floor and ignores that coordinator's commands, which it never re-bootstraps. Two
/// judges see it: the trace check's "term floor kept" (an incarnation starts below a
/// term its predecessor reported), and L1 (the node's drain never completes). Seed 1
/// is caught by both (9 of the first 64 seeds are).
#[test]
fn bite_send_before_persist_is_caught() {
    let bugs = ShellBugs {
        send_before_persist: true,
        ..ShellBugs::default()
    };
    caught(bugs, "bite-send-before-persist", 3);
}

/// A shell bug that the judge on the real state may miss but the trace check cannot:
/// the agent task traces the first bootstrap of each term and never hands it to the
/// core (`agent_drops_bootstrap`). Replaying the trace gives the bootstrap's answer
/// that the shell never sent.
#[test]
fn bite_agent_drops_bootstrap_is_caught_by_the_trace_check() {
    let bugs = ShellBugs {
        agent_drops_bootstrap: true,
        ..ShellBugs::default()
    };
    for seed in 0..2 {
        let o = run(seed, bugs, "bite-drops-bootstrap");
        eprintln!("bite-drops-bootstrap: {}", o.summary);
        if let Some(v) = o.violations.iter().find(|v| v.starts_with("trace check:")) {
            eprintln!("caught by seed {seed}: {v}");
            return;
        }
    }
    panic!("agent-drops-bootstrap: the trace check did not catch it within 2 seeds");
}

/// A tolerance test, not a bite: the transport sends every batch twice
/// (`resend_batch_twice`, a retry after a timeout whose first call was delivered), so
/// every message is applied twice in a row. The protocol is built to tolerate this
/// (the model's network duplicates any message, and the checker explores it; the fault
/// layer here duplicates too): commands are fenced by (term, op) and acknowledged
/// again, not reapplied, and reports are idempotent. So safety and L1 must hold with
/// it on; were this ever caught, a duplicate would be doing harm the model says it
/// cannot. (64 seeds with it on were green when it was written:
/// `EBBTIDE_SEEDS=64 cargo test --test sim tolerance_`.)
#[test]
fn tolerance_batches_resent_twice_keep_safety_and_drains_complete() {
    let bugs = ShellBugs {
        resend_batch_twice: true,
        ..ShellBugs::default()
    };
    for seed in seeds(16) {
        let o = run(seed, bugs, "tolerance-resend-twice");
        eprintln!("tolerance-resend-twice: {}", o.summary);
        assert!(o.violations.is_empty(), "{}", explain(&o, seed));
    }
}
