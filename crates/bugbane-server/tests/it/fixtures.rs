//! Every captured SDK request replays through the real server with the expected status,
//! and what it carried is stored and, for events, visible through the API with the right
//! title, level, tags, user and grouping.

use std::collections::{BTreeMap, HashMap, HashSet};

use bugbane_protocol::{Envelope, ItemType, decode_body};
use bugbane_test_support::{FixtureRequest, TestServer, fixtures};
use serde_json::Value;

/// What the fixtures carry, counted from their decoded envelopes.
#[derive(Default, Debug)]
struct Expected {
    /// header event id → (request, event payload)
    events: BTreeMap<String, (FixtureRequest, Value)>,
    transactions: i64,
    /// span ids from span items and transactions (root and child spans).
    spans: HashSet<String>,
    sessions: HashSet<String>,
    session_aggregates: HashSet<(String, String, i64)>,
    check_ins: i64,
    feedback: i64,
    attachments: i64,
    logs: i64,
    raw: i64,
}

fn expected(requests: &[FixtureRequest]) -> Expected {
    let mut e = Expected::default();
    for r in requests.iter().filter(|r| r.method == "POST") {
        let enc = r
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-encoding"))
            .map(|(_, v)| v.as_str());
        let body = decode_body(enc, &r.body, 100 << 20)
            .expect("fixture decodes")
            .into_owned();
        let env = Envelope::parse(&body).expect("fixture parses");
        for item in &env.items {
            let json = || serde_json::from_slice::<Value>(item.payload).expect("fixture json");
            match item.ty {
                ItemType::Event => {
                    let id = env
                        .header
                        .event_id()
                        .expect("event envelopes carry an id")
                        .to_string();
                    e.events.insert(id, (r.clone(), json()));
                }
                ItemType::Transaction => {
                    e.transactions += 1;
                    let t = json();
                    if let Some(id) = t["contexts"]["trace"]["span_id"].as_str() {
                        e.spans.insert(id.to_owned());
                    }
                    for s in t["spans"].as_array().into_iter().flatten() {
                        e.spans
                            .insert(s["span_id"].as_str().expect("span id").to_owned());
                    }
                }
                ItemType::Span => {
                    for s in json()["items"].as_array().into_iter().flatten() {
                        e.spans
                            .insert(s["span_id"].as_str().expect("span id").to_owned());
                    }
                }
                ItemType::Session => {
                    e.sessions
                        .insert(json()["sid"].as_str().expect("sid").to_owned());
                }
                ItemType::Sessions => {
                    let s = json();
                    for a in s["aggregates"].as_array().into_iter().flatten() {
                        let started = bugbane_core::time_fmt::parse_timestamp(&a["started"])
                            .expect("started");
                        e.session_aggregates.insert((
                            s["attrs"]["release"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                            s["attrs"]["environment"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                            (started / 60.0) as i64,
                        ));
                    }
                }
                ItemType::CheckIn => e.check_ins += 1,
                ItemType::Feedback | ItemType::UserReport => e.feedback += 1,
                ItemType::Attachment => e.attachments += 1,
                ItemType::Log => {
                    e.logs += json()["items"].as_array().map(Vec::len).unwrap_or(0) as i64
                }
                ItemType::ClientReport => {}
                _ => e.raw += 1,
            }
        }
    }
    e
}

fn tag<'a>(event: &'a Value, key: &str) -> Option<&'a str> {
    event["tags"].as_array()?.iter().find(|t| t["key"] == key)?["value"].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_replays_and_is_stored() {
    let mut config = bugbane_server::Config::default();
    // The captures are kept for a long time; their sessions must not age out of the test.
    config.ingest.max_session_age_days = 36500;
    let server = TestServer::start_with(config).await;
    let requests = fixtures();
    assert!(requests.len() > 100, "fixtures found: {}", requests.len());
    for r in &requests {
        let (status, body) = server.replay(r).await;
        assert!(
            (200..300).contains(&status),
            "{}/{}/{}: {} {} answered {status}: {body}",
            r.sdk,
            r.case,
            r.file,
            r.method,
            r.path
        );
        if r.method == "OPTIONS" {
            continue;
        }
        let json: Value = serde_json::from_str(&body).expect("JSON response");
        assert!(json.is_object(), "{body}");
    }
    server.processed().await;

    let want = expected(&requests);
    let counts = server.store.counts(None).await.expect("counts");
    assert_eq!(counts.spool, 0);
    assert_eq!(counts.events, want.events.len() as i64, "events");
    assert_eq!(counts.transactions, want.transactions, "transactions");
    assert_eq!(counts.spans, want.spans.len() as i64, "spans");
    assert_eq!(counts.sessions, want.sessions.len() as i64, "sessions");
    assert_eq!(
        counts.session_aggregates,
        want.session_aggregates.len() as i64,
        "session aggregates"
    );
    assert_eq!(counts.check_ins, want.check_ins, "check-ins");
    assert_eq!(counts.feedback, want.feedback, "feedback and user reports");
    assert_eq!(counts.attachments, want.attachments, "attachments");
    assert_eq!(counts.logs, want.logs, "log entries");
    assert_eq!(
        counts.raw_items, want.raw,
        "profiles, replays and metrics kept raw"
    );
    assert!(want.raw > 0 && want.logs > 0 && !want.spans.is_empty() && want.feedback > 0);

    // Every event is visible through the API, with the data its SDK sent.
    let mut issue_of: HashMap<String, String> = HashMap::new();
    for (id, (r, payload)) in &want.events {
        let (status, ev) = server
            .api(&format!("/api/0/projects/default/fixtures/events/{id}/"))
            .await;
        assert_eq!(status, 200, "{}/{}: {ev}", r.sdk, r.case);
        let title = ev["title"].as_str().expect("title");
        assert!(
            !title.is_empty() && title != "<unlabeled event>",
            "{}/{}: title {title:?}",
            r.sdk,
            r.case
        );
        if let Some(exc) = payload["exception"]["values"]
            .as_array()
            .and_then(|v| v.last())
        {
            if let Some(ty) = exc["type"].as_str() {
                assert!(
                    title.starts_with(ty),
                    "{}/{}: {title:?} should start with {ty}",
                    r.sdk,
                    r.case
                );
            }
        } else if let Some(msg) = payload["message"]
            .as_str()
            .or(payload["logentry"]["formatted"].as_str())
            .or(payload["logentry"]["message"].as_str())
        {
            assert_eq!(
                title,
                msg.lines().next().unwrap_or_default(),
                "{}/{}",
                r.sdk,
                r.case
            );
        }
        let level = payload["level"].as_str().unwrap_or("error");
        assert_eq!(
            ev["level"].as_str(),
            Some(if level == "warn" { "warning" } else { level }),
            "{}/{}",
            r.sdk,
            r.case
        );
        assert_eq!(
            tag(&ev, "fixture.case"),
            Some(r.case.as_str()),
            "{}/{}: tags {}",
            r.sdk,
            r.case,
            ev["tags"]
        );
        if let Some(release) = payload["release"].as_str() {
            assert_eq!(tag(&ev, "release"), Some(release), "{}/{}", r.sdk, r.case);
        }
        if let Some(email) = payload["user"]["email"].as_str() {
            assert_eq!(
                ev["user"]["email"].as_str(),
                Some(email),
                "{}/{}",
                r.sdk,
                r.case
            );
        }
        issue_of.insert(
            format!("{}/{}/{}", r.sdk, r.case, r.file),
            ev["groupID"].as_str().expect("group").to_owned(),
        );
    }

    // Spot checks of what users look at first.
    let by_case = |sdk: &str, case: &str| {
        want.events
            .iter()
            .find(|(_, (r, _))| r.sdk.starts_with(sdk) && r.case == case)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| panic!("no event for {sdk}/{case}"))
    };
    let ev = |id: String| {
        let server = &server;
        async move {
            server
                .api(&format!("/api/0/projects/default/fixtures/events/{id}/"))
                .await
                .1
        }
    };
    let uncaught = ev(by_case("python", "uncaught_exception")).await;
    assert_eq!(uncaught["title"], "ZeroDivisionError: division by zero");
    assert_eq!(uncaught["culprit"], "__main__ in _level3");
    assert_eq!(tag(&uncaught, "handled"), Some("no"));
    assert_eq!(tag(&uncaught, "mechanism"), Some("excepthook"));
    let exception = uncaught["entries"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["type"] == "exception"))
        .expect("exception entry");
    let frames = exception["data"]["values"][0]["stacktrace"]["frames"]
        .as_array()
        .expect("frames");
    assert!(frames.iter().any(|f| f["function"] == "_level3"
        && f["inApp"] == true
        && f["context"].as_array().is_some_and(|c| !c.is_empty())));

    let scoped = ev(by_case("python", "scope_user_tags_context")).await;
    assert_eq!(scoped["user"]["id"], "user-123");
    assert_eq!(tag(&scoped, "tenant"), Some("acme"));
    assert_eq!(tag(&scoped, "user"), Some("id:user-123"));
    assert!(
        scoped["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["type"] == "breadcrumbs"
                && e["data"]["values"].as_array().is_some_and(|v| v.len() == 3))
    );
    assert_eq!(scoped["contexts"]["runtime"]["name"], "CPython");

    let express = ev(by_case("node", "express_request_error")).await;
    assert_eq!(express["culprit"], "POST /boom/:id");
    let request = express["entries"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["type"] == "request"))
        .expect("request entry");
    assert_eq!(request["data"]["method"], "POST");
    assert!(
        request["data"]["url"]
            .as_str()
            .is_some_and(|u| u.contains("/boom/7"))
    );

    let panic = ev(by_case("rust", "panic")).await;
    assert_eq!(panic["level"], "fatal");
    assert_eq!(panic["platform"], "native");

    let browser = ev(by_case("browser", "uncaught_error")).await;
    assert_eq!(
        tag(&browser, "browser.name"),
        Some("Chrome"),
        "user agent parsed: {}",
        browser["contexts"]
    );

    // The same Python error reached through the same code path is one issue, whatever the
    // local variables held.
    assert_eq!(
        issue_of.get("python-2.75.0/local_variables/01"),
        issue_of.get("python-2.75.0/local_variables_unscrubbed/01")
    );
}
