//! Payload compression with a trained dictionary: events stored after the dictionary
//! exists read back correctly, also from a fresh process that must load it from disk.

use bugbane_test_support::{FIXTURE_PROJECT, TestServer};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_compressed_with_a_trained_dictionary_read_back() {
    let server = TestServer::start().await;
    let total = 2300u32;
    let mut sends = Vec::new();
    for worker in 0..8u32 {
        let (http, url) = (
            server.http.clone(),
            server.url(&format!(
                "/api/{FIXTURE_PROJECT}/envelope/?sentry_key={}",
                bugbane_test_support::FIXTURE_KEY
            )),
        );
        sends.push(tokio::spawn(async move {
            for n in (worker..total).step_by(8) {
                let id = format!("{n:032x}");
                let event = json!({"event_id": id, "platform": "python", "message": format!("compressed event {n}"),
                    "tags": {"n": n.to_string()}, "extra": {"payload": "the same long text in every event ".repeat(20)}});
                let body = format!("{{\"event_id\":\"{id}\"}}\n{{\"type\":\"event\"}}\n{event}\n");
                let res = http.post(&url).body(body).send().await.expect("send");
                assert_eq!(res.status().as_u16(), 200);
            }
        }));
    }
    for s in sends {
        s.await.expect("sender");
    }
    server.processed().await;
    let last = format!("{:032x}", total - 1);
    let (status, ev) = server
        .api(&format!("/api/0/projects/default/fixtures/events/{last}/"))
        .await;
    assert_eq!(status, 200, "{ev}");
    assert_eq!(ev["message"], format!("compressed event {}", total - 1));

    assert_eq!(
        server
            .store
            .counts(None)
            .await
            .expect("counts")
            .dictionaries,
        1,
        "a dictionary was trained and stored"
    );
    // A second store on the same files (as after a restart) loads the dictionary from disk.
    let reopened = bugbane_store::Store::open(
        server.data_dir(),
        bugbane_store::StoreOptions {
            database_url: server.database.as_ref().map(|d| d.url.clone()),
            ..Default::default()
        },
    )
    .expect("reopen");
    for n in [0, total / 2, total - 1] {
        let e = reopened
            .event(FIXTURE_PROJECT, format!("{n:032x}"))
            .await
            .expect("read")
            .expect("event");
        assert_eq!(
            e.payload["extra"]["payload"].as_str().map(str::len),
            Some(34 * 20)
        );
    }
}
