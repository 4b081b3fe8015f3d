use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

use super::*;

const TZ: Tz = chrono_tz::Europe::Berlin;

/// Tuesday 2026-03-10 14:30 in Berlin.
fn now() -> DateTime<Utc> {
    TZ.with_ymd_and_hms(2026, 3, 10, 14, 30, 0)
        .single()
        .expect("valid")
        .with_timezone(&Utc)
}

fn duration(text: &str) -> Option<i32> {
    parse(text, now(), TZ).duration_minutes
}

/// Start and end as local "YYYY-MM-DD HH:MM".
fn span(text: &str) -> (String, String) {
    let facts = parse(text, now(), TZ);
    let show = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.with_timezone(&TZ).format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    };
    (show(facts.started_at), show(facts.ended_at))
}

#[test]
fn compact_durations() {
    for (text, minutes) in [
        ("2h", 120),
        ("45m standup", 45),
        ("45 min", 45),
        ("1h30", 90),
        ("1h 30m", 90),
        ("1h30m code review", 90),
        ("1:30h", 90),
        ("1.5 hrs", 90),
        ("1,5h", 90),
        ("1.5 hours", 90),
        ("90 min", 90),
        ("90 minutes of email", 90),
        ("2 hours 15 minutes", 135),
        ("2 hrs", 120),
        ("3hrs on the migration", 180),
        ("for 1:30 on apollo", 90),
    ] {
        assert_eq!(duration(text), Some(minutes), "{text}");
    }
}

#[test]
fn durations_in_words() {
    for (text, minutes) in [
        ("two hours", 120),
        ("an hour", 60),
        ("an hour and a half", 90),
        ("half an hour", 30),
        ("a half hour sync", 30),
        ("a quarter of an hour", 15),
        ("quarter of an hour", 15),
        ("three quarters of an hour", 45),
        ("one and a half hours", 90),
        ("two and a half hours", 150),
        ("twenty minutes", 20),
        ("forty-five minutes", 45),
        ("a couple of hours", 120),
        ("two hours and twenty minutes", 140),
    ] {
        assert_eq!(duration(text), Some(minutes), "{text}");
    }
}

#[test]
fn durations_as_duckling_writes_them() {
    for (text, minutes) in [
        ("2'", 2),
        ("5' on the deploy", 5),
        ("2 more minutes", 2),
        ("two additional minutes", 2),
        ("2 extra minutes", 2),
        ("a full hour of planning", 60),
        ("1/2 hour", 30),
        ("2 1/2 hours", 150),
        ("1½ hours", 90),
        (".5h", 30),
        ("three-quarters of an hour", 45),
        ("quarter-hour sync", 15),
        ("hour and a half", 90),
        ("1 hour 30", 90),
        ("an hour forty five", 105),
        ("seventy five minutes", 75),
        ("a couple hours", 120),
    ] {
        assert_eq!(duration(text), Some(minutes), "{text}");
    }
}

#[test]
fn clock_times_in_words_and_marked_ranges() {
    let today = |a: &str, b: &str| (format!("2026-03-10 {a}"), format!("2026-03-10 {b}"));
    assert_eq!(span("from 9am till noon"), today("09:00", "12:00"));
    assert_eq!(span("between 2 and 4 pm"), today("14:00", "16:00"));
    assert_eq!(span("from nine to half past ten"), today("09:00", "10:30"));
    assert_eq!(span("10 to quarter to 12"), today("10:00", "11:45"));
    assert_eq!(
        span("from 2 in the afternoon to 4"),
        today("14:00", "16:00")
    );
    assert_eq!(span("midday to 13:30 lunch"), today("12:00", "13:30"));
}

#[test]
fn counts_and_numbered_things_are_not_times() {
    for text in [
        "interviewed 2 to 3 candidates",
        "read page 12 to 15 of the spec",
        "one to one with sam",
        "at one point the build broke",
        "it's 2'' long",
    ] {
        let facts = parse(text, now(), TZ);
        assert_eq!(
            (facts.duration_minutes, facts.started_at),
            (None, None),
            "{text}"
        );
    }
}

#[test]
fn several_durations_add_up() {
    assert_eq!(duration("1h meeting, 30m email"), Some(90));
    assert_eq!(duration("2h coding and 45 minutes of review"), Some(165));
}

