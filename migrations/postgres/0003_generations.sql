-- Which write last changed each record: readers that hold a snapshot read only the rows whose
-- generation is newer than theirs (0: written before generations were recorded).
ALTER TABLE commits ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE pull_requests ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deployments ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE issues ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
CREATE INDEX commits_by_generation ON commits (generation);
CREATE INDEX pull_requests_by_generation ON pull_requests (generation);
CREATE INDEX deployments_by_generation ON deployments (generation);
CREATE INDEX incidents_by_generation ON incidents (generation);
CREATE INDEX issues_by_generation ON issues (generation);

-- The engine's model of the store as of a generation, under a key naming its format and the
-- configuration that shaped it: a cold process loads it and reads only what changed since.
CREATE TABLE engine_snapshots (
    key        TEXT NOT NULL PRIMARY KEY,
    generation BIGINT NOT NULL,
    written_at TIMESTAMPTZ NOT NULL,
    body       BYTEA NOT NULL
);

-- Scheduled syncs shared by the processes serving one store: when each source last finished
-- (a process holds an advisory lock on the source while it syncs).
CREATE TABLE sync_runs (
    source        TEXT NOT NULL PRIMARY KEY,
    finished_at   TIMESTAMPTZ,
    claimed_until TIMESTAMPTZ
);

-- An incident's key scope names what it is: `repo:<repo>` or `service:<service>`, so a
-- repository's incident and a service's incident with the same id never collide.
UPDATE incidents SET key_scope = CASE
    WHEN repo IS NOT NULL THEN 'repo:' || repo
    ELSE 'service:' || service
END;
