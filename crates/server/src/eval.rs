//! `tally eval`: runs the labelled set in `eval/` through the real classification code in a
//! scratch organization and reports per-field accuracy against the targets.

use std::{collections::HashMap, fmt, path::Path, time::Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgPool;
use tally_core::RequestContext;
use uuid::Uuid;

/// The org the set's comments are written in.
#[derive(Debug, Deserialize)]
struct Fixture {
    org: String,
    timezone: String,
    now: DateTime<Utc>,
    projects: Vec<FixtureProject>,
}

#[derive(Debug, Deserialize)]
struct FixtureProject {
    name: String,
    code: String,
    aliases: Vec<String>,
    billable: bool,
}

/// One labelled comment; `None` expects no value.
#[derive(Debug, Clone)]
pub struct Case {
    /// Expected minutes.
    pub minutes: Option<i32>,
    /// Expected project code.
    pub project: Option<String>,
    /// Expected activity type key.
    pub activity: Option<String>,
    /// Expected work mode key.
    pub mode: Option<String>,
    /// The comment.
    pub comment: String,
}

/// What the extractor answered for one case.
#[derive(Debug, Clone, Default)]
struct Answer {
    minutes: Option<i32>,
    project: Option<String>,
    activity: Option<String>,
    mode: Option<String>,
}

/// The fields scored, with their targets.
const FIELDS: [(&str, f64); 4] = [
    ("duration", 0.95),
    ("project", 0.90),
    ("activity type", 0.80),
    ("work mode", 0.75),
];

/// Per-field results of a run.
#[derive(Debug)]
pub struct Report {
    /// Cases run.
    pub total: usize,
    /// Correct answers per field, in the order of [`FIELDS`].
    pub correct: [usize; 4],
    /// Wall time of the classification calls, in seconds.
    pub seconds: f64,
    /// The misses: comment, field, expected, got.
    pub misses: Vec<(String, &'static str, String, String)>,
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
        Ok(())
    }
}

/// Reads a file of labelled cases.
pub fn read_cases(path: &Path) -> anyhow::Result<Vec<Case>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let dash = |s: &str| (s != "-").then(|| s.to_owned());
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(n, line)| {
            let cols: Vec<&str> = line.splitn(5, '\t').collect();
            let [minutes, project, activity, mode, comment] = cols[..] else {
                anyhow::bail!(
                    "{}:{}: expected 5 tab-separated columns",
                    path.display(),
                    n + 1
                );
            };
            Ok(Case {
                minutes: dash(minutes)
                    .map(|m| m.parse())
                    .transpose()
                    .with_context(|| format!("{}:{}: bad minutes", path.display(), n + 1))?,
                project: dash(project),
                activity: dash(activity),
                mode: dash(mode),
                comment: comment.to_owned(),
            })
        })
        .collect()
}

/// Runs the cases in `cases` (a file of the set in `dir`) on `owner` (to create and remove the
/// scratch org) and `requests` (to classify, as the service role), with review threshold
/// `threshold`.
pub async fn run(
    owner: &PgPool,
    requests: &PgPool,
    dir: &Path,
    cases: &str,
    threshold: f32,
) -> anyhow::Result<Report> {
    let fixture_path = dir.join("fixture.json");
    let fixture: Fixture = serde_json::from_str(
        &std::fs::read_to_string(&fixture_path)
            .with_context(|| format!("cannot read {}", fixture_path.display()))?,
    )
    .with_context(|| format!("{} is not a valid fixture", fixture_path.display()))?;
    let cases = read_cases(&dir.join(cases))?;
    let scratch = Scratch::create(owner, &fixture).await?;
    let result = score(owner, requests, &scratch, &fixture, &cases, threshold).await;
    scratch.remove(owner).await?;
    result
}

