//! The engine's own copy of the store: what attribution, incidents and the value stream read,
//! and nothing else, held compactly so a whole organisation fits in memory and changes can be
//! applied to it one batch at a time.
//!
//! - Repositories, services and people are interned ([`Names`]); a repository's commits are
//!   rows of one [`Commits`] table with integer ids, shas and subjects in two text arenas, and
//!   parents as id lists. A sha named before its commit arrived (a parent, a deployment's
//!   commit) gets an id at once and is filled in when the commit comes: history may arrive in
//!   any order.
//! - Every repository is one `Arc`: applying a batch copies only the repositories it touches,
//!   so a snapshot being served keeps sharing everything else with the next one.
//! - Times are microseconds since the epoch (UTC).
//!
//! [`Model::apply`] upserts records by their natural keys, as the store does, and says what the
//! batch touched ([`Touched`]), which is what the engine recomputes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher as _;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use flowmeter_core::{Dataset, DeploymentStatus, Record, Timestamp};

/// Microseconds since the epoch, UTC.
pub type Micros = i64;

pub fn micros(t: &Timestamp) -> Micros {
    t.timestamp_micros()
}

pub fn timestamp(us: Micros) -> Timestamp {
    chrono::DateTime::from_timestamp_micros(us).expect("stored times are in range")
}

/// An interned name (a repository, a service, a login).
pub type Sym = u32;

/// Interned names; a name keeps its number for the life of the model.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Names {
    names: Vec<Box<str>>,
    #[serde(skip)]
    index: HashMap<Box<str>, Sym>,
}

impl Names {
    pub fn intern(&mut self, name: &str) -> Sym {
        if let Some(&sym) = self.index.get(name) {
            return sym;
        }
        let sym = self.names.len() as Sym;
        self.names.push(name.into());
        self.index.insert(name.into(), sym);
        sym
    }

    pub fn get(&self, name: &str) -> Option<Sym> {
        self.index.get(name).copied()
    }

    pub fn name(&self, sym: Sym) -> &str {
        &self.names[sym as usize]
    }

    fn reindex(&mut self) {
        self.index = self
            .names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as Sym))
            .collect();
    }
}

/// Strings appended one after another, each addressed by its index.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Arena {
    text: String,
    /// The end of each string in `text`; string `i` starts where `i - 1` ended.
    ends: Vec<u32>,
}

impl Arena {
    fn push(&mut self, s: &str) -> u32 {
        self.text.push_str(s);
        self.ends.push(self.text.len() as u32);
        (self.ends.len() - 1) as u32
    }

    fn get(&self, i: u32) -> &str {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    fn len(&self) -> usize {
        self.ends.len()
    }
}

/// One repository's commits. Node ids are dense; a node may be known only by its sha (a parent
/// or a deployment's commit that has not arrived), in which case it has no parents and is not a
/// change.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Commits {
    shas: Arena,
    #[serde(skip)]
    index: hashbrown::HashTable<u32>,
    known: Vec<bool>,
    /// Each node's parents: a range of `parent_ids` (a commit written again with other
    /// parents gets a new range; the old one is left unused).
    parent_range: Vec<(u32, u32)>,
    parent_ids: Vec<u32>,
    authored: Vec<Micros>,
    /// The subject (first line of the message) of each node, by subject index.
    subjects: Arena,
    subject_of: Vec<u32>,
    /// The shas a commit's message says it reverts (`This reverts commit <sha>`), where any.
    reverts: BTreeMap<u32, Vec<Box<str>>>,
}

/// The hasher of sha indexes: the same keys in every process, so an index can be rebuilt.
fn hasher() -> std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher> {
    std::hash::BuildHasherDefault::default()
}

impl Commits {
    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// The node of a sha, if any record named it.
    pub fn node(&self, sha: &str) -> Option<u32> {
        let hash = hasher().hash_one(sha);
        self.index.find(hash, |&n| self.shas.get(n) == sha).copied()
    }

    /// The node of a stored commit.
    pub fn known_node(&self, sha: &str) -> Option<u32> {
        self.node(sha).filter(|&n| self.known[n as usize])
    }

