//! Free loopback ports for servers a test starts (a `tally serve`, a scratch cluster).

use std::net::TcpListener;

/// A loopback port nothing listens on now, drawn from 20000..32000: below the kernel's
/// ephemeral range (32768 and up), from which `bind(0)` picks and which every outgoing
/// connection takes its local port from — so no test's client connection can take the port
/// between this check and the server binding it.
pub fn free_port() -> u16 {
    loop {
        let port = 20_000 + (uuid::Uuid::new_v4().as_u128() % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
