//! Dashboard page timings: the issue list and the page of its most frequent issue, the
//! two pages people open first when something breaks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bugbane_test_support::WebClient;

use crate::percentile;

const LIST: &str = "/projects/default/default/?sort=freq";

/// Latencies (µs) of each page.
#[derive(Default)]
pub struct Timings {
    list: Vec<u32>,
    issue: Vec<u32>,
}

impl Timings {
    fn stats(v: &[u32]) -> serde_json::Value {
        let mut s = v.to_vec();
        s.sort_unstable();
        serde_json::json!({"n": s.len(), "p50": percentile(&s, 0.5), "p95": percentile(&s, 0.95), "max": percentile(&s, 1.0)})
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({"issue_list": Self::stats(&self.list), "issue_page": Self::stats(&self.issue)})
    }

    pub fn summary(&self) -> String {
        let j = self.json();
        let f = |k: &str| {
            format!(
                "{k} p50 {:.1} ms p95 {:.1} ms (n={})",
                j[k]["p50"].as_f64().unwrap_or(0.0),
                j[k]["p95"].as_f64().unwrap_or(0.0),
                j[k]["n"]
            )
        };
        format!("{}; {}", f("issue_list"), f("issue_page"))
    }
}

/// Times one GET; `None` if the page did not render.
async fn time(c: &mut WebClient, path: &str) -> Option<(u32, String)> {
    let t = Instant::now();
    let page = c.get(path).await;
    let us = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
    (page.status == 200).then_some((us, page.body))
}

/// The most frequent issue's page, found in the list.
fn first_issue(list: &str) -> Option<String> {
    let i = list.find("data-href=\"")? + "data-href=\"".len();
    let href = &list[i..];
    Some(href[..href.find('"')?].replace("&#x2f;", "/"))
}

async fn round(c: &mut WebClient, t: &mut Timings) {
    if let Some((us, body)) = time(c, LIST).await {
        t.list.push(us);
        if let Some(issue) = first_issue(&body)
            && let Some((us, _)) = time(c, &issue).await
        {
            t.issue.push(us);
        }
    }
}

/// Samples both pages every 250 ms until `stop`.
pub async fn sample_while(mut c: WebClient, stop: Arc<AtomicBool>) -> Timings {
    let mut t = Timings::default();
    while !stop.load(Ordering::Relaxed) {
        round(&mut c, &mut t).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    t
}

/// Samples both pages `n` times back to back.
pub async fn sample_idle(mut c: WebClient, n: usize) -> Timings {
    let mut t = Timings::default();
    for _ in 0..n {
        round(&mut c, &mut t).await;
    }
    t
}
