//! Clock times in log lines (`9`, `11:30`, `2pm`, `14.15`, `noon`) and the am/pm guesses a
//! person's working day makes natural.

use chrono::NaiveTime;
use regex::Captures;

/// Hours as words, as they appear in a clock time ("half past nine", "nine o'clock").
const HOUR_WORDS: &str = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve";

/// The regex of one clock time with named groups `{p}word` (noon, midnight), `{p}rel` and
/// `{p}rh` (`half past nine`, `quarter to 3`), and `{p}h`, `{p}m`, `{p}oc` (o'clock) and `{p}ap`
/// (am, pm, `in the morning`).
pub fn pattern(p: &str) -> String {
    format!(
        r"(?:(?P<{p}word>noon|midday|midnight)|(?P<{p}rel>half past|quarter past|quarter to)\s+(?P<{p}rh>\d{{1,2}}|{HOUR_WORDS})\b|(?P<{p}h>\d{{1,2}}|(?:{HOUR_WORDS})\b)(?:[:.h](?P<{p}m>\d{{2}}))?(?P<{p}oc>\s*o'clock)?(?:\s*(?P<{p}ap>a\.?m\.?|p\.?m\.?|in the morning|in the afternoon|in the evening|at night))?)"
    )
}

/// The meridiem a written marker stands for: `am` and `in the morning` are morning.
pub fn meridiem_of(marker: &str) -> Meridiem {
    if marker.starts_with('p')
        || ["afternoon", "evening", "night"]
            .iter()
            .any(|w| marker.contains(w))
    {
        Meridiem::Pm
    } else {
        Meridiem::Am
    }
}

/// An hour written in digits or as a word.
fn hour_value(text: &str) -> Option<u32> {
    text.parse().ok().or_else(|| {
        HOUR_WORDS
            .split('|')
            .position(|w| w == text)
            .and_then(|i| u32::try_from(i + 1).ok())
    })
}

/// Morning or afternoon, when the person said which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meridiem {
    /// `am`
    Am,
    /// `pm`
    Pm,
}

/// A clock time as written, before am/pm is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// The hour as written (0–23, or 1–12 with a meridiem).
    pub hour: u32,
    /// The minutes.
    pub minute: u32,
    /// `am`/`pm` when written.
    pub meridiem: Option<Meridiem>,
    /// Whether it was written with minutes (`9:00`), which reads as a clock time for sure.
    pub has_minutes: bool,
    /// Whether the hour is unambiguous (24-hour form, a leading zero, noon or midnight).
    pub twenty_four: bool,
    /// Whether the hour was a bare word ("nine"), which reads as a time only in a range.
    pub worded: bool,
}

impl Clock {
    /// The clock time captured under prefix `p`, if it is a valid one.
    pub fn from_captures(caps: &Captures<'_>, p: &str) -> Option<Self> {
        let group = |name: &str| caps.name(&format!("{p}{name}"));
        if let Some(word) = group("word") {
            let hour = if word.as_str() == "midnight" { 0 } else { 12 };
            return Some(Self {
                hour,
                minute: 0,
                meridiem: None,
                has_minutes: true,
                twenty_four: true,
                worded: false,
            });
        }
        if let (Some(rel), Some(of)) = (group("rel"), group("rh")) {
            let hour = hour_value(of.as_str()).filter(|h| (1..=12).contains(h))?;
            let (hour, minute) = match rel.as_str() {
                "half past" => (hour, 30),
                "quarter past" => (hour, 15),
                _ => (if hour == 1 { 12 } else { hour - 1 }, 45),
            };
            return Some(Self {
                hour,
                minute,
                meridiem: None,
                has_minutes: true,
                twenty_four: false,
                worded: false,
            });
        }
        let hour_text = group("h")?.as_str();
        let hour = hour_value(hour_text)?;
        let worded = !hour_text.starts_with(|c: char| c.is_ascii_digit());
        let minute: u32 = match group("m") {
            Some(m) => m.as_str().parse().ok()?,
            None => 0,
        };
        let meridiem = group("ap").map(|m| meridiem_of(m.as_str()));
        let valid_hour = match meridiem {
            Some(_) => (1..=12).contains(&hour),
            None => hour <= 24,
        };
        if !valid_hour || minute >= 60 {
            return None;
        }
        Some(Self {
            hour,
            minute,
            meridiem,
            has_minutes: group("m").is_some() || group("oc").is_some(),
            twenty_four: meridiem.is_none()
                && (hour >= 13 || hour == 0 || hour_text.starts_with('0')),
            worded: worded && group("oc").is_none(),
        })
    }

    /// Whether the text certainly means a time of day (minutes, am/pm or 24-hour form).
    pub fn is_explicit(&self) -> bool {
        self.has_minutes || self.meridiem.is_some() || self.twenty_four
    }

