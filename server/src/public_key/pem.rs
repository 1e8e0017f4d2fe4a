//! Just enough PEM and DER to read an RSA public key for RS256 (`auth.jwt_public_key_path`):
//! jsonwebtoken reads PEM only with its `use_pem` feature, which would add an ASN.1 crate and a
//! date crate for one file read at start. The signature itself is checked by jsonwebtoken.
//!
//! Accepted: `BEGIN PUBLIC KEY` (SubjectPublicKeyInfo, what `openssl rsa -pubout` writes) and
//! `BEGIN RSA PUBLIC KEY` (PKCS#1). The result is the PKCS#1 `RSAPublicKey` DER that
//! `DecodingKey::from_rsa_der` takes.

/// The DER body of the first PEM block, with its label (`PUBLIC KEY`, …).
pub fn decode(pem: &str) -> Option<(String, Vec<u8>)> {
    let mut lines = pem.lines().map(str::trim).skip_while(|l| l.is_empty());
    let label = lines
        .next()?
        .strip_prefix("-----BEGIN ")?
        .strip_suffix("-----")?
        .to_string();
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    for line in lines {
        if line == end {
            return Some((label, base64(&body)?));
        }
        body.push_str(line);
    }
    None
}

/// Standard base64 (RFC 4648 section 4), padding optional.
fn base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0u8);
    for c in text.bytes().filter(|c| *c != b'=') {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

/// One DER element at the start of `der`: its tag, its contents and what follows it.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
/// 1.2.840.113549.1.1.1, rsaEncryption.
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// Whether `der` is a PKCS#1 `RSAPublicKey`: SEQUENCE { INTEGER n, INTEGER e }.
fn is_pkcs1_public(der: &[u8]) -> bool {
    let Some((SEQUENCE, body, [])) = element(der) else {
        return false;
    };
    let Some((INTEGER, _, rest)) = element(body) else {
        return false;
    };
    matches!(element(rest), Some((INTEGER, _, [])))
}

/// The PKCS#1 RSA public key of a PEM file, or None when it holds none.
pub fn rsa_public_key(pem: &str) -> Option<Vec<u8>> {
    let (label, der) = decode(pem)?;
    let pkcs1 = match label.as_str() {
        "RSA PUBLIC KEY" => der,
        "PUBLIC KEY" => {
            // SEQUENCE { SEQUENCE { OID rsaEncryption, params }, BIT STRING { 0, RSAPublicKey } }
            let (SEQUENCE, body, []) = element(&der)? else {
                return None;
            };
            let (SEQUENCE, algorithm, rest) = element(body)? else {
                return None;
            };
            let (OID, oid, _) = element(algorithm)? else {
                return None;
            };
            if oid != RSA_ENCRYPTION {
                return None;
            }
            let (BIT_STRING, bits, []) = element(rest)? else {
                return None;
            };
            let (&0, key) = bits.split_first()? else {
                return None;
            };
            key.to_vec()
        }
        _ => return None,
    };
    is_pkcs1_public(&pkcs1).then_some(pkcs1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_the_rfc_examples() {
        for (text, plain) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
        ] {
            assert_eq!(base64(text).as_deref(), Some(plain.as_bytes()), "{text}");
        }
        assert_eq!(base64("Zm9v!"), None);
    }

    /// One test key (generated with openssl for this test) in both public-key forms.
    const SPKI: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsf3DX+iUF3BPEm/3LeT0
vn5VXYx7x/PfL8ICiqFcmYYZRQ3nXgZaTBzjS4KuZkaMuRNbAFDYJGnEpP72sB9Y
FElx5sSjJ3ZDoYDgVWC0mfSmM1TkIHVuQqD3pCMbVvCz2yk7AqvQcKgQDxz/0pu2
Ef4UF5lwPSl4Bu7FBW3mnTMeQWhkVR2Mw1pdXy2SyAmbcue4+NoeOY60XdQA51Ab
KcYGe1dzp7j8NRYiHe6qd8N1qxYbzC1obR1qCgXa+Gj+WIsIrg8KYhW5MYH3M20/
kJU335+dVBOlKi+rM1+b4+SB12NAH1l3b/9NJx2lpQHr62Jr41CmmRtwU7RS151X
pQIDAQAB
-----END PUBLIC KEY-----\n";
    const PKCS1: &str = "-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAsf3DX+iUF3BPEm/3LeT0vn5VXYx7x/PfL8ICiqFcmYYZRQ3nXgZa
TBzjS4KuZkaMuRNbAFDYJGnEpP72sB9YFElx5sSjJ3ZDoYDgVWC0mfSmM1TkIHVu
QqD3pCMbVvCz2yk7AqvQcKgQDxz/0pu2Ef4UF5lwPSl4Bu7FBW3mnTMeQWhkVR2M
w1pdXy2SyAmbcue4+NoeOY60XdQA51AbKcYGe1dzp7j8NRYiHe6qd8N1qxYbzC1o
bR1qCgXa+Gj+WIsIrg8KYhW5MYH3M20/kJU335+dVBOlKi+rM1+b4+SB12NAH1l3
b/9NJx2lpQHr62Jr41CmmRtwU7RS151XpQIDAQAB
-----END RSA PUBLIC KEY-----\n";

    #[test]
    fn both_public_key_forms_give_the_same_rsa_key() {
        let from_spki = rsa_public_key(SPKI).expect("SubjectPublicKeyInfo");
        let from_pkcs1 = rsa_public_key(PKCS1).expect("PKCS#1");
        assert_eq!(from_spki, from_pkcs1);
        assert!(is_pkcs1_public(&from_spki));
    }

    #[test]
    fn not_a_key_is_refused() {
        assert_eq!(rsa_public_key("not a key"), None);
        assert_eq!(
            rsa_public_key("-----BEGIN PUBLIC KEY-----\nZm9v\n-----END PUBLIC KEY-----\n"),
            None
        );
        assert_eq!(
            rsa_public_key("-----BEGIN PUBLIC KEY-----\nMAA=\n"),
            None,
            "no END line"
        );
    }
}
