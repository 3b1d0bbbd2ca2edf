//! `ebbtide trace check`: the command around [`ebbtide::trace_check`].

use crate::cli::TraceCheckArgs;
use ebbtide::trace_check::{check_files, CheckError};
use std::process::ExitCode;

/// Prints what was checked, or the first failing step; exit 0, 1 (a check failed) or 2
/// (unreadable or malformed input).
pub fn check(args: TraceCheckArgs) -> ExitCode {
    match check_files(&args.files) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e @ CheckError::Failed(_)) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
        Err(e @ CheckError::Input(_)) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
