//! The coordinator's liveness view of every member (specs/protocol.md §5, C1–C4).

use crate::protocol::guards::{Guard, Guards};
use crate::protocol::ids::{Epoch, Key};
use crate::protocol::liveness::{Liveness, ViewLiveness};
use std::collections::BTreeMap;

/// What the coordinator has observed of one node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NodeRecord {
    /// The incarnation last reported; 0 before the first report.
    pub epoch: Epoch,
    /// The liveness last reported by that incarnation.
    pub liveness: Liveness,
    /// Whether a report arrived within the liveness TTL.
    pub fresh: bool,
}

impl NodeRecord {
    /// The record as placement and completion see it: Unknown unless fresh.
    pub fn view(&self) -> ViewLiveness {
        if self.fresh && self.epoch > 0 {
            self.liveness.into()
        } else {
            ViewLiveness::Unknown
        }
    }

    /// Observed Alive and fresh: a valid destination for new work.
    pub fn is_alive_and_fresh(&self) -> bool {
        self.view() == ViewLiveness::Alive
    }
}

/// How a report changed the view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// Stale (lower epoch) or regressing (same epoch, lower liveness): ignored.
    Dropped,
    /// Same incarnation, same or higher liveness: recorded and fresh again.
    Recorded { changed: bool },
    /// A higher epoch: a new incarnation replaced the old record entirely.
    NewIncarnation,
}

/// Observed (epoch, liveness, freshness) of every member.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LivenessView<N: Ord> {
    nodes: BTreeMap<N, NodeRecord>,
    /// How many members have reported and were observed Draining or Stopping: the
    /// schedulers ask "does any node drain?" after every input (C12, C14), and a count
    /// kept where records change answers it without visiting every member. A function
    /// of `nodes`, so it changes no state's identity.
    draining: usize,
}

impl<N: Ord> Default for LivenessView<N> {
    fn default() -> Self {
        LivenessView {
            nodes: BTreeMap::new(),
            draining: 0,
        }
    }
}

/// Whether `rec` counts in [`LivenessView::any_draining`].
fn drains(rec: &NodeRecord) -> bool {
    rec.epoch > 0 && rec.liveness >= Liveness::Draining
}

impl<N: Key> LivenessView<N> {
    /// Adds a member not heard from yet (Unknown).
    pub fn add(&mut self, node: N) {
        self.nodes.entry(node).or_default();
    }

    /// Adds a member that joined as incarnation `epoch`: a new process starts Alive, and
    /// is Unknown until it reports.
    pub fn add_incarnation(&mut self, node: N, epoch: Epoch) {
        // Alive: it does not count as draining.
        self.nodes.entry(node).or_insert(NodeRecord {
            epoch,
            liveness: Liveness::Alive,
            fresh: false,
        });
    }

    /// A member registered as incarnation `epoch`: if that is newer than the record's,
    /// the record is that new process's (Alive, Unknown until it reports), and reports
    /// of older incarnations are stale from now on. Answers whether it replaced an
    /// incarnation the coordinator had heard from.
    pub fn registered(&mut self, node: &N, epoch: Epoch) -> bool {
        let Some(rec) = self.nodes.get_mut(node).filter(|r| r.epoch < epoch) else {
            return false;
        };
        let (known, drained) = (rec.epoch > 0, drains(rec));
        *rec = NodeRecord {
            epoch,
            liveness: Liveness::Alive,
            fresh: false,
        };
        if drained {
            self.draining -= 1;
        }
        known
    }

    /// Forgets a member that left.
    pub fn remove(&mut self, node: &N) -> Option<NodeRecord> {
        let rec = self.nodes.remove(node)?;
        if drains(&rec) {
            self.draining -= 1;
        }
        Some(rec)
    }

    /// Whether some member that reported was observed Draining or Stopping.
    pub fn any_draining(&self) -> bool {
        self.draining > 0
    }

    /// Whether `node` is a member.
    pub fn contains(&self, node: &N) -> bool {
        self.nodes.contains_key(node)
    }

    /// The record of `node`, if it is a member.
    pub fn get(&self, node: &N) -> Option<&NodeRecord> {
        self.nodes.get(node)
    }

