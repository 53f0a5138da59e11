//! Synthetic organisations in Flowmeter's import format.
//!
//! Flowmeter has to be shown, benchmarked and tested on realistic data without access to
//! anyone's GitHub or Jira. This crate invents an organisation (`acme`: teams, people,
//! repositories, a monorepo with two services, a tracker project per team) and simulates about
//! two years of its work: pull requests and the commits they bring to `main`, deployments of
//! `main`, the incidents some deployments cause, the hotfixes and reverts that follow, and the
//! tracker issues the work is filed under. [`generate`] writes the five JSON Lines files of the
//! import format and a `flowmeter.toml` declaring the teams and services.
//!
//! The output is a pure function of scale and seed: the data always ends at
//! 2026-11-01T00:00:00Z, all randomness comes from seeded ChaCha generators, and nothing depends
//! on the clock or on hash-map order. Generation streams team by team and repository by
//! repository, so scale L (about 1.5 million commits) never sits in memory.

mod issues;
mod org;
pub mod random;
mod repo;
mod text;

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::str::FromStr;

use flowmeter_core::import::{RecordKind, to_line};
use flowmeter_core::{Record, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How big an organisation to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scale {
    /// About 15k commits, 3k pull requests, 2k issues, 800 deployments and 60 incidents over
    /// one year: tests and demos. (One of its services deploys at the elite rate, at least daily,
    /// which alone is some 450 deployment records.)
    S,
    /// About a tenth of L.
    M,
    /// About 1.5M commits, 300k pull requests, 50k deployments, 5k incidents and 200k issues
    /// over two years: benchmarks.
    L,
}

/// The error of parsing a [`Scale`] from anything but `S`, `M` or `L`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseScaleError(String);

impl fmt::Display for ParseScaleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown scale '{}' (expected S, M or L)", self.0)
    }
}

impl std::error::Error for ParseScaleError {}

impl FromStr for Scale {
    type Err = ParseScaleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "S" | "s" => Ok(Scale::S),
            "M" | "m" => Ok(Scale::M),
            "L" | "l" => Ok(Scale::L),
            other => Err(ParseScaleError(other.to_string())),
        }
    }
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scale::S => "S",
            Scale::M => "M",
            Scale::L => "L",
        })
    }
}

/// How many records of each kind [`generate`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub commits: u64,
    pub pull_requests: u64,
    pub deployments: u64,
    pub incidents: u64,
    pub issues: u64,
}

/// Writes commits.jsonl, pull_requests.jsonl, deployments.jsonl, incidents.jsonl, issues.jsonl
/// and flowmeter.toml into `out` (created if missing). Same (scale, seed) => byte-identical files.
pub fn generate(scale: Scale, seed: u64, out: &Path) -> io::Result<Summary> {
    fs::create_dir_all(out)?;
    let plan = Plan::of(scale);
    let org = org::Org::build(&plan, seed);
    fs::write(
        out.join("flowmeter.toml"),
        org.config_toml(scale, seed, plan.start),
    )?;
    let mut sink = Sink::create(out)?;
    for team in 0..org.teams.len() {
        let mut backlog = issues::Backlog::plan(&org, team, &plan, seed);
        for &repo in &org.teams[team].repos {
            repo::simulate(&org, repo, &plan, seed, &mut backlog, &mut sink)?;
        }
        backlog.write(&org, &mut sink)?;
    }
    sink.finish()
}

/// Seconds since the Unix epoch, the generator's clock.
type Secs = i64;

const MINUTE: Secs = 60;
const HOUR: Secs = 60 * MINUTE;
const DAY: Secs = 24 * HOUR;
const WEEK: Secs = 7 * DAY;

/// Where every generated organisation's data ends: 2026-11-01T00:00:00Z.
const END: Secs = 1_793_491_200;

