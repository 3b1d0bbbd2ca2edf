//! The step trace: one JSON line per core input handled, with the outputs it produced,
//! complete enough to replay the step against the core.
//!
//! Record shape: `{"seq", "ts_us", "role": "agent"|"coordinator", "node", "epoch",
//! "term", "input", "outputs": [...]}`, where `term` is the coordinator's term, or the
//! agent's term floor after the step, and `epoch` the incarnation (the coordinator's
//! own node's, as it observed it). The protocol messages inside (`ToNode`,
//! `ToCoordinator`, `Leader`, `CoordTimer`) are the core's own serde forms; the
//! input/output envelopes mirror the core's enums (`{"Message": {"from", "msg"}}`,
//! `"HeartbeatTimer"`, `{"Send": {"to", "msg"}}`, ...). The runtime also records the
//! steps that are not `handle` calls: `{"Start": ...}` (an incarnation or a coordinator
//! starts) and `{"DrainNode": node}` (a client's drain request, whose outputs end with
//! `{"Answer": {"Ok": report} | {"Err": refusal}}`, the answer the client got).

use ebbtide_model::{AgentInput, AgentOutput, CoordInput, CoordOutput, Epoch, Term};
use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where step records go (nowhere without `--trace`).
#[derive(Debug, Default)]
pub struct Tracer {
    file: Option<Mutex<BufWriter<File>>>,
    seq: AtomicU64,
    /// The clock of `ts_us`; `None`: [`unix_micros`]. A simulation sets its own
    /// simulated clock, so that a seed's traces are the same bytes on every run.
    clock: Option<fn() -> u64>,
}

impl Tracer {
    /// A tracer that appends to `path`, or a disabled one.
    pub fn open(path: Option<&Path>) -> Result<Self, String> {
        let file = match path {
            None => None,
            Some(p) => Some(Mutex::new(BufWriter::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| format!("--trace {}: {e}", p.display()))?,
            ))),
        };
        Ok(Tracer {
            file,
            seq: AtomicU64::new(0),
            clock: None,
        })
    }

    /// Stamps `ts_us` with `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Option<fn() -> u64>) -> Self {
        self.clock = clock;
        self
    }

    /// Whether records are written.
    pub fn enabled(&self) -> bool {
        self.file.is_some()
    }

    /// Writes one record (a line, flushed at once so that a killed process loses none).
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        role: &str,
        node: &str,
        epoch: Epoch,
        term: Option<Term>,
        input: Value,
        outputs: Vec<Value>,
    ) {
        let Some(file) = &self.file else { return };
        let ts_us = self.clock.map_or_else(unix_micros, |c| c());
        let line = json!({
            "seq": self.seq.fetch_add(1, Ordering::Relaxed),
            "ts_us": ts_us,
            "role": role,
            "node": node,
            "epoch": epoch,
            "term": term,
            "input": input,
            "outputs": outputs,
        });
        let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
        let res = writeln!(f, "{line}").and_then(|()| f.flush());
        if let Err(e) = res {
            tracing::warn!(error = %e, "cannot write the trace");
        }
    }
}

fn ser<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_else(|e| json!({ "unserializable": e.to_string() }))
}

/// An agent input as a trace value.
pub fn agent_input(i: &AgentInput<String, String>) -> Value {
    match i {
        AgentInput::Message { from, msg } => json!({"Message": {"from": from, "msg": ser(msg)}}),
        AgentInput::HeartbeatTimer => json!("HeartbeatTimer"),
        AgentInput::LeaderChanged { term, leader } => {
            json!({"LeaderChanged": {"term": term, "leader": leader}})
        }
        AgentInput::LeaseLost => json!("LeaseLost"),
        AgentInput::Leave => json!("Leave"),
    }
}

/// Agent outputs as trace values.
pub fn agent_outputs(out: &[AgentOutput<String, String>]) -> Vec<Value> {
    out.iter()
        .map(|o| match o {
            AgentOutput::Send { to, msg } => json!({"Send": {"to": to, "msg": ser(msg)}}),
            AgentOutput::StartWork(w) => json!({ "StartWork": w }),
            AgentOutput::StopWork(w) => json!({ "StopWork": w }),
            AgentOutput::ArmHeartbeat => json!("ArmHeartbeat"),
            AgentOutput::PersistLeader(l) => json!({ "PersistLeader": ser(l) }),
        })
        .collect()
}

/// A coordinator input as a trace value.
pub fn coord_input(i: &CoordInput<String, String>) -> Value {
    match i {
        CoordInput::Message { from, msg } => json!({"Message": {"from": from, "msg": ser(msg)}}),
        CoordInput::Timer(t) => json!({ "Timer": ser(t) }),
        CoordInput::MemberJoined { node, epoch } => {
            json!({"MemberJoined": {"node": node, "epoch": epoch}})
        }
        CoordInput::MemberLeft(n) => json!({ "MemberLeft": n }),
        CoordInput::AddUnit(w) => json!({ "AddUnit": w }),
        CoordInput::DeleteUnit(w) => json!({ "DeleteUnit": w }),
        CoordInput::Resign => json!("Resign"),
    }
}

/// Coordinator outputs as trace values.
pub fn coord_outputs(out: &[CoordOutput<String, String>]) -> Vec<Value> {
    out.iter()
        .map(|o| match o {
            CoordOutput::Send { to, msg } => json!({"Send": {"to": to, "msg": ser(msg)}}),
            CoordOutput::Arm(t) => json!({ "Arm": ser(t) }),
            CoordOutput::Resign => json!("Resign"),
        })
        .collect()
}

/// Microseconds since the Unix epoch on this machine's clock: the one clock that the
/// traces and work logs of several processes on one machine share.
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
