//! Row-level security through HTTP on Tally's own schema: two orgs, each role; reads,
//! counts, embeds, updates and deletes never cross an org; an insert into another org is 403
//! with 42501.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fixture::{Rest, error, parts};

struct World {
    rest: Rest,
    ids: std::collections::HashMap<&'static str, Uuid>,
}

impl World {
    async fn new() -> Self {
        let rest = Rest::plain().await;
        let names = [
            "owner_a",
            "member_a",
            "viewer_a",
            "owner_b",
            "org_a",
            "org_b",
            "project_a",
            "project_b",
        ];
        let ids: std::collections::HashMap<&'static str, Uuid> =
            names.iter().map(|n| (*n, Uuid::now_v7())).collect();
        let sql = format!(
            "insert into auth.users (id, email) values ('{oa}', 'oa@a.test'), ('{ma}', 'ma@a.test'), ('{va}', 'va@a.test'), ('{ob}', 'ob@b.test');
             insert into organizations (id, name, slug) values ('{a}', 'A', 'a'), ('{b}', 'B', 'b');
             insert into memberships (org_id, user_id, role) values ('{a}', '{oa}', 'owner'), ('{a}', '{ma}', 'member'),
               ('{a}', '{va}', 'viewer'), ('{b}', '{ob}', 'owner');
             insert into projects (id, org_id, name) values ('{pa}', '{a}', 'Apollo'), ('{pb}', '{b}', 'Borealis');
             insert into time_logs (org_id, user_id, project_id, comment, duration_minutes, status)
               select '{a}', '{ma}', '{pa}', 'a-log ' || g, 30, 'ready' from generate_series(1, 3) g;
             insert into time_logs (org_id, user_id, project_id, comment, duration_minutes, status)
               values ('{b}', '{ob}', '{pb}', 'b-secret', 60, 'ready');",
            oa = ids["owner_a"], ma = ids["member_a"], va = ids["viewer_a"], ob = ids["owner_b"],
            a = ids["org_a"], b = ids["org_b"], pa = ids["project_a"], pb = ids["project_b"],
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&rest.app.db.owner)
            .await
            .unwrap();
        Self { rest, ids }
    }

    fn token(&self, who: &str) -> String {
        self.rest.app.user_token(self.ids[who])
    }

