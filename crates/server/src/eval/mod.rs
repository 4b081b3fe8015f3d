//! `tally eval`: reads the expression set in `eval/` with the time parser, and runs the
//! labelled log comments through the real classification code (the built-in extractor with the
//! configured embeddings) in a scratch organization; reports per-field accuracy against the
//! targets, the activity types' confusion table and the confidence's calibration.

mod report;
pub mod times;

use std::{collections::HashMap, path::Path, time::Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgPool;
use tally_core::RequestContext;
use tally_functions::Providers;
use uuid::Uuid;

pub use report::{FIELDS, Report, Review};

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

/// The labelled log files: the one tuned on first, then the two never tuned on.
pub const LOG_FILES: [&str; 3] = ["logs.tsv", "holdout.tsv", SEALED];

/// The file whose misses `--misses` leaves out unless it is named with `--cases`.
pub const SEALED: &str = "sealed.tsv";

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

/// Where and how the cases run: `owner` creates and removes the scratch org, `requests`
/// classifies as the service role with `providers`, and `threshold` is the review threshold.
pub struct Setup<'a> {
    /// The owner pool.
    pub owner: &'a PgPool,
    /// The request pool.
    pub requests: &'a PgPool,
    /// The embedder (and rules) to classify with.
    pub providers: &'a Providers,
    /// The review threshold.
    pub threshold: f32,
}

/// Runs the cases in `cases` (a file of the set in `dir`) in a scratch org. With `history`
/// (another file of the set), the org first has that file's comments as finalized logs with
/// their labels, embedded as classification embeds them, so their votes count too.
pub async fn run(
    setup: &Setup<'_>,
    dir: &Path,
    cases: &str,
    history: Option<&str>,
) -> anyhow::Result<Report> {
    let fixture_path = dir.join("fixture.json");
    let fixture: Fixture = serde_json::from_str(
        &std::fs::read_to_string(&fixture_path)
            .with_context(|| format!("cannot read {}", fixture_path.display()))?,
    )
    .with_context(|| format!("{} is not a valid fixture", fixture_path.display()))?;
    let cases = read_cases(&dir.join(cases))?;
    let history = history.map(|h| read_cases(&dir.join(h))).transpose()?;
    let scratch = Scratch::create(setup.owner, &fixture).await?;
    let result = async {
        if let Some(history) = &history {
            finalize_history(setup, &scratch, &fixture, history).await?;
        }
        score(setup, &scratch, &fixture, &cases).await
    }
    .await;
    scratch.remove(setup.owner).await?;
    result
}

/// Inserts one comment as a log of the scratch org's person and classifies it.
async fn classify(
    setup: &Setup<'_>,
    scratch: &Scratch,
    fixture: &Fixture,
    comment: &str,
) -> anyhow::Result<tally_functions::classify::Classified> {
    let id: Uuid = sqlx::query_scalar(
        "insert into public.time_logs (org_id, user_id, comment, status, user_locked, created_at) \
         values ($1, $2, $3, 'processing', '{comment}', $4) returning id",
    )
    .bind(scratch.org)
    .bind(scratch.user)
    .bind(comment)
    .bind(fixture.now)
    .fetch_one(setup.owner)
    .await?;
    tally_functions::classify::classify(
        setup.requests,
        setup.providers,
        &RequestContext::service(),
        id,
        setup.threshold,
    )
    .await
    .map_err(|e| anyhow::anyhow!("classifying {comment:?}: {e}"))
}

/// Classifies each history case (which stores its embedding), then files it under its labels
/// and finalizes it, as a person reviewing their logs would.
async fn finalize_history(
    setup: &Setup<'_>,
    scratch: &Scratch,
    fixture: &Fixture,
    history: &[Case],
) -> anyhow::Result<()> {
    let projects: HashMap<&String, Uuid> = scratch.codes.iter().map(|(id, c)| (c, *id)).collect();
    for case in history {
        let done = classify(setup, scratch, fixture, &case.comment).await?;
        sqlx::query(
            "update public.time_logs set project_id = $2, \
               activity_type_id = (select id from public.activity_types \
                                    where org_id is null and key = $3), \
               work_mode_id = (select id from public.work_modes where org_id is null and key = $4), \
               status = 'finalized' \
             where id = ($1->>'id')::uuid",
        )
        .bind(&done.log)
        .bind(case.project.as_ref().and_then(|c| projects.get(c)).copied())
        .bind(&case.activity)
        .bind(&case.mode)
        .execute(setup.owner)
        .await?;
    }
    Ok(())
}

async fn score(
    setup: &Setup<'_>,
    scratch: &Scratch,
    fixture: &Fixture,
    cases: &[Case],
) -> anyhow::Result<Report> {
    let keys = vocabulary_keys(setup.owner).await?;
    let mut report = Report {
        total: cases.len(),
        ..Report::default()
    };
    for case in cases {
        let started = Instant::now();
        let done = classify(setup, scratch, fixture, &case.comment).await?;
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
        let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        *report
            .confusion
            .entry((dash(&case.activity), dash(&answer.activity)))
            .or_default() += 1;
        let activity_confidence = done.extraction["confidences"]["activity_type_id"]
            .as_f64()
            .unwrap_or(0.0) as f32;
        report
            .activity_confidence
            .push((activity_confidence, case.activity == answer.activity));
        let wrong = case.activity != answer.activity || case.mode != answer.mode;
        let marked = done.log["status"] == "needs_review";
        report.review.marked += usize::from(marked);
        report.review.wrong += usize::from(wrong);
        report.review.caught += usize::from(marked && wrong);
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

/// `tally eval [--set DIR] [--cases FILE] [--misses]`: reads the expression set and runs both
/// labelled log files (or only `--cases`) against the configured database, with the configured
/// embeddings; fails when any of them misses a target.
pub async fn command(
    config: tally_core::Config,
    dir: &Path,
    cases: Option<&str>,
    history: Option<&str>,
    misses: bool,
) -> anyhow::Result<()> {
    let expressions = times::read(&dir.join("times.tsv"))?;
    let times = times::score(&expressions);
    println!(
        "times.tsv: {} expressions read by the time parser",
        expressions.len()
    );
    print!("{times}");
    if misses {
        for (text, expected, got) in &times.misses {
            println!("  miss  expected {expected:<18} got {got:<18} {text}");
        }
    }
    let mut met = times.meets_targets();
    let providers = Providers {
        embeddings: crate::models::embeddings(&config)?,
        ..Providers::rules_only()
    };
    let database = crate::database::Database::open(&config).await?;
    let result = async {
        let (owner, requests) = database.pools(&config, 4).await?;
        let setup = Setup {
            owner: &owner,
            requests: &requests,
            providers: &providers,
            threshold: config.ai.ai_review_threshold,
        };
        let files = cases.map_or(LOG_FILES.to_vec(), |c| vec![c]);
        for file in files.into_iter().filter(|f| Some(*f) != history) {
            let report = run(&setup, dir, file, history).await?;
            match history {
                Some(h) => println!("\n{file} (in an org whose finalized logs are {h}): {report}"),
                None => println!("\n{file}: {report}"),
            }
            // The sealed file's misses are read only when asked for by name: reading them is
            // what would make it one more file to tune on.
            if misses && (file != SEALED || cases.is_some()) {
                for (comment, field, expected, got) in &report.misses {
                    println!("  miss  {field:<14} expected {expected:<14} got {got:<14} {comment}");
                }
            }
            met &= report.meets_targets();
        }
        anyhow::ensure!(met, "accuracy is below target");
        anyhow::Ok(())
    }
    .await;
    let closed = database.close().await;
    result.and(closed)
}
