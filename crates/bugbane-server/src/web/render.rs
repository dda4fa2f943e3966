//! Templates, the filters they use, error pages and the embedded static files.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, UndefinedBehavior, Value, context};

use crate::error::ApiError;

/// Templates compiled into the binary.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("macros.html", include_str!("../../templates/macros.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("error.html", include_str!("../../templates/error.html")),
    (
        "projects.html",
        include_str!("../../templates/projects.html"),
    ),
    (
        "project_new.html",
        include_str!("../../templates/project_new.html"),
    ),
    (
        "project_setup.html",
        include_str!("../../templates/project_setup.html"),
    ),
    (
        "project_settings.html",
        include_str!("../../templates/project_settings.html"),
    ),
    ("issues.html", include_str!("../../templates/issues.html")),
    ("issue.html", include_str!("../../templates/issue.html")),
    ("event.html", include_str!("../../templates/event.html")),
    ("events.html", include_str!("../../templates/events.html")),
    ("account.html", include_str!("../../templates/account.html")),
    ("alerts.html", include_str!("../../templates/alerts.html")),
    (
        "performance.html",
        include_str!("../../templates/performance.html"),
    ),
    (
        "performance_summary.html",
        include_str!("../../templates/performance_summary.html"),
    ),
    ("trace.html", include_str!("../../templates/trace.html")),
    (
        "feedback.html",
        include_str!("../../templates/feedback.html"),
    ),
    ("logs.html", include_str!("../../templates/logs.html")),
    (
        "releases.html",
        include_str!("../../templates/releases.html"),
    ),
    ("release.html", include_str!("../../templates/release.html")),
    ("crons.html", include_str!("../../templates/crons.html")),
    ("monitor.html", include_str!("../../templates/monitor.html")),
];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // Event data is irregular: a missing field renders as nothing, never as an error.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    for (name, source) in TEMPLATES {
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(template = name, error = %e, "template does not compile");
        }
    }
    env.add_filter("ago", ago);
    env.add_filter("datetime", datetime);
    env.add_filter("number", number);
    env.add_filter("ms", ms);
    env.add_function("sparkline", sparkline);
    env
});

/// Renders a page; a template fault is logged and shown as a plain error page.
pub(crate) fn page(name: &str, ctx: Value) -> Response {
    match ENV.get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %e, "page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>Error</title><p>This page failed to render.</p>"),
            )
                .into_response()
        }
    }
}

/// A failure shown to a person as a page.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WebError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("internal error")]
    Internal(String),
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::NotFound(m) => WebError::NotFound(m),
            ApiError::Forbidden(m) | ApiError::Unauthorized(m) => WebError::Forbidden(m),
            ApiError::Internal(m) => WebError::Internal(m),
            other => WebError::BadRequest(other.to_string()),
        }
    }
}

impl From<bugbane_store::Error> for WebError {
    fn from(e: bugbane_store::Error) -> Self {
        match e {
            bugbane_store::Error::NotFound(what) => WebError::NotFound(format!("{what} not found")),
            bugbane_store::Error::Conflict(msg) => WebError::Conflict(msg),
            other => WebError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title) = match &self {
            WebError::BadRequest(_) => (StatusCode::BAD_REQUEST, "Bad request"),
            WebError::Forbidden(_) => (StatusCode::FORBIDDEN, "Not allowed"),
            WebError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
            WebError::Conflict(_) => (StatusCode::CONFLICT, "Not possible"),
            WebError::Internal(cause) => {
                tracing::error!(%cause, "dashboard request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong")
            }
        };
        let message = match &self {
            WebError::Internal(_) => {
                "Bugbane hit an internal error; the details are in its log.".to_owned()
            }
            other => other.to_string(),
        };
        let mut resp = page("error.html", context! { title, message });
        *resp.status_mut() = status;
        resp
    }
}

/// Security headers on every dashboard response: no framing, no inline script, no
/// sniffing, no referrer leaking issue URLs to other sites.
pub(crate) async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    resp
}

