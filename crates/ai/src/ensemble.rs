//! One label from three kinds of evidence when embeddings are on: the log's embedding against
//! each term's prototypes (its name and description, and its example lines), the keywords
//! found in the line, the words those lines use ([`crate::words`]), and the votes of the
//! nearest finalized logs. They add up as
//! logits of a softmax that also holds "none of these", so the winner's probability is the
//! confidence: a line that resembles nothing, or two terms alike, comes out unsure. "None"
//! stands at least as high as the log's likeness to lines that have no term (for activity
//! types: breaks and plain communication), so such a line is surely none.

use std::sync::Arc;

use uuid::Uuid;

use crate::{
    candidates::{Neighbour, Term},
    matching::{Choice, Source},
};

/// The weights of the evidence, fitted on `eval/logs.tsv` (never on the held-out file).
#[derive(Debug, Clone, Copy)]
pub struct Weights {
    /// Softmax temperature of the cosine similarities.
    pub temperature: f32,
    /// Logit per unit of keyword score (capped at [`KEYWORD_CAP`]).
    pub keyword: f32,
    /// Logit per unit of word log-likelihood ([`crate::words::scores`]); 0 leaves words out.
    pub words: f32,
    /// Logit of a unanimous, close neighbour vote.
    pub votes: f32,
    /// The similarity "none of these" stands at.
    pub none: f32,
    /// Logit of what another field implies (a development activity: deep work), times that
    /// field's confidence.
    pub implied: f32,
}

/// The weights for activity types, grid-searched on `eval/logs.tsv` together with each default
/// example line scored against the others. Keywords weigh little: on text written without the
/// keyword list in mind a keyword points the wrong way about one time in three. The words the
/// examples use weigh a quarter of a logit per unit of log-likelihood. The
/// temperature is the one whose confidences match the accuracy on `eval/logs.tsv`; the votes
/// keep their weight relative to the similarities (chosen with each line's neighbours among
/// the file's other lines).
pub const ACTIVITY: Weights = Weights {
    temperature: 0.05,
    keyword: 1.4,
    words: 0.25,
    votes: 11.2,
    none: 0.20,
    implied: 0.0,
};

/// The weights for work modes, which mostly follow from the activity (grid-searched on
/// `eval/logs.tsv`).
pub const WORK_MODE: Weights = Weights {
    temperature: 0.10,
    keyword: 5.0,
    words: 0.0,
    votes: 4.0,
    none: 0.30,
    implied: 8.0,
};

/// Keyword scores above this add no more.
const KEYWORD_CAP: f32 = 3.0;

/// How many of a term's closest prototypes its similarity averages.
const CLOSEST: usize = 5;

/// The mean cosine similarity of `log` (a unit vector) to each term's [`CLOSEST`] closest
/// prototypes (all of them when it has fewer); `None` for a term without prototypes. One
/// stray example close by counts for less than several.
pub fn similarities(log: &[f32], terms: &[Term]) -> Vec<Option<f32>> {
    terms
        .iter()
        .map(|t| similarity(log, &t.prototypes))
        .collect()
}

