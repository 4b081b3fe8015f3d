//! TOTP factors as GoTrue makes them (RFC 6238: SHA-1, six digits, 30-second steps, one step
//! of clock skew either way): a fresh secret with its `otpauth://` URI and QR code (SVG), and
//! the check of a code, which names the time step it matched so that a step is accepted once.

use totp_rs::{Algorithm, Builder, Secret, Totp};

use crate::error::{AuthError, AuthResult};

/// Seconds a challenge may be answered in (GoTrue's `MFA_CHALLENGE_EXPIRY_DURATION`).
pub const CHALLENGE_EXPIRY_SECS: i64 = 300;
/// Seconds an unverified factor lives (GoTrue's `MFA_FACTOR_EXPIRY_DURATION`).
pub const UNVERIFIED_FACTOR_EXPIRY_SECS: i64 = 300;
/// Factors a person may hold (GoTrue's `MFA_MAX_ENROLLED_FACTORS`).
pub const MAX_FACTORS: i64 = 10;

/// A new TOTP factor's secret as the person's authenticator app takes it.
pub struct Enrollment {
    /// The secret, base32.
    pub secret: String,
    /// The `otpauth://totp/…` URI.
    pub uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_code: String,
}

/// A fresh secret for `account` (an email, say) under `issuer` (the site's host).
pub fn enroll(issuer: &str, account: &str) -> AuthResult<Enrollment> {
    let secret = Secret::generate();
    // The URI's label is `issuer:account`: neither may hold a colon of its own.
    let totp = totp(
        secret,
        Some(issuer.replace(':', "")),
        account.replace(':', ""),
    )?;
    let uri = totp.to_url().map_err(AuthError::unexpected)?;
    let qr_code = qrcode::QrCode::new(uri.as_bytes())
        .map_err(AuthError::unexpected)?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    Ok(Enrollment {
        secret: totp.secret().to_base32(),
        uri,
        qr_code,
    })
}

/// The time step `code` is valid for at `now` (seconds since the epoch) under the base32
/// `secret`, if it is valid at all.
pub fn check(secret: &str, code: &str, now: u64) -> AuthResult<Option<u64>> {
    let secret = Secret::try_from_base32(secret).map_err(AuthError::unexpected)?;
    let totp = totp(secret, None, String::new())?;
    Ok(totp.check(code.trim(), now))
}

fn totp(secret: Secret, issuer: Option<String>, account: String) -> AuthResult<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .with_issuer(issuer)
        .with_account_name(account)
        .build()
        .map_err(AuthError::unexpected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_of_the_secret_checks_once_per_step_and_others_do_not() -> AuthResult<()> {
        let made = enroll("tally.example", "ada@example.com")?;
        assert!(
            made.uri
                .starts_with("otpauth://totp/tally.example:ada%40example.com?")
        );
        assert!(made.uri.contains(&format!("secret={}", made.secret)));
        assert!(made.qr_code.contains("<svg"));
        let now = 1_800_000_015;
        let totp = totp(
            Secret::try_from_base32(&made.secret).map_err(AuthError::unexpected)?,
            None,
            String::new(),
        )?;
        let code = totp.generate(now).to_string();
        assert_eq!(check(&made.secret, &code, now)?, Some(now / 30));
        // One step of skew either way, not two.
        assert_eq!(check(&made.secret, &code, now + 30)?, Some(now / 30));
        assert_eq!(check(&made.secret, &code, now + 60)?, None);
        let wrong = if code == "000000" { "111111" } else { "000000" };
        assert_eq!(check(&made.secret, wrong, now)?, None);
        Ok(())
    }
}
