//! Cross-process safety checks on the merged trace of every process.
//!
//! **Order.** Steps are ordered by happens-before: each process's own order (`seq`), and
//! a message's send before its receipt. A receipt (`{"Message": {"from", "msg"}}`) is
//! matched to the *earliest* send of the same message (same sender node and role, same
//! receiver, identical content) in the trace. Whichever send it really was, that
//! earliest one happened before it, so every ordering the checks rely on is certain;
//! the price is that an ordering only a later identical send would prove is not seen
//! (heartbeats repeat; a work acknowledgement or a liveness answer carries its epoch,
//! term and operation, so the answers the checks rely on are rarely ambiguous).
//! Identical messages from two processes do not arise: an agent's carry its epoch (one
//! process per epoch, which the replay checks), a coordinator's its term. Membership
//! events, elections and timers carry no order between processes.
//!
//! **S5 (single host), as checked:** a unit never runs on two agent incarnations at
//! once *provably*: for two runs of one unit (a `StartWork` to its `StopWork`, or to the
//! incarnation's last logged step if it never logged one: a crash), each start happens
//! before the other's end. Runs that only may overlap (an incarnation killed while it
//! ran the unit, whose death the trace does not show) are not flagged. A run is the
//! core's decision (its `StartWork`/`StopWork` outputs), not the workload hooks' own
//! timing, which the tests' work logs judge.
//!
//! **S3 (no premature zero), as checked:** every DrainNode and DrainStatus answer with
//! `remaining: 0` for node `t` comes after (happens-before) a step at which an agent
//! incarnation of `t` was Stopping and running nothing (replayed state). Not checked:
//! whether a newer incarnation of `t` had started by then; the "no operation in
//! flight" clause (a belief of the coordinator, which replay reproduces but this check
//! does not judge).
//!
//! **Term floor kept (the core's call contract, item 4), as checked:** once a
//! coordinator received a `BootstrapResponse` for term `T` from incarnation `e` of node
//! `n`, every agent incarnation of `n` with an epoch above `e` starts (`Start`) from a
//! persisted leader of term `T` or more. The agent persists `T` before that answer, and
//! the shell must make it durable before it sends the answer: a coordinator that heard
//! it counts on `n` following `T`, also after a restart (it does not ask again), and a
//! node that forgot `T` ignores that coordinator's commands for good. Receipts, not the
//! agent's logged sends, are what count: a step's outputs are logged before they are
//! applied, so a crash part-way may lose a logged send with its persist.

use super::parse::{Process, Role};
use super::replay::Replayed;
use super::{Check, Failure};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// What the safety checks looked at.
#[derive(Debug, Default)]
pub struct Checked {
    /// Messages received, each matched to a send.
    pub receipts: usize,
    /// Runs of a unit on an agent (StartWork to StopWork or crash).
    pub runs: usize,
    /// DrainNode and DrainStatus answers with `remaining: 0`.
    pub zeros: usize,
}

/// A step: (process, index in its `seq` order).
type Step = (usize, usize);

/// Vector clocks: `vc[p][i][q]` = how many of process `q`'s steps happen before or at
/// step `(p, i)`.
struct Clocks {
    vc: Vec<Vec<Vec<u32>>>,
}

impl Clocks {
    /// Whether `a` happens before `b` (or is `b`).
    fn before(&self, a: Step, b: Step) -> bool {
        if a.0 == b.0 {
            a.1 <= b.1
        } else {
            self.vc[b.0][b.1][a.0] as usize > a.1
        }
    }
}

/// Runs every check; the first failure found is returned.
pub fn check(processes: &[Process], replayed: &Replayed) -> Result<Checked, Box<Failure>> {
    let mut checked = Checked::default();
    let clocks = clocks(processes, &mut checked)?;
    single_host(processes, &clocks, &mut checked)?;
    no_premature_zero(processes, replayed, &clocks, &mut checked)?;
    floor_kept(processes)?;
    Ok(checked)
}

fn other(role: Role) -> Role {
    match role {
        Role::Agent => Role::Coordinator,
        Role::Coordinator => Role::Agent,
    }
}

type MsgKey = (bool, String, String, String);

fn key(sender: Role, from: &str, to: &str, msg: &Value) -> MsgKey {
    (
        sender == Role::Agent,
        from.to_owned(),
        to.to_owned(),
        msg.to_string(),
    )
}

