//! The dashboard as its users meet it: signing in, every page rendered with real data,
//! triage through its forms, merge and unmerge, and its security rules (no anonymous
//! access, CSRF, organization boundaries, HTML escaping).

use bugbane_test_support::{ADMIN_EMAIL, ADMIN_PASSWORD, Page, TestServer, WebClient, fixtures};
use serde_json::{Value, json};

/// Sends one error event to the fixtures' project and waits for it to be processed.
async fn send(server: &TestServer, event: Value) {
    let id = event["event_id"].as_str().expect("event id").to_owned();
    let body = format!("{{\"event_id\":\"{id}\"}}\n{{\"type\":\"event\"}}\n{event}\n").into_bytes();
    let (status, res) = server.send_envelope(body).await;
    assert_eq!(status, 200, "{res}");
    server.processed().await;
}

fn error(n: u32, ty: &str, function: &str) -> Value {
    json!({
        "event_id": format!("{:032x}", 0xd00d0000u32 + n),
        "platform": "python", "level": "error", "release": "shop@1.0", "environment": "production",
        "user": {"id": format!("user-{n}"), "email": format!("u{n}@example.com")},
        "exception": {"values": [{"type": ty, "value": format!("failure {n}"),
            "stacktrace": {"frames": [
                {"module": "django.core", "function": "dispatch", "filename": "django/core.py", "lineno": 5, "in_app": false},
                {"module": "shop.views", "function": function, "filename": "shop/views.py", "lineno": 42,
                 "pre_context": ["def checkout(request):", "    cart = load()"], "context_line": "    charge(cart)",
                 "post_context": ["    return ok()"], "vars": {"cart": "{'items': 3}"}, "in_app": true}]}}]},
        "breadcrumbs": {"values": [{"timestamp": 1.0e9, "category": "http", "level": "info", "message": "GET /cart"}]},
        "request": {"method": "POST", "url": "https://shop.example/checkout?step=2", "headers": {"User-Agent": "curl/8"}},
        "tags": {"region": "eu-west"},
    })
}

/// The id of the only issue whose title contains `needle`.
async fn issue_id(server: &TestServer, needle: &str) -> String {
    let found: Vec<Value> = server
        .issues("")
        .await
        .into_iter()
        .filter(|i| i["title"].as_str().unwrap_or_default().contains(needle))
        .collect();
    assert_eq!(found.len(), 1, "issues titled {needle}: {found:?}");
    found[0]["id"].as_str().expect("id").to_owned()
}

