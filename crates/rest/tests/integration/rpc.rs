//! Functions: scalar, set, table and void results; GET and POST; filters on results.

use reqwest::Method;
use serde_json::json;

use crate::fixture::{Rest, error, parts};

#[tokio::test]
async fn functions_of_every_shape() {
    let rest = Rest::library().await;
    let post =
        |path: &str, body: serde_json::Value| rest.req(Method::POST, path).json(&body).send();
    assert_eq!(
        parts(post("/rpc/add", json!({"a": 1, "b": 2})).await.unwrap())
            .await
            .2,
        json!(3)
    );
    assert_eq!(
        parts(post("/rpc/add", json!({"a": 1})).await.unwrap())
            .await
            .2,
        json!(11),
        "a default argument"
    );
    assert_eq!(
        parts(
            rest.req(Method::GET, "/rpc/add?a=4&b=5")
                .send()
                .await
                .unwrap()
        )
        .await
        .2,
        json!(9)
    );
    let (status, _, body) = parts(
        post(
            "/rpc/books_by?select=title&order=id.desc&pages=gt.100",
            json!({"author": 1}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body),
        (200, json!([{"title":"Engines"},{"title":"Notes"}]))
    );
    let (status, _, body) = parts(
        rest.req(Method::GET, "/rpc/titles?pages=lt.100")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body),
        (200, json!([{"title":"Compilers","pages":90}]))
    );
    let res = post("/rpc/touch", json!({})).await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        error(post("/rpc/nope", json!({})).await.unwrap()).await,
        (404, "PGRST202".into())
    );
    assert_eq!(
        error(post("/rpc/add", json!({"z": 1})).await.unwrap()).await,
        (404, "PGRST202".into())
    );
    assert_eq!(
        error(post("/rpc/add", json!({"a": "x"})).await.unwrap())
            .await
            .0,
        400
    );
    assert_eq!(
        error(rest.req(Method::DELETE, "/rpc/add").send().await.unwrap()).await,
        (405, "PGRST101".into())
    );
}

/// `handling=strict` with `max-affected` holds for functions too: a set-returning function
/// that returns more rows is 400 PGRST124.
#[tokio::test]
async fn max_affected_is_enforced_on_rpc_under_strict_handling() {
    let rest = Rest::library().await;
    let call = |max: u32| {
        rest.req(Method::POST, "/rpc/books_by")
            .header("prefer", format!("handling=strict, max-affected={max}"))
            .json(&json!({"author": 1}))
            .send()
    };
    assert_eq!(
        error(call(1).await.unwrap()).await,
        (400, "PGRST124".into())
    );
    let (status, _, body) = parts(call(2).await.unwrap()).await;
    assert_eq!((status, body.as_array().map(Vec::len)), (200, Some(2)));
}

/// `Prefer: count=exact` on a set-returning function answers the total in `Content-Range`,
/// for GET, HEAD and POST, for sets of rows and sets of scalars; a function returning one
/// scalar counts one (`0-0/1`, so postgrest-js's `count` is 1).
#[tokio::test]
async fn rpc_counts_go_in_content_range() {
    let rest = Rest::library().await;
    rest.extend(
        "create function public.evens(below int) returns setof int language sql stable \
           as 'select g from generate_series(0, below - 1, 2) g'; \
         grant execute on function public.evens(int) to anon;",
    )
    .await;
    let cases = [
        (Method::GET, "/rpc/books_by?author=1", None, "0-1/2"),
        (Method::HEAD, "/rpc/books_by?author=1", None, "0-1/2"),
        (
            Method::POST,
            "/rpc/books_by",
            Some(json!({"author": 1})),
            "0-1/2",
        ),
        (Method::GET, "/rpc/evens?below=10", None, "0-4/5"),
        (
            Method::POST,
            "/rpc/evens",
            Some(json!({"below": 6})),
            "0-2/3",
        ),
        (Method::GET, "/rpc/add?a=1&b=2", None, "0-0/1"),
        (Method::HEAD, "/rpc/add?a=1&b=2", None, "0-0/1"),
        (
            Method::POST,
            "/rpc/add",
            Some(json!({"a": 1, "b": 2})),
            "0-0/1",
        ),
    ];
    for (method, path, body, range) in cases {
        let mut req = rest
            .req(method.clone(), path)
            .header("prefer", "count=exact");
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let (status, headers, _) = parts(res).await;
        assert_eq!(
            (
                status,
                headers.get("content-range").and_then(|v| v.to_str().ok())
            ),
            (200, Some(range)),
            "{method} {path}"
        );
    }
}

