//! What the simulation judges, on the real state: what the recording workloads run
//! where, and each agent's real liveness (its probe), not any coordinator's belief.
//! Also the seeded fault layer, which reports the work commands it holds.

use ebbtide::node::env::{AgentProbe, Fate, WireFaults};
use ebbtide::node::Workload;
use ebbtide_model::{Epoch, Liveness};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A small seeded generator (splitmix64): the whole run is a function of the seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.next() as usize % xs.len()]
    }
}

/// The real state, and the safety violations seen so far.
#[derive(Debug, Default)]
pub struct State {
    /// Unit → the nodes that run it right now (the recording workloads' hooks).
    pub running: BTreeMap<String, BTreeSet<String>>,
    /// Node → its last incarnation's epoch and liveness (`None` before its first
    /// step), and whether that incarnation is up (false once it crashed: it is then
    /// "gone after" that liveness).
    pub agents: BTreeMap<String, Option<(Epoch, Liveness)>>,
    /// Nodes crashed and not started again yet.
    pub down: BTreeSet<String>,
    /// The incarnations that really reached Stopping.
    pub stopped: BTreeSet<(String, Epoch)>,
    /// Answers of 0 given while an AddWork to their node was held in the fault layer
    /// (counted, not a violation: see `zero_answered`).
    pub zeros_with_add_in_flight: u64,
    /// Node → how many times it crashed.
    pub crashes: BTreeMap<String, u64>,
    /// (from, to) → AddWork messages to `to` held by the fault layer (planned, not
    /// yet through their call).
    pub add_work_in_flight: BTreeMap<(String, String), usize>,
    /// Nodes whose process asked to exit (a failed durable write: `PersistFailed`),
    /// for the driver to crash and later restart, as a supervisor would.
    pub exited: Vec<String>,
    /// Node → the incarnation whose agent is not Alive, and since when (S7, elected
    /// membership only).
    pub not_alive_since: BTreeMap<String, (Epoch, Duration)>,
    /// Processes that exited because they lost their membership lease (status 3).
    pub lease_lost_exits: u64,
    /// Nodes sent SIGTERM (elected mode) that have not seen it yet: each leaves
    /// gracefully as `ebbtide node` does (`Node::graceful_leave`), then exits.
    pub sigterm: BTreeSet<String>,
    /// Graceful leaves that completed (drained to 0, left membership), that the
    /// process's own exit cut short (a failed write, a lost lease), and that failed (the
    /// shutdown timeout passed).
    pub left: u64,
    pub leave_interrupted: u64,
    pub leave_failed: u64,
    /// What went wrong, in order.
    pub violations: Vec<String>,
    /// Simulated time, for the messages.
    pub now: Duration,
}

impl State {
    pub fn violation(&mut self, what: String) {
        let what = format!("at {:?}: {what}", self.now);
        eprintln!("VIOLATION {what}");
        self.violations.push(what);
    }

    /// The node crashed: what it ran stops with it, and what its fault layer held dies.
    pub fn crashed(&mut self, node: &str) {
        for nodes in self.running.values_mut() {
            nodes.remove(node);
        }
        self.down.insert(node.to_owned());
        // A signal the process had not seen dies with it.
        self.sigterm.remove(node);
        *self.crashes.entry(node.to_owned()).or_default() += 1;
        self.add_work_in_flight.retain(|(from, _), _| from != node);
    }

