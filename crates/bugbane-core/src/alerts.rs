//! Alert rules: what makes an event worth telling someone about. A rule has triggers
//! (any of them fires it), filters (all must match) and actions (where to send). The
//! store evaluates rules as it saves events, with counters it maintains at ingestion; this
//! module decides, from plain facts, whether a rule fires.

use serde::{Deserialize, Serialize};

/// Longest window a frequency trigger may use; minute counters are kept that long.
pub const MAX_WINDOW_MINUTES: u32 = 24 * 60;

/// What makes a rule fire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Trigger {
    /// The first event of a new issue.
    NewIssue,
    /// A resolved issue received an event.
    Regression,
    /// An ignored issue met its condition and became unresolved again.
    Unignored,
    /// The issue was seen more than `count` times in the last `minutes`.
    Frequency { count: u64, minutes: u32 },
    /// More than `count` distinct users saw the issue in the last `minutes`.
    Users { count: u64, minutes: u32 },
    /// A cron monitor's expected run did not check in within its margin.
    MonitorMissed,
    /// A cron monitor's run reported an error or ran past its maximum runtime.
    MonitorFailed,
}

/// Conditions every event must meet for the rule to fire.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Filters {
    /// Only events at this level or more severe (`debug` < `info` < `warning` < `error` <
    /// `fatal`).
    pub level: Option<String>,
    pub environment: Option<String>,
    pub release: Option<String>,
    /// Tags the event must carry, with these values.
    pub tags: Vec<(String, String)>,
    /// Text the title or message must contain (case-insensitive).
    pub message: Option<String>,
}

/// Where a notification goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Slack,
    Discord,
    Teams,
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Slack => "slack",
            Channel::Discord => "discord",
            Channel::Teams => "teams",
            Channel::Webhook => "webhook",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        Some(match s {
            "email" => Channel::Email,
            "slack" => Channel::Slack,
            "discord" => Channel::Discord,
            "teams" => Channel::Teams,
            "webhook" => Channel::Webhook,
            _ => return None,
        })
    }
}

/// The target of an email action meaning "every member of the project's organization".
pub const TEAM: &str = "@team";

/// One destination of a rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Action {
    #[serde(rename = "type")]
    pub channel: Channel,
    /// Email addresses (comma-separated, or [`TEAM`]) or a webhook URL.
    pub target: String,
    /// Key for the HMAC-SHA256 signature of generic webhooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A rule's definition (its id, project and name live beside it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleSpec {
    pub triggers: Vec<Trigger>,
    #[serde(default)]
    pub filters: Filters,
    pub actions: Vec<Action>,
    /// At most one notification per issue per this many minutes (Sentry's "frequency").
    #[serde(default = "default_rate_limit")]
    pub rate_limit_minutes: u32,
}

fn default_rate_limit() -> u32 {
    30
}

impl RuleSpec {
    /// Every new project's rule: email the team about new issues and regressions.
    pub fn default_for_new_project() -> RuleSpec {
        RuleSpec {
            triggers: vec![Trigger::NewIssue, Trigger::Regression],
            filters: Filters::default(),
            actions: vec![Action {
                channel: Channel::Email,
                target: TEAM.into(),
                secret: None,
            }],
            rate_limit_minutes: default_rate_limit(),
        }
    }

    /// Webhook secrets are write-only: an edit that does not restate one keeps the secret
    /// the same action had before.
    pub fn keep_secrets_from(&mut self, old: &RuleSpec) {
        for a in &mut self.actions {
            if a.secret.is_none() {
                a.secret = old
                    .actions
                    .iter()
                    .find(|o| o.channel == a.channel && o.target == a.target)
                    .and_then(|o| o.secret.clone());
            }
        }
    }

    /// Checks the definition, so nothing unusable is stored.
    pub fn validate(&self) -> Result<(), String> {
        if self.triggers.is_empty() {
            return Err("a rule needs at least one trigger".into());
        }
        if self.actions.is_empty() {
            return Err("a rule needs at least one action".into());
        }
        for t in &self.triggers {
            if let Trigger::Frequency { minutes, .. } | Trigger::Users { minutes, .. } = t
                && (*minutes == 0 || *minutes > MAX_WINDOW_MINUTES)
            {
                return Err(format!("a window is 1 to {MAX_WINDOW_MINUTES} minutes"));
            }
        }
        if let Some(l) = &self.filters.level
            && level_rank(l).is_none()
        {
            return Err(format!("unknown level {l:?}"));
        }
        for a in &self.actions {
            let t = a.target.trim();
            match a.channel {
                Channel::Email => {
                    if t != TEAM && !t.split(',').all(|e| e.trim().contains('@')) {
                        return Err(format!("{t:?} is not a list of email addresses"));
                    }
                }
                _ => {
                    if !(t.starts_with("https://") || t.starts_with("http://")) {
                        return Err(format!("{t:?} is not an http(s) URL"));
                    }
                }
            }
        }
        Ok(())
    }
}

