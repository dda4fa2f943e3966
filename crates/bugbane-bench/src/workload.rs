//! Realistic envelopes shaped like what the Python and JavaScript SDKs send: stack traces
//! of 15–30 frames with source context, 20 breadcrumbs, request, user, tags and contexts.
//!
//! Every request needs a unique event id (the server deduplicates by id), but compressing
//! 14 KiB per request would make the generator the bottleneck. So each issue's envelope is
//! split into a short unique head and a long constant tail; the tail is compressed once,
//! the head is sent stored (uncompressed) in a gzip member of its own, and the two
//! members are concatenated, which is valid gzip (RFC 1952 §2.2) and decodes to one
//! envelope.

use std::io::Write;

use serde_json::{Value, json};

/// Event sizes, after the SDK shapes in the captured fixtures.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Size {
    /// About 3 KiB of JSON: a short trace, few breadcrumbs.
    Small,
    /// About 14 KiB: 15–30 frames with source context, 20 breadcrumbs.
    Typical,
    /// About 60 KiB: like typical, with local variables in every frame.
    Large,
}

/// One issue's pre-built envelope parts.
pub struct Template {
    /// Event JSON after the unique head (starts with `,`).
    tail: Vec<u8>,
    /// The tail as a gzip member.
    tail_gz: Vec<u8>,
}

/// The set of issues a run draws from, with long-tail popularity.
pub struct Workload {
    templates: Vec<Template>,
    /// Cumulative weights for picking an issue (Zipf, s = 1).
    cumulative: Vec<f64>,
    pub gzip: bool,
}

fn frames(issue: usize, size: Size) -> Vec<Value> {
    let n = match size {
        Size::Small => 6,
        Size::Typical | Size::Large => 15 + issue % 16,
    };
    (0..n)
        .map(|k| {
            let in_app = k >= n / 3;
            let module = if in_app { format!("shop.services.module_{issue}_{k}") } else { format!("framework.core.layer_{k}") };
            let mut f = json!({
                "filename": format!("{}.py", module.replace('.', "/")),
                "abs_path": format!("/srv/app/{}.py", module.replace('.', "/")),
                "module": module,
                "function": format!("handle_step_{issue}_{k}"),
                "lineno": 40 + k,
                "in_app": in_app,
            });
            if !matches!(size, Size::Small) {
                f["context_line"] = json!(format!("        result = self.process_{k}(payload, retries={}, timeout=30)", k % 4));
                f["pre_context"] = json!((0..2).map(|i| format!("    # step {k}.{i}: validate the payload")).collect::<Vec<_>>());
                f["post_context"] = json!((0..2).map(|i| format!("        log.debug('step {k}.{i} done')")).collect::<Vec<_>>());
            }
            if matches!(size, Size::Large) {
                f["vars"] = json!({
                    "self": format!("<shop.services.Handler object at 0x7f{issue:02x}{k:02x}a3c0>"),
                    "payload": (0..12).map(|i| (format!("field_{i}"), json!(format!("value {i} of a customer payload with some text in it")))).collect::<serde_json::Map<_, _>>(),
                    "retries": k % 4,
                    "items": (0..60).map(|i| format!("sku-{issue}-{i:04}")).collect::<Vec<_>>(),
                });
            }
            f
        })
        .collect()
}

fn event_tail(issue: usize, size: Size) -> Value {
    let crumbs = match size {
        Size::Small => 4,
        _ => 20,
    };
    json!({
        "platform": "python",
        "level": "error",
        "logger": "shop.checkout",
        "release": "shop@4.2.0",
        "environment": "production",
        "server_name": "web-3",
        "transaction": format!("/api/orders/{{id}}/step-{issue}"),
        "exception": {"values": [{
            "type": format!("CheckoutError{}", issue % 7),
            "value": format!("order {} could not be completed after 3 retries", 1000 + issue),
            "mechanism": {"type": "django", "handled": false},
            "stacktrace": {"frames": frames(issue, size)},
        }]},
        "breadcrumbs": {"values": (0..crumbs).map(|i| json!({
            "timestamp": 1.0 + i as f64, "type": if i % 3 == 0 { "http" } else { "default" },
            "category": if i % 3 == 0 { "httplib" } else { "query" }, "level": "info",
            "message": format!("SELECT id, status, total FROM orders WHERE customer_id = {} AND status = 'open'", i * 7),
            "data": {"duration_ms": i * 3, "rows": i},
        })).collect::<Vec<_>>()},
        "request": {
            "url": format!("https://shop.example.com/api/orders/{issue}/checkout"),
            "method": "POST",
            "headers": {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
                        "Accept": "application/json", "Content-Type": "application/json", "Authorization": "[Filtered]"},
            "data": {"order_id": 1000 + issue, "coupon": "SPRING", "items": 3},
        },
        "user": {"id": format!("user-{}", issue * 31 % 97), "email": format!("customer{}@example.com", issue * 31 % 97), "ip_address": "10.1.2.3"},
        "tags": {"tenant": format!("tenant-{}", issue % 5), "region": "eu-west-1", "feature.checkout_v2": "true"},
        "contexts": {"runtime": {"name": "CPython", "version": "3.12.1"}, "os": {"name": "Linux", "version": "6.1"},
                     "trace": {"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331"}},
        "sdk": {"name": "sentry.python", "version": "2.75.0", "packages": [{"name": "pypi:sentry-sdk", "version": "2.75.0"}]},
    })
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    let _ = e.write_all(bytes);
    e.finish().unwrap_or_default()
}

