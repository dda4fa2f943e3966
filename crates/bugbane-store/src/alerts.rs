//! Alert rules, their evaluation as events are saved, and the durable notification queue
//! that the delivery worker drains.
//!
//! A rule that fires writes its notifications in the same transaction as the event that
//! fired it, so an alert is neither lost nor duplicated by a crash; delivery happens later,
//! from the queue, with leases so that only one worker sends a given notification at a time.

use std::collections::HashMap;

use crate::db::{Db, OptionalExtension, Row};
use bugbane_core::ProcessedEvent;
use bugbane_core::alerts::{self, Channel, EventFacts, RuleSpec};
use rusqlite::params;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::ingest::SavedEvent;
use crate::model::{AlertRule, Delivery, Notification};
use crate::store::{Store, count, now};

const RULE_COLS: &str = "id, project_id, name, spec, enabled, created";

fn rule_row(r: &Row<'_>) -> rusqlite::Result<AlertRule> {
    let spec: String = r.get(3)?;
    Ok(AlertRule {
        id: r.get(0)?,
        project_id: r.get(1)?,
        name: r.get(2)?,
        spec: serde_json::from_str(&spec).unwrap_or_else(|_| RuleSpec::default_for_new_project()),
        enabled: r.get(4)?,
        created: r.get(5)?,
    })
}

const NOTIFICATION_COLS: &str = "id, rule_id, project_id, issue_id, channel, target, secret, message, status, attempts, last_error, created, sent";

fn notification_row(r: &Row<'_>) -> rusqlite::Result<Notification> {
    let channel: String = r.get(4)?;
    let message: String = r.get(7)?;
    Ok(Notification {
        id: r.get(0)?,
        rule_id: r.get(1)?,
        project_id: r.get(2)?,
        issue_id: r.get(3)?,
        channel: Channel::parse(&channel).unwrap_or(Channel::Webhook),
        target: r.get(5)?,
        secret: r.get(6)?,
        message: serde_json::from_str(&message).unwrap_or(Value::Null),
        status: r.get(8)?,
        attempts: r.get(9)?,
        last_error: r.get(10)?,
        created: r.get(11)?,
        sent: r.get(12)?,
    })
}

/// Adds a project's default rule (email the team about new issues and regressions).
pub(crate) fn insert_default_rule(tx: &Db, project_id: i64) -> Result<()> {
    let spec = serde_json::to_string(&RuleSpec::default_for_new_project())
        .map_err(|e| Error::Conflict(e.to_string()))?;
    tx.execute(
        "INSERT INTO alert_rules (project_id, name, spec, created) VALUES (?1, 'New issues and regressions', ?2, ?3)",
        params![project_id, spec, now()],
    )?;
    Ok(())
}

/// Rules loaded once per project per saved batch.
#[derive(Default)]
pub(crate) struct RuleCache {
    by_project: HashMap<i64, Vec<AlertRule>>,
}

/// The counters behind frequency and distinct-user triggers, read inside the save
/// transaction (so they include the event being evaluated).
struct TxWindows<'a> {
    tx: &'a Db,
    issue_id: i64,
    now: f64,
    /// Writes the batch's counters of the issue so far, which a save keeps until its end.
    settle: &'a mut dyn FnMut() -> Result<()>,
    failed: Option<Error>,
}

impl alerts::Windows for TxWindows<'_> {
    fn events(&mut self, minutes: u32) -> u64 {
        if let Err(e) = (self.settle)() {
            self.failed = Some(e);
            return 0;
        }
        let since = (self.now / 60.0).floor() as i64 - i64::from(minutes) + 1;
        self.tx
            .prepare_cached(
                "SELECT COALESCE(SUM(count), 0) FROM issue_minutely WHERE issue_id = ?1 AND minute >= ?2",
            )
            .and_then(|mut s| s.query_row(params![self.issue_id, since], |r| r.get::<_, i64>(0)))
            .unwrap_or(0) as u64
    }

    fn users(&mut self, minutes: u32) -> u64 {
        let since = self.now - f64::from(minutes) * 60.0;
        self.tx
            .prepare_cached(
                "SELECT COUNT(*) FROM issue_users WHERE issue_id = ?1 AND last_seen > ?2",
            )
            .and_then(|mut s| s.query_row(params![self.issue_id, since], |r| r.get::<_, i64>(0)))
            .unwrap_or(0) as u64
    }
}

