//! Users and identities as GoTrue shows them (§1.3 of the protocol reference).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use regex::Regex;
use serde_json::{Map, Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    error::{AuthError, AuthResult},
    timestamps::{opt_time, time},
};

/// A row of `auth.users`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    /// The user id (`sub`).
    pub id: Uuid,
    /// Audience, `authenticated`.
    pub aud: String,
    /// Database role of the user's tokens, `authenticated`.
    pub role: String,
    /// Email, lower-cased.
    pub email: Option<String>,
    /// argon2id hash.
    pub encrypted_password: Option<String>,
    /// When the email was confirmed.
    pub email_confirmed_at: Option<DateTime<Utc>>,
    /// When the last confirmation mail went out.
    pub confirmation_sent_at: Option<DateTime<Utc>>,
    /// When the user was last invited.
    pub invited_at: Option<DateTime<Utc>>,
    /// When the last recovery mail went out.
    pub recovery_sent_at: Option<DateTime<Utc>>,
    /// An email change waiting for confirmation.
    pub email_change: Option<String>,
    /// When the email-change mail went out.
    pub email_change_sent_at: Option<DateTime<Utc>>,
    /// Phone number (unused so far).
    pub phone: Option<String>,
    /// Last sign-in.
    pub last_sign_in_at: Option<DateTime<Utc>>,
    /// `app_metadata`: provider(s) and what admins set.
    pub raw_app_meta_data: Value,
    /// `user_metadata`: what the user set.
    pub raw_user_meta_data: Value,
    /// Anonymous sign-in.
    pub is_anonymous: bool,
    /// Banned until this time.
    pub banned_until: Option<DateTime<Utc>>,
    /// Soft-deleted at.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Updated at.
    pub updated_at: DateTime<Utc>,
}

/// A row of `auth.identities`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Identity {
    id: Uuid,
    user_id: Uuid,
    provider: String,
    provider_id: String,
    identity_data: Value,
    email: Option<String>,
    last_sign_in_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

const USER_COLUMNS: &str = "id, aud, role, email, encrypted_password, email_confirmed_at, \
    confirmation_sent_at, invited_at, recovery_sent_at, email_change, email_change_sent_at, phone, \
    last_sign_in_at, raw_app_meta_data, raw_user_meta_data, is_anonymous, banned_until, \
    deleted_at, created_at, updated_at";

impl User {
    /// Whether the user is banned right now.
    pub fn is_banned(&self) -> bool {
        self.banned_until.is_some_and(|t| t > Utc::now())
    }

    /// The user's email or `""`.
    pub fn email_or_empty(&self) -> &str {
        self.email.as_deref().unwrap_or_default()
    }

    /// The User JSON, with its identities.
    pub fn to_json(&self, identities: &[Identity]) -> Value {
        let mut json = json!({
            "id": self.id,
            "aud": self.aud,
            "role": self.role,
            "email": self.email_or_empty(),
            "email_confirmed_at": opt_time(self.email_confirmed_at),
            "phone": self.phone.as_deref().unwrap_or_default(),
            "confirmation_sent_at": opt_time(self.confirmation_sent_at),
            "confirmed_at": opt_time(self.email_confirmed_at),
            "recovery_sent_at": opt_time(self.recovery_sent_at),
            "email_change_sent_at": opt_time(self.email_change_sent_at),
            "new_email": self.email_change,
            "last_sign_in_at": opt_time(self.last_sign_in_at),
            "app_metadata": object_or_empty(&self.raw_app_meta_data),
            "user_metadata": object_or_empty(&self.raw_user_meta_data),
            "identities": identities.iter().map(Identity::to_json).collect::<Vec<_>>(),
            "created_at": time(self.created_at),
            "updated_at": time(self.updated_at),
            "banned_until": opt_time(self.banned_until),
            "deleted_at": opt_time(self.deleted_at),
            "is_anonymous": self.is_anonymous,
        });
        if let Some(invited) = self.invited_at {
            json["invited_at"] = Value::from(time(invited));
        }
        json
    }
}

impl Identity {
    fn to_json(&self) -> Value {
        json!({
            "identity_id": self.id,
            "id": self.provider_id,
            "user_id": self.user_id,
            "identity_data": object_or_empty(&self.identity_data),
            "provider": self.provider,
            "last_sign_in_at": opt_time(self.last_sign_in_at),
            "created_at": time(self.created_at),
            "updated_at": time(self.updated_at),
            "email": self.email,
        })
    }
}

fn object_or_empty(v: &Value) -> Value {
    if v.is_object() {
        v.clone()
    } else {
        Value::Object(Map::new())
    }
}

