//! Deliberate shell bugs, for tests only: each is a mistake a real shell could make,
//! switched on by a test that shows a judge catches it (a harness that cannot fail
//! proves nothing). None of them is in the core: the core is correct, and these break
//! the contract between the core and its shell.
//!
//! One type, [`ShellBugs`], carries every bug. A node consults only the one it was
//! started with ([`super::env::Env::bugs`]), handed down to the tasks that misbehave,
//! never a process-global switch: the four nodes of one simulation share a process, and
//! a bug's own state (which bootstrap it already dropped) belongs to the node that has
//! it. Two ways to switch bugs on:
//!
//! - a simulation (`tests/sim.rs`) sets the fields directly;
//! - the `ebbtide node` binary reads the hidden environment variable
//!   `EBBTIDE_SHELL_BUG` ([`ShellBugs::from_env`]: a comma-separated list of the names
//!   below), which is how multi-process tests (`tests/trace_check.rs`) switch a bug on
//!   in one node. An unknown name stops the node with an error naming the variable and
//!   the name: a test that misspelled a bug would otherwise run without it, and a bite
//!   test that runs without its bug proves nothing.
//!
//! Never set them outside those tests.

/// The shell bugs a node runs with; all off ([`Default`]) in production.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShellBugs {
    /// `skip-fsync`: the data directory writes its records without any fsync (neither
    /// the file nor the directory): the next incarnation may find an older epoch after
    /// a crash, reuse it, and be taken for the incarnation that crashed.
    pub skip_fsync: bool,
    /// `drop-liveness-epoch`: the wire conversion of an outgoing `SetNodeLiveness`
    /// drops the node epoch the coordinator named (sends 0, "not known yet"): epoch
    /// fencing loses its argument, and Stopping can be sent to an incarnation never
    /// seen Draining.
    pub drop_liveness_epoch: bool,
    /// `ack-before-stop`: the agent acknowledges `StopWork` before the stop hook ran:
    /// the ack (a `WorkStatus` Stopped) goes out, and the unit is stopped a little
    /// later, by a task of its own ("so as not to block the agent").
    pub ack_before_stop: bool,
    /// `send-before-persist`: the agent task applies a step's `Send`s before its
    /// `PersistLeader` ("tell the coordinator at once, the fsync is slow"): a node can
    /// answer a coordinator's bootstrap, so report that it follows the new term, before
    /// that term floor is durable; if the write then fails (or the process dies first),
    /// the next incarnation has forgotten a term it already reported.
    pub send_before_persist: bool,
    /// `resend-batch-twice`: the transport sends every batch a second time, as a
    /// client whose call timed out retries it although the first call was delivered
    /// (the answer was only slow): each message of the batch is applied twice, right
    /// after each other. The protocol tolerates it (a tolerance test, not a bite).
    pub resend_batch_twice: bool,
    /// `agent-drops-bootstrap`: the agent task traces the first bootstrap request of
    /// each term as handled (no outputs) but never hands it to the core. The resent
    /// request is handled, so the cluster still works; only the trace shows it.
    pub agent_drops_bootstrap: bool,
    /// `answer-remaining-one-less`: the coordinator task tells the client (and traces)
    /// one less `remaining` than the core answered.
    pub answer_remaining_one_less: bool,
    /// `keep-candidacy`: the membership task campaigns when the core lets it
    /// (`may_campaign` turns true) but does nothing when the core takes that back
    /// (the agent goes Draining, or is asked to leave), on the reasoning that "a
    /// coordinator whose node is no longer Alive resigns by itself" (the core's
    /// `Resign`). True of a node that coordinates, not of one that is only a
    /// candidate: a node being drained keeps its place in the election's queue, and a
    /// later failover elects it. The task still resigns when told it won a campaign it
    /// may no longer make, but until then a node that is not Alive leads the election
    /// (S7).
    pub keep_candidacy: bool,
    /// `coordinator-ignores-resign`: the coordinator task logs the core's `Resign` and
    /// keeps serving, on the reasoning that "the membership task withdraws from the
    /// election when the agent goes Draining, and that stops the coordinator". True
    /// when its own node goes Draining, not when an operator (or a graceful leave) asks
    /// it to resign: the core said it serves no more, and the task feeds it the next
    /// input anyway, while the election keeps it leader. S7 does not see it (the node is
    /// Alive); the trace check does.
    pub coordinator_ignores_resign: bool,
    /// `coordinator-before-term`: the membership task starts the coordinator of a term
    /// it won at once and only queues its agent's `LeaderChanged` ("the agent will
    /// catch up"), as the runtime did until the trace check's walk through the model
    /// found it: when the agent's persist of the new term then fails (`exit 4`), a
    /// coordinator of a term its node never followed has already sent its bootstraps,
    /// and the node's next incarnation starts below that term. Replay and the safety
    /// checks pass; the model has no step for it (its election is one step).
    pub coordinator_before_term: bool,
    /// `coordinator-from-watch-view`: the membership task starts the coordinator of a
    /// term it won from the members its watch has shown so far ("the watch is nearly
    /// live anyway"), not from the fresh snapshot that follows the win, as the runtime
    /// did until the refinement's model check found it unsafe: a watch that lags can
    /// lack a member the coordinator before it gave units to, and the new coordinator
    /// places them again (S5).
    pub coordinator_from_watch_view: bool,
}

