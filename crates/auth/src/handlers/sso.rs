//! Single sign-on: `GET /authorize?provider=` (signInWithOAuth), `POST /sso`
//! (signInWithSSO), and `GET /callback` from the identity provider.

use std::collections::HashMap;

use axum::{
    Json,
    body::Bytes,
    extract::{Query, State},
    http::{StatusCode, header::LOCATION},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::{
    db,
    error::{AuthError, AuthResult},
    extract::parse_json,
    flow, links, sessions,
    sso::{
        oidc::{Oidc, Verified},
        providers::{self, Provider},
    },
    state::AuthState,
    users::{self, NewUser},
};

/// How long the identity provider may take to send the person back.
const FLOW_LIFETIME_SECS: f64 = 600.0;

/// `GET /authorize?provider=&redirect_to=&code_challenge=&code_challenge_method=`.
pub async fn authorize(
    State(state): State<AuthState>,
    Query(query): Query<HashMap<String, String>>,
) -> AuthResult<Response> {
    let name = query
        .get("provider")
        .map(String::as_str)
        .unwrap_or_default();
    let mut tx = db::begin(state.pool()).await?;
    let provider = enabled_provider(&mut tx, name).await?;
    let url = start(&state, &mut tx, &provider, &query, "oauth", None).await?;
    tx.commit().await?;
    Ok((StatusCode::FOUND, [(LOCATION, url)]).into_response())
}

/// The enabled provider called `name` (`?provider=` of `/authorize` and of linking).
pub async fn enabled_provider(tx: &mut sqlx::PgConnection, name: &str) -> AuthResult<Provider> {
    providers::by_name(tx, name)
        .await?
        .filter(|p| p.enabled)
        .ok_or_else(|| {
            AuthError::new(
                StatusCode::BAD_REQUEST,
                "oauth_provider_not_supported",
                format!("Unsupported provider: provider \"{name}\" is not enabled"),
            )
        })
}

/// `POST /sso` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SsoBody {
    provider_id: Option<Uuid>,
    domain: Option<String>,
    redirect_to: Option<String>,
    skip_http_redirect: Option<bool>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// Starts SSO by provider id or email domain: 200 `{url}` with `skip_http_redirect`, else 303.
/// With no provider enabled, SSO is off and answers as GoTrue does with SAML off, before the
/// body is read.
pub async fn sso(State(state): State<AuthState>, body: Bytes) -> AuthResult<Response> {
    let mut tx = db::begin(state.pool()).await?;
    if !providers::any_enabled(&mut tx).await? {
        return Err(AuthError::new(
            StatusCode::NOT_FOUND,
            "saml_provider_disabled",
            "SAML 2.0 is disabled",
        ));
    }
    let body: SsoBody = parse_json(&body)?;
    let provider = match (body.provider_id, body.domain.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(AuthError::validation(
                "Only one of provider_id or domain supported",
            ));
        }
        (None, None) => {
            return Err(AuthError::validation(
                "A provider_id or domain needs to be provided",
            ));
        }
        (Some(id), None) => providers::by_id(&mut tx, id).await?,
        (None, Some(domain)) => providers::by_domain(&mut tx, domain.trim()).await?,
    }
    .filter(|p| p.enabled)
    .ok_or_else(|| {
        AuthError::new(
            StatusCode::NOT_FOUND,
            "sso_provider_not_found",
            "No SSO provider assigned for this domain",
        )
    })?;
    let mut params = HashMap::new();
    for (key, value) in [
        ("redirect_to", body.redirect_to),
        ("code_challenge", body.code_challenge),
        ("code_challenge_method", body.code_challenge_method),
    ] {
        if let Some(value) = value {
            params.insert(key.to_owned(), value);
        }
    }
    let url = start(&state, &mut tx, &provider, &params, "sso/oidc", None).await?;
    tx.commit().await?;
    if body.skip_http_redirect.unwrap_or(false) {
        Ok(Json(json!({"url": url})).into_response())
    } else {
        Ok((StatusCode::SEE_OTHER, [(LOCATION, url)]).into_response())
    }
}

/// Stores the flow (state, nonce, PKCE verifier, the client's own challenge and redirect,
/// and the user the identity is to be linked to, if that is what it is for) and returns the
/// provider's authorization URL.
pub async fn start(
    state: &AuthState,
    tx: &mut sqlx::PgConnection,
    provider: &Provider,
    params: &HashMap<String, String>,
    method: &str,
    link_to: Option<Uuid>,
) -> AuthResult<String> {
    let challenge = flow::challenge(
        params.get("code_challenge").map(String::as_str),
        params.get("code_challenge_method").map(String::as_str),
    )?;
    let redirect = state.redirect_target(params.get("redirect_to").map(String::as_str));
    let flow_id = Uuid::new_v4();
    let oidc = Oidc::new(
        state.http(),
        state.oidc_metadata(),
        provider,
        callback_url(state),
    );
    let started = oidc.start(&flow_id.to_string()).await.map_err(|e| {
        tracing::warn!(provider = %provider.name, error = %e, "SSO could not start");
        AuthError::new(
            StatusCode::BAD_GATEWAY,
            "sso_provider_unavailable",
            e.to_string(),
        )
    })?;
    sqlx::query(
        "insert into auth.flow_state (id, code_challenge, code_challenge_method, authentication_method, \
             provider_type, provider_id, redirect_to, nonce, pkce_verifier, user_id) \
         values ($1, $2, $3, $4, 'oidc', $5, $6, $7, $8, $9)",
    )
    .bind(flow_id)
    .bind(challenge.as_ref().map(|c| &c.challenge))
    .bind(challenge.as_ref().map(|c| &c.method))
    .bind(method)
    .bind(provider.id)
    .bind(&redirect)
    .bind(&started.nonce)
    .bind(&started.pkce_verifier)
    .bind(link_to)
    .execute(tx)
    .await?;
    Ok(started.url)
}

