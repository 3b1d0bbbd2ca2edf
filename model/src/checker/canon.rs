//! Canonical operation ids.
//!
//! The protocol never looks at an operation id's value, and compares only the ids of
//! one work unit's commands: nodes fence each unit's commands by `(term, op)`, the
//! coordinator matches an acknowledgement to its unit's operation by equality, and a
//! new id is larger than every earlier one of the term. Renumbering the ids of each
//! unit in each term to 1, 2, 3 … in their order, and setting each coordinator's last
//! id handed out to the largest renumbered id of its term, keeps every comparison the
//! protocol makes, so it maps each state to an equivalent one: states that differ
//! only in how many operations came before, or in how the operations of different
//! units interleaved, collapse into one.
//!
//! (Until per-unit renumbering, the ids of a term were ranked across units, which kept
//! apart states whose units' operations had started in another order.)

use super::actor::{Coord, Msg, NodeState, NodeTimer, SharedCoord};
use super::ids::UnitIx;
use super::system::{DrainModel, SysState};
use crate::protocol::{OpId, Term, ToCoordinator, ToNode};
use std::cell::RefCell;
use std::sync::Arc;

/// Puts `s` in canonical form: dense operation ids, and no liveness-TTL timers once
/// the run may not expire any more (they can never fire).
pub fn canonicalize(m: &DrainModel, s: &mut SysState) {
    canonicalize_ops(s);
    if ttl_timers_dead(m, s) {
        for timers in s.timers_set.iter_mut() {
            timers.retain(|t| !matches!(t, NodeTimer::Ttl(_)));
        }
    }
}

/// Whether the canonical form of `s` holds no liveness-TTL timer: the run may expire
/// no more TTLs, so an armed one could never fire. (A step that only arms one then
/// changes nothing: `DrainModel::run_node` prunes it, rather than build a successor
/// that canonicalization turns back into `s`.)
pub fn ttl_timers_dead(m: &DrainModel, s: &SysState) -> bool {
    m.cfg.canon
        && m.cfg
            .ttl_expiries
            .is_some_and(|limit| s.history.expiries >= limit)
}

/// Renumbers the operation ids of `s` densely, per unit and term, keeping their order.
pub fn canonicalize_ops(s: &mut SysState) {
    // Every successor state comes through here: reuse one buffer per thread rather than
    // allocating, and build the renaming only when some id is not already dense.
    thread_local! {
        static SEEN: RefCell<Vec<OpKey>> = const { RefCell::new(Vec::new()) };
    }
    SEEN.with(|buffer| {
        let mut seen = buffer.take();
        seen.clear();
        canonicalize_ops_with(s, &mut seen);
        buffer.replace(seen);
    });
}

/// An operation id as the renumbering groups it: the term, the unit, the id.
type OpKey = (Term, UnitIx, OpId);

fn canonicalize_ops_with(s: &mut SysState, seen: &mut Vec<OpKey>) {
    collect_op_ids(s, seen);
    if is_dense(seen) && last_ids_dense(s, seen) {
        return;
    }
    let map = renaming_of(seen);
    let rename = |w: &UnitIx, t: Term, op: OpId| rename_with(&map, t, *w, op);
    for (i, node) in s.actor_states.iter_mut().enumerate() {
        if s.crashed[i] {
            continue;
        }
        let mut n = NodeState::clone(node);
        n.agent.rename_ops(&rename);
        if let Some(c) = &n.coordinator {
            let mut c = Coord::clone(c);
            let t = c.term();
            c.rename_ops(&|w, op| rename(w, t, op), largest_in_term(&map, t));
            n.coordinator = Some(SharedCoord::new(c));
        }
        if n != **node {
            *node = Arc::new(n);
        }
    }
    if s.network
        .iter()
        .any(|e| op_of(&e.msg).is_some_and(|(t, w, op)| rename(&w, t, op) != op))
    {
        s.network.rewrite(|e| e.msg = rename_msg(&e.msg, &rename));
    }
}

/// Every (term, unit, operation id) that `s` holds, sorted and deduplicated, into
/// `seen`: the fences of live agents, the operations of live coordinators, and the ids
/// that messages carry. (A coordinator's last id handed out is not among them: the
/// renumbering sets it, [`largest_in_term`].)
fn collect_op_ids(s: &SysState, seen: &mut Vec<OpKey>) {
    for (i, node) in s.actor_states.iter().enumerate() {
        if s.crashed[i] {
            continue;
        }
        seen.extend(node.agent.fences().map(|(w, (t, op))| (t, *w, op)));
        if let Some(c) = &node.coordinator {
            let t = c.term();
            seen.extend(c.op_ids().map(|(w, op)| (t, *w, op)));
        }
    }
    for e in s.network.iter() {
        if let Some(k) = op_of(&e.msg) {
            seen.push(k);
        }
    }
    seen.sort_unstable();
    seen.dedup();
}

