//! The membership seam: who is in the cluster, who coordinates, and whether this
//! process still holds its place. Two services sit behind it:
//!
//! - **static** (`--peer`, `--coordinator`): the members and the coordinator are fixed
//!   by flags; nothing runs beside the nodes. Good for one machine.
//! - **etcd** (`--etcd`, `--cluster`): each process registers under a lease, the
//!   coordinator is elected, and the desired work units live in etcd, so any node can
//!   take over.
//! - **custom** ([`crate::node::env::Env::membership`]): any [`ElectedMembership`] with
//!   etcd's semantics (a simulation's, in the test crate), run exactly as etcd's.
//!
//! Either way the service only reports [`Event`]s. The node turns them into the core's
//! inputs (`MemberJoined`, `MemberLeft`, `LeaderChanged`, `LeaseLost`) and starts or
//! stops its coordinator; every decision about them (whom to follow, whether to
//! campaign) is the core's.

pub mod elected;
pub mod etcd;

use ebbtide_model::{Epoch, Term};
use tokio::sync::mpsc;

/// What a process registers about itself.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Registration {
    /// The node id (`--id`).
    pub node: String,
    /// The gRPC address peers reach it at.
    pub grpc: String,
    /// The HTTP address clients reach it at.
    pub http: String,
    /// The wire protocol version it speaks.
    pub version: u32,
    /// Its process id, to name the holder when a second process claims the same id.
    pub pid: u32,
    /// The machine it runs on and its data directory: a registration that names this
    /// machine and a data dir whose lock this process holds belongs to a dead earlier
    /// incarnation (its lease not yet expired), not to a live rival.
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub data_dir: String,
}

/// A member: one incarnation of a node, as the membership service lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// This incarnation's epoch.
    pub epoch: Epoch,
    /// What it registered.
    #[serde(flatten)]
    pub registration: Registration,
}

impl Member {
    /// The node id.
    pub fn node(&self) -> &str {
        &self.registration.node
    }
}

/// What the membership service reports, in the order it learned it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Every member right now. The first event, and again after the service had to
    /// start its watch over: members missing from it have left.
    Snapshot(Vec<Member>),
    /// A new incarnation registered.
    Joined(Member),
    /// An incarnation's registration is gone: it left, or its lease expired.
    Left { node: String, epoch: Epoch },
    /// The election service says `node` coordinates in `term` (seen by every process,
    /// the winner included, each in its own time).
    Leader { term: Term, node: String },
    /// This process won the election for `term`: it should start a coordinator, from
    /// the `Snapshot` that follows. An elected service sends a fresh one after every
    /// win, read after it, and no member event older than that snapshot after
    /// `Elected`: the coordinator's first view holds every registration change that
    /// the coordinators before it could have seen (`specs/protocol.md`, "the new
    /// coordinator's view": a lagging watch's view may lack a member that runs units).
    Elected { term: Term },
    /// This process no longer holds the leadership it won (it resigned, or its lease
    /// went): its coordinator must stop serving at once.
    Deposed,
    /// This process lost its membership lease: the cluster may already have moved its
    /// work, so it must fence itself.
    LeaseLost,
}

/// Why the membership service refused or failed a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipError {
    /// Another live process already holds this node id.
    IdTaken {
        node: String,
        /// What the holder registered (its addresses and pid).
        holder: Box<Registration>,
    },
    /// The service could not be reached, or did not answer in time.
    Unreachable(String),
    /// A record under the cluster's prefix could not be read.
    Malformed { key: String, error: String },
    /// Anything else the service answered.
    Failed(String),
}

impl std::fmt::Display for MembershipError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MembershipError::IdTaken { node, holder } => write!(
                f,
                "node id {node} is already registered by a live process (pid {}, gRPC {}, HTTP {}); \
                 give this process another --id, or stop that one first",
                holder.pid, holder.grpc, holder.http
            ),
            MembershipError::Unreachable(m) => write!(f, "membership service unreachable: {m}"),
            MembershipError::Malformed { key, error } => write!(f, "malformed record {key}: {error}"),
            MembershipError::Failed(m) => write!(f, "membership service: {m}"),
        }
    }
}

impl std::error::Error for MembershipError {}

pub mod fixed;

pub use elected::ElectedMembership;

