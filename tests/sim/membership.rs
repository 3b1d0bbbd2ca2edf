//! A simulated etcd behind the node's `ElectedMembership` seam
//! (`ebbtide::membership::elected`): one shared world for the whole run, with etcd's
//! semantics on simulated time.
//!
//! - one revision counter; leases with a TTL that each incarnation keeps alive from a
//!   task on its own host, so a crashed host's lease expires a TTL after its last
//!   keep-alive; the driver expires leases between steps (`tick`);
//! - member keys under the lease, epochs from a counter that outlives every lease;
//! - an election: the leader is the oldest live candidate key, its term the key's
//!   create revision (so terms grow);
//! - watch streams: per incarnation, an ordered queue of events (`Snapshot`, `Joined`,
//!   `Left`, `Leader`, `Elected`), each delivered at a time the seed picks (possibly
//!   late, never reordered), and held while the node is cut off from the service;
//! - desired units, stored before `add_units` answers;
//! - a fault: the driver cuts a node off from the service for a while (its keep-alives,
//!   requests and watch deliveries wait); longer than the TTL, the node's local lease
//!   deadline passes, it sends itself `Deposed`/`LeaseLost`, fences itself and exits
//!   (status 3), and the driver restarts it as a new incarnation.

use super::judge::Rng;
use ebbtide::membership::{
    fence_deadline, ElectedMembership, Event, Member, MembershipError, Registration,
};
use ebbtide::node::env::BoxFuture;
use ebbtide_model::{Epoch, Term};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

type Lease = u64;
/// An event and the simulated time at which its stream delivers it.
type Queued = (Duration, Event);

fn now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

/// One lease's owner and its stream.
struct Session {
    node: String,
    epoch: Epoch,
    reg: Registration,
    expires: Duration,
    stream: mpsc::UnboundedSender<Queued>,
    /// The latest delivery time queued on the stream (deliveries never reorder).
    last: Duration,
    /// Whether its watch started (then it gets `Joined`/`Left`/`Leader`).
    watching: bool,
}

/// The simulated etcd, shared by every host.
pub struct World {
    ttl: Duration,
    rev: u64,
    next_lease: Lease,
    sessions: BTreeMap<Lease, Session>,
    epochs: BTreeMap<String, Epoch>,
    /// Create revision → candidate lease; the first is the leader.
    candidates: BTreeMap<u64, Lease>,
    leader: Option<(Term, Lease)>,
    units: BTreeSet<String>,
    /// Node → cut off from the service until then.
    cut: BTreeMap<String, Duration>,
    rng: Rng,
    /// How late a watch event may be (the seed picks it).
    late: u64,
    /// The bite of `fence_deadline`'s margin: keep-alives arrive at once and processes
    /// fence at `sent + ttl` exactly, the instant the service expires the lease.
    no_margin: bool,
    /// What happened, for the summary.
    pub expiries: u64,
    pub leaders: Vec<(Term, String)>,
}

pub type Etcd = Arc<Mutex<World>>;

impl World {
    pub fn new(seed: u64, ttl: Duration, no_margin: bool) -> Etcd {
        let mut rng = Rng::new(seed ^ 0xe7cd_0000);
        let late = *rng.pick(&[0, 20, 200]);
        Arc::new(Mutex::new(World {
            ttl,
            rev: 0,
            next_lease: 0x100,
            sessions: BTreeMap::new(),
            epochs: BTreeMap::new(),
            candidates: BTreeMap::new(),
            leader: None,
            units: BTreeSet::new(),
            cut: BTreeMap::new(),
            rng,
            late,
            no_margin,
            expiries: 0,
            leaders: Vec::new(),
        }))
    }

    /// The leader's node and incarnation, if any.
    pub fn leader(&self) -> Option<(String, Epoch)> {
        let (_, lease) = self.leader?;
        let s = &self.sessions[&lease];
        Some((s.node.clone(), s.epoch))
    }

    /// Cuts `node` off from the service until `until`.
    pub fn cut(&mut self, node: &str, until: Duration) {
        self.cut.insert(node.to_owned(), until);
    }

    /// Ends every cut (faults are over).
    pub fn repair(&mut self) {
        self.cut.clear();
    }

