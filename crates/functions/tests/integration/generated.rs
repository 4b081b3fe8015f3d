//! Generated sync payloads over real HTTP as real people: pushes of any table, op, id, base
//! version and values (right and wrong types, unknown and server-kept columns, NUL
//! characters, huge numbers, long text), repeated mutation ids, other orgs, bodies that are not
//! JSON; pulls with any cursor and limit. Nothing is a 5xx: a push answers 200 with a result
//! per mutation (a rejection with its code and message) or refuses the whole request in the
//! functions' `{error, message}` shape, and so does a pull.

use std::cell::{Cell, RefCell};

use proptest::{prelude::*, test_runner::TestRunner};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::world::World;

/// Pushes and pulls per test.
const CASES: u32 = 300;

/// A UUID no row has yet.
fn fresh_id() -> impl Strategy<Value = String> {
    any::<u128>().prop_map(|n| Uuid::from_u128(n).to_string())
}

/// A value of the column's type (ids of the fixture's projects and people, `ids[0..2]` and
/// `ids[3..5]`).
fn typed(column: &str, ids: Vec<String>) -> BoxedStrategy<Value> {
    let text = |max: usize| {
        proptest::string::string_regex(&format!("[a-zA-Z0-9 ]{{1,{max}}}")).map_or_else(
            |_| Just(Value::Null).boxed(),
            |s| s.prop_map(Value::from).boxed(),
        )
    };
    match column {
        "project_id" => prop::sample::select(ids[0..2].to_vec())
            .prop_map(Value::from)
            .boxed(),
        "user_id" => prop::sample::select(ids[3..5].to_vec())
            .prop_map(Value::from)
            .boxed(),
        "started_at" | "ended_at" | "archived_at" => (0i64..30 * 86_400)
            .prop_map(|s| {
                let at = chrono::DateTime::from_timestamp(1_780_000_000 + s, 0).unwrap_or_default();
                Value::from(at.to_rfc3339())
            })
            .boxed(),
        "duration_minutes" => (0i64..1_440).prop_map(Value::from).boxed(),
        "billable" => any::<bool>().prop_map(Value::from).boxed(),
        "status" => prop::sample::select(vec!["pending", "ready", "needs_review"])
            .prop_map(Value::from)
            .boxed(),
        "source" => prop::sample::select(vec!["manual", "web", "slack"])
            .prop_map(Value::from)
            .boxed(),
        "tags" | "aliases" | "keywords" => prop::collection::vec("[a-z]{1,8}", 0..4)
            .prop_map(Value::from)
            .boxed(),
        "color" => Just(Value::from("#3366ff")).boxed(),
        "code" => text(8),
        "key" => "[a-z_]{1,12}".prop_map(Value::from).boxed(),
        "comment" | "name" | "description" | "client_name" => text(40),
        _ => Just(Value::Null).boxed(),
    }
}

/// A value for a column: often of the column's type, sometimes anything.
fn column_value(ids: Vec<String>) -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => prop::sample::select(ids).prop_map(Value::from),
        1 => fresh_id().prop_map(Value::from),
        2 => prop::sample::select(vec![
            "2026-03-10T09:00:00Z", "2026-03-10T17:30:00+01:00", "1969-12-31T23:59:59Z",
            "275760-09-13T00:00:00Z", "yesterday", "",
        ])
        .prop_map(Value::from),
        2 => prop_oneof![
            (0i64..2_000).prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            Just(json!(1e308)),
            Just(json!(-0.5)),
        ],
        2 => "\\PC{0,30}".prop_map(Value::from),
        1 => Just(Value::from("nul \u{0} inside")),
        1 => (1usize..20_000).prop_map(|n| Value::from("x".repeat(n))),
        1 => any::<bool>().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => prop::sample::select(vec![
            "pending", "ready", "needs_review", "failed", "manual", "slack", "nope",
        ])
        .prop_map(Value::from),
        1 => prop::collection::vec("\\PC{0,12}", 0..6).prop_map(Value::from),
        1 => Just(json!({"nested": [1, {"a": null}]})),
    ]
}

