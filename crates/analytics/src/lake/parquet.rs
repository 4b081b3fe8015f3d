//! One Parquet file of a table's rows: the published columns typed from their PostgreSQL
//! types (booleans, whole numbers as INT64, floats as DOUBLE, dates as DATE, timestamps as
//! TIMESTAMP(MICROS, UTC), everything else as its text), then the change's own columns
//! (`_op`, `_commit_lsn`, `_tx_ordinal`, `_commit_time`, `_deleted`). Snappy-compressed,
//! one row group (a file holds one batch).

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use parquet::{
    basic::Compression,
    column::writer::ColumnWriter,
    data_type::ByteArray,
    file::{properties::WriterProperties, writer::SerializedFileWriter},
    schema::parser::parse_message_type,
};

use super::LakeError;
use crate::{
    pgoutput::{Relation, Value},
    stream::{Op, RowChange},
};

/// How a PostgreSQL type is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    Float,
    Date,
    Time,
    Text,
}

impl Kind {
    fn of(type_oid: u32) -> Self {
        match type_oid {
            16 => Self::Bool,
            20 | 21 | 23 => Self::Int,
            700 | 701 => Self::Float,
            1082 => Self::Date,
            1114 | 1184 => Self::Time,
            _ => Self::Text,
        }
    }

    fn field(self, name: &str) -> String {
        let name = name.replace(['"', ';', '(', ')', ' '], "_");
        match self {
            Self::Bool => format!("optional boolean {name};"),
            Self::Int => format!("optional int64 {name};"),
            Self::Float => format!("optional double {name};"),
            Self::Date => format!("optional int32 {name} (DATE);"),
            Self::Time => format!("optional int64 {name} (TIMESTAMP(MICROS,true));"),
            Self::Text => format!("optional binary {name} (STRING);"),
        }
    }
}

/// A value PostgreSQL printed that its type does not read back (never expected).
#[derive(Debug, thiserror::Error)]
#[error("column {column}: {value:?} is not a {kind:?}")]
pub struct BadValue {
    column: String,
    value: String,
    kind: String,
}

/// One column's values for the row group.
enum Values {
    Bool(Vec<bool>),
    Int(Vec<i64>),
    Float(Vec<f64>),
    Date(Vec<i32>),
    Text(Vec<ByteArray>),
}

struct Buffer {
    values: Values,
    defined: Vec<i16>,
}

impl Buffer {
    fn new(kind: Kind) -> Self {
        Self {
            values: match kind {
                Kind::Bool => Values::Bool(Vec::new()),
                Kind::Int | Kind::Time => Values::Int(Vec::new()),
                Kind::Float => Values::Float(Vec::new()),
                Kind::Date => Values::Date(Vec::new()),
                Kind::Text => Values::Text(Vec::new()),
            },
            defined: Vec::new(),
        }
    }

    fn null(&mut self) {
        self.defined.push(0);
    }

    fn push(&mut self, kind: Kind, column: &str, text: &str) -> Result<(), BadValue> {
        let bad = || BadValue {
            column: column.to_owned(),
            value: text.chars().take(64).collect(),
            kind: format!("{kind:?}"),
        };
        match &mut self.values {
            // pgoutput sends `t`/`f`; a cast to text (the copy) gives `true`/`false`.
            Values::Bool(v) => v.push(match text {
                "t" | "true" => true,
                "f" | "false" => false,
                _ => return Err(bad()),
            }),
            Values::Int(v) if kind == Kind::Time => v.push(micros(text).ok_or_else(bad)?),
            Values::Int(v) => v.push(text.parse().map_err(|_| bad())?),
            Values::Float(v) => v.push(text.parse().map_err(|_| bad())?),
            Values::Date(v) => v.push(days(text).ok_or_else(bad)?),
            Values::Text(v) => v.push(ByteArray::from(text.as_bytes().to_vec())),
        }
        self.defined.push(1);
        Ok(())
    }
}

/// Days since 1970-01-01 of a PostgreSQL date (±infinity as the extremes).
fn days(text: &str) -> Option<i32> {
    match text {
        "infinity" => Some(i32::MAX),
        "-infinity" => Some(i32::MIN),
        _ => {
            let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
            i32::try_from((day - NaiveDate::default()).num_days()).ok()
        }
    }
}

