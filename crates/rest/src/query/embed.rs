//! Select lists and the resources embedded in them (rendered together, as each renders the
//! other): columns, aggregates (grouped by the other columns) and embeds — finding the
//! relationship (many-to-one, one-to-many, one-to-one, many-to-many through a join table,
//! computed by a function of the row; FK and column hints) and rendering the correlated
//! subquery that nests the related rows as an object, an array, or spread columns.

use axum::http::StatusCode;

use crate::{
    error::{RestError, RestResult},
    request::{
        ApiRequest, Field, SelectItem,
        filter::PathKey,
        select::{Aggregate, Join},
    },
    schema::{ComputedRelation, ForeignKey, SchemaCache, Table, qualified, quote},
};

use super::{
    builder::{Scope, Sql, field, grouped_order_clause, order_clause, paging, where_clause},
    suggest,
};

/// How two relations are related.
enum Relationship<'a> {
    /// The parent holds the key.
    ManyToOne(&'a ForeignKey),
    /// The child holds the key; `true` when the key is unique (one-to-one).
    OneToMany(&'a ForeignKey, bool),
    /// Through a join table.
    ManyToMany(&'a Table, &'a ForeignKey, &'a ForeignKey),
    /// Rows a function of the parent's row returns.
    Computed(&'a ComputedRelation),
}

impl Relationship<'_> {
    fn to_one(&self) -> bool {
        match self {
            Relationship::ManyToOne(_) | Relationship::OneToMany(_, true) => true,
            Relationship::Computed(function) => function.to_one,
            _ => false,
        }
    }

    /// `{cardinality, embedding, relationship}` as PostgREST lists a candidate in PGRST201,
    /// and the hint that picks it (`name!hint`).
    fn describe(&self, parent: &str, child: &str) -> (serde_json::Value, String) {
        let cols =
            |table: &(String, String), cols: &[String]| format!("{}({})", table.1, cols.join(", "));
        let (cardinality, relationship, hint) = match self {
            Relationship::ManyToOne(fk) => (
                "many-to-one",
                format!(
                    "{} using {} and {}",
                    fk.name,
                    cols(&fk.table, &fk.columns),
                    cols(&fk.references, &fk.ref_columns)
                ),
                fk.name.clone(),
            ),
            Relationship::OneToMany(fk, unique) => (
                if *unique { "one-to-one" } else { "one-to-many" },
                format!(
                    "{} using {} and {}",
                    fk.name,
                    cols(&fk.references, &fk.ref_columns),
                    cols(&fk.table, &fk.columns)
                ),
                fk.name.clone(),
            ),
            Relationship::ManyToMany(j, a, b) => (
                "many-to-many",
                format!(
                    "{} using {}({}) and {}({})",
                    j.name,
                    a.name,
                    a.columns.join(", "),
                    b.name,
                    b.columns.join(", ")
                ),
                j.name.clone(),
            ),
            Relationship::Computed(function) => (
                if function.to_one {
                    "many-to-one"
                } else {
                    "one-to-many"
                },
                format!("{}.{}", function.schema, function.function),
                function.function.clone(),
            ),
        };
        (
            serde_json::json!({"cardinality": cardinality,
                "embedding": format!("{parent} with {child}"), "relationship": relationship}),
            hint,
        )
    }

    fn matches_hint(&self, hint: &str) -> bool {
        let fk_matches = |fk: &ForeignKey| {
            fk.name == hint
                || fk.columns.iter().any(|c| c == hint)
                || fk.ref_columns.iter().any(|c| c == hint)
        };
        match self {
            Relationship::ManyToOne(fk) | Relationship::OneToMany(fk, _) => fk_matches(fk),
            Relationship::ManyToMany(j, a, b) => j.name == hint || fk_matches(a) || fk_matches(b),
            Relationship::Computed(function) => function.function == hint,
        }
    }
}

fn resolve<'a>(
    cache: &'a SchemaCache,
    parent: &'a Table,
    name: &str,
    hint: Option<&str>,
) -> RestResult<(&'a Table, Relationship<'a>)> {
    let not_found = || {
        // The names the parent is related to, for a "Perhaps you meant…".
        let pk = parent.key();
        let related: Vec<&str> = cache
            .keys_from(&pk)
            .map(|fk| fk.references.1.as_str())
            .chain(cache.keys_to(&pk).map(|fk| fk.table.1.as_str()))
            .collect();
        let error = RestError::new(
            StatusCode::BAD_REQUEST,
            "PGRST200",
            format!(
                "Could not find a relationship between '{}' and '{name}' in the schema cache",
                parent.name
            ),
        )
        .details(format!(
            "Searched for a foreign key relationship between '{}' and '{name}'{} in the schema '{}', but no matches were found.",
            parent.name,
            hint.map(|h| format!(" using the hint '{h}'")).unwrap_or_default(),
            parent.schema
        ));
        // No suggestion when the name is one the parent is related to (only the hint missed).
        match suggest::closest(name, related).filter(|near| *near != name) {
            Some(near) => error.hint(format!("Perhaps you meant '{near}' instead of '{name}'.")),
            None => error,
        }
    };
    // A function of the parent's row, named like the embed, is a computed relationship.
    if let Some(function) = cache.computed_relation(&parent.key(), name)
        && let Some(child) = cache.table(&function.to.0, &function.to.1)
    {
        return Ok((child, Relationship::Computed(function)));
    }
    let Some(child) = cache.table(&parent.schema, name) else {
        return by_key(cache, parent, name).ok_or_else(not_found);
    };
    let (pk, ck) = (parent.key(), child.key());
    let mut candidates: Vec<Relationship> = Vec::new();
    // A table embedding itself by name means its children (one-to-many), as PostgREST
    // disambiguates self-references; the parent is reached by the key's column or name.
    for fk in cache
        .keys_from(&pk)
        .filter(|fk| fk.references == ck && pk != ck)
    {
        candidates.push(Relationship::ManyToOne(fk));
    }
    for fk in cache.keys_to(&pk).filter(|fk| fk.table == ck) {
        candidates.push(Relationship::OneToMany(fk, child.is_unique(&fk.columns)));
    }
    for to_parent in cache.keys_to(&pk) {
        let junction_key = &to_parent.table;
        if *junction_key == pk || *junction_key == ck {
            continue;
        }
        let Some(junction) = cache.table(&junction_key.0, &junction_key.1) else {
            continue;
        };
        for to_child in cache
            .keys_from(junction_key)
            .filter(|fk| fk.references == ck)
        {
            candidates.push(Relationship::ManyToMany(junction, to_parent, to_child));
        }
    }
    if let Some(hint) = hint {
        // A table embedding itself (its children) is hinted by the key's column only
        // (`auditees:organizations!auditor(*)`), as PostgREST reads self-references.
        candidates.retain(|c| match c {
            Relationship::OneToMany(fk, _) if pk == ck => fk.columns == [hint],
            _ => c.matches_hint(hint),
        });
    }
    match candidates.len() {
        0 => Err(not_found()),
        1 => Ok((child, candidates.remove(0))),
        _ => {
            let (details, hints): (Vec<_>, Vec<_>) = candidates
                .iter()
                .map(|c| c.describe(&parent.name, &child.name))
                .unzip();
            let hints: Vec<String> = hints.iter().map(|h| format!("'{name}!{h}'")).collect();
            Err(RestError::new(
                StatusCode::MULTIPLE_CHOICES,
                "PGRST201",
                format!("Could not embed because more than one relationship was found for '{}' and '{name}'", parent.name),
            )
            .details_value(serde_json::Value::Array(details))
            .hint(format!(
                "Try changing '{name}' to one of the following: {}. Find the desired relationship in the 'details' key.",
                hints.join(", ")
            )))
        }
    }
}

/// An embed named by a foreign key instead of a table, as PostgREST allows: the constraint's
/// name (`best_friends_first_user_fkey(*)`, either direction) or its column on the parent
/// (`parent_id(*)`, to one).
fn by_key<'a>(
    cache: &'a SchemaCache,
    parent: &'a Table,
    name: &str,
) -> Option<(&'a Table, Relationship<'a>)> {
    let pk = parent.key();
    let to_one = cache
        .keys_from(&pk)
        .find(|fk| fk.name == name || fk.columns == [name]);
    if let Some(fk) = to_one {
        let child = cache.table(&fk.references.0, &fk.references.1)?;
        return Some((child, Relationship::ManyToOne(fk)));
    }
    let fk = cache.keys_to(&pk).find(|fk| fk.name == name)?;
    let child = cache.table(&fk.table.0, &fk.table.1)?;
    Some((
        child,
        Relationship::OneToMany(fk, child.is_unique(&fk.columns)),
    ))
}

