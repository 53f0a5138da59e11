//! D3: which deployment an incident is attributed to; and D5's "fix after an incident", which
//! needs every service's incidents.

use std::collections::{BTreeSet, HashMap};

use flowmeter_core::Config;

use crate::model::{IncidentModel, Micros, Model, micros, timestamp};
use crate::prepare::{DeploymentRow, IncidentRow, Linkage, ReworkReason, hours};

/// The services an incident may belong to: the one it names, else those of its repository.
fn candidate_services(
    incident: &IncidentModel,
    repo_services: &HashMap<String, BTreeSet<String>>,
    config: &Config,
) -> Vec<String> {
    match (&incident.service, &incident.repo) {
        (Some(s), _) => vec![s.to_string()],
        (None, Some(repo)) => repo_services
            .get(&**repo)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_else(|| config.services_of_repo(repo)),
        (None, None) => Vec::new(),
    }
}

/// D3: an incident goes to the deployment it names, else to the latest deployment of its
/// service at or before it, at most `incident_window_days` older; else to none. Marks the
/// deployments that failed.
pub fn attribute(
    model: &Model,
    deployments: &mut [DeploymentRow],
    repo_services: &HashMap<String, BTreeSet<String>>,
    config: &Config,
    linkage: &mut Linkage,
) -> Vec<IncidentRow> {
    let window_us = i64::from(config.metrics.incident_window_days) * 24 * 3_600_000_000;
    let mut by_service: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_id: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, d) in deployments.iter().enumerate() {
        by_service.entry(d.service.as_str()).or_default().push(i);
        by_id.entry(d.id.as_str()).or_default().push(i);
    }
    let time = |i: usize| micros(&deployments[i].time);
    let mut attributed: Vec<usize> = Vec::new();
    let mut rows = Vec::with_capacity(model.incidents.len());
    for incident in model.incidents.values() {
        let services = candidate_services(incident, repo_services, config);
        let in_scope = |d: &DeploymentRow| services.contains(&d.service);
        let target = match &incident.deployment_id {
            Some(id) => {
                let found = by_id
                    .get(&**id)
                    .and_then(|list| list.iter().copied().find(|&i| in_scope(&deployments[i])));
                if found.is_none() {
                    linkage.incidents_with_unknown_deployment += 1;
                }
                found
            }
            None => services
                .iter()
                .filter_map(|s| by_service.get(s.as_str()))
                .flatten()
                .copied()
                .filter(|&i| time(i) <= incident.created)
                .max_by(|&a, &b| (time(a), &deployments[a].id).cmp(&(time(b), &deployments[b].id)))
                .filter(|&i| incident.created - time(i) <= window_us),
        };
        if target.is_none() {
            linkage.incidents_unattributed += 1;
        }
        if let Some(i) = target {
            attributed.push(i);
        }
        let service = match (&incident.service, target) {
            (Some(s), _) => Some(s.to_string()),
            (None, Some(i)) => Some(deployments[i].service.clone()),
            (None, None) if services.len() == 1 => Some(services[0].clone()),
            (None, None) => None,
        };
        let repo = incident
            .repo
            .as_deref()
            .map(String::from)
            .or_else(|| target.map(|i| deployments[i].repo.clone()));
        rows.push(IncidentRow {
            service,
            repo,
            id: incident.id.to_string(),
            created_at: timestamp(incident.created),
            resolved_at: incident.resolved.map(timestamp),
            recovery_hours: incident.resolved.map(|r| hours(r - incident.created)),
            deployment_id: target.map(|i| deployments[i].id.clone()),
        });
    }
    for i in attributed {
        deployments[i].failed = true;
    }
    rows
}

/// D5's "fix after an incident": a deployment that delivers a fix is rework when an incident of
/// its service was created at or before it and at most the incident window (D3) before it. An
/// incident's services: the one it names or was attributed to, else every service of its
/// repository.
pub fn fixes_after_incidents(
    deployments: &mut [DeploymentRow],
    incidents: &[IncidentRow],
    repo_services: &HashMap<String, BTreeSet<String>>,
    config: &Config,
) {
    let window = i64::from(config.metrics.incident_window_days) * 24 * 3_600_000_000;
    let mut by_service: HashMap<&str, Vec<(Micros, &str)>> = HashMap::new();
    for incident in incidents {
        let services: Vec<&str> = match (&incident.service, &incident.repo) {
            (Some(service), _) => vec![service.as_str()],
            (None, Some(repo)) => repo_services
                .get(repo)
                .map(|s| s.iter().map(String::as_str).collect())
                .unwrap_or_default(),
            (None, None) => Vec::new(),
        };
        for service in services {
            by_service
                .entry(service)
                .or_default()
                .push((micros(&incident.created_at), incident.id.as_str()));
        }
    }
    for list in by_service.values_mut() {
        list.sort();
    }
    for d in deployments.iter_mut() {
        let Some(change) = &d.first_fix else {
            continue;
        };
        let Some(list) = by_service.get(d.service.as_str()) else {
            continue;
        };
        // The latest incident created at or before the deployment, if within the window.
        let at = micros(&d.time);
        let at_or_before = list.partition_point(|(created, _)| *created <= at);
        if let Some(&(created, id)) = at_or_before.checked_sub(1).map(|i| &list[i])
            && at - created <= window
        {
            let reason = ReworkReason::FixAfterIncident {
                change: change.clone(),
                incident: id.to_string(),
            };
            d.rework_reasons.push(reason);
        }
    }
}
