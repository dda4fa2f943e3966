//! A cron job checked in with the real Python SDK, with a deliberately missed run: the
//! monitor's timeline shows the ok run, the missed slots and the failed run, through the
//! API and the dashboard, and a rule for cron runs alerts about the missed and the failed.

mod common;

use bugbane_test_support::{Receiver, eventually};
use common::{Server, api, free_port};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_run_shows_on_the_monitor() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_with_env(
        dir.path(),
        free_port(),
        &[("BUGBANE_ALERTS__MONITOR_CHECK_SECONDS", "0.5")],
    );
    let token = server.token.clone().expect("token");
    let dsn = server.dsn.clone().expect("dsn");
    let hooks = Receiver::start().await;
    let res = reqwest::Client::new()
        .post(server.url("/api/0/projects/default/default/rules/"))
        .bearer_auth(&token)
        .json(&json!({"name": "crons", "triggers": [{"type": "monitor_missed"}, {"type": "monitor_failed"}],
                      "actions": [{"type": "webhook", "target": hooks.url("/crons")}]}))
        .send()
        .await
        .expect("rule");
    assert_eq!(res.status(), 201);
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

    // The rule hears about the missed slots and the failed run, each once.
    eventually(30, "cron alerts", || {
        let got = hooks.at("/crons");
        got.iter().any(|r| r.json()["reason"] == "Failed cron run")
            && got.iter().any(|r| r.json()["reason"] == "Missed cron run")
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let got = hooks.at("/crons");
    let failed = got
        .iter()
        .filter(|r| r.json()["reason"] == "Failed cron run")
        .count();
    assert_eq!(failed, 1);
    // Every missed slot once (the job stays silent, so later slots keep being missed).
    let missed: Vec<String> = got
        .iter()
        .filter(|r| r.json()["reason"] == "Missed cron run")
        .map(|r| {
            r.json()["issue"]["title"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let distinct: std::collections::HashSet<&String> = missed.iter().collect();
    assert_eq!(
        distinct.len(),
        missed.len(),
        "no slot alerted twice: {missed:?}"
    );
    assert!(missed.len() >= outcomes.iter().filter(|o| **o == "missed").count());
    assert!(
        got[0].json()["url"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/projects/default/default/crons/quick-job/")
    );

    let (email, password) = server.admin.clone().expect("admin");
    let mut web = bugbane_test_support::WebClient::sign_in(server.url(""), &email, &password).await;
    let page = web.get("/projects/default/default/crons/quick-job/").await;
    assert_eq!(page.status, 200);
    let text = page.text();
    assert!(text.contains("missed") && text.contains("failed") && text.contains("ok"));
}
