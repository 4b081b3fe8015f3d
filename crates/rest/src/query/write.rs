//! Writes: insert (one or many, `columns=`), upsert (`on_conflict`, merge or ignore
//! duplicates), update and delete, each one statement; with `return=representation` the
//! written rows are shaped like a read.

use axum::http::{Method, StatusCode};
use serde_json::Value;

use crate::{
    error::{RestError, RestResult},
    request::{ApiRequest, prefer::Return},
    schema::{SchemaCache, Table, qualified, quote},
};

use super::{
    builder::{Bind, Scope, Sql, where_clause},
    read::{relation, shape_with},
};

/// The columns a write touches: `columns=`, else the body's keys; each must exist.
fn columns(table: &Table, request: &ApiRequest, body: &Value) -> RestResult<Vec<String>> {
    let keys: Vec<String> = match (&request.columns, body) {
        (Some(cols), _) => cols.clone(),
        (None, Value::Object(map)) => map.keys().cloned().collect(),
        (None, Value::Array(rows)) => {
            let mut keys: Vec<String> = Vec::new();
            for row in rows {
                let Value::Object(map) = row else {
                    return Err(RestError::body("All elements of the array must be objects"));
                };
                for k in map.keys() {
                    if !keys.contains(k) {
                        keys.push(k.clone());
                    }
                }
            }
            keys
        }
        _ => {
            return Err(RestError::body(
                "The body must be a JSON object or an array of objects",
            ));
        }
    };
    for key in &keys {
        if table.column(key).is_none() {
            return Err(RestError::new(
                StatusCode::BAD_REQUEST,
                "PGRST204",
                format!(
                    "Could not find the '{key}' column of '{}' in the schema cache",
                    table.name
                ),
            ));
        }
    }
    Ok(keys)
}

