//! Password hashing: argon2id with the crate's default (OWASP-recommended) parameters,
//! stored as PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
//!
//! Verification is deliberately slow (tens of milliseconds of CPU): async callers run the
//! `auth_password` that uses it on `tokio::task::spawn_blocking`.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use super::error::{Error, Result};

/// Hashes a password with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String> {
    if password.is_empty() {
        return Err(Error::invalid("password", "it is empty"));
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::invalid("password", e.to_string()))
}

/// Checks a PHC string before storing it (declarative config carries hashes, not passwords).
pub fn validate_hash(hash: &str) -> Result<()> {
    let parsed = PasswordHash::new(hash)
        .map_err(|e| Error::invalid("password hash", format!("{e}; expected a PHC string")))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(Error::invalid(
            "password hash",
            format!("algorithm {} is not argon2id", parsed.algorithm),
        ));
    }
    Ok(())
}

/// Whether `password` matches `hash`. A malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Spends the same time as a real verification, for unknown users and users without a
/// password, so response time does not tell which user names exist.
pub fn verify_dummy(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let hash = DUMMY.get_or_init(|| {
        hash_password("gatehouse timing equaliser").expect("hashing a constant works")
    });
    let _ = verify_password(password, hash);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct hors", &hash));
        assert!(!verify_password("", &hash));
        // Salted: the same password hashes differently each time.
        assert_ne!(hash, hash_password("correct horse").unwrap());
        validate_hash(&hash).unwrap();
    }

    #[test]
    fn bad_hashes_and_empty_passwords_are_refused() {
        assert!(!verify_password("x", "not a hash"));
        assert!(hash_password("").is_err());
        assert!(validate_hash("plaintext").unwrap_err().to_string().contains("PHC"));
    }
}
