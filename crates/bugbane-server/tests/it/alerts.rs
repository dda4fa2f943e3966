//! Alerts end to end: rules made through the API fire on real ingested events and reach a
//! real SMTP server and local HTTP receivers (standing in for Slack, Discord, Teams and a
//! signed webhook); every trigger and filter; an error storm; receivers that are down.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bugbane_server::Config;
use bugbane_test_support::{Receiver, SmtpSink, TestServer, eventually};
use serde_json::{Value, json};

const RULES: &str = "/api/0/projects/default/fixtures/rules/";

fn config(smtp: Option<&SmtpSink>) -> Config {
    let mut c = Config::default();
    c.alerts.retry_initial_seconds = 0.2;
    c.alerts.retry_max_seconds = 1.0;
    c.alerts.timeout_seconds = 1.0;
    if let Some(s) = smtp {
        c.alerts.smtp_host = Some("127.0.0.1".into());
        c.alerts.smtp_port = Some(s.port);
        c.alerts.smtp_security = bugbane_notify::SmtpSecurity::None;
    }
    c
}

async fn post(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let res = server
        .http
        .post(server.url(path))
        .bearer_auth(bugbane_test_support::TOKEN)
        .json(&body)
        .send()
        .await
        .expect("api");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn rule(server: &TestServer, body: Value) -> String {
    let (status, r) = post(server, RULES, body).await;
    assert_eq!(status, 201, "{r}");
    r["id"].as_str().expect("id").to_owned()
}

/// Removes the default rule every project starts with, so a test counts only its own.
async fn drop_default_rule(server: &TestServer) {
    let (_, rules) = server.api(RULES).await;
    for r in rules.as_array().expect("rules") {
        let res = server
            .http
            .delete(server.url(&format!("{RULES}{}/", r["id"].as_str().expect("id"))))
            .bearer_auth(bugbane_test_support::TOKEN)
            .send()
            .await
            .expect("delete");
        assert_eq!(res.status(), 204);
    }
}

static SEQ: AtomicU32 = AtomicU32::new(1);

/// Sends one event (fields merged over an error in `checkout`) and waits for processing.
async fn send(server: &TestServer, fields: Value) {
    send_quietly(server, fields).await;
    server.processed().await;
}

async fn send_quietly(server: &TestServer, fields: Value) {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let mut ev = json!({
        "event_id": format!("{:032x}", 0xa1e7_0000_0000u64 + u64::from(n)),
        "platform": "python", "level": "error", "environment": "production", "release": "1.0",
        "exception": {"values": [{"type": "KeyError", "value": "cart missing in checkout",
            "stacktrace": {"frames": [{"module": "shop.views", "function": "checkout", "in_app": true}]}}]},
    });
    if let (Some(e), Some(f)) = (ev.as_object_mut(), fields.as_object()) {
        for (k, v) in f {
            e.insert(k.clone(), v.clone());
        }
    }
    let body = format!("{{}}\n{{\"type\":\"event\"}}\n{ev}\n").into_bytes();
    let (status, res) = server.send_envelope(body).await;
    assert_eq!(status, 200, "{res}");
}

/// Waits until no notification is waiting to be sent.
async fn delivered(server: &TestServer) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let pending = server
            .store
            .notification_count("pending".into())
            .await
            .expect("count");
        if pending == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{pending} notifications still pending"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_channel_receives_the_alert() {
    let smtp = SmtpSink::start().await;
    let server = TestServer::start_with(config(Some(&smtp))).await;
    let hooks = Receiver::start().await;
    drop_default_rule(&server).await;
    let id = rule(
        &server,
        json!({"name": "Everything new", "triggers": [{"type": "new_issue"}], "actions": [
            {"type": "email", "target": "dev@example.com, ops@example.com"},
            {"type": "slack", "target": hooks.url("/slack")},
            {"type": "discord", "target": hooks.url("/discord")},
            {"type": "teams", "target": hooks.url("/teams")},
            {"type": "webhook", "target": hooks.url("/hook"), "secret": "s3cret"},
        ]}),
    )
    .await;
    send(&server, json!({"tags": {"region": "eu"}})).await;
    delivered(&server).await;
    let issue = server.issues("").await.remove(0);
    let issue_id = issue["id"].as_str().expect("id");
    let link = server.url(&format!("/issues/{issue_id}/"));
    let title = "KeyError: cart missing in checkout";

    let mail = smtp.messages();
    assert_eq!(mail.len(), 1, "one message to both recipients");
    let m = &mail[0];
    assert!(
        m.contains("Subject: [Bugbane] New issue: FIXTURES-1"),
        "{m}"
    );
    assert!(m.contains(title));
    assert!(m.contains("dev@example.com") && m.contains("ops@example.com"));
    assert!(m.contains(&link), "the email links to the issue");
    assert!(m.contains("text/html") && m.contains("text/plain"));

    let slack = hooks.at("/slack");
    assert_eq!(slack.len(), 1);
    let s = slack[0].json();
    assert!(
        s["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains(title)
    );
    assert_eq!(s["blocks"][2]["elements"][0]["url"], link);
    let d = hooks.at("/discord")[0].json();
    assert_eq!(d["embeds"][0]["url"], link);
    assert!(
        d["embeds"][0]["title"]
            .as_str()
            .unwrap_or_default()
            .contains(title)
    );
    let t = hooks.at("/teams")[0].json();
    assert_eq!(t["attachments"][0]["content"]["actions"][0]["url"], link);
    let hook = &hooks.at("/hook")[0];
    let w = hook.json();
    assert_eq!(w["issue"]["title"], title);
    assert_eq!(w["url"], link);
    assert_eq!(w["reason"], "New issue");
    // The receiver verifies the signature with the shared secret.
    let sig = hook
        .headers
        .get("x-bugbane-signature")
        .and_then(|v| v.to_str().ok())
        .expect("signature header");
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").expect("key");
    mac.update(&hook.body);
    assert_eq!(
        sig,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );

    // The delivery log says what went where.
    let (_, log) = server.api(&format!("{RULES}{id}/deliveries/")).await;
    let log = log.as_array().expect("log").clone();
    assert_eq!(log.len(), 5);
    assert!(
        log.iter()
            .all(|d| d["status"] == "sent" && d["attempts"] == 1),
        "{log:?}"
    );

    // A test send reaches every action too.
    let (status, _) = post(&server, &format!("{RULES}{id}/test/"), json!({})).await;
    assert_eq!(status, 202);
    delivered(&server).await;
    assert_eq!(hooks.at("/slack").len(), 2);
    assert_eq!(hooks.at("/hook")[1].json()["reason"], "Test notification");
    assert_eq!(smtp.messages().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_trigger_and_filter() {
    let server = TestServer::start_with(config(None)).await;
    let hooks = Receiver::start().await;
    drop_default_rule(&server).await;
    for (path, triggers, filters) in [
        ("/regression", json!([{"type": "regression"}]), json!({})),
        (
            "/frequency",
            json!([{"type": "frequency", "count": 2, "minutes": 1}]),
            json!({}),
        ),
        (
            "/users",
            json!([{"type": "users", "count": 1, "minutes": 60}]),
            json!({}),
        ),
        ("/unignored", json!([{"type": "unignored"}]), json!({})),
        (
            "/level",
            json!([{"type": "new_issue"}]),
            json!({"level": "error"}),
        ),
        (
            "/env",
            json!([{"type": "new_issue"}]),
            json!({"environment": "staging"}),
        ),
        (
            "/tag",
            json!([{"type": "new_issue"}]),
            json!({"tags": [["region", "eu"]]}),
        ),
        (
            "/message",
            json!([{"type": "new_issue"}]),
            json!({"message": "CHECKOUT"}),
        ),
        (
            "/release",
            json!([{"type": "new_issue"}]),
            json!({"release": "9.9"}),
        ),
    ] {
        rule(
            &server,
            json!({"name": path, "triggers": triggers, "filters": filters,
                   "actions": [{"type": "webhook", "target": hooks.url(path)}]}),
        )
        .await;
    }
    // A new error issue, in production, tagged region=eu, from user 1.
    send(
        &server,
        json!({"tags": {"region": "eu"}, "user": {"id": "u1"}}),
    )
    .await;
    // A new warning issue in staging, with another message.
    send(
        &server,
        json!({"level": "warning", "environment": "staging", "exception": null, "message": "Disk almost full"}),
    )
    .await;
    // The error again, from a second user: two users within the hour.
    send(&server, json!({"user": {"id": "u2"}})).await;
    // A third time: three events within a minute.
    send(&server, json!({"user": {"id": "u2"}})).await;
    let issue = server
        .issues("")
        .await
        .into_iter()
        .find(|i| i["title"] == "KeyError: cart missing in checkout")
        .expect("issue");
    let id = issue["id"].as_str().expect("id").to_owned();
    // Resolved, then seen again: a regression.
    server
        .api_put(
            &format!("/api/0/issues/{id}/"),
            json!({"status": "resolved"}),
        )
        .await;
    send(&server, json!({})).await;
    // Ignored until one more event, which then brings it back.
    server
        .api_put(
            &format!("/api/0/issues/{id}/"),
            json!({"status": "ignored", "statusDetails": {"ignoreCount": 1}}),
        )
        .await;
    send(&server, json!({})).await;
    send(&server, json!({})).await;
    delivered(&server).await;

    let count = |p: &str| hooks.at(p).len();
    assert_eq!(count("/regression"), 1, "regression");
    assert_eq!(
        count("/frequency"),
        1,
        "more than 2 events in a minute, then rate-limited"
    );
    assert_eq!(
        count("/users"),
        1,
        "more than 1 user in an hour, then rate-limited"
    );
    assert_eq!(count("/unignored"), 1, "ignored issue came back");
    assert_eq!(count("/level"), 1, "only the error is at least error");
    assert_eq!(count("/env"), 1, "only the warning is in staging");
    assert_eq!(count("/tag"), 1, "only the error is tagged region=eu");
    assert_eq!(count("/message"), 1, "only the error mentions checkout");
    assert_eq!(count("/release"), 0, "nothing was released as 9.9");
    assert_eq!(
        hooks.at("/env")[0].json()["issue"]["title"],
        "Disk almost full"
    );
    assert!(
        hooks.at("/frequency")[0].json()["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Seen 3 times in 1 minute")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_sends_one_alert() {
    let server = TestServer::start_with(config(None)).await;
    let hooks = Receiver::start().await;
    drop_default_rule(&server).await;
    rule(
        &server,
        json!({"name": "new", "triggers": [{"type": "new_issue"}, {"type": "regression"}],
               "actions": [{"type": "webhook", "target": hooks.url("/new")}]}),
    )
    .await;
    rule(
        &server,
        json!({"name": "busy", "triggers": [{"type": "frequency", "count": 100, "minutes": 1}], "frequency": 30,
               "actions": [{"type": "slack", "target": hooks.url("/busy")},
                           {"type": "webhook", "target": hooks.url("/busy-hook")}]}),
    )
    .await;
    // 10,000 events of one new issue from seven users, 16 at a time.
    let server = Arc::new(server);
    let mut tasks = Vec::new();
    for t in 0..16 {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..625 {
                send_quietly(&server, json!({"user": {"id": format!("u{}", t % 7)}})).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("sender");
    }
    server.processed().await;
    delivered(&server).await;
    let issues = server.issues("").await;
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0]["count"], "10000");
    assert_eq!(issues[0]["userCount"], 7);
    assert_eq!(hooks.at("/new").len(), 1, "one new-issue alert");
    assert_eq!(
        hooks.at("/busy").len(),
        1,
        "one frequency alert per rate-limit period"
    );
    // Saves hold an issue's counters back until a batch ends; the rule still counts every
    // event up to the one it sees (so it fires at the 101st of a minute), and the alert
    // reports them.
    let busy = hooks.at("/busy-hook");
    let busy = busy[0].json();
    let in_window: u64 = busy["reason"]
        .as_str()
        .and_then(|r| r.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .expect("reason says how many");
    assert_eq!(in_window, 101, "{busy}");
    assert!(
        busy["issue"]["times_seen"].as_u64() >= Some(in_window),
        "{busy}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_that_are_down_get_retries() {
    let server = TestServer::start_with(config(None)).await;
    let hooks = Receiver::start().await;
    drop_default_rule(&server).await;
    // A port with nothing listening yet.
    let down_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let id = rule(
        &server,
        json!({"name": "flaky", "triggers": [{"type": "new_issue"}], "actions": [
            {"type": "webhook", "target": hooks.url("/fail/2/hook")},
            {"type": "slack", "target": hooks.url("/slow/3000/slack")},
            {"type": "webhook", "target": format!("http://127.0.0.1:{down_port}/hook")},
        ]}),
    )
    .await;
    send(&server, json!({})).await;
    // Two 500s, then accepted.
    eventually(30, "the failing receiver to accept", || {
        hooks.at("/fail/2/hook").len() == 3
    })
    .await;
    // A timeout, then accepted.
    eventually(30, "the slow receiver to be retried", || {
        hooks.at("/slow/3000/slack").len() == 2
    })
    .await;
    // Connection refused, over and over, until the receiver comes up.
    let log = async || {
        let (_, log) = server.api(&format!("{RULES}{id}/deliveries/")).await;
        log.as_array().cloned().unwrap_or_default()
    };
    let mut tries = 0;
    for _ in 0..200 {
        let l = log().await;
        let refused = l.iter().find(|d| {
            d["target"]
                .as_str()
                .unwrap_or_default()
                .contains(&down_port.to_string())
        });
        if let Some(d) = refused {
            tries = d["attempts"].as_i64().unwrap_or(0);
            if tries >= 3 {
                assert_eq!(d["status"], "pending");
                assert!(
                    d["lastError"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("connection failed"),
                    "{d}"
                );
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(tries >= 3, "retried with backoff");
    let back = Receiver::start_on(down_port).await;
    eventually(30, "the recovered receiver to get the alert", || {
        back.at("/hook").len() == 1
    })
    .await;
    delivered(&server).await;
    let l = log().await;
    assert!(l.iter().all(|d| d["status"] == "sent"), "{l:?}");
    assert_eq!(back.at("/hook").len(), 1, "delivered once");
    let failing = l
        .iter()
        .find(|d| {
            d["target"]
                .as_str()
                .unwrap_or_default()
                .contains("/fail/2/")
        })
        .expect("failing receiver");
    assert_eq!(failing["attempts"], 3);
    assert!(
        failing["lastError"]
            .as_str()
            .unwrap_or_default()
            .contains("500")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_validated_and_accept_sentry_conditions() {
    let server = TestServer::start_with(config(None)).await;
    let (_, rules) = server.api(RULES).await;
    let default = &rules[0];
    assert_eq!(
        default["triggers"],
        json!([{"type": "new_issue"}, {"type": "regression"}])
    );
    assert_eq!(
        default["actions"][0],
        json!({"type": "email", "target": "@team", "hasSecret": false})
    );
    for bad in [
        json!({"name": "x", "triggers": [], "actions": [{"type": "slack", "target": "https://h.example/"}]}),
        json!({"name": "x", "triggers": [{"type": "new_issue"}], "actions": []}),
        json!({"name": "x", "triggers": [{"type": "new_issue"}], "actions": [{"type": "slack", "target": "not a url"}]}),
        json!({"name": "x", "triggers": [{"type": "frequency", "count": 5, "minutes": 0}], "actions": [{"type": "slack", "target": "https://h.example/"}]}),
        json!({"name": "x", "triggers": [{"type": "bogus"}], "actions": [{"type": "slack", "target": "https://h.example/"}]}),
        json!({"name": "x", "conditions": [{"id": "sentry.rules.conditions.tagged_event.TaggedEventCondition"}], "actions": [{"type": "slack", "target": "https://h.example/"}]}),
    ] {
        let (status, body) = post(&server, RULES, bad.clone()).await;
        assert_eq!(status, 400, "{bad} -> {body}");
        assert!(body["detail"].is_string());
    }
    let (status, r) = post(
        &server,
        RULES,
        json!({"name": "Sentry-style", "conditions": [
            {"id": "sentry.rules.conditions.event_frequency.EventFrequencyCondition", "value": 50, "interval": "5m"},
            {"id": "sentry.rules.conditions.first_seen_event.FirstSeenEventCondition"}],
            "actions": [{"type": "webhook", "target": "https://h.example/", "secret": "k"}], "frequency": 60}),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(
        r["triggers"][0],
        json!({"type": "frequency", "count": 50, "minutes": 5})
    );
    assert_eq!(r["actions"][0]["hasSecret"], true);
    assert_eq!(r["frequency"], 60);
    let id = r["id"].as_str().expect("id");
    let (status, r) = server
        .api_put(
            &format!("{RULES}{id}/"),
            json!({"status": "disabled", "name": "renamed"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(r["status"], "disabled");
    assert_eq!(r["name"], "renamed");
    assert_eq!(
        r["actions"][0]["hasSecret"], true,
        "an update keeps the secret"
    );
    assert_eq!(server.api(&format!("{RULES}999/")).await.0, 404);
    let res = server
        .http
        .get(server.url(RULES))
        .send()
        .await
        .expect("anon");
    assert_eq!(res.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_in_the_dashboard() {
    use bugbane_test_support::{ADMIN_EMAIL, ADMIN_PASSWORD, WebClient};
    let server = TestServer::start_with(config(None)).await;
    let hooks = Receiver::start().await;
    let mut c = WebClient::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = c.get("/projects/default/fixtures/alerts/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.text().contains("New issues and regressions"),
        "the default rule is listed"
    );
    assert!(page.text().contains("email @team"));
    let actions = format!(
        "slack {}\nwebhook {} topsecret",
        hooks.url("/slack"),
        hooks.url("/hook")
    );
    let p = c
        .submit(
            "/projects/default/fixtures/alerts/",
            &[
                ("op", "create"),
                ("name", "Checkout <errors>"),
                ("new_issue", "on"),
                ("frequency", "on"),
                ("frequency_count", "50"),
                ("frequency_minutes", "5"),
                ("level", "error"),
                ("tags", "region=eu"),
                ("actions", &actions),
                ("rate_limit", "15"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let (_, rules) = server.api(RULES).await;
    let created = rules
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == "Checkout <errors>"))
        .expect("created")
        .clone();
    assert_eq!(
        created["triggers"],
        json!([{"type": "new_issue"}, {"type": "frequency", "count": 50, "minutes": 5}])
    );
    assert_eq!(created["filters"]["tags"], json!([["region", "eu"]]));
    assert_eq!(created["actions"][1]["hasSecret"], true);
    assert_eq!(created["frequency"], 15);
    let id = created["id"].as_str().expect("id").to_owned();

    // Editing without restating the secret keeps it; the name is escaped on the page.
    c.get("/projects/default/fixtures/alerts/").await;
    let actions = format!(
        "slack {}\nwebhook {}",
        hooks.url("/slack"),
        hooks.url("/hook")
    );
    let p = c
        .submit(
            "/projects/default/fixtures/alerts/",
            &[
                ("op", "save"),
                ("rule", &id),
                ("name", "Checkout <errors>"),
                ("new_issue", "on"),
                ("actions", &actions),
            ],
        )
        .await;
    assert_eq!(p.status, 303);
    let (_, r) = server.api(&format!("{RULES}{id}/")).await;
    assert_eq!(r["actions"][1]["hasSecret"], true);
    assert_eq!(r["filters"]["tags"], json!([]));

    // A test send from the page arrives, signed, and shows in the delivery log.
    c.get("/projects/default/fixtures/alerts/").await;
    let p = c
        .submit(
            "/projects/default/fixtures/alerts/",
            &[("op", "test"), ("rule", &id)],
        )
        .await;
    assert_eq!(p.status, 303);
    delivered(&server).await;
    assert_eq!(hooks.at("/slack").len(), 1);
    assert!(
        hooks.at("/hook")[0]
            .headers
            .contains_key("x-bugbane-signature")
    );
    let page = c.get("/projects/default/fixtures/alerts/").await;
    assert!(page.text().contains("Test notification"));
    assert!(page.body.contains("delivery-sent"));
    assert!(
        !page.body.contains("Checkout <errors>"),
        "rule names are escaped"
    );
    assert!(
        !page.text().contains("topsecret"),
        "secrets are never shown"
    );

    // Without the CSRF token nothing changes; disable and delete work.
    let p = c
        .post(
            "/projects/default/fixtures/alerts/",
            &[("op", "delete"), ("rule", &id)],
        )
        .await;
    assert_eq!(p.status, 403);
    c.submit(
        "/projects/default/fixtures/alerts/",
        &[("op", "disable"), ("rule", &id)],
    )
    .await;
    assert_eq!(
        server.api(&format!("{RULES}{id}/")).await.1["status"],
        "disabled"
    );
    c.submit(
        "/projects/default/fixtures/alerts/",
        &[("op", "delete"), ("rule", &id)],
    )
    .await;
    assert_eq!(server.api(&format!("{RULES}{id}/")).await.0, 404);
    // Bad definitions are explained, not stored.
    let p = c
        .submit(
            "/projects/default/fixtures/alerts/",
            &[
                ("op", "create"),
                ("name", "x"),
                ("new_issue", "on"),
                ("actions", "pager 555-1234"),
            ],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.text().contains("does not start with email"));
}
