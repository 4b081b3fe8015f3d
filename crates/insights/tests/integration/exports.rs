//! `export-create`: each format read back with a real reader (csv, calamine, parquet) and
//! compared with the database and with each other; each role's file holds only what the role
//! may read; only the org's owners and admins and the export's maker may sign its URL.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use parquet::{
    file::{reader::FileReader, serialized_reader::SerializedFileReader},
    record::Field,
};
use serde_json::{Value, json};
use tally_insights::export::{Column, Kind, Scope};
use tally_testkit::{Fixture, TestApp};
use uuid::Uuid;

use crate::sql;

/// A table read back from a file: one `Option<String>` per cell, in the CSV's text forms.
type Table = Vec<Vec<Option<String>>>;

const FORMATS: [&str; 4] = ["csv", "json", "xlsx", "parquet"];

/// Org A of the fixture with a project and 200 logs of three people in March 2026 (one
/// pending, one deleted, comments with commas, quotes, newlines and accents), and org B's
/// own log in March; day summaries rolled up.
async fn world() -> (TestApp, Fixture) {
    let app = TestApp::spawn_with(|c| c.ai.worker_concurrency = 0)
        .await
        .unwrap();
    let fx = Fixture::load(&app).await.unwrap();
    sql(&app, &format!(
        "insert into projects (id, org_id, name, code) values ('{p}', '{a}', 'Apollo, \"redesign\"', 'APO');
         insert into time_logs (org_id, user_id, project_id, started_at, ended_at, duration_minutes,
                                status, billable, comment, tags, work_mode_id)
         select '{a}', (array['{ma}', '{m2}', '{mg}']::uuid[])[1 + i % 3],
                case when i % 4 = 0 then null else '{p}'::uuid end,
                '2026-03-02 08:00+00'::timestamptz + i * interval '3 hours 10 minutes',
                '2026-03-02 08:00+00'::timestamptz + i * interval '3 hours 10 minutes'
                  + (30 + i % 90) * interval '1 minute',
                30 + i % 90, (case when i = 7 then 'pending' else 'ready' end)::log_status,
                i % 2 = 0,
                format('Log %s, \"quoted\" – naïve%s', i, case when i % 10 = 0 then E'\\nline two' else '' end),
                case when i % 5 = 0 then '{{urgent,client}}'::text[] else '{{}}' end,
                (select id from work_modes where org_id is null
                 and key = (array['deep_work', 'meeting', 'collaboration'])[1 + i % 3])
         from generate_series(1, 200) i;
         update time_logs set deleted_at = now() where org_id = '{a}' and comment like 'Log 9,%';
         insert into time_logs (org_id, user_id, started_at, ended_at, duration_minutes, status, comment)
         values ('{b}', '{ob}', '2026-03-10 09:00+00', '2026-03-10 10:00+00', 60, 'ready', 'secret of B');",
        a = fx.id("org_a"), b = fx.id("org_b"), ma = fx.id("member_a"), m2 = fx.id("member2_a"),
        mg = fx.id("manager_a"), ob = fx.id("owner_b"), p = Uuid::now_v7(),
    ))
    .await;
    let (status, _) = call(
        &app,
        &fx.token(&app, "service"),
        &json!({"org_id": fx.id("org_a"), "from": "2026-03-01", "to": "2026-03-31"}),
        "insights-rollup",
    )
    .await;
    assert_eq!(status, 200);
    (app, fx)
}

