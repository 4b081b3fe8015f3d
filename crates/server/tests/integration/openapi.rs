//! `GET /openapi.json`: the document describes the routes the server really has.

use std::collections::{BTreeSet, HashSet};

use serde_json::{Value, json};
use tally_server::refusals;
use tally_testkit::TestApp;

async fn document(app: &TestApp) -> anyhow::Result<Value> {
    let res = reqwest::get(app.url("/openapi.json")).await?;
    assert_eq!(res.status(), 200, "open to tools: no key needed");
    Ok(res.json().await?)
}

/// Every `(METHOD, path)` the document lists.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
            ops.push((method.to_ascii_uppercase(), path.clone()));
        }
    }
    ops
}

fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => found.push(r),
                    _ => refs(v, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_covers_every_service_and_holds_together() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let doc = document(&app).await?;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "Tally");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(
        schemes["apikey"],
        json!({"type": "apiKey", "in": "header", "name": "apikey"})
    );
    assert_eq!(schemes["bearer"]["scheme"], "bearer");

    let ops = operations(&doc);
    for expected in [
        ("POST", "/auth/v1/token"),
        ("GET", "/auth/v1/user"),
        ("DELETE", "/auth/v1/admin/users/{id}"),
        ("GET", "/rest/v1/time_logs"),
        ("PATCH", "/rest/v1/time_logs"),
        ("POST", "/storage/v1/object/sign/{bucket}/{path}"),
        ("PUT", "/storage/v1/object/upload/sign/{bucket}/{path}"),
        ("GET", "/realtime/v1/websocket"),
        ("POST", "/functions/v1/log-create"),
        (
            "POST",
            "/functions/v1/webhooks-ingest/{provider}/{integration_id}",
        ),
        ("GET", "/health"),
    ] {
        let op = (expected.0.to_owned(), expected.1.to_owned());
        assert!(ops.contains(&op), "{expected:?} is described");
    }

    // Every table and view the REST API exposes is described, and nothing else.
    let exposed: BTreeSet<String> = sqlx::query_scalar(
        "select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace \
         where n.nspname = 'public' and c.relkind in ('r', 'v', 'm', 'p', 'f')",
    )
    .fetch_all(&app.db.owner)
    .await?
    .into_iter()
    .collect();
    let described: BTreeSet<String> = ops
        .iter()
        .filter(|(m, p)| {
            m == "GET" && p.starts_with("/rest/v1/") && !p.starts_with("/rest/v1/rpc/")
        })
        .map(|(_, p)| p["/rest/v1/".len()..].to_owned())
        .collect();
    assert_eq!(described, exposed);
    let row = &doc["components"]["schemas"]["time_logs"];
    assert_eq!(row["properties"]["id"]["format"], "uuid");
    assert_eq!(
        row["properties"]["duration_minutes"]["type"],
        json!(["integer", "null"])
    );
    assert_eq!(row["properties"]["started_at"]["format"], "date-time");
    assert!(
        row["required"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("org_id"))),
        "NOT NULL without a default is required: {}",
        row["required"]
    );

    // Every reference resolves; every operation has a unique id, a tag and an answer.
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for r in found {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or(r);
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} resolves"
        );
    }
    assert_eq!(
        doc["paths"]["/auth/v1/admin/users/{id}"]["delete"]["operationId"],
        "auth_delete_admin_users_id"
    );
    assert_eq!(
        doc["paths"]["/rest/v1/rpc/create_organization"]["post"]["operationId"],
        "rest_post_rpc_create_organization"
    );
    let mut ids = HashSet::new();
    for (method, path) in &ops {
        let op = &doc["paths"][path][method.to_ascii_lowercase()];
        let id = op["operationId"].as_str().unwrap_or_default();
        assert!(
            ids.insert(id.to_owned()),
            "{method} {path}: id {id:?} is unique"
        );
        assert!(op["tags"][0].is_string(), "{method} {path} is tagged");
        assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
    }
    app.stop().await?;
    Ok(())
}

