//! What sockets share: the project's keys and the hub broadcasts go through.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use serde_json::Value;
use tally_core::{JwtError, JwtKeys};
use tokio::sync::broadcast;

/// Broadcasts in flight before a slow socket starts missing them.
const HUB_CAPACITY: usize = 4096;

/// A broadcast on its way to every socket listening to its topic.
#[derive(Debug, Clone)]
pub struct Fanout {
    /// `realtime:<name>`.
    pub topic: String,
    /// The socket that sent it (it hears itself only with `self: true`).
    pub origin: u64,
    /// `{type: "broadcast", event, payload}`.
    pub payload: Value,
}

/// The state of `/realtime/v1`.
#[derive(Clone)]
pub struct RealtimeState(Arc<Inner>);

struct Inner {
    keys: JwtKeys,
    hub: broadcast::Sender<Fanout>,
    sockets: AtomicU64,
}

impl RealtimeState {
    /// State with the project's keys.
    pub fn new(keys: JwtKeys) -> Self {
        let (hub, _) = broadcast::channel(HUB_CAPACITY);
        Self(Arc::new(Inner {
            keys,
            hub,
            sockets: AtomicU64::new(0),
        }))
    }

    pub(crate) fn hub(&self) -> &broadcast::Sender<Fanout> {
        &self.0.hub
    }

    pub(crate) fn next_socket_id(&self) -> u64 {
        self.0.sockets.fetch_add(1, Ordering::Relaxed)
    }

    /// Checks a token as Supabase Realtime does: a valid signature, not expired, with `role`
    /// and `exp`. The error is the message Supabase gives.
    pub fn check_token(&self, token: &str) -> Result<(), String> {
        let claims = self.0.keys.verify(token).map_err(|e| match e {
            JwtError::Expired => "Token has expired".to_owned(),
            JwtError::Invalid(m) if m == "JWSInvalidSignature" => {
                "Failed to validate JWT signature".to_owned()
            }
            _ => "The token provided is not a valid JWT".to_owned(),
        })?;
        if claims.role().is_none() || claims.0.get("exp").and_then(Value::as_i64).is_none() {
            return Err("Fields `role` and `exp` are required in JWT".to_owned());
        }
        Ok(())
    }
}
