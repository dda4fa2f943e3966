//! Cron monitors: what runs a monitor's schedule expected, and what became of each — ok,
//! failed, timed out, missed, or still in progress — from the check-ins that arrived.
//! Schedules are the SDKs' `monitor_config`: a crontab (`*/5 * * * *`) or an interval
//! (`1 hour`), with a check-in margin and a maximum runtime in minutes.

use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;

/// How often a monitor is expected to run.
#[derive(Clone, Debug)]
pub enum Schedule {
    Crontab(Box<croner::Cron>),
    /// Every so many seconds, counted from the first check-in.
    Interval(f64),
}

/// A monitor's schedule and tolerances.
#[derive(Clone, Debug)]
pub struct MonitorConfig {
    pub schedule: Schedule,
    /// Minutes a check-in may be late.
    pub margin_minutes: f64,
    /// Minutes a run may take before it counts as timed out.
    pub max_runtime_minutes: f64,
    pub description: String,
}

impl MonitorConfig {
    /// Reads an SDK's `monitor_config` (UTC schedules; other time zones are read as UTC).
    pub fn parse(config: &Value) -> Option<MonitorConfig> {
        let sched = config.get("schedule")?;
        let (schedule, description) = match sched.get("type").and_then(Value::as_str)? {
            "crontab" => {
                let pattern = sched.get("value")?.as_str()?;
                let cron = croner::Cron::from_str(pattern).ok()?;
                (
                    Schedule::Crontab(Box::new(cron)),
                    format!("crontab {pattern}"),
                )
            }
            "interval" => {
                let n = sched.get("value")?.as_f64().filter(|n| *n > 0.0)?;
                let unit = sched
                    .get("unit")
                    .and_then(Value::as_str)
                    .unwrap_or("minute");
                let secs = n * match unit {
                    "minute" => 60.0,
                    "hour" => 3600.0,
                    "day" => 86400.0,
                    "week" => 7.0 * 86400.0,
                    "month" => 30.0 * 86400.0,
                    "year" => 365.0 * 86400.0,
                    _ => return None,
                };
                (Schedule::Interval(secs), format!("every {n} {unit}(s)"))
            }
            _ => return None,
        };
        let minutes = |k: &str, default: f64| {
            config
                .get(k)
                .and_then(Value::as_f64)
                .filter(|m| *m >= 0.0)
                .unwrap_or(default)
        };
        Some(MonitorConfig {
            schedule,
            margin_minutes: minutes("checkin_margin", 1.0),
            max_runtime_minutes: minutes("max_runtime", 30.0),
            description,
        })
    }

    /// Expected run times in `(from, to]`, at most `limit`.
    pub fn expected(&self, from: f64, to: f64, limit: usize) -> Vec<f64> {
        match &self.schedule {
            Schedule::Interval(secs) => {
                let mut out = Vec::new();
                let mut t = from + secs;
                while t <= to && out.len() < limit {
                    out.push(t);
                    t += secs;
                }
                out
            }
            Schedule::Crontab(cron) => {
                let Some(start) = chrono::DateTime::from_timestamp(from.floor() as i64, 0) else {
                    return Vec::new();
                };
                cron.iter_after(start)
                    .map(|t| t.timestamp() as f64)
                    .take_while(|t| *t <= to)
                    .take(limit)
                    .collect()
            }
        }
    }
}

/// One run as check-ins reported it: its first check-in's time, and its last status.
#[derive(Clone, Debug, PartialEq)]
pub struct Reported {
    pub check_in_id: String,
    pub started: f64,
    pub status: String,
    pub duration: Option<f64>,
}

/// What happened to one expected (or unexpected) run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Run {
    /// When the schedule expected it (`None` for check-ins off schedule or unscheduled).
    pub expected: Option<f64>,
    pub started: Option<f64>,
    /// `ok`, `failed`, `timed_out`, `missed`, `in_progress`.
    pub outcome: &'static str,
    pub duration: Option<f64>,
    pub check_in_id: Option<String>,
}

fn outcome(r: &Reported, max_runtime: f64, now: f64) -> &'static str {
    match r.status.as_str() {
        "ok" => "ok",
        "error" => "failed",
        "in_progress" if now > r.started + max_runtime * 60.0 => "timed_out",
        "in_progress" => "in_progress",
        _ => "failed",
    }
}