/// The sizes of a scale.
struct Plan {
    /// Where the data starts.
    start: Secs,
    /// Repositories per team; its length is the number of teams.
    repos_per_team: &'static [usize],
    /// Team sizes, inclusive.
    members: (usize, usize),
    pull_requests: f64,
    issues: f64,
    /// Where deployment rates sit within each tier's range, from 0 (slowest) to 1 (fastest).
    deploy_level: f64,
    /// Direct pushes to `main` per pull request.
    pushes_per_pr: f64,
}

impl Plan {
    /// The sizes of a scale: S is about a hundredth of L over half the time, M a tenth of L.
    fn of(scale: Scale) -> Plan {
        match scale {
            Scale::S => Plan {
                start: END - 365 * DAY,
                repos_per_team: &[2, 2, 2],
                members: (4, 6),
                pull_requests: 3_000.0,
                issues: 2_000.0,
                deploy_level: 0.0,
                pushes_per_pr: 0.25,
            },
            Scale::M => Plan {
                start: END - 730 * DAY,
                repos_per_team: &[4, 4, 3, 3, 3, 3],
                members: (5, 8),
                pull_requests: 30_000.0,
                issues: 20_000.0,
                deploy_level: 0.0,
                pushes_per_pr: 0.25,
            },
            Scale::L => Plan {
                start: END - 730 * DAY,
                repos_per_team: &[5; 12],
                members: (6, 12),
                pull_requests: 300_000.0,
                issues: 200_000.0,
                deploy_level: 1.0,
                pushes_per_pr: 0.25,
            },
        }
    }

    /// How busy the organisation is at `t` relative to its average: it grows over the span.
    fn growth(&self, t: Secs) -> f64 {
        let progress = (t - self.start) as f64 / (END - self.start) as f64;
        0.7 + 0.6 * progress.clamp(0.0, 1.0)
    }
}

/// A DORA performance tier, used to pick how a team or service behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    Elite,
    High,
    Medium,
    Low,
}

impl Tier {
    /// The tier `steps` below this one, never below `Low`.
    fn lower(self, steps: usize) -> Tier {
        const ORDER: [Tier; 4] = [Tier::Elite, Tier::High, Tier::Medium, Tier::Low];
        let at = ORDER.iter().position(|&t| t == self).unwrap_or(0);
        ORDER[(at + steps).min(3)]
    }

    /// Mean production deployments per week: `level` places it in the tier's range, and a little
    /// jitter upwards keeps services of one tier apart.
    fn deploys_per_week(self, level: f64, rng: &mut ChaCha8Rng) -> f64 {
        let (slow, fast) = match self {
            Tier::Elite => (9.5, 36.0),
            Tier::High => (1.4, 4.0),
            Tier::Medium => (0.35, 0.8),
            Tier::Low => (0.08, 0.14),
        };
        (slow + (fast - slow) * level) * rng.random_range(1.0..1.1)
    }

    /// How much slower than a high performer its people code, review and merge.
    fn slowness(self) -> f64 {
        match self {
            Tier::Elite => 0.25,
            Tier::High => 1.0,
            Tier::Medium => 2.2,
            Tier::Low => 3.5,
        }
    }

    /// The chance that a production deployment causes an incident.
    fn incident_chance(self) -> f64 {
        match self {
            Tier::Elite => 0.035,
            Tier::High => 0.08,
            Tier::Medium => 0.13,
            Tier::Low => 0.22,
        }
    }

    /// The median time to resolve an incident.
    fn recovery_median(self) -> f64 {
        let hours = match self {
            Tier::Elite => 0.5,
            Tier::High => 5.0,
            Tier::Medium => 36.0,
            Tier::Low => 60.0,
        };
        hours * HOUR as f64
    }

    /// How many pull requests a repository of this tier receives, relative to others.
    fn pr_weight(self) -> f64 {
        match self {
            Tier::Elite => 1.5,
            Tier::High => 1.2,
            Tier::Medium => 0.9,
            Tier::Low => 0.6,
        }
    }
}

/// The five output files and the count of lines written to each.
struct Sink {
    files: [BufWriter<File>; 5],
    summary: Summary,
}

