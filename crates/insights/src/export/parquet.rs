//! Parquet: typed, optional columns (text as UTF-8 strings, whole numbers as INT64, days as
//! DATE, instants as TIMESTAMP(MICROS, UTC)), Snappy-compressed, one row group per 65,536 rows
//! or 16 MiB of buffered text — each row group is handed out as soon as it is written.

use std::sync::Arc;

use parquet::{
    basic::Compression,
    column::writer::ColumnWriter,
    data_type::ByteArray,
    file::{properties::WriterProperties, writer::SerializedFileWriter},
    schema::parser::parse_message_type,
};

use super::{Cell, Column, Encoder, ExportError, Kind, Tail};

/// Rows per row group.
const GROUP_ROWS: usize = 65_536;
/// Buffered bytes of text that end a row group early.
const GROUP_BYTES: usize = 16 * 1024 * 1024;

/// One column's values waiting for the next row group.
enum Values {
    Text(Vec<ByteArray>),
    Int(Vec<i64>),
    Bool(Vec<bool>),
    Date(Vec<i32>),
}

struct Buffer {
    values: Values,
    /// Definition levels: 1 for a value, 0 for a null.
    defined: Vec<i16>,
}

/// The Parquet encoder.
pub struct Parquet {
    writer: SerializedFileWriter<Vec<u8>>,
    buffers: Vec<Buffer>,
    rows: usize,
    text_bytes: usize,
}

/// The message type describing `columns`.
fn schema(columns: &[Column]) -> String {
    let fields: String = columns
        .iter()
        .map(|c| {
            let field = match c.kind {
                Kind::Text => "binary {} (STRING)",
                Kind::Int => "int64 {}",
                Kind::Bool => "boolean {}",
                Kind::Date => "int32 {} (DATE)",
                Kind::Time => "int64 {} (TIMESTAMP(MICROS,true))",
            };
            format!("optional {};\n", field.replace("{}", c.name))
        })
        .collect();
    format!("message export {{\n{fields}}}")
}

impl Parquet {
    /// Starts a file (its magic bytes are written at once).
    pub fn new(columns: &[Column]) -> Result<Self, ExportError> {
        let schema = parse_message_type(&schema(columns)).map_err(ExportError::encode)?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("Tally {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = SerializedFileWriter::new(Vec::new(), Arc::new(schema), Arc::new(properties))
            .map_err(ExportError::encode)?;
        let buffers = columns
            .iter()
            .map(|c| Buffer {
                values: match c.kind {
                    Kind::Text => Values::Text(Vec::new()),
                    Kind::Int | Kind::Time => Values::Int(Vec::new()),
                    Kind::Bool => Values::Bool(Vec::new()),
                    Kind::Date => Values::Date(Vec::new()),
                },
                defined: Vec::new(),
            })
            .collect();
        Ok(Self {
            writer,
            buffers,
            rows: 0,
            text_bytes: 0,
        })
    }

    /// Writes the buffered rows as one row group.
    fn flush_group(&mut self) -> Result<(), ExportError> {
        if self.rows == 0 {
            return Ok(());
        }
        let mut group = self.writer.next_row_group().map_err(ExportError::encode)?;
        for buffer in &mut self.buffers {
            let mut column = group
                .next_column()
                .map_err(ExportError::encode)?
                .ok_or_else(|| ExportError::Encode("the schema has fewer columns".into()))?;
            let defined = Some(buffer.defined.as_slice());
            let written = match (column.untyped(), &buffer.values) {
                (ColumnWriter::ByteArrayColumnWriter(w), Values::Text(v)) => {
                    w.write_batch(v, defined, None)
                }
                (ColumnWriter::Int64ColumnWriter(w), Values::Int(v)) => {
                    w.write_batch(v, defined, None)
                }
                (ColumnWriter::BoolColumnWriter(w), Values::Bool(v)) => {
                    w.write_batch(v, defined, None)
                }
                (ColumnWriter::Int32ColumnWriter(w), Values::Date(v)) => {
                    w.write_batch(v, defined, None)
                }
                _ => return Err(ExportError::Encode("a column of another type".into())),
            };
            written.map_err(ExportError::encode)?;
            column.close().map_err(ExportError::encode)?;
            buffer.defined.clear();
            match &mut buffer.values {
                Values::Text(v) => v.clear(),
                Values::Int(v) => v.clear(),
                Values::Bool(v) => v.clear(),
                Values::Date(v) => v.clear(),
            }
        }
        group.close().map_err(ExportError::encode)?;
        self.writer.flush().map_err(ExportError::encode)?;
        self.rows = 0;
        self.text_bytes = 0;
        Ok(())
    }
}

/// Days from 1970-01-01 to 0001-01-01 in chrono's count (`num_days_from_ce`).
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

impl Encoder for Parquet {
    fn row(&mut self, cells: &[Cell]) -> Result<(), ExportError> {
        use chrono::Datelike;
        for (buffer, cell) in self.buffers.iter_mut().zip(cells) {
            let defined = match (&mut buffer.values, cell) {
                (_, Cell::Null) => false,
                (Values::Text(v), Cell::Text(text)) => {
                    self.text_bytes += text.len();
                    v.push(ByteArray::from(text.as_bytes().to_vec()));
                    true
                }
                (Values::Int(v), Cell::Int(n)) => {
                    v.push(*n);
                    true
                }
                (Values::Int(v), Cell::Time(at)) => {
                    v.push(at.timestamp_micros());
                    true
                }
                (Values::Bool(v), Cell::Bool(b)) => {
                    v.push(*b);
                    true
                }
                (Values::Date(v), Cell::Date(day)) => {
                    v.push(day.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE);
                    true
                }
                _ => return Err(ExportError::Encode("a cell of another type".into())),
            };
            buffer.defined.push(i16::from(defined));
        }
        self.rows += 1;
        if self.rows >= GROUP_ROWS || self.text_bytes >= GROUP_BYTES {
            self.flush_group()?;
        }
        Ok(())
    }

    fn take(&mut self) -> Vec<u8> {
        std::mem::take(self.writer.inner_mut())
    }

    fn finish(mut self: Box<Self>) -> Result<Tail, ExportError> {
        self.flush_group()?;
        let rest = self.writer.into_inner().map_err(ExportError::encode)?;
        Ok(Tail::Bytes(rest))
    }
}