async fn call(app: &TestApp, token: &str, body: &Value, function: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(app.url(&format!("/functions/v1/{function}")))
        .bearer_auth(token)
        .header("apikey", app.keys.anon_key())
        .json(body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

fn march(org: Uuid, format: &str, scope: &str) -> Value {
    json!({"org_id": org, "format": format, "scope": scope, "from": "2026-03-01", "to": "2026-03-31"})
}

/// Exports as `who` and reads the file back through its signed URL (no other credential).
async fn export(app: &TestApp, fx: &Fixture, who: &str, body: &Value) -> (Value, Table) {
    let (status, answer) = call(app, &fx.token(app, who), body, "export-create").await;
    assert_eq!(status, 201, "{answer}");
    let res = reqwest::get(answer["signed_url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let format = body["format"].as_str().unwrap();
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with(match format {
        "csv" => "text/csv",
        "json" => "application/json",
        "xlsx" => "application/vnd.openxmlformats",
        _ => "application/vnd.apache.parquet",
    }));
    let bytes = res.bytes().await.unwrap();
    assert_eq!(answer["bytes"].as_u64(), Some(bytes.len() as u64));
    let scope: Scope = serde_json::from_value(body["scope"].clone()).unwrap();
    let table = read(format, bytes, scope.columns());
    assert_eq!(
        answer["rows"].as_u64(),
        Some(table.len() as u64),
        "{format}"
    );
    (answer, table)
}

fn text_of_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses a file with its format's reader into the CSV's text forms; checks the header.
fn read(format: &str, bytes: bytes::Bytes, columns: &[Column]) -> Table {
    let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
    match format {
        "csv" => {
            let mut reader = csv::Reader::from_reader(bytes.as_ref());
            assert_eq!(reader.headers().unwrap(), names);
            reader
                .records()
                .map(|r| {
                    r.unwrap()
                        .iter()
                        .map(|f| (!f.is_empty()).then(|| f.to_owned()))
                        .collect()
                })
                .collect()
        }
        "json" => {
            let rows: Vec<serde_json::Map<String, Value>> = serde_json::from_slice(&bytes).unwrap();
            rows.into_iter()
                .map(|row| {
                    assert_eq!(row.keys().collect::<Vec<_>>(), names);
                    row.values()
                        .map(|v| match v {
                            Value::Null => None,
                            Value::String(s) => Some(s.clone()),
                            other => Some(other.to_string()),
                        })
                        .collect()
                })
                .collect()
        }
        "xlsx" => {
            let mut book: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes.to_vec())).unwrap();
            let sheet = book.worksheet_range_at(0).unwrap().unwrap();
            let mut rows = sheet.rows();
            let header: Vec<String> = rows
                .next()
                .unwrap()
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(header, names);
            rows.map(|row| {
                let mut cells: Vec<Option<String>> = row
                    .iter()
                    .zip(columns)
                    .map(|(cell, column)| match cell {
                        Data::Empty => None,
                        Data::String(s) => Some(s.clone()),
                        Data::Bool(b) => Some(b.to_string()),
                        #[allow(clippy::cast_possible_truncation)]
                        Data::Float(f) => Some((*f as i64).to_string()),
                        Data::Int(n) => Some(n.to_string()),
                        Data::DateTime(d) => {
                            let at = d.as_datetime().unwrap();
                            Some(match column.kind {
                                Kind::Date => at.date().to_string(),
                                _ => text_of_time(at.and_utc()),
                            })
                        }
                        other => panic!("unexpected cell {other:?}"),
                    })
                    .collect();
                cells.resize(columns.len(), None);
                cells
            })
            .collect()
        }
        _ => {
            let reader = SerializedFileReader::new(bytes).unwrap();
            let schema: Vec<String> = reader
                .metadata()
                .file_metadata()
                .schema_descr()
                .columns()
                .iter()
                .map(|c| c.name().to_owned())
                .collect();
            assert_eq!(schema, names);
            reader
                .get_row_iter(None)
                .unwrap()
                .map(|row| {
                    row.unwrap()
                        .get_column_iter()
                        .map(|(_, field)| match field {
                            Field::Null => None,
                            Field::Str(s) => Some(s.clone()),
                            Field::Long(n) => Some(n.to_string()),
                            Field::Bool(b) => Some(b.to_string()),
                            Field::Date(days) => Some(
                                (NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
                                    + chrono::Days::new(u64::try_from(*days).unwrap()))
                                .to_string(),
                            ),
                            Field::TimestampMicros(us) => {
                                Some(text_of_time(DateTime::from_timestamp_micros(*us).unwrap()))
                            }
                            other => panic!("unexpected field {other:?}"),
                        })
                        .collect()
                })
                .collect()
        }
    }
}

/// Whether two rows hold the same values; instants may differ by Excel's millisecond.
fn same_row(a: &[Option<String>], b: &[Option<String>], columns: &[Column]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .zip(columns)
            .all(|((x, y), column)| match (x, y, column.kind) {
                (Some(x), Some(y), Kind::Time) => {
                    let x = DateTime::parse_from_rfc3339(x).unwrap();
                    let y = DateTime::parse_from_rfc3339(y).unwrap();
                    (x - y).num_microseconds().unwrap().abs() <= 1000
                }
                _ => x == y,
            })
}

fn column(table: &Table, columns: &[Column], name: &str) -> Vec<Option<String>> {
    let i = columns.iter().position(|c| c.name == name).unwrap();
    table.iter().map(|row| row[i].clone()).collect()
}

async fn strings(app: &TestApp, query: &str, org: Uuid) -> Vec<Option<String>> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_owned()))
        .bind(org)
        .fetch_all(&app.db.owner)
        .await
        .unwrap()
}

