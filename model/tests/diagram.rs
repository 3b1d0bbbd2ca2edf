//! The sequence diagram of a path (`Model::as_svg`, `checker::diagram`): on paths we
//! know step by step, every arrow and mark that tells the story is there, and taking a
//! step away takes its arrow away.

use ebbtide_model::checker::{describe, Action, DrainModel, ModelConfig, SysState};
use ebbtide_model::{Guard, Guards};
use stateright::{Checker, HasDiscoveries, Model, Path};

/// The configuration of the guard tests and of the counterexample gallery, offering
/// every loss (the paths drawn here lose messages where no L1 violation follows).
fn config(guards: Guards) -> ModelConfig {
    ModelConfig {
        every_loss: true,
        nodes: 2,
        drains: 1,
        work: 1,
        node_crashes: 1,
        failovers: 1,
        lease_losses: 1,
        guards,
        ..ModelConfig::default()
    }
}

/// The events of a counterexample of the gallery (`specs/counterexamples/<name>.txt`),
/// as `ebbtide check` printed them.
fn gallery_events(name: &str) -> Vec<String> {
    let file = format!(
        "{}/../specs/counterexamples/{name}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    text.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let (n, rest) = l.split_once(". ")?;
            n.parse::<usize>().ok()?;
            Some(rest.to_string())
        })
        .collect()
}

/// The path of `events` (each the text `describe::action` gives the action, perhaps
/// followed by a note in parentheses) from the initial state.
fn path_of(model: &DrainModel, events: &[String]) -> Path<SysState, Action> {
    let init = model.init_states().remove(0);
    let mut state = init.clone();
    let mut actions = Vec::new();
    for e in events {
        let mut enabled = Vec::new();
        model.actions(&state, &mut enabled);
        let a = enabled
            .into_iter()
            .find(|a| {
                let d = describe::action(a);
                *e == d || e.starts_with(&format!("{d} ("))
            })
            .unwrap_or_else(|| panic!("no action {e:?} after {actions:?}"));
        state = model
            .next_state(&state, a.clone())
            .expect("a step that changes the state");
        actions.push(a);
    }
    Path::from_actions(model, init, &actions).expect("a path of the model")
}

fn svg(model: &DrainModel, path: Path<SysState, Action>) -> String {
    model.as_svg(path).expect("an SVG")
}

/// Panics with the diagram when `svg` lacks `needle`.
#[track_caller]
fn has(svg: &str, needle: &str) {
    assert!(svg.contains(needle), "no {needle:?} in\n{svg}");
}

#[track_caller]
fn lacks(svg: &str, needle: &str) {
    assert!(!svg.contains(needle), "{needle:?} in\n{svg}");
}

fn epoch_fencing() -> (DrainModel, Vec<String>) {
    let model = DrainModel::new(config(Guards::default().without(Guard::EpochFencing)));
    (model, gallery_events("epoch-fencing"))
}

/// x of a lifeline and y of a row, as the diagram lays them out (client, then each
/// node's agent and coordinator; rows 34 apart below a 40-pixel header).
fn at(column: u32, row: u32) -> String {
    format!("x1='{}' y1='{}'", 50 + column * 130, 40 + row * 34)
}

