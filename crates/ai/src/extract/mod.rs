//! The built-in extractor: times from the parser, then project, activity type, work mode and
//! task category from names and keywords, the nearest finalized logs, and what follows from
//! what; fields the person gave are kept as given.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use regex::Regex;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    candidates::{Candidates, Neighbour},
    ensemble,
    matching::{self, Choice, Source},
    text, time,
};

/// The version of these rules, recorded with every extraction.
pub const RULES_VERSION: &str = "tally-rules-1";

/// Fields the person gave; they win and are never overwritten.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Given {
    /// Project.
    pub project_id: Option<Uuid>,
    /// Activity type.
    pub activity_type_id: Option<Uuid>,
    /// Work mode.
    pub work_mode_id: Option<Uuid>,
    /// Task category.
    pub task_category_id: Option<Uuid>,
    /// Start.
    pub started_at: Option<DateTime<Utc>>,
    /// End.
    pub ended_at: Option<DateTime<Utc>>,
    /// Length in minutes.
    pub duration_minutes: Option<i32>,
    /// Billable.
    pub billable: Option<bool>,
}

/// One log to classify.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The comment plus any text from attachments.
    pub text: &'a str,
    /// What the person gave.
    pub given: &'a Given,
    /// When the log was written.
    pub now: DateTime<Utc>,
    /// The person's time zone.
    pub tz: Tz,
}

/// The extractor's answer: every field with its confidence.
#[derive(Debug, Clone, Serialize)]
pub struct Extraction {
    /// Project.
    pub project: Choice,
    /// Activity type.
    pub activity_type: Choice,
    /// Work mode.
    pub work_mode: Choice,
    /// Task category.
    pub task_category: Choice,
    /// Start.
    pub started_at: Option<DateTime<Utc>>,
    /// End.
    pub ended_at: Option<DateTime<Utc>>,
    /// Length in minutes.
    pub duration_minutes: Option<i32>,
    /// Confidence of the times.
    pub time_confidence: f32,
    /// Billable.
    pub billable: bool,
    /// Confidence of `billable`.
    pub billable_confidence: f32,
    /// `#tags` in the text.
    pub tags: Vec<String>,
    /// The lowest confidence of the fields above.
    pub confidence: f32,
    /// Whether a person should look at it (a confidence below the threshold).
    pub needs_review: bool,
}

/// What an activity implies for the work mode when the text does not say.
const MODE_OF_ACTIVITY: &[(&str, &str)] = &[
    ("meeting", "meeting"),
    ("recruiting", "meeting"),
    ("development", "deep_work"),
    ("code_review", "deep_work"),
    ("design", "deep_work"),
    ("writing", "deep_work"),
    ("research", "deep_work"),
    ("testing", "deep_work"),
    ("support", "communication"),
    ("admin", "admin"),
    ("learning", "learning"),
    ("planning", "collaboration"),
    ("sales", "communication"),
];

/// Work modes whose time has no activity type: a line most like theirs gets none.
const MODES_WITHOUT_ACTIVITY: &[&str] = &["break", "communication"];

/// What an activity implies for the task category.
const CATEGORY_OF_ACTIVITY: &[(&str, &str)] = &[
    ("sales", "sales_marketing"),
    ("recruiting", "people"),
    ("learning", "learning"),
    ("admin", "operations"),
];

static TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|\s)#([\w-]{1,50})").unwrap_or_else(|e| panic!("tag regex: {e}"))
});
static NOT_BILLABLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:non-?billable|not billable|unbillable|no charge|pro bono)\b")
        .unwrap_or_else(|e| panic!("billable regex: {e}"))
});
static BILLABLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:billable|bill (?:it|this|to)|charge (?:it|the client))\b")
        .unwrap_or_else(|e| panic!("billable regex: {e}"))
});