    /// The node of a sha, created (unknown) when no record named it yet.
    pub fn node_or_insert(&mut self, sha: &str) -> u32 {
        if let Some(n) = self.node(sha) {
            return n;
        }
        let n = self.shas.push(sha);
        let hash = hasher().hash_one(sha);
        let shas = &self.shas;
        self.index
            .insert_unique(hash, n, |&m| hasher().hash_one(shas.get(m)));
        self.known.push(false);
        self.parent_range.push((0, 0));
        self.authored.push(0);
        let empty = self.subjects.push("");
        self.subject_of.push(empty);
        n
    }

    fn reindex(&mut self) {
        self.index = hashbrown::HashTable::with_capacity(self.shas.len());
        for n in 0..self.shas.len() as u32 {
            let hash = hasher().hash_one(self.shas.get(n));
            let shas = &self.shas;
            self.index
                .insert_unique(hash, n, |&m| hasher().hash_one(shas.get(m)));
        }
    }

    pub fn sha(&self, node: u32) -> &str {
        self.shas.get(node)
    }

    pub fn is_known(&self, node: u32) -> bool {
        self.known[node as usize]
    }

    pub fn parents(&self, node: u32) -> &[u32] {
        let (start, len) = self.parent_range[node as usize];
        &self.parent_ids[start as usize..(start + len) as usize]
    }

    pub fn authored(&self, node: u32) -> Micros {
        self.authored[node as usize]
    }

    /// A change (D2): a stored commit with at most one parent.
    pub fn is_change(&self, node: u32) -> bool {
        self.known[node as usize] && self.parent_range[node as usize].1 <= 1
    }

    pub fn subject(&self, node: u32) -> &str {
        self.subjects.get(self.subject_of[node as usize])
    }

    /// The shas (or their prefixes) the commit's message says it reverts.
    pub fn reverted(&self, node: u32) -> &[Box<str>] {
        self.reverts.get(&node).map_or(&[], Vec::as_slice)
    }

    /// Stored commits with a parent that is not stored.
    pub fn with_unknown_parent(&self) -> u64 {
        (0..self.len() as u32)
            .filter(|&n| self.is_known(n) && self.parents(n).iter().any(|&p| !self.is_known(p)))
            .count() as u64
    }

    /// Writes a commit; the same sha again replaces what was written.
    fn upsert(&mut self, c: &flowmeter_core::Commit) {
        let node = self.node_or_insert(&c.sha);
        let parents: Vec<u32> = c.parents.iter().map(|p| self.node_or_insert(p)).collect();
        let i = node as usize;
        if self.parents(node) != parents.as_slice() {
            let start = self.parent_ids.len() as u32;
            self.parent_ids.extend(&parents);
            self.parent_range[i] = (start, parents.len() as u32);
        }
        self.known[i] = true;
        self.authored[i] = micros(&c.authored_at);
        let subject = c.subject();
        if self.subject(node) != subject {
            self.subject_of[i] = self.subjects.push(subject);
        }
        let named = reverted_shas(c.message.as_deref().unwrap_or(""));
        if named.is_empty() {
            self.reverts.remove(&node);
        } else {
            self.reverts.insert(node, named);
        }
    }
}

/// The shas named by git's "This reverts commit <sha>" lines, at least 7 hex digits each.
fn reverted_shas(message: &str) -> Vec<Box<str>> {
    message
        .split("This reverts commit ")
        .skip(1)
        .filter_map(|rest| {
            let named: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
            (named.len() >= 7).then(|| named.into_boxed_str())
        })
        .collect()
}

/// A pull request as the engine reads it; its commits are nodes of its repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pull {
    pub number: u64,
    pub created: Micros,
    pub title: Option<Box<str>>,
    pub author: Option<Sym>,
    pub draft: bool,
    pub ready: Option<Micros>,
    pub merged: Option<Micros>,
    pub closed: Option<Micros>,
    pub head_branch: Option<Box<str>>,
    pub merge_commit: Option<u32>,
    pub commits: Vec<u32>,
    pub labels: Vec<Box<str>>,
    /// (reviewer, submitted).
    pub reviews: Vec<(Sym, Micros)>,
}

