//! The people and orgs most tests need: org A with a person in each role (the manager leads a
//! team with member_a), org B with its owner, and a time log each of member_a, member2_a and
//! owner_b.

use std::collections::HashMap;

use uuid::Uuid;

use crate::TestApp;

/// The fixture's names, each given a fresh id.
const NAMES: [&str; 13] = [
    "owner_a",
    "admin_a",
    "manager_a",
    "member_a",
    "member2_a",
    "viewer_a",
    "owner_b",
    "org_a",
    "org_b",
    "team",
    "log_ma",
    "log_m2",
    "log_b",
];

/// The loaded fixture: its ids by name.
pub struct Fixture {
    ids: HashMap<&'static str, Uuid>,
}

impl Fixture {
    /// Loads the fixture into the app's database (as its owner, behind the API's back).
    pub async fn load(app: &TestApp) -> anyhow::Result<Self> {
        let ids: HashMap<&'static str, Uuid> = NAMES.iter().map(|n| (*n, Uuid::now_v7())).collect();
        let sql = format!(
            "insert into auth.users (id, email) values ('{oa}', 'oa@a.test'), ('{ad}', 'ad@a.test'),
               ('{mg}', 'mg@a.test'), ('{ma}', 'ma@a.test'), ('{m2}', 'm2@a.test'), ('{va}', 'va@a.test'),
               ('{ob}', 'ob@b.test');
             insert into organizations (id, name, slug) values ('{a}', 'A', 'a'), ('{b}', 'B', 'b');
             insert into memberships (org_id, user_id, role) values ('{a}', '{oa}', 'owner'),
               ('{a}', '{ad}', 'admin'), ('{a}', '{mg}', 'manager'), ('{a}', '{ma}', 'member'),
               ('{a}', '{m2}', 'member'), ('{a}', '{va}', 'viewer'), ('{b}', '{ob}', 'owner');
             insert into teams (id, org_id, name) values ('{t}', '{a}', 'Web');
             insert into team_members (org_id, team_id, user_id, is_lead) values
               ('{a}', '{t}', '{mg}', true), ('{a}', '{t}', '{ma}', false);
             insert into time_logs (id, org_id, user_id, comment, duration_minutes, status) values
               ('{lma}', '{a}', '{ma}', 'standup', 15, 'ready'),
               ('{lm2}', '{a}', '{m2}', 'review', 30, 'ready'),
               ('{lb}', '{b}', '{ob}', 'planning', 60, 'ready');",
            oa = ids["owner_a"], ad = ids["admin_a"], mg = ids["manager_a"], ma = ids["member_a"],
            m2 = ids["member2_a"], va = ids["viewer_a"], ob = ids["owner_b"], a = ids["org_a"],
            b = ids["org_b"], t = ids["team"], lma = ids["log_ma"], lm2 = ids["log_m2"],
            lb = ids["log_b"],
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&app.db.owner)
            .await?;
        Ok(Self { ids })
    }

    /// The id of a fixture's person, org, team or log.
    pub fn id(&self, name: &str) -> Uuid {
        self.ids[name]
    }

    /// A person's access token (`service` for the service_role key, `anon` for the anon key).
    pub fn token(&self, app: &TestApp, who: &str) -> String {
        match who {
            "service" => app.keys.service_role_key(),
            "anon" => app.keys.anon_key(),
            _ => app.user_token(self.ids[who]),
        }
    }
}
