//! A path of the model drawn as a sequence diagram (SVG), for stateright's Explorer
//! ([`stateright::Model::as_svg`]) and for the counterexample gallery.
//!
//! # What it shows
//!
//! Time runs down, one row per step (row 0 is the initial state). Every node has two
//! lifelines, because a node runs two state machines that talk to each other over the
//! network like strangers: its **agent** (always there while the process is up) and,
//! while it leads, its **coordinator**. A client lifeline on the left carries the
//! drain calls. A lifeline is drawn solid while its machine exists (the process is up;
//! the node holds leadership) and faint-dotted while it does not, so a crash or a
//! failover is visible as the line going faint, not only as a mark.
//!
//! - **Messages** are arrows from the row of the step that *sent* them to the row of
//!   the step that *delivered* them: commands (`ToNode`) from a coordinator lifeline to
//!   an agent lifeline, reports and acknowledgements from an agent to a coordinator.
//!   The network duplicates, so one send may be delivered several times: every
//!   delivery is an arrow from the same send point (the second and later ones marked
//!   `duplicate`). A message the network loses is a dashed arrow that stops half way,
//!   at the row of the loss, with a cross. A message still in flight at the end of the
//!   path (or collected as inert, see [`super::gc`]) is a short dashed stub at its send
//!   point. A stray bootstrap (`--stray-terms`) starts on the coordinator lifeline of
//!   the node it pretends to come from, at the step it appeared; nobody really sent
//!   it, and its class and title say `stray`.
//! - **Events** of one machine are dots with a short label on its lifeline: timers,
//!   crashes, restarts (with the new epoch), exits, lease losses, membership leaves,
//!   SIGTERM, elections, resignations, election-watch reports.
//! - **Client calls** (DrainNode, DrainStatus) are a pair of horizontal arrows on the
//!   row of the call: the request from the client to the live coordinator, the answer
//!   back (`remaining n`, or an error). An answer of **0**, the one S3 judges, is drawn
//!   bold, in its own colour.
//! - A node's **(epoch, liveness, running units)** is written beside its agent
//!   lifeline whenever it changes, and a coordinator's term when it starts; the full
//!   text of every step is listed on the right, as `ebbtide check` prints it, and the
//!   step after which a safety property (S1–S10) no longer holds says `✕ violates S6`.
//!
//! The picture styles itself: colours and dashes are attributes, on a white
//! background, and it uses none of the `svg-*` class names of stateright's own
//! diagrams, because the Explorer inlines the SVG into its dark page, whose stylesheet
//! paints those classes (and would repaint every arrow one colour).
//!
//! Every arrow and mark carries a `<title>` (a tooltip in a browser) saying what it is
//! in words, e.g. `n0 coordinator → n1 agent: SetNodeLiveness(draining, epoch 1, term
//! 1), sent at step 8, delivered at step 9`; the tests read those.
//!
//! # How sends are found
//!
//! A path is states and actions, not messages: the diagram has to tell which step sent
//! each message it sees delivered. stateright's own `ActorModel::as_svg` re-runs the
//! actor's handler on each step to see what it sends, and remembers the send time per
//! message. Our steps are not only actor handlers (a restart, an election or a client
//! call also send), so here the send of a step is what it *adds to the network*: the
//! step is replayed without garbage collection or canonical renaming
//! (`DrainModel::step`), and every envelope of its result that was not in the network
//! before is a send of this step. (The network is a set: re-sending a message that is
//! still in flight adds nothing, and is not drawn; the arrow starts at its first send.)
//!
//! Two things happen to messages between steps that are not deliveries: collection of
//! inert ones, which ends their stub, and renumbering of operation ids
//! ([`super::canon`]), which changes how an in-flight `AddWork` or `WorkStatus` is
//! spelled in the next state. The tracker applies the same renaming to what it follows
//! ([`super::canon::canonical_message`]), so a message keeps its send row across it.
//! After each step the messages followed must be exactly those the next state holds;
//! one it holds that was not followed would be drawn from that step, labelled `origin
//! not followed` (`tests/diagram.rs` checks on random walks that this never happens,
//! and that every delivery and loss of the path has its arrow).