/// A deployment record as the engine reads it (counted or not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deploy {
    pub id: Box<str>,
    pub environment: Box<str>,
    pub node: u32,
    pub status: u8,
    pub created: Micros,
    pub finished: Option<Micros>,
    pub service: Option<Box<str>>,
    pub url: Option<Box<str>>,
}

impl Deploy {
    /// D0: `finished_at`, else `created_at`.
    pub fn time(&self) -> Micros {
        self.finished.unwrap_or(self.created)
    }

    pub fn status(&self) -> DeploymentStatus {
        DeploymentStatus::ALL[self.status as usize]
    }
}

fn status_code(status: DeploymentStatus) -> u8 {
    DeploymentStatus::ALL
        .iter()
        .position(|s| *s == status)
        .expect("a known status") as u8
}

/// One repository: its commits, pull requests and deployment records.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RepoModel {
    pub commits: Commits,
    pub pulls: BTreeMap<u64, Pull>,
    pub deployments: BTreeMap<Box<str>, Deploy>,
}

/// A tracker issue as the engine reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssueModel {
    pub key: Box<str>,
    pub project: Box<str>,
    pub issue_type: Box<str>,
    pub created: Micros,
    pub summary: Option<Box<str>>,
    pub status: Option<Box<str>>,
    pub epic: Option<Box<str>>,
    pub parent: Option<Box<str>>,
    pub assignee: Option<Box<str>>,
    pub labels: Vec<Box<str>>,
    pub story_points: Option<f64>,
    pub resolved: Option<Micros>,
    /// (when, to status), in time order.
    pub transitions: Vec<(Micros, Box<str>)>,
}

/// An incident as the engine reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentModel {
    pub repo: Option<Box<str>>,
    pub service: Option<Box<str>>,
    pub id: Box<str>,
    pub created: Micros,
    pub resolved: Option<Micros>,
    pub title: Option<Box<str>>,
    pub severity: Option<Box<str>>,
    pub deployment_id: Option<Box<str>>,
    pub url: Option<Box<str>>,
}

/// An incident's key in the store: (its repository or service, its id).
pub type IncidentKey = (Box<str>, Box<str>);

/// What a batch touched: the engine recomputes these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    pub repos: BTreeSet<Sym>,
    pub incidents: bool,
    /// Issue keys written (their type, status history or project may change what links to
    /// them).
    pub issues: BTreeSet<String>,
    pub statuses: bool,
}

impl Touched {
    /// What either touched.
    pub fn merge(&mut self, other: Touched) {
        self.repos.extend(other.repos);
        self.incidents |= other.incidents;
        self.issues.extend(other.issues);
        self.statuses |= other.statuses;
    }

    pub fn is_empty(&self) -> bool {
        self.repos.is_empty() && !self.incidents && self.issues.is_empty() && !self.statuses
    }
}

/// Everything the engine knows of the store.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Model {
    /// Repositories, services and logins.
    pub names: Names,
    pub repos: BTreeMap<Sym, Arc<RepoModel>>,
    /// By (repo or service, id), the store's key.
    pub incidents: Arc<BTreeMap<IncidentKey, IncidentModel>>,
    pub issues: Arc<BTreeMap<Box<str>, Arc<IssueModel>>>,
    /// The tracker projects of those issues, with how many issues each has.
    pub projects: Arc<BTreeMap<Box<str>, usize>>,
    pub status_categories: Arc<BTreeMap<String, String>>,
    /// Issue keys (by the pattern, whatever their project) mentioned in each repository's
    /// commit subjects, pull request titles and head branches: where an issue's change is felt.
    pub mentions: Arc<BTreeMap<Box<str>, BTreeSet<Sym>>>,
}

