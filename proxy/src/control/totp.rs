//! TOTP (RFC 6238): SHA-1, 6 digits, 30-second steps, ±1 step of clock skew, the
//! parameters every authenticator app supports. A code is accepted once: the caller
//! stores the returned step and refuses codes at or before it (RFC 6238 §5.2).

use totp_rs::{Algorithm, Builder, Secret, Totp};

use super::error::{Error, Result};

/// Issuer shown in authenticator apps.
pub const ISSUER: &str = "gatehouse";
/// Secret length: 160 bits, as RFC 4226 recommends.
const SECRET_LEN: usize = 20;

/// What a user needs to enrol an authenticator app.
#[derive(Debug, Clone)]
pub struct TotpEnrollment {
    /// The `otpauth://totp/...` URI (paste into an app, or render as a QR code).
    pub uri: String,
    /// The secret in base32, for typing in by hand.
    pub secret_base32: String,
}

/// A fresh random secret.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_LEN];
    getrandom::fill(&mut secret).expect("the OS random number generator failed");
    secret
}

fn totp(secret: &[u8], user: &str) -> Result<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_secret(Secret::from(secret))
        .with_issuer(Some(ISSUER))
        .with_account_name(user)
        .build()
        .map_err(|e| Error::invalid("TOTP secret", e.to_string()))
}

/// The provisioning URI and base32 secret for `user`.
pub fn enrollment(secret: &[u8], user: &str) -> Result<TotpEnrollment> {
    let t = totp(secret, user)?;
    let uri = t.to_url().map_err(|e| Error::invalid("TOTP URI", e.to_string()))?;
    Ok(TotpEnrollment { uri, secret_base32: t.secret().to_base32() })
}

/// The time step a valid `code` belongs to at `unix_secs`, or `None`.
pub fn check(secret: &[u8], user: &str, code: &str, unix_secs: u64) -> Result<Option<u64>> {
    Ok(totp(secret, user)?.check(code.trim(), unix_secs))
}

/// The code for `unix_secs` (tests).
#[cfg(test)]
pub fn generate(secret: &[u8], user: &str, unix_secs: u64) -> Result<String> {
    Ok(totp(secret, user)?.generate(unix_secs).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B test vectors (SHA-1 secret "12345678901234567890"), last 6 digits.
    #[test]
    fn rfc6238_vectors() {
        let secret = b"12345678901234567890";
        for (t, code) in [
            (59u64, "287082"),
            (1111111109, "081804"),
            (1111111111, "050471"),
            (1234567890, "005924"),
            (2000000000, "279037"),
        ] {
            assert_eq!(generate(secret, "alice", t).unwrap(), code, "t={t}");
            assert_eq!(check(secret, "alice", code, t).unwrap(), Some(t / 30));
        }
    }

    #[test]
    fn skew_is_one_step_either_side() {
        let secret = new_secret();
        let now = 1_700_000_010;
        let code = generate(&secret, "alice", now).unwrap();
        assert_eq!(check(&secret, "alice", &code, now + 30).unwrap(), Some(now / 30));
        assert_eq!(check(&secret, "alice", &code, now - 30).unwrap(), Some(now / 30));
        assert_eq!(check(&secret, "alice", &code, now + 60).unwrap(), None);
        assert_eq!(check(&secret, "alice", "000000x", now).unwrap(), None);
    }

    #[test]
    fn enrollment_uri_names_issuer_and_user() {
        let e = enrollment(b"12345678901234567890", "alice").unwrap();
        assert!(e.uri.starts_with("otpauth://totp/gatehouse:alice?"), "{}", e.uri);
        assert!(e.uri.contains(&format!("secret={}", e.secret_base32)), "{}", e.uri);
        assert!(e.uri.contains("issuer=gatehouse"), "{}", e.uri);
        assert_eq!(e.secret_base32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }
}
