//! What a log can be classified as: the org's projects and vocabulary, and its nearest
//! finalized logs. The caller loads them (under the caller's RLS); the extractor only reads.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A project the log may belong to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Project {
    /// Its id.
    pub id: Uuid,
    /// Its name ("Apollo Redesign").
    pub name: String,
    /// Its short code ("APL").
    pub code: Option<String>,
    /// Other names people use for it.
    pub aliases: Vec<String>,
    /// Whether its work is billable by default.
    pub billable: bool,
}

/// One entry of a vocabulary (activity type, work mode or task category).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Term {
    /// Its id.
    pub id: Uuid,
    /// Its stable key ("code_review").
    pub key: String,
    /// Its display name.
    pub name: String,
    /// Words that point to it.
    pub keywords: Vec<String>,
    /// What it means, in a sentence.
    #[serde(default)]
    pub description: String,
    /// Example log lines of this kind.
    #[serde(default)]
    pub examples: Vec<String>,
    /// Unit vectors of [`Term::prototype_texts`], in order, when embeddings are on.
    #[serde(skip)]
    pub prototypes: Vec<Arc<Vec<f32>>>,
}

impl Term {
    /// The texts a log's embedding is compared with: the name with the description, and each
    /// example (the keywords are matched as words already).
    pub fn prototype_texts(&self) -> Vec<String> {
        let mut texts = vec![if self.description.is_empty() {
            self.name.clone()
        } else {
            format!("{}: {}", self.name, self.description)
        }];
        texts.extend(self.examples.iter().cloned());
        texts
    }
}

#[cfg(test)]
impl Term {
    /// A term for tests: a fresh id, the key's words as its name.
    pub(crate) fn for_test(key: &str, keywords: &[&str]) -> Self {
        Self {
            id: Uuid::new_v4(),
            key: key.into(),
            name: key.replace('_', " "),
            keywords: keywords.iter().map(|k| (*k).into()).collect(),
            description: String::new(),
            examples: Vec::new(),
            prototypes: Vec::new(),
        }
    }
}

/// A finalized log close to this one, with the labels a person confirmed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Neighbour {
    /// Cosine similarity to the log being classified (0–1).
    pub similarity: f32,
    /// Its project.
    pub project_id: Option<Uuid>,
    /// Its activity type.
    pub activity_type_id: Option<Uuid>,
    /// Its work mode.
    pub work_mode_id: Option<Uuid>,
    /// Its task category.
    pub task_category_id: Option<Uuid>,
}

/// Everything the extractor chooses from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Candidates {
    /// The org's active projects.
    pub projects: Vec<Project>,
    /// Activity types (the org's and the defaults).
    pub activity_types: Vec<Term>,
    /// Work modes.
    pub work_modes: Vec<Term>,
    /// Task categories.
    pub task_categories: Vec<Term>,
    /// The nearest finalized logs, most similar first.
    pub neighbours: Vec<Neighbour>,
    /// The log's own unit vector, when embeddings are on (the vocabulary's prototypes are of
    /// the same model).
    #[serde(skip)]
    pub embedding: Option<Vec<f32>>,
}

impl Candidates {
    /// The id of the term with `key` in `terms`.
    pub fn key_id(terms: &[Term], key: &str) -> Option<Uuid> {
        terms.iter().find(|t| t.key == key).map(|t| t.id)
    }

    /// The key of the term with `id` in `terms`.
    pub fn id_key(terms: &[Term], id: Uuid) -> Option<&str> {
        terms.iter().find(|t| t.id == id).map(|t| t.key.as_str())
    }
}
