//! The expression set (`eval/times.tsv`): durations and clock ranges as people write them, read
//! by the time parser alone, scored against the targets of each kind.

use std::{fmt, path::Path};

use anyhow::Context;
use chrono::{DateTime, NaiveTime, Utc};

/// Targets: durations (every line, a line naming none included), and clock ranges.
pub const DURATION_TARGET: f64 = 0.97;
/// Target for the lines that name a clock range.
pub const RANGE_TARGET: f64 = 0.95;

/// The instant the expressions are read at (a Tuesday, 17:00 UTC).
const NOW: &str = "2026-03-10T17:00:00Z";

/// One labelled expression.
#[derive(Debug, Clone)]
pub struct Expression {
    /// Expected minutes, `None` when the line names no duration.
    pub minutes: Option<i32>,
    /// Expected local start and end, when the line names a clock range.
    pub range: Option<(NaiveTime, NaiveTime)>,
    /// The text.
    pub text: String,
}

/// Correct and total answers per kind, and the misses.
#[derive(Debug, Default)]
pub struct TimesReport {
    /// Lines, and the ones whose duration was read right.
    pub durations: (usize, usize),
    /// Lines with a clock range, and the ones read right.
    pub ranges: (usize, usize),
    /// The misses: text, expected, got.
    pub misses: Vec<(String, String, String)>,
}

impl TimesReport {
    /// Share of durations read right.
    pub fn duration_accuracy(&self) -> f64 {
        self.durations.1 as f64 / self.durations.0.max(1) as f64
    }

    /// Share of clock ranges read right.
    pub fn range_accuracy(&self) -> f64 {
        self.ranges.1 as f64 / self.ranges.0.max(1) as f64
    }

    /// Whether both kinds meet their targets.
    pub fn meets_targets(&self) -> bool {
        self.duration_accuracy() >= DURATION_TARGET && self.range_accuracy() >= RANGE_TARGET
    }
}

impl fmt::Display for TimesReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line =
            |f: &mut fmt::Formatter<'_>, name: &str, (total, ok): (usize, usize), target: f64| {
                let accuracy = ok as f64 / total.max(1) as f64;
                writeln!(
                    f,
                    "  {name:<14} {ok:>4}/{total:<4} {:>5.1} %   target {:>3.0} % {}",
                    accuracy * 100.0,
                    target * 100.0,
                    if accuracy >= target { "ok" } else { "MISSED" }
                )
            };
        line(f, "duration", self.durations, DURATION_TARGET)?;
        line(f, "clock range", self.ranges, RANGE_TARGET)
    }
}

/// Reads a file of labelled expressions: `minutes<TAB>range<TAB>text`, `-` for none, the
/// range as `HH:MM-HH:MM`.
pub fn read(path: &Path) -> anyhow::Result<Vec<Expression>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(n, line)| {
            let at = || format!("{}:{}", path.display(), n + 1);
            let [minutes, range, text] = line.splitn(3, '\t').collect::<Vec<_>>()[..] else {
                anyhow::bail!("{}: expected 3 tab-separated columns", at());
            };
            let minutes = match minutes {
                "-" => None,
                m => Some(
                    m.parse()
                        .with_context(|| format!("{}: bad minutes", at()))?,
                ),
            };
            let range = match range {
                "-" => None,
                r => {
                    let (a, b) = r
                        .split_once('-')
                        .with_context(|| format!("{}: a range is HH:MM-HH:MM", at()))?;
                    let time = |s: &str| {
                        NaiveTime::parse_from_str(s, "%H:%M")
                            .with_context(|| format!("{}: bad time {s:?}", at()))
                    };
                    Some((time(a)?, time(b)?))
                }
            };
            Ok(Expression {
                minutes,
                range,
                text: text.to_owned(),
            })
        })
        .collect()
}

/// Reads every expression with the parser, at a fixed instant in UTC.
pub fn score(expressions: &[Expression]) -> TimesReport {
    let now: DateTime<Utc> = NOW.parse().unwrap_or_default();
    let mut report = TimesReport::default();
    for e in expressions {
        let facts = tally_ai::time::parse(&e.text, now, chrono_tz::UTC);
        let got_range = facts
            .started_at
            .zip(facts.ended_at)
            .map(|(s, t)| (s.time(), t.time()));
        let show = |m: Option<i32>, r: Option<(NaiveTime, NaiveTime)>| {
            let m = m.map_or("-".to_owned(), |m| m.to_string());
            match r {
                Some((a, b)) => format!("{m} {}-{}", a.format("%H:%M"), b.format("%H:%M")),
                None => m,
            }
        };
        let duration_ok = facts.duration_minutes == e.minutes;
        report.durations.0 += 1;
        report.durations.1 += usize::from(duration_ok);
        let range_ok = match e.range {
            Some(expected) => {
                report.ranges.0 += 1;
                let ok = got_range == Some(expected);
                report.ranges.1 += usize::from(ok);
                ok
            }
            None => true,
        };
        if !duration_ok || !range_ok {
            report.misses.push((
                e.text.clone(),
                show(e.minutes, e.range),
                show(facts.duration_minutes, e.range.and(got_range)),
            ));
        }
    }
    report
}
