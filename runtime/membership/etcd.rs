//! The etcd membership service: registration under a lease, a member watch, an
//! election, and the desired work units, all in one etcd cluster shared by any number of
//! ebbtide clusters (each under its own `/<cluster>` prefix).
//!
//! # Key layout
//!
//! | key | value | lease | written by |
//! | --- | --- | --- | --- |
//! | `/<cluster>/members/<id>` | JSON of [`Member`] (epoch + [`Registration`]) | the process's | [`EtcdMembership::register`] |
//! | `/<cluster>/epochs/<id>` | the last epoch given to `<id>`, in decimal | none: it outlives every process | [`EtcdMembership::register`] |
//! | `/<cluster>/election/<lease hex>` | the candidate's node id | the process's | etcd's election API ([`EtcdMembership::campaign`]) |
//! | `/<cluster>/work/<unit>` | empty | none | [`EtcdMembership::add_units`] |
//!
//! One lease per process holds its registration and its candidacy, so both vanish
//! together when the process leaves ([`EtcdMembership::leave`] revokes the lease) or dies
//! (etcd expires the lease a TTL after the last keep-alive).
//!
//! # The epoch rule
//!
//! Each registration of a node id gets an epoch larger than every earlier one of that id,
//! so that peers can tell a restarted node from its previous incarnation. `register`
//! reads the counter `/<cluster>/epochs/<id>` and, in one transaction that succeeds only
//! if the counter was not modified since (compare on its mod revision) and no live
//! registration of the id exists, writes `max(counter, floor) + 1` to both the counter
//! and the registration. The counter is never under a lease, so it survives the process
//! and its data dir; `floor` (the data dir's last epoch) covers a wiped etcd. Two
//! processes racing for one id: one transaction wins, the other sees the winner's
//! registration and gets [`MembershipError::IdTaken`].
//!
//! # The term rule
//!
//! A leader's term is the create revision of its candidate key. etcd's revision is one
//! counter for the whole store and the leader is always the oldest candidate key, so
//! each new leader's term is larger than every earlier leader's (the argument is in the
//! `election` submodule). A wiped etcd starts its revisions, and so the terms, over
//! from 1: unlike epochs, terms have no floor here.
//!
//! # When etcd is down
//!
//! Nothing here decides anything; the node does, from the events:
//! - The keep-alive keeps a **local lease deadline**: TTL after the send time of the last
//!   keep-alive that etcd confirmed. etcd cannot expire the lease before that moment, so
//!   when the deadline passes without a newer confirmation the service sends `Deposed`
//!   (if this process leads) and `LeaseLost` *no later than* etcd could expire it, even
//!   if etcd is unreachable, or this process was paused or SIGSTOPped. After `LeaseLost`
//!   nothing more is sent: the node fences itself and exits.
//! - An outage shorter than the TTL costs nothing: the streams reconnect (retrying every
//!   `TTL / 10`, 50–500 ms), a keep-alive gets through, and the member watch resumes
//!   after the last revision it delivered, missing nothing.
//! - Requests ([`EtcdMembership::register`], [`EtcdMembership::units`], ...) fail with
//!   [`MembershipError::Unreachable`] after a bound (the larger of the connect timeout
//!   and the lease TTL) instead of hanging. The streams (watches, the observation, a
//!   pending campaign) have no such bound, as they wait for news by design; HTTP/2 pings
//!   (every 10 s, 5 s to answer) break a connection to a host that went silent.
//!
//! # Tasks and events
//!
//! The keep-alive starts in `register` (so the lease cannot lapse before `start`); the
//! member watch and the leader observation start in `start`; a campaign task runs from
//! `campaign` until it wins. All events go through one gate, in the order the tasks
//! learned them; events from before `start` wait for it. The tasks stop on `LeaseLost`,
//! on `leave`, and when the last clone of the handle is dropped (then the lease simply
//! expires, as if the process had died).

mod election;
mod lease;
mod members;
mod register;
mod shared;
mod units;

use super::{Event, Member, MembershipError, Registration};
use ebbtide_model::Epoch;
use etcd_client::{Client, ConnectOptions};
use shared::{map_error, Keys, Shared};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
pub use units::UnitReads;

