//! The log functions: `log-create`, `ai-classify`, `log-finalize`, `recall`.

pub mod classify;
pub mod create;
pub mod finalize;
pub mod recall;
