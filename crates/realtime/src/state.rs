//! What sockets share: the project's keys, the pool, the hub broadcasts and presence diffs go
//! through, the change feed's subscriptions, the presence book and the relay to other
//! instances.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
};

use serde_json::Value;
use sqlx::PgPool;
use tally_core::{
    JwtError, JwtKeys,
    gateway::{self, CallerError},
};
use tokio::sync::{broadcast, mpsc, watch};

use crate::{caller::Caller, catalog::Catalog, presence::Book, registry::Registry};

/// Messages in flight to sockets before a slow one starts missing them.
const HUB_CAPACITY: usize = 4096;

/// A broadcast or presence diff on its way to every socket listening to its topic.
#[derive(Debug, Clone)]
pub struct Fanout {
    /// `realtime:<name>`.
    pub topic: String,
    /// The socket that sent it, 0 for another instance (a sender hears itself only with
    /// `self: true`).
    pub origin: u64,
    /// `broadcast` or `presence_diff`.
    pub event: &'static str,
    /// The payload.
    pub payload: Value,
}

impl Fanout {
    /// A message from another instance.
    pub fn remote(topic: &str, event: &'static str, payload: Value) -> Self {
        Self {
            topic: topic.to_owned(),
            origin: 0,
            event,
            payload,
        }
    }
}

/// The state of `/realtime/v1`.
#[derive(Clone)]
pub struct RealtimeState(Arc<Inner>);

struct Inner {
    keys: JwtKeys,
    pool: PgPool,
    instance: String,
    hub: broadcast::Sender<Fanout>,
    sockets: AtomicU64,
    registry: Registry,
    catalog: Catalog,
    book: Mutex<Book>,
    relay: mpsc::Sender<String>,
    listening: watch::Sender<bool>,
    /// Topics whose presences were asked of the other instances.
    synced: Mutex<HashSet<String>>,
}

impl RealtimeState {
    /// State over the request pool, sending to other instances through `relay` (see
    /// [`crate::start`], which also makes the tasks).
    pub(crate) fn new(pool: PgPool, keys: JwtKeys, relay: mpsc::Sender<String>) -> Self {
        let (hub, _) = broadcast::channel(HUB_CAPACITY);
        Self(Arc::new(Inner {
            keys,
            instance: uuid::Uuid::new_v4().to_string(),
            hub,
            sockets: AtomicU64::new(1),
            registry: Registry::default(),
            catalog: Catalog::new(pool.clone()),
            book: Mutex::default(),
            relay,
            listening: watch::Sender::new(false),
            synced: Mutex::default(),
            pool,
        }))
    }

    /// The project's keys.
    pub(crate) fn keys(&self) -> &JwtKeys {
        &self.0.keys
    }

    pub(crate) fn hub(&self) -> &broadcast::Sender<Fanout> {
        &self.0.hub
    }

    /// Sends to the sockets of this instance.
    pub(crate) fn fan_out(&self, fanout: Fanout) {
        let _ = self.0.hub.send(fanout);
    }

    pub(crate) fn next_socket_id(&self) -> u64 {
        self.0.sockets.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.0.pool
    }

    pub(crate) fn instance(&self) -> &str {
        &self.0.instance
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.0.registry
    }

    pub(crate) fn catalog(&self) -> &Catalog {
        &self.0.catalog
    }

    pub(crate) fn book(&self) -> MutexGuard<'_, Book> {
        self.0.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn relay(&self) -> &mpsc::Sender<String> {
        &self.0.relay
    }

    pub(crate) fn mark_listening(&self) {
        self.0.listening.send_replace(true);
    }

    /// Waits (a few seconds at most) until the change feed listens.
    pub(crate) async fn listening(&self) -> bool {
        let mut rx = self.0.listening.subscribe();
        tokio::time::timeout(std::time::Duration::from_secs(5), rx.wait_for(|l| *l))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Whether this is the first channel of this instance with presence on `topic` (then the
    /// other instances are asked for theirs).
    pub(crate) fn first_presence_on(&self, topic: &str) -> bool {
        self.0
            .synced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(topic.to_owned())
    }

    /// Whether `caller` may listen on and send to the private topic `name`, by RLS on
    /// `realtime.messages`.
    pub(crate) async fn channel_access(
        &self,
        name: &str,
        caller: &Caller,
    ) -> Result<(bool, bool), sqlx::Error> {
        sqlx::query_as("select can_read, can_write from realtime.channel_access($1, $2)")
            .bind(name)
            .bind(caller.to_json())
            .fetch_one(&self.0.pool)
            .await
    }

    /// Checks a token as Supabase Realtime does (a valid signature, not expired, with `role`
    /// and `exp`) and, as every Tally service does, that a user token's session is alive. The
    /// error is the message Supabase gives.
    pub async fn check_token(&self, token: &str) -> Result<Caller, String> {
        let claims = gateway::verify_live(&self.0.pool, &self.0.keys, token)
            .await
            .map_err(refusal)?;
        Caller::from_claims(claims, JwtKeys::key_id(token))
    }

    /// [`RealtimeState::check_token`] for the bearer token of an HTTP request.
    pub async fn check_headers(&self, headers: &axum::http::HeaderMap) -> Result<Caller, String> {
        let claims = gateway::authenticate(self, headers)
            .await
            .map_err(refusal)?;
        let kid = gateway::bearer_token(headers).and_then(JwtKeys::key_id);
        Caller::from_claims(claims, kid)
    }
}

impl gateway::Gateway for RealtimeState {
    fn pool(&self) -> &PgPool {
        &self.0.pool
    }

    fn keys(&self) -> &JwtKeys {
        &self.0.keys
    }
}

/// Realtime's words for a refused token.
fn refusal(e: CallerError) -> String {
    match e {
        CallerError::Missing => "API key is missing".to_owned(),
        CallerError::Jwt(JwtError::Expired) => "Token has expired".to_owned(),
        CallerError::Jwt(JwtError::Invalid(m)) if m == "JWSInvalidSignature" => {
            "Failed to validate JWT signature".to_owned()
        }
        CallerError::Jwt(_) => "The token provided is not a valid JWT".to_owned(),
        CallerError::SessionRevoked => REVOKED.to_owned(),
        CallerError::Database(e) => {
            tracing::warn!(error = %e, "realtime: checking a session failed");
            "Unable to verify the token right now".to_owned()
        }
    }
}

/// The hub event that tells sockets a session was signed out or revoked (payload: its id).
pub const SESSION_REVOKED: &str = "session_revoked";

/// The hub event that tells sockets the signing keys changed: channels whose token's key was
/// revoked close.
pub const SIGNING_KEYS_CHANGED: &str = "signing_keys_changed";

/// Why a channel whose token's signing key was revoked is closed.
pub const KEY_REVOKED: &str = "The token's signing key was revoked";

/// Why a signed-out or revoked session's channels are refused or closed.
pub const REVOKED: &str = "Session not found or revoked";
