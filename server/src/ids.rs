//! Ids as clients send them. Reads, commands and transports all parse them here, so that
//! nothing below the transports needs `commands` for it.
use crate::error::AppResult;

/// Parses an id the client sent, as VALIDATION_ERROR on its field.
pub fn parse_id(field: &'static str, value: &str) -> AppResult<String> {
    Ok(pm_shared::domain::uuid(field, value)?)
}

/// A new random (version 4) id. The bytes come from the thread's own generator (rand's, seeded
/// from the OS) rather than from the kernel each time: the writer makes two for every event
/// (the frames' message ids), and a `getrandom` call for each was 2 % of the server's CPU in
/// the throughput benchmark.
pub fn random_id() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_version_4_uuids_and_differ() {
        let (a, b) = (random_id(), random_id());
        assert_ne!(a, b);
        let parsed = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(parsed.get_version(), Some(uuid::Version::Random));
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(parse_id("id", &a).unwrap(), a);
    }
}
