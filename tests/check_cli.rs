//! `ebbtide check` and `ebbtide explore` as a user runs them: exit statuses, one-line
//! errors on bad input, the JSON report's shape, and the Explorer serving the model.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SMALL: &[&str] = &[
    "--nodes",
    "2",
    "--work",
    "1",
    "--node-crashes",
    "0",
    "--failovers",
    "0",
];

fn ebbtide(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ebbtide"))
        .args(args)
        .output()
        .expect("ebbtide runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn list_guards_prints_one_name_a_line() {
    let out = ebbtide(&["check", "--list-guards"]);
    assert_eq!(out.status.code(), Some(0));
    let names: Vec<_> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert!(names.contains(&"epoch-fencing".to_string()), "{names:?}");
    assert!(names.contains(&"resend".to_string()), "{names:?}");
    assert_eq!(names.len(), ebbtide_model::Guard::ALL.len());
}

fn assert_bad_usage(args: &[&str], mentions: &str) {
    let out = ebbtide(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: one line, got {err:?}"
    );
    assert!(
        err.contains(mentions),
        "{args:?}: {err:?} should name {mentions:?}"
    );
    assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    assert_bad_usage(&["check", "--nodes", "0"], "nodes");
    assert_bad_usage(&["check", "--nodes", "many"], "--nodes");
    assert_bad_usage(&["check", "--without", "no-such-guard"], "no-such-guard");
    assert_bad_usage(&["check", "--frobnicate"], "--frobnicate");
    assert_bad_usage(&["check", "--losses", "lots"], "--losses");
    assert_bad_usage(&["check", "--threads", "0"], "--threads");
    assert_bad_usage(&["check", "--stray-terms", "9"], "--stray-terms");
    assert_bad_usage(&["check", "--resigns", "9"], "--resigns");
    assert_bad_usage(&["check", "--drains", "4"], "--drains");
    assert_bad_usage(&["check", "--drains", "0"], "--drains");
    assert_bad_usage(&["check", "--ci", "--nodes", "2"], "--ci");
    assert_bad_usage(&["explore", "--listen", "not-an-address"], "--listen");
}

#[test]
fn json_report_of_a_small_configuration() {
    let mut args = vec!["check", "--format", "json"];
    args.extend_from_slice(SMALL);
    let out = ebbtide(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    assert_eq!(v["config"]["nodes"], 2);
    assert_eq!(v["config"]["work"], 1);
    assert!(v["states"].as_u64().unwrap() >= v["unique_states"].as_u64().unwrap());
    assert!(v["unique_states"].as_u64().unwrap() > 100);
    assert!(v["seconds"].as_f64().is_some());
    let props = v["properties"].as_array().unwrap();
    let names: Vec<_> = props.iter().map(|p| p["name"].as_str().unwrap()).collect();
    for id in [
        "S1",
        "S2",
        "S3",
        "S4",
        "S5",
        "S6",
        "S7",
        "S8",
        "S9",
        "S10",
        "L1",
        "L1 settles",
    ] {
        assert!(names.contains(&id), "{id} missing from {names:?}");
    }
    for p in props {
        let status = p["status"].as_str().unwrap();
        match p["kind"].as_str().unwrap() {
            "always" => assert_eq!(status, "holds", "{p}"),
            "sometimes" => assert!(status == "holds" || status == "not-reached", "{p}"),
            k => panic!("unknown kind {k}"),
        }
        assert!(p["counterexample"].is_null(), "{p}");
    }
}

/// The JSON report of `check` with and without `--single-search` (2 nodes, 1 unit, a
/// crash, a failover: both L2 scenarios reachable).
fn scenario_report(single: bool) -> Value {
    let mut args = vec!["check", "--format", "json", "--nodes", "2", "--work", "1"];
    if single {
        args.push("--single-search");
    }
    let out = ebbtide(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

#[test]
fn scenarios_are_searched_apart_unless_single_search() {
    let apart = scenario_report(false);
    let single = scenario_report(true);
    // Fewer states without the scenario records, and a second search that stopped at
    // its witnesses; one search keeps them.
    let unique = |v: &Value| v["unique_states"].as_u64().expect("unique_states");
    assert!(unique(&apart) < unique(&single), "{apart}\n{single}");
    assert_eq!(apart["scenario_search"]["exhaustive"], false, "{apart}");
    assert!(single["scenario_search"].is_null(), "{single}");
    let statuses = |v: &Value| -> Vec<(String, String)> {
        v["properties"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["name"].to_string(), p["status"].to_string()))
            .collect()
    };
    assert_eq!(statuses(&apart), statuses(&single));
    for name in ["L2 failover mid-drain", "L2 restart mid-drain"] {
        let p = apart["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap();
        assert_eq!(p["status"], "holds", "{p}");
    }
}

#[test]
fn a_guard_switched_off_gives_exit_1_and_a_counterexample() {
    let mut args = vec![
        "check",
        "--format",
        "json",
        "--search",
        "bfs",
        "--without",
        "single-step",
        "--stop-at-first-failure",
    ];
    args.extend_from_slice(SMALL);
    let out = ebbtide(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let violated: Vec<_> = v["properties"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "violated")
        .collect();
    assert!(!violated.is_empty());
    let steps = violated[0]["counterexample"].as_array().unwrap();
    assert!(!steps.is_empty());
    assert!(steps
        .iter()
        .all(|s| s.as_str().is_some_and(|s| !s.is_empty())));
}

#[test]
fn text_report_is_a_table() {
    let mut args = vec!["check"];
    args.extend_from_slice(SMALL);
    let out = ebbtide(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("exhaustive"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("S3") && l.ends_with("holds")),
        "{text}"
    );
}

/// `--svg` writes the first counterexample as the Explorer's sequence diagram; with
/// no counterexample, no file; a file that cannot be written is bad usage, up front.
#[test]
fn svg_draws_the_counterexample() {
    let dir = std::env::temp_dir().join(format!("ebbtide-svg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cx.svg");
    let path = file.to_str().unwrap();
    let mut args = vec!["check", "--without", "epoch-fencing", "--search", "bfs"];
    args.extend_from_slice(&["--stop-at-first-failure", "--threads", "1", "--svg", path]);
    // The gallery's configuration (the fault of this counterexample is a crash).
    args.extend_from_slice(&["--nodes", "2", "--work", "1"]);
    let out = ebbtide(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let svg = std::fs::read_to_string(&file).expect("the diagram");
    assert!(svg.starts_with("<svg"), "{svg}");
    assert!(svg.contains(">n1 agent</text>"), "{svg}");
    assert!(svg.contains("✕ violates S6"), "{svg}");

    // Every guard on: no counterexample, no file.
    let mut args = vec!["check", "--threads", "1", "--svg", path];
    args.extend_from_slice(SMALL);
    let out = ebbtide(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!file.exists());
    let _ = std::fs::remove_dir_all(&dir);

    assert_bad_usage(&["check", "--svg", "/nonexistent/dir/cx.svg"], "--svg");
}

/// One request to the Explorer with the project's HTTP client; the status code and body.
fn http(addr: &str, method: &str, path: &str) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reply = rt
        .block_on(ebbtide::client::request(addr, method, path, None))
        .unwrap_or_else(|e| panic!("{e}"));
    (reply.status, reply.body)
}

struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn explore_serves_the_model() {
    let mut args = vec!["explore", "--listen", "127.0.0.1:0", "--threads", "1"];
    args.extend_from_slice(SMALL);
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_ebbtide"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();

    // The server starts right after printing its address.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if TcpStream::connect(&addr).is_ok() {
            break http(&addr, "GET", "/.status");
        }
        assert!(Instant::now() < deadline, "the Explorer never listened");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.0, 200);
    let v = status.1;
    assert!(v["model"].as_str().unwrap().contains("DrainModel"), "{v}");

    let (code, _) = http(&addr, "POST", "/.runtocompletion");
    assert_eq!(code, 200);
    let done = loop {
        let v = http(&addr, "GET", "/.status").1;
        if v["done"] == true {
            break v;
        }
        assert!(Instant::now() < deadline, "the run never finished: {v}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(done["unique_state_count"].as_u64().unwrap() > 100, "{done}");
    let names: Vec<_> = done["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_str().unwrap().to_string())
        .collect();
    assert!(names.iter().any(|n| n.starts_with("S3")), "{names:?}");

    let (code, init) = http(&addr, "GET", "/.states");
    assert_eq!(code, 200);
    assert_eq!(init.as_array().unwrap().len(), 1, "one initial state");
    let (code, next) = http(&addr, "GET", "/.states/0");
    assert_eq!(code, 200);
    let steps = next.as_array().unwrap();
    assert!(!steps.is_empty(), "the initial state has successors");
    assert!(steps.iter().all(|s| s["action"].is_string()), "{next}");
}

#[test]
fn simulate_finds_a_broken_guard_and_names_the_walk_that_replays_it() {
    let mut args = vec!["check", "--simulate", "--seconds", "20", "--walks", "3000"];
    args.extend_from_slice(&["--seed", "1", "--threads", "1"]);
    args.extend_from_slice(SMALL);
    args.extend_from_slice(&["--without", "stopping-when-empty"]);
    let out = ebbtide(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("not exhaustive"), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("S8 violated on the walk with seed"))
        .unwrap_or_else(|| panic!("no S8 violation in {text}"));
    let seed = line
        .split("--seed ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .expect("the replay command names the seed");
    // The walk's seed alone finds the same violation again.
    let mut again = vec!["check", "--simulate", "--walks", "1", "--seed", seed];
    again.extend_from_slice(SMALL);
    again.extend_from_slice(&["--without", "stopping-when-empty"]);
    let out = ebbtide(&again);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("1 walks,"), "{text}");
    assert!(
        text.contains(&format!("S8 violated on the walk with seed {seed}")),
        "{text}"
    );

    // And the same configuration with every guard on walks clean.
    let mut clean = vec!["check", "--simulate", "--walks", "300", "--seed", "1"];
    clean.extend_from_slice(SMALL);
    let out = ebbtide(&clean);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn simulate_options_need_simulate() {
    assert_bad_usage(&["check", "--seconds", "5"], "--simulate");
    assert_bad_usage(&["check", "--simulate", "--ci"], "--ci");
}

/// `bench check --by-part` prints the parts of a small configuration's states, each
/// with the states left without it, then the per-action table of the same search.
#[test]
fn by_part_names_what_multiplies_the_state_space() {
    let out = ebbtide(&["bench", "check", "--nodes", "2", "--work", "1", "--by-part"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let first = text.lines().next().unwrap();
    let unique: u64 = first.split(' ').next().unwrap().parse().unwrap();
    assert!(
        first.contains(&format!("; {unique} with every part")),
        "{first}"
    );
    let row = |part: &str| -> u64 {
        let line = (text.lines())
            .find(|l| l.starts_with(&format!("| {part} |")))
            .unwrap_or_else(|| panic!("no row for {part} in:\n{text}"));
        line.split('|').nth(2).unwrap().trim().parse().unwrap()
    };
    assert!(row("in flight: Report") < unique, "{text}");
    assert_eq!(row("history.resigns"), unique, "{text}");
    assert!(
        text.contains("| Deliver |"),
        "the per-action table follows:\n{text}"
    );
    assert_bad_usage(
        &["bench", "check", "--by-part", "--by-action"],
        "--by-action",
    );
}
