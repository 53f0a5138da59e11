//! The PostgreSQL backend: rows go through `COPY` into a staging table, then one
//! `INSERT ... SELECT ... ON CONFLICT` upserts them, all in one transaction.

use std::fmt::Write as _;

use sqlx::PgConnection;

use crate::rows::{Table, Val};
use crate::{Result, query_error};

/// How much COPY data to buffer before handing it to the connection.
const COPY_CHUNK: usize = 1 << 20;

/// Upserts rows inside the caller's transaction; returns how many rows were inserted or changed.
///
/// Rows whose keys are all new (a first import, new history) go straight into the table with
/// `COPY`. When a key already exists the `COPY` fails on the primary key, is rolled back to a
/// savepoint, and the rows go through a staging table and `INSERT ... ON CONFLICT` instead.
pub(crate) async fn upsert(
    conn: &mut PgConnection,
    table: &Table,
    rows: &[Vec<Val>],
) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let columns = table.column_list();
    sqlx::query("SAVEPOINT direct_copy")
        .execute(&mut *conn)
        .await
        .map_err(query_error("set a savepoint"))?;
    match copy(
        conn,
        &format!("COPY {} ({columns}) FROM STDIN", table.name),
        rows,
    )
    .await
    {
        Ok(inserted) => {
            sqlx::query("RELEASE SAVEPOINT direct_copy")
                .execute(&mut *conn)
                .await
                .map_err(query_error("release a savepoint"))?;
            return Ok(inserted);
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
            sqlx::query("ROLLBACK TO SAVEPOINT direct_copy")
                .execute(&mut *conn)
                .await
                .map_err(query_error("roll back to a savepoint"))?;
        }
        Err(e) => return Err(query_error("COPY records")(e)),
    }

    let staging = format!("staging_{}", table.name);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP",
        table.name
    )))
    .execute(&mut *conn)
    .await
    .map_err(query_error("create a staging table"))?;
    sqlx::query(sqlx::AssertSqlSafe(format!("TRUNCATE {staging}")))
        .execute(&mut *conn)
        .await
        .map_err(query_error("empty the staging table"))?;
    copy(
        conn,
        &format!("COPY {staging} ({columns}) FROM STDIN"),
        rows,
    )
    .await
    .map_err(query_error("COPY records"))?;
    let changed = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {} ({columns}) SELECT {columns} FROM {staging}{}",
        table.name,
        table.upsert_tail("IS DISTINCT FROM")
    )))
    .execute(&mut *conn)
    .await
    .map_err(query_error("upsert records"))?
    .rows_affected();
    Ok(changed)
}

/// Streams rows to a `COPY ... FROM STDIN` statement in its text format.
async fn copy(
    conn: &mut PgConnection,
    statement: &str,
    rows: &[Vec<Val>],
) -> Result<u64, sqlx::Error> {
    let mut copy = conn.copy_in_raw(statement).await?;
    let mut buffer = String::with_capacity(COPY_CHUNK + 4096);
    for row in rows {
        copy_row(&mut buffer, row);
        if buffer.len() >= COPY_CHUNK {
            copy.send(buffer.as_bytes()).await?;
            buffer.clear();
        }
    }
    if !buffer.is_empty() {
        copy.send(buffer.as_bytes()).await?;
    }
    copy.finish().await
}

/// Appends one row in COPY's text format.
fn copy_row(out: &mut String, row: &[Val]) {
    for (i, value) in row.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        match value {
            Val::Text(Some(s)) => escape(out, s),
            Val::Int(Some(n)) => {
                let _ = write!(out, "{n}");
            }
            Val::Real(Some(r)) => {
                let _ = write!(out, "{r:?}");
            }
            Val::Bool(Some(b)) => out.push(if *b { 't' } else { 'f' }),
            Val::Ts(Some(t)) => {
                let _ = write!(out, "{}", t.format("%Y-%m-%d %H:%M:%S%.6f+00"));
            }
            Val::Text(None)
            | Val::Int(None)
            | Val::Real(None)
            | Val::Bool(None)
            | Val::Ts(None) => out.push_str("\\N"),
        }
    }
    out.push('\n');
}

fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_and_nulls() {
        let mut out = String::new();
        let t = "2024-01-01T00:00:00Z".parse().unwrap();
        copy_row(
            &mut out,
            &[
                Val::Text(Some("a\tb\\c\nd".into())),
                Val::Text(None),
                Val::Int(Some(7)),
                Val::Bool(Some(true)),
                Val::Ts(Some(t)),
                Val::Real(Some(2.5)),
            ],
        );
        assert_eq!(
            out,
            "a\\tb\\\\c\\nd\t\\N\t7\tt\t2024-01-01 00:00:00.000000+00\t2.5\n"
        );
    }
}
