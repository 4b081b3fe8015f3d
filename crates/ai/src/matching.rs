//! The matchers: vocabulary keywords, project names (exact, then fuzzy), and votes of the
//! nearest finalized logs. Each returns a [`Choice`] with a confidence in 0–1.

use std::collections::HashMap;

use serde::Serialize;
use uuid::Uuid;

use crate::{
    candidates::{Neighbour, Project, Term},
    text,
};

/// One chosen label and why.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Choice {
    /// The chosen id, if any.
    pub id: Option<Uuid>,
    /// How sure (0 when nothing was chosen).
    pub confidence: f32,
    /// Which rule chose it.
    pub source: Source,
}

/// Which rule made a choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The person gave it.
    User,
    /// A keyword or name in the text.
    Keyword,
    /// A name in the text with a typo or in part.
    Fuzzy,
    /// The nearest finalized logs.
    Neighbours,
    /// The log's embedding is closest to the term's description and examples.
    Semantic,
    /// Implied by another field (a meeting is in meeting mode).
    Implied,
    /// A language model's answer.
    Llm,
    /// Nothing pointed anywhere.
    None,
}

impl Choice {
    /// No choice.
    pub const NONE: Self = Self {
        id: None,
        confidence: 0.0,
        source: Source::None,
    };

    fn new(id: Uuid, confidence: f32, source: Source) -> Self {
        Self {
            id: Some(id),
            confidence: confidence.clamp(0.0, 1.0),
            source,
        }
    }
}

/// Each term's keyword score in `tokens` (its keywords, name and key found; a phrase of several
/// words weighs more than one word), and the index of the first token that matched.
pub fn term_scores(tokens: &[String], terms: &[Term]) -> Vec<(f32, usize)> {
    terms
        .iter()
        .map(|term| {
            let phrases = term
                .keywords
                .iter()
                .map(String::as_str)
                .chain([term.name.as_str()])
                .map(text::tokens)
                .chain([vec![term.key.replace('_', " ")]]);
            let mut seen = Vec::new();
            let mut first = usize::MAX;
            let score = phrases
                .filter(|p| !p.is_empty())
                .filter_map(|p| {
                    if seen.contains(&p) {
                        return None;
                    }
                    let (m, at) = text::phrase_find(tokens, &p)?;
                    first = first.min(at);
                    let weight = if p.len() > 1 {
                        1.5 * p.len() as f32
                    } else {
                        1.0
                    };
                    seen.push(p);
                    Some(m * weight)
                })
                .sum::<f32>();
            (score, first)
        })
        .collect()
}

/// The term the keywords point to; the winner's confidence grows with its margin over the
/// runner-up.
pub fn terms(tokens: &[String], terms: &[Term]) -> Choice {
    let mut scored: Vec<(f32, usize, &Term)> = term_scores(tokens, terms)
        .into_iter()
        .zip(terms)
        .map(|((score, first), term)| (score, first, term))
        .filter(|(score, _, _)| *score > 0.0)
        .collect();
    // Higher scores first; on a tie, the word that comes first in the line (which usually
    // says what the work was: "reviewing resumes", "researching databases").
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    match scored.as_slice() {
        [] => Choice::NONE,
        [(best, _, term)] => {
            Choice::new(term.id, 0.75 + 0.15 * best.min(2.0) / 2.0, Source::Keyword)
        }
        [(best, _, term), (second, _, _), ..] => {
            let margin = (best - second) / best;
            Choice::new(term.id, 0.45 + 0.45 * margin, Source::Keyword)
        }
    }
}

/// Finds the project named in `tokens`: its name, code or an alias exactly (0.95), or with a
/// typo or by a distinctive word of its name (0.7–0.85).
pub fn project(tokens: &[String], projects: &[Project]) -> Choice {
    let mut best: Option<(f32, Source, &Project)> = None;
    let mut tie = false;
    for project in projects {
        // A name or alias is surer than a code, which may be a common word ("DATA").
        let names = [(project.name.as_str(), 0.95)]
            .into_iter()
            .chain(project.code.as_deref().map(|c| (c, 0.9)))
            .chain(project.aliases.iter().map(|a| (a.as_str(), 0.95)));
        let mut score: f32 = 0.0;
        let mut source = Source::Keyword;
        for (name, exact) in names {
            let phrase = text::tokens(name);
            let m = text::phrase_match(tokens, &phrase);
            let s = if m >= 1.0 { exact } else { m * 0.9 };
            if s > score {
                score = s;
                source = if m >= 1.0 {
                    Source::Keyword
                } else {
                    Source::Fuzzy
                };
            }
        }
        // An issue key such as "APL-123" names the project coded APL.
        if let Some(code) = project.code.as_deref().map(str::to_lowercase) {
            let keyed = tokens.iter().any(|t| {
                t.split_once('-').is_some_and(|(prefix, number)| {
                    prefix == code && number.bytes().all(|b| b.is_ascii_digit())
                })
            });
            if keyed && score < 0.9 {
                score = 0.9;
                source = Source::Keyword;
            }
        }
        if score == 0.0 {
            // A distinctive word of the name ("apollo" for "Apollo Redesign"), unique to it.
            for word in text::tokens(&project.name) {
                if word.len() < 4 || is_generic(&word) {
                    continue;
                }
                let shared = projects
                    .iter()
                    .filter(|p| p.id != project.id)
                    .any(|p| text::tokens(&p.name).contains(&word));
                let m = text::phrase_match(tokens, std::slice::from_ref(&word));
                if !shared && m > 0.0 {
                    score = score.max(0.85 * m);
                    source = Source::Fuzzy;
                }
            }
        }
        if score == 0.0 {
            continue;
        }
        match best {
            Some((b, _, _)) if (score - b).abs() < f32::EPSILON => tie = true,
            Some((b, _, _)) if score < b => {}
            _ => {
                best = Some((score, source, project));
                tie = false;
            }
        }
    }
    match best {
        Some((score, source, project)) => {
            Choice::new(project.id, if tie { score * 0.5 } else { score }, source)
        }
        None => Choice::NONE,
    }
}

