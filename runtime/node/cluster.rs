//! What this process knows of the cluster: the members' addresses, the coordinator
//! the election service last named, and the coordinator task when it runs here.
//!
//! The membership task writes it (from membership events, and when this process wins
//! or loses the election); the transport, the gRPC services and the HTTP API read it.
//! It decides nothing: who may be followed or drained is the core's business. It only
//! says where bytes go.

use super::api::CoordAccess;
use super::coordinator_task::CoordHandle;
use super::transport::Dialer;
use crate::membership::Member;
use ebbtide_model::{Epoch, Term};
use std::collections::BTreeMap;
use std::sync::{Mutex, RwLock};

/// A member's addresses and incarnation, as last registered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    /// The incarnation registered (0 under static membership until it reports).
    pub epoch: Epoch,
    /// Its gRPC address.
    pub grpc: String,
    /// Its HTTP address, where known.
    pub http: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    members: BTreeMap<String, Address>,
    /// The coordinator as the election service last named it: (term, node). Under
    /// static membership the term is not known (0): it is the coordinator's epoch.
    leader: Option<(Term, String)>,
    /// The coordinator task, while this process coordinates.
    local: Option<CoordHandle>,
}

/// The shared directory of one node process.
#[derive(Debug)]
pub struct Cluster {
    /// This node's id.
    pub id: String,
    inner: RwLock<Inner>,
    /// Operator clients to remote coordinators, by gRPC address, so that forwarding
    /// reuses one HTTP/2 connection.
    remotes: Mutex<BTreeMap<String, CoordAccess>>,
    /// How to dial the members (plain or TLS).
    dialer: Dialer,
}

impl Cluster {
    /// A directory that knows only `id`'s own entry.
    pub fn new(id: &str, own: Address) -> Self {
        let mut inner = Inner::default();
        inner.members.insert(id.to_owned(), own);
        Cluster {
            id: id.to_owned(),
            inner: RwLock::new(inner),
            remotes: Mutex::new(BTreeMap::new()),
            dialer: Dialer::plain(),
        }
    }

    /// Dials the members with `dialer` (TLS) instead of in plain text.
    pub fn with_dialer(mut self, dialer: Dialer) -> Self {
        self.dialer = dialer;
        self
    }

    /// How this process dials the members.
    pub fn dialer(&self) -> &Dialer {
        &self.dialer
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a member's addresses (a registration, or a `--peer` flag).
    pub fn upsert(&self, node: &str, address: Address) {
        self.write().members.insert(node.to_owned(), address);
    }

    /// Records a registered member.
    pub fn upsert_member(&self, m: &Member) {
        self.upsert(
            m.node(),
            Address {
                epoch: m.epoch,
                grpc: m.registration.grpc.clone(),
                http: Some(m.registration.http.clone()),
            },
        );
    }

    /// Forgets a member that left, if `epoch` is the incarnation recorded (a late
    /// leave of an older incarnation does not erase a newer one's addresses).
    pub fn remove(&self, node: &str, epoch: Epoch) {
        let mut inner = self.write();
        if node != self.id && inner.members.get(node).is_some_and(|a| a.epoch <= epoch) {
            inner.members.remove(node);
        }
    }

    /// Every member this process knows of, in id order.
    pub fn members(&self) -> Vec<String> {
        self.read().members.keys().cloned().collect()
    }

    /// Every member's addresses.
    pub fn addresses(&self) -> BTreeMap<String, Address> {
        self.read().members.clone()
    }

    /// The gRPC address of `node`, if known.
    pub fn grpc_of(&self, node: &str) -> Option<String> {
        self.read().members.get(node).map(|a| a.grpc.clone())
    }

    /// The coordinator the election service named last: (term, node).
    pub fn leader(&self) -> Option<(Term, String)> {
        self.read().leader.clone()
    }

    /// Records the coordinator the election service named.
    pub fn set_leader(&self, term: Term, node: &str) {
        let mut inner = self.write();
        if inner.leader.as_ref().is_none_or(|(t, _)| *t <= term) {
            inner.leader = Some((term, node.to_owned()));
        }
    }

    /// The coordinator task, while it runs in this process.
    pub fn local_coordinator(&self) -> Option<CoordHandle> {
        self.read().local.clone()
    }

    /// Installs (or, with `None`, removes) this process's coordinator task.
    pub fn set_local_coordinator(&self, handle: Option<CoordHandle>) {
        self.write().local = handle;
    }

    /// The node that coordinates, as far as this process knows: this one while its
    /// coordinator runs, else the one the election service named.
    pub fn coordinator_id(&self) -> Option<String> {
        let inner = self.read();
        if inner.local.is_some() {
            return Some(self.id.clone());
        }
        inner.leader.as_ref().map(|(_, n)| n.clone())
    }

    /// The way to the coordinator: in this process, or over gRPC to the node the
    /// election service named. `None` while no coordinator is known.
    pub fn coordinator(&self) -> Result<CoordAccess, String> {
        if let Some(h) = self.local_coordinator() {
            return Ok(CoordAccess::Local(h));
        }
        let Some((_, node)) = self.leader() else {
            return Err("no coordinator is known yet (an election is under way)".into());
        };
        if node == self.id {
            return Err(format!(
                "this node ({node}) was named coordinator but its coordinator is not running \
                 (it is starting, or has just stopped)"
            ));
        }
        let addr = self
            .grpc_of(&node)
            .ok_or_else(|| format!("coordinator {node}: its address is not known yet"))?;
        let mut remotes = self.remotes.lock().unwrap_or_else(|e| e.into_inner());
        let key = format!("{node}@{addr}");
        if let Some(a) = remotes.get(&key) {
            return Ok(a.clone());
        }
        let access = CoordAccess::remote(&self.dialer, &node, &addr)?;
        remotes.insert(key, access.clone());
        Ok(access)
    }
}
