//! The SQLite backend: multi-row upserts inside one transaction.

use futures_util::TryStreamExt;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};

use flowmeter_core::Dataset;
use flowmeter_core::import::RecordKind;

use crate::rows::{self, Col, Table, Val};
use crate::{Result, query_error};

/// SQLite allows 32766 bound values in one statement; stay well below.
const MAX_BINDS: usize = 16_000;

/// Upserts rows inside the caller's transaction; returns how many rows were inserted or changed.
pub(crate) async fn upsert(
    conn: &mut SqliteConnection,
    table: &Table,
    rows: &[Vec<Val>],
) -> Result<u64> {
    let per_statement = (MAX_BINDS / table.columns.len()).max(1);
    let head = format!("INSERT INTO {} ({}) ", table.name, table.column_list());
    let tail = table.upsert_tail("IS NOT");
    let mut changed = 0;
    for chunk in rows.chunks(per_statement) {
        let mut builder = QueryBuilder::<Sqlite>::new(head.clone());
        builder.push_values(chunk, |mut values, row| {
            for value in row {
                match value {
                    Val::Text(v) => values.push_bind(v.as_deref()),
                    Val::Int(v) => values.push_bind(*v),
                    Val::Real(v) => values.push_bind(*v),
                    Val::Bool(v) => values.push_bind(*v),
                    Val::Ts(v) => values.push_bind(*v),
                };
            }
        });
        builder.push(&tail);
        changed += builder
            .build()
            .execute(&mut *conn)
            .await
            .map_err(query_error("upsert records"))?
            .rows_affected();
    }
    Ok(changed)
}

pub(crate) async fn load(pool: &SqlitePool) -> Result<Dataset> {
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
