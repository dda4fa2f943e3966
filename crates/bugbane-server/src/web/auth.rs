//! Signing in and out, the session cookie, CSRF tokens and the sign-in rate limit.
//!
//! The session cookie holds a random id; the database keeps only its SHA-256 and the
//! session's CSRF token. Forms of signed-in users carry that token; the sign-in form,
//! which has no session yet, uses a double-submit cookie instead.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use bugbane_core::credentials::{hash_token, verify_password};
use bugbane_store::User;
use minijinja::context;

use super::form::{Form, query_param};
use super::render::{WebError, page};
use crate::App;
use crate::access::Access;
use crate::secrets::random_hex;

const SESSION_COOKIE: &str = "bugbane_session";
const LOGIN_CSRF_COOKIE: &str = "bugbane_login_csrf";
/// Sessions last two weeks.
const SESSION_TTL: f64 = 14.0 * 86400.0;
/// Failed sign-ins allowed per client address and per email within [`LIMIT_WINDOW`].
const MAX_FAILURES: u32 = 10;
const LIMIT_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A signed-in user, extracted from the session cookie. Pages that take one refuse
/// anonymous requests by sending them to the sign-in page.
pub(crate) struct Viewer {
    pub user: User,
    pub csrf: String,
    session_hash: String,
}

impl Viewer {
    pub fn access(&self) -> Access {
        Access {
            user_id: Some(self.user.id),
            is_admin: self.user.is_admin,
        }
    }

    /// Refuses a form that does not carry this session's CSRF token.
    pub fn check_csrf(&self, form: &Form) -> Result<(), WebError> {
        match form.get("csrf") {
            Some(t) if constant_time_eq(t.as_bytes(), self.csrf.as_bytes()) => Ok(()),
            _ => Err(WebError::Forbidden(
                "This form has expired or did not come from Bugbane. Go back, reload and try again."
                    .into(),
            )),
        }
    }

    /// Refuses non-admins.
    pub fn require_admin(&self) -> Result<(), WebError> {
        if self.user.is_admin {
            Ok(())
        } else {
            Err(WebError::Forbidden(
                "Only administrators can do this.".into(),
            ))
        }
    }

    /// The hash of this session's cookie (to keep it when others are ended).
    pub fn session_hash(&self) -> &str {
        &self.session_hash
    }
}

impl FromRequestParts<Arc<App>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Response> {
        if let Some(id) = cookie(&parts.headers, SESSION_COOKIE) {
            let session_hash = hash_token(id);
            match app.store.web_session(session_hash.clone()).await {
                Ok(Some(s)) => {
                    return Ok(Viewer {
                        user: s.user,
                        csrf: s.csrf,
                        session_hash,
                    });
                }
                Ok(None) => {}
                Err(e) => return Err(WebError::from(e).into_response()),
            }
        }
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let target = if parts.method == axum::http::Method::GET && next != "/" {
            format!("/login?next={}", super::form::encode(next))
        } else {
            "/login".to_owned()
        };
        Err(Redirect::to(&target).into_response())
    }
}

/// A cookie's value from the request headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn set_cookie(app: &App, name: &str, value: &str, max_age: i64) -> String {
    let secure = if app.config.server.public_url().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Only same-site paths are followed after signing in (no open redirects).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

/// Counts failed sign-ins per client address and per email.
#[derive(Default)]
pub(crate) struct LoginLimiter {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginLimiter {
    fn blocked(&self, keys: &[String]) -> bool {
        let Ok(map) = self.failures.lock() else {
            return false;
        };
        keys.iter().any(|k| {
            map.get(k)
                .is_some_and(|(n, since)| *n >= MAX_FAILURES && since.elapsed() < LIMIT_WINDOW)
        })
    }

    fn fail(&self, keys: &[String]) {
        if let Ok(mut map) = self.failures.lock() {
            map.retain(|_, (_, since)| since.elapsed() < LIMIT_WINDOW);
            for k in keys {
                let e = map.entry(k.clone()).or_insert((0, Instant::now()));
                e.0 += 1;
            }
        }
    }

    fn succeed(&self, keys: &[String]) {
        if let Ok(mut map) = self.failures.lock() {
            for k in keys {
                map.remove(k);
            }
        }
    }
}

fn login_form(
    app: &App,
    csrf: &str,
    next: &str,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let mut resp = page("login.html", context! { csrf, next, email, error });
    *resp.status_mut() = status;
    if let Ok(v) = set_cookie(app, LOGIN_CSRF_COOKIE, csrf, 3600).parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

pub(crate) async fn login_page(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let csrf = cookie(&headers, LOGIN_CSRF_COOKIE)
        .map(str::to_owned)
        .unwrap_or_else(|| random_hex(16));
    let next = query_param(query.as_deref(), "next");
    login_form(
        &app,
        &csrf,
        safe_next(next.as_deref()),
        "",
        None,
        StatusCode::OK,
    )
}

pub(crate) async fn login(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Form,
) -> Result<Response, WebError> {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    let sent = form.get("csrf").unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), sent.as_bytes()) {
        return Err(WebError::Forbidden(
            "The sign-in form expired. Reload the page and try again.".into(),
        ));
    }
    let email = form.get("email").unwrap_or_default().trim().to_owned();
    let password = form.get("password").unwrap_or_default().to_owned();
    let next = safe_next(form.get("next")).to_owned();
    let keys = [
        format!("ip:{}", peer.ip()),
        format!("email:{}", email.to_lowercase()),
    ];
    if app.web_logins.blocked(&keys) {
        return Ok(login_form(
            &app,
            expected,
            &next,
            &email,
            Some("Too many failed sign-ins. Wait a few minutes and try again."),
            StatusCode::TOO_MANY_REQUESTS,
        ));
    }
    let found = app.store.user_credentials(email.clone()).await?;
    // Verifying costs tens of milliseconds of CPU: off the async workers.
    let user = tokio::task::spawn_blocking(move || {
        found.and_then(|(user, hash)| verify_password(&password, &hash).then_some(user))
    })
    .await
    .map_err(|e| WebError::Internal(e.to_string()))?;
    let Some(user) = user else {
        app.web_logins.fail(&keys);
        return Ok(login_form(
            &app,
            expected,
            &next,
            &email,
            Some("Wrong email or password."),
            StatusCode::UNAUTHORIZED,
        ));
    };
    app.web_logins.succeed(&keys);
    let id = random_hex(32);
    app.store
        .create_web_session(hash_token(&id), user.id, random_hex(16), SESSION_TTL)
        .await?;
    let mut resp = Redirect::to(&next).into_response();
    let cookie = set_cookie(&app, SESSION_COOKIE, &id, SESSION_TTL as i64);
    if let Ok(v) = cookie.parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

pub(crate) async fn logout(
    State(app): State<Arc<App>>,
    viewer: Viewer,
    form: Form,
) -> Result<Response, WebError> {
    viewer.check_csrf(&form)?;
    app.store
        .delete_web_session(viewer.session_hash.clone())
        .await?;
    let mut resp = Redirect::to("/login").into_response();
    if let Ok(v) = set_cookie(&app, SESSION_COOKIE, "", 0).parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_site() {
        assert_eq!(safe_next(Some("/issues/1/")), "/issues/1/");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; bugbane_session=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
