//! pgoutput, PostgreSQL's logical replication output (protocol version 1, text values), as
//! documented in "Logical Replication Message Formats": each message a logical slot gives for
//! a publication, decoded. Streamed transactions (protocol 2+ with `streaming`) and two-phase
//! messages are not asked for and are refused as unknown.

use thiserror::Error;

/// A WAL position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl std::fmt::Display for Lsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

/// One column of a relation as the stream describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type's OID.
    pub type_oid: u32,
    /// Its type modifier (-1 for none).
    pub type_modifier: i32,
    /// Whether it is part of the replica identity (what old rows and deletes carry).
    pub key: bool,
}

/// A published table, sent before its first change in a session and after it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// Its OID (what changes name it by).
    pub oid: u32,
    /// Its schema.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its replica identity: `d` default, `n` nothing, `f` full, `i` an index.
    pub replica_identity: char,
    /// Its published columns, in order.
    pub columns: Vec<Column>,
}

/// A column's value in a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A TOASTed value the change did not touch, so not sent: the consumer keeps its own.
    Unchanged,
    /// The value in its text form.
    Text(String),
    /// The value in binary form (only with the `binary` option).
    Binary(Vec<u8>),
}

/// Which old row an update or delete carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldRow {
    /// The replica identity's columns only (the others are Null).
    Key,
    /// The whole old row (replica identity FULL).
    Full,
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A transaction starts; its changes follow.
    Begin {
        /// Where its commit record ends (its commit's position).
        final_lsn: Lsn,
        /// When it committed, in microseconds since 2000-01-01 UTC.
        commit_time: i64,
        /// Its transaction id.
        xid: u32,
    },
    /// The transaction committed.
    Commit {
        /// Its commit record's position.
        commit_lsn: Lsn,
        /// Where its commit record ends.
        end_lsn: Lsn,
        /// When it committed, in microseconds since 2000-01-01 UTC.
        commit_time: i64,
    },
    /// Where the transaction came from (replication origins).
    Origin {
        /// The origin's commit position.
        lsn: Lsn,
        /// Its name.
        name: String,
    },
    /// A table's description.
    Relation(Relation),
    /// A data type's name (for types outside pg_catalog).
    Type {
        /// Its OID.
        oid: u32,
        /// Its schema.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A row inserted.
    Insert {
        /// The relation's OID.
        relation: u32,
        /// The new row.
        new: Vec<Value>,
    },
    /// A row updated.
    Update {
        /// The relation's OID.
        relation: u32,
        /// The old row, when the identity changed or is FULL.
        old: Option<(OldRow, Vec<Value>)>,
        /// The new row.
        new: Vec<Value>,
    },
    /// A row deleted.
    Delete {
        /// The relation's OID.
        relation: u32,
        /// The old row (its identity, or all of it).
        old: (OldRow, Vec<Value>),
    },
    /// Tables truncated.
    Truncate {
        /// The relations' OIDs.
        relations: Vec<u32>,
        /// 1: CASCADE, 2: RESTART IDENTITY.
        options: u8,
    },
    /// A logical decoding message (`pg_logical_emit_message`).
    Logical {
        /// Whether it was emitted in a transaction.
        transactional: bool,
        /// Its position.
        lsn: Lsn,
        /// Its prefix.
        prefix: String,
        /// Its content.
        content: Vec<u8>,
    },
}

/// A message that is not valid pgoutput.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The message ended before its fields did.
    #[error("a pgoutput message ended early")]
    Truncated,
    /// A message type this decoder does not read.
    #[error("unknown pgoutput message type {0:?}")]
    UnknownMessage(char),
    /// A tuple column of an unknown kind.
    #[error("unknown tuple value kind {0:?}")]
    UnknownValue(char),
    /// An update or delete without the old/new marker where one belongs.
    #[error("unexpected marker {0:?} in a change")]
    UnexpectedMarker(char),
    /// A name or text value that is not UTF-8.
    #[error("a pgoutput string is not UTF-8")]
    NotUtf8,
}

/// Reads fields off a message.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn i16(&mut self) -> Result<i16, DecodeError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(self.u32()?.cast_signed())
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn lsn(&mut self) -> Result<Lsn, DecodeError> {
        Ok(Lsn(self.u64()?))
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(self.u64()?.cast_signed())
    }

    /// A NUL-terminated string.
    fn string(&mut self) -> Result<String, DecodeError> {
        let end = self
            .bytes
            .iter()
            .position(|b| *b == 0)
            .ok_or(DecodeError::Truncated)?;
        let text = std::str::from_utf8(&self.bytes[..end]).map_err(|_| DecodeError::NotUtf8)?;
        self.bytes = &self.bytes[end + 1..];
        Ok(text.to_owned())
    }

    /// A length-prefixed byte string.
    fn sized(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(self.u32()?).map_err(|_| DecodeError::Truncated)?;
        self.take(len)
    }

    fn tuple(&mut self) -> Result<Vec<Value>, DecodeError> {
        let count = usize::try_from(self.i16()?).map_err(|_| DecodeError::Truncated)?;
        let mut values = Vec::with_capacity(count);
        for _ in 0..count {
            values.push(match self.u8()? {
                b'n' => Value::Null,
                b'u' => Value::Unchanged,
                b't' => Value::Text(
                    std::str::from_utf8(self.sized()?)
                        .map_err(|_| DecodeError::NotUtf8)?
                        .to_owned(),
                ),
                b'b' => Value::Binary(self.sized()?.to_vec()),
                other => return Err(DecodeError::UnknownValue(char::from(other))),
            });
        }
        Ok(values)
    }

    fn old_row(&mut self, marker: u8) -> Result<(OldRow, Vec<Value>), DecodeError> {
        let kind = match marker {
            b'K' => OldRow::Key,
            b'O' => OldRow::Full,
            other => return Err(DecodeError::UnexpectedMarker(char::from(other))),
        };
        Ok((kind, self.tuple()?))
    }

    fn expect(&mut self, marker: u8) -> Result<(), DecodeError> {
        match self.u8()? {
            m if m == marker => Ok(()),
            other => Err(DecodeError::UnexpectedMarker(char::from(other))),
        }
    }
}

