//! `/rest/v1`'s part of `/openapi.json`, generated from the [`SchemaCache`] as PostgREST
//! generates its own: every table and view of the default schema with its row type, and every
//! function under `/rpc`. Row-level security still decides what each caller sees.

use tally_core::openapi::{Doc, Op, object};
use utoipa::openapi::{
    HttpMethod::{self, *},
    KnownFormat, OpenApi, Ref, Schema, SchemaFormat,
    schema::{ArrayBuilder, ArrayItems, ObjectBuilder, SchemaType, Type},
};

use crate::schema::{Column, Function, SchemaCache, Table};

/// How rows are picked, said once for every read, update and delete.
const FILTERS: &str = "Filter on any column of the row type: `?column=op.value` with PostgREST's operators (`eq`, `neq`, `gt`, `gte`, `lt`, `lte`, `like`, `ilike`, `in.(…)`, `is.null`, `cs`, `cd`, `fts`, `not.`…), and `or=(…)` / `and=(…)`.";

/// The REST operations on the tables, views and functions of `schema` (the default one).
pub fn openapi(cache: &SchemaCache, schema: &str) -> OpenApi {
    let mut doc = Doc::new(
        "rest",
        "RestError",
        object(&[
            ("code", Type::String, true),
            ("message", Type::String, true),
            ("details", Type::String, false),
            ("hint", Type::String, false),
        ]),
    );
    let mut tables: Vec<&Table> = cache.tables().filter(|t| t.schema == schema).collect();
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    for table in tables {
        doc = doc.schema(&table.name, row(&table.columns));
        let path = format!("/{}", table.name);
        let rows = || {
            ArrayBuilder::new()
                .items(Ref::from_schema_name(&table.name))
                .into()
        };
        let filtered = |method: HttpMethod, summary: String| {
            Op::new(method, &path, &summary).describe(FILTERS)
        };
        doc = doc.op(filtered(Get, format!("Read {}", table.name))
            .query(
                "select",
                "Columns and embedded relations, e.g. `*,projects(name)`",
            )
            .query("order", "e.g. `started_at.desc.nullslast`")
            .query("limit", "At most this many rows")
            .query("offset", "Skip this many rows")
            .header("Prefer", "`count=exact|planned|estimated`")
            .header("Range", "Rows `0-24`")
            .answers(200, "The rows the caller may read", Some(rows()))
            .answers(
                206,
                "A page of them (`Content-Range` tells where)",
                Some(rows()),
            ));
        if table.is_view {
            continue;
        }
        let body = Ref::from_schema_name(&table.name);
        doc = doc
            .op(Op::new(Post, &path, &format!("Insert into {}", table.name))
                .query("columns", "The columns to take from the body")
                .query("on_conflict", "Upsert on these unique columns")
                .header("Prefer", "`return=representation|minimal`, `resolution=merge-duplicates|ignore-duplicates`, `missing=default`")
                .body("application/json", body.clone())
                .answers(201, "Inserted (the rows with `return=representation`)", Some(rows())))
            .op(filtered(Patch, format!("Update {}", table.name))
                .header("Prefer", "`return=representation|minimal`")
                .body("application/json", body)
                .answers(200, "The updated rows (`return=representation`)", Some(rows()))
                .answers(204, "Updated", None))
            .op(filtered(Delete, format!("Delete from {}", table.name))
                .header("Prefer", "`return=representation|minimal`")
                .answers(200, "The deleted rows (`return=representation`)", Some(rows()))
                .answers(204, "Deleted", None));
    }
    let mut functions: Vec<&Function> = cache
        .all_functions()
        .filter(|f| f.schema == schema && !f.return_type.ends_with("trigger"))
        .collect();
    functions.sort_by(|a, b| a.name.cmp(&b.name));
    functions.dedup_by(|a, b| a.name == b.name);
    for f in functions {
        let path = format!("/rpc/{}", f.name);
        let args = f
            .args
            .iter()
            .enumerate()
            .fold(ObjectBuilder::new(), |o, (i, (name, ty))| {
                let o = o.property(name, value(ty, false));
                if i < f.args.len() - f.defaults {
                    o.required(name)
                } else {
                    o
                }
            });
        doc = doc.op(Op::new(Post, &path, &format!("Call {}", f.name))
            .body("application/json", args)
            .answers(
                200,
                &format!("Its result ({})", f.return_type),
                Some(result(f)),
            )
            .answers(204, "Done (it returns void)", None));
    }
    doc.build()
}

/// A row: one property per column; required for inserts when NOT NULL without a default.
fn row(columns: &[Column]) -> Schema {
    columns
        .iter()
        .fold(ObjectBuilder::new(), |o, c| {
            let o = o.property(&c.name, value(&c.type_name, c.nullable));
            if c.nullable || c.default.is_some() {
                o
            } else {
                o.required(&c.name)
            }
        })
        .into()
}

fn result(f: &Function) -> Schema {
    let one = if f.out_columns.is_empty() {
        value(&f.return_type, true)
    } else {
        row(&f.out_columns)
    };
    if f.returns_set {
        ArrayBuilder::new()
            .items(ArrayItems::RefOrSchema(Box::new(one.into())))
            .into()
    } else {
        one
    }
}

/// The JSON form PostgREST gives a value of PostgreSQL type `type_name` (as `format_type`
/// names it).
fn value(type_name: &str, nullable: bool) -> Schema {
    if let Some(item) = type_name.strip_suffix("[]") {
        let item = value(item, false);
        return ArrayBuilder::new()
            .items(ArrayItems::RefOrSchema(Box::new(item.into())))
            .into();
    }
    let base = type_name.split('(').next().unwrap_or(type_name);
    let (ty, format) = match base {
        "json" | "jsonb" => {
            return ObjectBuilder::new()
                .schema_type(SchemaType::AnyValue)
                .into();
        }
        "smallint" | "integer" => (Type::Integer, Some(KnownFormat::Int32)),
        "bigint" => (Type::Integer, Some(KnownFormat::Int64)),
        "real" => (Type::Number, Some(KnownFormat::Float)),
        "double precision" => (Type::Number, Some(KnownFormat::Double)),
        "numeric" => (Type::Number, None),
        "boolean" => (Type::Boolean, None),
        "uuid" => (Type::String, Some(KnownFormat::Uuid)),
        "date" => (Type::String, Some(KnownFormat::Date)),
        t if t.starts_with("timestamp") => (Type::String, Some(KnownFormat::DateTime)),
        _ => (Type::String, None),
    };
    let schema_type: SchemaType = if nullable {
        [ty, Type::Null].into_iter().collect()
    } else {
        ty.into()
    };
    ObjectBuilder::new()
        .schema_type(schema_type)
        .format(format.map(SchemaFormat::KnownFormat))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_types_map_to_the_json_postgrest_sends() {
        let json = |t: &str, n: bool| serde_json::to_value(value(t, n)).unwrap_or_default();
        assert_eq!(json("bigint", false)["type"], "integer");
        assert_eq!(json("bigint", false)["format"], "int64");
        assert_eq!(json("numeric(5,2)", false)["type"], "number");
        assert_eq!(
            json("uuid", true)["type"],
            serde_json::json!(["string", "null"])
        );
        assert_eq!(
            json("timestamp with time zone", false)["format"],
            "date-time"
        );
        assert_eq!(json("text[]", false)["items"]["type"], "string");
        assert!(json("jsonb", true).get("type").is_none(), "any JSON value");
        assert_eq!(
            json("log_status", false)["type"],
            "string",
            "enums are strings"
        );
    }
}
