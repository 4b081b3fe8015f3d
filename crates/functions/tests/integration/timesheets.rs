//! Timesheets: the approval flow by role, and the lock an approved period or the org's lock
//! date puts on logs through every door, with owners' and admins' overrides audited.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    integrations::{send_generic, until, verify_emails},
    world::World,
};

/// Teams: manager_a leads "Core" (with member_a); `mgr2`, another manager, leads "Ops"
/// (without member_a). Returns mgr2's id.
async fn teams(w: &World) -> Uuid {
    let mgr2 = Uuid::now_v7();
    let (core, ops) = (Uuid::now_v7(), Uuid::now_v7());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "insert into auth.users (id, email) values ('{mgr2}', 'mgr2@a.test');
         insert into memberships (org_id, user_id, role) values ('{a}', '{mgr2}', 'manager');
         insert into teams (id, org_id, name) values ('{core}', '{a}', 'Core'), ('{ops}', '{a}', 'Ops');
         insert into team_members (org_id, team_id, user_id, is_lead) values
           ('{a}', '{core}', '{mg}', true), ('{a}', '{core}', '{ma}', false), ('{a}', '{ops}', '{mgr2}', true);",
        a = w.id("org_a"),
        mg = w.id("manager_a"),
        ma = w.id("member_a"),
    )))
    .execute(&w.app.db.owner)
    .await
    .unwrap();
    mgr2
}

/// A REST request as `token` (PATCH, POST or DELETE with a JSON body); status and body.
async fn rest(
    w: &World,
    method: reqwest::Method,
    token: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, w.app.url(&format!("/rest/v1/{path}")))
        .header("apikey", w.app.keys.anon_key())
        .header("Prefer", "return=representation")
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A ready log of `who` at `start` for an hour, written as the database owner.
async fn log_at(w: &World, who: &str, start: &str) -> String {
    sqlx::query_scalar::<_, Uuid>(
        "insert into time_logs (org_id, user_id, comment, started_at, ended_at, status) \
         values ($1, $2, 'design review', $3::timestamptz, $3::timestamptz + interval '1 hour', 'ready') \
         returning id",
    )
    .bind(w.id("org_a"))
    .bind(w.id(who))
    .bind(start)
    .fetch_one(&w.app.db.owner)
    .await
    .unwrap()
    .to_string()
}

/// member_a submits the period holding `date`; status and body.
async fn submit(w: &World, date: &str) -> (u16, Value) {
    w.call(
        "member_a",
        "timesheet-submit",
        json!({"org_id": w.id("org_a"), "date": date}),
    )
    .await
}

/// A timesheet's (period, first day, last day).
fn span(sheet: &Value) -> (Option<&str>, Option<&str>, Option<&str>) {
    (
        sheet["period"].as_str(),
        sheet["period_start"].as_str(),
        sheet["period_end"].as_str(),
    )
}

/// PATCHes `path` through REST as `token`; status and body.
async fn patch(w: &World, token: &str, path: &str, body: Value) -> (u16, Value) {
    rest(w, reqwest::Method::PATCH, token, path, Some(body)).await
}

