//! The dashboard in a real browser: headless Chromium, driven by Playwright, against a
//! real `bugbane serve` fed by the real Python SDK (see `tests/browser/dashboard.mjs` for
//! the steps). Screenshots land in `target/test-output/screenshots/`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{Server, free_port};

/// The Python SDK client, by its real path: the SDK marks frames in-app when their file
/// lies under the working directory, which the OS reports with symlinks resolved.
fn send_cases() -> PathBuf {
    let script = bugbane_test_support::shared_dir().join("clients/python/send_cases.py");
    std::fs::canonicalize(&script).unwrap_or(script)
}

/// Runs Python SDK cases against a DSN (a crashing case exits 1 by design).
async fn send(dsn: &str, cases: &[&str]) {
    for case in cases {
        // The SDK marks frames under the working directory as in-app.
        let out = tokio::process::Command::new("python3")
            .arg(send_cases())
            .current_dir(send_cases().parent().expect("clients dir"))
            .arg(case)
            .env("SENTRY_DSN", dsn)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .await
            .expect("run the Python SDK");
        assert!(
            out.status.success() || *case == "uncaught_exception",
            "{case}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triage_in_a_real_browser() {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed in {}; run scripts/test, which installs it",
        browser_dir.display()
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium is not installed at {chromium}; run scripts/test, which installs it"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), free_port());
    let dsn = server.dsn.clone().expect("first start prints a DSN");
    let (email, password) = server.admin.clone().expect("first start prints the admin");
    send(
        &dsn,
        &[
            "uncaught_exception",
            "logging_breadcrumbs",
            "message_warning",
            "handled_chained_exception",
            "scope_user_tags_context",
            "transaction_spans",
        ],
    )
    .await;
    server.processed(&reqwest::Client::new()).await;

    let screenshots =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-output/screenshots");
    let send_again = serde_json::json!([
        "python3",
        send_cases().display().to_string(),
        "uncaught_exception"
    ]);
    let child = tokio::process::Command::new("node")
        .arg("dashboard.mjs")
        .current_dir(&browser_dir)
        .env("BUGBANE_URL", server.url(""))
        .env("BUGBANE_EMAIL", &email)
        .env("BUGBANE_PASSWORD", &password)
        .env("BUGBANE_PROJECT", "default/default")
        .env("SEND_AGAIN", send_again.to_string())
        .env(
            "SEND_AGAIN_CWD",
            send_cases().parent().expect("clients dir"),
        )
        .env("SENTRY_DSN", &dsn)
        .env("SCREENSHOTS", &screenshots)
        .env("CHROMIUM", &chromium)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run node");
    let out = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .expect("the browser test timed out")
        .expect("browser test output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser test failed:\n{stdout}\n{}\nscreenshots in {}",
        String::from_utf8_lossy(&out.stderr),
        screenshots.display()
    );
    for name in [
        "login",
        "projects",
        "issues",
        "issue",
        "event-breadcrumbs",
        "why-grouped",
        "issue-dark",
        "issues-phone",
    ] {
        assert!(
            screenshots.join(format!("{name}.png")).exists(),
            "screenshot {name} missing"
        );
    }
}
