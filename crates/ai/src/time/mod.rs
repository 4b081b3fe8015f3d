//! Times and durations in free text, deterministic: "2h", "an hour and a half", "from 9 to
//! 11:30", "yesterday afternoon", "last friday 14:00–15:15". [`parse`] scans the line and places
//! what it found on the person's calendar; the spans it read come back so the rest of the line
//! can be matched against projects and vocabulary.

mod clock;
mod numbers;
mod scan;

use std::ops::Range;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

pub use scan::{DayRef, PartOfDay, Scan, scan};

/// Where a log sits in time, as far as the line tells.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeFacts {
    /// Start, when known.
    pub started_at: Option<DateTime<Utc>>,
    /// End, when known.
    pub ended_at: Option<DateTime<Utc>>,
    /// Length in minutes, when known.
    pub duration_minutes: Option<i32>,
    /// How sure the parser is (0 when it found nothing).
    pub confidence: f32,
    /// Byte spans of the line the parser read.
    #[serde(skip)]
    pub spans: Vec<Range<usize>>,
}

/// Parses `text`, written at `now` by a person in time zone `tz`.
///
/// A clock range gives start, end and duration; a duration alone ends at `now` (or, on another
/// day, starts at that day's part-of-day start or 09:00); a part of the day alone is its range.
pub fn parse(text: &str, now: DateTime<Utc>, tz: Tz) -> TimeFacts {
    let found = scan(text);
    let today = now.with_timezone(&tz).date_naive();
    let day = found.day.map(|d| resolve_day(d, today)).unwrap_or(today);
    let on_other_day = day != today;

    let mut facts = TimeFacts {
        started_at: None,
        ended_at: None,
        duration_minutes: found.duration.map(|d| d as i32),
        confidence: 0.0,
        spans: found.spans.clone(),
    };
    if let Some((start, end)) = found.range {
        let started = local(tz, day, start);
        let mut ended = local(tz, day, end);
        if ended <= started {
            ended = local(tz, next_day(day), end);
        }
        // A log is a day at most: a range of a whole day across a DST change (25 hours) ends
        // a day after its start.
        ended = ended.min(started + chrono::Duration::days(1));
        let minutes = (ended - started).num_minutes() as i32;
        facts.started_at = Some(started);
        facts.ended_at = Some(ended);
        // A range that disagrees with a stated duration keeps the range, less surely.
        facts.confidence = match found.duration {
            Some(d) if d as i32 != minutes => 0.6,
            _ => 0.95,
        };
        facts.duration_minutes = Some(minutes);
    } else if let Some(start) = found.start {
        let started = local(tz, day, start);
        facts.started_at = Some(started);
        facts.confidence = 0.9;
        if let Some(d) = found.duration {
            facts.ended_at = Some(started + chrono::Duration::minutes(d.into()));
        } else if found.until_now && started < now && now - started <= chrono::Duration::days(1) {
            facts.ended_at = Some(now);
            facts.duration_minutes = Some((now - started).num_minutes() as i32);
        } else {
            facts.confidence = 0.5;
        }
    } else if let Some(d) = found.duration {
        let minutes = chrono::Duration::minutes(d.into());
        facts.confidence = 0.95;
        match found.part_of_day {
            Some(part) => {
                let started = local(tz, day, part.range().0);
                facts.started_at = Some(started);
                facts.ended_at = Some(started + minutes);
            }
            None if on_other_day => {
                let started = local(tz, day, PartOfDay::Morning.range().0);
                facts.started_at = Some(started);
                facts.ended_at = Some(started + minutes);
            }
            None => {
                facts.ended_at = Some(now);
                facts.started_at = Some(now - minutes);
            }
        }
    } else if let Some(part) = found.part_of_day {
        let (start, end) = part.range();
        let started = local(tz, day, start);
        let ended = local(tz, day, end);
        facts.started_at = Some(started);
        facts.ended_at = Some(ended);
        facts.duration_minutes = Some((ended - started).num_minutes() as i32);
        facts.confidence = 0.6;
    }
    facts
}

/// `text` without the times, dates and durations it states: what a log is embedded as, so
/// that "2h" or "9-11" do not pull two unlike lines together.
pub fn without_times(text: &str, now: DateTime<Utc>, tz: Tz) -> String {
    remainder(text, &parse(text, now, tz).spans)
}

/// `text` with the parsed spans cut out and the whitespace tidied: what is left to classify.
pub fn remainder(text: &str, spans: &[Range<usize>]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for span in spans {
        if span.start >= at && span.end <= text.len() {
            out.push_str(text.get(at..span.start).unwrap_or(""));
            out.push(' ');
            at = span.end;
        }
    }
    out.push_str(text.get(at..).unwrap_or(""));
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn resolve_day(day: DayRef, today: NaiveDate) -> NaiveDate {
    let back = |n: u32| today.checked_sub_days(Days::new(n.into())).unwrap_or(today);
    match day {
        DayRef::Today => today,
        DayRef::DaysAgo(n) => back(n),
        DayRef::Date(d) => d,
        DayRef::Weekday(wd) => {
            let diff = (7 + today.weekday().num_days_from_monday() - wd.num_days_from_monday()) % 7;
            back(diff)
        }
        DayRef::LastWeekday(wd) => {
            let diff = (7 + today.weekday().num_days_from_monday() - wd.num_days_from_monday()) % 7;
            back(if diff == 0 { 7 } else { diff })
        }
    }
}

fn next_day(day: NaiveDate) -> NaiveDate {
    day.checked_add_days(Days::new(1)).unwrap_or(day)
}

/// A local wall-clock time as an instant. In a DST gap the time moves forward past the gap; in
/// an overlap the earlier instant is taken.
fn local(tz: Tz, day: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let naive = NaiveDateTime::new(day, time);
    (0..=2)
        .find_map(|hours| {
            tz.from_local_datetime(&(naive + chrono::Duration::hours(hours)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&naive))
}

#[cfg(test)]
mod tests;
