//! Presence: who is tracked on each topic, by key, each entry a `meta` with its `phx_ref`.
//! Entries of this instance's channels and of other instances' (learned through the relay)
//! live in one book; changes go out as `presence_diff` `{joins, leaves}`.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

/// Who tracked an entry: an instance and one of its sockets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    /// The instance's id.
    pub instance: String,
    /// The socket's id on that instance.
    pub socket: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    owner: Owner,
    /// The tracked fields plus `phx_ref` (and `phx_ref_prev` after an update).
    meta: Map<String, Value>,
}

/// The presences of every topic this instance knows of.
#[derive(Debug, Default)]
pub struct Book(HashMap<String, Vec<Entry>>);

/// A `presence_diff` payload: `{joins: {key: {metas}}, leaves: {key: {metas}}}`.
#[derive(Debug, Default, Clone)]
pub struct Diff {
    joins: Vec<(String, Map<String, Value>)>,
    leaves: Vec<(String, Map<String, Value>)>,
}

impl Diff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.joins.is_empty() && self.leaves.is_empty()
    }

    /// The wire payload.
    pub fn to_json(&self) -> Value {
        json!({ "joins": group(&self.joins), "leaves": group(&self.leaves) })
    }

    /// Reads a wire payload (from another instance).
    pub fn from_json(value: &Value) -> Self {
        let read = |side: &str| {
            value[side]
                .as_object()
                .into_iter()
                .flatten()
                .flat_map(|(key, entry)| {
                    entry["metas"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|m| m.as_object().map(|m| (key.clone(), m.clone())))
                })
                .collect()
        };
        Self {
            joins: read("joins"),
            leaves: read("leaves"),
        }
    }
}

fn group(entries: &[(String, Map<String, Value>)]) -> Value {
    let mut out = Map::new();
    for (key, meta) in entries {
        let slot = out
            .entry(key.clone())
            .or_insert_with(|| json!({ "metas": [] }));
        if let Some(metas) = slot["metas"].as_array_mut() {
            metas.push(Value::Object(meta.clone()));
        }
    }
    Value::Object(out)
}

impl Book {
    /// `presence_state`: `{key: {metas: […]}}`.
    pub fn state(&self, topic: &str) -> Value {
        let entries: Vec<(String, Map<String, Value>)> = self
            .0
            .get(topic)
            .into_iter()
            .flatten()
            .map(|e| (e.key.clone(), e.meta.clone()))
            .collect();
        group(&entries)
    }

    /// Tracks (or re-tracks) `owner`'s entry under `key`, with a fresh `phx_ref`.
    pub fn track(
        &mut self,
        topic: &str,
        key: &str,
        owner: &Owner,
        fields: Map<String, Value>,
        phx_ref: String,
    ) -> Diff {
        let mut diff = self.untrack(topic, owner);
        let mut meta = fields;
        if let Some((_, old)) = diff.leaves.first() {
            meta.insert("phx_ref_prev".into(), old["phx_ref"].clone());
        }
        meta.insert("phx_ref".into(), Value::from(phx_ref));
        self.0.entry(topic.to_owned()).or_default().push(Entry {
            key: key.to_owned(),
            owner: owner.clone(),
            meta: meta.clone(),
        });
        diff.joins.push((key.to_owned(), meta));
        diff
    }

    /// Removes `owner`'s entries on `topic`.
    pub fn untrack(&mut self, topic: &str, owner: &Owner) -> Diff {
        let mut diff = Diff::default();
        if let Some(entries) = self.0.get_mut(topic) {
            entries.retain(|e| {
                let gone = &e.owner == owner;
                if gone {
                    diff.leaves.push((e.key.clone(), e.meta.clone()));
                }
                !gone
            });
            if entries.is_empty() {
                self.0.remove(topic);
            }
        }
        diff
    }

    /// Applies another instance's diff: its leaves go by `phx_ref`, its joins are added.
    pub fn apply(&mut self, topic: &str, instance: &str, diff: &Diff) {
        let entries = self.0.entry(topic.to_owned()).or_default();
        for (_, meta) in &diff.leaves {
            entries
                .retain(|e| e.owner.instance != instance || e.meta["phx_ref"] != meta["phx_ref"]);
        }
        for (key, meta) in &diff.joins {
            if !entries.iter().any(|e| e.meta["phx_ref"] == meta["phx_ref"]) {
                entries.push(Entry {
                    key: key.clone(),
                    owner: Owner {
                        instance: instance.to_owned(),
                        socket: 0,
                    },
                    meta: meta.clone(),
                });
            }
        }
        if entries.is_empty() {
            self.0.remove(topic);
        }
    }

    /// This instance's own entries on `topic`, as joins (the answer to another instance
    /// asking what it missed).
    pub fn own(&self, topic: &str, instance: &str) -> Diff {
        Diff {
            joins: self
                .0
                .get(topic)
                .into_iter()
                .flatten()
                .filter(|e| e.owner.instance == instance)
                .map(|e| (e.key.clone(), e.meta.clone()))
                .collect(),
            leaves: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(socket: u64) -> Owner {
        Owner {
            instance: "i".into(),
            socket,
        }
    }

    fn fields(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn track_retrack_and_untrack_give_diffs() {
        let mut book = Book::default();
        let first = book.track("t", "ann", &owner(1), fields(json!({"s": 1})), "r1".into());
        assert_eq!(
            first.to_json(),
            json!({"joins": {"ann": {"metas": [{"s": 1, "phx_ref": "r1"}]}}, "leaves": {}})
        );
        let again = book.track("t", "ann", &owner(1), fields(json!({"s": 2})), "r2".into());
        assert_eq!(
            again.to_json()["leaves"]["ann"]["metas"][0]["phx_ref"],
            "r1"
        );
        assert_eq!(
            again.to_json()["joins"]["ann"]["metas"][0]["phx_ref_prev"],
            "r1"
        );
        book.track("t", "bob", &owner(2), Map::new(), "r3".into());
        assert_eq!(book.state("t").as_object().map(Map::len), Some(2));
        let gone = book.untrack("t", &owner(1));
        assert_eq!(gone.to_json()["leaves"]["ann"]["metas"][0]["s"], 2);
        assert!(book.state("t").get("ann").is_none());
    }

    #[test]
    fn remote_diffs_apply_once() {
        let mut book = Book::default();
        let diff =
            Diff::from_json(&json!({"joins": {"cy": {"metas": [{"phx_ref": "x"}]}}, "leaves": {}}));
        book.apply("t", "other", &diff);
        book.apply("t", "other", &diff);
        assert_eq!(
            book.state("t")["cy"]["metas"].as_array().map(Vec::len),
            Some(1)
        );
        assert!(book.own("t", "i").is_empty(), "not ours");
        let leave =
            Diff::from_json(&json!({"joins": {}, "leaves": {"cy": {"metas": [{"phx_ref": "x"}]}}}));
        book.apply("t", "other", &leave);
        assert_eq!(book.state("t"), json!({}));
    }
}
