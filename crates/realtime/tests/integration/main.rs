//! `/realtime/v1` through real websockets on the real server: the handshake's refusals,
//! heartbeats, joins, broadcast between sockets (JSON and binary frames, `self`, `ack`), leave,
//! and pushes on topics never joined.
#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod compat;
mod socket;
