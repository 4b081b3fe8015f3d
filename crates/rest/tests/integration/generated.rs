//! Generated requests ([`tally_testkit::rest_requests`]) over real HTTP against the library
//! schema and Tally's own tables, as a person under row-level security: nothing is a 5xx, and
//! every refusal has PostgREST's `{code, message, details, hint}`.

use proptest::test_runner::{TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::Value;
use tally_testkit::{
    Fixture,
    rest_requests::{Vocabulary, request},
};

use crate::fixture::Rest;

/// Requests per run (each a round trip to a real server).
const CASES: u32 = 600;

fn vocabulary() -> Vocabulary {
    Vocabulary {
        names: vec![
            "id",
            "title",
            "name",
            "data",
            "tags",
            "pages",
            "published",
            "author_id",
            "editor_id",
            "authors",
            "books",
            "reviewers",
            "book_reviewers",
            "comment",
            "started_at",
            "duration_minutes",
            "user_id",
            "org_id",
            "project_id",
            "projects",
            "time_logs",
            "status",
            "billable",
        ],
        hints: vec![
            "inner",
            "left",
            "books_editor_fkey",
            "author_id",
            "editor_id",
            "time_logs_project_id_fkey",
            "nope",
        ],
        paths: vec![
            "/books",
            "/books",
            "/authors",
            "/book_reviewers",
            "/long_books",
            "/rpc/add",
            "/rpc/books_by",
            "/rpc/titles",
            "/time_logs",
            "/time_logs",
            "/projects",
        ],
    }
}

#[test]
fn generated_requests_over_http_are_never_a_5xx_and_refusals_have_postgrests_shape() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (rest, token) = runtime.block_on(async {
        let rest = Rest::library().await;
        let fixture = Fixture::load(&rest.app).await.unwrap();
        let token = fixture.token(&rest.app, "member_a");
        (rest, token)
    });
    let mut runner = TestRunner::new(proptest::test_runner::Config::with_cases(CASES));
    runner
        .run(&request(&vocabulary()), |generated| {
            let method = Method::from_bytes(generated.method.as_bytes()).unwrap_or(Method::GET);
            let path = if generated.query.is_empty() {
                generated.path.clone()
            } else {
                format!("{}?{}", generated.path, generated.query)
            };
            let mut req = rest.as_token(method.clone(), &path, &token);
            for (name, value) in &generated.headers {
                if reqwest::header::HeaderValue::from_str(value).is_ok() {
                    req = req.header(*name, value.as_str());
                }
            }
            if !generated.body.is_empty() {
                req = req
                    .header("content-type", "application/json")
                    .body(generated.body.clone());
            }
            runtime.block_on(async {
                let res = req
                    .send()
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let status = res.status().as_u16();
                let text = res
                    .text()
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                if status >= 500 {
                    return Err(TestCaseError::fail(format!(
                        "{status} for {} {path}: {text}",
                        generated.method
                    )));
                }
                let refused = status >= 400 || status == 300;
                if refused && method != Method::HEAD {
                    let body: Value = serde_json::from_str(&text).map_err(|e| {
                        TestCaseError::fail(format!("{status} not JSON ({e}): {text}"))
                    })?;
                    let shaped = body["code"].is_string()
                        && body["message"].is_string()
                        && body.get("details").is_some()
                        && body.get("hint").is_some();
                    if !shaped {
                        return Err(TestCaseError::fail(format!(
                            "{status} for {} {path} not in PostgREST's shape: {body}",
                            generated.method
                        )));
                    }
                }
                Ok(())
            })
        })
        .unwrap();
    runtime.block_on(rest.app.stop()).unwrap();
}
