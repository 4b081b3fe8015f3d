//! Request signatures, each exactly as its provider documents it, checked in constant time:
//!
//! - Slack: `X-Slack-Signature: v0=hex(HMAC-SHA256(secret, "v0:" + ts + ":" + body))` with
//!   `X-Slack-Request-Timestamp: ts`;
//! - Jira (and other WebSub-style senders): `X-Hub-Signature: sha256=hex(HMAC-SHA256(secret, body))`;
//! - Tally's own scheme (generic and calendar webhooks in, every delivery out):
//!   `X-Tally-Signature: t=ts,v1=hex(HMAC-SHA256(secret, ts + "." + body))`, several `v1`
//!   allowed while a secret rotates.
//!
//! Timestamps more than [`REPLAY_WINDOW_SECS`] away from now are refused.

use axum::http::HeaderMap;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How far a signed timestamp may be from now, in seconds (5 minutes).
pub const REPLAY_WINDOW_SECS: i64 = 300;

/// Tally's signature header, inbound and outbound.
pub const TALLY_SIGNATURE: &str = "x-tally-signature";

/// Why a request's signature was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// A header the provider always sends is missing or unreadable.
    #[error("missing or malformed {0} header")]
    Missing(&'static str),
    /// The signature does not match the body.
    #[error("the signature does not match")]
    Mismatch,
    /// The signed timestamp is outside the replay window.
    #[error("the request timestamp is more than 5 minutes from now")]
    Stale,
}

fn mac(secret: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length.
    <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, SignatureError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(SignatureError::Missing(name))
}

fn fresh(ts: i64, now: i64) -> Result<(), SignatureError> {
    if (now - ts).abs() > REPLAY_WINDOW_SECS {
        Err(SignatureError::Stale)
    } else {
        Ok(())
    }
}

fn matches(mac: Hmac<Sha256>, given_hex: &str) -> bool {
    hex::decode(given_hex).is_ok_and(|given| mac.verify_slice(&given).is_ok())
}

/// Slack's v0 request signing.
pub fn slack(
    headers: &HeaderMap,
    body: &[u8],
    secret: &str,
    now: i64,
) -> Result<(), SignatureError> {
    let ts: i64 = header(headers, "x-slack-request-timestamp")?
        .parse()
        .map_err(|_| SignatureError::Missing("x-slack-request-timestamp"))?;
    let given = header(headers, "x-slack-signature")?
        .strip_prefix("v0=")
        .ok_or(SignatureError::Missing("x-slack-signature"))?;
    let mut m = mac(secret);
    m.update(format!("v0:{ts}:").as_bytes());
    m.update(body);
    if !matches(m, given) {
        return Err(SignatureError::Mismatch);
    }
    fresh(ts, now)
}

/// `X-Hub-Signature: sha256=…` over the body (Jira's webhook secret).
pub fn hub(headers: &HeaderMap, body: &[u8], secret: &str) -> Result<(), SignatureError> {
    let given = header(headers, "x-hub-signature")?
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Missing("x-hub-signature"))?;
    let mut m = mac(secret);
    m.update(body);
    if matches(m, given) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Checks the millisecond timestamp a signed body carries (Jira's `timestamp`).
pub fn fresh_millis(ts_ms: i64, now: i64) -> Result<(), SignatureError> {
    fresh(ts_ms.div_euclid(1000), now)
}

/// Tally's scheme: `t=…,v1=…`.
pub fn tally(
    headers: &HeaderMap,
    body: &[u8],
    secret: &str,
    now: i64,
) -> Result<(), SignatureError> {
    let value = header(headers, TALLY_SIGNATURE)?;
    let mut ts = None;
    let mut signatures = Vec::new();
    for part in value.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => ts = t.parse::<i64>().ok(),
            Some(("v1", s)) => signatures.push(s),
            _ => {}
        }
    }
    let ts = ts.ok_or(SignatureError::Missing(TALLY_SIGNATURE))?;
    if signatures.is_empty() {
        return Err(SignatureError::Missing(TALLY_SIGNATURE));
    }
    let signed = signatures.iter().any(|given| {
        let mut m = mac(secret);
        m.update(format!("{ts}.").as_bytes());
        m.update(body);
        matches(m, given)
    });
    if !signed {
        return Err(SignatureError::Mismatch);
    }
    fresh(ts, now)
}

/// The `X-Tally-Signature` value for `body` sent at `ts`.
pub fn sign_tally(secret: &str, ts: i64, body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(format!("{ts}.").as_bytes());
    m.update(body);
    format!("t={ts},v1={}", hex::encode(m.finalize().into_bytes()))
}

/// Compares two secrets in constant time (Microsoft Graph's `clientState`).
pub fn same_secret(given: &str, secret: &str) -> bool {
    let mut m = mac(secret);
    m.update(b"clientState");
    let expected = m.finalize().into_bytes();
    let mut g = mac(given);
    g.update(b"clientState");
    g.verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// Slack's documented example (api.slack.com/authentication/verifying-requests-from-slack).
    #[test]
    fn slack_documented_example_verifies() {
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        let ts = 1_531_420_618;
        let h = headers(&[
            ("x-slack-request-timestamp", ts.to_string()),
            (
                "x-slack-signature",
                "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503".into(),
            ),
        ]);
        assert_eq!(slack(&h, body, secret, ts + 10), Ok(()));
        assert_eq!(
            slack(&h, body, secret, ts + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            slack(&h, &body[1..], secret, ts),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            slack(&HeaderMap::new(), body, secret, ts),
            Err(SignatureError::Missing("x-slack-request-timestamp"))
        );
    }

    #[test]
    fn tally_signatures_round_trip_and_rotate() {
        let body = br#"{"id":"1"}"#;
        let value = sign_tally("old", 1_700_000_000, body);
        let h = headers(&[(TALLY_SIGNATURE, value.clone())]);
        assert_eq!(tally(&h, body, "old", 1_700_000_100), Ok(()));
        assert_eq!(
            tally(&h, body, "new", 1_700_000_100),
            Err(SignatureError::Mismatch)
        );
        let new = sign_tally("new", 1_700_000_000, body);
        let both = format!("{value},{}", new.split_once(',').unwrap().1);
        let h = headers(&[(TALLY_SIGNATURE, both)]);
        assert_eq!(tally(&h, body, "new", 1_700_000_000), Ok(()));
        assert_eq!(
            tally(&h, body, "new", 1_699_999_000),
            Err(SignatureError::Stale)
        );
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
    }
}
