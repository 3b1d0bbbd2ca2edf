//! Every guard of the protocol matters: with it switched off, the checker finds a
//! counterexample to the property it protects. A guard whose removal breaks nothing
//! would be dead weight, or a sign that the model or the property is too weak.

use ebbtide_model::checker::run::{self, RunOptions, Search, Status};
use ebbtide_model::checker::ModelConfig;
use ebbtide_model::{Guard, Guards};

/// The property each guard protects, as the checker shows.
const EXPECTED: &[(Guard, &str)] = &[
    (Guard::SingleStep, "S1"),
    (Guard::TermFencing, "S7"),
    (Guard::EpochFencing, "S6"),
    (Guard::WorkFencing, "S5"),
    (Guard::DropStaleReports, "S2"),
    (Guard::DropRegressingReports, "S2"),
    (Guard::ResetOnNewIncarnation, "S8"),
    (Guard::StoppingGate, "S8"),
    (Guard::CountInFlight, "S3"),
    (Guard::FreshDestination, "S4"),
    (Guard::RemoveBeforeAdd, "S5"),
    (Guard::RejectWhileStopping, "S4"),
    (Guard::BootstrapBeforeServing, "S5"),
    (Guard::CampaignOnlyAlive, "S7"),
    (Guard::ElectedTermsOnly, "S9"),
    (Guard::RefuseOwnNode, "S7"),
    (Guard::Resend, "L1"),
];

/// Two nodes, one work unit, one of each fault (lease losses included: one guard,
/// `reject-while-stopping`, needs them; one stray term, as by default: one guard,
/// `elected-terms-only`, needs it). Every guard bites here, in seconds.
fn config_without(guard: Guard) -> ModelConfig {
    ModelConfig {
        nodes: 2,
        work: 1,
        node_crashes: 1,
        failovers: 1,
        lease_losses: 1,
        guards: Guards::default().without(guard),
        ..ModelConfig::default()
    }
}

fn bites(guard: Guard, property: &'static str) {
    let opts = RunOptions {
        threads: 1,
        search: Search::Bfs,
        stop_when_found: Some(property),
        ..RunOptions::default()
    };
    let report = run::run(config_without(guard), &opts, |_| {});
    let p = report.property(property).expect("a known property");
    assert_eq!(
        p.status,
        Status::Violated,
        "without {guard}, expected a counterexample to {property}"
    );
    let steps = p.counterexample.as_ref().expect("a counterexample");
    assert!(!steps.is_empty());
}

#[test]
fn every_guard_has_an_expected_property() {
    for g in Guard::ALL {
        assert!(
            EXPECTED.iter().any(|(e, _)| *e == g),
            "{g} has no expected counterexample"
        );
    }
}

macro_rules! guard_tests {
    ($($name:ident: $guard:expr;)*) => {$(
        #[test]
        fn $name() {
            let (g, p) = EXPECTED.iter().find(|(g, _)| *g == $guard).unwrap();
            bites(*g, p);
        }
    )*};
}

guard_tests! {
    without_single_step: Guard::SingleStep;
    without_term_fencing: Guard::TermFencing;
    without_epoch_fencing: Guard::EpochFencing;
    without_work_fencing: Guard::WorkFencing;
    without_drop_stale_reports: Guard::DropStaleReports;
    without_drop_regressing_reports: Guard::DropRegressingReports;
    without_reset_on_new_incarnation: Guard::ResetOnNewIncarnation;
    without_stopping_gate: Guard::StoppingGate;
    without_count_in_flight: Guard::CountInFlight;
    without_fresh_destination: Guard::FreshDestination;
    without_remove_before_add: Guard::RemoveBeforeAdd;
    without_reject_while_stopping: Guard::RejectWhileStopping;
    without_bootstrap_before_serving: Guard::BootstrapBeforeServing;
    without_campaign_only_alive: Guard::CampaignOnlyAlive;
    without_elected_terms_only: Guard::ElectedTermsOnly;
    without_refuse_own_node: Guard::RefuseOwnNode;
    without_resend: Guard::Resend;
}

#[test]
fn a_small_configuration_holds_with_every_guard_on() {
    let cfg = ModelConfig {
        nodes: 2,
        work: 1,
        node_crashes: 1,
        failovers: 1,
        lease_losses: 1,
        ..ModelConfig::default()
    };
    let report = run::run(cfg, &RunOptions::default(), |_| {});
    assert!(report.exhaustive);
    for p in &report.properties {
        if p.kind == "always" {
            assert_eq!(p.status, Status::Holds, "{}", p.name);
        }
    }
    assert_eq!(
        report.property("L2 drain completes").unwrap().status,
        Status::Holds
    );
}

#[test]
fn an_operator_resignation_and_a_graceful_leave_of_the_target_break_nothing() {
    let cfg = ModelConfig {
        nodes: 2,
        work: 1,
        node_crashes: 0,
        failovers: 1,
        resigns: 1,
        leaves: 1,
        ..ModelConfig::default()
    };
    let report = run::run(cfg, &RunOptions::default(), |_| {});
    assert!(report.exhaustive);
    for p in &report.properties {
        let expected = if p.kind == "always" {
            Status::Holds
        } else {
            // Every witness is reached except the target's restart (no crashes here).
            match p.name {
                "L2 restart mid-drain" => Status::NotReached,
                _ => Status::Holds,
            }
        };
        assert_eq!(p.status, expected, "{}", p.name);
    }
}