    async fn get(&self, who: &str, path: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        let token = self.token(who);
        parts(
            self.rest
                .as_token(Method::GET, path, &token)
                .header("prefer", "count=exact")
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}

#[tokio::test]
async fn reads_counts_and_embeds_stay_in_the_org() {
    let w = World::new().await;
    let (status, headers, body) = w.get("owner_b", "/time_logs?select=comment").await;
    assert_eq!((status, body), (200, json!([{"comment": "b-secret"}])));
    assert_eq!(headers["content-range"], "0-0/1");
    let (_, headers, body) = w
        .get(
            "member_a",
            "/time_logs?select=comment,projects(name)&order=comment",
        )
        .await;
    assert_eq!(headers["content-range"], "0-2/3");
    assert_eq!(
        body[0],
        json!({"comment": "a-log 1", "projects": {"name": "Apollo"}})
    );
    // A viewer sees no log, not even a count; the org's projects embed no logs for them.
    let (_, headers, body) = w.get("viewer_a", "/time_logs").await;
    assert_eq!(
        (headers["content-range"].to_str().unwrap(), body),
        ("*/0", json!([]))
    );
    let (_, _, body) = w
        .get("viewer_a", "/projects?select=name,time_logs(comment)")
        .await;
    assert_eq!(body, json!([{"name": "Apollo", "time_logs": []}]));
    // The other org's project and its logs are invisible, embedded or not.
    let (_, _, body) = w
        .get(
            "owner_b",
            &format!("/projects?id=eq.{}&select=name", w.ids["project_a"]),
        )
        .await;
    assert_eq!(body, json!([]));
    // Anon: 401 (no privileges on the table).
    let res = w.rest.req(Method::GET, "/time_logs").send().await.unwrap();
    assert_eq!(error(res).await, (401, "42501".into()));
}

#[tokio::test]
async fn writes_never_cross_the_org() {
    let w = World::new().await;
    let token = w.token("owner_b");
    // An insert into org A: 403 with 42501 (row-level security).
    let body = json!({"org_id": w.ids["org_a"], "user_id": w.ids["owner_b"], "comment": "sneaky"});
    let res = w
        .rest
        .as_token(Method::POST, "/projects", &token)
        .json(&json!({"org_id": w.ids["org_a"], "name": "X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error(res).await, (403, "42501".into()));
    // A log in org A (into its project, too) is refused by RLS as PostgREST reports it, even
    // though the time-log rules (a BEFORE trigger) would refuse it as well.
    let into_project = json!({"org_id": w.ids["org_a"], "user_id": w.ids["owner_b"],
        "project_id": w.ids["project_a"], "comment": "sneaky"});
    for body in [&body, &into_project] {
        let res = w
            .rest
            .as_token(Method::POST, "/time_logs", &token)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(error(res).await, (403, "42501".into()), "{body}");
    }
    // A member of A writing a log as someone outside A: RLS again.
    let res = w
        .rest
        .as_token(Method::POST, "/time_logs", &w.token("member_a"))
        .json(&json!({"org_id": w.ids["org_a"], "user_id": w.ids["owner_b"], "comment": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error(res).await, (403, "42501".into()));
    // An owner of A logging for someone outside A passes RLS: the rule answers.
    let res = w
        .rest
        .as_token(Method::POST, "/time_logs", &w.token("owner_a"))
        .json(&json!({"org_id": w.ids["org_a"], "user_id": w.ids["owner_b"], "comment": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error(res).await, (409, "23503".into()));
    // Updates and deletes of org A's rows touch nothing.
    let res = w
        .rest
        .as_token(
            Method::PATCH,
            &format!("/projects?org_id=eq.{}", w.ids["org_a"]),
            &token,
        )
        .header("prefer", "return=representation")
        .json(&json!({"name": "Hacked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(parts(res).await.2, json!([]));
    let res = w
        .rest
        .as_token(Method::DELETE, "/time_logs", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let left: i64 =
        sqlx::query_scalar("select count(*) from time_logs where comment like 'a-log%'")
            .fetch_one(&w.rest.app.db.owner)
            .await
            .unwrap();
    assert_eq!(left, 3);
    let name: String = sqlx::query_scalar("select name from projects where name = 'Apollo'")
        .fetch_one(&w.rest.app.db.owner)
        .await
        .unwrap();
    assert_eq!(name, "Apollo");
    // A member writes their own log through REST, and it is pending for the pipeline.
    let token = w.token("member_a");
    let res = w.rest.as_token(Method::POST, "/time_logs?select=comment,status", &token)
        .header("prefer", "return=representation")
        .json(&json!({"org_id": w.ids["org_a"], "user_id": w.ids["member_a"], "comment": "mine", "duration_minutes": 15}))
        .send().await.unwrap();
    assert_eq!(
        parts(res).await.2,
        json!([{"comment": "mine", "status": "pending"}])
    );
}

/// A signed-out session's access token is refused by /rest/v1 too.
#[tokio::test]
async fn a_revoked_session_token_is_refused() {
    let rest = Rest::plain().await;
    let http = reqwest::Client::new();
    let anon = rest.app.keys.anon_key();
    let session: Value = http
        .post(rest.app.url("/auth/v1/signup"))
        .header("apikey", &anon)
        .json(&json!({"email": "revoked@example.com", "password": "long-enough-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = session["access_token"].as_str().unwrap();
    let res = rest
        .as_token(Method::GET, "/profiles?select=email", token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        parts(res).await.2,
        json!([{"email": "revoked@example.com"}])
    );
    let res = http
        .post(rest.app.url("/auth/v1/logout"))
        .header("apikey", &anon)
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = rest
        .as_token(Method::GET, "/profiles", token)
        .send()
        .await
        .unwrap();
    assert_eq!(error(res).await, (401, "PGRST303".into()));
}
