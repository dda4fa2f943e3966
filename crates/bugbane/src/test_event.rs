//! `send-test-event`: a realistic error event, like `sentry-cli send-event`.

use anyhow::{Context, Result, bail};
use bugbane_protocol::{Dsn, EnvelopeBuilder, EnvelopeHeader};
use serde_json::{Map, json};

pub async fn send(dsn: &str, message: &str) -> Result<()> {
    let dsn: Dsn = dsn.parse().context("invalid DSN")?;
    if dsn.scheme != "http" {
        bail!(
            "send-test-event speaks plain http; use an http:// DSN (for example through the local address)"
        );
    }
    let mut id = [0u8; 16];
    getrandom::getrandom(&mut id).context("random event id")?;
    let event_id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let event = json!({
        "event_id": event_id,
        "timestamp": now,
        "platform": "python",
        "level": "error",
        "logger": "bugbane.test",
        "environment": "production",
        "release": concat!("bugbane-test@", env!("CARGO_PKG_VERSION")),
        "server_name": "bugbane-test-host",
        "exception": {"values": [{
            "type": "BugbaneTestError",
            "value": message,
            "mechanism": {"type": "generic", "handled": true},
            "stacktrace": {"frames": [
                {"filename": "app/main.py", "abs_path": "/srv/app/main.py", "module": "app.main", "function": "main",
                 "lineno": 12, "context_line": "    run_checkout(cart)", "in_app": true,
                 "pre_context": ["def main():", "    cart = load_cart()"], "post_context": ["", "if __name__ == '__main__':"]},
                {"filename": "app/checkout.py", "abs_path": "/srv/app/checkout.py", "module": "app.checkout",
                 "function": "run_checkout", "lineno": 40, "context_line": "    raise BugbaneTestError(msg)",
                 "in_app": true, "vars": {"msg": message, "items": 3}}
            ]}
        }]},
        "breadcrumbs": {"values": [
            {"timestamp": now - 2.0, "category": "navigation", "message": "opened /checkout", "level": "info"},
            {"timestamp": now - 1.0, "type": "http", "category": "http", "level": "info",
             "data": {"method": "POST", "url": "https://payments.example.com/charge", "status_code": 502}}
        ]},
        "tags": {"bugbane.test": "yes"},
        "user": {"id": "test-user", "email": "test@example.com"},
        "contexts": {"runtime": {"name": "CPython", "version": "3.12.0"}, "os": {"name": "Linux"}},
        "sdk": {"name": "bugbane.send-test-event", "version": env!("CARGO_PKG_VERSION")}
    });
    let header = EnvelopeHeader {
        event_id: Some(event_id.clone()),
        ..Default::default()
    };
    let body = EnvelopeBuilder::new(&header)
        .item("event", Map::new(), &serde_json::to_vec(&event)?)
        .finish();
    let auth = format!(
        "Sentry sentry_key={}, sentry_version=7, sentry_client=bugbane-cli/{}",
        dsn.public_key,
        env!("CARGO_PKG_VERSION")
    );
    let res = reqwest::Client::new()
        .post(dsn.envelope_url())
        .header("x-sentry-auth", auth)
        .header("content-type", "application/x-sentry-envelope")
        .body(body)
        .send()
        .await
        .with_context(|| format!("sending to {}", dsn.envelope_url()))?;
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("the server answered {status}: {text}");
    }
    println!("sent event {event_id} ({status})");
    Ok(())
}