/// A user by id (soft-deleted ones included).
pub async fn by_id(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<User>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {USER_COLUMNS} from auth.users where id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// A user by id, or 404 `user_not_found`.
pub async fn require(conn: &mut PgConnection, id: Uuid) -> AuthResult<User> {
    by_id(conn, id).await?.ok_or_else(AuthError::user_not_found)
}

/// A well-formed email address from a request, lower-cased, or 400 `validation_failed`.
pub fn parse_email(email: Option<&str>) -> AuthResult<String> {
    email
        .and_then(normalize_email)
        .ok_or_else(|| AuthError::validation("Unable to validate email address: invalid format"))
}

/// A live user by email, case-insensitively.
pub async fn by_email(conn: &mut PgConnection, email: &str) -> sqlx::Result<Option<User>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {USER_COLUMNS} from auth.users where lower(email) = lower($1) and deleted_at is null"
    )))
    .bind(email)
    .fetch_optional(conn)
    .await
}

/// The user's identities, oldest first.
pub async fn identities(conn: &mut PgConnection, user: Uuid) -> sqlx::Result<Vec<Identity>> {
    sqlx::query_as(
        "select id, user_id, provider, provider_id, identity_data, email, last_sign_in_at, \
                created_at, updated_at \
         from auth.identities where user_id = $1 order by created_at",
    )
    .bind(user)
    .fetch_all(conn)
    .await
}

/// The User JSON of a user id, loaded fresh; with `factors` when they have any (as GoTrue).
pub async fn json_of(conn: &mut PgConnection, user: &User) -> sqlx::Result<Value> {
    let identities = identities(conn, user.id).await?;
    let mut json = user.to_json(&identities);
    let factors = crate::factors::of_user(conn, user.id).await?;
    if !factors.is_empty() {
        json["factors"] = factors
            .iter()
            .map(crate::factors::Factor::to_json)
            .collect();
    }
    Ok(json)
}

/// What a new user starts with.
pub struct NewUser<'a> {
    /// A client-chosen id (admin API), else a new UUIDv7.
    pub id: Option<Uuid>,
    /// The email, lower-cased.
    pub email: &'a str,
    /// The argon2 hash, when the user has a password.
    pub password_hash: Option<String>,
    /// `user_metadata`.
    pub user_metadata: Value,
    /// Extra `app_metadata` (merged over the provider fields).
    pub app_metadata: Value,
    /// Confirm the email now.
    pub confirmed: bool,
    /// The identity to create: `None` for the `email` identity, else (provider, subject,
    /// identity data) of an SSO provider.
    pub identity: Option<(String, String, Value)>,
}

impl<'a> NewUser<'a> {
    /// A user with no password and an unconfirmed `email` (invited, or signing up through an
    /// email link), confirmed when they follow their link.
    pub fn unconfirmed(email: &'a str, user_metadata: Value) -> Self {
        Self {
            id: None,
            email,
            password_hash: None,
            user_metadata,
            app_metadata: json!({}),
            confirmed: false,
            identity: None,
        }
    }
}

/// Creates a user with an `email` identity.
pub async fn create(conn: &mut PgConnection, new: NewUser<'_>) -> sqlx::Result<User> {
    let provider = new
        .identity
        .as_ref()
        .map_or("email", |(p, _, _)| p.as_str());
    let mut app = json!({"provider": provider, "providers": [provider]});
    if let (Value::Object(app), Value::Object(extra)) = (&mut app, &new.app_metadata) {
        app.extend(extra.clone());
    }
    let user: User = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into auth.users (id, email, encrypted_password, raw_app_meta_data, \
             raw_user_meta_data, email_confirmed_at) \
         values (coalesce($1, private.uuid_v7()), $2, $3, $4, $5, case when $6 then now() end) \
         returning {USER_COLUMNS}"
    )))
    .bind(new.id)
    .bind(new.email)
    .bind(new.password_hash)
    .bind(app)
    .bind(object_or_empty(&new.user_metadata))
    .bind(new.confirmed)
    .fetch_one(&mut *conn)
    .await?;
    let (provider, provider_id, data) = new.identity.unwrap_or_else(|| {
        let data = email_identity_data(user.id, new.email, new.confirmed);
        ("email".to_owned(), user.id.to_string(), data)
    });
    add_identity(conn, user.id, &provider, &provider_id, &data).await?;
    Ok(user)
}