use super::actor::{Msg, NodeTimer};
use super::canon;
use super::describe;
use super::ids::NodeIx;
use super::system::{Action, DrainModel, SysState};
use std::fmt::Write;

/// Height of one step.
const ROW: u32 = 34;
/// Distance between lifelines.
const COLUMN: u32 = 130;
/// Room above row 0 for the lifeline names.
const TOP: u32 = 40;
/// Room left of the client lifeline.
const LEFT: u32 = 50;
/// Width of the step list on the right.
const STEP_TEXT: u32 = 760;

/// Which lifeline: the client, or one of a node's two machines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lifeline {
    Client,
    Agent(NodeIx),
    Coordinator(NodeIx),
}

impl Lifeline {
    fn column(self) -> u32 {
        match self {
            Lifeline::Client => 0,
            Lifeline::Agent(n) => 1 + 2 * n.0 as u32,
            Lifeline::Coordinator(n) => 2 + 2 * n.0 as u32,
        }
    }

    fn x(self) -> u32 {
        LEFT + self.column() * COLUMN
    }

    fn name(self) -> String {
        match self {
            Lifeline::Client => "client".to_string(),
            Lifeline::Agent(n) => format!("{n} agent"),
            Lifeline::Coordinator(n) => format!("{n} coordinator"),
        }
    }
}

fn y(row: usize) -> u32 {
    TOP + row as u32 * ROW
}

/// Where a message goes from and to: commands run coordinator → agent, everything
/// else agent → coordinator.
fn ends(src: NodeIx, dst: NodeIx, msg: &Msg) -> (Lifeline, Lifeline) {
    match msg {
        Msg::ToNode(_) => (Lifeline::Coordinator(src), Lifeline::Agent(dst)),
        Msg::ToCoord(_) | Msg::Report { .. } => (Lifeline::Agent(src), Lifeline::Coordinator(dst)),
    }
}

/// A message the diagram follows from its send.
struct Tracked {
    src: NodeIx,
    dst: NodeIx,
    /// As the current state spells it (operation ids renamed as the path renames them).
    msg: Msg,
    /// As it was sent: what its labels say.
    label: String,
    sent: usize,
    deliveries: usize,
    stray: bool,
}

/// What the diagram draws, before it is drawn.
#[derive(Default)]
struct Drawing {
    body: String,
    labels: String,
}

impl Drawing {
    fn arrow(&mut self, class: &str, from: (u32, u32), to: (u32, u32), title: &str) {
        let dash = if class.contains("lost") || class.contains("answer") {
            " stroke-dasharray='6 4'"
        } else {
            ""
        };
        let colour = if class.contains("zero") {
            "#c0392b"
        } else if class.contains("duplicate") {
            "#8e44ad"
        } else if class.contains("lost") {
            "#999"
        } else {
            "#2c3e50"
        };
        let width = if class.contains("zero") { "3" } else { "1.5" };
        let marker = if class.contains("lost") {
            ""
        } else {
            " marker-end='url(#arrow)'"
        };
        let _ = writeln!(
            self.body,
            "<g class='{class}'><title>{}</title><line x1='{}' y1='{}' x2='{}' y2='{}' \
             stroke='{colour}' stroke-width='{width}'{dash}{marker} /></g>",
            esc(title),
            from.0,
            from.1,
            to.0,
            to.1
        );
    }

    fn mark(&mut self, class: &str, line: Lifeline, row: usize, text: &str, title: &str) {
        let (x, y) = (line.x(), y(row));
        let colour = match class {
            "mark crash" | "mark lease-loss" => "#c0392b",
            "mark restart" | "mark elected" => "#27ae60",
            "mark timer" => "#2980b9",
            _ => "#7f8c8d",
        };
        let _ = writeln!(
            self.body,
            "<g class='{class}'><title>{}</title><circle cx='{x}' cy='{y}' r='6' fill='{colour}' \
             /></g>",
            esc(title)
        );
        let _ = writeln!(
            self.labels,
            "<text x='{}' y='{}' font-size='11' fill='{colour}' class='mark-label'>{}</text>",
            x + 9,
            y + 4,
            esc(text)
        );
    }

