//! The generator's promises: same seed, same bytes; every line parses; sizes in the ballpark;
//! a configuration that parses; and a history whose links and timestamps hold together.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use flowmeter_core::import::parse_line;
use flowmeter_core::{Config, DeploymentStatus};

use super::*;

/// A scratch folder under the system's temporary folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path =
            std::env::temp_dir().join(format!("flowmeter-synth-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const FILES: [&str; 6] = [
    "commits.jsonl",
    "pull_requests.jsonl",
    "deployments.jsonl",
    "incidents.jsonl",
    "issues.jsonl",
    "flowmeter.toml",
];

fn records(dir: &Path, kind: RecordKind) -> Vec<Record> {
    let text = fs::read_to_string(dir.join(kind.file_name())).expect("output file");
    text.lines()
        .enumerate()
        .map(|(n, line)| {
            parse_line(kind, line).unwrap_or_else(|e| panic!("{}:{}: {e}", kind.file_name(), n + 1))
        })
        .collect()
}

/// Jira-like keys (`PAY-123`) mentioned in a text.
fn issue_keys(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut keys = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_uppercase() {
            i += 1;
        }
        let letters = i - start;
        let boundary = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
        if letters >= 2 && boundary && i < bytes.len() && bytes[i] == b'-' {
            let digits_start = i + 1;
            let mut j = digits_start;
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
            if j > digits_start {
                keys.push(text[start..j].to_string());
                i = j;
                continue;
            }
        }
        i = if i == start { i + 1 } else { i };
    }
    keys
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let (a, b, c) = (Scratch::new("a"), Scratch::new("b"), Scratch::new("c"));
    generate(Scale::S, 7, &a.0).unwrap();
    generate(Scale::S, 7, &b.0).unwrap();
    generate(Scale::S, 8, &c.0).unwrap();
    for file in FILES {
        let first = fs::read(a.0.join(file)).unwrap();
        assert!(!first.is_empty(), "{file} is empty");
        assert!(first == fs::read(b.0.join(file)).unwrap(), "{file} differs");
    }
    let other = fs::read(c.0.join("commits.jsonl")).unwrap();
    assert!(other != fs::read(a.0.join("commits.jsonl")).unwrap());
}

