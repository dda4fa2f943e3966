//! The issue search syntax: `is:unresolved level:error release:1.2 !environment:dev
//! user.email:a@b.c browser:Chrome "free text"`.

/// One `key:value` filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    pub key: String,
    pub value: String,
    pub negated: bool,
}

/// A parsed search: filters, and free-text words matched against title and culprit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub terms: Vec<Term>,
    pub text: Vec<String>,
}

/// Parses a search string. Quotes group words; a leading `!` negates a filter.
pub fn parse(q: &str) -> Query {
    let mut out = Query::default();
    for token in tokenize(q) {
        let (negated, body) = match token.strip_prefix('!') {
            Some(rest) => (true, rest.to_owned()),
            None => (false, token.clone()),
        };
        match split_term(&body) {
            Some((key, value)) => {
                let key = match key.as_str() {
                    "env" => "environment".to_owned(),
                    _ => key,
                };
                out.terms.push(Term {
                    key,
                    value,
                    negated,
                });
            }
            None => {
                let t = token.trim_matches('"').to_owned();
                if !t.is_empty() {
                    out.text.push(t);
                }
            }
        }
    }
    out
}

fn split_term(token: &str) -> Option<(String, String)> {
    if token.starts_with('"') {
        return None;
    }
    let (k, v) = token.split_once(':')?;
    let valid_key = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '[' | ']'));
    if !valid_key || v.is_empty() || v.starts_with("//") {
        return None;
    }
    Some((k.to_owned(), v.trim_matches('"').to_owned()))
}

fn tokenize(q: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in q.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    tokens.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_filters_and_text() {
        let q = parse(
            r#"is:unresolved level:error !env:dev user.email:a@b.c tenant:"acme corp" payment failed "exact words""#,
        );
        assert_eq!(q.terms.len(), 5);
        assert_eq!(
            q.terms[2],
            Term {
                key: "environment".into(),
                value: "dev".into(),
                negated: true
            }
        );
        assert_eq!(q.terms[4].value, "acme corp");
        assert_eq!(q.text, vec!["payment", "failed", "exact words"]);
        assert_eq!(parse("").terms.len(), 0);
        assert_eq!(parse("http://x").text, vec!["http://x"]);
    }
}
