//! Grouping, as users see it: which events end up in the same issue. Each case is a pair
//! of events and whether they must share an issue.

use bugbane_core::grouping::group_event;
use bugbane_core::{ProcessContext, process_event};
use serde_json::{Value, json};

/// The hashes an event is stored with; the explanation the API serves for the stored event
/// must name the same hashes.
fn group(event: &Value) -> Vec<String> {
    let ctx = ProcessContext::default();
    let mut ctx = ctx;
    ctx.normalize.received = 1_764_000_000.0;
    ctx.normalize.fallback_event_id = "0".repeat(32);
    let ev = process_event(&serde_json::to_vec(event).expect("json"), &ctx).expect("processed");
    let explained = group_event(&Value::Object(ev.payload));
    assert_eq!(explained.hashes, ev.hashes, "explanation of {event}");
    ev.hashes
}

/// Two events share an issue when any of their hashes match.
fn same_issue(a: &Value, b: &Value) -> bool {
    let (ha, hb) = (group(a), group(b));
    ha.iter().any(|h| hb.contains(h))
}

fn frame(module: &str, function: &str, line: &str, lineno: u32, in_app: bool) -> Value {
    json!({"module": module, "function": function, "filename": format!("{}.py", module.replace('.', "/")),
           "abs_path": format!("/srv/{}.py", module.replace('.', "/")), "context_line": line, "lineno": lineno, "in_app": in_app})
}

fn py_error(ty: &str, value: &str, frames: Vec<Value>) -> Value {
    json!({"platform": "python", "exception": {"values": [{"type": ty, "value": value, "stacktrace": {"frames": frames}}]}})
}

fn app_path(a: &str) -> Vec<Value> {
    vec![
        frame(
            "django.core.handlers",
            "inner",
            "response = get_response(request)",
            47,
            false,
        ),
        frame("shop.views", a, "return load(request)", 10, true),
        frame(
            "shop.models",
            "load",
            "user = User.objects.get(id=uid)",
            33,
            true,
        ),
    ]
}

fn message(text: &str) -> Value {
    json!({"platform": "python", "message": text})
}

