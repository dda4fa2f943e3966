-- Dropped-event totals per project and period.
CREATE INDEX client_reports_project ON client_reports (project_id, received);
-- Sessions per project and period, covering what release health reads.
CREATE INDEX sessions_started ON sessions (project_id, started, release, status, errors, did);
-- Logs of a trace.
CREATE INDEX logs_trace ON logs (trace_id) WHERE trace_id IS NOT NULL;
-- Issues first seen in a release.
CREATE INDEX issues_first_release ON issues (project_id, first_release);
