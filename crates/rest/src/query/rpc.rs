//! RPC: `POST /rpc/f` with named arguments (JSON body) and `GET /rpc/f?arg=…`. Arguments are
//! typed by `json_to_record` with the function's own argument types; set and table results
//! take `select`, filters, `order` and paging like a read.

use axum::http::StatusCode;
use serde_json::{Map, Value};

use crate::{
    error::{RestError, RestResult},
    request::ApiRequest,
    schema::{Column, Function, SchemaCache, Table, qualified, quote},
};

use super::{
    builder::{Bind, Sql},
    read::{self, shape},
    suggest,
};

/// What the statement's result is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returns {
    /// Nothing: 204.
    Void,
    /// One JSON value (scalar or object) in `first`.
    Single,
    /// A JSON array in `body`.
    Many,
}

/// The function call statement; also whether it may run read-only.
pub fn build(
    cache: &SchemaCache,
    request: &ApiRequest,
    name: &str,
) -> RestResult<(Sql, Returns, bool)> {
    let args: Map<String, Value> = match &request.body {
        Some(Value::Object(map)) => map.clone(),
        Some(_) => return Err(RestError::body("RPC arguments must be a JSON object")),
        None => request
            .rpc_params
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    };
    let function = choose(cache, &request.schema, name, &args)?;
    let mut sql = Sql::default();
    let (record, call) = match function.args.as_slice() {
        // A single unnamed parameter: json/jsonb takes the whole body, the others the value
        // of the key "" (PostgREST's `{"": value}`).
        [(unnamed, ty)] if unnamed.is_empty() => {
            let value = if ty == "json" || ty == "jsonb" {
                Some(Value::Object(args.clone()).to_string())
            } else {
                args.get("").map(|v| match v {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
            };
            let passed = match value {
                Some(v) => format!("({})::{ty}", sql.bind(Bind::Text(v))),
                None => String::new(),
            };
            (
                "(select 1) _args".to_owned(),
                format!("{}({passed})", qualified(&function.schema, &function.name)),
            )
        }
        _ => named_call(&mut sql, function, &args),
    };
    let read_only = function.volatility != 'v' || request.method == axum::http::Method::GET;
    if function.returns_void {
        sql.push(&format!("select null::text as body, 0::bigint as page, null::bigint as total, null::text as first from {record} cross join lateral {call} _v"));
        return Ok((sql, Returns::Void, read_only));
    }
    if !function.returns_rows {
        let text = if function.returns_set {
            // With `count=`, the total of a set of scalars is its size.
            let total = if request.prefer.count.is_some() {
                "count(*)"
            } else {
                "null::bigint"
            };
            format!(
                "select coalesce(json_agg(_v), '[]'::json)::text as body, count(*) as page, {total} as total, null::text as first from {record} cross join lateral {call} _v"
            )
        } else {
            format!(
                "select null::text as body, 1::bigint as page, null::bigint as total, to_json({call})::text as first from {record}"
            )
        };
        sql.push(&text);
        let returns = if function.returns_set {
            Returns::Many
        } else {
            Returns::Single
        };
        return Ok((sql, returns, read_only));
    }
    let table = result_table(cache, function)?;
    // The call runs once, in a CTE both the rows and (with `count=`, exactly: a function has
    // no planner estimate worth giving) their total read.
    let count = match request.prefer.count {
        Some(_) if function.returns_set => Some(read::exact_count(
            &mut sql, cache, &table, request, "_call",
        )?),
        _ => None,
    };
    let text = shape(&mut sql, cache, &table, request, "_call", true, count)?;
    sql.push(&format!(
        "with _call as materialized (select _f.* from {record} cross join lateral {call} _f) {text}"
    ));
    let returns = if function.returns_set {
        Returns::Many
    } else {
        Returns::Single
    };
    Ok((sql, returns, read_only))
}

/// `json_to_record` of the named arguments, typed as the function's parameters, and the call
/// passing them by name.
fn named_call(sql: &mut Sql, function: &Function, args: &Map<String, Value>) -> (String, String) {
    let json = sql.bind(Bind::Text(Value::Object(args.clone()).to_string()));
    let passed: Vec<&(String, String)> = function
        .args
        .iter()
        .filter(|(n, _)| args.contains_key(n))
        .collect();
    let record = if passed.is_empty() {
        "(select 1) _args".to_owned()
    } else {
        let defs = passed
            .iter()
            .map(|(n, t)| format!("{} {t}", quote(n)))
            .collect::<Vec<_>>()
            .join(", ");
        format!("json_to_record({json}::json) as _args({defs})")
    };
    let call = format!(
        "{}({})",
        qualified(&function.schema, &function.name),
        passed
            .iter()
            .map(|(n, _)| format!("{} := _args.{}", quote(n), quote(n)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    (record, call)
}

/// The overload whose arguments fit the call, or PGRST202.
fn choose<'a>(
    cache: &'a SchemaCache,
    schema: &str,
    name: &str,
    args: &Map<String, Value>,
) -> RestResult<&'a Function> {
    let overloads = cache.functions(schema, name);
    let mut fitting: Vec<&Function> = overloads
        .iter()
        .filter(|f| {
            let required = f.args.len().saturating_sub(f.defaults);
            args.keys().all(|k| f.args.iter().any(|(n, _)| n == k))
                && f.args
                    .iter()
                    .take(required)
                    .all(|(n, _)| args.contains_key(n))
        })
        .collect();
    if fitting.is_empty() {
        // Else a single unnamed json/jsonb parameter takes any body.
        fitting = overloads
            .iter()
            .filter(|f| {
                matches!(f.args.as_slice(), [(n, t)] if n.is_empty() && (t == "json" || t == "jsonb"))
            })
            .collect();
    }
    fitting.sort_by_key(|f| (f.args.len(), f.args.clone()));
    if fitting.len() > 1 {
        // Overloads PostgREST cannot tell apart by the names given: 300 PGRST203.
        let signatures: Vec<String> = fitting
            .iter()
            .map(|f| {
                let params: Vec<String> =
                    f.args.iter().map(|(n, t)| format!("{n} => {t}")).collect();
                format!("{schema}.{name}({})", params.join(", "))
            })
            .collect();
        return Err(RestError::new(
            StatusCode::MULTIPLE_CHOICES,
            "PGRST203",
            format!(
                "Could not choose the best candidate function between: {}",
                signatures.join(", ")
            ),
        )
        .hint("Try renaming the parameters or the function itself in the database so function overloading can be resolved"));
    }
    fitting
        .first()
        .copied()
        .ok_or_else(|| {
            let mut names: Vec<&str> = args.keys().map(String::as_str).collect();
            names.sort();
            let list = names.join(", ");
            let (called, searched) = match names.len() {
                0 => (
                    format!("{schema}.{name} without parameters"),
                    "without parameters".to_owned(),
                ),
                1 => (
                    format!("{schema}.{name}({list})"),
                    format!("with parameter {list}"),
                ),
                _ => (
                    format!("{schema}.{name}({list})"),
                    format!("with parameters {list}"),
                ),
            };
            let error = RestError::new(
                StatusCode::NOT_FOUND,
                "PGRST202",
                format!("Could not find the function {called} in the schema cache"),
            )
            .details(format!(
                "Searched for the function {schema}.{name} {searched} or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache."
            ));
            // As PostgREST hints: with overloads of that name, the one whose parameters are
            // nearest to those given (none when none were); else the nearest name alone.
            let hint = if overloads.is_empty() {
                let names = cache
                    .all_functions()
                    .filter(|f| f.schema == schema)
                    .map(|f| f.name.as_str());
                suggest::closest(name, names).map(|near| format!("{schema}.{near}"))
            } else if list.is_empty() {
                None
            } else {
                let lists: Vec<String> = overloads
                    .iter()
                    .map(|f| {
                        let named: Vec<&str> = f
                            .args
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .filter(|n| !n.is_empty())
                            .collect();
                        named.join(", ")
                    })
                    .collect();
                suggest::closest(&list, lists.iter().map(String::as_str))
                    .map(|params| format!("{schema}.{name}({params})"))
            };
            match hint {
                Some(hint) => error.hint(format!("Perhaps you meant to call the function {hint}")),
                None => error,
            }
        })
}

/// The columns of a row-returning function: its table type or its OUT columns.
fn result_table(cache: &SchemaCache, function: &Function) -> RestResult<Table> {
    if !function.out_columns.is_empty() {
        return Ok(Table {
            schema: function.schema.clone(),
            name: function.name.clone(),
            is_view: true,
            columns: function.out_columns.clone(),
            primary_key: vec![],
            unique: vec![],
            computed: vec![],
        });
    }
    let type_name = function
        .return_type
        .rsplit('.')
        .next()
        .unwrap_or(&function.return_type);
    if let Some(table) = cache.table(&function.schema, type_name) {
        return Ok(table.clone());
    }
    Ok(Table {
        schema: function.schema.clone(),
        name: function.name.clone(),
        is_view: true,
        columns: vec![Column {
            name: function.name.clone(),
            type_name: function.return_type.clone(),
            nullable: true,
            default: None,
        }],
        primary_key: vec![],
        unique: vec![],
        computed: vec![],
    })
}
