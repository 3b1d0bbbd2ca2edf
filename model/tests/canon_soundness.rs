//! The canonical form (`checker/canon.rs`: operation ids renumbered per unit and term,
//! dead liveness-TTL timers dropped) changes no verdict and loses no state: searching
//! with it reaches exactly the canonical forms of the states a search without it
//! reaches, and every property gets the same status both ways. Checked by exhaustive
//! search of small configurations with two work units (with one, per unit is per
//! term), where the raw operation ids stay finite.
//!
//! It fails when the renumbering merges states that behave differently (checked by
//! hand on all five configurations): when it reverses the order of each unit's ids,
//! and when it sets a coordinator's last id handed out one below the largest of its
//! term (its next id then repeats an id a node has seen).

mod support;

use ebbtide_model::checker::run::RunOptions;
use ebbtide_model::checker::{canon, DrainModel, ModelConfig};
use std::collections::HashSet;
use support::{exhaustive, fingerprint, for_each_reachable, statuses};

fn two_units(node_crashes: u8, failovers: u8) -> ModelConfig {
    ModelConfig {
        nodes: 2,
        work: 2,
        node_crashes,
        failovers,
        losses: Some(0),
        ttl_expiries: Some(1),
        ..ModelConfig::default()
    }
}

fn same_with_and_without_canon(cfg: ModelConfig) {
    let with_canon = |canon| ModelConfig {
        canon,
        ..cfg.clone()
    };
    let canonical = DrainModel::new(with_canon(true));
    let raw = DrainModel::new(with_canon(false));
    let mut with = HashSet::new();
    let n_with = for_each_reachable(&canonical, |s| {
        with.insert(fingerprint(s));
    });
    // The canonical form of every state the raw search reaches.
    let mut images = HashSet::new();
    let n_raw = for_each_reachable(&raw, |s| {
        let mut c = s.clone();
        canon::canonicalize(&canonical, &mut c);
        images.insert(fingerprint(&c));
    });
    assert!(
        n_with < n_raw,
        "{cfg:?}: the canonical form should merge states ({n_with} with, {n_raw} without)"
    );
    let only_with = with.difference(&images).count();
    let only_raw = images.difference(&with).count();
    assert!(
        only_with == 0 && only_raw == 0,
        "{cfg:?}: {only_with} canonical states only the canonical search reaches, {only_raw} \
         only as images of the raw search's ({} / {}); states {n_with} / {n_raw}",
        with.len(),
        images.len()
    );
    let opts = RunOptions {
        threads: 1,
        ..RunOptions::default()
    };
    let a = exhaustive(with_canon(true), &opts);
    let b = exhaustive(with_canon(false), &opts);
    assert_eq!(statuses(&a), statuses(&b), "{cfg:?}: verdicts differ");
}

#[test]
fn two_units_no_faults() {
    same_with_and_without_canon(two_units(0, 0));
}

#[test]
fn two_units_with_a_crash() {
    same_with_and_without_canon(two_units(1, 0));
}

#[test]
fn two_units_with_a_failover() {
    same_with_and_without_canon(two_units(0, 1));
}

#[test]
fn two_units_with_a_lease_loss_and_drain_batch_2() {
    same_with_and_without_canon(ModelConfig {
        lease_losses: 1,
        drain_batch: 2,
        ..two_units(0, 0)
    });
}

#[test]
fn two_units_added_while_running() {
    same_with_and_without_canon(ModelConfig {
        work: 1,
        added_work: 1,
        ..two_units(0, 1)
    });
}