impl Sink {
    /// Creates (or truncates) the five files in `out`.
    fn create(out: &Path) -> io::Result<Sink> {
        let open = |kind: RecordKind| -> io::Result<BufWriter<File>> {
            Ok(BufWriter::with_capacity(
                1 << 20,
                File::create(out.join(kind.file_name()))?,
            ))
        };
        Ok(Sink {
            files: [
                open(RecordKind::Commits)?,
                open(RecordKind::PullRequests)?,
                open(RecordKind::Deployments)?,
                open(RecordKind::Incidents)?,
                open(RecordKind::Issues)?,
            ],
            summary: Summary::default(),
        })
    }

    /// Appends a record as one line of the file of its kind.
    fn write(&mut self, record: Record) -> io::Result<()> {
        let s = &mut self.summary;
        let (file, count) = match record {
            Record::Commit(_) => (0, &mut s.commits),
            Record::PullRequest(_) => (1, &mut s.pull_requests),
            Record::Deployment(_) => (2, &mut s.deployments),
            Record::Incident(_) => (3, &mut s.incidents),
            Record::Issue(_) => (4, &mut s.issues),
        };
        *count += 1;
        let out = &mut self.files[file];
        out.write_all(to_line(&record).as_bytes())?;
        out.write_all(b"\n")
    }

    /// Flushes every file and returns the counts.
    fn finish(mut self) -> io::Result<Summary> {
        for file in &mut self.files {
            file.flush()?;
        }
        Ok(self.summary)
    }
}

/// A timestamp from generator seconds.
fn ts(secs: Secs) -> Timestamp {
    Timestamp::from_timestamp(secs, 0).unwrap_or_default()
}

/// An independent random stream of a seed, one per repository or team, so that each part of
/// the organisation is generated from its own stream.
fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(seed ^ mix(stream.wrapping_add(1))))
}

/// The SplitMix64 finaliser: a bijection on `u64` that scatters its input.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A commit id, kept as 64 bits and spelled as 40 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sha(u64);

impl Sha {
    /// The 40 hex digits: the 64 bits, then more digits derived from them.
    fn hex(self) -> String {
        format!(
            "{:016x}{:016x}{:08x}",
            self.0,
            mix(self.0 ^ 0x5555_5555_5555_5555),
            mix(self.0 ^ 0xaaaa_aaaa_aaaa_aaaa) >> 32
        )
    }
}

/// Hands out the commit ids of one repository, never the same twice.
struct ShaGen {
    key: u64,
    count: u64,
}

impl ShaGen {
    /// The ids of a repository of a seed.
    fn new(seed: u64, repo: usize) -> ShaGen {
        ShaGen {
            key: mix(seed ^ mix(0x5348_4100 + repo as u64)),
            count: 0,
        }
    }

    /// A fresh id: the counter scrambled by a bijection, so never one seen before.
    fn next(&mut self) -> Sha {
        self.count += 1;
        Sha(mix(self.key ^ self.count))
    }
}

/// An exponentially distributed duration in seconds with the given mean.
fn exp(rng: &mut ChaCha8Rng, mean: f64) -> Secs {
    let u: f64 = rng.random();
    (-mean * ln(1.0 - u)) as Secs
}

/// A log-normally distributed value with the given median; `sigma` sets the spread.
fn lognormal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    // A standard normal by Marsaglia's polar method.
    let normal = loop {
        let u = rng.random::<f64>() * 2.0 - 1.0;
        let v = rng.random::<f64>() * 2.0 - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            break u * (-2.0 * ln(s) / s).sqrt();
        }
    };
    median * e_pow(sigma * normal)
}

// The platform's `ln` and `exp` may differ in the last bit between math libraries, which
// would break byte-identical output across machines. These use only the four basic operations
// and `sqrt`, which IEEE 754 rounds the same everywhere.