    fn note(&mut self, line: Lifeline, row: usize, text: &str) {
        let _ = writeln!(
            self.labels,
            "<text x='{}' y='{}' font-size='10' fill='#555' text-anchor='end' class='state-note'>{}</text>",
            line.x() - 4,
            y(row) - 8,
            esc(text)
        );
    }
}

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
}

/// The envelopes of a state's network.
fn envelopes(s: &SysState) -> Vec<(NodeIx, NodeIx, Msg)> {
    // (In flight is sorted by source, destination and message.)
    s.network
        .iter()
        .map(|e| (NodeIx::from(e.src), NodeIx::from(e.dst), e.msg.clone()))
        .collect()
}

/// What `node`'s agent is, in a few words: `e1 alive [w0]`, or `down`.
fn agent_note(s: &SysState, node: NodeIx) -> String {
    if !DrainModel::is_up(s, node) {
        return "down".to_string();
    }
    let a = &DrainModel::node(s, node).agent;
    let units: Vec<String> = a.running().map(|w| w.to_string()).collect();
    format!("e{} {} [{}]", a.epoch(), a.liveness(), units.join(" "))
}

/// The term of `node`'s coordinator, if it has a live one.
fn coordinator_term(s: &SysState, node: NodeIx) -> Option<u64> {
    if !DrainModel::is_up(s, node) {
        return None;
    }
    DrainModel::node(s, node)
        .coordinator
        .as_ref()
        .map(|c| c.term())
}

/// The answer of a client call in `state` (before the call): `remaining n`, or the
/// error; and whether it is a 0.
fn answer(state: &SysState, action: &Action) -> Option<(NodeIx, String, bool)> {
    let (host, c) = DrainModel::coordinator(state)?;
    let result = match action {
        Action::Poll(n) => c.clone().drain_node(n, &mut Vec::new()),
        Action::Status(n) => c.drain_status(n),
        _ => return None,
    };
    Some(match result {
        Ok(r) if r.remaining == 0 => (host, "0".to_string(), true),
        Ok(r) => (
            host,
            format!("remaining {} ({})", r.remaining, r.phase),
            false,
        ),
        Err(e) => (host, format!("error: {e}"), false),
    })
}

