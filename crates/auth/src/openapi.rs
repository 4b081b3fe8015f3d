//! `/auth/v1`'s part of `/openapi.json`.

use tally_core::openapi::{Access, Doc, Op, any_object, object};
use utoipa::openapi::{HttpMethod::*, OpenApi, schema::Type};

use crate::handlers::{
    admin::{AdminUserBody, DeleteBody, GenerateLinkBody},
    factors::{EnrollBody, VerifyBody as FactorVerifyBody},
    invite::InviteBody,
    otp::OtpBody,
    recover::RecoverBody,
    resend::ResendBody,
    signup::SignupBody,
    sso::SsoBody,
    token::TokenBody,
    user::UpdateBody,
    verify::VerifyBody,
};
use crate::sso::providers::ProviderBody;

/// The auth operations. Admin operations need the service_role key as the bearer token.
pub fn openapi() -> OpenApi {
    let json = || Some(any_object());
    let redirect = "Where the email link should lead (an allowed redirect URL)";
    Doc::new(
        "auth",
        "AuthError",
        object(&[
            ("code", Type::Integer, true),
            ("error_code", Type::String, true),
            ("msg", Type::String, true),
        ]),
    )
    .op(Op::new(Post, "/signup", "Sign up with email and password")
        .json_body::<SignupBody>()
        .query("redirect_to", redirect)
        .answers(
            200,
            "A session (autoconfirm), or the user awaiting confirmation",
            json(),
        ))
    .op(Op::new(
        Post,
        "/token",
        "Sign in: password, refresh token or PKCE code",
    )
    .json_body::<TokenBody>()
    .query("grant_type", "`password`, `refresh_token` or `pkce`")
    .answers(
        200,
        "A session: access_token, refresh_token, expires_in, user",
        json(),
    ))
    .op(Op::new(Get, "/user", "The signed-in user")
        .access(Access::User)
        .answers(200, "The user", json()))
    .op(Op::new(
        Put,
        "/user",
        "Update the signed-in user (email, password, metadata)",
    )
    .access(Access::User)
    .json_body::<UpdateBody>()
    .answers(200, "The updated user", json()))
    .op(Op::new(
        Get,
        "/user/identities/authorize",
        "Link an SSO identity to the signed-in user (with TALLY_MANUAL_LINKING)",
    )
    .access(Access::User)
    .query("provider", "The SSO provider's name")
    .query("redirect_to", redirect)
    .query(
        "skip_http_redirect",
        "`true`: answer `{url}` instead of a 302",
    )
    .answers(200, "`{url}` of the provider's authorization", json()))
    .op(Op::new(
        Delete,
        "/user/identities/{identity_id}",
        "Unlink one of the signed-in user's identities (never the last)",
    )
    .access(Access::User)
    .answers(200, "`{}`", json()))
    .op(Op::new(Post, "/logout", "Sign out")
        .access(Access::User)
        .query("scope", "`global` (default), `local` or `others`")
        .answers(204, "Signed out", None))
    .op(Op::new(Post, "/recover", "Mail a password-recovery link")
        .json_body::<RecoverBody>()
        .query("redirect_to", redirect)
        .answers(
            200,
            "Always `{}`, whether or not the address has an account",
            json(),
        ))
    .op(Op::new(
        Post,
        "/resend",
        "Mail again a pending sign-up or email-change confirmation",
    )
    .json_body::<ResendBody>()
    .query("redirect_to", redirect)
    .answers(
        200,
        "Always `{}`, whether or not anything was pending",
        json(),
    ))
    .op(Op::new(
        Get,
        "/reauthenticate",
        "Mail a one-time code that stands for the current password",
    )
    .access(Access::User)
    .answers(200, "`{}`", json()))
    .op(Op::new(Post, "/factors", "Enroll an MFA factor (TOTP)")
        .access(Access::User)
        .json_body::<EnrollBody>()
        .answers(
            200,
            "The factor: id, type, friendly_name, totp (secret, uri, qr_code as SVG)",
            json(),
        ))
    .op(Op::new(
        Post,
        "/factors/{factor_id}/challenge",
        "Open a challenge on a factor",
    )
    .access(Access::User)
    .answers(200, "The challenge: id, type, expires_at", json()))
    .op(Op::new(
        Post,
        "/factors/{factor_id}/verify",
        "Verify a code: the session rises to aal2",
    )
    .access(Access::User)
    .json_body::<FactorVerifyBody>()
    .answers(200, "A new session at aal2", json()))
    .op(Op::new(Delete, "/factors/{factor_id}", "Unenroll a factor")
        .access(Access::User)
        .answers(200, "`{\"id\"}` of the removed factor", json()))
    .op(Op::new(Post, "/invite", "Invite a user by email")
        .access(Access::User)
        .json_body::<InviteBody>()
        .query("redirect_to", redirect)
        .answers(200, "The invited user", json()))
    .op(Op::new(Post, "/otp", "Mail a magic link and one-time code")
        .json_body::<OtpBody>()
        .query("redirect_to", redirect)
        .answers(200, "`{}`: the mail went out", json()))
    .op(Op::new(
        Post,
        "/verify",
        "Redeem a mailed code or token hash for a session",
    )
    .json_body::<VerifyBody>()
    .answers(200, "A session", json()))
    .op(Op::new(Get, "/verify", "Follow an email link")
        .access(Access::Open)
        .query("token", "The link's token")
        .query(
            "type",
            "`signup`, `magiclink`, `recovery`, `invite` or `email_change`",
        )
        .query("redirect_to", redirect)
        .answers(
            303,
            "Back to the app with tokens in the fragment (or `?code=` for PKCE)",
            None,
        ))
    .op(
        Op::new(Get, "/settings", "The public auth settings").answers(
            200,
            "Enabled providers, autoconfirm, signup",
            json(),
        ),
    )
    .op(Op::new(
        Get,
        "/.well-known/jwks.json",
        "Public signing keys (none: tokens are HS256)",
    )
    .access(Access::Open)
    .answers(200, "`{\"keys\": []}`", json()))
    .op(Op::new(Get, "/admin/users", "List users, newest first")
        .access(Access::User)
        .query("page", "Page number, from 1")
        .query("per_page", "Users per page")
        .answers(
            200,
            "`{users, aud}` with `X-Total-Count` and `Link` headers",
            json(),
        ))
    .op(Op::new(Post, "/admin/users", "Create a user")
        .access(Access::User)
        .json_body::<AdminUserBody>()
        .answers(200, "The user", json()))
    .op(Op::new(Get, "/admin/users/{id}", "One user")
        .access(Access::User)
        .answers(200, "The user", json()))
    .op(Op::new(
        Put,
        "/admin/users/{id}",
        "Update a user (metadata merged, bans)",
    )
    .access(Access::User)
    .json_body::<AdminUserBody>()
    .answers(200, "The user", json()))
    .op(Op::new(
        Delete,
        "/admin/users/{id}",
        "Delete a user (hard by default, or soft)",
    )
    .access(Access::User)
    .json_body::<DeleteBody>()
    .answers(200, "`{}`", json()))
    .op(
        Op::new(Get, "/admin/users/{id}/factors", "A user's MFA factors")
            .access(Access::User)
            .answers(200, "The factors", json()),
    )
    .op(Op::new(
        Delete,
        "/admin/users/{id}/factors/{factor_id}",
        "Remove a user's MFA factor (recovery of a lost authenticator)",
    )
    .access(Access::User)
    .answers(200, "The removed factor", json()))
    .op(Op::new(
        Post,
        "/admin/generate_link",
        "Make an email link without sending it",
    )
    .access(Access::User)
    .json_body::<GenerateLinkBody>()
    .answers(
        200,
        "The user with action_link, email_otp and hashed_token",
        json(),
    ))
    .op(Op::new(Get, "/admin/sso/providers", "List SSO providers")
        .access(Access::User)
        .answers(200, "`{items}`", json()))
    .op(Op::new(
        Post,
        "/admin/sso/providers",
        "Add an OpenID Connect provider",
    )
    .access(Access::User)
    .json_body::<ProviderBody>()
    .answers(200, "The provider", json()))
    .op(
        Op::new(Get, "/admin/sso/providers/{id}", "One SSO provider")
            .access(Access::User)
            .answers(200, "The provider", json()),
    )
    .op(
        Op::new(Put, "/admin/sso/providers/{id}", "Update an SSO provider")
            .access(Access::User)
            .json_body::<ProviderBody>()
            .answers(200, "The provider", json()),
    )
    .op(Op::new(
        Delete,
        "/admin/sso/providers/{id}",
        "Remove an SSO provider",
    )
    .access(Access::User)
    .answers(200, "The removed provider", json()))
    .op(Op::new(
        Get,
        "/authorize",
        "Start OAuth/OIDC sign-in with a provider",
    )
    .access(Access::Open)
    .query("provider", "The provider's name")
    .query("redirect_to", redirect)
    .query("code_challenge", "PKCE challenge")
    .query("code_challenge_method", "`s256` or `plain`")
    .answers(302, "To the identity provider", None))
    .op(Op::new(
        Post,
        "/sso",
        "Start single sign-on by provider id or email domain",
    )
    .json_body::<SsoBody>()
    .answers(
        200,
        "`{url}` with `skip_http_redirect`; otherwise a 303 to it",
        json(),
    ))
    .op(Op::new(Get, "/callback", "The identity provider's return")
        .access(Access::Open)
        .query("code", "The authorization code")
        .query("state", "The state Tally sent")
        .query("error", "The provider's error, if any")
        .answers(
            302,
            "Back to the app with tokens, a PKCE code or the error",
            None,
        ))
    .build()
}
