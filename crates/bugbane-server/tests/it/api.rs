//! The web API as a Sentry API client uses it: listing and searching issues, the issue
//! lifecycle with regressions, tags, events, hashes, pagination and authentication.

use bugbane_test_support::{TOKEN, TestServer};
use serde_json::{Value, json};

struct Sender<'a> {
    server: &'a TestServer,
    n: u32,
}

impl Sender<'_> {
    /// Sends an error from `function` with the given release and extra event fields.
    async fn error(&mut self, ty: &str, function: &str, release: &str, extra: Value) -> String {
        self.n += 1;
        let id = format!("{:032x}", 0xabc0000 + self.n);
        let mut event = json!({
            "event_id": id, "platform": "python", "level": "error", "release": release, "environment": "production",
            "exception": {"values": [{"type": ty, "value": format!("failure number {}", self.n),
                "stacktrace": {"frames": [{"module": "shop.views", "function": function, "context_line": "do_it()", "in_app": true}]}}]},
        });
        if let (Some(e), Some(x)) = (event.as_object_mut(), extra.as_object()) {
            for (k, v) in x {
                e.insert(k.clone(), v.clone());
            }
        }
        let body =
            format!("{{\"event_id\":\"{id}\"}}\n{{\"type\":\"event\"}}\n{event}\n").into_bytes();
        let (status, res) = self.server.send_envelope(body).await;
        assert_eq!(status, 200, "{res}");
        self.server.processed().await;
        id
    }
}

