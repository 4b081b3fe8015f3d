//! A calendar meeting, from a signed JSON event or an ICS feed's `VEVENT`, in one shape.

use chrono::{DateTime, Utc};
use icalendar::{Component, DatePerhapsTime, EventStatus};
use serde::{Deserialize, Serialize};

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

/// The meetings of an ICS document (events that are not meetings left out).
pub fn parse_ics(text: &str) -> Result<Vec<Meeting>, String> {
    let calendar: icalendar::Calendar = text.parse()?;
    Ok(calendar.events().filter_map(Meeting::from_ics).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

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
END:VCALENDAR\r\n";
        let meetings = parse_ics(ics).unwrap();
        assert_eq!(meetings.len(), 2, "the all-day event is not a meeting");
        let standup = &meetings[0];
        assert_eq!(standup.uid, "standup-1@example.com");
        assert_eq!(standup.start.to_rfc3339(), "2026-11-20T08:30:00+00:00");
        assert_eq!(standup.minutes(), 15);
        assert_eq!(standup.attending(), ["ann@example.com", "bob@example.com"]);
        assert!(!standup.cancelled);
        assert!(meetings[1].cancelled);
        assert!(standup.validate().is_ok());
    }
}
