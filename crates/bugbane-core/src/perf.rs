//! Performance figures from segments (transactions, and the root spans of span-first
//! SDKs): throughput, failure rate, duration percentiles, Apdex, duration histograms and
//! Web Vitals per page. Sentry's definitions: a failure is any status other than `ok`,
//! `cancelled` and `unknown`; Apdex counts a duration ≤ T as satisfied and ≤ 4T as
//! tolerating.

use serde::Serialize;
use serde_json::Value;

/// One page load, as the store reads it for Web Vitals.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub name: String,
    pub op: Option<String>,
    pub duration_ms: f64,
    pub status: Option<String>,
    pub vitals: Option<Value>,
}

/// The figures of one transaction name.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TransactionStats {
    pub name: String,
    pub op: Option<String>,
    pub count: u64,
    /// Per minute over the period.
    pub throughput: f64,
    pub failure_rate: f64,
    pub p50: f64,
    pub p75: f64,
    pub p95: f64,
    pub p99: f64,
    pub avg: f64,
    pub apdex: f64,
}

/// Whether a status counts as a failure.
pub fn is_failure(status: Option<&str>) -> bool {
    !matches!(status, None | Some("ok" | "cancelled" | "unknown" | ""))
}

/// The `p` quantile (0–1) of sorted values, interpolating linearly between the two
/// nearest ranks.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let rank = p.clamp(0.0, 1.0) * (n - 1) as f64;
            let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
        }
    }
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// One transaction name's runs in a period, as the store reads them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Runs {
    pub name: String,
    pub op: Option<String>,
    pub durations_ms: Vec<f64>,
    pub failures: u64,
}

/// Figures per transaction name, busiest first.
pub fn summarize(groups: Vec<Runs>, apdex_t_ms: f64, period_minutes: f64) -> Vec<TransactionStats> {
    let mut out: Vec<TransactionStats> = groups
        .into_iter()
        .filter(|g| !g.durations_ms.is_empty())
        .map(|g| {
            let n = g.durations_ms.len() as f64;
            let durations = sorted(g.durations_ms);
            let satisfied = durations.iter().filter(|d| **d <= apdex_t_ms).count();
            let tolerating = durations
                .iter()
                .filter(|d| **d > apdex_t_ms && **d <= 4.0 * apdex_t_ms)
                .count();
            TransactionStats {
                name: g.name,
                op: g.op,
                count: durations.len() as u64,
                throughput: n / period_minutes.max(1.0),
                failure_rate: g.failures as f64 / n,
                p50: percentile(&durations, 0.50),
                p75: percentile(&durations, 0.75),
                p95: percentile(&durations, 0.95),
                p99: percentile(&durations, 0.99),
                avg: durations.iter().sum::<f64>() / n,
                apdex: (satisfied as f64 + tolerating as f64 / 2.0) / n,
            }
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    out
}

/// A duration histogram: `buckets` equal-width bins from the fastest to the slowest.
pub fn histogram(durations_ms: &[f64], buckets: usize) -> Vec<(f64, f64, u64)> {
    let buckets = buckets.max(1);
    let (Some(min), Some(max)) = (
        durations_ms.iter().copied().reduce(f64::min),
        durations_ms.iter().copied().reduce(f64::max),
    ) else {
        return Vec::new();
    };
    let width = ((max - min) / buckets as f64).max(f64::EPSILON);
    let mut counts = vec![0u64; buckets];
    for d in durations_ms {
        let i = (((d - min) / width) as usize).min(buckets - 1);
        counts[i] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, c)| (min + i as f64 * width, min + (i + 1) as f64 * width, c))
        .collect()
}

/// Web Vitals of one page: the 75th percentile of each, as Sentry reports them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PageVitals {
    pub page: String,
    pub count: u64,
    pub lcp: Option<f64>,
    pub inp: Option<f64>,
    pub cls: Option<f64>,
    pub fcp: Option<f64>,
    pub ttfb: Option<f64>,
}