/// The renaming of the sorted, deduplicated `seen`: per term and unit, each id other
/// than 0 to its rank (1, 2, 3 …).
fn renaming_of(seen: &[OpKey]) -> Vec<(OpKey, OpId)> {
    let mut map = Vec::with_capacity(seen.len());
    let mut group = None;
    let mut rank = 0;
    for &(t, w, op) in seen {
        if group != Some((t, w)) {
            group = Some((t, w));
            rank = 0;
        }
        if op > 0 {
            rank += 1;
        }
        map.push(((t, w, op), rank));
    }
    map
}

fn rename_with(map: &[(OpKey, OpId)], t: Term, w: UnitIx, op: OpId) -> OpId {
    match map.binary_search_by(|(k, _)| k.cmp(&(t, w, op))) {
        Ok(i) => map[i].1,
        Err(_) => op,
    }
}

/// The largest id of term `t` after renaming (0 when the state holds none): what the
/// coordinator of `t` is left with as its last id handed out, so that its next id is
/// newer than every id of every unit in its term, as before.
fn largest_in_term(map: &[(OpKey, OpId)], t: Term) -> OpId {
    map.iter()
        .filter(|((term, _, _), _)| *term == t)
        .map(|(_, rank)| *rank)
        .max()
        .unwrap_or(0)
}

/// Whether every live coordinator's last id handed out is already what the renaming
/// of a dense `seen` sets it to: the largest id of its term.
fn last_ids_dense(s: &SysState, seen: &[OpKey]) -> bool {
    s.actor_states.iter().enumerate().all(|(i, node)| {
        s.crashed[i]
            || node.coordinator.as_ref().is_none_or(|c| {
                let t = c.term();
                let largest = seen
                    .iter()
                    .filter(|(term, _, _)| *term == t)
                    .map(|(_, _, op)| *op)
                    .max()
                    .unwrap_or(0);
                c.last_op_id() == largest
            })
    })
}

/// The message `msg` as [`canonicalize_ops`] would rename it in `s`: what a message of
/// `s` is called in the canonical form of `s`. (The sequence diagram follows messages
/// across steps with it: a step may renumber the ids of messages still in flight.)
pub fn canonical_message(s: &SysState, msg: &Msg) -> Msg {
    let mut seen = Vec::new();
    collect_op_ids(s, &mut seen);
    if is_dense(&seen) {
        return msg.clone();
    }
    let map = renaming_of(&seen);
    rename_msg(msg, &|w, t, op| rename_with(&map, t, *w, op))
}

/// Whether renaming the sorted, deduplicated `seen` would keep every id: per term and
/// unit, the ids other than 0 are 1, 2, 3 … (the ranks the renaming gives them).
fn is_dense(seen: &[OpKey]) -> bool {
    let mut group = None;
    let mut rank = 0;
    for &(t, w, op) in seen {
        if group != Some((t, w)) {
            group = Some((t, w));
            rank = 0;
        }
        if op > 0 {
            rank += 1;
        }
        if op != rank {
            return false;
        }
    }
    true
}

fn op_of(msg: &Msg) -> Option<OpKey> {
    match msg {
        Msg::ToNode(
            ToNode::AddWork { work, term, op, .. } | ToNode::RemoveWork { work, term, op, .. },
        )
        | Msg::ToCoord(ToCoordinator::WorkStatus { work, term, op, .. }) => {
            Some((*term, *work, *op))
        }
        _ => None,
    }
}

/// `msg` with its operation id renamed by `rename(unit, term, op)` (the agents'
/// `rename_ops` takes the same).
fn rename_msg(msg: &Msg, rename: &dyn Fn(&UnitIx, Term, OpId) -> OpId) -> Msg {
    let mut m = msg.clone();
    match &mut m {
        Msg::ToNode(
            ToNode::AddWork { work, term, op, .. } | ToNode::RemoveWork { work, term, op, .. },
        )
        | Msg::ToCoord(ToCoordinator::WorkStatus { work, term, op, .. }) => {
            *op = rename(work, *term, *op)
        }
        _ => {}
    }
    m
}
