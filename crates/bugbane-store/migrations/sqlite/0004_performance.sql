-- A page load's Web Vitals, on segment spans (JSON: lcp, inp, cls, fcp, ttfb).
ALTER TABLE spans ADD COLUMN vitals TEXT;
-- Segments (transactions, and the root spans span-first SDKs send) by time, covering what
-- the performance summary reads, so it never touches the rows themselves.
CREATE INDEX spans_segments ON spans (project_id, end, name, op, start, status, is_segment) WHERE is_segment = 1;
CREATE INDEX spans_trace_start ON spans (trace_id, start);
DROP INDEX spans_trace;
-- Page loads with Web Vitals (a small share of segments).
CREATE INDEX spans_vitals ON spans (project_id, end) WHERE is_segment = 1 AND vitals IS NOT NULL;
