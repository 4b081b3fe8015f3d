//! A calendar meeting, from a signed JSON event, a Graph event or an ICS feed's `VEVENT`, in
//! one shape, and the drafts it makes ([`drafts_for`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use icalendar::{Component, DatePerhapsTime, EventLike, EventStatus, Tz};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::{
    Failure, Source,
    drafts::{self, Draft},
    jira::summary,
};

/// The longest meeting that becomes a draft (a log holds at most a day).
const MAX_MINUTES: i64 = 24 * 60;

/// One attendee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attendee {
    /// Their email address.
    pub email: String,
    /// They declined the invitation.
    #[serde(default)]
    pub declined: bool,
}

/// A meeting as a calendar describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meeting {
    /// The event's stable id (`UID`).
    pub uid: String,
    /// Its title.
    #[serde(default)]
    pub title: String,
    /// Start.
    pub start: DateTime<Utc>,
    /// End.
    pub end: DateTime<Utc>,
    /// Cancelled (`STATUS:CANCELLED`, or `"cancelled": true`).
    #[serde(default)]
    pub cancelled: bool,
    /// Everyone invited, the organizer included.
    #[serde(default)]
    pub attendees: Vec<Attendee>,
}

impl Meeting {
    /// Checks what a draft needs: a uid, an end after the start, at most a day.
    pub fn validate(&self) -> Result<(), String> {
        if self.uid.trim().is_empty() || self.uid.len() > 1000 {
            return Err("a meeting needs a uid of 1 to 1000 characters".into());
        }
        let minutes = (self.end - self.start).num_minutes();
        if minutes <= 0 {
            return Err("a meeting must end after it starts".into());
        }
        if minutes > MAX_MINUTES {
            return Err("a meeting longer than a day is not a time entry".into());
        }
        Ok(())
    }

    /// Its length in whole minutes.
    pub fn minutes(&self) -> i32 {
        i32::try_from((self.end - self.start).num_minutes()).unwrap_or(i32::MAX)
    }

    /// The emails of those attending (not declined), lower-cased, without duplicates.
    pub fn attending(&self) -> Vec<String> {
        let mut emails: Vec<String> = self
            .attendees
            .iter()
            .filter(|a| !a.declined)
            .map(|a| a.email.trim().to_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        emails.sort();
        emails.dedup();
        emails
    }

    /// A meeting from an ICS event; `None` for all-day or floating-time events, and events
    /// without a uid.
    pub fn from_ics(event: &icalendar::Event) -> Option<Self> {
        let start = utc(event.get_start()?)?;
        let end = match event.get_end() {
            Some(end) => utc(end)?,
            None => start,
        };
        let mut attendees: Vec<Attendee> = event
            .multi_properties()
            .get("ATTENDEE")
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let declined = p
                    .params()
                    .get("PARTSTAT")
                    .is_some_and(|s| s.value().eq_ignore_ascii_case("DECLINED"));
                mailto(p.value()).map(|email| Attendee { email, declined })
            })
            .collect();
        if let Some(email) = event
            .properties()
            .get("ORGANIZER")
            .and_then(|p| mailto(p.value()))
        {
            attendees.push(Attendee {
                email,
                declined: false,
            });
        }
        Some(Self {
            uid: event.get_uid()?.to_owned(),
            title: event.get_summary().unwrap_or_default().to_owned(),
            start,
            end,
            cancelled: matches!(event.get_status(), Some(EventStatus::Cancelled)),
            attendees,
        })
    }
}

fn utc(value: DatePerhapsTime) -> Option<DateTime<Utc>> {
    match value {
        DatePerhapsTime::DateTime(dt) => dt.try_into_utc(),
        DatePerhapsTime::Date(_) => None,
    }
}

fn mailto(value: &str) -> Option<String> {
    let v = value.trim();
    let email = v
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("mailto:"))
        .map_or(v, |_| &v[7..]);
    email.contains('@').then(|| email.to_lowercase())
}

/// Most occurrences of one recurring event taken from a feed's window.
const MAX_OCCURRENCES: u16 = 500;

