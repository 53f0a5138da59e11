-- The category of each tracker status by name (Jira: new, indeterminate, done), read by the
-- connectors: the value stream's default grouping of statuses (rule S).
CREATE TABLE tracker_statuses (
    name     TEXT NOT NULL PRIMARY KEY,
    category TEXT NOT NULL
);
