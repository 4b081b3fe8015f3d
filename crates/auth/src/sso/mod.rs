//! Single sign-on over OpenID Connect: identity providers (configured through the admin API),
//! the redirect to the provider with state, nonce and PKCE, and the callback that verifies
//! the ID token and signs the person in.

pub mod oidc;
pub mod providers;
