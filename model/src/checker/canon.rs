//! Canonical operation ids.
//!
//! The protocol never looks at an operation id's value: nodes compare `(term, op)`
//! pairs of commands for one work unit, the coordinator matches acknowledgements by
//! equality, and new ids are larger than every earlier one of the term. Renumbering the
//! ids of each term to 1, 2, 3 … in their order (the last id handed out included) keeps
//! every comparison, so it maps each state to an equivalent one: states that differ only
//! in how many operations came before collapse into one.

use super::actor::{Coord, Msg, NodeState, NodeTimer, SharedCoord};
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

/// Renumbers the operation ids of `s` densely, per term, keeping their order.
pub fn canonicalize_ops(s: &mut SysState) {
    // Every successor state comes through here: reuse one buffer per thread rather than
    // allocating, and build the renaming only when some id is not already dense.
    thread_local! {
        static SEEN: RefCell<Vec<(Term, OpId)>> = const { RefCell::new(Vec::new()) };
    }
    SEEN.with(|buffer| {
        let mut seen = buffer.take();
        seen.clear();
        canonicalize_ops_with(s, &mut seen);
        buffer.replace(seen);
    });
}

fn canonicalize_ops_with(s: &mut SysState, seen: &mut Vec<(Term, OpId)>) {
    collect_op_ids(s, seen);
    if is_dense(seen) {
        return;
    }
    let map = renaming_of(seen);
    let rename = |t: Term, op: OpId| rename_with(&map, t, op);
    for (i, node) in s.actor_states.iter_mut().enumerate() {
        if s.crashed[i] {
            continue;
        }
        let mut n = NodeState::clone(node);
        n.agent.rename_ops(&rename);
        if let Some(c) = &n.coordinator {
            let mut c = Coord::clone(c);
            let t = c.term();
            c.rename_ops(&|op| rename(t, op));
            n.coordinator = Some(SharedCoord::new(c));
        }
        if n != **node {
            *node = Arc::new(n);
        }
    }
    if s.network
        .iter()
        .any(|e| op_of(&e.msg).is_some_and(|(t, op)| rename(t, op) != op))
    {
        s.network.rewrite(|e| e.msg = rename_msg(&e.msg, &rename));
    }
}

/// Every (term, operation id) that `s` holds, sorted and deduplicated, into `seen`:
/// the fences of live agents, the operations of live coordinators, and the ids that
/// messages carry.
fn collect_op_ids(s: &SysState, seen: &mut Vec<(Term, OpId)>) {
    for (i, node) in s.actor_states.iter().enumerate() {
        if s.crashed[i] {
            continue;
        }
        seen.extend(node.agent.fences());
        if let Some(c) = &node.coordinator {
            seen.extend(c.op_ids().map(|op| (c.term(), op)));
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

/// The renaming of the sorted, deduplicated `seen`: per term, each id other than 0 to
/// its rank (1, 2, 3 …).
fn renaming_of(seen: &[(Term, OpId)]) -> Vec<((Term, OpId), OpId)> {
    let mut map = Vec::with_capacity(seen.len());
    let mut term = None;
    let mut rank = 0;
    for &(t, op) in seen {
        if term != Some(t) {
            term = Some(t);
            rank = 0;
        }
        if op > 0 {
            rank += 1;
        }
        map.push(((t, op), rank));
    }
    map
}

fn rename_with(map: &[((Term, OpId), OpId)], t: Term, op: OpId) -> OpId {
    match map.binary_search_by(|(k, _)| k.cmp(&(t, op))) {
        Ok(i) => map[i].1,
        Err(_) => op,
    }
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
    rename_msg(msg, &|t, op| rename_with(&map, t, op))
}

/// Whether renaming the sorted, deduplicated `seen` would keep every id: per term, the
/// ids other than 0 are 1, 2, 3 … (the ranks the renaming gives them).
fn is_dense(seen: &[(Term, OpId)]) -> bool {
    let mut term = None;
    let mut rank = 0;
    for &(t, op) in seen {
        if term != Some(t) {
            term = Some(t);
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

fn op_of(msg: &Msg) -> Option<(Term, OpId)> {
    match msg {
        Msg::ToNode(ToNode::AddWork { term, op, .. } | ToNode::RemoveWork { term, op, .. })
        | Msg::ToCoord(ToCoordinator::WorkStatus { term, op, .. }) => Some((*term, *op)),
        _ => None,
    }
}

fn rename_msg(msg: &Msg, rename: &dyn Fn(Term, OpId) -> OpId) -> Msg {
    let mut m = msg.clone();
    match &mut m {
        Msg::ToNode(ToNode::AddWork { term, op, .. } | ToNode::RemoveWork { term, op, .. })
        | Msg::ToCoord(ToCoordinator::WorkStatus { term, op, .. }) => *op = rename(*term, *op),
        _ => {}
    }
    m
}