/// Columns of no synced table a client may write.
const NOT_WRITABLE: &[&str] = &[
    "id",
    "org_id",
    "version",
    "deleted_at",
    "created_at",
    "nope",
];

/// A table's values: mostly of its writable columns, now and then with one it refuses.
fn values(table: String, ids: Vec<String>) -> impl Strategy<Value = Option<Value>> {
    let writable: Vec<&'static str> =
        tally_sync::tables::find(&table).map_or_else(|| vec!["name"], |t| t.writable.to_vec());
    let any_column: Vec<&'static str> = writable.iter().chain(NOT_WRITABLE).copied().collect();
    let map = |columns: Vec<&'static str>, ids: Vec<String>| {
        let value = move |column: &'static str| {
            prop_oneof![
                3 => typed(column, ids.clone()),
                1 => column_value(ids.clone()),
            ]
            .prop_map(move |v| (column, v))
        };
        prop::collection::vec(prop::sample::select(columns).prop_flat_map(value), 0..6).prop_map(
            |pairs| Value::Object(pairs.into_iter().map(|(c, v)| (c.to_owned(), v)).collect()),
        )
    };
    prop::option::weighted(
        0.85,
        prop_oneof![
            8 => map(writable, ids.clone()),
            1 => map(any_column, ids),
        ],
    )
}

/// A mutation as an offline client might queue one.
fn mutation(ids: Vec<String>, reused: Vec<String>) -> impl Strategy<Value = Value> {
    let table = prop_oneof![
        12 => prop::sample::select(
            tally_sync::tables::TABLES.iter().map(|t| t.name).collect::<Vec<_>>()
        )
        .prop_map(str::to_owned),
        1 => prop::sample::select(vec!["memberships", "organizations", "nope", ""])
            .prop_map(str::to_owned),
    ];
    let with_values = {
        let ids = ids.clone();
        table.prop_flat_map(move |table| (Just(table.clone()), values(table, ids.clone())))
    };
    (
        prop_oneof![
            12 => fresh_id(),
            4 => prop::sample::select(reused.clone()),
            1 => "\\PC{0,8}",
        ],
        with_values,
        prop_oneof![24 => Just("upsert"), 8 => Just("delete"), 1 => Just("nope")],
        prop_oneof![
            2 => fresh_id(),
            2 => prop::sample::select(reused),
            1 => prop::sample::select(ids),
        ],
        prop::option::of(prop_oneof![20 => 0i64..5, 1 => any::<i64>()]),
    )
        .prop_map(|(mutation_id, (table, values), op, id, base_version)| {
            let mut m = json!({"mutation_id": mutation_id, "table": table, "op": op, "id": id});
            if let Some(v) = base_version {
                m["base_version"] = json!(v);
            }
            if let Some(values) = values {
                m["values"] = values;
            }
            m
        })
}

/// A push's body, as bytes.
fn push(
    orgs: Vec<String>,
    ids: Vec<String>,
    reused: Vec<String>,
) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        20 => (
            prop::sample::select(orgs),
            prop::collection::vec(mutation(ids, reused), 0..6),
            prop::bool::weighted(0.02),
        )
            .prop_map(|(org, mutations, extra)| {
                let mut body = json!({"org_id": org, "mutations": mutations});
                if extra {
                    body["unexpected"] = json!(true);
                }
                body.to_string().into_bytes()
            }),
        1 => prop::collection::vec(any::<u8>(), 0..40),
        1 => Just(b"{\"org_id\": 1, \"mutations\": {}}".to_vec()),
    ]
}

/// Which cursor a pull sends: none, one a push answered (by index), or any text.
#[derive(Debug, Clone)]
enum CursorChoice {
    None,
    Known(usize),
    Text(String),
}

/// A pull's `org_id`, cursor and limit.
fn pull(orgs: Vec<String>) -> impl Strategy<Value = (String, CursorChoice, Option<Value>)> {
    (
        prop::sample::select(orgs),
        prop_oneof![
            4 => Just(CursorChoice::None),
            4 => any::<usize>().prop_map(CursorChoice::Known),
            1 => "\\PC{0,24}".prop_map(CursorChoice::Text),
        ],
        prop::option::of(prop_oneof![
            20 => (0i64..2_000).prop_map(Value::from),
            1 => any::<i64>().prop_map(Value::from),
            1 => Just(Value::from("ten")),
        ]),
    )
}