#[test]
fn ranges_give_start_end_and_duration() {
    let today = |a: &str, b: &str| (format!("2026-03-10 {a}"), format!("2026-03-10 {b}"));
    assert_eq!(span("from 9 to 11:30"), today("09:00", "11:30"));
    assert_eq!(span("9-11:30 bugfix"), today("09:00", "11:30"));
    assert_eq!(span("14:00–15:15 planning"), today("14:00", "15:15"));
    assert_eq!(span("9am to 12pm"), today("09:00", "12:00"));
    assert_eq!(span("between 2 and 3pm"), today("14:00", "15:00"));
    assert_eq!(span("9 to 5 workshop"), today("09:00", "17:00"));
    assert_eq!(span("worked 1pm until 2.30pm"), today("13:00", "14:30"));
    assert_eq!(duration("from 9 to 11:30"), Some(150));
    assert_eq!(duration("9am to 12pm"), Some(180));
}

#[test]
fn a_range_over_midnight_ends_the_next_day() {
    assert_eq!(
        span("deploy 22:00-01:00"),
        ("2026-03-10 22:00".into(), "2026-03-11 01:00".into())
    );
    assert_eq!(duration("deploy 22:00-01:00"), Some(180));
}

#[test]
fn a_duration_alone_ends_when_the_log_was_written() {
    assert_eq!(
        span("2h refactoring"),
        ("2026-03-10 12:30".into(), "2026-03-10 14:30".into())
    );
}

#[test]
fn days_and_parts_of_day() {
    assert_eq!(
        span("all morning on the report"),
        ("2026-03-10 09:00".into(), "2026-03-10 12:00".into())
    );
    assert_eq!(
        span("this afternoon: customer calls"),
        ("2026-03-10 13:00".into(), "2026-03-10 17:00".into())
    );
    assert_eq!(
        span("yesterday afternoon 1.5h code review"),
        ("2026-03-09 13:00".into(), "2026-03-09 14:30".into())
    );
    assert_eq!(
        span("2h yesterday"),
        ("2026-03-09 09:00".into(), "2026-03-09 11:00".into())
    );
    // 2026-03-10 is a Tuesday: last friday is the 6th, monday the 9th.
    assert_eq!(
        span("last friday 14:00-15:15 retro"),
        ("2026-03-06 14:00".into(), "2026-03-06 15:15".into())
    );
    assert_eq!(span("monday 9-10").0, "2026-03-09 09:00");
    assert_eq!(span("last tuesday 9-10").0, "2026-03-03 09:00");
    assert_eq!(span("tuesday 9-10").0, "2026-03-10 09:00");
    assert_eq!(span("2026-03-02 10:00-11:00").0, "2026-03-02 10:00");
    assert_eq!(span("3 days ago 1h").0, "2026-03-07 09:00");
    assert_eq!(span("the day before yesterday 10-11").0, "2026-03-08 10:00");
}

#[test]
fn start_times() {
    assert_eq!(
        span("standup at 9:30 for 15 min"),
        ("2026-03-10 09:30".into(), "2026-03-10 09:45".into())
    );
    assert_eq!(
        span("since 10am on the incident"),
        ("2026-03-10 10:00".into(), "2026-03-10 14:30".into())
    );
    assert_eq!(
        span("call at 3 for an hour"),
        ("2026-03-10 15:00".into(), "2026-03-10 16:00".into())
    );
}

#[test]
fn dst_changes_are_counted_in_real_minutes() {
    // Berlin springs forward on 2026-03-29 at 02:00: 01:00–04:00 local is two real hours.
    let now = TZ
        .with_ymd_and_hms(2026, 3, 29, 12, 0, 0)
        .single()
        .expect("valid")
        .with_timezone(&Utc);
    assert_eq!(
        parse("01:00-04:00 on call", now, TZ).duration_minutes,
        Some(120)
    );
    // Berlin falls back on 2026-10-25: midnight to midnight is 25 real hours, and a log is a
    // day at most (found by the generated-lines property).
    let autumn = TZ
        .with_ymd_and_hms(2026, 10, 25, 12, 0, 0)
        .single()
        .expect("valid")
        .with_timezone(&Utc);
    assert_eq!(
        parse("24:00 to 0:00 on call", autumn, TZ).duration_minutes,
        Some(1440)
    );
    // A time inside the gap moves forward.
    let facts = parse("02:30-04:00 on call", now, TZ);
    assert_eq!(
        facts
            .started_at
            .map(|t| t.with_timezone(&TZ).format("%H:%M").to_string()),
        Some("03:30".into())
    );
}

#[test]
fn text_without_times_yields_nothing() {
    for text in [
        "fixed the login bug",
        "1:1 with sam",
        "reviewed PR 1234",
        "v2 to v3 migration",
        "10 meetings this week were too many",
        "deployed release 2026.3",
    ] {
        let facts = parse(text, now(), TZ);
        assert_eq!(facts.duration_minutes, None, "{text}");
        assert_eq!(facts.confidence, 0.0, "{text}");
    }
}

