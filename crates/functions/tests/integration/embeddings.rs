//! Embeddings end to end: the built-in all-MiniLM-L6-v2 (fetched by `tally models`, as the
//! test script does first), recall within what the caller may see, finalized logs voting for
//! new ones, and an OpenAI-compatible provider faked at the HTTP level.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{Json, Router, routing::post};
use serde_json::{Value, json};
use tally_core::config::Embeddings as Setting;
use tally_testkit::TestApp;

use crate::world::World;

async fn create(w: &World, who: &str, org: &str, comment: &str) -> String {
    let (status, body) = w
        .call(
            who,
            "log-create",
            json!({"org_id": w.id(org), "comment": comment}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["log"]["id"].as_str().unwrap().to_owned();
    w.classified(&id).await;
    id
}

/// Serves `router` (a fake provider) on a local port; its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

#[tokio::test]
async fn recall_finds_similar_logs_the_caller_may_see() {
    let w = World::new().await;
    let bug = create(
        &w,
        "member_a",
        "org_a",
        "fixed the login bug in the auth service",
    )
    .await;
    create(&w, "member_a", "org_a", "weekly sales call with a prospect").await;
    create(
        &w,
        "member_a",
        "org_a",
        "wrote the release notes for the newsletter",
    )
    .await;
    let other = create(
        &w,
        "admin_a",
        "org_a",
        "fixed a login bug for the admin page",
    )
    .await;
    let secret = create(
        &w,
        "owner_b",
        "org_b",
        "fixed the login bug in the auth service",
    )
    .await;

    let model: String =
        sqlx::query_scalar("select model from time_log_embeddings where time_log_id = $1::uuid")
            .bind(&bug)
            .fetch_one(&w.app.db.owner)
            .await
            .unwrap();
    assert_eq!(model, "all-MiniLM-L6-v2");

    let (status, out) = w
        .call(
            "member_a",
            "recall",
            json!({"org_id": w.id("org_a"), "query": "debugging authentication errors when signing in", "limit": 5}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    let results = out["results"].as_array().unwrap();
    // A member sees only their own logs: three, the bug first.
    assert_eq!(results.len(), 3, "{out}");
    assert_eq!(results[0]["log"]["id"], json!(bug));
    let sims: Vec<f64> = results
        .iter()
        .map(|r| r["similarity"].as_f64().unwrap())
        .collect();
    assert!(sims.windows(2).all(|p| p[0] >= p[1]), "{sims:?}");
    assert!(
        sims[0] > sims[1] + 0.1,
        "the bug is clearly nearest: {sims:?}"
    );

    // An admin sees the org's; nobody sees another org's.
    let (_, out) = w
        .call(
            "admin_a",
            "recall",
            json!({"org_id": w.id("org_a"), "query": "login bug"}),
        )
        .await;
    let ids: Vec<&str> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["log"]["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&other.as_str()) && ids.contains(&bug.as_str()));
    assert!(!ids.contains(&secret.as_str()));
    let (status, out) = w
        .call(
            "owner_b",
            "recall",
            json!({"org_id": w.id("org_a"), "query": "login bug"}),
        )
        .await;
    assert_eq!(
        (status, out["results"].as_array().map(Vec::len)),
        (200, Some(0))
    );

    let (status, err) = w
        .call(
            "member_a",
            "recall",
            json!({"org_id": w.id("org_a"), "query": " "}),
        )
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn finalized_logs_vote_for_new_ones() {
    let w = World::new().await;
    let design = w.term("activity_types", "design").await;
    for comment in [
        "flurbo quantization of the gizmo lattice",
        "more flurbo quantization on the gizmo lattice today",
        "gizmo lattice flurbo quantization, second pass",
    ] {
        let id = create(&w, "member_a", "org_a", comment).await;
        let (status, out) = w
            .call(
                "member_a",
                "log-finalize",
                json!({"log_id": id, "overrides": {"activity_type_id": design}}),
            )
            .await;
        assert_eq!(status, 200, "{out}");
    }
    let id = create(
        &w,
        "member_a",
        "org_a",
        "flurbo quantization of a new gizmo lattice",
    )
    .await;
    let (_, out) = w
        .call("member_a", "ai-classify", json!({"log_id": id}))
        .await;
    assert_eq!(out["log"]["activity_type_id"], json!(design), "{out}");
    assert_eq!(
        out["extraction"]["output"]["activity_type"]["source"],
        "neighbours"
    );
    assert_eq!(out["extraction"]["input"]["neighbours"], 3);
}

#[tokio::test]
async fn an_openai_compatible_provider_is_used_when_configured() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    // A fake `/v1/embeddings`: a fixed unit-ish vector per input, counting calls.
    let fake = Router::new().route(
        "/v1/embeddings",
        post(move |Json(body): Json<Value>| {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                assert_eq!(body["model"], "fake-embed");
                let data: Vec<Value> = body["input"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .enumerate()
                    .map(|(index, _)| json!({"index": index, "embedding": vec![0.5f32; 384]}))
                    .collect();
                Json(json!({"data": data, "model": "fake-embed"}))
            }
        }),
    );
    let url = serve(fake).await;

    let app = TestApp::spawn_with(|c| {
        c.ai.embeddings = Setting::Openai;
        c.ai.embeddings_url = Some(url);
        c.ai.embeddings_model = "fake-embed".into();
    })
    .await
    .unwrap();
    let w = World::with_app(app).await;
    let id = create(&w, "member_a", "org_a", "2h on apollo").await;
    let (model, norm): (String, f64) = sqlx::query_as(
        "select model, extensions.vector_norm(embedding) from time_log_embeddings where time_log_id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&w.app.db.owner)
    .await
    .unwrap();
    assert_eq!(model, "fake-embed");
    assert!((norm - 1.0).abs() < 1e-4, "stored normalised: {norm}");
    assert!(calls.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn the_default_vocabulary_is_embedded_ahead_and_once() {
    // A fake `/v1/embeddings` that records what it is asked to embed.
    let asked = Arc::new(std::sync::Mutex::new(Vec::<Vec<String>>::new()));
    let seen = asked.clone();
    let fake = Router::new().route(
        "/v1/embeddings",
        post(move |Json(body): Json<Value>| {
            let seen = seen.clone();
            async move {
                let input: Vec<String> = serde_json::from_value(body["input"].clone()).unwrap();
                let data: Vec<Value> = (0..input.len())
                    .map(|index| json!({"index": index, "embedding": vec![0.05f32; 384]}))
                    .collect();
                seen.lock().unwrap().push(input);
                Json(json!({"data": data, "model": "fake-embed"}))
            }
        }),
    );
    let url = serve(fake).await;
    let embedder: Arc<dyn tally_ai::embed::Embedder> = Arc::new(
        tally_ai::embed::OpenAiEmbedder::new(
            &url,
            None,
            "fake-embed",
            std::time::Duration::from_secs(10),
        )
        .unwrap(),
    );
    let embeddings = tally_functions::Embeddings::new(Box::new(move || {
        let embedder = embedder.clone();
        Box::pin(async move { Ok(embedder) })
    }));
    let db = tally_testkit::TestDb::new().await.unwrap();

    tally_functions::classify::warm_prototypes(db.requests.clone(), embeddings.clone()).await;
    let calls = asked.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "one call for the whole vocabulary");
    let texts = &calls[0];
    for expected in [
        "Development: Writing, changing and debugging software.",
        "reviewed a pull request",
        "Deep work: Uninterrupted, focused work on a single demanding task.",
        "lunch break",
    ] {
        assert!(
            texts.iter().any(|t| t == expected),
            "{expected} in {texts:?}"
        );
    }
    // Each distinct text once: the names with descriptions and every example line.
    let distinct: i64 = sqlx::query_scalar(
        "select count(distinct t) from ( \
           select name || ': ' || description as t from activity_types where org_id is null \
           union all select unnest(examples) from activity_types where org_id is null \
           union all select name || ': ' || description from work_modes where org_id is null \
           union all select unnest(examples) from work_modes where org_id is null) x",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(texts.len() as i64, distinct);
    assert!(distinct > 500, "{distinct} prototypes");

    // Classifications and a second start find them cached: nothing more is sent.
    tally_functions::classify::warm_prototypes(db.requests.clone(), embeddings).await;
    assert_eq!(asked.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_orgs_own_activity_type_is_recognised_from_its_description_and_examples() {
    let w = World::new().await;
    // Org A's own term, named by no keyword in the line below.
    let copywriting: uuid::Uuid = sqlx::query_scalar(
        "insert into activity_types (org_id, key, name, description, examples) \
         values ($1, 'copywriting', 'Copywriting', 'Writing marketing and advertising copy.', \
                 array['ad copy for the spring campaign', 'taglines for the landing page', \
                       'slogans and headlines for a print advert']) returning id",
    )
    .bind(w.id("org_a"))
    .fetch_one(&w.app.db.owner)
    .await
    .unwrap();
    let line = "three headline options for the billboard ad";
    let ours = create(&w, "member_a", "org_a", line).await;
    let row = w.classified(&ours).await;
    assert_eq!(row["activity_type_id"], json!(copywriting), "{row}");
    // Another org's log of the same words never gets org A's term.
    let theirs = create(&w, "owner_b", "org_b", line).await;
    let row = w.classified(&theirs).await;
    assert_ne!(row["activity_type_id"], json!(copywriting), "{row}");
}