/// What the child rows are read from: the child relation, or the computed relationship's
/// function applied to the parent's row.
fn source(rel: &Relationship, child: &Table, parent: Scope) -> String {
    match rel {
        Relationship::Computed(function) => format!(
            "{}({}::{})",
            qualified(&function.schema, &function.function),
            parent.alias,
            qualified(&parent.table.schema, &parent.table.name)
        ),
        _ => qualified(&child.schema, &child.name),
    }
}

/// The join condition between the parent scope and the child alias.
fn join_condition(rel: &Relationship, parent: Scope, child: &str) -> String {
    let pairs = |left: &str, lcols: &[String], right: &str, rcols: &[String]| {
        lcols
            .iter()
            .zip(rcols)
            .map(|(l, r)| format!("{left}.{} = {right}.{}", quote(l), quote(r)))
            .collect::<Vec<_>>()
            .join(" and ")
    };
    match rel {
        Relationship::ManyToOne(fk) => pairs(child, &fk.ref_columns, parent.alias, &fk.columns),
        Relationship::OneToMany(fk, _) => pairs(child, &fk.columns, parent.alias, &fk.ref_columns),
        Relationship::ManyToMany(junction, to_parent, to_child) => format!(
            "exists (select 1 from {} _j where {} and {})",
            qualified(&junction.schema, &junction.name),
            pairs(
                "_j",
                &to_parent.columns,
                parent.alias,
                &to_parent.ref_columns
            ),
            pairs("_j", &to_child.columns, child, &to_child.ref_columns),
        ),
        // The function already gives the parent's rows only.
        Relationship::Computed(_) => "true".to_owned(),
    }
}

