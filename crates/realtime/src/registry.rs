//! Who listens to which tables: every channel with postgres_changes bindings, across the
//! sockets of this instance.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use crate::{
    binding::{Binding, Op},
    caller::Caller,
    outbox::Outbox,
};

/// A channel's postgres_changes subscription.
pub struct Subscription {
    /// Where its messages go.
    pub outbox: Outbox,
    /// `realtime:<name>`.
    pub topic: String,
    /// Whose RLS decides what it hears.
    pub caller: Arc<Caller>,
    /// Its bindings, in the client's order.
    pub bindings: Vec<Binding>,
}

/// The subscriptions of this instance, by socket and topic.
#[derive(Default)]
pub struct Registry(RwLock<HashMap<(u64, String), Arc<Subscription>>>);

impl Registry {
    /// Adds (or replaces) a socket's subscription on a topic.
    pub fn insert(&self, socket: u64, subscription: Subscription) {
        let key = (socket, subscription.topic.clone());
        self.write().insert(key, Arc::new(subscription));
    }

    /// Removes a socket's subscription on a topic.
    pub fn remove(&self, socket: u64, topic: &str) {
        self.write().remove(&(socket, topic.to_owned()));
    }

    /// The subscriptions with a binding for this table and operation.
    pub fn listening(&self, table: &str, op: Op) -> Vec<Arc<Subscription>> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .filter(|s| s.bindings.iter().any(|b| b.listens_to(table, op)))
            .cloned()
            .collect()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<(u64, String), Arc<Subscription>>> {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