/// Evaluates the project's rules for a saved event and queues the notifications of those
/// that fire (and are not rate-limited for this issue). `settle` writes what the save
/// still holds back of the issue's counters; it is called before they are read.
pub(crate) fn evaluate(
    tx: &Db,
    cache: &mut RuleCache,
    pid: i64,
    ev: &ProcessedEvent,
    saved: &SavedEvent,
    settle: &mut dyn FnMut() -> Result<()>,
) -> Result<()> {
    if let std::collections::hash_map::Entry::Vacant(slot) = cache.by_project.entry(pid) {
        let rules = tx
            .prepare_cached(&format!(
                "SELECT {RULE_COLS} FROM alert_rules WHERE project_id = ?1 AND enabled = 1 ORDER BY id"
            ))?
            .query_map([pid], rule_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        slot.insert(rules);
    }
    let rules = cache.by_project.get(&pid).map_or(&[][..], Vec::as_slice);
    if rules.is_empty() {
        return Ok(());
    }
    let message = ev
        .payload
        .get("logentry")
        .and_then(|l| l.get("formatted").or_else(|| l.get("message")))
        .and_then(Value::as_str);
    let facts = EventFacts {
        new_issue: saved.new_issue,
        regressed: saved.regressed,
        unignored: saved.unignored,
        level: &ev.level,
        environment: ev.environment.as_deref(),
        release: ev.release.as_deref(),
        tags: &ev.tags,
        title: &ev.title,
        message,
    };
    let t = ev.received;
    for rule in rules {
        // Whether it fires first: most events fire no rule (the default one wants new
        // issues and regressions), and this needs no query then.
        let mut windows = TxWindows {
            tx,
            issue_id: saved.issue_id,
            now: t,
            settle: &mut *settle,
            failed: None,
        };
        let fired = alerts::fires(&rule.spec, &facts, &mut windows);
        if let Some(e) = windows.failed {
            return Err(e);
        }
        let Some(reason) = fired else {
            continue;
        };
        let last: Option<f64> = tx
            .prepare_cached(
                "SELECT last_fired FROM alert_fired WHERE rule_id = ?1 AND issue_id = ?2",
            )?
            .query_row(params![rule.id, saved.issue_id], |r| r.get(0))
            .optional()?;
        if last.is_some_and(|l| t < l + f64::from(rule.spec.rate_limit_minutes) * 60.0) {
            continue;
        }
        settle()?;
        tx.prepare_cached(
            "INSERT INTO alert_fired (rule_id, issue_id, last_fired) VALUES (?1, ?2, ?3)
             ON CONFLICT (rule_id, issue_id) DO UPDATE SET last_fired = excluded.last_fired",
        )?
        .execute(params![rule.id, saved.issue_id, t])?;
        let mut msg = issue_message(tx, saved.issue_id)?;
        msg["reason"] = json!(reason);
        msg["rule"] = json!(rule.name);
        msg["event_id"] = json!(ev.event_id);
        msg["environment"] = json!(ev.environment);
        msg["release"] = json!(ev.release);
        enqueue(tx, rule, Some(saved.issue_id), &msg)?;
    }
    Ok(())
}

/// The issue as a notification describes it.
fn issue_message(tx: &Db, issue_id: i64) -> Result<Value> {
    tx
        .prepare_cached(
            "SELECT i.id, i.short_id, p.slug, o.slug, i.title, i.culprit, i.level, i.times_seen, i.user_count, i.first_seen, i.last_seen
             FROM issues i JOIN projects p ON p.id = i.project_id JOIN organizations o ON o.id = p.org_id WHERE i.id = ?1",
        )?
        .query_row([issue_id], |r| {
            let slug: String = r.get(2)?;
            Ok(json!({
                "issue": {
                    "id": r.get::<_, i64>(0)?,
                    "short_id": format!("{}-{}", slug.to_uppercase(), r.get::<_, i64>(1)?),
                    "title": r.get::<_, String>(4)?,
                    "culprit": r.get::<_, String>(5)?,
                    "level": r.get::<_, String>(6)?,
                    "times_seen": r.get::<_, i64>(7)?,
                    "user_count": r.get::<_, i64>(8)?,
                    "first_seen": r.get::<_, f64>(9)?,
                    "last_seen": r.get::<_, f64>(10)?,
                },
                "project": {"slug": slug, "org": r.get::<_, String>(3)?},
            }))
        })
}

fn enqueue(tx: &Db, rule: &AlertRule, issue_id: Option<i64>, msg: &Value) -> Result<usize> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO notifications (rule_id, project_id, issue_id, channel, target, secret, message, status, next_attempt, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8)",
    )?;
    let t = now();
    for a in &rule.spec.actions {
        stmt.execute(params![
            rule.id,
            rule.project_id,
            issue_id,
            a.channel.as_str(),
            a.target,
            a.secret,
            msg.to_string(),
            t
        ])?;
    }
    Ok(rule.spec.actions.len())
}