/// An embed rendered into the parent's select list.
pub struct Rendered {
    /// Select-list entries.
    pub columns: Vec<String>,
    /// Conditions the parent must meet (`!inner`).
    pub parent_conditions: Vec<String>,
}

/// Renders one embed of `parent`.
pub fn render(
    sql: &mut Sql,
    cache: &SchemaCache,
    parent: Scope,
    item: &SelectItem,
    request: &ApiRequest,
    path: &[String],
) -> RestResult<Rendered> {
    let SelectItem::Embed {
        name,
        alias,
        hint,
        join,
        spread,
        items,
    } = item
    else {
        return Ok(Rendered {
            columns: vec![],
            parent_conditions: vec![],
        });
    };
    let (child, rel) = resolve(cache, parent.table, name, hint.as_deref())?;
    let output = alias.clone().unwrap_or_else(|| name.clone());
    let mut child_path = path.to_vec();
    child_path.push(output.clone());
    let mut modifiers = request.modifiers(&child_path);
    if modifiers == Default::default() && alias.is_some() {
        child_path.pop();
        child_path.push(name.clone());
        modifiers = request.modifiers(&child_path);
    }
    let alias_sql = format!("t{}", parent.depth + 1);
    let scope = Scope {
        table: child,
        alias: &alias_sql,
        depth: parent.depth + 1,
    };
    let table = source(&rel, child, parent);
    let join_sql = join_condition(&rel, parent, &alias_sql);
    let selection = select_list(sql, cache, scope, items, request, &child_path)?;
    let mut conditions = vec![join_sql.clone()];
    conditions.extend(selection.conditions.iter().cloned());
    let order = |sql: &mut Sql| {
        if selection.is_grouped() {
            Ok(grouped_order_clause(&modifiers.order))
        } else {
            order_clause(sql, scope, &modifiers.order)
        }
    };
    let from = format!("{table} {alias_sql}");
    let columns = &selection.columns;
    let filters = where_clause(sql, scope, &modifiers.logic, &conditions)?;
    let mut parent_conditions = Vec::new();
    if *join == Join::Inner {
        let again = where_clause(sql, scope, &modifiers.logic, &[join_sql])?;
        parent_conditions.push(format!("exists (select 1 from {table} {alias_sql}{again})"));
    }
    if *spread {
        let output_of = |c: &String| {
            c.rsplit_once(" as ").map_or_else(
                || c.rsplit('.').next().unwrap_or(c).to_owned(),
                |(_, a)| a.to_owned(),
            )
        };
        let columns = if rel.to_one() {
            columns
                .iter()
                .map(|c| {
                    let output = output_of(c);
                    format!(
                        "(select _e.{output} from ({}) _e) as {output}",
                        selection.rows(&from, &filters, "", " limit 1")
                    )
                })
                .collect()
        } else {
            // To many (as PostgREST 13): each spread column becomes the array of its values,
            // in the embed's order.
            let order = order(sql)?;
            let page = paging(sql, modifiers.limit, modifiers.offset);
            let rows = format!("({}) _e", selection.rows(&from, &filters, &order, &page));
            columns
                .iter()
                .map(|c| {
                    let output = output_of(c);
                    format!("(select coalesce(json_agg(_e.{output}), '[]'::json) from {rows}) as {output}")
                })
                .collect()
        };
        return Ok(Rendered {
            columns,
            parent_conditions,
        });
    }
    let column = if rel.to_one() {
        format!(
            "(select row_to_json(_e) from ({}) _e) as {}",
            selection.rows(&from, &filters, "", " limit 1"),
            quote(&output)
        )
    } else {
        let order = order(sql)?;
        let page = paging(sql, modifiers.limit, modifiers.offset);
        format!(
            "coalesce((select json_agg(_e) from ({}) _e), '[]'::json) as {}",
            selection.rows(&from, &filters, &order, &page),
            quote(&output)
        )
    };
    Ok(Rendered {
        columns: vec![column],
        parent_conditions,
    })
}

