//! The synthetic organisation: people, teams, repositories and the services they deploy, and
//! the `flowmeter.toml` that declares them.
//!
//! Teams come from a fixed table so every scale shows the same cast (scale S takes the first
//! three teams, M the first six, L all twelve). Each team has its own tier for deployment
//! frequency, change failure rate and recovery, so the tiers of a generated organisation differ
//! by team the way they do in real ones.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::text::{FIRST_NAMES, LAST_NAMES, capitalize};
use crate::{Plan, Scale, Tier, pick};

/// The organisation's GitHub owner.
pub(crate) const OWNER: &str = "acme";

/// How many tiers each further repository of a team sits below the team's tier.
const REPO_TIER_OFFSETS: [usize; 5] = [0, 1, 1, 0, 2];

/// One row of the fixed team table.
struct TeamSpec {
    name: &'static str,
    key: &'static str,
    deploy: Tier,
    failure: Tier,
    recovery: Tier,
    repos: [&'static str; 5],
    things: &'static [&'static str],
}

const TEAMS: [TeamSpec; 12] = [
    TeamSpec {
        name: "payments",
        key: "PAY",
        deploy: Tier::High,
        failure: Tier::Medium,
        recovery: Tier::High,
        repos: [
            "billing",
            "payments-gateway",
            "invoicing",
            "ledger",
            "fraud-rules",
        ],
        things: &[
            "invoice export",
            "refund flow",
            "currency rounding",
            "payout schedule",
            "card tokenization",
            "ledger reconciliation",
            "tax calculation",
            "billing webhooks",
        ],
    },
    TeamSpec {
        name: "platform",
        key: "CORE",
        deploy: Tier::Elite,
        failure: Tier::High,
        recovery: Tier::Elite,
        repos: [
            "platform-api",
            "auth-service",
            "api-gateway",
            "config-service",
            "rate-limiter",
        ],
        things: &[
            "session tokens",
            "rate limiting",
            "service discovery",
            "health checks",
            "request tracing",
            "config reload",
            "API pagination",
            "tenant isolation",
        ],
    },
    TeamSpec {
        name: "web",
        key: "WEB",
        deploy: Tier::Medium,
        failure: Tier::Low,
        recovery: Tier::Medium,
        repos: [
            "web-app",
            "design-system",
            "marketing-site",
            "docs-site",
            "web-e2e",
        ],
        things: &[
            "checkout page",
            "dark mode",
            "date picker",
            "navigation bar",
            "settings page",
            "dashboard widgets",
            "form validation",
            "onboarding tour",
        ],
    },
    TeamSpec {
        name: "mobile",
        key: "MOB",
        deploy: Tier::Low,
        failure: Tier::Medium,
        recovery: Tier::Medium,
        repos: [
            "ios-app",
            "android-app",
            "mobile-bff",
            "push-gateway",
            "app-config",
        ],
        things: &[
            "offline mode",
            "push notifications",
            "biometric login",
            "deep links",
            "app rating prompt",
            "image caching",
            "crash reporting",
            "in-app purchases",
        ],
    },
    TeamSpec {
        name: "data",
        key: "DATA",
        deploy: Tier::High,
        failure: Tier::High,
        recovery: Tier::High,
        repos: [
            "data-pipeline",
            "warehouse-etl",
            "event-collector",
            "reporting-api",
            "dbt-models",
        ],
        things: &[
            "event schema",
            "daily rollups",
            "late-arriving events",
            "revenue report",
            "partition pruning",
            "backfill job",
            "dedup step",
            "export to S3",
        ],
    },
    TeamSpec {
        name: "search",
        key: "SRCH",
        deploy: Tier::Elite,
        failure: Tier::Medium,
        recovery: Tier::High,
        repos: [
            "search-api",
            "indexer",
            "query-parser",
            "ranking-service",
            "synonyms",
        ],
        things: &[
            "typo tolerance",
            "facet counts",
            "index refresh",
            "query suggestions",
            "ranking signals",
            "synonym lists",
            "highlighting",
            "search analytics",
        ],
    },
    TeamSpec {
        name: "identity",
        key: "IAM",
        deploy: Tier::High,
        failure: Tier::Elite,
        recovery: Tier::High,
        repos: [
            "identity-service",
            "sso-bridge",
            "permissions",
            "user-directory",
            "audit-log",
        ],
        things: &[
            "SAML login",
            "role mapping",
            "password reset",
            "SCIM sync",
            "audit events",
            "MFA enrolment",
            "API keys",
            "session expiry",
        ],
    },
    TeamSpec {
        name: "growth",
        key: "GROW",
        deploy: Tier::Elite,
        failure: Tier::Low,
        recovery: Tier::Elite,
        repos: [
            "experiments",
            "referral-service",
            "onboarding-flow",
            "pricing-page",
            "email-campaigns",
        ],
        things: &[
            "signup funnel",
            "referral codes",
            "trial banner",
            "A/B assignment",
            "pricing table",
            "welcome email",
            "upgrade prompt",
            "coupon redemption",
        ],
    },
    TeamSpec {
        name: "infra",
        key: "INFRA",
        deploy: Tier::Medium,
        failure: Tier::High,
        recovery: Tier::High,
        repos: [
            "terraform-live",
            "k8s-manifests",
            "ci-runners",
            "observability",
            "dns-config",
        ],
        things: &[
            "node pools",
            "log retention",
            "alert routing",
            "TLS certificates",
            "runner autoscaling",
            "backup policy",
            "VPC peering",
            "cost dashboards",
        ],
    },
    TeamSpec {
        name: "notifications",
        key: "NOTIF",
        deploy: Tier::Elite,
        failure: Tier::Medium,
        recovery: Tier::High,
        repos: [
            "notification-service",
            "email-renderer",
            "sms-gateway",
            "webhooks",
            "templates",
        ],
        things: &[
            "email templates",
            "delivery retries",
            "unsubscribe links",
            "SMS fallback",
            "digest batching",
            "webhook signing",
            "quiet hours",
            "bounce handling",
        ],
    },
    TeamSpec {
        name: "ml",
        key: "ML",
        deploy: Tier::Medium,
        failure: Tier::High,
        recovery: Tier::Medium,
        repos: [
            "recommendations",
            "feature-store",
            "model-serving",
            "training-jobs",
            "embeddings",
        ],
        things: &[
            "model warmup",
            "feature freshness",
            "embedding cache",
            "training schedule",
            "drift alerts",
            "batch scoring",
            "candidate generation",
            "model registry",
        ],
    },
    TeamSpec {
        name: "support",
        key: "SUP",
        deploy: Tier::High,
        failure: Tier::High,
        recovery: Tier::Elite,
        repos: [
            "support-portal",
            "admin-console",
            "help-center",
            "chat-widget",
            "ticket-router",
        ],
        things: &[
            "ticket assignment",
            "canned replies",
            "SLA timers",
            "customer timeline",
            "chat transcripts",
            "macro editor",
            "satisfaction survey",
            "impersonation log",
        ],
    },
];

