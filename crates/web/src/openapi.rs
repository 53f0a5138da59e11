//! The OpenAPI 3 document of the server. A test checks it against [`crate::ROUTES`] and sends a
//! request to every operation it lists.

use serde_json::{Value, json};

fn query(name: &str, description: &str, required: bool, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": required, "description": description, "schema": schema})
}

fn filters(required_window: bool) -> Vec<Value> {
    let date = json!({"type": "string", "format": "date"});
    let mut params = vec![
        query(
            "from",
            "First day of the window (inclusive, UTC).",
            required_window,
            date.clone(),
        ),
        query(
            "to",
            "Day after the window (exclusive, UTC).",
            required_window,
            date,
        ),
        query(
            "repo",
            "Only this repository (owner/name).",
            false,
            json!({"type": "string"}),
        ),
        query(
            "service",
            "Only this service.",
            false,
            json!({"type": "string"}),
        ),
        query(
            "team",
            "Only what this team owns.",
            false,
            json!({"type": "string"}),
        ),
    ];
    if !required_window {
        params.push(query(
            "days",
            "Without from/to: the last N days up to the data's last day (default 90).",
            false,
            json!({"type": "integer", "minimum": 1}),
        ));
    }
    params
}

fn paged() -> Vec<Value> {
    let mut params = filters(true);
    params.push(query(
        "limit",
        "Items per page, 1 to 1000 (default 100).",
        false,
        json!({"type": "integer", "minimum": 1, "maximum": 1000}),
    ));
    params.push(query(
        "cursor",
        "The next_cursor of the previous page.",
        false,
        json!({"type": "string"}),
    ));
    params
}

