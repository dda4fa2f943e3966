//! The HTTP layer, and the only crate that knows HTTP: the ingestion endpoints SDKs post
//! to, Sentry's web API under `/api/0/`, the dashboard's HTML pages, and the background
//! tasks a running server owns (processing the spool, retention, the disk-space watch).
//!
//! Handlers translate between HTTP and the lower layers and nothing more: wire parsing is
//! `bugbane-protocol`'s, processing is `bugbane-core`'s, and every byte on disk goes
//! through `bugbane-store`.

mod access;
mod api;
pub mod config;
mod error;
mod ingest;
mod insights;
mod limits;
mod performance;
mod processor;
mod rules;
pub mod secrets;
mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use bugbane_store::Store;
use tokio::net::TcpListener;

pub use api::dsn_for;
pub use config::{Config, Role};
pub use error::ApiError;

/// Shared state of a running server.
pub struct App {
    pub store: Store,
    pub config: Config,
    data_dir: PathBuf,
    keys: limits::KeyCache,
    limiter: limits::RateLimiter,
    low_disk: AtomicBool,
    web_logins: web::LoginLimiter,
    notifier: Arc<bugbane_notify::Notifier>,
}

/// Why a server could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Store(#[from] bugbane_store::Error),
    #[error("alerts: {0}")]
    Alerts(String),
}

impl App {
    /// Builds the state.
    pub async fn new(
        store: Store,
        config: Config,
        data_dir: PathBuf,
    ) -> Result<Arc<App>, SetupError> {
        let notifier = bugbane_notify::Notifier::new(
            config.alerts.clone(),
            config.server.public_url(),
            store.clone(),
        )
        .map_err(SetupError::Alerts)?;
        Ok(Arc::new(App {
            store,
            config,
            data_dir,
            keys: limits::KeyCache::default(),
            limiter: limits::RateLimiter::default(),
            low_disk: AtomicBool::new(false),
            web_logins: web::LoginLimiter::default(),
            notifier: Arc::new(notifier),
        }))
    }

    /// Envelopes acknowledged and not yet processed.
    pub fn backlog(&self) -> i64 {
        self.store.backlog()
    }
}

/// The routes of this process's role (every role answers the health check).
pub fn router(app: Arc<App>) -> Router {
    let role = app.config.server.role;
    let mut router = Router::new().route("/_health/", axum::routing::get(health));
    if role.ingests() {
        router = router.merge(ingest::routes());
    }
    if role.serves_web() {
        router = router
            .merge(api::routes())
            .merge(rules::routes())
            .merge(performance::routes())
            .merge(insights::routes())
            .merge(web::routes());
    }
    router.with_state(app)
}

/// Liveness for load balancers and operators: up, and how much awaits processing.
async fn health(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
) -> axum::Json<serde_json::Value> {
    let backlog = app.store.pending().await.unwrap_or_else(|_| app.backlog());
    axum::Json(serde_json::json!({"ok": true, "backlog": backlog}))
}

/// Starts the background tasks of this process's role: spool processing, alert delivery,
/// monitor checks and retention sweeps for workers; the disk watch and WAL checkpoints
/// where the database is this process's own file.
pub fn spawn_background(app: &Arc<App>) {
    if app.config.server.role.works() {
        tokio::spawn(processor::run(app.clone()));
        tokio::spawn(bugbane_notify::run(app.notifier.clone()));
        tokio::spawn(monitor_watch(app.clone()));
        tokio::spawn(retention_loop(app.clone()));
    }
    if !app.store.is_shared() {
        tokio::spawn(disk_watch(app.clone()));
        tokio::spawn(checkpoint_loop(app.clone()));
    }
}

