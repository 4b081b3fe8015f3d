//! Who listens to which tables: every channel with postgres_changes bindings, across the
//! sockets of this instance, indexed so that a change finds its listeners without looking at
//! every subscription: bindings `column=eq.value` by table, column and value; the others (no
//! filter, or another comparison) in a list per table, checked against each change.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use serde_json::{Map, Value};

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
    /// The same number for every subscription of callers with one key (set by the registry).
    pub caller_id: u64,
}

impl Subscription {
    /// A subscription of `caller` on `topic` (its caller id is given when registered).
    pub fn new(outbox: Outbox, topic: String, caller: Arc<Caller>, bindings: Vec<Binding>) -> Self {
        Self {
            outbox,
            topic,
            caller,
            bindings,
            caller_id: 0,
        }
    }
}

/// Which rows of a change a visited subscription is a candidate for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// The row of this index only (an indexed binding matched its value).
    One(usize),
    /// Every row of the change (a binding the index cannot narrow).
    All,
}

type Key = (u64, String);
type Bucket = HashMap<Key, Arc<Subscription>>;

/// The subscriptions of this instance, by socket and topic.
#[derive(Default)]
pub struct Registry(RwLock<Index>);

#[derive(Default)]
struct Index {
    subscriptions: HashMap<Key, Arc<Subscription>>,
    /// By table; `None` for bindings on every table.
    tables: HashMap<Option<String>, Listeners>,
    /// Caller key → (caller id, subscriptions holding it, the caller).
    callers: HashMap<Arc<str>, (u64, usize, Arc<Caller>)>,
    next_caller: u64,
    /// Bumped by every subscription added.
    generation: u64,
}

#[derive(Default)]
struct Listeners {
    /// `column=eq.<text>` bindings, by column, then value.
    eq: HashMap<String, HashMap<String, Bucket>>,
    /// Every other binding.
    scan: Bucket,
}

impl Listeners {
    fn is_empty(&self) -> bool {
        self.eq.is_empty() && self.scan.is_empty()
    }
}

impl Registry {
    /// Adds (or replaces) a socket's subscription on a topic.
    pub fn insert(&self, socket: u64, mut subscription: Subscription) {
        let key = (socket, subscription.topic.clone());
        let mut index = self.write();
        index.remove(&key);
        let next = index.next_caller + 1;
        index.generation += 1;
        let entry = index
            .callers
            .entry(subscription.caller.key.clone())
            .or_insert_with(|| (next, 0, subscription.caller.clone()));
        entry.1 += 1;
        subscription.caller_id = entry.0;
        if entry.0 == next {
            index.next_caller = next;
        }
        let subscription = Arc::new(subscription);
        for binding in &subscription.bindings {
            let listeners = index.tables.entry(binding.table.clone()).or_default();
            let bucket = match binding.eq_text() {
                Some((column, value)) if binding.table.is_some() => listeners
                    .eq
                    .entry(column.to_owned())
                    .or_default()
                    .entry(value.to_owned())
                    .or_default(),
                _ => &mut listeners.scan,
            };
            bucket.insert(key.clone(), subscription.clone());
        }
        index.subscriptions.insert(key, subscription);
    }

    /// Removes a socket's subscription on a topic.
    pub fn remove(&self, socket: u64, topic: &str) {
        self.write().remove(&(socket, topic.to_owned()));
    }

    /// A number that changes whenever a subscription is added.
    pub fn generation(&self) -> u64 {
        self.read().generation
    }

    /// Up to `limit` callers (with their ids) for which `known` is false.
    pub fn callers_where(
        &self,
        known: impl Fn(u64) -> bool,
        limit: usize,
    ) -> Vec<(u64, Arc<Caller>)> {
        self.read()
            .callers
            .values()
            .filter(|(id, _, _)| !known(*id))
            .take(limit)
            .map(|(id, _, caller)| (*id, caller.clone()))
            .collect()
    }

    /// Whether any subscription listens to changes of `table` by `op`.
    pub fn listens(&self, table: &str, op: Op) -> bool {
        let index = self.read();
        [Some(table.to_owned()), None].iter().any(|t| {
            index.tables.get(t).is_some_and(|l| {
                l.scan.values().any(|s| listens(s, table, op))
                    || l.eq
                        .values()
                        .flat_map(HashMap::values)
                        .flat_map(HashMap::values)
                        .any(|s| listens(s, table, op))
            })
        })
    }

    /// Calls `visit` with each subscription that may want some of `records` (a change of
    /// `table` by `op`; `None` where a row could not be read): with the row whose value its
    /// `column=eq.value` binding names, or with every row for bindings the index cannot narrow.
    /// A subscription may be visited more than once for one row.
    pub fn candidates(
        &self,
        table: &str,
        op: Op,
        records: &[Option<&Map<String, Value>>],
        mut visit: impl FnMut(&Arc<Subscription>, Rows),
    ) {
        let index = self.read();
        if let Some(listeners) = index.tables.get(&Some(table.to_owned())) {
            for (column, by_value) in &listeners.eq {
                for (n, record) in records.iter().enumerate() {
                    let Some(value) = record.and_then(|r| r.get(column)).and_then(as_text) else {
                        continue;
                    };
                    for s in by_value
                        .get(value.as_ref())
                        .into_iter()
                        .flat_map(|b| b.values())
                    {
                        if listens(s, table, op) {
                            visit(s, Rows::One(n));
                        }
                    }
                }
            }
        }
        for scope in [Some(table.to_owned()), None] {
            if let Some(listeners) = index.tables.get(&scope) {
                for s in listeners.scan.values() {
                    if listens(s, table, op) {
                        visit(s, Rows::All);
                    }
                }
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Index {
    fn remove(&mut self, key: &Key) {
        let Some(old) = self.subscriptions.remove(key) else {
            return;
        };
        for binding in &old.bindings {
            let Some(listeners) = self.tables.get_mut(&binding.table) else {
                continue;
            };
            match binding.eq_text() {
                Some((column, value)) if binding.table.is_some() => {
                    if let Some(by_value) = listeners.eq.get_mut(column) {
                        if let Some(bucket) = by_value.get_mut(value) {
                            bucket.remove(key);
                            if bucket.is_empty() {
                                by_value.remove(value);
                            }
                        }
                        if by_value.is_empty() {
                            listeners.eq.remove(column);
                        }
                    }
                }
                _ => {
                    listeners.scan.remove(key);
                }
            }
            if listeners.is_empty() {
                self.tables.remove(&binding.table);
            }
        }
        if let Some(entry) = self.callers.get_mut(&old.caller.key) {
            entry.1 -= 1;
            if entry.1 == 0 {
                self.callers.remove(&old.caller.key);
            }
        }
    }
}

fn listens(s: &Subscription, table: &str, op: Op) -> bool {
    s.bindings.iter().any(|b| b.listens_to(table, op))
}

/// A column's value as an `eq` filter compares it when the filter's value is plain text.
fn as_text(value: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s)),
        other => Some(std::borrow::Cow::Owned(other.to_string())),
    }
}
