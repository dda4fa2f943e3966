//! Running the real `bugbane` binary in tests.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use bugbane_test_support::TestDatabase;
use serde_json::Value;

/// On PostgreSQL, each data directory of a test stands for one fresh database, kept for
/// the test binary's life (so restarts find their data).
static DATABASES: LazyLock<Mutex<HashMap<PathBuf, TestDatabase>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The PostgreSQL database behind `data`, when the tests run on PostgreSQL.
pub fn database_url(data: &Path) -> Option<String> {
    let mut dbs = DATABASES.lock().expect("databases");
    if let Some(db) = dbs.get(data) {
        return Some(db.url.clone());
    }
    let db = TestDatabase::create()?;
    let url = db.url.clone();
    dbs.insert(data.to_owned(), db);
    Some(url)
}

/// Options to open the store of the installation in `data` from the test itself.
pub fn store_options(data: &Path) -> bugbane_store::StoreOptions {
    bugbane_store::StoreOptions {
        database_url: database_url(data),
        ..Default::default()
    }
}

/// Whether the tests run on PostgreSQL rather than SQLite.
pub fn on_postgres() -> bool {
    std::env::var_os("BUGBANE_TEST_DATABASE_URL").is_some()
}

/// A `bugbane serve` process on a loopback port.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub data: PathBuf,
    pub token: Option<String>,
    pub dsn: Option<String>,
    /// The administrator's email and password from the first-start banner.
    pub admin: Option<(String, String)>,
}

/// What the first-start banner tells.
#[derive(Default)]
struct Banner {
    token: Option<String>,
    dsn: Option<String>,
    admin: Option<(String, String)>,
}

impl Banner {
    fn read(&mut self, line: &str) {
        let line = line.trim();
        if let Some(t) = line.strip_prefix("API token:") {
            self.token = Some(t.trim().to_owned());
        }
        if let Some(d) = line.strip_prefix("DSN:") {
            self.dsn = Some(d.trim().to_owned());
        }
        if let Some((email, password)) = line
            .strip_prefix("Admin:")
            .and_then(|a| a.trim().split_once(" / "))
        {
            self.admin = Some((email.to_owned(), password.to_owned()));
        }
    }
}

/// A free loopback port (bound and released; the race with other processes is acceptable
/// for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The binary under test.
pub fn bugbane(data: &Path, port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bugbane"));
    cmd.arg("--data")
        .arg(data)
        .env("BUGBANE_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn");
    if let Some(url) = database_url(data) {
        cmd.env("BUGBANE_DATABASE_URL", url);
    }
    cmd
}

impl Server {
    /// Starts `bugbane serve` and waits until it answers; reads the first-start banner.
    pub fn start(data: &Path, port: u16) -> Server {
        Server::start_with_env(data, port, &[])
    }

    /// Starts `bugbane serve` with extra environment (settings as `BUGBANE_*` variables).
    pub fn start_with_env(data: &Path, port: u16, env: &[(&str, &str)]) -> Server {
        let mut child = bugbane(data, port)
            .envs(env.iter().copied())
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn bugbane serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut banner = Banner::default();
        loop {
            while let Ok(line) = rx.try_recv() {
                banner.read(&line);
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                // The banner is printed before listening; give the reader a moment.
                std::thread::sleep(Duration::from_millis(50));
                while let Ok(line) = rx.try_recv() {
                    banner.read(&line);
                }
                break;
            }
            assert!(Instant::now() < deadline, "bugbane serve did not start");
            if let Ok(Some(status)) = child.try_wait() {
                panic!("bugbane serve exited early: {status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Server {
            child,
            port,
            data: data.to_owned(),
            token: banner.token,
            dsn: banner.dsn,
            admin: banner.admin,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits until everything acknowledged is processed.
    pub async fn processed(&self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let health: Value = http
                .get(self.url("/_health/"))
                .send()
                .await
                .expect("health")
                .json()
                .await
                .expect("health json");
            if health["backlog"] == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "backlog did not drain: {health}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the process without warning.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// GET an API path with a token.
pub async fn api(http: &reqwest::Client, url: String, token: &str) -> Value {
    let res = http.get(&url).bearer_auth(token).send().await.expect("api");
    assert!(res.status().is_success(), "{url}: {}", res.status());
    res.json().await.expect("json")
}
