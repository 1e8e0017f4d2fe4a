//! The RSA public key that checks RS256 tokens (`--jwt-public-key-path`, the reference's
//! `auth.jwt_public_key_path`), read once at start: below the configuration, which holds it.
pub mod pem;

use jsonwebtoken::DecodingKey;

/// The reference's RS256 public key (`auth.jwt_public_key_path`, PEM), read once at start.
#[derive(Clone)]
pub struct PublicKey {
    pem: std::sync::Arc<str>,
    pub(crate) key: std::sync::Arc<DecodingKey>,
}

impl PublicKey {
    /// Reads and checks the PEM file at `path`.
    pub fn read(path: &std::path::Path) -> anyhow::Result<PublicKey> {
        let pem = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read the JWT public key {}: {e}", path.display())
        })?;
        let der = pem::rsa_public_key(&pem).ok_or_else(|| {
            anyhow::anyhow!(
                "the JWT public key {} is not an RSA public key in PEM (BEGIN PUBLIC KEY or \
                 BEGIN RSA PUBLIC KEY)",
                path.display()
            )
        })?;
        Ok(PublicKey {
            pem: pem.into(),
            key: std::sync::Arc::new(DecodingKey::from_rsa_der(&der)),
        })
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PublicKey(RS256)")
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &PublicKey) -> bool {
        self.pem == other.pem
    }
}

impl Eq for PublicKey {}
