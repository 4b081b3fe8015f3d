//! Email links: `/auth/v1/verify?token=…&type=…&redirect_to=…`.

use tally_core::urls::encode_component as encode;

use crate::{otp::Purpose, state::AuthState};

/// The verification link for a token hash.
pub fn verify_link(
    state: &AuthState,
    token_hash: &str,
    purpose: Purpose,
    redirect_to: &str,
) -> String {
    format!(
        "{}/verify?token={token_hash}&type={}&redirect_to={}",
        state.issuer(),
        purpose.verify_type(),
        encode(redirect_to)
    )
}

/// `url` with `params` added to its query (before any fragment).
pub fn with_query(url: &str, params: &[(&str, &str)]) -> String {
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{}", query.join("&"))
}

/// `url` with `params` as its fragment, keys sorted as GoTrue sorts them.
pub fn with_fragment(url: &str, params: &[(&str, &str)]) -> String {
    let mut params = params.to_vec();
    params.sort_by_key(|(k, _)| *k);
    let fragment: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    let base = url.split('#').next().unwrap_or(url);
    format!("{base}#{}", fragment.join("&"))
}

/// `url` with a session's tokens in the fragment (the implicit flow's redirect), plus
/// `extra` parameters.
pub fn session_fragment(url: &str, session: &serde_json::Value, extra: &[(&str, &str)]) -> String {
    let field = |name: &str| match &session[name] {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let values = ["access_token", "expires_at", "expires_in", "refresh_token"]
        .map(|name| (name, field(name)));
    let mut params: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    params.push(("token_type", "bearer"));
    params.extend_from_slice(extra);
    with_fragment(url, &params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_fragment_are_encoded_and_sorted() {
        assert_eq!(
            with_query("http://a/b", &[("code", "x y")]),
            "http://a/b?code=x%20y"
        );
        assert_eq!(
            with_query("http://a/b?c=1", &[("d", "2")]),
            "http://a/b?c=1&d=2"
        );
        assert_eq!(
            with_fragment("http://a/#old", &[("z", "1"), ("a", "&")]),
            "http://a/#a=%26&z=1"
        );
    }
}
