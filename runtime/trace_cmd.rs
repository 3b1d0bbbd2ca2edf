//! `ebbtide trace check`: the command around [`ebbtide::trace_check`].

use crate::cli::TraceCheckArgs;
use ebbtide::trace_check::{check_files, CheckError};
use std::process::ExitCode;

/// Prints what was checked, or the first failing step; exit 0, 1 (a check failed, the
/// walk through the model included) or 2 (unreadable or malformed input).
pub fn check(args: TraceCheckArgs) -> ExitCode {
    match check_files(&args.files) {
        Ok(summary) if summary.refined.is_ok() => {
            println!("{summary}");
            match (&args.explore, &summary.refined) {
                (Some(addr), Ok(refined)) => explore(addr, refined),
                _ => ExitCode::SUCCESS,
            }
        }
        Ok(summary) => {
            // Replay and the safety checks passed; the walk through the model did not.
            println!("{summary}");
            if let Err(e) = summary.refinement() {
                eprintln!("{e}");
            }
            ExitCode::from(1)
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

/// Serves the Explorer at the end of the path the run took through the model.
fn explore(addr: &str, refined: &ebbtide::trace_check::refine::Refined) -> ExitCode {
    let listener = match std::net::TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => return crate::cli::bad_usage(&format!("--explore {addr}: {e}")),
    };
    let addr = listener.local_addr().expect("a bound address");
    drop(listener);
    let model = ebbtide_model::checker::DrainModel::new(refined.config.clone());
    let url = format!(
        "http://{addr}/#/steps/{}",
        explore_path(&model, &refined.path)
    );
    println!("Explorer at the run's last state: {url}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    use stateright::Model;
    model.checker().serve(addr);
    std::thread::sleep(std::time::Duration::MAX);
    ExitCode::SUCCESS
}

/// The Explorer's path for `path` from the model's initial state: `0` (the initial
/// state), then each step's index among the actions the model offers there.
pub fn explore_path(
    model: &ebbtide_model::checker::DrainModel,
    path: &[ebbtide_model::checker::Action],
) -> String {
    use stateright::Model;
    let mut state = model.init_states().remove(0);
    let mut indices = vec!["0".to_owned()];
    for a in path {
        let mut offered = Vec::new();
        model.actions(&state, &mut offered);
        let i = offered
            .iter()
            .position(|o| o == a)
            .expect("the walk checked that the model offers each step");
        indices.push(i.to_string());
        state = model
            .next_state(&state, a.clone())
            .expect("a walked step changes the state");
    }
    indices.join("/")
}
