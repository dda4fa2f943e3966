//! One connection type over both engines, so every query is written once.
//!
//! Queries are written in the SQL both SQLite and PostgreSQL accept, with `?N`
//! placeholders (rewritten to `$N` for PostgreSQL), and bind and read values through
//! rusqlite's dynamic value types. PostgreSQL values are converted leniently in both
//! directions (an integer binds to a `double precision` column, a `numeric` sum reads as
//! an integer when it is whole), which gives both engines SQLite's forgiving typing. The
//! few constructs that differ have helpers on [`Dialect`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error as StdError;

use bytes::BytesMut;
use postgres::types::{FromSql, IsNull, ToSql as PgToSql, Type, to_sql_checked};
use rusqlite::ToSql;
use rusqlite::types::{FromSql as SqlFromSql, ToSqlOutput, Value, ValueRef};

use crate::error::{Error, Result};

/// The SQL spoken by a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Case-insensitive `LIKE`.
    pub(crate) fn ilike(self) -> &'static str {
        match self {
            Dialect::Sqlite => "LIKE",
            Dialect::Postgres => "ILIKE",
        }
    }

    /// The text of top-level key `key` (an SQL expression giving the key's name) of a
    /// JSON text column, or of that key's `sub` field.
    pub(crate) fn json_text(self, column: &str, key: &str, sub: Option<&str>) -> String {
        match (self, sub) {
            (Dialect::Sqlite, None) => {
                format!("CAST(json_extract({column}, '$.\"' || {key} || '\"') AS TEXT)")
            }
            (Dialect::Sqlite, Some(sub)) => {
                format!("CAST(json_extract({column}, '$.\"' || {key} || '\".{sub}') AS TEXT)")
            }
            (Dialect::Postgres, None) => {
                format!("(CAST({column} AS jsonb) ->> CAST({key} AS TEXT))")
            }
            (Dialect::Postgres, Some(sub)) => {
                format!("(CAST({column} AS jsonb) -> CAST({key} AS TEXT) ->> '{sub}')")
            }
        }
    }

    /// Suffix for a `SELECT` that claims rows another process may be claiming too.
    pub(crate) fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }
}

/// Parameters of a statement: `params![..]`, an array, or a slice of `&dyn ToSql`.
pub(crate) trait Params {
    fn values(&self) -> Vec<&dyn ToSql>;
}

impl<T: ToSql> Params for &[T] {
    fn values(&self) -> Vec<&dyn ToSql> {
        self.iter().map(|v| v as &dyn ToSql).collect()
    }
}

impl<T: ToSql, const N: usize> Params for [T; N] {
    fn values(&self) -> Vec<&dyn ToSql> {
        self.iter().map(|v| v as &dyn ToSql).collect()
    }
}

impl<T: ToSql> Params for &Vec<T> {
    fn values(&self) -> Vec<&dyn ToSql> {
        self.iter().map(|v| v as &dyn ToSql).collect()
    }
}

/// A column position (a trait, so `r.get(0)` infers like rusqlite's).
pub(crate) trait ColumnIndex {
    fn index(self) -> usize;
}

impl ColumnIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// A result row of either engine.
pub(crate) enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Pg(&'a [Value]),
}

impl Row<'_> {
    /// Column `idx` as `T`, converted as rusqlite converts SQLite values.
    pub(crate) fn get<I: ColumnIndex, T: SqlFromSql>(&self, idx: I) -> rusqlite::Result<T> {
        let idx = idx.index();
        match self {
            Row::Sqlite(r) => r.get(idx),
            Row::Pg(values) => {
                let v = values
                    .get(idx)
                    .ok_or(rusqlite::Error::InvalidColumnIndex(idx))?;
                T::column_result(ValueRef::from(v)).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        idx,
                        ValueRef::from(v).data_type(),
                        Box::new(e),
                    )
                })
            }
        }
    }
}

/// `.optional()` for single-row queries: no row is `None`, not an error.
pub(crate) trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::Sqlite(rusqlite::Error::QueryReturnedNoRows)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

pub(crate) struct PgConn {
    client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
}

enum Inner {
    Sqlite(rusqlite::Connection),
    Pg(Box<RefCell<PgConn>>),
}