/// The sequence diagram of `path` (states and the actions between them, as
/// [`stateright::Path::into_vec`] gives them).
pub fn svg(model: &DrainModel, path: &[(SysState, Option<Action>)]) -> String {
    let nodes: Vec<NodeIx> = (0..model.cfg.nodes).map(NodeIx).collect();
    let steps = path.len().saturating_sub(1);
    let mut d = Drawing::default();

    // ----- messages and events, step by step ------------------------------------------
    let mut tracked: Vec<Tracked> = Vec::new();
    if let Some((init, _)) = path.first() {
        for (src, dst, msg) in envelopes(init) {
            tracked.push(Tracked {
                label: describe::message(&msg),
                src,
                dst,
                msg,
                sent: 0,
                deliveries: 0,
                stray: false,
            });
        }
    }
    for (i, window) in path.windows(2).enumerate() {
        let row = i + 1;
        let (state, Some(action)) = &window[0] else {
            continue;
        };
        let next = &window[1].0;
        events(&mut d, state, next, action, row);

        // Deliveries and losses of followed messages.
        match action {
            Action::Deliver { src, dst, msg } => {
                if let Some(t) = tracked
                    .iter_mut()
                    .find(|t| t.src == *src && t.dst == *dst && t.msg == *msg)
                {
                    t.deliveries += 1;
                    let (from, to) = ends(t.src, t.dst, &t.msg);
                    let class = match (t.deliveries > 1, t.stray) {
                        (false, false) => "msg delivered",
                        (true, false) => "msg delivered duplicate",
                        (false, true) => "msg delivered stray",
                        (true, true) => "msg delivered duplicate stray",
                    };
                    let again = if t.deliveries > 1 {
                        format!(" (delivery {})", t.deliveries)
                    } else {
                        String::new()
                    };
                    let title = format!(
                        "{} → {}: {}, sent at step {}, delivered at step {row}{again}",
                        from.name(),
                        to.name(),
                        t.label,
                        t.sent
                    );
                    d.arrow(class, (from.x(), y(t.sent)), (to.x(), y(row)), &title);
                }
            }
            Action::Drop { src, dst, msg } => {
                if let Some(k) = tracked
                    .iter()
                    .position(|t| t.src == *src && t.dst == *dst && t.msg == *msg)
                {
                    let t = tracked.remove(k);
                    let (from, to) = ends(t.src, t.dst, &t.msg);
                    let mid = ((from.x() + to.x()) / 2, y(row));
                    let title = format!(
                        "{} → {}: {}, sent at step {}, lost at step {row}",
                        from.name(),
                        to.name(),
                        t.label,
                        t.sent
                    );
                    d.arrow("msg lost", (from.x(), y(t.sent)), mid, &title);
                    let _ = writeln!(
                        d.body,
                        "<g class='loss'><title>{}</title><path d='M {} {} l 8 8 m 0 -8 l -8 8' \
                         stroke='#c0392b' stroke-width='2' /></g>",
                        esc(&title),
                        mid.0 - 4,
                        mid.1 - 4
                    );
                }
            }
            _ => {}
        }

        // Sends: what the step adds to the network, before collection and renaming.
        if let Some(raw) = model.step(state, action.clone()) {
            let before = envelopes(state);
            for (src, dst, msg) in envelopes(&raw) {
                if before
                    .iter()
                    .any(|b| b.0 == src && b.1 == dst && b.2 == msg)
                {
                    continue;
                }
                let stray = matches!(action, Action::Stray { .. });
                let label = describe::message(&msg);
                tracked.push(Tracked {
                    label: if stray {
                        format!("stray {label}")
                    } else {
                        label
                    },
                    src,
                    dst,
                    msg,
                    sent: row,
                    deliveries: 0,
                    stray,
                });
            }
            // Follow the messages into the next state's spelling: renaming renumbers
            // operation ids (as `next_state` does, after collection).
            let mut collected = raw;
            if model.cfg.gc {
                super::gc::collect(model, &mut collected);
            }
            for t in tracked.iter_mut() {
                t.msg = canon::canonical_message(&collected, &t.msg);
            }
        }
        // What the next state no longer holds was collected as inert: its stub ends here.
        let held = envelopes(next);
        let (kept, gone): (Vec<Tracked>, Vec<Tracked>) = tracked.into_iter().partition(|t| {
            held.iter()
                .any(|h| h.0 == t.src && h.1 == t.dst && h.2 == t.msg)
        });
        tracked = kept;
        for t in gone {
            stub(&mut d, &t, "collected as inert", row);
        }
        // What it holds that the tracker did not follow (a bug of this module if it ever
        // happens): drawn from here, and said so.
        for (src, dst, msg) in held {
            if !tracked
                .iter()
                .any(|t| t.src == src && t.dst == dst && t.msg == msg)
            {
                tracked.push(Tracked {
                    label: format!("{} (origin not followed)", describe::message(&msg)),
                    src,
                    dst,
                    msg,
                    sent: row,
                    deliveries: 0,
                    stray: false,
                });
            }
        }
    }
    for t in &tracked {
        if t.deliveries == 0 {
            stub(&mut d, t, "still in flight", steps);
        }
    }

    // ----- lifelines and state notes ---------------------------------------------------
    let mut lines = String::new();
    let columns = 1 + 2 * nodes.len() as u32;
    let width = LEFT + columns * COLUMN + STEP_TEXT;
    let height = y(steps) + 2 * ROW;
    let mut all = vec![Lifeline::Client];
    for &n in &nodes {
        all.push(Lifeline::Agent(n));
        all.push(Lifeline::Coordinator(n));
    }
    for line in &all {
        let _ = writeln!(
            lines,
            "<text x='{}' y='{}' font-size='12' font-weight='bold' text-anchor='middle' \
             class='lifeline-name'>{}</text>",
            line.x(),
            TOP - 22,
            line.name()
        );
    }
    let mut last_note: Vec<Option<String>> = vec![None; nodes.len()];
    let mut last_term: Vec<Option<u64>> = vec![None; nodes.len()];
    for (row, (state, _)) in path.iter().enumerate() {
        let bottom = if row == steps {
            y(row) + ROW / 2
        } else {
            y(row + 1)
        };
        let _ = writeln!(
            lines,
            "<line x1='{x}' y1='{}' x2='{x}' y2='{bottom}' stroke='#2c3e50' stroke-width='2' \
             class='lifeline' />",
            y(row),
            x = Lifeline::Client.x()
        );
        for &n in &nodes {
            let up = DrainModel::is_up(state, n);
            let term = coordinator_term(state, n);
            for (line, alive) in [
                (Lifeline::Agent(n), up),
                (Lifeline::Coordinator(n), term.is_some()),
            ] {
                let style = if alive {
                    "stroke='#2c3e50' stroke-width='2'"
                } else {
                    "stroke='#bbb' stroke-width='1' stroke-dasharray='2 4'"
                };
                let _ = writeln!(
                    lines,
                    "<line x1='{x}' y1='{}' x2='{x}' y2='{bottom}' {style} class='lifeline {}' />",
                    y(row),
                    if alive { "active" } else { "inactive" },
                    x = line.x()
                );
            }
            let note = agent_note(state, n);
            if last_note[n.ix()].as_deref() != Some(note.as_str()) {
                d.note(Lifeline::Agent(n), row + 1, &note);
                last_note[n.ix()] = Some(note);
            }
            if term.is_some() && last_term[n.ix()] != term {
                d.note(
                    Lifeline::Coordinator(n),
                    row + 1,
                    &format!("term {}", term.unwrap_or_default()),
                );
            }
            last_term[n.ix()] = term;
        }
    }

    // ----- the steps in words ------------------------------------------------------------
    let text_x = LEFT + columns * COLUMN - COLUMN / 2;
    let mut words = String::new();
    let _ = writeln!(
        words,
        "<text x='{text_x}' y='{}' font-size='11' fill='#555'>0. initial state</text>",
        y(0) + 4
    );
    let mut violated_before = violated(model, path.first().map(|(s, _)| s));
    for (i, (_, action)) in path.iter().enumerate() {
        let Some(a) = action else { continue };
        let _ = writeln!(
            words,
            "<text x='{text_x}' y='{}' font-size='11' fill='#333' class='step-text'>{}. {}</text>",
            y(i + 1) + 4,
            i + 1,
            esc(&describe::action(a))
        );
        // The step that breaks a safety property says so, in red, under its text.
        let now = violated(model, path.get(i + 1).map(|(s, _)| s));
        let new: Vec<&str> = now
            .iter()
            .filter(|p| !violated_before.contains(p))
            .copied()
            .collect();
        if !new.is_empty() {
            let _ = writeln!(
                words,
                "<text x='{}' y='{}' font-size='11' font-weight='bold' fill='#c0392b' \
                 class='violation'>✕ violates {}</text>",
                text_x + 14,
                y(i + 1) + 17,
                new.join(" ")
            );
        }
        violated_before = now;
    }

    format!(
        "<svg version='1.1' xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' \
         viewBox='0 0 {width} {height}' font-family='sans-serif' class='ebbtide-sequence'>\n\
         <defs><marker id='arrow' markerWidth='10' markerHeight='8' refX='10' refY='4' \
         orient='auto' markerUnits='userSpaceOnUse'><polygon points='0 0, 10 4, 0 8' fill='#2c3e50' /></marker></defs>\n\
         <rect width='100%' height='100%' fill='white' />\n{lines}{}{}{words}</svg>\n",
        d.body, d.labels
    )
}

