//! A sync cursor: the position `(xid, seq)` of the last change a client has and the org's purge
//! generation when it was handed out, written `"{xid}-{seq}-{generation}"`. Clients treat it
//! as opaque.

use std::fmt;

use crate::error::{SyncError, SyncResult};

/// A position in the change order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cursor {
    /// The writing transaction's id (`xid8`).
    pub xid: i64,
    /// The change's sequence number.
    pub seq: i64,
    /// How many tombstone purges the org had seen.
    pub generation: i64,
}

impl Cursor {
    /// Reads a cursor a pull or push handed out; anything else is a 400.
    pub fn parse(text: &str) -> SyncResult<Self> {
        let bad = || SyncError::BadRequest("cursor is not one this server handed out".into());
        let mut parts = text
            .split('-')
            .map(|p| p.parse::<i64>().ok().filter(|n| *n >= 0));
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Some(xid)), Some(Some(seq)), Some(Some(generation)), None) => Ok(Self {
                xid,
                seq,
                generation,
            }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.xid, self.seq, self.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_order_by_transaction_then_sequence() {
        let at = |xid, seq| Cursor {
            xid,
            seq,
            generation: 0,
        };
        let c = Cursor {
            generation: 2,
            ..at(812, 33)
        };
        assert_eq!(Cursor::parse(&c.to_string()).ok(), Some(c));
        assert_eq!(c.to_string(), "812-33-2");
        assert!(at(812, 40) > at(812, 33));
        assert!(at(813, 1) > at(812, 40));
        for bad in [
            "", "12", "1-2", "a-1-0", "1-b-0", "-1-2-0", "1-2-3-4", "1-2-x",
        ] {
            assert!(Cursor::parse(bad).is_err(), "{bad}");
        }
    }
}