/// Classifies one log. `review_threshold`: a field below it marks the log for review.
pub fn extract(input: &Input<'_>, candidates: &Candidates, review_threshold: f32) -> Extraction {
    let times = time::parse(input.text, input.now, input.tz);
    let rest = time::remainder(input.text, &times.spans);
    let tokens = text::tokens(&rest);
    let given = input.given;
    let neighbours = &candidates.neighbours;

    let pick = |given: Option<Uuid>, keyword: Choice, field: fn(&_) -> Option<Uuid>| match given {
        Some(id) => Choice {
            id: Some(id),
            confidence: 1.0,
            source: Source::User,
        },
        None => {
            let voted = matching::vote(neighbours, field);
            if keyword.confidence >= 0.75 || voted.confidence <= keyword.confidence {
                keyword
            } else {
                voted
            }
        }
    };
    let project = pick(
        given.project_id,
        matching::project(&tokens, &candidates.projects),
        |n: &Neighbour| n.project_id,
    );
    // The project's own words named the project; the rest says what the work was.
    let tokens: Vec<String> = match project
        .id
        .and_then(|id| candidates.projects.iter().find(|p| p.id == id))
    {
        Some(p) => {
            let words = matching::project_words(p);
            tokens.into_iter().filter(|t| !words.contains(t)).collect()
        }
        None => tokens,
    };
    // With embeddings, activity types and work modes are weighed by the ensemble: zero-shot
    // similarity, keywords, votes and, for the mode, what the activity implies. Without, by
    // keywords and votes, then the rules of what implies what below.
    let log_vector = candidates.embedding.as_deref().filter(|_| {
        candidates
            .activity_types
            .iter()
            .chain(&candidates.work_modes)
            .any(|t| !t.prototypes.is_empty())
    });
    let weigh = |given: Option<Uuid>,
                 terms: &[crate::Term],
                 field: fn(&Neighbour) -> Option<Uuid>,
                 weights: ensemble::Weights,
                 implied: Vec<f32>,
                 unlabelled: Option<f32>| match (given, log_vector) {
        (None, Some(log)) => {
            let evidence = ensemble::Evidence {
                keywords: matching::term_scores(&tokens, terms)
                    .into_iter()
                    .map(|(score, _)| score)
                    .collect(),
                similarity: ensemble::similarities(log, terms),
                words: if weights.words > 0.0 {
                    crate::words::scores(&tokens, terms)
                } else {
                    Vec::new()
                },
                votes: ensemble::vote_shares(terms, neighbours, field),
                implied,
                unlabelled,
            };
            ensemble::decide(terms, &evidence, weights)
        }
        _ => pick(given, matching::terms(&tokens, terms), field),
    };
    // A line like a break or plain communication ("lunch", "answering emails") is no activity.
    let unlabelled = log_vector.and_then(|log| {
        let prototypes: Vec<_> = candidates
            .work_modes
            .iter()
            .filter(|m| MODES_WITHOUT_ACTIVITY.contains(&m.key.as_str()))
            .flat_map(|m| m.prototypes.iter().cloned())
            .collect();
        ensemble::similarity(log, &prototypes)
    });
    let mut activity_type = weigh(
        given.activity_type_id,
        &candidates.activity_types,
        |n| n.activity_type_id,
        ensemble::ACTIVITY,
        Vec::new(),
        unlabelled,
    );
    let implied_mode = activity_type
        .id
        .and_then(|id| Candidates::id_key(&candidates.activity_types, id))
        .and_then(|k| lookup(MODE_OF_ACTIVITY, k))
        .and_then(|k| Candidates::key_id(&candidates.work_modes, k));
    let implied = candidates
        .work_modes
        .iter()
        .map(|m| {
            if Some(m.id) == implied_mode {
                activity_type.confidence
            } else {
                0.0
            }
        })
        .collect();
    let mut work_mode = weigh(
        given.work_mode_id,
        &candidates.work_modes,
        |n| n.work_mode_id,
        ensemble::WORK_MODE,
        implied,
        None,
    );
    let mut task_category = pick(
        given.task_category_id,
        matching::terms(&tokens, &candidates.task_categories),
        |n| n.task_category_id,
    );

    let activity_key = activity_type
        .id
        .and_then(|id| Candidates::id_key(&candidates.activity_types, id));
    let mode_key = work_mode
        .id
        .and_then(|id| Candidates::id_key(&candidates.work_modes, id));
    // A meeting activity is in meeting mode unless the text clearly says another mode, and the
    // other way round.
    if let Some(implied) = activity_key
        .and_then(|k| lookup(MODE_OF_ACTIVITY, k))
        .and_then(|k| Candidates::key_id(&candidates.work_modes, k))
        .filter(|_| log_vector.is_none())
    {
        let overrides = activity_key == Some("meeting") && activity_type.confidence >= 0.6;
        if work_mode.source != Source::User
            && (work_mode.confidence < 0.6 || (overrides && work_mode.confidence < 0.75))
        {
            work_mode = implied_choice(implied, activity_type.confidence);
        }
    }
    if log_vector.is_none()
        && mode_key == Some("meeting")
        && activity_type.confidence < 0.6
        && let Some(id) = Candidates::key_id(&candidates.activity_types, "meeting")
    {
        activity_type = implied_choice(id, work_mode.confidence);
    }
    let activity_key = activity_type
        .id
        .and_then(|id| Candidates::id_key(&candidates.activity_types, id));

    let project_billable = project
        .id
        .and_then(|id| candidates.projects.iter().find(|p| p.id == id))
        .map(|p| p.billable);
    if task_category.source != Source::User && task_category.confidence < 0.6 {
        let implied = activity_key
            .and_then(|k| lookup(CATEGORY_OF_ACTIVITY, k))
            .or(match project_billable {
                Some(true) => Some("client_work"),
                _ if task_category.id.is_none() => Some("internal"),
                _ => None,
            })
            .and_then(|k| Candidates::key_id(&candidates.task_categories, k));
        if let Some(id) = implied {
            task_category = implied_choice(id, 0.75);
        }
    }

    let (billable, billable_confidence) = match given.billable {
        Some(b) => (b, 1.0),
        None if NOT_BILLABLE.is_match(input.text) => (false, 0.9),
        None if BILLABLE.is_match(input.text) => (true, 0.9),
        None => match project_billable {
            Some(b) => (b, project.confidence.min(0.9)),
            None => (false, 0.6),
        },
    };

    let (started_at, ended_at, duration_minutes, time_confidence) =
        merge_times(given, &times, input.now);

    let tags = TAG
        .captures_iter(input.text)
        .filter_map(|c| c.get(1).map(|m| m.as_str().to_lowercase()))
        .collect::<Vec<_>>();

    let confidence = [
        project.confidence,
        activity_type.confidence,
        work_mode.confidence,
        task_category.confidence,
        time_confidence,
    ]
    .into_iter()
    .fold(1.0, f32::min);
    Extraction {
        project,
        activity_type,
        work_mode,
        task_category,
        started_at,
        ended_at,
        duration_minutes,
        time_confidence,
        billable,
        billable_confidence,
        tags,
        confidence,
        needs_review: confidence < review_threshold,
    }
}

