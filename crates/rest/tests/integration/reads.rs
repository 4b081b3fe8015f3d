//! Reads: select forms, filters, order, paging, counts, single objects, embeds, errors.

use reqwest::Method;
use serde_json::json;

use crate::fixture::{Rest, error, parts};

async fn get(rest: &Rest, path: &str) -> serde_json::Value {
    let (status, _, body) = parts(rest.req(Method::GET, path).send().await.unwrap()).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[tokio::test]
async fn select_forms_filters_and_order() {
    let rest = Rest::library().await;
    assert_eq!(
        get(&rest, "/authors?select=id,name&order=id").await,
        json!([{"id":1,"name":"Ada"},{"id":2,"name":"Grace"},{"id":3,"name":"Linus"}])
    );
    assert_eq!(
        get(
            &rest,
            "/authors?select=who:name,city:data->>city,age:data->age,n:id::text&id=eq.1"
        )
        .await,
        json!([{"who":"Ada","city":"London","age":36,"n":"1"}])
    );
    assert_eq!(
        get(&rest, "/authors?select=data->>city&id=eq.2").await,
        json!([{"city":"New York"}])
    );
    let titles = |v: serde_json::Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|b| b["title"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let cases: &[(&str, &[&str])] = &[
        ("pages=gt.300", &["Engines", "Cobol Days"]),
        ("pages=gte.350&pages=lte.420", &["Engines", "Cobol Days"]),
        ("genre=neq.science", &["Cobol Days"]),
        ("genre=is.null", &["Compilers"]),
        ("genre=not.is.null&pages=lt.200", &["Notes"]),
        ("id=in.(1,3)", &["Notes", "Cobol Days"]),
        ("id=not.in.(1,3)", &["Engines", "Compilers"]),
        ("title=like.*o*", &["Notes", "Cobol Days", "Compilers"]),
        ("title=ilike.c*", &["Cobol Days", "Compilers"]),
        ("title=match.^[EN]", &["Notes", "Engines"]),
        ("title=like(any).{N*,E*}", &["Notes", "Engines"]),
        ("or=(pages.lt.100,title.eq.Notes)", &["Notes", "Compilers"]),
        (
            "or=(genre.eq.history,and(pages.gt.400,genre.eq.science))",
            &["Engines", "Cobol Days"],
        ),
        ("not.or=(genre.eq.science,genre.is.null)", &["Cobol Days"]),
        ("published=gte.1900-01-01", &["Cobol Days"]),
        ("title=fts.engines", &["Engines"]),
        ("title=wfts(english).cobol days", &["Cobol Days"]),
        (
            "pages=isdistinct.120",
            &["Engines", "Cobol Days", "Compilers"],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(
            titles(get(&rest, &format!("/books?select=title&order=id&{filter}")).await),
            *expected,
            "{filter}"
        );
    }
    assert_eq!(
        get(&rest, "/authors?select=name&tags=cs.{math}").await,
        json!([{"name":"Ada"}])
    );
    assert_eq!(
        get(
            &rest,
            "/authors?select=name&tags=ov.{navy,poetry}&order=name.desc"
        )
        .await,
        json!([{"name":"Grace"},{"name":"Ada"}])
    );
    assert_eq!(
        get(&rest, "/authors?select=name&data->>city=eq.London").await,
        json!([{"name":"Ada"}])
    );
    assert_eq!(
        titles(
            get(
                &rest,
                "/books?select=title&order=genre.desc.nullsfirst,id.desc"
            )
            .await
        ),
        ["Compilers", "Engines", "Notes", "Cobol Days"]
    );
    assert_eq!(
        titles(get(&rest, "/long_books?select=title&order=pages").await),
        ["Cobol Days", "Engines"]
    );
}

#[tokio::test]
async fn paging_counts_single_and_head() {
    let rest = Rest::library().await;
    let res = rest
        .req(Method::GET, "/books?select=id&order=id&limit=2&offset=1")
        .header("prefer", "count=exact")
        .send()
        .await
        .unwrap();
    let (status, headers, body) = parts(res).await;
    assert_eq!(status, 206);
    assert_eq!(headers["content-range"], "1-2/4");
    assert_eq!(body, json!([{"id":2},{"id":3}]));
    let (status, headers, _) = parts(
        rest.req(Method::GET, "/books?select=id")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, headers["content-range"].to_str().unwrap()),
        (200, "0-3/*")
    );
    // Planned: the planner's estimate (fresh statistics make it the table's 4 rows);
    // estimated: exact while the estimate is small — here the 3 books over 100 pages.
    sqlx::query("analyze public.books")
        .execute(&rest.app.db.owner)
        .await
        .unwrap();
    for (prefer, path, range) in [
        (
            "count=planned",
            "/books?select=id&order=id&limit=2",
            "0-1/4",
        ),
        (
            "count=estimated",
            "/books?select=id&pages=gt.100&limit=1",
            "0-0/3",
        ),
        (
            "count=estimated",
            "/books?select=id&author_id=eq.1&limit=1",
            "0-0/2",
        ),
    ] {
        let (status, headers, body) = parts(
            rest.req(Method::GET, path)
                .header("prefer", prefer)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let got = headers.get("content-range").and_then(|v| v.to_str().ok());
        assert_eq!((status, got), (206, Some(range)), "{prefer} {path}: {body}");
    }
    let (status, headers, _) = parts(
        rest.req(Method::GET, "/books?id=eq.99")
            .header("prefer", "count=exact")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, headers["content-range"].to_str().unwrap()),
        (200, "*/0")
    );
    let (status, _, body) = parts(
        rest.req(Method::GET, "/books?select=id&order=id")
            .header("range", "1-2")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body), (200, json!([{"id":2},{"id":3}])));
    assert_eq!(
        error(
            rest.req(Method::GET, "/books?offset=10")
                .header("prefer", "count=exact")
                .send()
                .await
                .unwrap()
        )
        .await,
        (416, "PGRST103".into())
    );

    let single = |q: &str| {
        rest.req(Method::GET, &format!("/books?select=id,title&{q}"))
            .header("accept", "application/vnd.pgrst.object+json")
            .send()
    };
    let (status, headers, body) = parts(single("id=eq.1").await.unwrap()).await;
    assert_eq!((status, body), (200, json!({"id":1,"title":"Notes"})));
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/vnd.pgrst.object+json")
    );
    assert_eq!(
        error(single("id=gt.1").await.unwrap()).await,
        (406, "PGRST116".into())
    );
    assert_eq!(
        error(single("id=eq.99").await.unwrap()).await,
        (406, "PGRST116".into())
    );

    let res = rest
        .req(Method::HEAD, "/books")
        .header("prefer", "count=exact")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-range"], "0-3/4");
    assert!(res.text().await.unwrap().is_empty());
}

