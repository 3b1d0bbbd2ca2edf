//! Deliberate shell bugs, for tests only: they show that `ebbtide trace check` catches a
//! runtime that does not feed the core faithfully, or does not pass on what it answered.
//!
//! Switched on by the hidden environment variable `EBBTIDE_SHELL_BUG` (a comma-separated
//! list of the names below), read once per process. Never set it outside those tests:
//! each one breaks the protocol's call contract on purpose.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// One deliberate bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShellBug {
    /// `agent-drops-bootstrap`: the agent task traces the first bootstrap request of
    /// each term as handled (no outputs) but never hands it to the core. The resent
    /// request is handled, so the cluster still works; only the trace shows it.
    AgentDropsBootstrap,
    /// `answer-remaining-one-less`: the coordinator task tells the client (and traces)
    /// one less `remaining` than the core answered.
    AnswerRemainingOneLess,
}

impl ShellBug {
    fn name(self) -> &'static str {
        match self {
            ShellBug::AgentDropsBootstrap => "agent-drops-bootstrap",
            ShellBug::AnswerRemainingOneLess => "answer-remaining-one-less",
        }
    }

    /// Whether this bug is switched on in this process.
    pub fn on(self) -> bool {
        static BUGS: OnceLock<String> = OnceLock::new();
        BUGS.get_or_init(|| std::env::var("EBBTIDE_SHELL_BUG").unwrap_or_default())
            .split(',')
            .any(|b| b.trim() == self.name())
    }
}

/// [`ShellBug::AgentDropsBootstrap`]: whether to drop this bootstrap request of `term`
/// (the first one seen of each term).
pub fn drop_bootstrap(term: u64) -> bool {
    static LAST: AtomicU64 = AtomicU64::new(0);
    ShellBug::AgentDropsBootstrap.on() && LAST.fetch_max(term, Ordering::Relaxed) < term
}
