//! Webhook deliveries: each kept under its delivery id with its raw body, so a redelivery is
//! recognised and changes nothing, then claimed by one process at a time (a lease, so a
//! process killed mid-way leaves it to another) and marked processed with its outcome. The
//! same statements on both stores.

use flowmeter_core::Timestamp;
use sqlx::Row;

use crate::{Result, Store, pg, query_error, second};

/// A delivery as received: the source (`github`), its event and action, the repository it is
/// about, and the raw body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub delivery: String,
    pub source: String,
    pub event: String,
    pub action: Option<String>,
    pub repo: String,
    pub received_at: Timestamp,
    pub body: String,
}

/// The latest delivery of one repository and event, for sync status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryStatus {
    pub source: String,
    pub repo: String,
    pub event: String,
    pub action: Option<String>,
    pub delivery: String,
    pub received_at: Timestamp,
    pub processed_at: Option<Timestamp>,
    pub outcome: Option<String>,
    /// Deliveries of this repository and event kept.
    pub count: i64,
}

const RECEIVE: &str = "INSERT INTO webhook_deliveries (delivery, source, event, action, repo, received_at, body) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (delivery) DO NOTHING";
const DUE: &str = "SELECT delivery FROM webhook_deliveries WHERE processed_at IS NULL \
     AND (claimed_until IS NULL OR claimed_until < ?1) ORDER BY seq LIMIT ?2";
const CLAIM: &str = "UPDATE webhook_deliveries SET claimed_until = ?2 WHERE delivery = ?1 \
     AND processed_at IS NULL AND (claimed_until IS NULL OR claimed_until < ?3) \
     RETURNING delivery, source, event, action, repo, received_at, body";
const FINISH: &str = "UPDATE webhook_deliveries SET processed_at = ?2, outcome = ?3, claimed_until = NULL \
     WHERE delivery = ?1";
const LAST: &str = "SELECT d.source, d.repo, d.event, d.action, d.delivery, d.received_at, \
     d.processed_at, d.outcome, \
     (SELECT COUNT(*) FROM webhook_deliveries c WHERE c.source = d.source AND c.repo = d.repo AND c.event = d.event) AS count \
     FROM webhook_deliveries d \
     WHERE d.seq = (SELECT MAX(e.seq) FROM webhook_deliveries e WHERE e.source = d.source AND e.repo = d.repo AND e.event = d.event) \
     ORDER BY d.source, d.repo, d.event";
const PRUNE: &str =
    "DELETE FROM webhook_deliveries WHERE processed_at IS NOT NULL AND processed_at < ?1";

/// A row of `webhook_deliveries` as a [`Delivery`] (the same columns and types on both stores).
macro_rules! delivery_of {
    ($row:expr) => {{
        let row = $row;
        (|| -> std::result::Result<Delivery, sqlx::Error> {
            Ok(Delivery {
                delivery: row.try_get("delivery")?,
                source: row.try_get("source")?,
                event: row.try_get("event")?,
                action: row.try_get("action")?,
                repo: row.try_get("repo")?,
                received_at: row.try_get("received_at")?,
                body: row.try_get("body")?,
            })
        })()
    }};
}

macro_rules! status_of {
    ($row:expr) => {{
        let row = $row;
        (|| -> std::result::Result<DeliveryStatus, sqlx::Error> {
            Ok(DeliveryStatus {
                source: row.try_get("source")?,
                repo: row.try_get("repo")?,
                event: row.try_get("event")?,
                action: row.try_get("action")?,
                delivery: row.try_get("delivery")?,
                received_at: row.try_get("received_at")?,
                processed_at: row.try_get("processed_at")?,
                outcome: row.try_get("outcome")?,
                count: row.try_get("count")?,
            })
        })()
    }};
}

impl Store {
    /// Keeps a delivery unless one with its id was kept already: `false` for a redelivery,
    /// which changes nothing.
    pub async fn receive_delivery(&self, d: &Delivery) -> Result<bool> {
        let received_at = second(d.received_at);
        let changed = run!(execute self, RECEIVE, &d.delivery, &d.source, &d.event, &d.action,
            &d.repo, received_at, &d.body)
        .map_err(query_error("keep a webhook delivery"))?;
        Ok(changed == 1)
    }