fn callback_url(state: &AuthState) -> String {
    format!("{}/callback", state.issuer())
}

/// A flow waiting for the provider.
#[derive(sqlx::FromRow)]
struct PendingFlow {
    id: Uuid,
    provider_id: Option<Uuid>,
    redirect_to: Option<String>,
    nonce: Option<String>,
    pkce_verifier: Option<String>,
    code_challenge: Option<String>,
    authentication_method: String,
    /// The signed-in user who asked to link this identity (`/user/identities/authorize`).
    user_id: Option<Uuid>,
}

/// `GET /callback?code=&state=` (or `error=`): finishes SSO and redirects back to the app
/// with tokens in the fragment, or `?code=` for PKCE clients, or the error.
pub async fn callback(
    State(state): State<AuthState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let site = state.redirect_target(None);
    let Some(flow_id) = query.get("state").and_then(|s| s.parse::<Uuid>().ok()) else {
        return error_redirect(
            &site,
            &AuthError::new(
                StatusCode::BAD_REQUEST,
                "bad_oauth_state",
                "OAuth state parameter missing or invalid",
            ),
        );
    };
    let flow = match take_flow(&state, flow_id).await {
        Ok(Some(flow)) => flow,
        Ok(None) => {
            return error_redirect(
                &site,
                &AuthError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_oauth_state",
                    "OAuth state is unknown or has expired",
                ),
            );
        }
        Err(e) => return error_redirect(&site, &e),
    };
    let redirect = flow.redirect_to.clone().unwrap_or(site);
    match finish(&state, &flow, &query).await {
        Ok(location) => (StatusCode::FOUND, [(LOCATION, location)]).into_response(),
        Err(e) => error_redirect(&redirect, &e),
    }
}

async fn take_flow(state: &AuthState, id: Uuid) -> AuthResult<Option<PendingFlow>> {
    let mut tx = db::begin(state.pool()).await?;
    let flow = sqlx::query_as(
        "select id, provider_id, redirect_to, nonce, pkce_verifier, code_challenge, authentication_method, user_id \
         from auth.flow_state where id = $1 and provider_id is not null and auth_code is null \
           and created_at > now() - make_interval(secs => $2) for update",
    )
    .bind(id)
    .bind(FLOW_LIFETIME_SECS)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(flow)
}

async fn finish(
    state: &AuthState,
    flow: &PendingFlow,
    query: &HashMap<String, String>,
) -> AuthResult<String> {
    if let Some(error) = query.get("error") {
        let description = query
            .get("error_description")
            .cloned()
            .unwrap_or_else(|| error.clone());
        return Err(AuthError::new(
            StatusCode::FORBIDDEN,
            "bad_oauth_callback",
            format!("The identity provider refused: {description}"),
        ));
    }
    let code = query.get("code").filter(|c| !c.is_empty()).ok_or_else(|| {
        AuthError::new(
            StatusCode::BAD_REQUEST,
            "bad_oauth_callback",
            "OAuth callback with missing authorization code",
        )
    })?;
    let mut tx = db::begin(state.pool()).await?;
    let provider = match flow.provider_id {
        Some(id) => providers::by_id(&mut tx, id).await?,
        None => None,
    }
    .ok_or_else(|| {
        AuthError::new(
            StatusCode::BAD_REQUEST,
            "bad_oauth_state",
            "The SSO provider is gone",
        )
    })?;
    let oidc = Oidc::new(
        state.http(),
        state.oidc_metadata(),
        &provider,
        callback_url(state),
    );
    let verified = oidc
        .finish(
            code,
            flow.pkce_verifier.as_deref().unwrap_or_default(),
            flow.nonce.as_deref().unwrap_or_default(),
        )
        .await
        .map_err(|e| {
            tracing::warn!(provider = %provider.name, error = %e, "SSO callback rejected");
            AuthError::new(StatusCode::BAD_REQUEST, "bad_oauth_callback", e.to_string())
        })?;
    let user = match flow.user_id {
        Some(target) => link_identity(&mut tx, target, &provider, &verified).await?,
        None => sign_in_user(&mut tx, &provider, &verified).await?,
    };
    let redirect = flow
        .redirect_to
        .clone()
        .unwrap_or_else(|| state.redirect_target(None));
    if flow.code_challenge.is_some() {
        let auth_code = Uuid::new_v4().to_string();
        sqlx::query("update auth.flow_state set auth_code = $2, user_id = $3, auth_code_issued_at = now() where id = $1")
            .bind(flow.id)
            .bind(&auth_code)
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(links::with_query(&redirect, &[("code", &auth_code)]));
    }
    sqlx::query("delete from auth.flow_state where id = $1")
        .bind(flow.id)
        .execute(&mut *tx)
        .await?;
    let session = sessions::start(&mut tx, state, &user, &flow.authentication_method).await?;
    tx.commit().await?;
    Ok(links::session_fragment(
        &redirect,
        &session,
        &[("provider_token", &verified.access_token), ("sb", "")],
    ))
}