/// The meetings of an ICS document starting within `from..=until`: single events; each
/// occurrence of a recurring one (`RRULE`, `RDATE`, `EXDATE`), its uid suffixed with the
/// occurrence's start (`uid/20261120T083000Z`); a moved or cancelled occurrence
/// (`RECURRENCE-ID`) in place of the one it replaces. All-day and floating events are left out.
pub fn parse_ics(
    text: &str,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<Meeting>, String> {
    let calendar: icalendar::Calendar = text.parse()?;
    let mut meetings = BTreeMap::new();
    let mut overrides = Vec::new();
    for event in calendar.events() {
        let Some(base) = Meeting::from_ics(event) else {
            continue;
        };
        if let Some(original) = event.get_recurrence_id().and_then(utc) {
            overrides.push(Meeting {
                uid: occurrence(&base.uid, original),
                ..base
            });
        } else if event.properties().contains_key("RRULE") {
            let Ok(set) = event.get_recurrence() else {
                continue;
            };
            let length = base.end - base.start;
            let starts = set
                .after(from.with_timezone(&Tz::UTC))
                .before(until.with_timezone(&Tz::UTC))
                .all(MAX_OCCURRENCES)
                .dates;
            for start in starts {
                let start = start.with_timezone(&Utc);
                let m = Meeting {
                    uid: occurrence(&base.uid, start),
                    start,
                    end: start + length,
                    ..base.clone()
                };
                meetings.insert(m.uid.clone(), m);
            }
        } else {
            meetings.insert(base.uid.clone(), base);
        }
    }
    for m in overrides {
        meetings.insert(m.uid.clone(), m);
    }
    Ok(meetings
        .into_values()
        .filter(|m| m.start >= from && m.start <= until)
        .collect())
}

fn occurrence(uid: &str, start: DateTime<Utc>) -> String {
    format!("{uid}/{}", start.format("%Y%m%dT%H%M%SZ"))
}

/// Creates, moves or removes the drafts of `meeting`.
pub async fn drafts_for(
    conn: &mut PgConnection,
    source: &Source,
    meeting: &Meeting,
) -> Result<String, Failure> {
    meeting.validate().map_err(Failure::Permanent)?;
    let key = format!("event:{}", meeting.uid);
    let mut people = Vec::new();
    if !meeting.cancelled {
        for email in meeting.attending() {
            if let Some(user) = source.person(conn, &email, Some(&email)).await? {
                people.push(user);
            }
        }
    }
    people.sort();
    people.dedup();
    let title = meeting.title.trim();
    let mut changes = Vec::new();
    for user in &people {
        let draft = Draft {
            user: *user,
            comment: if title.is_empty() {
                "Meeting".into()
            } else {
                title.to_owned()
            },
            started_at: Some(meeting.start),
            duration_minutes: Some(meeting.minutes()),
            project_id: None,
            work_mode: Some("meeting"),
            activity_type: Some("meeting"),
            source: "calendar",
        };
        changes.push(
            drafts::upsert_linked(
                conn,
                source.org,
                source.id,
                &key,
                &draft,
                source.received_at,
            )
            .await?,
        );
    }
    changes
        .extend(drafts::remove_linked(conn, source.id, &key, &people, source.received_at).await?);
    Ok(summary(&changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> (DateTime<Utc>, DateTime<Utc>) {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        (at("2026-11-16T00:00:00Z"), at("2026-11-28T00:00:00Z"))
    }

    #[test]
    fn ics_events_become_meetings() {
        let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n\
BEGIN:VEVENT\r\nUID:standup-1@example.com\r\nDTSTAMP:20261120T080000Z\r\n\
DTSTART;TZID=Europe/Berlin:20261120T093000\r\nDTEND;TZID=Europe/Berlin:20261120T094500\r\n\
SUMMARY:Daily standup\r\nORGANIZER;CN=Ann:mailto:Ann@Example.com\r\n\
ATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@example.com\r\n\
ATTENDEE;PARTSTAT=DECLINED:mailto:cy@example.com\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:holiday@example.com\r\nDTSTAMP:20261120T080000Z\r\n\
DTSTART;VALUE=DATE:20261124\r\nSUMMARY:Holiday\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:gone@example.com\r\nDTSTAMP:20261120T080000Z\r\nSTATUS:CANCELLED\r\n\
DTSTART:20261121T100000Z\r\nDTEND:20261121T110000Z\r\nSUMMARY:Review\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:old@example.com\r\nDTSTAMP:20261120T080000Z\r\n\
DTSTART:20250101T100000Z\r\nDTEND:20250101T110000Z\r\nSUMMARY:Long ago\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";
        let (from, until) = window();
        let meetings = parse_ics(ics, from, until).unwrap();
        assert_eq!(
            meetings.len(),
            2,
            "neither the all-day event nor last year's"
        );
        let gone = &meetings[0];
        assert!(gone.cancelled);
        let standup = &meetings[1];
        assert_eq!(standup.uid, "standup-1@example.com");
        assert_eq!(standup.start.to_rfc3339(), "2026-11-20T08:30:00+00:00");
        assert_eq!(standup.minutes(), 15);
        assert_eq!(standup.attending(), ["ann@example.com", "bob@example.com"]);
        assert!(!standup.cancelled);
        assert!(standup.validate().is_ok());
    }

    #[test]
    fn recurring_events_expand_with_exceptions_and_moved_occurrences() {
        // Weekdays at 09:30 Berlin from Monday 16 November, 16 occurrences, the 18th left
        // out (EXDATE), the 19th moved to 14:00 and the 20th cancelled (RECURRENCE-ID).
        let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n\
BEGIN:VEVENT\r\nUID:daily@example.com\r\nDTSTAMP:20261101T080000Z\r\n\
DTSTART;TZID=Europe/Berlin:20261116T093000\r\nDTEND;TZID=Europe/Berlin:20261116T094500\r\n\
RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;COUNT=16\r\n\
EXDATE;TZID=Europe/Berlin:20261118T093000\r\nSUMMARY:Standup\r\n\
ATTENDEE:mailto:bob@example.com\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:daily@example.com\r\nDTSTAMP:20261101T080000Z\r\n\
RECURRENCE-ID;TZID=Europe/Berlin:20261119T093000\r\n\
DTSTART;TZID=Europe/Berlin:20261119T140000\r\nDTEND;TZID=Europe/Berlin:20261119T141500\r\n\
SUMMARY:Standup (moved)\r\nATTENDEE:mailto:bob@example.com\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:daily@example.com\r\nDTSTAMP:20261101T080000Z\r\nSTATUS:CANCELLED\r\n\
RECURRENCE-ID;TZID=Europe/Berlin:20261120T093000\r\n\
DTSTART;TZID=Europe/Berlin:20261120T093000\r\nDTEND;TZID=Europe/Berlin:20261120T094500\r\n\
SUMMARY:Standup\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";
        let (from, until) = window();
        let meetings = parse_ics(ics, from, until).unwrap();
        let seen: Vec<(String, String, bool)> = meetings
            .iter()
            .map(|m| {
                (
                    m.uid.clone(),
                    m.start.format("%d %H:%M").to_string(),
                    m.cancelled,
                )
            })
            .collect();
        let expected = [
            ("20261116T083000Z", "16 08:30", false),
            ("20261117T083000Z", "17 08:30", false),
            ("20261119T083000Z", "19 13:00", false),
            ("20261120T083000Z", "20 08:30", true),
            ("20261123T083000Z", "23 08:30", false),
            ("20261124T083000Z", "24 08:30", false),
            ("20261125T083000Z", "25 08:30", false),
            ("20261126T083000Z", "26 08:30", false),
            ("20261127T083000Z", "27 08:30", false),
        ]
        .map(|(key, at, cancelled)| (format!("daily@example.com/{key}"), at.to_owned(), cancelled));
        assert_eq!(seen, expected);
        assert!(meetings.iter().all(|m| m.minutes() == 15));
    }
}