    /// A keep-alive's (or a grant's) one-way latency, 1 to 20 ms (0 under `no_margin`):
    /// the service renews the lease on arrival, the process counts its deadline from
    /// the send. With 0 the expiry is `sent + ttl` exactly, and only `fence_deadline`'s
    /// margin keeps the process's fence first (without it, S5 within 20 seeds,
    /// `bite_no_lease_margin_is_caught`: the coordinator can restart the units of a
    /// member whose lease has just expired before that member fenced).
    fn latency(&mut self) -> Duration {
        let ms = self.rng.range(1, 20);
        if self.no_margin {
            Duration::ZERO
        } else {
            Duration::from_millis(ms)
        }
    }

    /// The process's local deadline for a keep-alive sent at `sent`.
    fn deadline(&self, sent: Instant) -> Instant {
        if self.no_margin {
            sent + self.ttl
        } else {
            fence_deadline(sent, self.ttl)
        }
    }

    fn is_cut(&self, node: &str, now: Duration) -> bool {
        self.cut.get(node).is_some_and(|u| now < *u)
    }

    /// The request bound: as etcd's requests (the larger of the connect timeout and
    /// the TTL), a request from a cut-off node waits until the cut ends or this long.
    fn bound(&self) -> Duration {
        self.ttl
    }

    fn deliver(&mut self, lease: Lease, ev: Event, now: Duration) {
        let delay = if self.late == 0 || self.rng.chance(0.7) {
            0
        } else {
            self.rng.range(1, self.late)
        };
        let Some(s) = self.sessions.get_mut(&lease) else {
            return;
        };
        let mut at = (now + Duration::from_millis(delay)).max(s.last);
        if let Some(u) = self.cut.get(&s.node) {
            at = at.max(*u);
        }
        s.last = at;
        let _ = s.stream.send((at, ev));
    }

    fn broadcast(&mut self, ev: Event, now: Duration) {
        let watching: Vec<Lease> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.watching)
            .map(|(l, _)| *l)
            .collect();
        for l in watching {
            self.deliver(l, ev.clone(), now);
        }
    }

    fn elect(&mut self, now: Duration) {
        let first = self.candidates.iter().next().map(|(r, l)| (*r, *l));
        if first == self.leader {
            return;
        }
        self.leader = first;
        if let Some((term, lease)) = first {
            let node = self.sessions[&lease].node.clone();
            self.leaders.push((term, node.clone()));
            self.deliver(lease, Event::Elected { term }, now);
            // The winner's fresh view: the registry as of its win, read after it.
            if self.sessions[&lease].watching {
                let members = self.sessions.keys().map(|l| self.member(*l)).collect();
                self.deliver(lease, Event::Snapshot(members), now);
            }
            self.broadcast(Event::Leader { term, node }, now);
        }
    }

    /// Removes a lease and everything under it.
    fn drop_lease(&mut self, lease: Lease, now: Duration) {
        let Some(s) = self.sessions.remove(&lease) else {
            return;
        };
        self.rev += 1;
        self.candidates.retain(|_, l| *l != lease);
        if self.leader.is_some_and(|(_, l)| l == lease) {
            self.leader = None;
        }
        self.broadcast(
            Event::Left {
                node: s.node,
                epoch: s.epoch,
            },
            now,
        );
        self.elect(now);
    }

    /// Expires the leases whose TTL ran out (the driver calls it between steps).
    pub fn tick(&mut self, now: Duration) {
        let expired: Vec<Lease> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.expires <= now)
            .map(|(l, _)| *l)
            .collect();
        for l in expired {
            self.expiries += 1;
            self.drop_lease(l, now);
        }
    }

    fn member(&self, lease: Lease) -> Member {
        let s = &self.sessions[&lease];
        Member {
            epoch: s.epoch,
            registration: s.reg.clone(),
        }
    }
}

/// What one incarnation holds.
#[derive(Default)]
struct Local {
    lease: Option<Lease>,
    reg: Option<Registration>,
    deadline: Option<Instant>,
    stream: Option<mpsc::UnboundedReceiver<Queued>>,
    tx: Option<mpsc::UnboundedSender<Queued>>,
    campaigning: bool,
    elected: bool,
    /// The node's event channel, once started: the keep-alive's own events go there
    /// at once, not behind the service's queued (late) ones.
    events: Option<mpsc::Sender<Event>>,
    /// `LeaseLost` was sent: nothing more is.
    lost: bool,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// One incarnation's handle on the simulated etcd.
pub struct SimMembership {
    world: Etcd,
    node: String,
    local: Arc<Mutex<Local>>,
}

impl std::fmt::Debug for SimMembership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SimMembership({})", self.node)
    }
}