/// The stylesheet, script and icon, compiled in.
pub(crate) async fn static_file(Path(file): Path<String>) -> Response {
    let (body, ty) = match file.as_str() {
        "app.css" => (
            include_str!("../../static/app.css"),
            "text/css; charset=utf-8",
        ),
        "app.js" => (
            include_str!("../../static/app.js"),
            "text/javascript; charset=utf-8",
        ),
        "favicon.svg" => (include_str!("../../static/favicon.svg"), "image/svg+xml"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, ty),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

fn now() -> f64 {
    crate::now()
}

/// "5 minutes ago".
fn ago(ts: Option<f64>) -> String {
    let Some(ts) = ts else { return String::new() };
    let d = now() - ts;
    let (future, d) = if d < 0.0 { (true, -d) } else { (false, d) };
    let s = if d < 45.0 {
        return "just now".into();
    } else if d < 3600.0 {
        plural((d / 60.0).round().max(1.0) as i64, "minute")
    } else if d < 86400.0 {
        plural((d / 3600.0).round() as i64, "hour")
    } else if d < 86400.0 * 60.0 {
        plural((d / 86400.0).round() as i64, "day")
    } else {
        plural((d / (86400.0 * 30.0)).round() as i64, "month")
    };
    if future {
        format!("in {s}")
    } else {
        format!("{s} ago")
    }
}

fn plural(n: i64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// "2026-11-26 06:45:12 UTC".
fn datetime(ts: Option<f64>) -> String {
    let Some(ts) = ts else { return String::new() };
    let s = bugbane_core::time_fmt::format_rfc3339(ts);
    match (s.get(..10), s.get(11..19)) {
        (Some(d), Some(t)) => format!("{d} {t} UTC"),
        _ => s,
    }
}

/// A duration in milliseconds, readably: `850 ms`, `1.24 s`, `0.42 ms`.
fn ms(v: Option<f64>) -> String {
    let v = v.unwrap_or(0.0);
    if v >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.2} ms")
    }
}

/// Thousands separators.
fn number(n: Option<i64>) -> String {
    let n = n.unwrap_or(0);
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// An inline SVG bar chart of counts; built from numbers only, so it is safe to embed.
fn sparkline(counts: Vec<i64>, width: Option<u32>, height: Option<u32>) -> Value {
    let (w, h) = (width.unwrap_or(120) as f64, height.unwrap_or(24) as f64);
    let n = counts.len().max(1) as f64;
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bar = w / n;
    let mut svg = format!(
        r#"<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="events over time">"#
    );
    for (i, c) in counts.iter().enumerate() {
        let bh = if *c > 0 {
            (*c as f64 / max * (h - 1.0)).max(1.0)
        } else {
            0.0
        };
        svg.push_str(&format!(
            r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}"><title>{c}</title></rect>"#,
            i as f64 * bar,
            h - bh,
            (bar - 0.5).max(0.5),
            bh
        ));
    }
    svg.push_str("</svg>");
    Value::from_safe_string(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        for (name, _) in TEMPLATES {
            ENV.get_template(name)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn numbers_and_times_read_well() {
        assert_eq!(number(Some(1234567)), "1,234,567");
        assert_eq!(number(Some(12)), "12");
        assert_eq!(ago(Some(now() - 120.0)), "2 minutes ago");
        assert_eq!(ago(Some(now() - 7200.0)), "2 hours ago");
        assert_eq!(datetime(Some(0.0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(ms(Some(1240.0)), "1.24 s");
        assert_eq!(ms(Some(85.4)), "85 ms");
        assert_eq!(ms(Some(0.421)), "0.42 ms");
    }

    #[test]
    fn sparkline_scales_bars() {
        let svg = sparkline(vec![0, 5, 10], Some(30), Some(11)).to_string();
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains(r#"height="10.00""#), "{svg}");
    }
}