    /// S3 (`specs/properties.md`), judged when a client is answered 0 for `target`,
    /// which had crashed `crashes` times when the request was sent:
    ///
    /// - `target` runs nothing;
    /// - its live incarnation is Stopping, or it is down or a new incarnation, and an
    ///   earlier incarnation really reached Stopping (the coordinator's answer does
    ///   not name the incarnation it observed: "some earlier one did" approximates
    ///   "the one it observed did");
    /// - "nothing in flight" is the coordinator's belief (its `remaining` counts its
    ///   operations, so a 0 has none); the real-state clause "no AddWork to it on its
    ///   way" would be false (properties.md: a Stopping node rejects them, A4, and S4
    ///   judges every start). The AddWork messages held in the fault layer (planned,
    ///   not through their call; those inside a TCP connection or its agent's queue
    ///   are not seen) are counted in `zeros_with_add_in_flight`, not judged.
    pub fn zero_answered(&mut self, target: &str, crashes: u64, route: &str) {
        if self.crashes.get(target).copied().unwrap_or(0) != crashes {
            // It crashed while the request and answer travelled: the answer is about
            // an incarnation that may be gone by the instant it is judged.
            return;
        }
        let agent = self.agents.get(target).copied().flatten();
        let stopping_now =
            !self.down.contains(target) && matches!(agent, Some((_, Liveness::Stopping)));
        let stopped_before = |s: &Self| {
            s.stopped.iter().any(|(n, e)| {
                n == target
                    && (s.down.contains(target) || agent.is_some_and(|(now, _)| *e < now) || {
                        matches!(agent, Some((now, Liveness::Stopping)) if now == *e)
                    })
            })
        };
        if !stopping_now && !stopped_before(self) {
            let down = if self.down.contains(target) {
                " (crashed)"
            } else {
                ""
            };
            self.violation(format!(
                "S3: {route} answered 0 for {target}, whose agent is {agent:?}{down}, not Stopping, and no earlier incarnation reached Stopping"
            ));
        }
        let runs: Vec<&String> = self
            .running
            .iter()
            .filter(|(_, n)| n.contains(target))
            .map(|(u, _)| u)
            .collect();
        if !runs.is_empty() {
            let msg = format!("S3: {route} answered 0 for {target}, which runs {runs:?}");
            self.violation(msg);
        }
        let in_flight: usize = self
            .add_work_in_flight
            .iter()
            .filter(|((_, to), _)| to == target)
            .map(|(_, n)| n)
            .sum();
        if in_flight > 0 {
            self.zeros_with_add_in_flight += 1;
        }
    }
}

/// The shared judge.
pub type Judge = Arc<Mutex<State>>;

/// The workload hooks of one node: record what runs where, and judge S4 and S5 at
/// the instant a unit starts.
#[derive(Debug)]
pub struct Recorder {
    pub node: String,
    pub judge: Judge,
}

impl Workload for Recorder {
    fn start(&self, unit: &str) {
        let mut s = self.judge.lock().unwrap();
        if let Some(Some((epoch, Liveness::Stopping))) = s.agents.get(&self.node).copied() {
            let msg = format!(
                "S4: {} (epoch {epoch}) is Stopping and starts {unit}",
                self.node
            );
            s.violation(msg);
        }
        let nodes = s.running.entry(unit.to_owned()).or_default();
        nodes.insert(self.node.clone());
        if nodes.len() > 1 {
            let msg = format!("S5: {unit} runs on {nodes:?}");
            s.violation(msg);
        }
    }

    fn stop(&self, unit: &str) {
        let mut s = self.judge.lock().unwrap();
        if let Some(nodes) = s.running.get_mut(unit) {
            nodes.remove(&self.node);
        }
    }
}

/// Each agent's real liveness after each of its steps.
#[derive(Debug)]
pub struct Probe(pub Judge);

impl AgentProbe for Probe {
    fn stepped(&self, node: &str, epoch: Epoch, liveness: Liveness) {
        let mut s = self.0.lock().unwrap();
        s.down.remove(node);
        s.agents.insert(node.to_owned(), Some((epoch, liveness)));
        if liveness == Liveness::Alive {
            s.not_alive_since.remove(node);
        } else if s.not_alive_since.get(node).is_none_or(|(e, _)| *e != epoch) {
            let now = s.now;
            s.not_alive_since.insert(node.to_owned(), (epoch, now));
        }
        if liveness == Liveness::Stopping {
            s.stopped.insert((node.to_owned(), epoch));
        }
    }
}

