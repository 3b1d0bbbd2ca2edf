//! Replay: every incarnation's logged inputs, fed to a fresh core built from its `Start`
//! record, must give exactly the logged outputs, record by record.
//!
//! What this catches: hidden state in the shell (an input the task changed, dropped or
//! reordered before the core saw it, or an output it changed after), nondeterminism in
//! the core, and a trace that lost a step (a gap in a process's `seq`, or the next
//! step no longer reproduced). What it cannot catch: a core that is wrong but
//! deterministic (it reproduces its own bug): that is for the safety checks and the
//! model checker.

use super::parse::{InputError, Process, Record, Role};
use super::{Check, Failure};
use crate::node::trace;
use ebbtide_model::protocol::agent::Leader;
use ebbtide_model::{
    AgentInput, CoordInput, Coordinator, CoordinatorConfig, Guard, Guards, NodeAgent,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

/// What the replay learned, for the safety checks: per process, per record, whether
/// the agent was drained (Stopping, running nothing) after that step.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Records replayed.
    pub steps: usize,
    pub agent_incarnations: usize,
    pub coordinator_incarnations: usize,
    /// `drained[p][i]`: process `p`'s agent is drained after its record `i` (false for
    /// coordinator records and for processes without an agent).
    pub drained: Vec<Vec<bool>>,
}

/// An agent's `Start` record (see `runtime/node/trace.rs`).
#[derive(Deserialize)]
pub(super) struct AgentStart {
    pub epoch: u64,
    pub leader: Option<Leader<String>>,
    pub fixed_coordinator: Option<String>,
    pub guards_off: Vec<String>,
}

/// A coordinator's `Start` record.
#[derive(Deserialize)]
pub(super) struct CoordStart {
    pub host: String,
    pub term: u64,
    pub members: Vec<String>,
    pub desired: Vec<String>,
    pub config: CoordinatorConfig,
    pub guards_off: Vec<String>,
}

/// Why a replay stopped: a failed check, or a record the checker cannot read.
#[derive(Debug)]
pub enum ReplayError {
    Failed(Box<Failure>),
    Input(InputError),
}

impl From<Failure> for ReplayError {
    fn from(f: Failure) -> Self {
        ReplayError::Failed(Box::new(f))
    }
}

/// Replays every process. Processes are independent; the failure reported is the one
/// earliest in (file, line) order among each process's first.
pub fn replay(processes: &[Process]) -> Result<Replayed, ReplayError> {
    let mut replayed = Replayed::default();
    let mut first: Option<Failure> = None;
    let mut incarnations: HashMap<(&str, u64), &str> = HashMap::new();
    for p in processes {
        // One incarnation, one process: a node never runs an epoch twice.
        let start = p.records.iter().find(|r| r.role == Role::Agent);
        if let Some(r) = start.filter(|r| start_body(r).is_some()) {
            if let Some(other) = incarnations.insert((r.node.as_str(), r.epoch), &p.name) {
                let what = format!(
                    "agent {} epoch {} started in two processes ({other} and {})",
                    r.node, r.epoch, p.name
                );
                return Err(Failure::new(Check::Replay, r, what).into());
            }
        }
        match replay_process(p, &mut replayed) {
            Ok(drained) => replayed.drained.push(drained),
            Err(ReplayError::Input(e)) => return Err(ReplayError::Input(e)),
            Err(ReplayError::Failed(f)) => {
                replayed.drained.push(Vec::new());
                let earlier = first
                    .as_ref()
                    .is_none_or(|g| (&f.place.file, f.place.line) < (&g.place.file, g.place.line));
                if earlier {
                    first = Some(*f);
                }
            }
        }
    }
    match first {
        Some(f) => Err(f.into()),
        None => Ok(replayed),
    }
}

fn replay_process(p: &Process, replayed: &mut Replayed) -> Result<Vec<bool>, ReplayError> {
    let mut agent: Option<NodeAgent<String, String>> = None;
    let mut coord: Option<Coordinator<String, String>> = None;
    // The current coordinator emitted `Resign`: the shell must feed it nothing more.
    let mut resigned = false;
    let mut drained = Vec::with_capacity(p.records.len());
    for (i, r) in p.records.iter().enumerate() {
        if r.seq != i as u64 {
            let what = if r.seq > i as u64 {
                format!(
                    "process {} has no record with seq {i} (next is {}): a step is missing from the trace",
                    p.name, r.seq
                )
            } else {
                format!("process {} has two records with seq {}", p.name, r.seq)
            };
            return Err(Failure::new(Check::Sequence, r, what).into());
        }
        replayed.steps += 1;
        // The outputs, and the (epoch, term) the record should carry after the step:
        // the agent's epoch and term floor, or the coordinator's view of its own
        // node's epoch and its term.
        let (got, epoch, term) = match r.role {
            Role::Agent => {
                let (got, a) = agent_step(&mut agent, r, replayed)?;
                drained.push(a.drained());
                (got, a.epoch(), a.term_floor())
            }
            Role::Coordinator => {
                drained.push(false);
                if resigned && start_body(r).is_none() {
                    let what = "the coordinator was fed a step after it resigned \
                                (call contract, item 5)"
                        .to_owned();
                    return Err(Failure::new(Check::Replay, r, what).into());
                }
                resigned = r.outputs.iter().any(|o| o == "Resign");
                let (got, c) = coord_step(&mut coord, r, replayed)?;
                let epoch = c.record(c.host()).map_or(0, |rec| rec.epoch);
                (got, epoch, c.term())
            }
        };
        if got != r.outputs {
            let at = got
                .iter()
                .zip(&r.outputs)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(r.outputs.len()));
            let what = format!(
                "{} step not reproduced: the core's output #{at} differs from the logged one ({} logged, {} from the core)",
                role_name(r),
                r.outputs.len(),
                got.len()
            );
            let mut f = Failure::new(Check::Replay, r, what);
            f.core_gave = Some(Value::Array(got));
            return Err(f.into());
        }
        if (r.epoch, r.term) != (epoch, Some(term)) {
            let what = format!(
                "{} step not reproduced: the record says epoch {} term {:?}, the core has \
                 epoch {epoch} term {term}",
                role_name(r),
                r.epoch,
                r.term
            );
            return Err(Failure::new(Check::Replay, r, what).into());
        }
    }
    Ok(drained)
}

