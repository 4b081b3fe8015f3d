//! The auth service over real HTTP against a real database: every endpoint, its errors,
//! refresh rotation and reuse detection, sign-out scopes, email flows, PKCE, rate limits and
//! the admin API.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any surprise")]

mod account_flows;
mod admin;
mod compat;
mod email_flows;
mod gateway;
mod mfa;
mod sessions;
mod signup_signin;
mod smtp;
mod sso;
mod support;
mod user;
