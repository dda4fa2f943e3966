//! The command line, as an operator uses it next to a running server.

mod common;

use common::{Server, api, bugbane, free_port};

fn run(cmd: &mut std::process::Command) -> (bool, String, String) {
    let out = cmd.output().expect("run bugbane");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_work_while_serving() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let server = Server::start(dir.path(), port);
    let http = reqwest::Client::new();
    let dsn = server.dsn.clone().expect("first start prints the DSN");
    assert!(
        dsn.starts_with("http://") && dsn.ends_with(&format!("@127.0.0.1:{port}/1")),
        "{dsn}"
    );

    let (ok, example, _) = run(bugbane(dir.path(), port).args(["config", "example"]));
    assert!(ok && example.contains("[ingest]") && example.contains("rate_limit_per_minute"));

    let (ok, out, err) = run(bugbane(dir.path(), port).args(["token", "create", "--name", "ci"]));
    assert!(ok, "{err}");
    let token = out.lines().last().expect("token line").trim().to_owned();
    let projects = api(&http, server.url("/api/0/projects/"), &token).await;
    assert_eq!(projects[0]["slug"], "default");

    let (ok, out, err) = run(bugbane(dir.path(), port).args([
        "user",
        "create",
        "--email",
        "dev@example.com",
        "--generate",
    ]));
    assert!(ok, "{err}");
    assert!(
        out.contains("password: ") && out.contains("dev@example.com"),
        "{out}"
    );
    let (ok, _, err) = run(bugbane(dir.path(), port).args([
        "user",
        "create",
        "--email",
        "dev@example.com",
        "--password",
        "x",
    ]));
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) =
        run(bugbane(dir.path(), port).args(["user", "create", "--email", "nobody@example.com"]));
    assert!(!ok && err.contains("--password"), "{err}");

    let (ok, out, err) = run(bugbane(dir.path(), port).args([
        "project",
        "create",
        "backend",
        "--platform",
        "python",
    ]));
    assert!(ok, "{err}");
    let backend_dsn = out.lines().last().expect("dsn").trim().to_owned();
    let (ok, out, err) = run(bugbane(dir.path(), port).args([
        "send-test-event",
        "--dsn",
        &backend_dsn,
        "--message",
        "checking the install",
    ]));
    assert!(ok, "{err}");
    assert!(out.starts_with("sent event "), "{out}");
    server.processed(&http).await;
    let issues = api(
        &http,
        server.url("/api/0/projects/default/backend/issues/"),
        &token,
    )
    .await;
    assert_eq!(issues[0]["title"], "BugbaneTestError: checking the install");
    assert_eq!(issues[0]["culprit"], "app.checkout in run_checkout");

    let (ok, _, err) =
        run(bugbane(dir.path(), port).args(["send-test-event", "--dsn", "not a dsn"]));
    assert!(!ok && err.contains("invalid DSN"), "{err}");
    if !common::on_postgres() {
        let (ok, _, err) = run(bugbane(dir.path(), port).args(["serve", "--role", "web"]));
        assert!(!ok && err.contains("PostgreSQL"), "{err}");
    }
    let (ok, _, err) = run(bugbane(dir.path(), port).args(["project", "create", "backend"]));
    assert!(!ok && err.contains("already exists"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_backup_is_a_working_installation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let server = Server::start(dir.path(), port);
    let http = reqwest::Client::new();
    let dsn = server.dsn.clone().expect("dsn");
    let token = server.token.clone().expect("token");
    for n in 0..3 {
        let (ok, _, err) = run(bugbane(dir.path(), port).args([
            "send-test-event",
            "--dsn",
            &dsn,
            "--message",
            &format!("backup check {n}"),
        ]));
        assert!(ok, "{err}");
    }
    server.processed(&http).await;
    let before = api(
        &http,
        server.url("/api/0/projects/default/default/issues/?query="),
        &token,
    )
    .await;

    // While the server runs.
    let copy = tempfile::tempdir().expect("backup dir");
    let target = copy.path().join("snapshot");
    if let Some(source) = common::database_url(dir.path()) {
        // PostgreSQL is backed up with its own tools, as the operator guide says.
        let (ok, _, err) = run(bugbane(dir.path(), port)
            .args(["backup", "--to"])
            .arg(&target));
        assert!(!ok && err.contains("pg_dump"), "{err}");
        let restored = common::database_url(&target).expect("target database");
        let dump = std::process::Command::new("pg_dump")
            .args(["--no-owner", &source])
            .output()
            .expect("pg_dump");
        assert!(
            dump.status.success(),
            "{}",
            String::from_utf8_lossy(&dump.stderr)
        );
        let mut psql = std::process::Command::new("psql")
            .args(["-q", "-v", "ON_ERROR_STOP=1", &restored])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("psql");
        std::io::Write::write_all(psql.stdin.as_mut().expect("stdin"), &dump.stdout)
            .expect("restore");
        drop(psql.stdin.take());
        assert!(psql.wait().expect("psql").success());
    } else {
        let (ok, out, err) = run(bugbane(dir.path(), port)
            .args(["backup", "--to"])
            .arg(&target));
        assert!(ok, "{err}");
        assert!(out.contains("backed up"), "{out}");
        let (ok, _, err) = run(bugbane(dir.path(), port)
            .args(["backup", "--to"])
            .arg(&target));
        assert!(!ok && err.contains("already exists"), "{err}");
    }

    // The copy serves the same data, token included.
    let port2 = free_port();
    let restored = Server::start(&target, port2);
    assert!(restored.token.is_none(), "not a first start");
    let after = api(
        &http,
        restored.url("/api/0/projects/default/default/issues/?query="),
        &token,
    )
    .await;
    let titles = |v: &serde_json::Value| {
        let mut t: Vec<String> = v
            .as_array()
            .expect("issues")
            .iter()
            .map(|i| format!("{} {}", i["title"], i["count"]))
            .collect();
        t.sort();
        t
    };
    assert_eq!(titles(&before), titles(&after));
    assert!(!titles(&after).is_empty());
}
