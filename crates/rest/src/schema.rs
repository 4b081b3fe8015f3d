//! The schema cache: tables, views, columns, keys, relationships and functions of the exposed
//! schemas, read from the catalog. It is the only source of identifiers in generated SQL.

use std::collections::HashMap;

use sqlx::PgPool;

/// (schema, name) of a table or view.
pub type RelationName = (String, String);

/// A table or view.
#[derive(Debug, Clone)]
pub struct Table {
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// Whether it is a view.
    pub is_view: bool,
    /// Columns in order.
    pub columns: Vec<Column>,
    /// Primary-key columns.
    pub primary_key: Vec<String>,
    /// Column sets with a unique constraint (the primary key included).
    pub unique: Vec<Vec<String>>,
}

/// A column.
#[derive(Debug, Clone)]
pub struct Column {
    /// Name.
    pub name: String,
    /// Type as `format_type` writes it (for casts).
    pub type_name: String,
    /// Whether it may be null.
    pub nullable: bool,
    /// The default expression, as the catalog holds it (for `Prefer: missing=default`).
    pub default: Option<String>,
}

/// A foreign key.
#[derive(Debug, Clone)]
pub struct ForeignKey {
    /// Constraint name.
    pub name: String,
    /// (schema, table) holding the key.
    pub table: (String, String),
    /// Its columns.
    pub columns: Vec<String>,
    /// (schema, table) it references.
    pub references: (String, String),
    /// The referenced columns.
    pub ref_columns: Vec<String>,
}

/// A function callable through `/rpc`.
#[derive(Debug, Clone)]
pub struct Function {
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// Input arguments (name, type), in order.
    pub args: Vec<(String, String)>,
    /// How many trailing arguments have defaults.
    pub defaults: usize,
    /// Returns a set.
    pub returns_set: bool,
    /// The return type's name.
    pub return_type: String,
    /// Returns rows (composite / table / record) rather than scalars.
    pub returns_rows: bool,
    /// Returns void.
    pub returns_void: bool,
    /// For `RETURNS TABLE(...)` / OUT parameters: the result columns.
    pub out_columns: Vec<Column>,
    /// `v`olatile, `s`table or `i`mmutable.
    pub volatility: char,
}