fn level_rank(level: &str) -> Option<u8> {
    Some(match level {
        "debug" => 0,
        "info" | "log" => 1,
        "warning" => 2,
        "error" => 3,
        "fatal" => 4,
        _ => return None,
    })
}

/// What the store knows about a saved event when rules are evaluated.
pub struct EventFacts<'a> {
    pub new_issue: bool,
    pub regressed: bool,
    pub unignored: bool,
    pub level: &'a str,
    pub environment: Option<&'a str>,
    pub release: Option<&'a str>,
    pub tags: &'a [(String, String)],
    pub title: &'a str,
    pub message: Option<&'a str>,
}

/// Counters the store reads on demand (only when a frequency or users trigger needs them).
pub trait Windows {
    /// Events of the issue in the last `minutes`.
    fn events(&mut self, minutes: u32) -> u64;
    /// Distinct users of the issue in the last `minutes`.
    fn users(&mut self, minutes: u32) -> u64;
}

/// Whether the event passes the rule's filters.
pub fn matches(f: &Filters, e: &EventFacts<'_>) -> bool {
    if let Some(min) = f.level.as_deref().and_then(level_rank)
        && level_rank(e.level).unwrap_or(3) < min
    {
        return false;
    }
    if f.environment
        .as_deref()
        .is_some_and(|env| e.environment != Some(env))
    {
        return false;
    }
    if f.release.as_deref().is_some_and(|r| e.release != Some(r)) {
        return false;
    }
    if !f
        .tags
        .iter()
        .all(|(k, v)| e.tags.iter().any(|(ek, ev)| ek == k && ev == v))
    {
        return false;
    }
    if let Some(needle) = f.message.as_deref().map(str::to_lowercase) {
        let found = e.title.to_lowercase().contains(&needle)
            || e.message
                .is_some_and(|m| m.to_lowercase().contains(&needle));
        if !found {
            return false;
        }
    }
    true
}

/// Why a rule fired, for the notification's text.
pub fn fires(rule: &RuleSpec, e: &EventFacts<'_>, w: &mut dyn Windows) -> Option<String> {
    if !matches(&rule.filters, e) {
        return None;
    }
    rule.triggers.iter().find_map(|t| match t {
        Trigger::NewIssue if e.new_issue => Some("New issue".to_owned()),
        Trigger::Regression if e.regressed => Some("Regression".to_owned()),
        Trigger::Unignored if e.unignored => Some("Ignored issue is back".to_owned()),
        Trigger::Frequency { count, minutes } => {
            let n = w.events(*minutes);
            (n > *count).then(|| format!("Seen {n} times in {}", window(*minutes)))
        }
        Trigger::Users { count, minutes } => {
            let n = w.users(*minutes);
            (n > *count).then(|| format!("{n} users affected in {}", window(*minutes)))
        }
        _ => None,
    })
}

/// Whether a rule wants to hear about a cron run with this outcome (`missed`, `failed`,
/// `timed_out`), and why. Monitor alerts carry no event, so filters do not apply.
pub fn fires_for_run(rule: &RuleSpec, outcome: &str) -> Option<&'static str> {
    rule.triggers.iter().find_map(|t| match (t, outcome) {
        (Trigger::MonitorMissed, "missed") => Some("Missed cron run"),
        (Trigger::MonitorFailed, "failed") => Some("Failed cron run"),
        (Trigger::MonitorFailed, "timed_out") => Some("Timed-out cron run"),
        _ => None,
    })
}

fn window(minutes: u32) -> String {
    match minutes {
        1 => "1 minute".into(),
        m if m % 1440 == 0 => format!("{} day{}", m / 1440, if m == 1440 { "" } else { "s" }),
        m if m % 60 == 0 => format!("{} hour{}", m / 60, if m == 60 { "" } else { "s" }),
        m => format!("{m} minutes"),
    }
}