/// The safety properties (`always`, S…) that `state` violates.
pub fn violated(model: &DrainModel, state: Option<&SysState>) -> Vec<&'static str> {
    let Some(s) = state else { return Vec::new() };
    super::properties::catalogue()
        .into_iter()
        .filter(|p| p.name.starts_with('S') && p.expectation == stateright::Expectation::Always)
        .filter(|p| !(p.condition)(model, s))
        .map(|p| p.name)
        .collect()
}

/// A short dashed stub at the send point of a message no delivery reached.
fn stub(d: &mut Drawing, t: &Tracked, why: &str, row: usize) {
    let (from, to) = ends(t.src, t.dst, &t.msg);
    let sign: i64 = if to.x() >= from.x() { 1 } else { -1 };
    let len = (COLUMN as i64 / 3).min((to.x() as i64 - from.x() as i64).abs().max(20));
    let end_x = (from.x() as i64 + sign * len) as u32;
    if t.deliveries > 0 {
        // Delivered before: its arrows say so; nothing more to draw.
        return;
    }
    let title = format!(
        "{} → {}: {}, sent at step {}, never delivered ({why} at step {row})",
        from.name(),
        to.name(),
        t.label,
        t.sent
    );
    let stray = if t.stray { " stray" } else { "" };
    let _ = writeln!(
        d.body,
        "<g class='msg undelivered{stray}'><title>{}</title><line x1='{}' y1='{}' x2='{end_x}' y2='{}' \
         stroke='#999' stroke-width='1.5' stroke-dasharray='3 3' /></g>",
        esc(&title),
        from.x(),
        y(t.sent),
        y(t.sent) + ROW / 3
    );
}