fn assert_page(p: &Page, what: &str) {
    assert_eq!(p.status, 200, "{what}: {}", p.body);
    assert!(p.body.contains("</html>"), "{what}: incomplete page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_requests_are_refused_everywhere() {
    let server = TestServer::start().await;
    send(&server, error(1, "KeyError", "checkout")).await;
    let id = issue_id(&server, "KeyError").await;
    let event = format!("{:032x}", 0xd00d0001u32);
    let mut anon = WebClient::anonymous(&server);
    for path in [
        "/".to_owned(),
        "/projects/new".into(),
        "/projects/default/fixtures/".into(),
        "/projects/default/fixtures/setup/".into(),
        "/projects/default/fixtures/settings/".into(),
        "/projects/default/fixtures/alerts/".into(),
        "/projects/default/fixtures/performance/".into(),
        "/projects/default/fixtures/performance/summary?transaction=x".into(),
        "/projects/default/fixtures/feedback/".into(),
        "/projects/default/fixtures/logs/".into(),
        "/projects/default/fixtures/releases/".into(),
        "/projects/default/fixtures/releases/show?version=1".into(),
        "/projects/default/fixtures/crons/".into(),
        "/projects/default/fixtures/crons/x/".into(),
        format!("/traces/{}/", "a".repeat(32)),
        format!("/issues/{id}/"),
        format!("/issues/{id}/events/"),
        format!("/issues/{id}/events/{event}/json"),
        format!("/issues/{id}/events/{event}/attachments/1"),
        "/settings/".into(),
    ] {
        let p = anon.get(&path).await;
        assert_eq!(p.status, 303, "GET {path} answered {}", p.status);
        assert!(
            p.location
                .as_deref()
                .unwrap_or_default()
                .starts_with("/login"),
            "{path}"
        );
        assert!(!p.body.contains("KeyError"), "{path} leaked data");
    }
    for path in [
        "/projects/new".to_owned(),
        "/projects/default/fixtures/".into(),
        "/projects/default/fixtures/settings/".into(),
        "/projects/default/fixtures/alerts/".into(),
        format!("/issues/{id}/"),
        "/settings/".into(),
        "/logout".into(),
    ] {
        let p = anon
            .post(
                &path,
                &[("action", "delete"), ("id", &id), ("op", "user_create")],
            )
            .await;
        assert_eq!(p.status, 303, "POST {path}");
        assert_eq!(p.location.as_deref(), Some("/login"), "POST {path}");
    }
    // Nothing changed.
    let (status, _) = server.api(&format!("/api/0/issues/{id}/")).await;
    assert_eq!(status, 200);
    // The API refuses anonymous callers too (its own test covers every route).
    let res = server
        .http
        .get(server.url(&format!("/api/0/issues/{id}/")))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status().as_u16(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_out_and_the_rate_limit() {
    let server = TestServer::start().await;
    let mut c = WebClient::anonymous(&server);
    let p = c.try_login(ADMIN_EMAIL, "wrong password").await;
    assert_eq!(p.status, 401);
    assert!(p.body.contains("Wrong email or password"));
    // The sign-in form itself needs its CSRF cookie.
    let mut fresh = WebClient::anonymous(&server);
    let p = fresh
        .post(
            "/login",
            &[
                ("csrf", "forged"),
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
            ],
        )
        .await;
    assert_eq!(p.status, 403);
    // The next page after signing in stays on this site.
    let mut c = WebClient::anonymous(&server);
    c.get("/login?next=/settings/").await;
    let csrf = c.csrf.clone();
    let p = c
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(p.status, 303);
    assert_eq!(p.location.as_deref(), Some("/"));
    assert_page(&c.get("/").await, "projects");
    let p = c.submit("/logout", &[]).await;
    assert_eq!(p.location.as_deref(), Some("/login"));
    assert_eq!(c.get("/").await.status, 303, "the session ended");

    // Ten failures lock the email out for a while, even with the right password.
    let mut attacker = WebClient::anonymous(&server);
    for _ in 0..10 {
        assert_eq!(attacker.try_login(ADMIN_EMAIL, "guess").await.status, 401);
    }
    let p = attacker.try_login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(p.status, 429);
    assert!(p.body.contains("Too many failed sign-ins"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_with_real_sdk_data() {
    let server = TestServer::start().await;
    for r in fixtures() {
        let (status, body) = server.replay(&r).await;
        assert!(status < 300, "{} {}: {status} {body}", r.sdk, r.case);
    }
    server.processed().await;
    let mut c = WebClient::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let home = c.get("/").await;
    assert_page(&home, "projects");
    assert!(home.text().contains("/projects/default/fixtures/"));
    let issues = server.issues("").await;
    assert!(issues.len() > 3, "fixtures make several issues");
    // Every issue is on one of the list's pages.
    let mut listed = String::new();
    for offset in (0..issues.len()).step_by(25) {
        let list = c
            .get(&format!(
                "/projects/default/fixtures/?query=&cursor={offset}"
            ))
            .await;
        assert_page(&list, "issue list");
        listed.push_str(&list.text());
    }
    for issue in &issues {
        let id = issue["id"].as_str().expect("id");
        let title = issue["title"].as_str().expect("title");
        assert!(listed.contains(title), "list lacks {title}");
        let page = c.get(&format!("/issues/{id}/")).await;
        assert_page(&page, title);
        assert!(page.body.contains("Why grouped"));
        let events = c.get(&format!("/issues/{id}/events/")).await;
        assert_page(&events, "events");
        let (_, latest) = server
            .api(&format!("/api/0/issues/{id}/events/latest/"))
            .await;
        let eid = latest["eventID"].as_str().expect("event id");
        let one = c.get(&format!("/issues/{id}/?event={eid}")).await;
        assert_page(&one, "one event");
        let json = c.get(&format!("/issues/{id}/events/{eid}/json")).await;
        assert_eq!(json.status, 200);
        let parsed: Value = serde_json::from_str(&json.body).expect("event json");
        assert_eq!(parsed["event_id"], eid);
        assert_page(
            &c.get(&format!("/issues/{id}/?event=oldest")).await,
            "oldest",
        );
    }
    for path in [
        "/projects/new",
        "/projects/default/fixtures/setup/",
        "/projects/default/fixtures/settings/",
        "/projects/default/fixtures/alerts/",
        "/projects/default/fixtures/performance/",
        "/projects/default/fixtures/feedback/",
        "/projects/default/fixtures/logs/",
        "/projects/default/fixtures/releases/",
        "/projects/default/fixtures/crons/",
        "/projects/default/default/",
        "/settings/",
        "/projects/default/fixtures/?query=is:resolved",
        "/projects/default/fixtures/?sort=freq&period=24h&environment=production",
        "/projects/default/fixtures/?sort=new",
        "/projects/default/fixtures/?sort=user&cursor=25",
    ] {
        assert_page(&c.get(path).await, path);
    }
    for platform in [
        "python",
        "node",
        "javascript",
        "rust",
        "java",
        "php",
        "go",
        "dotnet",
        "ruby",
        "flutter",
    ] {
        let p = c
            .get(&format!(
                "/projects/default/fixtures/setup/?platform={platform}"
            ))
            .await;
        assert_page(&p, platform);
        assert!(
            p.text().contains(&server.dsn()),
            "{platform} snippet shows the DSN"
        );
    }
    // Unknown things are a 404 page, not a crash.
    for path in [
        "/issues/999999/",
        "/issues/abc/",
        "/projects/default/nope/",
        "/issues/1/?event=zzz",
    ] {
        let p = c.get(path).await;
        assert_eq!(p.status, 404, "{path}");
        assert!(p.body.contains("Not found"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issue_page_shows_the_event() {
    let server = TestServer::start().await;
    send(&server, error(1, "PaymentError", "checkout")).await;
    let id = issue_id(&server, "PaymentError").await;
    let mut c = WebClient::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let p = c.get(&format!("/issues/{id}/")).await;
    assert_page(&p, "issue");
    for expected in [
        "PaymentError",
        "failure 1",
        "shop/views.py",
        "in <span class=\"fn\">checkout</span>",
        "    charge(cart)",
        "GET /cart",
        "https://shop.example/checkout",
        "step",
        "eu-west",
        "u1@example.com",
        "shop@1.0",
        "production",
    ] {
        assert!(p.text().contains(expected), "issue page lacks {expected:?}");
    }
    // The crashing (in-app) frame is listed before the framework frame.
    let text = p.text();
    let app = text.find("shop/views.py").expect("app frame");
    let system = text.find("django/core.py").expect("system frame");
    assert!(app < system);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triage_through_forms_and_csrf() {
    let server = TestServer::start().await;
    send(&server, error(1, "KeyError", "checkout")).await;
    let id = issue_id(&server, "KeyError").await;
    let mut c = WebClient::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    c.get(&format!("/issues/{id}/")).await;

    // Without the token, or with another, nothing happens.
    for token in ["", "0123456789abcdef0123456789abcdef"] {
        let p = c
            .post(
                &format!("/issues/{id}/"),
                &[("csrf", token), ("action", "resolve")],
            )
            .await;
        assert_eq!(p.status, 403);
    }
    let (_, issue) = server.api(&format!("/api/0/issues/{id}/")).await;
    assert_eq!(issue["status"], "unresolved");

    let p = c
        .submit(&format!("/issues/{id}/"), &[("action", "resolve")])
        .await;
    assert_eq!(p.status, 303);
    let (_, issue) = server.api(&format!("/api/0/issues/{id}/")).await;
    assert_eq!(issue["status"], "resolved");
    let list = c.get("/projects/default/fixtures/").await;
    assert!(
        !list.body.contains("KeyError"),
        "resolved issues leave the default list"
    );

    c.submit(
        &format!("/issues/{id}/"),
        &[("action", "ignore"), ("ignore_count", "5")],
    )
    .await;
    let (_, issue) = server.api(&format!("/api/0/issues/{id}/")).await;
    assert_eq!(issue["status"], "ignored");
    assert_eq!(issue["statusDetails"]["ignoreCount"], 5);

    c.submit(&format!("/issues/{id}/"), &[("action", "unresolve")])
        .await;
    c.submit(
        &format!("/issues/{id}/"),
        &[("action", "comment"), ("text", "Looking into it")],
    )
    .await;
    c.submit(
        &format!("/issues/{id}/"),
        &[("action", "assign"), ("assignee", "1")],
    )
    .await;
    let p = c.get(&format!("/issues/{id}/")).await;
    assert!(p.text().contains("Looking into it"));
    assert!(p.text().contains(&format!("assigned it to {ADMIN_EMAIL}")));
    let list = c.get("/projects/default/fixtures/").await;
    assert!(list.text().contains(&format!("→ {ADMIN_EMAIL}")));

    // Bulk resolve from the list.
    send(&server, error(2, "ValueError", "cart")).await;
    let other = issue_id(&server, "ValueError").await;
    c.get("/projects/default/fixtures/").await;
    let p = c
        .submit(
            "/projects/default/fixtures/",
            &[("action", "resolve"), ("id", &id), ("id", &other)],
        )
        .await;
    assert_eq!(p.status, 303);
    assert!(server.issues("is:unresolved").await.is_empty());

    let p = c
        .submit(&format!("/issues/{other}/"), &[("action", "delete")])
        .await;
    assert_eq!(p.status, 303);
    assert_eq!(server.api(&format!("/api/0/issues/{other}/")).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_and_unmerge() {
    let server = TestServer::start().await;
    for n in 1..=3 {
        send(&server, error(n, "KeyError", "checkout")).await;
    }
    for n in 4..=5 {
        send(&server, error(n, "TimeoutError", "ship")).await;
    }
    let a = issue_id(&server, "KeyError").await;
    let b = issue_id(&server, "TimeoutError").await;
    let hash_count = async |id: &str| {
        let (_, hashes) = server.api(&format!("/api/0/issues/{id}/hashes/")).await;
        hashes.as_array().map_or(0, Vec::len)
    };
    let before = hash_count(&a).await + hash_count(&b).await;
    let mut c = WebClient::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    c.get("/projects/default/fixtures/").await;
    let p = c
        .submit(
            "/projects/default/fixtures/",
            &[("action", "merge"), ("id", &a), ("id", &b)],
        )
        .await;
    assert_eq!(
        p.location,
        Some(format!("/issues/{a}/")),
        "merged into the bigger issue: {} {}",
        p.status,
        p.body
    );
    let issues = server.issues("").await;
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0]["count"], "5");
    assert_eq!(issues[0]["userCount"], 5);
    assert_eq!(
        hash_count(&a).await,
        before,
        "every hash moved to the survivor"
    );
    // New events of the merged issue's hash join the survivor.
    send(&server, error(6, "TimeoutError", "ship")).await;
    assert_eq!(server.issues("").await[0]["count"], "6");

    let page = c.get(&format!("/issues/{a}/")).await;
    assert!(page.text().contains("merged 1 issue(s) into this one"));
    // Unmerge the TimeoutError hash back out.
    let (_, latest) = server
        .api(&format!("/api/0/issues/{a}/events/latest/"))
        .await;
    let eid = latest["eventID"].as_str().expect("event");
    let (_, info) = server
        .api(&format!(
            "/api/0/projects/default/fixtures/events/{eid}/grouping-info/"
        ))
        .await;
    let hash = info["primaryHash"].as_str().expect("hash").to_owned();
    // The hashes table counts each primary hash's events: three of either error.
    let events_of = |page: &str, hash: &str| {
        let row = format!("<code>{hash}</code></td><td class=\"num\">");
        page.split_once(&row)
            .and_then(|(_, rest)| rest.split_once('<'))
            .map(|(n, _)| n.to_owned())
    };
    let page = c.get(&format!("/issues/{a}/")).await;
    assert_eq!(events_of(&page.body, &hash).as_deref(), Some("3"));
    let table = page
        .body
        .split_once("<table class=\"list hashes\">")
        .and_then(|(_, t)| t.split_once("</table>"))
        .map_or("", |(t, _)| t);
    let counted: Vec<String> = table
        .split("<td class=\"num\">")
        .skip(1)
        .filter_map(|s| s.split_once('<').map(|(n, _)| n.to_owned()))
        .filter(|n| n != "0")
        .collect();
    assert_eq!(counted, ["3", "3"], "one primary hash per error");
    let p = c
        .submit(
            &format!("/issues/{a}/"),
            &[("action", "unmerge"), ("hash", &hash)],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let new_id = p
        .location
        .as_deref()
        .and_then(|l| l.strip_prefix("/issues/"))
        .and_then(|l| l.strip_suffix('/'))
        .expect("new issue")
        .to_owned();
    let (_, split) = server.api(&format!("/api/0/issues/{new_id}/")).await;
    assert_eq!(split["count"], "3");
    let page = c.get(&format!("/issues/{new_id}/")).await;
    assert_eq!(events_of(&page.body, &hash).as_deref(), Some("3"));
    assert_eq!(split["userCount"], 3);
    let (_, rest) = server.api(&format!("/api/0/issues/{a}/")).await;
    assert_eq!(rest["count"], "3");
    let (_, tags) = server.api(&format!("/api/0/issues/{new_id}/tags/")).await;
    let region = tags
        .as_array()
        .and_then(|t| t.iter().find(|t| t["key"] == "region"))
        .expect("region tag");
    assert_eq!(region["totalValues"], 3);
    // And the next event of that hash goes to the split-out issue.
    send(&server, error(7, "TimeoutError", "ship")).await;
    let (_, split) = server.api(&format!("/api/0/issues/{new_id}/")).await;
    assert_eq!(split["count"], "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_see_only_their_organizations() {
    let server = TestServer::start().await;
    let hash = bugbane_server::secrets::hash_password("member-password-1").expect("hash");
    server
        .store
        .create_user("member@example.com".into(), hash, false)
        .await
        .expect("member");
    // An organization created after the member joined is not theirs.
    server.store.create_org("other".into()).await.expect("org");
    server
        .store
        .create_project(
            "other".into(),
            "secret".into(),
            None,
            "aa".repeat(16),
            Some(77),
        )
        .await
        .expect("project");
    let body = format!(
        "{{}}\n{{\"type\":\"event\"}}\n{}\n",
        json!({"event_id": "e".repeat(32), "message": "other org secret", "level": "error"})
    );
    let res = server
        .http
        .post(server.url(&format!("/api/77/envelope/?sentry_key={}", "aa".repeat(16))))
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200);
    server.processed().await;
    let (_, issues) = server.api("/api/0/projects/other/secret/issues/").await;
    let secret_id = issues[0]["id"].as_str().expect("issue").to_owned();

    let mut m = WebClient::login(&server, "member@example.com", "member-password-1").await;
    let home = m.get("/").await;
    assert_page(&home, "projects");
    assert!(home.text().contains("/projects/default/fixtures/"));
    assert!(!home.body.contains("secret"));
    for path in [
        "/projects/other/secret/".to_owned(),
        "/projects/other/secret/setup/".into(),
        format!("/issues/{secret_id}/"),
        format!("/issues/{secret_id}/events/"),
    ] {
        let p = m.get(&path).await;
        assert_eq!(p.status, 404, "{path}");
        assert!(!p.body.contains("other org secret"));
    }
    m.get("/").await;
    let p = m
        .submit(&format!("/issues/{secret_id}/"), &[("action", "delete")])
        .await;
    assert_eq!(p.status, 404);
    // Members triage but do not administer.
    assert_eq!(
        m.get("/projects/default/fixtures/settings/").await.status,
        403
    );
    assert_eq!(m.get("/projects/new").await.status, 403);
    let p = m
        .submit(
            "/settings/",
            &[
                ("op", "user_create"),
                ("email", "x@example.com"),
                ("password", "long-enough-1"),
            ],
        )
        .await;
    assert_eq!(p.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_data_is_escaped_everywhere() {
    let server = TestServer::start().await;
    let evil = "<script>alert(1)</script>";
    let mut ev = error(1, "XssError", "checkout");
    ev["exception"]["values"][0]["value"] = json!(evil);
    ev["exception"]["values"][0]["stacktrace"]["frames"][1]["function"] = json!(evil);
    ev["breadcrumbs"]["values"][0]["message"] = json!(evil);
    ev["tags"] = json!({"evil": evil});
    ev["user"]["email"] = json!(evil);
    ev["request"]["url"] = json!(format!("https://x.example/?q={evil}"));
    send(&server, ev).await;
    let msg =
        json!({"event_id": "f".repeat(32), "level": "error", "message": format!("message {evil}")});
    send(&server, msg).await;
    let mut c = WebClient::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let list = c.get("/projects/default/fixtures/").await;
    let mut pages = vec![list];
    for issue in server.issues("").await {
        let id = issue["id"].as_str().expect("id");
        pages.push(c.get(&format!("/issues/{id}/")).await);
        pages.push(c.get(&format!("/issues/{id}/events/")).await);
    }
    for p in &pages {
        assert_eq!(p.status, 200);
        assert!(!p.body.contains(evil), "unescaped event data in a page");
        assert!(
            p.body.contains("&lt;script&gt;"),
            "the text is shown, escaped"
        );
    }
    // And no inline script could run even if something slipped through.
    let csp = pages[0]
        .headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(csp.contains("script-src 'self'"), "{csp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_keys_and_accounts() {
    let server = TestServer::start().await;
    let mut c = WebClient::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    c.get("/projects/new").await;
    let p = c
        .submit(
            "/projects/new",
            &[
                ("slug", "backend-api"),
                ("org", "default"),
                ("platform", "rust"),
            ],
        )
        .await;
    assert_eq!(
        p.location.as_deref(),
        Some("/projects/default/backend-api/setup/")
    );
    let setup = c.get("/projects/default/backend-api/setup/").await;
    assert!(
        setup.body.contains("sentry::init"),
        "the Rust snippet by default"
    );
    let empty = c.get("/projects/default/backend-api/").await;
    assert!(empty.body.contains("Send your first event"));
    assert!(
        c.submit("/projects/new", &[("slug", "Bad Name")])
            .await
            .status
            == 400
    );

    // Keys: rotate replaces the key; the old one stops being accepted.
    let (_, keys) = server.api("/api/0/projects/default/fixtures/keys/").await;
    assert_eq!(keys.as_array().map(Vec::len), Some(1));
    c.get("/projects/default/fixtures/settings/").await;
    let p = c
        .submit(
            "/projects/default/fixtures/settings/",
            &[
                ("op", "key_rotate"),
                ("key", bugbane_test_support::FIXTURE_KEY),
            ],
        )
        .await;
    assert_eq!(p.status, 303);
    let (_, keys) = server.api("/api/0/projects/default/fixtures/keys/").await;
    let active: Vec<&Value> = keys
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| k["isActive"] == true)
        .collect();
    assert_eq!(active.len(), 1);
    assert_ne!(active[0]["public"], bugbane_test_support::FIXTURE_KEY);
    let (status, _) = server
        .send_envelope(b"{}\n{\"type\":\"event\"}\n{\"message\":\"x\"}\n".to_vec())
        .await;
    assert_eq!(status, 403, "the rotated-out key is refused");

    // Scrubbing settings round-trip through the API.
    c.get("/projects/default/fixtures/settings/").await;
    c.submit(
        "/projects/default/fixtures/settings/",
        &[
            ("op", "scrub"),
            ("scrub_data", "on"),
            ("sensitive_fields", "iban\nsocial"),
        ],
    )
    .await;
    let (_, project) = server.api("/api/0/projects/default/fixtures/").await;
    assert_eq!(
        project["options"]["sentry:sensitive_fields"],
        json!(["iban", "social"])
    );
    assert_eq!(project["options"]["sentry:scrub_defaults"], false);

    // A token made in the dashboard works on the API, until revoked.
    c.get("/settings/").await;
    let p = c
        .submit("/settings/", &[("op", "token_create"), ("name", "ci")])
        .await;
    assert_eq!(p.status, 200);
    let start = p.body.find("bbt_").expect("new token shown");
    let token: String = p.body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let ok = server
        .http
        .get(server.url("/api/0/projects/"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("api");
    assert_eq!(ok.status(), 200);
    let tokens = c.get("/settings/").await;
    let marker = "name=\"token\" value=\"";
    let ids: Vec<String> = tokens
        .body
        .match_indices(marker)
        .map(|(i, _)| {
            tokens.body[i + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect()
        })
        .collect();
    let last = ids.last().expect("token rows").clone();
    c.submit("/settings/", &[("op", "token_revoke"), ("token", &last)])
        .await;
    let gone = server
        .http
        .get(server.url("/api/0/projects/"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("api");
    assert_eq!(gone.status(), 401);

    // Password change: the old one stops working, the new one signs in.
    c.get("/settings/").await;
    let p = c
        .submit(
            "/settings/",
            &[
                ("op", "password"),
                ("current", ADMIN_PASSWORD),
                ("new", "a-brand-new-password"),
            ],
        )
        .await;
    assert_eq!(p.status, 303);
    let mut again = WebClient::anonymous(&server);
    assert_eq!(
        again.try_login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status,
        401
    );
    WebClient::login(&server, ADMIN_EMAIL, "a-brand-new-password").await;

    // Admins add users, who can then sign in.
    c.get("/settings/").await;
    c.submit(
        "/settings/",
        &[
            ("op", "user_create"),
            ("email", "dev@example.com"),
            ("password", "dev-password-1"),
            ("role", "member"),
        ],
    )
    .await;
    WebClient::login(&server, "dev@example.com", "dev-password-1").await;
}
