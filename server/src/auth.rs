//! Who is calling. Desktop mode (the default) trusts the `user_id` the client names, as the
//! reference does. Token mode requires a JWT (HS256, shared secret) with the reference's claims
//! `{sub, exp, iat, roles}`: over WebSocket in `Authorization: Bearer` or, for browsers,
//! `?token=`; over REST in `Authorization: Bearer`.
use axum::http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::{AuthMode, Config};

pub use crate::public_key::PublicKey;

/// The token's claims, as the reference defines them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// A caller the server has identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    /// Server administrator (the `admin` role claim in token mode; loopback in desktop mode).
    pub admin: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("a bearer token is required (Authorization: Bearer <token>)")]
    Missing,
    #[error("the token is invalid or expired")]
    Invalid,
    #[error("the token's subject must be a user UUID")]
    BadSubject,
}

/// Signs a token for `user_id`, valid for `ttl_secs`.
pub fn issue(
    secret: &str,
    user_id: &str,
    roles: Vec<String>,
    ttl_secs: i64,
) -> anyhow::Result<String> {
    let now = pm_shared::now_secs();
    let claims = Claims {
        sub: user_id.to_string(),
        iat: now,
        exp: now + ttl_secs,
        roles,
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// Checks a token's signature (HS256 with `secret`), expiry and subject.
pub fn verify(secret: &str, token: &str) -> Result<Identity, AuthError> {
    verify_with(
        &DecodingKey::from_secret(secret.as_bytes()),
        Algorithm::HS256,
        token,
    )
}

/// Checks a token's RS256 signature with `key`, its expiry and subject.
pub fn verify_rs256(key: &PublicKey, token: &str) -> Result<Identity, AuthError> {
    verify_with(&key.key, Algorithm::RS256, token)
}

fn verify_with(
    key: &DecodingKey,
    algorithm: Algorithm,
    token: &str,
) -> Result<Identity, AuthError> {
    let mut validation = Validation::new(algorithm);
    validation.leeway = 30;
    validation.validate_nbf = true;
    let data =
        jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|_| AuthError::Invalid)?;
    let user_id = uuid::Uuid::parse_str(data.claims.sub.trim())
        .map_err(|_| AuthError::BadSubject)?
        .to_string();
    Ok(Identity {
        user_id,
        admin: data.claims.roles.iter().any(|r| r == "admin"),
    })
}

/// The token of `Authorization: Bearer <token>`; the scheme name is case-insensitive
/// (RFC 7235 2.1), so `bearer` and `BEARER` work too.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim_start();
    let (scheme, token) = value.split_once([' ', '\t'])?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Identifies a caller from its headers, an optional `?token=`, and the user it names
/// (`?user_id=` or `X-User-Id`, honoured in desktop mode only).
pub fn identify(
    config: &Config,
    headers: &HeaderMap,
    query_token: Option<&str>,
    named_user: Option<&str>,
    loopback: bool,
) -> Result<Identity, AuthError> {
    match config.auth {
        AuthMode::Desktop => {
            let user_id = named_user
                .and_then(|u| uuid::Uuid::parse_str(u.trim()).ok())
                .map(|u| u.to_string())
                .unwrap_or_else(|| pm_shared::DEFAULT_USER_ID.to_string());
            Ok(Identity {
                user_id,
                admin: loopback,
            })
        }
        AuthMode::Token => {
            let token = bearer(headers).or(query_token).ok_or(AuthError::Missing)?;
            // A secret wins over a public key, as in the reference.
            match (&config.jwt_secret, &config.jwt_public_key) {
                (None, Some(key)) => verify_rs256(key, token),
                (secret, _) => verify(secret.as_deref().unwrap_or_default(), token),
            }
        }
    }
}

/// The longest lifetime `pm-server issue-token --ttl-days` grants: 100 years.
pub const TTL_DAYS_MAX: i64 = 36_500;

/// `--ttl-days` in seconds, for [`issue`]: 1 to [`TTL_DAYS_MAX`] days. Anything else is refused
/// rather than multiplied and added to now, which wrapped a huge value into an expiry in the past
/// (or a negative one into a token that was never valid).
pub fn ttl_secs(ttl_days: i64) -> anyhow::Result<i64> {
    if !(1..=TTL_DAYS_MAX).contains(&ttl_days) {
        anyhow::bail!("--ttl-days must be between 1 and {TTL_DAYS_MAX} (got {ttl_days})");
    }
    ttl_days
        .checked_mul(86_400)
        .ok_or_else(|| anyhow::anyhow!("--ttl-days {ttl_days} is too large"))
}

#[cfg(test)]
mod ttl_tests {
    use super::*;

    #[test]
    fn ttl_days_outside_one_day_to_a_hundred_years_are_refused() {
        assert_eq!(ttl_secs(1).unwrap(), 86_400);
        assert_eq!(ttl_secs(TTL_DAYS_MAX).unwrap(), TTL_DAYS_MAX * 86_400);
        for bad in [
            0,
            -1,
            TTL_DAYS_MAX + 1,
            i64::MAX / 86_400 + 1,
            i64::MAX,
            i64::MIN,
        ] {
            let err = ttl_secs(bad).expect_err("refused").to_string();
            assert!(err.contains("--ttl-days"), "{bad}: {err}");
        }
        // The largest accepted lifetime gives a token that verifies (its expiry did not wrap).
        let secret = "0123456789abcdef0123456789abcdef";
        let user = "00000000-0000-4000-8000-000000000001";
        let token = issue(secret, user, vec![], ttl_secs(TTL_DAYS_MAX).unwrap()).unwrap();
        assert!(verify(secret, &token).is_ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const USER: &str = "00000000-0000-4000-8000-000000000001";

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(
                axum::http::header::AUTHORIZATION,
                axum::http::HeaderValue::from_static(v),
            );
            bearer(&h).map(str::to_string)
        };
        assert_eq!(with("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(with("bearer abc").as_deref(), Some("abc"));
        assert_eq!(with("BEARER   abc ").as_deref(), Some("abc"));
        assert_eq!(with("Basic abc"), None);
        assert_eq!(with("Bearer"), None);
        assert_eq!(with("Bearerabc"), None);
    }

    #[test]
    fn issued_tokens_verify_and_carry_roles() {
        let t = issue(SECRET, USER, vec!["admin".into()], 60).expect("issue");
        assert_eq!(
            verify(SECRET, &t),
            Ok(Identity {
                user_id: USER.into(),
                admin: true
            })
        );
        assert_eq!(
            verify("another secret, also 32 chars long!", &t),
            Err(AuthError::Invalid)
        );
        let expired = issue(SECRET, USER, vec![], -3600).expect("issue");
        assert_eq!(verify(SECRET, &expired), Err(AuthError::Invalid));
        let not_uuid = issue(SECRET, "alice", vec![], 60).expect("issue");
        assert_eq!(verify(SECRET, &not_uuid), Err(AuthError::BadSubject));
        assert_eq!(verify(SECRET, "garbage"), Err(AuthError::Invalid));
    }
}