impl ShellBugs {
    /// The environment variable `ebbtide node` reads them from.
    pub const VAR: &'static str = "EBBTIDE_SHELL_BUG";

    /// Every bug, by the name `EBBTIDE_SHELL_BUG` gives it. One table, so that a name
    /// cannot be parsed without being printed, nor the other way round.
    fn named(&mut self) -> [(&'static str, &mut bool); 11] {
        [
            ("skip-fsync", &mut self.skip_fsync),
            ("drop-liveness-epoch", &mut self.drop_liveness_epoch),
            ("ack-before-stop", &mut self.ack_before_stop),
            ("send-before-persist", &mut self.send_before_persist),
            ("resend-batch-twice", &mut self.resend_batch_twice),
            ("agent-drops-bootstrap", &mut self.agent_drops_bootstrap),
            (
                "answer-remaining-one-less",
                &mut self.answer_remaining_one_less,
            ),
            ("keep-candidacy", &mut self.keep_candidacy),
            (
                "coordinator-ignores-resign",
                &mut self.coordinator_ignores_resign,
            ),
            ("coordinator-before-term", &mut self.coordinator_before_term),
            (
                "coordinator-from-watch-view",
                &mut self.coordinator_from_watch_view,
            ),
        ]
    }

    /// The bugs named in `list` (comma-separated; blanks around names and empty items
    /// are ignored); an unknown name is an error that names [`Self::VAR`] and it.
    pub fn parse(list: &str) -> Result<ShellBugs, String> {
        let mut bugs = ShellBugs::default();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match bugs.named().into_iter().find(|(n, _)| *n == name) {
                Some((_, on)) => *on = true,
                None => {
                    let known: Vec<&str> = ShellBugs::default()
                        .named()
                        .into_iter()
                        .map(|(n, _)| n)
                        .collect();
                    return Err(format!(
                        "{}: unknown shell bug {name:?} (known: {})",
                        Self::VAR,
                        known.join(", ")
                    ));
                }
            }
        }
        Ok(bugs)
    }

    /// The bugs `EBBTIDE_SHELL_BUG` names in this process's environment (none when it
    /// is unset).
    pub fn from_env() -> Result<ShellBugs, String> {
        match std::env::var(Self::VAR) {
            Ok(list) => Self::parse(&list),
            Err(std::env::VarError::NotPresent) => Ok(ShellBugs::default()),
            Err(e) => Err(format!("{}: {e}", Self::VAR)),
        }
    }

    /// The names of the bugs switched on, comma-separated: what [`Self::parse`] reads
    /// back ("" for none).
    pub fn names(&self) -> String {
        let mut bugs = *self;
        let on: Vec<&str> = bugs
            .named()
            .into_iter()
            .filter(|(_, on)| **on)
            .map(|(n, _)| n)
            .collect();
        on.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bug_has_its_own_name_that_parses_back_to_it_alone() {
        let count = ShellBugs::default().named().len();
        for i in 0..count {
            let mut one = ShellBugs::default();
            *one.named()[i].1 = true;
            let name = one.names();
            assert!(!name.contains(','), "{name}");
            assert_eq!(ShellBugs::parse(&name), Ok(one), "{name}");
        }
    }

    #[test]
    fn a_list_switches_on_each_named_bug_and_ignores_blanks() {
        let bugs = ShellBugs::parse(" agent-drops-bootstrap, ,skip-fsync ").unwrap();
        assert_eq!(
            bugs,
            ShellBugs {
                agent_drops_bootstrap: true,
                skip_fsync: true,
                ..ShellBugs::default()
            }
        );
        assert_eq!(bugs.names(), "skip-fsync,agent-drops-bootstrap");
        assert_eq!(ShellBugs::parse(""), Ok(ShellBugs::default()));
    }

    #[test]
    fn an_unknown_name_is_an_error_naming_the_variable_and_the_name() {
        let e = ShellBugs::parse("skip-fsync,agent-drop-bootstrap").unwrap_err();
        assert!(e.starts_with("EBBTIDE_SHELL_BUG: "), "{e}");
        assert!(e.contains("\"agent-drop-bootstrap\""), "{e}");
        assert!(e.contains("agent-drops-bootstrap"), "{e}");
    }
}