#[test]
fn grouping_table() {
    let cases: Vec<(&str, Value, Value, bool)> = vec![
        (
            "the same error with different values in its message is one issue",
            py_error("KeyError", "user 17 not found", app_path("checkout")),
            py_error(
                "KeyError",
                "user 4242 not found for tenant acme",
                app_path("checkout"),
            ),
            true,
        ),
        (
            "the same exception type reached through different in-app call paths is two issues",
            py_error("KeyError", "user 17 not found", app_path("checkout")),
            py_error("KeyError", "user 17 not found", app_path("refund")),
            false,
        ),
        (
            "only non-in-app frames differ: one issue",
            py_error("KeyError", "x", app_path("checkout")),
            {
                let mut frames = app_path("checkout");
                frames[0] = frame(
                    "flask.app",
                    "dispatch",
                    "return self.view_functions[rule](**args)",
                    880,
                    false,
                );
                frames.insert(
                    0,
                    frame(
                        "gunicorn.workers",
                        "handle",
                        "self.handle_request(req)",
                        120,
                        false,
                    ),
                );
                py_error("KeyError", "x", frames)
            },
            true,
        ),
        (
            "line numbers moved by a deploy: one issue",
            py_error("KeyError", "x", app_path("checkout")),
            {
                let mut frames = app_path("checkout");
                frames[2]["lineno"] = json!(51);
                py_error("KeyError", "x", frames)
            },
            true,
        ),
        (
            "a changed source line is a different cause: two issues",
            py_error("KeyError", "x", app_path("checkout")),
            {
                let mut frames = app_path("checkout");
                frames[2]["context_line"] = json!("user = User.objects.get(email=email)");
                py_error("KeyError", "x", frames)
            },
            false,
        ),
        (
            "different exception types at the same place: two issues",
            py_error("KeyError", "x", app_path("checkout")),
            py_error("ValueError", "x", app_path("checkout")),
            false,
        ),
        (
            "without a stack trace, values differing in numbers group",
            py_error(
                "TimeoutError",
                "timed out after 30 s talking to 10.0.0.7:5432",
                vec![],
            ),
            py_error(
                "TimeoutError",
                "timed out after 45 s talking to 10.0.3.9:6543",
                vec![],
            ),
            true,
        ),
        (
            "message events differing only in numbers, ids, hex, IPs, dates, emails are one issue",
            message(
                "Order 1234 for bob@example.com failed at 2025-03-01T12:00:00Z from 10.0.0.1 (id=7f9c2ba4-1e0d-4a55-9d0e-3b2c1a0f9e88, ptr 0x7ffee3b1)",
            ),
            message(
                "Order 98 for alice@corp.example.org failed at 2026-11-26T08:30:12Z from 192.168.1.20 (id=0b1d2c3e-4f50-6a7b-8c9d-0e1f2a3b4c5d, ptr 0x10000)",
            ),
            true,
        ),
        (
            "message events with different words are different issues",
            message("Order 1234 failed"),
            message("Refund 1234 failed"),
            false,
        ),
        (
            "a fingerprint overrides the stack trace",
            json!({"platform": "python", "fingerprint": ["payment-gateway"], "exception": py_error("KeyError", "x", app_path("checkout"))["exception"]}),
            json!({"platform": "python", "fingerprint": ["payment-gateway"], "exception": py_error("ValueError", "y", app_path("refund"))["exception"]}),
            true,
        ),
        (
            "different fingerprints split otherwise identical errors",
            json!({"platform": "python", "fingerprint": ["tenant-a"], "exception": py_error("KeyError", "x", app_path("checkout"))["exception"]}),
            json!({"platform": "python", "fingerprint": ["tenant-b"], "exception": py_error("KeyError", "x", app_path("checkout"))["exception"]}),
            false,
        ),
        (
            "{{ default }} extended by a value splits by that value",
            json!({"platform": "python", "fingerprint": ["{{ default }}", "eu"], "exception": py_error("KeyError", "x", app_path("checkout"))["exception"]}),
            json!({"platform": "python", "fingerprint": ["{{ default }}", "us"], "exception": py_error("KeyError", "x", app_path("checkout"))["exception"]}),
            false,
        ),
        (
            "{{ default }} extended by the same value keeps grouping by stack",
            json!({"platform": "python", "fingerprint": ["{{ default }}", "eu"], "exception": py_error("KeyError", "x", app_path("checkout"))["exception"]}),
            json!({"platform": "python", "fingerprint": ["{{default}}", "eu"], "exception": py_error("KeyError", "other value", app_path("checkout"))["exception"]}),
            true,
        ),
        (
            "fingerprint variables resolve per event",
            json!({"platform": "python", "transaction": "/a", "fingerprint": ["{{ transaction }}"], "message": "x"}),
            json!({"platform": "python", "transaction": "/b", "fingerprint": ["{{ transaction }}"], "message": "x"}),
            false,
        ),
        (
            "a synthetic exception type does not split issues",
            json!({"platform": "native", "exception": {"values": [{"type": "SIGSEGV", "mechanism": {"type": "signalhandler", "synthetic": true},
                   "stacktrace": {"frames": [{"function": "crash_here", "in_app": true}]}}]}}),
            json!({"platform": "native", "exception": {"values": [{"type": "SIGBUS", "mechanism": {"type": "signalhandler", "synthetic": true},
                   "stacktrace": {"frames": [{"function": "crash_here", "in_app": true}]}}]}}),
            true,
        ),
        (
            "JavaScript method names group by their last part, URLs do not matter",
            json!({"platform": "javascript", "exception": {"values": [{"type": "TypeError", "value": "x is undefined",
                   "stacktrace": {"frames": [{"function": "Object.run", "abs_path": "http://127.0.0.1:4000/bundle.js", "filename": "http://127.0.0.1:4000/bundle.js", "in_app": true}]}}]}}),
            json!({"platform": "javascript", "exception": {"values": [{"type": "TypeError", "value": "y is undefined",
                   "stacktrace": {"frames": [{"function": "run", "abs_path": "https://cdn.example.com/assets/bundle.js", "filename": "https://cdn.example.com/assets/bundle.js", "in_app": true}]}}]}}),
            true,
        ),
        (
            "node_modules frames are not in-app even when the SDK says so",
            json!({"platform": "node", "exception": {"values": [{"type": "Error", "value": "boom", "stacktrace": {"frames": [
                {"function": "handler", "module": "app", "abs_path": "/srv/app.js", "context_line": "lib.call()", "in_app": true},
                {"function": "call", "module": "lib", "abs_path": "/srv/node_modules/lib/index.js", "context_line": "throw new Error('boom')", "in_app": true}]}}]}}),
            json!({"platform": "node", "exception": {"values": [{"type": "Error", "value": "boom", "stacktrace": {"frames": [
                {"function": "handler", "module": "app", "abs_path": "/srv/app.js", "context_line": "lib.call()", "in_app": true},
                {"function": "invoke", "module": "lib", "abs_path": "/srv/node_modules/lib/v2.js", "context_line": "throw err", "in_app": true}]}}]}}),
            true,
        ),
        (
            "events with nothing usable share one issue",
            json!({"platform": "other"}),
            json!({"platform": "python", "extra": {"anything": 1}}),
            true,
        ),
    ];
    let mut failures = Vec::new();
    for (name, a, b, want) in &cases {
        if same_issue(a, b) != *want {
            failures.push(format!(
                "{name}: expected {}, hashes {:?} vs {:?}",
                if *want { "one issue" } else { "two issues" },
                group(a),
                group(b)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn hashes_follow_sentry_rules() {
    // Nothing usable: the MD5 of nothing, as in Sentry.
    assert_eq!(group(&json!({})), vec!["d41d8cd98f00b204e9800998ecf8427e"]);
    // A custom fingerprint hashes its values concatenated.
    assert_eq!(
        group(&json!({"fingerprint": ["a", "b"], "message": "x"})),
        vec![md5("ab")]
    );
    // A message event hashes its normalised message.
    assert_eq!(
        group(&message("Order 1234 failed")),
        vec![md5("Order <int> failed")]
    );
    // In-app frames first (app variant), then all frames (system variant).
    let h = group(&py_error("KeyError", "x", app_path("checkout")));
    let app = md5(
        "shop.viewscheckoutreturn load(request)shop.modelsloaduser = User.objects.get(id=uid)KeyError",
    );
    let system = md5(
        "django.core.handlersinnerresponse = get_response(request)shop.viewscheckoutreturn load(request)shop.modelsloaduser = User.objects.get(id=uid)KeyError",
    );
    assert_eq!(h, vec![app, system]);
    // No in-app frame: only the system hash.
    let mut frames = app_path("checkout");
    for f in &mut frames {
        f["in_app"] = json!(false);
    }
    assert_eq!(group(&py_error("KeyError", "x", frames)).len(), 1);
}

#[test]
fn grouping_explains_itself() {
    let ctx = ProcessContext::default();
    let ev = process_event(
        &serde_json::to_vec(&py_error("KeyError", "x", app_path("checkout"))).expect("json"),
        &ctx,
    )
    .expect("processed");
    let grouping = group_event(&Value::Object(ev.payload));
    let app = grouping
        .variants
        .iter()
        .find(|v| v.name == "app")
        .expect("app variant");
    assert!(app.contributes);
    let frames: Vec<_> = app.components.iter().filter(|c| c.id == "frame").collect();
    assert_eq!(frames.len(), 3);
    assert!(
        !frames[0].contributes
            && frames[0]
                .hint
                .as_deref()
                .is_some_and(|h| h.contains("non app frame"))
    );
    assert!(frames[2].contributes);
    let value = app
        .components
        .iter()
        .find(|c| c.id == "value")
        .expect("value component");
    assert!(
        !value.contributes,
        "the stack trace takes precedence over the value"
    );
}

fn md5(s: &str) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(s.as_bytes()))
}
