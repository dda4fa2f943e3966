//! A cron job checked in with the real Python SDK, with a deliberately missed run: the
//! monitor's timeline shows the ok run, the missed slots and the failed run, through the
//! API and the dashboard.

mod common;

use common::{Server, api, free_port};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_run_shows_on_the_monitor() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), free_port());
    let token = server.token.clone().expect("token");
    let dsn = server.dsn.clone().expect("dsn");
    let out = tokio::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/sdk/cron_missed.py"
        ))
        .env("SENTRY_DSN", &dsn)
        .output()
        .await
        .expect("run the Python SDK");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let http = reqwest::Client::new();
    server.processed(&http).await;

    let runs = api(
        &http,
        server.url("/api/0/projects/default/default/monitors/quick-job/checkins/"),
        &token,
    )
    .await;
    let outcomes: Vec<&str> = runs
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|r| r["status"].as_str())
        .collect();
    assert_eq!(outcomes.first(), Some(&"failed"), "newest first: {runs}");
    assert_eq!(outcomes.last(), Some(&"ok"), "{runs}");
    assert!(
        outcomes.iter().filter(|o| **o == "missed").count() >= 1,
        "a missed slot between them: {runs}"
    );
    let monitors = api(
        &http,
        server.url("/api/0/projects/default/default/monitors/"),
        &token,
    )
    .await;
    let m: &Value = &monitors[0];
    assert_eq!(m["slug"], "quick-job");
    assert_eq!(m["status"], "error");
    assert_eq!(m["schedule"], "every 0.05 minute(s)");

    let (email, password) = server.admin.clone().expect("admin");
    let mut web = bugbane_test_support::WebClient::sign_in(server.url(""), &email, &password).await;
    let page = web.get("/projects/default/default/crons/quick-job/").await;
    assert_eq!(page.status, 200);
    let text = page.text();
    assert!(text.contains("missed") && text.contains("failed") && text.contains("ok"));
}
