//! Command-line definitions.

use clap::{Args, Parser, Subcommand, ValueEnum};
use ebbtide_model::checker::ModelConfig;
use ebbtide_model::{Guard, Guards, InheritedDrain};
use std::process::ExitCode;

/// ebbtide: a node-drain control plane whose protocol is model-checked.
#[derive(Parser, Debug)]
#[command(name = "ebbtide", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Model-check the drain protocol exhaustively and report every property.
    ///
    /// Explores every interleaving of a small cluster: node agents and a coordinator
    /// running the production transition functions, a network that loses, duplicates
    /// and reorders, node crashes and restarts, coordinator failover, and a client that
    /// drains the last node. Exit status: 0 when every property holds, 1 when one is
    /// violated, 2 on bad usage.
    #[command(after_help = "Examples:\n  \
        ebbtide check                          # the default configuration (what CI checks)\n  \
        ebbtide check --nodes 4 --work 2       # a larger configuration\n  \
        ebbtide check --without epoch-fencing  # show why a guard matters\n  \
        ebbtide check --list-guards")]
    Check(CheckArgs),
    /// Serve stateright's Explorer for a configuration, to step through states and
    /// counterexamples in a browser.
    ///
    /// Nothing is explored until you press "Run to completion" in the page (or
    /// `POST /.runtocompletion`).
    Explore(ExploreArgs),
}

/// The configuration of the model.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Nodes in the cluster (2-8); n0 starts as coordinator, the client drains the last.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub nodes: u8,
    /// Work units that must run (1-8).
    #[arg(long, default_value_t = 2, value_name = "W")]
    pub work: u8,
    /// Node crashes to inject, each followed by a restart or by leaving membership (0-4).
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub node_crashes: u8,
    /// Coordinator failovers to inject: the coordinator dies, its node lives on (0-4).
    #[arg(long, default_value_t = 1, value_name = "F")]
    pub failovers: u8,
    /// Lease losses to inject: a live node loses its membership lease, fences itself to
    /// Stopping and leaves (0-4).
    #[arg(long, default_value_t = 0, value_name = "X")]
    pub lease_losses: u8,
    /// Messages the network may lose in one run (each loss takes every copy of one
    /// message): a number, or "unlimited". It always duplicates and reorders.
    #[arg(long, default_value = "1", value_name = "L", value_parser = parse_losses)]
    pub losses: Losses,
    /// Liveness-TTL expiries in one run (a node's reports arriving too late): a number,
    /// or "unlimited".
    #[arg(long, default_value = "1", value_name = "E", value_parser = parse_losses)]
    pub ttl_expiries: Losses,
    /// Keep permanently inert messages in the network (slower; the verdicts are the
    /// same: this exists to show that).
    #[arg(long)]
    pub no_gc: bool,
    /// The drain scheduler's batch size (moves in flight off draining nodes).
    #[arg(long, default_value_t = 1, value_name = "B")]
    pub drain_batch: u8,
    /// What a new coordinator does with a drain it inherits.
    #[arg(long, value_enum, default_value_t = InheritedArg::Continue)]
    pub inherited_drain: InheritedArg,
    /// The client stops polling once the first coordinator is gone; L1 then only asks
    /// that the target ends Stopping and empty (see specs/decisions.md, rule 15).
    #[arg(long)]
    pub client_gives_up: bool,
    /// Switch a protocol guard off (checker only; repeatable; see --list-guards).
    #[arg(long, value_name = "GUARD", value_parser = parse_guard)]
    pub without: Vec<Guard>,
}

fn parse_guard(s: &str) -> Result<Guard, String> {
    s.parse()
}

/// A fault budget: a count, or no limit.
#[derive(Clone, Copy, Debug)]
pub struct Losses(pub Option<u8>);

fn parse_losses(s: &str) -> Result<Losses, String> {
    if s == "unlimited" {
        return Ok(Losses(None));
    }
    s.parse::<u8>()
        .map(|n| Losses(Some(n)))
        .map_err(|_| format!("expected a number (0-255) or \"unlimited\", got {s:?}"))
}

/// The inherited-drain policy (PROTOCOL.md rule 15).
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum InheritedArg {
    /// Keep draining a node that reports Draining at bootstrap.
    Continue,
    /// Leave it until a client asks again.
    Freeze,
}

impl ModelArgs {
    /// The model configuration, or a message naming the bad setting.
    pub fn config(&self) -> Result<ModelConfig, String> {
        let mut guards = Guards::default();
        for g in &self.without {
            guards = guards.without(*g);
        }
        let cfg = ModelConfig {
            nodes: self.nodes,
            work: self.work,
            node_crashes: self.node_crashes,
            failovers: self.failovers,
            lease_losses: self.lease_losses,
            client_gives_up: self.client_gives_up,
            losses: self.losses.0,
            ttl_expiries: self.ttl_expiries.0,
            drain_batch: self.drain_batch,
            inherited_drain: match self.inherited_drain {
                InheritedArg::Continue => InheritedDrain::Continue,
                InheritedArg::Freeze => InheritedDrain::Freeze,
            },
            gc: !self.no_gc,
            guards,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Checker threads (default: every core).
    #[arg(long, value_name = "T")]
    pub threads: Option<usize>,
    /// Search order: dfs uses little memory; bfs finds shortest counterexamples first.
    #[arg(long, value_enum, default_value_t = SearchArg::Dfs)]
    pub search: SearchArg,
    /// Stop at the first violated property (other properties are reported unknown).
    #[arg(long)]
    pub stop_at_first_failure: bool,
    /// Output format of the report.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Print the guards that --without accepts, one a line, and exit.
    #[arg(long)]
    pub list_guards: bool,
}

#[derive(Args, Debug)]
pub struct ExploreArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Address to serve the Explorer on.
    #[arg(long, default_value = "127.0.0.1:3000", value_name = "ADDR")]
    pub listen: String,
    /// Checker threads used by "run to completion" (default: every core).
    #[arg(long, value_name = "T")]
    pub threads: Option<usize>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchArg {
    Dfs,
    Bfs,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Prints a clap error as one line (help and version as they are) and picks the exit
/// status: 0 for help and version, 2 for bad usage.
pub fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => {
            let rendered = e.render().to_string();
            let line = rendered.lines().next().unwrap_or("error: bad usage");
            eprintln!("{line} (try --help)");
            ExitCode::from(2)
        }
    }
}

/// Prints a bad-usage message and returns exit status 2.
pub fn bad_usage(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

/// Default thread count: every core.
pub fn threads(requested: Option<usize>) -> Result<usize, String> {
    match requested {
        Some(0) => Err("--threads must be at least 1".to_string()),
        Some(t) => Ok(t),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}
