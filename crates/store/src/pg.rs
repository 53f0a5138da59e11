//! The PostgreSQL backend: rows go through `COPY` into a staging table, then one
//! `INSERT ... SELECT ... ON CONFLICT` upserts them, all in one transaction.

use std::fmt::Write as _;

use futures_util::TryStreamExt;
use sqlx::{PgPool, Row};

use flowmeter_core::Dataset;
use flowmeter_core::import::RecordKind;

use crate::rows::{self, Col, Table, Val};
use crate::{Result, query_error};

/// How much COPY data to buffer before handing it to the connection.
const COPY_CHUNK: usize = 1 << 20;

pub(crate) async fn upsert(pool: &PgPool, table: &Table, rows: &[Vec<Val>]) -> Result<u64> {
    let mut tx = pool
        .begin()
        .await
        .map_err(query_error("begin a transaction"))?;
    let staging = format!("staging_{}", table.name);
    let columns = table.column_list();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TEMP TABLE {staging} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP",
        table.name
    )))
    .execute(&mut *tx)
    .await
    .map_err(query_error("create a staging table"))?;

    let mut copy = tx
        .copy_in_raw(&format!("COPY {staging} ({columns}) FROM STDIN"))
        .await
        .map_err(query_error("start COPY"))?;
    let mut buffer = String::with_capacity(COPY_CHUNK + 4096);
    for row in rows {
        copy_row(&mut buffer, row);
        if buffer.len() >= COPY_CHUNK {
            copy.send(buffer.as_bytes())
                .await
                .map_err(query_error("send COPY data"))?;
            buffer.clear();
        }
    }
    if !buffer.is_empty() {
        copy.send(buffer.as_bytes())
            .await
            .map_err(query_error("send COPY data"))?;
    }
    copy.finish().await.map_err(query_error("finish COPY"))?;

    let changed = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {} ({columns}) SELECT {columns} FROM {staging}{}",
        table.name,
        table.upsert_tail("IS DISTINCT FROM")
    )))
    .execute(&mut *tx)
    .await
    .map_err(query_error("upsert records"))?
    .rows_affected();
    if changed > 0 {
        sqlx::query("UPDATE store_generation SET value = value + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await
            .map_err(query_error("bump the store generation"))?;
    }
    tx.commit().await.map_err(query_error("commit records"))?;
    Ok(changed)
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

pub(crate) async fn load(pool: &PgPool) -> Result<Dataset> {
    let mut dataset = Dataset::default();
    for kind in RecordKind::ALL {
        let table = rows::table(kind);
        let sql = table.select_sql();
        let mut stream = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(pool);
        while let Some(row) = stream
            .try_next()
            .await
            .map_err(query_error("read records"))?
        {
            let values = table
                .columns
                .iter()
                .enumerate()
                .map(|(i, (_, col))| {
                    Ok(match col {
                        Col::Text => Val::Text(row.try_get(i)?),
                        Col::Int => Val::Int(row.try_get(i)?),
                        Col::Real => Val::Real(row.try_get(i)?),
                        Col::Bool => Val::Bool(row.try_get(i)?),
                        Col::Ts => Val::Ts(row.try_get(i)?),
                    })
                })
                .collect::<std::result::Result<Vec<Val>, sqlx::Error>>()
                .map_err(query_error("decode records"))?;
            dataset.push(rows::from_row(kind, values)?);
        }
    }
    Ok(dataset)
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
