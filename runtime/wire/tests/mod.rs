//! Tests of the wire conversions: core → wire → core is the identity, bad wire input
//! is a [`DecodeError`](super::DecodeError) naming the field, and nothing panics.

mod errors;
mod gen;
mod roundtrip;