    /// Up to `limit` deliveries not processed yet and not claimed by a live process, in the
    /// order they arrived.
    pub async fn due_deliveries(&self, now: Timestamp, limit: i64) -> Result<Vec<String>> {
        let now = second(now);
        match self {
            Store::Sqlite(pool) => {
                sqlx::query_scalar(DUE)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(pool)
                    .await
            }
            Store::Postgres(pool) => {
                sqlx::query_scalar(pg(DUE))
                    .bind(now)
                    .bind(limit)
                    .fetch_all(pool)
                    .await
            }
        }
        .map_err(query_error("list due webhook deliveries"))
    }

    /// Claims a delivery for processing until `now + lease`, unless it was processed or another
    /// process holds a live claim on it. One statement: of processes claiming together, one
    /// gets it.
    pub async fn claim_delivery(
        &self,
        delivery: &str,
        now: Timestamp,
        lease: std::time::Duration,
    ) -> Result<Option<Delivery>> {
        let what = "claim a webhook delivery";
        let now = second(now);
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::TimeDelta::MAX);
        let row = match self {
            Store::Sqlite(pool) => sqlx::query(CLAIM)
                .bind(delivery)
                .bind(until)
                .bind(now)
                .fetch_optional(pool)
                .await
                .and_then(|row| row.map(|r| delivery_of!(r)).transpose()),
            Store::Postgres(pool) => sqlx::query(pg(CLAIM))
                .bind(delivery)
                .bind(until)
                .bind(now)
                .fetch_optional(pool)
                .await
                .and_then(|row| row.map(|r| delivery_of!(r)).transpose()),
        };
        row.map_err(query_error(what))
    }

    /// Marks a delivery processed, with what came of it.
    pub async fn finish_delivery(
        &self,
        delivery: &str,
        outcome: &str,
        now: Timestamp,
    ) -> Result<()> {
        run!(execute self, FINISH, delivery, second(now), outcome)
            .map(drop)
            .map_err(query_error("mark a webhook delivery processed"))
    }

    /// The latest delivery of each source, repository and event.
    pub async fn last_deliveries(&self) -> Result<Vec<DeliveryStatus>> {
        match self {
            Store::Sqlite(pool) => sqlx::query(LAST)
                .fetch_all(pool)
                .await
                .and_then(|rows| rows.into_iter().map(|r| status_of!(r)).collect()),
            Store::Postgres(pool) => sqlx::query(LAST)
                .fetch_all(pool)
                .await
                .and_then(|rows| rows.into_iter().map(|r| status_of!(r)).collect()),
        }
        .map_err(query_error("read the last webhook deliveries"))
    }

    /// Forgets deliveries processed before `before` (their records stay): a redelivery of one
    /// of them is taken as new, and changes nothing either, as records are upserts.
    pub async fn prune_deliveries(&self, before: Timestamp) -> Result<u64> {
        run!(execute self, PRUNE, second(before)).map_err(query_error("prune webhook deliveries"))
    }

    /// One archived raw payload by id.
    pub async fn raw_payload(&self, id: &str) -> Result<Option<crate::RawPayload>> {
        let sql =
            "SELECT id, source, resource, fetched_at, etag, body FROM raw_payloads WHERE id = ?1";
        let row: Option<crate::RawRow> = match self {
            Store::Sqlite(pool) => sqlx::query_as(sql).bind(id).fetch_optional(pool).await,
            Store::Postgres(pool) => sqlx::query_as(pg(sql)).bind(id).fetch_optional(pool).await,
        }
        .map_err(query_error("read a raw payload"))?;
        Ok(row.map(crate::RawPayload::from))
    }

    /// Replaces a sync cursor's mark and ETag without moving its time (which says when the
    /// resource last saw new data): `false` when there is no such cursor.
    pub async fn amend_cursor(
        &self,
        source: &str,
        scope: &str,
        resource: &str,
        cursor: &crate::Cursor,
    ) -> Result<bool> {
        let sql = "UPDATE sync_cursors SET cursor = ?4, etag = ?5 WHERE source = ?1 AND scope = ?2 AND resource = ?3";
        run!(execute self, sql, source, scope, resource, &cursor.cursor, &cursor.etag)
            .map(|n| n == 1)
            .map_err(query_error("amend a sync cursor"))
    }
}