/// Microseconds since 1970-01-01 UTC of a PostgreSQL timestamp, with or without its zone.
fn micros(text: &str) -> Option<i64> {
    match text {
        "infinity" => Some(i64::MAX),
        "-infinity" => Some(i64::MIN),
        _ => DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z")
            .map(|at| at.timestamp_micros())
            .or_else(|_| {
                NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
                    .map(|at| at.and_utc().timestamp_micros())
            })
            .ok(),
    }
}

/// Microseconds from 1970-01-01 to 2000-01-01 (PostgreSQL's epoch for commit times).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A change as the lake stores it: its row, and the transaction that made it.
pub struct LakeRow<'a> {
    /// The row change.
    pub change: &'a RowChange,
    /// Its transaction's commit position (0 for the initial copy).
    pub commit_lsn: u64,
    /// Its transaction's commit time (PostgreSQL epoch microseconds; none for the copy).
    pub commit_time: Option<i64>,
}

/// A Parquet file of `rows`, all of `relation`'s shape.
pub fn encode(relation: &Relation, rows: &[LakeRow<'_>]) -> Result<Vec<u8>, LakeError> {
    let kinds: Vec<Kind> = relation
        .columns
        .iter()
        .map(|c| Kind::of(c.type_oid))
        .collect();
    let fields: String = relation
        .columns
        .iter()
        .zip(&kinds)
        .map(|(c, k)| k.field(&c.name))
        .chain([
            "required binary _op (STRING);".to_owned(),
            "required int64 _commit_lsn;".to_owned(),
            "required int64 _tx_ordinal;".to_owned(),
            "optional int64 _commit_time (TIMESTAMP(MICROS,true));".to_owned(),
            "required boolean _deleted;".to_owned(),
        ])
        .collect::<Vec<_>>()
        .join("\n");
    let schema = parse_message_type(&format!("message {} {{\n{fields}\n}}", relation.name))?;
    let mut buffers: Vec<Buffer> = kinds.iter().map(|k| Buffer::new(*k)).collect();
    let (mut ops, mut lsns, mut ordinals, mut times, mut times_defined, mut deleted) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for row in rows {
        for ((buffer, kind), (column, value)) in
            buffers.iter_mut().zip(&kinds).zip(&row.change.values)
        {
            match value {
                Value::Text(text) => buffer.push(*kind, column, text)?,
                _ => buffer.null(),
            }
        }
        for buffer in buffers.iter_mut().skip(row.change.values.len()) {
            buffer.null();
        }
        ops.push(ByteArray::from(match row.change.op {
            Op::Copy => "copy",
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
        }));
        lsns.push(i64::try_from(row.commit_lsn).unwrap_or(i64::MAX));
        ordinals.push(i64::from(row.change.ordinal));
        if let Some(at) = row.commit_time {
            times.push(at + PG_EPOCH_MICROS);
        }
        times_defined.push(i16::from(row.commit_time.is_some()));
        deleted.push(row.change.op == Op::Delete);
    }
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("Tally {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut writer = SerializedFileWriter::new(Vec::new(), Arc::new(schema), Arc::new(properties))?;
    let mut group = writer.next_row_group()?;
    let meta = [
        (Values::Text(ops), Vec::new()),
        (Values::Int(lsns), Vec::new()),
        (Values::Int(ordinals), Vec::new()),
        (Values::Int(times), times_defined),
        (Values::Bool(deleted), Vec::new()),
    ];
    let all = buffers
        .into_iter()
        .map(|b| (b.values, b.defined))
        .chain(meta);
    for (values, defined) in all {
        let Some(mut column) = group.next_column()? else {
            break;
        };
        let levels = (!defined.is_empty()).then_some(defined.as_slice());
        match (column.untyped(), &values) {
            (ColumnWriter::BoolColumnWriter(w), Values::Bool(v)) => w.write_batch(v, levels, None),
            (ColumnWriter::Int64ColumnWriter(w), Values::Int(v)) => w.write_batch(v, levels, None),
            (ColumnWriter::DoubleColumnWriter(w), Values::Float(v)) => {
                w.write_batch(v, levels, None)
            }
            (ColumnWriter::Int32ColumnWriter(w), Values::Date(v)) => w.write_batch(v, levels, None),
            (ColumnWriter::ByteArrayColumnWriter(w), Values::Text(v)) => {
                w.write_batch(v, levels, None)
            }
            _ => return Err(LakeError::Encode("a column of another type".into())),
        }?;
        column.close()?;
    }
    group.close()?;
    Ok(writer.into_inner()?)
}