#[test]
fn a_counterexample_tells_its_story() {
    let (model, events) = epoch_fencing();
    let svg = svg(&model, path_of(&model, &events));
    // A lifeline per machine, and the client's.
    for name in [
        "client",
        "n0 agent",
        "n0 coordinator",
        "n1 agent",
        "n1 coordinator",
    ] {
        has(&svg, &format!(">{name}</text>"));
    }
    // Messages from their send to their delivery, however many steps apart.
    has(
        &svg,
        "<title>n0 coordinator → n1 agent: Bootstrap(term 1), sent at step 0, delivered at step 4</title>",
    );
    has(
        &svg,
        "<title>n1 agent → n0 coordinator: BootstrapResponse(term 1, epoch 1, alive, running []), \
         sent at step 4, delivered at step 5</title>",
    );
    // The fatal one: a command for epoch 1, sent before the restart, applied after it.
    has(
        &svg,
        "<g class='msg delivered'><title>n0 coordinator → n1 agent: SetNodeLiveness(draining, \
         epoch 1, term 1), sent at step 8, delivered at step 9</title>",
    );
    // The crash and the restart on n1's agent, which is faint in between (row 6).
    has(&svg, "<g class='mark crash'><title>n1 crashes</title>");
    has(&svg, ">✕ crash</text>");
    has(&svg, "<title>n1 restarts as a new incarnation</title>");
    has(&svg, ">restart (epoch 2)</text>");
    has(
        &svg,
        &format!("<line {} x2='440' y2='278' stroke='#bbb'", at(3, 6)),
    );
    has(
        &svg,
        &format!("<line {} x2='440' y2='312' stroke='#2c3e50'", at(3, 7)),
    );
    // The watch, and the client's call with its answer.
    has(&svg, ">watch: term 1, n0</text>");
    has(
        &svg,
        "<title>client → n0 coordinator: DrainNode(n1) at step 8</title>",
    );
    has(
        &svg,
        "<title>n0 coordinator → client: DrainNode(n1) answers remaining 1 \
         (waiting-for-draining) at step 8</title>",
    );
    lacks(&svg, "answer zero");
    // What the last step sent, still in flight; the node's state as it changes.
    has(
        &svg,
        "<title>n1 agent → n0 coordinator: Report(epoch 2, draining), sent at step 9, \
         never delivered (still in flight at step 9)</title>",
    );
    has(&svg, ">e2 draining []</text>");
    // The steps in words.
    has(
        &svg,
        ">9. n0 → n1: SetNodeLiveness(draining, epoch 1, term 1)</text>",
    );
}

/// The diagram follows the path, not a script: without the last delivery there is no
/// arrow for it, only the stub of a message in flight.
#[test]
fn a_step_taken_away_takes_its_arrow() {
    let (model, mut events) = epoch_fencing();
    events.truncate(8);
    let svg = svg(&model, path_of(&model, &events));
    lacks(&svg, "delivered at step 9");
    lacks(&svg, "e2 draining");
    lacks(&svg, "violates");
    has(
        &svg,
        "<g class='msg undelivered'><title>n0 coordinator → n1 agent: SetNodeLiveness(draining, \
         epoch 1, term 1), sent at step 8, never delivered (still in flight at step 8)</title>",
    );
}

/// A lost message stops half way with a cross; a duplicated one is delivered twice
/// from the same send, and what the second delivery sends is a new send.
#[test]
fn losses_and_duplicates() {
    let (model, mut events) = epoch_fencing();
    events.truncate(5);
    for e in [
        "n0 → n0: AddWork(w0, epoch 1, term 1, op 1)",
        "network loses n0 → n0: WorkStatus(w0 running, epoch 1, term 1, op 1)",
        "n0 → n0: AddWork(w0, epoch 1, term 1, op 1)",
    ] {
        events.push(e.to_string());
    }
    let svg = svg(&model, path_of(&model, &events));
    let add = "n0 coordinator → n0 agent: AddWork(w0, epoch 1, term 1, op 1), sent at step 5";
    has(
        &svg,
        &format!("<g class='msg delivered'><title>{add}, delivered at step 6</title>"),
    );
    has(
        &svg,
        &format!(
            "<g class='msg delivered duplicate'><title>{add}, delivered at step 8 (delivery 2)</title>"
        ),
    );
    let status = "n0 agent → n0 coordinator: WorkStatus(w0 running, epoch 1, term 1, op 1)";
    has(
        &svg,
        &format!("<g class='msg lost'><title>{status}, sent at step 6, lost at step 7</title>"),
    );
    has(&svg, "<g class='loss'>");
    has(
        &svg,
        &format!("<title>{status}, sent at step 8, never delivered (still in flight at step 8)"),
    );
    // Both deliveries leave from the send point (n0's coordinator, row 5).
    assert_eq!(
        svg.matches(&format!("<line {} x2='180'", at(2, 5))).count(),
        2,
        "{svg}"
    );
}

