//! `ebbtide check` and `ebbtide explore`.

use crate::cli::{self, CheckArgs, ExploreArgs, Format, SearchArg};
use ebbtide_model::checker::run::{self, CheckReport, Progress, RunOptions, Search, Status};
use ebbtide_model::checker::simulate::{self, SimProgress, SimulateOptions, SimulateReport};
use ebbtide_model::checker::{DrainModel, ModelConfig};
use ebbtide_model::Guard;
use stateright::Model;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

/// `ebbtide check`.
pub fn check(args: CheckArgs) -> ExitCode {
    if args.list_guards {
        for g in Guard::ALL {
            println!("{}", g.name());
        }
        return ExitCode::SUCCESS;
    }
    let cfg = match args.model.config() {
        Ok(cfg) => cfg,
        Err(msg) => return cli::bad_usage(&msg),
    };
    let threads = match cli::threads(args.threads) {
        Ok(t) => t,
        Err(msg) => return cli::bad_usage(&msg),
    };
    let tty = std::io::stderr().is_terminal();
    // Open the diagram's file now: a path that cannot be written is bad usage, said
    // before the check rather than after it.
    let svg_file = match &args.svg {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Some((path, f)),
            Err(e) => return cli::bad_usage(&format!("--svg {}: {e}", path.display())),
        },
        None => None,
    };
    if args.simulate {
        return simulate(cfg, &args, threads, tty, svg_file);
    }
    let configs = if args.ci {
        if cfg != ModelConfig::default() {
            return cli::bad_usage("--ci checks fixed configurations: drop the model options");
        }
        ModelConfig::ci()
    } else {
        vec![cfg]
    };
    let opts = RunOptions {
        threads,
        // On a terminal, one line rewritten every second; in a log, one line every ten.
        progress_every: Duration::from_secs(if tty { 1 } else { 10 }),
        search: match args.search {
            SearchArg::Dfs => Search::Dfs,
            SearchArg::Bfs => Search::Bfs,
        },
        stop_at_first_failure: args.stop_at_first_failure,
        scenarios_apart: !args.single_search,
        ..RunOptions::default()
    };
    let mut reports = Vec::new();
    for (i, cfg) in configs.iter().enumerate() {
        if configs.len() > 1 && args.format == Format::Text {
            if i > 0 {
                println!();
            }
            println!(
                "== configuration {} of {}: {}",
                i + 1,
                configs.len(),
                flags(cfg)
            );
        }
        let report = check_one(cfg.clone(), &opts, threads, tty);
        if args.format == Format::Text {
            print_text(&report);
        }
        reports.push(report);
    }
    if args.format == Format::Json {
        let json = if reports.len() == 1 {
            serde_json::to_string_pretty(&reports[0])
        } else {
            serde_json::to_string_pretty(&reports)
        };
        println!("{}", json.expect("the report serializes"));
    }
    let first = reports
        .iter()
        .flat_map(|r| &r.properties)
        .find_map(|p| p.diagram.as_deref());
    write_svg(svg_file, first);
    if reports.iter().any(CheckReport::has_violation) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Writes the first counterexample's diagram to `--svg`'s file, or removes the file
/// when there is none.
fn write_svg(file: Option<(&std::path::PathBuf, std::fs::File)>, svg: Option<&str>) {
    let Some((path, mut file)) = file else {
        return;
    };
    match svg {
        Some(svg) => {
            if let Err(e) = file.write_all(svg.as_bytes()) {
                eprintln!("error: --svg {}: {e}", path.display());
            }
        }
        None => {
            let _ = std::fs::remove_file(path);
            eprintln!("no counterexample: {} not written", path.display());
        }
    }
}

