//! The command line: `tally serve | worker | demo | eval | models | migrate | keys [--json] |
//! analytics status [--json] | db`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde_json::json;
use tally_core::{Config, JwtKeys, db};

use crate::{database::Database, embedded, serve, signing_key_commands::SigningKeyAction};

/// Tally: the backend of an intelligent time & productivity tracker, with a Supabase API.
#[derive(Debug, Parser)]
#[command(name = "tally", version)]
pub struct Cli {
    /// A TOML config file (default: ./tally.toml when present).
    #[arg(long, global = true, env = "TALLY_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (starts the embedded PostgreSQL unless DATABASE_URL is set).
    Serve,
    /// Run only the background workers (classification and scheduled jobs).
    Worker,
    /// Seed a demo organization (a person in each role, a team, projects) with a month of
    /// classified logs, and print how to sign in.
    Demo,
    /// Fetch the model files Tally runs offline (the embedding model) now, not on first use.
    Models,
    /// Read the expression set with the time parser and run the labelled log comments through
    /// the extractor; print per-field accuracy, the activity confusion table and calibration.
    Eval {
        /// The directory with `fixture.json` and `logs.tsv`.
        #[arg(long, default_value = "eval")]
        set: PathBuf,
        /// Only this file of labelled comments in that directory (default: `logs.tsv`, which
        /// the extractor is tuned on, and `holdout.tsv` and `sealed.tsv`, which it never was).
        #[arg(long)]
        cases: Option<String>,
        /// Run the other files in an org whose finalized logs are this file's comments, filed
        /// under their labels, so their votes count as in an org with history.
        #[arg(long)]
        history: Option<String>,
        /// Also list every miss.
        #[arg(long)]
        misses: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the anon and service_role API keys.
    Keys {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// The asymmetric keys that sign sessions' tokens: list, create, rotate, revoke, import.
    SigningKeys {
        /// What to do.
        #[command(subcommand)]
        action: SigningKeyAction,
    },
    /// Analytics phase 2: where each destination's change stream stands.
    Analytics {
        /// What to show.
        #[command(subcommand)]
        action: AnalyticsAction,
    },
    /// Print the URL of the database in use (`tally db stop` stops the embedded cluster).
    Db {
        /// What to do instead of printing the URL.
        #[command(subcommand)]
        action: Option<DbAction>,
    },
}

/// Analytics commands.
#[derive(Debug, Subcommand)]
pub enum AnalyticsAction {
    /// Each destination: its slot (streaming, WAL status, bytes behind, WAL it may still
    /// hold), its stored position, whether its initial copy completed, its resyncs.
    Status {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

/// Actions on the embedded cluster.
#[derive(Debug, Subcommand)]
pub enum DbAction {
    /// Stop the embedded cluster of this data directory, whoever started it.
    Stop,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => serve::serve(config).await,
        Command::Worker => serve::work(config).await,
        Command::Demo => crate::demo::command(config).await,
        Command::Models => {
            let dir = crate::models::minilm_dir()
                .await
                .map_err(anyhow::Error::msg)?;
            println!("{}", dir.display());
            let whisper = crate::models::whisper_model()
                .await
                .map_err(anyhow::Error::msg)?;
            println!("{}", whisper.display());
            Ok(())
        }
        Command::Eval {
            set,
            cases,
            history,
            misses,
        } => crate::eval::command(config, &set, cases.as_deref(), history.as_deref(), misses).await,
        Command::Migrate => migrate(&config).await,
        Command::Keys { json } => keys(&config, json),
        Command::SigningKeys { action } => signing_keys(&config, action).await,
        Command::Analytics {
            action: AnalyticsAction::Status { json },
        } => analytics_status(&config, json).await,
        Command::Db { action: None } => {
            println!("{}", database_url(&config)?);
            Ok(())
        }
        Command::Db {
            action: Some(DbAction::Stop),
        } => {
            if config.database_url.is_some() {
                anyhow::bail!("DATABASE_URL is set: Tally manages no database to stop");
            }
            let stopped = embedded::stop_running(&config.data_dir).await?;
            println!(
                "{}",
                if stopped {
                    "embedded PostgreSQL stopped"
                } else {
                    "embedded PostgreSQL was not running"
                }
            );
            Ok(())
        }
    }
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let database = Database::open(config).await?;
    let result = async {
        let owner = db::connect_owner(&database.owner_url).await?;
        db::migrate(&owner).await?;
        let applied: i64 =
            sqlx::query_scalar("select count(*) from tally.schema_migrations where success")
                .fetch_one(&owner)
                .await?;
        owner.close().await;
        println!("database is up to date ({applied} migrations applied)");
        anyhow::Ok(())
    }
    .await;
    let closed = database.close().await;
    result.and(closed)
}

async fn signing_keys(config: &Config, action: SigningKeyAction) -> anyhow::Result<()> {
    let database = Database::open(config).await?;
    let result = async {
        let owner = db::connect_owner(&database.owner_url).await?;
        db::migrate(&owner).await?;
        let done = crate::signing_key_commands::run(&owner, action).await;
        owner.close().await;
        done
    }
    .await;
    let closed = database.close().await;
    result.and(closed)
}

async fn analytics_status(config: &Config, as_json: bool) -> anyhow::Result<()> {
    let database = Database::open(config).await?;
    let result = async {
        let owner = db::connect_owner(&database.owner_url).await?;
        db::migrate(&owner).await?;
        crate::analytics::status(&owner, as_json).await?;
        owner.close().await;
        anyhow::Ok(())
    }
    .await;
    let closed = database.close().await;
    result.and(closed)
}

fn keys(config: &Config, as_json: bool) -> anyhow::Result<()> {
    let keys = JwtKeys::new(&config.jwt_secret()?);
    let url = format!("http://{}:{}", config.host, config.port);
    if as_json {
        let out = json!({
            "url": url,
            "anon_key": keys.anon_key(),
            "service_role_key": keys.service_role_key(),
        });
        println!("{out}");
    } else {
        println!("API URL:          {url}");
        println!("anon key:         {}", keys.anon_key());
        println!("service_role key: {}", keys.service_role_key());
    }
    Ok(())
}

fn database_url(config: &Config) -> anyhow::Result<String> {
    match &config.database_url {
        Some(url) => Ok(url.clone()),
        None => Ok(embedded::superuser_url(&config.data_dir, config.pg_port)?),
    }
}
