use super::*;

use chrono::TimeZone as _;
use flowmeter_core::{Commit, PullRequest, Review, Transition};
use proptest::prelude::*;

fn at(s: &str) -> Timestamp {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn config(text: &str) -> Config {
    Config::from_toml(text, |_| None).unwrap()
}

fn issue(key: &str, kind: &str, epic: Option<&str>, assignee: Option<&str>) -> Issue {
    Issue {
        key: key.into(),
        project: key.split('-').next().unwrap().into(),
        issue_type: kind.into(),
        created_at: at("2026-11-01T00:00:00Z"),
        summary: None,
        status: Some("To Do".into()),
        epic: epic.map(Into::into),
        parent: None,
        assignee: assignee.map(Into::into),
        labels: vec![],
        story_points: None,
        resolved_at: None,
        transitions: vec![],
    }
}

fn commit(sha: &str, author: &str, when: &str, message: &str) -> Commit {
    Commit {
        repo: "acme/api".into(),
        sha: sha.into(),
        parents: vec!["p".into()],
        authored_at: at(when),
        committed_at: at(when),
        author: Some(author.into()),
        message: Some(message.into()),
    }
}

const W47: &str = "2026-W47";

fn week() -> IsoWeek {
    IsoWeek::parse("week", W47).unwrap()
}

#[test]
fn largest_remainder_sums_exactly_and_ties_go_to_the_earlier_part() {
    assert_eq!(
        largest_remainder(10_000, &[7, 6, 1, 1]),
        [4667, 4000, 667, 666]
    );
    assert_eq!(largest_remainder(6_000, &[1, 5, 5]), [546, 2727, 2727]);
    assert_eq!(largest_remainder(2_400, &[1, 5, 5]), [218, 1091, 1091]);
    assert_eq!(largest_remainder(1, &[1, 1, 1]), [1, 0, 0]);
    assert_eq!(largest_remainder(0, &[3]), [0]);
}

#[test]
fn a_person_without_evidence_is_unattributed_and_an_absent_week_has_no_rows() {
    let config = config(
        "[[people]]\nid = \"a\"\nname = \"Ann\"\nidentities = [\"ann\"]\nfte = 0.5\n\
         [[people]]\nid = \"b\"\nname = \"Bo\"\nidentities = [\"bo\"]\n\
         absences = [{ from = 2026-11-16, until = 2026-11-20 }]\n",
    );
    let rows = compute(week(), &Dataset::default(), &config, None);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].person_id, "a");
    assert!(rows[0].is_unattributed());
    assert_eq!(
        (rows[0].fte_share(), rows[0].est_hours()),
        ("0.5000".into(), "20.00".into())
    );
    assert!(rows[0].receipts.is_empty());
}

#[test]
fn rules_decide_in_order_then_the_defaults_then_the_project_dates() {
    let cap = config(
        "[[capitalization.projects]]\nname = \"Pay\"\njira_projects = [\"PAY\"]\n\
         authorized_from = 2026-11-18\nready_for_use = 2026-11-20\n\
         [[capitalization.rules]]\nname = \"spikes are research\"\nlabel = [\"spike\"]\ncapitalizable = false\n\
         [[capitalization.rules]]\ntype = [\"Bug\"]\nproject = [\"Pay\"]\ncapitalizable = true\n",
    )
    .capitalization;
    let story = issue("PAY-2", "Story", Some("PAY-1"), None);
    let decide = |i: &Issue, d: &str| decide(i, day(d), &cap);
    assert_eq!(
        decide(&story, "2026-11-17"),
        (
            "Pay".into(),
            false,
            "before authorized_from 2026-11-18".into()
        )
    );
    assert_eq!(
        decide(&story, "2026-11-18"),
        ("Pay".into(), true, "default: development".into())
    );
    assert_eq!(
        decide(&story, "2026-11-20"),
        (
            "Pay".into(),
            false,
            "from ready_for_use 2026-11-20: maintenance".into()
        )
    );
    let mut spike = story.clone();
    spike.labels = vec!["Spike".into()];
    assert_eq!(decide(&spike, "2026-11-18").2, "spikes are research");
    let bug = issue("PAY-3", "Bug", None, None);
    assert_eq!(
        decide(&bug, "2026-11-18"),
        ("Pay".into(), true, "rule 2".into())
    );
    let other_bug = issue("WEB-3", "bug", None, None);
    assert_eq!(
        decide(&other_bug, "2026-11-18"),
        ("WEB".into(), false, "default: bugs are maintenance".into())
    );
    let web = issue("WEB-4", "Story", None, None);
    assert_eq!(
        decide(&web, "2026-11-18"),
        ("WEB".into(), false, "no capitalizable project".into())
    );
}