/// Marks of the events of one step that are not deliveries.
fn events(d: &mut Drawing, state: &SysState, next: &SysState, action: &Action, row: usize) {
    let coordinates = |n: NodeIx| coordinator_term(state, n).is_some();
    let said = describe::action(action);
    match action {
        Action::Deliver { .. } | Action::Drop { .. } => {}
        Action::Timer { node, timer } => {
            let (line, text) = match timer {
                NodeTimer::Heartbeat => (Lifeline::Agent(*node), "heartbeat timer".to_string()),
                NodeTimer::Resend => (Lifeline::Coordinator(*node), "resend timer".to_string()),
                NodeTimer::Ttl(n) => (Lifeline::Coordinator(*node), format!("TTL of {n} expires")),
            };
            d.mark("mark timer", line, row, &text, &said);
        }
        Action::Crash(n) => {
            d.mark("mark crash", Lifeline::Agent(*n), row, "✕ crash", &said);
            if coordinates(*n) {
                d.mark(
                    "mark crash",
                    Lifeline::Coordinator(*n),
                    row,
                    "✕ crash",
                    &said,
                );
            }
        }
        Action::Restart(n) => {
            let epoch = DrainModel::node(next, *n).agent.epoch();
            let text = format!("restart (epoch {epoch})");
            d.mark("mark restart", Lifeline::Agent(*n), row, &text, &said);
        }
        Action::Exit(n) => d.mark("mark exit", Lifeline::Agent(*n), row, "exit", &said),
        Action::LeaseLoss(n) => {
            d.mark(
                "mark lease-loss",
                Lifeline::Agent(*n),
                row,
                "lease lost",
                &said,
            );
            if coordinates(*n) {
                let text = "leadership lost";
                d.mark(
                    "mark lease-loss",
                    Lifeline::Coordinator(*n),
                    row,
                    text,
                    &said,
                );
            }
        }
        Action::Leave(n) => d.mark("mark leave", Lifeline::Agent(*n), row, "leaves", &said),
        Action::WatchStale(n) => {
            let h = &state.history;
            let text = format!("watch (lagging): term {}, {}", h.prev_term, h.prev_leader);
            d.mark("mark watch", Lifeline::Agent(*n), row, &text, &said);
        }
        Action::ElectDeclined(n) => {
            let text = format!("won term {}, resigns at once", state.history.term + 1);
            d.mark("mark resign", Lifeline::Agent(*n), row, &text, &said);
        }
        Action::ElectFails(n) => {
            let text = format!("won term {}, persist failed: exits", state.history.term + 1);
            d.mark("mark crash", Lifeline::Agent(*n), row, &text, &said);
        }
        Action::NotifyJoin(n) | Action::NotifyLeave(n) | Action::Announce(n) => {
            if let Some((host, _)) = DrainModel::coordinator(state) {
                let what = match action {
                    Action::NotifyJoin(_) => format!("watch: {n} joined"),
                    Action::Announce(_) => format!("announce: {n} started"),
                    _ => format!("watch: {n} left"),
                };
                d.mark("mark watch", Lifeline::Coordinator(host), row, &what, &said);
            }
        }
        Action::CoordinatorCrash(n) => d.mark(
            "mark crash",
            Lifeline::Coordinator(*n),
            row,
            "✕ failover",
            &said,
        ),
        Action::Resign(n) => d.mark(
            "mark resign",
            Lifeline::Coordinator(*n),
            row,
            "resigns",
            &said,
        ),
        Action::GracefulLeave(n) => {
            d.mark("mark leave", Lifeline::Agent(*n), row, "SIGTERM", &said);
            if coordinates(*n) {
                d.mark(
                    "mark resign",
                    Lifeline::Coordinator(*n),
                    row,
                    "resigns",
                    &said,
                );
            }
        }
        Action::Elect(n) | Action::ElectView { node: n, .. } => {
            let text = format!("elected, term {}", state.history.term + 1);
            d.mark("mark elected", Lifeline::Coordinator(*n), row, &text, &said);
        }
        Action::Watch(n) => {
            let h = &state.history;
            let text = format!("watch: term {}, {}", h.term, h.leader);
            d.mark("mark watch", Lifeline::Agent(*n), row, &text, &said);
        }
        Action::Stray { .. } => {}
        Action::AddWork => {
            if let Some((host, _)) = DrainModel::coordinator(state) {
                let unit = state.history.promised;
                let (c, h) = (Lifeline::Client.x(), Lifeline::Coordinator(host).x());
                let title =
                    format!("client → {host} coordinator: adds work unit w{unit} at step {row}");
                d.arrow("call", (c, y(row)), (h, y(row)), &title);
            }
        }
        Action::Poll(n) | Action::Status(n) => {
            let call = match action {
                Action::Poll(_) => format!("DrainNode({n})"),
                _ => format!("DrainStatus({n})"),
            };
            let Some((host, reply, zero)) = answer(state, action) else {
                return;
            };
            let (c, h) = (Lifeline::Client.x(), Lifeline::Coordinator(host).x());
            let title = format!("client → {host} coordinator: {call} at step {row}");
            d.arrow("call", (c, y(row) - 5), (h, y(row) - 5), &title);
            let class = if zero { "answer zero" } else { "answer" };
            let title =
                format!("{host} coordinator → client: {call} answers {reply} at step {row}");
            d.arrow(class, (h, y(row) + 5), (c, y(row) + 5), &title);
            let (size, weight, colour) = if zero {
                (14, "bold", "#c0392b")
            } else {
                (10, "normal", "#333")
            };
            let _ = writeln!(
                d.labels,
                "<text x='{}' y='{}' font-size='10' fill='#333'>{}</text>\n\
                 <text x='{}' y='{}' font-size='{size}' font-weight='{weight}' fill='{colour}' \
                 class='{class}'>{}</text>",
                c + 14,
                y(row) - 8,
                esc(&call),
                c + 14,
                y(row) + 18,
                esc(&format!("→ {reply}"))
            );
        }
    }
}