/// Happens-before, as vector clocks: each receipt after the earliest matching send.
fn clocks(processes: &[Process], checked: &mut Checked) -> Result<Clocks, Box<Failure>> {
    let mut sends: HashMap<MsgKey, Step> = HashMap::new();
    for (p, proc_) in processes.iter().enumerate() {
        for (i, r) in proc_.records.iter().enumerate() {
            for o in &r.outputs {
                if let Some(s) = o.get("Send") {
                    let k = key(r.role, &r.node, s["to"].as_str().unwrap_or(""), &s["msg"]);
                    sends.entry(k).or_insert((p, i));
                }
            }
        }
    }
    // The send each step waits for, if it is a receipt.
    let mut waits: Vec<Vec<Option<Step>>> = Vec::new();
    for proc_ in processes {
        let mut w = Vec::with_capacity(proc_.records.len());
        for r in &proc_.records {
            let Some(m) = r.input.get("Message") else {
                w.push(None);
                continue;
            };
            let from = m["from"].as_str().unwrap_or("");
            match sends.get(&key(other(r.role), from, &r.node, &m["msg"])) {
                Some(s) => w.push(Some(*s)),
                None => {
                    let what = format!(
                        "{} on {} received a message from {from} that no traced process sent",
                        role(r.role),
                        r.node
                    );
                    return Err(Box::new(Failure::new(Check::Provenance, r, what)));
                }
            }
            checked.receipts += 1;
        }
        waits.push(w);
    }
    // Kahn's order over the processes' steps and the receipts' sends.
    let n = processes.len();
    let mut vc: Vec<Vec<Vec<u32>>> = processes
        .iter()
        .map(|p| Vec::with_capacity(p.records.len()))
        .collect();
    let mut progress = true;
    while progress {
        progress = false;
        for p in 0..n {
            while vc[p].len() < processes[p].records.len() {
                let i = vc[p].len();
                let mut clock = match vc[p].last() {
                    Some(c) => c.clone(),
                    None => vec![0; n],
                };
                if let Some((q, j)) = waits[p][i] {
                    let Some(sent) = vc[q].get(j) else { break };
                    for (c, s) in clock.iter_mut().zip(sent) {
                        *c = (*c).max(*s);
                    }
                }
                clock[p] = i as u32 + 1;
                vc[p].push(clock);
                progress = true;
            }
        }
    }
    if let Some(p) = (0..n).find(|p| vc[*p].len() < processes[*p].records.len()) {
        let r = &processes[p].records[vc[p].len()];
        let what = format!(
            "{} on {} received a message whose earliest send comes after this receipt (steps out of order)",
            role(r.role),
            r.node
        );
        return Err(Box::new(Failure::new(Check::Causality, r, what)));
    }
    Ok(Clocks { vc })
}

fn role(r: Role) -> &'static str {
    match r {
        Role::Agent => "the agent",
        Role::Coordinator => "the coordinator",
    }
}

/// One run of a unit on one agent incarnation: its start step and its end step (the
/// StopWork, or the incarnation's last logged step if `stopped` is false).
struct Run {
    start: Step,
    end: Step,
    stopped: bool,
}

/// S5, as the trace shows it: no two runs of a unit provably overlap.
fn single_host(
    processes: &[Process],
    clocks: &Clocks,
    checked: &mut Checked,
) -> Result<(), Box<Failure>> {
    let mut runs: BTreeMap<String, Vec<Run>> = BTreeMap::new();
    for (p, proc_) in processes.iter().enumerate() {
        let mut open: BTreeMap<String, usize> = BTreeMap::new();
        let mut last = None;
        for (i, r) in proc_.records.iter().enumerate() {
            if r.role != Role::Agent {
                continue;
            }
            last = Some(i);
            for o in &r.outputs {
                if let Some(u) = o.get("StartWork").and_then(Value::as_str) {
                    open.insert(u.to_owned(), i);
                } else if let Some(u) = o.get("StopWork").and_then(Value::as_str) {
                    if let Some(s) = open.remove(u) {
                        runs.entry(u.to_owned()).or_default().push(Run {
                            start: (p, s),
                            end: (p, i),
                            stopped: true,
                        });
                    }
                }
            }
        }
        for (u, s) in open {
            runs.entry(u).or_default().push(Run {
                start: (p, s),
                end: (p, last.unwrap_or(s)),
                stopped: false,
            });
        }
    }
    for (unit, rs) in &runs {
        checked.runs += rs.len();
        for (k, a) in rs.iter().enumerate() {
            for b in &rs[k + 1..] {
                if a.start.0 != b.start.0
                    && clocks.before(a.start, b.end)
                    && clocks.before(b.start, a.end)
                {
                    let (first, second) = if clocks.before(a.start, b.start) {
                        (a, b)
                    } else {
                        (b, a)
                    };
                    let r1 = &processes[first.start.0].records[first.start.1];
                    let r2 = &processes[second.start.0].records[second.start.1];
                    let end = &processes[first.end.0].records[first.end.1];
                    let until = if first.stopped {
                        format!("until its StopWork at {}", end.place())
                    } else {
                        format!("through its last logged step at {}", end.place())
                    };
                    let what = format!(
                        "unit {unit} started on {} (epoch {}) while {} (epoch {}) ran it: started at {}, {until}",
                        r2.node, r2.epoch, r1.node, r1.epoch, r1.place()
                    );
                    return Err(Box::new(Failure::new(Check::SingleHost, r2, what)));
                }
            }
        }
    }
    Ok(())
}

