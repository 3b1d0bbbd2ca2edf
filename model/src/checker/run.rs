//! Running a check: the search, progress while it runs, and a report of every property
//! with readable counterexamples.

use super::actor::NodeState;
use super::config::ModelConfig;
use super::describe;
use super::ids::NodeIx;
use super::properties::{self, catalogue};
use super::system::{Action, DrainModel, SysState};
use stateright::{Checker, Expectation, HasDiscoveries, Model, Path};
use std::time::{Duration, Instant};

/// How the state space is searched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Search {
    /// Depth first: about 20 bytes a state; counterexamples are not the shortest.
    Dfs,
    /// Breadth first: whole states in memory; the first counterexample is a shortest one.
    Bfs,
}

/// How to run a check.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub threads: usize,
    pub search: Search,
    /// Stop at the first violated property (its counterexample is then a shortest one
    /// under BFS); the other properties are reported as unknown.
    pub stop_at_first_failure: bool,
    /// Stop as soon as this property has a discovery (a violation, or a witness).
    pub stop_when_found: Option<&'static str>,
    /// When a DFS run finds a violation, search again breadth-first for a shortest
    /// counterexample, for at most this long.
    pub shorten_for: Option<Duration>,
    /// How often the progress callback runs.
    pub progress_every: Duration,
    /// Search for L2's scenarios apart (see [`run`]); off: one search, with the
    /// scenario records in every state (`ebbtide check --single-search`).
    pub scenarios_apart: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            threads: 1,
            search: Search::Dfs,
            stop_at_first_failure: false,
            stop_when_found: None,
            shorten_for: Some(Duration::from_secs(120)),
            progress_every: Duration::from_secs(1),
            scenarios_apart: true,
        }
    }
}

/// A progress sample.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub states: usize,
    pub unique_states: usize,
    pub max_depth: usize,
    /// Since the search began.
    pub seconds: f64,
    /// Of the search for L2's scenarios (after the exhaustive one), not of the
    /// exhaustive search.
    pub scenario_search: bool,
}

/// What became of one property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// `always`: no state violates it (exhaustively). `sometimes`: a state reached it.
    Holds,
    /// `always`: a state violates it.
    Violated,
    /// `sometimes`: no state reached it (exhaustively).
    NotReached,
    /// The search stopped before it could tell.
    Unknown,
}

/// One property's result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PropertyResult {
    pub name: &'static str,
    pub kind: &'static str,
    pub statement: &'static str,
    pub status: Status,
    /// For a violation: the numbered events that lead to it, from the initial state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Vec<String>>,
    /// For a violation: the real state of every node at its end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_state: Option<Vec<String>>,
    /// For a violation: the counterexample as a sequence diagram (SVG, see
    /// [`super::diagram`]); `ebbtide check --svg` writes it. Not in the JSON report.
    #[serde(skip)]
    pub diagram: Option<String>,
}

/// The outcome of a check.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CheckReport {
    pub config: ModelConfig,
    pub search: Search,
    pub threads: usize,
    /// Whether every reachable state was visited.
    pub exhaustive: bool,
    pub states: usize,
    pub unique_states: usize,
    pub max_depth: usize,
    /// Seconds of the exhaustive search (the scenario search's are its own).
    pub seconds: f64,
    pub properties: Vec<PropertyResult>,
    /// The second search, for L2's scenarios, when there was one.
    pub scenario_search: Option<ScenarioSearch>,
}

impl CheckReport {
    /// Whether some `always` property is violated.
    pub fn has_violation(&self) -> bool {
        self.properties.iter().any(|p| p.status == Status::Violated)
    }

    /// The result of the property `name`.
    pub fn property(&self, name: &str) -> Option<&PropertyResult> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// Unique states per second.
    pub fn unique_per_second(&self) -> f64 {
        self.unique_states as f64 / self.seconds.max(1e-9)
    }
}

/// What the search for L2's scenarios found ([`ModelConfig::record_scenarios`]): the
/// exhaustive search runs without scenario records, and this second one, with them,
/// runs only until it has a witness of each scenario the configuration can reach.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ScenarioSearch {
    /// Whether it visited every state (it found some scenario nowhere).
    pub exhaustive: bool,
    pub states: usize,
    pub unique_states: usize,
    pub seconds: f64,
}

