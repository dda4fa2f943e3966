//! The durability contract: a 2xx means the envelope is on disk. Under concurrent load the
//! server is killed with SIGKILL; after a restart every acknowledged event is stored and
//! processed.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, api, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut server = Server::start(dir.path(), port);
    let token = server.token.clone().expect("token");
    let dsn: bugbane_protocol::Dsn = server
        .dsn
        .clone()
        .expect("dsn")
        .parse()
        .expect("dsn parses");
    let url = dsn.envelope_url();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");

    let mut senders = Vec::new();
    for worker in 0..8u32 {
        let (http, url, acked, key) = (
            http.clone(),
            url.clone(),
            acked.clone(),
            dsn.public_key.clone(),
        );
        senders.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            for n in 0u32.. {
                if Instant::now() > deadline {
                    break;
                }
                let id = format!("{worker:08x}{n:024x}");
                let event = serde_json::json!({
                    "event_id": id, "platform": "python", "level": "error",
                    "exception": {"values": [{"type": "DurabilityError", "value": format!("worker {worker} event {n}"),
                        "stacktrace": {"frames": [{"module": "load", "function": format!("worker_{}", worker % 3), "in_app": true}]}}]}
                });
                let body = format!("{{\"event_id\":\"{id}\"}}\n{{\"type\":\"event\"}}\n{event}\n");
                let res = http
                    .post(&url)
                    .header("x-sentry-auth", format!("Sentry sentry_key={key}, sentry_version=7"))
                    .body(body)
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status().is_success() => acked.lock().expect("lock").push(id),
                    Ok(_) => {}
                    Err(_) => break, // the server is gone
                }
            }
        }));
    }
    // Let load build up, then pull the plug.
    while acked.lock().expect("lock").len() < 300 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();
    for s in senders {
        let _ = s.await;
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() >= 300, "load was generated: {}", acked.len());

    let server = Server::start(dir.path(), port);
    let fresh = reqwest::Client::new();
    server.processed(&fresh).await;
    let mut missing = Vec::new();
    for id in &acked {
        let res = fresh
            .get(server.url(&format!("/api/0/projects/default/default/events/{id}/")))
            .bearer_auth(&token)
            .send()
            .await
            .expect("api");
        if !res.status().is_success() {
            missing.push(id.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    // Grouped too: three call paths, three issues holding every event.
    let issues = api(
        &fresh,
        server.url("/api/0/projects/default/default/issues/?query=DurabilityError"),
        &token,
    )
    .await;
    let issues = issues.as_array().expect("issues");
    assert_eq!(issues.len(), 3, "{issues:?}");
    let total: i64 = issues
        .iter()
        .map(|i| {
            i["count"]
                .as_str()
                .and_then(|c| c.parse::<i64>().ok())
                .unwrap_or(0)
        })
        .sum();
    assert!(
        total >= acked.len() as i64,
        "counted {total} of {} acknowledged",
        acked.len()
    );
}
