use serde_json::{Value, json};
use tally_functions::{Providers, job::ClassifyLogJob};
use tally_jobs::{Job, JobHandler};

use crate::world::World;

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn log_create_returns_pending_and_the_worker_classifies_it() {
    let w = World::new().await;
    let (status, body) = w
        .call(
            "member_a",
            "log-create",
            json!({"org_id": w.id("org_a"), "comment": "2h fixing the login bug on apollo"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let log = &body["log"];
    assert_eq!(log["status"], "pending");
    assert_eq!(log["user_locked"], json!(["comment"]));
    assert_eq!(log["user_id"], json!(w.id("member_a")));

    let done = w.classified(&id_of(log)).await;
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(done["project_id"], json!(w.id("apollo")));
    assert_eq!(done["duration_minutes"], 120);
    assert_eq!(done["billable"], true);
    assert_eq!(
        done["activity_type_id"],
        json!(w.term("activity_types", "development").await)
    );
    assert_eq!(
        done["work_mode_id"],
        json!(w.term("work_modes", "deep_work").await)
    );
    assert_eq!(done["version"], 2, "classification bumps the version");

    // The person reads the extraction back through /rest/v1.
    let rows = w
        .rest(
            "member_a",
            &format!(
                "ai_extractions?time_log_id=eq.{}&select=provider,status,confidences",
                id_of(log)
            ),
        )
        .await;
    assert_eq!(rows[0]["provider"], "builtin");
    assert_eq!(rows[0]["status"], "ok");
    assert!(rows[0]["confidences"]["overall"].as_f64().unwrap() >= 0.6);

    // The seed's dotted name is the same function.
    let (status, body) = w
        .call(
            "member_a",
            "log.create",
            json!({"org_id": w.id("org_a"), "comment": "45m standup"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_client_id_makes_log_create_idempotent() {
    let w = World::new().await;
    let id = uuid::Uuid::now_v7();
    let body =
        json!({"id": id, "org_id": w.id("org_a"), "comment": "1h code review", "source": "timer"});
    let (first, a) = w.call("member_a", "log-create", body.clone()).await;
    let (again, b) = w.call("member_a", "log-create", body).await;
    assert_eq!((first, again), (201, 200));
    assert_eq!(a["log"]["id"], b["log"]["id"]);
    assert_eq!(a["log"]["source"], "timer");
    let count: i64 = sqlx::query_scalar("select count(*) from time_logs where id = $1")
        .bind(id)
        .fetch_one(&w.app.db.owner)
        .await
        .unwrap();
    assert_eq!(count, 1);
    // Someone else reusing the id gets a conflict, not the log.
    let (status, err) = w
        .call(
            "admin_a",
            "log-create",
            json!({"id": id, "org_id": w.id("org_a"), "comment": "mine"}),
        )
        .await;
    assert_eq!((status, err["error"].as_str()), (409, Some("conflict")));
}

#[tokio::test]
async fn fields_the_person_gave_are_locked() {
    let w = World::new().await;
    let (_, body) = w
        .call(
            "member_a",
            "log-create",
            json!({"org_id": w.id("org_a"), "comment": "code review on apollo #urgent",
                   "project_id": w.id("tools"), "duration_minutes": 30, "tags": ["mine"]}),
        )
        .await;
    let log = &body["log"];
    assert_eq!(
        log["user_locked"],
        json!(["comment", "duration_minutes", "project_id", "tags"])
    );
    let done = w.classified(&id_of(log)).await;
    assert_eq!(done["project_id"], json!(w.id("tools")), "kept as given");
    assert_eq!(done["duration_minutes"], 30);
    assert_eq!(done["tags"], json!(["mine"]));
    assert_eq!(
        done["activity_type_id"],
        json!(w.term("activity_types", "code_review").await)
    );
}

#[tokio::test]
async fn ai_classify_is_for_the_owner_admins_and_the_service_role() {
    let w = World::new().await;
    let (_, body) = w
        .call(
            "member_a",
            "log-create",
            json!({"org_id": w.id("org_a"), "comment": "from 9 to 11:30 writing docs for internal tools"}),
        )
        .await;
    let id = id_of(&body["log"]);
    let (status, out) = w
        .call("member_a", "ai-classify", json!({"log_id": id}))
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["log"]["project_id"], json!(w.id("tools")));
    assert_eq!(out["log"]["duration_minutes"], 150);
    assert_eq!(out["extraction"]["provider"], "builtin");
    assert_eq!(out["extraction"]["time_log_id"], json!(id));

    let (status, _) = w
        .call("admin_a", "ai.classify", json!({"log_id": id}))
        .await;
    assert_eq!(status, 200);
    let service = w.app.keys.service_role_key();
    let (status, _) = w
        .invoke("ai-classify", &service, json!({"log_id": id}))
        .await;
    assert_eq!(status, 200);
    // Another org's owner cannot tell the log exists; nor can a viewer.
    for who in ["owner_b", "viewer_a", "manager_a"] {
        let (status, err) = w.call(who, "ai-classify", json!({"log_id": id})).await;
        assert_eq!(status, 404, "{who}: {err}");
        assert_eq!(
            err,
            json!({"error": "not_found", "message": "Log not found"})
        );
    }
    // The anon key alone is no user.
    let (status, err) = w
        .invoke(
            "log-create",
            &w.app.keys.anon_key(),
            json!({"org_id": w.id("org_a"), "comment": "x"}),
        )
        .await;
    assert_eq!((status, err["error"].as_str()), (401, Some("unauthorized")));
}

#[tokio::test]
async fn log_finalize_applies_and_locks_corrections() {
    let w = World::new().await;
    let (_, body) = w
        .call(
            "member_a",
            "log-create",
            json!({"org_id": w.id("org_a"), "comment": "1h apollo stuff"}),
        )
        .await;
    let id = id_of(&body["log"]);
    w.classified(&id).await;
    let design = w.term("activity_types", "design").await;
    let started = "2026-03-10T09:00:00Z";
    let (status, out) = w
        .call(
            "member_a",
            "log-finalize",
            json!({"log_id": id, "overrides": {"activity_type_id": design, "started_at": started,
                                               "duration_minutes": 90}}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    let log = &out["log"];
    assert_eq!(log["status"], "finalized");
    assert!(log["finalized_at"].is_string());
    assert_eq!(log["activity_type_id"], json!(design));
    assert_eq!(log["ended_at"], "2026-03-10T10:30:00+00:00");
    let locked: Vec<&str> = log["user_locked"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for field in ["activity_type_id", "started_at", "duration_minutes"] {
        assert!(locked.contains(&field), "{field} in {locked:?}");
    }
    // Classifying a finalized log changes nothing the person confirmed.
    let (_, again) = w
        .call("member_a", "ai-classify", json!({"log_id": id}))
        .await;
    assert_eq!(again["log"]["status"], "finalized");
    assert_eq!(again["log"]["activity_type_id"], json!(design));
    // A viewer cannot finalize what they cannot see.
    let (status, _) = w
        .call("viewer_a", "log-finalize", json!({"log_id": id}))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bad_requests_are_4xx_and_write_nothing() {
    let w = World::new().await;
    let org = w.id("org_a");
    let cases = [
        (json!({"comment": "no org"}), 400, "invalid_request"),
        (
            json!({"org_id": org, "comment": "x", "colour": "red"}),
            400,
            "invalid_request",
        ),
        (
            json!({"org_id": org, "duration_minutes": "abc"}),
            400,
            "invalid_request",
        ),
        (
            json!({"org_id": org, "duration_minutes": 5000}),
            400,
            "invalid_request",
        ),
        (json!({"org_id": org}), 400, "invalid_request"),
        (
            json!({"org_id": org, "comment": "x", "source": "carrier-pigeon"}),
            400,
            "invalid_request",
        ),
        (
            json!({"org_id": org, "comment": "x", "project_id": w.id("borealis")}),
            400,
            "invalid_reference",
        ),
        (
            json!({"org_id": org, "comment": "x", "started_at": "2026-03-10T10:00:00Z",
                "ended_at": "2026-03-10T09:00:00Z"}),
            400,
            "invalid_request",
        ),
        (
            json!({"org_id": org, "comment": "x", "attachment_ids": [uuid::Uuid::now_v7()]}),
            400,
            "invalid_request",
        ),
        (
            json!({"org_id": w.id("org_b"), "comment": "not my org"}),
            403,
            "forbidden",
        ),
        // Bounded input: 100,000 tags, one tag of 101 characters, a comment over 10,000.
        (
            json!({"org_id": org, "comment": "x", "tags": vec!["t"; 100_000]}),
            400,
            "invalid_request",
        ),
        (
            json!({"org_id": org, "comment": "x", "tags": ["t".repeat(101)]}),
            400,
            "invalid_request",
        ),
        (
            json!({"org_id": org, "comment": "c".repeat(10_001)}),
            400,
            "invalid_request",
        ),
    ];
    for (body, status, code) in cases {
        let (got, err) = w.call("member_a", "log-create", body.clone()).await;
        assert_eq!(
            (got, err["error"].as_str()),
            (status, Some(code)),
            "{body}: {err}"
        );
        assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (status, err) = w.call("member_a", "no-such-function", json!({})).await;
    assert_eq!((status, err["error"].as_str()), (404, Some("not_found")));
    let res = reqwest::Client::new()
        .post(w.app.url("/functions/v1/log-create"))
        .bearer_auth(w.token("member_a"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let (logs, jobs): (i64, i64) = sqlx::query_as(
        // (Scheduled jobs may have fired meanwhile: not this request's doing.)
        "select (select count(*) from time_logs), \
                (select count(*) from private.jobs \
                  where kind not in (select kind from private.schedules))",
    )
    .fetch_one(&w.app.db.owner)
    .await
    .unwrap();
    assert_eq!((logs, jobs), (0, 0), "nothing written, nothing enqueued");
}

/// A NUL character (which PostgreSQL text cannot hold: 22021, or 22P05 in jsonb) is the
/// caller's mistake: 400 in the functions' shape, and the log keeps what it had.
#[tokio::test]
async fn nul_characters_are_400_and_change_nothing() {
    let w = World::new().await;
    let org = w.id("org_a");
    for body in [
        json!({"org_id": org, "comment": "a\u{0}b"}),
        json!({"org_id": org, "comment": "x", "tags": ["ok", "b\u{0}d"]}),
    ] {
        let (status, err) = w.call("member_a", "log-create", body.clone()).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (400, Some("invalid_request")),
            "{body}: {err}"
        );
    }
    let (_, body) = w
        .call(
            "member_a",
            "log-create",
            json!({"org_id": org, "comment": "clean"}),
        )
        .await;
    let id = id_of(&body["log"]);
    w.classified(&id).await;
    for overrides in [json!({"comment": "n\u{0}ul"}), json!({"tags": ["\u{0}"]})] {
        let (status, err) = w
            .call(
                "member_a",
                "log-finalize",
                json!({"log_id": id, "overrides": overrides}),
            )
            .await;
        assert_eq!(
            (status, err["error"].as_str()),
            (400, Some("invalid_request")),
            "{err}"
        );
    }
    let (logs, comment, status): (i64, String, String) = sqlx::query_as(
        "select (select count(*) from time_logs), comment, status::text from time_logs where id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&w.app.db.owner)
    .await
    .unwrap();
    assert_eq!((logs, comment.as_str()), (1, "clean"));
    assert_ne!(status, "finalized");
}

#[tokio::test]
async fn a_dead_classification_fails_the_log_with_the_reason() {
    let w = World::new().await;
    let (_, body) = w
        .call(
            "member_a",
            "log-create",
            json!({"org_id": w.id("org_a"), "comment": "something"}),
        )
        .await;
    let id = id_of(&body["log"]);
    w.classified(&id).await;
    // As if the log were being classified again and every attempt had failed: the job dies.
    sqlx::query("update time_logs set status = 'processing' where id = $1::uuid")
        .bind(&id)
        .execute(&w.app.db.owner)
        .await
        .unwrap();
    let job = Job {
        id: 0,
        kind: "classify_log".into(),
        payload: json!({"log_id": id}),
        org_id: None,
        attempts: 5,
        max_attempts: 5,
    };
    ClassifyLogJob::new(w.app.db.requests.clone(), Providers::rules_only(), 0.6)
        .dead(&job, "LLM timed out")
        .await;
    let rows = w
        .rest(
            "member_a",
            &format!("time_logs?id=eq.{id}&select=status,ai_extractions(status,error)"),
        )
        .await;
    assert_eq!(rows[0]["status"], "failed");
    let errors: Vec<&Value> = rows[0]["ai_extractions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "error")
        .collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["error"], "LLM timed out");
}