fn error() -> Value {
    json!({"description": "Bad input; the body names the parameter.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn list(summary: &str, item: &str) -> Value {
    json!({"get": {
        "summary": summary,
        "parameters": paged(),
        "responses": {
            "200": {"description": "One page.", "content": {"application/json": {"schema": {
                "type": "object", "required": ["items", "next_cursor"],
                "properties": {
                    "items": {"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}},
                    "next_cursor": {"type": ["string", "null"]}
                }}}}},
            "400": error(), "401": error(), "404": error()
        }
    }})
}

fn push(summary: &str, record: &str) -> Value {
    json!({
        "summary": summary,
        "requestBody": {"required": true, "description": "One record of the import format, or an array of them.", "content": {"application/json": {"schema": {"oneOf": [
            {"$ref": format!("#/components/schemas/{record}")},
            {"type": "array", "items": {"$ref": format!("#/components/schemas/{record}")}}
        ]}}}},
        "responses": {
            "201": {"description": "Written.", "content": {"application/json": {"schema": {"type": "object", "properties": {"received": {"type": "integer"}, "changed": {"type": "integer"}}}}}},
            "401": error(), "403": error(), "413": {"description": "Body too large."}, "422": error()
        }
    })
}

fn page(summary: &str, params: Vec<Value>) -> Value {
    json!({"get": {"summary": summary, "parameters": params, "responses": {
        "200": {"description": "HTML page.", "content": {"text/html": {}}}, "400": error(), "404": error()
    }}})
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

pub fn document() -> Value {
    let nullable_number = json!({"type": ["number", "null"]});
    let tier =
        json!({"type": ["string", "null"], "enum": ["elite", "high", "medium", "low", null]});
    let time = json!({"type": "string", "format": "date-time"});
    let nullable_time = json!({"type": ["string", "null"], "format": "date-time"});
    let mut receipt_params = vec![
        json!({"name": "metric", "in": "path", "required": true, "schema": {"type": "string",
        "enum": ["deployment-frequency", "lead-time", "change-failure-rate", "recovery-time", "rework-rate"]}}),
    ];
    receipt_params.extend(filters(false));
    let mut trend_params = filters(false);
    trend_params.push(json!({"name": "metric", "in": "path", "required": true, "description": "deployment-frequency, lead-time, change-failure-rate, recovery-time or rework-rate.", "schema": {"type": "string"}}));
    trend_params.push(query(
        "months",
        "6, 12 (default) or 24.",
        false,
        json!({"type": "integer", "enum": [6, 12, 24]}),
    ));
    trend_params.push(query(
        "format",
        "csv: the weeks as CSV.",
        false,
        json!({"type": "string", "enum": ["csv"]}),
    ));
    let webhook = json!({"post": {"summary": "GitHub webhook deliveries (docs/connectors.md#webhooks): signed with X-Hub-Signature-256 under github.webhook_secret instead of a token; X-GitHub-Event and X-GitHub-Delivery name the event and the delivery. Kept, then processed by the sync's normalizers.", "security": [],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {"202": {"description": "Kept (processed shortly), or ignored: an event not read, or a repository not followed."},
                    "200": {"description": "A redelivery of a delivery kept already: nothing changes."},
                    "400": error(), "401": error(), "404": {"description": "Webhooks are off: no github.webhook_secret."},
                    "413": {"description": "Over 25 MB."}, "415": error(), "429": error(), "503": error()}}});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Flowmeter", "version": "1", "description": "DORA metrics (definitions version 2) and the rows behind them."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                    "status": {"type": "integer"}, "param": {"type": ["string", "null"]}, "message": {"type": "string"}}}}},
                "DoraReport": {"type": "object", "required": ["definitions_version", "window", "scope", "deployment_frequency", "lead_time", "change_failure_rate", "recovery_time", "rework_rate"], "properties": {
                    "definitions_version": {"type": "integer"},
                    "window": {"type": "object", "properties": {"from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"}, "days": {"type": "integer"}}},
                    "scope": {"type": "object", "properties": {"repo": {"type": ["string", "null"]}, "service": {"type": ["string", "null"]}, "team": {"type": ["string", "null"]}}},
                    "deployment_frequency": {"type": "object", "properties": {"deployments": {"type": "integer"}, "per_week": {"type": "number"}, "deploy_days_per_week_median": nullable_number, "tier": tier}},
                    "lead_time": {"type": "object", "properties": {"changes": {"type": "integer"}, "median_hours": nullable_number, "p90_hours": nullable_number, "tier": tier}},
                    "change_failure_rate": {"type": "object", "properties": {"deployments": {"type": "integer"}, "failed": {"type": "integer"}, "rate": nullable_number, "tier": tier}},
                    "recovery_time": {"type": "object", "properties": {"incidents": {"type": "integer"}, "median_hours": nullable_number, "tier": tier, "open": {"type": "integer"}}},
                    "rework_rate": {"type": "object", "properties": {"deployments": {"type": "integer"}, "rework": {"type": "integer"}, "rate": nullable_number}}
                }},
                "Deployment": {"type": "object", "properties": {"service": {"type": "string"}, "repo": {"type": "string"}, "id": {"type": "string"}, "sha": {"type": "string"}, "time": time, "baseline": {"type": "boolean"}, "failed": {"type": "boolean"}, "rework": {"type": "boolean"}, "rework_reasons": {"type": "array", "items": {"type": "object", "required": ["clause"], "properties": {"clause": {"type": "string", "enum": ["revert", "rollback", "fix_after_incident", "fix_of_incident"]}}}}, "changes": {"type": "integer"}}},
                "Change": {"type": "object", "properties": {"service": {"type": "string"}, "repo": {"type": "string"}, "sha": {"type": "string"}, "deployment_id": {"type": "string"}, "deployed_at": time, "start": time, "lead_hours": {"type": "number"}, "squash_of": {"type": ["integer", "null"]}, "fix": {"type": "boolean"}}},
                "Incident": {"type": "object", "properties": {"service": {"type": ["string", "null"]}, "repo": {"type": ["string", "null"]}, "id": {"type": "string"}, "created_at": time, "resolved_at": nullable_time, "recovery_hours": nullable_number, "deployment_id": {"type": ["string", "null"]}}},
                "PullRequest": {"type": "object", "properties": {"repo": {"type": "string"}, "number": {"type": "integer"}, "title": {"type": ["string", "null"]}, "author": {"type": ["string", "null"]}, "state": {"type": "string", "enum": ["open", "merged", "closed"]}, "draft": {"type": "boolean"}, "created_at": time, "merged_at": nullable_time, "closed_at": nullable_time, "reviews": {"type": "integer"}}},
                "DeploymentRecord": {"type": "object", "description": "A line of deployments.jsonl (docs/import-format.md).", "required": ["repo", "id", "environment", "sha", "status", "created_at"], "properties": {
                    "repo": {"type": "string"}, "id": {"type": "string"}, "environment": {"type": "string"}, "sha": {"type": "string"},
                    "status": {"type": "string", "enum": ["success", "failure", "error", "in_progress", "queued", "inactive"]},
                    "created_at": time, "finished_at": nullable_time, "service": {"type": ["string", "null"]}, "url": {"type": ["string", "null"]}}},
                "IncidentRecord": {"type": "object", "description": "A line of incidents.jsonl (docs/import-format.md): repo or service is required.", "required": ["id", "created_at"], "properties": {
                    "repo": {"type": ["string", "null"]}, "service": {"type": ["string", "null"]}, "id": {"type": "string"}, "created_at": time, "resolved_at": nullable_time,
                    "title": {"type": ["string", "null"]}, "severity": {"type": ["string", "null"]}, "deployment_id": {"type": ["string", "null"]}, "url": {"type": ["string", "null"]}}}
            }
        },
        "security": [{"bearer": []}, {}],
        "paths": {
            "/": page("Overview: the five DORA numbers with tiers, trends and sparklines.", filters(false)),
            "/deployments": page("Deployments with delivered changes and incidents; failed attempts apart.", filters(false)),
            "/lead-time": page("Lead time distribution and the slowest changes.", filters(false)),
            "/incidents": page("Incidents resolved in the window and still open.", filters(false)),
            "/pull-requests": page("Open pull requests waiting for review.", filters(false)),
            "/value-stream": page("Where time goes per stage, the bottleneck, and work waiting in each stage.", filters(false)),
            "/capitalization": page("The capitalization view of a week (docs/capitalization.md): `week` (`2026-W47`, default the last complete week with data) and `team`: capitalizable share per team and project over 8 weeks, people-weeks with unattributed time, and each row with its receipt.", filters(false)),
            "/digest": page("A team's weekly digest (the same content as its Slack message): `team` (a team, or `all`) and `week` (`2026-W47`, default the last complete week).", filters(false)),
            "/trends/{metric}": {"get": {"summary": "One metric's weekly series for the scope over the last 6, 12 or 24 months (`months`), as a chart with axes, units and tier bands, and a table; `format=csv` gives the same weeks as CSV.", "parameters": trend_params, "responses": {"200": {"description": "HTML page, or CSV with format=csv.", "content": {"text/html": {}, "text/csv": {}}}, "400": error(), "404": error()}}},
            "/teams": page("Every team's and every service's five numbers side by side with tiers, the change against the previous window and 12 weekly points; `sort` (name or a metric) and `order` (asc, desc).", filters(false)),
            "/sources": page("Where the data comes from: records in the store, the snapshot shown, and when each connector cursor last moved.", filters(false)),
            "/receipts/{metric}": {"get": {"summary": "The rows behind one number and the rule applied.", "parameters": receipt_params, "responses": {"200": {"description": "HTML page.", "content": {"text/html": {}}}, "400": error(), "404": error()}}},
            "/static/style.css": {"get": {"summary": "The dashboard's stylesheet.", "responses": {"200": {"description": "CSS.", "content": {"text/css": {}}}}}},
            "/signin": {
                "get": {"summary": "The sign-in form (when tokens are configured).", "responses": {"200": {"description": "HTML page.", "content": {"text/html": {}}}}},
                "post": {"summary": "Sign in with a token: sets an HttpOnly, SameSite=Strict session cookie.", "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}, "next": {"type": "string"}}}}}},
                    "responses": {"303": {"description": "Signed in; on to `next`."}, "401": {"description": "Not a token of this server."}, "415": {"description": "Not a form."}}}},
            "/signout": {
                "get": {"summary": "Sign out: clears the session cookie.", "responses": {"303": {"description": "On to the sign-in form."}}},
                "post": {"summary": "Sign out: clears the session cookie.", "responses": {"303": {"description": "On to the sign-in form."}}}},
            "/api/v1/dora": {"get": {"summary": "The DORA report document (docs/api.md), identical to `flowmeter report`.", "parameters": filters(true), "responses": {
                "200": {"description": "The report.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DoraReport"}}}},
                "400": error(), "401": error(), "404": error()}}},
            "/api/v1/stages": {"get": {"summary": "The value stream (rule S): stages, bottleneck, work in progress.", "parameters": filters(true), "responses": {
                "200": {"description": "The value-stream document (docs/api.md).", "content": {"application/json": {"schema": {"type": "object", "required": ["definitions_version", "window", "scope", "pull_requests", "stages", "bottleneck", "work_in_progress"]}}}},
                "400": error(), "401": error(), "404": error()}}},
            "/api/v1/deployments": merge(list("Counted deployments in the window.", "Deployment"), json!({"post": push("Report deployments from any CI or deploy script.", "DeploymentRecord")})),
            "/api/v1/changes": list("Changes delivered by the window's deployments, with lead times.", "Change"),
            "/api/v1/incidents": merge(list("Incidents resolved in the window, then those still open.", "Incident"), json!({"post": push("Report incidents from any pager.", "IncidentRecord")})),
            "/api/v1/pull-requests": list("Pull requests open at some point in the window.", "PullRequest"),
            "/api/v1/openapi.json": {"get": {"summary": "This document.", "responses": {"200": {"description": "OpenAPI 3.1.", "content": {"application/json": {}}}}}},
            "/export/dora.csv": {"get": {"summary": "One row per ISO week and service with the week's figures.", "parameters": filters(false), "responses": {
                "200": {"description": "CSV.", "content": {"text/csv": {}}}, "400": error(), "401": error(), "404": error()}}},
            "/export/capitalization.csv": {"get": {"summary": "The capitalization export (docs/capitalization.md): one row per person, ISO week and work item with its FTE share, whether it is capitalizable and the rule that decided. The same weeks of an unchanged store give the same bytes.", "parameters": [
                query("week", "An ISO week that has ended, such as 2026-W47 (default: the last one).", false, json!({"type": "string"})),
                query("weeks", "A range of ended ISO weeks, such as 2026-W40..2026-W47 (at most 13), instead of week.", false, json!({"type": "string"})),
                query("team", "Only the people of this team (in the week).", false, json!({"type": "string"}))],
                "responses": {"200": {"description": "CSV; the header X-Flowmeter-Generation names the store generation it reflects, X-Flowmeter-Method-Version the method's version.", "content": {"text/csv": {}}}, "400": error(), "401": error()}}},
            "/healthz": {"get": {"summary": "Liveness.", "responses": {"200": {"description": "ok"}}}},
            "/readyz": {"get": {"summary": "Readiness: the store answers.", "responses": {"200": {"description": "ready"}, "503": {"description": "store unreachable"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics.", "responses": {"200": {"description": "Text exposition format.", "content": {"text/plain": {}}}}}},
            "/hooks/github": webhook
        }
    })
}
