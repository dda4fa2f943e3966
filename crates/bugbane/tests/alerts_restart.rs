//! An alert whose receiver is down survives a `kill -9` of the server: after the restart
//! the retries go on, and the alert is delivered exactly once when the receiver is back.

mod common;

use std::time::Duration;

use bugbane_test_support::{Receiver, eventually};
use common::{Server, bugbane, free_port};
use serde_json::{Value, json};

const SETTINGS: &[(&str, &str)] = &[
    ("BUGBANE_ALERTS__RETRY_INITIAL_SECONDS", "0.2"),
    ("BUGBANE_ALERTS__RETRY_MAX_SECONDS", "0.5"),
    ("BUGBANE_ALERTS__TIMEOUT_SECONDS", "1"),
];

async fn deliveries(
    http: &reqwest::Client,
    server: &Server,
    token: &str,
    rule: &str,
) -> Vec<Value> {
    http.get(server.url(&format!(
        "/api/0/projects/default/default/rules/{rule}/deliveries/"
    )))
    .bearer_auth(token)
    .send()
    .await
    .expect("deliveries")
    .json::<Value>()
    .await
    .expect("json")
    .as_array()
    .cloned()
    .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_survive_a_crash_while_the_receiver_is_down() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut server = Server::start_with_env(dir.path(), port, SETTINGS);
    let token = server.token.clone().expect("token");
    let dsn = server.dsn.clone().expect("dsn");
    let http = reqwest::Client::new();
    let down = free_port();
    let res = http
        .post(server.url("/api/0/projects/default/default/rules/"))
        .bearer_auth(&token)
        .json(&json!({"name": "hook", "triggers": [{"type": "new_issue"}],
                      "actions": [{"type": "webhook", "target": format!("http://127.0.0.1:{down}/hook")}]}))
        .send()
        .await
        .expect("create rule");
    assert_eq!(res.status(), 201);
    let rule: Value = res.json().await.expect("rule");
    let rule = rule["id"].as_str().expect("id").to_owned();

    let out = bugbane(dir.path(), port)
        .args(["send-test-event", "--dsn", &dsn])
        .output()
        .expect("send-test-event");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.processed(&http).await;

    // Failing attempts pile up while the receiver is down.
    let mut attempts = 0;
    for _ in 0..300 {
        if let Some(d) = deliveries(&http, &server, &token, &rule).await.first() {
            attempts = d["attempts"].as_i64().unwrap_or(0);
            if attempts >= 2 {
                assert_eq!(d["status"], "pending");
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(attempts >= 2, "retries before the crash");

    server.kill();
    let receiver = Receiver::start_on(down).await;
    let server = Server::start_with_env(dir.path(), port, SETTINGS);
    eventually(30, "the alert after the restart", || {
        receiver.at("/hook").len() == 1
    })
    .await;
    let body = receiver.at("/hook")[0].json();
    assert_eq!(body["reason"], "New issue");
    for _ in 0..100 {
        if deliveries(&http, &server, &token, &rule).await[0]["status"] == "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = deliveries(&http, &server, &token, &rule).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], "sent");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.at("/hook").len(), 1, "delivered exactly once");
}
