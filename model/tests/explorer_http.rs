//! stateright's Explorer serving the model: a state of a known path, fetched over HTTP
//! as the browser fetches it, carries the sequence diagram of its path (`svg`) and the
//! compact view of the state (`outcome`, what the page shows unless "Current state?"
//! is ticked).

use ebbtide_model::checker::{describe, DrainModel, ModelConfig};
use ebbtide_model::{Guard, Guards};
use serde_json::Value;
use stateright::Model;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The epoch-fencing counterexample of the gallery (`specs/counterexamples/`), in its
/// configuration: n1 restarts, and a command meant for its first incarnation makes the
/// second one drain.
const EVENTS: &[&str] = &[
    "n0 → n0: Bootstrap(term 1)",
    "n0 → n0: BootstrapResponse(term 1, epoch 1, alive, running [])",
    "n1's election watch reports the latest leader",
    "n0 → n1: Bootstrap(term 1)",
    "n1 → n0: BootstrapResponse(term 1, epoch 1, alive, running [])",
    "n1 crashes",
    "n1 restarts as a new incarnation",
    "client calls DrainNode(n1)",
    "n0 → n1: SetNodeLiveness(draining, epoch 1, term 1)",
];

fn config() -> ModelConfig {
    ModelConfig {
        nodes: 2,
        drains: 1,
        work: 1,
        node_crashes: 1,
        failovers: 1,
        lease_losses: 1,
        guards: Guards::default().without(Guard::EpochFencing),
        ..ModelConfig::default()
    }
}

/// The Explorer's address of each step of `EVENTS`: the index of its action among
/// those enabled in the state before it (what the page puts in its URLs).
fn action_indices(model: &DrainModel) -> Vec<usize> {
    let mut state = model.init_states().remove(0);
    let mut indices = Vec::new();
    for e in EVENTS {
        let mut enabled = Vec::new();
        model.actions(&state, &mut enabled);
        let i = enabled
            .iter()
            .position(|a| describe::action(a) == *e)
            .unwrap_or_else(|| panic!("no action {e:?}"));
        state = model.next_state(&state, enabled[i].clone()).unwrap();
        indices.push(i);
    }
    indices
}

/// GET `path` with a plain HTTP/1.1 request; the status code and the body as JSON.
fn get(addr: &str, path: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    let split = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header");
    let head = String::from_utf8_lossy(&reply[..split]).to_ascii_lowercase();
    let body = &reply[split + 4..];
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    // tiny_http may answer chunked; the body of interest is one JSON value. Chunks are
    // cut at byte counts, which may fall inside a character: join them before decoding.
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_vec()
    };
    let body = String::from_utf8(body).expect("a UTF-8 body");
    (
        code,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

fn dechunk(mut s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = s
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size");
        let size = std::str::from_utf8(&s[..eol]).expect("a hex size");
        let n = usize::from_str_radix(size.trim(), 16).expect("a hex size");
        if n == 0 {
            return out;
        }
        let rest = &s[eol + 2..];
        out.extend_from_slice(&rest[..n]);
        s = &rest[n + 2..];
    }
}

#[test]
fn a_state_of_a_known_path_carries_its_diagram_and_compact_view() {
    let model = DrainModel::new(config());
    let indices = action_indices(&model);

    // stateright's serve takes an address and never returns: bind an ephemeral port to
    // learn a free one, free it, and serve there from a thread.
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let served = model.clone();
    let at = addr.clone();
    std::thread::spawn(move || served.checker().threads(1).serve(at));
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "the Explorer never listened");
        std::thread::sleep(Duration::from_millis(20));
    }

    // `/.states/0/i1/…/i8` lists the steps that follow the 8th state; each carries the
    // diagram of its whole path (init, the 8 steps, and itself).
    let (last, before) = indices.split_last().unwrap();
    let url: String = std::iter::once("/.states/0".to_string())
        .chain(before.iter().map(|i| format!("/{i}")))
        .collect();
    let (code, steps) = get(&addr, &url);
    assert_eq!(code, 200, "{steps}");
    let step = steps
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["actionIndex"] == *last)
        .unwrap_or_else(|| panic!("no step {last} in {steps}"));
    assert_eq!(step["action"], EVENTS[8]);

    let svg = step["svg"].as_str().expect("a diagram");
    assert!(svg.starts_with("<svg"), "{svg}");
    for needle in [
        ">n0 coordinator</text>",
        ">n1 agent</text>",
        ">client</text>",
        "<title>n0 coordinator → n1 agent: SetNodeLiveness(draining, epoch 1, term 1), \
         sent at step 8, delivered at step 9</title>",
        "<title>n1 crashes</title>",
        "<title>n0 coordinator → client: DrainNode(n1) answers remaining 1",
    ] {
        assert!(svg.contains(needle), "no {needle:?} in {svg}");
    }

    let view = step["outcome"].as_str().expect("a compact view");
    for needle in [
        "n1: epoch 2, draining, running []",
        "coordinator on n0 believes: n0=epoch 1 alive []; n1=epoch 1 alive []",
        "drain session: target n1, remaining 1",
        "VIOLATED here: S6",
        "in flight (",
    ] {
        assert!(view.contains(needle), "no {needle:?} in {view}");
    }
    // The full Debug print stays available ("Current state?"), and is far longer.
    let full = step["state"].as_str().unwrap();
    assert!(
        full.len() > 5 * view.len(),
        "{} vs {}",
        full.len(),
        view.len()
    );

    // The path one step shorter: its diagram has not delivered the command yet.
    let url: String = std::iter::once("/.states/0".to_string())
        .chain(before[..7].iter().map(|i| format!("/{i}")))
        .collect();
    let (_, steps) = get(&addr, &url);
    let step = steps
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["actionIndex"] == before[7])
        .unwrap();
    let svg = step["svg"].as_str().unwrap();
    assert!(!svg.contains("delivered at step 9"), "{svg}");
    assert!(svg.contains("sent at step 8, never delivered"), "{svg}");
}
