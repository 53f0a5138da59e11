//! D0: which deployment records count as deployments, and of which service.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use flowmeter_core::{Config, DeploymentStatus};

use crate::model::{Deploy, Micros, Model, Sym};

/// A counted deployment before attribution.
#[derive(Debug, Clone)]
pub struct Candidate<'m> {
    pub repo: Sym,
    pub record: &'m Deploy,
    pub time: Micros,
}

/// The counted deployments of some repositories, by service name, each service's in
/// deployment order (time, then id): successful records to a production environment, one per
/// (service, id), the latest finish winning (then the greater repository name).
pub fn counted<'m>(
    model: &'m Model,
    config: &Config,
    repos: &BTreeSet<Sym>,
) -> BTreeMap<String, Vec<Candidate<'m>>> {
    let mut by_key: HashMap<(String, &str), Candidate> = HashMap::new();
    for &repo in repos {
        let name = model.names.name(repo);
        for d in model.repos[&repo].deployments.values() {
            if d.status() != DeploymentStatus::Success || !config.is_production(&d.environment) {
                continue;
            }
            let service = config.service_of_deployment(name, &d.id, d.service.as_deref());
            let time = d.time();
            let key = (service, &*d.id);
            let wins = by_key.get(&key).is_none_or(|existing| {
                (existing.time, model.names.name(existing.repo)) < (time, name)
            });
            if wins {
                by_key.insert(
                    key,
                    Candidate {
                        repo,
                        record: d,
                        time,
                    },
                );
            }
        }
    }
    let mut by_service: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    for ((service, _), candidate) in by_key {
        by_service.entry(service).or_default().push(candidate);
    }
    for list in by_service.values_mut() {
        list.sort_by(|a, b| (a.time, &a.record.id).cmp(&(b.time, &b.record.id)));
    }
    by_service
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::batch_of;
    use flowmeter_core::{Deployment, Record};

    fn record(repo: &str, id: &str, env: &str, status: DeploymentStatus, at: &str) -> Record {
        Record::Deployment(Deployment {
            repo: repo.into(),
            id: id.into(),
            environment: env.into(),
            sha: "s".into(),
            status,
            created_at: at.parse().unwrap(),
            finished_at: None,
            service: Some("checkout".into()),
            url: None,
        })
    }

    #[test]
    fn only_successful_production_records_count_and_an_id_counts_once_per_service() {
        let model = Model::of(&batch_of([
            record(
                "acme/a",
                "7",
                "production",
                DeploymentStatus::Success,
                "2024-03-01T00:00:00Z",
            ),
            record(
                "acme/b",
                "7",
                "Production",
                DeploymentStatus::Success,
                "2024-03-02T00:00:00Z",
            ),
            record(
                "acme/a",
                "8",
                "staging",
                DeploymentStatus::Success,
                "2024-03-01T00:00:00Z",
            ),
            record(
                "acme/a",
                "9",
                "prod",
                DeploymentStatus::Failure,
                "2024-03-01T00:00:00Z",
            ),
        ]));
        let repos: BTreeSet<Sym> = model.repos.keys().copied().collect();
        let counted = counted(&model, &Config::default(), &repos);
        let checkout = &counted["checkout"];
        assert_eq!(checkout.len(), 1, "one deployment 7, the latest record");
        assert_eq!(model.names.name(checkout[0].repo), "acme/b");
    }
}
