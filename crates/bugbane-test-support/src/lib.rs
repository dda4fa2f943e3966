//! Test helpers: a real server on an ephemeral loopback port over a temporary database,
//! an API client with an admin token, and the captured SDK fixtures.
//!
//! The database is a SQLite file in a temporary directory, or, when
//! `BUGBANE_TEST_DATABASE_URL` names a PostgreSQL server, a fresh database created there
//! for each server and dropped afterwards: the same tests then run on both engines.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bugbane_server::{App, Config};
use bugbane_store::{Store, StoreOptions};
use serde::Deserialize;
use serde_json::Value;

/// The public key and project id every fixture was captured with.
pub const FIXTURE_KEY: &str = "0123456789abcdef0123456789abcdef";
/// The project id in the fixtures' DSN.
pub const FIXTURE_PROJECT: i64 = 42;
/// The admin API token of every test server.
pub const TOKEN: &str = "bbt_test_token";
/// The administrator every test server starts with.
pub const ADMIN_EMAIL: &str = "admin@localhost";
/// Their dashboard password.
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// The shared folder (fixtures, SDK clients) beside the repository.
pub fn shared_dir() -> PathBuf {
    std::env::var_os("BUGBANE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// A fresh PostgreSQL database for one test, dropped with this value; `None` when the
/// tests run on SQLite (`BUGBANE_TEST_DATABASE_URL` unset).
pub struct TestDatabase {
    /// Its URL, for `--database-url`.
    pub url: String,
    admin_url: String,
    name: String,
}

static DATABASES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl TestDatabase {
    /// Creates an empty database when the tests run on PostgreSQL.
    pub fn create() -> Option<TestDatabase> {
        let admin_url = std::env::var("BUGBANE_TEST_DATABASE_URL").ok()?;
        Some(TestDatabase::create_on(&admin_url))
    }

    /// Creates an empty database on the PostgreSQL server `admin_url` connects to.
    pub fn create_on(admin_url: &str) -> TestDatabase {
        let admin_url = admin_url.to_owned();
        let n = DATABASES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("bugbane_test_{}_{n}_{nanos}", std::process::id());
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&admin_url);
        let url = format!("{base}/{name}");
        // The synchronous client runs its own runtime, so it gets a thread of its own.
        let (admin, db) = (admin_url.clone(), name.clone());
        std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&admin, postgres::NoTls)
                .expect("connect to BUGBANE_TEST_DATABASE_URL");
            client
                .batch_execute(&format!("CREATE DATABASE {db}"))
                .expect("create test database");
        })
        .join()
        .expect("creating the test database");
        TestDatabase {
            url,
            admin_url,
            name,
        }
    }

    /// Its size on the server, in bytes.
    pub fn size(&self) -> u64 {
        let (admin, db) = (self.admin_url.clone(), self.name.clone());
        std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&admin, postgres::NoTls).ok()?;
            let row = client
                .query_one("SELECT pg_database_size($1::text)", &[&db])
                .ok()?;
            row.try_get::<_, i64>(0).ok()
        })
        .join()
        .ok()
        .flatten()
        .unwrap_or(0) as u64
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, db) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(mut client) = postgres::Client::connect(&admin, postgres::NoTls) {
                let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
            }
        })
        .join();
    }
}

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub store: Store,
    pub app: Arc<App>,
    pub http: reqwest::Client,
    /// The PostgreSQL database behind it, when the tests run on PostgreSQL.
    pub database: Option<TestDatabase>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server with default settings.
    pub async fn start() -> TestServer {
        Self::start_with(Config::default()).await
    }

    /// Starts a server with the given settings, bootstrapped, plus the fixtures' project
    /// (id 42, key `0123…cdef`).
    pub async fn start_with(config: Config) -> TestServer {
        Self::start_over(config, TestDatabase::create()).await
    }

    /// Like [`TestServer::start_with`], on SQLite whatever engine the suite runs on (the
    /// source of a migration, say).
    pub async fn start_on_sqlite(config: Config) -> TestServer {
        Self::start_over(config, None).await
    }

    async fn start_over(config: Config, database: Option<TestDatabase>) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(
            dir.path(),
            StoreOptions {
                spool_queue: config.storage.spool_queue,
                fsync: false,
                database_url: database.as_ref().map(|d| d.url.clone()),
                ..Default::default()
            },
        )
        .expect("open store");
        store
            .bootstrap(
                ADMIN_EMAIL.into(),
                bugbane_server::secrets::hash_password(ADMIN_PASSWORD).expect("hash"),
                bugbane_core::credentials::hash_token(TOKEN),
                "fedcba9876543210fedcba9876543210".into(),
            )
            .await
            .expect("bootstrap");
        store
            .create_project(
                "default".into(),
                "fixtures".into(),
                Some("python".into()),
                FIXTURE_KEY.into(),
                Some(FIXTURE_PROJECT),
            )
            .await
            .expect("fixture project");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut config = config;
        config.server.public_url = Some(format!("http://{addr}"));
        let app = App::new(store.clone(), config, dir.path().to_owned())
            .await
            .expect("app");
        tokio::spawn(bugbane_server::serve(
            app.clone(),
            listener,
            std::future::pending(),
        ));
        TestServer {
            addr,
            store,
            app,
            http: reqwest::Client::new(),
            database,
            _dir: dir,
        }
    }

    /// The server's base URL.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The fixtures' DSN pointed at this server.
    pub fn dsn(&self) -> String {
        format!("http://{FIXTURE_KEY}@{}/{FIXTURE_PROJECT}", self.addr)
    }

    /// The data directory (to read raw database bytes).
    pub fn data_dir(&self) -> &Path {
        self._dir.path()
    }

    /// GET an API path with the admin token; returns status and JSON.
    pub async fn api(&self, path: &str) -> (u16, Value) {
        let res = self
            .http
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("api request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// PUT JSON to an API path with the admin token.
    pub async fn api_put(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .http
            .put(self.url(path))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("api request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Posts an envelope with query-string auth for the fixtures' project.
    pub async fn send_envelope(&self, body: Vec<u8>) -> (u16, Value) {
        let res = self
            .http
            .post(self.url(&format!(
                "/api/{FIXTURE_PROJECT}/envelope/?sentry_key={FIXTURE_KEY}&sentry_version=7"
            )))
            .body(body)
            .send()
            .await
            .expect("envelope request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Waits until everything acknowledged has been processed.
    pub async fn processed(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let pending = self.store.pending().await.expect("backlog");
            if pending == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "processing did not finish; backlog {pending}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Issues of the fixtures' project matching a search.
    pub async fn issues(&self, query: &str) -> Vec<Value> {
        let q = encode(query);
        let (status, body) = self
            .api(&format!(
                "/api/0/projects/default/fixtures/issues/?limit=100&query={q}"
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        body.as_array().cloned().unwrap_or_default()
    }
}

/// A dashboard user's browser: the session cookie, the CSRF token of the last page, and
/// no automatic redirects (tests look at them).
pub struct WebClient {
    base: String,
    http: reqwest::Client,
    cookies: Vec<(String, String)>,
    /// The CSRF token found in the last page fetched.
    pub csrf: String,
}

/// A dashboard response.
pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub location: Option<String>,
    pub body: String,
}

impl Page {
    /// The body with HTML character references decoded (the template engine escapes
    /// `/`, quotes and the like), for checking what a reader sees.
    pub fn text(&self) -> String {
        self.body
            .replace("&#x2f;", "/")
            .replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    }
}

impl WebClient {
    /// A client with no session.
    pub fn anonymous(server: &TestServer) -> WebClient {
        WebClient::new(server.url(""))
    }

    /// A client with no session for the server at `base` (`http://host:port`).
    pub fn new(base: String) -> WebClient {
        WebClient {
            base,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: Vec::new(),
            csrf: String::new(),
        }
    }

    /// Signs in with the sign-in form; panics if that fails.
    pub async fn login(server: &TestServer, email: &str, password: &str) -> WebClient {
        WebClient::sign_in(server.url(""), email, password).await
    }

    /// Signs in to the server at `base`; panics if that fails.
    pub async fn sign_in(base: String, email: &str, password: &str) -> WebClient {
        let mut c = WebClient::new(base);
        let page = c.try_login(email, password).await;
        assert_eq!(page.status, 303, "sign-in failed: {}", page.body);
        c
    }

    /// Submits the sign-in form.
    pub async fn try_login(&mut self, email: &str, password: &str) -> Page {
        let login = self.get("/login").await;
        assert_eq!(login.status, 200);
        let csrf = self.csrf.clone();
        self.post(
            "/login",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, res: reqwest::Response) -> Page {
        for v in res.headers().get_all("set-cookie") {
            let Ok(v) = v.to_str() else { continue };
            let Some((k, rest)) = v.split_once('=') else {
                continue;
            };
            let value = rest.split(';').next().unwrap_or_default().to_owned();
            self.cookies.retain(|(n, _)| n != k);
            if !value.is_empty() {
                self.cookies.push((k.to_owned(), value));
            }
        }
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let headers = res.headers().clone();
        let body = res.text().await.unwrap_or_default();
        if let Some(i) = body.find("name=\"csrf\" value=\"") {
            let rest = &body[i + 19..];
            self.csrf = rest[..rest.find('"').unwrap_or(0)].to_owned();
        }
        Page {
            status,
            headers,
            location,
            body,
        }
    }

    /// GETs a dashboard path.
    pub async fn get(&mut self, path: &str) -> Page {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("dashboard request");
        self.finish(res).await
    }

    /// POSTs a form.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body: String = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("dashboard request");
        self.finish(res).await
    }

    /// POSTs a form with this session's CSRF token added.
    pub async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.clone();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all).await
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One captured HTTP request.
#[derive(Debug, Clone)]
pub struct FixtureRequest {
    pub sdk: String,
    pub case: String,
    pub file: String,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Deserialize)]
struct RawRequest {
    method: String,
    path: String,
    query_string: String,
    headers: Vec<(String, String)>,
}

/// Every captured request, in SDK, case and arrival order.
pub fn fixtures() -> Vec<FixtureRequest> {
    let root = shared_dir().join("fixtures/sdk-envelopes");
    let mut out = Vec::new();
    let mut sdks: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("reading {}: {e}", root.display()))
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .collect();
    sdks.sort_by_key(|e| e.file_name());
    for sdk in sdks {
        let mut cases: Vec<_> = std::fs::read_dir(sdk.path())
            .expect("sdk dir")
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .collect();
        cases.sort_by_key(|e| e.file_name());
        for case in cases {
            let mut files: Vec<_> = std::fs::read_dir(case.path())
                .expect("case dir")
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".request.json"))
                .collect();
            files.sort();
            for f in files {
                let stem = f.trim_end_matches(".request.json").to_owned();
                let raw: RawRequest = serde_json::from_slice(
                    &std::fs::read(case.path().join(&f)).expect("request json"),
                )
                .expect("request shape");
                let body =
                    std::fs::read(case.path().join(format!("{stem}.body"))).unwrap_or_default();
                out.push(FixtureRequest {
                    sdk: sdk.file_name().to_string_lossy().into_owned(),
                    case: case.file_name().to_string_lossy().into_owned(),
                    file: stem,
                    method: raw.method,
                    path: raw.path,
                    query: raw.query_string,
                    headers: raw.headers,
                    body,
                });
            }
        }
    }
    out
}

impl TestServer {
    /// Replays a captured request byte for byte (headers as captured, minus hop-by-hop ones).
    pub async fn replay(&self, r: &FixtureRequest) -> (u16, String) {
        let url = if r.query.is_empty() {
            self.url(&r.path)
        } else {
            self.url(&format!("{}?{}", r.path, r.query))
        };
        let method = reqwest::Method::from_bytes(r.method.as_bytes()).expect("method");
        let mut req = self.http.request(method, url);
        for (k, v) in &r.headers {
            let lower = k.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "host" | "content-length" | "transfer-encoding" | "connection"
            ) {
                continue;
            }
            req = req.header(k, v);
        }
        if !r.body.is_empty() || r.method == "POST" {
            req = req.body(r.body.clone());
        }
        let res = req.send().await.expect("replay");
        (res.status().as_u16(), res.text().await.unwrap_or_default())
    }
}

/// One request a [`Receiver`] got.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A local HTTP endpoint that records what is posted to it, standing in for Slack,
/// Discord, Teams and webhook receivers. `/fail/{n}/…` answers 500 to the first `n`
/// requests of that path; `/slow/{ms}/…` waits before answering its first request.
pub struct Receiver {
    pub addr: SocketAddr,
    got: Arc<std::sync::Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Listens on an ephemeral loopback port.
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Receiver::on(listener)
    }

    /// Listens on a given port (to bring a "down" receiver back).
    pub async fn start_on(port: u16) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        Receiver::on(listener)
    }

    fn on(listener: tokio::net::TcpListener) -> Receiver {
        let addr = listener.local_addr().expect("addr");
        let got: Arc<std::sync::Mutex<Vec<Received>>> = Arc::default();
        let record = got.clone();
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let record = record.clone();
                async move {
                    let path = uri.path().to_owned();
                    let seen = {
                        let mut got = record.lock().expect("lock");
                        let seen = got.iter().filter(|r| r.path == path).count();
                        let mut h = reqwest::header::HeaderMap::new();
                        for (k, v) in &headers {
                            if let (Ok(k), Ok(v)) = (
                                reqwest::header::HeaderName::from_bytes(k.as_str().as_bytes()),
                                reqwest::header::HeaderValue::from_bytes(v.as_bytes()),
                            ) {
                                h.append(k, v);
                            }
                        }
                        got.push(Received {
                            path: path.clone(),
                            headers: h,
                            body: body.to_vec(),
                        });
                        seen
                    };
                    let mut parts = path.trim_start_matches('/').split('/');
                    match (
                        parts.next(),
                        parts.next().and_then(|n| n.parse::<usize>().ok()),
                    ) {
                        (Some("fail"), Some(n)) if seen < n => {
                            return (
                                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                                "down for maintenance",
                            );
                        }
                        (Some("slow"), Some(ms)) if seen == 0 => {
                            tokio::time::sleep(Duration::from_millis(ms as u64)).await;
                        }
                        _ => {}
                    }
                    (axum::http::StatusCode::OK, "ok")
                }
            },
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, got, task }
    }

    /// The receiver's URL for a path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.got.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// Requests to one path.
    pub fn at(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Stops listening.
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Waits until `check` holds, for at most `secs` seconds.
pub async fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A real SMTP server on loopback (Python's `aiosmtpd`) that files every message it
/// receives in a Maildir.
pub struct SmtpSink {
    pub port: u16,
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts `aiosmtpd` and waits until it accepts connections.
    pub async fn start() -> SmtpSink {
        let dir = tempfile::tempdir().expect("maildir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("mail"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start aiosmtpd (scripts/test installs it with pip)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        SmtpSink { port, child, dir }
    }

    /// Every message received, as raw RFC 5322 text.
    pub fn messages(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path().join("mail/new"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
