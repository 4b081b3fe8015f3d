//! XLSX: one worksheet, a bold header row, numbers as numbers, days and instants (UTC) as
//! Excel dates. Rows go to a temporary file as they come (the writer's constant-memory mode)
//! and the zip is written to another at the end.

use std::io::{Seek, SeekFrom};

use rust_xlsxwriter::{Format, Workbook, Worksheet};

use super::{Cell, Column, Encoder, ExportError, Tail};

/// Excel's last row is 1,048,576; the first holds the header.
const MAX_ROWS: u32 = 1_048_575;
/// Excel's longest text in a cell, in UTF-16 units.
const MAX_TEXT: usize = 32_767;

/// The XLSX encoder.
pub struct Xlsx {
    workbook: Workbook,
    day: Format,
    instant: Format,
    row: u32,
}

impl Xlsx {
    /// Starts a workbook with the header row.
    pub fn new(columns: &[Column]) -> Result<Self, ExportError> {
        let mut workbook = Workbook::new();
        let sheet = workbook
            .add_worksheet_with_constant_memory()
            .map_err(ExportError::encode)?;
        let bold = Format::new().set_bold();
        for (col, column) in (0u16..).zip(columns) {
            sheet
                .write_string_with_format(0, col, column.name, &bold)
                .map_err(ExportError::encode)?;
        }
        Ok(Self {
            workbook,
            day: Format::new().set_num_format("yyyy-mm-dd"),
            instant: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            row: 0,
        })
    }

    fn sheet(&mut self) -> Result<&mut Worksheet, ExportError> {
        self.workbook
            .worksheet_from_index(0)
            .map_err(ExportError::encode)
    }
}

/// `text` cut to what a cell holds.
fn fitting(text: &str) -> &str {
    if text.len() <= MAX_TEXT {
        return text;
    }
    let mut units = 0;
    let end = text
        .char_indices()
        .find(|(_, c)| {
            units += c.len_utf16();
            units > MAX_TEXT
        })
        .map_or(text.len(), |(i, _)| i);
    &text[..end]
}

impl Encoder for Xlsx {
    fn row(&mut self, cells: &[Cell]) -> Result<(), ExportError> {
        if self.row >= MAX_ROWS {
            return Err(ExportError::TooManyRows {
                format: "xlsx",
                limit: u64::from(MAX_ROWS),
            });
        }
        self.row += 1;
        let (row, day, instant) = (self.row, self.day.clone(), self.instant.clone());
        let sheet = self.sheet()?;
        for (col, cell) in (0u16..).zip(cells) {
            let written = match cell {
                Cell::Null => continue,
                Cell::Text(text) => sheet.write_string(row, col, fitting(text)),
                // Minutes and counts stay far below 2^53: exact as f64.
                #[allow(clippy::cast_precision_loss)]
                Cell::Int(n) => sheet.write_number(row, col, *n as f64),
                Cell::Bool(b) => sheet.write_boolean(row, col, *b),
                Cell::Date(d) => sheet.write_date_with_format(row, col, d, &day),
                Cell::Time(t) => {
                    sheet.write_datetime_with_format(row, col, t.naive_utc(), &instant)
                }
            };
            written.map_err(ExportError::encode)?;
        }
        Ok(())
    }

    fn take(&mut self) -> Vec<u8> {
        Vec::new()
    }

    fn finish(mut self: Box<Self>) -> Result<Tail, ExportError> {
        let mut file = tempfile::tempfile().map_err(ExportError::encode)?;
        self.workbook
            .save_to_writer(&mut file)
            .map_err(ExportError::encode)?;
        file.seek(SeekFrom::Start(0)).map_err(ExportError::encode)?;
        Ok(Tail::File(file))
    }
}
