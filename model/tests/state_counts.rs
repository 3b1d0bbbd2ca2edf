//! Pinned state counts, as stateright's own examples pin theirs.
//!
//! The number of unique states of a small configuration is a fingerprint of the whole
//! model: its actions, its properties' history bits, message collection (`gc.rs`) and
//! operation-id renumbering (`canon.rs`). A change to any of them changes the count, so
//! it shows up here and must be explained (and this pin updated) in the same commit.
//! A reduction that is switched off by mistake, or a new action that adds nothing, is
//! caught the same way.

mod support;

use ebbtide_model::checker::run::RunOptions;
use ebbtide_model::checker::ModelConfig;

fn unique_states(cfg: ModelConfig) -> usize {
    unique_states_with(cfg, &RunOptions::default())
}

fn unique_states_with(cfg: ModelConfig, opts: &RunOptions) -> usize {
    support::all_hold(cfg, opts).unique_states
}

/// `ebbtide check --nodes 2 --work 1 --drains 1`: one of every fault but lease losses.
/// A loss is taken only where it leads to an L1 violation (`checker/losses.rs`), so
/// with the protocol as it is, none is: the lossless states alone. The exhaustive
/// search leaves L2's scenario records out (`ModelConfig::record_scenarios`).
#[test]
fn two_nodes_one_unit_one_drain() {
    let cfg = ModelConfig {
        nodes: 2,
        work: 1,
        drains: 1,
        ..ModelConfig::default()
    };
    assert_eq!(unique_states(cfg), 25_884);
}

/// The same in one search, every state with its scenario records
/// (`--single-search`).
#[test]
fn two_nodes_one_unit_one_drain_single_search() {
    let cfg = ModelConfig {
        nodes: 2,
        work: 1,
        drains: 1,
        ..ModelConfig::default()
    };
    let opts = RunOptions {
        scenarios_apart: false,
        ..RunOptions::default()
    };
    assert_eq!(unique_states_with(cfg, &opts), 37_559);
}

/// The same, offering every loss at every step (`--every-loss`).
#[test]
fn two_nodes_one_unit_one_drain_every_loss() {
    let cfg = ModelConfig {
        nodes: 2,
        work: 1,
        drains: 1,
        every_loss: true,
        ..ModelConfig::default()
    };
    assert_eq!(unique_states(cfg), 158_051);
}

/// `ebbtide check --nodes 2 --work 2`: two units, whose operation ids the renumbering
/// ranks apart (`canon.rs`; 225,291 when it ranked them together, per term).
#[test]
fn two_nodes_two_units() {
    let cfg = ModelConfig {
        nodes: 2,
        work: 2,
        ..ModelConfig::default()
    };
    assert_eq!(unique_states(cfg), 204_494);
}

/// `ebbtide check --nodes 3 --work 1 --drains 2 --node-crashes 0 --failovers 0
/// --fair-rounds 16`: two drains one after the other, polls after 0, and every state's
/// fair continuation.
#[test]
fn three_nodes_two_drains_settling() {
    let cfg = ModelConfig {
        nodes: 3,
        work: 1,
        drains: 2,
        node_crashes: 0,
        failovers: 0,
        fair_rounds: 16,
        ..ModelConfig::default()
    };
    assert_eq!(unique_states(cfg), 7_852);
}
