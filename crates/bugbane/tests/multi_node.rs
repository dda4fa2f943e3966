//! Three `bugbane serve` processes over one PostgreSQL database behave as one: the same
//! new issues arriving at all three at once become one issue per hash with exact counts
//! and one alert each; a process killed with `kill -9` mid-load loses nothing it
//! acknowledged. (Runs when the suite runs on PostgreSQL; SQLite serves one process.)

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use bugbane_test_support::{Receiver, eventually};
use common::{Server, api, free_port};
use serde_json::{Value, json};

const ISSUES: usize = 8;
const EVENTS_PER_ISSUE_PER_NODE: usize = 15;

/// An envelope with one error event of issue `k` (its fingerprint names the issue).
fn envelope(event_id: &str, k: usize) -> Vec<u8> {
    let header = json!({"event_id": event_id});
    let item = json!({"type": "event"});
    let event = json!({
        "event_id": event_id,
        "level": "error",
        "platform": "python",
        "message": format!("multi-node issue {k:02} of {ISSUES}"),
        "fingerprint": [format!("multi-node-{k}")],
        "user": {"id": format!("user-{event_id}")},
    });
    format!("{header}\n{item}\n{event}\n").into_bytes()
}

/// The shared backlog as a node reports it.
async fn backlog(http: &reqwest::Client, node: &Server) -> Value {
    let health: Value = http
        .get(node.url("/_health/"))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    health["backlog"].clone()
}

