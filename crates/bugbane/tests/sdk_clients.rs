//! The real Sentry SDKs — Python, Node, Rust, and the browser SDK in headless Chromium —
//! send to a running `bugbane serve`, each to its own project created with the CLI while
//! the server runs; the results are checked through the API.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{Server, api, bugbane, free_port};
use serde_json::Value;

fn clients_dir() -> PathBuf {
    std::env::var_os("BUGBANE_SDK_CLIENTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../target/sdk-clients"
            ))
        })
}

fn shared_dir() -> PathBuf {
    bugbane_test_support::shared_dir()
}

/// Runs one SDK's `all` cases against a DSN; returns its output.
async fn run_client(name: String, dsn: String) -> String {
    let name = name.as_str();
    let clients = clients_dir();
    let (program, args, dir): (PathBuf, Vec<String>, PathBuf) = match name {
        "python" => (
            "python3".into(),
            vec![
                shared_dir()
                    .join("clients/python/send_cases.py")
                    .display()
                    .to_string(),
                "all".into(),
            ],
            std::env::temp_dir(),
        ),
        "node" => (
            "node".into(),
            vec!["send_cases.js".into(), "all".into()],
            clients.join("node"),
        ),
        "rust" => (
            clients.join("rust/target/debug/send_cases"),
            vec!["all".into()],
            clients.join("rust"),
        ),
        "browser" => (
            "node".into(),
            vec!["run_cases.js".into(), "all".into()],
            clients.join("browser"),
        ),
        other => panic!("unknown client {other}"),
    };
    assert!(
        dir.exists() && (name == "python" || program.exists() || !program.is_absolute()),
        "SDK client {name} is not prepared in {}; run scripts/test, which installs the SDK clients",
        dir.display()
    );
    let child = tokio::process::Command::new(&program)
        .args(&args)
        .current_dir(&dir)
        .env("SENTRY_DSN", &dsn)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting the {name} client ({}): {e}", program.display()));
    let out = tokio::time::timeout(Duration::from_secs(600), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the {name} client timed out"))
        .expect("client output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // Each `all` runner checks every case's exit code itself (crashing cases must crash).
    assert!(
        out.status.success(),
        "{name} client failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn tag<'a>(event: &'a Value, key: &str) -> Option<&'a str> {
    event["tags"].as_array()?.iter().find(|t| t["key"] == key)?["value"].as_str()
}

fn find<'a>(issues: &'a [Value], title: &str) -> &'a Value {
    issues
        .iter()
        .find(|i| i["title"] == title)
        .unwrap_or_else(|| {
            panic!(
                "no issue titled {title:?} among {:?}",
                issues.iter().map(|i| &i["title"]).collect::<Vec<_>>()
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_sdks_end_to_end() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let server = Server::start(dir.path(), port);
    let token = server.token.clone().expect("first start prints a token");
    let http = reqwest::Client::new();

    // One project per SDK, created with the CLI while the server runs.
    let mut dsns = Vec::new();
    for sdk in ["python", "node", "rust", "browser"] {
        let out = bugbane(dir.path(), port)
            .args(["project", "create", sdk, "--platform", sdk])
            .output()
            .expect("project create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let dsn = stdout.lines().last().expect("DSN line").trim().to_owned();
        assert!(
            dsn.starts_with("http://") && dsn.ends_with(&format!(":{port}/{}", dsns.len() + 2)),
            "{dsn}"
        );
        dsns.push((sdk, dsn));
    }
    // The four clients run at once, as four applications would.
    let runs: Vec<_> = dsns
        .iter()
        .map(|(sdk, dsn)| tokio::spawn(run_client(sdk.to_string(), dsn.clone())))
        .collect();
    for run in runs {
        run.await.expect("client task");
    }
    server.processed(&http).await;

    let issues = |sdk: &str, query: &str| {
        let url = server.url(&format!(
            "/api/0/projects/default/{sdk}/issues/?limit=100&query={query}"
        ));
        let http = http.clone();
        let token = token.clone();
        async move {
            api(&http, url, &token)
                .await
                .as_array()
                .cloned()
                .unwrap_or_default()
        }
    };
    let latest = |id: &Value| {
        let url = server.url(&format!(
            "/api/0/issues/{}/events/latest/",
            id.as_str().unwrap_or_default()
        ));
        let http = http.clone();
        let token = token.clone();
        async move { api(&http, url, &token).await }
    };

    // Python.
    let py = issues("python", "").await;
    let zero = find(&py, "ZeroDivisionError: division by zero");
    assert_eq!(zero["culprit"], "__main__ in _level3");
    assert_eq!(zero["level"], "error");
    let scoped = issues("python", "fixture.case:scope_user_tags_context").await;
    assert_eq!(scoped.len(), 1, "{scoped:?}");
    let ev = latest(&scoped[0]["id"]).await;
    assert_eq!(ev["user"]["email"], "jane@example.com");
    assert_eq!(tag(&ev, "tenant"), Some("acme"));
    assert_eq!(tag(&ev, "environment"), Some("fixtures"));
    let by_email = issues("python", "user.email:jane@example.com").await;
    assert!(by_email.iter().any(|i| i["id"] == scoped[0]["id"]));

    // Node.
    let node = issues("node", "").await;
    let crash = find(&node, "TypeError: cannot process n=0");
    assert_eq!(crash["level"], "fatal");
    assert_eq!(crash["culprit"], "send_cases in level3");
    assert_eq!(
        find(&node, "Error: express route failed for id 7")["culprit"],
        "POST /boom/:id"
    );

    // Rust.
    let rust = issues("rust", "").await;
    let panic = find(&rust, "panic: cannot process n=0");
    assert_eq!(panic["level"], "fatal");
    assert_eq!(panic["culprit"], "main.rs in send_cases::level3");

    // Browser.
    let browser = issues("browser", "").await;
    let uncaught = find(&browser, "TypeError: cannot process n=0");
    let ev = latest(&uncaught["id"]).await;
    assert_eq!(tag(&ev, "browser.name"), Some("Chrome"));
    assert_eq!(ev["platform"], "javascript");

    // The views over what else they sent: performance, traces, release health, crons,
    // feedback and logs, through the API.
    let get = |path: String| {
        let url = server.url(&path);
        let http = http.clone();
        let token = token.clone();
        async move { api(&http, url, &token).await }
    };
    let py_tx = get("/api/0/projects/default/python/transactions/".into()).await;
    let order = py_tx
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "process-order"))
        .unwrap_or_else(|| panic!("process-order in {py_tx}"));
    assert_eq!(order["op"], "task");
    let detail =
        get("/api/0/projects/default/python/transaction-summary/?transaction=process-order".into())
            .await;
    let trace_id = detail["slowest"][0]["traceId"]
        .as_str()
        .expect("trace")
        .to_owned();
    let trace = get(format!(
        "/api/0/organizations/default/events-trace/{trace_id}/"
    ))
    .await;
    let names: Vec<&str> = trace["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names.first(), Some(&"process-order"));
    assert!(
        names.contains(&"SELECT * FROM orders WHERE id = %s"),
        "{names:?}"
    );
    assert_eq!(trace["errors"][0]["title"], "order processed with warnings");
    let node_tx = get("/api/0/projects/default/node/transactions/".into()).await;
    let traced = node_tx
        .as_array()
        .and_then(|t| t.iter().find(|t| t["op"] == "http.server"))
        .unwrap_or_else(|| panic!("a traced Node request in {node_tx}"));
    let name = traced["name"].as_str().expect("name");
    let detail = get(format!(
        "/api/0/projects/default/node/transaction-summary/?transaction={}",
        name.replace(' ', "%20")
            .replace('/', "%2F")
            .replace(':', "%3A")
    ))
    .await;
    let node_trace = detail["slowest"][0]["traceId"]
        .as_str()
        .expect("trace")
        .to_owned();
    let spans = get(format!(
        "/api/0/organizations/default/events-trace/{node_trace}/"
    ))
    .await;
    assert!(
        spans["spans"].as_array().is_some_and(|s| s.len() > 1),
        "{spans}"
    );
    let browser_tx = get("/api/0/projects/default/browser/transactions/".into()).await;
    assert!(
        browser_tx
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["op"] == "pageload")),
        "a browser page load in {browser_tx}"
    );
    for sdk in ["python", "node", "rust"] {
        let releases = get(format!("/api/0/projects/default/{sdk}/releases/")).await;
        let with_sessions: Vec<&Value> = releases
            .as_array()
            .expect("releases")
            .iter()
            .filter(|r| r["healthData"]["sessions"].as_i64().unwrap_or(0) > 0)
            .collect();
        assert!(!with_sessions.is_empty(), "{sdk} sessions in {releases}");
        assert!(with_sessions[0]["healthData"]["crashFreeSessions"].is_number());
    }
    let monitors = get("/api/0/projects/default/python/monitors/".into()).await;
    let backup = monitors
        .as_array()
        .and_then(|m| m.iter().find(|m| m["slug"] == "nightly-backup"))
        .expect("nightly-backup");
    assert_eq!(backup["status"], "ok");
    let feedback = get("/api/0/projects/default/python/user-feedback/".into()).await;
    assert_eq!(feedback.as_array().map(Vec::len), Some(2), "{feedback}");
    for sdk in ["python", "node", "rust", "browser"] {
        let logs = get(format!(
            "/api/0/projects/default/{sdk}/logs/?query=level%3Aerror"
        ))
        .await;
        assert!(
            logs.as_array().is_some_and(|l| !l.is_empty()),
            "{sdk} error logs"
        );
    }

    // Everything else each SDK sent is stored in structured form.
    let store = bugbane_store::Store::open(dir.path(), common::store_options(dir.path()))
        .expect("open store");
    let projects = store
        .projects(Some("default".into()), None, true)
        .await
        .expect("projects");
    let id = |slug: &str| {
        projects
            .iter()
            .find(|p| p.slug == slug)
            .map(|p| p.id)
            .expect("project")
    };
    let py = store.counts(Some(id("python"))).await.expect("counts");
    assert!(py.transactions >= 2 && py.spans > 0, "{py:?}");
    assert!(
        py.sessions > 0 && py.session_aggregates > 0 && py.check_ins == 3,
        "{py:?}"
    );
    assert!(
        py.feedback == 2 && py.attachments == 3 && py.logs >= 4,
        "{py:?}"
    );
    let node = store.counts(Some(id("node"))).await.expect("counts");
    assert!(
        node.spans > 0 && node.transactions >= 1 && node.check_ins == 4 && node.feedback == 1,
        "{node:?}"
    );
    let rust = store.counts(Some(id("rust"))).await.expect("counts");
    assert!(
        rust.transactions >= 1 && rust.sessions > 0 && rust.logs > 0 && rust.check_ins == 3,
        "{rust:?}"
    );
    let browser = store.counts(Some(id("browser"))).await.expect("counts");
    assert!(
        browser.spans > 0 && browser.feedback == 1 && browser.raw_items > 0,
        "{browser:?}"
    );
}