/// Decodes one pgoutput message.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader { bytes };
    Ok(match r.u8()? {
        b'B' => Message::Begin {
            final_lsn: r.lsn()?,
            commit_time: r.i64()?,
            xid: r.u32()?,
        },
        b'C' => {
            r.u8()?;
            Message::Commit {
                commit_lsn: r.lsn()?,
                end_lsn: r.lsn()?,
                commit_time: r.i64()?,
            }
        }
        b'O' => Message::Origin {
            lsn: r.lsn()?,
            name: r.string()?,
        },
        b'R' => {
            let oid = r.u32()?;
            let namespace = r.string()?;
            let name = r.string()?;
            let replica_identity = char::from(r.u8()?);
            let count = usize::try_from(r.i16()?).map_err(|_| DecodeError::Truncated)?;
            let mut columns = Vec::with_capacity(count);
            for _ in 0..count {
                let key = r.u8()? & 1 == 1;
                columns.push(Column {
                    name: r.string()?,
                    type_oid: r.u32()?,
                    type_modifier: r.i32()?,
                    key,
                });
            }
            Message::Relation(Relation {
                oid,
                namespace,
                name,
                replica_identity,
                columns,
            })
        }
        b'Y' => Message::Type {
            oid: r.u32()?,
            namespace: r.string()?,
            name: r.string()?,
        },
        b'I' => {
            let relation = r.u32()?;
            r.expect(b'N')?;
            Message::Insert {
                relation,
                new: r.tuple()?,
            }
        }
        b'U' => {
            let relation = r.u32()?;
            let marker = r.u8()?;
            let old = if marker == b'N' {
                None
            } else {
                let old = r.old_row(marker)?;
                r.expect(b'N')?;
                Some(old)
            };
            Message::Update {
                relation,
                old,
                new: r.tuple()?,
            }
        }
        b'D' => {
            let relation = r.u32()?;
            let marker = r.u8()?;
            Message::Delete {
                relation,
                old: r.old_row(marker)?,
            }
        }
        b'T' => {
            let count = r.u32()?;
            let options = r.u8()?;
            let relations = (0..count).map(|_| r.u32()).collect::<Result<_, _>>()?;
            Message::Truncate { relations, options }
        }
        b'M' => {
            let transactional = r.u8()? & 1 == 1;
            let lsn = r.lsn()?;
            let prefix = r.string()?;
            let content = r.sized()?.to_vec();
            Message::Logical {
                transactional,
                lsn,
                prefix,
                content,
            }
        }
        other => return Err(DecodeError::UnknownMessage(char::from(other))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An insert of (1, NULL, unchanged, 'hé') into relation 16384.
    fn insert() -> Vec<u8> {
        let mut m = vec![b'I'];
        m.extend(16384u32.to_be_bytes());
        m.push(b'N');
        m.extend(4i16.to_be_bytes());
        m.push(b't');
        m.extend(1u32.to_be_bytes());
        m.push(b'1');
        m.push(b'n');
        m.push(b'u');
        m.push(b't');
        m.extend(3u32.to_be_bytes());
        m.extend("hé".as_bytes());
        m
    }

    #[test]
    fn an_insert_with_every_kind_of_value_decodes() {
        assert_eq!(
            decode(&insert()),
            Ok(Message::Insert {
                relation: 16384,
                new: vec![
                    Value::Text("1".into()),
                    Value::Null,
                    Value::Unchanged,
                    Value::Text("hé".into())
                ],
            })
        );
    }

    #[test]
    fn every_cut_of_a_message_is_refused_never_a_panic() {
        let whole = insert();
        for end in 0..whole.len() {
            assert_eq!(decode(&whole[..end]), Err(DecodeError::Truncated), "{end}");
        }
        assert_eq!(decode(b"Z"), Err(DecodeError::UnknownMessage('Z')));
        let mut bad = insert();
        bad[8] = b'x';
        assert_eq!(decode(&bad), Err(DecodeError::UnknownValue('x')));
        let mut no_new = insert();
        no_new[5] = b'K';
        assert_eq!(decode(&no_new), Err(DecodeError::UnexpectedMarker('K')));
    }

    #[test]
    fn positions_print_as_postgresql_writes_them() {
        assert_eq!(Lsn(0x1_6B37_4D48).to_string(), "1/6B374D48");
    }
}
