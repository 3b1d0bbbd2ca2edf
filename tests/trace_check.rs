//! `ebbtide trace check` bites: a real cluster's traces pass, and every kind of broken
//! trace is caught with the check it breaks: an output changed, a step removed (with
//! and without its `seq`), inputs reordered, a `remaining: 0` answered too early (by the
//! shell: replay; by the core itself: S3), a unit left running on two nodes (S5), an
//! epoch run by two processes, a node's trace left out (provenance), a receipt moved
//! before its send (causality), malformed input (exit 2); and a runtime with a deliberate shell bug
//! (`EBBTIDE_SHELL_BUG`) writes traces that fail; an incarnation that starts below a term
//! floor an earlier one reported (term floor kept).

mod support;

use ebbtide::trace_check::{parse, replay, safety, Check};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::nodes::*;

/// A trace's files, as JSON values, one per line.
type Files = Vec<(PathBuf, Vec<Value>)>;

fn load(paths: &[PathBuf]) -> Files {
    paths.iter().map(|p| (p.clone(), read_trace(p))).collect()
}

/// Writes `files` (one value per line, so line numbers are kept) into `dir`.
fn write(dir: &Path, files: &Files) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    files
        .iter()
        .map(|(p, lines)| {
            let out = dir.join(p.file_name().unwrap());
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            std::fs::write(&out, text).unwrap();
            out
        })
        .collect()
}

/// Runs the binary: (exit code, stdout, stderr).
fn run_check(paths: &[PathBuf]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("trace")
        .arg("check")
        .args(paths)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes the tampered `files` into `dir/case` and expects the check to fail with exit
/// 1, naming `check` at `file:line` (of the written copy) and saying `says`.
fn expect_caught(
    dir: &Path,
    case: &str,
    files: &Files,
    at: (usize, usize),
    check: &str,
    says: &[&str],
) {
    let paths = write(&dir.join(case), files);
    let (code, out, err) = run_check(&paths);
    assert_eq!(code, 1, "{case}: exit {code}\nstdout: {out}\nstderr: {err}");
    let place = format!("{}:{}", paths[at.0].display(), at.1 + 1);
    let head = format!("check {check} failed at {place}");
    assert!(err.contains(&head), "{case}: expected {head:?} in:\n{err}");
    for s in says {
        assert!(err.contains(s), "{case}: expected {s:?} in:\n{err}");
    }
    eprintln!("{case}: caught\n{}", err.lines().next().unwrap_or(""));
}

/// The first line (file, line index) where `pred` holds.
fn find(files: &Files, mut pred: impl FnMut(usize, &Value) -> bool) -> (usize, usize) {
    for (f, (_, lines)) in files.iter().enumerate() {
        for (l, v) in lines.iter().enumerate() {
            if pred(f, v) {
                return (f, l);
            }
        }
    }
    panic!("no such record");
}

fn has_output(v: &Value, kind: &str) -> bool {
    v["outputs"]
        .as_array()
        .is_some_and(|o| o.iter().any(|x| x.get(kind).is_some()))
}

fn is_drain_answer(v: &Value) -> bool {
    v["input"].get("DrainNode").is_some()
}

fn remaining(v: &Value) -> Option<u64> {
    v["outputs"].as_array()?.last()?["Answer"]["Ok"]["remaining"].as_u64()
}

/// `ebbtide trace check --explore`: the Explorer serves the state the run reached, at
/// the path it took (every step one the model offers), with its sequence diagram.
fn explorer_serves_the_run(paths: &[PathBuf]) {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut child = Command::new(BIN)
        .args(["trace", "check", "--explore", "127.0.0.1:0"])
        .args(paths)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut url = String::new();
    for _ in 0..4 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        if let Some(at) = line.find("http://") {
            url = line[at..].trim().to_owned();
            break;
        }
    }
    assert!(
        url.contains("#/steps/0/"),
        "no Explorer URL printed: {url:?}"
    );
    let rest = &url["http://".len()..];
    let (addr, fragment) = rest.split_once("/#/steps").unwrap();
    let path = format!("/.states{fragment}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let body = loop {
        match std::net::TcpStream::connect(addr) {
            Ok(mut s) => {
                write!(
                    s,
                    "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
                )
                .unwrap();
                // (Chunked: a chunk may split a character, so read bytes.)
                let mut reply = Vec::new();
                s.read_to_end(&mut reply).unwrap();
                break String::from_utf8_lossy(&reply).into_owned();
            }
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("the Explorer never listened on {addr}: {e}"),
        }
    };
    child.kill().unwrap();
    let _ = child.wait();
    assert!(
        body.starts_with("HTTP/1.1 200"),
        "{}",
        &body[..body.len().min(300)]
    );
    // The steps after the run's last state, each with the diagram of its whole path.
    assert!(body.contains("\"svg\":\"<svg"), "no diagram in the reply");
    assert!(body.contains("\"action\""), "no next steps in the reply");
}