/// Whether this process holds (or just took) the lease on a once-at-a-time job. Another
/// process sharing the database holds it otherwise; if that one dies, the lease lapses
/// after `secs` and the job moves here.
async fn leased(app: &App, job: &'static str, secs: f64) -> bool {
    match app.store.try_lease(job, secs).await {
        Ok(held) => held,
        Err(e) => {
            tracing::warn!(error = %e, job, "taking a job lease failed");
            false
        }
    }
}

/// Checks cron monitors for missed, failed and timed-out runs and queues the alerts the
/// rules ask for. Check-ins arrive as envelopes, but a missed run is the absence of one,
/// so this runs on a clock.
async fn monitor_watch(app: Arc<App>) {
    let every = Duration::from_secs_f64(app.config.alerts.monitor_check_seconds.max(0.2));
    loop {
        tokio::time::sleep(every).await;
        if !leased(&app, "monitor_watch", every.as_secs_f64() * 3.0 + 5.0).await {
            continue;
        }
        if let Err(e) = check_monitors(&app).await {
            tracing::warn!(error = %e, "checking cron monitors failed");
        }
    }
}

async fn check_monitors(app: &App) -> Result<(), bugbane_store::Error> {
    use bugbane_core::crons::{MonitorConfig, timeline};
    let t = now();
    for p in app.store.projects(None, None, true).await? {
        for m in app.store.monitors(p.id).await? {
            let config = m.config.as_ref().and_then(MonitorConfig::parse);
            let reported = app
                .store
                .monitor_runs(p.id, m.slug.clone(), t - 86400.0)
                .await?;
            let runs = timeline(config.as_ref(), &reported, t);
            // Stop short of what may still change: a slot within its margin, a run in
            // progress.
            let margin = config.as_ref().map_or(0.0, |c| c.margin_minutes * 60.0);
            let open = runs
                .iter()
                .filter(|r| r.outcome == "in_progress")
                .filter_map(|r| r.started)
                .fold(f64::INFINITY, f64::min);
            let up_to = (t - margin).min(open - 0.001);
            let bad: Vec<(f64, String)> = runs
                .iter()
                .filter(|r| matches!(r.outcome, "missed" | "failed" | "timed_out"))
                .filter_map(|r| Some((r.expected.or(r.started)?, r.outcome.to_owned())))
                .collect();
            app.store
                .queue_monitor_alerts(p.id, m.slug.clone(), bad, up_to)
                .await?;
        }
    }
    Ok(())
}

/// Keeps the WAL short when the server goes idle after a burst.
async fn checkpoint_loop(app: Arc<App>) {
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        if let Err(e) = app.store.checkpoint().await {
            tracing::warn!(error = %e, "checkpoint failed");
        }
    }
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    spawn_background(&app);
    axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn retention_loop(app: Arc<App>) {
    let every = Duration::from_secs(app.config.retention.sweep_interval_minutes.max(1) * 60);
    loop {
        if leased(&app, "retention", every.as_secs_f64() * 2.0 + 60.0).await {
            let cutoff = now() - f64::from(app.config.retention.days) * 86400.0;
            match app.store.sweep_retention(cutoff).await {
                Ok(n) if n > 0 => tracing::info!(events = n, "retention sweep deleted old events"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "retention sweep failed"),
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// Watches free space in the data directory; below the floor, ingestion is refused
/// before the disk fills (an acknowledged envelope must always fit).
async fn disk_watch(app: Arc<App>) {
    let floor = app.config.ingest.min_free_disk_mb.saturating_mul(1 << 20);
    loop {
        if let Ok(free) = fs4::available_space(&app.data_dir) {
            let low = free < floor;
            let was = app.low_disk.swap(low, Ordering::Relaxed);
            if low && !was {
                tracing::warn!(
                    free_mb = free >> 20,
                    floor_mb = floor >> 20,
                    "free disk below the floor; refusing ingestion"
                );
            } else if !low && was {
                tracing::info!(
                    free_mb = free >> 20,
                    "free disk back above the floor; accepting ingestion"
                );
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Current time in UNIX seconds.
pub(crate) fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
