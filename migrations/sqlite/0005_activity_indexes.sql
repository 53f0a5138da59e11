-- The capitalization export reads one week at a time: commits by when they were authored,
-- pull requests by when they closed or merged, issues by when they were resolved.
CREATE INDEX commits_by_authored_at ON commits (authored_at);
CREATE INDEX pull_requests_by_closed_at ON pull_requests (closed_at);
CREATE INDEX pull_requests_by_merged_at ON pull_requests (merged_at);
CREATE INDEX issues_by_resolved_at ON issues (resolved_at);
