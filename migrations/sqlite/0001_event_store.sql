-- The event store: records keyed by their natural keys, as the import format defines them.
-- Timestamps are UTC. Lists of shas are space-separated; labels, reviews and transitions JSON.

CREATE TABLE commits (
    repo         TEXT NOT NULL,
    sha          TEXT NOT NULL,
    parents      TEXT NOT NULL,
    authored_at  TEXT NOT NULL,
    committed_at TEXT NOT NULL,
    author       TEXT,
    message      TEXT,
    PRIMARY KEY (repo, sha)
) WITHOUT ROWID;

CREATE TABLE pull_requests (
    repo             TEXT NOT NULL,
    number           INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    title            TEXT,
    author           TEXT,
    draft            INTEGER NOT NULL,
    ready_at         TEXT,
    merged_at        TEXT,
    closed_at        TEXT,
    base_branch      TEXT,
    head_branch      TEXT,
    head_sha         TEXT,
    merge_commit_sha TEXT,
    commits          TEXT NOT NULL,
    additions        INTEGER,
    deletions        INTEGER,
    labels           TEXT NOT NULL,
    reviews          TEXT NOT NULL,
    PRIMARY KEY (repo, number)
);

CREATE TABLE deployments (
    repo        TEXT NOT NULL,
    id          TEXT NOT NULL,
    environment TEXT NOT NULL,
    sha         TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    finished_at TEXT,
    service     TEXT,
    url         TEXT,
    PRIMARY KEY (repo, id)
);

-- key_scope is the repo, or the service when the incident names no repo.
CREATE TABLE incidents (
    key_scope     TEXT NOT NULL,
    id            TEXT NOT NULL,
    repo          TEXT,
    service       TEXT,
    created_at    TEXT NOT NULL,
    resolved_at   TEXT,
    title         TEXT,
    severity      TEXT,
    deployment_id TEXT,
    url           TEXT,
    PRIMARY KEY (key_scope, id)
);

CREATE TABLE issues (
    key          TEXT NOT NULL PRIMARY KEY,
    project      TEXT NOT NULL,
    type         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    summary      TEXT,
    status       TEXT,
    epic         TEXT,
    parent       TEXT,
    assignee     TEXT,
    labels       TEXT NOT NULL,
    story_points REAL,
    resolved_at  TEXT,
    transitions  TEXT NOT NULL
);

-- Raw API response bodies, so normalization can be replayed without spending rate limit.
CREATE TABLE raw_payloads (
    id         TEXT NOT NULL PRIMARY KEY,
    source     TEXT NOT NULL,
    resource   TEXT NOT NULL,
    fetched_at TEXT NOT NULL,
    etag       TEXT,
    body       TEXT NOT NULL
);

-- Where each connector's incremental sync stands, per scope (repository, project) and resource.
CREATE TABLE sync_cursors (
    source     TEXT NOT NULL,
    scope      TEXT NOT NULL,
    resource   TEXT NOT NULL,
    cursor     TEXT,
    etag       TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (source, scope, resource)
);

-- Bumped by every write that changes records, so readers can tell when to reload.
CREATE TABLE store_generation (
    id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO store_generation (id, value) VALUES (1, 0);
