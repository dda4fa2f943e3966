//! Bad input gets a precise 4xx with a JSON `detail`, the server stays up, and nothing
//! half-written is stored.

use std::io::Write;

use bugbane_server::Config;
use bugbane_test_support::{FIXTURE_KEY, FIXTURE_PROJECT, TestServer};
use serde_json::Value;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

const EVENT: &str = r#"{"message":"hello","level":"error"}"#;

fn envelope(items: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n".to_vec();
    for (ty, payload) in items {
        b.extend_from_slice(
            format!("{{\"type\":\"{ty}\",\"length\":{}}}\n", payload.len()).as_bytes(),
        );
        b.extend_from_slice(payload);
        b.push(b'\n');
    }
    b
}

struct Case {
    name: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    detail: &'static str,
}

fn auth() -> (&'static str, String) {
    (
        "x-sentry-auth",
        format!("Sentry sentry_key={FIXTURE_KEY}, sentry_version=7"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_precise_errors() {
    let mut config = Config::default();
    config.ingest.max_envelope_bytes = 4 << 20;
    let server = TestServer::start_with(config).await;
    let other = server
        .store
        .create_project(
            "default".into(),
            "other".into(),
            None,
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
            None,
        )
        .await
        .expect("project");
    server
        .store
        .create_project(
            "default".into(),
            "revoked".into(),
            None,
            "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into(),
            None,
        )
        .await
        .expect("project");
    server
        .store
        .set_key_active("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into(), false)
        .await
        .expect("revoke");
    let env_path = format!("/api/{FIXTURE_PROJECT}/envelope/");
    let big_event = format!(r#"{{"message":"{}"}}"#, "x".repeat(1_100_000));
    let mut truncated = envelope(&[("event", EVENT.as_bytes())]);
    truncated.truncate(truncated.len() - 10);
    let wrong_length = format!("{{}}\n{{\"type\":\"event\",\"length\":5}}\n{EVENT}\n").into_bytes();
    let cases = vec![
        Case { name: "truncated envelope", path: env_path.clone(), headers: vec![auth()], body: truncated, status: 400, detail: "truncated" },
        Case { name: "wrong item length", path: env_path.clone(), headers: vec![auth()], body: wrong_length, status: 400, detail: "missing newline" },
        Case { name: "invalid JSON", path: env_path.clone(), headers: vec![auth()], body: envelope(&[("event", b"{\"message\": ")]), status: 400, detail: "invalid JSON in event item" },
        Case { name: "invalid UTF-8", path: env_path.clone(), headers: vec![auth()], body: envelope(&[("event", b"{\"message\": \"\xff\xfe\"}")]), status: 400, detail: "invalid JSON in event item" },
        Case { name: "invalid envelope header", path: env_path.clone(), headers: vec![auth()], body: b"not json\n".to_vec(), status: 400, detail: "invalid envelope header" },
        Case { name: "empty body", path: env_path.clone(), headers: vec![auth()], body: Vec::new(), status: 400, detail: "empty envelope" },
        Case {
            name: "decompression bomb",
            path: env_path.clone(),
            headers: vec![auth(), ("content-encoding", "gzip".into())],
            body: gzip(&vec![b' '; 64 << 20]),
            status: 413,
            detail: "decompressed body exceeds",
        },
        Case { name: "corrupt gzip", path: env_path.clone(), headers: vec![auth(), ("content-encoding", "gzip".into())], body: b"garbage".to_vec(), status: 400, detail: "could not be decompressed" },
        Case { name: "unknown encoding", path: env_path.clone(), headers: vec![auth(), ("content-encoding", "lzma".into())], body: b"{}".to_vec(), status: 400, detail: "unsupported content encoding" },
        Case { name: "oversized item", path: env_path.clone(), headers: vec![auth()], body: envelope(&[("event", big_event.as_bytes())]), status: 413, detail: "size limits for type 'event'" },
        Case {
            name: "two events in one envelope",
            path: env_path.clone(),
            headers: vec![auth()],
            body: envelope(&[("event", EVENT.as_bytes()), ("event", EVENT.as_bytes())]),
            status: 413,
            detail: "more than one event-like item",
        },
        Case { name: "no credentials", path: env_path.clone(), headers: vec![], body: envelope(&[("event", EVENT.as_bytes())]), status: 401, detail: "missing authorization" },
        Case {
            name: "two kinds of credentials",
            path: format!("{env_path}?sentry_key={FIXTURE_KEY}"),
            headers: vec![auth()],
            body: envelope(&[("event", EVENT.as_bytes())]),
            status: 401,
            detail: "multiple authorization payloads",
        },
        Case {
            name: "unknown key",
            path: env_path.clone(),
            headers: vec![("x-sentry-auth", "Sentry sentry_key=cccccccccccccccccccccccccccccccc".into())],
            body: envelope(&[("event", EVENT.as_bytes())]),
            status: 401,
            detail: "unknown public key",
        },
        Case {
            name: "malformed key",
            path: env_path.clone(),
            headers: vec![("x-sentry-auth", "Sentry sentry_key=nope".into())],
            body: envelope(&[("event", EVENT.as_bytes())]),
            status: 401,
            detail: "bad sentry_key",
        },
        Case {
            name: "revoked key",
            path: format!("/api/{}/envelope/", other.0.id + 1),
            headers: vec![("x-sentry-auth", "Sentry sentry_key=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into())],
            body: envelope(&[("event", EVENT.as_bytes())]),
            status: 403,
            detail: "disabled",
        },
        Case {
            name: "project id mismatch",
            path: format!("/api/{}/envelope/", other.0.id),
            headers: vec![auth()],
            body: envelope(&[("event", EVENT.as_bytes())]),
            status: 400,
            detail: "does not match",
        },
        Case {
            name: "envelope dsn disagrees with the request",
            path: env_path.clone(),
            headers: vec![auth()],
            body: format!("{{\"dsn\":\"http://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@h/{}\"}}\n{{\"type\":\"event\"}}\n{EVENT}", other.0.id).into_bytes(),
            status: 400,
            detail: "does not match",
        },
        Case { name: "bad project id", path: "/api/abc/envelope/".into(), headers: vec![auth()], body: envelope(&[("event", EVENT.as_bytes())]), status: 400, detail: "invalid project id" },
        Case {
            name: "protocol version from the future",
            path: env_path.clone(),
            headers: vec![("x-sentry-auth", format!("Sentry sentry_key={FIXTURE_KEY}, sentry_version=8"))],
            body: envelope(&[("event", EVENT.as_bytes())]),
            status: 400,
            detail: "unsupported protocol version",
        },
        Case {
            name: "store body that is not JSON",
            path: format!("/api/{FIXTURE_PROJECT}/store/"),
            headers: vec![auth()],
            body: b"definitely not an event".to_vec(),
            status: 400,
            detail: "neither JSON nor base64",
        },
        Case {
            name: "security report with a wrong content type",
            path: format!("/api/{FIXTURE_PROJECT}/security/?sentry_key={FIXTURE_KEY}"),
            headers: vec![("content-type", "text/plain".into())],
            body: b"{}".to_vec(),
            status: 415,
            detail: "unsupported content type",
        },
        Case {
            name: "minidump without a minidump",
            path: format!("/api/{FIXTURE_PROJECT}/minidump/?sentry_key={FIXTURE_KEY}"),
            headers: vec![("content-type", "application/octet-stream".into())],
            body: b"not a dump".to_vec(),
            status: 400,
            detail: "no MDMP signature",
        },
    ];
    for c in &cases {
        let mut req = server.http.post(server.url(&c.path)).body(c.body.clone());
        for (k, v) in &c.headers {
            req = req.header(*k, v);
        }
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: the server must stay up: {e}", c.name));
        let status = res.status().as_u16();
        let sentry_error = res.headers().get("x-sentry-error").is_some();
        let body: Value = res
            .json()
            .await
            .unwrap_or_else(|e| panic!("{}: JSON body expected: {e}", c.name));
        let detail = body["detail"].as_str().unwrap_or_default();
        assert_eq!(status, c.status, "{}: {body}", c.name);
        assert!(
            detail.contains(c.detail),
            "{}: detail {detail:?} should mention {:?}",
            c.name,
            c.detail
        );
        assert!(sentry_error, "{}: X-Sentry-Error header", c.name);
    }
    // Nothing of the refused requests was stored; a good request still works.
    server.processed().await;
    let counts = server.store.counts(None).await.expect("counts");
    assert_eq!(
        (counts.events, counts.spool, counts.raw_items),
        (0, 0, 0),
        "{counts:?}"
    );
    let (status, body) = server
        .send_envelope(envelope(&[("event", EVENT.as_bytes())]))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], "9ec79c33ec9942ab8353589fcb2e04dc");
    server.processed().await;
    assert_eq!(server.store.counts(None).await.expect("counts").events, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_over_the_rate_limit_gets_429_with_sdk_headers() {
    let mut config = Config::default();
    config.ingest.rate_limit_per_minute = 5;
    let server = TestServer::start_with(config).await;
    let mut accepted = 0;
    let mut limited = None;
    for n in 0..20 {
        let body =
            format!("{{}}\n{{\"type\":\"event\"}}\n{{\"message\":\"flood {n}\"}}\n").into_bytes();
        let res = server
            .http
            .post(server.url(&format!(
                "/api/{FIXTURE_PROJECT}/envelope/?sentry_key={FIXTURE_KEY}"
            )))
            .body(body)
            .send()
            .await
            .expect("server up");
        match res.status().as_u16() {
            200 => accepted += 1,
            429 => limited = Some(res),
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(accepted, 5);
    let res = limited.expect("a 429");
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after));
    // `retry_after:categories:scope:reason`, empty categories = all, as SDKs parse it.
    let limits = res.headers()["x-sentry-rate-limits"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let parts: Vec<&str> = limits.split(':').collect();
    assert_eq!(parts.len(), 4, "{limits}");
    assert_eq!(parts[0].parse::<u64>().expect("seconds"), retry_after);
    assert_eq!(&parts[1..], &["", "key", "key_quota"]);
    let body: Value = res.json().await.expect("json");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("rate limit"))
    );
    server.processed().await;
    assert_eq!(server.store.counts(None).await.expect("counts").events, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_backlog_is_refused_before_anything_is_written() {
    let mut config = Config::default();
    config.ingest.max_backlog = 0;
    let server = TestServer::start_with(config).await;
    let (status, body) = server
        .send_envelope(envelope(&[("event", EVENT.as_bytes())]))
        .await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("backlog"))
    );
    // Refused before the body is decoded: a storm costs the server little more than
    // reading it.
    let (name, value) = auth();
    let res = server
        .http
        .post(server.url(&format!("/api/{FIXTURE_PROJECT}/envelope/")))
        .header(name, value)
        .header("content-encoding", "gzip")
        .body(b"not gzip at all".to_vec())
        .send()
        .await
        .expect("send");
    assert_eq!(res.status().as_u16(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(server.store.counts(None).await.expect("counts").spool, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_echoes_requested_headers() {
    let server = TestServer::start().await;
    let res = server
        .http
        .request(
            reqwest::Method::OPTIONS,
            server.url(&format!("/api/{FIXTURE_PROJECT}/envelope/")),
        )
        .header("origin", "http://app.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-fixture-header")
        .send()
        .await
        .expect("preflight");
    assert_eq!(res.status().as_u16(), 200);
    let h = res.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert!(
        h["access-control-allow-headers"]
            .to_str()
            .expect("ascii")
            .contains("x-fixture-header")
    );
    assert!(
        h["access-control-expose-headers"]
            .to_str()
            .expect("ascii")
            .contains("x-sentry-rate-limits")
    );
}
