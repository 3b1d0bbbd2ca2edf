//! Random walks through the model, for configurations far past what an exhaustive
//! search can finish (`ebbtide check --simulate`).
//!
//! A walk starts at the initial state and takes one enabled action after another,
//! chosen uniformly by a seeded generator, judging every property on every state it
//! reaches, until no action is enabled or it reaches the depth bound. A state the walk
//! already visited is not judged again, but the walk goes on from it. Then the next
//! walk starts, with the next seed, until the time (or the walk count) is up.
//!
//! Two choices make a violation reproducible, and both differ from stateright's own
//! simulation checker on purpose:
//! - Each walk has its own seed, derived from the run's seed by a generator written
//!   here ([`SplitMix64`]) rather than `rand`'s `StdRng`, whose output may change with
//!   the crate's version. The report names the walk's seed, and `--seed <that> --walks
//!   1` walks exactly the same path again, on any machine and any thread count.
//! - A walk records the actions it took, not their indices. Stateright 0.31 records
//!   indices into an action list it has since reordered, and rebuilds the path from
//!   them, which goes wrong when the model declines an action (`next_state` returns
//!   `None`), as ours does for deliveries that change nothing.
//!
//! A walk proves nothing about the states it did not visit; it finds bugs that live
//! deep, where exhaustive bounds cannot reach. Nothing here is a reduction: the walk
//! uses the model's own `actions` and `next_state`, canonicalization and collection
//! included, and every property of [`super::properties`].

use super::run::narrate;
use super::system::{Action, DrainModel, SysState};
use super::ModelConfig;
use stateright::{Expectation, Model, Path};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long and how to walk.
#[derive(Clone, Debug)]
pub struct SimulateOptions {
    /// The run's seed: the first walk uses it as is, the `k`-th `mix(seed, k)`.
    pub seed: u64,
    /// Stop after this long (the walks in progress finish their current state).
    pub duration: Duration,
    /// Stop after this many walks, if that comes first.
    pub walks: Option<u64>,
    /// A walk ends after this many steps even if it could go on.
    pub max_depth: usize,
    /// Walking threads.
    pub threads: usize,
}

/// A property a walk violated.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SimViolation {
    pub property: &'static str,
    /// The seed of the walk that violated it: `--seed <it> --walks 1` walks it again.
    pub walk_seed: u64,
    /// The numbered events from the initial state to the violating state.
    pub counterexample: Vec<String>,
    /// The real state of every node at the end.
    pub final_state: Vec<String>,
    /// The counterexample as a sequence diagram (SVG, see [`super::diagram`]); not in
    /// the JSON report.
    #[serde(skip)]
    pub diagram: String,
}

/// What the walks saw.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SimulateReport {
    pub config: ModelConfig,
    pub seed: u64,
    pub threads: usize,
    pub walks: u64,
    /// Steps taken, over all walks.
    pub steps: u64,
    /// States judged, counting a state once per walk that reached it (a walk that
    /// comes back to a state does not judge it again).
    pub states: u64,
    /// The deepest walk.
    pub max_depth: usize,
    pub seconds: f64,
    /// The `sometimes` properties some walk reached.
    pub reached: Vec<&'static str>,
    /// The `sometimes` properties no walk reached.
    pub not_reached: Vec<&'static str>,
    /// The first violation found of each violated property.
    pub violations: Vec<SimViolation>,
}

impl SimulateReport {
    /// States judged per second.
    pub fn states_per_second(&self) -> f64 {
        self.states as f64 / self.seconds.max(1e-9)
    }
}

/// A progress sample.
#[derive(Clone, Copy, Debug)]
pub struct SimProgress {
    pub walks: u64,
    pub states: u64,
    pub violations: usize,
    pub seconds: f64,
}

/// SplitMix64 (Steele, Lea and Flood): a tiny generator whose output is fixed by its
/// definition, so a seed walks the same path in every build.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n > 0`), by Lemire's multiply-shift: the tiny bias for
    /// the dozens of actions a state has does not matter to a random walk.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// The seed of the `k`-th walk of a run seeded `seed`.
pub fn walk_seed(seed: u64, k: u64) -> u64 {
    if k == 0 {
        seed
    } else {
        SplitMix64::new(seed ^ k.wrapping_mul(0xD1B5_4A32_D192_ED03)).next_u64()
    }
}