/// How sure an LLM's valid answer is taken to be.
const LLM_CONFIDENCE: f32 = 0.85;

impl Extraction {
    /// Takes the labels a language model chose (where it chose one) over the rules', keeps the
    /// parser's times, and settles the confidence and review flag again.
    pub fn with_llm(
        mut self,
        answer: &crate::llm::LlmAnswer,
        given: &Given,
        threshold: f32,
    ) -> Self {
        let take = |choice: &mut Choice, id: Option<Uuid>| {
            if choice.source != Source::User && id.is_some() {
                *choice = Choice {
                    id,
                    confidence: LLM_CONFIDENCE,
                    source: Source::Llm,
                };
            }
        };
        take(&mut self.project, answer.project_id);
        take(&mut self.activity_type, answer.activity_type_id);
        take(&mut self.work_mode, answer.work_mode_id);
        take(&mut self.task_category, answer.task_category_id);
        if given.billable.is_none() {
            self.billable = answer.billable;
            self.billable_confidence = LLM_CONFIDENCE;
        }
        self.confidence = [
            self.project.confidence,
            self.activity_type.confidence,
            self.work_mode.confidence,
            self.task_category.confidence,
            self.time_confidence,
        ]
        .into_iter()
        .fold(1.0, f32::min);
        self.needs_review = self.confidence < threshold;
        self
    }
}

fn lookup<'a>(table: &'a [(&str, &str)], key: &str) -> Option<&'a str> {
    table.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn implied_choice(id: Uuid, from: f32) -> Choice {
    Choice {
        id: Some(id),
        confidence: (from * 0.9).clamp(0.5, 0.85),
        source: Source::Implied,
    }
}

type Times = (
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<i32>,
    f32,
);

/// The person's times win; the parser fills what they left out, and a duration with no place
/// in time ends when the log was written.
fn merge_times(given: &Given, parsed: &time::TimeFacts, now: DateTime<Utc>) -> Times {
    let span = |d: i32| chrono::Duration::minutes(d.into());
    let parsed_len = parsed.duration_minutes;
    match (given.started_at, given.ended_at, given.duration_minutes) {
        (Some(s), Some(e), _) => (Some(s), Some(e), Some((e - s).num_minutes() as i32), 1.0),
        (Some(s), None, Some(d)) => (Some(s), Some(s + span(d)), Some(d), 1.0),
        (None, Some(e), Some(d)) => (Some(e - span(d)), Some(e), Some(d), 1.0),
        (None, None, Some(d)) => {
            let start = parsed.started_at.unwrap_or(now - span(d));
            (Some(start), Some(start + span(d)), Some(d), 1.0)
        }
        (Some(s), None, None) => match parsed_len {
            Some(d) => (Some(s), Some(s + span(d)), Some(d), parsed.confidence),
            None => (Some(s), None, None, 0.3),
        },
        (None, Some(e), None) => match parsed_len {
            Some(d) => (Some(e - span(d)), Some(e), Some(d), parsed.confidence),
            None => (None, Some(e), None, 0.3),
        },
        (None, None, None) => (
            parsed.started_at,
            parsed.ended_at,
            parsed_len,
            parsed.confidence,
        ),
    }
}

#[cfg(test)]
mod tests;
