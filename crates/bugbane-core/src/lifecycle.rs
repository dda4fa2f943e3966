//! The issue lifecycle (Sentry's `GroupStatus`, resolutions, snoozes and regressions).
//!
//! Pure decisions: given an issue's state and an incoming event, what happens to the
//! issue. Storage applies the decision inside the same transaction that records the event.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// Top-level status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Unresolved,
    Resolved,
    Ignored,
}

impl Status {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unresolved => "unresolved",
            Status::Resolved => "resolved",
            Status::Ignored => "ignored",
        }
    }

    /// Parses the API's spelling (`muted` and `archived` are Sentry's older names for ignored).
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "unresolved" => Some(Status::Unresolved),
            "resolved" | "resolvedInNextRelease" => Some(Status::Resolved),
            "ignored" | "muted" | "archived" => Some(Status::Ignored),
            _ => None,
        }
    }
}

/// How an issue was resolved, when a release bounds the resolution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Resolution {
    /// Fixed now: any later event regresses the issue.
    Now,
    /// Fixed in the first release after `current` (the latest release seen when resolved).
    InNextRelease { current: Option<String> },
    /// Fixed in `release`: events from older releases do not regress it.
    InRelease { release: String },
}

/// When an ignored issue comes back by itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IgnoreCondition {
    /// Until this time (UNIX seconds).
    pub until: Option<f64>,
    /// Until this many more events have been seen.
    pub count: Option<u64>,
    /// `times_seen` when the issue was ignored.
    pub base_count: u64,
    /// Until this many more distinct users were affected.
    pub user_count: Option<u64>,
    /// Distinct users when the issue was ignored.
    pub base_users: u64,
}

/// The part of an issue's state the lifecycle needs.
#[derive(Clone, Debug, PartialEq)]
pub struct IssueState {
    pub status: Status,
    pub resolution: Option<Resolution>,
    pub ignore: Option<IgnoreCondition>,
}

/// What an incoming event does to an issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    None,
    /// A resolved issue came back: unresolved, substatus regressed.
    Regressed,
    /// An ignored issue's condition was met: unresolved, substatus ongoing.
    Unignored,
}

/// Decides the transition for an event with `release` at `now`, after counters were
/// updated to `times_seen` and `users`. `cmp(a, b)` orders two releases.
pub fn on_event(
    state: &IssueState,
    release: Option<&str>,
    now: f64,
    times_seen: u64,
    users: u64,
    cmp: &dyn Fn(&str, &str) -> Ordering,
) -> Transition {
    match state.status {
        Status::Unresolved => Transition::None,
        Status::Resolved => match (&state.resolution, release) {
            (None | Some(Resolution::Now), _) => Transition::Regressed,
            // Events without a release never break a release-bound resolution.
            (Some(_), None) => Transition::None,
            (Some(Resolution::InNextRelease { current }), Some(r)) => match current {
                Some(c) if r != c && cmp(r, c) == Ordering::Greater => Transition::Regressed,
                Some(_) => Transition::None,
                None => Transition::Regressed,
            },
            (Some(Resolution::InRelease { release: fixed }), Some(r)) => {
                if cmp(r, fixed) != Ordering::Less {
                    Transition::Regressed
                } else {
                    Transition::None
                }
            }
        },
        Status::Ignored => match &state.ignore {
            Some(c) => {
                let by_time = c.until.is_some_and(|u| now >= u);
                let by_count = c.count.is_some_and(|n| times_seen >= c.base_count + n);
                let by_users = c.user_count.is_some_and(|n| users >= c.base_users + n);
                if by_time || by_count || by_users {
                    Transition::Unignored
                } else {
                    Transition::None
                }
            }
            None => Transition::None,
        },
    }
}

/// Orders releases by semantic version when both have one (`pkg@1.2.3+build`), otherwise
/// by when each was first seen.
pub fn compare_releases(a: &str, b: &str, first_seen_a: f64, first_seen_b: f64) -> Ordering {
    match (semver(a), semver(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => first_seen_a
            .partial_cmp(&first_seen_b)
            .unwrap_or(Ordering::Equal),
    }
}

/// `(numbers, is_release, pre-release)`: a pre-release sorts before its release.
fn semver(r: &str) -> Option<(Vec<u64>, bool, String)> {
    let v = r.rsplit_once('@').map(|(_, v)| v).unwrap_or(r);
    let v = v.split('+').next()?;
    let (core, pre) = match v.split_once('-') {
        Some((c, p)) => (c, p.to_owned()),
        None => (v, String::new()),
    };
    let nums: Option<Vec<u64>> = core
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse().ok())
        .collect();
    let nums = nums.filter(|n| !n.is_empty() && n.len() <= 4)?;
    Some((nums, pre.is_empty(), pre))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        compare_releases(a, b, 0.0, 0.0)
    }

    fn state(status: Status, resolution: Option<Resolution>) -> IssueState {
        IssueState {
            status,
            resolution,
            ignore: None,
        }
    }

    #[test]
    fn regressions() {
        let now = state(Status::Resolved, Some(Resolution::Now));
        assert_eq!(on_event(&now, None, 0.0, 2, 0, &cmp), Transition::Regressed);
        let next = state(
            Status::Resolved,
            Some(Resolution::InNextRelease {
                current: Some("app@1.2.0".into()),
            }),
        );
        assert_eq!(
            on_event(&next, Some("app@1.2.0"), 0.0, 2, 0, &cmp),
            Transition::None
        );
        assert_eq!(
            on_event(&next, Some("app@1.1.9"), 0.0, 2, 0, &cmp),
            Transition::None
        );
        assert_eq!(
            on_event(&next, Some("app@1.10.0"), 0.0, 2, 0, &cmp),
            Transition::Regressed
        );
        assert_eq!(on_event(&next, None, 0.0, 2, 0, &cmp), Transition::None);
        let inrel = state(
            Status::Resolved,
            Some(Resolution::InRelease {
                release: "2.0.0".into(),
            }),
        );
        assert_eq!(
            on_event(&inrel, Some("2.0.0-rc.1"), 0.0, 2, 0, &cmp),
            Transition::None
        );
        assert_eq!(
            on_event(&inrel, Some("2.0.0"), 0.0, 2, 0, &cmp),
            Transition::Regressed
        );
        assert_eq!(
            on_event(&state(Status::Unresolved, None), None, 0.0, 2, 0, &cmp),
            Transition::None
        );
    }

    #[test]
    fn snoozes() {
        let mut s = state(Status::Ignored, None);
        assert_eq!(
            on_event(&s, None, 0.0, 100, 0, &cmp),
            Transition::None,
            "ignored forever"
        );
        s.ignore = Some(IgnoreCondition {
            count: Some(10),
            base_count: 5,
            ..Default::default()
        });
        assert_eq!(on_event(&s, None, 0.0, 14, 0, &cmp), Transition::None);
        assert_eq!(on_event(&s, None, 0.0, 15, 0, &cmp), Transition::Unignored);
        s.ignore = Some(IgnoreCondition {
            until: Some(100.0),
            ..Default::default()
        });
        assert_eq!(on_event(&s, None, 99.0, 1, 0, &cmp), Transition::None);
        assert_eq!(on_event(&s, None, 100.0, 1, 0, &cmp), Transition::Unignored);
    }

    #[test]
    fn release_order() {
        assert_eq!(cmp("app@1.10.0", "app@1.9.9"), Ordering::Greater);
        assert_eq!(cmp("1.0.0-beta", "1.0.0"), Ordering::Less);
        assert_eq!(compare_releases("abc", "def", 2.0, 1.0), Ordering::Greater);
    }
}
