//! A membership service supplied from outside the library: the seam a deterministic
//! simulation (or any other coordination service) plugs in through
//! [`crate::node::env::Env::membership`], run by the node exactly as it runs etcd's.
//!
//! # What an implementation must guarantee
//!
//! The node's safety argument rests on etcd's semantics, so an implementation must
//! have them (`etcd.rs` documents how the etcd service gets each one):
//!
//! - **A lease per process, with a TTL, kept alive by the process.** [`ElectedMembership::register`]
//!   grants it; the implementation keeps it alive in the background. The service
//!   expires a lease a TTL after the last keep-alive it received, whether the process
//!   crashed, was paused, or was cut off from the service.
//! - **A local lease deadline before the service's expiry.**
//!   [`ElectedMembership::lease_deadline`] is [`super::fence_deadline`] of the send
//!   time of the last confirmed keep-alive: a margin before that time plus the TTL,
//!   which the service cannot have reached yet (at exactly `sent + TTL` the two can
//!   coincide, and the coordinator may move the units first).
//!   When it passes without a newer confirmation, the implementation sends `Deposed`
//!   (if this process leads) and then [`Event::LeaseLost`], and nothing after it: the
//!   node fences itself and exits (one process is one incarnation).
//! - **Registrations under the lease, with epochs the service hands out.** A
//!   registration of a node id gets an epoch larger than every earlier one of that
//!   id, and than `floor` (the data dir's last epoch); a second live registration of
//!   an id is refused with [`MembershipError::IdTaken`]. The registration vanishes
//!   with the lease.
//! - **An election whose terms grow.** A candidacy (under the lease) is queued; the
//!   leader is the oldest live candidate, and its term is larger than every earlier
//!   leader's term (etcd: the candidate key's create revision). The winner gets
//!   [`Event::Elected`]; a leader that resigns gets `Deposed` before its candidacy
//!   goes.
//! - **Watch events, in the order the service committed them.** After
//!   [`ElectedMembership::start`]: a [`Event::Snapshot`] first, then `Joined`, `Left`
//!   (a leave or an expired lease) and `Leader` for every leader change. They may
//!   arrive late, but never out of order and never lost while the lease lives.
//! - **A fresh view after every win.** [`Event::Elected`] is followed by a `Snapshot`
//!   of the registry read at or after the win, and by no member event older than it
//!   (a watch that lags is started over from that snapshot). The new coordinator
//!   starts from it: a lagging view could lack a member that runs units, which the
//!   coordinator would then place again (S5).
//! - **Desired units stored durably.** [`ElectedMembership::add_units`] answers only
//!   once the units are stored where the next leader's [`ElectedMembership::units`]
//!   reads them: the coordinator feeds `AddUnit` to its core only after it answered.

use super::{Event, Member, MembershipError, Registration};
use crate::node::env::BoxFuture;
use ebbtide_model::Epoch;
use std::fmt;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// An elected membership service for one process (one incarnation): see the module
/// docs for the semantics it must have. Methods mirror the etcd service's.
pub trait ElectedMembership: Send + Sync + fmt::Debug + 'static {
    /// Grants the lease, starts keeping it alive, and registers `reg` under it with
    /// the next epoch of its id (above `floor`). Called once.
    fn register(
        &self,
        reg: Registration,
        floor: Epoch,
    ) -> BoxFuture<'_, Result<Member, MembershipError>>;
    /// Starts delivering events to `events` (a `Snapshot` first). Called once, after
    /// `register`.
    fn start(&self, events: mpsc::Sender<Event>);
    /// The local lease deadline (see the module docs); `None` before `register`.
    fn lease_deadline(&self) -> Option<Instant>;
    /// Queues a candidacy (idempotent while one is queued or won); `Elected` when won.
    fn campaign(&self);
    /// Withdraws the candidacy, and gives up the leadership if held (`Deposed` first).
    fn resign(&self) -> BoxFuture<'_, Result<(), MembershipError>>;
    /// Leaves for good: `Deposed` if leading, no `LeaseLost`, the lease revoked.
    fn leave(&self) -> BoxFuture<'_, Result<(), MembershipError>>;
    /// The desired work units.
    fn units(&self) -> BoxFuture<'_, Result<Vec<String>, MembershipError>>;
    /// Durably adds desired units; answers how many were new.
    fn add_units<'a>(
        &'a self,
        units: &'a [String],
    ) -> BoxFuture<'a, Result<usize, MembershipError>>;
}
