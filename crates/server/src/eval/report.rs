//! What a run of labelled log comments measured: per-field accuracy against the targets, the
//! activity types' confusion table, and how well the activity confidence is calibrated.

use std::{collections::BTreeMap, fmt};

/// The fields scored, with their targets.
pub const FIELDS: [(&str, f64); 4] = [
    ("duration", 0.95),
    ("project", 0.90),
    ("activity type", 0.85),
    ("work mode", 0.80),
];

/// The confidence bins of the calibration table (lower bounds).
const BINS: [f32; 5] = [0.0, 0.5, 0.6, 0.75, 0.9];

/// Per-field results of a run.
#[derive(Debug, Default)]
pub struct Report {
    /// Cases run.
    pub total: usize,
    /// Correct answers per field, in the order of [`FIELDS`].
    pub correct: [usize; 4],
    /// Wall time of the classification calls, in seconds.
    pub seconds: f64,
    /// The misses: comment, field, expected, got.
    pub misses: Vec<(String, &'static str, String, String)>,
    /// Activity types: (expected, got) → count; `-` for none.
    pub confusion: BTreeMap<(String, String), usize>,
    /// The activity type's confidence and whether it was right, per case.
    pub activity_confidence: Vec<(f32, bool)>,
    /// How well `needs_review` points at the wrong answers.
    pub review: Review,
}

/// Cases marked `needs_review`, cases with a wrong activity or mode, and cases both.
#[derive(Debug, Default)]
pub struct Review {
    /// Marked `needs_review`.
    pub marked: usize,
    /// With a wrong activity type or work mode.
    pub wrong: usize,
    /// Both: a wrong answer a person is asked to look at.
    pub caught: usize,
}

impl Report {
    /// Accuracy of field `i`.
    pub fn accuracy(&self, i: usize) -> f64 {
        self.correct[i] as f64 / self.total.max(1) as f64
    }

    /// Whether every field meets its target.
    pub fn meets_targets(&self) -> bool {
        FIELDS
            .iter()
            .enumerate()
            .all(|(i, (_, target))| self.accuracy(i) >= *target)
    }

    /// Expected calibration error of the activity confidence: the gap between confidence and
    /// accuracy, averaged over the bins by their share of cases.
    pub fn calibration_error(&self) -> f64 {
        self.bins()
            .iter()
            .map(|b| b.count as f64 * (b.mean_confidence - b.accuracy).abs())
            .sum::<f64>()
            / self.activity_confidence.len().max(1) as f64
    }

    fn bins(&self) -> Vec<Bin> {
        BINS.iter()
            .enumerate()
            .map(|(i, low)| {
                let high = BINS.get(i + 1).copied().unwrap_or(f32::INFINITY);
                let inside: Vec<&(f32, bool)> = self
                    .activity_confidence
                    .iter()
                    .filter(|(c, _)| *c >= *low && *c < high)
                    .collect();
                let n = inside.len().max(1) as f64;
                Bin {
                    low: *low,
                    count: inside.len(),
                    mean_confidence: inside.iter().map(|(c, _)| f64::from(*c)).sum::<f64>() / n,
                    accuracy: inside.iter().filter(|(_, ok)| *ok).count() as f64 / n,
                }
            })
            .collect()
    }
}

struct Bin {
    low: f32,
    count: usize,
    mean_confidence: f64,
    accuracy: f64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} logs classified in {:.2} s ({:.0} logs/s, database round trips included)",
            self.total,
            self.seconds,
            self.total as f64 / self.seconds.max(1e-9)
        )?;
        for (i, (name, target)) in FIELDS.iter().enumerate() {
            let accuracy = self.accuracy(i);
            writeln!(
                f,
                "  {name:<14} {:>4}/{:<4} {:>5.1} %   target {:>3.0} % {}",
                self.correct[i],
                self.total,
                accuracy * 100.0,
                target * 100.0,
                if accuracy >= *target { "ok" } else { "MISSED" }
            )?;
        }
        writeln!(
            f,
            "  needs_review   {:>4}/{:<4} marked; {} of the {} with a wrong activity or mode among them",
            self.review.marked, self.total, self.review.caught, self.review.wrong
        )?;
        writeln!(
            f,
            "  activity confidence vs accuracy (calibration error {:.3}):",
            self.calibration_error()
        )?;
        for bin in self.bins().iter().filter(|b| b.count > 0) {
            writeln!(
                f,
                "    >= {:.2}  {:>4} cases  mean confidence {:.2}  accuracy {:.2}",
                bin.low, bin.count, bin.mean_confidence, bin.accuracy
            )?;
        }
        self.fmt_confusion(f)
    }
}

impl Report {
    /// The activity types' confusion table: a row per expected type, a column per answer.
    fn fmt_confusion(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<&str> = self
            .confusion
            .keys()
            .flat_map(|(e, g)| [e.as_str(), g.as_str()])
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let short = |k: &str| k.chars().take(5).collect::<String>();
        writeln!(f, "  activity types, expected (rows) by answer (columns):")?;
        write!(f, "    {:<12}", "")?;
        for k in &keys {
            write!(f, " {:>5}", short(k))?;
        }
        writeln!(f)?;
        for row in &keys {
            if !self.confusion.keys().any(|(e, _)| e == row) {
                continue;
            }
            write!(f, "    {row:<12}")?;
            for col in &keys {
                match self.confusion.get(&((*row).to_owned(), (*col).to_owned())) {
                    Some(n) => write!(f, " {n:>5}")?,
                    None => write!(f, " {:>5}", ".")?,
                }
            }
            writeln!(f)?;
        }
        Ok(())
    }
}