    /// The hour on a 24-hour clock with `meridiem` applied.
    fn hour_with(&self, meridiem: Meridiem) -> u32 {
        match (meridiem, self.hour) {
            (Meridiem::Am, 12) => 0,
            (Meridiem::Am, h) => h,
            (Meridiem::Pm, 12) => 12,
            (Meridiem::Pm, h) => h + 12,
        }
    }

    /// The time of day for a lone clock time: an unmarked 1–6 is afternoon (nobody logs work
    /// at 3 at night by writing "at 3").
    pub fn alone(&self) -> NaiveTime {
        let hour = match self.meridiem {
            Some(m) => self.hour_with(m),
            None if self.twenty_four => self.hour % 24,
            None if (1..=6).contains(&self.hour) => self.hour + 12,
            None => self.hour,
        };
        time(hour, self.minute)
    }

    fn with(&self, meridiem: Meridiem) -> NaiveTime {
        time(self.hour_with(meridiem), self.minute)
    }
}

fn time(hour: u32, minute: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(hour % 24, minute, 0).unwrap_or(NaiveTime::MIN)
}

/// Settles a range's two ends: a meridiem written on one end carries to the other unless that
/// would put the end before the start ("9 to 12pm" is 09:00–12:00, "1 to 3pm" 13:00–15:00),
/// and an end that falls before the start moves to the afternoon when that fixes it ("9 to 5").
pub fn range(start: Clock, end: Clock) -> (NaiveTime, NaiveTime) {
    match (start.meridiem, end.meridiem) {
        (Some(a), Some(b)) => (start.with(a), end.with(b)),
        (None, Some(b)) if !start.twenty_four => {
            let same = start.with(b);
            let end = end.with(b);
            if same < end {
                (same, end)
            } else {
                (start.with(Meridiem::Am), end)
            }
        }
        (Some(a), None) if !end.twenty_four => {
            let start = start.with(a);
            let same = end.with(a);
            if same > start {
                (start, same)
            } else {
                (start, end.with(Meridiem::Pm))
            }
        }
        _ => {
            let start_time = start.alone();
            let mut end_time = if end.twenty_four || end.meridiem.is_some() {
                end.alone()
            } else {
                time(end.hour, end.minute)
            };
            if end_time <= start_time && end.meridiem.is_none() && !end.twenty_four {
                let later = time(end.hour + 12, end.minute);
                if end.hour < 12 && later > start_time {
                    end_time = later;
                }
            }
            (start_time, end_time)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(hour: u32, minute: Option<u32>, meridiem: Option<Meridiem>) -> Clock {
        Clock {
            hour,
            minute: minute.unwrap_or(0),
            meridiem,
            has_minutes: minute.is_some(),
            twenty_four: meridiem.is_none() && hour >= 13,
            worded: false,
        }
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("valid")
    }

    #[test]
    fn ranges_read_like_a_working_day() {
        use Meridiem::*;
        let r = |a, b| range(a, b);
        assert_eq!(
            r(clock(9, None, None), clock(11, Some(30), None)),
            (hm(9, 0), hm(11, 30))
        );
        assert_eq!(
            r(clock(9, None, None), clock(12, None, Some(Pm))),
            (hm(9, 0), hm(12, 0))
        );
        assert_eq!(
            r(clock(1, None, None), clock(3, None, Some(Pm))),
            (hm(13, 0), hm(15, 0))
        );
        assert_eq!(
            r(clock(11, None, Some(Am)), clock(1, None, None)),
            (hm(11, 0), hm(13, 0))
        );
        assert_eq!(
            r(clock(9, None, None), clock(5, None, None)),
            (hm(9, 0), hm(17, 0))
        );
        assert_eq!(
            r(clock(2, None, None), clock(4, None, None)),
            (hm(14, 0), hm(16, 0))
        );
        assert_eq!(
            r(clock(14, Some(0), None), clock(15, Some(15), None)),
            (hm(14, 0), hm(15, 15))
        );
        assert_eq!(
            r(clock(9, None, Some(Am)), clock(12, None, Some(Pm))),
            (hm(9, 0), hm(12, 0))
        );
        assert_eq!(
            r(clock(22, Some(0), None), clock(1, Some(0), None)),
            (hm(22, 0), hm(1, 0))
        );
    }

    #[test]
    fn lone_times_prefer_working_hours() {
        assert_eq!(clock(3, None, None).alone(), hm(15, 0));
        assert_eq!(clock(9, Some(15), None).alone(), hm(9, 15));
        assert_eq!(clock(12, None, Some(Meridiem::Am)).alone(), hm(0, 0));
    }
}
