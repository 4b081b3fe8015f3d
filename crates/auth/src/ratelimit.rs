//! Fixed-window rate limits kept in `auth.rate_limits`, so every instance counts together.

use sqlx::PgPool;

use crate::{
    db,
    error::{AuthError, AuthResult},
};

/// Counts one request for `key` in `bucket`; refuses with 429 past `limit` per
/// `window_secs`.
pub async fn hit(
    pool: &PgPool,
    bucket: &str,
    key: &str,
    limit: u32,
    window_secs: u32,
) -> AuthResult<()> {
    let mut tx = db::begin(pool).await?;
    let hits: i32 = sqlx::query_scalar(
        "with w as (select to_timestamp(floor(extract(epoch from now()) / $3) * $3) as start), \
              gone as (delete from auth.rate_limits r using w \
                       where r.bucket = $1 and r.key = $2 and r.window_start < w.start) \
         insert into auth.rate_limits (bucket, key, window_start, hits) \
         select $1, $2, w.start, 1 from w \
         on conflict (bucket, key, window_start) do update set hits = auth.rate_limits.hits + 1 \
         returning hits",
    )
    .bind(bucket)
    .bind(key)
    .bind(f64::from(window_secs))
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    if hits > limit as i32 {
        tracing::warn!(bucket, "rate limit reached");
        metrics::counter!("tally_auth_rate_limited_total", "bucket" => bucket.to_owned())
            .increment(1);
        return Err(AuthError::rate_limited());
    }
    Ok(())
}

/// Counts an auth attempt (sign-in, sign-up, recover, ...) against the five-minute limit
/// per client IP (`{bucket}_ip`) and per client IP and email (`{bucket}_ip_email`). Never
/// per email alone: then anyone could lock an account's owner out by failing on purpose,
/// from anywhere.
pub async fn attempt(
    pool: &PgPool,
    bucket: &str,
    ip: &str,
    email: &str,
    limit: u32,
) -> AuthResult<()> {
    hit(pool, &format!("{bucket}_ip"), ip, limit, FIVE_MINUTES).await?;
    hit(
        pool,
        &format!("{bucket}_ip_email"),
        &format!("{ip} {email}"),
        limit,
        FIVE_MINUTES,
    )
    .await
}

/// Five minutes.
pub const FIVE_MINUTES: u32 = 300;
/// One hour.
pub const ONE_HOUR: u32 = 3600;
