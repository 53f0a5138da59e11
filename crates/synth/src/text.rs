//! Word lists and small text helpers for names, titles, subjects and summaries.
//!
//! The lists are short on purpose: the generator combines them with a team's domain nouns so
//! titles read plausibly while staying cheap to produce at scale L.

pub(crate) const FIRST_NAMES: &[&str] = &[
    "Maria", "James", "Aisha", "Wei", "Olga", "Lucas", "Priya", "Tom", "Fatima", "Kenji", "Sofia",
    "Daniel", "Amara", "Jonas", "Elena", "Omar", "Hannah", "Mateo", "Yuki", "Noah", "Chloe",
    "Ravi", "Ingrid", "Samuel", "Leila", "Pavel", "Grace", "Diego", "Mei", "Felix", "Zara",
    "Arjun", "Nora", "Tariq", "Lena", "Marco", "Ana", "Erik", "Sara", "Kwame", "Julia", "Hugo",
    "Ines", "Victor", "Alice", "Ben", "Clara", "Dmitri",
];

pub(crate) const LAST_NAMES: &[&str] = &[
    "Lopez",
    "Smith",
    "Okafor",
    "Chen",
    "Ivanova",
    "Silva",
    "Sharma",
    "Becker",
    "Haddad",
    "Tanaka",
    "Rossi",
    "Kim",
    "Mensah",
    "Berg",
    "Petrova",
    "Farouk",
    "Schmidt",
    "Garcia",
    "Sato",
    "Walker",
    "Dubois",
    "Patel",
    "Nilsen",
    "Cohen",
    "Rahimi",
    "Novak",
    "Obi",
    "Fernandez",
    "Wong",
    "Keller",
    "Ali",
    "Reddy",
    "Larsen",
    "Aziz",
    "Moreau",
    "Costa",
    "Santos",
    "Lind",
    "Kowalski",
    "Boateng",
    "Muller",
    "Laurent",
    "Jensen",
    "Romero",
    "Ortiz",
    "Brown",
    "Young",
    "Hill",
];

/// Verbs that open a story or a feature pull request's title.
pub(crate) const STORY_VERBS: &[&str] = &[
    "Add",
    "Support",
    "Show",
    "Improve",
    "Redesign",
    "Speed up",
    "Allow editing of",
    "Localise",
    "Simplify",
    "Expose",
    "Add filters to",
    "Paginate",
];

/// Verbs that open a task's title.
pub(crate) const TASK_VERBS: &[&str] = &[
    "Refactor",
    "Migrate",
    "Add metrics to",
    "Document",
    "Clean up",
    "Add tests for",
    "Remove feature flag for",
    "Split",
    "Upgrade client of",
    "Add tracing to",
];

/// How a bug shows itself, appended to a domain noun.
pub(crate) const SYMPTOMS: &[&str] = &[
    "fails for empty input",
    "returns 500 on retry",
    "times out under load",
    "shows wrong totals",
    "breaks after upgrade",
    "ignores the time zone",
    "double-counts cancelled items",
    "loses data on concurrent edits",
    "rejects valid unicode",
    "leaks connections",
];

/// What a hotfix does, with `{}` standing for a domain noun.
pub(crate) const HOTFIX_ACTIONS: &[&str] = &[
    "roll back {} timeout change",
    "guard against missing {}",
    "restore old {} query",
    "disable {} cache",
    "raise {} connection limit",
    "skip malformed {} events",
];

/// Outage descriptions for incident-type tracker issues.
pub(crate) const OUTAGES: &[&str] = &[
    "degraded",
    "outage",
    "partial outage",
    "data delay",
    "elevated errors",
];

/// Suffixes of epic names.
pub(crate) const EPIC_SUFFIXES: &[&str] = &["v2", "revamp", "GA", "hardening", "migration"];

/// Subjects of follow-up commits on a pull request branch, with `{}` standing for a noun.
pub(crate) const FOLLOW_UPS: &[&str] = &[
    "Address review comments",
    "Fix failing tests",
    "Add tests for {}",
    "Update docs",
    "Fix lint",
    "Refactor {}",
    "Handle edge case in {}",
    "WIP",
    "Rename fields in {}",
    "Remove debug logging",
];

/// Subjects of commits pushed straight to the default branch.
pub(crate) const DIRECT_PUSHES: &[&str] = &[
    "Update CHANGELOG",
    "docs: fix typo in README",
    "ci: pin action versions",
    "chore: update CODEOWNERS",
    "Fix flaky test",
    "chore: bump base image",
    "hotfix: correct feature flag default",
];

/// Labels of feature pull requests.
pub(crate) const PR_LABELS: &[&str] = &[
    "enhancement",
    "backend",
    "frontend",
    "tech-debt",
    "performance",
    "documentation",
    "needs-qa",
];

/// Labels of tracker issues.
pub(crate) const ISSUE_LABELS: &[&str] = &[
    "backend",
    "frontend",
    "tech-debt",
    "customer",
    "security",
    "performance",
    "ux",
];

/// Bots that comment on pull requests.
pub(crate) const REVIEW_BOTS: &[&str] = &["sonarcloud[bot]", "github-actions[bot]", "codecov[bot]"];

/// Dependencies Dependabot bumps: (package, ecosystem).
pub(crate) const DEPENDENCIES: &[(&str, &str)] = &[
    ("serde", "cargo"),
    ("tokio", "cargo"),
    ("react", "npm_and_yarn"),
    ("typescript", "npm_and_yarn"),
    ("eslint", "npm_and_yarn"),
    ("axios", "npm_and_yarn"),
    ("requests", "pip"),
    ("pydantic", "pip"),
    ("actions/checkout", "github_actions"),
    ("golang.org/x/net", "go_modules"),
    ("jackson-databind", "maven"),
    ("alpine", "docker"),
];

/// Incident titles, with `{}` standing for the service.
pub(crate) const INCIDENT_TITLES: &[&str] = &[
    "Elevated 5xx rate on {}",
    "{} latency above SLO",
    "{} pods crash-looping",
    "Queue backlog growing in {}",
    "{} returning stale data",
    "Error budget burn on {}",
    "{} unavailable in eu-west-1",
    "Memory leak in {} after deploy",
];

/// Replaces the first `{}` of a template.
pub(crate) fn fill(template: &str, value: &str) -> String {
    template.replacen("{}", value, 1)
}

/// Upper-cases the first letter.
pub(crate) fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Lower-cases the first letter.
pub(crate) fn decapitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A branch-name fragment: lower case, words joined by dashes, at most about 40 characters.
pub(crate) fn slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            if out.len() >= 40 {
                break;
            }
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_branch_friendly() {
        assert_eq!(
            slug("Add filters to invoice export!"),
            "add-filters-to-invoice-export"
        );
        assert_eq!(slug("  --x  "), "x");
        assert!(slug(&"word ".repeat(30)).len() <= 44);
    }

    #[test]
    fn case_helpers() {
        assert_eq!(capitalize("refund flow"), "Refund flow");
        assert_eq!(decapitalize("Refund flow"), "refund flow");
        assert_eq!(fill("Hotfix {} now", "x"), "Hotfix x now");
    }
}
