//! Classification of changes as fixes (D5) and links from code to tracker issues.

use std::collections::{HashMap, HashSet};

use regex::Regex;

use flowmeter_core::{Config, Dataset, PullRequest, glob};

pub(crate) struct Classifier<'a> {
    config: &'a Config,
    issue_types: HashMap<&'a str, &'a str>,
    projects: HashSet<&'a str>,
    key_pattern: Regex,
    /// Subjects of commits that mention an issue key, for pull requests' links.
    keyed_subjects: HashMap<(&'a str, &'a str), &'a str>,
}

impl<'a> Classifier<'a> {
    pub fn new(dataset: &'a Dataset, config: &'a Config) -> Self {
        let key_pattern = Regex::new(r"\b([A-Z][A-Z0-9]+)-([0-9]+)\b").expect("valid pattern");
        let issue_types = dataset
            .issues
            .iter()
            .map(|i| (i.key.as_str(), i.issue_type.as_str()))
            .collect();
        let projects: HashSet<&str> = dataset.issues.iter().map(|i| i.project.as_str()).collect();
        let mut keyed_subjects = HashMap::new();
        if !projects.is_empty() {
            for c in &dataset.commits {
                let subject = c.subject();
                if key_pattern.is_match(subject) {
                    keyed_subjects.insert((c.repo.as_str(), c.sha.as_str()), subject);
                }
            }
        }
        Classifier {
            config,
            issue_types,
            projects,
            key_pattern,
            keyed_subjects,
        }
    }

    /// Issue keys of known projects found in a text.
    fn keys<'t>(&'t self, text: &'t str) -> impl Iterator<Item = &'t str> + 't {
        self.key_pattern.captures_iter(text).filter_map(|c| {
            let project = c.get(1)?.as_str();
            self.projects
                .contains(project)
                .then(|| c.get(0).map(|m| m.as_str()))?
        })
    }

    /// The texts of a pull request that may name issues: title, head branch, commit subjects.
    fn pull_texts<'p>(&'p self, pr: &'p PullRequest) -> Vec<&'p str> {
        let mut texts: Vec<&str> = Vec::new();
        texts.extend(pr.title.as_deref());
        texts.extend(pr.head_branch.as_deref());
        for sha in &pr.commits {
            if let Some(subject) = self.keyed_subjects.get(&(pr.repo.as_str(), sha.as_str())) {
                texts.push(subject);
            }
        }
        texts
    }

    /// The known issues a pull request names, in the order they appear.
    pub fn linked_issues(&self, pr: &PullRequest) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for text in self.pull_texts(pr) {
            for key in self.keys(text) {
                if self.issue_types.contains_key(key) && !keys.iter().any(|k| k == key) {
                    keys.push(key.to_string());
                }
            }
        }
        keys
    }

    /// Whether a pull request names at least one known issue.
    pub fn links_issue(&self, pr: &PullRequest) -> bool {
        self.pull_texts(pr)
            .into_iter()
            .any(|t| self.keys(t).next().is_some())
    }

    /// What makes a change name an incident (D5, "fix of an incident"), if anything: its pull
    /// request carries an incident label (`github.incident_labels`), or it or its pull request
    /// links to a tracker issue of an incident type (`jira.incident_types`).
    pub fn names_incident(&self, subject: &str, pr: Option<&PullRequest>) -> Option<String> {
        if let Some(pr) = pr
            && let Some(label) = pr.labels.iter().find(|l| {
                self.config
                    .github
                    .incident_labels
                    .iter()
                    .any(|i| i.eq_ignore_ascii_case(l))
            })
        {
            return Some(format!("pull request #{} is labelled '{label}'", pr.number));
        }
        let mut texts = vec![subject];
        if let Some(pr) = pr {
            texts.extend(self.pull_texts(pr));
        }
        texts.into_iter().find_map(|text| {
            self.keys(text).find_map(|key| {
                let kind = self.issue_types.get(key)?;
                self.config
                    .jira
                    .incident_types
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(kind))
                    .then(|| format!("links to {key} ({kind})"))
            })
        })
    }

    /// Whether a change is a fix: its pull request's labels or head branch, its commit subject,
    /// or the type of an issue it or its pull request links to.
    pub fn is_fix(&self, subject: &str, pr: Option<&PullRequest>) -> bool {
        let fix = &self.config.fix;
        if fix
            .subject_prefixes
            .iter()
            .any(|p| subject.starts_with(p.as_str()))
        {
            return true;
        }
        let lower = subject.to_lowercase();
        if fix
            .subject_contains
            .iter()
            .any(|w| lower.contains(&w.to_lowercase()))
        {
            return true;
        }
        let fix_issue = |text: &str| {
            self.keys(text).any(|key| {
                self.issue_types
                    .get(key)
                    .is_some_and(|t| fix.issue_types.iter().any(|f| f.eq_ignore_ascii_case(t)))
            })
        };
        if fix_issue(subject) {
            return true;
        }
        let Some(pr) = pr else { return false };
        if pr
            .labels
            .iter()
            .any(|l| fix.labels.iter().any(|f| f.eq_ignore_ascii_case(l)))
        {
            return true;
        }
        if let Some(branch) = &pr.head_branch
            && fix.head_branches.iter().any(|g| glob::matches(g, branch))
        {
            return true;
        }
        self.pull_texts(pr).into_iter().any(fix_issue)
    }
}
