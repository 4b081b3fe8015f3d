//! The rule layer: regexes over the lower-cased line, applied in order of specificity; each
//! match claims its span so a later, looser rule cannot read the same words again.

use std::{ops::Range, sync::LazyLock};

use chrono::{NaiveDate, NaiveTime, Weekday};
use regex::{Captures, Regex};

use super::{
    clock::{self, Clock},
    numbers,
};

/// A day named in the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayRef {
    /// `today`
    Today,
    /// `yesterday` (1), `the day before yesterday` (2), `3 days ago`.
    DaysAgo(u32),
    /// `friday`, `on friday`: the latest such day, today included.
    Weekday(Weekday),
    /// `last friday`: the latest such day before today.
    LastWeekday(Weekday),
    /// `2026-03-09`
    Date(NaiveDate),
}

/// A part of the day named as a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartOfDay {
    /// 09:00–12:00
    Morning,
    /// 13:00–17:00
    Afternoon,
    /// 18:00–21:00
    Evening,
    /// 09:00–17:00 (`all day`)
    WholeDay,
}

impl PartOfDay {
    /// The clock range this part of the day stands for.
    pub fn range(self) -> (NaiveTime, NaiveTime) {
        let (a, b) = match self {
            Self::Morning => (9, 12),
            Self::Afternoon => (13, 17),
            Self::Evening => (18, 21),
            Self::WholeDay => (9, 17),
        };
        (hour(a), hour(b))
    }
}

fn hour(h: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, 0, 0).unwrap_or(NaiveTime::MIN)
}

/// What the rules found in one line, before it is placed on a calendar.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Scan {
    /// Minutes of every duration named, summed (`1h meeting, 30m email` is 90).
    pub duration: Option<u32>,
    /// An explicit clock range.
    pub range: Option<(NaiveTime, NaiveTime)>,
    /// A lone start time (`at 3pm`).
    pub start: Option<NaiveTime>,
    /// `since 10`: the work runs until the log was written.
    pub until_now: bool,
    /// `this afternoon`, `all morning`.
    pub part_of_day: Option<PartOfDay>,
    /// `yesterday`, `last friday`.
    pub day: Option<DayRef>,
    /// The byte spans the rules consumed, in order.
    pub spans: Vec<Range<usize>>,
}

const HOURS: &str = r"(?:hours?|hrs?|h)";
const MINUTES: &str = r"(?:minutes?|mins?|m)";
/// Words between a number and its unit that do not change it: "2 more minutes", "a full hour".
const MORE: &str = r"(?:(?:more|extra|additional|full|whole|solid|straight)\s+)?";

/// A number of digits (glued to its unit or not) or of words (followed by a space); it
/// carries its own word boundary.
fn num(p: &str) -> String {
    format!(
        r"(?:(?P<{p}d>{digits})\s*|\b(?P<{p}w>{words})\s+)",
        digits = numbers::DIGITS,
        words = numbers::words()
    )
}

fn num_value(caps: &Captures<'_>, p: &str) -> Option<f64> {
    caps.name(&format!("{p}d"))
        .or_else(|| caps.name(&format!("{p}w")))
        .and_then(|m| numbers::value(m.as_str()))
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("time rule {pattern:?} does not compile: {e}"))
}

struct Rules {
    iso_date: Regex,
    day_word: Regex,
    days_ago: Regex,
    weekday: Regex,
    range: Regex,
    hm_glued: Regex,
    colon_hours: Regex,
    for_colon: Regex,
    hours_and_minutes: Regex,
    hours_then_number: Regex,
    primes: Regex,
    and_a_half_before: Regex,
    and_a_half_after: Regex,
    fraction_of_hour: Regex,
    hours: Regex,
    minutes: Regex,
    start: Regex,
    bare_clock: Regex,
    part_of_day: Regex,
}

