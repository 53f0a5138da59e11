//! A week's activity for the capitalization method: the commits authored in it, the pull
//! requests open at some time in it, the issues that may have been in progress in it, and every
//! issue those name with their epics, read in one consistent snapshot through indexes on the
//! times (migration 0005), so a week costs what the week holds, not what the store holds.

use flowmeter_core::import::RecordKind;
use flowmeter_core::people::issue_keys;
use flowmeter_core::{Dataset, Timestamp};

use crate::{Result, Store, decode_record, query_error, rows};

/// Issues named per `IN (...)` query.
const KEYS_PER_QUERY: usize = 500;

impl Store {
    /// The store generation and the activity of `[start, end)` (see the module's doc).
    pub async fn activity(&self, start: Timestamp, end: Timestamp) -> Result<(i64, Dataset)> {
        macro_rules! read {
            ($tx:expr, $p:literal) => {{
                use futures_util::TryStreamExt as _;
                let generation: i64 =
                    sqlx::query_scalar("SELECT value FROM store_generation WHERE id = 1")
                        .fetch_one(&mut *$tx)
                        .await
                        .map_err(query_error("read the store generation"))?;
                let mut data = Dataset::default();
                let p1 = concat!($p, "1");
                let p2 = concat!($p, "2");
                let queries = [
                    (
                        RecordKind::Commits,
                        format!("authored_at >= {p1} AND authored_at < {p2}"),
                    ),
                    (
                        RecordKind::PullRequests,
                        format!(
                            "created_at < {p2} AND (closed_at IS NULL OR closed_at >= {p1} OR merged_at >= {p1})"
                        ),
                    ),
                    (
                        RecordKind::Issues,
                        format!("created_at < {p2} AND (resolved_at IS NULL OR resolved_at >= {p1})"),
                    ),
                ];
                for (kind, filter) in queries {
                    let table = rows::table(kind);
                    let sql = format!("SELECT {} FROM {} WHERE {filter}", table.column_list(), table.name);
                    let mut stream = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(start)
                        .bind(end)
                        .fetch(&mut *$tx);
                    while let Some(row) = stream
                        .try_next()
                        .await
                        .map_err(query_error("read the week's activity"))?
                    {
                        data.push(decode_record!(kind, table, row));
                    }
                }
                // The issues the week's commits and pull requests name, then their epics.
                let mut have: std::collections::HashSet<String> =
                    data.issues.iter().map(|i| i.key.clone()).collect();
                let mut wanted: Vec<String> = Vec::new();
                let texts = data
                    .commits
                    .iter()
                    .filter_map(|c| c.message.as_deref())
                    .chain(data.pull_requests.iter().flat_map(|p| {
                        [p.title.as_deref(), p.head_branch.as_deref()].into_iter().flatten()
                    }));
                for text in texts {
                    for key in issue_keys(text) {
                        if have.insert(key.to_string()) {
                            wanted.push(key.to_string());
                        }
                    }
                }
                for round in 0..2 {
                    if round == 1 {
                        wanted = data
                            .issues
                            .iter()
                            .filter_map(|i| i.epic.clone())
                            .filter(|e| have.insert(e.clone()))
                            .collect();
                    }
                    let table = rows::table(RecordKind::Issues);
                    for chunk in wanted.chunks(KEYS_PER_QUERY) {
                        let marks: Vec<String> =
                            (1..=chunk.len()).map(|i| format!("{}{i}", $p)).collect();
                        let sql = format!(
                            "SELECT {} FROM issues WHERE key IN ({})",
                            table.column_list(),
                            marks.join(", ")
                        );
                        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                        for key in chunk {
                            query = query.bind(key);
                        }
                        let mut stream = query.fetch(&mut *$tx);
                        while let Some(row) = stream
                            .try_next()
                            .await
                            .map_err(query_error("read the issues the week names"))?
                        {
                            data.push(decode_record!(RecordKind::Issues, table, row));
                        }
                    }
                }
                let statuses: Vec<(String, String)> =
                    sqlx::query_as("SELECT name, category FROM tracker_statuses")
                        .fetch_all(&mut *$tx)
                        .await
                        .map_err(query_error("read tracker statuses"))?;
                data.status_categories = statuses.into_iter().collect();
                (generation, data)
            }};
        }
        match self {
            Store::Sqlite(pool) => {
                let mut tx = pool.begin().await.map_err(query_error("begin a read"))?;
                let read = read!(tx, "?");
                tx.commit().await.map_err(query_error("end a read"))?;
                Ok(read)
            }
            Store::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(query_error("begin a read"))?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error("begin a read"))?;
                let read = read!(tx, "$");
                tx.commit().await.map_err(query_error("end a read"))?;
                Ok(read)
            }
        }
    }
}

/// How much one identity (a commit author, a pull request author or reviewer, an assignee)
/// did, as the store holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityActivity {
    pub commits: u64,
    pub pull_requests: u64,
    pub reviews: u64,
    pub issues: u64,
}

impl Store {
    /// Every identity the store names, with what it did, by identity.
    pub async fn identities(&self) -> Result<std::collections::BTreeMap<String, IdentityActivity>> {
        use futures_util::TryStreamExt as _;
        let mut all: std::collections::BTreeMap<String, IdentityActivity> = Default::default();
        let counted = [
            "SELECT author, COUNT(*) FROM commits WHERE author IS NOT NULL GROUP BY author",
            "SELECT author, COUNT(*) FROM pull_requests WHERE author IS NOT NULL GROUP BY author",
            "SELECT assignee, COUNT(*) FROM issues WHERE assignee IS NOT NULL GROUP BY assignee",
        ];
        #[derive(serde::Deserialize)]
        struct Reviewer {
            reviewer: String,
        }
        macro_rules! read {
            ($pool:expr) => {{
                for (i, sql) in counted.iter().enumerate() {
                    let rows: Vec<(String, i64)> = sqlx::query_as(*sql)
                        .fetch_all($pool)
                        .await
                        .map_err(query_error("count activity by identity"))?;
                    for (who, n) in rows {
                        let entry = all.entry(who).or_default();
                        let n = n as u64;
                        match i {
                            0 => entry.commits += n,
                            1 => entry.pull_requests += n,
                            _ => entry.issues += n,
                        }
                    }
                }
                let mut stream = sqlx::query_scalar::<_, String>(
                    "SELECT reviews FROM pull_requests WHERE reviews <> '[]'",
                )
                .fetch($pool);
                while let Some(reviews) = stream
                    .try_next()
                    .await
                    .map_err(query_error("read reviewers"))?
                {
                    let reviews: Vec<Reviewer> =
                        serde_json::from_str(&reviews).map_err(|e| crate::StoreError::Corrupt {
                            table: "pull_requests",
                            message: e.to_string(),
                        })?;
                    for r in reviews {
                        all.entry(r.reviewer).or_default().reviews += 1;
                    }
                }
            }};
        }
        match self {
            Store::Sqlite(pool) => read!(pool),
            Store::Postgres(pool) => read!(pool),
        }
        Ok(all)
    }

    /// When the latest commit was authored, if any (the capitalization page's default week).
    pub async fn latest_commit(&self) -> Result<Option<Timestamp>> {
        let sql = "SELECT MAX(authored_at) FROM commits";
        let what = query_error("read the latest commit");
        match self {
            Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.map_err(what),
            Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.map_err(what),
        }
    }
}
