//! Reads: `GET`/`HEAD` on a table or view as one statement returning the JSON body, the page
//! size and (with `Prefer: count=`) the total.

use axum::http::{Method, StatusCode};

use crate::{
    error::{RestError, RestResult},
    request::{ApiRequest, Target, prefer::Count},
    schema::{SchemaCache, Table, qualified},
};

use super::{
    builder::{CountQuery, Scope, Sql, grouped_order_clause, order_clause, paging, where_clause},
    embed::select_list,
};

/// The relation a request targets, or PGRST205.
pub fn relation<'a>(cache: &'a SchemaCache, schema: &str, name: &str) -> RestResult<&'a Table> {
    cache.table(schema, name).ok_or_else(|| {
        RestError::new(
            StatusCode::NOT_FOUND,
            "PGRST205",
            format!("Could not find the table '{schema}.{name}' in the schema cache"),
        )
    })
}

/// Wraps a source query (`from_sql`, aliased `t0`) into the body-producing statement:
/// `body` (JSON text), `page` (rows in it), `total` (or null), `first` (the first row).
pub fn shape(
    sql: &mut Sql,
    cache: &SchemaCache,
    table: &Table,
    request: &ApiRequest,
    from_sql: &str,
    with_paging: bool,
    count_sql: Option<String>,
) -> RestResult<String> {
    shape_with(
        sql,
        cache,
        table,
        request,
        from_sql,
        with_paging,
        count_sql,
        None,
    )
}

/// [`shape`], plus an `inserted` column (rows an upsert inserted rather than updated).
#[expect(
    clippy::too_many_arguments,
    reason = "one statement's parts, passed through"
)]
pub fn shape_with(
    sql: &mut Sql,
    cache: &SchemaCache,
    table: &Table,
    request: &ApiRequest,
    from_sql: &str,
    with_paging: bool,
    count_sql: Option<String>,
    inserted_sql: Option<String>,
) -> RestResult<String> {
    let scope = Scope {
        table,
        alias: "t0",
        depth: 0,
    };
    let top = request.modifiers(&[]);
    let selection = select_list(sql, cache, scope, &request.select, request, &[])?;
    let filters = where_clause(sql, scope, &top.logic, &selection.conditions)?;
    let order = if selection.is_grouped() {
        grouped_order_clause(&top.order)
    } else {
        order_clause(sql, scope, &top.order)?
    };
    let page = if with_paging {
        paging(sql, top.limit, top.offset)
    } else {
        String::new()
    };
    let total = count_sql.unwrap_or_else(|| "null::bigint".to_owned());
    let inserted = inserted_sql.unwrap_or_else(|| "null::bigint".to_owned());
    // `nulls=stripped`: null fields leave the objects (nested ones too).
    let rows = if request.strip_nulls {
        "json_strip_nulls(json_agg(_r))"
    } else {
        "json_agg(_r)"
    };
    // CSV as PostgREST writes it: the first row's keys, then each row's record text without
    // its parentheses (PostgreSQL's quoting, `t`/`f`, null as nothing), one per line.
    let body = if request.csv {
        "(select coalesce(string_agg(_k, ','), '') \
           from (select json_object_keys(json_agg(_r) -> 0) as _k) _h) || chr(10) || \
         coalesce(string_agg(substring(_r::text, 2, length(_r::text) - 2), chr(10)), '')"
            .to_owned()
    } else {
        format!("coalesce({rows}, '[]'::json)::text")
    };
    // The first row alone: for a single object (`vnd.pgrst.object`), a function's single
    // row, a write's `Location`; a list of a table does without it.
    let list = matches!(request.method, Method::GET | Method::HEAD)
        && matches!(request.target, Target::Relation(_));
    let first = if request.single || !list {
        format!("({rows} -> 0)::text")
    } else {
        "null::text".to_owned()
    };
    let source = format!("{from_sql} t0");
    Ok(format!(
        "select {body} as body, count(_r) as page, {total} as total, \
                {inserted} as inserted, {first} as first \
         from ({}) _r",
        selection.rows(&source, &filters, &order, &page)
    ))
}

/// The exact total of `source` (aliased `t0`) under the request's top-level filters, as a
/// subquery of the statement `sql` builds.
pub fn exact_count(
    sql: &mut Sql,
    cache: &SchemaCache,
    table: &Table,
    request: &ApiRequest,
    source: &str,
) -> RestResult<String> {
    let filters = top_filters(sql, cache, table, request)?;
    Ok(format!("(select count(*) from {source} t0{filters})"))
}

/// The `where` clause of the request's top level (inner embeds included), binding into `sql`.
fn top_filters(
    sql: &mut Sql,
    cache: &SchemaCache,
    table: &Table,
    request: &ApiRequest,
) -> RestResult<String> {
    let scope = Scope {
        table,
        alias: "t0",
        depth: 0,
    };
    let selection = select_list(sql, cache, scope, &request.select, request, &[])?;
    where_clause(
        sql,
        scope,
        &request.modifiers(&[]).logic,
        &selection.conditions,
    )
}

/// The read statement.
pub fn build(cache: &SchemaCache, request: &ApiRequest, name: &str) -> RestResult<Sql> {
    let table = relation(cache, &request.schema, name)?;
    let mut sql = Sql::default();
    let source = qualified(&table.schema, &table.name);
    // An exact total is a subquery of the statement; a planned one is asked of the planner
    // afterwards, with parameters of its own.
    let count = match request.prefer.count {
        None => None,
        Some(Count::Exact) => Some(exact_count(&mut sql, cache, table, request, &source)?),
        Some(kind) => {
            let mut own = Sql::default();
            let filters = top_filters(&mut own, cache, table, request)?;
            sql.count = Some(CountQuery {
                kind,
                from: format!("from {source} t0{filters}"),
                binds: own.binds,
            });
            None
        }
    };
    let text = shape(&mut sql, cache, table, request, &source, true, count)?;
    sql.push(&text);
    Ok(sql)
}
