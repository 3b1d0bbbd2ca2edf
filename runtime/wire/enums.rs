//! The core's small enums and their protobuf enums.

use super::{pb, DecodeError};
use ebbtide_model::{Liveness, ViewLiveness, WorkState};

/// A core enum that travels as a protobuf enum (an `i32` in the generated structs).
pub trait WireEnum: Sized {
    /// Its wire number.
    fn to_wire(self) -> i32;
    /// Decodes the wire number `raw` of `field`; `UNSPECIFIED` (0) and numbers this
    /// build does not know are [`DecodeError::UnknownEnum`].
    fn from_wire(field: &str, raw: i32) -> Result<Self, DecodeError>;
}

fn unknown(field: &str, value: i32) -> DecodeError {
    DecodeError::UnknownEnum {
        field: field.to_owned(),
        value,
    }
}

impl From<Liveness> for pb::Liveness {
    fn from(l: Liveness) -> Self {
        match l {
            Liveness::Alive => pb::Liveness::Alive,
            Liveness::Draining => pb::Liveness::Draining,
            Liveness::Stopping => pb::Liveness::Stopping,
        }
    }
}

impl WireEnum for Liveness {
    fn to_wire(self) -> i32 {
        pb::Liveness::from(self).into()
    }

    fn from_wire(field: &str, raw: i32) -> Result<Self, DecodeError> {
        match pb::Liveness::try_from(raw) {
            Ok(pb::Liveness::Alive) => Ok(Liveness::Alive),
            Ok(pb::Liveness::Draining) => Ok(Liveness::Draining),
            Ok(pb::Liveness::Stopping) => Ok(Liveness::Stopping),
            Ok(pb::Liveness::Unspecified) | Err(_) => Err(unknown(field, raw)),
        }
    }
}

impl From<ViewLiveness> for pb::ViewLiveness {
    fn from(l: ViewLiveness) -> Self {
        match l {
            ViewLiveness::Alive => pb::ViewLiveness::Alive,
            ViewLiveness::Draining => pb::ViewLiveness::Draining,
            ViewLiveness::Stopping => pb::ViewLiveness::Stopping,
            ViewLiveness::Unknown => pb::ViewLiveness::Unknown,
        }
    }
}

impl WireEnum for ViewLiveness {
    fn to_wire(self) -> i32 {
        pb::ViewLiveness::from(self).into()
    }

    fn from_wire(field: &str, raw: i32) -> Result<Self, DecodeError> {
        match pb::ViewLiveness::try_from(raw) {
            Ok(pb::ViewLiveness::Alive) => Ok(ViewLiveness::Alive),
            Ok(pb::ViewLiveness::Draining) => Ok(ViewLiveness::Draining),
            Ok(pb::ViewLiveness::Stopping) => Ok(ViewLiveness::Stopping),
            Ok(pb::ViewLiveness::Unknown) => Ok(ViewLiveness::Unknown),
            Ok(pb::ViewLiveness::Unspecified) | Err(_) => Err(unknown(field, raw)),
        }
    }
}

impl From<WorkState> for pb::WorkState {
    fn from(s: WorkState) -> Self {
        match s {
            WorkState::Running => pb::WorkState::Running,
            WorkState::Stopped => pb::WorkState::Stopped,
            WorkState::Rejected => pb::WorkState::Rejected,
        }
    }
}

impl WireEnum for WorkState {
    fn to_wire(self) -> i32 {
        pb::WorkState::from(self).into()
    }

    fn from_wire(field: &str, raw: i32) -> Result<Self, DecodeError> {
        match pb::WorkState::try_from(raw) {
            Ok(pb::WorkState::Running) => Ok(WorkState::Running),
            Ok(pb::WorkState::Stopped) => Ok(WorkState::Stopped),
            Ok(pb::WorkState::Rejected) => Ok(WorkState::Rejected),
            Ok(pb::WorkState::Unspecified) | Err(_) => Err(unknown(field, raw)),
        }
    }
}
