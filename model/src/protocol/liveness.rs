//! Node liveness and its single-step store (specs/protocol.md §2).

use crate::protocol::guards::{Guard, Guards};
use std::fmt;
use std::str::FromStr;

/// A node's own liveness. It only moves forward, one step at a time:
/// Alive → Draining → Stopping.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Liveness {
    /// May receive new work and may campaign to become coordinator.
    #[default]
    Alive,
    /// Receives no new placement; in-flight adds still complete; may not campaign.
    Draining,
    /// Rejects every new work unit; the process is about to exit.
    Stopping,
}

impl Liveness {
    /// Every value, in order.
    pub const ALL: [Liveness; 3] = [Liveness::Alive, Liveness::Draining, Liveness::Stopping];

    /// The one state this one may step to, if any.
    pub fn successor(self) -> Option<Liveness> {
        match self {
            Liveness::Alive => Some(Liveness::Draining),
            Liveness::Draining => Some(Liveness::Stopping),
            Liveness::Stopping => None,
        }
    }

    /// Lower-case name, as used on the command line, in JSON and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::Alive => "alive",
            Liveness::Draining => "draining",
            Liveness::Stopping => "stopping",
        }
    }

    /// Attempts the single-step store: moves `self` to `target` only when `target` is the
    /// successor of `self`. Every other request (backwards, skipping, same value) changes
    /// nothing. Returns whether the value changed.
    ///
    /// With the `single-step` guard off (checker only), any different value is stored.
    pub fn store(&mut self, target: Liveness, guards: Guards) -> bool {
        let allowed = if guards.on(Guard::SingleStep) {
            self.successor() == Some(target)
        } else {
            *self != target
        };
        if allowed {
            *self = target;
        }
        allowed
    }
}

impl fmt::Display for Liveness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Liveness {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "alive" => Ok(Liveness::Alive),
            "draining" => Ok(Liveness::Draining),
            "stopping" => Ok(Liveness::Stopping),
            other => Err(format!(
                "unknown liveness {other:?}: expected alive, draining or stopping"
            )),
        }
    }
}

/// The coordinator's view of a node's liveness: what was last reported, or `Unknown`
/// when no report arrived within the liveness TTL.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ViewLiveness {
    Alive,
    Draining,
    Stopping,
    /// No fresh report. Never Alive for placement, never Stopping for completion.
    Unknown,
}

impl ViewLiveness {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ViewLiveness::Alive => "alive",
            ViewLiveness::Draining => "draining",
            ViewLiveness::Stopping => "stopping",
            ViewLiveness::Unknown => "unknown",
        }
    }
}

impl From<Liveness> for ViewLiveness {
    fn from(l: Liveness) -> Self {
        match l {
            Liveness::Alive => ViewLiveness::Alive,
            Liveness::Draining => ViewLiveness::Draining,
            Liveness::Stopping => ViewLiveness::Stopping,
        }
    }
}

impl fmt::Display for ViewLiveness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{quickcheck, Arbitrary, Gen};

    impl Arbitrary for Liveness {
        fn arbitrary(g: &mut Gen) -> Self {
            *g.choose(&Liveness::ALL).unwrap()
        }
    }

    #[test]
    fn only_single_forward_steps_are_stored() {
        for from in Liveness::ALL {
            for to in Liveness::ALL {
                let mut l = from;
                let changed = l.store(to, Guards::default());
                let expected = from.successor() == Some(to);
                assert_eq!(changed, expected, "{from} -> {to}");
                assert_eq!(l, if expected { to } else { from }, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn without_the_guard_backward_steps_are_stored() {
        let mut l = Liveness::Stopping;
        assert!(l.store(
            Liveness::Alive,
            Guards::default().without(Guard::SingleStep)
        ));
        assert_eq!(l, Liveness::Alive);
    }

    #[test]
    fn parses_names_case_insensitively_and_rejects_others() {
        assert_eq!("Draining".parse::<Liveness>(), Ok(Liveness::Draining));
        let err = "paused".parse::<Liveness>().unwrap_err();
        assert!(err.contains("paused"), "{err}");
    }

    quickcheck! {
        /// Random store sequences never regress liveness and never skip a step.
        fn random_store_sequences_never_regress(targets: Vec<Liveness>) -> bool {
            let mut l = Liveness::Alive;
            targets.into_iter().all(|t| {
                let before = l;
                l.store(t, Guards::default());
                l == before || Some(l) == before.successor()
            })
        }
    }
}
