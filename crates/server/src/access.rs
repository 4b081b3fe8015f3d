//! Who can reach what on disk: whether Tally runs as root, and whether another user (the
//! embedded cluster's system user) can reach a path.

use std::{os::unix::fs::MetadataExt, path::Path};

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // The owner of /proc/self is the process's effective user.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Whether a user other than the owner can reach `path` (every existing ancestor has the
/// others-execute bit).
pub fn traversable_by_others(path: &Path) -> bool {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    absolute
        .ancestors()
        .filter_map(|dir| std::fs::metadata(dir).ok())
        .all(|meta| meta.mode() & 0o001 != 0)
}