#[tokio::test]
async fn every_described_operation_is_routed() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let doc = document(&app).await?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let anon = app.keys.anon_key();
    // The premise: a path the server does not route gets the router's own 404.
    let unrouted = client
        .get(app.url("/auth/v1/no-such-route"))
        .header("apikey", &anon)
        .send()
        .await?;
    assert_eq!(unrouted.status(), 404);
    let router_refusal = |body: &[u8]| {
        let text = String::from_utf8_lossy(body);
        text.contains(refusals::NO_ROUTE) || text.contains(refusals::NO_METHOD)
    };
    assert!(router_refusal(&unrouted.bytes().await?));
    for (method, path) in operations(&doc) {
        let url = path
            .replace("{id}", "0190c1d2-0000-7000-8000-000000000000")
            .replace("{integration_id}", "0190c1d2-0000-7000-8000-000000000000")
            .replace("{provider}", "generic")
            .replace("{bucket}", "no-such-bucket")
            .replace("{path}", "folder/file.txt");
        let mut req = client
            .request(method.parse()?, app.url(&url))
            .header("apikey", &anon);
        if matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
            req = req.json(&json!({}));
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let body = res.bytes().await?;
        // The router's own 404/405 say so; a service's refusal says why.
        assert!(
            !(matches!(status, 404 | 405) && router_refusal(&body)),
            "{method} {path} is routed (got {status})"
        );
        assert_ne!(
            status,
            500,
            "{method} {path}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    app.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_function_body_is_checked_against_what_the_document_says() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let doc = document(&app).await?;
    let schema = |name: &str| json!({"$ref": format!("#/components/schemas/{name}"), "components": doc["components"]});
    let create = jsonschema::validator_for(&schema("CreateLog"))?;
    let good = json!({"org_id": "0190c1d2-0000-7000-8000-000000000000", "comment": "2h code review", "duration_minutes": 120, "tags": ["review"]});
    assert!(create.is_valid(&good));
    for bad in [
        json!({"comment": "no org"}),
        json!({"org_id": "0190c1d2-0000-7000-8000-000000000000", "colour": "red"}),
        json!({"org_id": "0190c1d2-0000-7000-8000-000000000000", "duration_minutes": "two hours"}),
    ] {
        assert!(!create.is_valid(&bad), "the document refuses {bad}");
        // ... and so does the function (400 before any work).
        let res = reqwest::Client::new()
            .post(app.url("/functions/v1/log-create"))
            .bearer_auth(app.keys.service_role_key())
            .json(&bad)
            .send()
            .await?;
        assert_eq!(res.status(), 400, "log-create refuses {bad}");
    }
    let push = jsonschema::validator_for(&schema("Push"))?;
    assert!(push.is_valid(&json!({"org_id": "0190c1d2-0000-7000-8000-000000000000", "mutations": [
        {"mutation_id": "0190c1d2-0000-7000-8000-000000000001", "table": "time_logs", "op": "upsert",
         "id": "0190c1d2-0000-7000-8000-000000000002", "values": {"comment": "x"}}]})));
    assert!(!push.is_valid(
        &json!({"org_id": "0190c1d2-0000-7000-8000-000000000000", "mutations": [
        {"mutation_id": "0190c1d2-0000-7000-8000-000000000001", "table": "time_logs", "op": "merge",
         "id": "0190c1d2-0000-7000-8000-000000000002"}]})
    ));
    app.stop().await?;
    Ok(())
}

/// The whole document against a checked-in copy, so that moving code is proven not to change
/// the API. After a deliberate API change: `TALLY_UPDATE_SNAPSHOTS=1 cargo nextest run -p
/// tally-server the_document_matches_its_snapshot`, then review the file's diff.
#[tokio::test]
async fn the_document_matches_its_snapshot() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let text = reqwest::get(app.url("/openapi.json")).await?.text().await?;
    // The test server's port is its own each run.
    let text = text.replace(app.url("").trim_end_matches('/'), "http://127.0.0.1:PORT");
    let pretty = serde_json::to_string_pretty(&serde_json::from_str::<Value>(&text)?)? + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/integration/openapi.snapshot.json");
    if std::env::var_os("TALLY_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &pretty)?;
    }
    let expected = std::fs::read_to_string(&path)?;
    if let Some((line, (got, want))) = pretty
        .lines()
        .zip(expected.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
    {
        panic!(
            "/openapi.json differs from {} at line {}:\n  now:      {got}\n  snapshot: {want}",
            path.display(),
            line + 1
        );
    }
    assert_eq!(
        pretty.lines().count(),
        expected.lines().count(),
        "/openapi.json has a different length than its snapshot"
    );
    Ok(())
}