/// Runs the check of `cfg`, calling `progress` now and then.
///
/// Two searches when `cfg` records scenarios: the first, exhaustive, without the
/// records, judges every property but L2's scenarios; the second, with them, stops as
/// soon as it has witnessed each scenario (`specs/decisions.md`, "Scenarios are
/// witnessed by a search of their own"). One search when it is asked to stop at a
/// scenario.
pub fn run(cfg: ModelConfig, opts: &RunOptions, mut progress: impl FnMut(Progress)) -> CheckReport {
    let split = opts.scenarios_apart
        && cfg.record_scenarios
        && !opts
            .stop_when_found
            .is_some_and(|n| properties::SCENARIOS.contains(&n));
    let model = DrainModel::new(ModelConfig {
        record_scenarios: cfg.record_scenarios && !split,
        ..cfg.clone()
    });
    let finish = match (opts.stop_when_found, opts.stop_at_first_failure) {
        (Some(name), _) => Some(HasDiscoveries::AnyOf([name].into())),
        (None, true) => Some(HasDiscoveries::AnyFailures),
        (None, false) => None,
    };
    let (checker, last) = search(
        &model,
        opts.threads,
        opts.search,
        finish,
        false,
        &mut progress,
        opts.progress_every,
    );
    let mut discoveries = checker.discoveries();
    let any_failure = catalogue()
        .iter()
        .any(|p| p.expectation.discovery_is_failure() && discoveries.contains_key(p.name));
    let stopped_early = (opts.stop_at_first_failure && any_failure)
        || opts
            .stop_when_found
            .is_some_and(|n| discoveries.contains_key(n));
    let exhaustive = !stopped_early;

    let mut scenario_search = None;
    if split && exhaustive {
        let wanted: std::collections::BTreeSet<&'static str> = properties::SCENARIOS
            .into_iter()
            .filter(|n| properties::scenario_possible(&cfg, n))
            .collect();
        if !wanted.is_empty() {
            let witness = DrainModel::new(cfg.clone());
            let begun = Instant::now();
            let (c, p) = search(
                &witness,
                opts.threads,
                Search::Dfs,
                Some(HasDiscoveries::AllOf(wanted.clone())),
                true,
                &mut progress,
                opts.progress_every,
            );
            let found = c.discoveries();
            for name in &wanted {
                if let Some(path) = found.get(name) {
                    discoveries.insert(name, path.clone());
                }
            }
            scenario_search = Some(ScenarioSearch {
                exhaustive: !wanted.iter().all(|n| found.contains_key(n)),
                states: p.states,
                unique_states: p.unique_states,
                seconds: begun.elapsed().as_secs_f64(),
            });
        }
    }

    // A DFS counterexample can be long: look for a shortest one breadth-first.
    let mut shortest: Option<(&'static str, Path<SysState, Action>)> = None;
    if any_failure && opts.search == Search::Dfs {
        if let Some(limit) = opts.shorten_for {
            let bfs = model
                .clone()
                .checker()
                .threads(opts.threads.max(1))
                .finish_when(HasDiscoveries::AnyFailures)
                .timeout(limit)
                .spawn_bfs()
                .join();
            shortest = bfs
                .discoveries()
                .into_iter()
                .find(|(name, _)| is_failure(name));
        }
    }

    let properties = catalogue()
        .into_iter()
        .map(|p| {
            let found = discoveries.get(p.name);
            let status = match (p.expectation.clone(), found.is_some()) {
                (Expectation::Always, true) | (Expectation::Eventually, true) => Status::Violated,
                (Expectation::Sometimes, true) => Status::Holds,
                (_, false) if !exhaustive => Status::Unknown,
                (Expectation::Sometimes, false) => Status::NotReached,
                (_, false) => Status::Holds,
            };
            let path = match &shortest {
                Some((name, path)) if *name == p.name => Some(path.clone()),
                _ => found.cloned(),
            };
            let (counterexample, final_state, diagram) = match (status, path) {
                (Status::Violated, Some(path)) => {
                    let diagram = super::diagram::svg(&model, &path.clone().into_vec());
                    let (events, last) = narrate(&model, path);
                    (Some(events), Some(last), Some(diagram))
                }
                _ => (None, None, None),
            };
            PropertyResult {
                name: p.name,
                kind: match p.expectation {
                    Expectation::Always => "always",
                    Expectation::Sometimes => "sometimes",
                    Expectation::Eventually => "eventually",
                },
                statement: p.statement,
                status,
                counterexample,
                final_state,
                diagram,
            }
        })
        .collect();
    CheckReport {
        config: cfg,
        search: opts.search,
        threads: opts.threads.max(1),
        exhaustive,
        states: last.states,
        unique_states: last.unique_states,
        max_depth: last.max_depth,
        seconds: last.seconds,
        properties,
        scenario_search,
    }
}

/// One search of `model`, until done or until `finish` holds; returns the checker and
/// its last sample. `scenario_search` marks its progress as the search for L2's
/// scenarios.
fn search(
    model: &DrainModel,
    threads: usize,
    order: Search,
    finish: Option<HasDiscoveries>,
    scenario_search: bool,
    progress: &mut dyn FnMut(Progress),
    every: Duration,
) -> (Box<dyn Checker<DrainModel>>, Progress) {
    let started = Instant::now();
    let builder = model.clone().checker().threads(threads.max(1));
    let builder = match finish {
        Some(f) => builder.finish_when(f),
        None => builder,
    };
    let checker = match order {
        Search::Dfs => Box::new(builder.spawn_dfs()) as Box<dyn Checker<DrainModel>>,
        Search::Bfs => Box::new(builder.spawn_bfs()),
    };
    let sample = |c: &dyn Checker<DrainModel>| Progress {
        states: c.state_count(),
        unique_states: c.unique_state_count(),
        max_depth: c.max_depth(),
        seconds: started.elapsed().as_secs_f64(),
        scenario_search,
    };
    let mut last_sample = Instant::now();
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(50));
        if last_sample.elapsed() >= every {
            last_sample = Instant::now();
            progress(sample(&*checker));
        }
    }
    let checker = join(checker);
    let last = sample(&*checker);
    (checker, last)
}

