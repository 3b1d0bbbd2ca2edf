//! The protocol's guards, each of which can be switched off *for the model checker only*.
//!
//! Every guard is a check in the transition functions that some property depends on
//! (each names the rule of `specs/protocol.md` it enforces). The checker proves that by
//! switching one off and finding a counterexample (`ebbtide check --without <guard>`).
//! The runtime always runs with every guard on: it only ever builds [`Guards::default`].

use std::fmt;
use std::str::FromStr;

/// One guard of the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Guard {
    /// Liveness only moves by single forward steps (specs/protocol.md §2).
    SingleStep,
    /// A node ignores liveness and work commands from an older coordinator term (A1).
    TermFencing,
    /// A node applies SetNodeLiveness only when it names the node's own epoch (A2).
    EpochFencing,
    /// A node applies AddWork/RemoveWork only when it names the node's own epoch and is
    /// newer, by (term, operation), than the last command it applied to that work unit (A4).
    WorkFencing,
    /// The coordinator drops a report with a lower epoch than recorded (C1).
    DropStaleReports,
    /// The coordinator drops a report with the same epoch and a lower liveness (C3).
    DropRegressingReports,
    /// A higher epoch is a new incarnation: every observation of the old one is forgotten (C2).
    ResetOnNewIncarnation,
    /// Stopping is requested only when nothing remains on the target (C7, first clause).
    StoppingWhenEmpty,
    /// Stopping is requested only for the drain session's target, not for any other node
    /// observed Draining (C7, second clause).
    StoppingOnlyTarget,
    /// Stopping is requested only with the epoch of the incarnation observed Draining
    /// (C7, third clause).
    StoppingAtDrainingEpoch,
    /// `remaining` counts in-flight operations involving the target, not only placed units (C8).
    CountInFlight,
    /// New placements go only to nodes observed Alive (C11, first clause).
    AliveDestination,
    /// New placements go only to nodes whose last report is within the liveness TTL
    /// (C11, second clause).
    FreshDestination,
    /// New placements never go to the target of a pending drain (requested, not yet
    /// answered 0), even while it is Alive: after a restart it is empty and would be the
    /// least-loaded destination (C11, third clause).
    SpareDrainTarget,
    /// A move stops the unit on its origin, and waits for the acknowledgement, before it
    /// adds the unit on its destination (C13).
    RemoveBeforeAdd,
    /// A Stopping node rejects every new work unit (A4).
    RejectWhileStopping,
    /// A new coordinator serves nothing until every member answered its bootstrap (C15).
    BootstrapBeforeServing,
    /// A node that is not Alive never campaigns to become coordinator (A8).
    CampaignOnlyAlive,
    /// A node follows a newer coordinator term only when its election service shows
    /// that term (or, under static membership, only from the configured coordinator's
    /// bootstrap); a bootstrap request or command of a term above its floor is ignored
    /// until then (A1, A7).
    ElectedTermsOnly,
    /// Balance moves a unit only when the most and least loaded destinations differ by
    /// two or more units; at a difference of one, a move would only swap them, and the
    /// next pass would move it back, for ever (C14). A liveness guard: without it the
    /// cluster never settles (L1's fair-continuation check).
    BalanceHysteresis,
    /// Draining the coordinator's own node is refused (C10).
    RefuseOwnNode,
    /// The coordinator's resend timer sends again whatever is unacknowledged: bootstrap
    /// requests, operation commands, the drain command (C6). A liveness mechanism:
    /// without it a lost message can stall a drain for good (L1).
    Resend,
}

impl Guard {
    /// Every guard, in a stable order.
    pub const ALL: [Guard; 22] = [
        Guard::SingleStep,
        Guard::TermFencing,
        Guard::EpochFencing,
        Guard::WorkFencing,
        Guard::DropStaleReports,
        Guard::DropRegressingReports,
        Guard::ResetOnNewIncarnation,
        Guard::StoppingWhenEmpty,
        Guard::StoppingOnlyTarget,
        Guard::StoppingAtDrainingEpoch,
        Guard::CountInFlight,
        Guard::AliveDestination,
        Guard::FreshDestination,
        Guard::SpareDrainTarget,
        Guard::RemoveBeforeAdd,
        Guard::RejectWhileStopping,
        Guard::BootstrapBeforeServing,
        Guard::CampaignOnlyAlive,
        Guard::ElectedTermsOnly,
        Guard::BalanceHysteresis,
        Guard::RefuseOwnNode,
        Guard::Resend,
    ];