/// The issue-key pattern of rule S: an uppercase letter, more uppercase letters or digits, `-`
/// and a number, as a whole word.
pub fn key_pattern() -> &'static regex::Regex {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| regex::Regex::new(r"\b([A-Z][A-Z0-9]+)-([0-9]+)\b").expect("valid"))
}

fn mentioned(text: &str, repo: Sym, into: &mut BTreeMap<Box<str>, BTreeSet<Sym>>) {
    if !text.contains('-') {
        return;
    }
    for m in key_pattern().find_iter(text) {
        into.entry(m.as_str().into()).or_default().insert(repo);
    }
}

fn boxed(s: &Option<String>) -> Option<Box<str>> {
    s.as_deref().map(Into::into)
}

impl Model {
    /// A model of a whole dataset.
    pub fn of(dataset: &Dataset) -> Model {
        let mut model = Model::default();
        model.apply(dataset);
        model
    }

    /// Rebuilds the indexes that are not serialized.
    pub fn reindex(&mut self) {
        self.names.reindex();
        let mut repos: Vec<&mut Arc<RepoModel>> = self.repos.values_mut().collect();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per_thread = repos.len().div_ceil(threads.max(1)).max(1);
        std::thread::scope(|scope| {
            for chunk in repos.chunks_mut(per_thread) {
                scope.spawn(move || {
                    for repo in chunk {
                        Arc::make_mut(repo).commits.reindex();
                    }
                });
            }
        });
    }

    pub fn repo(&self, sym: Sym) -> Option<&RepoModel> {
        self.repos.get(&sym).map(Arc::as_ref)
    }

