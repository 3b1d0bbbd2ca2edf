//! Field checks shared by the decoders: each names the field it rejects.

use super::DecodeError;

/// Checks that an id is non-empty.
pub(super) fn id(field: &str, value: String) -> Result<String, DecodeError> {
    if value.is_empty() {
        return Err(DecodeError::EmptyId {
            field: field.to_owned(),
        });
    }
    Ok(value)
}

/// Checks that a list of ids holds no empty one; errors name the index.
pub(super) fn ids(field: &str, values: Vec<String>) -> Result<Vec<String>, DecodeError> {
    if let Some(i) = values.iter().position(String::is_empty) {
        return Err(DecodeError::EmptyId {
            field: format!("{field}[{i}]"),
        });
    }
    Ok(values)
}

/// Checks that an epoch is a real one (>= 1).
pub(super) fn epoch(field: &str, value: u64) -> Result<u64, DecodeError> {
    if value == 0 {
        return Err(DecodeError::ZeroEpoch {
            field: field.to_owned(),
        });
    }
    Ok(value)
}

/// Checks that a term is a real one (>= 1).
pub(super) fn term(field: &str, value: u64) -> Result<u64, DecodeError> {
    if value == 0 {
        return Err(DecodeError::ZeroTerm {
            field: field.to_owned(),
        });
    }
    Ok(value)
}

/// Converts a wire count to `usize`.
pub(super) fn count(field: &str, value: u64) -> Result<usize, DecodeError> {
    usize::try_from(value).map_err(|_| DecodeError::OutOfRange {
        field: field.to_owned(),
        value,
    })
}

/// Unwraps a required field.
pub(super) fn required<T>(field: &str, value: Option<T>) -> Result<T, DecodeError> {
    value.ok_or_else(|| DecodeError::Missing {
        field: field.to_owned(),
    })
}