fn join(mut checker: Box<dyn Checker<DrainModel>>) -> Box<dyn Checker<DrainModel>> {
    for h in checker.handles() {
        let _ = h.join();
    }
    checker
}

fn is_failure(name: &str) -> bool {
    catalogue()
        .iter()
        .any(|p| p.name == name && p.expectation.discovery_is_failure())
}

/// Turns a path into numbered events and a summary of its last state.
pub fn narrate(model: &DrainModel, path: Path<SysState, Action>) -> (Vec<String>, Vec<String>) {
    let steps = path.into_vec();
    let mut events = Vec::new();
    let mut last = None;
    for (i, (state, action)) in steps.into_iter().enumerate() {
        match action {
            Some(a) => {
                let mut line = format!("{:>3}. {}", i + 1, describe::action(&a));
                if let Some(note) = annotate(&state, &a) {
                    line.push_str(&format!(" ({note})"));
                }
                let sent = sends(model, &state, &a);
                if !sent.is_empty() {
                    line.push_str(&format!("\n       sends {}", sent.join("; ")));
                }
                events.push(line);
            }
            None => last = Some(state),
        }
    }
    let summary = last.map(|s| summarize(model, &s)).unwrap_or_default();
    (events, summary)
}

/// The messages a step put on the network.
fn sends(model: &DrainModel, state: &SysState, action: &Action) -> Vec<String> {
    let Some(next) = model.next_state(state, action.clone()) else {
        return Vec::new();
    };
    let mut sent: Vec<String> = next
        .network
        .iter()
        .filter(|e| !state.network.contains(e))
        .map(|e| {
            format!(
                "{} → {}: {}",
                NodeIx::from(e.src),
                NodeIx::from(e.dst),
                describe::message(&e.msg)
            )
        })
        .collect();
    sent.sort();
    sent
}

/// Extra context for an event: what DrainNode answered, what a node ran.
fn annotate(state: &SysState, action: &Action) -> Option<String> {
    match action {
        Action::Poll(n) => {
            let (host, c) = DrainModel::coordinator(state)?;
            let answer = c.clone().drain_node(n, &mut Vec::new());
            Some(describe_answer("DrainNode", *n, host, answer))
        }
        Action::Status(n) => {
            let (host, c) = DrainModel::coordinator(state)?;
            Some(describe_answer("DrainStatus", *n, host, c.drain_status(n)))
        }
        Action::AddWork => Some(format!("unit w{}", state.history.promised)),
        Action::Watch(_) => Some(format!(
            "term {}, leader {}",
            state.history.term, state.history.leader
        )),
        Action::Crash(n) | Action::Exit(n) | Action::LeaseLoss(n) => {
            let s = DrainModel::node(state, *n);
            Some(format!(
                "epoch {} was {}, running [{}]",
                s.agent.epoch(),
                s.agent.liveness(),
                units(s)
            ))
        }
        _ => None,
    }
}

fn describe_answer<E: std::fmt::Debug>(
    call: &str,
    node: NodeIx,
    host: NodeIx,
    answer: Result<crate::protocol::DrainReport<NodeIx>, E>,
) -> String {
    match answer {
        Ok(r) => format!(
            "{call}({node}) answered by {host} → remaining {}, {}",
            r.remaining, r.phase
        ),
        Err(e) => format!("{call}({node}) → error {e:?}"),
    }
}

fn units(s: &NodeState) -> String {
    s.agent
        .running()
        .map(|w| w.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every node's real state, and the coordinator's belief.
pub fn summarize(model: &DrainModel, s: &SysState) -> Vec<String> {
    let mut out = Vec::new();
    for n in (0..model.cfg.nodes).map(NodeIx) {
        let node = DrainModel::node(s, n);
        let line = if DrainModel::is_up(s, n) {
            let coord = node
                .coordinator
                .as_ref()
                .map(|c| format!(", coordinator of term {}", c.term()))
                .unwrap_or_default();
            format!(
                "{n}: epoch {}, {}, running [{}], follows term {}{coord}",
                node.agent.epoch(),
                node.agent.liveness(),
                units(node),
                node.agent.term_floor()
            )
        } else {
            format!("{n}: down")
        };
        out.push(line);
    }
    if let Some((host, c)) = DrainModel::coordinator(s) {
        let beliefs: Vec<String> = c
            .records()
            .map(|(n, r)| {
                let placed: Vec<String> = c.units_on(n).map(|w| w.to_string()).collect();
                format!("{n}=epoch {} {} [{}]", r.epoch, r.view(), placed.join(" "))
            })
            .collect();
        out.push(format!(
            "coordinator on {host} believes: {}",
            beliefs.join("; ")
        ));
    }
    out
}
