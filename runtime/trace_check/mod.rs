//! `ebbtide trace check`: validates step traces (`ebbtide node --trace FILE`) by replay
//! and by cross-process safety checks.
//!
//! 1. [`parse`]: the JSON lines of every file, grouped by the process that wrote them
//!    and put in that process's `seq` order.
//! 2. [`replay`]: each incarnation's inputs, fed to a fresh core built from its `Start`
//!    record, must give exactly its logged outputs (the shell hides no state, the core
//!    is deterministic, no step is missing).
//! 3. [`safety`]: on the merged trace, ordered by happens-before (process order and
//!    send before receipt): S5 (no unit provably runs on two incarnations at once) and
//!    S3 (every `remaining: 0` comes after the node's agent was Stopping and running
//!    nothing).
//!
//! 4. [`refine`]: the merged run, walked step by step through the stateright model's own
//!    transition function, is a behaviour of the model: every step one the model
//!    allows, every core where the model's is, every `always` property on every state.

pub mod parse;
pub mod refine;
pub mod replay;
pub mod safety;

use parse::{InputError, Place, Record};
use serde_json::Value;
use std::fmt;
use std::path::PathBuf;

/// Which check a trace failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// A process's records are not `seq` 0, 1, 2, ...: a record is missing or doubled.
    Sequence,
    /// A step's logged outputs (or its recorded epoch and term) are not what the core
    /// gives when it replays the step.
    Replay,
    /// A message was received that no traced process sent.
    Provenance,
    /// A receipt comes before every send of its message: the steps are out of order.
    Causality,
    /// S5: a unit provably ran on two agent incarnations at once.
    SingleHost,
    /// S3: `remaining: 0` answered (DrainNode or DrainStatus) before the node was
    /// Stopping and running nothing.
    NoPrematureZero,
    /// The core's call contract (`PersistLeader` durable before the sends after it): an
    /// agent incarnation starts from a term floor below a term an earlier incarnation
    /// of its node reported to a coordinator (a `BootstrapResponse` received).
    FloorKept,
    /// The run, walked step by step through the stateright model, takes a step the
    /// model does not allow, reaches a different core state, or breaks a property.
    Refinement,
}

impl Check {
    /// The name the report uses.
    pub fn name(self) -> &'static str {
        match self {
            Check::Sequence => "sequence",
            Check::Replay => "replay",
            Check::Provenance => "provenance",
            Check::Causality => "causality",
            Check::SingleHost => "S5 single host",
            Check::NoPrematureZero => "S3 no premature zero",
            Check::FloorKept => "term floor kept",
            Check::Refinement => "refinement",
        }
    }
}

/// The first step that fails a check, with what the core gave instead (replay).
#[derive(Clone, Debug)]
pub struct Failure {
    pub check: Check,
    pub place: Place,
    pub process: String,
    pub what: String,
    pub input: Value,
    pub logged: Vec<Value>,
    /// The outputs the core gave on replay, when they differ from the logged ones.
    pub core_gave: Option<Value>,
}

impl Failure {
    fn new(check: Check, r: &Record, what: String) -> Self {
        Failure {
            check,
            place: r.place(),
            process: r.process.clone(),
            what,
            input: r.input.clone(),
            logged: r.outputs.clone(),
            core_gave: None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "check {} failed at {}: {}",
            self.check.name(),
            self.place,
            self.what
        )?;
        writeln!(f, "  process:   {}", self.process)?;
        writeln!(f, "  input:     {}", self.input)?;
        write!(f, "  logged:    {}", Value::Array(self.logged.clone()))?;
        if let Some(got) = &self.core_gave {
            write!(f, "\n  core gave: {got}")?;
        }
        Ok(())
    }
}

/// Why a check did not pass.
#[derive(Debug)]
pub enum CheckError {
    /// A file cannot be read or a line is not a record (exit status 2).
    Input(InputError),
    /// The trace fails a check (exit status 1).
    Failed(Box<Failure>),
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Input(e) => write!(f, "cannot read the trace: {e}"),
            CheckError::Failed(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for CheckError {}

/// What a passing check covered.
#[derive(Debug)]
pub struct Summary {
    pub files: usize,
    pub processes: usize,
    /// Records replayed: core steps, and the DrainStatus reads.
    pub steps: usize,
    pub agent_incarnations: usize,
    pub coordinator_incarnations: usize,
    /// Last lines cut short by a kill, skipped.
    pub torn_lines: usize,
    pub checked: safety::Checked,
    /// The walk through the model ([`refine`]): a behaviour of the model, or the first
    /// step that is not. Kept apart from the checks above so that a caller sees both
    /// verdicts: [`Summary::refinement`] gives it as an error.
    pub refined: Result<refine::Refined, Box<Failure>>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.checked;
        write!(
            f,
            "{} steps, {} processes ({} agent incarnations, {} coordinator terms) in {} files: \
             replayed, every step with its logged outputs; {} receipts matched to sends; \
             S5: {} unit runs, none provably overlapping; S3: {} answers of remaining 0, \
             each after its node was Stopping with nothing running",
            self.steps,
            self.processes,
            self.agent_incarnations,
            self.coordinator_incarnations,
            self.files,
            c.receipts,
            c.runs,
            c.zeros
        )?;
        match &self.refined {
            Ok(r) => write!(f, "; refinement: {r}")?,
            Err(e) => write!(f, "; refinement: NOT a behaviour of the model: {e}")?,
        }
        if self.torn_lines > 0 {
            write!(f, " ({} torn last lines skipped)", self.torn_lines)?;
        }
        Ok(())
    }
}

impl Summary {
    /// The refinement verdict, as an error if the run is not a behaviour of the model.
    pub fn refinement(&self) -> Result<&refine::Refined, CheckError> {
        self.refined
            .as_ref()
            .map_err(|f| CheckError::Failed(f.clone()))
    }
}

/// Reads the trace files and runs every check: replay first, then the safety checks
/// (which rely on the replayed states).
pub fn check_files(files: &[PathBuf]) -> Result<Summary, CheckError> {
    let (processes, torn_lines) = parse::read(files).map_err(CheckError::Input)?;
    let replayed = replay::replay(&processes).map_err(|e| match e {
        replay::ReplayError::Input(e) => CheckError::Input(e),
        replay::ReplayError::Failed(f) => CheckError::Failed(f),
    })?;
    let checked = safety::check(&processes, &replayed).map_err(CheckError::Failed)?;
    let refined = refine::refine(&processes);
    Ok(Summary {
        refined,
        files: files.len(),
        processes: processes.len(),
        steps: replayed.steps,
        agent_incarnations: replayed.agent_incarnations,
        coordinator_incarnations: replayed.coordinator_incarnations,
        torn_lines,
        checked,
    })
}