    /// The guard's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Guard::SingleStep => "single-step",
            Guard::TermFencing => "term-fencing",
            Guard::EpochFencing => "epoch-fencing",
            Guard::WorkFencing => "work-fencing",
            Guard::DropStaleReports => "drop-stale-reports",
            Guard::DropRegressingReports => "drop-regressing-reports",
            Guard::ResetOnNewIncarnation => "reset-on-new-incarnation",
            Guard::StoppingWhenEmpty => "stopping-when-empty",
            Guard::StoppingOnlyTarget => "stopping-only-target",
            Guard::StoppingAtDrainingEpoch => "stopping-at-draining-epoch",
            Guard::CountInFlight => "count-in-flight",
            Guard::AliveDestination => "alive-destination",
            Guard::FreshDestination => "fresh-destination",
            Guard::SpareDrainTarget => "spare-drain-target",
            Guard::RemoveBeforeAdd => "remove-before-add",
            Guard::RejectWhileStopping => "reject-while-stopping",
            Guard::BootstrapBeforeServing => "bootstrap-before-serving",
            Guard::CampaignOnlyAlive => "campaign-only-alive",
            Guard::ElectedTermsOnly => "elected-terms-only",
            Guard::BalanceHysteresis => "balance-hysteresis",
            Guard::RefuseOwnNode => "refuse-own-node",
            Guard::Resend => "resend",
        }
    }

    /// One line on what the guard does.
    pub fn describe(self) -> &'static str {
        match self {
            Guard::SingleStep => "liveness moves only by single forward steps",
            Guard::TermFencing => "nodes ignore commands from an older coordinator term",
            Guard::EpochFencing => "SetNodeLiveness applies only to the incarnation it names",
            Guard::WorkFencing => {
                "AddWork/RemoveWork apply only to the incarnation they name, newest first"
            }
            Guard::DropStaleReports => "the coordinator drops reports with a lower epoch",
            Guard::DropRegressingReports => {
                "the coordinator drops same-epoch reports with a lower liveness"
            }
            Guard::ResetOnNewIncarnation => {
                "a higher epoch forgets every observation of the old incarnation"
            }
            Guard::StoppingWhenEmpty => {
                "Stopping is requested only when nothing remains on the target"
            }
            Guard::StoppingOnlyTarget => {
                "Stopping is requested only for the drain session's target"
            }
            Guard::StoppingAtDrainingEpoch => {
                "Stopping is requested only at the epoch observed Draining"
            }
            Guard::CountInFlight => "remaining counts in-flight operations on the target",
            Guard::AliveDestination => "new work goes only to nodes observed Alive",
            Guard::FreshDestination => "new work goes only to nodes with a fresh report",
            Guard::SpareDrainTarget => "new work never goes to a pending drain target",
            Guard::RemoveBeforeAdd => "a move stops the unit on its origin before adding it",
            Guard::RejectWhileStopping => "a Stopping node rejects new work units",
            Guard::BootstrapBeforeServing => {
                "a new coordinator serves nothing until every member answered its bootstrap"
            }
            Guard::CampaignOnlyAlive => "only an Alive node campaigns to become coordinator",
            Guard::ElectedTermsOnly => {
                "a node follows a newer term only once the election shows it"
            }
            Guard::BalanceHysteresis => "balance moves only when loads differ by two or more",
            Guard::RefuseOwnNode => "draining the coordinator's own node is refused",
            Guard::Resend => "the coordinator re-sends unacknowledged commands on its timer",
        }
    }
}

impl fmt::Display for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Guard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Guard::ALL
            .into_iter()
            .find(|g| g.name() == s)
            .ok_or_else(|| {
                format!("unknown guard {s:?} (`ebbtide check --list-guards` lists them)")
            })
    }
}

/// Which guards are on. The default has every guard on, and that is all the runtime uses.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Guards {
    off: u32,
}

impl Guards {
    /// Every guard on: what the runtime uses.
    pub const ALL_ON: Guards = Guards { off: 0 };

    /// Whether `guard` is on.
    pub fn on(self, guard: Guard) -> bool {
        self.off & (1 << guard as u32) == 0
    }

    /// The same set with `guard` switched off (model checker only).
    pub fn without(self, guard: Guard) -> Guards {
        Guards {
            off: self.off | (1 << guard as u32),
        }
    }

    /// The guards that are switched off.
    pub fn disabled(self) -> impl Iterator<Item = Guard> {
        Guard::ALL.into_iter().filter(move |g| !self.on(*g))
    }
}

impl fmt::Debug for Guards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.off == 0 {
            return f.write_str("all guards on");
        }
        let off: Vec<_> = self.disabled().map(Guard::name).collect();
        write!(f, "without {}", off.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names: Vec<_> = Guard::ALL.iter().map(|g| g.name()).collect();
        for g in Guard::ALL {
            assert_eq!(g.name().parse::<Guard>(), Ok(g));
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Guard::ALL.len());
    }

    #[test]
    fn without_switches_off_exactly_one_guard() {
        let g = Guards::default().without(Guard::TermFencing);
        for guard in Guard::ALL {
            assert_eq!(g.on(guard), guard != Guard::TermFencing);
        }
        assert_eq!(g.disabled().collect::<Vec<_>>(), vec![Guard::TermFencing]);
    }

    #[test]
    fn unknown_guard_names_the_input() {
        let err = "no-such".parse::<Guard>().unwrap_err();
        assert!(err.contains("no-such"));
    }
}