    /// Upserts a batch of records (the last record of a key wins) and says what it touched.
    pub fn apply(&mut self, batch: &Dataset) -> Touched {
        let mut touched = Touched::default();
        let mut mentions: Option<BTreeMap<Box<str>, BTreeSet<Sym>>> = None;
        let mut mention = |model: &Model, text: &str, repo: Sym| {
            mentioned(
                text,
                repo,
                mentions.get_or_insert_with(|| (*model.mentions).clone()),
            )
        };
        for c in &batch.commits {
            let repo = self.names.intern(&c.repo);
            touched.repos.insert(repo);
            mention(self, c.subject(), repo);
            let model = Arc::make_mut(self.repos.entry(repo).or_default());
            model.commits.upsert(c);
        }
        for p in &batch.pull_requests {
            let repo = self.names.intern(&p.repo);
            touched.repos.insert(repo);
            for text in p.title.iter().chain(p.head_branch.iter()) {
                mention(self, text, repo);
            }
            let author = p.author.as_deref().map(|a| self.names.intern(a));
            let reviews: Vec<(Sym, Micros)> = p
                .reviews
                .iter()
                .map(|r| (self.names.intern(&r.reviewer), micros(&r.submitted_at)))
                .collect();
            let model = Arc::make_mut(self.repos.entry(repo).or_default());
            let commits = &mut model.commits;
            let pull = Pull {
                number: p.number,
                created: micros(&p.created_at),
                title: boxed(&p.title),
                author,
                draft: p.draft,
                ready: p.ready_at.as_ref().map(micros),
                merged: p.merged_at.as_ref().map(micros),
                closed: p.closed_at.as_ref().map(micros),
                head_branch: boxed(&p.head_branch),
                merge_commit: p
                    .merge_commit_sha
                    .as_deref()
                    .map(|s| commits.node_or_insert(s)),
                commits: p
                    .commits
                    .iter()
                    .map(|s| commits.node_or_insert(s))
                    .collect(),
                labels: p.labels.iter().map(|l| l.as_str().into()).collect(),
                reviews,
            };
            model.pulls.insert(p.number, pull);
        }
        for d in &batch.deployments {
            let repo = self.names.intern(&d.repo);
            touched.repos.insert(repo);
            if let Some(service) = &d.service {
                self.names.intern(service);
            }
            let model = Arc::make_mut(self.repos.entry(repo).or_default());
            let node = model.commits.node_or_insert(&d.sha);
            model.deployments.insert(
                d.id.as_str().into(),
                Deploy {
                    id: d.id.as_str().into(),
                    environment: d.environment.as_str().into(),
                    node,
                    status: status_code(d.status),
                    created: micros(&d.created_at),
                    finished: d.finished_at.as_ref().map(micros),
                    service: boxed(&d.service),
                    url: boxed(&d.url),
                },
            );
        }
        if !batch.incidents.is_empty() {
            touched.incidents = true;
            let incidents = Arc::make_mut(&mut self.incidents);
            for i in &batch.incidents {
                incidents.insert(
                    (i.key_scope().into_boxed_str(), i.id.as_str().into()),
                    IncidentModel {
                        repo: boxed(&i.repo),
                        service: boxed(&i.service),
                        id: i.id.as_str().into(),
                        created: micros(&i.created_at),
                        resolved: i.resolved_at.as_ref().map(micros),
                        title: boxed(&i.title),
                        severity: boxed(&i.severity),
                        deployment_id: boxed(&i.deployment_id),
                        url: boxed(&i.url),
                    },
                );
            }
        }
        if !batch.issues.is_empty() {
            let issues = Arc::make_mut(&mut self.issues);
            let projects = Arc::make_mut(&mut self.projects);
            for i in &batch.issues {
                touched.issues.insert(i.key.clone());
                if let Some(old) = issues.get(i.key.as_str()) {
                    let left = projects.get_mut(&old.project).expect("counted");
                    *left -= 1;
                    if *left == 0 {
                        projects.remove(&old.project);
                    }
                }
                *projects.entry(i.project.as_str().into()).or_default() += 1;
                let mut transitions: Vec<(Micros, Box<str>)> = i
                    .transitions
                    .iter()
                    .map(|t| (micros(&t.at), t.to.as_str().into()))
                    .collect();
                transitions.sort_by_key(|t| t.0);
                issues.insert(
                    i.key.as_str().into(),
                    Arc::new(IssueModel {
                        key: i.key.as_str().into(),
                        project: i.project.as_str().into(),
                        issue_type: i.issue_type.as_str().into(),
                        created: micros(&i.created_at),
                        summary: boxed(&i.summary),
                        status: boxed(&i.status),
                        epic: boxed(&i.epic),
                        parent: boxed(&i.parent),
                        assignee: boxed(&i.assignee),
                        labels: i.labels.iter().map(|l| l.as_str().into()).collect(),
                        story_points: i.story_points,
                        resolved: i.resolved_at.as_ref().map(micros),
                        transitions,
                    }),
                );
            }
        }
        if batch.status_categories != *self.status_categories && !batch.status_categories.is_empty()
        {
            touched.statuses = true;
            let categories = Arc::make_mut(&mut self.status_categories);
            categories.extend(
                batch
                    .status_categories
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
        }
        if let Some(mentions) = mentions {
            self.mentions = Arc::new(mentions);
        }
        touched
    }

    /// The tracker projects of the issues the model holds.
    pub fn projects(&self) -> BTreeSet<Box<str>> {
        self.projects.keys().cloned().collect()
    }

    /// Gives the configured services their numbers (a deployment's service is its own, a
    /// configured one, or its repository, which all have one then).
    pub fn intern_services(&mut self, config: &flowmeter_core::Config) {
        for service in &config.services {
            self.names.intern(&service.name);
        }
    }

    /// The repositories mentioning any of these issue keys.
    pub fn repos_mentioning<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a String>,
    ) -> BTreeSet<Sym> {
        keys.into_iter()
            .filter_map(|k| self.mentions.get(k.as_str()))
            .flatten()
            .copied()
            .collect()
    }

    /// The store's records as the import format has them, for listings that show records as
    /// they are (failed attempts).
    pub fn deployment_record(&self, repo: Sym, d: &Deploy) -> flowmeter_core::Deployment {
        let commits = &self.repos[&repo].commits;
        flowmeter_core::Deployment {
            repo: self.names.name(repo).to_string(),
            id: d.id.to_string(),
            environment: d.environment.to_string(),
            sha: commits.sha(d.node).to_string(),
            status: d.status(),
            created_at: timestamp(d.created),
            finished_at: d.finished.map(timestamp),
            service: d.service.as_deref().map(String::from),
            url: d.url.as_deref().map(String::from),
        }
    }