#[derive(sqlx::FromRow)]
struct ConstraintRow {
    schema: String,
    table: String,
    name: String,
    kind: String,
    cols: Vec<String>,
    ref_schema: Option<String>,
    ref_table: Option<String>,
    ref_cols: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct FunctionRow {
    schema: String,
    name: String,
    returns_set: bool,
    return_type: String,
    typtype: String,
    volatility: String,
    names: Vec<String>,
    in_types: Vec<String>,
    all_types: Vec<String>,
    defaults: i32,
    modes: Option<Vec<String>>,
}

/// Everything the REST engine knows about the database.
#[derive(Debug, Clone, Default)]
pub struct SchemaCache {
    tables: HashMap<(String, String), Table>,
    foreign_keys: Vec<ForeignKey>,
    functions: HashMap<(String, String), Vec<Function>>,
}

impl SchemaCache {
    /// Reads the catalog for `schemas`.
    pub async fn load(pool: &PgPool, schemas: &[String]) -> sqlx::Result<Self> {
        let mut cache = SchemaCache::default();
        let tables: Vec<(String, String, String)> = sqlx::query_as(
            "select n.nspname::text, c.relname::text, c.relkind::text from pg_class c \
             join pg_namespace n on n.oid = c.relnamespace \
             where n.nspname = any($1) and c.relkind in ('r', 'v', 'm', 'p', 'f')",
        )
        .bind(schemas)
        .fetch_all(pool)
        .await?;
        for (schema, name, kind) in tables {
            cache.tables.insert(
                (schema.clone(), name.clone()),
                Table {
                    schema,
                    name,
                    is_view: kind == "v" || kind == "m",
                    columns: Vec::new(),
                    primary_key: Vec::new(),
                    unique: Vec::new(),
                },
            );
        }
        let columns: Vec<(String, String, String, String, bool, Option<String>)> = sqlx::query_as(
            "select n.nspname::text, c.relname::text, a.attname::text, \
                    format_type(a.atttypid, a.atttypmod), not a.attnotnull, \
                    pg_get_expr(d.adbin, d.adrelid) \
             from pg_attribute a join pg_class c on c.oid = a.attrelid \
             join pg_namespace n on n.oid = c.relnamespace \
             left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum \
             where n.nspname = any($1) and c.relkind in ('r', 'v', 'm', 'p', 'f') \
               and a.attnum > 0 and not a.attisdropped order by a.attnum",
        )
        .bind(schemas)
        .fetch_all(pool)
        .await?;
        for (schema, table, name, type_name, nullable, default) in columns {
            if let Some(t) = cache.tables.get_mut(&(schema, table)) {
                t.columns.push(Column {
                    name,
                    type_name,
                    nullable,
                    default,
                });
            }
        }
        let constraints: Vec<ConstraintRow> =
            sqlx::query_as(
                "select n.nspname::text as schema, c.relname::text as table, k.conname::text as name, \
                   k.contype::text as kind, \
                   array(select a.attname::text from unnest(k.conkey) with ordinality u(num, ord) \
                         join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.num order by u.ord) as cols, \
                   fn.nspname::text as ref_schema, fc.relname::text as ref_table, \
                   coalesce(array(select a.attname::text from unnest(k.confkey) with ordinality u(num, ord) \
                         join pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.num order by u.ord), '{}') as ref_cols \
                 from pg_constraint k join pg_class c on c.oid = k.conrelid \
                 join pg_namespace n on n.oid = c.relnamespace \
                 left join pg_class fc on fc.oid = k.confrelid \
                 left join pg_namespace fn on fn.oid = fc.relnamespace \
                 where n.nspname = any($1) and k.contype in ('p', 'u', 'f') order by k.conname",
            )
            .bind(schemas)
            .fetch_all(pool)
            .await?;
        for ConstraintRow {
            schema,
            table,
            name,
            kind,
            cols,
            ref_schema,
            ref_table,
            ref_cols,
        } in constraints
        {
            match kind.as_str() {
                "f" => {
                    if let (Some(rs), Some(rt)) = (ref_schema, ref_table)
                        && schemas.contains(&rs)
                    {
                        cache.foreign_keys.push(ForeignKey {
                            name,
                            table: (schema, table),
                            columns: cols,
                            references: (rs, rt),
                            ref_columns: ref_cols,
                        });
                    }
                }
                kind => {
                    if let Some(t) = cache.tables.get_mut(&(schema, table)) {
                        if kind == "p" {
                            t.primary_key = cols.clone();
                        }
                        t.unique.push(cols);
                    }
                }
            }
        }
        cache.add_view_keys(pool, schemas).await?;
        let functions: Vec<FunctionRow> = sqlx::query_as(
            "select n.nspname::text as schema, p.proname::text as name, p.proretset as returns_set, \
                    format_type(p.prorettype, null) as return_type, t.typtype::text as typtype, \
                    p.provolatile::text as volatility, coalesce(p.proargnames::text[], '{}') as names, \
                    array(select format_type(x, null) from unnest(p.proargtypes) x) as in_types, \
                    coalesce(array(select format_type(x, null) from unnest(p.proallargtypes) x), '{}') as all_types, \
                    p.pronargdefaults::int4 as defaults, p.proargmodes::text[] as modes \
             from pg_proc p join pg_namespace n on n.oid = p.pronamespace \
             join pg_type t on t.oid = p.prorettype \
             where n.nspname = any($1) and p.prokind = 'f'",
        )
        .bind(schemas)
        .fetch_all(pool)
        .await?;
        for f in functions {
            let args: Vec<(String, String)> = match &f.modes {
                None => f
                    .names
                    .iter()
                    .cloned()
                    .zip(f.in_types.iter().cloned())
                    .collect(),
                Some(modes) => f
                    .names
                    .iter()
                    .zip(modes)
                    .zip(f.all_types.iter())
                    .filter(|((_, m), _)| matches!(m.as_str(), "i" | "b" | "v"))
                    .map(|((n, _), t)| (n.clone(), t.clone()))
                    .collect(),
            };
            let out_columns: Vec<Column> = match &f.modes {
                Some(modes) => f
                    .names
                    .iter()
                    .zip(modes)
                    .zip(f.all_types.iter())
                    .filter(|((_, m), _)| matches!(m.as_str(), "t" | "o" | "b"))
                    .map(|((n, _), t)| Column {
                        name: n.clone(),
                        type_name: t.clone(),
                        nullable: true,
                        default: None,
                    })
                    .collect(),
                None => Vec::new(),
            };
            let out_table = !out_columns.is_empty();
            cache
                .functions
                .entry((f.schema.clone(), f.name.clone()))
                .or_default()
                .push(Function {
                    returns_rows: f.typtype == "c" || f.return_type == "record" || out_table,
                    returns_void: f.return_type == "void",
                    out_columns,
                    schema: f.schema,
                    name: f.name,
                    args,
                    defaults: usize::try_from(f.defaults).unwrap_or(0),
                    returns_set: f.returns_set,
                    return_type: f.return_type,
                    volatility: f.volatility.chars().next().unwrap_or('v'),
                });
        }
        Ok(cache)
    }