/// The seeded fault layer: loses, duplicates and delays messages while `on`, each
/// with a probability the seed chose (see [`Faults::new`]).
#[derive(Debug)]
pub struct Faults {
    rng: Mutex<Rng>,
    pub on: AtomicBool,
    judge: Judge,
    loss: f64,
    duplication: f64,
    delay: f64,
    /// The disk's faults: their own generator, so that the message faults' draws
    /// stay what they were without them.
    disk_rng: Mutex<Rng>,
    /// The probability that an fsync of the leader record fails (EIO): the write is
    /// not durable, and the node stops (`PersistFailed`).
    fsync_failure: f64,
}

impl Faults {
    /// A fault layer whose rates the seed picks, each from none to heavy, so that the
    /// seeds cover quiet networks as well as bad ones.
    pub fn new(seed: u64, judge: Judge) -> Self {
        let mut rng = Rng::new(seed ^ 0x5eed_f417);
        const RATES: [f64; 4] = [0.0, 0.02, 0.08, 0.2];
        let (loss, duplication, delay) = (*rng.pick(&RATES), *rng.pick(&RATES), *rng.pick(&RATES));
        let mut disk_rng = Rng::new(seed ^ 0xd15c_fa11);
        let fsync_failure = *disk_rng.pick(&[0.0, 0.1, 0.3]);
        Faults {
            disk_rng: Mutex::new(disk_rng),
            fsync_failure,
            rng: Mutex::new(rng),
            on: AtomicBool::new(true),
            judge,
            loss,
            duplication,
            delay,
        }
    }

    /// The rates, for the run's summary.
    pub fn rates(&self) -> String {
        format!(
            "loss {}, duplication {}, delay {}, leader fsync failure {}",
            self.loss, self.duplication, self.delay, self.fsync_failure
        )
    }

    /// Whether this fsync of the leader record fails (only while faults are on).
    pub fn fsync_fails(&self) -> bool {
        self.on.load(Ordering::Relaxed) && self.disk_rng.lock().unwrap().chance(self.fsync_failure)
    }
}

impl WireFaults for Faults {
    fn plan(&self, from: &str, to: &str, kinds: &[&'static str]) -> Vec<Fate> {
        let on = self.on.load(Ordering::Relaxed);
        let mut rng = self.rng.lock().unwrap();
        let fates: Vec<Fate> = kinds
            .iter()
            .map(|_| {
                if !on {
                    return Fate::Send;
                }
                let r = rng.range(0, 999) as f64 / 1000.0;
                if r < self.loss {
                    Fate::Drop
                } else if r < self.loss + self.duplication {
                    Fate::Duplicate
                } else if r < self.loss + self.duplication + self.delay {
                    Fate::Delay(Duration::from_millis(rng.range(10, 800)))
                } else {
                    Fate::Send
                }
            })
            .collect();
        // What `done` will be told of: each copy of a duplicate, every other once.
        let adds: usize = kinds
            .iter()
            .zip(&fates)
            .filter(|(k, _)| **k == "add_work")
            .map(|(_, f)| if *f == Fate::Duplicate { 2 } else { 1 })
            .sum();
        if adds > 0 {
            let mut s = self.judge.lock().unwrap();
            *s.add_work_in_flight
                .entry((from.to_owned(), to.to_owned()))
                .or_default() += adds;
        }
        fates
    }

    fn done(&self, from: &str, to: &str, kinds: &[&'static str]) {
        let adds = kinds.iter().filter(|k| **k == "add_work").count();
        if adds > 0 {
            let mut s = self.judge.lock().unwrap();
            if let Some(n) = s
                .add_work_in_flight
                .get_mut(&(from.to_owned(), to.to_owned()))
            {
                *n = n.saturating_sub(adds);
            }
        }
    }
}
