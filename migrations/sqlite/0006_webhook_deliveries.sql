-- Webhook deliveries: each kept under its delivery id (a redelivery is recognised and changes
-- nothing), with its raw body, until it was processed and for a while after.
CREATE TABLE webhook_deliveries (
    seq           INTEGER PRIMARY KEY,
    delivery      TEXT NOT NULL UNIQUE,
    source        TEXT NOT NULL,
    event         TEXT NOT NULL,
    action        TEXT,
    repo          TEXT NOT NULL,
    received_at   TEXT NOT NULL,
    body          TEXT NOT NULL,
    claimed_until TEXT,
    processed_at  TEXT,
    outcome       TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (processed_at, seq);
CREATE INDEX webhook_deliveries_last ON webhook_deliveries (source, repo, event, seq);
