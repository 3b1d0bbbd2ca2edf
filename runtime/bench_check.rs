//! `ebbtide bench check`: the model checker's throughput on one configuration, single
//! threaded by default, beside stateright's own Single Decree Paxos example
//! (`paxos check-dfs`, vendored in `paxos_bench.rs`) checked in the same process right
//! after it, so that the ratio of the two holds whatever else the machine is doing.
//!
//! It prints unique states, states, seconds, unique states per second and bytes per
//! unique state (the growth of the resident set over the run, sampled every 100 ms,
//! divided by the unique states) for each, then the ratio of unique states per second.
//! The rows are the exhaustive search alone: the search for L2's scenarios that follows
//! it (`run::run`) is printed on a line of its own.
//! The allocator keeps what an earlier run freed and a later run reuses it, so a run's
//! growth is only shown while the process is at its highest resident set yet ("-"
//! otherwise: run it alone, `--paxos-clients 0`, for ebbtide's).
//!
//! `--by-action` instead prints where the configuration's state space comes from
//! ([`ebbtide_model::checker::census`]): per kind of action, how often it is offered,
//! pruned, generates a state and generates a new one, and its share of the step time.
//! `--by-part` prints first how much each part of the state (a node's agent, the
//! messages in flight of one kind, a field of the history) multiplies the state space.

use crate::cli::{self, BenchCheckArgs};
use crate::paxos_bench;
use ebbtide_model::checker::run::{self, RunOptions};
use stateright::{Checker, Model};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// One measured run.
struct Sample {
    name: String,
    unique: usize,
    states: usize,
    seconds: f64,
    /// Peak resident set growth over the run, in bytes.
    rss_growth: u64,
    /// The search for L2's scenarios after the exhaustive one (`run::run`): not in the
    /// row, which is about the exhaustive search.
    scenarios: Option<run::ScenarioSearch>,
}

impl Sample {
    fn unique_per_second(&self) -> f64 {
        self.unique as f64 / self.seconds.max(1e-9)
    }

    fn bytes_per_unique(&self) -> f64 {
        self.rss_growth as f64 / (self.unique.max(1)) as f64
    }
}

/// The current resident set, in bytes (Linux; 0 elsewhere).
fn vm_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// `ebbtide bench check`.
pub fn check(args: BenchCheckArgs) -> ExitCode {
    let cfg = match args.model.config() {
        Ok(cfg) => cfg,
        Err(msg) => return cli::bad_usage(&msg),
    };
    if args.by_action || args.by_part {
        return print_census(cfg, args.by_part);
    }
    let threads = args.threads.max(1);
    let mut samples = Vec::new();
    for _ in 0..args.repeat.max(1) {
        samples.push(ebbtide_run(cfg.clone(), threads));
        if args.paxos_clients > 0 {
            samples.push(paxos_run(args.paxos_clients, threads));
        }
    }
    println!(
        "{:<36} {:>12} {:>12} {:>9} {:>12} {:>10}",
        "configuration", "unique", "states", "seconds", "unique/s", "bytes/uniq"
    );
    for s in &samples {
        let bytes = if s.rss_growth > 0 {
            format!("{:.1}", s.bytes_per_unique())
        } else {
            "-".to_string()
        };
        println!(
            "{:<36} {:>12} {:>12} {:>9.2} {:>12.0} {:>10}",
            s.name,
            s.unique,
            s.states,
            s.seconds,
            s.unique_per_second(),
            bytes
        );
    }
    for s in &samples {
        if let Some(w) = &s.scenarios {
            println!(
                "{}: then L2's scenarios, searched apart: {} unique, {} states, {:.2} s (not in the row)",
                s.name, w.unique_states, w.states, w.seconds
            );
        }
    }
    for pair in samples.chunks(2) {
        if let [ours, paxos] = pair {
            println!(
                "ratio to paxos (unique states/s): {:.2}x; per state generated: {:.2}x",
                ours.unique_per_second() / paxos.unique_per_second(),
                (ours.states as f64 / ours.seconds) / (paxos.states as f64 / paxos.seconds)
            );
        }
    }
    ExitCode::SUCCESS
}

/// `ebbtide bench check --by-action` (and `--by-part`, which prints its own table first).
fn print_census(mut cfg: ebbtide_model::checker::ModelConfig, by_part: bool) -> ExitCode {
    use ebbtide_model::checker::census;
    // The states the exhaustive search visits: without scenario records (`run::run`).
    cfg.record_scenarios = false;
    eprintln!(
        "census of {} nodes, {} work units ({} added), {} drain(s): a depth-first search, one thread",
        cfg.nodes, cfg.work, cfg.added_work, cfg.drains
    );
    let model = ebbtide_model::checker::DrainModel::new(cfg);
    let t = Instant::now();
    let progress = |unique| {
        eprintln!(
            "  {:>7.1}s  {unique} unique states",
            t.elapsed().as_secs_f64()
        );
    };
    let c = if by_part {
        let p = census::by_part(&model, progress);
        println!(
            "{} unique states; {} with every part below (the same, unless a part is missing)",
            p.census.unique, p.with_every_part
        );
        print!("{}", p.table());
        println!();
        p.census
    } else {
        census::census(&model, progress)
    };
    println!(
        "{} unique states in {:.1} s ({:.0} unique/s with the census's own bookkeeping)",
        c.unique,
        c.elapsed.as_secs_f64(),
        c.unique as f64 / c.elapsed.as_secs_f64().max(1e-9)
    );
    print!("{}", c.table());
    ExitCode::SUCCESS
}

fn ebbtide_run(cfg: ebbtide_model::checker::ModelConfig, threads: usize) -> Sample {
    let name = format!(
        "ebbtide n{} w{} d{} (threads {threads})",
        cfg.nodes, cfg.work, cfg.drains
    );
    let opts = RunOptions {
        threads,
        progress_every: Duration::from_millis(100),
        shorten_for: None,
        ..RunOptions::default()
    };
    let base = vm_rss();
    let mut peak = base;
    let report = run::run(cfg, &opts, |_| peak = peak.max(vm_rss()));
    Sample {
        name,
        unique: report.unique_states,
        states: report.states,
        seconds: report.seconds,
        rss_growth: peak.saturating_sub(base),
        scenarios: report.scenario_search,
    }
}

fn paxos_run(clients: usize, threads: usize) -> Sample {
    let base = vm_rss();
    let mut peak = base;
    let started = Instant::now();
    let checker = paxos_bench::model(clients)
        .checker()
        .threads(threads)
        .spawn_dfs();
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(100));
        peak = peak.max(vm_rss());
    }
    let checker = checker.join();
    let seconds = started.elapsed().as_secs_f64();
    peak = peak.max(vm_rss());
    Sample {
        name: format!("paxos check-dfs {clients} (threads {threads})"),
        unique: checker.unique_state_count(),
        states: checker.state_count(),
        seconds,
        rss_growth: peak.saturating_sub(base),
        scenarios: None,
    }
}