    /// Every record count, as the store counts them.
    pub fn counts(&self) -> (u64, u64, u64, u64, u64) {
        let repos = self.repos.values();
        let commits = repos
            .clone()
            .map(|r| {
                (0..r.commits.len() as u32)
                    .filter(|&n| r.commits.is_known(n))
                    .count() as u64
            })
            .sum();
        let pulls = repos.clone().map(|r| r.pulls.len() as u64).sum();
        let deployments = repos.map(|r| r.deployments.len() as u64).sum();
        (
            commits,
            pulls,
            deployments,
            self.incidents.len() as u64,
            self.issues.len() as u64,
        )
    }
}

/// Wraps one record into a batch of its kind.
pub fn batch_of(records: impl IntoIterator<Item = Record>) -> Dataset {
    let mut batch = Dataset::default();
    for r in records {
        batch.push(r);
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowmeter_core::Commit;

    fn commit(sha: &str, parents: &[&str], message: &str) -> Commit {
        Commit {
            repo: "acme/api".into(),
            sha: sha.into(),
            parents: parents.iter().map(|p| p.to_string()).collect(),
            authored_at: "2024-03-01T00:00:00Z".parse().unwrap(),
            committed_at: "2024-03-01T00:00:00Z".parse().unwrap(),
            author: None,
            message: Some(message.into()),
        }
    }

    #[test]
    fn a_child_before_its_parent_links_up_when_the_parent_arrives() {
        let mut model = Model::default();
        model.apply(&batch_of([Record::Commit(commit("b", &["a"], "second"))]));
        let repo = model.names.get("acme/api").unwrap();
        let commits = &model.repo(repo).unwrap().commits;
        let (a, b) = (commits.node("a").unwrap(), commits.node("b").unwrap());
        assert!(!commits.is_known(a) && commits.is_known(b));
        assert_eq!(commits.parents(b), [a]);
        assert!(
            !commits.is_change(a),
            "a sha named before its commit is not a change"
        );
        assert_eq!(commits.with_unknown_parent(), 1);
        model.apply(&batch_of([Record::Commit(commit("a", &[], "first"))]));
        let commits = &model.repo(repo).unwrap().commits;
        assert!(commits.is_known(a) && commits.is_change(a));
        assert_eq!(commits.subject(a), "first");
        assert_eq!(commits.with_unknown_parent(), 0);
    }

    #[test]
    fn a_commit_written_again_replaces_its_fields() {
        let mut model = Model::default();
        model.apply(&batch_of([Record::Commit(commit(
            "m",
            &["a", "b"],
            "merge",
        ))]));
        model.apply(&batch_of([Record::Commit(commit(
            "m",
            &["a"],
            "Revert \"x\"\n\nThis reverts commit 0123456789abcdef.",
        ))]));
        let repo = model.names.get("acme/api").unwrap();
        let commits = &model.repo(repo).unwrap().commits;
        let m = commits.node("m").unwrap();
        assert_eq!(commits.parents(m).len(), 1);
        assert_eq!(commits.subject(m), "Revert \"x\"");
        assert_eq!(commits.reverted(m), [Box::from("0123456789abcdef")]);
    }

    #[test]
    fn a_serialized_model_reads_back_with_its_indexes() {
        let mut model = Model::default();
        model.apply(&batch_of([
            Record::Commit(commit("b", &["a"], "second")),
            Record::Commit(commit("a", &[], "first")),
        ]));
        let bytes = bincode::serde::encode_to_vec(&model, bincode::config::standard()).unwrap();
        let (mut back, _): (Model, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        back.reindex();
        let repo = back.names.get("acme/api").unwrap();
        let commits = &back.repo(repo).unwrap().commits;
        assert_eq!(
            commits.parents(commits.node("b").unwrap()),
            [commits.node("a").unwrap()]
        );
    }
}
