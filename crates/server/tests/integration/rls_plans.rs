//! Row-level security that costs an index lookup, not a scan of every org's rows: with org B
//! holding 100,000 logs and org A a few thousand, each person's newest 50 (as `/rest/v1`
//! plans them, with `Accept: application/vnd.pgrst.plan+json`) reads `time_logs` by index
//! only — never a sequential scan — and with the filter a client adds, in index order
//! without a sort; so do their reads of the other tables people list (extractions,
//! attachments, day summaries, the audit trail), each as large.

use reqwest::Method;
use serde_json::Value;
use tally_testkit::{Fixture, TestApp};

/// Every plan node over `table`: (node type, index name).
fn nodes(table: &str, node: &Value, out: &mut Vec<(String, String)>) {
    if node["Relation Name"] == table {
        out.push((
            node["Node Type"].as_str().unwrap_or_default().to_owned(),
            node["Index Name"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    for child in node["Plans"].as_array().into_iter().flatten() {
        nodes(table, child, out);
    }
}

/// Whether a Sort node sits anywhere in the plan.
fn sorts(node: &Value) -> bool {
    node["Node Type"] == "Sort" || node["Plans"].as_array().into_iter().flatten().any(sorts)
}

#[tokio::test]
async fn list_reads_find_the_callers_rows_by_index() {
    let app = TestApp::spawn_with(|c| c.rest_plan = true).await.unwrap();
    let f = Fixture::load(&app).await.unwrap();
    // Org B grows 100 people with 1,000 logs each; 98 more orgs have 5 people with 100 each;
    // org A's people get 500 each.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "alter table time_logs disable trigger user;
         insert into auth.users (email) select 'b' || g || '@b.test' from generate_series(1, 100) g;
         insert into memberships (org_id, user_id, role)
           select '{b}', id, 'member' from auth.users where email like 'b%@b.test';
         insert into organizations (name, slug) select 'Org ' || g, 'org-' || g from generate_series(1, 98) g;
         insert into auth.users (email) select 'o' || g || '@o.test' from generate_series(1, 490) g;
         insert into memberships (org_id, user_id, role)
           select o.id, u.id, 'member'
           from (select id, row_number() over (order by id) - 1 as n from organizations where slug like 'org-%') o
           join (select id, row_number() over (order by id) - 1 as n from auth.users where email like 'o%@o.test') u
             on u.n / 5 = o.n;
         insert into time_logs (org_id, user_id, comment, started_at, ended_at, duration_minutes, status)
           select m.org_id, m.user_id, 'log', now() - make_interval(mins => g * 60),
                  now() - make_interval(mins => g * 60) + interval '30 minutes', 30, 'ready'
           from memberships m,
                generate_series(1, case when m.org_id = '{b}' then 1000
                                        when m.org_id = '{a}' then 500 else 100 end) g
           where m.role <> 'viewer';
         alter table time_logs enable trigger user;
         alter table ai_extractions disable trigger user;
         alter table attachments disable trigger user;
         alter table user_day_summaries disable trigger user;
         alter table audit_log disable trigger user;
         insert into ai_extractions (org_id, user_id, time_log_id, provider, status)
           select org_id, user_id, id, 'builtin', 'ok' from time_logs;
         insert into attachments (org_id, user_id, time_log_id, kind, bucket, object_path)
           select org_id, user_id, id, 'image', 'images', org_id || '/' || id || '/shot.png'
           from time_logs;
         insert into user_day_summaries (org_id, user_id, day, total_minutes, log_count)
           select org_id, user_id, started_at::date, sum(duration_minutes), count(*)
           from time_logs where started_at is not null group by 1, 2, 3
           on conflict do nothing;
         insert into audit_log (org_id, actor_id, action, table_name, row_id)
           select org_id, user_id, 'insert', 'time_logs', id from time_logs;
         alter table ai_extractions enable trigger user;
         alter table attachments enable trigger user;
         alter table user_day_summaries enable trigger user;
         alter table audit_log enable trigger user;
         analyze;",
        a = f.id("org_a"),
        b = f.id("org_b"),
    )))
    .execute(&app.db.owner)
    .await
    .unwrap();

    let http = reqwest::Client::new();
    let plan = |who: &str, filter: String| {
        let request = http
            .request(
                Method::GET,
                app.url(&format!(
                    "/rest/v1/time_logs?select=id,started_at&order=started_at.desc&limit=50{filter}"
                )),
            )
            .header("apikey", app.keys.anon_key())
            .header("accept", "application/vnd.pgrst.plan+json")
            .bearer_auth(f.token(&app, who));
        async move {
            let res = request.send().await.unwrap();
            assert_eq!(res.status(), 200);
            let plan: Value = res.json().await.unwrap();
            plan[0]["Plan"].clone()
        }
    };
    for who in ["member_a", "admin_a", "manager_a", "owner_b"] {
        let root = plan(who, String::new()).await;
        let mut found = Vec::new();
        nodes("time_logs", &root, &mut found);
        assert!(!found.is_empty(), "{who}: {root}");
        assert!(
            found.iter().all(|(node, _)| node != "Seq Scan"),
            "{who} scans time_logs: {found:?}"
        );
    }
    // The other tables people list, newest first: by index too, never a scan of every org.
    for (table, order) in [
        ("ai_extractions", "created_at"),
        ("attachments", "created_at"),
        ("user_day_summaries", "day"),
        ("audit_log", "created_at"),
    ] {
        for who in ["member_a", "admin_a", "manager_a", "owner_b"] {
            let res = http
                .get(app.url(&format!(
                    "/rest/v1/{table}?select=id&order={order}.desc&limit=50"
                )))
                .header("apikey", app.keys.anon_key())
                .header("accept", "application/vnd.pgrst.plan+json")
                .bearer_auth(f.token(&app, who))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let root = res.json::<Value>().await.unwrap()[0]["Plan"].clone();
            let mut found = Vec::new();
            nodes(table, &root, &mut found);
            assert!(!found.is_empty(), "{who} {table}: {root}");
            assert!(
                found.iter().all(|(node, _)| node != "Seq Scan"),
                "{who} scans {table}: {found:?}"
            );
        }
    }
    // With the filter a client adds, the newest 50 come in index order: no sort.
    for (who, filter, index) in [
        (
            "member_a",
            format!("&user_id=eq.{}", f.id("member_a")),
            "time_logs_user_started_idx",
        ),
        (
            "owner_b",
            format!("&org_id=eq.{}", f.id("org_b")),
            "time_logs_org_started_idx",
        ),
    ] {
        let root = plan(who, filter).await;
        let mut found = Vec::new();
        nodes("time_logs", &root, &mut found);
        assert_eq!(
            found,
            [("Index Scan".to_owned(), index.to_owned())],
            "{who}"
        );
        assert!(!sorts(&root), "{who}: {root}");
    }
}