/// Someone who writes commits, opens pull requests or reviews them.
pub(crate) struct Person {
    pub login: String,
    pub name: String,
}

/// Who did something: a person of the organisation or a bot, known by its login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Author {
    Person(usize),
    Bot(&'static str),
}

/// A team with its members, repositories and tracker project.
pub(crate) struct Team {
    pub name: &'static str,
    /// The key of its tracker project, such as `PAY`.
    pub key: &'static str,
    pub members: Vec<usize>,
    pub repos: Vec<usize>,
    /// Its tier for change failure rate, which sets how often a deployment causes an incident.
    pub failure: Tier,
    /// Its tier for recovery, which sets how long incidents stay open.
    pub recovery: Tier,
    /// Nouns of its domain, used in titles and summaries.
    pub things: &'static [&'static str],
    /// How many tracker issues it files over the span.
    pub expected_issues: f64,
}

/// Something a repository deploys: the repository itself, or one service of a monorepo.
pub(crate) struct Service {
    /// The name of the service: the configured name in a monorepo, else the repository.
    pub name: String,
    /// The prefix of its deployment ids in a monorepo, such as `billing-api-v`.
    pub prefix: Option<String>,
    pub tier: Tier,
    /// Mean production deployments per week.
    pub per_week: f64,
}

/// A repository with its owning team and services.
pub(crate) struct Repo {
    pub index: usize,
    /// The full name, `owner/name`.
    pub name: String,
    pub team: usize,
    pub tier: Tier,
    pub services: Vec<Service>,
    /// How many pull requests it receives over the span.
    pub expected_prs: f64,
}

/// The whole organisation.
pub(crate) struct Org {
    pub people: Vec<Person>,
    pub teams: Vec<Team>,
    pub repos: Vec<Repo>,
}