/// A drain that completes: the 0 DrainNode answers is marked.
#[test]
fn a_zero_is_marked() {
    let model = DrainModel::new(config(Guards::default()));
    let name = "L2 drain completes";
    let checker = model
        .clone()
        .checker()
        .threads(1)
        .finish_when(HasDiscoveries::AnyOf([name].into()))
        .spawn_bfs()
        .join();
    let path = checker.discovery(name).expect("a drain that completes");
    let svg = svg(&model, path);
    has(
        &svg,
        "<g class='answer zero'><title>n0 coordinator → client: DrainNode(n1) answers 0",
    );
    has(
        &svg,
        "font-weight='bold' fill='#c0392b' class='answer zero'>→ 0</text>",
    );
}

/// The Explorer's view of a step: compact, and about the protocol.
#[test]
fn the_state_view_is_compact() {
    let (model, events) = epoch_fencing();
    let path = path_of(&model, &events).into_vec();
    let (before, last) = &path[path.len() - 2];
    let view = model
        .format_step(before, last.clone().unwrap())
        .expect("a step that changes the state");
    for line in [
        "election: term 1, leader n0; members [n0 n1], fenced []",
        "n0: epoch 1, alive, running [], follows term 1, coordinator of term 1",
        "n1: epoch 2, draining, running [], follows term 1",
        "coordinator on n0 believes: n0=epoch 1 alive []; n1=epoch 1 alive []",
        "  drain session: target n1, remaining 1, waiting-for-draining",
        "client: asked to drain [n1], answered 0 for []",
        "faults: crashes 1/1, failovers 0/1, lease losses 0/1",
        "timers armed: n0 [heartbeat, resend, TTL of n0, TTL of n1]; n1 [heartbeat]",
        "VIOLATED here: S6",
        "  n1 → n0: Report(epoch 2, draining)",
    ] {
        assert!(
            view.lines().any(|l| l.starts_with(line)),
            "no {line:?} in\n{view}"
        );
    }
    assert!(view.lines().count() < 30, "{view}");
}

/// On random walks long enough to drain two nodes and move two units (so that
/// operation ids are renumbered while some of their messages are in flight, and inert
/// messages are collected), every delivery has its arrow and every loss its half
/// arrow, and no message turns up that the diagram did not follow from its send.
/// (Without following the renaming, `canon::canonical_message`, this fails: with one
/// unit and one drain, the walks never renumber an id in flight.)
#[test]
fn every_delivery_of_a_random_walk_has_its_arrow() {
    let model = DrainModel::new(ModelConfig {
        work: 2,
        drains: 2,
        ..config(Guards::default())
    });
    let mut seed: u64 = 0x5eed;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize % n
    };
    for _ in 0..300 {
        let mut state = model.init_states().remove(0);
        let mut path = Vec::new();
        for _ in 0..120 {
            let mut enabled = Vec::new();
            model.actions(&state, &mut enabled);
            let steps: Vec<(Action, SysState)> = enabled
                .into_iter()
                .filter_map(|a| Some((a.clone(), model.next_state(&state, a)?)))
                .collect();
            if steps.is_empty() {
                break;
            }
            // Mostly deliveries and polls, so that the drain gets somewhere.
            let progress: Vec<usize> = (0..steps.len())
                .filter(|&i| matches!(steps[i].0, Action::Deliver { .. } | Action::Poll(_)))
                .collect();
            let i = if !progress.is_empty() && next(4) > 0 {
                progress[next(progress.len())]
            } else {
                next(steps.len())
            };
            let (a, s) = steps[i].clone();
            path.push((state, Some(a)));
            state = s;
        }
        path.push((state, None));
        let svg = ebbtide_model::checker::diagram::svg(&model, &path);
        let count = |f: fn(&Action) -> bool| {
            path.iter()
                .filter(|(_, a)| a.as_ref().is_some_and(f))
                .count()
        };
        let delivered = count(|a| matches!(a, Action::Deliver { .. }));
        let lost = count(|a| matches!(a, Action::Drop { .. }));
        assert_eq!(
            svg.matches(", delivered at step ").count(),
            delivered,
            "{svg}"
        );
        assert_eq!(svg.matches("<g class='msg lost'>").count(), lost, "{svg}");
        assert!(!svg.contains("origin not followed"), "{svg}");
    }
}
