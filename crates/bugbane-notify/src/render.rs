//! What each channel receives for one alert: an email (subject, text and HTML), Slack
//! blocks, a Discord embed, a Teams adaptive card, or a generic JSON document. Pure: the
//! queued message and the links in, the payload out.

use std::sync::LazyLock;

use minijinja::{Environment, context};
use serde_json::{Value, json};

/// One alert as the channels present it.
pub struct Alert<'a> {
    pub message: &'a Value,
    /// The issue's page in the dashboard (or the project's, for a test).
    pub link: String,
}

impl Alert<'_> {
    fn s(&self, pointer: &str) -> &str {
        self.message
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    fn n(&self, pointer: &str) -> i64 {
        self.message
            .pointer(pointer)
            .and_then(Value::as_i64)
            .unwrap_or(0)
    }

    pub fn reason(&self) -> &str {
        self.s("/reason")
    }

    pub fn title(&self) -> &str {
        self.s("/issue/title")
    }

    fn short_id(&self) -> &str {
        self.s("/issue/short_id")
    }

    fn culprit(&self) -> &str {
        self.s("/issue/culprit")
    }

    /// Environment and release, when known.
    fn facts(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("Project", self.s("/project/slug").to_owned()),
            ("Level", self.s("/issue/level").to_owned()),
            ("Events", self.n("/issue/times_seen").to_string()),
            ("Users", self.n("/issue/user_count").to_string()),
        ];
        for (label, p) in [("Environment", "/environment"), ("Release", "/release")] {
            let v = self.s(p);
            if !v.is_empty() {
                f.push((label, v.to_owned()));
            }
        }
        f
    }
}

/// An email's subject and bodies.
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

static EMAIL: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    if let Err(e) = env.add_template("email.html", include_str!("../templates/email.html")) {
        tracing::error!(error = %e, "email template does not compile");
    }
    env
});

pub fn email(a: &Alert<'_>) -> Email {
    let subject = format!("[Bugbane] {}: {} — {}", a.reason(), a.short_id(), a.title());
    let mut text = format!("{}\n\n{}\n{}\n\n", a.reason(), a.title(), a.culprit());
    for (k, v) in a.facts() {
        text.push_str(&format!("{k}: {v}\n"));
    }
    text.push_str(&format!("\nOpen the issue: {}\n", a.link));
    let html = EMAIL
        .get_template("email.html")
        .and_then(|t| {
            t.render(context! {
                reason => a.reason(), title => a.title(), culprit => a.culprit(),
                short_id => a.short_id(), facts => a.facts(),
                // Built by Bugbane from its public URL; escaped by hand so it stays readable.
                link => minijinja::Value::from_safe_string(escape(&a.link).replace('"', "&quot;")),
            })
        })
        .unwrap_or_else(|_| format!("<pre>{}</pre>", escape(&text)));
    Email {
        subject: subject.chars().filter(|c| !c.is_control()).collect(),
        text,
        html,
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Slack's incoming webhooks: blocks, with a plain-text fallback.
pub fn slack(a: &Alert<'_>) -> Value {
    let fields: Vec<Value> = a
        .facts()
        .into_iter()
        .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{}", slack_escape(&v))}))
        .collect();
    json!({
        "text": format!("{}: {} {}", a.reason(), a.title(), a.link),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": truncate(&format!("{}: {}", a.reason(), a.title()), 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("<{}|{}> · `{}`", a.link, slack_escape(a.short_id()), slack_escape(a.culprit()))},
             "fields": fields},
            {"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Open in Bugbane"}, "url": a.link}
            ]},
        ],
    })
}

fn slack_escape(s: &str) -> String {
    escape(s)
}

/// Discord webhooks: one embed.
pub fn discord(a: &Alert<'_>) -> Value {
    let fields: Vec<Value> = a
        .facts()
        .into_iter()
        .map(|(k, v)| json!({"name": k, "value": truncate(&v, 1000), "inline": true}))
        .collect();
    json!({
        "content": truncate(&format!("{}: {}", a.reason(), a.title()), 1900),
        "embeds": [{
            "title": truncate(&format!("{} {}", a.short_id(), a.title()), 250),
            "url": a.link,
            "description": truncate(a.culprit(), 2000),
            "color": level_color(a.message.pointer("/issue/level").and_then(Value::as_str)),
            "fields": fields,
        }],
    })
}

fn level_color(level: Option<&str>) -> u32 {
    match level {
        Some("fatal") => 0xa3001b,
        Some("warning") => 0xd88b00,
        Some("info") | Some("debug") => 0x2f7de0,
        _ => 0xe03e2f,
    }
}

/// Microsoft Teams (workflow webhooks): an adaptive card.
pub fn teams(a: &Alert<'_>) -> Value {
    let facts: Vec<Value> = a
        .facts()
        .into_iter()
        .map(|(k, v)| json!({"title": k, "value": v}))
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": a.reason(), "weight": "Bolder", "size": "Medium"},
                    {"type": "TextBlock", "text": a.title(), "wrap": true},
                    {"type": "TextBlock", "text": a.culprit(), "isSubtle": true, "wrap": true},
                    {"type": "FactSet", "facts": facts},
                ],
                "actions": [{"type": "Action.OpenUrl", "title": "Open in Bugbane", "url": a.link}],
            },
        }],
    })
}

/// The generic webhook: the whole message plus the link.
pub fn webhook(a: &Alert<'_>) -> Value {
    let mut v = json!({"action": "triggered", "url": a.link});
    if let (Value::Object(out), Value::Object(m)) = (&mut v, a.message) {
        for (k, val) in m {
            out.insert(k.clone(), val.clone());
        }
    }
    v
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Value {
        json!({"reason": "New issue", "rule": "r", "environment": "production", "release": "1.0",
               "project": {"slug": "shop", "org": "acme"},
               "issue": {"id": 7, "short_id": "SHOP-7", "title": "KeyError: <b>'cart'</b>", "culprit": "views in checkout",
                         "level": "error", "times_seen": 3, "user_count": 2}})
    }

    #[test]
    fn email_has_subject_link_and_escaped_html() {
        let m = msg();
        let e = email(&Alert {
            message: &m,
            link: "https://b.example/issues/7/".into(),
        });
        assert_eq!(
            e.subject,
            "[Bugbane] New issue: SHOP-7 — KeyError: <b>'cart'</b>"
        );
        assert!(e.text.contains("https://b.example/issues/7/"));
        assert!(e.text.contains("Environment: production"));
        assert!(e.html.contains("https://b.example/issues/7/"));
        assert!(e.html.contains("&lt;b&gt;"), "{}", e.html);
    }

    #[test]
    fn chat_payloads_carry_the_link() {
        let m = msg();
        let a = Alert {
            message: &m,
            link: "https://b.example/issues/7/".into(),
        };
        assert_eq!(
            slack(&a)["blocks"][2]["elements"][0]["url"],
            "https://b.example/issues/7/"
        );
        assert_eq!(
            discord(&a)["embeds"][0]["url"],
            "https://b.example/issues/7/"
        );
        assert_eq!(
            teams(&a)["attachments"][0]["content"]["actions"][0]["url"],
            "https://b.example/issues/7/"
        );
        let w = webhook(&a);
        assert_eq!(w["issue"]["short_id"], "SHOP-7");
        assert_eq!(w["url"], "https://b.example/issues/7/");
    }
}
