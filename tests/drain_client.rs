//! The CLI's `drain --wait` checks the answers it acts on: against a fake HTTP server
//! that forges them, it never exits 0 (safe to stop) on an answer of 0 whose phase is
//! not `done`, nor on an answer about another node.

use axum::extract::{Path, State};
use axum::routing::put;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const BIN: &str = env!("CARGO_BIN_EXE_ebbtide");

/// The answers the fake server gives to `PUT /api/v2/drain/<id>`, one per poll (the
/// last one repeated); `{id}` in a `node` field becomes the node asked.
struct Script {
    answers: Vec<Value>,
    polls: AtomicUsize,
}

async fn answer(State(s): State<Arc<Script>>, Path(id): Path<String>) -> Json<Value> {
    let i = s.polls.fetch_add(1, Ordering::SeqCst);
    let mut a = s.answers[i.min(s.answers.len() - 1)].clone();
    if a["node"] == "{id}" {
        a["node"] = Value::String(id);
    }
    Json(a)
}

/// Runs `ebbtide drain n2 --wait` against a server that answers `answers`.
async fn drain_against(answers: Vec<Value>) -> (Output, usize) {
    let script = Arc::new(Script {
        answers,
        polls: AtomicUsize::new(0),
    });
    let app = Router::new()
        .route("/api/v2/drain/{id}", put(answer))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["drain", "n2", "--server", &addr, "--wait"])
            .args(["--interval", "20ms", "--timeout", "5s"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    server.abort();
    (out, script.polls.load(Ordering::SeqCst))
}

fn report(node: &str, remaining: u64, phase: &str) -> Value {
    json!({"node": node, "remaining": remaining, "phase": phase, "reasons": []})
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_wait_exits_0_on_done_and_0_only() {
    let moving = json!({
        "node": "{id}", "remaining": 2, "phase": "moving-work",
        "reasons": [{"reason": "work-on-target", "units": 2, "message": "2 work unit(s) still on target"}],
    });
    let (out, polls) = drain_against(vec![moving, report("{id}", 0, "done")]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("remaining 0, safe to stop"), "{stdout}");
    assert_eq!(polls, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_wait_refuses_zero_with_a_phase_other_than_done() {
    for phase in ["not-requested", "moving-work", "waiting-for-stopping"] {
        let (out, polls) = drain_against(vec![report("{id}", 0, phase)]).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{phase}: {stdout}\n{stderr}");
        assert!(!stdout.contains("safe to stop"), "{stdout}");
        assert!(
            stderr.contains(&format!(
                "DrainReport.remaining: 0 with phase \"{phase}\"; only phase \"done\" may answer 0"
            )),
            "{stderr}"
        );
        assert_eq!(polls, 1, "refused at once, not polled on");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_wait_refuses_an_answer_about_another_node() {
    // Another node's completed drain: 0 and done, but not about n2.
    let (out, _) = drain_against(vec![report("n3", 0, "done")]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(!stdout.contains("safe to stop"), "{stdout}");
    assert!(
        stderr.contains(
            "DrainReport.node: the answer is about node \"n3\", but node \"n2\" was asked"
        ),
        "{stderr}"
    );
}