/// Shared between the walking threads.
struct Shared {
    next_walk: AtomicU64,
    steps: AtomicU64,
    states: AtomicU64,
    max_depth: AtomicU64,
    stop: AtomicBool,
    found: Mutex<Found>,
}

#[derive(Default)]
struct Found {
    /// Property name → (walk seed, actions of the violating path).
    violations: BTreeMap<&'static str, (u64, Vec<Action>)>,
    reached: HashSet<&'static str>,
}

/// Walks `cfg`'s model for `opts.duration` (or `opts.walks` walks), calling `progress`
/// about every `progress_every`.
///
/// A walk takes every loss the budget allows (`ModelConfig::every_loss`): the
/// exhaustive search may leave out the losses that lead to no L1 violation because the
/// lossless states it visits stand for every state with losses (`super::losses`), but
/// a walk visits one path, whose losses stand for nothing else.
pub fn simulate(
    cfg: ModelConfig,
    opts: &SimulateOptions,
    progress_every: Duration,
    mut progress: impl FnMut(SimProgress),
) -> SimulateReport {
    let model = DrainModel::new(ModelConfig {
        every_loss: true,
        ..cfg.clone()
    })
    .walking();
    let started = Instant::now();
    let shared = Shared {
        next_walk: AtomicU64::new(0),
        steps: AtomicU64::new(0),
        states: AtomicU64::new(0),
        max_depth: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        found: Mutex::new(Found::default()),
    };
    let deadline = started + opts.duration;
    std::thread::scope(|scope| {
        for _ in 0..opts.threads.max(1) {
            scope.spawn(|| walker(&model, opts, &shared, deadline));
        }
        let mut last = Instant::now();
        while !shared.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            if Instant::now() >= deadline {
                shared.stop.store(true, Ordering::Relaxed);
            }
            if last.elapsed() >= progress_every {
                last = Instant::now();
                progress(SimProgress {
                    walks: shared.next_walk.load(Ordering::Relaxed),
                    states: shared.states.load(Ordering::Relaxed),
                    violations: lock(&shared.found).violations.len(),
                    seconds: started.elapsed().as_secs_f64(),
                });
            }
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let found = shared.found.into_inner().unwrap_or_else(|p| p.into_inner());
    let walks = shared.next_walk.load(Ordering::Relaxed);
    let walks = opts.walks.map_or(walks, |w| walks.min(w));
    let init = model.init_states().remove(0);
    let violations = found
        .violations
        .into_iter()
        .map(|(property, (walk_seed, actions))| {
            let path = Path::from_actions(&model, init.clone(), &actions)
                .expect("a walk's actions replay from the initial state");
            let diagram = super::diagram::svg(&model, &path.clone().into_vec());
            let (counterexample, final_state) = narrate(&model, path);
            SimViolation {
                property,
                walk_seed,
                counterexample,
                final_state,
                diagram,
            }
        })
        .collect();
    let (reached, not_reached) = model
        .properties()
        .iter()
        .filter(|p| p.expectation == Expectation::Sometimes)
        .map(|p| p.name)
        .partition(|n| found.reached.contains(n));
    SimulateReport {
        config: cfg,
        seed: opts.seed,
        threads: opts.threads.max(1),
        walks,
        steps: shared.steps.load(Ordering::Relaxed),
        states: shared.states.load(Ordering::Relaxed),
        max_depth: shared.max_depth.load(Ordering::Relaxed) as usize,
        seconds,
        reached,
        not_reached,
        violations,
    }
}

fn lock(m: &Mutex<Found>) -> std::sync::MutexGuard<'_, Found> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One thread: takes the next walk number until the run stops.
fn walker(model: &DrainModel, opts: &SimulateOptions, shared: &Shared, deadline: Instant) {
    let mut reached = Vec::new();
    while !shared.stop.load(Ordering::Relaxed) {
        let k = shared.next_walk.fetch_add(1, Ordering::Relaxed);
        if opts.walks.is_some_and(|w| k >= w) {
            shared.stop.store(true, Ordering::Relaxed);
            return;
        }
        let seed = walk_seed(opts.seed, k);
        walk(model, seed, opts.max_depth, shared, deadline, &mut reached);
    }
}

/// One walk from the initial state.
fn walk(
    model: &DrainModel,
    seed: u64,
    max_depth: usize,
    shared: &Shared,
    deadline: Instant,
    reached: &mut Vec<&'static str>,
) {
    let properties = model.properties();
    let mut rng = SplitMix64::new(seed);
    let mut state: SysState = model.init_states().remove(0);
    let mut taken: Vec<Action> = Vec::new();
    let mut seen = HashSet::new();
    let mut actions = Vec::new();
    let hasher = super::state::stable_hasher();
    loop {
        let fingerprint = hasher.hash_one(&state);
        // A state this walk already judged is not judged again, but the walk goes on:
        // its next choice may differ from the last time (ending the walk here, as
        // stateright's simulation does, keeps walks too short to reach deep states).
        if seen.insert(fingerprint) {
            shared.states.fetch_add(1, Ordering::Relaxed);
            judge(model, &properties, &state, &taken, seed, shared, reached);
        }
        if taken.len() >= max_depth || Instant::now() >= deadline {
            break;
        }
        actions.clear();
        model.actions(&state, &mut actions);
        let next = loop {
            if actions.is_empty() {
                break None;
            }
            let action = actions.swap_remove(rng.below(actions.len()));
            if let Some(next) = model.next_state(&state, action.clone()) {
                taken.push(action);
                break Some(next);
            }
        };
        match next {
            Some(next) => state = next,
            None => break, // nothing is enabled: the walk is over
        }
    }
    shared
        .steps
        .fetch_add(taken.len() as u64, Ordering::Relaxed);
    shared
        .max_depth
        .fetch_max(taken.len() as u64, Ordering::Relaxed);
}

/// Judges every property on one state; keeps the first violation of each. `reached`
/// is this thread's list of the `sometimes` properties it already reported, so that a
/// witness that holds on most states does not take the shared lock on each.
fn judge(
    model: &DrainModel,
    properties: &[stateright::Property<DrainModel>],
    state: &SysState,
    taken: &[Action],
    seed: u64,
    shared: &Shared,
    reached: &mut Vec<&'static str>,
) {
    for p in properties {
        let holds = (p.condition)(model, state);
        match p.expectation {
            Expectation::Always if !holds => {
                lock(&shared.found)
                    .violations
                    .entry(p.name)
                    .or_insert_with(|| (seed, taken.to_vec()));
            }
            Expectation::Sometimes if holds && !reached.contains(&p.name) => {
                reached.push(p.name);
                lock(&shared.found).reached.insert(p.name);
            }
            // Our model states its liveness as `always` properties judged on quiescent
            // states (L1, and L1 settles); it has no `eventually` property.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Guard;

    fn opts(seed: u64, walks: u64) -> SimulateOptions {
        SimulateOptions {
            seed,
            duration: Duration::from_secs(60),
            walks: Some(walks),
            max_depth: 1_000,
            threads: 1,
        }
    }

    #[test]
    fn a_correct_model_has_no_violation_and_reaches_the_witnesses() {
        let r = simulate(
            ModelConfig::two_nodes_one_unit(),
            &opts(7, 300),
            Duration::from_secs(60),
            |_| {},
        );
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!(r.walks, 300);
        assert!(r.states > 300, "{} states", r.states);
        assert!(r.reached.contains(&"L2 drain completes"), "{:?}", r.reached);
    }

    #[test]
    fn a_broken_guard_is_caught_and_its_walk_seed_replays_the_same_counterexample() {
        let cfg = ModelConfig {
            guards: crate::protocol::Guards::ALL_ON.without(Guard::StoppingWhenEmpty),
            ..ModelConfig::two_nodes_one_unit()
        };
        let r = simulate(
            cfg.clone(),
            &opts(1, 2_000),
            Duration::from_secs(60),
            |_| {},
        );
        let v = r
            .violations
            .iter()
            .find(|v| v.property.starts_with("S8"))
            .unwrap_or_else(|| panic!("S8 not found: {:?}", r.violations));
        let again = simulate(cfg, &opts(v.walk_seed, 1), Duration::from_secs(60), |_| {});
        let w = again
            .violations
            .iter()
            .find(|w| w.property == v.property)
            .expect("the walk seed violates the property again");
        assert_eq!(w.counterexample, v.counterexample);
    }

    #[test]
    fn walk_seeds_are_fixed_by_definition() {
        // SplitMix64's first output for seed 0 (from its reference implementation).
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(walk_seed(42, 0), 42);
        assert_ne!(walk_seed(42, 1), walk_seed(42, 2));
    }
}