/// The `ebbtide check` options that select `cfg`, for the --ci headings.
fn flags(cfg: &ModelConfig) -> String {
    let d = ModelConfig::default();
    let mut f = vec!["ebbtide check".to_string()];
    let mut opt = |name: &str, v: u8, dv: u8| {
        if v != dv {
            f.push(format!("--{name} {v}"));
        }
    };
    opt("nodes", cfg.nodes, d.nodes);
    opt("drains", cfg.drains, d.drains);
    opt("work", cfg.work, d.work);
    opt("added-work", cfg.added_work, d.added_work);
    opt("node-crashes", cfg.node_crashes, d.node_crashes);
    opt("failovers", cfg.failovers, d.failovers);
    opt("lease-losses", cfg.lease_losses, d.lease_losses);
    opt("drain-batch", cfg.drain_batch, d.drain_batch);
    opt("stray-terms", cfg.stray_terms, d.stray_terms);
    opt("resigns", cfg.resigns, d.resigns);
    opt("leaves", cfg.leaves, d.leaves);
    opt("fair-rounds", cfg.fair_rounds, d.fair_rounds);
    let mut limit = |name: &str, v: Option<u8>, dv: Option<u8>| {
        if v != dv {
            f.push(match v {
                Some(v) => format!("--{name} {v}"),
                None => format!("--{name} unlimited"),
            });
        }
    };
    limit("losses", cfg.losses, d.losses);
    limit("ttl-expiries", cfg.ttl_expiries, d.ttl_expiries);
    for (on, flag) in [
        (cfg.elected_start, "--elected-start"),
        (cfg.late_membership, "--late-membership"),
        (cfg.failed_elections, "--failed-elections"),
        (cfg.drains_any_order, "--drains-any-order"),
        (cfg.fixed_coordinator, "--static-membership"),
        (cfg.every_loss, "--every-loss"),
    ] {
        if on {
            f.push(flag.to_string());
        }
    }
    f.join(" ")
}

fn check_one(cfg: ModelConfig, opts: &RunOptions, threads: usize, tty: bool) -> CheckReport {
    eprintln!(
        "checking {} nodes, {} drain(s), {} work units, {} node crash(es), {} failover(s), {} lease loss(es), {} message loss(es){}, {} stray term(s), {:?}; {} search on {} thread(s)",
        cfg.nodes,
        cfg.drains,
        cfg.work,
        cfg.node_crashes,
        cfg.failovers,
        cfg.lease_losses,
        cfg.losses.map_or("unlimited".to_string(), |l| l.to_string()),
        if ebbtide_model::checker::losses::reduced(&cfg) {
            " (taken where they matter)"
        } else {
            ""
        },
        cfg.stray_terms,
        cfg.guards,
        if opts.search == Search::Dfs { "depth-first" } else { "breadth-first" },
        threads
    );
    let report = run::run(cfg, opts, |p: Progress| print_progress(p, tty));
    if tty {
        eprintln!();
    }
    report
}

fn print_progress(p: Progress, tty: bool) {
    let line = format!(
        "{:>7.1}s  {}{} states, {} unique, {} unique/s, depth {}",
        p.seconds,
        if p.scenario_search {
            "L2's scenarios, searched apart: "
        } else {
            ""
        },
        p.states,
        p.unique_states,
        (p.unique_states as f64 / p.seconds.max(1e-9)) as u64,
        p.max_depth
    );
    show_progress(&line, tty);
}

/// One progress line: rewritten in place on a terminal, appended in a log.
fn show_progress(line: &str, tty: bool) {
    let mut err = std::io::stderr();
    if tty {
        let _ = write!(err, "\r{line}   ");
        let _ = err.flush();
    } else {
        let _ = writeln!(err, "{line}");
    }
}

fn print_text(r: &CheckReport) {
    println!(
        "{} states, {} unique, {:.1}s, {:.0} unique states/s, max depth {}{}",
        r.states,
        r.unique_states,
        r.seconds,
        r.unique_per_second(),
        r.max_depth,
        if r.exhaustive {
            ", exhaustive"
        } else {
            ", stopped early"
        }
    );
    if let Some(w) = &r.scenario_search {
        println!(
            "L2's scenarios searched apart: {} states, {} unique, {:.1}s{}",
            w.states,
            w.unique_states,
            w.seconds,
            if w.exhaustive {
                ", exhaustive"
            } else {
                ", stopped at their witnesses"
            }
        );
    }
    println!();
    println!("{:<24} {:<10} result", "property", "kind");
    for p in &r.properties {
        let status = match p.status {
            Status::Holds => "holds",
            Status::Violated => "VIOLATED",
            Status::NotReached => "not reached",
            Status::Unknown => "unknown",
        };
        println!("{:<24} {:<10} {status}", p.name, p.kind);
    }
    for p in &r.properties {
        let Some(steps) = &p.counterexample else {
            continue;
        };
        println!();
        println!("{} violated: {}", p.name, p.statement);
        println!("counterexample ({} steps):", steps.len());
        for s in steps {
            println!("{s}");
        }
        if let Some(last) = &p.final_state {
            println!("  final state:");
            for l in last {
                println!("    {l}");
            }
        }
    }
}