#[tokio::test]
async fn embeds_every_kind() {
    let rest = Rest::library().await;
    // many-to-one (with a hint: books has two keys to authors), one-to-many, many-to-many.
    assert_eq!(
        get(&rest, "/books?select=title,author:authors!books_author_id_fkey(name),editor:authors!editor_id(name)&id=in.(1,4)&order=id").await,
        json!([{"title":"Notes","author":{"name":"Ada"},"editor":{"name":"Grace"}},{"title":"Compilers","author":{"name":"Grace"},"editor":null}])
    );
    assert_eq!(
        get(&rest, "/authors?select=name,books!books_author_id_fkey(title)&books.order=id.desc&books.limit=1&id=lte.2&order=id").await,
        json!([{"name":"Ada","books":[{"title":"Engines"}]},{"name":"Grace","books":[{"title":"Compilers"}]}])
    );
    assert_eq!(
        get(
            &rest,
            "/books?select=title,reviewers(name)&order=id&id=in.(1,2)&reviewers.order=name"
        )
        .await,
        json!([{"title":"Notes","reviewers":[{"name":"Rita"},{"name":"Sam"}]},{"title":"Engines","reviewers":[]}])
    );
    // Filters on an embed filter the embed; with !inner they filter the parents too.
    assert_eq!(
        get(
            &rest,
            "/authors?select=name,books!books_author_id_fkey(title)&books.genre=eq.history&order=id"
        )
        .await,
        json!([{"name":"Ada","books":[]},{"name":"Grace","books":[{"title":"Cobol Days"}]},{"name":"Linus","books":[]}])
    );
    assert_eq!(
        get(
            &rest,
            "/authors?select=name,books!books_author_id_fkey!inner(title)&books.genre=eq.history"
        )
        .await,
        json!([{"name":"Grace","books":[{"title":"Cobol Days"}]}])
    );
    // Spread a to-one embed into the parent; nested embeds.
    assert_eq!(
        get(
            &rest,
            "/books?select=title,...authors!books_author_id_fkey(author:name)&id=eq.3"
        )
        .await,
        json!([{"title":"Cobol Days","author":"Grace"}])
    );
    assert_eq!(
        get(&rest, "/book_reviewers?select=books(title,authors!books_author_id_fkey(name)),reviewers(name)&book_id=eq.3").await,
        json!([{"books":{"title":"Cobol Days","authors":{"name":"Grace"}},"reviewers":{"name":"Sam"}}])
    );
    // Through a view: it inherits the keys of the table it selects from.
    assert_eq!(
        get(&rest, "/long_books?select=title,reviewers(name)&order=id").await,
        json!([{"title":"Engines","reviewers":[]},{"title":"Cobol Days","reviewers":[{"name":"Sam"}]}])
    );
    assert_eq!(
        get(
            &rest,
            "/book_reviewers?select=reviewer_id,long_books(title)&book_id=eq.3"
        )
        .await,
        json!([{"reviewer_id":2,"long_books":{"title":"Cobol Days"}}])
    );
    // Ambiguous and unknown relationships.
    assert_eq!(
        error(
            rest.req(Method::GET, "/books?select=authors(name)")
                .send()
                .await
                .unwrap()
        )
        .await,
        (300, "PGRST201".into())
    );
    assert_eq!(
        error(
            rest.req(Method::GET, "/books?select=publishers(name)")
                .send()
                .await
                .unwrap()
        )
        .await,
        (400, "PGRST200".into())
    );
}