/// The write statement. The row count comes back as `page`; with a representation, the
/// rows as `body`.
pub fn build(cache: &SchemaCache, request: &ApiRequest, name: &str) -> RestResult<Sql> {
    let table = relation(cache, &request.schema, name)?;
    let target = qualified(&table.schema, &table.name);
    let mut sql = Sql::default();
    let body = request.body.clone().unwrap_or(Value::Null);
    let statement = match request.method {
        Method::POST => {
            let mut cols = columns(table, request, &body)?;
            let rows = if body.is_array() {
                body.clone()
            } else {
                Value::Array(vec![body.clone()])
            };
            if request.prefer.missing_default {
                // A column no row gives is left out of the insert, so it takes its true
                // DEFAULT (an identity, a generated value, a domain's default).
                let given = |c: &String| {
                    rows.as_array()
                        .is_some_and(|rows| rows.iter().any(|r| r.get(c).is_some()))
                };
                let present: Vec<String> = cols.iter().filter(|c| given(c)).cloned().collect();
                if !present.is_empty() {
                    cols = present;
                }
            }
            let json = sql.bind(Bind::Text(rows.to_string()));
            let list = cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
            let mut text = if cols.is_empty() {
                format!("insert into {target} as t0 default values")
            } else if request.prefer.missing_default {
                // A key missing from a row takes the column's default, not null. As in
                // PostgREST, every row's defaults are evaluated (a sequence advances for each
                // row, whether or not the row gives the column): the subquery is correlated
                // with the row, so it runs once per row.
                let mut defaults = Vec::new();
                let values = cols
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let key = sql.bind(Bind::Text(c.clone()));
                        let default = table.column(c).map_or_else(
                            || "null".to_owned(),
                            |col| {
                                col.default
                                    .clone()
                                    .unwrap_or_else(|| format!("null::{}", col.type_name))
                            },
                        );
                        defaults.push(format!("{default} as d{i}"));
                        format!("case when _j ? {key} then _b.{} else _d.d{i} end", quote(c))
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let defaults = defaults.join(", ");
                format!(
                    "insert into {target} as t0 ({list}) select {values} from jsonb_array_elements({json}::jsonb) _j \
                     cross join lateral jsonb_populate_record(null::{target}, _j) _b \
                     cross join lateral (select {defaults} where _j is not null) _d"
                )
            } else {
                format!(
                    "insert into {target} as t0 ({list}) select {list} from json_populate_recordset(null::{target}, {json}::json) _b"
                )
            };
            if let Some(merge) = request.prefer.resolution {
                let conflict = request
                    .on_conflict
                    .clone()
                    .unwrap_or_else(|| table.primary_key.clone());
                if conflict.is_empty() || conflict.iter().any(|c| table.column(c).is_none()) {
                    return Err(RestError::new(
                        StatusCode::BAD_REQUEST,
                        "PGRST204",
                        "on_conflict names no unique columns of this table",
                    ));
                }
                let conflict_list = conflict
                    .iter()
                    .map(|c| quote(c))
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut updates: Vec<String> = cols
                    .iter()
                    .filter(|c| !conflict.contains(c))
                    .map(|c| format!("{} = excluded.{}", quote(c), quote(c)))
                    .collect();
                if updates.is_empty() {
                    // Only the key given: the row is "updated" to itself, so it is returned
                    // (as PostgREST does), not skipped.
                    updates = conflict
                        .iter()
                        .map(|c| format!("{} = excluded.{}", quote(c), quote(c)))
                        .collect();
                }
                if merge {
                    text.push_str(&format!(
                        " on conflict ({conflict_list}) do update set {}",
                        updates.join(", ")
                    ));
                } else {
                    text.push_str(&format!(" on conflict ({conflict_list}) do nothing"));
                }
            }
            text
        }
        Method::PATCH => {
            let Value::Object(map) = &body else {
                return Err(RestError::body("An update needs a JSON object"));
            };
            let cols = columns(table, request, &body)?;
            if map.is_empty() || cols.is_empty() {
                return Err(RestError::body("An update needs at least one column"));
            }
            let json = sql.bind(Bind::Text(body.to_string()));
            let sets = cols
                .iter()
                .map(|c| format!("{} = _b.{}", quote(c), quote(c)))
                .collect::<Vec<_>>()
                .join(", ");
            let scope = Scope {
                table,
                alias: "t0",
                depth: 0,
            };
            let filters = where_clause(&mut sql, scope, &request.modifiers(&[]).logic, &[])?;
            format!(
                "update {target} as t0 set {sets} from (select * from json_populate_record(null::{target}, {json}::json)) _b{filters}"
            )
        }
        Method::DELETE => {
            let scope = Scope {
                table,
                alias: "t0",
                depth: 0,
            };
            let filters = where_clause(&mut sql, scope, &request.modifiers(&[]).logic, &[])?;
            format!("delete from {target} as t0{filters}")
        }
        _ => {
            return Err(RestError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "PGRST117",
                format!("Unsupported HTTP method: {}", request.method),
            ));
        }
    };
    if request.prefer.return_ == Return::Representation {
        // The written rows, shaped like a read (select, embeds) but not filtered again.
        let mut shaped = request.clone();
        shaped.modifiers.retain(|(path, _)| !path.is_empty());
        // An upsert tells inserted rows (xmax = 0) from updated ones: all updated is a 200.
        let upsert = request.method == Method::POST && request.prefer.resolution.is_some();
        let inserted = upsert
            .then(|| "(select count(*) from pgrst_source where not pgrst_updated)".to_owned());
        let text = shape_with(
            &mut sql,
            cache,
            table,
            &shaped,
            "pgrst_source",
            false,
            None,
            inserted,
        )?;
        let marker = if upsert {
            ", (t0.xmax::text::bigint <> 0) as pgrst_updated"
        } else {
            ""
        };
        sql.push(&format!(
            "with pgrst_source as ({statement} returning t0.*{marker}) {text}"
        ));
    } else {
        // No RETURNING: it would apply the select policies to a write the caller may make
        // without being allowed to read it back.
        sql.push(&statement);
        sql.counts_affected = true;
    }
    Ok(sql)
}