async fn score(
    owner: &PgPool,
    requests: &PgPool,
    scratch: &Scratch,
    fixture: &Fixture,
    cases: &[Case],
    threshold: f32,
) -> anyhow::Result<Report> {
    let keys = vocabulary_keys(owner).await?;
    let mut report = Report {
        total: cases.len(),
        correct: [0; 4],
        seconds: 0.0,
        misses: Vec::new(),
    };
    let service = RequestContext::service();
    let off = tally_functions::Providers::rules_only();
    for case in cases {
        let id: Uuid = sqlx::query_scalar(
            "insert into public.time_logs (org_id, user_id, comment, status, user_locked, created_at) \
             values ($1, $2, $3, 'processing', '{comment}', $4) returning id",
        )
        .bind(scratch.org)
        .bind(scratch.user)
        .bind(&case.comment)
        .bind(fixture.now)
        .fetch_one(owner)
        .await?;
        let started = Instant::now();
        // Rules only: a scratch org has no finalized logs to vote.
        let done = tally_functions::classify::classify(requests, &off, &service, id, threshold)
            .await
            .map_err(|e| anyhow::anyhow!("classifying {:?}: {e}", case.comment))?;
        report.seconds += started.elapsed().as_secs_f64();
        let id_at = |field: &str| {
            done.log[field]
                .as_str()
                .and_then(|s| s.parse::<Uuid>().ok())
        };
        let answer = Answer {
            minutes: done.log["duration_minutes"].as_i64().map(|m| m as i32),
            project: id_at("project_id").and_then(|p| scratch.codes.get(&p).cloned()),
            activity: id_at("activity_type_id").and_then(|t| keys.get(&t).cloned()),
            mode: id_at("work_mode_id").and_then(|t| keys.get(&t).cloned()),
        };
        let checks = [
            (
                case.minutes.map(|m| m.to_string()),
                answer.minutes.map(|m| m.to_string()),
            ),
            (case.project.clone(), answer.project.clone()),
            (case.activity.clone(), answer.activity.clone()),
            (case.mode.clone(), answer.mode.clone()),
        ];
        for (i, (expected, got)) in checks.into_iter().enumerate() {
            if expected == got {
                report.correct[i] += 1;
            } else {
                report.misses.push((
                    case.comment.clone(),
                    FIELDS[i].0,
                    expected.unwrap_or_else(|| "-".into()),
                    got.unwrap_or_else(|| "-".into()),
                ));
            }
        }
    }
    Ok(report)
}

/// Every vocabulary term's id → key.
async fn vocabulary_keys(owner: &PgPool) -> anyhow::Result<HashMap<Uuid, String>> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "select id, key from public.activity_types union all \
         select id, key from public.work_modes union all \
         select id, key from public.task_categories",
    )
    .fetch_all(owner)
    .await?;
    Ok(rows.into_iter().collect())
}

/// The scratch organization, its one member and its projects.
struct Scratch {
    org: Uuid,
    user: Uuid,
    codes: HashMap<Uuid, String>,
}

impl Scratch {
    async fn create(owner: &PgPool, fixture: &Fixture) -> anyhow::Result<Self> {
        let mut tx = owner.begin().await?;
        let user: Uuid = sqlx::query_scalar(
            "insert into auth.users (email) values ('eval-' || gen_random_uuid() || '@tally.invalid') \
             returning id",
        )
        .fetch_one(&mut *tx)
        .await?;
        let org: Uuid = sqlx::query_scalar(
            "insert into public.organizations (name, slug, timezone) \
             values ($1, 'eval-' || replace(gen_random_uuid()::text, '-', ''), $2) returning id",
        )
        .bind(&fixture.org)
        .bind(&fixture.timezone)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "insert into public.memberships (org_id, user_id, role) values ($1, $2, 'owner')",
        )
        .bind(org)
        .bind(user)
        .execute(&mut *tx)
        .await?;
        let mut codes = HashMap::new();
        for p in &fixture.projects {
            let id: Uuid = sqlx::query_scalar(
                "insert into public.projects (org_id, name, code, aliases, billable) \
                 values ($1, $2, $3, $4, $5) returning id",
            )
            .bind(org)
            .bind(&p.name)
            .bind(&p.code)
            .bind(&p.aliases)
            .bind(p.billable)
            .fetch_one(&mut *tx)
            .await?;
            codes.insert(id, p.code.clone());
        }
        tx.commit().await?;
        Ok(Self { org, user, codes })
    }

    async fn remove(&self, owner: &PgPool) -> anyhow::Result<()> {
        // Deleting the person and the organization takes their logs and projects with them.
        let mut tx = owner.begin().await?;
        sqlx::query("delete from public.organizations where id = $1")
            .bind(self.org)
            .execute(&mut *tx)
            .await?;
        sqlx::query("delete from auth.users where id = $1")
            .bind(self.user)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// `tally eval [--set DIR] [--cases FILE] [--misses]`: runs the set against the configured
/// database and fails when a field misses its target.
pub async fn command(
    config: tally_core::Config,
    dir: &Path,
    cases: &str,
    misses: bool,
) -> anyhow::Result<()> {
    let database = crate::database::Database::open(&config).await?;
    let result = async {
        let (owner, requests) = database.pools(&config, 4).await?;
        let report = run(&owner, &requests, dir, cases, config.ai.ai_review_threshold).await?;
        println!("{report}");
        if misses {
            for (comment, field, expected, got) in &report.misses {
                println!("  miss  {field:<14} expected {expected:<14} got {got:<14} {comment}");
            }
        }
        anyhow::ensure!(report.meets_targets(), "accuracy is below target");
        anyhow::Ok(())
    }
    .await;
    let closed = database.close().await;
    result.and(closed)
}