/// A refusal in the functions' shape.
fn refused_in_shape(status: u16, body: &Value) -> Result<(), TestCaseError> {
    prop_assert!((400..500).contains(&status), "status {status}: {body}");
    prop_assert!(
        body["error"].is_string() && body["message"].is_string(),
        "not {{error, message}}: {body}"
    );
    Ok(())
}

#[test]
fn generated_sync_payloads_are_answered_or_refused_never_a_5xx() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let w = runtime.block_on(World::new());
    let http = reqwest::Client::new();
    let mut orgs = vec![w.id("org_a").to_string(); 12];
    orgs.extend([
        w.id("org_b").to_string(),
        Uuid::new_v4().to_string(),
        "not-an-org".to_owned(),
    ]);
    let known: Vec<String> = [
        "apollo", "tools", "borealis", "member_a", "owner_a", "org_a",
    ]
    .iter()
    .map(|n| w.id(n).to_string())
    .collect();
    let reused: Vec<String> = (0..4).map(|_| Uuid::new_v4().to_string()).collect();
    let cursors = RefCell::new(vec!["0".to_owned()]);
    let people = ["member_a", "owner_a", "viewer_a", "manager_a"];
    let turn = Cell::new(0usize);
    let send = |function: &str, who: &str, body: Vec<u8>| {
        runtime.block_on(async {
            let res = http
                .post(w.app.url(&format!("/functions/v1/{function}")))
                .header("apikey", w.app.keys.anon_key())
                .header("content-type", "application/json")
                .bearer_auth(w.token(who))
                .body(body)
                .send()
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let status = res.status().as_u16();
            let text = res
                .text()
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let body: Value = serde_json::from_str(&text)
                .map_err(|e| TestCaseError::fail(format!("{status} not JSON ({e}): {text}")))?;
            Ok::<_, TestCaseError>((status, body))
        })
    };

    let mut runner = TestRunner::new(ProptestConfig::with_cases(CASES));
    runner
        .run(
            &(
                push(orgs.clone(), known, reused),
                prop::option::of(pull(orgs)),
            ),
            |(body, then_pull)| {
                let who = people[turn.get() % people.len()];
                turn.set(turn.get() + 1);
                let (status, answer) = send("sync-push", who, body)?;
                if status == 200 {
                    let results = answer["results"].as_array();
                    prop_assert!(results.is_some(), "{answer}");
                    for r in results.into_iter().flatten() {
                        let outcome = r["status"].as_str().unwrap_or_default();
                        prop_assert!(
                            ["applied", "conflict", "rejected", "duplicate"].contains(&outcome),
                            "{r}"
                        );
                        if outcome == "rejected" {
                            prop_assert!(
                                r["error"]["code"].is_string() && r["error"]["message"].is_string(),
                                "{r}"
                            );
                        }
                    }
                    if let Some(cursor) = answer["cursor"].as_str() {
                        cursors.borrow_mut().push(cursor.to_owned());
                    }
                } else {
                    refused_in_shape(status, &answer)?;
                }
                if let Some((org, cursor, limit)) = then_pull {
                    let mut body = json!({"org_id": org});
                    match cursor {
                        CursorChoice::None => {}
                        CursorChoice::Known(i) => {
                            let known = cursors.borrow();
                            body["cursor"] = json!(known[i % known.len()]);
                        }
                        CursorChoice::Text(text) => body["cursor"] = json!(text),
                    }
                    if let Some(limit) = limit {
                        body["limit"] = limit;
                    }
                    let (status, answer) = send("sync-pull", who, body.to_string().into_bytes())?;
                    if status == 200 {
                        prop_assert!(
                            answer["changes"].is_array() && answer["cursor"].is_string(),
                            "{answer}"
                        );
                    } else {
                        refused_in_shape(status, &answer)?;
                    }
                }
                Ok(())
            },
        )
        .unwrap();
    runtime.block_on(w.app.stop()).unwrap();
}
