//! `ebbtide`: the model checker front end and (later) the node runtime and its clients.

mod check_cmd;
mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli::usage_error(e),
    };
    match cli.command {
        cli::Command::Check(args) => check_cmd::check(args),
        cli::Command::Explore(args) => check_cmd::explore(args),
    }
}
