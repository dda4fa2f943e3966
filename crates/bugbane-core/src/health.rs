//! Release health from sessions: how many sessions and users each release had, how many
//! crashed, ended abnormally or saw errors, and its adoption. Sentry's definitions: a
//! session is crashed, abnormal, errored (an `errored` status, or any error in an
//! otherwise healthy session) or healthy; crash-free rates count sessions (and distinct
//! users) without a crash.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

/// One session's final state (a session update stream reduced to its latest update).
#[derive(Clone, Debug, PartialEq)]
pub struct SessionFacts {
    pub release: String,
    pub status: String,
    pub errors: i64,
    pub did: Option<String>,
}

/// Pre-aggregated counts (request-mode SDKs send these instead of single sessions).
#[derive(Clone, Debug, PartialEq)]
pub struct AggregateFacts {
    pub release: String,
    pub exited: i64,
    pub errored: i64,
    pub abnormal: i64,
    pub crashed: i64,
}

/// One release's health.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReleaseHealth {
    pub release: String,
    pub sessions: i64,
    pub healthy: i64,
    pub errored: i64,
    pub abnormal: i64,
    pub crashed: i64,
    pub users: i64,
    pub crashed_users: i64,
    /// Share of sessions without a crash (`None` without sessions).
    pub crash_free_sessions: Option<f64>,
    /// Share of users without a crashed session (`None` without identified users).
    pub crash_free_users: Option<f64>,
    /// This release's share of all the sessions given.
    pub adoption: f64,
}

/// Health per release, most adopted first.
pub fn release_health(
    sessions: &[SessionFacts],
    aggregates: &[AggregateFacts],
) -> Vec<ReleaseHealth> {
    type Acc<'a> = (ReleaseHealth, HashSet<&'a str>, HashSet<&'a str>);
    let mut by: BTreeMap<&str, Acc<'_>> = BTreeMap::new();
    for s in sessions {
        let (h, users, crashed_users) = by.entry(s.release.as_str()).or_default();
        h.sessions += 1;
        match s.status.as_str() {
            "crashed" => h.crashed += 1,
            "abnormal" => h.abnormal += 1,
            "errored" => h.errored += 1,
            _ if s.errors > 0 => h.errored += 1,
            _ => h.healthy += 1,
        }
        if let Some(d) = s.did.as_deref() {
            users.insert(d);
            if s.status == "crashed" {
                crashed_users.insert(d);
            }
        }
    }
    for a in aggregates {
        let (h, _, _) = by.entry(a.release.as_str()).or_default();
        h.sessions += a.exited + a.errored + a.abnormal + a.crashed;
        h.healthy += a.exited;
        h.errored += a.errored;
        h.abnormal += a.abnormal;
        h.crashed += a.crashed;
    }
    let total: i64 = by.values().map(|(h, _, _)| h.sessions).sum();
    let mut out: Vec<ReleaseHealth> = by
        .into_iter()
        .map(|(release, (mut h, users, crashed_users))| {
            h.release = release.to_owned();
            h.users = users.len() as i64;
            h.crashed_users = crashed_users.len() as i64;
            h.crash_free_sessions =
                (h.sessions > 0).then(|| 1.0 - h.crashed as f64 / h.sessions as f64);
            h.crash_free_users =
                (h.users > 0).then(|| 1.0 - h.crashed_users as f64 / h.users as f64);
            h.adoption = if total > 0 {
                h.sessions as f64 / total as f64
            } else {
                0.0
            };
            h
        })
        .collect();
    out.sort_by(|a, b| {
        b.sessions
            .cmp(&a.sessions)
            .then_with(|| a.release.cmp(&b.release))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(release: &str, status: &str, errors: i64, did: &str) -> SessionFacts {
        SessionFacts {
            release: release.into(),
            status: status.into(),
            errors,
            did: (!did.is_empty()).then(|| did.into()),
        }
    }

    #[test]
    fn rates_count_sessions_and_users() {
        let sessions = [
            s("1.0", "exited", 0, "a"),
            s("1.0", "crashed", 1, "a"),
            s("1.0", "exited", 2, "b"),
            s("1.0", "abnormal", 0, ""),
            s("2.0", "exited", 0, "c"),
        ];
        let aggregates = [AggregateFacts {
            release: "2.0".into(),
            exited: 3,
            errored: 1,
            abnormal: 0,
            crashed: 1,
        }];
        let h = release_health(&sessions, &aggregates);
        let one = h.iter().find(|r| r.release == "1.0").expect("1.0");
        assert_eq!(
            (
                one.sessions,
                one.healthy,
                one.errored,
                one.abnormal,
                one.crashed
            ),
            (4, 1, 1, 1, 1)
        );
        assert_eq!(one.crash_free_sessions, Some(0.75));
        assert_eq!((one.users, one.crashed_users), (2, 1));
        assert_eq!(one.crash_free_users, Some(0.5));
        let two = &h[0];
        assert_eq!(two.release, "2.0");
        assert_eq!(two.sessions, 6);
        assert_eq!(two.crash_free_sessions, Some(5.0 / 6.0));
        assert_eq!(two.adoption, 0.6);
        assert_eq!(one.adoption, 0.4);
    }
}
