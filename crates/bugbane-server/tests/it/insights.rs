//! Feedback, logs, release health, cron monitors and dropped events, from real captured
//! SDK traffic and from sessions whose expected health the test computes itself.

use bugbane_test_support::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer, WebClient, fixtures};
use serde_json::{Value, json};

async fn replay_all(server: &TestServer) {
    for r in fixtures() {
        let (status, body) = server.replay(&r).await;
        assert!(status < 300, "{} {}: {status} {body}", r.sdk, r.case);
    }
    server.processed().await;
}

fn find<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array()
        .and_then(|l| l.iter().find(|x| x[key] == value))
        .unwrap_or_else(|| panic!("no {key} = {value:?} in {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_logs_monitors_and_drops_from_real_sdks() {
    let server = TestServer::start().await;
    replay_all(&server).await;

    let (status, feedback) = server
        .api("/api/0/projects/default/fixtures/user-feedback/")
        .await;
    assert_eq!(status, 200, "{feedback}");
    let browser = find(
        &feedback,
        "comments",
        "The page crashed when I clicked save.",
    );
    assert_eq!(browser["name"], "Jane Doe");
    assert_eq!(browser["email"], "jane@example.com");
    let issue = browser["issue"]["id"]
        .as_str()
        .expect("linked to its issue")
        .to_owned();
    let (_, reports) = server
        .api(&format!("/api/0/issues/{issue}/user-reports/"))
        .await;
    assert!(reports.as_array().is_some_and(|r| !r.is_empty()));

    let (_, logs) = server
        .api("/api/0/projects/default/fixtures/logs/?statsPeriod=3650d")
        .await;
    let failed = find(&logs, "message", "payment failed");
    assert_eq!(failed["level"], "error");
    let (_, by_attr) = server
        .api("/api/0/projects/default/fixtures/logs/?statsPeriod=3650d&query=order_id%3AA-1001")
        .await;
    let by_attr = by_attr.as_array().expect("logs");
    assert!(by_attr.len() >= 3, "every SDK's order log: {by_attr:?}");
    assert!(by_attr.iter().all(|l| {
        l["attributes"]
            .as_array()
            .is_some_and(|a| a.contains(&json!(["order_id", "A-1001"])))
    }));
    assert!(by_attr.iter().any(|l| l["message"] == "payment failed"));
    let (_, errors) = server
        .api("/api/0/projects/default/fixtures/logs/?statsPeriod=3650d&query=level%3Aerror")
        .await;
    assert!(
        errors
            .as_array()
            .expect("logs")
            .iter()
            .all(|l| l["level"] == "error")
    );
    let (_, text) = server
        .api("/api/0/projects/default/fixtures/logs/?statsPeriod=3650d&query=clicked")
        .await;
    assert!(text.as_array().expect("logs").iter().all(|l| {
        l["message"]
            .as_str()
            .unwrap_or_default()
            .contains("clicked")
    }));
    assert!(!text.as_array().expect("logs").is_empty());

    let (_, monitors) = server
        .api("/api/0/projects/default/fixtures/monitors/")
        .await;
    let backup = find(&monitors, "slug", "nightly-backup");
    assert_eq!(backup["schedule"], "crontab */5 * * * *");
    let report = find(&monitors, "slug", "hourly-report");
    assert_eq!(report["status"], "error");
    let (_, runs) = server
        .api("/api/0/projects/default/fixtures/monitors/hourly-report/checkins/")
        .await;
    assert_eq!(runs[0]["status"], "failed");

    let (_, releases) = server
        .api("/api/0/projects/default/fixtures/releases/")
        .await;
    assert!(releases.as_array().is_some_and(|r| !r.is_empty()));

    // Every view renders with this data.
    let mut c = WebClient::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    for (path, expect) in [
        (
            "/projects/default/fixtures/feedback/",
            "The page crashed when I clicked save.",
        ),
        (
            "/projects/default/fixtures/logs/?period=3650d",
            "payment failed",
        ),
        (
            "/projects/default/fixtures/logs/?period=3650d&query=order_id%3AA-1001",
            "payment failed",
        ),
        ("/projects/default/fixtures/crons/", "nightly-backup"),
        ("/projects/default/fixtures/crons/hourly-report/", "failed"),
        ("/projects/default/fixtures/releases/", "fixture-app@1.0.0"),
        (
            "/projects/default/fixtures/releases/show?version=fixture-app%401.0.0",
            "New issues in this release",
        ),
        (
            &format!("/issues/{issue}/"),
            "The page crashed when I clicked save.",
        ),
    ] {
        let p = c.get(path).await;
        assert_eq!(p.status, 200, "{path}: {}", p.body);
        assert!(p.text().contains(expect), "{path} lacks {expect:?}");
    }
    // A log's trace, with the log on the trace page.
    if let Some(trace) = failed["traceId"].as_str() {
        let p = c.get(&format!("/traces/{trace}/")).await;
        assert_eq!(p.status, 200);
        assert!(p.text().contains("payment failed"));
    }
    assert_eq!(
        c.get("/projects/default/fixtures/crons/nope/").await.status,
        404
    );
    assert_eq!(
        c.get("/projects/default/fixtures/releases/show?version=nope")
            .await
            .status,
        404
    );
}

/// Sends one session update.
async fn session(
    server: &TestServer,
    sid: u32,
    release: &str,
    status: &str,
    errors: u32,
    did: Option<&str>,
) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let started = time_string(now - 60);
    let mut s = json!({"sid": format!("{sid:032x}"), "init": true, "started": started, "timestamp": time_string(now),
                       "status": status, "errors": errors, "attrs": {"release": release, "environment": "production"}});
    if let Some(d) = did {
        s["did"] = json!(d);
    }
    let body = format!("{{}}\n{{\"type\":\"session\"}}\n{s}\n").into_bytes();
    let (code, res) = server.send_envelope(body).await;
    assert_eq!(code, 200, "{res}");
}