/// The mean cosine similarity of `log` to its [`CLOSEST`] closest `prototypes`; `None` for
/// none.
pub fn similarity(log: &[f32], prototypes: &[Arc<Vec<f32>>]) -> Option<f32> {
    let mut sims: Vec<f32> = prototypes.iter().map(|p| dot(log, p)).collect();
    sims.sort_unstable_by(|a, b| b.total_cmp(a));
    sims.truncate(CLOSEST);
    (!sims.is_empty()).then(|| sims.iter().sum::<f32>() / sims.len() as f32)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The similarity-weighted share of the nearest logs' votes for each term, scaled by how close
/// the closest voter is.
pub fn vote_shares(
    terms: &[Term],
    neighbours: &[Neighbour],
    field: impl Fn(&Neighbour) -> Option<Uuid>,
) -> Vec<f32> {
    let voters: Vec<&Neighbour> = neighbours.iter().take(7).collect();
    let total: f32 = voters.iter().map(|n| n.similarity.max(0.0)).sum();
    terms
        .iter()
        .map(|t| {
            let mine = voters.iter().filter(|n| field(n) == Some(t.id));
            let (weight, closest) = mine.fold((0.0f32, 0.0f32), |(w, c), n| {
                (w + n.similarity.max(0.0), c.max(n.similarity))
            });
            if total <= f32::EPSILON {
                0.0
            } else {
                weight / total * closest.clamp(0.0, 1.0)
            }
        })
        .collect()
}

/// Each term's evidence, in the order of the terms.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// Keyword score (0 for none).
    pub keywords: Vec<f32>,
    /// Prototype similarity, from [`similarities`].
    pub similarity: Vec<Option<f32>>,
    /// Word log-likelihood relative to the likeliest term, from [`crate::words::scores`].
    pub words: Vec<f32>,
    /// Vote share, from [`vote_shares`].
    pub votes: Vec<f32>,
    /// What another field implies: its confidence for the implied term, 0 for the others.
    pub implied: Vec<f32>,
    /// The similarity of the log to lines that have no term of this field (for activity types:
    /// breaks and plain communication); "none of these" stands at least this high.
    pub unlabelled: Option<f32>,
}

