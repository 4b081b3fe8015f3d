//! A small world for policy tests: org A with one person per role, two teams (the manager
//! leads T1, which holds member m1; m2 is in T2), and org B with an outsider; rows of every
//! table in both orgs.

use std::collections::HashMap;

use serde_json::json;
use sqlx::{PgPool, Postgres, Transaction};
use tally_core::{Claims, RequestContext};
use uuid::Uuid;

/// The actors of the matrix, in column order.
pub const ACTORS: [&str; 7] = [
    "owner", "admin", "manager", "member", "viewer", "other", "anon",
];

/// Named ids of the fixture's rows and people.
pub struct Fixture {
    pub ids: HashMap<&'static str, Uuid>,
}

const NAMES: &[&str] = &[
    "owner",
    "admin",
    "manager",
    "member",
    "m2",
    "viewer",
    "other",
    "newbie",
    "org_a",
    "org_b",
    "dept_a",
    "team_1",
    "team_2",
    "tm_lead",
    "tm_m1",
    "tm_m2",
    "project_a",
    "project_b",
    "activity_a",
    "work_mode_a",
    "category_a",
    "log_m1",
    "log_m2",
    "log_mgr",
    "log_b",
    "extraction_m1",
    "embedding_m1",
    "attachment_m1",
    "summary_m1",
    "summary_m2",
    "risk_m1",
    "risk_m2",
    "integration_a",
    "event_a",
    "identity_a",
    "delivery_a",
    "audit_a",
    "ts_m1",
    "ts_m2",
    "ts_mgr",
    "token_m1",
];

const SETUP: &str = r#"
insert into auth.users (id, email) values
  ({owner}, 'owner@a.test'), ({admin}, 'admin@a.test'), ({manager}, 'manager@a.test'),
  ({member}, 'member@a.test'), ({m2}, 'm2@a.test'), ({viewer}, 'viewer@a.test'),
  ({other}, 'other@b.test'), ({newbie}, 'newbie@a.test');
insert into organizations (id, name, slug) values ({org_a}, 'Org A', 'org-a'), ({org_b}, 'Org B', 'org-b');
insert into departments (id, org_id, name) values ({dept_a}, {org_a}, 'Engineering');
insert into memberships (org_id, user_id, role) values
  ({org_a}, {owner}, 'owner'), ({org_a}, {admin}, 'admin'), ({org_a}, {manager}, 'manager'),
  ({org_a}, {member}, 'member'), ({org_a}, {m2}, 'member'), ({org_a}, {viewer}, 'viewer'),
  ({org_b}, {other}, 'owner');
insert into teams (id, org_id, department_id, name) values
  ({team_1}, {org_a}, {dept_a}, 'T1'), ({team_2}, {org_a}, null, 'T2');
insert into team_members (id, org_id, team_id, user_id, is_lead) values
  ({tm_lead}, {org_a}, {team_1}, {manager}, true), ({tm_m1}, {org_a}, {team_1}, {member}, false),
  ({tm_m2}, {org_a}, {team_2}, {m2}, false);
insert into projects (id, org_id, name, code) values
  ({project_a}, {org_a}, 'Apollo', 'APO'), ({project_b}, {org_b}, 'Borealis', 'BOR');
insert into activity_types (id, org_id, key, name) values ({activity_a}, {org_a}, 'custom_a', 'Custom A');
insert into work_modes (id, org_id, key, name) values ({work_mode_a}, {org_a}, 'custom_a', 'Custom A');
insert into task_categories (id, org_id, key, name) values ({category_a}, {org_a}, 'custom_a', 'Custom A');
insert into time_logs (id, org_id, user_id, project_id, comment, started_at, ended_at, status) values
  ({log_m1}, {org_a}, {member}, {project_a}, 'fixed the login bug', '2026-11-02 09:00Z', '2026-11-02 10:30Z', 'ready'),
  ({log_m2}, {org_a}, {m2}, null, 'wrote the quarterly report', '2026-11-02 11:00Z', '2026-11-02 12:00Z', 'ready'),
  ({log_mgr}, {org_a}, {manager}, null, 'sprint planning', '2026-11-02 13:00Z', '2026-11-02 14:00Z', 'ready'),
  ({log_b}, {org_b}, {other}, {project_b}, 'secret client work', '2026-11-02 09:00Z', '2026-11-02 17:00Z', 'ready');
insert into ai_extractions (id, org_id, user_id, time_log_id, provider, status) values
  ({extraction_m1}, {org_a}, {member}, {log_m1}, 'builtin', 'ok');
insert into time_log_embeddings (id, org_id, user_id, time_log_id, model, embedding, content_hash) values
  ({embedding_m1}, {org_a}, {member}, {log_m1}, 'test', array_fill(0.1, array[384])::extensions.vector, 'h');