/// A relation's select list, ready to render with [`Selection::rows`].
pub struct Selection {
    /// `expr as "name"` entries; with aggregates, the grouped (outer) list.
    pub columns: Vec<String>,
    /// Conditions the relation's rows must meet (`!inner` embeds).
    pub conditions: Vec<String>,
    /// With aggregates: the per-row (inner) list and the `group by`.
    grouped: Option<Grouped>,
}

struct Grouped {
    inner: Vec<String>,
    group_by: String,
}

impl Selection {
    /// `select … from <source><filters><order><page>`; with aggregates, the rows are read in a
    /// subquery and grouped by every column that is not an aggregate.
    pub fn rows(&self, source: &str, filters: &str, order: &str, page: &str) -> String {
        match &self.grouped {
            None => format!(
                "select {} from {source}{filters}{order}{page}",
                self.columns.join(", ")
            ),
            Some(g) => format!(
                "select {} from (select {} from {source}{filters}) _g{}{order}{page}",
                self.columns.join(", "),
                g.inner.join(", "),
                g.group_by
            ),
        }
    }

    /// Whether the rows are grouped (order terms then name output columns).
    pub fn is_grouped(&self) -> bool {
        self.grouped.is_some()
    }
}

/// One entry of a select list before it is rendered flat or grouped.
enum Entry {
    /// A column (or computed field): `expr`, output name (quoted).
    Column(String, String),
    /// An embed's output (JSON, or a spread's value): grouped as jsonb.
    Embedded(String, String),
    /// An aggregate: function, input expression, output cast, output name (quoted).
    Aggregate(Aggregate, Option<String>, Option<String>, String),
}