#[test]
fn scale_s_is_valid_sized_and_consistent() {
    let out = Scratch::new("s");
    let started = Instant::now();
    let summary = generate(Scale::S, 1, &out.0).unwrap();
    eprintln!(
        "generate(Scale::S, 1) took {:?}: {summary:?}",
        started.elapsed()
    );
    let dir = out.0.as_path();

    // Every line parses, and the summary counts them.
    let commits = records(dir, RecordKind::Commits);
    let prs = records(dir, RecordKind::PullRequests);
    let deployments = records(dir, RecordKind::Deployments);
    let incidents = records(dir, RecordKind::Incidents);
    let issues = records(dir, RecordKind::Issues);
    assert_eq!(summary.commits, commits.len() as u64);
    assert_eq!(summary.pull_requests, prs.len() as u64);
    assert_eq!(summary.deployments, deployments.len() as u64);
    assert_eq!(summary.incidents, incidents.len() as u64);
    assert_eq!(summary.issues, issues.len() as u64);

    // Sizes in the ballpark of 15k commits, 3k PRs, 500 deployments, 50 incidents, 2k issues.
    let within = |n: u64, target: u64| target / 2 <= n && n <= target * 2;
    assert!(within(summary.commits, 15_000), "{summary:?}");
    assert!(within(summary.pull_requests, 3_000), "{summary:?}");
    assert!(within(summary.deployments, 500), "{summary:?}");
    assert!(within(summary.incidents, 50), "{summary:?}");
    assert!(within(summary.issues, 2_000), "{summary:?}");

    // The configuration parses and routes the monorepo's deployments.
    let toml = fs::read_to_string(dir.join("flowmeter.toml")).unwrap();
    let config = Config::from_toml(&toml, |_| None).unwrap();
    assert_eq!(config.teams.len(), 3);
    assert_eq!(config.services.len(), 2);
    // People for the capitalization export: most people, some identities left unmapped.
    let people: usize = config.teams.iter().map(|t| t.members.len()).sum();
    assert!(config.people.len() < people && config.people.len() * 10 > people * 8);
    assert!(config.people.iter().any(|p| p.identities.len() == 1));
    assert_eq!(config.capitalization.projects.len(), 3);
    assert!(
        config
            .teams
            .iter()
            .all(|t| !t.members.is_empty() && !t.repos.is_empty())
    );
    assert_eq!(
        config.service_of_deployment("acme/billing", "billing-api-v12", None),
        "billing-api"
    );
    assert_eq!(
        config.service_of_deployment("acme/billing", "billing-worker-v3-staging", None),
        "billing-worker"
    );

    let start = ts(END - 365 * DAY);
    let end = ts(END);
    let in_span = |t: Timestamp| start <= t && t < end;

    // Commits: every parent is known, times are in order and in the span.
    let mut committed_at = HashMap::new();
    for record in &commits {
        let Record::Commit(c) = record else { panic!() };
        assert_eq!(c.sha.len(), 40);
        assert!(c.authored_at <= c.committed_at, "{c:?}");
        assert!(in_span(c.authored_at) && in_span(c.committed_at), "{c:?}");
        for parent in &c.parents {
            assert!(
                committed_at.contains_key(&(c.repo.clone(), parent.clone())),
                "{c:?}"
            );
        }
        let fresh = committed_at.insert((c.repo.clone(), c.sha.clone()), c.committed_at);
        assert!(fresh.is_none(), "duplicate commit {c:?}");
    }
    let merges = commits
        .iter()
        .filter(|r| matches!(r, Record::Commit(c) if c.parents.len() == 2))
        .count();
    assert!(merges > 0);

    // Issues: keys are unique, histories move forward from creation.
    let mut keys = HashSet::new();
    for record in &issues {
        let Record::Issue(issue) = record else {
            panic!()
        };
        assert!(keys.insert(issue.key.clone()), "duplicate {}", issue.key);
        assert!(in_span(issue.created_at));
        let mut previous = issue.created_at;
        for t in &issue.transitions {
            assert!(previous <= t.at && t.at < end, "{issue:?}");
            previous = t.at;
        }
        assert_eq!(
            issue.resolved_at.is_some(),
            issue.status.as_deref() == Some("Done")
        );
    }

    // Pull requests: commits known, merge commits on main, times in order, keys exist.
    let (mut drafts, mut open, mut closed, mut unreviewed, mut linked) = (0, 0, 0, 0, 0);
    for record in &prs {
        let Record::PullRequest(pr) = record else {
            panic!()
        };
        assert!(in_span(pr.created_at));
        let known = |sha: &String| committed_at.contains_key(&(pr.repo.clone(), sha.clone()));
        assert!(
            !pr.commits.is_empty() && pr.commits.iter().all(known),
            "{pr:?}"
        );
        let first = pr
            .commits
            .iter()
            .map(|s| committed_at[&(pr.repo.clone(), s.clone())])
            .min()
            .unwrap();
        assert!(first <= pr.created_at, "{pr:?}");
        let ready = pr.ready_at.unwrap_or(pr.created_at);
        assert!(pr.created_at <= ready);
        for review in &pr.reviews {
            assert!(
                ready <= review.submitted_at && review.submitted_at < end,
                "{pr:?}"
            );
            if let Some(merged) = pr.merged_at {
                assert!(review.submitted_at <= merged, "{pr:?}");
            }
        }
        match (pr.merged_at, pr.closed_at) {
            (Some(merged), _) => {
                let sha = pr.merge_commit_sha.as_ref().expect("merge commit");
                assert!(known(sha), "merge commit of {pr:?} is not in commits.jsonl");
                assert!(ready <= merged && in_span(merged));
            }
            (None, Some(_)) => closed += 1,
            (None, None) => open += 1,
        }
        drafts += usize::from(pr.draft);
        unreviewed += usize::from(pr.merged_at.is_some() && pr.reviews.is_empty());
        let text = format!(
            "{} {}",
            pr.title.as_deref().unwrap_or(""),
            pr.head_branch.as_deref().unwrap_or("")
        );
        for key in issue_keys(&text) {
            assert!(keys.contains(&key), "{key} of {pr:?} is not an issue");
            linked += 1;
        }
    }
    assert!(drafts > 0 && open > 0 && closed > 0 && unreviewed > 0 && linked > 0);

    // Deployments: production shas are commits of their repository, shipped after they exist.
    let (mut failed, mut staging, mut ids) = (0, 0, HashSet::new());
    let mut duplicates = 0;
    for record in &deployments {
        let Record::Deployment(d) = record else {
            panic!()
        };
        assert!(in_span(d.created_at));
        if let Some(finished) = d.finished_at {
            assert!(d.created_at <= finished && finished < end);
        }
        let made = committed_at.get(&(d.repo.clone(), d.sha.clone()));
        assert!(made.is_some(), "{d:?} ships an unknown commit");
        assert!(*made.unwrap() <= d.created_at, "{d:?}");
        staging += usize::from(d.environment == "staging");
        failed += usize::from(matches!(
            d.status,
            DeploymentStatus::Failure | DeploymentStatus::Error
        ));
        if !ids.insert((d.repo.clone(), d.id.clone())) {
            duplicates += 1;
        }
    }
    assert!(failed > 0 && staging > 0 && duplicates > 0);

    // Incidents: resolved after created; some name a deployment, some only a service.
    let (mut named, mut by_service) = (0, 0);
    for record in &incidents {
        let Record::Incident(i) = record else {
            panic!()
        };
        assert!(in_span(i.created_at));
        if let Some(resolved) = i.resolved_at {
            assert!(i.created_at <= resolved && resolved < end);
        }
        named += usize::from(i.deployment_id.is_some());
        by_service += usize::from(i.repo.is_none());
    }
    assert!(named > 0 && by_service > 0);
}