#[tokio::test]
async fn every_format_reads_back_equal_to_the_database() {
    let (app, fx) = world().await;
    let org = fx.id("org_a");
    let logs_in_march = "from time_logs where org_id = $1 and deleted_at is null
        and coalesce(started_at, created_at) >= '2026-03-01' and coalesce(started_at, created_at) < '2026-04-01'
        order by coalesce(started_at, created_at), id";
    let expected = [
        (
            "logs",
            vec![
                ("id", format!("select id::text {logs_in_march}")),
                ("duration_minutes", format!("select duration_minutes::text {logs_in_march}")),
                ("comment", format!("select comment {logs_in_march}")),
                ("project", format!("select (select name from projects p where p.id = project_id) {logs_in_march}")),
                ("work_mode", format!("select (select key from work_modes w where w.id = work_mode_id) {logs_in_march}")),
                ("status", format!("select status::text {logs_in_march}")),
                ("tags", format!("select nullif(array_to_string(tags, ', '), '') {logs_in_march}")),
            ],
        ),
        (
            "day_summaries",
            vec![
                ("day", "select day::text from user_day_summaries where org_id = $1 and day <= '2026-03-31' order by day, user_id::text".to_owned()),
                ("total_minutes", "select total_minutes::text from user_day_summaries where org_id = $1 and day <= '2026-03-31' order by day, user_id::text".to_owned()),
                ("focus_minutes", "select focus_minutes::text from user_day_summaries where org_id = $1 and day <= '2026-03-31' order by day, user_id::text".to_owned()),
            ],
        ),
        (
            "weekly",
            vec![
                ("week_start", "select starts::text from insights.person_periods where org_id = $1 and period = 'week' and starts <= '2026-03-31' order by starts, user_id::text".to_owned()),
                ("total_minutes", "select total_minutes::text from insights.person_periods where org_id = $1 and period = 'week' and starts <= '2026-03-31' order by starts, user_id::text".to_owned()),
            ],
        ),
    ];
    for (scope, checks) in expected {
        let columns = serde_json::from_value::<Scope>(json!(scope))
            .unwrap()
            .columns();
        let (_, reference) = export(&app, &fx, "owner_a", &march(org, "csv", scope)).await;
        assert!(!reference.is_empty(), "{scope}");
        for (name, query) in &checks {
            assert_eq!(
                column(&reference, columns, name),
                strings(&app, query, org).await,
                "{scope}.{name}"
            );
        }
        for format in &FORMATS[1..] {
            let (answer, table) = export(&app, &fx, "owner_a", &march(org, format, scope)).await;
            assert_eq!(table.len(), reference.len(), "{scope} as {format}");
            for (row, expected) in table.iter().zip(&reference) {
                assert!(
                    same_row(row, expected, columns),
                    "{scope} as {format} differs from the CSV:\n{row:?}\n{expected:?}"
                );
            }
            let path = answer["path"].as_str().unwrap();
            assert!(path.starts_with(&format!("{org}/{}/", answer["export_id"].as_str().unwrap())));
            assert!(path.ends_with(&format!(".{format}")));
        }
    }
    // Comments survive every format intact, line breaks and quotes included.
    let (_, table) = export(&app, &fx, "owner_a", &march(org, "csv", "logs")).await;
    let comments = column(&table, Scope::Logs.columns(), "comment");
    assert!(comments.contains(&Some("Log 10, \"quoted\" – naïve\nline two".to_owned())));
    assert!(!comments.iter().flatten().any(|c| c.contains("secret of B")));
}

#[tokio::test]
async fn each_role_exports_only_what_it_may_read() {
    let (app, fx) = world().await;
    let org = fx.id("org_a");
    let user_ids = |table: &Table| {
        let mut ids = column(table, Scope::Logs.columns(), "user_id");
        ids.sort();
        ids.dedup();
        ids
    };
    let member = fx.id("member_a").to_string();
    let (_, mine) = export(&app, &fx, "member_a", &march(org, "csv", "logs")).await;
    assert_eq!(user_ids(&mine), [Some(member.clone())]);
    let (_, led) = export(&app, &fx, "manager_a", &march(org, "parquet", "logs")).await;
    let mut team = vec![Some(member.clone()), Some(fx.id("manager_a").to_string())];
    team.sort();
    assert_eq!(
        user_ids(&led),
        team,
        "the manager sees their own and their team's"
    );
    let (_, all) = export(&app, &fx, "admin_a", &march(org, "json", "logs")).await;
    assert_eq!(user_ids(&all).len(), 3);
    for scope in ["logs", "day_summaries", "weekly"] {
        let (_, nothing) = export(&app, &fx, "viewer_a", &march(org, "csv", scope)).await;
        assert!(nothing.is_empty(), "a viewer reads no person's {scope}");
    }
    // Narrowed to one person and one project.
    let project: Uuid = sqlx::query_scalar("select id from projects where org_id = $1")
        .bind(org)
        .fetch_one(&app.db.owner)
        .await
        .unwrap();
    let mut body = march(org, "csv", "logs");
    body["user_id"] = json!(fx.id("member2_a"));
    body["project_id"] = json!(project);
    let (_, narrow) = export(&app, &fx, "owner_a", &body).await;
    assert!(!narrow.is_empty());
    let columns = Scope::Logs.columns();
    assert!(
        column(&narrow, columns, "user_id")
            .iter()
            .all(|u| u.as_deref() == Some(fx.id("member2_a").to_string().as_str()))
    );
    assert!(
        column(&narrow, columns, "project_code")
            .iter()
            .all(|p| p.as_deref() == Some("APO"))
    );

    // Another org's owner may not export org A.
    let (status, error) = call(
        &app,
        &fx.token(&app, "owner_b"),
        &march(org, "csv", "logs"),
        "export-create",
    )
    .await;
    assert_eq!((status, error["error"].as_str()), (403, Some("forbidden")));
}