/// A connection to either engine.
pub(crate) struct Db {
    inner: Inner,
}

impl Db {
    pub(crate) fn sqlite(conn: rusqlite::Connection) -> Db {
        Db {
            inner: Inner::Sqlite(conn),
        }
    }

    /// Connects to the PostgreSQL database at `url`.
    pub(crate) fn connect_pg(url: &str) -> Result<Db> {
        let client = postgres::Client::connect(url, postgres::NoTls)?;
        Ok(Db {
            inner: Inner::Pg(Box::new(RefCell::new(PgConn {
                client,
                statements: HashMap::new(),
            }))),
        })
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match self.inner {
            Inner::Sqlite(_) => Dialect::Sqlite,
            Inner::Pg(_) => Dialect::Postgres,
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas, backups).
    pub(crate) fn as_sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.inner {
            Inner::Sqlite(c) => Some(c),
            Inner::Pg(_) => None,
        }
    }

    /// Runs several statements without parameters.
    pub(crate) fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Inner::Pg(p) => Ok(p.borrow_mut().client.batch_execute(sql)?),
        }
    }

    /// Prepares `sql` (cached per connection).
    pub(crate) fn prepare_cached(&self, sql: &str) -> Result<Stmt<'_>> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(Stmt::Sqlite(c.prepare_cached(sql)?)),
            Inner::Pg(p) => {
                let mut pg = p.borrow_mut();
                let stmt = match pg.statements.get(sql) {
                    Some(s) => s.clone(),
                    None => {
                        let s = pg.client.prepare(&pg_placeholders(sql))?;
                        pg.statements.insert(sql.to_owned(), s.clone());
                        s
                    }
                };
                Ok(Stmt::Pg(p, stmt))
            }
        }
    }

    /// Prepares one-off `sql` (built at run time, so not worth caching).
    pub(crate) fn prepare(&self, sql: &str) -> Result<Stmt<'_>> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(Stmt::SqliteOnce(c.prepare(sql)?)),
            Inner::Pg(p) => {
                let stmt = p.borrow_mut().client.prepare(&pg_placeholders(sql))?;
                Ok(Stmt::Pg(p, stmt))
            }
        }
    }

    pub(crate) fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    pub(crate) fn query_row<T, P, F>(&self, sql: &str, params: P, f: F) -> Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    /// Starts a transaction; it rolls back when dropped uncommitted.
    pub(crate) fn transaction(&mut self) -> Result<Tx<'_>> {
        self.execute_batch("BEGIN")?;
        Ok(Tx {
            db: self,
            done: false,
        })
    }
}

/// An open transaction; dereferences to its connection.
pub(crate) struct Tx<'a> {
    db: &'a mut Db,
    done: bool,
}

impl Tx<'_> {
    pub(crate) fn commit(mut self) -> Result<()> {
        self.done = true;
        self.db.execute_batch("COMMIT")
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Db;
    fn deref(&self) -> &Db {
        self.db
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.done
            && let Err(e) = self.db.execute_batch("ROLLBACK")
        {
            tracing::warn!(error = %e, "rollback failed");
        }
    }
}

