use chrono::TimeZone;

use super::*;
use crate::candidates::{Neighbour, Project, Term};

fn term(key: &str, keywords: &[&str]) -> Term {
    Term::for_test(key, keywords)
}

fn fixture() -> Candidates {
    Candidates {
        projects: vec![
            Project {
                id: Uuid::new_v4(),
                name: "Apollo Redesign".into(),
                code: Some("APL".into()),
                aliases: vec![],
                billable: true,
            },
            Project {
                id: Uuid::new_v4(),
                name: "Internal Tools".into(),
                code: None,
                aliases: vec!["tooling".into()],
                billable: false,
            },
        ],
        activity_types: vec![
            term("development", &["code", "bug", "fix", "debug", "refactor"]),
            term("code_review", &["code review", "review", "pr"]),
            term("meeting", &["meeting", "standup", "sync", "call"]),
            term("writing", &["docs", "write"]),
        ],
        work_modes: vec![
            term("deep_work", &["focus", "coding"]),
            term("meeting", &["meeting", "call", "standup", "sync"]),
            term("collaboration", &["pairing", "workshop"]),
        ],
        task_categories: vec![
            term("client_work", &["client", "customer"]),
            term("internal", &["internal", "tooling"]),
        ],
        neighbours: vec![],
        embedding: None,
    }
}

fn run(text: &str, candidates: &Candidates, given: &Given) -> Extraction {
    let now = Utc
        .with_ymd_and_hms(2026, 3, 10, 15, 0, 0)
        .single()
        .expect("valid");
    extract(
        &Input {
            text,
            given,
            now,
            tz: chrono_tz::UTC,
        },
        candidates,
        0.6,
    )
}

fn key(terms: &[Term], choice: Choice) -> Option<&str> {
    choice.id.and_then(|id| Candidates::id_key(terms, id))
}

#[test]
fn a_plain_line_becomes_a_full_entry() {
    let c = fixture();
    let e = run("2h fixing the login bug on apollo", &c, &Given::default());
    assert_eq!(e.duration_minutes, Some(120));
    assert_eq!(e.project.id, Some(c.projects[0].id));
    assert_eq!(key(&c.activity_types, e.activity_type), Some("development"));
    assert_eq!(key(&c.work_modes, e.work_mode), Some("deep_work"));
    assert_eq!(e.work_mode.source, Source::Implied);
    // Apollo is billable client work.
    assert!(e.billable);
    assert_eq!(
        key(&c.task_categories, e.task_category),
        Some("client_work")
    );
    assert!(!e.needs_review, "{e:#?}");
}

#[test]
fn a_meeting_is_in_meeting_mode() {
    let c = fixture();
    let e = run("45m standup with the team", &c, &Given::default());
    assert_eq!(key(&c.activity_types, e.activity_type), Some("meeting"));
    assert_eq!(key(&c.work_modes, e.work_mode), Some("meeting"));
    assert_eq!(e.duration_minutes, Some(45));
    // No project named: a person should look.
    assert!(e.needs_review);
}

#[test]
fn given_fields_win_and_text_fills_the_rest() {
    let c = fixture();
    let given = Given {
        project_id: Some(c.projects[1].id),
        duration_minutes: Some(30),
        billable: Some(true),
        ..Given::default()
    };
    let e = run("code review on apollo #urgent", &c, &given);
    assert_eq!(e.project.id, Some(c.projects[1].id));
    assert_eq!(e.project.source, Source::User);
    assert_eq!(e.duration_minutes, Some(30));
    assert!(e.billable);
    assert_eq!(key(&c.activity_types, e.activity_type), Some("code_review"));
    assert_eq!(e.tags, ["urgent"]);
    assert_eq!(
        e.ended_at.map(|t| t.to_rfc3339()),
        Some("2026-03-10T15:00:00+00:00".into())
    );
}

#[test]
fn neighbours_decide_when_the_text_does_not() {
    let mut c = fixture();
    let docs = c.activity_types[3].id;
    c.neighbours = vec![
        Neighbour {
            similarity: 0.82,
            project_id: Some(c.projects[1].id),
            activity_type_id: Some(docs),
            work_mode_id: None,
            task_category_id: None,
        };
        3
    ];
    let e = run("1h on the onboarding handbook", &c, &Given::default());
    assert_eq!(e.activity_type.id, Some(docs));
    assert_eq!(e.activity_type.source, Source::Neighbours);
    assert_eq!(e.project.id, Some(c.projects[1].id));
}

#[test]
fn billable_words_override_the_project() {
    let c = fixture();
    assert!(!run("apollo call, non-billable", &c, &Given::default()).billable);
    assert!(run("tooling fix, billable", &c, &Given::default()).billable);
}
