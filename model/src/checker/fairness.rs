//! L1 without the quiescence argument: from a state, a fair continuation settles.
//!
//! L1 is judged on quiescent states: there, nothing fair can happen any more, so a
//! requested drain that has not answered 0 never will. That leaves a gap: a run that
//! never becomes quiescent (resends that never converge, a ping-pong of moves) passes
//! L1 without ever answering. This module closes it mechanically. From a state it runs
//! one *fair continuation*, in rounds: each round takes every progress action enabled
//! at its start (every message in the network delivered once, every armed timer but the
//! TTL fired, down members restarted or expired, an election, the watches, the client's
//! polls), in the model's action order, each one if still enabled when its turn comes;
//! no faults. The continuation must reach a quiescent state within
//! [`ModelConfig::fair_rounds`](super::ModelConfig) rounds, where L1 itself then
//! judges the drains. Round-boundary states already shown to settle are remembered, so
//! continuations that meet cost only their new part.
//!
//! A deterministic continuation is one fair run among many: this shows that the
//! protocol *can* settle from every state under fairness and that no progress action
//! feeds a cycle on this schedule, not that every fair schedule settles. A planted
//! livelock (`--without balance-hysteresis`) is caught.

use super::system::{Action, DrainModel, SysState};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;

/// Round-boundary states (by hash), each with the number of rounds its continuation
/// takes to become quiescent.
#[derive(Debug, Default)]
pub struct Settled {
    known: Mutex<HashMap<u64, u32, ahash::RandomState>>,
}

/// A state's 64-bit hash, the same on every run, so that `--fair-sample` picks the
/// same states. (Every state the check visits is hashed here, and again after each
/// round: with std's SipHash this was a tenth of CI's third configuration.)
fn fingerprint(s: &SysState) -> u64 {
    super::state::stable_hasher().hash_one(s)
}

/// Whether the fair continuation from `s` reaches a quiescent state within the
/// configured number of rounds (always true when the check is off, and for the states
/// the configured sample skips).
pub fn settles(model: &DrainModel, s: &SysState) -> bool {
    let rounds = model.cfg.fair_rounds;
    if rounds == 0 {
        return true;
    }
    let fp = fingerprint(s);
    if !fp.is_multiple_of(u64::from(model.cfg.fair_sample.max(1))) {
        return true;
    }
    rounds_from(model, s, fp).is_some()
}

/// The number of rounds the fair continuation from `s` takes to reach a quiescent
/// state, or None when it does not within `fair_rounds`.
pub fn rounds_to_settle(model: &DrainModel, s: &SysState) -> Option<u32> {
    rounds_from(model, s, fingerprint(s))
}

/// [`rounds_to_settle`], with `fp` the fingerprint of `s` (the state is hashed once).
fn rounds_from(model: &DrainModel, s: &SysState, mut fp: u64) -> Option<u32> {
    let limit = u32::from(model.cfg.fair_rounds);
    let settled = &model.settled;
    let mut path: Vec<u64> = Vec::new();
    let mut cur = Cow::Borrowed(s);
    for round in 0..=limit {
        let known = settled
            .known
            .lock()
            .expect("not poisoned")
            .get(&fp)
            .copied();
        let rest = match known {
            Some(rest) => rest,
            None if model.is_quiescent(&cur) => 0,
            None => {
                path.push(fp);
                cur = Cow::Owned(fair_round(model, &cur));
                fp = fingerprint(&cur);
                continue;
            }
        };
        let total = round + rest;
        if total > limit {
            return None;
        }
        let mut memo = settled.known.lock().expect("not poisoned");
        if known.is_none() {
            memo.insert(fp, rest);
        }
        for (i, p) in path.into_iter().enumerate() {
            memo.insert(p, total - i as u32);
        }
        return Some(total);
    }
    None
}

/// One round of the fair continuation from `s`.
pub fn fair_round(model: &DrainModel, s: &SysState) -> SysState {
    let mut actions = Vec::new();
    stateright::Model::actions(model, s, &mut actions);
    actions.retain(Action::is_progress);
    let mut cur = s.clone();
    for a in actions {
        if still_enabled(model, &cur, &a) {
            if let Some(next) = stateright::Model::next_state(model, &cur, a) {
                cur = next;
            }
        }
    }
    cur
}

/// Whether `a`, enabled at the start of the round, is still enabled in `s`.
fn still_enabled(model: &DrainModel, s: &SysState, a: &Action) -> bool {
    let up = |n: &super::NodeIx| DrainModel::is_up(s, *n);
    match a {
        Action::Deliver { src, dst, msg } => {
            up(dst)
                && s.network.contains(&stateright::actor::Envelope {
                    src: src.id(),
                    dst: dst.id(),
                    msg: msg.clone(),
                })
        }
        Action::Timer { node, timer } => up(node) && s.timers_set[node.ix()].contains(timer),
        Action::Restart(n) => !up(n),
        Action::Leave(n) => s.history.is_member(*n),
        Action::NotifyJoin(n) => s.history.unseen_joins & (1 << n.0) != 0,
        Action::NotifyLeave(n) => s.history.unseen_leaves & (1 << n.0) != 0,
        Action::Elect(_) | Action::ElectView { .. } => DrainModel::coordinator(s).is_none(),
        Action::Watch(n) => model.watch_pending(s, *n),
        Action::Poll(_) => DrainModel::coordinator(s).is_some(),
        _ => false,
    }
}