fn time_string(secs: u64) -> String {
    bugbane_core::time_fmt::format_rfc3339(secs as f64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_health_matches_the_sessions_sent() {
    let server = TestServer::start().await;
    // (status, errors, user) for release 1.0; statuses as SDKs end sessions.
    let sent = [
        ("exited", 0, Some("u1")),
        ("exited", 0, Some("u2")),
        ("crashed", 1, Some("u2")),
        ("exited", 3, Some("u3")),
        ("abnormal", 0, Some("u4")),
        ("crashed", 1, Some("u5")),
        ("exited", 0, None),
        ("errored", 1, Some("u1")),
    ];
    for (i, (status, errors, user)) in sent.iter().enumerate() {
        session(&server, i as u32 + 1, "1.0", status, *errors, *user).await;
    }
    // Release 2.0: request-mode aggregates, 6 sessions, one crashed.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let agg = json!({"aggregates": [{"started": time_string(now - 30), "exited": 4, "errored": 1, "crashed": 1}],
                     "attrs": {"release": "2.0", "environment": "production"}});
    let (code, res) = server
        .send_envelope(format!("{{}}\n{{\"type\":\"sessions\"}}\n{agg}\n").into_bytes())
        .await;
    assert_eq!(code, 200, "{res}");
    server.processed().await;

    let total = sent.len() as f64;
    let crashed = sent.iter().filter(|s| s.0 == "crashed").count() as f64;
    let users: std::collections::HashSet<&str> = sent.iter().filter_map(|s| s.2).collect();
    let crashed_users: std::collections::HashSet<&str> = sent
        .iter()
        .filter(|s| s.0 == "crashed")
        .filter_map(|s| s.2)
        .collect();
    let (_, releases) = server
        .api("/api/0/projects/default/fixtures/releases/")
        .await;
    let one = &find(&releases, "version", "1.0")["healthData"];
    let close = |v: &Value, want: f64| (v.as_f64().unwrap_or(f64::NAN) - want).abs() < 1e-9;
    assert_eq!(one["sessions"], 8);
    assert!(
        close(&one["crashFreeSessions"], (1.0 - crashed / total) * 100.0),
        "{one}"
    );
    assert!(
        close(
            &one["crashFreeUsers"],
            (1.0 - crashed_users.len() as f64 / users.len() as f64) * 100.0
        ),
        "{one}"
    );
    assert_eq!(one["sessionsCrashed"], 2);
    assert_eq!(one["sessionsAbnormal"], 1);
    assert_eq!(
        one["sessionsErrored"], 2,
        "an errored status and an exited session with errors"
    );
    assert!(close(&one["adoption"], 8.0 / 14.0 * 100.0));
    let two = &find(&releases, "version", "2.0")["healthData"];
    assert_eq!(two["sessions"], 6);
    assert!(close(&two["crashFreeSessions"], 5.0 / 6.0 * 100.0));

    let (_, detail) = server
        .api("/api/0/projects/default/fixtures/releases/1.0/")
        .await;
    assert_eq!(detail["healthData"]["sessions"], 8);
    // Over time: every session sent today is in today's row.
    let days = detail["healthByDay"].as_array().expect("days");
    assert_eq!(
        days.iter()
            .map(|d| d["sessions"].as_i64().unwrap_or(0))
            .sum::<i64>(),
        8
    );
    assert_eq!(
        days.iter()
            .map(|d| d["crashed"].as_i64().unwrap_or(0))
            .sum::<i64>(),
        2
    );
    let mut c = WebClient::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = c
        .get("/projects/default/fixtures/releases/show?version=1.0")
        .await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Sessions per day"));
    assert!(
        page.text().contains("75.0%"),
        "crash-free sessions on the page: {}",
        page.text()
    );
}
