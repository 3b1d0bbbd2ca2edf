//! Static membership (`--peer`, `--coordinator`): the members and the coordinator are
//! fixed by flags, and the coordinator's work units live in its data directory.
//!
//! There is no service to watch, so joins and leaves travel as messages: a starting
//! incarnation announces itself to the coordinator's node, and one that exits after
//! its drain announces that it leaves (the Peer service's `Membership` call, retried
//! until the coordinator's node acknowledges it). The coordinator then gets
//! `MemberJoined`/`MemberLeft` just as under etcd, so a completed drain of a node that
//! exited stays answered 0 (its tombstone) however late a client polls.

use super::MembershipError;
use crate::node::cluster::Cluster;
use crate::node::storage::DataDir;
use crate::wire::pb;
use ebbtide_model::Epoch;
use std::time::Duration;

/// How long a node keeps trying to announce that it leaves before it exits anyway.
const LEAVE_PATIENCE: Duration = Duration::from_secs(5);
/// Pause between attempts to announce a change.
const RETRY: Duration = Duration::from_millis(200);

/// The static membership of one node.
#[derive(Clone, Debug)]
pub struct StaticMembership {
    data: DataDir,
}

impl StaticMembership {
    /// Static membership keeping the work units in `data` (read only on the
    /// coordinator's node).
    pub fn new(data: DataDir) -> Self {
        StaticMembership { data }
    }

    pub(super) fn units(&self) -> Result<Vec<String>, MembershipError> {
        self.data.units().map_err(MembershipError::Failed)
    }

    pub(super) fn persist_units(&self, all: &[&String]) -> Result<(), MembershipError> {
        self.data.persist_units(all.iter().copied()).map_err(|e| {
            MembershipError::Failed(format!(
                "cannot persist work units in {}: {e}",
                self.data.path().display()
            ))
        })
    }

    /// Tells the coordinator's node that incarnation `epoch` of this node joined
    /// (`joined`) or leaves. A join is retried until acknowledged (it runs in the
    /// background); a leave for at most `LEAVE_PATIENCE` (5 s).
    pub async fn announce(&self, cluster: &Cluster, epoch: Epoch, joined: bool) {
        let deadline = tokio::time::Instant::now() + LEAVE_PATIENCE;
        let own = cluster.addresses().get(&cluster.id).cloned();
        let change = pb::MembershipChange {
            node_id: cluster.id.clone(),
            epoch,
            joined,
            grpc_address: own.as_ref().map(|a| a.grpc.clone()).unwrap_or_default(),
            http_address: own.and_then(|a| a.http).unwrap_or_default(),
        };
        loop {
            match Self::send(cluster, change.clone()).await {
                Ok(()) => {
                    tracing::info!(node = %cluster.id, epoch, joined, "membership change acknowledged by the coordinator");
                    return;
                }
                Err(e) => {
                    tracing::debug!(node = %cluster.id, epoch, joined, error = %e, "membership change not delivered yet")
                }
            }
            if !joined && tokio::time::Instant::now() >= deadline {
                tracing::warn!(node = %cluster.id, epoch, "could not tell the coordinator that this node leaves; it will see the node Unknown");
                return;
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    async fn send(cluster: &Cluster, change: pb::MembershipChange) -> Result<(), String> {
        let Some(coordinator) = cluster.coordinator_id() else {
            return Err("no coordinator known".into());
        };
        if coordinator == cluster.id {
            // This process coordinates: nothing to tell anyone (a coordinator's own
            // node never leaves while it coordinates).
            return Ok(());
        }
        let addr = cluster
            .grpc_of(&coordinator)
            .ok_or_else(|| format!("no address for coordinator {coordinator}"))?;
        let channel = cluster
            .dialer()
            .channel(&coordinator, &addr, Duration::from_secs(2))?;
        let mut client = pb::peer_client::PeerClient::new(channel);
        client
            .membership(change)
            .await
            .map(drop)
            .map_err(|s| format!("{}: {}", s.code(), s.message()))
    }
}