#[tokio::test]
async fn bad_requests_are_4xx_with_postgrest_codes() {
    let rest = Rest::library().await;
    let cases = [
        ("/nope", 404, "PGRST205"),
        ("/books?select=nope", 400, "42703"),
        ("/books?nope=eq.1", 400, "42703"),
        ("/books?pages=eq.abc", 400, "22P02"),
        ("/books?pages=between.1", 400, "PGRST100"),
        ("/books?select=title(", 400, "PGRST100"),
        ("/books?order=pages.sideways", 400, "PGRST100"),
        ("/books?limit=x", 400, "PGRST100"),
        ("/books?or=(pages.eq.1", 400, "PGRST100"),
        ("/books?select=id::bad-type", 400, "PGRST100"),
    ];
    for (path, status, code) in cases {
        assert_eq!(
            error(rest.req(Method::GET, path).send().await.unwrap()).await,
            (status, code.into()),
            "{path}"
        );
    }
    let res = rest
        .req(Method::GET, "/books")
        .header("accept-profile", "private")
        .send()
        .await
        .unwrap();
    assert_eq!(error(res).await, (406, "PGRST106".into()));
    let res = reqwest::Client::new()
        .get(rest.app.url("/rest/v1/books"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "no apikey");
    let res = rest
        .as_token(Method::GET, "/books", "not-a-jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(error(res).await, (401, "PGRST301".into()));
}

/// Inputs that once crashed the process (a stack overflow in the recursive parsers) or reached
/// PostgreSQL's own limits (54001, 54011) are refused as 400 before planning, and the server
/// keeps answering.
#[tokio::test]
async fn hostile_nesting_and_sizes_are_400_and_the_server_lives() {
    let rest = Rest::library().await;
    let nest = |open: &str, inner: &str, close: &str, n: usize| {
        format!("{}{inner}{}", open.repeat(n), close.repeat(n))
    };
    let deep_or = nest("or(", "id.eq.1", ")", 1000);
    let deep_and = nest("and(", "id.eq.1", ")", 1000);
    let cases = [
        format!("/books?or=({deep_or})"),
        format!("/books?and=({deep_and})"),
        format!("/books?not.or=({deep_or})"),
        format!("/authors?select=*,books(*)&books.or=({deep_or})"),
        format!("/books?select={}", nest("a(", "id", ")", 3000)),
        format!(
            "/books?select={}",
            (0..2000)
                .map(|i| format!("c{i}:id"))
                .collect::<Vec<_>>()
                .join(",")
        ),
        format!("/authors?select=data{}", "->a".repeat(5000)),
        format!("/authors?data{}=eq.1", "->a".repeat(5000)),
        format!(
            "/books?columns={}",
            (0..2000)
                .map(|i| format!("c{i}"))
                .collect::<Vec<_>>()
                .join(",")
        ),
    ];
    for path in &cases {
        let res = rest.req(Method::GET, path).send().await.unwrap();
        assert_eq!(
            error(res).await,
            (400, "PGRST100".into()),
            "{}",
            &path[..60]
        );
    }
    // Within the limits the same forms still work.
    let or = nest("or(", "id.eq.1", ")", 30);
    assert_eq!(
        get(&rest, &format!("/books?select=id&or=({or})")).await,
        json!([{"id": 1}])
    );
    assert_eq!(
        get(
            &rest,
            &format!("/authors?select=x:data{}&id=eq.1", "->a".repeat(60))
        )
        .await,
        json!([{"x": null}])
    );
}

#[tokio::test]
async fn csv_and_media_types() {
    let rest = Rest::library().await;
    let res = rest
        .req(
            Method::GET,
            "/books?select=id,title,genre&order=id&id=in.(3,4)",
        )
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    // As PostgREST writes it: PostgreSQL's record text, quoted where it has spaces, commas or
    // quotes, null as nothing, no newline after the last row.
    assert_eq!(
        res.text().await.unwrap(),
        "id,title,genre\n3,\"Cobol Days\",history\n4,Compilers,"
    );
    let csv = |path: &'static str| {
        let req = rest.req(Method::GET, path).header("accept", "text/csv");
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(
        csv("/authors?select=id,name,data,tags&order=id").await,
        "id,name,data,tags\n\
         1,Ada,\"{\"\"age\"\": 36, \"\"city\"\": \"\"London\"\"}\",\"{math,poetry}\"\n\
         2,Grace,\"{\"\"city\"\": \"\"New York\"\"}\",\"{navy,compilers}\"\n\
         3,Linus,{},{}"
    );
    assert_eq!(
        csv("/authors?id=eq.99").await,
        "\n",
        "no rows: an empty header line"
    );
    let res = rest
        .req(Method::GET, "/books")
        .header("accept", "application/xml")
        .send()
        .await
        .unwrap();
    assert_eq!(error(res).await, (406, "PGRST107".into()));
}

/// Quoted identifiers keep their spaces in `select`, filters and `order`.
#[tokio::test]
async fn quoted_identifiers_with_spaces() {
    let rest = Rest::library().await;
    rest.extend(
        "create table public.spaced (id int primary key, \"column whitespace\" text); \
         grant select on public.spaced to anon; \
         insert into public.spaced values (1, 'a'), (2, 'b'), (3, null);",
    )
    .await;
    assert_eq!(
        get(
            &rest,
            "/spaced?select=id,%22column%20whitespace%22&%22column%20whitespace%22=not.is.null&order=%22column%20whitespace%22.desc"
        )
        .await,
        json!([{"id": 2, "column whitespace": "b"}, {"id": 1, "column whitespace": "a"}])
    );
    assert_eq!(
        get(&rest, "/spaced?select=w:%22column%20whitespace%22&id=eq.1").await,
        json!([{"w": "a"}])
    );
}

/// `Accept: …;nulls=stripped` leaves null fields out, for arrays and single objects.
#[tokio::test]
async fn nulls_stripped_leaves_null_fields_out() {
    let rest = Rest::library().await;
    let ask = |accept: &'static str| {
        rest.req(
            Method::GET,
            "/books?select=id,genre,published&id=in.(3,4)&order=id",
        )
        .header("accept", accept)
        .send()
    };
    let (status, _, body) = parts(
        ask("application/vnd.pgrst.array+json;nulls=stripped")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!([{"id": 3, "genre": "history", "published": "1960-01-01"}, {"id": 4}])
        )
    );
    let res = rest
        .req(Method::GET, "/books?select=id,genre&id=eq.4")
        .header("accept", "application/vnd.pgrst.object+json;nulls=stripped")
        .send()
        .await
        .unwrap();
    assert_eq!(parts(res).await.2, json!({"id": 4}));
    // Without it the nulls stay.
    let (_, _, body) = parts(ask("application/json").await.unwrap()).await;
    assert_eq!(body[1], json!({"id": 4, "genre": null, "published": null}));
}

