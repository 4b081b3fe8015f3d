//! Row-level security that costs an index lookup, not a scan of every org's rows: with org B
//! holding 40,000 logs and org A a few thousand, each person's newest 50 (as `/rest/v1`
//! plans them, with `Accept: application/vnd.pgrst.plan+json`) reads `time_logs` by index
//! only — never a sequential scan — and with the filter a client adds, in index order
//! without a sort.

use reqwest::Method;
use serde_json::Value;
use tally_testkit::{Fixture, TestApp};

/// Every plan node over `time_logs`: (node type, index name).
fn time_logs_nodes(node: &Value, out: &mut Vec<(String, String)>) {
    if node["Relation Name"] == "time_logs" {
        out.push((
            node["Node Type"].as_str().unwrap_or_default().to_owned(),
            node["Index Name"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    for child in node["Plans"].as_array().into_iter().flatten() {
        time_logs_nodes(child, out);
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
        let mut nodes = Vec::new();
        time_logs_nodes(&root, &mut nodes);
        assert!(!nodes.is_empty(), "{who}: {root}");
        assert!(
            nodes.iter().all(|(node, _)| node != "Seq Scan"),
            "{who} scans time_logs: {nodes:?}"
        );
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
        let mut nodes = Vec::new();
        time_logs_nodes(&root, &mut nodes);
        assert_eq!(
            nodes,
            [("Index Scan".to_owned(), index.to_owned())],
            "{who}"
        );
        assert!(!sorts(&root), "{who}: {root}");
    }
}