#[test]
fn scales_parse_and_print() {
    for (text, scale) in [("S", Scale::S), ("m", Scale::M), (" L ", Scale::L)] {
        assert_eq!(text.parse::<Scale>(), Ok(scale));
        assert_eq!(scale.to_string().parse::<Scale>(), Ok(scale));
    }
    let err = "XL".parse::<Scale>().unwrap_err();
    assert!(err.to_string().contains("XL"));
}

#[test]
fn the_clock_helpers() {
    let end = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z").unwrap();
    assert_eq!(ts(END), end);
    assert_eq!(weekday(END), 6, "2026-11-01 is a Sunday");
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let saturday_noon = END - DAY + 12 * HOUR;
    for _ in 0..50 {
        let t = office(&mut rng, saturday_noon);
        assert!(t == saturday_noon || (in_office(t) && weekday(t) == 0));
    }
    let mut shas = ShaGen::new(1, 0);
    let (a, b) = (shas.next().hex(), shas.next().hex());
    assert!(a != b && a.len() == 40 && a.chars().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn portable_math_matches_the_platform() {
    for x in [1e-12, 0.001, 0.3, 0.5, 0.69, 0.72, 0.99, 1.0, 1.7, 123.0] {
        assert!(
            (ln(x) - x.ln()).abs() <= 1e-14 * x.ln().abs().max(1.0),
            "ln {x}"
        );
    }
    for x in [-20.0, -3.3, -0.5, 0.0, 0.4, 1.0, 2.5, 9.0, 40.0] {
        assert!((e_pow(x) - x.exp()).abs() <= 1e-14 * x.exp(), "exp {x}");
    }
}

#[test]
fn issue_keys_are_found() {
    assert_eq!(
        issue_keys("feature/PAY-12-x (CORE-3) A-1 xPAY-9"),
        ["PAY-12", "CORE-3"]
    );
}

#[test]
fn the_configuration_of_every_scale_is_valid() {
    for scale in [Scale::S, Scale::M, Scale::L] {
        let plan = crate::Plan::of(scale);
        let org = crate::org::Org::build(&plan, 7);
        let toml = org.config_toml(scale, 7, plan.start);
        let config =
            Config::from_toml(&toml, |_| None).unwrap_or_else(|e| panic!("scale {scale}: {e}"));
        assert_eq!(config.capitalization.projects.len(), config.teams.len());
    }
}
