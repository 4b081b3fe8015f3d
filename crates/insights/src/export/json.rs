//! JSON: one array of objects, a key per column, typed values (numbers, booleans, strings for
//! days and instants, null).

use super::{Cell, Column, Encoder, ExportError, Tail, csv::cell_text};

/// Bytes held back before [`Encoder::take`] hands them out.
const CHUNK: usize = 64 * 1024;

/// The JSON encoder.
pub struct Json {
    /// Each column's key, already quoted and followed by `:`.
    keys: Vec<String>,
    out: Vec<u8>,
    rows: u64,
    field: String,
}

impl Json {
    /// Starts the array.
    pub fn new(columns: &[Column]) -> Self {
        let keys = columns
            .iter()
            .map(|c| format!("{}:", serde_json::Value::from(c.name)))
            .collect();
        Self {
            keys,
            out: b"[".to_vec(),
            rows: 0,
            field: String::new(),
        }
    }
}

impl Encoder for Json {
    fn row(&mut self, cells: &[Cell]) -> Result<(), ExportError> {
        self.out
            .extend_from_slice(if self.rows == 0 { b"\n{" } else { b",\n{" });
        self.rows += 1;
        for (i, (key, cell)) in self.keys.iter().zip(cells).enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.out.extend_from_slice(key.as_bytes());
            match cell {
                Cell::Null => self.out.extend_from_slice(b"null"),
                Cell::Int(_) | Cell::Bool(_) => {
                    cell_text(cell, &mut self.field);
                    self.out.extend_from_slice(self.field.as_bytes());
                }
                Cell::Text(text) => {
                    serde_json::to_writer(&mut self.out, text).map_err(ExportError::encode)?;
                }
                Cell::Date(_) | Cell::Time(_) => {
                    cell_text(cell, &mut self.field);
                    serde_json::to_writer(&mut self.out, &self.field)
                        .map_err(ExportError::encode)?;
                }
            }
        }
        self.out.push(b'}');
        Ok(())
    }

    fn take(&mut self) -> Vec<u8> {
        if self.out.len() < CHUNK {
            return Vec::new();
        }
        std::mem::take(&mut self.out)
    }

    fn finish(mut self: Box<Self>) -> Result<Tail, ExportError> {
        self.out.extend_from_slice(b"\n]\n");
        Ok(Tail::Bytes(self.out))
    }
}
