//! Compact node and work-unit ids for the model, so that states stay small.

use stateright::actor::Id;
use std::fmt;

/// A node in the model: `n0`, `n1`, …
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct NodeIx(pub u8);

/// A work unit in the model: `w0`, `w1`, …
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct UnitIx(pub u8);

impl NodeIx {
    /// The actor id of this node.
    pub fn id(self) -> Id {
        Id::from(self.0 as usize)
    }

    /// The position of this node in per-node vectors.
    pub fn ix(self) -> usize {
        self.0 as usize
    }
}

impl From<Id> for NodeIx {
    fn from(id: Id) -> Self {
        NodeIx(usize::from(id) as u8)
    }
}

impl fmt::Display for NodeIx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl fmt::Debug for NodeIx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl fmt::Display for UnitIx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "w{}", self.0)
    }
}

impl fmt::Debug for UnitIx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "w{}", self.0)
    }
}
