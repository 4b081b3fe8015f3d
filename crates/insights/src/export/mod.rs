//! Exports: what a caller may read of an org's logs, day summaries or weekly summaries, as rows
//! ([`scope`], read in the caller's transaction so RLS decides) encoded one at a time into
//! CSV, XLSX, JSON or Parquet ([`Encoder`]). Encoders hand their bytes out as they go
//! ([`Encoder::take`]), so a million rows never sit in memory: CSV and JSON per row, Parquet
//! per row group, XLSX through a temporary file (its zip is written at the end).

mod csv;
mod json;
mod parquet;
pub mod scope;
mod xlsx;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

pub use scope::{Query, Scope};

/// A column's type, which decides how each format writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text (ids, names, JSON breakdowns).
    Text,
    /// A whole number (minutes, counts).
    Int,
    /// True or false.
    Bool,
    /// A calendar day.
    Date,
    /// An instant, in UTC.
    Time,
}

/// One column of an export.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Its header.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// No value.
    Null,
    /// Text.
    Text(String),
    /// A whole number.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A day.
    Date(NaiveDate),
    /// An instant.
    Time(DateTime<Utc>),
}

/// The file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// RFC 4180 CSV with a header row; instants in RFC 3339 (UTC).
    Csv,
    /// One worksheet with a header row; instants as UTC date-times.
    Xlsx,
    /// One JSON array of objects.
    Json,
    /// Apache Parquet, Snappy-compressed, typed columns.
    Parquet,
}

impl Format {
    /// The file's content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Self::Json => "application/json",
            Self::Parquet => "application/vnd.apache.parquet",
        }
    }

    /// The file name's extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Xlsx => "xlsx",
            Self::Json => "json",
            Self::Parquet => "parquet",
        }
    }

    /// An encoder for rows of `columns`.
    pub fn encoder(self, columns: &'static [Column]) -> Result<Box<dyn Encoder>, ExportError> {
        Ok(match self {
            Self::Csv => Box::new(csv::Csv::new(columns)?),
            Self::Xlsx => Box::new(xlsx::Xlsx::new(columns)?),
            Self::Json => Box::new(json::Json::new(columns)),
            Self::Parquet => Box::new(parquet::Parquet::new(columns)?),
        })
    }
}

/// What went wrong while exporting.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The format cannot hold this many rows.
    #[error(
        "A {format} file holds at most {limit} rows; export a shorter range or use csv or parquet"
    )]
    TooManyRows {
        /// The format's name.
        format: &'static str,
        /// Its row limit.
        limit: u64,
    },
    /// Reading the rows failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Encoding failed (a bug or a full disk, not the caller's doing).
    #[error("encoding the export failed: {0}")]
    Encode(String),
}

impl ExportError {
    fn encode(e: impl std::fmt::Display) -> Self {
        Self::Encode(e.to_string())
    }
}

/// The end of a file: bytes, or a file to read them from.
#[derive(Debug)]
pub enum Tail {
    /// The last bytes.
    Bytes(Vec<u8>),
    /// A temporary file holding the rest (removed when dropped), positioned at its start.
    File(std::fs::File),
}

/// Encodes rows one at a time.
pub trait Encoder: Send {
    /// Appends a row (one cell per column).
    fn row(&mut self, cells: &[Cell]) -> Result<(), ExportError>;
    /// Takes the bytes encoded so far, to be sent on (empty while a format holds them back).
    fn take(&mut self) -> Vec<u8>;
    /// Ends the file and hands over the rest of it.
    fn finish(self: Box<Self>) -> Result<Tail, ExportError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: &[Column] = &[
        Column {
            name: "name",
            kind: Kind::Text,
        },
        Column {
            name: "minutes",
            kind: Kind::Int,
        },
        Column {
            name: "billable",
            kind: Kind::Bool,
        },
        Column {
            name: "day",
            kind: Kind::Date,
        },
        Column {
            name: "at",
            kind: Kind::Time,
        },
    ];

    fn rows() -> Vec<Vec<Cell>> {
        let day = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap_or_default();
        let at = DateTime::from_timestamp(1_774_749_600, 0).unwrap_or_default();
        vec![
            vec![
                Cell::Text("Code review, \"Apollo\"\nsecond line".into()),
                Cell::Int(135),
                Cell::Bool(true),
                Cell::Date(day),
                Cell::Time(at),
            ],
            vec![Cell::Null, Cell::Null, Cell::Null, Cell::Null, Cell::Null],
        ]
    }

    fn encode(format: Format) -> Vec<u8> {
        let mut encoder = format.encoder(COLUMNS).expect("an encoder");
        let mut out = Vec::new();
        for row in rows() {
            encoder.row(&row).expect("a row");
            out.extend(encoder.take());
        }
        match encoder.finish().expect("the end") {
            Tail::Bytes(bytes) => out.extend(bytes),
            Tail::File(mut file) => {
                std::io::Read::read_to_end(&mut file, &mut out).expect("the file");
            }
        }
        out
    }

    #[test]
    fn csv_quotes_and_leaves_nulls_empty() {
        let text = String::from_utf8(encode(Format::Csv)).expect("utf-8");
        assert_eq!(
            text,
            "name,minutes,billable,day,at\n\
             \"Code review, \"\"Apollo\"\"\nsecond line\",135,true,2026-03-29,2026-03-29T02:00:00Z\n\
             ,,,,\n"
        );
    }

    #[test]
    fn json_is_one_array_of_typed_objects() {
        let value: serde_json::Value =
            serde_json::from_slice(&encode(Format::Json)).expect("valid JSON");
        assert_eq!(
            value,
            serde_json::json!([
                {"name": "Code review, \"Apollo\"\nsecond line", "minutes": 135, "billable": true,
                 "day": "2026-03-29", "at": "2026-03-29T02:00:00Z"},
                {"name": null, "minutes": null, "billable": null, "day": null, "at": null}
            ])
        );
    }

    #[test]
    fn binary_formats_carry_their_signatures() {
        let xlsx = encode(Format::Xlsx);
        assert!(xlsx.starts_with(b"PK\x03\x04"), "a zip");
        let parquet = encode(Format::Parquet);
        assert!(parquet.starts_with(b"PAR1") && parquet.ends_with(b"PAR1"));
    }
}