#[tokio::test]
async fn only_the_orgs_owners_admins_and_the_maker_sign_an_export() {
    let (app, fx) = world().await;
    let org = fx.id("org_a");
    let sign = |who: &'static str, path: String| {
        let token = fx.token(&app, who);
        let url = app.url(&format!("/storage/v1/object/sign/exports/{path}"));
        let anon = app.keys.anon_key();
        async move {
            let res = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .header("apikey", anon)
                .json(&json!({"expiresIn": 60}))
                .send()
                .await
                .unwrap();
            res.status().as_u16()
        }
    };
    let (owners, _) = export(&app, &fx, "owner_a", &march(org, "csv", "day_summaries")).await;
    let (members, _) = export(&app, &fx, "member_a", &march(org, "csv", "logs")).await;
    let owners = owners["path"].as_str().unwrap().to_owned();
    let members = members["path"].as_str().unwrap().to_owned();
    assert_eq!(sign("owner_a", owners.clone()).await, 200);
    assert_eq!(sign("admin_a", members.clone()).await, 200);
    assert_eq!(sign("member_a", members.clone()).await, 200, "the maker");
    for (who, path) in [
        ("owner_b", owners.clone()),
        ("owner_b", members.clone()),
        ("member_a", owners.clone()),
        ("member2_a", members.clone()),
        ("viewer_a", owners.clone()),
    ] {
        assert_eq!(sign(who, path.clone()).await, 400, "{who} signing {path}");
    }
}

#[tokio::test]
async fn bad_export_requests_are_refused_and_store_nothing() {
    let (app, fx) = world().await;
    let org = fx.id("org_a");
    let owner = fx.token(&app, "owner_a");
    let mut weekly_project = march(org, "csv", "weekly");
    weekly_project["project_id"] = json!(Uuid::now_v7());
    let cases = [
        (march(org, "pdf", "logs"), "unknown variant `pdf`"),
        (
            march(org, "csv", "everything"),
            "unknown variant `everything`",
        ),
        (
            json!({"org_id": org, "format": "csv", "scope": "logs", "from": "2026-03-31", "to": "2026-03-01"}),
            "from must not be after to",
        ),
        (
            json!({"org_id": org, "format": "csv", "scope": "logs", "from": "2024-01-01", "to": "2026-03-01"}),
            "at most 366 days",
        ),
        (
            json!({"org_id": org, "format": "csv", "scope": "logs", "from": "2026-03-01"}),
            "missing field `to`",
        ),
        (weekly_project, "logs scope only"),
        (
            json!({"org_id": org, "format": "csv", "scope": "logs", "from": "2026-03-01", "to": "2026-03-02", "expires_in": 0}),
            "expires_in",
        ),
        (
            json!({"org_id": org, "format": "csv", "scope": "logs", "from": "2026-03-01", "to": "2026-03-02", "colour": 1}),
            "unknown field `colour`",
        ),
    ];
    for (body, message) in cases {
        let (status, error) = call(&app, &owner, &body, "export-create").await;
        assert_eq!(status, 400, "{body}");
        assert!(
            error["message"].as_str().unwrap().contains(message),
            "{error}"
        );
    }
    let (status, _) = call(
        &app,
        &app.keys.anon_key(),
        &march(org, "csv", "logs"),
        "export-create",
    )
    .await;
    assert_eq!(status, 401);
    let stored: i64 =
        sqlx::query_scalar("select count(*) from storage.objects where bucket_id = 'exports'")
            .fetch_one(&app.db.owner)
            .await
            .unwrap();
    assert_eq!(stored, 0);
}