    /// Views inherit the foreign keys of the tables they select from, for the columns they
    /// pass through under the same name, so that embedding works through views.
    async fn add_view_keys(&mut self, pool: &PgPool, schemas: &[String]) -> sqlx::Result<()> {
        let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
            "select distinct vn.nspname::text, v.relname::text, tn.nspname::text, t.relname::text, a.attname::text \
             from pg_rewrite r \
             join pg_class v on v.oid = r.ev_class and v.relkind in ('v', 'm') \
             join pg_namespace vn on vn.oid = v.relnamespace \
             join pg_depend d on d.objid = r.oid and d.classid = 'pg_rewrite'::regclass and d.refobjsubid > 0 \
             join pg_class t on t.oid = d.refobjid and t.relkind in ('r', 'p') \
             join pg_namespace tn on tn.oid = t.relnamespace \
             join pg_attribute a on a.attrelid = t.oid and a.attnum = d.refobjsubid \
             join pg_attribute va on va.attrelid = v.oid and va.attname = a.attname and va.attnum > 0 \
             where vn.nspname = any($1) and tn.nspname = any($1)",
        )
        .bind(schemas)
        .fetch_all(pool)
        .await?;
        // (view, base table) -> the base columns the view passes through by name.
        let mut passes: HashMap<(RelationName, RelationName), Vec<String>> = HashMap::new();
        for (vs, vn, ts, tn, column) in rows {
            passes.entry(((vs, vn), (ts, tn))).or_default().push(column);
        }
        let mut inherited = Vec::new();
        for ((view, base), columns) in &passes {
            let covers = |cols: &[String]| cols.iter().all(|c| columns.contains(c));
            for fk in &self.foreign_keys {
                if &fk.table == base && covers(&fk.columns) {
                    inherited.push(ForeignKey {
                        table: view.clone(),
                        ..fk.clone()
                    });
                }
                if &fk.references == base && covers(&fk.ref_columns) {
                    inherited.push(ForeignKey {
                        references: view.clone(),
                        ..fk.clone()
                    });
                }
            }
        }
        self.foreign_keys.extend(inherited);
        Ok(())
    }

    /// A cache holding exactly these tables and keys (for tools and tests).
    pub fn from_parts(tables: Vec<Table>, foreign_keys: Vec<ForeignKey>) -> Self {
        Self {
            tables: tables.into_iter().map(|t| (t.key(), t)).collect(),
            foreign_keys,
            functions: HashMap::new(),
        }
    }

    /// A table or view by schema and name.
    pub fn table(&self, schema: &str, name: &str) -> Option<&Table> {
        self.tables.get(&(schema.to_owned(), name.to_owned()))
    }

    /// Every table and view.
    pub fn tables(&self) -> impl Iterator<Item = &Table> {
        self.tables.values()
    }

    /// Every function, each overload once.
    pub fn all_functions(&self) -> impl Iterator<Item = &Function> {
        self.functions.values().flatten()
    }

    /// The overloads of a function.
    pub fn functions(&self, schema: &str, name: &str) -> &[Function] {
        self.functions
            .get(&(schema.to_owned(), name.to_owned()))
            .map_or(&[], Vec::as_slice)
    }

    /// Foreign keys from `table` (schema, name).
    pub fn keys_from<'a, 'b>(
        &'a self,
        table: &'b (String, String),
    ) -> impl Iterator<Item = &'a ForeignKey> + use<'a, 'b> {
        self.foreign_keys.iter().filter(move |k| &k.table == table)
    }

    /// Foreign keys referencing `table`.
    pub fn keys_to<'a, 'b>(
        &'a self,
        table: &'b (String, String),
    ) -> impl Iterator<Item = &'a ForeignKey> + use<'a, 'b> {
        self.foreign_keys
            .iter()
            .filter(move |k| &k.references == table)
    }
}

impl Table {
    /// A column by name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// (schema, name).
    pub fn key(&self) -> (String, String) {
        (self.schema.clone(), self.name.clone())
    }

    /// Whether `columns` are unique in this table (a primary key or unique constraint).
    pub fn is_unique(&self, columns: &[String]) -> bool {
        self.unique.iter().any(|u| {
            let mut a = u.clone();
            let mut b = columns.to_vec();
            a.sort();
            b.sort();
            a == b
        })
    }
}

/// `"schema"."name"`, quoted.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote(schema), quote(name))
}

/// An identifier, double-quoted.
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}
