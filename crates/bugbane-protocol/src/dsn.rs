//! Data Source Names: `{scheme}://{public_key}[:{secret}]@{host}[:{port}][/{path}]/{project_id}`.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A parsed DSN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dsn {
    pub scheme: String,
    pub public_key: String,
    pub host: String,
    pub port: Option<u16>,
    /// Path prefix between host and project id, without leading or trailing slash.
    pub path: String,
    pub project_id: u64,
}

/// Why a string is not a DSN.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DsnError {
    #[error("dsn has no scheme")]
    NoScheme,
    #[error("dsn has no public key")]
    NoKey,
    #[error("dsn public key is not 32 hex digits")]
    BadKey,
    #[error("dsn has no host")]
    NoHost,
    #[error("dsn port is invalid")]
    BadPort,
    #[error("dsn has no numeric project id")]
    BadProject,
}

impl FromStr for Dsn {
    type Err = DsnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = s.trim().split_once("://").ok_or(DsnError::NoScheme)?;
        let (userinfo, rest) = rest.split_once('@').ok_or(DsnError::NoKey)?;
        let key = userinfo.split(':').next().unwrap_or_default();
        let public_key = crate::auth::parse_public_key(key).ok_or(DsnError::BadKey)?;
        let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
        if hostport.is_empty() {
            return Err(DsnError::NoHost);
        }
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (
                h.to_owned(),
                Some(p.parse().map_err(|_| DsnError::BadPort)?),
            ),
            _ => (hostport.to_owned(), None),
        };
        let path = path.trim_end_matches('/');
        let (prefix, project) = path.rsplit_once('/').unwrap_or(("", path));
        let project_id = project.parse().map_err(|_| DsnError::BadProject)?;
        Ok(Dsn {
            scheme: scheme.to_owned(),
            public_key,
            host,
            port,
            path: prefix.trim_matches('/').to_owned(),
            project_id,
        })
    }
}

impl Dsn {
    /// The base URL SDKs derive endpoints from, e.g. `http://127.0.0.1:9000`.
    pub fn base_url(&self) -> String {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        let path = if self.path.is_empty() {
            String::new()
        } else {
            format!("/{}", self.path)
        };
        format!("{}://{}{}{}", self.scheme, self.host, port, path)
    }

    /// The envelope endpoint URL.
    pub fn envelope_url(&self) -> String {
        format!("{}/api/{}/envelope/", self.base_url(), self.project_id)
    }
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        let path = if self.path.is_empty() {
            String::new()
        } else {
            format!("{}/", self.path)
        };
        write!(
            f,
            "{}://{}@{}{}/{}{}",
            self.scheme, self.public_key, self.host, port, path, self.project_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_round_trips() {
        let d: Dsn = "http://0123456789abcdef0123456789abcdef@localhost:8000/sub/path/42"
            .parse()
            .expect("dsn");
        assert_eq!(d.project_id, 42);
        assert_eq!(d.port, Some(8000));
        assert_eq!(d.path, "sub/path");
        assert_eq!(
            d.envelope_url(),
            "http://localhost:8000/sub/path/api/42/envelope/"
        );
        assert_eq!(
            d.to_string(),
            "http://0123456789abcdef0123456789abcdef@localhost:8000/sub/path/42"
        );
        let d: Dsn = "https://0123456789ABCDEF0123456789abcdef:secret@errors.example.com/7"
            .parse()
            .expect("dsn");
        assert_eq!(d.public_key, "0123456789abcdef0123456789abcdef");
        assert_eq!(d.port, None);
        assert_eq!("nonsense".parse::<Dsn>(), Err(DsnError::NoScheme));
        assert_eq!("http://short@h/1".parse::<Dsn>(), Err(DsnError::BadKey));
        assert_eq!(
            "http://0123456789abcdef0123456789abcdef@h/x".parse::<Dsn>(),
            Err(DsnError::BadProject)
        );
    }
}