    /// Every member and its record, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&N, &NodeRecord)> + '_ {
        self.nodes.iter()
    }

    /// The one routine every heartbeat, bootstrap response and SetNodeLivenessResponse
    /// goes through. C1 drops lower epochs, C2 starts over on a higher epoch, C3
    /// drops same-epoch regressions. Reports from non-members are dropped.
    pub fn observe(
        &mut self,
        node: &N,
        epoch: Epoch,
        liveness: Liveness,
        guards: Guards,
    ) -> Observed {
        let Some(rec) = self.nodes.get_mut(node) else {
            return Observed::Dropped;
        };
        let before = drains(rec);
        let observed = Self::observe_record(rec, epoch, liveness, guards);
        match (before, drains(rec)) {
            (false, true) => self.draining += 1,
            (true, false) => self.draining -= 1,
            _ => {}
        }
        observed
    }

    fn observe_record(
        rec: &mut NodeRecord,
        epoch: Epoch,
        liveness: Liveness,
        guards: Guards,
    ) -> Observed {
        if epoch < rec.epoch && guards.on(Guard::DropStaleReports) {
            return Observed::Dropped;
        }
        if epoch > rec.epoch && guards.on(Guard::ResetOnNewIncarnation) {
            *rec = NodeRecord {
                epoch,
                liveness,
                fresh: true,
            };
            return Observed::NewIncarnation;
        }
        // Same incarnation (or, with a guard off, an epoch treated as if it were).
        rec.epoch = epoch;
        if liveness < rec.liveness && guards.on(Guard::DropRegressingReports) {
            return Observed::Dropped;
        }
        let changed = liveness != rec.liveness;
        rec.liveness = liveness;
        rec.fresh = true;
        Observed::Recorded { changed }
    }

    /// The liveness TTL of `node` ran out with no report: it is Unknown until the next one.
    pub fn expire(&mut self, node: &N) -> bool {
        match self.nodes.get_mut(node) {
            Some(rec) if rec.fresh => {
                rec.fresh = false;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{quickcheck, Arbitrary, Gen};

    fn view() -> LivenessView<u8> {
        let mut v = LivenessView::default();
        v.add(1);
        v
    }
    const ON: Guards = Guards::ALL_ON;

    #[test]
    fn c1_lower_epoch_is_dropped() {
        let mut v = view();
        v.observe(&1, 3, Liveness::Alive, ON);
        assert_eq!(v.observe(&1, 2, Liveness::Stopping, ON), Observed::Dropped);
        assert_eq!(v.get(&1).unwrap().epoch, 3);
    }

    #[test]
    fn c2_higher_epoch_replaces_the_record() {
        let mut v = view();
        v.observe(&1, 1, Liveness::Draining, ON);
        assert_eq!(
            v.observe(&1, 2, Liveness::Alive, ON),
            Observed::NewIncarnation
        );
        let rec = v.get(&1).unwrap();
        assert_eq!((rec.epoch, rec.liveness), (2, Liveness::Alive));
    }

    #[test]
    fn c3_same_epoch_regression_is_dropped() {
        let mut v = view();
        v.observe(&1, 1, Liveness::Stopping, ON);
        assert_eq!(v.observe(&1, 1, Liveness::Draining, ON), Observed::Dropped);
        assert_eq!(v.get(&1).unwrap().liveness, Liveness::Stopping);
    }

    #[test]
    fn c4_expired_node_is_unknown_until_next_report() {
        let mut v = view();
        assert_eq!(v.get(&1).unwrap().view(), ViewLiveness::Unknown);
        v.observe(&1, 1, Liveness::Alive, ON);
        assert!(v.get(&1).unwrap().is_alive_and_fresh());
        assert!(v.expire(&1));
        assert_eq!(v.get(&1).unwrap().view(), ViewLiveness::Unknown);
        assert!(!v.get(&1).unwrap().is_alive_and_fresh());
        v.observe(&1, 1, Liveness::Alive, ON);
        assert_eq!(v.get(&1).unwrap().view(), ViewLiveness::Alive);
    }

    #[test]
    fn expiring_an_expired_record_is_a_no_op() {
        let mut v = view();
        v.observe(&1, 1, Liveness::Draining, ON);
        assert!(v.expire(&1));
        let expired = *v.get(&1).unwrap();
        assert!(!v.expire(&1), "a second expiry reports no change");
        assert_eq!(*v.get(&1).unwrap(), expired);
        // Never heard from, and not a member: nothing to expire.
        let mut v = view();
        assert!(!v.expire(&1));
        assert!(!v.expire(&9));
    }

    #[test]
    fn non_members_are_dropped() {
        let mut v = view();
        assert_eq!(v.observe(&9, 1, Liveness::Alive, ON), Observed::Dropped);
        assert!(!v.contains(&9));
    }

    #[derive(Clone, Debug)]
    struct Report(u64, Liveness);
    impl Arbitrary for Report {
        fn arbitrary(g: &mut Gen) -> Self {
            let l = *g.choose(&Liveness::ALL).unwrap();
            Report(u64::arbitrary(g) % 4, l)
        }
    }

    quickcheck! {
        /// Random sequences of reports (stale, duplicated, reordered) never roll the
        /// recorded (epoch, liveness) back.
        fn random_reports_never_roll_the_view_back(reports: Vec<Report>) -> bool {
            let mut v = view();
            let mut last = (0, Liveness::Alive);
            reports.into_iter().all(|Report(e, l)| {
                v.observe(&1, e, l, ON);
                let rec = v.get(&1).unwrap();
                let now = (rec.epoch, rec.liveness);
                let ok = now >= last;
                last = now;
                ok
            })
        }
    }
}