#[test]
fn issue_days_follow_the_status_history_and_presence() {
    let config = config(
        "[[people]]\nid = \"a\"\nname = \"Ann\"\nidentities = [\"ann\"]\n\
         absences = [{ from = 2026-11-20, until = 2026-11-20 }]\n",
    );
    let mut story = issue("PAY-2", "Story", None, Some("Ann"));
    story.transitions = vec![
        Transition {
            at: at("2026-11-16T09:00:00Z"),
            from: Some("To Do".into()),
            to: "In Progress".into(),
        },
        Transition {
            at: at("2026-11-17T09:00:00Z"),
            from: Some("In Progress".into()),
            to: "To Do".into(),
        },
        Transition {
            at: at("2026-11-19T23:00:00Z"),
            from: Some("To Do".into()),
            to: "In Review".into(),
        },
    ];
    let data = Dataset {
        issues: vec![story],
        ..Dataset::default()
    };
    let rows = compute(week(), &data, &config, None);
    let days: Vec<NaiveDate> = rows[0].receipts.iter().map(|r| r.day).collect();
    // Monday and Tuesday (until 09:00), Thursday from 23:00; Friday absent; weekend not worked.
    assert_eq!(
        days,
        [day("2026-11-16"), day("2026-11-17"), day("2026-11-19")]
    );
    assert_eq!(
        rows.len(),
        1,
        "all evidence names the issue: nothing unattributed"
    );
    assert_eq!(rows[0].fte_share(), "0.8000");
}

#[test]
fn commits_link_through_their_pull_request_and_merges_are_not_work() {
    let config =
        config("[[people]]\nid = \"a\"\nname = \"Ann\"\nidentities = [\"ann@x.dev\", \"ann\"]\n");
    let mut merge = commit(
        "m1",
        "Ann <ann@x.dev>",
        "2026-11-17T10:00:00Z",
        "Merge PAY-9",
    );
    merge.parents.push("q".into());
    let data = Dataset {
        commits: vec![
            commit("c1", "Ann <ann@x.dev>", "2026-11-16T10:00:00Z", "add form"),
            merge,
            commit(
                "c2",
                "Ann <ann@x.dev>",
                "2026-11-23T10:00:00Z",
                "PAY-2 next week",
            ),
        ],
        pull_requests: vec![PullRequest {
            repo: "acme/api".into(),
            number: 4,
            created_at: at("2026-11-10T10:00:00Z"),
            title: Some("Form".into()),
            author: Some("someone".into()),
            draft: false,
            ready_at: None,
            merged_at: None,
            closed_at: None,
            base_branch: None,
            head_branch: Some("feature/PAY-2-form".into()),
            head_sha: None,
            merge_commit_sha: None,
            commits: vec!["c1".into()],
            additions: None,
            deletions: None,
            labels: vec![],
            reviews: vec![Review {
                reviewer: "ann".into(),
                state: "PENDING".into(),
                submitted_at: at("2026-11-16T11:00:00Z"),
            }],
        }],
        issues: vec![
            issue("PAY-2", "Story", None, None),
            issue("PAY-9", "Story", None, None),
        ],
        ..Dataset::default()
    };
    let rows = compute(week(), &data, &config, None);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].work_item_key, "PAY-2");
    assert_eq!((rows[0].evidence_commits, rows[0].evidence_reviews), (1, 0));
}

#[test]
fn csv_cells_that_look_like_formulas_are_defused() {
    let config = config(
        "[[people]]\nid = \"=cmd|' /C calc'!A0\"\nname = \"+Ann, \\\"Q\\\"\"\ncost_center = \"@x\"\n",
    );
    let csv =
        String::from_utf8(to_csv(&compute(week(), &Dataset::default(), &config, None))).unwrap();
    let line = csv.lines().nth(1).unwrap();
    assert!(
        line.contains("\"'=cmd|' /C calc'!A0\",\"'+Ann, \"\"Q\"\"\""),
        "{line}"
    );
    assert!(line.contains("\"'@x\""), "{line}");
    assert!(csv.ends_with("\r\n"));
}