/// A prepared statement.
pub(crate) enum Stmt<'a> {
    Sqlite(rusqlite::CachedStatement<'a>),
    SqliteOnce(rusqlite::Statement<'a>),
    Pg(&'a RefCell<PgConn>, postgres::Statement),
}

impl Stmt<'_> {
    pub(crate) fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        let values = params.values();
        match self {
            Stmt::Sqlite(s) => Ok(s.execute(rusqlite::params_from_iter(values))?),
            Stmt::SqliteOnce(s) => Ok(s.execute(rusqlite::params_from_iter(values))?),
            Stmt::Pg(p, s) => {
                let args = pg_args(&values);
                Ok(p.borrow_mut().client.execute(&*s, &pg_refs(&args))? as usize)
            }
        }
    }

    pub(crate) fn query_row<T, P, F>(&mut self, params: P, f: F) -> Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        let mut f = Some(f);
        let mut rows = self.query_map(params, |r| match f.take() {
            Some(f) => f(r).map(Some),
            None => Ok(None),
        })?;
        match rows.next() {
            Some(Ok(Some(v))) => Ok(v),
            Some(Err(e)) => Err(e.into()),
            _ => Err(rusqlite::Error::QueryReturnedNoRows.into()),
        }
    }

    /// Calls `f` on each row in turn (SQLite streams them; nothing is collected).
    pub(crate) fn for_each<P, F>(&mut self, params: P, mut f: F) -> Result<()>
    where
        P: Params,
        F: FnMut(&Row<'_>) -> Result<()>,
    {
        let values = params.values();
        let mut rows = match self {
            Stmt::Sqlite(s) => s.query(rusqlite::params_from_iter(values))?,
            Stmt::SqliteOnce(s) => s.query(rusqlite::params_from_iter(values))?,
            Stmt::Pg(p, s) => {
                let args = pg_args(&values);
                let rows = p.borrow_mut().client.query(&*s, &pg_refs(&args))?;
                for row in rows {
                    let mut values = Vec::with_capacity(row.len());
                    for i in 0..row.len() {
                        values.push(row.try_get::<_, PgValue>(i)?.0);
                    }
                    f(&Row::Pg(&values))?;
                }
                return Ok(());
            }
        };
        while let Some(r) = rows.next()? {
            f(&Row::Sqlite(r))?;
        }
        Ok(())
    }

    /// All rows mapped by `f`, as an iterator of results (like rusqlite's).
    pub(crate) fn query_map<T, P, F>(
        &mut self,
        params: P,
        mut f: F,
    ) -> Result<std::vec::IntoIter<rusqlite::Result<T>>>
    where
        P: Params,
        F: FnMut(&Row<'_>) -> rusqlite::Result<T>,
    {
        let mut out = Vec::new();
        self.for_each(params, |r| {
            out.push(f(r));
            Ok(())
        })?;
        Ok(out.into_iter())
    }
}

fn pg_refs(args: &[PgValue]) -> Vec<&(dyn PgToSql + Sync)> {
    args.iter().map(|a| a as &(dyn PgToSql + Sync)).collect()
}

fn pg_args(values: &[&dyn ToSql]) -> Vec<PgValue> {
    values
        .iter()
        .map(|v| {
            PgValue(match v.to_sql() {
                Ok(ToSqlOutput::Borrowed(r)) => Value::from(r),
                Ok(ToSqlOutput::Owned(v)) => v,
                _ => Value::Null,
            })
        })
        .collect()
}

/// Rewrites `?N` and `?` placeholders to PostgreSQL's `$N`, outside string literals.
fn pg_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut in_string = false;
    let mut next = 1;
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_string = !in_string;
                out.push(c);
            }
            '?' if !in_string => {
                out.push('$');
                if chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        out.push(d);
                        chars.next();
                    }
                } else {
                    out.push_str(&next.to_string());
                    next += 1;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// A dynamically typed value crossing to or from PostgreSQL.
#[derive(Debug)]
struct PgValue(Value);

type BoxError = Box<dyn StdError + Sync + Send>;

impl PgToSql for PgValue {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, BoxError> {
        match (&self.0, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Integer(i), t) if *t == Type::INT8 => PgToSql::to_sql(&i, ty, out),
            (Value::Integer(i), t) if *t == Type::INT4 => {
                PgToSql::to_sql(&i32::try_from(*i)?, ty, out)
            }
            (Value::Integer(i), t) if *t == Type::INT2 => {
                PgToSql::to_sql(&i16::try_from(*i)?, ty, out)
            }
            (Value::Integer(i), t) if *t == Type::FLOAT8 => PgToSql::to_sql(&(*i as f64), ty, out),
            (Value::Integer(i), t) if *t == Type::FLOAT4 => PgToSql::to_sql(&(*i as f32), ty, out),
            (Value::Integer(i), t) if *t == Type::BOOL => PgToSql::to_sql(&(*i != 0), ty, out),
            (Value::Real(f), t) if *t == Type::FLOAT8 => PgToSql::to_sql(&f, ty, out),
            (Value::Real(f), t) if *t == Type::FLOAT4 => PgToSql::to_sql(&(*f as f32), ty, out),
            (Value::Real(f), t) if *t == Type::INT8 => {
                PgToSql::to_sql(&(f.trunc() as i64), ty, out)
            }
            (Value::Real(f), t) if *t == Type::INT4 => {
                PgToSql::to_sql(&(f.trunc() as i32), ty, out)
            }
            (Value::Text(s), t) if *t == Type::JSONB => {
                out.extend_from_slice(&[1]);
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            (Value::Text(s), t) if *t == Type::INT8 => PgToSql::to_sql(&s.parse::<i64>()?, ty, out),
            (Value::Text(s), t) if *t == Type::FLOAT8 => {
                PgToSql::to_sql(&s.parse::<f64>()?, ty, out)
            }
            (Value::Text(s), _) => {
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            (Value::Blob(b), t) if *t == Type::BYTEA => PgToSql::to_sql(&b, ty, out),
            (Value::Blob(b), _) => {
                out.extend_from_slice(b);
                Ok(IsNull::No)
            }
            (Value::Integer(i), _) => {
                out.extend_from_slice(i.to_string().as_bytes());
                Ok(IsNull::No)
            }
            (Value::Real(f), _) => {
                out.extend_from_slice(f.to_string().as_bytes());
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(ty: &Type) -> bool {
        !matches!(ty.kind(), postgres::types::Kind::Array(_))
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for PgValue {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> std::result::Result<Self, BoxError> {
        let v = if *ty == Type::BOOL {
            Value::Integer(i64::from(bool::from_sql(ty, raw)?))
        } else if *ty == Type::INT2 {
            Value::Integer(i64::from(i16::from_sql(ty, raw)?))
        } else if *ty == Type::INT4 {
            Value::Integer(i64::from(i32::from_sql(ty, raw)?))
        } else if *ty == Type::INT8 {
            Value::Integer(i64::from_sql(ty, raw)?)
        } else if *ty == Type::OID {
            Value::Integer(i64::from(u32::from_sql(ty, raw)?))
        } else if *ty == Type::FLOAT4 {
            Value::Real(f64::from(f32::from_sql(ty, raw)?))
        } else if *ty == Type::FLOAT8 {
            Value::Real(f64::from_sql(ty, raw)?)
        } else if *ty == Type::NUMERIC {
            numeric(raw)?
        } else if *ty == Type::BYTEA {
            Value::Blob(raw.to_vec())
        } else if *ty == Type::JSONB {
            Value::Text(String::from_utf8(raw.get(1..).unwrap_or(&[]).to_vec())?)
        } else {
            Value::Text(String::from_utf8(raw.to_vec())?)
        };
        Ok(PgValue(v))
    }

    fn from_sql_null(_: &Type) -> std::result::Result<Self, BoxError> {
        Ok(PgValue(Value::Null))
    }

    fn accepts(ty: &Type) -> bool {
        !matches!(ty.kind(), postgres::types::Kind::Array(_))
    }
}

/// Decodes PostgreSQL's binary `numeric` (what `SUM` and `AVG` return): an integer when
/// whole, else a float.
fn numeric(raw: &[u8]) -> std::result::Result<Value, BoxError> {
    let word = |i: usize| -> std::result::Result<i16, BoxError> {
        let b = raw.get(i * 2..i * 2 + 2).ok_or("short numeric")?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    };
    let (ndigits, weight, sign, dscale) = (word(0)?, word(1)?, word(2)? as u16, word(3)?);
    if sign == 0xC000 {
        return Ok(Value::Real(f64::NAN));
    }
    let mut v = 0f64;
    for i in 0..ndigits.max(0) as usize {
        let digit = f64::from(word(4 + i)?);
        v += digit * 10000f64.powi(i32::from(weight) - i as i32);
    }
    if sign == 0x4000 {
        v = -v;
    }
    Ok(if dscale == 0 && v.abs() < 9.0e15 {
        Value::Integer(v as i64)
    } else {
        Value::Real(v)
    })
}

#[cfg(test)]
mod tests {
    use super::pg_placeholders;

    #[test]
    fn placeholders_are_rewritten_outside_strings() {
        assert_eq!(
            pg_placeholders("SELECT ?1, '?x', ?12 FROM t WHERE a = ?1"),
            "SELECT $1, '?x', $12 FROM t WHERE a = $1"
        );
        assert_eq!(
            pg_placeholders("UPDATE t SET a = ? WHERE b = ?"),
            "UPDATE t SET a = $1 WHERE b = $2"
        );
    }
}