/// The runs of a monitor from its first check-in until `now`, newest first. Without a
/// schedule, every reported run is listed as it is.
pub fn timeline(config: Option<&MonitorConfig>, reported: &[Reported], now: f64) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let max_runtime = config.map_or(30.0, |c| c.max_runtime_minutes);
    let Some(cfg) = config else {
        runs = reported
            .iter()
            .map(|r| Run {
                expected: None,
                started: Some(r.started),
                outcome: outcome(r, max_runtime, now),
                duration: r.duration,
                check_in_id: Some(r.check_in_id.clone()),
            })
            .collect();
        runs.reverse();
        return runs;
    };
    let Some(first) = reported.iter().map(|r| r.started).reduce(f64::min) else {
        return runs;
    };
    let margin = cfg.margin_minutes * 60.0;
    let mut used = vec![false; reported.len()];
    // The first check-in opens the timeline: intervals count from it, crontabs from the
    // slot it falls in.
    let slots = match &cfg.schedule {
        Schedule::Interval(_) => {
            let mut v = vec![first];
            v.extend(cfg.expected(first, now, 10_000));
            v
        }
        Schedule::Crontab(_) => cfg.expected(first - margin - 1.0, now, 10_000),
    };
    for slot in slots {
        let found = reported
            .iter()
            .enumerate()
            .find(|(i, r)| !used[*i] && (r.started - slot).abs() <= margin.max(0.5));
        match found {
            Some((i, r)) => {
                used[i] = true;
                runs.push(Run {
                    expected: Some(slot),
                    started: Some(r.started),
                    outcome: outcome(r, max_runtime, now),
                    duration: r.duration,
                    check_in_id: Some(r.check_in_id.clone()),
                });
            }
            None if now > slot + margin => runs.push(Run {
                expected: Some(slot),
                started: None,
                outcome: "missed",
                duration: None,
                check_in_id: None,
            }),
            None => {}
        }
    }
    for (i, r) in reported.iter().enumerate() {
        if !used[i] {
            runs.push(Run {
                expected: None,
                started: Some(r.started),
                outcome: outcome(r, max_runtime, now),
                duration: r.duration,
                check_in_id: Some(r.check_in_id.clone()),
            });
        }
    }
    runs.sort_by(|a, b| {
        let t = |r: &Run| r.expected.or(r.started).unwrap_or(0.0);
        t(b).total_cmp(&t(a))
    });
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reported(id: &str, started: f64, status: &str) -> Reported {
        Reported {
            check_in_id: id.into(),
            started,
            status: status.into(),
            duration: Some(1.0),
        }
    }

    #[test]
    fn schedules_parse() {
        let c = MonitorConfig::parse(
            &json!({"schedule": {"type": "crontab", "value": "*/5 * * * *"}, "checkin_margin": 2}),
        )
        .expect("crontab");
        assert_eq!(c.margin_minutes, 2.0);
        // 00:00 is a multiple of five minutes.
        assert_eq!(c.expected(0.0, 900.0, 10), vec![300.0, 600.0, 900.0]);
        let i = MonitorConfig::parse(
            &json!({"schedule": {"type": "interval", "value": 1, "unit": "hour"}}),
        )
        .expect("interval");
        assert_eq!(i.expected(0.0, 7200.0, 10), vec![3600.0, 7200.0]);
        assert!(
            MonitorConfig::parse(&json!({"schedule": {"type": "crontab", "value": "nope"}}))
                .is_none()
        );
    }

    #[test]
    fn missed_failed_and_timed_out_runs() {
        let cfg = MonitorConfig::parse(
            &json!({"schedule": {"type": "crontab", "value": "*/5 * * * *"},
                                               "checkin_margin": 1, "max_runtime": 2}),
        )
        .expect("config");
        let t0 = 1_800_000_000.0; // a multiple of 300 seconds
        let runs = timeline(
            Some(&cfg),
            &[
                reported("a", t0 + 5.0, "ok"),
                // nothing near t0 + 300: missed
                reported("c", t0 + 610.0, "error"),
                reported("d", t0 + 905.0, "in_progress"),
            ],
            t0 + 1200.0,
        );
        let outcomes: Vec<&str> = runs.iter().map(|r| r.outcome).collect();
        // Newest first: 1200 is still within its margin (not listed), 900 timed out, 600
        // failed, 300 missed, 0 ok.
        assert_eq!(outcomes, vec!["timed_out", "failed", "missed", "ok"]);
        assert_eq!(runs[2].expected, Some(t0 + 300.0));
        let unscheduled = timeline(
            None,
            &[reported("x", 1.0, "ok"), reported("y", 2.0, "error")],
            3.0,
        );
        assert_eq!(
            unscheduled.iter().map(|r| r.outcome).collect::<Vec<_>>(),
            vec!["failed", "ok"]
        );
    }
}