impl Workload {
    pub fn new(issues: usize, size: Size, gzip: bool) -> Workload {
        let templates = (0..issues.max(1))
            .map(|i| {
                let full = serde_json::to_vec(&event_tail(i, size)).unwrap_or_default();
                // Drop the opening `{` so the tail continues the unique head's object.
                let mut tail = b",".to_vec();
                tail.extend_from_slice(&full[1..]);
                tail.push(b'\n');
                let tail_gz = gz(&tail);
                Template { tail, tail_gz }
            })
            .collect();
        let mut total = 0.0;
        let cumulative = (0..issues.max(1))
            .map(|i| {
                total += 1.0 / (i as f64 + 1.0);
                total
            })
            .collect();
        Workload {
            templates,
            cumulative,
            gzip,
        }
    }

    /// Picks an issue for a uniform random number in [0, 1).
    pub fn pick(&self, u: f64) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = u * total;
        self.cumulative
            .partition_point(|c| *c <= x)
            .min(self.templates.len() - 1)
    }

    /// Size of one decoded event payload of an issue.
    pub fn event_bytes(&self, issue: usize) -> usize {
        self.templates[issue].tail.len() + 48
    }

    /// Size of an issue's request body as sent.
    pub fn wire_bytes(&self, issue: usize) -> usize {
        self.body(issue, &"0".repeat(32), 1e9).len()
    }

    /// Mean event and request sizes over the issues (unweighted).
    pub fn mean_sizes(&self) -> (usize, usize) {
        let n = self.templates.len();
        let events = (0..n).map(|i| self.event_bytes(i)).sum::<usize>() / n;
        let wire = (0..n).map(|i| self.wire_bytes(i)).sum::<usize>() / n;
        (events, wire)
    }

    /// The request body for one event with the given id.
    pub fn body(&self, issue: usize, event_id: &str, now: f64) -> Vec<u8> {
        let t = &self.templates[issue];
        let head_json = format!(
            "{{\"event_id\":\"{event_id}\",\"timestamp\":{now:.3},\"extra\":{{\"bench\":true}}"
        );
        let payload_len = head_json.len() + t.tail.len() - 1; // the tail's final newline ends the item
        let head = format!(
            "{{\"event_id\":\"{event_id}\"}}\n{{\"type\":\"event\",\"length\":{payload_len}}}\n{head_json}"
        );
        if self.gzip {
            let mut body = Vec::with_capacity(head.len() + 64 + t.tail_gz.len());
            stored_gzip_member(head.as_bytes(), &mut body);
            body.extend_from_slice(&t.tail_gz);
            body
        } else {
            let mut body = head.into_bytes();
            body.extend_from_slice(&t.tail);
            body
        }
    }
}

/// Appends `data` to `out` as one gzip member (RFC 1952) holding a stored, uncompressed
/// deflate block (RFC 1951 §3.2.4). A deflate encoder costs some 300 KB to set up or
/// reset, which for a 200-byte head made compressing it most of the generator's CPU.
fn stored_gzip_member(data: &[u8], out: &mut Vec<u8>) {
    const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
    let data = &data[..usize::from(len)];
    out.extend_from_slice(&HEADER);
    out.push(1); // the final block, stored
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&u32::from(len).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_decode_to_valid_envelopes_of_the_advertised_sizes() {
        for (size, lo, hi) in [
            (Size::Small, 2_000, 5_000),
            (Size::Typical, 10_000, 20_000),
            (Size::Large, 45_000, 90_000),
        ] {
            let w = Workload::new(50, size, true);
            let bytes = w.event_bytes(10);
            let mean = (0..50).map(|i| w.event_bytes(i)).sum::<usize>() / 50;
            assert!(
                (lo..hi).contains(&mean),
                "{size:?}: {mean} (issue 10: {bytes})"
            );
            for id in [
                "0123456789abcdef0123456789abcdef",
                "fedcba9876543210fedcba9876543210",
            ] {
                let body = w.body(10, id, 1.0);
                let decoded =
                    bugbane_protocol::decode_body(Some("gzip"), &body, 1 << 24).expect("gzip");
                let env = bugbane_protocol::Envelope::parse(&decoded).expect("envelope");
                let event: Value =
                    serde_json::from_slice(env.items[0].payload).expect("event json");
                assert_eq!(event["event_id"], id);
                assert!(
                    event["exception"]["values"][0]["stacktrace"]["frames"]
                        .as_array()
                        .is_some_and(|f| !f.is_empty())
                );
            }
        }
        let w = Workload::new(50, Size::Typical, false);
        assert_eq!(w.pick(0.0), 0);
        assert!(w.pick(0.999) > 10);
    }
}