insert into attachments (id, org_id, user_id, time_log_id, kind, bucket, object_path, status) values
  ({attachment_m1}, {org_a}, {member}, {log_m1}, 'voice', 'voices', 'org-a/log/v.webm', 'uploaded');
insert into user_day_summaries (id, org_id, user_id, day, total_minutes) values
  ({summary_m1}, {org_a}, {member}, '2026-11-02', 90), ({summary_m2}, {org_a}, {m2}, '2026-11-02', 60);
insert into risk_scores (id, org_id, user_id, week_start, burnout_score) values
  ({risk_m1}, {org_a}, {member}, '2026-11-02', 20), ({risk_m2}, {org_a}, {m2}, '2026-11-02', 70);
insert into integrations (id, org_id, provider, name) values ({integration_a}, {org_a}, 'slack', 'Slack');
insert into private.integration_secrets (integration_id, sealed) values ({integration_a}, '\x00ff'::bytea);
insert into external_events (id, org_id, integration_id, external_id, payload) values
  ({event_a}, {org_a}, {integration_a}, 'ev-1', '{}');
insert into integration_identities (id, org_id, integration_id, external_id, user_id) values
  ({identity_a}, {org_a}, {integration_a}, 'U-MEMBER', {member});
insert into webhook_deliveries (id, org_id, integration_id, event, payload) values
  ({delivery_a}, {org_a}, {integration_a}, 'log.created', '{}');
insert into audit_log (id, org_id, actor_id, action) values ({audit_a}, {org_a}, {owner}, 'test');
insert into timesheet_periods (id, org_id, user_id, period_start, status) values
  ({ts_m1}, {org_a}, {member}, '2026-11-02', 'submitted'), ({ts_m2}, {org_a}, {m2}, '2026-11-02', 'submitted'),
  ({ts_mgr}, {org_a}, {manager}, '2026-11-02', 'submitted');
insert into api_tokens (id, user_id, name, scopes, prefix) values
  ({token_m1}, {member}, 'cli', '{logs:read}', 'tally_pat_abcdef');
"#;

impl Fixture {
    /// Writes the world through the owner (superuser) connection.
    pub async fn create(owner: &PgPool) -> anyhow::Result<Self> {
        let ids = NAMES.iter().map(|name| (*name, Uuid::now_v7())).collect();
        let fixture = Self { ids };
        sqlx::raw_sql(sqlx::AssertSqlSafe(fixture.render(SETUP, None)))
            .execute(owner)
            .await?;
        Ok(fixture)
    }

    /// An id by name.
    pub fn id(&self, name: &str) -> Uuid {
        self.ids[name]
    }

    /// Replaces `{name}` with the quoted id, `{uid}` with the actor's id (or null) and
    /// `{new}` with a fresh id.
    pub fn render(&self, template: &str, actor: Option<Uuid>) -> String {
        let mut sql = template.to_owned();
        for (name, id) in &self.ids {
            sql = sql.replace(&format!("{{{name}}}"), &format!("'{id}'"));
        }
        let uid = actor.map_or_else(|| "null".to_owned(), |id| format!("'{id}'"));
        sql = sql.replace("{uid}", &uid);
        while sql.contains("{new}") {
            sql = sql.replacen("{new}", &format!("'{}'", Uuid::now_v7()), 1);
        }
        while sql.contains("{slug}") {
            sql = sql.replacen("{slug}", &format!("s{}", Uuid::new_v4().simple()), 1);
        }
        sql
    }

    /// The actor's user id (`None` for anon).
    pub fn actor_id(&self, actor: &str) -> Option<Uuid> {
        (actor != "anon").then(|| self.id(actor))
    }

    /// A transaction as the actor, through the per-request transaction code.
    pub async fn begin_as(
        &self,
        pool: &PgPool,
        actor: &str,
    ) -> anyhow::Result<Transaction<'static, Postgres>> {
        Ok(context_for(self.actor_id(actor)).begin(pool).await?)
    }
}

/// The request context of a signed-in user, or of anon.
pub fn context_for(user: Option<Uuid>) -> RequestContext {
    let claims = match user {
        Some(id) => json!({"sub": id.to_string(), "role": "authenticated", "aud": "authenticated"}),
        None => json!({"role": "anon"}),
    };
    let serde_json::Value::Object(map) = claims else {
        unreachable!("a JSON object literal")
    };
    RequestContext::from_claims(Claims(map)).expect("an API role")
}

/// Drops the app's database under the running server (its owner pool closed first), as when
/// the database goes away.
pub async fn drop_database(app: &tally_testkit::TestApp) -> anyhow::Result<()> {
    let name: String = sqlx::query_scalar("select current_database()::text")
        .fetch_one(&app.db.owner)
        .await?;
    app.db.owner.close().await;
    let admin_url = app.db.owner_url().replace(&format!("/{name}"), "/postgres");
    let admin = PgPool::connect(&admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop database \"{name}\" with (force)"
    )))
    .execute(&admin)
    .await?;
    Ok(())
}
