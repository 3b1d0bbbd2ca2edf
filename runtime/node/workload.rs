//! The work a node runs: an application embeds ebbtide and implements [`Workload`].

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// Start and stop hooks for work units. The node agent calls them in the order the
/// protocol core decides, and acknowledges a unit to the coordinator only after the
/// hook returned: `stop` must return once the unit no longer runs (a move is
/// remove-then-add, so that a unit never runs twice). Hooks may block; they run on the
/// agent's task, so keep them short or hand long work to a thread of your own.
pub trait Workload: Send + Sync + 'static {
    /// Start running `unit`.
    fn start(&self, unit: &str);
    /// Stop running `unit`.
    fn stop(&self, unit: &str);
    /// Whether a hook may block (sleep, wait for I/O or a lock held elsewhere). Then
    /// the agent runs the hooks of a step in `tokio::task::block_in_place`, so that the
    /// other tasks on its worker thread move to another one meanwhile. That handoff is
    /// not free: the runtime starts a thread for the worker it gives up (up to 512 of
    /// them, each with its own stack and allocator heap), which for a million units cost
    /// hundreds of threads and more kernel time clearing their fresh pages than the
    /// control plane spent working. A workload whose hooks only record or signal (set a
    /// flag, send on a channel) says `false`, and its hooks run inline. The default is
    /// the safe answer, `true`.
    fn blocks(&self) -> bool {
        true
    }
}

/// The default workload: logs start and stop, can take a while to stop, and with
/// `--work-log` records both in a file.
#[derive(Debug, Default)]
pub struct LogWorkload {
    /// How long `start` blocks before it returns (simulates slow start-up).
    pub start_delay: Duration,
    /// How long `stop` blocks before it returns (simulates slow shutdown).
    pub stop_delay: Duration,
    /// The work log, if any.
    pub record: Option<WorkLog>,
}

/// A JSON-lines record of what ran where and when, written by the workload itself:
/// `{"ts_us", "node", "pid", "event": "start"|"stop", "unit"}`. A start is written
/// before the unit starts and a stop after it has stopped, each line in one `write`
/// to a file opened for appending, so that intervals taken from the logs of several
/// processes on one machine's clock contain every moment the unit really ran: two
/// intervals of one unit that overlap are evidence that it ran twice.
#[derive(Debug)]
pub struct WorkLog {
    node: String,
    file: Mutex<std::fs::File>,
}

impl WorkLog {
    /// Appends to `path` (created if needed) on behalf of node `node`.
    pub fn open(path: &Path, node: &str) -> Result<Self, String> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("--work-log {}: {e}", path.display()))?;
        Ok(WorkLog {
            node: node.to_owned(),
            file: Mutex::new(file),
        })
    }

    fn write(&self, event: &str, unit: &str) {
        let line = serde_json::json!({
            "ts_us": super::trace::unix_micros(),
            "node": self.node,
            "pid": std::process::id(),
            "event": event,
            "unit": unit,
        });
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = f.write_all(format!("{line}\n").as_bytes()) {
            tracing::error!(error = %e, "cannot write the work log");
        }
    }
}

impl Workload for LogWorkload {
    /// Only with a delay or a work log (a file write); a log line alone does not.
    fn blocks(&self) -> bool {
        !self.start_delay.is_zero() || !self.stop_delay.is_zero() || self.record.is_some()
    }

    fn start(&self, unit: &str) {
        if let Some(r) = &self.record {
            r.write("start", unit);
        }
        if !self.start_delay.is_zero() {
            std::thread::sleep(self.start_delay);
        }
        tracing::info!(unit, "work unit started");
    }

    fn stop(&self, unit: &str) {
        if !self.stop_delay.is_zero() {
            std::thread::sleep(self.stop_delay);
        }
        tracing::info!(unit, "work unit stopped");
        if let Some(r) = &self.record {
            r.write("stop", unit);
        }
    }
}
