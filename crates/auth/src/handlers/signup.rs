//! `POST /signup`: a new user with email and password. With autoconfirm (the default) the
//! answer is a session; otherwise a confirmation mail goes out and the answer is the user.

use axum::{
    Json,
    extract::{Query, State},
    http::StatusCode,
};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    db,
    error::{AuthError, AuthResult},
    extract::{ClientIp, JsonBody},
    flow, mail,
    otp::Purpose,
    password, ratelimit, sessions,
    state::AuthState,
    timestamps,
    users::{self, NewUser},
};

use super::RedirectQuery;

/// The sign-up body (unknown fields, such as `gotrue_meta_security`, are ignored).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SignupBody {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    data: Option<Value>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// Signs a user up.
pub async fn signup(
    State(state): State<AuthState>,
    ClientIp(ip): ClientIp,
    Query(query): Query<RedirectQuery>,
    JsonBody(body): JsonBody<SignupBody>,
) -> AuthResult<Json<Value>> {
    let answer = sign_up(state, ip, query, body).await;
    super::token::event("sign_up", &answer);
    answer
}

async fn sign_up(
    state: AuthState,
    ip: String,
    query: RedirectQuery,
    body: SignupBody,
) -> AuthResult<Json<Value>> {
    let auth = &state.config().auth;
    if auth.disable_signup {
        return Err(AuthError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "signup_disabled",
            "Signups not allowed for this instance",
        ));
    }
    let email = match (body.email.as_deref(), body.phone.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(AuthError::validation(
                "Only an email address or phone number should be provided on signup.",
            ));
        }
        (None, Some(_)) => {
            return Err(AuthError::new(
                StatusCode::BAD_REQUEST,
                "phone_provider_disabled",
                "Phone signups are disabled",
            ));
        }
        (None, None) if auth.anonymous_sign_ins => {
            return sign_in_anonymously(&state, &ip, body.data).await;
        }
        (None, None) => {
            return Err(AuthError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "anonymous_provider_disabled",
                "Anonymous sign-ins are disabled",
            ));
        }
        (Some(email), None) => users::parse_email(Some(email))?,
    };
    let password = body
        .password
        .as_deref()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| AuthError::validation("Signup requires a valid password"))?;
    password::check_strength(password, auth.password_min_length)?;
    let challenge = flow::challenge(
        body.code_challenge.as_deref(),
        body.code_challenge_method.as_deref(),
    )?;
    ratelimit::attempt(state.pool(), "signup", &ip, &email, auth.rate_limit_auth).await?;
    let data = users::bounded_metadata(body.data.unwrap_or_else(|| json!({})))?;
    let redirect = state.redirect_target(query.redirect_to.as_deref());

    let mut tx = db::begin(state.pool()).await?;
    if let Some(existing) = users::by_email(&mut tx, &email).await? {
        if auth.autoconfirm {
            return Err(AuthError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "user_already_exists",
                "User already registered",
            ));
        }
        if existing.email_confirmed_at.is_none() {
            send_confirmation(&mut tx, &state, &existing, challenge.as_ref(), &redirect).await?;
            let json = users::json_of(&mut tx, &existing).await?;
            tx.commit().await?;
            state.wake_mailer();
            return Ok(Json(json));
        }
        // Do not reveal that the address is taken: answer like a new sign-up would.
        return Ok(Json(fake_user(&email, &data)));
    }
    let hash = password::hash(password).await?;
    let user = users::create(
        &mut tx,
        NewUser {
            id: None,
            email: &email,
            password_hash: Some(hash),
            user_metadata: data,
            app_metadata: json!({}),
            confirmed: auth.autoconfirm,
            identity: None,
        },
    )
    .await?;
    let body = if auth.autoconfirm {
        sessions::start(&mut tx, &state, &user, "password").await?
    } else {
        send_confirmation(&mut tx, &state, &user, challenge.as_ref(), &redirect).await?;
        let user = users::require(&mut tx, user.id).await?;
        users::json_of(&mut tx, &user).await?
    };
    tx.commit().await?;
    state.wake_mailer();
    Ok(Json(body))
}

/// An anonymous user (no email, no identity, `is_anonymous`) and their session; at most
/// `TALLY_RATE_LIMIT_AUTH` per address an hour. They become a permanent user, with everything
/// they made, when they add an email (`PUT /user`).
async fn sign_in_anonymously(
    state: &AuthState,
    ip: &str,
    data: Option<Value>,
) -> AuthResult<Json<Value>> {
    let limit = state.config().auth.rate_limit_auth;
    ratelimit::hit(
        state.pool(),
        "anonymous_sign_in",
        ip,
        limit,
        ratelimit::ONE_HOUR,
    )
    .await?;
    let data = users::bounded_metadata(data.unwrap_or_else(|| json!({})))?;
    let mut tx = db::begin(state.pool()).await?;
    let user = users::create_anonymous(&mut tx, &data).await?;
    let session = sessions::start(&mut tx, state, &user, "anonymous").await?;
    tx.commit().await?;
    Ok(Json(session))
}

async fn send_confirmation(
    tx: &mut sqlx::PgConnection,
    state: &AuthState,
    user: &users::User,
    challenge: Option<&flow::Challenge>,
    redirect: &str,
) -> AuthResult<()> {
    let email = user.email_or_empty();
    mail::send_link(
        tx,
        state,
        user.id,
        email,
        Purpose::Confirmation,
        challenge,
        redirect,
    )
    .await?;
    sqlx::query("update auth.users set confirmation_sent_at = now() where id = $1")
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// What a sign-up on a taken, confirmed address answers: a user that does not exist, with no
/// identities (the clients' documented signal).
fn fake_user(email: &str, data: &Value) -> Value {
    let now = timestamps::time(Utc::now());
    json!({
        "id": Uuid::new_v4(),
        "aud": "authenticated",
        "role": "authenticated",
        "email": email,
        "phone": "",
        "confirmation_sent_at": now,
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": data,
        "identities": [],
        "created_at": now,
        "updated_at": now,
        "is_anonymous": false,
    })
}