/// S3, as the trace shows it: every `remaining: 0` after a drained step of that node.
fn no_premature_zero(
    processes: &[Process],
    replayed: &Replayed,
    clocks: &Clocks,
    checked: &mut Checked,
) -> Result<(), Box<Failure>> {
    // Each agent incarnation's first drained step (drained stays drained: a Stopping
    // agent starts nothing).
    let mut drained_at: BTreeMap<&str, Vec<Step>> = BTreeMap::new();
    for (p, proc_) in processes.iter().enumerate() {
        let d = replayed.drained.get(p).map(Vec::as_slice).unwrap_or(&[]);
        if let Some(i) = d.iter().position(|x| *x) {
            drained_at
                .entry(proc_.records[i].node.as_str())
                .or_default()
                .push((p, i));
        }
    }
    for (p, proc_) in processes.iter().enumerate() {
        for (i, r) in proc_.records.iter().enumerate() {
            let answers = r.input.get("DrainNode").or(r.input.get("DrainStatus"));
            if r.role != Role::Coordinator || answers.is_none() {
                continue;
            }
            let Some(report) = r.outputs.last().and_then(|a| a.get("Answer")?.get("Ok")) else {
                continue;
            };
            if report["remaining"].as_u64() != Some(0) {
                continue;
            }
            checked.zeros += 1;
            let node = report["node"].as_str().unwrap_or("");
            let candidates = drained_at.get(node).map(Vec::as_slice).unwrap_or(&[]);
            if !candidates.iter().any(|d| clocks.before(*d, (p, i))) {
                let seen = if candidates.is_empty() {
                    format!("no agent of {node} is ever Stopping with nothing running in the trace")
                } else {
                    let at: Vec<String> = candidates
                        .iter()
                        .map(|(q, j)| processes[*q].records[*j].place().to_string())
                        .collect();
                    format!(
                        "{node}'s agent is first Stopping with nothing running at {}, which does not happen before this answer",
                        at.join(", ")
                    )
                };
                let what = format!(
                    "the coordinator on {} answered remaining 0 for {node} too early: {seen}",
                    r.node
                );
                return Err(Box::new(Failure::new(Check::NoPrematureZero, r, what)));
            }
        }
    }
    Ok(())
}

/// The term floor an incarnation reported is kept by every later one (see the module's
/// docs).
fn floor_kept(processes: &[Process]) -> Result<(), Box<Failure>> {
    // Node → (epoch, term) of every BootstrapResponse a coordinator received from it.
    let mut reported: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
    for r in processes.iter().flat_map(|p| &p.records) {
        if r.role != Role::Coordinator {
            continue;
        }
        let Some(m) = r.input.get("Message") else {
            continue;
        };
        let (Some(from), Some(b)) = (
            m.get("from").and_then(Value::as_str),
            m.get("msg").and_then(|m| m.get("BootstrapResponse")),
        ) else {
            continue;
        };
        if let (Some(e), Some(t)) = (b["epoch"].as_u64(), b["term"].as_u64()) {
            reported.entry(from).or_default().push((e, t));
        }
    }
    for r in processes.iter().flat_map(|p| &p.records) {
        let Some(start) = r.input.get("Start") else {
            continue;
        };
        if r.role != Role::Agent {
            continue;
        }
        let floor = start["leader"]["term"].as_u64().unwrap_or(0);
        let epoch = start["epoch"].as_u64().unwrap_or(r.epoch);
        let lost = reported
            .get(r.node.as_str())
            .into_iter()
            .flatten()
            .filter(|(e, t)| *e < epoch && *t > floor)
            .max_by_key(|(_, t)| *t);
        if let Some((e, t)) = lost {
            let what = format!(
                "{}'s incarnation {epoch} starts from term floor {floor}, but its incarnation {e} had answered term {t}'s bootstrap, and a coordinator received that answer",
                r.node
            );
            return Err(Box::new(Failure::new(Check::FloorKept, r, what)));
        }
    }
    Ok(())
}