/// `ebbtide check --simulate`.
fn simulate(
    cfg: ModelConfig,
    args: &CheckArgs,
    threads: usize,
    tty: bool,
    svg_file: Option<(&std::path::PathBuf, std::fs::File)>,
) -> ExitCode {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    eprintln!(
        "walking {} nodes, {} drain(s), {} work units, {} node crash(es), {} failover(s), {} lease loss(es), {} message loss(es) at random for {} s on {} thread(s), seed {seed}",
        cfg.nodes,
        cfg.drains,
        cfg.work,
        cfg.node_crashes,
        cfg.failovers,
        cfg.lease_losses,
        cfg.losses.map_or("unlimited".to_string(), |l| l.to_string()),
        args.seconds,
        threads
    );
    let opts = SimulateOptions {
        seed,
        duration: Duration::from_secs(args.seconds),
        walks: args.walks,
        max_depth: args.max_depth,
        threads,
    };
    let every = Duration::from_secs(if tty { 1 } else { 10 });
    let report = simulate::simulate(cfg, &opts, every, |p: SimProgress| {
        let line = format!(
            "{:>7.1}s  {} walks, {} states, {} states/s, {} violated",
            p.seconds,
            p.walks,
            p.states,
            (p.states as f64 / p.seconds.max(1e-9)) as u64,
            p.violations
        );
        show_progress(&line, tty);
    });
    if tty {
        eprintln!();
    }
    if args.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serializes")
        );
    } else {
        print_walks(&report);
    }
    write_svg(
        svg_file,
        report.violations.first().map(|v| v.diagram.as_str()),
    );
    if report.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_walks(r: &SimulateReport) {
    println!(
        "{} walks, {} steps, {} states, {:.1}s, {:.0} states/s, max depth {}, seed {}: random walks, not exhaustive",
        r.walks,
        r.steps,
        r.states,
        r.seconds,
        r.states_per_second(),
        r.max_depth,
        r.seed
    );
    let violated: Vec<&str> = r.violations.iter().map(|v| v.property).collect();
    println!(
        "violated: {}",
        if violated.is_empty() {
            "none".to_string()
        } else {
            violated.join(", ")
        }
    );
    if !r.reached.is_empty() {
        println!("reached: {}", r.reached.join(", "));
    }
    if !r.not_reached.is_empty() {
        println!("not reached: {}", r.not_reached.join(", "));
    }
    for v in &r.violations {
        println!();
        println!(
            "{} violated on the walk with seed {} (walk it again: --seed {} --walks 1):",
            v.property, v.walk_seed, v.walk_seed
        );
        for s in &v.counterexample {
            println!("{s}");
        }
        println!("  final state:");
        for l in &v.final_state {
            println!("    {l}");
        }
    }
}

/// `ebbtide explore`.
pub fn explore(args: ExploreArgs) -> ExitCode {
    let cfg = match args.model.config() {
        Ok(cfg) => cfg,
        Err(msg) => return cli::bad_usage(&msg),
    };
    let threads = match cli::threads(args.threads) {
        Ok(t) => t,
        Err(msg) => return cli::bad_usage(&msg),
    };
    let listener = match std::net::TcpListener::bind(&args.listen) {
        Ok(l) => l,
        Err(e) => return cli::bad_usage(&format!("--listen {}: {e}", args.listen)),
    };
    let addr = listener.local_addr().expect("a bound address");
    drop(listener);
    println!("Explorer for {cfg:?} on http://{addr}/ (press \"Run to completion\" to explore)");
    let _ = std::io::stdout().flush();
    DrainModel::new(cfg).checker().threads(threads).serve(addr);
    std::thread::sleep(Duration::MAX);
    ExitCode::SUCCESS
}