/// A generated week: people, issues under epics, commits, pull requests and reviews at random.
fn arbitrary_week() -> impl Strategy<Value = (Config, Dataset)> {
    let people =
        proptest::collection::vec((1u32..=10, 0u8..4, proptest::option::of(0u32..7)), 1..5);
    let events = proptest::collection::vec((0usize..5, 0u32..7 * 24, 0usize..6, 0u8..4), 0..40);
    (people, events).prop_map(|(people, events)| {
        let mut toml = String::new();
        for (i, (tenths, absent, joined)) in people.iter().enumerate() {
            toml += &format!(
                "[[people]]\nid = \"p{i}\"\nname = \"P {i}\"\nidentities = [\"u{i}\"]\nfte = {}\n",
                f64::from(*tenths) / 10.0
            );
            if let Some(d) = joined {
                toml += &format!(
                    "from = {}\n",
                    day("2026-11-16") + chrono::Days::new(u64::from(*d))
                );
            }
            if *absent > 0 {
                toml += &format!(
                    "absences = [{{ from = 2026-11-16, until = 2026-11-{} }}]\n",
                    15 + absent
                );
            }
        }
        let config = Config::from_toml(&toml, |_| None).unwrap();
        let mut data = Dataset::default();
        for k in 0..6 {
            let mut i = issue(
                &format!("PAY-{}", k + 2),
                if k == 5 { "Bug" } else { "Story" },
                (k % 2 == 0).then_some("PAY-1"),
                Some(&format!("u{}", k % 3)),
            );
            i.transitions = vec![Transition {
                at: at("2026-11-17T12:00:00Z"),
                from: Some("To Do".into()),
                to: "In Progress".into(),
            }];
            data.issues.push(i);
        }
        for (n, (who, hour, key, kind)) in events.into_iter().enumerate() {
            let when = chrono::Utc.with_ymd_and_hms(2026, 11, 16, 0, 0, 0).unwrap()
                + chrono::Duration::hours(i64::from(hour));
            let message = if key == 5 {
                "no key".to_string()
            } else {
                format!("PAY-{} work", key + 2)
            };
            match kind {
                0 | 1 => data.commits.push(Commit {
                    authored_at: when,
                    committed_at: when,
                    ..commit(
                        &format!("c{n}"),
                        &format!("u{who}"),
                        "2026-11-16T00:00:00Z",
                        &message,
                    )
                }),
                _ => data.pull_requests.push(PullRequest {
                    repo: "acme/api".into(),
                    number: n as u64,
                    created_at: when,
                    title: Some(message),
                    author: Some(format!("u{who}")),
                    draft: false,
                    ready_at: None,
                    merged_at: (kind == 3).then_some(when + chrono::Duration::hours(3)),
                    closed_at: None,
                    base_branch: None,
                    head_branch: None,
                    head_sha: None,
                    merge_commit_sha: None,
                    commits: vec![],
                    additions: None,
                    deletions: None,
                    labels: vec![],
                    reviews: vec![Review {
                        reviewer: format!("u{}", (who + 1) % 5),
                        state: "APPROVED".into(),
                        submitted_at: when + chrono::Duration::hours(1),
                    }],
                }),
            }
        }
        (config, data)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_person_week_sums_to_its_available_fte_and_rows_have_evidence((config, data) in arbitrary_week()) {
        let people = People::new(&config);
        let rows = compute(week(), &data, &config, None);
        for (p, person) in people.people.iter().enumerate() {
            let present = (0..7).filter(|d| people.present(p, week().monday() + chrono::Days::new(*d))).count();
            let available = (person.fte * present as f64 * 2000.0).round() as i64;
            let mine: Vec<&CapRow> = rows.iter().filter(|r| r.person_id == person.id).collect();
            prop_assert_eq!(mine.iter().map(|r| r.fte_units).sum::<i64>(), available);
            let hours = (available as f64 * 40.0 / 100.0).round() as i64;
            if available > 0 {
                prop_assert_eq!(mine.iter().map(|r| r.centi_hours).sum::<i64>(), hours);
            }
            prop_assert!(mine.iter().filter(|r| r.is_unattributed()).count() <= 1);
        }
        for row in &rows {
            prop_assert!(row.is_unattributed() || !row.receipts.is_empty(), "a row without evidence: {:?}", row);
            prop_assert!(row.fte_units >= 0);
        }
        prop_assert_eq!(to_csv(&rows), to_csv(&compute(week(), &data, &config, None)));
    }
}