static RULES: LazyLock<Rules> = LazyLock::new(|| {
    let t1 = clock::pattern("a");
    let t2 = clock::pattern("b");
    Rules {
        iso_date: re(r"\b(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})\b"),
        day_word: re(
            r"\b(?:(?P<today>today|tonight)|(?P<dby>(?:the )?day before yesterday)|(?P<yesterday>yesterday))\b",
        ),
        days_ago: re(&format!(r"{}days? ago\b", num("n"))),
        weekday: re(
            r"\b(?:(?P<last>last|this past|past|previous)\s+|on\s+)?(?P<wd>monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b",
        ),
        range: re(&format!(
            r"\b(?:(?P<lead>from|between)\s+)?{t1}\s*(?P<conn>-|–|—|to|until|till|til|and)\s*{t2}"
        )),
        hm_glued: re(
            r"\b(?P<h>\d{1,2})\s*(?:h|hrs?|hours?)\s*(?P<m>\d{1,2})\s*(?:minutes?|mins?|m)?\b",
        ),
        colon_hours: re(&format!(r"\b(?P<h>\d{{1,2}}):(?P<m>\d{{2}})\s*{HOURS}\b")),
        for_colon: re(r"\bfor\s+(?P<h>\d{1,2}):(?P<m>\d{2})\b"),
        hours_and_minutes: re(&format!(
            r"{}{HOURS}\s*(?:and\s+|,\s*)?{}{MINUTES}\b",
            num("h"),
            num("m")
        )),
        // "1 hour 30", "an hour forty five": minutes with no unit after the hours.
        hours_then_number: re(&format!(
            r"{}{HOURS}\s*(?:and\s+)?(?:(?P<md>\d{{1,2}})|\b(?P<mw>{}))\b",
            num("h"),
            numbers::words()
        )),
        primes: re(r"\b(?P<n>\d{1,3})\s*['’′]"),
        and_a_half_before: re(&format!(
            r"{}and\s+(?P<frac>a half|a quarter|three[- ]quarters?)\s+{HOURS}\b",
            num("h")
        )),
        and_a_half_after: re(&format!(
            r"(?:{}|\b){HOURS}\s+and\s+(?P<frac>a half|a quarter)\b",
            num("h")
        )),
        fraction_of_hour: re(
            r"\b(?:(?P<half>(?:a\s+)?half[\s-](?:an?\s+)?hour)|(?P<tq>three[\s-]quarters?\s+(?:of\s+)?(?:an?\s+)?hour)|(?P<q>(?:a\s+)?quarter[\s-](?:of\s+)?(?:an?\s+)?hour))\b",
        ),
        hours: re(&format!(
            r"{}{MORE}(?:of\s+(?:an?\s+)?)?{HOURS}\b",
            num("h")
        )),
        minutes: re(&format!(r"{}{MORE}{MINUTES}\b", num("m"))),
        start: re(&format!(
            r"\b(?P<kind>at|since|starting at|started at|from|around)\s+{t1}\b"
        )),
        bare_clock: re(
            r"\b(?P<ah>\d{1,2})(?:[:.](?P<am>\d{2}))?\s*(?P<aap>a\.?m\.?|p\.?m\.?)|\b(?P<ah2>\d{1,2}):(?P<am2>\d{2})\b",
        ),
        part_of_day: re(
            r"\b(?:(?P<whole>all|whole|entire)\s+(?:the\s+)?day|(?:(?:all|the whole|whole|this|the|in the|during the|in|yesterday|tomorrow)\s+)?(?P<part>morning|afternoon|evening|night))\b",
        ),
    }
});

/// Spans already read by a rule.
#[derive(Default)]
struct Claims(Vec<Range<usize>>);

impl Claims {
    fn free(&self, r: &Range<usize>) -> bool {
        self.0.iter().all(|c| r.end <= c.start || r.start >= c.end)
    }

    fn claim(&mut self, r: Range<usize>) {
        self.0.push(r);
    }
}