/// An empty embed `rel()` is joined (its filters and `!inner` apply) but left out of the
/// output; the same embed output twice is 42712, as PostgREST's joins refuse it.
#[tokio::test]
async fn empty_embeds_join_without_output_and_duplicates_are_refused() {
    let rest = Rest::library().await;
    assert_eq!(
        get(
            &rest,
            "/authors?select=id,books!books_author_id_fkey!inner()&books.genre=eq.history&order=id"
        )
        .await,
        json!([{"id": 2}])
    );
    assert_eq!(
        get(
            &rest,
            "/authors?select=id,books!books_author_id_fkey()&order=id"
        )
        .await,
        json!([{"id": 1}, {"id": 2}, {"id": 3}])
    );
    let res = rest
        .req(
            Method::GET,
            "/books?select=id,authors!books_author_id_fkey(*),authors!books_editor_fkey(name)",
        )
        .send()
        .await
        .unwrap();
    let (status, _, twice) = parts(res).await;
    assert_eq!((status, &twice["code"]), (400, &json!("42712")));
    // Named as PostgREST's join aliases it: `{parent}_{embed}_{depth}`.
    assert_eq!(
        twice["message"],
        "table name \"books_authors_1\" specified more than once"
    );
    // Under different aliases the same relation embeds twice.
    assert_eq!(
        get(
            &rest,
            "/books?select=id,a:authors!books_author_id_fkey(name),b:authors!books_editor_fkey(id)&id=eq.1"
        )
        .await,
        json!([{"id": 1, "a": {"name": "Ada"}, "b": {"id": 2}}])
    );
}

