//! Classification of changes as fixes (D5) and links from code to tracker issues (S).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use flowmeter_core::{Config, glob};

use crate::model::{Commits, IssueModel, Model, Pull, key_pattern};

/// The tracker's issues as classification reads them.
pub(crate) struct Classifier<'a> {
    config: &'a Config,
    issues: &'a BTreeMap<Box<str>, Arc<IssueModel>>,
    projects: HashSet<&'a str>,
}

impl<'a> Classifier<'a> {
    pub fn new(model: &'a Model, config: &'a Config) -> Self {
        let projects = model.projects.keys().map(|p| &**p).collect();
        Classifier {
            config,
            issues: &model.issues,
            projects,
        }
    }

    /// Issue keys of known projects found in a text.
    fn keys<'t>(&'t self, text: &'t str) -> impl Iterator<Item = &'t str> + 't {
        let candidates = text
            .contains('-')
            .then(|| key_pattern().captures_iter(text));
        candidates.into_iter().flatten().filter_map(|c| {
            let project = c.get(1)?.as_str();
            self.projects
                .contains(project)
                .then(|| c.get(0).map(|m| m.as_str()))?
        })
    }

    fn issue_type(&self, key: &str) -> Option<&'a str> {
        self.issues.get(key).map(|i| &*i.issue_type)
    }

    /// The texts of a pull request that may name issues: title, head branch, commit subjects.
    fn pull_texts<'p>(&'p self, pr: &'p Pull, commits: &'p Commits) -> Vec<&'p str> {
        let mut texts: Vec<&str> = Vec::new();
        texts.extend(pr.title.as_deref());
        texts.extend(pr.head_branch.as_deref());
        for &node in &pr.commits {
            let subject = commits.subject(node);
            if subject.contains('-') {
                texts.push(subject);
            }
        }
        texts
    }

    /// The known issues a pull request names, in the order they appear.
    pub fn linked_issues(&self, pr: &Pull, commits: &Commits) -> Vec<&'a IssueModel> {
        let mut linked: Vec<&IssueModel> = Vec::new();
        for text in self.pull_texts(pr, commits) {
            for key in self.keys(text) {
                if let Some(issue) = self.issues.get(key)
                    && !linked.iter().any(|i| *i.key == *key)
                {
                    linked.push(issue);
                }
            }
        }
        linked
    }

    /// Whether a pull request names at least one issue key of a known project.
    pub fn links_issue(&self, pr: &Pull, commits: &Commits) -> bool {
        self.pull_texts(pr, commits)
            .into_iter()
            .any(|t| self.keys(t).next().is_some())
    }

    /// What makes a change name an incident (D5, "fix of an incident"), if anything: its pull
    /// request carries an incident label (`github.incident_labels`), or it or its pull request
    /// links to a tracker issue of an incident type (`jira.incident_types`).
    pub fn names_incident(
        &self,
        subject: &str,
        pr: Option<&Pull>,
        commits: &Commits,
    ) -> Option<String> {
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
            texts.extend(self.pull_texts(pr, commits));
        }
        texts.into_iter().find_map(|text| {
            self.keys(text).find_map(|key| {
                let kind = self.issue_type(key)?;
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
    pub fn is_fix(&self, subject: &str, pr: Option<&Pull>, commits: &Commits) -> bool {
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
                self.issue_type(key)
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
        self.pull_texts(pr, commits).into_iter().any(fix_issue)
    }
}