impl Org {
    /// Builds the organisation of a scale; the same seed gives the same people and weights.
    pub(crate) fn build(plan: &Plan, seed: u64) -> Org {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut people = Vec::new();
        let mut logins = BTreeSet::new();
        let mut teams = Vec::new();
        let mut repos: Vec<Repo> = Vec::new();
        let mut weights = Vec::new();
        for (t, spec) in TEAMS.iter().take(plan.repos_per_team.len()).enumerate() {
            let size = rng.random_range(plan.members.0..=plan.members.1);
            let members = (0..size)
                .map(|_| {
                    people.push(new_person(&mut rng, &mut logins));
                    people.len() - 1
                })
                .collect();
            let mut team_repos = Vec::new();
            for (r, short) in spec.repos.iter().take(plan.repos_per_team[t]).enumerate() {
                let tier = spec.deploy.lower(REPO_TIER_OFFSETS[r]);
                let name = format!("{OWNER}/{short}");
                let mut rate = |tier: Tier| tier.deploys_per_week(plan.deploy_level, &mut rng);
                let services = if t == 0 && r == 0 {
                    vec![
                        Service {
                            name: format!("{short}-api"),
                            prefix: Some(format!("{short}-api-v")),
                            tier,
                            per_week: rate(tier),
                        },
                        Service {
                            name: format!("{short}-worker"),
                            prefix: Some(format!("{short}-worker-v")),
                            tier: tier.lower(1),
                            per_week: rate(tier.lower(1)),
                        },
                    ]
                } else {
                    vec![Service {
                        name: name.clone(),
                        prefix: None,
                        tier,
                        per_week: rate(tier),
                    }]
                };
                weights.push(tier.pr_weight() * rng.random_range(0.7..1.3));
                team_repos.push(repos.len());
                repos.push(Repo {
                    index: repos.len(),
                    name,
                    team: t,
                    tier,
                    services,
                    expected_prs: 0.0,
                });
            }
            teams.push(Team {
                name: spec.name,
                key: spec.key,
                members,
                repos: team_repos,
                failure: spec.failure,
                recovery: spec.recovery,
                things: spec.things,
                expected_issues: 0.0,
            });
        }
        let total: f64 = weights.iter().sum();
        for (repo, weight) in repos.iter_mut().zip(&weights) {
            let share = weight / total;
            repo.expected_prs = plan.pull_requests * share;
            teams[repo.team].expected_issues += plan.issues * share;
        }
        Org {
            people,
            teams,
            repos,
        }
    }

    /// The login of an author, as it appears on pull requests and reviews.
    pub(crate) fn login(&self, author: Author) -> &str {
        match author {
            Author::Person(p) => &self.people[p].login,
            Author::Bot(login) => login,
        }
    }

    /// The author of a commit: `Name <email>` for people, the login for bots.
    pub(crate) fn signature(&self, author: Author) -> String {
        match author {
            Author::Person(p) => {
                let person = &self.people[p];
                format!("{} <{}@{OWNER}.dev>", person.name, person.login)
            }
            Author::Bot(login) => login.to_string(),
        }
    }

    /// The configuration file declaring the monorepo's services and every team.
    pub(crate) fn config_toml(&self, scale: Scale, seed: u64, start: crate::Secs) -> String {
        let mut out = format!(
            "# Flowmeter configuration of the synthetic organisation '{OWNER}'.\n\
             # Written by `flowmeter generate --scale {scale} --seed {seed}`.\n"
        );
        for service in self.repos.iter().flat_map(|r| {
            r.services
                .iter()
                .filter_map(move |s| s.prefix.as_ref().map(|p| (r, s, p)))
        }) {
            let (repo, service, prefix) = service;
            let _ = write!(
                out,
                "\n[[services]]\nname = {}\nrepos = [{}]\ndeployments = [{}]\n",
                quote(&service.name),
                quote(&repo.name),
                quote(&format!("{prefix}*")),
            );
        }
        for team in &self.teams {
            let members: Vec<&str> = team
                .members
                .iter()
                .map(|&p| self.people[p].login.as_str())
                .collect();
            let repos: Vec<&str> = team
                .repos
                .iter()
                .map(|&r| self.repos[r].name.as_str())
                .collect();
            let services: Vec<&str> = team
                .repos
                .iter()
                .flat_map(|&r| &self.repos[r].services)
                .filter(|s| s.prefix.is_some())
                .map(|s| s.name.as_str())
                .collect();
            let _ = write!(
                out,
                "\n[[teams]]\nname = {}\nmembers = {}\nrepos = {}\n",
                quote(team.name),
                list(&members),
                list(&repos),
            );
            if !services.is_empty() {
                let _ = writeln!(out, "services = {}", list(&services));
            }
        }
        self.people_toml(&mut out, seed, start);
        out
    }