/// Translates Sentry's issue-alert conditions (as its API and UI send them) into
/// triggers, so existing rule definitions carry over. Unknown conditions are errors.
pub fn trigger_from_sentry(
    id: &str,
    value: Option<u64>,
    interval: Option<&str>,
) -> Result<Trigger, String> {
    let minutes = || -> Result<u32, String> {
        Ok(match interval.unwrap_or("1h") {
            "1m" => 1,
            "5m" => 5,
            "15m" => 15,
            "1h" => 60,
            "1d" => 1440,
            other => return Err(format!("unsupported interval {other:?}")),
        })
    };
    let name = id.rsplit('.').next().unwrap_or(id);
    Ok(match name {
        "FirstSeenEventCondition" => Trigger::NewIssue,
        "RegressionEventCondition" => Trigger::Regression,
        "ReappearedEventCondition" => Trigger::Unignored,
        "EventFrequencyCondition" => Trigger::Frequency {
            count: value.unwrap_or(100),
            minutes: minutes()?,
        },
        "EventUniqueUserFrequencyCondition" => Trigger::Users {
            count: value.unwrap_or(100),
            minutes: minutes()?,
        },
        other => return Err(format!("unsupported condition {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counts(u64, u64);
    impl Windows for Counts {
        fn events(&mut self, _: u32) -> u64 {
            self.0
        }
        fn users(&mut self, _: u32) -> u64 {
            self.1
        }
    }

    fn facts<'a>(tags: &'a [(String, String)]) -> EventFacts<'a> {
        EventFacts {
            new_issue: false,
            regressed: false,
            unignored: false,
            level: "error",
            environment: Some("production"),
            release: Some("1.0"),
            tags,
            title: "KeyError: 'cart'",
            message: None,
        }
    }

    fn rule(triggers: Vec<Trigger>, filters: Filters) -> RuleSpec {
        RuleSpec {
            triggers,
            filters,
            actions: vec![Action {
                channel: Channel::Webhook,
                target: "http://127.0.0.1:1/".into(),
                secret: None,
            }],
            rate_limit_minutes: 30,
        }
    }

    #[test]
    fn each_trigger_fires_on_its_fact() {
        let tags = [];
        let mut e = facts(&tags);
        let r = rule(
            vec![Trigger::NewIssue, Trigger::Regression, Trigger::Unignored],
            Filters::default(),
        );
        assert_eq!(fires(&r, &e, &mut Counts(0, 0)), None);
        e.new_issue = true;
        assert_eq!(
            fires(&r, &e, &mut Counts(0, 0)).as_deref(),
            Some("New issue")
        );
        e.new_issue = false;
        e.regressed = true;
        assert_eq!(
            fires(&r, &e, &mut Counts(0, 0)).as_deref(),
            Some("Regression")
        );
        e.regressed = false;
        e.unignored = true;
        assert!(fires(&r, &e, &mut Counts(0, 0)).is_some());
    }

    #[test]
    fn windows_fire_above_their_threshold() {
        let tags = [];
        let e = facts(&tags);
        let r = rule(
            vec![Trigger::Frequency {
                count: 100,
                minutes: 60,
            }],
            Filters::default(),
        );
        assert_eq!(fires(&r, &e, &mut Counts(100, 0)), None);
        assert_eq!(
            fires(&r, &e, &mut Counts(101, 0)).as_deref(),
            Some("Seen 101 times in 1 hour")
        );
        let r = rule(
            vec![Trigger::Users {
                count: 5,
                minutes: 5,
            }],
            Filters::default(),
        );
        assert_eq!(
            fires(&r, &e, &mut Counts(0, 6)).as_deref(),
            Some("6 users affected in 5 minutes")
        );
    }

    #[test]
    fn filters_all_have_to_match() {
        let tags = [("region".to_owned(), "eu".to_owned())];
        let e = facts(&tags);
        let ok = |f: Filters| matches(&f, &e);
        assert!(ok(Filters::default()));
        assert!(ok(Filters {
            level: Some("warning".into()),
            ..Default::default()
        }));
        assert!(!ok(Filters {
            level: Some("fatal".into()),
            ..Default::default()
        }));
        assert!(!ok(Filters {
            environment: Some("staging".into()),
            ..Default::default()
        }));
        assert!(ok(Filters {
            release: Some("1.0".into()),
            ..Default::default()
        }));
        assert!(ok(Filters {
            tags: vec![("region".into(), "eu".into())],
            ..Default::default()
        }));
        assert!(!ok(Filters {
            tags: vec![("region".into(), "us".into())],
            ..Default::default()
        }));
        assert!(ok(Filters {
            message: Some("keyerror".into()),
            ..Default::default()
        }));
        assert!(!ok(Filters {
            message: Some("timeout".into()),
            ..Default::default()
        }));
    }

    #[test]
    fn validation_and_sentry_conditions() {
        assert!(RuleSpec::default_for_new_project().validate().is_ok());
        let mut r = rule(
            vec![Trigger::Frequency {
                count: 1,
                minutes: 0,
            }],
            Filters::default(),
        );
        assert!(r.validate().is_err());
        r.triggers = vec![Trigger::NewIssue];
        r.actions[0].target = "ftp://x".into();
        assert!(r.validate().is_err());
        assert_eq!(
            trigger_from_sentry(
                "sentry.rules.conditions.event_frequency.EventFrequencyCondition",
                Some(50),
                Some("5m")
            ),
            Ok(Trigger::Frequency {
                count: 50,
                minutes: 5
            })
        );
        assert_eq!(
            trigger_from_sentry(
                "sentry.rules.conditions.first_seen_event.FirstSeenEventCondition",
                None,
                None
            ),
            Ok(Trigger::NewIssue)
        );
        assert!(trigger_from_sentry("sentry.rules.conditions.nope", None, None).is_err());
        let crons = rule(
            vec![Trigger::MonitorMissed, Trigger::MonitorFailed],
            Filters::default(),
        );
        assert_eq!(fires_for_run(&crons, "missed"), Some("Missed cron run"));
        assert_eq!(
            fires_for_run(&crons, "timed_out"),
            Some("Timed-out cron run")
        );
        assert_eq!(fires_for_run(&crons, "ok"), None);
        assert_eq!(
            fires_for_run(&RuleSpec::default_for_new_project(), "missed"),
            None
        );
    }
}
