//! Reads behind the performance views: segments in a period (through a covering partial
//! index), the slowest samples of a transaction, and everything that shares a trace id.

use bugbane_core::perf::{Runs, Segment};
use rusqlite::params;
use serde_json::Value;

use crate::error::Result;
use crate::model::{SegmentSample, TraceError, TraceSpan};
use crate::store::Store;

impl Store {
    /// Durations and failures of a project's segments that ended since `since`, per
    /// transaction name (optionally one). Rows come sorted by name from the covering
    /// index's columns, so each name is allocated once.
    pub async fn segment_runs(
        &self,
        project_id: i64,
        since: f64,
        name: Option<String>,
    ) -> Result<Vec<Runs>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT name, op, (finish - start) * 1000.0,
                   status IS NOT NULL AND status NOT IN ('ok', 'cancelled', 'unknown', '')
                 FROM spans WHERE project_id = ?1 AND is_segment = 1 AND finish >= ?2 AND (name = ?3 OR ?3 IS NULL)
                 ORDER BY name",
            )?;
            let mut out: Vec<Runs> = Vec::new();
            stmt.for_each(params![project_id, since, name], |r| {
                let name: String = r.get(0)?;
                if out.last().is_none_or(|g| g.name != name) {
                    out.push(Runs { name, op: r.get(1)?, ..Default::default() });
                }
                if let Some(g) = out.last_mut() {
                    g.durations_ms.push(r.get(2)?);
                    g.failures += u64::from(r.get::<_, bool>(3)?);
                    if g.op.is_none() {
                        g.op = r.get(1)?;
                    }
                }
                Ok(())
            })?;
            Ok(out)
        })
        .await
    }

    /// Page loads that reported Web Vitals since `since`.
    pub async fn page_loads(&self, project_id: i64, since: f64) -> Result<Vec<Segment>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT name, op, (finish - start) * 1000.0, status, vitals FROM spans
                 WHERE project_id = ?1 AND is_segment = 1 AND finish >= ?2 AND vitals IS NOT NULL",
            )?;
            let rows = stmt.query_map(params![project_id, since], |r| {
                let vitals: Option<String> = r.get(4)?;
                Ok(Segment {
                    name: r.get(0)?,
                    op: r.get(1)?,
                    duration_ms: r.get(2)?,
                    status: r.get(3)?,
                    vitals: vitals.and_then(|v| serde_json::from_str::<Value>(&v).ok()),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// The slowest runs of one transaction since `since`.
    pub async fn slowest_segments(
        &self,
        project_id: i64,
        name: String,
        since: f64,
        limit: i64,
    ) -> Result<Vec<SegmentSample>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT trace_id, span_id, start, (finish - start) * 1000.0, status, release, environment FROM spans
                 WHERE project_id = ?1 AND is_segment = 1 AND finish >= ?2 AND name = ?3
                 ORDER BY finish - start DESC LIMIT ?4",
            )?;
            let rows = stmt.query_map(params![project_id, since, name, limit], |r| {
                Ok(SegmentSample {
                    trace_id: r.get(0)?,
                    span_id: r.get(1)?,
                    start: r.get(2)?,
                    duration_ms: r.get(3)?,
                    status: r.get(4)?,
                    release: r.get(5)?,
                    environment: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// Every span of a trace, in start order, across projects.
    pub async fn trace_spans(&self, trace_id: String) -> Result<Vec<TraceSpan>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT project_id, span_id, parent_span_id, segment_id, name, op, status, start, finish, is_segment
                 FROM spans WHERE trace_id = ?1 ORDER BY start, id LIMIT 10000",
            )?;
            let rows = stmt.query_map([trace_id], |r| {
                Ok(TraceSpan {
                    project_id: r.get(0)?,
                    span_id: r.get(1)?,
                    parent_span_id: r.get(2)?,
                    segment_id: r.get(3)?,
                    name: r.get(4)?,
                    op: r.get(5)?,
                    status: r.get(6)?,
                    start: r.get(7)?,
                    end: r.get(8)?,
                    is_segment: r.get(9)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// Error events of a trace, with their issues.
    pub async fn trace_errors(&self, trace_id: String) -> Result<Vec<TraceError>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT e.project_id, e.event_id, e.issue_id, i.title, e.level, e.timestamp
                 FROM events e JOIN issues i ON i.id = e.issue_id WHERE e.trace_id = ?1 ORDER BY e.timestamp LIMIT 1000",
            )?;
            let rows = stmt.query_map([trace_id], |r| {
                Ok(TraceError {
                    project_id: r.get(0)?,
                    event_id: r.get(1)?,
                    issue_id: r.get(2)?,
                    title: r.get(3)?,
                    level: r.get(4)?,
                    timestamp: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }
}
