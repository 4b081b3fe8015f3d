//! The LLM path against a local fake of an OpenAI-compatible `/v1/chat/completions`: a valid
//! answer is used; an invalid one is asked again; two invalid answers fall back to the rules
//! with the failures recorded; a time-out is 503 (the queue retries the job later).

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Json, Router, routing::post};
use serde_json::{Value, json};
use tally_testkit::TestApp;
use uuid::Uuid;

use crate::world::World;

#[derive(Clone, Copy)]
enum Reply {
    Valid,
    Invalid,
    Slow,
}

#[derive(Default)]
struct Fake {
    script: VecDeque<Reply>,
    project: Option<Uuid>,
    requests: Vec<Value>,
}

async fn answer(fake: Arc<Mutex<Fake>>, body: Value) -> Json<Value> {
    let (reply, project) = {
        let mut f = fake.lock().unwrap();
        f.requests.push(body.clone());
        (f.script.pop_front().unwrap_or(Reply::Valid), f.project)
    };
    let schema = &body["response_format"]["json_schema"]["schema"]["properties"];
    let first = |field: &str| schema[field]["enum"][0].clone();
    let content = match reply {
        Reply::Valid => json!({
            "project_id": project, "activity_type_id": first("activity_type_id"),
            "work_mode_id": first("work_mode_id"), "task_category_id": null, "billable": true,
        })
        .to_string(),
        // A made-up id and a missing field.
        Reply::Invalid => json!({"project_id": Uuid::new_v4(), "billable": "yes"}).to_string(),
        Reply::Slow => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            String::new()
        }
    };
    Json(json!({
        "choices": [{"message": {"role": "assistant", "content": content}}],
        "usage": {"total_tokens": 42},
    }))
}

/// A log straight in the table (status ready: no job races the test for the fake).
async fn log(w: &World, comment: &str) -> String {
    let id: Uuid = sqlx::query_scalar(
        "insert into time_logs (org_id, user_id, comment, status, user_locked) \
         values ($1, $2, $3, 'ready', '{comment}') returning id",
    )
    .bind(w.id("org_a"))
    .bind(w.id("member_a"))
    .bind(comment)
    .fetch_one(&w.app.db.owner)
    .await
    .unwrap();
    id.to_string()
}

async fn extractions(w: &World, id: &str) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "select provider, status::text, model from ai_extractions where time_log_id = $1::uuid \
         order by created_at, id",
    )
    .bind(id)
    .fetch_all(&w.app.db.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_llm_path_validates_retries_and_falls_back() {
    let fake = Arc::new(Mutex::new(Fake::default()));
    let state = fake.clone();
    let router = Router::new().route(
        "/v1/chat/completions",
        post(move |Json(body): Json<Value>| answer(state.clone(), body)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let app = TestApp::spawn_with(|c| {
        c.ai.llm_url = Some(url);
        c.ai.llm_model = "fake-chat".into();
        c.ai.llm_timeout = 1;
    })
    .await
    .unwrap();
    let w = World::with_app(app).await;
    fake.lock().unwrap().project = Some(w.id("tools"));
    let openai_ok = ("openai".to_owned(), "ok".to_owned(), "fake-chat".to_owned());
    let invalid = (
        "openai".to_owned(),
        "invalid".to_owned(),
        "fake-chat".to_owned(),
    );

    // A valid answer is used: the rules would find no project in this line.
    let id = log(&w, "2h misc stuff").await;
    let (status, out) = w
        .call("member_a", "ai-classify", json!({"log_id": id}))
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["log"]["project_id"], json!(w.id("tools")));
    assert_eq!(
        out["log"]["duration_minutes"], 120,
        "times come from the parser"
    );
    assert_eq!(out["extraction"]["provider"], "openai");
    assert_eq!(out["extraction"]["tokens"], 42);
    assert_eq!(out["extraction"]["output"]["project"]["source"], "llm");
    {
        let f = fake.lock().unwrap();
        let request = f.requests.last().unwrap();
        assert_eq!(request["model"], "fake-chat");
        assert_eq!(request["response_format"]["type"], "json_schema");
        assert_eq!(request["response_format"]["json_schema"]["strict"], true);
        let prompt: Value =
            serde_json::from_str(request["messages"][1]["content"].as_str().unwrap()).unwrap();
        assert_eq!(prompt["facts"]["duration_minutes"], 120);
    }
    assert_eq!(extractions(&w, &id).await, std::slice::from_ref(&openai_ok));

    // Invalid, then valid: the second answer is used, the first recorded.
    fake.lock().unwrap().script = VecDeque::from([Reply::Invalid, Reply::Valid]);
    let id = log(&w, "1h odds and ends").await;
    let (status, out) = w
        .call("member_a", "ai-classify", json!({"log_id": id}))
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["log"]["project_id"], json!(w.id("tools")));
    assert_eq!(extractions(&w, &id).await, [invalid.clone(), openai_ok]);

    // Invalid twice: the rules' result stands and both failures are recorded.
    fake.lock().unwrap().script = VecDeque::from([Reply::Invalid, Reply::Invalid]);
    let id = log(&w, "45m code review on apollo").await;
    let (status, out) = w
        .call("member_a", "ai-classify", json!({"log_id": id}))
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["log"]["project_id"], json!(w.id("apollo")));
    assert_eq!(out["extraction"]["provider"], "builtin");
    let rows = extractions(&w, &id).await;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[..2], [invalid.clone(), invalid]);
    assert_eq!((rows[2].0.as_str(), rows[2].1.as_str()), ("builtin", "ok"));

    // A time-out: 503, nothing written; the queue would try again later.
    fake.lock().unwrap().script = VecDeque::from([Reply::Slow]);
    let id = log(&w, "30m something").await;
    let (status, err) = w
        .call("member_a", "ai-classify", json!({"log_id": id}))
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (503, Some("unavailable")),
        "{err}"
    );
    assert!(extractions(&w, &id).await.is_empty());
}