/// Where the etcd cluster is and how this process uses it.
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// Client URLs (`http://host:port`, `https://host:port`, or `host:port`).
    pub endpoints: Vec<String>,
    /// The ebbtide cluster's name: every key lives under `/<cluster>/`. No `/` in it.
    pub cluster: String,
    /// The membership lease's TTL: how long a process that stopped keeping alive stays a
    /// member, and how long an etcd outage a process survives. etcd counts whole seconds
    /// (rounded up here) and may grant more; the local deadline uses the smaller one.
    pub lease_ttl: Duration,
    /// How long `connect` tries before it answers `Unreachable`.
    pub connect_timeout: Duration,
    /// TLS for `https://` endpoints: the CA of etcd's certificate and, when etcd asks
    /// for one, the client certificate. `None` for `http://`.
    pub tls: Option<etcd_client::TlsOptions>,
}

/// A handle on this process's membership in etcd. Cloning is cheap; the background tasks
/// stop when the last clone is dropped.
#[derive(Clone)]
pub struct EtcdMembership {
    handle: Arc<Handle>,
}

/// The owner of the tasks: dropping the last handle stops them.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.close_quietly(false);
    }
}

impl std::fmt::Debug for EtcdMembership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.handle.shared;
        f.debug_struct("EtcdMembership")
            .field("keys", &s.keys)
            .field("session", &s.session.get())
            .finish()
    }
}