/// A 3-node cluster (n1 coordinates) with 20 units, n3 drained to 0 and exited.
async fn drained(name: &str) -> Cluster {
    let mut c = Cluster::new(name, 3);
    c.nodes[2].extra = vec![
        "--exit-when-drained".into(),
        "--exit-linger".into(),
        "500ms".into(),
    ];
    c.start_all();
    wait_all_alive(&c).await;
    add_work(&c, 0, 20).await;
    let mut polls = 0;
    while ticdc_drain(&c.http(0), "n3").await != 0 {
        polls += 1;
        assert!(polls < 2000, "the drain did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = c.wait_exit(2, Duration::from_secs(10));
    assert!(status.success(), "n3 exited with {status}");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_traces_are_caught_by_the_check_they_break() {
    let c = drained("tracebite").await;
    let paths = trace_paths(&c);
    let (code, out, err) = run_check(&paths);
    assert_eq!(
        code, 0,
        "the real traces pass\nstdout: {out}\nstderr: {err}"
    );
    assert!(
        out.contains("replayed, every step with its logged outputs"),
        "{out}"
    );
    assert!(
        out.contains("refinement: a behaviour of the model"),
        "{out}"
    );
    explorer_serves_the_run(&paths);
    let orig = load(&paths);
    let dir = c.dir.join("tampered");
    let n3 = orig
        .iter()
        .position(|(p, _)| p.ends_with("n3.trace.jsonl"))
        .unwrap();

    // An output changed: a StartWork names another unit.
    let mut files = orig.clone();
    let at = find(&files, |_, v| {
        v["role"] == "agent" && has_output(v, "StartWork")
    });
    for o in files[at.0].1[at.1]["outputs"].as_array_mut().unwrap() {
        if o.get("StartWork").is_some() {
            *o = json!({"StartWork": "not-a-unit"});
        }
    }
    expect_caught(
        &dir,
        "output-changed",
        &files,
        at,
        "replay",
        &["not-a-unit", "core gave:"],
    );

    // A step removed: the gap in its process's seq.
    let mut files = orig.clone();
    let at = find(&files, |f, v| {
        f == n3 && v["role"] == "agent" && has_output(v, "StartWork")
    });
    let removed = files[at.0].1.remove(at.1);
    let seq = removed["seq"].as_u64().unwrap();
    let next = (at.0, at.1); // the line after it moved up
    expect_caught(
        &dir,
        "step-removed",
        &files,
        next,
        "sequence",
        &[&format!("no record with seq {seq}"), "a step is missing"],
    );

    // The same step removed, and the later seqs renumbered to hide the gap: replay
    // catches it when the unit that was never started is removed.
    let process = removed["process"].clone();
    for v in files[at.0].1.iter_mut() {
        if v["process"] == process && v["seq"].as_u64().unwrap() > seq {
            v["seq"] = json!(v["seq"].as_u64().unwrap() - 1);
        }
    }
    let paths_renumbered = write(&dir.join("step-removed-renumbered"), &files);
    let (code, _, err) = run_check(&paths_renumbered);
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("check replay failed at "), "{err}");
    assert!(err.contains("step not reproduced"), "{err}");
    eprintln!(
        "step-removed-renumbered: caught\n{}",
        err.lines().next().unwrap()
    );

    // Inputs reordered: an AddWork and the next input, handed to the core in the other
    // order while the trace shows the original order (each record keeps its outputs).
    // The first step then cannot give the AddWork's StartWork and acknowledgement: only
    // that very AddWork does.
    let mut files = orig.clone();
    let lines = &files[n3].1;
    let k = (0..lines.len() - 1)
        .find(|&k| {
            let (a, b) = (&lines[k], &lines[k + 1]);
            a["process"] == b["process"]
                && a["role"] == "agent"
                && b["role"] == "agent"
                && b["seq"].as_u64() == a["seq"].as_u64().map(|s| s + 1)
                && has_output(a, "StartWork")
                && a["input"] != b["input"]
        })
        .expect("an AddWork followed by another input");
    let first = files[n3].1[k]["input"].take();
    files[n3].1[k]["input"] = files[n3].1[k + 1]["input"].take();
    files[n3].1[k + 1]["input"] = first;
    expect_caught(
        &dir,
        "inputs-reordered",
        &files,
        (n3, k),
        "replay",
        &["core gave:"],
    );

    // A remaining 0 answered too early by the shell: the answer is not the core's.
    let mut files = orig.clone();
    let at = find(&files, |_, v| {
        is_drain_answer(v) && remaining(v).is_some_and(|r| r > 0)
    });
    let was = remaining(&files[at.0].1[at.1]).unwrap();
    let answer = files[at.0].1[at.1]["outputs"]
        .as_array_mut()
        .unwrap()
        .last_mut()
        .unwrap();
    answer["Answer"]["Ok"]["remaining"] = json!(0);
    expect_caught(
        &dir,
        "zero-answered-early",
        &files,
        at,
        "replay",
        &[&format!("\"remaining\":{was}")],
    );

    // One incarnation in two processes: n3's trace again, as if another process had
    // run epoch 1 too (its data dir copied, say).
    let mut files = orig.clone();
    let mut twin = files[n3].1.clone();
    for v in &mut twin {
        v["process"] = json!("twin");
    }
    let twin_start = twin.iter().position(|v| v["role"] == "agent").unwrap();
    files.push((PathBuf::from("twin.trace.jsonl"), twin));
    let at = (files.len() - 1, twin_start);
    expect_caught(
        &dir,
        "epoch-twice",
        &files,
        at,
        "replay",
        &["agent n3 epoch 1 started in two processes"],
    );

    // A node's trace left out: its messages come from nowhere.
    let mut files = orig.clone();
    files.remove(n3);
    let at = find(&files, |_, v| v["input"]["Message"]["from"] == "n3");
    expect_caught(
        &dir,
        "trace-left-out",
        &files,
        at,
        "provenance",
        &["received a message from n3 that no traced process sent"],
    );

    // Malformed input: exit 2, naming the file and line.
    let mut files = orig.clone();
    files[n3].1.insert(3, json!({"not": "a record"}));
    let bad = write(&dir.join("malformed"), &files);
    let (code, _, err) = run_check(&bad);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("{}:4: not a trace record", bad[n3].display())),
        "{err}"
    );
    let (code, _, err) = run_check(&[dir.join("no-such-file")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no-such-file"), "{err}");

    // The core itself answering 0 too early would replay (it reproduces its own bug):
    // S3 catches it. The replayed facts come from the real trace; the answer is changed
    // after replay, as a core that answered so would have logged it.
    let (mut processes, _) = parse::read(&paths).unwrap();
    let replayed = replay::replay(&processes).unwrap();
    let r = processes
        .iter_mut()
        .flat_map(|p| p.records.iter_mut())
        .find(|r| {
            r.input.get("DrainNode").is_some()
                && r.outputs
                    .last()
                    .is_some_and(|a| a["Answer"]["Ok"]["remaining"].as_u64() > Some(0))
        })
        .unwrap();
    r.outputs.last_mut().unwrap()["Answer"]["Ok"]["remaining"] = json!(0);
    let f = safety::check(&processes, &replayed).unwrap_err();
    assert_eq!(f.check, Check::NoPrematureZero, "{f}");
    assert!(
        f.what.contains("answered remaining 0 for n3 too early"),
        "{f}"
    );
    eprintln!("core-zero-early: caught\n{f}");

    // A term floor forgotten: n3's incarnation starts as if it followed an incarnation
    // that answered a bootstrap, without that term (a shell that sent the answer before
    // its leader record was durable, then crashed). The start is changed after replay,
    // as such a run would have logged it.
    let (mut processes, _) = parse::read(&paths).unwrap();
    let replayed = replay::replay(&processes).unwrap();
    let answered = processes
        .iter()
        .flat_map(|p| &p.records)
        .filter(|r| r.role == parse::Role::Coordinator)
        .filter_map(|r| {
            let m = r.input.get("Message")?;
            (m["from"] == "n3").then(|| m["msg"]["BootstrapResponse"]["epoch"].as_u64())?
        })
        .max()
        .expect("n3 answered a bootstrap");
    let start = processes
        .iter_mut()
        .flat_map(|p| p.records.iter_mut())
        .find(|r| r.node == "n3" && r.role == parse::Role::Agent && r.input.get("Start").is_some())
        .unwrap();
    start.input["Start"]["epoch"] = json!(answered + 1);
    start.input["Start"]["leader"] = Value::Null;
    let f = safety::check(&processes, &replayed).unwrap_err();
    assert_eq!(f.check, Check::FloorKept, "{f}");
    assert!(f.what.contains("n3's incarnation"), "{f}");
    eprintln!("floor-forgotten: caught\n{f}");

    // The coordinator's records out of order: the acknowledgement of an AddWork to n3
    // moved before the step that sent that AddWork. Replay is skipped (it would catch
    // the reorder first): happens-before alone has a cycle.
    let (mut processes, _) = parse::read(&paths).unwrap();
    let replayed = replay::replay(&processes).unwrap();
    let coord = processes
        .iter_mut()
        .find(|p| p.records.iter().any(|r| r.role == parse::Role::Coordinator))
        .unwrap();
    let sent = coord
        .records
        .iter()
        .position(|r| {
            r.outputs
                .iter()
                .any(|o| o["Send"]["to"] == "n3" && o["Send"]["msg"].get("AddWork").is_some())
        })
        .expect("an AddWork to n3");
    let add = coord.records[sent]
        .outputs
        .iter()
        .find(|o| o["Send"]["to"] == "n3" && o["Send"]["msg"].get("AddWork").is_some())
        .unwrap()["Send"]["msg"]["AddWork"]
        .clone();
    let acked = coord
        .records
        .iter()
        .position(|r| {
            let w = &r.input["Message"]["msg"]["WorkStatus"];
            r.input["Message"]["from"] == "n3" && w["work"] == add["work"] && w["op"] == add["op"]
        })
        .expect("n3 acknowledged it");
    let moved = coord.records.remove(acked);
    coord.records.insert(sent, moved);
    let f = safety::check(&processes, &replayed).unwrap_err();
    assert_eq!(f.check, Check::Causality, "{f}");
    assert!(
        f.what.contains("earliest send comes after this receipt"),
        "{f}"
    );
    eprintln!("receipt-before-send: caught\n{f}");

    // A core that never stops a unit it hands over (n3 keeps running a unit that moved
    // to another node): S5.
    let (mut processes, _) = parse::read(&paths).unwrap();
    let replayed = replay::replay(&processes).unwrap();
    let started_elsewhere: Vec<String> = processes
        .iter()
        .flat_map(|p| &p.records)
        .filter(|r| r.role == parse::Role::Agent && r.node != "n3")
        .flat_map(|r| {
            r.outputs
                .iter()
                .filter_map(|o| o["StartWork"].as_str().map(str::to_owned))
        })
        .collect();
    let stop = processes
        .iter_mut()
        .flat_map(|p| p.records.iter_mut())
        .filter(|r| r.node == "n3")
        .find_map(|r| {
            let i = r.outputs.iter().position(|o| {
                o["StopWork"]
                    .as_str()
                    .is_some_and(|u| started_elsewhere.iter().any(|s| s == u))
            })?;
            Some(r.outputs.remove(i))
        })
        .expect("n3 stopped a unit that moved");
    let unit = stop["StopWork"].as_str().unwrap();
    let f = safety::check(&processes, &replayed).unwrap_err();
    assert_eq!(f.check, Check::SingleHost, "{f}");
    assert!(f.what.contains(&format!("unit {unit} started on")), "{f}");
    eprintln!("core-runs-twice: caught\n{f}");
}

/// A cluster whose `bug_node` runs with the shell bug `bug`; its traces must fail the
/// replay at a step whose input contains `input`.
async fn shell_bug_is_caught(name: &str, bug: &str, bug_node: usize, drain: bool, input: &str) {
    let mut c = Cluster::new(name, 3);
    c.nodes[bug_node].env = vec![("EBBTIDE_SHELL_BUG".into(), bug.into())];
    c.start_all();
    wait_all_alive(&c).await;
    if drain {
        add_work(&c, 0, 9).await;
        ticdc_drain(&c.http(0), "n3").await;
    }
    let paths = trace_paths(&c);
    let (code, out, err) = run_check(&paths);
    assert_eq!(
        code, 1,
        "with {bug}: exit {code}\nstdout: {out}\nstderr: {err}"
    );
    assert!(err.starts_with("check replay failed at "), "{err}");
    let input_line = err
        .lines()
        .find(|l| l.trim_start().starts_with("input:"))
        .unwrap();
    assert!(input_line.contains(input), "{err}");
    eprintln!("{bug}: caught\n{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_task_that_drops_an_input_writes_a_trace_that_fails() {
    shell_bug_is_caught("bugdrop", "agent-drops-bootstrap", 1, false, "Bootstrap").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_task_that_alters_an_answer_writes_a_trace_that_fails() {
    shell_bug_is_caught(
        "buganswer",
        "answer-remaining-one-less",
        0,
        true,
        "DrainNode",
    )
    .await;
}

/// A misspelled bug would run the node without it, and a test that expects it caught
/// would then fail for the wrong reason (or, worse, a tolerance test would pass without
/// the fault): the node refuses to start, naming the variable and the name, before it
/// binds or writes anything.
#[test]
fn a_node_refuses_an_unknown_shell_bug_and_names_it() {
    let dir = std::env::temp_dir().join(format!("ebbtide-badbug-{}", std::process::id()));
    let out = Command::new(BIN)
        .args(["node", "--id", "n1", "--coordinator", "n1"])
        .args(["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&dir)
        .env(
            "EBBTIDE_SHELL_BUG",
            "agent-drops-bootstrap,agent-drop-bootstrp",
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("EBBTIDE_SHELL_BUG: unknown shell bug \"agent-drop-bootstrp\""),
        "{err}"
    );
    assert!(!dir.exists(), "the data dir was created");
}

/// The help teaches what is checked and what is not; no file is a usage error.
#[test]
fn help_says_what_is_checked() {
    let out = Command::new(BIN)
        .args(["trace", "check", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for s in [
        "replay",
        "S5",
        "S3",
        "happens-before",
        "DrainNode and DrainStatus answer of remaining 0",
        "refinement",
        "transition function",
        "--explore",
        "Exit status",
    ] {
        assert!(help.contains(s), "{s:?} not in:\n{help}");
    }
    let out = Command::new(BIN).args(["trace", "check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
