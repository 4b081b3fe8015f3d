//! Writes: insert, upsert, update, delete, return preferences, tx=rollback, max-affected,
//! and bad input that writes nothing.

use reqwest::Method;
use serde_json::json;

use crate::fixture::{Rest, error, parts};

async fn count(rest: &Rest, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select count(*) from public.{table}"
    )))
    .fetch_one(&rest.app.db.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn insert_upsert_update_delete() {
    let rest = Rest::library().await;
    // Minimal insert: 201, no body.
    let res = rest
        .req(Method::POST, "/reviewers")
        .json(&json!({"id": 3, "name": "Tom"}))
        .send()
        .await
        .unwrap();
    let (status, headers, body) = parts(res).await;
    assert_eq!((status, body), (201, serde_json::Value::Null));
    assert_eq!(headers["content-range"], "*/*");
    // Many rows with representation, with select and embed on the result.
    let res = rest
        .req(
            Method::POST,
            "/books?select=id,title,authors!books_author_id_fkey(name)",
        )
        .header("prefer", "return=representation")
        .json(&json!([{"id": 10, "title": "A", "author_id": 3}, {"id": 11, "title": "B"}]))
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    assert_eq!(status, 201);
    assert_eq!(
        body,
        json!([{"id":10,"title":"A","authors":{"name":"Linus"}},{"id":11,"title":"B","authors":null}])
    );
    // Upsert: merge, then ignore.
    let res = rest
        .req(Method::POST, "/reviewers?on_conflict=id")
        .header(
            "prefer",
            "resolution=merge-duplicates, return=representation",
        )
        .json(&json!([{"id": 3, "name": "Thomas"}, {"id": 4, "name": "Uma"}]))
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    assert_eq!(
        (status, body),
        (201, json!([{"id":3,"name":"Thomas"},{"id":4,"name":"Uma"}]))
    );
    // Every row already there: nothing was created, so 200.
    let res = rest
        .req(Method::POST, "/reviewers")
        .header(
            "prefer",
            "resolution=merge-duplicates, return=representation",
        )
        .json(&json!({"id": 4, "name": "Una"}))
        .send()
        .await
        .unwrap();
    assert_eq!(parts(res).await.0, 200);
    // Only the key in the body: still an update, and the row comes back.
    let res = rest
        .req(
            Method::POST,
            "/book_reviewers?on_conflict=book_id,reviewer_id",
        )
        .header(
            "prefer",
            "resolution=merge-duplicates, return=representation",
        )
        .json(&json!({"book_id": 1, "reviewer_id": 1}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    assert_eq!(
        (status, body),
        (200, json!([{"book_id": 1, "reviewer_id": 1}]))
    );
    let res = rest
        .req(Method::POST, "/reviewers")
        .header(
            "prefer",
            "resolution=ignore-duplicates, return=representation",
        )
        .json(&json!({"id": 4, "name": "Ursula"}))
        .send()
        .await
        .unwrap();
    assert_eq!(parts(res).await.2, json!([]));
    // Update with filters: minimal 204, representation 200.
    let res = rest
        .req(Method::PATCH, "/books?id=eq.10")
        .json(&json!({"pages": 5}))
        .send()
        .await
        .unwrap();
    let (status, headers, _) = parts(res).await;
    assert_eq!(
        (status, headers["content-range"].to_str().unwrap()),
        (204, "0-0/*")
    );
    let res = rest
        .req(Method::PATCH, "/books?id=in.(10,11)&select=id,pages")
        .header("prefer", "return=representation")
        .json(&json!({"pages": 7}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    assert_eq!(
        (status, body),
        (200, json!([{"id":10,"pages":7},{"id":11,"pages":7}]))
    );
    // With `count=exact` the total is the rows affected, for updates and deletes alike.
    for method in [Method::PATCH, Method::DELETE] {
        let res = rest
            .req(method.clone(), "/books?id=in.(10,11)")
            .header("prefer", "count=exact, tx=rollback")
            .json(&json!({"pages": 8}))
            .send()
            .await
            .unwrap();
        let (status, headers, _) = parts(res).await;
        assert_eq!(
            (status, headers["content-range"].to_str().unwrap()),
            (204, "0-1/2"),
            "{method}"
        );
    }
    // Delete.
    let res = rest
        .req(Method::DELETE, "/books?id=eq.11")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = rest
        .req(Method::DELETE, "/books?id=eq.10")
        .header("prefer", "return=representation")
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    assert_eq!((status, body[0]["title"].as_str()), (200, Some("A")));
    assert_eq!(count(&rest, "books").await, 4);
}

#[tokio::test]
async fn rollback_and_max_affected_write_nothing() {
    let rest = Rest::library().await;
    let res = rest
        .req(Method::POST, "/reviewers")
        .header("prefer", "tx=rollback, return=representation")
        .json(&json!({"id": 9, "name": "Ghost"}))
        .send()
        .await
        .unwrap();
    assert_eq!(parts(res).await.0, 201);
    assert_eq!(count(&rest, "reviewers").await, 2);
    let res = rest
        .req(Method::DELETE, "/book_reviewers?book_id=eq.1")
        .header("prefer", "handling=strict, max-affected=1")
        .send()
        .await
        .unwrap();
    assert_eq!(error(res).await, (400, "PGRST124".into()));
    assert_eq!(count(&rest, "book_reviewers").await, 3);
}

#[tokio::test]
async fn bad_writes_are_4xx_and_write_nothing() {
    let rest = Rest::library().await;
    let before = count(&rest, "books").await;
    let cases = [
        (
            Method::POST,
            "/books",
            json!({"id": 1, "title": "dup"}),
            409,
            "23505",
        ),
        (
            Method::POST,
            "/books",
            json!([{"id": 20, "title": "ok"}, {"id": 21, "title": null}]),
            400,
            "23502",
        ),
        (
            Method::POST,
            "/books",
            json!({"id": 22, "title": "x", "pages": "many"}),
            400,
            "22P02",
        ),
        (
            Method::POST,
            "/books",
            json!({"id": 23, "nope": 1}),
            400,
            "PGRST204",
        ),
        (
            Method::POST,
            "/books",
            json!({"id": 24, "title": "x", "author_id": 99}),
            409,
            "23503",
        ),
        (Method::POST, "/books", json!([1, 2]), 400, "PGRST102"),
        (
            Method::PATCH,
            "/books?id=eq.1",
            json!({"pages": "x"}),
            400,
            "22P02",
        ),
        (Method::PATCH, "/books?id=eq.1", json!([]), 400, "PGRST102"),
    ];
    for (method, path, body, status, code) in cases {
        let res = rest
            .req(method.clone(), path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error(res).await,
            (status, code.into()),
            "{method} {path} {body}"
        );
    }
    let res = rest
        .req(Method::POST, "/books")
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(error(res).await, (400, "PGRST102".into()));
    assert_eq!(
        count(&rest, "books").await,
        before,
        "a refused write changed rows"
    );
}

#[tokio::test]
async fn headers_only_answers_the_location() {
    let rest = Rest::library().await;
    let res = rest
        .req(Method::POST, "/reviewers")
        .header("prefer", "return=headers-only")
        .json(&json!({"id": 7, "name": "Vi"}))
        .send()
        .await
        .unwrap();
    let (status, headers, body) = parts(res).await;
    assert_eq!((status, body), (201, serde_json::Value::Null));
    assert_eq!(headers["location"], "/reviewers?id=eq.7");
}

#[tokio::test]
async fn missing_keys_take_null_or_the_default() {
    let rest = Rest::library().await;
    let rows = json!([{"id": 30, "name": "A", "tags": ["x"]}, {"id": 31, "name": "B"}]);
    // By default a missing key is null (here refused: tags is not null).
    let res = rest
        .req(Method::POST, "/authors")
        .json(&rows)
        .send()
        .await
        .unwrap();
    assert_eq!(error(res).await, (400, "23502".into()));
    // With missing=default it takes the column default.
    let res = rest
        .req(Method::POST, "/authors?select=id,tags,data")
        .header("prefer", "missing=default, return=representation")
        .json(&rows)
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    assert_eq!(
        (status, body),
        (
            201,
            json!([{"id":30,"tags":["x"],"data":{}},{"id":31,"tags":[],"data":{}}])
        )
    );
}

/// With `missing=default` an identity column takes its next value, whether no row gives it
/// or only some do, and a generated column its computed value.
#[tokio::test]
async fn missing_default_fills_identities_and_generated_columns() {
    let rest = Rest::library().await;
    rest.extend(
        "create table public.tickets (id int generated by default as identity primary key, \
           serial_no int generated always as identity, title text, \
           shout text generated always as (upper(title)) stored); \
         grant select, insert on public.tickets to anon; \
         grant usage on sequence public.tickets_id_seq to anon;",
    )
    .await;
    let insert = |body: serde_json::Value, query: &'static str| {
        rest.req(Method::POST, &format!("/tickets{query}"))
            .header("prefer", "missing=default, return=representation")
            .json(&body)
            .send()
    };
    let (status, _, body) = parts(
        insert(json!([{"title": "a"}, {"title": "b"}]), "")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            201,
            json!([{"id": 1, "serial_no": 1, "title": "a", "shout": "A"},
                   {"id": 2, "serial_no": 2, "title": "b", "shout": "B"}])
        )
    );
    // Only some rows give the id (as supabase-js sends it, with `columns=`). As in PostgREST,
    // every row's default is evaluated: the identity advances for the row that gives its id
    // too, so the next one gets 4.
    let (status, _, body) = parts(
        insert(
            json!([{"id": 10, "title": "c"}, {"title": "d"}]),
            "?columns=id,title&select=id,title",
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            201,
            json!([{"id": 10, "title": "c"}, {"id": 4, "title": "d"}])
        )
    );
}

/// A read cut short while its `BEGIN READ ONLY` is in flight (a client that goes away) must
/// never leave its connection inside that transaction for the next request: sqlx 0.9's own
/// guard misses that moment, so Tally begins on a task of its own. With one connection in the
/// pool, every write after hundreds of such cuts still writes.
#[tokio::test]
async fn a_read_cut_short_during_its_begin_never_makes_the_next_write_read_only() {
    let db = tally_testkit::TestDb::new().await.unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(db.owner_url())
        .await
        .unwrap();
    sqlx::raw_sql("create table cut (n int); grant insert on cut to service_role")
        .execute(&pool)
        .await
        .unwrap();
    let ctx = tally_core::RequestContext::service();
    for i in 0..300u64 {
        // Cut after a few to a few hundred microseconds: some cuts land mid-BEGIN.
        let cut = std::time::Duration::from_micros(5 + (i * 37) % 400);
        let _ = tokio::time::timeout(cut, ctx.begin_read_only(&pool)).await;
        let mut tx = ctx.begin(&pool).await.unwrap();
        sqlx::query("insert into cut values (1)")
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("after cut {i}: {e}"));
        tx.rollback().await.unwrap();
    }
}
