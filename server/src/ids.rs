//! Ids as clients send them. Reads, commands and transports all parse them here, so that
//! nothing below the transports needs `commands` for it.
use crate::error::AppResult;

/// Parses an id the client sent, as VALIDATION_ERROR on its field.
pub fn parse_id(field: &'static str, value: &str) -> AppResult<String> {
    Ok(pm_shared::domain::uuid(field, value)?)
}