/// Web Vitals per page, from the page-load segments that reported any.
pub fn web_vitals(segments: &[Segment]) -> Vec<PageVitals> {
    let mut by_page: std::collections::BTreeMap<&str, Vec<&Value>> = Default::default();
    for s in segments {
        if let Some(v) = &s.vitals {
            by_page.entry(&s.name).or_default().push(v);
        }
    }
    by_page
        .into_iter()
        .map(|(page, vs)| {
            let p75 = |k: &str| {
                let vals: Vec<f64> = vs.iter().filter_map(|v| v.get(k)?.as_f64()).collect();
                (!vals.is_empty()).then(|| percentile(&sorted(vals), 0.75))
            };
            PageVitals {
                page: page.to_owned(),
                count: vs.len() as u64,
                lcp: p75("lcp"),
                inp: p75("inp"),
                cls: p75("cls"),
                fcp: p75("fcp"),
                ttfb: p75("ttfb"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(name: &str, ms: f64, status: &str) -> Segment {
        Segment {
            name: name.into(),
            op: Some("http.server".into()),
            duration_ms: ms,
            status: Some(status.into()),
            vitals: None,
        }
    }

    #[test]
    fn percentiles_interpolate() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.5);
        assert!((percentile(&v, 0.95) - 95.05).abs() < 1e-9);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn summary_figures() {
        let runs = |name: &str, d: &[f64], failures| Runs {
            name: name.into(),
            op: Some("http.server".into()),
            durations_ms: d.to_vec(),
            failures,
        };
        assert!(
            is_failure(Some("internal_error"))
                && !is_failure(Some("cancelled"))
                && !is_failure(None)
        );
        let s = summarize(
            vec![
                runs("/b", &[10.0], 0),
                runs("/a", &[100.0, 500.0, 2000.0, 300.0], 1),
            ],
            300.0,
            60.0,
        );
        assert_eq!(s[0].name, "/a");
        assert_eq!(s[0].count, 4);
        assert_eq!(s[0].failure_rate, 0.25);
        // satisfied: 100, 300; tolerating: 500; frustrated: 2000.
        assert_eq!(s[0].apdex, (2.0 + 0.5) / 4.0);
        assert_eq!(s[0].p50, 400.0);
        assert_eq!(s[0].throughput, 4.0 / 60.0);
        assert_eq!(s[1].name, "/b");
    }

    #[test]
    fn histograms_and_vitals() {
        let h = histogram(&[0.0, 1.0, 2.0, 10.0], 5);
        assert_eq!(h.len(), 5);
        assert_eq!(h.iter().map(|b| b.2).sum::<u64>(), 4);
        assert_eq!(h[0].2, 2);
        assert_eq!(h[4].2, 1);
        let mut a = seg("/", 1.0, "ok");
        a.vitals = Some(serde_json::json!({"lcp": 1000.0, "cls": 0.1}));
        let mut b = seg("/", 1.0, "ok");
        b.vitals = Some(serde_json::json!({"lcp": 2000.0}));
        let v = web_vitals(&[a, b]);
        assert_eq!(v[0].count, 2);
        assert_eq!(v[0].lcp, Some(1750.0));
        assert_eq!(v[0].cls, Some(0.1));
        assert_eq!(v[0].inp, None);
    }
}

/// Orders a trace's spans as a waterfall reads: each span followed by its children
/// (by start time), with its depth. Spans whose parent is missing start new roots.
/// Input: `(span_id, parent_span_id, start)`; output: `(index into the input, depth)`.
pub fn waterfall(spans: &[(&str, Option<&str>, f64)]) -> Vec<(usize, usize)> {
    use std::collections::HashMap;
    let ids: HashMap<&str, usize> = spans.iter().enumerate().map(|(i, s)| (s.0, i)).collect();
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        match s.1.and_then(|p| ids.get(p)).filter(|p| **p != i) {
            Some(p) => children.entry(*p).or_default().push(i),
            None => roots.push(i),
        }
    }
    let by_start = |v: &mut Vec<usize>| v.sort_by(|a, b| spans[*a].2.total_cmp(&spans[*b].2));
    by_start(&mut roots);
    for v in children.values_mut() {
        by_start(v);
    }
    let mut out = Vec::with_capacity(spans.len());
    let mut seen = vec![false; spans.len()];
    let mut stack: Vec<(usize, usize)> = roots.into_iter().rev().map(|r| (r, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        out.push((i, depth));
        if let Some(kids) = children.get(&i) {
            stack.extend(kids.iter().rev().map(|k| (*k, depth + 1)));
        }
    }
    // Spans caught in a parent cycle are still shown, at the top level.
    out.extend((0..spans.len()).filter(|i| !seen[*i]).map(|i| (i, 0)));
    out
}

#[cfg(test)]
mod waterfall_tests {
    use super::waterfall;

    #[test]
    fn children_follow_their_parent() {
        let spans = [
            ("c", Some("a"), 3.0),
            ("a", None, 1.0),
            ("b", Some("a"), 2.0),
            ("d", Some("b"), 2.5),
            ("x", Some("missing"), 0.5),
        ];
        let order: Vec<(&str, usize)> = waterfall(&spans)
            .into_iter()
            .map(|(i, d)| (spans[i].0, d))
            .collect();
        assert_eq!(
            order,
            vec![("x", 0), ("a", 0), ("b", 1), ("d", 2), ("c", 1)]
        );
        let cycle = [("p", Some("q"), 1.0), ("q", Some("p"), 2.0)];
        assert_eq!(waterfall(&cycle).len(), 2);
    }
}
