//! Real node processes on loopback: drain with TiCDC's request, SIGKILL and restart of
//! the target mid-drain, and bad input on every route.

mod support;

use ebbtide::client::{request, request_raw, Reply};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};
use support::nodes::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_with_ticdc_request_completes_only_after_stopping() {
    let mut c = Cluster::new("drain", 3);
    c.nodes[2].extra = vec![
        "--exit-when-drained".into(),
        "--exit-linger".into(),
        "2s".into(),
        "--work-stop-delay".into(),
        "20ms".into(),
    ];
    c.start_all();
    wait_all_alive(&c).await;
    let ids = add_work(&c, 1, 20).await;
    assert!(
        !running_on(&c, 2).await.is_empty(),
        "n3 runs some work before the drain"
    );

    let mut replies = Vec::new();
    let zero_at = loop {
        let remaining = ticdc_drain(&c.http(0), "n3").await;
        let at = now_us();
        replies.push(remaining);
        if remaining == 0 {
            break at;
        }
        assert!(replies.len() < 2000, "drain did not finish: {replies:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("replies: {replies:?}");
    assert!(replies.len() > 1, "the first reply is never 0: {replies:?}");
    assert!(
        replies[..replies.len() - 1].iter().all(|r| *r >= 1),
        "{replies:?}"
    );

    // n3 lingers after draining: it is Stopping, runs nothing, and is not healthy.
    let local = get(&c.http(2), "/api/v2/local").await;
    assert_eq!(local.body["liveness"], "stopping", "{:?}", local.body);
    assert_eq!(local.body["running"], json!([]));
    let health = get(&c.http(2), "/api/v1/health").await;
    assert_eq!(health.status, 503, "{:?}", health.body);
    let nodes = get(&c.http(0), "/api/v2/nodes").await;
    let n3 = nodes
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "n3")
        .unwrap();
    assert_eq!(n3["liveness"], "stopping");
    assert_eq!(n3["units"], 0);

    // The drained node exits by itself, with status 0.
    let status = c.wait_exit(2, Duration::from_secs(10));
    assert!(status.success(), "n3 exited with {status}");
    let trace = read_trace(&c.trace_path(2));
    let stopping = stopping_reported_at(&trace, 1).expect("n3 reported Stopping");
    assert!(
        stopping < zero_at,
        "0 answered at {zero_at} before n3 reported Stopping at {stopping}"
    );
    // Once 0, always 0 (C9), even though n3 is gone now.
    assert_eq!(ticdc_drain(&c.http(1), "n3").await, 0);

    assert_units_once(&c, &[0, 1], &ids).await;
    assert_traces_check(&c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_and_restart_mid_drain_needs_the_new_incarnation_drained() {
    let mut c = Cluster::new("restart", 3);
    c.nodes[0].extra = vec!["--drain-batch".into(), "1".into()];
    c.nodes[2].extra = vec!["--work-stop-delay".into(), "150ms".into()];
    c.start_all();
    wait_all_alive(&c).await;
    let ids = add_work(&c, 0, 20).await;
    let on_n3 = running_on(&c, 2).await.len();
    assert!(on_n3 >= 2, "n3 runs {on_n3} units");

    // Ask through n2 (forwarded to the coordinator), until n3 is Draining and moving.
    let mut replies = vec![ticdc_drain(&c.http(1), "n3").await];
    let server = c.http(2);
    until(
        "n3 draining with work moving",
        Duration::from_secs(10),
        || {
            let server = server.clone();
            async move {
                let r = request(&server, "GET", "/api/v2/local", None).await.ok()?;
                (r.body["liveness"] == "draining" && r.body["running"].as_array()?.len() < on_n3)
                    .then_some(())
            }
        },
    )
    .await;
    c.kill(2);

    // While n3 is dead and after its TTL ran out, the drain never answers 0.
    let dead_until = Instant::now() + Duration::from_millis(800);
    while Instant::now() < dead_until {
        let r = ticdc_drain(&c.http(1), "n3").await;
        assert!(r >= 1, "0 while the target is dead: {replies:?} then {r}");
        replies.push(r);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    c.spawn(2, &["--exit-when-drained", "--exit-linger", "2s"]);

    let zero_at = loop {
        let remaining = ticdc_drain(&c.http(1), "n3").await;
        let at = now_us();
        replies.push(remaining);
        if remaining == 0 {
            break at;
        }
        assert!(replies.len() < 3000, "drain did not finish: {replies:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        replies[..replies.len() - 1].iter().all(|r| *r >= 1),
        "{replies:?}"
    );
    eprintln!("replies across the restart: {replies:?}");
    let local = get(&c.http(2), "/api/v2/local").await;
    assert_eq!(
        local.body["epoch"], 2,
        "the new incarnation: {:?}",
        local.body
    );
    assert_eq!(local.body["liveness"], "stopping");

    let status = c.wait_exit(2, Duration::from_secs(10));
    assert!(status.success(), "n3 exited with {status}");
    let trace = read_trace(&c.trace_path(2));
    let stopping = stopping_reported_at(&trace, 2).expect("epoch 2 reported Stopping");
    assert!(
        stopping < zero_at,
        "0 answered at {zero_at} before epoch 2 reported Stopping at {stopping}"
    );
    assert!(
        stopping_reported_at(&trace, 1).is_none(),
        "the first incarnation was killed before it stopped"
    );
    assert_units_once(&c, &[0, 1], &ids).await;
    assert_no_unit_ran_twice(&c, &BTreeMap::new());
    assert_traces_check(&c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_poller_gets_zero_after_the_drained_target_exited() {
    let mut c = Cluster::new("slowpoll", 3);
    c.nodes[2].extra = vec![
        "--exit-when-drained".into(),
        "--exit-linger".into(),
        "100ms".into(),
    ];
    c.start_all();
    wait_all_alive(&c).await;
    add_work(&c, 0, 6).await;
    // One request, then nothing until long after the target exited.
    let first = ticdc_drain(&c.http(1), "n3").await;
    assert!(first >= 1, "{first}");
    let status = c.wait_exit(2, Duration::from_secs(10));
    assert!(status.success(), "n3 exited with {status}");
    // Several liveness TTLs later n3's view would be Unknown: only its leave keeps
    // the completed drain answered 0 (the tombstone).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ticdc_drain(&c.http(1), "n3").await, 0);
    let r = get(&c.http(0), "/api/v2/drain/n3").await;
    assert_eq!(r.body["remaining"], 0, "{:?}", r.body);
    // The capture list no longer names it; every address is an HTTP address.
    let r = get(&c.http(1), "/api/v1/captures").await;
    let list = r.body.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    for (cap, i) in list.iter().zip([0, 1]) {
        assert_eq!(cap["address"], c.http(i), "{cap:?}");
    }
    assert_eq!(list[0]["is_owner"], true);
    assert_traces_check(&c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_answers_as_tiup_reads_it_and_static_resign_is_refused() {
    let mut c = Cluster::new("status", 2);
    c.start_all();
    wait_all_alive(&c).await;
    for (i, owner) in [(0, true), (1, false)] {
        let r = get(&c.http(i), "/api/v1/status").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["id"], c.nodes[i].id, "{:?}", r.body);
        assert_eq!(r.body["is_owner"], owner, "{:?}", r.body);
        assert_eq!(r.body["liveness"], 0, "{:?}", r.body);
        assert_eq!(
            r.body["pid"],
            c.nodes[i].child.as_ref().unwrap().id(),
            "{:?}",
            r.body
        );
        assert!(r.body["version"].is_string(), "{:?}", r.body);
    }
    let r = request(&c.http(1), "POST", "/api/v1/owner/resign", None)
        .await
        .unwrap();
    expect_error(&r, 409, "no-election", "static resign");
    let r = request_raw(
        &c.http(1),
        "PUT",
        "/api/v1/captures/drain",
        r#"{"capture_id":"n1"}"#,
    )
    .await
    .unwrap();
    expect_error(&r, 409, "coordinator-own-node", "drain of the coordinator");
    let msg = r.body["message"].as_str().unwrap();
    assert!(msg.contains("resign it first"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_data_dir_is_refused() {
    let mut c = Cluster::new("dirlock", 2);
    c.start_all();
    wait_all_alive(&c).await;
    let dir = c.dir.join("n2").display().to_string();
    let out = Command::new(BIN)
        .args([
            "node",
            "--id",
            "n2",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--data-dir",
            &dir,
            "--coordinator",
            "n1",
            "--peer",
        ])
        .arg(format!("n1=127.0.0.1:{}", c.nodes[0].grpc))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("already in use by another ebbtide process"),
        "{err}"
    );
    assert!(err.contains(&dir), "{err}");
    // The running n2 is undisturbed.
    wait_all_alive(&c).await;
    assert_eq!(get(&c.http(1), "/api/v2/local").await.body["epoch"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_node_before_it_exits() {
    let mut c = Cluster::new("sigterm", 3);
    c.start_all();
    wait_all_alive(&c).await;
    let ids = add_work(&c, 0, 12).await;
    assert!(!running_on(&c, 2).await.is_empty());
    c.signal(2, "TERM");
    let status = c.wait_exit(2, Duration::from_secs(20));
    assert!(status.success(), "n3 exited with {status}");
    // It ran nothing when it exited: its trace ends Stopping with no unit running.
    let trace = read_trace(&c.trace_path(2));
    assert!(
        stopping_reported_at(&trace, 1).is_some(),
        "n3 reported Stopping before it exited"
    );
    assert_units_once(&c, &[0, 1], &ids).await;
    assert_eq!(
        ticdc_drain(&c.http(0), "n3").await,
        0,
        "its leave keeps the drain answered 0"
    );
    assert_traces_check(&c);
}

/// Expects `status` and a JSON error of `kind`.
fn expect_error(r: &Reply, status: u16, kind: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {:?}", r.body);
    assert_eq!(r.body["error"], kind, "{what}: {:?}", r.body);
    assert!(
        r.body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: no message in {:?}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_every_route_is_a_json_4xx() {
    let mut c = Cluster::new("bad-input", 2);
    c.start_all();
    wait_all_alive(&c).await;
    for via in [0, 1] {
        let s = c.http(via);
        let at = |what: &str| format!("{what} via n{}", via + 1);
        let drain = |body: &'static str| {
            let s = s.clone();
            async move {
                request_raw(&s, "PUT", "/api/v1/captures/drain", body)
                    .await
                    .unwrap()
            }
        };
        expect_error(
            &drain("{nope").await,
            400,
            "malformed-json",
            &at("v1 drain, bad JSON"),
        );
        expect_error(
            &drain("").await,
            400,
            "malformed-json",
            &at("v1 drain, empty body"),
        );
        let r = drain("{}").await;
        expect_error(&r, 400, "invalid-request", &at("v1 drain, no capture_id"));
        assert!(r.body["message"].as_str().unwrap().contains("capture_id"));
        expect_error(
            &drain(r#"{"capture_id": 3}"#).await,
            400,
            "invalid-request",
            &at("v1 drain, capture_id not a string"),
        );
        expect_error(
            &drain(r#"{"capture_id": ""}"#).await,
            400,
            "invalid-request",
            &at("v1 drain, empty capture_id"),
        );
        let r = drain(r#"{"capture_id": "n9"}"#).await;
        expect_error(&r, 404, "unknown-node", &at("v1 drain, unknown node"));
        assert!(r.body["message"].as_str().unwrap().contains("n9"));
        expect_error(
            &drain(r#"{"capture_id": "n1"}"#).await,
            409,
            "coordinator-own-node",
            &at("v1 drain, the coordinator's node"),
        );

        let r = get(&s, "/api/v2/drain/n9").await;
        expect_error(
            &r,
            404,
            "unknown-node",
            &at("v2 drain status, unknown node"),
        );
        let r = get(&s, "/api/v2/drain/n1").await;
        expect_error(
            &r,
            409,
            "coordinator-own-node",
            &at("v2 drain status, own node"),
        );
        let r = request(&s, "PUT", "/api/v2/drain/n9", None).await.unwrap();
        expect_error(&r, 404, "unknown-node", &at("v2 drain, unknown node"));
        let r = get(&s, "/api/v2/drain/n2").await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["phase"], "not-requested");
        assert_eq!(
            r.body["remaining"], 1,
            "never 0 for a node not asked to drain"
        );

        let work = |body: &'static str| {
            let s = s.clone();
            async move { request_raw(&s, "POST", "/api/v2/work", body).await.unwrap() }
        };
        expect_error(
            &work("[").await,
            400,
            "malformed-json",
            &at("work add, bad JSON"),
        );
        expect_error(
            &work(r#"{"work_ids": "w1"}"#).await,
            400,
            "invalid-request",
            &at("work add, not a list"),
        );
        expect_error(
            &work(r#"{"work_ids": []}"#).await,
            400,
            "invalid-request",
            &at("work add, empty list"),
        );
        let r = work(r#"{"work_ids": ["a", ""]}"#).await;
        expect_error(&r, 400, "invalid-request", &at("work add, empty id"));
        assert!(r.body["message"].as_str().unwrap().contains("work_ids[1]"));

        for (method, path) in [
            ("POST", "/api/v1/captures"),
            ("POST", "/api/v1/health"),
            ("GET", "/api/v1/captures/drain"),
            ("DELETE", "/api/v2/nodes"),
            ("DELETE", "/api/v2/work"),
            ("POST", "/metrics"),
        ] {
            let r = request(&s, method, path, None).await.unwrap();
            expect_error(
                &r,
                405,
                "method-not-allowed",
                &at(&format!("{method} {path}")),
            );
        }
        let r = get(&s, "/api/v3/nothing").await;
        expect_error(&r, 404, "not-found", &at("unknown route"));

        // The good answers of the read-only routes.
        let r = get(&s, "/api/v1/captures").await;
        assert_eq!(r.status, 200);
        let owners: Vec<&Value> = r
            .body
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["is_owner"] == true)
            .collect();
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0]["id"], "n1");
        assert!(owners[0]["address"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"));
        assert_eq!(get(&s, "/api/v1/health").await.status, 200);
        let r = get(&s, "/metrics").await;
        assert_eq!(r.status, 200);
        let text = r.body.as_str().unwrap();
        assert!(text.contains("ebbtide_messages_sent_total"), "{text}");
    }
    let text = get(&c.http(0), "/metrics").await.body;
    assert!(
        text.as_str().unwrap().contains("ebbtide_node_liveness{"),
        "{text}"
    );

    // With the coordinator gone, a forwarded request is a clear 503.
    c.kill(0);
    let r = get(&c.http(1), "/api/v2/nodes").await;
    expect_error(
        &r,
        503,
        "coordinator-unavailable",
        "nodes with the coordinator down",
    );
    assert!(r.body["message"].as_str().unwrap().contains("n1"));
}

#[test]
fn bad_flags_are_named_and_exit_2() {
    let run = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let base = [
        "node",
        "--id",
        "n1",
        "--listen",
        "127.0.0.1:1",
        "--http",
        "127.0.0.1:2",
        "--data-dir",
        "/nonexistent-ebbtide",
        "--coordinator",
    ];
    let with = |more: &[&'static str]| {
        let mut v: Vec<&str> = base.to_vec();
        v.extend_from_slice(more);
        v
    };
    let (code, err) = run(&with(&["n1", "--peer", "n2"]));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--peer") && err.contains("<ID>=<host:port>"),
        "{err}"
    );
    let (code, err) = run(&with(&["n7"]));
    assert_eq!(code, Some(2));
    assert!(err.contains("--coordinator n7"), "{err}");
    let (code, err) = run(&with(&["n1", "--heartbeat-interval", "5"]));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--heartbeat-interval") && err.contains("no unit"),
        "{err}"
    );
    let (code, err) = run(&with(&[
        "n1",
        "--liveness-ttl",
        "1s",
        "--heartbeat-interval",
        "2s",
    ]));
    assert_eq!(code, Some(2));
    assert!(err.contains("--liveness-ttl"), "{err}");
    let (code, err) = run(&["drain", "n3", "--server", "https://x:1"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--server"), "{err}");
    let (code, err) = run(&["status", "--server", "127.0.0.1:1"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("error"), "{err}");
}

/// The core/shell contract (`NodeAgent`'s docs): `PersistLeader` is durable before
/// anything after it is applied, and a node that cannot make it durable stops (exit 4)
/// instead of answering a coordinator whose term a restart could forget. (That no
/// output after the failed write is applied, even within the same step, is pinned
/// deterministically by `agent_task`'s unit test; here the process is real.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_persist_its_term_floor_stops_without_answering() {
    let mut c = Cluster::new("persist", 2);
    // The temporary file of the leader record cannot be created: it is a directory.
    std::fs::create_dir_all(c.dir.join("n2").join("leader.json.tmp").join("blocker")).unwrap();
    c.start_all();
    let status = c.wait_exit(1, Duration::from_secs(10));
    assert_eq!(status.code(), Some(4), "{status}");
    let log = std::fs::read_to_string(c.log_path(1)).unwrap();
    assert!(log.contains("cannot persist the leader (term 1)"), "{log}");
    assert!(log.contains("exiting with status 4"), "{log}");
    // n2's core asked to persist term 1 and then to answer the bootstrap request (the
    // trace records what the core asked for, not what the shell applied)...
    let own = read_trace(&c.trace_path(1));
    let bootstrap = own
        .iter()
        .find(|r| r["input"]["Message"]["msg"]["Bootstrap"].is_object())
        .expect("n2 got n1's bootstrap request");
    let outputs = bootstrap["outputs"].as_array().unwrap();
    assert!(outputs[0]["PersistLeader"].is_object(), "{bootstrap}");
    assert!(
        outputs[1]["Send"]["msg"]["BootstrapResponse"].is_object(),
        "{bootstrap}"
    );
    // ...but n1's coordinator never heard from n2, not even a while after it exited:
    // the answer after the failed write was not sent.
    std::thread::sleep(Duration::from_millis(500));
    let trace = read_trace(&c.trace_path(0));
    let from_n2 = trace
        .iter()
        .filter(|r| r["role"] == "coordinator" && r["input"]["Message"]["from"] == "n2")
        .count();
    assert_eq!(from_n2, 0, "n2 answered after its write failed");
}

/// The work-log judge bites: two processes whose records overlap for one unit. (The
/// judge's panic is caught, not expected by `should_panic`, so that the cluster is
/// dropped as in a passing test and removes its directory.)
#[test]
fn the_work_log_judge_catches_a_unit_that_ran_twice() {
    let c = Cluster::new("judge", 2);
    let line = |pid: u32, event: &str, ts: u64| work_log_line(pid, event, "w1", ts);
    std::fs::write(
        c.work_log_path(0),
        [line(1, "start", 10), line(1, "stop", 30)].join("\n"),
    )
    .unwrap();
    std::fs::write(c.work_log_path(1), [line(2, "start", 20)].join("\n")).unwrap();
    let judged = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_no_unit_ran_twice(&c, &BTreeMap::new())
    }));
    let why = judged.expect_err("the judge passed a unit that ran twice");
    let why = (why.downcast_ref::<String>().cloned()).unwrap_or_default();
    assert!(why.contains("unit w1 ran twice"), "{why}");
}

/// ...and accepts a move: the stop before the start elsewhere.
#[test]
fn the_work_log_judge_accepts_a_move() {
    let c = Cluster::new("judge-ok", 2);
    let line = |pid: u32, event: &str, ts: u64| work_log_line(pid, event, "w1", ts);
    std::fs::write(
        c.work_log_path(0),
        [line(1, "start", 10), line(1, "stop", 20)].join("\n"),
    )
    .unwrap();
    std::fs::write(c.work_log_path(1), [line(2, "start", 21)].join("\n")).unwrap();
    let runs = assert_no_unit_ran_twice(&c, &BTreeMap::new());
    assert_eq!(running_now(&runs).get("w1").map(String::as_str), Some("n2"));
}

/// The harness's port choice, which every test of a node process rests on: ports handed
/// out in one test process never repeat and never come from the kernel's ephemeral
/// range (where `bind(0)` in another test, or an outgoing connection, takes them). With
/// ports from `bind(0)`, released (the harness before), 2,000 choices repeat a port
/// about 140 times here and every one lies in that range.
#[test]
fn node_ports_never_repeat_and_lie_outside_the_ephemeral_range() {
    let (lo, hi) = ephemeral_range();
    let ports: Vec<u16> = (0..2_000).map(|_| free_port()).collect();
    let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
    assert_eq!(distinct.len(), ports.len(), "a port was handed out twice");
    for p in ports {
        assert!(
            !(lo..=hi).contains(&u32::from(p)),
            "port {p} lies in the ephemeral range {lo}..={hi}"
        );
    }
}
