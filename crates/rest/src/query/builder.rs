//! The SQL text under construction with its bind parameters, and the rendering shared by
//! every statement: fields, filters, logic trees, ordering, paging.

use crate::{
    error::{RestError, RestResult},
    request::{
        Field, Filter, Logic, Op, OrderTerm,
        filter::{Arrow, PathKey},
    },
    schema::{Column, Table, qualified, quote},
};

/// A bind parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    /// Text (cast in SQL to the column's type).
    Text(String),
    /// A text array (cast in SQL).
    TextArray(Vec<String>),
    /// An integer.
    Int(i64),
}

/// SQL text and its parameters.
#[derive(Debug, Default, Clone)]
pub struct Sql {
    /// The statement.
    pub text: String,
    /// Its parameters, `$1` first.
    pub binds: Vec<Bind>,
    /// The statement returns no rows: the count is the number of rows it affected.
    pub counts_affected: bool,
    /// A planned or estimated total, counted by statements of its own in the same
    /// transaction (an exact total is part of the statement itself).
    pub count: Option<CountQuery>,
}

/// The rows a read would return, as `from … where …` with its own parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct CountQuery {
    /// Planned or estimated.
    pub kind: crate::request::prefer::Count,
    /// `from <relation> t0 where …`.
    pub from: String,
    /// Its parameters, `$1` first.
    pub binds: Vec<Bind>,
}

impl Sql {
    /// Adds a parameter; returns its placeholder.
    pub fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    /// Appends text.
    pub fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }
}

/// The relation a clause is rendered against: its table and SQL alias (`t0`, `t1`, ...).
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    /// Columns and name.
    pub table: &'a Table,
    /// SQL alias.
    pub alias: &'a str,
    /// Nesting depth (for child aliases).
    pub depth: usize,
}

impl Scope<'_> {
    /// A column of this relation, or 42703 naming the relation as PostgREST aliases it: the
    /// table at the top, `{table}_{depth}` inside an embed.
    pub fn column(&self, name: &str) -> RestResult<&Column> {
        self.table.column(name).ok_or_else(|| {
            let relation = match self.depth {
                0 => self.table.name.clone(),
                depth => format!("{}_{depth}", self.table.name),
            };
            RestError::unknown_column(&relation, name)
        })
    }
}

/// `alias."col"` with its JSON path; returns the SQL and whether the result is text, JSON or
/// the column's own type.
pub fn field(sql: &mut Sql, scope: Scope, field: &Field) -> RestResult<(String, FieldType)> {
    let (mut out, mut kind) = match scope.table.computed_field(&field.name) {
        // A computed field is its function applied to the row.
        Some(computed) if scope.table.column(&field.name).is_none() => (
            format!(
                "{}({}::{})",
                qualified(&computed.schema, &computed.function),
                scope.alias,
                qualified(&scope.table.schema, &scope.table.name)
            ),
            FieldType::Column(computed.type_name.clone()),
        ),
        _ => {
            let column = scope.column(&field.name)?;
            (
                format!("{}.{}", scope.alias, quote(&column.name)),
                FieldType::Column(column.type_name.clone()),
            )
        }
    };
    for step in &field.path {
        let key = match &step.key {
            PathKey::Field(k) => sql.bind(Bind::Text(k.clone())),
            PathKey::Index(i) => format!("({})::int", sql.bind(Bind::Int(*i))),
        };
        let (arrow, next) = match step.arrow {
            Arrow::Json => ("->", FieldType::Json),
            Arrow::Text => ("->>", FieldType::Text),
        };
        // Plain json(b) columns take arrows; anything else is cast to jsonb first.
        if matches!(kind, FieldType::Column(ref t) if t != "json" && t != "jsonb") {
            out = format!("({out})::jsonb");
        }
        out = format!("({out}{arrow}{key})");
        kind = next;
    }
    Ok((out, kind))
}

/// What a rendered field yields.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldType {
    /// The column's type (named).
    Column(String),
    /// `->` : json(b).
    Json,
    /// `->>` : text.
    Text,
}

impl FieldType {
    fn cast(&self) -> String {
        match self {
            FieldType::Column(t) => t.clone(),
            FieldType::Json => "jsonb".into(),
            FieldType::Text => "text".into(),
        }
    }
}