/// Runs `f` over every match of `re` that no earlier rule claimed; `f` returns whether it
/// accepted the match (and so claims it).
fn each(
    re: &Regex,
    text: &str,
    claims: &mut Claims,
    mut f: impl FnMut(&Captures<'_>, &str) -> bool,
) {
    for caps in re.captures_iter(text) {
        let Some(whole) = caps.get(0) else { continue };
        let span = whole.range();
        if !claims.free(&span) {
            continue;
        }
        let rest = &text[span.end..];
        if f(&caps, rest) {
            claims.claim(span);
        }
    }
}

/// Whether `rest` (the text after a match) starts with a duration unit, so the match was a
/// duration range such as "2-3 hours", not a clock range.
fn unit_follows(rest: &str) -> bool {
    let rest = rest.trim_start();
    ["h", "min", "m "].iter().any(|u| rest.starts_with(u)) || rest == "m"
}

/// Whether `rest` (the text after a range of bare numbers) names what was counted: "1 to 2
/// people", "12 to 15 of the pages".
fn counts_follow(rest: &str) -> bool {
    let word = rest
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("");
    matches!(
        word,
        "of" | "per"
            | "percent"
            | "x"
            | "times"
            | "people"
            | "persons"
            | "folks"
            | "candidates"
            | "users"
            | "devices"
            | "participants"
            | "attendees"
            | "engineers"
            | "developers"
            | "clients"
            | "customers"
            | "members"
            | "pages"
            | "items"
            | "points"
            | "days"
            | "weeks"
            | "months"
            | "years"
    )
}

/// Whether the word before a range of bare numbers is something numbered: "page 12 to 15",
/// "steps 3-5".
fn counts_precede(before: &str) -> bool {
    let word = before
        .trim_end()
        .rsplit(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("");
    matches!(
        word.trim_end_matches('s'),
        "page"
            | "chapter"
            | "step"
            | "item"
            | "slide"
            | "section"
            | "line"
            | "row"
            | "level"
            | "version"
            | "v"
            | "sprint"
            | "ticket"
            | "issue"
            | "question"
            | "part"
            | "lesson"
            | "week"
            | "day"
    )
}

/// Scans one line. `text` may be any case; spans index into it.
pub fn scan(text: &str) -> Scan {
    let lower = text.to_ascii_lowercase();
    let text = lower.as_str();
    let rules = &*RULES;
    let mut claims = Claims::default();
    let mut out = Scan::default();

    each(&rules.iso_date, text, &mut claims, |c, _| {
        let date = (|| {
            NaiveDate::from_ymd_opt(
                c.name("y")?.as_str().parse().ok()?,
                c.name("m")?.as_str().parse().ok()?,
                c.name("d")?.as_str().parse().ok()?,
            )
        })();
        date.map(|d| out.day.get_or_insert(DayRef::Date(d)))
            .is_some()
    });
    each(&rules.range, text, &mut claims, |c, rest| {
        let (Some(a), Some(b)) = (Clock::from_captures(c, "a"), Clock::from_captures(c, "b"))
        else {
            return false;
        };
        let lead = c.name("lead").map(|m| m.as_str());
        let conn = c.name("conn").map(|m| m.as_str()).unwrap_or("");
        if conn == "and" && lead != Some("between") {
            return false;
        }
        let before = c.get(0).map_or("", |m| &text[..m.start()]);
        // "2-3 hours" is a duration; "1 to 2 people", "page 12 to 15" and "one to one" are
        // not times at all.
        let marked = lead.is_some() || a.is_explicit() || b.is_explicit();
        if unit_follows(rest)
            || a == b
            || ((a.worded || b.worded) && lead.is_none() && !(a.is_explicit() || b.is_explicit()))
            || (!(a.has_minutes || b.has_minutes || a.meridiem.is_some() || b.meridiem.is_some())
                && (counts_follow(rest) || counts_precede(before)))
            || !(marked || conn != "and")
            || out.range.is_some()
        {
            return false;
        }
        out.range = Some(clock::range(a, b));
        true
    });

    each(&rules.part_of_day, text, &mut claims, |c, _| {
        let part = if c.name("whole").is_some() {
            PartOfDay::WholeDay
        } else {
            match c.name("part").map(|m| m.as_str()) {
                Some("morning") => PartOfDay::Morning,
                Some("afternoon") => PartOfDay::Afternoon,
                _ => PartOfDay::Evening,
            }
        };
        if c[0].starts_with("yesterday") {
            out.day.get_or_insert(DayRef::DaysAgo(1));
        }
        out.part_of_day.get_or_insert(part);
        true
    });

    each(&rules.day_word, text, &mut claims, |c, _| {
        let day = if c.name("dby").is_some() {
            DayRef::DaysAgo(2)
        } else if c.name("yesterday").is_some() {
            DayRef::DaysAgo(1)
        } else {
            if c.name("today").is_some_and(|m| m.as_str() == "tonight") {
                out.part_of_day.get_or_insert(PartOfDay::Evening);
            }
            DayRef::Today
        };
        out.day.get_or_insert(day);
        true
    });
    each(
        &rules.days_ago,
        text,
        &mut claims,
        |c, _| match num_value(c, "n").filter(|n| n.fract() == 0.0 && (1.0..=31.0).contains(n)) {
            Some(n) => {
                out.day.get_or_insert(DayRef::DaysAgo(n as u32));
                true
            }
            None => false,
        },
    );
    each(&rules.weekday, text, &mut claims, |c, _| {
        let Some(wd) = c
            .name("wd")
            .and_then(|m| m.as_str().parse::<Weekday>().ok())
        else {
            return false;
        };
        let day = if c.name("last").is_some() {
            DayRef::LastWeekday(wd)
        } else {
            DayRef::Weekday(wd)
        };
        out.day.get_or_insert(day);
        true
    });

    let mut add = |minutes: f64| -> bool {
        let minutes = minutes.round();
        if !(1.0..=1440.0).contains(&minutes) {
            return false;
        }
        let total = out.duration.unwrap_or(0) + minutes as u32;
        out.duration = Some(total.min(1440));
        true
    };
    each(&rules.hm_glued, text, &mut claims, |c, _| {
        let h: f64 = c["h"].parse().unwrap_or(f64::NAN);
        let m: f64 = c["m"].parse().unwrap_or(f64::NAN);
        m < 60.0 && add(h * 60.0 + m)
    });
    each(&rules.colon_hours, text, &mut claims, |c, _| {
        let h: f64 = c["h"].parse().unwrap_or(f64::NAN);
        let m: f64 = c["m"].parse().unwrap_or(f64::NAN);
        m < 60.0 && add(h * 60.0 + m)
    });
    each(&rules.for_colon, text, &mut claims, |c, rest| {
        let h: f64 = c["h"].parse().unwrap_or(f64::NAN);
        let m: f64 = c["m"].parse().unwrap_or(f64::NAN);
        let meridiem = rest.trim_start().starts_with("am") || rest.trim_start().starts_with("pm");
        !meridiem && h <= 12.0 && m < 60.0 && add(h * 60.0 + m)
    });
    each(&rules.hours_and_minutes, text, &mut claims, |c, _| {
        match (num_value(c, "h"), num_value(c, "m")) {
            (Some(h), Some(m)) if m < 60.0 => add(h * 60.0 + m),
            _ => false,
        }
    });
    each(&rules.hours_then_number, text, &mut claims, |c, rest| {
        let minutes = c
            .name("md")
            .or_else(|| c.name("mw"))
            .and_then(|m| numbers::value(m.as_str()));
        // A round number of minutes with nothing counted after it: "1 hour 30", not "1h 2 people".
        let counted = rest
            .trim_start()
            .starts_with(|ch: char| ch.is_ascii_alphabetic())
            && !rest.trim_start().starts_with("on ")
            && !rest.trim_start().starts_with("of ");
        match (num_value(c, "h"), minutes) {
            (Some(h), Some(m)) if (10.0..60.0).contains(&m) && m % 5.0 == 0.0 && !counted => {
                add(h * 60.0 + m)
            }
            _ => false,
        }
    });
    each(&rules.primes, text, &mut claims, |c, rest| {
        // `2'` is two minutes; `2''` seconds, and a quote in a word is no unit.
        let glued = rest.starts_with(|ch: char| ch.is_alphanumeric() || "'’′".contains(ch));
        !glued && c["n"].parse::<f64>().is_ok_and(&mut add)
    });
    for rule in [&rules.and_a_half_before, &rules.and_a_half_after] {
        each(rule, text, &mut claims, |c, _| {
            let frac = match c.name("frac").map(|m| m.as_str()) {
                Some("a half") => 0.5,
                Some("a quarter") => 0.25,
                Some(f) if f.starts_with("three") => 0.75,
                _ => return false,
            };
            // "hour and a half": one hour.
            let h = num_value(c, "h").or_else(|| c[0].starts_with("hour").then_some(1.0));
            h.is_some_and(|h| add((h + frac) * 60.0))
        });
    }
    each(&rules.fraction_of_hour, text, &mut claims, |c, _| {
        if c.name("half").is_some() {
            add(30.0)
        } else if c.name("tq").is_some() {
            add(45.0)
        } else {
            add(15.0)
        }
    });
    each(&rules.hours, text, &mut claims, |c, _| {
        num_value(c, "h").is_some_and(|h| add(h * 60.0))
    });
    each(&rules.minutes, text, &mut claims, |c, _| {
        num_value(c, "m").is_some_and(&mut add)
    });

    each(&rules.start, text, &mut claims, |c, rest| {
        let Some(a) = Clock::from_captures(c, "a") else {
            return false;
        };
        let kind = c.name("kind").map(|m| m.as_str()).unwrap_or("");
        if out.range.is_some() || out.start.is_some() || unit_follows(rest) {
            return false;
        }
        // "at 3" is a time; "from 3" alone could be anything, so it needs a clear clock time,
        // and "at one point" is no time at all.
        if (kind == "from" && !a.is_explicit()) || a.worded {
            return false;
        }
        out.start = Some(a.alone());
        out.until_now = kind == "since";
        true
    });
    each(&rules.bare_clock, text, &mut claims, |c, _| {
        let hour = c.name("ah").or_else(|| c.name("ah2"));
        let minute = c.name("am").or_else(|| c.name("am2"));
        let Some(hour) = hour.and_then(|h| h.as_str().parse::<u32>().ok()) else {
            return false;
        };
        let minute = minute
            .and_then(|m| m.as_str().parse::<u32>().ok())
            .unwrap_or(0);
        let meridiem = c.name("aap").map(|m| {
            if m.as_str().starts_with('a') {
                clock::Meridiem::Am
            } else {
                clock::Meridiem::Pm
            }
        });
        let valid = minute < 60
            && match meridiem {
                Some(_) => (1..=12).contains(&hour),
                None => hour <= 23,
            };
        if !valid || out.range.is_some() || out.start.is_some() {
            return false;
        }
        let clock = Clock {
            hour,
            minute,
            meridiem,
            has_minutes: true,
            twenty_four: meridiem.is_none() && hour >= 13,
            worded: false,
        };
        out.start = Some(clock.alone());
        true
    });

    let mut spans = claims.0;
    spans.sort_by_key(|r| r.start);
    out.spans = spans;
    out
}
