//! Performance end to end: transactions and span-first segments in, the figures a test
//! computes from what it sent out (through the API and the dashboard), and a trace that
//! links its spans and its errors both ways.

use bugbane_test_support::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer, WebClient};
use serde_json::{Value, json};

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Linear interpolation between closest ranks, computed independently of the server.
fn expected_percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = p * (v.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (rank - lo as f64)
}

async fn send(server: &TestServer, item_type: &str, payload: Value) {
    let body = format!("{{}}\n{{\"type\":\"{item_type}\"}}\n{payload}\n").into_bytes();
    let (status, res) = server.send_envelope(body).await;
    assert_eq!(status, 200, "{res}");
}

fn transaction(
    n: u32,
    name: &str,
    duration_ms: f64,
    status: &str,
    trace_id: &str,
    t0: f64,
) -> Value {
    let span_id = format!("{:016x}", 0xa000 + u64::from(n));
    json!({
        "type": "transaction", "event_id": format!("{:032x}", 0x7a00_0000u64 + u64::from(n)),
        "transaction": name, "platform": "python", "release": "shop@2.0", "environment": "production",
        "start_timestamp": t0, "timestamp": t0 + duration_ms / 1000.0,
        "contexts": {"trace": {"trace_id": trace_id, "span_id": span_id, "op": "http.server", "status": status}},
        "spans": [
            {"trace_id": trace_id, "span_id": format!("{:016x}", 0xb000 + u64::from(n)), "parent_span_id": span_id,
             "op": "db.query", "description": "SELECT * FROM carts", "start_timestamp": t0 + 0.001,
             "timestamp": t0 + duration_ms / 2000.0, "status": "ok"},
            {"trace_id": trace_id, "span_id": format!("{:016x}", 0xc000 + u64::from(n)), "parent_span_id": format!("{:016x}", 0xb000 + u64::from(n)),
             "op": "db.fetch", "description": "fetch rows", "start_timestamp": t0 + 0.002,
             "timestamp": t0 + 0.003, "status": "ok"}
        ],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_figures_match_what_was_sent() {
    let server = TestServer::start().await;
    let t0 = now() - 600.0;
    let mut durations = Vec::new();
    let mut failures = 0;
    for n in 0..40u32 {
        // Uneven durations, every fifth one failing.
        let d = f64::from((n * 37) % 101 + 5) * 3.0;
        let status = if n % 5 == 0 { "internal_error" } else { "ok" };
        if n % 5 == 0 {
            failures += 1;
        }
        durations.push(d);
        let trace = format!("{:032x}", 0x5eed_0000u64 + u64::from(n));
        send(
            &server,
            "transaction",
            transaction(n, "/checkout", d, status, &trace, t0 + f64::from(n)),
        )
        .await;
    }
    send(
        &server,
        "transaction",
        transaction(99, "/health", 2.0, "ok", &"9".repeat(32), t0),
    )
    .await;
    server.processed().await;

    let (status, list) = server
        .api("/api/0/projects/default/fixtures/transactions/?statsPeriod=24h")
        .await;
    assert_eq!(status, 200, "{list}");
    let checkout = list
        .as_array()
        .and_then(|l| l.iter().find(|t| t["name"] == "/checkout"))
        .expect("checkout")
        .clone();
    assert_eq!(checkout["count"], 40);
    assert_eq!(checkout["op"], "http.server");
    let close = |got: &Value, want: f64| (got.as_f64().unwrap_or(f64::NAN) - want).abs() < 0.01;
    for (k, p) in [("p50", 0.5), ("p75", 0.75), ("p95", 0.95), ("p99", 0.99)] {
        let want = expected_percentile(&durations, p);
        assert!(close(&checkout[k], want), "{k}: {} vs {want}", checkout[k]);
    }
    assert!(close(&checkout["failure_rate"], f64::from(failures) / 40.0));
    let satisfied = durations.iter().filter(|d| **d <= 300.0).count() as f64;
    let tolerating = durations
        .iter()
        .filter(|d| **d > 300.0 && **d <= 1200.0)
        .count() as f64;
    assert!(close(
        &checkout["apdex"],
        (satisfied + tolerating / 2.0) / 40.0
    ));
    assert!(close(&checkout["throughput"], 40.0 / 1440.0));

    let (_, detail) = server
        .api("/api/0/projects/default/fixtures/transaction-summary/?transaction=%2Fcheckout&statsPeriod=24h")
        .await;
    let hist: u64 = detail["histogram"]
        .as_array()
        .expect("histogram")
        .iter()
        .filter_map(|b| b["count"].as_u64())
        .sum();
    assert_eq!(hist, 40);
    let slowest = detail["slowest"].as_array().expect("slowest");
    let max = durations.iter().copied().fold(0.0, f64::max);
    assert!(close(&slowest[0]["duration"], max));

    // A short period leaves the old runs out.
    let (_, recent) = server
        .api("/api/0/projects/default/fixtures/transactions/?statsPeriod=1m")
        .await;
    assert_eq!(recent, json!([]));

    // The dashboard shows the same figures.
    let mut c = WebClient::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = c.get("/projects/default/fixtures/performance/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.text().contains("/checkout") && page.text().contains("/health"));
    let page = c
        .get("/projects/default/fixtures/performance/summary?transaction=%2Fcheckout&period=24h")
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let p95 = expected_percentile(&durations, 0.95);
    assert!(
        page.text().contains(&format!("{p95:.0} ms")),
        "p95 {p95} on the page"
    );
    for sort in ["p95", "apdex", "failure_rate", "throughput"] {
        let p = c
            .get(&format!(
                "/projects/default/fixtures/performance/?sort={sort}&period=7d"
            ))
            .await;
        assert_eq!(p.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_links_spans_and_errors() {
    let server = TestServer::start().await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let t0 = now() - 30.0;
    send(
        &server,
        "transaction",
        transaction(1, "/pay", 120.0, "ok", trace, t0),
    )
    .await;
    // A span-first SDK's segment in the same trace (another service), with Web Vitals.
    send(
        &server,
        "span",
        json!({"items": [{"trace_id": trace, "span_id": "eeeeeeeeeeeeeeee", "parent_span_id": format!("{:016x}", 0xa001),
            "name": "/pay/confirm", "status": "ok", "is_segment": true,
            "start_timestamp": t0 + 0.01, "end_timestamp": t0 + 0.05,
            "attributes": {"sentry.op": {"type": "string", "value": "pageload"},
                           "browser.web_vital.lcp.value": {"type": "double", "value": 1234.5},
                           "browser.web_vital.cls.value": {"type": "double", "value": 0.02}}}]}),
    )
    .await;
    // An error during the transaction.
    send(
        &server,
        "event",
        json!({"event_id": "f".repeat(32), "level": "error", "message": "card declined",
               "contexts": {"trace": {"trace_id": trace, "span_id": format!("{:016x}", 0xb001)}}}),
    )
    .await;
    server.processed().await;

    let (status, t) = server
        .api(&format!(
            "/api/0/organizations/default/events-trace/{trace}/"
        ))
        .await;
    assert_eq!(status, 200, "{t}");
    let names: Vec<(&str, u64)> = t["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default(),
                s["depth"].as_u64().unwrap_or(99),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("/pay", 0),
            ("SELECT * FROM carts", 1),
            ("fetch rows", 2),
            ("/pay/confirm", 1)
        ]
    );
    assert_eq!(t["errors"][0]["title"], "card declined");
    let issue_id = t["errors"][0]["issueId"]
        .as_str()
        .expect("issue")
        .to_owned();

    let (_, vitals) = server
        .api("/api/0/projects/default/fixtures/web-vitals/")
        .await;
    assert_eq!(vitals[0]["page"], "/pay/confirm");
    assert_eq!(vitals[0]["lcp"], 1234.5);
    assert_eq!(vitals[0]["cls"], 0.02);

    // Both ways in the dashboard: the error's page links to its trace, the trace to it.
    let mut c = WebClient::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let issue = c.get(&format!("/issues/{issue_id}/")).await;
    assert!(issue.text().contains(&format!("/traces/{trace}/")));
    let page = c.get(&format!("/traces/{trace}/")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let text = page.text();
    assert!(text.contains("card declined") && text.contains(&format!("/issues/{issue_id}/")));
    assert!(text.contains("SELECT * FROM carts"));
    let perf = c.get("/projects/default/fixtures/performance/").await;
    assert!(perf.text().contains("Web Vitals") && perf.text().contains("1.23 s"));

    // Unknown or malformed traces are a 404.
    assert_eq!(
        c.get(&format!("/traces/{}/", "0".repeat(32))).await.status,
        404
    );
    assert_eq!(c.get("/traces/not-a-trace/").await.status, 404);
    assert_eq!(
        server
            .api(&format!(
                "/api/0/organizations/default/events-trace/{}/",
                "0".repeat(32)
            ))
            .await
            .0,
        404
    );
    // Anonymous callers are refused.
    assert_eq!(
        WebClient::anonymous(&server)
            .get(&format!("/traces/{trace}/"))
            .await
            .status,
        303
    );
}
