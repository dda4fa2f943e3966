//! Server settings. One typed tree with defaults, read once at startup (from an optional
//! TOML file and `BUGBANE_*` variables, by the binary) and passed down, never global.

use serde::Deserialize;

/// All settings.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub ingest: IngestConfig,
    pub storage: StorageConfig,
    pub retention: RetentionConfig,
    pub alerts: bugbane_notify::NotifyConfig,
}

/// Listening and links.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub bind: String,
    /// The URL users reach Bugbane at (used in DSNs and links); defaults to `http://{bind}`.
    pub public_url: Option<String>,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// What this process does; several processes over one PostgreSQL database may split
    /// the work.
    pub role: Role,
}

/// The part of the work a process takes on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Accepts SDK traffic into the spool.
    Ingest,
    /// Serves the API and the dashboard.
    Web,
    /// Processes the spool, delivers alerts, checks monitors, sweeps retention.
    Worker,
    /// Everything (the default).
    #[default]
    All,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "ingest" => Ok(Role::Ingest),
            "web" => Ok(Role::Web),
            "worker" => Ok(Role::Worker),
            "all" => Ok(Role::All),
            _ => Err(format!(
                "unknown role {s:?}: expected ingest, web, worker or all"
            )),
        }
    }
}

impl Role {
    pub fn ingests(self) -> bool {
        matches!(self, Role::Ingest | Role::All)
    }
    pub fn serves_web(self) -> bool {
        matches!(self, Role::Web | Role::All)
    }
    pub fn works(self) -> bool {
        matches!(self, Role::Worker | Role::All)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:9000".into(),
            public_url: None,
            trust_forwarded_for: false,
            role: Role::All,
        }
    }
}

impl ServerConfig {
    /// The public base URL without a trailing slash.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.bind))
            .trim_end_matches('/')
            .to_owned()
    }
}

/// Limits on what SDKs may send, and how much may wait for processing.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest request body as sent (possibly compressed).
    pub max_request_bytes: usize,
    /// Largest envelope after decompression.
    pub max_envelope_bytes: usize,
    /// Largest event, transaction, feedback or store body.
    pub max_event_bytes: usize,
    /// Largest single attachment.
    pub max_attachment_bytes: usize,
    /// Most attachments in one envelope.
    pub max_attachments: usize,
    /// Most session updates in one envelope.
    pub max_sessions: usize,
    /// Largest log, span or check-in item.
    pub max_item_bytes: usize,
    /// How much of an unstructured item (profile, replay, metrics) is kept.
    pub max_raw_item_bytes: usize,
    /// Envelopes per minute per key; 0 means no limit. A key's own setting wins.
    pub rate_limit_per_minute: u64,
    /// Envelopes acknowledged but not yet processed before new ones are refused with 429.
    pub max_backlog: i64,
    /// Free space (MiB) in the data directory below which ingestion is refused.
    pub min_free_disk_mb: u64,
    /// Session updates older than this many days are dropped (Relay: 5).
    pub max_session_age_days: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_request_bytes: 20 << 20,
            max_envelope_bytes: 50 << 20,
            max_event_bytes: 1 << 20,
            max_attachment_bytes: 40 << 20,
            max_attachments: 30,
            max_sessions: 100,
            max_item_bytes: 10 << 20,
            max_raw_item_bytes: 1 << 20,
            rate_limit_per_minute: 0,
            max_backlog: 200_000,
            min_free_disk_mb: 256,
            max_session_age_days: 5,
        }
    }
}

/// Storage tuning.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// PostgreSQL instead of the embedded SQLite (`postgres://…`).
    pub database_url: Option<String>,
    /// fsync every commit (power-loss safe). Off still survives process crashes.
    pub fsync: bool,
    /// Envelopes queued for the writer before new ones are refused.
    pub spool_queue: usize,
    /// PostgreSQL: seconds a process holds the spooled envelopes it is processing; if it
    /// dies, others take them over after this long.
    pub spool_lease_seconds: f64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            database_url: None,
            fsync: true,
            spool_queue: 8192,
            spool_lease_seconds: 30.0,
        }
    }
}

/// How long data is kept.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days events and other records are kept.
    pub days: u32,
    /// Minutes between retention sweeps.
    pub sweep_interval_minutes: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            days: 90,
            sweep_interval_minutes: 60,
        }
    }
}