fn role_name(r: &Record) -> String {
    match r.role {
        Role::Agent => format!("agent {} (epoch {})", r.node, r.epoch),
        Role::Coordinator => match r.term {
            Some(t) => format!("coordinator on {} (term {t})", r.node),
            None => format!("coordinator on {} (no term)", r.node),
        },
    }
}

fn malformed(r: &Record, what: impl std::fmt::Display) -> ReplayError {
    let place = r.place();
    ReplayError::Input(InputError {
        file: place.file,
        line: place.line,
        message: format!("malformed {} input: {what}", role_name(r)),
    })
}

fn guards(r: &Record, off: &[String]) -> Result<Guards, ReplayError> {
    off.iter().try_fold(Guards::ALL_ON, |g, name| {
        Ok(g.without(name.parse::<Guard>().map_err(|e| malformed(r, e))?))
    })
}

/// The `Start` record's body, if this record is one.
fn start_body(r: &Record) -> Option<&Value> {
    r.input.as_object().and_then(|o| o.get("Start"))
}

fn agent_step<'a>(
    agent: &'a mut Option<NodeAgent<String, String>>,
    r: &Record,
    replayed: &mut Replayed,
) -> Result<(Vec<Value>, &'a NodeAgent<String, String>), ReplayError> {
    let mut out = Vec::new();
    if let Some(body) = start_body(r) {
        if agent.is_some() {
            let what = "a second agent Start in one process".to_owned();
            return Err(Failure::new(Check::Replay, r, what).into());
        }
        let s: AgentStart = serde_json::from_value(body.clone()).map_err(|e| malformed(r, e))?;
        let mut a = NodeAgent::new(s.epoch, s.leader, guards(r, &s.guards_off)?);
        if let Some(f) = s.fixed_coordinator {
            a = a.with_fixed_coordinator(f);
        }
        a.start(&mut out);
        replayed.agent_incarnations += 1;
        *agent = Some(a);
    } else {
        let Some(a) = agent.as_mut() else {
            let what = "an agent step before its incarnation's Start record".to_owned();
            return Err(Failure::new(Check::Replay, r, what).into());
        };
        let input: AgentInput<String, String> =
            serde_json::from_value(r.input.clone()).map_err(|e| malformed(r, e))?;
        a.handle(input, &mut out);
    }
    let a = agent.as_ref().expect("set above");
    Ok((trace::agent_outputs(&out), a))
}

fn coord_step<'a>(
    coord: &'a mut Option<Coordinator<String, String>>,
    r: &Record,
    replayed: &mut Replayed,
) -> Result<(Vec<Value>, &'a Coordinator<String, String>), ReplayError> {
    let mut out = Vec::new();
    let mut answer = None;
    if let Some(body) = start_body(r) {
        let s: CoordStart = serde_json::from_value(body.clone()).map_err(|e| malformed(r, e))?;
        let g = guards(r, &s.guards_off)?;
        *coord = Some(Coordinator::new(
            s.host, s.term, s.members, s.desired, s.config, g, &mut out,
        ));
        replayed.coordinator_incarnations += 1;
    } else {
        let Some(c) = coord.as_mut() else {
            let what = "a coordinator step before any coordinator Start record".to_owned();
            return Err(Failure::new(Check::Replay, r, what).into());
        };
        if let Some(node) = r.input.as_object().and_then(|o| o.get("DrainNode")) {
            let node = node
                .as_str()
                .ok_or_else(|| malformed(r, "DrainNode names no node"))?;
            answer = Some(c.drain_node(&node.to_owned(), &mut out));
        } else if let Some(node) = r.input.as_object().and_then(|o| o.get("DrainStatus")) {
            let node = node
                .as_str()
                .ok_or_else(|| malformed(r, "DrainStatus names no node"))?;
            answer = Some(c.drain_status(&node.to_owned()));
        } else {
            let input: CoordInput<String, String> =
                serde_json::from_value(r.input.clone()).map_err(|e| malformed(r, e))?;
            c.handle(input, &mut out);
        }
    }
    let mut got = trace::coord_outputs(&out);
    if let Some(a) = answer {
        got.push(json!({ "Answer": a }));
    }
    Ok((got, coord.as_ref().expect("set above")))
}