/// PGRST200, PGRST201 and PGRST202 carry PostgREST's details and hints.
#[tokio::test]
async fn relationship_and_function_errors_carry_postgrest_details() {
    let rest = &Rest::library().await;
    let body = |path: &'static str| async move {
        parts(rest.req(Method::GET, path).send().await.unwrap()).await
    };
    let (status, _, ambiguous) = body("/books?select=id,authors(name)").await;
    assert_eq!((status, &ambiguous["code"]), (300, &json!("PGRST201")));
    assert_eq!(
        ambiguous["details"],
        json!([
            {"cardinality": "many-to-one", "embedding": "books with authors",
             "relationship": "books_author_id_fkey using books(author_id) and authors(id)"},
            {"cardinality": "many-to-one", "embedding": "books with authors",
             "relationship": "books_editor_fkey using books(editor_id) and authors(id)"}
        ])
    );
    assert_eq!(
        ambiguous["hint"],
        "Try changing 'authors' to one of the following: 'authors!books_author_id_fkey', \
         'authors!books_editor_fkey'. Find the desired relationship in the 'details' key."
    );
    let (status, _, unrelated) = body("/books?select=id,author(name)").await;
    assert_eq!((status, &unrelated["code"]), (400, &json!("PGRST200")));
    assert_eq!(
        unrelated["details"],
        "Searched for a foreign key relationship between 'books' and 'author' in the schema \
         'public', but no matches were found."
    );
    assert_eq!(
        unrelated["hint"],
        "Perhaps you meant 'authors' instead of 'author'."
    );
    let (status, _, missing) = body("/rpc/ad?a=1").await;
    assert_eq!((status, &missing["code"]), (404, &json!("PGRST202")));
    assert_eq!(
        missing["details"],
        "Searched for the function public.ad with parameter a or with a single unnamed \
         json/jsonb parameter, but no matches were found in the schema cache."
    );
    assert_eq!(
        missing["hint"],
        "Perhaps you meant to call the function public.add"
    );
    // With overloads of that name: the one whose parameters are nearest (none without any).
    let (_, _, near) = body("/rpc/add?a=1&c=2").await;
    assert_eq!(
        near["hint"],
        "Perhaps you meant to call the function public.add(a, b)"
    );
    assert_eq!(body("/rpc/add").await.2["hint"], serde_json::Value::Null);
}

/// An embed may name a foreign key instead of a table: its constraint (either direction) or
/// its column on the parent.
#[tokio::test]
async fn embeds_by_foreign_key_name_or_column() {
    let rest = Rest::library().await;
    assert_eq!(
        get(&rest, "/books?select=id,author_id(name)&id=eq.1").await,
        json!([{"id": 1, "author_id": {"name": "Ada"}}])
    );
    assert_eq!(
        get(
            &rest,
            "/books?select=id,editor:books_editor_fkey(name)&id=eq.1"
        )
        .await,
        json!([{"id": 1, "editor": {"name": "Grace"}}])
    );
    assert_eq!(
        get(
            &rest,
            "/authors?select=id,edited:books_editor_fkey(title)&id=eq.1"
        )
        .await,
        json!([{"id": 1, "edited": [{"title": "Cobol Days"}]}])
    );
}

