//! The command line.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use bugbane_core::credentials::hash_token;
use bugbane_server::secrets::{hash_password, new_public_key, new_token, random_password};
use bugbane_server::{App, Config};
use bugbane_store::{Store, StoreOptions};
use clap::{Args, Parser, Subcommand};

/// Self-hosted error tracking that speaks Sentry's protocol.
#[derive(Parser, Debug)]
#[command(name = "bugbane", version, about)]
struct Cli {
    /// Data directory (database and spool).
    #[arg(
        long,
        global = true,
        env = "BUGBANE_DATA",
        default_value = "./bugbane-data"
    )]
    data: PathBuf,
    /// PostgreSQL database to use instead of the SQLite file in the data directory
    /// (`postgres://user:password@host:5432/dbname`); several processes may share one.
    #[arg(long, global = true, env = "BUGBANE_DATABASE_URL")]
    database_url: Option<String>,
    /// Configuration file (TOML); see `bugbane config example`.
    #[arg(long, global = true, env = "BUGBANE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on (overrides the configuration).
        #[arg(long)]
        bind: Option<String>,
        /// What this process does: ingest (SDK endpoints), web (API and dashboard), worker
        /// (processing, alerts, monitors, retention) or all. Split roles need PostgreSQL.
        #[arg(long, env = "BUGBANE_ROLE")]
        role: Option<bugbane_server::Role>,
    },
    /// Manage projects.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Copy the whole database, consistently, while the server keeps running. The target
    /// directory becomes a data directory of its own: `bugbane --data DIR serve` runs it.
    Backup {
        /// A new or empty directory for the copy.
        #[arg(long)]
        to: PathBuf,
    },
    /// Copy a whole SQLite installation into a PostgreSQL database: every project, issue,
    /// event and setting, and envelopes not yet processed. Stop the server first (or copy
    /// a `bugbane backup`). Counts are checked table by table; safe to re-run.
    MigrateData {
        /// The SQLite data directory to copy from.
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL database to copy into (`postgres://…`).
        #[arg(long)]
        to: String,
    },
    /// Send a realistic error event to a DSN, to check an installation.
    SendTestEvent {
        /// The DSN to send to.
        #[arg(long)]
        dsn: String,
        /// The exception message.
        #[arg(
            long,
            default_value = "This is a test event sent by bugbane send-test-event"
        )]
        message: String,
    },
}

#[derive(Subcommand, Debug)]
enum ProjectCommand {
    /// Create a project; prints its DSN as the last line.
    Create {
        slug: String,
        #[arg(long, default_value = "default")]
        org: String,
        #[arg(long)]
        platform: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Create an admin API token; prints it as the last line.
    Create {
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create a user.
    Create(UserCreate),
}

#[derive(Args, Debug)]
struct UserCreate {
    #[arg(long)]
    email: String,
    #[arg(
        long,
        conflicts_with = "generate",
        required_unless_present = "generate"
    )]
    password: Option<String>,
    /// Generate a password and print it.
    #[arg(long)]
    generate: bool,
    #[arg(long)]
    admin: bool,
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Print an annotated configuration file with every setting.
    Example,
}

