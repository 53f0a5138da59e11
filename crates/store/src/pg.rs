//! The PostgreSQL backend: rows go through `COPY` (binary format) into the table, or into a
//! staging table then one `INSERT ... SELECT ... ON CONFLICT` when keys exist already, all in
//! one transaction.

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
    rows: &[Vec<Val<'_>>],
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
        &format!(
            "COPY {} ({columns}) FROM STDIN WITH (FORMAT binary)",
            table.name
        ),
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
        &format!("COPY {staging} ({columns}) FROM STDIN WITH (FORMAT binary)"),
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

/// Streams rows to a `COPY ... FROM STDIN` statement in its binary format.
async fn copy(
    conn: &mut PgConnection,
    statement: &str,
    rows: &[Vec<Val<'_>>],
) -> Result<u64, sqlx::Error> {
    let mut copy = conn.copy_in_raw(statement).await?;
    let mut buffer: Vec<u8> = Vec::with_capacity(COPY_CHUNK + 4096);
    // The signature, no flags, no header extension.
    buffer.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buffer.extend_from_slice(&0i32.to_be_bytes());
    buffer.extend_from_slice(&0i32.to_be_bytes());
    for row in rows {
        copy_row(&mut buffer, row);
        if buffer.len() >= COPY_CHUNK {
            copy.send(buffer.as_slice()).await?;
            buffer.clear();
        }
    }
    buffer.extend_from_slice(&(-1i16).to_be_bytes());
    copy.send(buffer.as_slice()).await?;
    copy.finish().await
}

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// Appends one row in COPY's binary format: the field count, then each field's length and
/// bytes (text as UTF-8, BIGINT and DOUBLE PRECISION big-endian, TIMESTAMPTZ as microseconds
/// since 2000-01-01), -1 for NULL.
fn copy_row(out: &mut Vec<u8>, row: &[Val<'_>]) {
    out.extend_from_slice(&(row.len() as i16).to_be_bytes());
    let field = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    for value in row {
        match value {
            Val::Text(Some(s)) => field(out, s.as_bytes()),
            Val::Int(Some(n)) => field(out, &n.to_be_bytes()),
            Val::Real(Some(r)) => field(out, &r.to_be_bytes()),
            Val::Bool(Some(b)) => field(out, &[u8::from(*b)]),
            Val::Ts(Some(t)) => field(out, &(t.timestamp_micros() - PG_EPOCH_US).to_be_bytes()),
            Val::Text(None)
            | Val::Int(None)
            | Val::Real(None)
            | Val::Bool(None)
            | Val::Ts(None) => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_binary_fields_and_nulls() {
        let mut out = Vec::new();
        let t = "2000-01-01T00:00:01Z".parse().unwrap();
        copy_row(
            &mut out,
            &[
                Val::Text(Some("ab".into())),
                Val::Text(None),
                Val::Int(Some(7)),
                Val::Bool(Some(true)),
                Val::Ts(Some(t)),
                Val::Real(Some(2.5)),
            ],
        );
        let mut expected: Vec<u8> = vec![0, 6];
        expected.extend([0, 0, 0, 2, b'a', b'b']);
        expected.extend([0xff, 0xff, 0xff, 0xff]);
        expected.extend([0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7]);
        expected.extend([0, 0, 0, 1, 1]);
        expected.extend([0, 0, 0, 8]);
        expected.extend(1_000_000i64.to_be_bytes());
        expected.extend([0, 0, 0, 8]);
        expected.extend(2.5f64.to_be_bytes());
        assert_eq!(out, expected);
    }
}
