//! CSV (RFC 4180) with a header row: empty fields for nulls, days as `YYYY-MM-DD`, instants in
//! RFC 3339 UTC.

use std::{
    fmt::Write as _,
    io::Write,
    sync::{Arc, Mutex, PoisonError},
};

use chrono::SecondsFormat;

use super::{Cell, Column, Encoder, ExportError, Tail};

/// Bytes held back before [`Encoder::take`] hands them out.
const CHUNK: usize = 64 * 1024;

/// Where the CSV writer's output collects until taken.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Shared {
    fn take(&self, at_least: usize) -> Vec<u8> {
        let mut buffer = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if buffer.len() < at_least {
            return Vec::new();
        }
        std::mem::take(&mut *buffer)
    }
}

impl Write for Shared {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The CSV encoder.
pub struct Csv {
    writer: csv::Writer<Shared>,
    out: Shared,
    field: String,
}

impl Csv {
    /// Starts a file with the header row.
    pub fn new(columns: &[Column]) -> Result<Self, ExportError> {
        let out = Shared::default();
        let mut writer = csv::Writer::from_writer(out.clone());
        writer
            .write_record(columns.iter().map(|c| c.name))
            .map_err(ExportError::encode)?;
        Ok(Self {
            writer,
            out,
            field: String::new(),
        })
    }
}

/// Writes a cell's text form into `into`.
pub(super) fn cell_text(cell: &Cell, into: &mut String) {
    into.clear();
    // Writing into a String cannot fail.
    let _ = match cell {
        Cell::Null => Ok(()),
        Cell::Text(text) => into.write_str(text),
        Cell::Int(n) => write!(into, "{n}"),
        Cell::Bool(b) => write!(into, "{b}"),
        Cell::Date(day) => write!(into, "{}", day.format("%Y-%m-%d")),
        Cell::Time(at) => into.write_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    };
}

impl Encoder for Csv {
    fn row(&mut self, cells: &[Cell]) -> Result<(), ExportError> {
        for cell in cells {
            cell_text(cell, &mut self.field);
            self.writer
                .write_field(&self.field)
                .map_err(ExportError::encode)?;
        }
        self.writer
            .write_record(std::iter::empty::<&[u8]>())
            .map_err(ExportError::encode)
    }

    fn take(&mut self) -> Vec<u8> {
        self.out.take(CHUNK)
    }

    fn finish(mut self: Box<Self>) -> Result<Tail, ExportError> {
        self.writer.flush().map_err(ExportError::encode)?;
        Ok(Tail::Bytes(self.out.take(0)))
    }
}