/// The natural logarithm of a positive, normal number.
fn ln(x: f64) -> f64 {
    let bits = x.to_bits();
    let mut exponent = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut mantissa = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if mantissa > std::f64::consts::SQRT_2 {
        mantissa /= 2.0;
        exponent += 1;
    }
    // ln(m) = 2 atanh(s) with s = (m - 1) / (m + 1), |s| < 0.18.
    let s = (mantissa - 1.0) / (mantissa + 1.0);
    let s2 = s * s;
    let (mut term, mut sum) = (s, 0.0);
    for k in 0..14 {
        sum += term / f64::from(2 * k + 1);
        term *= s2;
    }
    2.0 * sum + exponent as f64 * std::f64::consts::LN_2
}

/// e to the power `x`, for `x` within a few hundred of zero.
fn e_pow(x: f64) -> f64 {
    let x = x.clamp(-700.0, 700.0);
    let k = (x / std::f64::consts::LN_2).round();
    let r = x - k * std::f64::consts::LN_2;
    let (mut term, mut sum) = (1.0, 1.0);
    for n in 1..=18 {
        term *= r / f64::from(n);
        sum += term;
    }
    sum * f64::from_bits(((k as i64 + 1023) as u64) << 52)
}

/// A uniformly random duration in `[low, high)` minutes.
fn minutes(rng: &mut ChaCha8Rng, low: Secs, high: Secs) -> Secs {
    rng.random_range(low * MINUTE..high * MINUTE)
}

/// True with probability `p`.
fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    rng.random_bool(p.clamp(0.0, 1.0))
}

/// One of `items` (which must not be empty), uniformly.
fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// An index drawn with the given relative weights.
fn weighted(rng: &mut ChaCha8Rng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut roll = rng.random_range(0..total);
    for (i, &w) in weights.iter().enumerate() {
        if roll < w {
            return i;
        }
        roll -= w;
    }
    weights.len() - 1
}

/// Monday is 0; 1970-01-01 was a Thursday.
fn weekday(t: Secs) -> i64 {
    (t.div_euclid(DAY) + 3) % 7
}

/// Office hours: 08:00 to 19:00 UTC on weekdays.
fn in_office(t: Secs) -> bool {
    let hour = t.rem_euclid(DAY) / HOUR;
    weekday(t) < 5 && (8..19).contains(&hour)
}

/// How active people are at `t` relative to office hours.
fn activity(t: Secs) -> f64 {
    if weekday(t) >= 5 {
        WEEKEND_ACTIVITY
    } else if in_office(t) {
        1.0
    } else {
        NIGHT_ACTIVITY
    }
}

const NIGHT_ACTIVITY: f64 = 0.12;
const WEEKEND_ACTIVITY: f64 = 0.06;

/// The mean of [`activity`] over a week.
fn mean_activity() -> f64 {
    (5.0 * (11.0 + 13.0 * NIGHT_ACTIVITY) + 48.0 * WEEKEND_ACTIVITY) / 168.0
}

/// Moves a time outside office hours to the start of the next office day, most of the time.
fn office(rng: &mut ChaCha8Rng, t: Secs) -> Secs {
    if in_office(t) || chance(rng, 0.15) {
        return t;
    }
    let mut day = t.div_euclid(DAY);
    loop {
        let opening = day * DAY + 8 * HOUR;
        if opening > t && weekday(opening) < 5 {
            return opening + rng.random_range(0..2 * HOUR);
        }
        day += 1;
    }
}

/// A time about `mean` seconds after `t` (exponentially distributed), moved into office hours
/// the way [`office`] does.
fn after(rng: &mut ChaCha8Rng, t: Secs, mean: f64) -> Secs {
    let delay = exp(rng, mean);
    office(rng, t + delay)
}

/// The next event after `from` of a process averaging one event per `mean_gap` seconds that
/// follows office hours (a Poisson process thinned by [`activity`]).
fn next_arrival(rng: &mut ChaCha8Rng, from: Secs, mean_gap: f64) -> Secs {
    let proposal_gap = mean_gap * mean_activity();
    let mut t = from;
    loop {
        t += exp(rng, proposal_gap).max(1);
        if rng.random::<f64>() < activity(t) {
            return t;
        }
    }
}

#[cfg(test)]
mod tests;
