//! The SQLite backend: multi-row upserts inside one transaction.

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::rows::{Table, Val};
use crate::{Result, query_error};

/// SQLite allows 32766 bound values in one statement; stay well below.
const MAX_BINDS: usize = 16_000;

/// Upserts rows inside the caller's transaction; returns how many rows were inserted or changed.
pub(crate) async fn upsert(
    conn: &mut SqliteConnection,
    table: &Table,
    rows: &[Vec<Val<'_>>],
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
