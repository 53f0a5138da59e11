-- Weekly digests: one row per digest and ISO week, claimed before the send so that two
-- processes never both send it, and marked sent once Slack answered 200.
CREATE TABLE digest_sends (
    digest        TEXT NOT NULL,
    week          TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('sending', 'sent', 'failed')),
    attempts      INTEGER NOT NULL,
    claimed_at    TEXT NOT NULL,
    claimed_until TEXT,
    sent_at       TEXT,
    retry_at      TEXT,
    error         TEXT,
    PRIMARY KEY (digest, week)
);
