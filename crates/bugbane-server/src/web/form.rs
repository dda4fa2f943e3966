//! URL-encoded forms and query strings, with repeated keys kept (bulk actions send one
//! `id` per selected issue).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};

use super::render::WebError;

/// Largest form body accepted; dashboard forms are small.
const MAX_FORM_BYTES: usize = 256 * 1024;

/// A submitted form's fields, in order.
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    #[cfg(test)]
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Form {
        Form(pairs)
    }

    /// The first value of a field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated field.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A field as a number, if present and numeric.
    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        self.get(name).and_then(|v| v.trim().parse().ok())
    }
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = WebError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, WebError> {
        let body = axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES)
            .await
            .map_err(|_| WebError::BadRequest("The form is too large.".into()))?;
        Ok(Form(parse(&body)))
    }
}

fn parse(body: &Bytes) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Every pair of a query string.
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// One value of a query string.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query_pairs(query)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The list offset in a query string's `cursor` (0 when absent or invalid).
pub(crate) fn cursor(query: Option<&str>) -> i64 {
    query_param(query, "cursor")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
        .max(0)
}

/// Percent-encodes a value for a query string.
pub(crate) fn encode(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}
