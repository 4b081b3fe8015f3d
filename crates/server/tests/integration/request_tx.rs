//! The per-request transaction sets role and claims the way Supabase's helpers read them.

use axum::http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tally_core::{Claims, JwtKeys, RequestContext};
use tally_testkit::{TEST_JWT_SECRET, TestDb};

fn claims(value: Value) -> Claims {
    match value {
        Value::Object(map) => Claims(map),
        _ => unreachable!("an object literal"),
    }
}

#[tokio::test]
async fn claims_reach_auth_helpers_and_settings() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let user = uuid::Uuid::now_v7();
    // A token as the auth service will mint it, verified like any caller's.
    let keys = JwtKeys::new(TEST_JWT_SECRET);
    let token = keys.sign(&json!({
        "sub": user.to_string(), "role": "authenticated", "email": "a@b.test",
        "session_id": "s-1", "exp": chrono::Utc::now().timestamp() + 60,
    }))?;
    let mut headers = HeaderMap::new();
    headers.insert(
        "X-Client-Info",
        HeaderValue::from_static("supabase-js/2.109.0"),
    );
    headers.insert("authorization", HeaderValue::from_static("Bearer secret"));
    let ctx = RequestContext::from_claims(keys.verify(&token)?)?.with_request(
        "POST",
        "/rest/v1/x",
        &headers,
    );
    let mut tx = ctx.begin(&db.requests).await?;
    let row: (String, String, String, String, String, String, Value) = sqlx::query_as(
        "select auth.uid()::text, auth.role(), auth.email(), auth.jwt() ->> 'session_id', \
                current_user::text, current_setting('request.method'), \
                current_setting('request.headers')::jsonb",
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.rollback().await?;
    assert_eq!(row.0, user.to_string());
    assert_eq!(row.1, "authenticated");
    assert_eq!(row.2, "a@b.test");
    assert_eq!(row.3, "s-1");
    assert_eq!(row.4, "authenticated");
    assert_eq!(row.5, "POST");
    assert_eq!(row.6["x-client-info"], "supabase-js/2.109.0");
    assert!(
        row.6.get("authorization").is_none(),
        "the bearer token leaked into request.headers"
    );
    Ok(())
}

/// Whatever a client puts in a claim, a header or a path — quotes, dollar signs, backslashes,
/// an attempt to close a literal — arrives in the settings as written and runs nothing.
#[tokio::test]
async fn hostile_claims_and_headers_arrive_as_written() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let values = [
        "it's",
        "$s$; drop table public.time_logs; --",
        "$s",
        "$$",
        "ends with $",
        "back\\slash\\'",
        "$ss$ $s$s$ $sss",
    ];
    for value in values {
        let mut headers = HeaderMap::new();
        headers.insert("x-probe", HeaderValue::from_str(value)?);
        let ctx = RequestContext::from_claims(claims(json!({"role": "anon", "note": value})))?
            .with_request("GET", value, &headers);
        let mut tx = ctx.begin_read_only(&db.requests).await?;
        let (note, path, header): (String, String, String) = sqlx::query_as(
            "select auth.jwt() ->> 'note', current_setting('request.path'), \
                    current_setting('request.headers')::jsonb ->> 'x-probe'",
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.rollback().await?;
        assert_eq!(
            (note.as_str(), path.as_str(), header.as_str()),
            (value, value, value)
        );
    }
    let logs: i64 = sqlx::query_scalar("select count(*) from public.time_logs")
        .fetch_one(&db.owner)
        .await?;
    assert_eq!(logs, 0);
    Ok(())
}

#[tokio::test]
async fn settings_do_not_outlive_the_transaction() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let ctx = RequestContext::from_claims(claims(json!({"role": "service_role"})))?;
    let mut tx = ctx.begin(&db.requests).await?;
    let role: String = sqlx::query_scalar("select current_user::text")
        .fetch_one(&mut *tx)
        .await?;
    assert_eq!(role, "service_role");
    tx.commit().await?;
    // The pool's single connection is back as the login role with no claims.
    let (role, claims): (String, Option<String>) = sqlx::query_as(
        "select current_user::text, nullif(current_setting('request.jwt.claims', true), '')",
    )
    .fetch_one(&db.requests)
    .await?;
    assert_eq!(role, "tally_authenticator");
    assert_eq!(claims, None);
    Ok(())
}

#[tokio::test]
async fn unknown_roles_are_refused_and_missing_role_is_anon() -> anyhow::Result<()> {
    assert!(RequestContext::from_claims(claims(json!({"role": "postgres"}))).is_err());
    let ctx = RequestContext::from_claims(claims(json!({"sub": "x"})))?;
    assert_eq!(ctx.role().as_str(), "anon");
    assert_eq!(ctx.claims()["role"], "anon");
    Ok(())
}

#[tokio::test]
async fn read_only_transactions_refuse_writes() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let ctx = RequestContext::service();
    let mut tx = ctx.begin_read_only(&db.requests).await?;
    let err = sqlx::query("insert into audit_log (org_id, action) values (gen_random_uuid(), 'x')")
        .execute(&mut *tx)
        .await
        .expect_err("a write in a read-only transaction");
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("25006")
    );
    Ok(())
}