impl EtcdMembership {
    /// Connects; [`MembershipError::Unreachable`] within `cfg.connect_timeout` when no
    /// endpoint answers (it never hangs). Connecting proves that etcd serves reads: the
    /// client itself connects lazily.
    pub async fn connect(cfg: EtcdConfig) -> Result<Self, MembershipError> {
        if cfg.cluster.is_empty() || cfg.cluster.contains('/') {
            return Err(MembershipError::Failed(format!(
                "the cluster name must be non-empty and contain no '/' (got {:?})",
                cfg.cluster
            )));
        }
        if cfg.lease_ttl.is_zero() {
            return Err(MembershipError::Failed(
                "the lease TTL must be positive".into(),
            ));
        }
        let options = ConnectOptions::new()
            .with_connect_timeout(cfg.connect_timeout)
            // HTTP/2 pings find a dead connection (a crashed host, a cut network) that
            // would otherwise hang a stream; etcd refuses pings closer than 5 s apart.
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let options = match cfg.tls.clone() {
            Some(tls) => options.with_tls(tls),
            None => options,
        };
        let deadline = Instant::now() + cfg.connect_timeout;
        let unreachable = |why: String| {
            MembershipError::Unreachable(format!(
                "no etcd endpoint of {:?} answered within {:?}: {why}",
                cfg.endpoints, cfg.connect_timeout
            ))
        };
        let client =
            match tokio::time::timeout_at(deadline, Client::connect(&cfg.endpoints, Some(options)))
                .await
            {
                Err(_) => return Err(unreachable("timed out".into())),
                Ok(Err(e)) => return Err(map_error("connect to etcd", e)),
                Ok(Ok(c)) => c,
            };
        // Probe until one endpoint answers: with several endpoints a request may go to a
        // dead one first.
        let probe_key = format!("/{}/", cfg.cluster);
        let mut last = String::from("timed out");
        loop {
            let mut kv = client.kv_client();
            let probe = kv.get(
                probe_key.clone(),
                Some(etcd_client::GetOptions::new().with_count_only()),
            );
            match tokio::time::timeout_at(deadline, probe).await {
                Err(_) => return Err(unreachable(last)),
                Ok(Ok(_)) => break,
                Ok(Err(e)) => last = e.to_string(),
            }
            if tokio::time::timeout_at(deadline, tokio::time::sleep(Duration::from_millis(100)))
                .await
                .is_err()
            {
                return Err(unreachable(last));
            }
        }
        let rpc_timeout = cfg.connect_timeout.max(cfg.lease_ttl);
        let shared = Shared::new(client, Keys::new(&cfg.cluster), cfg.lease_ttl, rpc_timeout);
        Ok(EtcdMembership {
            handle: Arc::new(Handle {
                shared: Arc::new(shared),
            }),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Grants this process's lease, then in one transaction takes the next epoch of
    /// `reg.node` and registers `/<cluster>/members/<id>` under the lease (see the epoch
    /// rule above: the epoch exceeds every earlier epoch of the id in etcd, and `floor`).
    /// [`MembershipError::IdTaken`] names the live holder when the id is registered.
    /// Starts the lease keep-alive. Call it once per handle.
    pub async fn register(
        &self,
        reg: Registration,
        floor: Epoch,
    ) -> Result<Member, MembershipError> {
        register::register(self.shared(), reg, floor).await
    }

    /// Starts the member watch and the leader observation, and delivers every event (the
    /// keep-alive's included) to `tx` in order. Call it once, after [`Self::register`];
    /// needs a tokio runtime.
    ///
    /// # Panics
    ///
    /// When called before `register`: the events would be about nobody.
    pub fn start(&self, tx: mpsc::Sender<Event>) {
        let shared = self.shared();
        assert!(
            shared.session.get().is_some(),
            "EtcdMembership::start called before register"
        );
        let queue = {
            let mut tasks = shared.tasks();
            if tasks.started {
                tracing::warn!("EtcdMembership::start called twice: ignored");
                return;
            }
            tasks.started = true;
            tasks.queue.take()
        };
        let Some(mut queue) = queue else { return };
        let forwarder = tokio::spawn(async move {
            while let Some(event) = queue.recv().await {
                if tx.send(event).await.is_err() {
                    return; // the node dropped its receiver
                }
            }
        });
        shared.tasks().forwarder = Some(forwarder);
        shared.spawn(members::watch_members(shared.clone()));
        shared.spawn(election::observe(shared.clone()));
    }

    /// The local lease deadline: until then etcd cannot have expired this process's
    /// lease. `None` before `register`. Past it, the process must not act as a member
    /// (the keep-alive task is about to report `LeaseLost`, or has).
    pub fn lease_deadline(&self) -> Option<Instant> {
        self.handle.shared.deadline()
    }

    /// Campaigns in the background (idempotent while a campaign is pending or won); sends
    /// `Event::Elected { term }` when won. The candidate key is under this process's
    /// lease, so it vanishes with the lease. Needs `register` first (else logs an error).
    pub fn campaign(&self) {
        election::campaign(self.shared());
    }

    /// Withdraws the candidacy, and gives up the leadership if held (then sends
    /// `Event::Deposed`, before the key is deleted). Idempotent.
    pub async fn resign(&self) -> Result<(), MembershipError> {
        election::resign(self.shared()).await
    }

    /// Graceful leave: sends `Deposed` if this process leads, stops the background tasks
    /// without `LeaseLost`, and revokes the lease, so the registration and any candidacy
    /// vanish at once. If etcd cannot be reached the error says so, and the lease expires
    /// by itself a TTL later. Idempotent. Events queued before the leave are still
    /// delivered (for at most the request bound, should the node not read them).
    pub async fn leave(&self) -> Result<(), MembershipError> {
        let shared = self.shared();
        shared.close_quietly(true);
        let forwarder = shared.tasks().forwarder.take();
        if let Some(f) = forwarder {
            let abort = f.abort_handle();
            if tokio::time::timeout(shared.rpc_timeout, f).await.is_err() {
                abort.abort();
            }
        }
        let Some(session) = shared.session.get() else {
            return Ok(());
        };
        let mut lease_client = shared.client.lease_client();
        match shared
            .rpc("revoke the lease", lease_client.revoke(session.lease))
            .await
        {
            Ok(_) => Ok(()),
            // Revoked already (a second leave) or expired: the registration is gone.
            Err(MembershipError::Failed(m)) if m.contains("requested lease not found") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The desired work units (`/<cluster>/work/<unit>`), read 1,000 keys a page at one
    /// revision, so each request stays small however many units there are; each page
    /// asks for a narrow key range, so that etcd's work per page stays small too (see
    /// `units::read_prefix`: a million units load in seconds, not minutes).
    pub async fn units(&self) -> Result<Vec<String>, MembershipError> {
        units::units(self.shared()).await
    }

    /// What this handle's [`Self::units`] calls cost so far: loads, pages, units, bytes
    /// and time. Every call reads etcd again, so the counts grow with each.
    pub fn unit_reads(&self) -> UnitReads {
        *self.shared().unit_reads()
    }

    /// Adds desired work units (64 a transaction; duplicates count once); answers how
    /// many were new.
    pub async fn add_units(&self, units: &[String]) -> Result<usize, MembershipError> {
        units::add_units(self.shared(), units).await
    }
}

/// The node spawns these: the handle is `Send + Sync` and every future it returns is
/// `Send`. Never called; it fails to compile if that stops being true.
#[allow(dead_code)]
fn handle_and_futures_are_send(m: &EtcdMembership, cfg: EtcdConfig, reg: Registration) {
    fn send<T: Send>(_: T) {}
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<EtcdMembership>();
    send(EtcdMembership::connect(cfg));
    send(m.register(reg, 0));
    send(m.resign());
    send(m.leave());
    send(m.units());
    send(m.add_units(&[]));
}
