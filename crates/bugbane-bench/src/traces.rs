//! The performance and release-health views on a large store: sends transactions with
//! 20 spans each (and a session per transaction, across releases), then times the pages
//! that aggregate them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Result;
use bugbane_test_support::WebClient;
use serde_json::json;

use crate::percentile;

/// Transaction names, with long-tail popularity by index.
const NAMES: usize = 40;
/// Spans per transaction, the segment included.
const SPANS: usize = 20;

fn envelope(n: usize, now: f64) -> Vec<u8> {
    let name = format!("/api/v1/resource_{}", (n * 7919) % NAMES);
    let trace = format!("{:032x}", 0x7ace_0000_0000_0000u64 as u128 + n as u128);
    let root = format!("{:016x}", 0x5000_0000_0000u64 + n as u64);
    let start = now - 60.0 - (n % 3600) as f64;
    let duration = 0.02 + ((n * 31) % 500) as f64 / 1000.0;
    let spans: Vec<_> = (1..SPANS)
        .map(|k| {
            let s = start + duration * k as f64 / (SPANS as f64 + 1.0);
            json!({"trace_id": trace, "span_id": format!("{:016x}", 0x6000_0000_0000u64 + (n * SPANS + k) as u64),
                   "parent_span_id": root, "op": if k % 3 == 0 { "db.query" } else { "http.client" },
                   "description": format!("step {k} of {name}"), "start_timestamp": s, "timestamp": s + duration / 30.0, "status": "ok"})
        })
        .collect();
    let release = format!("app@1.{}", n % 5);
    let tx = json!({
        "type": "transaction", "event_id": format!("{:032x}", 0xbe7c_0000_0000u64 as u128 + n as u128),
        "transaction": name, "platform": "python", "release": release, "environment": "production",
        "start_timestamp": start, "timestamp": start + duration,
        "contexts": {"trace": {"trace_id": trace, "span_id": root, "op": "http.server",
                               "status": if n.is_multiple_of(17) { "internal_error" } else { "ok" }}},
        "spans": spans,
    });
    let status = if n.is_multiple_of(50) {
        "crashed"
    } else {
        "exited"
    };
    let session = json!({"sid": format!("{:032x}", 0x5e55_0000u64 as u128 + n as u128), "did": format!("user-{}", n % 997),
                         "init": true, "started": start, "timestamp": start + duration, "status": status, "errors": 0,
                         "attrs": {"release": release, "environment": "production"}});
    format!("{{}}\n{{\"type\":\"transaction\"}}\n{tx}\n{{\"type\":\"session\"}}\n{session}\n")
        .into_bytes()
}

/// Sends `count` transactions over `connections` connections.
pub async fn send(url: String, auth: String, count: usize, connections: usize) -> Result<()> {
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs_f64();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (http, next, url, auth) = (http.clone(), next.clone(), url.clone(), auth.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return;
                }
                // A full backlog answers 429; wait and retry, as SDKs do.
                while let Ok(res) = http
                    .post(&url)
                    .header("x-sentry-auth", &auth)
                    .body(envelope(n, now))
                    .send()
                    .await
                {
                    if res.status().is_success() {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    Ok(())
}

/// Times each page `n` times; returns (path, p50 ms, p95 ms).
pub async fn time_pages(mut c: WebClient, n: usize) -> Vec<(String, f64, f64)> {
    let trace = format!("{:032x}", 0x7ace_0000_0000_0000u64 as u128);
    let pages = [
        "/projects/default/default/performance/?period=24h".to_owned(),
        "/projects/default/default/performance/summary?transaction=%2Fapi%2Fv1%2Fresource_0&period=24h".into(),
        "/projects/default/default/releases/".into(),
        "/projects/default/default/releases/show?version=app%401.0".into(),
        format!("/traces/{trace}/"),
    ];
    let mut out = Vec::new();
    for path in pages {
        let mut us = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let p = c.get(&path).await;
            if p.status == 200 {
                us.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            }
        }
        us.sort_unstable();
        out.push((path, percentile(&us, 0.5), percentile(&us, 0.95)));
    }
    out
}