impl Store {
    /// A project's rules.
    pub async fn alert_rules(&self, project_id: i64) -> Result<Vec<AlertRule>> {
        self.read(move |c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {RULE_COLS} FROM alert_rules WHERE project_id = ?1 ORDER BY id"
            ))?
            .query_map([project_id], rule_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// One rule of a project.
    pub async fn alert_rule(&self, project_id: i64, id: i64) -> Result<Option<AlertRule>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {RULE_COLS} FROM alert_rules WHERE project_id = ?1 AND id = ?2"
            ))?
            .query_row(params![project_id, id], rule_row)
            .optional()
        })
        .await
    }

    /// Creates a rule.
    pub async fn create_alert_rule(
        &self,
        project_id: i64,
        name: String,
        spec: RuleSpec,
    ) -> Result<AlertRule> {
        let json = serde_json::to_string(&spec).map_err(|e| Error::Conflict(e.to_string()))?;
        self.write(move |tx| {
            let id: i64 = tx.query_row(
                "INSERT INTO alert_rules (project_id, name, spec, created) VALUES (?1, ?2, ?3, ?4) RETURNING id",
                params![project_id, name, json, now()],
                |r| r.get(0),
            )?;
            tx.query_row(
                &format!("SELECT {RULE_COLS} FROM alert_rules WHERE id = ?1"),
                [id],
                rule_row,
            )
        })
        .await
    }

    /// Replaces a rule's name, definition and state.
    pub async fn update_alert_rule(
        &self,
        project_id: i64,
        id: i64,
        name: String,
        spec: RuleSpec,
        enabled: bool,
    ) -> Result<()> {
        let json = serde_json::to_string(&spec).map_err(|e| Error::Conflict(e.to_string()))?;
        self.write(move |tx| {
            let n = tx.execute(
                "UPDATE alert_rules SET name = ?3, spec = ?4, enabled = ?5 WHERE project_id = ?1 AND id = ?2",
                params![project_id, id, name, json, enabled],
            )?;
            if n == 0 {
                return Err(Error::NotFound("rule"));
            }
            Ok(())
        })
        .await
    }

    /// Deletes a rule (its delivery log stays, without the rule).
    pub async fn delete_alert_rule(&self, project_id: i64, id: i64) -> Result<()> {
        self.write(move |tx| {
            let n = tx.execute(
                "DELETE FROM alert_rules WHERE project_id = ?1 AND id = ?2",
                params![project_id, id],
            )?;
            if n == 0 {
                return Err(Error::NotFound("rule"));
            }
            tx.execute("DELETE FROM alert_fired WHERE rule_id = ?1", [id])?;
            Ok(())
        })
        .await
    }

    /// Queues a test notification on each of a rule's actions; returns how many.
    pub async fn enqueue_test_notification(&self, project_id: i64, id: i64) -> Result<usize> {
        self.write(move |tx| {
            let rule = tx
                .query_row(
                    &format!("SELECT {RULE_COLS} FROM alert_rules WHERE project_id = ?1 AND id = ?2"),
                    params![project_id, id],
                    rule_row,
                )
                .optional()?
                .ok_or(Error::NotFound("rule"))?;
            let (slug, org): (String, String) = tx.query_row(
                "SELECT p.slug, o.slug FROM projects p JOIN organizations o ON o.id = p.org_id WHERE p.id = ?1",
                [project_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let msg = json!({
                "reason": "Test notification",
                "test": true,
                "rule": rule.name,
                "project": {"slug": slug, "org": org},
                "issue": {"id": null, "short_id": format!("{}-0", slug.to_uppercase()),
                          "title": "This is a test notification from Bugbane", "culprit": "bugbane.alerts",
                          "level": "info", "times_seen": 1, "user_count": 0, "first_seen": now(), "last_seen": now()},
            });
            enqueue(tx, &rule, None, &msg)
        })
        .await
    }

    /// Takes up to `limit` due notifications for sending, leasing them for `lease_secs` so
    /// no other worker sends them meanwhile (a worker that dies leaves them to the next).
    pub async fn claim_notifications(
        &self,
        limit: i64,
        lease_secs: f64,
    ) -> Result<Vec<Notification>> {
        self.write(move |tx| {
            let t = now();
            // Locked rows are another process's claim in progress: skip them, not wait.
            let skip = tx.dialect().skip_locked();
            let rows = tx
                .prepare_cached(&format!(
                    "UPDATE notifications SET lease_until = ?2 WHERE id IN (
                       SELECT id FROM notifications WHERE status = 'pending' AND next_attempt <= ?1
                         AND (lease_until IS NULL OR lease_until < ?1)
                       ORDER BY next_attempt LIMIT ?3{skip})
                     RETURNING {NOTIFICATION_COLS}"
                ))?
                .query_map(params![t, t + lease_secs, limit], notification_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    /// When the next pending notification is due (to sleep until then).
    pub async fn next_notification_due(&self) -> Result<Option<f64>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT MIN(GREATEST(next_attempt, COALESCE(lease_until, 0))) FROM notifications WHERE status = 'pending'",
            )?
            .query_row(params![], |r| r.get(0))
        })
        .await
    }

    /// Records how a delivery attempt went.
    pub async fn finish_notification(&self, id: i64, outcome: Delivery) -> Result<()> {
        self.write(move |tx| {
            let t = now();
            let (status, error, next) = match outcome {
                Delivery::Sent => ("sent", None, t),
                Delivery::Retry { error, at } => ("pending", Some(error), at),
                Delivery::Failed(e) => ("failed", Some(e), t),
                Delivery::Skipped(e) => ("skipped", Some(e), t),
            };
            tx.execute(
                "UPDATE notifications SET status = ?2, attempts = attempts + 1, last_error = COALESCE(?3, last_error), next_attempt = ?4,
                   lease_until = NULL, sent = CASE WHEN ?2 = 'sent' THEN ?5 ELSE sent END
                 WHERE id = ?1",
                params![id, status, error, next, t],
            )?;
            Ok(())
        })
        .await
    }

    /// A rule's most recent notifications, newest first (its delivery log).
    pub async fn deliveries(
        &self,
        project_id: i64,
        rule_id: i64,
        limit: i64,
    ) -> Result<Vec<Notification>> {
        self.read(move |c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {NOTIFICATION_COLS} FROM notifications WHERE project_id = ?1 AND rule_id = ?2 ORDER BY id DESC LIMIT ?3"
            ))?
            .query_map(params![project_id, rule_id, limit], notification_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// Notifications in a state, for operators and tests.
    pub async fn notification_count(&self, status: String) -> Result<i64> {
        self.read(move |c| {
            count(
                c,
                "SELECT COUNT(*) FROM notifications WHERE status = ?1",
                [status],
            )
        })
        .await
    }

    /// Queues the notifications a monitor's bad runs call for: each run (its time and
    /// outcome) after the monitor's mark and up to `up_to` is checked against the
    /// project's rules once, and the mark moves to `up_to` in the same transaction.
    pub async fn queue_monitor_alerts(
        &self,
        project_id: i64,
        slug: String,
        runs: Vec<(f64, String)>,
        up_to: f64,
    ) -> Result<usize> {
        self.write(move |tx| {
            let mark: Option<f64> = tx
                .query_row(
                    "SELECT alerted_until FROM monitors WHERE project_id = ?1 AND slug = ?2",
                    params![project_id, slug],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            let mark = mark.unwrap_or(0.0);
            let rules = tx
                .prepare_cached(&format!(
                    "SELECT {RULE_COLS} FROM alert_rules WHERE project_id = ?1 AND enabled = 1 ORDER BY id"
                ))?
                .query_map([project_id], rule_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let (pslug, org): (String, String) = tx.query_row(
                "SELECT p.slug, o.slug FROM projects p JOIN organizations o ON o.id = p.org_id WHERE p.id = ?1",
                [project_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let mut queued = 0;
            for (at, outcome) in runs.iter().filter(|(t, _)| *t > mark && *t <= up_to) {
                for rule in &rules {
                    let Some(reason) = alerts::fires_for_run(&rule.spec, outcome) else {
                        continue;
                    };
                    let when = crate::store::format_time(*at);
                    let msg = json!({
                        "reason": reason,
                        "rule": rule.name,
                        "monitor": slug,
                        "outcome": outcome,
                        "run_at": at,
                        "project": {"slug": pslug, "org": org},
                        "issue": {"id": null, "short_id": format!("CRON {slug}"),
                                  "title": format!("{slug}: {} run expected at {when}", outcome.replace('_', " ")),
                                  "culprit": format!("cron monitor {slug}"), "level": "error",
                                  "times_seen": 1, "user_count": 0, "first_seen": at, "last_seen": at},
                    });
                    queued += enqueue(tx, rule, None, &msg)?;
                }
            }
            tx.execute(
                "UPDATE monitors SET alerted_until = GREATEST(COALESCE(alerted_until, 0), ?3) WHERE project_id = ?1 AND slug = ?2",
                params![project_id, slug, up_to],
            )?;
            Ok(queued)
        })
        .await
    }

    /// Emails of the members of a project's organization (the `@team` target).
    pub async fn team_emails(&self, project_id: i64) -> Result<Vec<String>> {
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT u.email FROM users u JOIN org_members m ON m.user_id = u.id JOIN projects p ON p.org_id = m.org_id
                 WHERE p.id = ?1 ORDER BY u.email",
            )?
            .query_map([project_id], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?)
        })
        .await
    }
}