/// One filter as SQL.
pub fn filter(sql: &mut Sql, scope: Scope, f: &Filter) -> RestResult<String> {
    let (lhs, kind) = field(sql, scope, &f.field)?;
    let ty = kind.cast();
    let value = |sql: &mut Sql, i: usize| {
        sql.bind(Bind::Text(f.values.get(i).cloned().unwrap_or_default()))
    };
    let expr = match &f.op {
        Op::Is(keyword) => format!("{lhs} is {keyword}"),
        Op::In if f.values.is_empty() => "false".to_owned(),
        Op::In => {
            let list = sql.bind(Bind::TextArray(f.values.clone()));
            format!("{lhs} = any({list}::text[]::{ty}[])")
        }
        Op::Binary(op @ ("like" | "ilike")) => {
            let pattern = f
                .values
                .first()
                .cloned()
                .unwrap_or_default()
                .replace('*', "%");
            let p = sql.bind(Bind::Text(pattern));
            format!("{lhs}::text {op} {p}")
        }
        Op::Binary(op @ ("~" | "~*")) => {
            let p = value(sql, 0);
            format!("{lhs}::text {op} {p}")
        }
        Op::Binary(op) => {
            let p = value(sql, 0);
            format!("{lhs} {op} {p}::{ty}")
        }
        Op::Quantified(op @ ("like" | "ilike"), any) => {
            let list: Vec<String> = f.values.iter().map(|v| v.replace('*', "%")).collect();
            let p = sql.bind(Bind::TextArray(list));
            format!(
                "{lhs}::text {op} {}({p}::text[])",
                if *any { "any" } else { "all" }
            )
        }
        Op::Quantified(op, any) => {
            let p = sql.bind(Bind::TextArray(f.values.clone()));
            format!(
                "{lhs} {op} {}({p}::text[]::{ty}[])",
                if *any { "any" } else { "all" }
            )
        }
        Op::Fts(function, config) => {
            let q = value(sql, 0);
            let config = match config {
                Some(c) => format!("{}::regconfig, ", sql.bind(Bind::Text(c.clone()))),
                None => String::new(),
            };
            let document = if ty == "tsvector" {
                lhs.clone()
            } else {
                format!("to_tsvector({config}{lhs}::text)")
            };
            format!("{document} @@ {function}({config}{q})")
        }
    };
    Ok(if f.negated {
        format!("not ({expr})")
    } else {
        expr
    })
}

/// A logic tree (or a single filter) as SQL.
pub fn logic(sql: &mut Sql, scope: Scope, node: &Logic) -> RestResult<String> {
    match node {
        Logic::Filter(f) => filter(sql, scope, f),
        Logic::Tree { or, negated, items } => {
            let parts = items
                .iter()
                .map(|i| logic(sql, scope, i))
                .collect::<RestResult<Vec<_>>>()?;
            let joined = if parts.is_empty() {
                "true".to_owned()
            } else {
                format!("({})", parts.join(if *or { " or " } else { " and " }))
            };
            Ok(if *negated {
                format!("not {joined}")
            } else {
                joined
            })
        }
    }
}

/// ` where a and b` (or nothing).
pub fn where_clause(
    sql: &mut Sql,
    scope: Scope,
    nodes: &[Logic],
    extra: &[String],
) -> RestResult<String> {
    let mut parts = nodes
        .iter()
        .map(|n| logic(sql, scope, n))
        .collect::<RestResult<Vec<_>>>()?;
    parts.extend(extra.iter().cloned());
    Ok(if parts.is_empty() {
        String::new()
    } else {
        format!(" where {}", parts.join(" and "))
    })
}

/// ` order by …` of grouped rows: each term names an output column.
pub fn grouped_order_clause(terms: &[OrderTerm]) -> String {
    if terms.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = terms
        .iter()
        .map(|t| {
            let nulls = match t.nulls_first {
                Some(true) => " nulls first",
                Some(false) => " nulls last",
                None => "",
            };
            let direction = if t.desc { "desc" } else { "asc" };
            format!("{} {direction}{nulls}", quote(&t.field.name))
        })
        .collect();
    format!(" order by {}", parts.join(", "))
}

/// ` order by …` (or nothing).
pub fn order_clause(sql: &mut Sql, scope: Scope, terms: &[OrderTerm]) -> RestResult<String> {
    if terms.is_empty() {
        return Ok(String::new());
    }
    let parts = terms
        .iter()
        .map(|t| {
            let (f, _) = field(sql, scope, &t.field)?;
            let nulls = match t.nulls_first {
                Some(true) => " nulls first",
                Some(false) => " nulls last",
                None => "",
            };
            Ok(format!(
                "{f} {}{nulls}",
                if t.desc { "desc" } else { "asc" }
            ))
        })
        .collect::<RestResult<Vec<_>>>()?;
    Ok(format!(" order by {}", parts.join(", ")))
}

/// ` limit $n offset $m` (or nothing).
pub fn paging(sql: &mut Sql, limit: Option<i64>, offset: Option<i64>) -> String {
    let mut out = String::new();
    if let Some(limit) = limit {
        out.push_str(&format!(" limit {}", sql.bind(Bind::Int(limit))));
    }
    if let Some(offset) = offset.filter(|o| *o > 0) {
        out.push_str(&format!(" offset {}", sql.bind(Bind::Int(offset))));
    }
    out
}
