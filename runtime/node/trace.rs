//! The step trace: one JSON line per core step, with the outputs it produced, complete
//! enough to replay every step against a fresh core (`ebbtide trace check`, in
//! `runtime/trace_check/`).
//!
//! Record shape: `{"process", "seq", "ts_us", "role": "agent"|"coordinator", "node",
//! "epoch", "term", "input", "outputs": [...]}`. `process` names the OS process (its
//! pid, and the time and order its tracer was opened): several processes may append to
//! one file (a node restarted on the same `--trace`), and `seq` counts that process's
//! records (taken before the file lock, so lines of one process can be out of `seq`
//! order in the file). `term` is the coordinator's term, or the agent's term floor after
//! the step; `epoch` the incarnation (the coordinator's own node's, as it observed it).
//!
//! `input` and `outputs` are the core's own serde forms: [`AgentInput`]/[`AgentOutput`],
//! [`CoordInput`]/[`CoordOutput`] (`{"Message": {"from", "msg"}}`, `"HeartbeatTimer"`,
//! `{"Send": {"to", "msg"}}`, ...). The runtime also records the steps that are not
//! `handle` calls:
//! - an agent's `{"Start": {"epoch", "leader", "fixed_coordinator", "guards_off"}}`: the
//!   arguments of `NodeAgent::new` (and `with_fixed_coordinator`), with the outputs of
//!   `NodeAgent::start`;
//! - a coordinator's `{"Start": {"host", "term", "members", "desired", "config",
//!   "guards_off", "resend_ms", "liveness_ttl_ms"}}`: the arguments of
//!   `Coordinator::new`, with its outputs (the two intervals are the shell's, for the
//!   reader: the core only sees timers fire);
//! - `{"DrainNode": node}`: a client's drain request, whose outputs end with
//!   `{"Answer": {"Ok": report} | {"Err": refusal}}`, the answer the client got;
//! - `{"DrainStatus": node}`: a client's read of a drain (`Coordinator::drain_status`, a
//!   getter that changes nothing), whose one output is the `Answer` the client got.
//!
//! Each agent incarnation's records, and each coordinator's from its `Start`, are thus
//! a complete, ordered log of the core's inputs: a fresh core fed them must give the
//! same outputs.

use ebbtide_model::{
    AgentInput, AgentOutput, CoordInput, CoordOutput, Coordinator, Epoch, Guard, Guards, NodeAgent,
    Term,
};
use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where step records go (nowhere without `--trace`).
#[derive(Debug, Default)]
pub struct Tracer {
    file: Option<Mutex<BufWriter<File>>>,
    seq: AtomicU64,
    /// This process's name in the records (see the module docs).
    process: String,
    /// Which tracer of this OS process this is (the name's last part).
    opened: u64,
    /// The clock of `ts_us`; `None`: [`unix_micros`]. A simulation sets its own
    /// simulated clock, so that a seed's traces are the same bytes on every run.
    clock: Option<fn() -> u64>,
}

/// Tracers opened in this OS process (a test may run several nodes in one).
static OPENED: AtomicU64 = AtomicU64::new(0);

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
        let opened = OPENED.fetch_add(1, Ordering::Relaxed);
        let process = format!("{}.{}.{opened}", std::process::id(), unix_micros());
        Ok(Tracer {
            file,
            seq: AtomicU64::new(0),
            process,
            opened,
            clock: None,
        })
    }

    /// Stamps `ts_us` with `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Option<fn() -> u64>) -> Self {
        self.clock = clock;
        if let Some(c) = clock {
            // The process's name too comes from that clock, not from the OS's pid and
            // time, or a seed's traces would differ from run to run.
            self.process = format!("sim.{}.{}", c(), self.opened);
        }
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
            "process": self.process,
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
    ser(i)
}

/// Agent outputs as trace values.
pub fn agent_outputs(out: &[AgentOutput<String, String>]) -> Vec<Value> {
    out.iter().map(ser).collect()
}

/// A coordinator input as a trace value.
pub fn coord_input(i: &CoordInput<String, String>) -> Value {
    ser(i)
}

/// Coordinator outputs as trace values.
pub fn coord_outputs(out: &[CoordOutput<String, String>]) -> Vec<Value> {
    out.iter().map(ser).collect()
}

/// The guards that are off, by name (the runtime runs with none off).
pub fn guards_off(g: Guards) -> Vec<&'static str> {
    g.disabled().map(Guard::name).collect()
}

/// An agent's `Start` record input: what rebuilds the agent that `start` was called on.
pub fn agent_start(agent: &NodeAgent<String, String>) -> Value {
    json!({"Start": {
        "epoch": agent.epoch(),
        "leader": agent.leader(),
        "fixed_coordinator": agent.fixed_coordinator(),
        "guards_off": guards_off(agent.guards()),
    }})
}

/// A coordinator's `Start` record input, taken right after `Coordinator::new` (nothing
/// has changed its members or desired units yet).
pub fn coord_start(c: &Coordinator<String, String>, resend: Duration, ttl: Duration) -> Value {
    json!({"Start": {
        "host": c.host(),
        "term": c.term(),
        "members": c.records().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        "desired": c.desired().collect::<Vec<_>>(),
        "config": c.config(),
        "guards_off": guards_off(c.guards()),
        "resend_ms": resend.as_millis() as u64,
        "liveness_ttl_ms": ttl.as_millis() as u64,
    }})
}

/// Microseconds since the Unix epoch on this machine's clock: the one clock that the
/// traces and work logs of several processes on one machine share.
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