async fn issue(server: &TestServer, id: &str) -> Value {
    let (status, body) = server.api(&format!("/api/0/issues/{id}/")).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_and_bad_tokens_are_refused() {
    let server = TestServer::start().await;
    for path in [
        "/api/0/projects/",
        "/api/0/projects/default/fixtures/issues/",
        "/api/0/issues/1/",
        "/api/0/organizations/default/issues/",
    ] {
        let res = server
            .http
            .get(server.url(path))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status().as_u16(), 401, "{path}");
        let body: Value = res.json().await.expect("json");
        assert!(body["detail"].is_string());
        let res = server
            .http
            .get(server.url(path))
            .bearer_auth("bbt_wrong")
            .send()
            .await
            .expect("request");
        assert_eq!(res.status().as_u16(), 401, "{path}");
    }
    let (status, projects) = server.api("/api/0/projects/").await;
    assert_eq!(status, 200);
    let slugs: Vec<&str> = projects
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["slug"].as_str())
        .collect();
    assert_eq!(slugs, vec!["default", "fixtures"]);
    let (_, keys) = server.api("/api/0/projects/default/fixtures/keys/").await;
    assert_eq!(keys[0]["dsn"]["public"], server.dsn());
    assert_eq!(
        server.api("/api/0/projects/default/nope/issues/").await.0,
        404
    );
    assert_eq!(server.api("/api/0/issues/999/").await.0, 404);
    assert!(TOKEN.starts_with("bbt_"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_regress_and_ignore() {
    let server = TestServer::start().await;
    let mut s = Sender {
        server: &server,
        n: 0,
    };
    s.error("KeyError", "checkout", "app@1.0.0", json!({}))
        .await;
    let issues = server.issues("is:unresolved").await;
    assert_eq!(issues.len(), 1);
    let id = issues[0]["id"].as_str().expect("id").to_owned();
    assert_eq!(issues[0]["substatus"], "new");

    // Resolve: the issue leaves the default (unresolved) list.
    let (status, body) = server
        .api_put(
            &format!("/api/0/issues/{id}/"),
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("resolved")));
    assert!(server.issues("is:unresolved").await.is_empty());
    assert_eq!(server.issues("is:resolved").await.len(), 1);

    // The error happens again: a regression.
    s.error("KeyError", "checkout", "app@1.0.0", json!({}))
        .await;
    let i = issue(&server, &id).await;
    assert_eq!(
        (
            i["status"].as_str(),
            i["substatus"].as_str(),
            i["count"].as_str()
        ),
        (Some("unresolved"), Some("regressed"), Some("2"))
    );
    let (_, activity) = server.api(&format!("/api/0/issues/{id}/activity/")).await;
    let kinds: Vec<&str> = activity
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|a| a["type"].as_str())
        .collect();
    assert_eq!(kinds, vec!["first_seen", "set_resolved", "set_regression"]);

    // Resolved in the next release: the same release does not regress it, a newer one does.
    let (status, body) = server
        .api_put(
            &format!("/api/0/issues/{id}/"),
            json!({"status": "resolved", "statusDetails": {"inNextRelease": true}}),
        )
        .await;
    assert_eq!(
        (status, body["statusDetails"]["inNextRelease"].as_bool()),
        (200, Some(true))
    );
    s.error("KeyError", "checkout", "app@1.0.0", json!({}))
        .await;
    assert_eq!(issue(&server, &id).await["status"], "resolved");
    s.error("KeyError", "checkout", "app@1.1.0", json!({}))
        .await;
    let i = issue(&server, &id).await;
    assert_eq!(
        (i["status"].as_str(), i["substatus"].as_str()),
        (Some("unresolved"), Some("regressed"))
    );
    assert_eq!(i["lastRelease"]["version"], "app@1.1.0");
    assert_eq!(i["firstRelease"]["version"], "app@1.0.0");

    // Ignored until two more events.
    let (status, _) = server
        .api_put(
            &format!("/api/0/issues/{id}/"),
            json!({"status": "ignored", "statusDetails": {"ignoreCount": 2}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(issue(&server, &id).await["statusDetails"]["ignoreCount"], 2);
    s.error("KeyError", "checkout", "app@1.1.0", json!({}))
        .await;
    assert_eq!(issue(&server, &id).await["status"], "ignored");
    s.error("KeyError", "checkout", "app@1.1.0", json!({}))
        .await;
    assert_eq!(issue(&server, &id).await["status"], "unresolved");

    // Ignored forever stays ignored, but still counts.
    server
        .api_put(
            &format!("/api/0/issues/{id}/"),
            json!({"status": "ignored"}),
        )
        .await;
    s.error("KeyError", "checkout", "app@1.1.0", json!({}))
        .await;
    let i = issue(&server, &id).await;
    assert_eq!(
        (i["status"].as_str(), i["count"].as_str()),
        (Some("ignored"), Some("7"))
    );

    assert_eq!(
        server
            .api_put(&format!("/api/0/issues/{id}/"), json!({"status": "bogus"}))
            .await
            .0,
        400
    );
    // Deleting removes the issue and its events.
    let res = server
        .http
        .delete(server.url(&format!("/api/0/issues/{id}/")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status().as_u16(), 202);
    assert_eq!(server.api(&format!("/api/0/issues/{id}/")).await.0, 404);
    assert_eq!(server.store.counts(None).await.expect("counts").events, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_tags_events_and_pagination() {
    let server = TestServer::start().await;
    let mut s = Sender {
        server: &server,
        n: 0,
    };
    let first = s
        .error(
            "KeyError",
            "checkout",
            "app@1.0.0",
            json!({"user": {"id": "u1", "email": "ann@example.com"}, "tags": {"tenant": "acme"}}),
        )
        .await;
    s.error(
        "KeyError",
        "checkout",
        "app@1.0.0",
        json!({"user": {"id": "u2", "email": "bob@example.com"}, "tags": {"tenant": "acme"}}),
    )
    .await;
    let last = s
        .error(
            "KeyError",
            "checkout",
            "app@2.0.0",
            json!({"user": {"id": "u2"}, "tags": {"tenant": "globex"}, "environment": "staging"}),
        )
        .await;
    s.error(
        "ValueError",
        "refund",
        "app@1.0.0",
        json!({"level": "warning", "tags": {"tenant": "globex"}}),
    )
    .await;
    s.error("TypeError", "search", "app@1.0.0", json!({})).await;

    let titles = |issues: Vec<Value>| -> Vec<String> {
        let mut t: Vec<String> = issues
            .iter()
            .filter_map(|i| i["metadata"]["type"].as_str().map(str::to_owned))
            .collect();
        t.sort();
        t
    };
    assert_eq!(
        titles(server.issues("").await),
        vec!["KeyError", "TypeError", "ValueError"]
    );
    assert_eq!(
        titles(server.issues("level:warning").await),
        vec!["ValueError"]
    );
    assert_eq!(
        titles(server.issues("!level:warning").await),
        vec!["KeyError", "TypeError"]
    );
    assert_eq!(
        titles(server.issues("release:app@2.0.0").await),
        vec!["KeyError"]
    );
    assert_eq!(
        titles(server.issues("environment:staging").await),
        vec!["KeyError"]
    );
    assert_eq!(
        titles(server.issues("user.email:bob@example.com").await),
        vec!["KeyError"]
    );
    assert_eq!(
        titles(server.issues("user.id:u9").await),
        Vec::<String>::new()
    );
    assert_eq!(
        titles(server.issues("tenant:globex").await),
        vec!["KeyError", "ValueError"]
    );
    assert_eq!(
        titles(server.issues("tenant:acme refund").await),
        Vec::<String>::new()
    );
    assert_eq!(titles(server.issues("refund").await), vec!["ValueError"]);
    assert_eq!(
        titles(server.issues("is:unresolved ValueError").await),
        vec!["ValueError"]
    );

    let key_error = server.issues("KeyError").await.remove(0);
    let id = key_error["id"].as_str().expect("id").to_owned();
    assert_eq!(
        (key_error["count"].as_str(), key_error["userCount"].as_i64()),
        (Some("3"), Some(2))
    );
    assert_eq!(key_error["culprit"], "shop.views in checkout");
    let hours: i64 = key_error["stats"]["24h"]
        .as_array()
        .expect("stats")
        .iter()
        .map(|p| p[1].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(hours, 3);

    // Tag facets with counts, and one key's values.
    let (_, tags) = server.api(&format!("/api/0/issues/{id}/tags/")).await;
    let tenant = tags
        .as_array()
        .expect("tags")
        .iter()
        .find(|t| t["key"] == "tenant")
        .expect("tenant facet");
    assert_eq!(tenant["totalValues"], 3);
    assert_eq!(tenant["topValues"][0]["value"], "acme");
    assert_eq!(tenant["topValues"][0]["count"], 2);
    assert!(
        tags.as_array()
            .expect("tags")
            .iter()
            .all(|t| !t["key"].as_str().unwrap_or("").starts_with("user."))
    );
    let (_, values) = server
        .api(&format!("/api/0/issues/{id}/tags/release/values/"))
        .await;
    assert_eq!(values.as_array().map(Vec::len), Some(2));

    // Events: newest first, latest and oldest.
    let (_, events) = server.api(&format!("/api/0/issues/{id}/events/")).await;
    assert_eq!(events.as_array().map(Vec::len), Some(3));
    assert_eq!(
        server
            .api(&format!("/api/0/issues/{id}/events/latest/"))
            .await
            .1["eventID"],
        last
    );
    let oldest = server
        .api(&format!("/api/0/issues/{id}/events/oldest/"))
        .await
        .1;
    assert_eq!(oldest["eventID"], first);
    assert_eq!(oldest["groupID"], id.as_str());
    let entry_types: Vec<&str> = oldest["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(entry_types.contains(&"exception"));
    let (_, hashes) = server.api(&format!("/api/0/issues/{id}/hashes/")).await;
    assert_eq!(hashes.as_array().map(Vec::len), Some(1));
    assert_eq!(hashes[0]["groupingConfig"], "newstyle:2023-01-11");
    let (_, grouping) = server
        .api(&format!(
            "/api/0/projects/default/fixtures/events/{first}/grouping-info/"
        ))
        .await;
    assert!(grouping["variants"].as_array().is_some_and(|v| {
        v.iter()
            .any(|v| v["name"] == "app" && v["contributes"] == true)
    }));

    // Pagination with Sentry's Link header.
    let res = server
        .http
        .get(server.url("/api/0/projects/default/fixtures/issues/?query=&limit=2&sort=new"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("list");
    let link = res.headers()["link"].to_str().expect("link").to_owned();
    let page1: Value = res.json().await.expect("json");
    assert_eq!(page1.as_array().map(Vec::len), Some(2));
    assert!(link.contains("rel=\"next\"; results=\"true\""), "{link}");
    assert!(
        link.contains("rel=\"previous\"; results=\"false\""),
        "{link}"
    );
    let next = link
        .split(", ")
        .find(|l| l.contains("rel=\"next\""))
        .expect("next link");
    let next_url = next.trim_start_matches('<').split('>').next().expect("url");
    let res = server
        .http
        .get(next_url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("page 2");
    let link2 = res.headers()["link"].to_str().expect("link").to_owned();
    let page2: Value = res.json().await.expect("json");
    assert_eq!(page2.as_array().map(Vec::len), Some(1));
    assert!(link2.contains("rel=\"next\"; results=\"false\""), "{link2}");
    let mut all: Vec<&Value> = page1
        .as_array()
        .expect("p1")
        .iter()
        .chain(page2.as_array().expect("p2"))
        .map(|i| &i["id"])
        .collect();
    all.dedup();
    assert_eq!(all.len(), 3);

    // Sorting by frequency, and the organization-wide list.
    let by_freq = server
        .api("/api/0/projects/default/fixtures/issues/?query=&sort=freq")
        .await
        .1;
    assert_eq!(by_freq[0]["id"], id.as_str());
    let (status, org) = server
        .api("/api/0/organizations/default/issues/?query=KeyError")
        .await;
    assert_eq!((status, org.as_array().map(Vec::len)), (200, Some(1)));
    assert_eq!(
        server
            .api("/api/0/projects/default/fixtures/issues/?sort=bogus")
            .await
            .0,
        400
    );
    assert_eq!(
        server
            .api("/api/0/projects/default/fixtures/issues/?statsPeriod=forever")
            .await
            .0,
        400
    );
    assert_eq!(
        server
            .api("/api/0/projects/default/fixtures/issues/?query=&statsPeriod=24h")
            .await
            .1
            .as_array()
            .map(Vec::len),
        Some(3)
    );
}