/// The select list of a relation: columns (aliased, cast, JSON paths), aggregates and embeds.
pub fn select_list(
    sql: &mut Sql,
    cache: &SchemaCache,
    scope: Scope,
    items: &[SelectItem],
    request: &crate::request::ApiRequest,
    path: &[String],
) -> RestResult<Selection> {
    let mut entries = Vec::new();
    let mut conditions = Vec::new();
    let mut embedded: Vec<&String> = Vec::new();
    for item in items {
        match item {
            SelectItem::Star => {
                for c in &scope.table.columns {
                    entries.push(Entry::Column(
                        format!("{}.{}", scope.alias, quote(&c.name)),
                        quote(&c.name),
                    ));
                }
            }
            // A bare `count` where no column has that name counts the rows, even with
            // aggregates off (PostgREST's `select=*,rel(count)`).
            SelectItem::Column {
                name,
                path: json,
                alias,
                cast,
            } if name == "count"
                && json.is_empty()
                && scope.table.column(name).is_none()
                && scope.table.computed_field(name).is_none() =>
            {
                let output = quote(alias.as_deref().unwrap_or("count"));
                entries.push(Entry::Aggregate(
                    Aggregate::Count,
                    None,
                    cast.clone(),
                    output,
                ));
            }
            SelectItem::Column {
                name,
                path: json,
                alias,
                cast,
            } => {
                let (expr, _) = field(
                    sql,
                    scope,
                    &Field {
                        name: name.clone(),
                        path: json.clone(),
                    },
                )?;
                let expr = match cast {
                    Some(ty) => format!("({expr})::{ty}"),
                    None => expr,
                };
                let output = alias.clone().unwrap_or_else(|| match json.last() {
                    Some(step) => match &step.key {
                        PathKey::Field(k) => k.clone(),
                        PathKey::Index(i) => i.to_string(),
                    },
                    None => name.clone(),
                });
                entries.push(Entry::Column(expr, quote(&output)));
            }
            SelectItem::Aggregate {
                function,
                input,
                alias,
                cast,
            } => {
                let input = match input {
                    Some(i) => {
                        let (expr, _) = field(
                            sql,
                            scope,
                            &Field {
                                name: i.name.clone(),
                                path: i.path.clone(),
                            },
                        )?;
                        Some(match &i.cast {
                            Some(ty) => format!("({expr})::{ty}"),
                            None => expr,
                        })
                    }
                    None => None,
                };
                let output = quote(alias.as_deref().unwrap_or(function.name()));
                entries.push(Entry::Aggregate(*function, input, cast.clone(), output));
            }
            SelectItem::Embed {
                name,
                alias,
                items: inner,
                ..
            } => {
                // The same embed output twice is refused as PostgREST's joins refuse it, naming
                // the join as PostgREST aliases it (`{parent}_{embed}_{depth}`).
                let output = alias.as_ref().unwrap_or(name);
                if embedded.contains(&output) {
                    return Err(RestError::new(
                        StatusCode::BAD_REQUEST,
                        "42712",
                        format!(
                            "table name \"{}_{output}_{}\" specified more than once",
                            scope.table.name,
                            scope.depth + 1
                        ),
                    ));
                }
                embedded.push(output);
                if inner.is_empty() {
                    // `rel()`: joined (its filters, `!inner`) but left out of the output.
                    let mut joined = item.clone();
                    if let SelectItem::Embed { items, .. } = &mut joined {
                        items.push(SelectItem::Star);
                    }
                    let rendered = render(sql, cache, scope, &joined, request, path)?;
                    conditions.extend(rendered.parent_conditions);
                    continue;
                }
                let rendered = render(sql, cache, scope, item, request, path)?;
                for column in rendered.columns {
                    let (expr, name) = column
                        .rsplit_once(" as ")
                        .map(|(e, n)| (e.to_owned(), n.to_owned()))
                        .unwrap_or_else(|| (column.clone(), column.clone()));
                    entries.push(Entry::Embedded(expr, name));
                }
                conditions.extend(rendered.parent_conditions);
            }
        }
    }
    if entries.is_empty() {
        return Err(RestError::new(
            StatusCode::BAD_REQUEST,
            "PGRST100",
            "select selects nothing",
        ));
    }
    if !entries.iter().any(|e| matches!(e, Entry::Aggregate(..))) {
        let columns = entries
            .into_iter()
            .filter_map(|e| match e {
                Entry::Column(expr, name) | Entry::Embedded(expr, name) => {
                    Some(format!("{expr} as {name}"))
                }
                Entry::Aggregate(..) => None,
            })
            .collect();
        return Ok(Selection {
            columns,
            conditions,
            grouped: None,
        });
    }
    // Grouped: the rows are read with their columns and aggregate inputs (`_aN`), then
    // grouped by every column that is not an aggregate.
    let mut inner = Vec::new();
    let mut outer = Vec::new();
    let mut keys = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        match entry {
            Entry::Column(expr, name) => {
                outer.push(format!("_g.{name}"));
                inner.push(format!("{expr} as {name}"));
                keys.push((i + 1).to_string());
            }
            Entry::Embedded(expr, name) => {
                outer.push(format!("to_jsonb(_g.{name}) as {name}"));
                inner.push(format!("{expr} as {name}"));
                keys.push((i + 1).to_string());
            }
            Entry::Aggregate(function, input, cast, name) => {
                let argument = match input {
                    Some(expr) => {
                        inner.push(format!("{expr} as _a{i}"));
                        format!("_g._a{i}")
                    }
                    None => "*".to_owned(),
                };
                let value = format!("{}({argument})", function.name());
                outer.push(match cast {
                    Some(ty) => format!("({value})::{ty} as {name}"),
                    None => format!("{value} as {name}"),
                });
            }
        }
    }
    if inner.is_empty() {
        inner.push("1".to_owned());
    }
    let group_by = if keys.is_empty() {
        String::new()
    } else {
        format!(" group by {}", keys.join(", "))
    };
    Ok(Selection {
        columns: outer,
        conditions,
        grouped: Some(Grouped { inner, group_by }),
    })
}