/// A spread on a to-many relationship gives each column as the array of its values (as
/// PostgREST 13), in the embed's order; no related rows give empty arrays.
#[tokio::test]
async fn spreads_on_to_many_relationships_give_arrays() {
    let rest = Rest::library().await;
    assert_eq!(
        get(
            &rest,
            "/authors?select=id,...books!books_author_id_fkey(title,pages)&id=in.(1,3)&order=id&books.order=id.desc"
        )
        .await,
        json!([
            {"id": 1, "title": ["Engines", "Notes"], "pages": [420, 120]},
            {"id": 3, "title": [], "pages": []}
        ])
    );
}

/// A self-referencing table: embedded by its own name it gives its children; by the key's
/// column, its parent.
#[tokio::test]
async fn self_references_embed_children_by_name_and_the_parent_by_column() {
    let rest = Rest::library().await;
    rest.extend(
        "create table public.collections (id int primary key, parent_id int references public.collections (id)); \
         grant select on public.collections to anon; \
         insert into public.collections values (1, null), (2, 1), (3, 1);",
    )
    .await;
    assert_eq!(
        get(
            &rest,
            "/collections?select=id,collections(id)&id=eq.1&collections.order=id"
        )
        .await,
        json!([{"id": 1, "collections": [{"id": 2}, {"id": 3}]}])
    );
    assert_eq!(
        get(&rest, "/collections?select=id,parent_id(id)&id=eq.2").await,
        json!([{"id": 2, "parent_id": {"id": 1}}])
    );
    // The children hinted by the key's column; a hint by the constraint's name is no
    // self-reference PostgREST finds (PGRST200, naming the hint, suggesting nothing).
    assert_eq!(
        get(
            &rest,
            "/collections?select=id,collections!parent_id(id)&id=eq.1&collections.order=id"
        )
        .await,
        json!([{"id": 1, "collections": [{"id": 2}, {"id": 3}]}])
    );
    let res = rest
        .req(
            Method::GET,
            "/collections?select=*,collections!collections_parent_id_fkey(*)",
        )
        .send()
        .await
        .unwrap();
    let (status, _, body) = parts(res).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"code": "PGRST200", "hint": null,
                   "message": "Could not find a relationship between 'collections' and 'collections' in the schema cache",
                   "details": "Searched for a foreign key relationship between 'collections' and 'collections' using the hint 'collections_parent_id_fkey' in the schema 'public', but no matches were found."})
        )
    );
}

/// A modifier or filter for an embed the request does not select is PGRST108, naming it; a
/// column an embed lacks is named as PostgREST aliases the embed (`{table}_{depth}`).
#[tokio::test]
async fn modifiers_and_columns_of_missing_embeds_are_refused() {
    let rest = Rest::library().await;
    for path in [
        "/books?nope.limit=1",
        "/books?nope.id=eq.1",
        "/books?select=id,authors!books_author_id_fkey(name)&nope.order=id",
    ] {
        let (status, _, body) = parts(rest.req(Method::GET, path).send().await.unwrap()).await;
        assert_eq!(
            (status, body),
            (
                400,
                json!({"code": "PGRST108", "details": null,
                       "message": "'nope' is not an embedded resource in this request",
                       "hint": "Verify that 'nope' is included in the 'select' query parameter."})
            ),
            "{path}"
        );
    }
    for (path, message) in [
        ("/books?select=nope", "column books.nope does not exist"),
        (
            "/books?select=id,authors!books_author_id_fkey(nope)",
            "column authors_1.nope does not exist",
        ),
    ] {
        let (status, _, body) = parts(rest.req(Method::GET, path).send().await.unwrap()).await;
        assert_eq!(
            (status, &body["code"], &body["message"]),
            (400, &json!("42703"), &json!(message))
        );
    }
}