/// When a process must consider its lease lost, given that the latest keep-alive that
/// the service confirmed was *sent* at `sent`: a margin before `sent + ttl`.
///
/// The service expires the lease `ttl` after it *received* that keep-alive, so `sent +
/// ttl` is never later than the expiry, but it can be the same instant: a keep-alive
/// that arrives at once. Then the coordinator may handle the member's departure (and
/// start its units elsewhere) before this process has fenced itself, and a unit runs
/// on two nodes (S5): the deterministic simulation found exactly that with zero
/// latency (`tests/sim.rs`, elected mode). The service's clock and this one may also
/// run at slightly different rates. So the process fences a margin earlier: a
/// twentieth of the TTL, at least 10 ms and at most 500 ms (100 ms for the 2 s leases
/// of the tests, 500 ms for the default 10 s).
pub fn fence_deadline(
    sent: tokio::time::Instant,
    ttl: std::time::Duration,
) -> tokio::time::Instant {
    let margin = (ttl / 20).clamp(
        std::time::Duration::from_millis(10),
        std::time::Duration::from_millis(500),
    );
    sent + ttl.saturating_sub(margin)
}
pub use fixed::StaticMembership;

/// The membership service a node runs with, chosen by its flags.
#[derive(Clone, Debug)]
pub enum Service {
    /// `--peer`/`--coordinator`: fixed members, fixed coordinator.
    Static(StaticMembership),
    /// `--etcd`: registration under a lease, election, units in etcd.
    Etcd(etcd::EtcdMembership),
    /// An elected membership supplied through the node's environment (a simulation's).
    Custom(std::sync::Arc<dyn ElectedMembership>),
}

impl Service {
    /// The work units that must run, for a coordinator that starts.
    pub async fn units(&self) -> Result<Vec<String>, MembershipError> {
        match self {
            Service::Static(s) => s.units(),
            Service::Etcd(e) => e.units().await,
            Service::Custom(c) => c.units().await,
        }
    }

    /// Durably adds work units before the coordinator is told of them; `all` is the
    /// whole desired set after the addition, `new` the units it did not have.
    pub async fn add_units(&self, all: &[&String], new: &[String]) -> Result<(), MembershipError> {
        match self {
            Service::Static(s) => s.persist_units(all),
            Service::Etcd(e) => e.add_units(new).await.map(drop),
            Service::Custom(c) => c.add_units(new).await.map(drop),
        }
    }

    /// Campaigns for leadership (only while the core says this node may).
    pub fn campaign(&self) {
        match self {
            Service::Static(_) => {}
            Service::Etcd(e) => e.campaign(),
            Service::Custom(c) => c.campaign(),
        }
    }

    /// Withdraws the candidacy and gives up leadership if held.
    pub async fn resign(&self) -> Result<(), MembershipError> {
        match self {
            Service::Static(_) => Ok(()),
            Service::Etcd(e) => e.resign().await,
            Service::Custom(c) => c.resign().await,
        }
    }

    /// Whether this process still holds its place: always under static membership;
    /// under etcd, until the local lease deadline (after which etcd may already have
    /// expired the lease and the cluster moved this node's work). The node's tasks ask
    /// before every step: a process resumed after a pause past its deadline must fence
    /// itself before it acts on anything that waited meanwhile.
    pub fn holds_lease(&self) -> bool {
        let deadline = match self {
            Service::Static(_) => return true,
            Service::Etcd(e) => e.lease_deadline(),
            Service::Custom(c) => c.lease_deadline(),
        };
        deadline.is_none_or(|d| tokio::time::Instant::now() < d)
    }

    /// Whether another node can take over when this one resigns.
    pub fn has_election(&self) -> bool {
        !matches!(self, Service::Static(_))
    }

    /// Registers this incarnation (elected services only; see
    /// [`ElectedMembership::register`]).
    pub(crate) async fn register(
        &self,
        reg: Registration,
        floor: Epoch,
    ) -> Result<Member, MembershipError> {
        match self {
            Service::Static(_) => Err(MembershipError::Failed(
                "static membership has no registry".into(),
            )),
            Service::Etcd(e) => e.register(reg, floor).await,
            Service::Custom(c) => c.register(reg, floor).await,
        }
    }

    /// Starts the event streams (elected services only).
    pub(crate) fn start(&self, events: mpsc::Sender<Event>) {
        match self {
            Service::Static(_) => {}
            Service::Etcd(e) => e.start(events),
            Service::Custom(c) => c.start(events),
        }
    }

    /// Leaves membership for good (this incarnation exits): the coordinator then
    /// gets `MemberLeft`, and a completed drain of this node stays answered 0.
    pub async fn leave(&self, cluster: &crate::node::cluster::Cluster, epoch: Epoch) {
        match self {
            Service::Static(s) => s.announce(cluster, epoch, false).await,
            Service::Etcd(e) => {
                if let Err(err) = e.leave().await {
                    tracing::warn!(error = %err, "cannot revoke the membership lease: the registration expires with it");
                }
            }
            Service::Custom(c) => {
                if let Err(err) = c.leave().await {
                    tracing::warn!(error = %err, "cannot revoke the membership lease: the registration expires with it");
                }
            }
        }
    }
}