    /// `[capitalization]` with a project per team (some not yet authorized when the data
    /// starts, some gone live before it ends) and `[[people]]` for most people: several
    /// identities each (some left out, so `flowmeter people --unmapped` has work), cost
    /// centres, part-timers, joiners, a team change, and absences.
    fn people_toml(&self, out: &mut String, seed: u64, start: crate::Secs) {
        use crate::{DAY, END};
        let mut rng = crate::rng_for(seed, 0xCAB1);
        let day = |secs: crate::Secs| crate::ts(secs).date_naive();
        out.push_str(
            "\n[capitalization]\nhours_per_week = 40\n\n[[capitalization.rules]]\n\
             name = \"tech debt is maintenance\"\nlabel = [\"tech-debt\"]\ncapitalizable = false\n",
        );
        for (t, team) in self.teams.iter().enumerate() {
            // Authorized within the first 280 days, live (odd teams) in the last 150.
            let authorized = start + (60 + 20 * t as i64) * DAY;
            let _ = write!(
                out,
                "\n[[capitalization.projects]]\nname = {}\njira_projects = [{}]\nauthorized_from = {}\n",
                quote(&format!("{} platform", capitalize(team.name))),
                quote(team.key),
                day(authorized),
            );
            if t % 2 == 1 {
                let _ = writeln!(
                    out,
                    "ready_for_use = {}",
                    day(END - (40 + 10 * t as i64) * DAY)
                );
            }
        }
        for (t, team) in self.teams.iter().enumerate() {
            for &p in &team.members {
                if p % 9 == 8 {
                    continue; // not mapped yet
                }
                let person = &self.people[p];
                let mut identities = vec![person.login.clone()];
                if p % 6 != 5 {
                    identities.push(format!("{}@{OWNER}.dev", person.login));
                }
                let _ = write!(
                    out,
                    "\n[[people]]\nid = \"e{:04}\"\nname = {}\nidentities = {}\ncost_center = \"CC-{}\"\n",
                    1000 + p,
                    quote(&person.name),
                    list(&identities.iter().map(String::as_str).collect::<Vec<_>>()),
                    100 + 10 * t,
                );
                if p % 13 == 6 && self.teams.len() > 1 {
                    let before = &self.teams[(t + 1) % self.teams.len()];
                    let _ = writeln!(
                        out,
                        "team = [{{ team = {} }}, {{ team = {}, from = {} }}]",
                        quote(before.name),
                        quote(team.name),
                        day(END - 200 * DAY)
                    );
                } else {
                    let _ = writeln!(out, "team = {}", quote(team.name));
                }
                if p % 7 == 3 {
                    out.push_str("fte = 0.8\n");
                }
                if p % 11 == 4 {
                    let _ = writeln!(out, "from = {}", day(END - (120 - (p % 5) as i64) * DAY));
                }
                let span = (END - start) / DAY;
                let first = rng.random_range(0..span / 2 - 10);
                let second = rng.random_range(span / 2..span - 10);
                let absences: Vec<String> = [first, second]
                    .iter()
                    .map(|&d| {
                        let from = start + d * DAY;
                        let until = from + rng.random_range(0..5) * DAY;
                        format!("{{ from = {}, until = {} }}", day(from), day(until))
                    })
                    .collect();
                let _ = writeln!(out, "absences = [{}]", absences.join(", "));
            }
        }
    }
}

/// A TOML basic string; JSON's escaping is valid TOML for these plain names.
fn quote(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

fn list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// A person with a login not yet taken.
fn new_person(rng: &mut ChaCha8Rng, taken: &mut BTreeSet<String>) -> Person {
    loop {
        let first = *pick(rng, FIRST_NAMES);
        let last = *pick(rng, LAST_NAMES);
        let (f, l) = (first.to_ascii_lowercase(), last.to_ascii_lowercase());
        let login = match rng.random_range(0..3) {
            0 => format!("{f}-{l}"),
            1 => format!("{}{l}", &f[..1]),
            _ => format!("{f}{}", &l[..1]),
        };
        if taken.insert(login.clone()) {
            return Person {
                login,
                name: format!("{first} {last}"),
            };
        }
    }
}