/// Overloads the given argument names cannot tell apart are 300 PGRST203, as PostgREST
/// answers; one the names do pick is called.
#[tokio::test]
async fn ambiguous_overloads_are_pgrst203() {
    let rest = Rest::library().await;
    rest.extend(
        "create function public.twin(v int) returns text language sql immutable as 'select ''int'''; \
         create function public.twin(v text) returns text language sql immutable as 'select ''text'''; \
         create function public.pick(a int) returns text language sql immutable as 'select ''a'''; \
         create function public.pick(b text) returns text language sql immutable as 'select ''b'''; \
         grant execute on function public.twin(int), public.twin(text), public.pick(int), \
           public.pick(text) to anon;",
    )
    .await;
    let res = rest
        .req(Method::POST, "/rpc/twin")
        .json(&json!({"v": 1}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    assert_eq!((status, &body["code"]), (300, &json!("PGRST203")), "{body}");
    assert_eq!(
        body["message"],
        "Could not choose the best candidate function between: public.twin(v => integer), public.twin(v => text)"
    );
    let res = rest
        .req(Method::POST, "/rpc/pick")
        .json(&json!({"b": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(parts(res).await.2, json!("b"));
}

/// A single unnamed parameter is callable as PostgREST calls it: json/jsonb take the whole
/// body, text the value of `""`; other unnamed parameters are not exposed. A row-typed
/// parameter takes a JSON object.
#[tokio::test]
async fn unnamed_and_row_typed_parameters() {
    let rest = Rest::library().await;
    rest.extend(
        "create function public.shout(text) returns text language sql immutable as 'select upper($1)'; \
         create function public.keys_of(jsonb) returns text[] language sql immutable \
           as 'select array(select jsonb_object_keys($1) order by 1)'; \
         create function public.hidden(int) returns int language sql immutable as 'select $1'; \
         create function public.page_count(book public.books) returns int language sql stable \
           as 'select $1.pages'; \
         grant execute on all functions in schema public to anon;",
    )
    .await;
    let post = |path: &'static str, body: serde_json::Value| {
        let req = rest.req(Method::POST, path).json(&body);
        async move { parts(req.send().await.unwrap()).await }
    };
    assert_eq!(
        post("/rpc/shout", json!({"": "quiet"})).await.2,
        json!("QUIET")
    );
    assert_eq!(
        post("/rpc/keys_of", json!({"b": 1, "a": {"x": 2}})).await.2,
        json!(["a", "b"])
    );
    assert_eq!(
        post("/rpc/keys_of", json!({"": {"x": 1}})).await.2,
        json!([""])
    );
    let (status, _, body) = post("/rpc/hidden", json!({"": 1})).await;
    assert_eq!((status, &body["code"]), (404, &json!("PGRST202")), "{body}");
    assert_eq!(
        body["message"],
        "Could not find the function public.hidden() in the schema cache"
    );
    assert_eq!(
        body["details"],
        "Searched for the function public.hidden with parameter  or with a single unnamed \
         json/jsonb parameter, but no matches were found in the schema cache."
    );
    let (status, _, body) = post("/rpc/add", json!({})).await;
    assert_eq!(
        (status, &body["message"]),
        (
            404,
            &json!("Could not find the function public.add without parameters in the schema cache")
        )
    );
    assert_eq!(
        post(
            "/rpc/page_count",
            json!({"book": {"id": 9, "title": "Draft", "pages": 7}})
        )
        .await
        .2,
        json!(7)
    );
}
