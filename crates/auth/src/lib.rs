//! `/auth/v1`: a GoTrue-compatible auth service, so supabase-js and supabase-py sign in
//! against Tally unchanged.
//!
//! It owns the `auth` schema (read and written as `tally_auth`) and exposes [`router`]. Users
//! and their sessions live here; org roles live in `public.memberships`, read by row-level
//! security, never copied into tokens.
//!
//! - [`handlers`]: one module per endpoint group; [`extract`]: bodies, client IP, the
//!   signed-in user, the admin caller; [`error`]: GoTrue's error shape.
//! - [`sessions`]: access tokens, refresh rotation with reuse detection, sign-out.
//! - [`openapi`]: this service's part of `/openapi.json`.
//! - [`users`], [`password`], [`otp`], [`flow`] (PKCE), [`mail`], [`ratelimit`], [`links`].
//! - [`mfa`] (TOTP secrets and codes), [`factors`] (a person's factors and their sessions),
//!   [`audit`] (account events).

pub mod audit;
pub mod db;
pub mod error;
pub mod extract;
pub mod factors;
pub mod flow;
pub mod handlers;
pub mod links;
pub mod mail;
pub mod mfa;
pub mod openapi;
pub mod otp;
pub mod password;
pub mod ratelimit;
pub mod sessions;
pub mod smtp;
pub mod sso;
pub mod state;
pub mod timestamps;
pub mod users;

use axum::{
    Router,
    middleware::from_fn_with_state,
    routing::{MethodRouter, delete, get, post},
};
use tally_core::gateway::require_apikey;

use handlers::{
    admin, admin_sso, factors as factor_handler, identities, invite, logout, meta,
    otp as otp_handler, reauthenticate, recover, resend, signup, sso as sso_handler, token, user,
    verify,
};
pub use state::AuthState;

/// The `/auth/v1` routes. All need the `apikey` but the open ones of Supabase's gateway
/// (`GET /verify`, `/authorize`, `/callback`, `/.well-known/jwks.json`).
pub fn router(state: AuthState) -> Router {
    let keys = state.keys().clone();
    let keyed = |route: MethodRouter<AuthState>| {
        route.layer(from_fn_with_state(keys.clone(), require_apikey))
    };
    Router::new()
        .route("/signup", keyed(post(signup::signup)))
        .route("/token", keyed(post(token::token)))
        .route("/user", keyed(get(user::get_user).put(user::update_user)))
        .route("/user/identities/authorize", keyed(get(identities::link)))
        .route(
            "/user/identities/{identity_id}",
            keyed(delete(identities::unlink)),
        )
        .route("/logout", keyed(post(logout::logout)))
        .route("/recover", keyed(post(recover::recover)))
        .route("/resend", keyed(post(resend::resend)))
        .route(
            "/reauthenticate",
            keyed(get(reauthenticate::reauthenticate)),
        )
        .route("/invite", keyed(post(invite::invite)))
        .route("/factors", keyed(post(factor_handler::enroll)))
        .route(
            "/factors/{factor_id}",
            keyed(delete(factor_handler::unenroll)),
        )
        .route(
            "/factors/{factor_id}/challenge",
            keyed(post(factor_handler::challenge)),
        )
        .route(
            "/factors/{factor_id}/verify",
            keyed(post(factor_handler::verify)),
        )
        .route("/otp", keyed(post(otp_handler::otp)))
        .route(
            "/verify",
            get(verify::verify_link).merge(keyed(post(verify::verify))),
        )
        .route("/settings", keyed(get(meta::settings)))
        .route("/.well-known/jwks.json", get(meta::jwks))
        .route(
            "/admin/users",
            keyed(get(admin::list_users).post(admin::create_user)),
        )
        .route(
            "/admin/users/{id}",
            keyed(
                get(admin::get_user)
                    .put(admin::update_user)
                    .delete(admin::delete_user),
            ),
        )
        .route(
            "/admin/users/{id}/factors",
            keyed(get(factor_handler::admin_list)),
        )
        .route(
            "/admin/users/{id}/factors/{factor_id}",
            keyed(delete(factor_handler::admin_delete)),
        )
        .route("/admin/generate_link", keyed(post(admin::generate_link)))
        .route(
            "/admin/sso/providers",
            keyed(get(admin_sso::list_providers).post(admin_sso::create_provider)),
        )
        .route(
            "/admin/sso/providers/{id}",
            keyed(
                get(admin_sso::get_provider)
                    .put(admin_sso::update_provider)
                    .delete(admin_sso::delete_provider),
            ),
        )
        .route("/authorize", get(sso_handler::authorize))
        .route("/sso", keyed(post(sso_handler::sso)))
        .route("/callback", get(sso_handler::callback))
        .with_state(state)
}
