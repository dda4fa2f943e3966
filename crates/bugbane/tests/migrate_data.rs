//! `bugbane migrate-data` moves a SQLite installation holding every kind of stored item
//! to PostgreSQL, and the API answers the same before and after. (Runs when the suite
//! runs on PostgreSQL.)

mod common;

use std::process::Command;

use bugbane_test_support::{TOKEN, TestServer, WebClient, fixtures};
use common::{Server, free_port};
use serde_json::{Value, json};

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("run bugbane");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The answer to `path`, with the server's own address (in links) left out.
async fn get(http: &reqwest::Client, base: &str, path: &str) -> String {
    let res = http
        .get(format!("{base}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    assert!(res.status().is_success(), "{path}: {}", res.status());
    let body: Value = res.json().await.expect("json");
    body.to_string()
        .replace(base.trim_start_matches("http://"), "{server}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_installation_moves_to_postgres_intact() {
    if !common::on_postgres() {
        eprintln!("skipped: needs the PostgreSQL server the suite runs on");
        return;
    }
    let mut config = bugbane_server::Config::default();
    config.ingest.max_session_age_days = 36500;
    let source = TestServer::start_on_sqlite(config).await;
    for r in &fixtures() {
        let (status, body) = source.replay(r).await;
        assert!((200..300).contains(&status), "{}: {status} {body}", r.path);
    }
    source.processed().await;
    // State people create, beside what SDKs send: triage, a rule, a session, a comment.
    let issues = source.issues("").await;
    assert!(issues.len() > 5);
    let first = issues[0]["id"].as_str().expect("id").to_owned();
    let (status, _) = source
        .api_put(
            &format!("/api/0/issues/{first}/"),
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(status, 200);
    let res = source
        .http
        .post(source.url("/api/0/projects/default/fixtures/rules/"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "hook", "triggers": [{"type": "new_issue"}],
                      "actions": [{"type": "webhook", "target": "http://127.0.0.1:9/hook"}]}))
        .send()
        .await
        .expect("rule");
    assert_eq!(res.status(), 201);
    let _signed_in = WebClient::login(
        &source,
        bugbane_test_support::ADMIN_EMAIL,
        bugbane_test_support::ADMIN_PASSWORD,
    )
    .await;
    let counts = source.store.counts(None).await.expect("counts");

    // Copy while the source is idle, twice: the second run finds everything there.
    let target_dir = tempfile::tempdir().expect("target dir");
    let url = common::database_url(target_dir.path()).expect("target database");
    for _ in 0..2 {
        let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_bugbane"))
            .args(["migrate-data", "--from"])
            .arg(source.data_dir())
            .args(["--to", &url]));
        assert!(ok, "{out}");
        assert!(out.contains("every count matches"), "{out}");
        assert!(out.contains("events"), "{out}");
    }

    let target = Server::start(target_dir.path(), free_port());
    assert!(
        target.token.is_none(),
        "the copy is an existing installation"
    );
    let reopened =
        bugbane_store::Store::open(target_dir.path(), common::store_options(target_dir.path()))
            .expect("open the copy");
    assert_eq!(
        format!("{:?}", reopened.counts(None).await.expect("counts")),
        format!("{counts:?}"),
        "every table holds what it held"
    );

    let http = reqwest::Client::new();
    let (a, b) = (source.url(""), target.url(""));
    assert!(!a.is_empty() && !b.is_empty());
    let project = "/api/0/projects/default/fixtures";
    let mut paths = vec![
        "/api/0/projects/".to_owned(),
        format!("{project}/"),
        format!("{project}/keys/"),
        format!("{project}/issues/?query=&limit=100"),
        format!("{project}/issues/?query=is:resolved"),
        format!("{project}/rules/"),
        format!("{project}/transactions/?statsPeriod=90d"),
        format!("{project}/releases/?statsPeriod=90d"),
        format!("{project}/monitors/"),
        format!("{project}/logs/?statsPeriod=90d"),
        format!("{project}/user-feedback/"),
        format!("{project}/client-reports/?statsPeriod=90d"),
    ];
    for issue in &issues {
        let id = issue["id"].as_str().expect("id");
        for sub in [
            "",
            "events/",
            "events/latest/",
            "tags/",
            "hashes/",
            "activity/",
        ] {
            paths.push(format!("/api/0/issues/{id}/{sub}"));
        }
    }
    for path in &paths {
        let before = get(&http, &a, path).await;
        let after = get(&http, &b, path).await;
        assert_eq!(before, after, "{path} answers the same");
    }
    let events: Value =
        serde_json::from_str(&get(&http, &a, &format!("/api/0/issues/{first}/events/")).await)
            .expect("events");
    let event_id = events[0]["eventID"].as_str().expect("event id");
    let path = format!("/api/0/projects/default/fixtures/events/{event_id}/");
    assert_eq!(get(&http, &a, &path).await, get(&http, &b, &path).await);
}