/// Finds the person by their identity at the provider, else links the identity to the user
/// with the same email when the provider has verified it, else creates a user.
async fn sign_in_user(
    tx: &mut sqlx::PgConnection,
    provider: &Provider,
    verified: &Verified,
) -> AuthResult<users::User> {
    let known: Option<Uuid> = sqlx::query_scalar(
        "update auth.identities set last_sign_in_at = now(), identity_data = $3 \
         where provider = $1 and provider_id = $2 returning user_id",
    )
    .bind(&provider.name)
    .bind(&verified.subject)
    .bind(&verified.claims)
    .fetch_optional(&mut *tx)
    .await?;
    let user = if let Some(id) = known {
        users::by_id(tx, id)
            .await?
            .filter(|u| u.deleted_at.is_none())
            .ok_or_else(AuthError::user_not_found)?
    } else {
        let email = verified.email.as_deref().ok_or_else(|| {
            AuthError::new(
                StatusCode::BAD_REQUEST,
                "bad_oauth_callback",
                "The identity provider gave no email address",
            )
        })?;
        match users::by_email(tx, email).await? {
            Some(existing) => {
                if !verified.email_verified {
                    return Err(AuthError::new(
                        StatusCode::FORBIDDEN,
                        "provider_email_needs_verification",
                        "The identity provider has not verified this email address",
                    ));
                }
                if existing.email_confirmed_at.is_none() {
                    // Nobody proved this address before: a password set by whoever signed up
                    // with it must not outlive the provider's proof.
                    sqlx::query("update auth.users set encrypted_password = null where id = $1")
                        .bind(existing.id)
                        .execute(&mut *tx)
                        .await?;
                    users::confirm_email(tx, existing.id).await?;
                }
                users::add_identity(
                    tx,
                    existing.id,
                    &provider.name,
                    &verified.subject,
                    &verified.claims,
                )
                .await?;
                users::refresh_providers(tx, existing.id).await?;
                existing
            }
            None => {
                users::create(
                    tx,
                    NewUser {
                        id: None,
                        email,
                        password_hash: None,
                        user_metadata: verified
                            .name
                            .as_ref()
                            .map_or_else(|| json!({}), |n| json!({"full_name": n})),
                        app_metadata: json!({}),
                        confirmed: verified.email_verified,
                        identity: Some((
                            provider.name.clone(),
                            verified.subject.clone(),
                            verified.claims.clone(),
                        )),
                    },
                )
                .await?
            }
        }
    };
    if user.is_banned() {
        return Err(AuthError::new(
            StatusCode::FORBIDDEN,
            "user_banned",
            "User is banned",
        ));
    }
    Ok(user)
}

/// Links the identity the provider vouched for to `target`, who asked for it while signed
/// in; an identity already someone else's is refused.
async fn link_identity(
    tx: &mut sqlx::PgConnection,
    target: Uuid,
    provider: &Provider,
    verified: &Verified,
) -> AuthResult<users::User> {
    let owner: Option<Uuid> = sqlx::query_scalar(
        "select user_id from auth.identities where provider = $1 and provider_id = $2",
    )
    .bind(&provider.name)
    .bind(&verified.subject)
    .fetch_optional(&mut *tx)
    .await?;
    match owner {
        Some(owner) if owner != target => {
            return Err(AuthError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "identity_already_exists",
                "Identity is already linked to another user",
            ));
        }
        Some(_) => {}
        None => {
            users::add_identity(
                tx,
                target,
                &provider.name,
                &verified.subject,
                &verified.claims,
            )
            .await?;
            users::refresh_providers(tx, target).await?;
        }
    }
    users::by_id(tx, target)
        .await?
        .filter(|u| u.deleted_at.is_none() && !u.is_banned())
        .ok_or_else(AuthError::user_not_found)
}

fn error_redirect(redirect: &str, e: &AuthError) -> Response {
    let error = match e.status() {
        s if s.is_server_error() => "server_error",
        StatusCode::FORBIDDEN => "access_denied",
        _ => "invalid_request",
    };
    let params = [
        ("error", error),
        ("error_code", e.code()),
        ("error_description", e.message()),
    ];
    let with_query = links::with_query(redirect, &params);
    let mut fragment = params.to_vec();
    fragment.push(("sb", ""));
    (
        StatusCode::FOUND,
        [(LOCATION, links::with_fragment(&with_query, &fragment))],
    )
        .into_response()
}
