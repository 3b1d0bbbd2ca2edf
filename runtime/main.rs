//! `ebbtide`: the model checker front end, the node runtime and its clients.

mod bench_check;
mod bench_cmd;
mod bench_failover;
mod certs_cmd;
mod check_cmd;
mod cli;
mod client_cmd;
mod node_cmd;
mod paxos_bench;
mod trace_cmd;

use clap::Parser;

/// mimalloc instead of the system allocator: `ebbtide check` clones, hashes and drops
/// millions of small states, and glibc's malloc and free took about a third of its
/// instructions (issue 9).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli::usage_error(e),
    };
    match cli.command {
        cli::Command::Check(args) => check_cmd::check(args),
        cli::Command::Explore(args) => check_cmd::explore(args),
        cli::Command::Node(args) => node_cmd::node(*args),
        cli::Command::Work(cmd) => client_cmd::work(cmd),
        cli::Command::Drain(args) => client_cmd::drain(args),
        cli::Command::Status(args) => client_cmd::status(args),
        cli::Command::Resign(args) => client_cmd::resign(args),
        cli::Command::Certs(args) => certs_cmd::certs(args),
        cli::Command::Bench(cli::BenchCommand::Drain(args)) => bench_cmd::drain(args),
        cli::Command::Bench(cli::BenchCommand::Failover(args)) => bench_failover::failover(args),
        cli::Command::Bench(cli::BenchCommand::Check(args)) => bench_check::check(args),
        cli::Command::Trace(cli::TraceCommand::Check(args)) => trace_cmd::check(args),
    }
}
