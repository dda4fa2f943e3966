//! The endpoints besides `/envelope/`: legacy store, browser security reports, minidumps,
//! HTTP cron check-ins; project and key settings; retention; the disk-space floor.

use std::io::Write;
use std::time::Duration;

use bugbane_server::Config;
use bugbane_test_support::{FIXTURE_KEY, FIXTURE_PROJECT, TOKEN, TestServer};
use serde_json::{Value, json};

fn q() -> String {
    format!("?sentry_key={FIXTURE_KEY}&sentry_version=7")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_security_minidump_and_cron() {
    let server = TestServer::start().await;
    let http = &server.http;

    // Legacy store: plain JSON, base64 of zlib JSON, and an envelope by content type.
    let res = http
        .post(server.url(&format!("/api/{FIXTURE_PROJECT}/store/{}", q())))
        .body(json!({"event_id": "11111111111111111111111111111111", "message": "stored the old way", "platform": "python"}).to_string())
        .send()
        .await
        .expect("store");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.json::<Value>().await.expect("json")["id"],
        "11111111111111111111111111111111"
    );
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(
        json!({"message": "stored by a very old client"})
            .to_string()
            .as_bytes(),
    )
    .expect("zlib");
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(z.finish().expect("zlib"));
    let res = http
        .post(server.url(&format!("/api/{FIXTURE_PROJECT}/store/{}", q())))
        .body(b64)
        .send()
        .await
        .expect("store");
    assert_eq!(res.status().as_u16(), 200);
    let res = http
        .post(server.url(&format!("/api/{FIXTURE_PROJECT}/store/{}", q())))
        .header("content-type", "application/x-sentry-envelope")
        .body("{}\n{\"type\":\"event\"}\n{\"message\":\"an envelope at the store endpoint\"}\n")
        .send()
        .await
        .expect("store");
    assert_eq!(res.status().as_u16(), 200);

    // A CSP report from a browser's report-uri.
    let report = json!({"csp-report": {
        "document-uri": "https://shop.example.com/checkout", "violated-directive": "script-src 'self'",
        "effective-directive": "script-src", "blocked-uri": "https://evil.example.net/x.js", "original-policy": "script-src 'self'"}});
    let res = http
        .post(server.url(&format!(
            "/api/{FIXTURE_PROJECT}/security/{}&sentry_release=web@3",
            q()
        )))
        .header("content-type", "application/csp-report")
        .body(report.to_string())
        .send()
        .await
        .expect("security");
    assert_eq!(res.status().as_u16(), 200);

    // A minidump upload as crash reporters send it.
    let form = reqwest::multipart::Form::new()
        .part(
            "upload_file_minidump",
            reqwest::multipart::Part::bytes(b"MDMP\x93\xa7\x00\x00rest of the dump".to_vec())
                .file_name("crash.dmp"),
        )
        .text(
            "sentry",
            json!({"release": "native@1.2", "tags": {"kind": "crash"}}).to_string(),
        );
    let res = http
        .post(server.url(&format!("/api/{FIXTURE_PROJECT}/minidump/{}", q())))
        .multipart(form)
        .send()
        .await
        .expect("minidump");
    assert_eq!(res.status().as_u16(), 200);
    let dump_id = res.text().await.expect("text");
    assert_eq!(dump_id.len(), 36, "hyphenated event id: {dump_id}");

    // An HTTP cron check-in.
    let res = http
        .get(server.url(&format!(
            "/api/{FIXTURE_PROJECT}/cron/nightly-report/{FIXTURE_KEY}/?status=ok&duration=1500"
        )))
        .send()
        .await
        .expect("cron");
    assert_eq!(res.status().as_u16(), 202);

    server.processed().await;
    let titles: Vec<String> = server
        .issues("")
        .await
        .iter()
        .filter_map(|i| i["title"].as_str().map(str::to_owned))
        .collect();
    for t in [
        "stored the old way",
        "stored by a very old client",
        "an envelope at the store endpoint",
        "Blocked 'script-src' from 'evil.example.net'",
        "Minidump: Native crash (minidump not symbolicated)",
    ] {
        assert!(titles.iter().any(|x| x == t), "{t:?} not in {titles:?}");
    }
    let csp = server.issues("blocked-uri:evil.example.net").await;
    assert_eq!(csp.len(), 1);
    assert_eq!(csp[0]["type"], "csp");
    let ev = server
        .api(&format!(
            "/api/0/issues/{}/events/latest/",
            csp[0]["id"].as_str().expect("id")
        ))
        .await
        .1;
    assert_eq!(ev["release"]["version"], "web@3");
    let dump = server
        .api(&format!(
            "/api/0/projects/default/fixtures/events/{dump_id}/"
        ))
        .await
        .1;
    assert_eq!(
        (dump["level"].as_str(), dump["platform"].as_str()),
        (Some("fatal"), Some("native"))
    );
    let attachments = server
        .store
        .event_attachments(FIXTURE_PROJECT, dump_id.replace('-', ""))
        .await
        .expect("attachments");
    assert_eq!(attachments.len(), 1);
    let data = server
        .store
        .attachment_data(FIXTURE_PROJECT, attachments[0].0)
        .await
        .expect("data")
        .expect("bytes");
    assert!(data.starts_with(b"MDMP"));
    assert_eq!(
        server.store.counts(None).await.expect("counts").check_ins,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_scrubbing_settings_and_key_limits() {
    let server = TestServer::start().await;
    let send = |msg: &'static str| {
        let server = &server;
        async move {
            let body = format!(
                "{{}}\n{{\"type\":\"event\"}}\n{}\n",
                json!({"message": msg, "extra": {"password": "hunter2", "tenant_code": "T-99"}})
            );
            server.send_envelope(body.into_bytes()).await
        }
    };
    let extra_of = |msg: &'static str| {
        let server = &server;
        async move {
            let issue = server.issues(msg).await.remove(0);
            server
                .api(&format!(
                    "/api/0/issues/{}/events/latest/",
                    issue["id"].as_str().expect("id")
                ))
                .await
                .1["extra"]
                .clone()
        }
    };
    send("defaults").await;
    server.processed().await;
    assert_eq!(
        extra_of("defaults").await,
        json!({"password": "[Filtered]", "tenant_code": "T-99"})
    );

    let (status, p) = server
        .api_put(
            "/api/0/projects/default/fixtures/",
            json!({"sensitiveFields": ["tenant_code"], "safeFields": ["password"]}),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        p["options"]["sentry:sensitive_fields"],
        json!(["tenant_code"])
    );
    // The processor re-reads settings within seconds.
    tokio::time::sleep(Duration::from_millis(5200)).await;
    send("custom").await;
    server.processed().await;
    assert_eq!(
        extra_of("custom").await,
        json!({"password": "hunter2", "tenant_code": "[Filtered]"})
    );

    // A key's own rate limit, and disabling it.
    let (status, k) = server
        .api_put(
            &format!("/api/0/projects/default/fixtures/keys/{FIXTURE_KEY}/"),
            json!({"rateLimit": {"window": 60, "count": 1}}),
        )
        .await;
    assert_eq!((status, k["rateLimit"]["count"].as_i64()), (200, Some(1)));
    assert_eq!(send("one").await.0, 200);
    assert_eq!(send("two").await.0, 429);
    let (status, _) = server
        .api_put(
            &format!("/api/0/projects/default/fixtures/keys/{FIXTURE_KEY}/"),
            json!({"isActive": false}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(send("three").await.0, 403);
    assert_eq!(
        server
            .api_put("/api/0/projects/default/fixtures/keys/0000/", json!({}))
            .await
            .0,
        404
    );
    let res = server
        .http
        .put(server.url("/api/0/projects/default/fixtures/"))
        .bearer_auth(TOKEN)
        .body("{")
        .send()
        .await
        .expect("put");
    assert_eq!(res.status().as_u16(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_counters_exact() {
    let server = TestServer::start().await;
    let send = |n: u32| {
        let server = &server;
        async move {
            let body = format!(
                "{{}}\n{{\"type\":\"event\"}}\n{}\n",
                json!({"message": "retained", "tags": {"n": n.to_string()}})
            );
            assert_eq!(server.send_envelope(body.into_bytes()).await.0, 200);
            server.processed().await;
        }
    };
    send(1).await;
    send(2).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let cutoff = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    tokio::time::sleep(Duration::from_millis(50)).await;
    send(3).await;
    let issue = server.issues("retained").await.remove(0);
    assert_eq!(issue["count"], "3");
    let id: i64 = issue["id"]
        .as_str()
        .and_then(|i| i.parse().ok())
        .expect("id");
    let per_hash = async || -> Vec<i64> {
        let hashes = server.store.issue_hashes(id).await.expect("hashes");
        let mut n: Vec<i64> = hashes.iter().map(|h| h.events).filter(|&n| n > 0).collect();
        n.sort_unstable();
        n
    };
    assert_eq!(
        per_hash().await,
        vec![3],
        "every event under its primary hash"
    );
    assert_eq!(
        server.store.sweep_retention(cutoff).await.expect("sweep"),
        2
    );
    let issue = server.issues("retained").await.remove(0);
    assert_eq!(issue["count"], "1");
    assert_eq!(per_hash().await, vec![1]);
    let hourly: i64 = issue["stats"]["24h"]
        .as_array()
        .expect("stats")
        .iter()
        .map(|p| p[1].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(hourly, 1);
    let (_, events) = server
        .api(&format!(
            "/api/0/issues/{}/events/",
            issue["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(events.as_array().map(Vec::len), Some(1));
    // Everything older than now: the issue goes with its last event.
    let later = cutoff + 3600.0;
    assert_eq!(server.store.sweep_retention(later).await.expect("sweep"), 1);
    assert!(server.issues("retained").await.is_empty());
    let counts = server.store.counts(None).await.expect("counts");
    assert_eq!((counts.events, counts.issues), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_whole_days_on_postgres() {
    let server = TestServer::start().await;
    if server.database.is_none() {
        return; // SQLite tables are not partitioned
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let today = (now / 86400.0).floor() as i64;
    for table in ["events", "transactions", "spans", "logs"] {
        let days = server
            .store
            .partition_days(table)
            .await
            .expect("partitions");
        assert_eq!(days, (today - 1..=today + 3).collect::<Vec<_>>(), "{table}");
    }
    for n in 0..2 {
        let body = format!(
            "{{}}\n{{\"type\":\"event\"}}\n{}\n",
            json!({"message": "partitioned", "tags": {"n": n.to_string()}})
        );
        assert_eq!(server.send_envelope(body.into_bytes()).await.0, 200);
    }
    server.processed().await;
    assert_eq!(server.issues("partitioned").await[0]["count"], "2");
    // Everything up to the end of today: yesterday's and today's partitions go whole.
    let end_of_today = ((today + 1) * 86400) as f64;
    assert_eq!(
        server
            .store
            .sweep_retention(end_of_today)
            .await
            .expect("sweep"),
        2
    );
    let days = server
        .store
        .partition_days("events")
        .await
        .expect("partitions");
    assert_eq!(days, (today + 1..=today + 3).collect::<Vec<_>>());
    assert!(server.issues("partitioned").await.is_empty());
    // Today's events now land in the default partition, and later sweeps leave them be.
    let body = b"{}\n{\"type\":\"event\"}\n{\"message\":\"partitioned\"}\n".to_vec();
    assert_eq!(server.send_envelope(body).await.0, 200);
    server.processed().await;
    assert_eq!(server.store.sweep_retention(0.0).await.expect("sweep"), 0);
    assert_eq!(server.issues("partitioned").await[0]["count"], "1");
    assert_eq!(server.store.counts(None).await.expect("counts").events, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingestion_stops_before_the_disk_fills() {
    let mut config = Config::default();
    // A floor no disk can satisfy.
    config.ingest.min_free_disk_mb = u64::MAX >> 21;
    let server = TestServer::start_with(config).await;
    if server.database.is_some() {
        // The spool lives in PostgreSQL, on the database server's disk, not in the data
        // directory this floor guards.
        return;
    }
    let mut last = (0, Value::Null);
    for _ in 0..100 {
        last = server
            .send_envelope(b"{}\n{\"type\":\"event\"}\n{\"message\":\"x\"}\n".to_vec())
            .await;
        if last.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last.0, 503, "{}", last.1);
    assert!(
        last.1["detail"]
            .as_str()
            .is_some_and(|d| d.contains("disk"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_after_spooling_leaves_the_backlog_exact() {
    let server = TestServer::start().await;
    let entry = bugbane_store::SpoolEntry {
        project_id: FIXTURE_PROJECT,
        // Received now: an event from 1970 would be the retention sweep's to delete.
        received: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs_f64(),
        client_ip: None,
        sdk_client: None,
        encoding: None,
        body: b"{}\n{\"type\":\"event\"}\n{\"message\":\"orphaned\"}\n".to_vec(),
    };
    // The spool request is queued on first poll; the caller then gives up waiting, as a
    // handler does when its client disconnects. The writer thread may be quick enough to
    // answer within that first poll; then the client did not hang up, so try again.
    let mut hung_up = false;
    for _ in 0..100 {
        let spool = server.store.spool(entry.clone());
        tokio::select! {
            biased;
            _ = spool => {}
            _ = std::future::ready(()) => {
                hung_up = true;
                break;
            }
        }
    }
    assert!(hung_up, "a client gave up before its commit was answered");
    let mut found = Vec::new();
    for _ in 0..1200 {
        found = server.issues("orphaned").await;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(found.len(), 1, "the committed envelope was processed");
    server.processed().await;
    if server.database.is_some() {
        // The admission count follows the shared spool within its refresh interval.
        bugbane_test_support::eventually(5, "the backlog count to settle", || {
            server.app.backlog() == 0
        })
        .await;
    }
    assert_eq!(server.app.backlog(), 0);
}
