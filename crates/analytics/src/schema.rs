//! The published tables as the catalog describes them now, in the shape the stream's
//! Relation messages give: the initial copy types its rows as the stream types its changes.

use std::sync::Arc;

use sqlx::PgPool;

use crate::pgoutput::{Column, Relation};

/// A published column, as the catalog lists it.
#[derive(sqlx::FromRow)]
struct CatalogColumn {
    oid: i64,
    table_name: String,
    identity: String,
    column_name: String,
    type_oid: i64,
    type_modifier: i32,
    key: bool,
}

/// The tables of `publication` (all in `public`), each with its published columns in order.
pub async fn published(
    pool: &PgPool,
    publication: &str,
) -> Result<Vec<Arc<Relation>>, sqlx::Error> {
    let columns: Vec<CatalogColumn> = sqlx::query_as(
        "select c.oid::int8 as oid, c.relname::text as table_name,
                c.relreplident::text as identity, a.attname::text as column_name,
                a.atttypid::int8 as type_oid, a.atttypmod as type_modifier,
                case c.relreplident
                  when 'f' then true
                  when 'i' then a.attnum = any(
                    select unnest(i.indkey) from pg_index i
                     where i.indrelid = c.oid and i.indisreplident)
                  when 'd' then a.attnum = any(
                    select unnest(i.indkey) from pg_index i
                     where i.indrelid = c.oid and i.indisprimary)
                  else false
                end as key
           from pg_publication_tables p
           join pg_class c on c.oid = format('%I.%I', p.schemaname, p.tablename)::regclass
           join pg_attribute a on a.attrelid = c.oid and a.attname = any(p.attnames)
          where p.pubname = $1 and p.schemaname = 'public'
          order by c.relname, a.attnum",
    )
    .bind(publication)
    .fetch_all(pool)
    .await?;
    let mut relations: Vec<Relation> = Vec::new();
    for column in columns {
        let oid = u32::try_from(column.oid).unwrap_or_default();
        if relations.last().is_none_or(|r| r.oid != oid) {
            relations.push(Relation {
                oid,
                namespace: "public".into(),
                name: column.table_name.clone(),
                replica_identity: column.identity.chars().next().unwrap_or('d'),
                columns: Vec::new(),
            });
        }
        if let Some(relation) = relations.last_mut() {
            relation.columns.push(Column {
                name: column.column_name,
                type_oid: u32::try_from(column.type_oid).unwrap_or_default(),
                type_modifier: column.type_modifier,
                key: column.key,
            });
        }
    }
    Ok(relations.into_iter().map(Arc::new).collect())
}