/// Submits member_a's week of 2 November 2026 and has manager_a approve it; its id.
async fn approved_week(w: &World) -> String {
    let (status, body) = submit(w, "2026-11-04").await;
    assert_eq!(status, 200, "{body}");
    let id = body["timesheet"]["id"].as_str().unwrap().to_owned();
    let (status, body) = w
        .call(
            "manager_a",
            "timesheet-review",
            json!({"timesheet_id": id, "decision": "approve"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    id
}

#[tokio::test]
async fn timesheets_are_submitted_and_decided_by_whom_the_roles_allow() {
    let w = World::new().await;
    let mgr2 = teams(&w).await;
    sqlx::query(
        "insert into integrations (org_id, provider, name, config) values ($1, 'generic', 'hooks', $2)",
    )
    .bind(w.id("org_a"))
    .bind(json!({"outbound": {"url": "https://hooks.invalid/t", "events":
        ["timesheet.submitted", "timesheet.approved", "timesheet.rejected", "timesheet.reopened"]}}))
    .execute(&w.app.db.owner)
    .await
    .unwrap();
    let org = w.id("org_a");

    // A viewer has no timesheet to submit.
    let (status, _) = w
        .call("viewer_a", "timesheet-submit", json!({"org_id": org}))
        .await;
    assert_eq!(status, 403);

    // The member submits the week holding a Wednesday: the org's week, Monday to Sunday.
    let (status, body) = submit(&w, "2026-11-04").await;
    assert_eq!(status, 200, "{body}");
    let sheet = &body["timesheet"];
    assert_eq!(
        span(sheet),
        (Some("week"), Some("2026-11-02"), Some("2026-11-08"))
    );
    assert_eq!(sheet["status"], "submitted");
    assert!(sheet["submitted_at"].is_string());
    let id = sheet["id"].as_str().unwrap().to_owned();
    let review = |who: &'static str, decision: &'static str, reason: Option<&'static str>| {
        w.call(
            who,
            "timesheet-review",
            json!({"timesheet_id": id, "decision": decision, "reason": reason}),
        )
    };

    // Who may not decide: the member on their own, a manager of another team, a viewer,
    // another org. Those who cannot see it are told it does not exist.
    let (status, body) = review("member_a", "approve", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let (status, _) = w
        .invoke(
            "timesheet-review",
            &w.app.user_token(mgr2),
            json!({"timesheet_id": id, "decision": "approve"}),
        )
        .await;
    assert_eq!(status, 404, "a manager of another team");
    assert_eq!(review("viewer_a", "approve", None).await.0, 404);
    assert_eq!(review("owner_b", "approve", None).await.0, 404);
    // Through REST the same rules hold.
    let (status, body) = patch(
        &w,
        &w.token("member_a"),
        &format!("timesheet_periods?id=eq.{id}"),
        json!({"status": "approved"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("PT403")),
        "{body}"
    );

    // The team's manager rejects (a reason is needed), the member submits again, it is approved.
    assert_eq!(review("manager_a", "reject", None).await.0, 400);
    let (status, body) = review("manager_a", "reject", Some("Tuesday is missing")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["timesheet"]["status"].as_str(),
            body["timesheet"]["reason"].as_str()
        ),
        (Some("rejected"), Some("Tuesday is missing"))
    );
    let (status, body) = submit(&w, "2026-11-08").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["timesheet"]["id"], id.as_str(), "the same period");
    assert_eq!(body["timesheet"]["reason"], Value::Null);
    let (status, body) = review("manager_a", "approve", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["timesheet"]["status"], "approved");
    assert_eq!(
        body["timesheet"]["decided_by"],
        w.id("manager_a").to_string().as_str()
    );

    // An approved timesheet is not submitted again; the manager cannot reopen it, an admin can.
    let (status, body) = submit(&w, "2026-11-04").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    assert_eq!(review("manager_a", "reopen", None).await.0, 403);
    let (status, body) = review("admin_a", "reopen", None).await;
    assert_eq!(
        (status, body["timesheet"]["status"].as_str()),
        (200, Some("open"))
    );

    // Each step is an event and an audited change.
    let events: Vec<String> = sqlx::query_scalar(
        "select event from webhook_deliveries where payload #>> '{timesheet,id}' = $1 order by created_at, id",
    )
    .bind(&id)
    .fetch_all(&w.app.db.owner)
    .await
    .unwrap();
    assert_eq!(
        events,
        [
            "timesheet.submitted",
            "timesheet.rejected",
            "timesheet.submitted",
            "timesheet.approved",
            "timesheet.reopened"
        ]
    );
    let audited: Vec<(String, Option<Uuid>)> = sqlx::query_as(
        "select action, actor_id from audit_log where table_name = 'timesheet_periods' \
         and row_id = $1::uuid order by created_at, id",
    )
    .bind(&id)
    .fetch_all(&w.app.db.owner)
    .await
    .unwrap();
    let actions: Vec<&str> = audited.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["insert", "update", "update", "update", "update"]);
    assert_eq!(audited[4].1, Some(w.id("admin_a")));

    // An org that closes by the month: the period is the calendar month.
    sqlx::query("update organizations set settings = settings || '{\"timesheet_period\": \"month\"}' where id = $1")
        .bind(org)
        .execute(&w.app.db.owner)
        .await
        .unwrap();
    let (status, body) = submit(&w, "2026-12-15").await;
    assert_eq!(status, 200, "{body}");
    let sheet = &body["timesheet"];
    assert_eq!(
        span(sheet),
        (Some("month"), Some("2026-12-01"), Some("2026-12-31"))
    );
}

#[tokio::test]
async fn writes_into_closed_periods_are_refused_at_every_door_and_overrides_are_audited() {
    let w = World::new().await;
    teams(&w).await;
    verify_emails(&w).await;
    let org = w.id("org_a");
    let log = log_at(&w, "member_a", "2026-11-03T09:00:00Z").await;
    let sheet = approved_week(&w).await;
    let member = w.token("member_a");

    // REST: update, delete and a new log in the approved week are 423 with PostgREST's shape.
    let (status, body) = patch(
        &w,
        &member,
        &format!("time_logs?id=eq.{log}"),
        json!({"comment": "changed my mind"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (423, Some("PT423")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("is approved"),
        "{body}"
    );
    assert!(body["hint"].is_string(), "{body}");
    let (status, _) = rest(
        &w,
        reqwest::Method::DELETE,
        &member,
        &format!("time_logs?id=eq.{log}"),
        None,
    )
    .await;
    assert_eq!(status, 423);
    let (status, _) = rest(
        &w,
        reqwest::Method::POST,
        &member,
        "time_logs",
        Some(
            json!({"org_id": org, "user_id": w.id("member_a"), "comment": "late entry",
                    "started_at": "2026-11-05T10:00:00Z", "duration_minutes": 30}),
        ),
    )
    .await;
    assert_eq!(status, 423);

    // Functions: log-finalize and log-create.
    let (status, body) = w
        .call(
            "member_a",
            "log-finalize",
            json!({"log_id": log, "overrides": {"duration_minutes": 45}}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (423, Some("locked")),
        "{body}"
    );
    let (status, _) = w
        .call(
            "member_a",
            "log-create",
            json!({"org_id": org, "comment": "forgot this", "started_at": "2026-11-06T08:00:00Z"}),
        )
        .await;
    assert_eq!(status, 423);

    // Sync-push: an update and an offline insert are rejected with code `locked`.
    let version = sqlx::query_scalar::<_, i32>("select version from time_logs where id = $1::uuid")
        .bind(&log)
        .fetch_one(&w.app.db.owner)
        .await
        .unwrap();
    let (status, body) = w
        .call(
            "member_a",
            "sync-push",
            json!({"org_id": org, "mutations": [
                {"mutation_id": Uuid::now_v7(), "table": "time_logs", "op": "upsert", "id": log,
                 "base_version": version, "values": {"comment": "offline edit"}},
                {"mutation_id": Uuid::now_v7(), "table": "time_logs", "op": "upsert", "id": Uuid::now_v7(),
                 "values": {"comment": "offline entry", "started_at": "2026-11-07T09:00:00Z", "duration_minutes": 20}},
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for result in body["results"].as_array().unwrap() {
        assert_eq!(result["status"], "rejected", "{body}");
        assert_eq!(result["error"]["code"], "locked", "{body}");
    }

    // An integration's draft for that week: the event is dead with the reason, no log made.
    let hook_id = send_generic(
        &w,
        &json!({"id": "evt-lock", "type": "time_entry", "entry_id": "e-1",
            "user_email": "ma@a.test", "comment": "Imported pairing",
            "started_at": "2026-11-04T13:00:00Z", "duration_minutes": 50}),
    )
    .await;
    until(
        &w,
        "the locked draft's event is dead",
        &format!(
            "select count(*) = 1 from external_events where integration_id = '{hook_id}' \
             and status = 'dead' and error like '%locked%'"
        ),
    )
    .await;
    let drafts: i64 = sqlx::query_scalar("select count(*) from time_logs where source = 'api'")
        .fetch_one(&w.app.db.owner)
        .await
        .unwrap();
    assert_eq!(drafts, 0);

    // The log is as it was.
    let comment: String = sqlx::query_scalar("select comment from time_logs where id = $1::uuid")
        .bind(&log)
        .fetch_one(&w.app.db.owner)
        .await
        .unwrap();
    assert_eq!(comment, "design review");

    // An admin overrides: the write goes through and is audited as an override.
    let (status, body) = patch(
        &w,
        &w.token("admin_a"),
        &format!("time_logs?id=eq.{log}"),
        json!({"comment": "corrected by the admin"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let trail: Vec<(String, Value)> = sqlx::query_as(
        "select action, details from audit_log where row_id = $1::uuid and actor_id = $2 \
         order by created_at, id",
    )
    .bind(&log)
    .bind(w.id("admin_a"))
    .fetch_all(&w.app.db.owner)
    .await
    .unwrap();
    assert_eq!(trail.len(), 2, "{trail:?}");
    assert_eq!(trail[0].0, "override");
    assert_eq!(trail[0].1["operation"], "update");
    assert!(
        trail[0].1["locked"]
            .as_str()
            .unwrap()
            .contains("2026-11-02")
    );
    assert_eq!(trail[1].0, "update");
    assert_eq!(trail[1].1["after"]["comment"], "corrected by the admin");

    // The org's lock date closes every day up to it, for managers too.
    let manager_log = log_at(&w, "manager_a", "2026-10-30T09:00:00Z").await;
    let open_log = log_at(&w, "member_a", "2026-11-10T09:00:00Z").await;
    let (status, _) = patch(
        &w,
        &w.token("manager_a"),
        &format!("organizations?id=eq.{org}"),
        json!({"lock_date": "2026-10-31"}),
    )
    .await;
    assert_eq!(status, 200, "a manager sees no row to change");
    let (status, body) = patch(
        &w,
        &w.token("owner_a"),
        &format!("organizations?id=eq.{org}"),
        json!({"lock_date": "2026-10-31"}),
    )
    .await;
    assert_eq!(
        (status, body[0]["lock_date"].as_str()),
        (200, Some("2026-10-31")),
        "{body}"
    );
    let (status, body) = patch(
        &w,
        &w.token("manager_a"),
        &format!("time_logs?id=eq.{manager_log}"),
        json!({"comment": "moved"}),
    )
    .await;
    assert_eq!(status, 423, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("closed up to 2026-10-31")
    );
    let (status, _) = patch(
        &w,
        &member,
        &format!("time_logs?id=eq.{open_log}"),
        json!({"comment": "still open"}),
    )
    .await;
    assert_eq!(status, 200);
    // Moving an open log into a closed period is refused too.
    let (status, _) = patch(
        &w,
        &member,
        &format!("time_logs?id=eq.{open_log}"),
        json!({"started_at": "2026-11-03T09:00:00Z", "ended_at": "2026-11-03T10:00:00Z"}),
    )
    .await;
    assert_eq!(status, 423);

    // Reopened, the week is the member's to change again.
    let (status, _) = w
        .call(
            "admin_a",
            "timesheet-review",
            json!({"timesheet_id": sheet, "decision": "reopen"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = patch(
        &w,
        &member,
        &format!("time_logs?id=eq.{log}"),
        json!({"comment": "one more detail"}),
    )
    .await;
    assert_eq!(status, 200);

    // The audit trail: the org's owners and admins read it; members and other orgs read none.
    let of_a = format!("audit_log?select=id,action&org_id=eq.{org}");
    let overrides = w
        .rest("admin_a", &format!("{of_a}&action=eq.override"))
        .await;
    assert_eq!(overrides.as_array().map(Vec::len), Some(1), "{overrides}");
    for who in ["member_a", "manager_a", "viewer_a", "owner_b"] {
        assert_eq!(w.rest(who, &of_a).await, json!([]), "{who}");
    }
}