/// Waits until the shared spool is empty (every node reports the shared backlog).
async fn drained(http: &reqwest::Client, node: &Server) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        // The count is refreshed every half second: wait for a zero seen twice, apart.
        if backlog(http, node).await == 0 {
            tokio::time::sleep(Duration::from_millis(700)).await;
            if backlog(http, node).await == 0 {
                return;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "backlog did not drain"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Issue title → (times seen, user count), from the API of `node`.
async fn issue_counts(
    http: &reqwest::Client,
    node: &Server,
    token: &str,
) -> BTreeMap<String, (i64, i64)> {
    let issues = api(
        http,
        node.url("/api/0/projects/default/default/issues/?query=&limit=100&statsPeriod=24h"),
        token,
    )
    .await;
    issues
        .as_array()
        .expect("issues")
        .iter()
        .map(|i| {
            let count = i["count"]
                .as_str()
                .and_then(|c| c.parse().ok())
                .unwrap_or(-1);
            (
                i["title"].as_str().unwrap_or_default().to_owned(),
                (count, i["userCount"].as_i64().unwrap_or(-1)),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_processes_over_one_postgres_behave_as_one() {
    if !common::on_postgres() {
        eprintln!("skipped: several processes share a PostgreSQL database only");
        return;
    }
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir().expect("temp dir"))
        .collect();
    let url = common::database_url(dirs[0].path()).expect("database");
    let settings = [
        ("BUGBANE_DATABASE_URL", url.as_str()),
        ("BUGBANE_STORAGE__SPOOL_LEASE_SECONDS", "3"),
        ("BUGBANE_STORAGE__FSYNC", "false"),
    ];
    // The first node sets the installation up; the others join it.
    let first = Server::start_with_env(dirs[0].path(), free_port(), &settings);
    let token = first.token.clone().expect("token");
    let dsn = first.dsn.clone().expect("dsn");
    let (key, rest) = dsn
        .trim_start_matches("http://")
        .split_once('@')
        .expect("dsn");
    let key = key.to_owned();
    let project = rest.rsplit('/').next().expect("project id").to_owned();
    let mut nodes = vec![first];
    for dir in &dirs[1..] {
        let node = Server::start_with_env(dir.path(), free_port(), &settings);
        assert!(
            node.token.is_none(),
            "a joining node does not bootstrap again"
        );
        nodes.push(node);
    }
    let http = reqwest::Client::new();

    // One alert per new issue, to a receiver that counts them.
    let receiver = Receiver::start().await;
    let res = http
        .post(nodes[1].url("/api/0/projects/default/default/rules/"))
        .bearer_auth(&token)
        .json(
            &json!({"name": "new issues", "triggers": [{"type": "new_issue"}],
                      "actions": [{"type": "webhook", "target": receiver.url("/hook")}]}),
        )
        .send()
        .await
        .expect("create rule");
    assert_eq!(res.status(), 201);

    // Every node receives events of every issue at once, interleaved.
    let mut tasks = Vec::new();
    for (n, base) in nodes.iter().map(|n| n.url("")).enumerate() {
        let (http, key, project) = (http.clone(), key.clone(), project.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = 0;
            for i in 0..EVENTS_PER_ISSUE_PER_NODE {
                let sends = (0..ISSUES).map(|k| {
                    let id = format!("{n:02x}{i:04x}{k:02x}{:024x}", 0);
                    let node = Node {
                        base: base.clone(),
                        project: project.clone(),
                        key: key.clone(),
                        http: http.clone(),
                    };
                    async move { node.send(envelope(&id, k)).await }
                });
                for ok in futures_join(sends).await {
                    acked += usize::from(ok);
                }
            }
            acked
        }));
    }
    let mut acked = 0;
    for t in tasks {
        acked += t.await.expect("sender");
    }
    assert_eq!(acked, 3 * ISSUES * EVENTS_PER_ISSUE_PER_NODE);
    drained(&http, &nodes[0]).await;

    let counts = issue_counts(&http, &nodes[2], &token).await;
    assert_eq!(counts.len(), ISSUES, "one issue per hash: {counts:?}");
    for (title, (count, users)) in &counts {
        assert_eq!(
            *count,
            (3 * EVENTS_PER_ISSUE_PER_NODE) as i64,
            "{title}: every event counted once"
        );
        assert_eq!(
            *users,
            (3 * EVENTS_PER_ISSUE_PER_NODE) as i64,
            "{title}: every user counted once"
        );
    }
    eventually(30, "an alert per new issue", || {
        receiver.at("/hook").len() >= ISSUES
    })
    .await;
    // Give a duplicate every chance to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let alerts = receiver.at("/hook");
    for k in 0..ISSUES {
        let needle = format!("multi-node issue {k:02} ");
        let n = alerts
            .iter()
            .filter(|a| String::from_utf8_lossy(&a.body).contains(&needle))
            .count();
        assert_eq!(n, 1, "{needle}: exactly one alert");
    }
    assert_eq!(alerts.len(), ISSUES);

    // Now kill one node mid-load: everything any node acknowledged is stored.
    let mut tasks = Vec::new();
    for (n, base) in nodes.iter().map(|n| n.url("")).enumerate() {
        let node = Node {
            base,
            project: project.clone(),
            key: key.clone(),
            http: http.clone(),
        };
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..400 {
                let id = format!("{:02x}{n:02x}{i:04x}{:024x}", 0xee, 0);
                if node.send(envelope(&id, i % ISSUES)).await {
                    acked.push(id);
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    nodes[1].kill();
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.expect("sender"));
    }
    assert!(acked.len() > 400, "the surviving nodes kept accepting");
    drained(&http, &nodes[0]).await;
    let mut missing = Vec::new();
    for id in &acked {
        let res = http
            .get(nodes[2].url(&format!("/api/0/projects/default/default/events/{id}/")))
            .bearer_auth(&token)
            .send()
            .await
            .expect("event");
        if !res.status().is_success() {
            missing.push(id.clone());
        }
    }
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    // And nothing was counted twice: the counters match the stored events.
    let counts = issue_counts(&http, &nodes[0], &token).await;
    let stored: i64 = counts.values().map(|(c, _)| c).sum();
    let acked_ids: HashSet<&String> = acked.iter().collect();
    assert!(
        stored >= (3 * ISSUES * EVENTS_PER_ISSUE_PER_NODE + acked_ids.len()) as i64,
        "{stored} stored"
    );
    assert!(
        stored <= (3 * ISSUES * EVENTS_PER_ISSUE_PER_NODE + 3 * 400) as i64,
        "{stored} stored: more than was sent"
    );

    // Split roles: an ingest-only process takes SDK traffic and nothing else, a web-only
    // process serves people and nothing else, and the workers process what came in.
    let role_dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let mut ingest_env = settings.to_vec();
    ingest_env.push(("BUGBANE_ROLE", "ingest"));
    let ingest = Server::start_with_env(role_dirs[0].path(), free_port(), &ingest_env);
    let mut web_env = settings.to_vec();
    web_env.push(("BUGBANE_ROLE", "web"));
    let web = Server::start_with_env(role_dirs[1].path(), free_port(), &web_env);
    let to = |server: &Server| Node {
        base: server.url(""),
        project: project.clone(),
        key: key.clone(),
        http: http.clone(),
    };
    let id = format!("{:032x}", 0xab1e);
    assert!(
        to(&ingest).send(envelope(&id, 0)).await,
        "the ingest node accepts"
    );
    assert!(
        !to(&web).send(envelope(&id, 0)).await,
        "the web node takes no SDK traffic"
    );
    let api_on_ingest = http
        .get(ingest.url("/api/0/projects/"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(api_on_ingest.status(), 404, "the ingest node serves no API");
    drained(&http, &web).await;
    let event = http
        .get(web.url(&format!("/api/0/projects/default/default/events/{id}/")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("event");
    assert!(
        event.status().is_success(),
        "processed by a worker, served by web"
    );
}

/// Where a sender task sends: a node's base URL and the project's DSN parts.
struct Node {
    base: String,
    project: String,
    key: String,
    http: reqwest::Client,
}

impl Node {
    /// Posts one envelope; true when the node acknowledged it.
    async fn send(&self, body: Vec<u8>) -> bool {
        let res = self
            .http
            .post(format!("{}/api/{}/envelope/", self.base, self.project))
            .header(
                "X-Sentry-Auth",
                format!("Sentry sentry_version=7, sentry_key={}", self.key),
            )
            .header("Content-Type", "application/x-sentry-envelope")
            .body(body)
            .send()
            .await;
        matches!(res, Ok(r) if r.status().is_success())
    }
}

/// Runs the futures concurrently and returns their results in order.
async fn futures_join<F: std::future::Future<Output = bool> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<bool> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap_or(false));
    }
    out
}