/// Combines the evidence for `terms` with weights `w`.
pub fn decide(terms: &[Term], evidence: &Evidence, w: Weights) -> Choice {
    let Evidence {
        keywords,
        similarity,
        words,
        votes,
        implied,
        unlabelled,
    } = evidence;
    let logits: Vec<f32> = (0..terms.len())
        .map(|i| {
            let zero_shot = similarity.get(i).copied().flatten().unwrap_or(w.none - 1.0);
            zero_shot / w.temperature
                + w.keyword * keywords.get(i).copied().unwrap_or(0.0).min(KEYWORD_CAP)
                + w.words * words.get(i).copied().unwrap_or(0.0)
                + w.votes * votes.get(i).copied().unwrap_or(0.0)
                + w.implied * implied.get(i).copied().unwrap_or(0.0)
        })
        .collect();
    let none = unlabelled.map_or(w.none, |u| u.max(w.none)) / w.temperature;
    let top = logits.iter().copied().fold(none, f32::max);
    let z: f32 = logits.iter().map(|l| (l - top).exp()).sum::<f32>() + (none - top).exp();
    let best = logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .filter(|(_, l)| **l > none);
    match best {
        Some((i, l)) => {
            let source = if keywords.get(i).is_some_and(|k| *k > 0.0) {
                Source::Keyword
            } else if votes.get(i).is_some_and(|v| *v > 0.3) {
                Source::Neighbours
            } else if implied.get(i).is_some_and(|v| *v > 0.5) {
                Source::Implied
            } else {
                Source::Semantic
            };
            Choice {
                id: Some(terms[i].id),
                confidence: ((l - top).exp() / z).clamp(0.0, 1.0),
                source,
            }
        }
        // Like a line that has no term (a lunch break): as sure of "none" as its probability.
        None if unlabelled.is_some_and(|u| u > w.none) => Choice {
            id: None,
            confidence: ((none - top).exp() / z).clamp(0.0, 1.0),
            source: Source::Semantic,
        },
        // Like nothing at all: unsure.
        None => Choice::NONE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(key: &str, prototypes: &[[f32; 2]]) -> Term {
        let mut t = Term::for_test(key, &[]);
        t.prototypes = prototypes.iter().map(|p| Arc::new(p.to_vec())).collect();
        t
    }

    #[test]
    fn the_closest_prototype_wins_and_confidence_follows_the_margin() {
        let dev = term("development", &[[1.0, 0.0]]);
        let meet = term("meeting", &[[0.0, 1.0]]);
        let terms = [dev.clone(), meet.clone()];
        let near_dev = [0.95, 0.31];
        let ev = |log: &[f32], keywords: [f32; 2]| Evidence {
            keywords: keywords.to_vec(),
            similarity: similarities(log, &terms),
            ..Evidence::default()
        };
        let pick = decide(&terms, &ev(&near_dev, [0.0, 0.0]), ACTIVITY);
        assert_eq!((pick.id, pick.source), (Some(dev.id), Source::Semantic));
        assert!(pick.confidence > 0.9, "{pick:?}");
        // Halfway between the two: the winner is unsure.
        let between = [0.71, 0.70];
        let pick = decide(&terms, &ev(&between, [0.0, 0.0]), ACTIVITY);
        assert!(pick.confidence < 0.6, "{pick:?}");
        // A keyword tips it.
        let pick = decide(&terms, &ev(&between, [0.0, 1.0]), ACTIVITY);
        assert_eq!((pick.id, pick.source), (Some(meet.id), Source::Keyword));
    }

    #[test]
    fn several_close_examples_count_for_more_than_one_stray() {
        // Development has one example right by the log and four far off; meeting has five
        // fairly close: the mean of each term's five closest decides, not the single best.
        let log = [1.0, 0.0];
        let dev = term(
            "development",
            &[[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]],
        );
        let meet = term("meeting", &[[0.8, 0.6]; 5]);
        let sims = similarities(&log, &[dev.clone(), meet.clone()]);
        assert_eq!(sims, [Some(0.2), Some(0.8)]);
        let pick = decide(
            &[dev, meet.clone()],
            &Evidence {
                similarity: sims,
                ..Evidence::default()
            },
            ACTIVITY,
        );
        assert_eq!(pick.id, Some(meet.id));
        // A term without prototypes has no similarity.
        assert_eq!(similarities(&log, &[term("travel", &[])]), [None]);
    }

    #[test]
    fn a_line_like_those_without_a_term_is_surely_none() {
        let dev = term("development", &[[1.0, 0.0]]);
        let meet = term("meeting", &[[0.0, 1.0]]);
        let terms = [dev, meet];
        // "lunch": far from both terms, and (below) close to the lines that have none.
        let lunch = [0.1, 0.1];
        let evidence = |unlabelled| Evidence {
            similarity: similarities(&lunch, &terms),
            unlabelled,
            ..Evidence::default()
        };
        let pick = decide(&terms, &evidence(Some(0.95)), ACTIVITY);
        assert_eq!((pick.id, pick.source), (None, Source::Semantic));
        assert!(pick.confidence > 0.9, "{pick:?}");
        // Without that evidence it is none too, but unsure: a person should look.
        assert_eq!(decide(&terms, &evidence(None), ACTIVITY), Choice::NONE);
        // A keyword for a term still counts against it.
        let pick = decide(
            &terms,
            &Evidence {
                keywords: vec![0.0, 3.0],
                ..evidence(Some(0.3))
            },
            ACTIVITY,
        );
        assert_eq!(pick.id, Some(terms[1].id));
    }

    #[test]
    fn nothing_alike_chooses_nothing_and_votes_can_decide() {
        let dev = term("development", &[[1.0, 0.0]]);
        let meet = term("meeting", &[[0.0, 1.0]]);
        let terms = [dev.clone(), meet.clone()];
        let unlike = [0.1, 0.1];
        let mut evidence = Evidence {
            similarity: similarities(&unlike, &terms),
            ..Evidence::default()
        };
        assert_eq!(decide(&terms, &evidence, ACTIVITY), Choice::NONE);
        let n = |similarity, id| Neighbour {
            similarity,
            project_id: None,
            activity_type_id: Some(id),
            work_mode_id: None,
            task_category_id: None,
        };
        evidence.votes = vote_shares(&terms, &[n(0.9, meet.id), n(0.8, meet.id)], |n| {
            n.activity_type_id
        });
        let pick = decide(&terms, &evidence, ACTIVITY);
        assert_eq!((pick.id, pick.source), (Some(meet.id), Source::Neighbours));
        // What another field implies decides when nothing else does.
        let implied = Evidence {
            similarity: similarities(&unlike, &terms),
            implied: vec![0.9, 0.0],
            ..Evidence::default()
        };
        let pick = decide(&terms, &implied, WORK_MODE);
        assert_eq!((pick.id, pick.source), (Some(dev.id), Source::Implied));
    }
}
