//! The work a node runs: an application embeds ebbtide and implements [`Workload`].

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
}

/// The default workload: logs start and stop, and can take a while to stop.
#[derive(Clone, Debug, Default)]
pub struct LogWorkload {
    /// How long `stop` blocks before it returns (simulates slow shutdown).
    pub stop_delay: Duration,
}

impl Workload for LogWorkload {
    fn start(&self, unit: &str) {
        tracing::info!(unit, "work unit started");
    }

    fn stop(&self, unit: &str) {
        if !self.stop_delay.is_zero() {
            std::thread::sleep(self.stop_delay);
        }
        tracing::info!(unit, "work unit stopped");
    }
}