/// Functions of a row: a scalar one is a column (select, filter, order), one returning rows
/// of a relation is an embed (a set: an array; one row or `ROWS 1`: an object), in PostgREST's
/// manner; both work inside each other and on a function's single-row result.
#[tokio::test]
async fn computed_fields_and_relationships() {
    let rest = &Rest::library().await;
    rest.extend(
        "create function public.shelf_mark(public.books) returns text language sql stable \
           as $$select upper(left($1.title, 3)) || '-' || $1.id$$; \
         create function public.long_works(public.authors) returns setof public.books \
           language sql stable as 'select * from public.books where author_id = $1.id and pages > 300'; \
         create function public.latest(a public.authors) returns public.books language sql stable \
           as 'select * from public.books where author_id = a.id order by published desc nulls last limit 1'; \
         create function public.first_review(b public.books) returns setof public.reviewers \
           rows 1 language sql stable as 'select r.* from public.reviewers r \
           join public.book_reviewers br on br.reviewer_id = r.id where br.book_id = b.id \
           order by r.id limit 1'; \
         create function public.first_book() returns public.books language sql stable \
           as 'select * from public.books order by id limit 1'; \
         grant execute on all functions in schema public to anon;",
    )
    .await;
    assert_eq!(
        get(
            rest,
            "/books?select=id,shelf_mark&shelf_mark=like.C*&order=shelf_mark.desc"
        )
        .await,
        json!([{"id": 4, "shelf_mark": "COM-4"}, {"id": 3, "shelf_mark": "COB-3"}])
    );
    assert_eq!(
        get(
            rest,
            "/authors?select=name,works:long_works(title)&order=id"
        )
        .await,
        json!([{"name": "Ada", "works": [{"title": "Engines"}]},
               {"name": "Grace", "works": [{"title": "Cobol Days"}]},
               {"name": "Linus", "works": []}])
    );
    // A function returning one row (not a set) gives a row of nulls when it finds nothing.
    assert_eq!(
        get(rest, "/authors?select=name,latest(title)&order=id").await,
        json!([{"name": "Ada", "latest": {"title": "Notes"}},
               {"name": "Grace", "latest": {"title": "Cobol Days"}},
               {"name": "Linus", "latest": {"title": null}}])
    );
    assert_eq!(
        get(rest, "/books?select=id,first_review(name)&order=id").await,
        json!([{"id": 1, "first_review": {"name": "Rita"}}, {"id": 2, "first_review": null},
               {"id": 3, "first_review": {"name": "Sam"}}, {"id": 4, "first_review": null}])
    );
    assert_eq!(
        get(rest, "/books?select=id,first_review!inner(name)&order=id").await,
        json!([{"id": 1, "first_review": {"name": "Rita"}}, {"id": 3, "first_review": {"name": "Sam"}}])
    );
    assert_eq!(
        get(rest, "/authors?select=name,long_works(shelf_mark)&id=eq.1").await,
        json!([{"name": "Ada", "long_works": [{"shelf_mark": "ENG-2"}]}])
    );
    // `*` is the columns only, as in PostgREST.
    assert_eq!(
        get(rest, "/books?id=eq.4").await,
        json!([{"id": 4, "title": "Compilers", "author_id": 2, "editor_id": null, "pages": 90,
                "published": null, "genre": null}])
    );
    // A function returning a single row takes select and embeds like a table.
    assert_eq!(
        get(
            rest,
            "/rpc/first_book?select=title,shelf_mark,authors!books_author_id_fkey(name)"
        )
        .await,
        json!({"title": "Notes", "shelf_mark": "NOT-1", "authors": {"name": "Ada"}})
    );
}

