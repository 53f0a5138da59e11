//! Weekly digests sent once: a row per digest and ISO week, claimed by one process before it
//! sends, marked sent when Slack took the message. The same statements on both stores.

use flowmeter_core::Timestamp;
use sqlx::Row;

use crate::{Result, Store, pg, query_error, second};

/// Where a digest's week stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestState {
    /// A process claimed it and is sending (until `claimed_until`).
    Sending,
    Sent,
    Failed,
}

/// The record of one digest's week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestSend {
    pub digest: String,
    pub week: String,
    pub state: DigestState,
    /// Claims so far, this one included.
    pub attempts: i64,
    pub claimed_at: Timestamp,
    pub claimed_until: Option<Timestamp>,
    pub sent_at: Option<Timestamp>,
    pub retry_at: Option<Timestamp>,
    /// What Slack (or the network) answered to the last failed attempt; never a URL.
    pub error: Option<String>,
}

/// A claim held: the right to send this week of this digest, and to record the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestTicket {
    pub digest: String,
    pub week: String,
    pub attempt: i64,
}

/// The outcome of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestClaim {
    Claimed(DigestTicket),
    /// Sent already, being sent by another process, or failed and not due again yet.
    Taken(DigestSend),
}

const CLAIM: &str = "INSERT INTO digest_sends (digest, week, state, attempts, claimed_at, claimed_until) \
     VALUES (?1, ?2, 'sending', 1, ?3, ?4) \
     ON CONFLICT (digest, week) DO UPDATE SET state = 'sending', \
         attempts = digest_sends.attempts + 1, claimed_at = excluded.claimed_at, \
         claimed_until = excluded.claimed_until, error = NULL \
     WHERE (digest_sends.state = 'sending' AND digest_sends.claimed_until < ?3) \
        OR (digest_sends.state = 'failed' AND (?5 OR digest_sends.retry_at IS NULL OR digest_sends.retry_at <= ?3)) \
     RETURNING attempts";
const SENT: &str = "UPDATE digest_sends SET state = 'sent', sent_at = ?4, claimed_until = NULL, \
     error = NULL, retry_at = NULL \
     WHERE digest = ?1 AND week = ?2 AND attempts = ?3 AND state = 'sending'";
const FAILED: &str = "UPDATE digest_sends SET state = 'failed', error = ?4, retry_at = ?5, \
     claimed_until = NULL \
     WHERE digest = ?1 AND week = ?2 AND attempts = ?3 AND state = 'sending'";
const ONE: &str = "SELECT digest, week, state, attempts, claimed_at, claimed_until, sent_at, \
     retry_at, error FROM digest_sends WHERE digest = ?1 AND week = ?2";

/// A row of `digest_sends` (the same columns and types on both stores).
macro_rules! send_of {
    ($row:expr) => {{
        let row = $row;
        (|| -> std::result::Result<DigestSend, sqlx::Error> {
            let state: String = row.try_get("state")?;
            Ok(DigestSend {
                digest: row.try_get("digest")?,
                week: row.try_get("week")?,
                state: match state.as_str() {
                    "sent" => DigestState::Sent,
                    "failed" => DigestState::Failed,
                    _ => DigestState::Sending,
                },
                attempts: row.try_get("attempts")?,
                claimed_at: row.try_get("claimed_at")?,
                claimed_until: row.try_get("claimed_until")?,
                sent_at: row.try_get("sent_at")?,
                retry_at: row.try_get("retry_at")?,
                error: row.try_get("error")?,
            })
        })()
    }};
}

impl Store {
    /// Claims `week` of `digest` for sending, unless it was sent, another process holds an
    /// unexpired claim (`lease` from its start), or it failed and is not due again
    /// (`retry_failed_now` makes a failed one due at once). One statement: of processes
    /// claiming together, one gets it.
    pub async fn claim_digest(
        &self,
        digest: &str,
        week: &str,
        now: Timestamp,
        lease: std::time::Duration,
        retry_failed_now: bool,
    ) -> Result<DigestClaim> {
        let what = "claim a digest";
        let now = second(now);
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::TimeDelta::MAX);
        let attempt: Option<i64> =
            run!(scalar self, CLAIM, digest, week, now, until, retry_failed_now)
                .map_err(query_error(what))?;
        match attempt {
            Some(attempt) => Ok(DigestClaim::Claimed(DigestTicket {
                digest: digest.to_string(),
                week: week.to_string(),
                attempt,
            })),
            None => Ok(DigestClaim::Taken(
                self.digest_send(digest, week)
                    .await?
                    .ok_or(crate::StoreError::Lock(format!(
                        "the digest {digest} of {week} was neither claimed nor recorded"
                    )))?,
            )),
        }
    }

    /// Records that Slack took the message; `false` when the ticket was superseded (its lease
    /// lapsed and another process claimed the week).
    pub async fn digest_sent(&self, ticket: &DigestTicket, at: Timestamp) -> Result<bool> {
        let at = second(at);
        let done = run!(execute self, SENT, &ticket.digest, &ticket.week, ticket.attempt, at)
            .map_err(query_error("record a digest sent"))?;
        Ok(done == 1)
    }

    /// Records a failed send, due again at `retry_at`; `false` when the ticket was superseded.
    pub async fn digest_failed(
        &self,
        ticket: &DigestTicket,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<bool> {
        let retry_at = second(retry_at);
        let done = run!(
            execute self, FAILED, &ticket.digest, &ticket.week, ticket.attempt, error, retry_at
        )
        .map_err(query_error("record a digest failed"))?;
        Ok(done == 1)
    }

    /// The record of one digest's week, if any.
    pub async fn digest_send(&self, digest: &str, week: &str) -> Result<Option<DigestSend>> {
        let what = "read a digest's record";
        match self {
            Store::Sqlite(pool) => sqlx::query(ONE)
                .bind(digest)
                .bind(week)
                .fetch_optional(pool)
                .await
                .and_then(|row| row.map(|r| send_of!(&r)).transpose()),
            Store::Postgres(pool) => sqlx::query(pg(ONE))
                .bind(digest)
                .bind(week)
                .fetch_optional(pool)
                .await
                .and_then(|row| row.map(|r| send_of!(&r)).transpose()),
        }
        .map_err(query_error(what))
    }
}