impl Drop for SimMembership {
    fn drop(&mut self) {
        for t in self.local.lock().unwrap().tasks.drain(..) {
            t.abort();
        }
    }
}

impl SimMembership {
    /// Waits until this node reaches the service, at most the request bound; then
    /// the world, locked.
    async fn reach(&self) -> Result<std::sync::MutexGuard<'_, World>, MembershipError> {
        let give_up = now() + self.world.lock().unwrap().bound();
        loop {
            {
                let w = self.world.lock().unwrap();
                if !w.is_cut(&self.node, now()) {
                    return Ok(w);
                }
            }
            if now() >= give_up {
                return Err(MembershipError::Unreachable(format!(
                    "{} is cut off from etcd",
                    self.node
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn new(world: Etcd, node: &str) -> Self {
        SimMembership {
            world,
            node: node.to_owned(),
            local: Arc::default(),
        }
    }

    /// Sends this process an event of its own (not from the service): at once, not
    /// behind the service's queued ones (before `start`, into the queue).
    async fn local_event(local: &Mutex<Local>, ev: Event) {
        let events = {
            let l = local.lock().unwrap();
            match &l.events {
                Some(e) => e.clone(),
                None => {
                    if let Some(tx) = &l.tx {
                        let _ = tx.send((Duration::ZERO, ev));
                    }
                    return;
                }
            }
        };
        let _ = events.send(ev).await;
    }

    /// The keep-alive: every TTL/4 a keep-alive; past the local deadline with no newer
    /// confirmation, `Deposed` (if leading) and `LeaseLost`, then nothing more.
    async fn keep_alive(
        world: Etcd,
        node: String,
        local: Arc<Mutex<Local>>,
        lease: Lease,
        ttl: Duration,
    ) {
        loop {
            let deadline = local.lock().unwrap().deadline.expect("registered");
            let next = (Instant::now() + ttl / 4).min(deadline);
            tokio::time::sleep_until(next).await;
            if Instant::now() >= deadline {
                break;
            }
            let sent = Instant::now();
            let mut w = world.lock().unwrap();
            let t = now();
            if w.is_cut(&node, t) {
                continue;
            }
            let latency = w.latency();
            let deadline = w.deadline(sent);
            match w.sessions.get_mut(&lease) {
                Some(s) if s.expires > t => {
                    s.expires = t + latency + ttl;
                    local.lock().unwrap().deadline = Some(deadline);
                }
                // Expired already (the local deadline is about to pass).
                _ => {}
            }
        }
        let elected = {
            let mut l = local.lock().unwrap();
            l.lost = true;
            std::mem::take(&mut l.elected)
        };
        if elected {
            Self::local_event(&local, Event::Deposed).await;
        }
        Self::local_event(&local, Event::LeaseLost).await;
    }
}

impl ElectedMembership for SimMembership {
    fn register(
        &self,
        reg: Registration,
        floor: Epoch,
    ) -> BoxFuture<'_, Result<Member, MembershipError>> {
        Box::pin(async move {
            let (lease, member, ttl) = {
                let mut w = self.reach().await?;
                let t = now();
                w.tick(t);
                if let Some(s) = w.sessions.values().find(|s| s.node == reg.node) {
                    return Err(MembershipError::IdTaken {
                        node: reg.node.clone(),
                        holder: Box::new(s.reg.clone()),
                    });
                }
                let lease = w.next_lease;
                w.next_lease += 1;
                w.rev += 1;
                let epoch = w.epochs.get(&reg.node).copied().unwrap_or(0).max(floor) + 1;
                w.epochs.insert(reg.node.clone(), epoch);
                let (tx, rx) = mpsc::unbounded_channel();
                let ttl = w.ttl;
                let latency = w.latency();
                w.sessions.insert(
                    lease,
                    Session {
                        node: reg.node.clone(),
                        epoch,
                        reg: reg.clone(),
                        expires: t + latency + ttl,
                        stream: tx.clone(),
                        last: Duration::ZERO,
                        watching: false,
                    },
                );
                let member = w.member(lease);
                w.broadcast(Event::Joined(member.clone()), t);
                let mut l = self.local.lock().unwrap();
                l.lease = Some(lease);
                l.reg = Some(reg);
                l.deadline = Some(w.deadline(Instant::now()));
                l.stream = Some(rx);
                l.tx = Some(tx);
                (lease, member, ttl)
            };
            let task = tokio::spawn(Self::keep_alive(
                self.world.clone(),
                self.node.clone(),
                self.local.clone(),
                lease,
                ttl,
            ));
            self.local.lock().unwrap().tasks.push(task);
            Ok(member)
        })
    }

    fn start(&self, events: mpsc::Sender<Event>) {
        let (lease, mut stream) = {
            let mut l = self.local.lock().unwrap();
            l.events = Some(events.clone());
            (
                l.lease.expect("registered"),
                l.stream.take().expect("started once"),
            )
        };
        let local = self.local.clone();
        {
            let mut w = self.world.lock().unwrap();
            let t = now();
            if w.sessions.contains_key(&lease) {
                let members: Vec<Member> = w.sessions.keys().map(|l| w.member(*l)).collect();
                w.deliver(lease, Event::Snapshot(members), t);
                if let Some((term, l)) = w.leader {
                    let node = w.sessions[&l].node.clone();
                    w.deliver(lease, Event::Leader { term, node }, t);
                }
                w.sessions.get_mut(&lease).expect("live").watching = true;
            }
        }
        let task = tokio::spawn(async move {
            while let Some((at, ev)) = stream.recv().await {
                let t = now();
                if at > t {
                    tokio::time::sleep(at - t).await;
                }
                let last = matches!(ev, Event::LeaseLost);
                let lost = local.lock().unwrap().lost;
                if last {
                    let _ = events.send(ev).await;
                    return;
                }
                if lost || events.send(ev).await.is_err() {
                    return;
                }
            }
        });
        self.local.lock().unwrap().tasks.push(task);
    }

    fn lease_deadline(&self) -> Option<Instant> {
        self.local.lock().unwrap().deadline
    }

    fn campaign(&self) {
        let lease = {
            let mut l = self.local.lock().unwrap();
            if l.campaigning {
                return;
            }
            l.campaigning = true;
            l.lease
        };
        let Some(lease) = lease else { return };
        let (world, node, local) = (self.world.clone(), self.node.clone(), self.local.clone());
        let task = tokio::spawn(async move {
            loop {
                {
                    if !local.lock().unwrap().campaigning {
                        return;
                    }
                    let mut w = world.lock().unwrap();
                    let t = now();
                    if !w.is_cut(&node, t) {
                        if w.sessions.contains_key(&lease)
                            && !w.candidates.values().any(|l| *l == lease)
                        {
                            w.rev += 1;
                            let rev = w.rev;
                            w.candidates.insert(rev, lease);
                            let won = w.candidates.keys().next() == Some(&rev);
                            if won {
                                local.lock().unwrap().elected = true;
                            }
                            w.elect(t);
                        }
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        self.local.lock().unwrap().tasks.push(task);
    }

    fn resign(&self) -> BoxFuture<'_, Result<(), MembershipError>> {
        Box::pin(async move {
            let mut w = self.reach().await?;
            let mut l = self.local.lock().unwrap();
            l.campaigning = false;
            let Some(lease) = l.lease else { return Ok(()) };
            let t = now();
            if w.leader.is_some_and(|(_, x)| x == lease) {
                l.elected = false;
                drop(l);
                w.deliver(lease, Event::Deposed, t);
                w.leader = None;
            } else {
                drop(l);
            }
            w.candidates.retain(|_, x| *x != lease);
            w.rev += 1;
            w.elect(t);
            Ok(())
        })
    }

    fn leave(&self) -> BoxFuture<'_, Result<(), MembershipError>> {
        Box::pin(async move {
            let lease = {
                let mut l = self.local.lock().unwrap();
                l.campaigning = false;
                l.lease
            };
            let Some(lease) = lease else { return Ok(()) };
            let mut w = self.reach().await?;
            let t = now();
            if w.leader.is_some_and(|(_, x)| x == lease) {
                w.deliver(lease, Event::Deposed, t);
            }
            w.drop_lease(lease, t);
            Ok(())
        })
    }

    fn units(&self) -> BoxFuture<'_, Result<Vec<String>, MembershipError>> {
        Box::pin(async move {
            let w = self.reach().await?;
            Ok(w.units.iter().cloned().collect())
        })
    }

    fn add_units<'a>(
        &'a self,
        units: &'a [String],
    ) -> BoxFuture<'a, Result<usize, MembershipError>> {
        Box::pin(async move {
            let mut w = self.reach().await?;
            w.rev += 1;
            Ok(units
                .iter()
                .filter(|u| w.units.insert((*u).clone()))
                .count())
        })
    }
}
