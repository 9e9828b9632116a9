//! The optional register of access points (docs/security.md, "AP register"): each AP by MAC
//! with its own user name and password. Only a salted PBKDF2-HMAC-SHA256 hash of the password is
//! stored, as `pbkdf2-sha256$<rounds>$<salt, base64>$<hash, base64>`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

/// Rounds for new hashes. OWASP's 2023 figure for PBKDF2-HMAC-SHA256 is 600,000; these
/// passwords are machine-generated (at least 16 characters, docs/security.md), not chosen by
/// people, so 100,000 rounds keep a login cheap (an AP logs in once per token lifetime).
pub const ROUNDS: u32 = 100_000;
/// Fewest rounds a stored hash may have (a restored backup cannot weaken it further).
const MIN_ROUNDS: u32 = 10_000;
const SCHEME: &str = "pbkdf2-sha256";

/// One registered AP as stored in Redis (`keys::AP_REGISTER`, field = MAC) and in backups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApRecord {
    /// MAC address, 12 lower-case hexadecimal digits.
    #[schema(pattern = "^[a-f0-9]{12}$", example = "24f27fca1ba4")]
    pub mac: String,
    /// User name the AP logs in with at `/auth/aruba`.
    #[schema(example = "ap-lobby-1")]
    pub username: String,
    /// Salted hash of the AP's password, never the password.
    #[serde(rename = "passwordHash")]
    #[schema(example = "pbkdf2-sha256$100000$c2FsdHNhbHRzYWx0c2FsdA$...")]
    pub password_hash: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schema(max_length = 256, example = "Lobby, ceiling")]
    pub description: String,
    /// SHA-256 of the AP's client certificate (DER), 64 lower-case hex digits: when set, the
    /// AP's WebSocket must present this certificate on the ingress's own wss listener.
    #[serde(
        rename = "certificateSha256",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(pattern = "^[a-f0-9]{64}$")]
    pub certificate_sha256: Option<String>,
}

/// Whether `s` is a SHA-256 fingerprint as the register stores it.
pub fn valid_fingerprint(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A new salted hash of `password`.
pub fn hash_password(password: &str) -> String {
    hash_with(password, &rand::random::<[u8; 16]>(), ROUNDS)
}

fn hash_with(password: &str, salt: &[u8], rounds: u32) -> String {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, rounds, &mut out);
    format!("{SCHEME}${rounds}${}${}", B64.encode(salt), B64.encode(out))
}

/// Whether `stored` is a hash this module can check.
pub fn valid_hash(stored: &str) -> bool {
    parse(stored).is_some()
}

fn parse(stored: &str) -> Option<(u32, Vec<u8>, Vec<u8>)> {
    let mut parts = stored.split('$');
    if parts.next()? != SCHEME {
        return None;
    }
    let rounds: u32 = parts.next()?.parse().ok()?;
    let salt = B64.decode(parts.next()?).ok()?;
    let hash = B64.decode(parts.next()?).ok()?;
    let ok = parts.next().is_none()
        && (MIN_ROUNDS..=10_000_000).contains(&rounds)
        && salt.len() >= 8
        && hash.len() == 32;
    ok.then_some((rounds, salt, hash))
}

/// Checks `password` against a stored hash, in constant time for a given hash.
pub fn verify_password(password: &str, stored: &str) -> bool {
    let Some((rounds, salt, want)) = parse(stored) else {
        return false;
    };
    let mut got = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, rounds, &mut got);
    bool::from(got.as_slice().ct_eq(&want))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_and_hides_the_password() {
        let h = hash_with("s3cret-pass", b"saltsaltsalt", MIN_ROUNDS);
        assert!(h.starts_with("pbkdf2-sha256$10000$"));
        assert!(!h.contains("s3cret"));
        assert!(verify_password("s3cret-pass", &h));
        assert!(!verify_password("s3cret-pasS", &h));
        assert!(valid_hash(&h));
    }

    #[test]
    fn salts_differ() {
        let (a, b) = (hash_password("x"), hash_password("x"));
        assert_ne!(a, b);
        assert!(verify_password("x", &a) && verify_password("x", &b));
    }

    #[test]
    fn malformed_or_weak_hashes_never_verify() {
        for bad in [
            "",
            "plain",
            "pbkdf2-sha256$1$c2FsdHNhbHQ$AAAA",
            "md5$600000$c2FsdHNhbHQ$AAAA",
        ] {
            assert!(!valid_hash(bad) && !verify_password("", bad), "{bad}");
        }
    }
}