pub fn run() -> Result<()> {
    let cli = Cli::parse();
    if let Command::Config(ConfigCommand::Example) = cli.command {
        print!("{}", crate::config::EXAMPLE);
        return Ok(());
    }
    let mut config = crate::config::load(cli.config.as_deref())?;
    if let Some(url) = cli.database_url {
        config.storage.database_url = Some(url);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve { bind, role } => {
                if let Some(b) = bind {
                    config.server.bind = b;
                }
                if let Some(r) = role {
                    config.server.role = r;
                }
                if config.server.role != bugbane_server::Role::All
                    && config.storage.database_url.is_none()
                {
                    bail!(
                        "split roles need a shared PostgreSQL database (--database-url); the embedded SQLite database serves one process, with every role"
                    );
                }
                serve(cli.data, config).await
            }
            Command::Project(ProjectCommand::Create {
                slug,
                org,
                platform,
            }) => {
                let store = open_store(&cli.data, &config)?;
                let (project, key) = store
                    .create_project(org, slug, platform, new_public_key(), None)
                    .await
                    .context("creating the project")?;
                println!(
                    "created project {}/{} (id {})",
                    project.org_slug, project.slug, project.id
                );
                println!("{}", dsn(&config, &key.public_key, project.id));
                Ok(())
            }
            Command::Token(TokenCommand::Create { name }) => {
                let store = open_store(&cli.data, &config)?;
                let token = new_token();
                store
                    .create_token(name, hash_token(&token), None)
                    .await
                    .context("creating the token")?;
                println!("{token}");
                Ok(())
            }
            Command::User(UserCommand::Create(u)) => {
                let store = open_store(&cli.data, &config)?;
                let password = match (u.password, u.generate) {
                    (Some(p), _) => p,
                    (None, true) => random_password(),
                    (None, false) => bail!("give --password or --generate"),
                };
                let hash = hash_password(&password).map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
                let user = store
                    .create_user(u.email, hash, u.admin)
                    .await
                    .context("creating the user")?;
                println!(
                    "created user {} (id {}{})",
                    user.email,
                    user.id,
                    if user.is_admin { ", admin" } else { "" }
                );
                if u.generate {
                    println!("password: {password}");
                }
                Ok(())
            }
            Command::Backup { to } => {
                let store = open_store(&cli.data, &config)?;
                let bytes = store
                    .backup(&to)
                    .await
                    .with_context(|| format!("backing up into {}", to.display()))?;
                store.close().await?;
                println!("backed up {} MB into {}", bytes >> 20, to.display());
                Ok(())
            }
            Command::MigrateData { from, to } => {
                if !from.join("bugbane.sqlite3").is_file() {
                    bail!("{} holds no Bugbane database", from.display());
                }
                let mut sqlite = config.clone();
                sqlite.storage.database_url = None;
                let source = open_store(&from, &sqlite)?;
                let mut pg = config.clone();
                pg.storage.database_url = Some(to);
                let target = open_store(&from, &pg)?;
                let report = source
                    .copy_into(&target)
                    .await
                    .context("copying into PostgreSQL")?;
                for t in &report {
                    println!("{:<20} {:>10} rows", t.table, t.target);
                }
                println!("copied {} tables; every count matches", report.len());
                Ok(())
            }
            Command::SendTestEvent { dsn, message } => {
                crate::test_event::send(&dsn, &message).await
            }
            Command::Config(ConfigCommand::Example) => Ok(()),
        }
    })
}

fn open_store(data: &std::path::Path, config: &Config) -> Result<Store> {
    Store::open(
        data,
        StoreOptions {
            spool_queue: config.storage.spool_queue,
            fsync: config.storage.fsync,
            database_url: config.storage.database_url.clone(),
            spool_lease_secs: config.storage.spool_lease_seconds,
        },
    )
    .with_context(|| match config.storage.database_url {
        Some(_) => "opening the PostgreSQL database".to_owned(),
        None => format!("opening the database in {}", data.display()),
    })
}

fn dsn(config: &Config, public_key: &str, project_id: i64) -> String {
    bugbane_server::dsn_for(&config.server.public_url(), public_key, project_id)
}

async fn serve(data: PathBuf, config: Config) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let store = open_store(&data, &config)?;
    if store.needs_bootstrap().await? {
        let password = random_password();
        let token = new_token();
        let hash = hash_password(&password).map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
        if let Some(b) = store
            .bootstrap(
                "admin@localhost".into(),
                hash,
                hash_token(&token),
                new_public_key(),
            )
            .await
            .context("first-start setup")?
        {
            println!("First start: created organization, team and project `default`.");
            println!("  URL:       {}", config.server.public_url());
            println!("  Admin:     {} / {}", b.user.email, password);
            println!("  API token: {token}");
            println!(
                "  DSN:       {}",
                dsn(&config, &b.key.public_key, b.project.id)
            );
            println!("Keep these: the password and token are shown only once.");
        }
    }
    let listener = tokio::net::TcpListener::bind(&config.server.bind)
        .await
        .with_context(|| format!("listening on {}", config.server.bind))?;
    let addr = listener.local_addr()?;
    let app = App::new(store.clone(), config, data).await?;
    tracing::info!(%addr, backlog = app.backlog(), "bugbane is listening");
    bugbane_server::serve(app, listener, shutdown_signal()).await?;
    store.close().await?;
    tracing::info!("bugbane stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
