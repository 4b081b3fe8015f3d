//! Two organizations with a person in each role, projects, and a client for the functions.

use std::{collections::HashMap, time::Duration};

use reqwest::Method;
use serde_json::Value;
use tally_testkit::TestApp;
use uuid::Uuid;

pub struct World {
    pub app: TestApp,
    pub ids: HashMap<&'static str, Uuid>,
    http: reqwest::Client,
}

impl World {
    pub async fn new() -> Self {
        Self::with_app(TestApp::spawn().await.unwrap()).await
    }

    /// The fixture on an app started by the caller.
    pub async fn with_app(app: TestApp) -> Self {
        let names = [
            "owner_a",
            "admin_a",
            "manager_a",
            "member_a",
            "viewer_a",
            "owner_b",
            "org_a",
            "org_b",
            "apollo",
            "tools",
            "borealis",
        ];
        let ids: HashMap<&'static str, Uuid> = names.iter().map(|n| (*n, Uuid::now_v7())).collect();
        let sql = format!(
            "insert into auth.users (id, email) values ('{oa}', 'oa@a.test'), ('{ad}', 'ad@a.test'),
               ('{mg}', 'mg@a.test'), ('{ma}', 'ma@a.test'), ('{va}', 'va@a.test'), ('{ob}', 'ob@b.test');
             insert into organizations (id, name, slug, timezone) values ('{a}', 'A', 'a', 'Europe/Berlin'),
               ('{b}', 'B', 'b', 'UTC');
             insert into memberships (org_id, user_id, role) values ('{a}', '{oa}', 'owner'),
               ('{a}', '{ad}', 'admin'), ('{a}', '{mg}', 'manager'), ('{a}', '{ma}', 'member'),
               ('{a}', '{va}', 'viewer'), ('{b}', '{ob}', 'owner');
             insert into projects (id, org_id, name, code, billable) values
               ('{ap}', '{a}', 'Apollo Redesign', 'APL', true), ('{tl}', '{a}', 'Internal Tools', null, false),
               ('{bo}', '{b}', 'Borealis', 'BOR', true);",
            oa = ids["owner_a"], ad = ids["admin_a"], mg = ids["manager_a"], ma = ids["member_a"],
            va = ids["viewer_a"], ob = ids["owner_b"], a = ids["org_a"], b = ids["org_b"],
            ap = ids["apollo"], tl = ids["tools"], bo = ids["borealis"],
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&app.db.owner)
            .await
            .unwrap();
        Self {
            app,
            ids,
            http: reqwest::Client::new(),
        }
    }

    pub fn id(&self, name: &str) -> Uuid {
        self.ids[name]
    }

    /// A user's access token, as the auth service signs it.
    pub fn token(&self, who: &str) -> String {
        self.app.user_token(self.ids[who])
    }

    /// Invokes a function like supabase-js: apikey, bearer token, JSON body.
    pub async fn invoke(&self, name: &str, token: &str, body: Value) -> (u16, Value) {
        let res = self
            .http
            .request(Method::POST, self.app.url(&format!("/functions/v1/{name}")))
            .header("apikey", self.app.keys.anon_key())
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Invokes a function as a person of the fixture.
    pub async fn call(&self, who: &str, name: &str, body: Value) -> (u16, Value) {
        self.invoke(name, &self.token(who), body).await
    }

    /// Reads through /rest/v1 as `who`.
    pub async fn rest(&self, who: &str, path: &str) -> Value {
        self.http
            .get(self.app.url(&format!("/rest/v1/{path}")))
            .header("apikey", self.app.keys.anon_key())
            .bearer_auth(self.token(who))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until the worker has classified log `id` (its status left `pending`), for up
    /// to 30 s (a loaded CI machine runs two test processes beside the worker).
    pub async fn classified(&self, id: &str) -> Value {
        for _ in 0..300 {
            let (status,): (String,) =
                sqlx::query_as("select status::text from time_logs where id = $1::uuid")
                    .bind(id)
                    .fetch_one(&self.app.db.owner)
                    .await
                    .unwrap();
            if status != "pending" {
                let row: Value =
                    sqlx::query_scalar("select to_jsonb(l) from time_logs l where id = $1::uuid")
                        .bind(id)
                        .fetch_one(&self.app.db.owner)
                        .await
                        .unwrap();
                return row;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("log {id} was not classified within 30 s");
    }

    /// The id of a default vocabulary term.
    pub async fn term(&self, table: &str, key: &str) -> Uuid {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select id from {table} where org_id is null and key = $1"
        )))
        .bind(key)
        .fetch_one(&self.app.db.owner)
        .await
        .unwrap()
    }
}
