//! Identifiers and counters shared by every role.

use std::fmt::Debug;
use std::hash::Hash;

/// One number per process lifetime (incarnation) of a node. A restarted node has a
/// strictly larger epoch than any earlier incarnation of the same node. Epochs start at 1;
/// 0 means "not known yet".
pub type Epoch = u64;

/// A coordinator's term: at most one coordinator per term, and a newer coordinator has a
/// larger term. Terms start at 1; 0 means "no coordinator seen yet".
pub type Term = u64;

/// An operation id, unique within one coordinator term. Node agents order the commands
/// they receive for one work unit by `(term, op)`.
pub type OpId = u64;

/// The wire protocol version that this core speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// What a node id or a work-unit id must provide. The runtime uses strings; the model
/// checker uses small integers so that states stay small.
pub trait Key: Clone + Ord + Hash + Debug {}
impl<T: Clone + Ord + Hash + Debug> Key for T {}