/// Creates an anonymous user: no email, no identity, `provider` "anonymous".
pub async fn create_anonymous(
    conn: &mut PgConnection,
    user_metadata: &Value,
) -> sqlx::Result<User> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into auth.users (is_anonymous, raw_app_meta_data, raw_user_meta_data) \
         values (true, '{{\"provider\": \"anonymous\", \"providers\": [\"anonymous\"]}}', $1) \
         returning {USER_COLUMNS}"
    )))
    .bind(object_or_empty(user_metadata))
    .fetch_one(conn)
    .await
}

/// The `identity_data` of a user's `email` identity, as GoTrue writes it.
pub fn email_identity_data(user: Uuid, email: &str, verified: bool) -> Value {
    json!({
        "sub": user.to_string(),
        "email": email,
        "email_verified": verified,
        "phone_verified": false,
    })
}

/// Adds an identity to a user (signing in through it now).
pub async fn add_identity(
    conn: &mut PgConnection,
    user: Uuid,
    provider: &str,
    provider_id: &str,
    data: &Value,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into auth.identities (user_id, provider, provider_id, identity_data, last_sign_in_at) \
         values ($1, $2, $3, $4, case when $2 <> 'email' then now() end)",
    )
    .bind(user)
    .bind(provider)
    .bind(provider_id)
    .bind(data)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets `app_metadata.providers` to the providers of the user's identities.
pub async fn refresh_providers(conn: &mut PgConnection, user: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "update auth.users set raw_app_meta_data = jsonb_set(raw_app_meta_data, '{providers}', \
           (select coalesce(jsonb_agg(distinct i.provider), '[]') from auth.identities i \
            where i.user_id = $1)) \
         where id = $1",
    )
    .bind(user)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the email confirmed (and its identity verified).
pub async fn confirm_email(conn: &mut PgConnection, user: Uuid) -> sqlx::Result<()> {
    sqlx::query("update auth.users set email_confirmed_at = coalesce(email_confirmed_at, now()) where id = $1")
        .bind(user)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "update auth.identities set identity_data = identity_data || '{\"email_verified\": true}' \
         where user_id = $1 and provider = 'email'",
    )
    .bind(user)
    .execute(conn)
    .await?;
    Ok(())
}

/// The largest `user_metadata` or `app_metadata`, as JSON text: it travels in every access
/// token.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// `metadata` if it is within [`MAX_METADATA_BYTES`], else 400 `validation_failed`.
pub fn bounded_metadata(metadata: Value) -> AuthResult<Value> {
    if metadata.to_string().len() > MAX_METADATA_BYTES {
        return Err(AuthError::validation(format!(
            "Metadata cannot be larger than {} KiB",
            MAX_METADATA_BYTES / 1024
        )));
    }
    Ok(metadata)
}

/// Merges `data` into a metadata object; keys set to `null` are removed. The result is
/// bounded as [`bounded_metadata`] bounds it.
pub fn merge_metadata(current: &Value, data: &Value) -> AuthResult<Value> {
    let mut merged = match current {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    if let Value::Object(changes) = data {
        for (key, value) in changes {
            if value.is_null() {
                merged.remove(key);
            } else {
                merged.insert(key.clone(), value.clone());
            }
        }
    }
    bounded_metadata(Value::Object(merged))
}

/// The address form GoTrue accepts: the HTML "valid e-mail address" (a dot-atom-like local
/// part, host labels of letters, digits and inner hyphens).
static EMAIL_FORMAT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$",
    )
    .expect("a constant pattern")
});

/// Lower-cases and checks an email address (at most 255 bytes, GoTrue's format).
pub fn normalize_email(email: &str) -> Option<String> {
    let email = email.trim().to_lowercase();
    (email.len() <= 255 && EMAIL_FORMAT.is_match(&email)).then_some(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_merges_and_null_deletes() {
        let merged =
            merge_metadata(&json!({"a": 1, "b": 2}), &json!({"b": null, "c": 3})).expect("small");
        assert_eq!(merged, json!({"a": 1, "c": 3}));
        let big = json!({"note": "x".repeat(MAX_METADATA_BYTES)});
        assert!(merge_metadata(&json!({}), &big).is_err());
        assert!(bounded_metadata(big).is_err());
    }

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            normalize_email(" Ada@Example.COM ").as_deref(),
            Some("ada@example.com")
        );
        // Hosts without a dot are addresses too (GoTrue takes `ada@localhost`).
        assert_eq!(normalize_email("ada@x").as_deref(), Some("ada@x"));
        for bad in [
            "",
            "ada",
            "@x.com",
            "ada@",
            "a da@x.com",
            "a@b@c.com",
            "xx:;x@x.x",
            "ada@-x.com",
            "ada@x..com",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
    }
}