/// The words of a project's name, code and aliases: once the project is chosen they said
/// which project, not what kind of work ("blog" in "blog illustrations").
pub fn project_words(project: &Project) -> Vec<String> {
    let mut words = text::tokens(&project.name);
    if let Some(code) = &project.code {
        words.extend(text::tokens(code));
    }
    for alias in &project.aliases {
        words.extend(text::tokens(alias));
    }
    words
}

/// Words too common in project names to identify one.
fn is_generic(word: &str) -> bool {
    matches!(
        word,
        "project"
            | "internal"
            | "team"
            | "app"
            | "website"
            | "client"
            | "support"
            | "platform"
            | "redesign"
            | "migration"
            | "the"
            | "and"
            | "for"
            | "general"
            | "admin"
    )
}

/// The similarity-weighted vote of the nearest logs for one field, when they agree enough.
pub fn vote(neighbours: &[Neighbour], field: impl Fn(&Neighbour) -> Option<Uuid>) -> Choice {
    let mut votes: HashMap<Uuid, f32> = HashMap::new();
    let mut total = 0.0;
    for n in neighbours.iter().take(7) {
        let weight = n.similarity.max(0.0);
        total += weight;
        if let Some(id) = field(n) {
            *votes.entry(id).or_default() += weight;
        }
    }
    let Some((id, weight)) = votes.into_iter().max_by(|a, b| a.1.total_cmp(&b.1)) else {
        return Choice::NONE;
    };
    let share = weight / total.max(f32::EPSILON);
    let closest = neighbours
        .iter()
        .filter(|n| field(n) == Some(id))
        .map(|n| n.similarity)
        .fold(0.0, f32::max);
    if share < 0.5 || closest < 0.35 {
        return Choice::NONE;
    }
    Choice::new(id, share * (0.5 + 0.4 * closest), Source::Neighbours)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(key: &str, keywords: &[&str]) -> Term {
        Term::for_test(key, keywords)
    }

    fn proj(name: &str, code: Option<&str>, aliases: &[&str]) -> Project {
        Project {
            id: Uuid::new_v4(),
            name: name.into(),
            code: code.map(Into::into),
            aliases: aliases.iter().map(|a| (*a).into()).collect(),
            billable: false,
        }
    }

    #[test]
    fn a_phrase_beats_a_single_word() {
        let dev = term("development", &["code", "bug", "fix"]);
        let review = term("code_review", &["code review", "review", "pr"]);
        let all = [dev.clone(), review.clone()];
        let pick = terms(&text::tokens("did a code review of the auth PR"), &all);
        assert_eq!(pick.id, Some(review.id));
        assert!(pick.confidence > 0.6, "{pick:?}");
        let pick = terms(&text::tokens("fixed a bug in the importer"), &all);
        assert_eq!(pick.id, Some(dev.id));
        assert_eq!(terms(&text::tokens("lunch"), &all), Choice::NONE);
    }

    #[test]
    fn projects_by_name_code_alias_typo_and_part() {
        let apollo = proj("Apollo Redesign", Some("APL"), &["the new site"]);
        let billing = proj("Billing Service", Some("BILL"), &[]);
        let all = [apollo.clone(), billing.clone()];
        let find = |t: &str| project_of(t, &all);
        assert_eq!(
            find("worked on apollo redesign"),
            (Some(apollo.id), Source::Keyword)
        );
        assert_eq!(find("APL-123 header"), (Some(apollo.id), Source::Keyword));
        assert_eq!(find("apl header fixes"), (Some(apollo.id), Source::Keyword));
        assert_eq!(
            find("copy for the new site"),
            (Some(apollo.id), Source::Keyword)
        );
        assert_eq!(
            find("billing servce retries"),
            (Some(billing.id), Source::Fuzzy)
        );
        assert_eq!(find("apolo mockups"), (Some(apollo.id), Source::Fuzzy));
        assert_eq!(find("emails"), (None, Source::None));
    }

    fn project_of(text: &str, all: &[Project]) -> (Option<Uuid>, Source) {
        let c = project(&text::tokens(text), all);
        (c.id, c.source)
    }

    #[test]
    fn neighbours_vote_when_they_agree() {
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        let n = |similarity, id| Neighbour {
            similarity,
            project_id: Some(id),
            activity_type_id: None,
            work_mode_id: None,
            task_category_id: None,
        };
        let pick = vote(&[n(0.8, a), n(0.7, a), n(0.4, b)], |n| n.project_id);
        assert_eq!(pick.id, Some(a));
        assert!(pick.confidence > 0.5);
        assert_eq!(vote(&[n(0.2, a)], |n| n.project_id), Choice::NONE);
        assert_eq!(vote(&[], |n| n.project_id), Choice::NONE);
    }
}
