//! Copying a whole installation from one database to another (SQLite to PostgreSQL), for
//! `bugbane migrate-data`. Both engines share one schema, so every table copies column
//! by column; rows already in the target are kept, so an interrupted copy can be re-run.

use rusqlite::params;
use rusqlite::types::Value;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::store::{Store, count};

/// Every table, parents before children. `leases` is left out: it names live processes.
const TABLES: &[&str] = &[
    "organizations",
    "teams",
    "users",
    "projects",
    "project_keys",
    "org_members",
    "api_tokens",
    "web_sessions",
    "dictionaries",
    "spool",
    "issues",
    "grouphashes",
    "events",
    "issue_users",
    "issue_hourly",
    "issue_minutely",
    "issue_tags",
    "releases",
    "environments",
    "activity",
    "transactions",
    "spans",
    "sessions",
    "session_aggregates",
    "check_ins",
    "monitors",
    "feedback",
    "attachments",
    "logs",
    "client_reports",
    "raw_items",
    "alert_rules",
    "alert_fired",
    "notifications",
];

/// Tables without a key to recognise a row already copied: they are copied whole again.
const KEYLESS: &[&str] = &["client_reports"];

/// Rows per `INSERT`.
const BATCH: usize = 200;

/// One table's rows in the source and, after the copy, in the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableCopy {
    pub table: &'static str,
    pub source: i64,
    pub target: i64,
}

impl Store {
    /// Copies every row of this database into `target` (which must be otherwise unused
    /// while this runs) and returns each table's counts on both sides; fails unless every
    /// count matches.
    pub async fn copy_into(&self, target: &Store) -> Result<Vec<TableCopy>> {
        let (from, to) = (self.clone(), target.clone());
        tokio::task::spawn_blocking(move || {
            let source = from.connect_new(true)?;
            if source.dialect() != crate::db::Dialect::Sqlite {
                return Err(Error::Conflict(
                    "data is copied from a SQLite installation".into(),
                ));
            }
            let spool = from.connect_spool_new(true)?;
            copy_all(&source, &spool, to.connect_new(false)?)
        })
        .await
        .map_err(|_| Error::Closed)?
    }
}

/// `spool`: where the source's spool lives (a file of its own on SQLite; rows in it are
/// all unprocessed, since opening the source deleted those already saved).
fn copy_all(main: &Db, spool: &Db, mut to: Db) -> Result<Vec<TableCopy>> {
    let mut report = Vec::new();
    for &table in TABLES {
        let from = if table == "spool" { spool } else { main };
        let columns = columns(from, table)?;
        let source = count(from, &format!("SELECT COUNT(*) FROM {table}"), params![])?;
        let tx = to.transaction()?;
        let already = count(&tx, &format!("SELECT COUNT(*) FROM {table}"), params![])?;
        if already != source {
            if KEYLESS.contains(&table) {
                tx.execute(&format!("DELETE FROM {table}"), params![])?;
            }
            copy_table(from, &tx, table, &columns)?;
        }
        tx.commit()?;
        let target = count(&to, &format!("SELECT COUNT(*) FROM {table}"), params![])?;
        report.push(TableCopy {
            table,
            source,
            target,
        });
    }
    // Rows keep their ids; new rows must be numbered after them.
    if to.dialect() == crate::db::Dialect::Postgres {
        for &table in TABLES {
            let from = if table == "spool" { spool } else { main };
            if columns(from, table)?.iter().any(|c| c == "id") {
                to.query_row(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table}"
                    ),
                    params![],
                    |_| Ok(()),
                )?;
            }
        }
    }
    if let Some(bad) = report.iter().find(|t| t.source != t.target) {
        return Err(Error::Conflict(format!(
            "{}: {} rows in the source but {} in the target",
            bad.table, bad.source, bad.target
        )));
    }
    Ok(report)
}

/// The table's column names, in order.
fn columns(db: &Db, table: &str) -> Result<Vec<String>> {
    let mut stmt = db.prepare(&format!("PRAGMA table_info({table})"))?;
    let names = stmt
        .query_map(params![], |r| r.get::<_, String>(1))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if names.is_empty() {
        return Err(Error::NotFound("table"));
    }
    Ok(names)
}

fn copy_table(from: &Db, to: &Db, table: &str, columns: &[String]) -> Result<()> {
    let list = columns.join(", ");
    let insert = |rows: usize| {
        let width = columns.len();
        let values: Vec<String> = (0..rows)
            .map(|r| {
                let ps: Vec<String> = (1..=width).map(|c| format!("?{}", r * width + c)).collect();
                format!("({})", ps.join(", "))
            })
            .collect();
        format!(
            "INSERT INTO {table} ({list}) VALUES {} ON CONFLICT DO NOTHING",
            values.join(", ")
        )
    };
    let full = insert(BATCH);
    let mut pending: Vec<Value> = Vec::with_capacity(BATCH * columns.len());
    let flush = |pending: &mut Vec<Value>, rows: usize| -> Result<()> {
        if rows == BATCH {
            to.prepare_cached(&full)?.execute(&*pending)?;
        } else if rows > 0 {
            to.prepare(&insert(rows))?.execute(&*pending)?;
        }
        pending.clear();
        Ok(())
    };
    let mut rows = 0;
    from.prepare(&format!("SELECT {list} FROM {table}"))?
        .for_each(params![], |r| {
            for i in 0..columns.len() {
                pending.push(r.get(i)?);
            }
            rows += 1;
            if rows == BATCH {
                flush(&mut pending, rows)?;
                rows = 0;
            }
            Ok(())
        })?;
    flush(&mut pending, rows)
}