/// Aggregates are refused unless `rest_aggregates` is on; then they group by the other
/// columns of their level, at the top, in embeds, beside spreads and on function results.
#[tokio::test]
async fn aggregates_group_by_the_other_columns_when_enabled() {
    let off = Rest::library().await;
    for path in [
        "/books?select=count()",
        "/authors?select=name,books!books_author_id_fkey(pages.sum())",
    ] {
        let res = off.req(Method::GET, path).send().await.unwrap();
        assert_eq!(error(res).await, (400, "PGRST123".into()), "{path}");
    }
    // A bare `count` counts rows even so, as PostgREST's `rel(count)`.
    assert_eq!(
        get(&off, "/books?select=count").await,
        json!([{"count": 4}])
    );
    assert_eq!(
        get(
            &off,
            "/authors?select=name,books!books_author_id_fkey(count)&order=id"
        )
        .await,
        json!([{"name": "Ada", "books": [{"count": 2}]}, {"name": "Grace", "books": [{"count": 2}]},
               {"name": "Linus", "books": [{"count": 0}]}])
    );
    let rest = &Rest::library_with(|c| c.rest_aggregates = true).await;
    assert_eq!(
        get(rest, "/books?select=count()").await,
        json!([{"count": 4}])
    );
    assert_eq!(
        get(
            rest,
            "/books?select=genre,count(),pages.sum()&order=genre.asc.nullslast"
        )
        .await,
        json!([{"genre": "history", "count": 1, "sum": 350},
               {"genre": "science", "count": 2, "sum": 540},
               {"genre": null, "count": 1, "sum": 90}])
    );
    assert_eq!(
        get(rest, "/books?select=total:pages.sum()::text,pages::float8.avg(),published.min()&author_id=eq.1").await,
        json!([{"total": "540", "avg": 270, "min": "1842-06-01"}])
    );
    assert_eq!(
        get(
            rest,
            "/authors?select=name,books!books_author_id_fkey(pages.sum(),count())&order=id"
        )
        .await,
        json!([{"name": "Ada", "books": [{"sum": 540, "count": 2}]},
               {"name": "Grace", "books": [{"sum": 440, "count": 2}]},
               {"name": "Linus", "books": [{"sum": null, "count": 0}]}])
    );
    assert_eq!(
        get(rest, "/authors?select=name,books!books_author_id_fkey(genre,count())&id=eq.2&books.order=genre.asc.nullsfirst").await,
        json!([{"name": "Grace", "books": [{"genre": null, "count": 1}, {"genre": "history", "count": 1}]}])
    );
    assert_eq!(
        get(
            rest,
            "/books?select=...authors!books_author_id_fkey(name),pages.max()&order=name.desc"
        )
        .await,
        json!([{"name": "Grace", "max": 350}, {"name": "Ada", "max": 420}])
    );
    assert_eq!(
        get(rest, "/rpc/books_by?author=1&select=pages.sum(),genre").await,
        json!([{"sum": 540, "genre": "science"}])
    );
}

/// `Accept: application/vnd.pgrst.plan…` answers the statement's plan when `rest_plan` is
/// on (406 otherwise); `options=analyze` runs it in a transaction that is rolled back.
#[tokio::test]
async fn query_plans_when_enabled() {
    let plan_json = "application/vnd.pgrst.plan+json";
    let off = Rest::library().await;
    let res = off
        .req(Method::GET, "/books")
        .header("accept", plan_json)
        .send()
        .await
        .unwrap();
    assert_eq!(error(res).await, (406, "PGRST107".into()));
    let rest = Rest::library_with(|c| c.rest_plan = true).await;
    let res = rest
        .req(
            Method::GET,
            "/books?select=title,authors!books_author_id_fkey(name)&pages=gt.100",
        )
        .header("accept", plan_json)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["content-type"],
        "application/vnd.pgrst.plan+json; for=\"application/json\"; charset=utf-8"
    );
    let (status, _, plan) = parts(res).await;
    assert_eq!(status, 200);
    assert!(plan[0]["Plan"]["Node Type"].is_string(), "{plan}");
    assert!(plan[0]["Plan"]["Total Cost"].is_number(), "{plan}");
    let res = rest
        .req(Method::GET, "/books?id=eq.1")
        .header("accept", "application/vnd.pgrst.plan+text; options=analyze")
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    assert!(
        text.contains("cost=") && text.contains("Execution Time"),
        "{text}"
    );
    // An analyzed write runs and is rolled back.
    let res = rest
        .req(Method::PATCH, "/books?id=eq.1")
        .header(
            "accept",
            "application/vnd.pgrst.plan+json; options=analyze|verbose",
        )
        .json(&json!({"title": "Changed"}))
        .send()
        .await
        .unwrap();
    let (status, _, plan) = parts(res).await;
    assert_eq!(status, 200, "{plan}");
    assert!(plan[0]["Execution Time"].is_number(), "{plan}");
    assert_eq!(
        get(&rest, "/books?select=title&id=eq.1").await,
        json!([{"title": "Notes"}])
    );
    let res = rest
        .req(Method::GET, "/rpc/books_by?author=1")
        .header("accept", plan_json)
        .send()
        .await
        .unwrap();
    assert!(parts(res).await.2[0]["Plan"].is_object());
    // As postgrest-js's `explain()` asks: the media type it is for, and an empty option list.
    for format in ["json", "text"] {
        let res = rest
            .req(Method::GET, "/books")
            .header(
                "accept",
                format!("application/vnd.pgrst.plan+{format}; for=\"application/json\"; options=;"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{format}");
        let text = res.text().await.unwrap();
        assert!(text.contains("Aggregate"), "{format}: {text}");
    }
}