#[test]
fn the_remainder_is_what_is_left_to_classify() {
    let text = "2h code review for Apollo yesterday afternoon";
    let facts = parse(text, now(), TZ);
    assert_eq!(remainder(text, &facts.spans), "code review for Apollo");
    let text = "from 9 to 11:30 Fixed login bug";
    let facts = parse(text, now(), TZ);
    assert_eq!(remainder(text, &facts.spans), "Fixed login bug");
}

#[test]
fn a_log_is_embedded_without_its_times() {
    assert_eq!(
        without_times("an hour and a half of sprint retro, 9-10:30", now(), TZ),
        "of sprint retro,"
    );
    assert_eq!(without_times("45 min", now(), TZ), "");
    assert_eq!(
        without_times("interviewed 2 to 3 candidates", now(), TZ),
        "interviewed 2 to 3 candidates"
    );
}

/// Cases per generated-input property: `PROPTEST_CASES`, else 3,000.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000)
}

/// A line as people write them: durations, clocks, ranges, days and parts of the day in
/// digits and words, mixed with work words, punctuation and any other text.
fn line() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        6 => prop::sample::select(vec![
            "2h", "45m", "1h30", "1:30h", "1.5 hrs", "1,5h", "90 min", "minutes", "hours", "hr",
            "an hour", "half an hour", "and a half", "a quarter of an hour", "three quarters",
            "a couple of hours", "twenty", "forty-five", "one", "two", "eleven", "noon",
            "midnight", "from", "to", "until", "till", "-", "–", "at", "for", "since", "between",
            "and", "9", "9am", "9 am", "11:30", "17:45", "12pm", "0:00", "23:59", "24:00",
            "yesterday", "today", "tonight", "last", "friday", "monday", "sunday", "morning",
            "afternoon", "evening", "night", "on", "the", "3rd", "march", "12/03", "2026-03-01",
            "ago", "days", "2 days ago", "now", "standup", "fixing", "apollo", "review", "'",
            "\"", "h", "m", "min",
        ])
        .prop_map(str::to_owned),
        2 => (0u32..100_000).prop_map(|n| n.to_string()),
        1 => (0u32..30, 0u32..70).prop_map(|(h, m)| format!("{h}:{m:02}")),
        1 => "[0-9.,:h'm -]{1,6}",
        1 => "\\PC{1,6}",
    ];
    (
        prop::collection::vec(token, 0..12),
        prop::collection::vec(
            prop::sample::select(vec![" ", " ", " ", "", ", ", "-", "\n"]),
            12,
        ),
    )
        .prop_map(|(tokens, gaps)| {
            let mut text = String::new();
            for (token, gap) in tokens.iter().zip(gaps) {
                text.push_str(token);
                text.push_str(gap);
            }
            text
        })
}

/// Zones with DST gaps and overlaps, half and quarter hours, and a date line.
const ZONES: [Tz; 8] = [
    chrono_tz::Europe::Berlin,
    chrono_tz::America::New_York,
    chrono_tz::America::Santiago,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::Asia::Kathmandu,
    chrono_tz::Pacific::Chatham,
    chrono_tz::Pacific::Kiritimati,
    chrono_tz::UTC,
];

/// What must hold for any line at any moment in any zone.
fn facts_hold(text: &str, now: DateTime<Utc>, tz: Tz) -> Result<(), TestCaseError> {
    let facts = parse(text, now, tz);
    for span in &facts.spans {
        prop_assert!(span.start <= span.end && span.end <= text.len());
        prop_assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end));
    }
    if let (Some(a), Some(b)) = (facts.started_at, facts.ended_at) {
        prop_assert!(b >= a, "ends before it starts: {facts:?}");
    }
    if let Some(d) = facts.duration_minutes {
        prop_assert!((0..=1440).contains(&d), "{d} minutes");
    }
    prop_assert!((0.0..=1.0).contains(&facts.confidence));
    let rest = remainder(text, &facts.spans);
    prop_assert!(rest.len() <= text.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn generated_lines_parse_within_bounds(
        text in line(),
        zone in 0..ZONES.len(),
        // Any moment from 2000 to 2100.
        at in 946_684_800i64..4_102_444_800,
    ) {
        let now = DateTime::from_timestamp(at, 0).unwrap_or_else(now);
        facts_hold(&text, now, ZONES[zone])?;
    }

    #[test]
    fn generated_text_parses_within_bounds(text in "\\PC{0,80}") {
        facts_hold(&text, now(), TZ)?;
    }
}

proptest! {
    #[test]
    fn any_hours_and_minutes_read_back(h in 0u32..12, m in 1u32..60) {
        let text = format!("{h}h{m:02}m on something");
        prop_assert_eq!(duration(&text), Some((h * 60 + m) as i32));
    }
}
