//! The window- and scope-dependent half of the engine: one Polars function per metric over the
//! frames of a prepared snapshot. Each function's doc comment is its definition.

use polars::prelude::*;

use flowmeter_core::Window;

use crate::prepare::Prepared;

pub mod columns {
    pub const SERVICE: &str = "service";
    pub const REPO: &str = "repo";
    pub const TIME: &str = "time";
    pub const FAILED: &str = "failed";
    pub const REWORK: &str = "rework";
    pub const DEPLOYED_AT: &str = "deployed_at";
    pub const LEAD_HOURS: &str = "lead_hours";
    pub const CREATED_AT: &str = "created_at";
    pub const RESOLVED_AT: &str = "resolved_at";
    pub const RECOVERY_HOURS: &str = "recovery_hours";
}
use columns::*;

const US_PER_DAY: i64 = 86_400_000_000;

/// The prepared rows as frames; times are microseconds since the epoch (UTC). The changes
/// frame, by far the largest, names services and repositories by their interned numbers.
#[derive(Debug, Clone)]
pub struct Frames {
    pub deployments: DataFrame,
    pub changes: DataFrame,
    pub incidents: DataFrame,
}

impl Frames {
    pub fn new(p: &Prepared) -> PolarsResult<Frames> {
        let us = |t: &flowmeter_core::Timestamp| t.timestamp_micros();
        let changes = df!(
            SERVICE => p.changes.iter().map(|c| c.service).collect::<Vec<u32>>(),
            REPO => p.changes.iter().map(|c| c.repo).collect::<Vec<u32>>(),
            DEPLOYED_AT => p.changes.iter().map(|c| c.deployed_at).collect::<Vec<_>>(),
            LEAD_HOURS => p.changes.iter().map(|c| c.lead_hours).collect::<Vec<_>>(),
        )?;
        let deployments = df!(
            SERVICE => p.deployments.iter().map(|d| d.service.as_str()).collect::<Vec<_>>(),
            REPO => p.deployments.iter().map(|d| d.repo.as_str()).collect::<Vec<_>>(),
            TIME => p.deployments.iter().map(|d| us(&d.time)).collect::<Vec<_>>(),
            FAILED => p.deployments.iter().map(|d| d.failed).collect::<Vec<_>>(),
            REWORK => p.deployments.iter().map(|d| d.rework).collect::<Vec<_>>(),
        )?;
        let incidents = df!(
            SERVICE => p.incidents.iter().map(|i| i.service.as_deref()).collect::<Vec<_>>(),
            REPO => p.incidents.iter().map(|i| i.repo.as_deref()).collect::<Vec<_>>(),
            CREATED_AT => p.incidents.iter().map(|i| us(&i.created_at)).collect::<Vec<_>>(),
            RESOLVED_AT => p.incidents.iter().map(|i| i.resolved_at.as_ref().map(us)).collect::<Vec<_>>(),
            RECOVERY_HOURS => p.incidents.iter().map(|i| i.recovery_hours).collect::<Vec<_>>(),
        )?;
        Ok(Frames {
            deployments,
            changes,
            incidents,
        })
    }
}

/// `from 00:00 <= column < to 00:00`.
pub fn in_window(column: &str, window: &Window) -> Expr {
    let start = window.start().timestamp_micros();
    let end = window.end().timestamp_micros();
    col(column).gt_eq(lit(start)).and(col(column).lt(lit(end)))
}

fn count() -> Expr {
    len().cast(DataType::UInt64).alias("count")
}

fn sum_of(column: &str) -> Expr {
    col(column).cast(DataType::UInt64).sum().alias(column)
}

/// A column of an aggregate as counts (nulls as 0).
fn u64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<u64>> {
    let s = df
        .column(name)?
        .as_materialized_series()
        .cast(&DataType::UInt64)?;
    Ok(s.u64()?.iter().map(|v| v.unwrap_or(0)).collect())
}

/// A column of an aggregate as numbers (nulls kept: no data).
fn f64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<f64>>> {
    let s = df
        .column(name)?
        .as_materialized_series()
        .cast(&DataType::Float64)?;
    Ok(s.f64()?.iter().collect())
}

fn first_u64(df: &DataFrame, column: &str) -> PolarsResult<u64> {
    Ok(df
        .column(column)?
        .as_materialized_series()
        .cast(&DataType::UInt64)?
        .u64()?
        .get(0)
        .unwrap_or(0))
}

fn first_f64(df: &DataFrame, column: &str) -> PolarsResult<Option<f64>> {
    Ok(df
        .column(column)?
        .as_materialized_series()
        .cast(&DataType::Float64)?
        .f64()?
        .get(0))
}

/// D1 Deployment frequency: the deployments in the window; `per_week = deployments * 7 /
/// days`; and the median, over the window's whole 7-day buckets starting at `from`, of the
/// number of distinct UTC days with at least one deployment (`None` without a whole bucket).
pub fn deployment_frequency(
    deployments: &DataFrame,
    window: &Window,
    scope: Expr,
) -> PolarsResult<(u64, f64, Option<f64>)> {
    let selected = deployments
        .clone()
        .lazy()
        .filter(in_window(TIME, window).and(scope));
    let n = first_u64(&selected.clone().select([count()]).collect()?, "count")?;
    let per_week = n as f64 * 7.0 / window.days() as f64;
    let buckets = window.days() / 7;
    if buckets == 0 {
        return Ok((n, per_week, None));
    }
    let start = window.start().timestamp_micros();
    // Rows are filtered to the window, so the offsets are non-negative and integer division floors.
    let day = (col(TIME) - lit(start)) / lit(US_PER_DAY);
    let per_bucket = selected
        .select([day.alias("day")])
        .with_column((col("day") / lit(7i64)).alias("bucket"))
        .filter(col("bucket").lt(lit(buckets)))
        .group_by([col("bucket")])
        .agg([col("day").n_unique().cast(DataType::Float64).alias("days")])
        .collect()?;
    let mut days_per_bucket = vec![0.0; buckets as usize];
    let bucket_col = per_bucket
        .column("bucket")?
        .as_materialized_series()
        .cast(&DataType::Int64)?;
    let days_col = per_bucket.column("days")?.as_materialized_series().clone();
    for (b, d) in bucket_col.i64()?.iter().zip(days_col.f64()?.iter()) {
        if let (Some(b), Some(d)) = (b, d) {
            days_per_bucket[b as usize] = d;
        }
    }
    let median = Series::new("days".into(), days_per_bucket).median();
    Ok((n, per_week, median))
}

/// D2 Lead time for changes: over the changes delivered by deployments in the window, their
/// count, median and 90th percentile (linear interpolation) of `deployment time - start`.
pub fn lead_time(
    changes: &DataFrame,
    window: &Window,
    scope: Expr,
) -> PolarsResult<(u64, Option<f64>, Option<f64>)> {
    let out = changes
        .clone()
        .lazy()
        .filter(in_window(DEPLOYED_AT, window).and(scope))
        .select([
            count(),
            col(LEAD_HOURS).median().alias("median"),
            col(LEAD_HOURS)
                .quantile(lit(0.9), QuantileMethod::Linear)
                .alias("p90"),
        ])
        .collect()?;
    Ok((
        first_u64(&out, "count")?,
        first_f64(&out, "median")?,
        first_f64(&out, "p90")?,
    ))
}

/// D3 Change failure rate: of the deployments in the window, how many failed (an incident is
/// attributed to them); `rate = failed / deployments`, `None` without deployments.
/// D5 Rework rate is the same shape over the `rework` flag.
pub fn flagged_share(
    deployments: &DataFrame,
    window: &Window,
    scope: Expr,
    flag: &str,
) -> PolarsResult<(u64, u64, Option<f64>)> {
    let out = deployments
        .clone()
        .lazy()
        .filter(in_window(TIME, window).and(scope))
        .select([count(), sum_of(flag)])
        .collect()?;
    let n = first_u64(&out, "count")?;
    let flagged = first_u64(&out, flag)?;
    let rate = (n > 0).then(|| flagged as f64 / n as f64);
    Ok((n, flagged, rate))
}

/// D4 Recovery time: for the incidents resolved in the window, their count and the median of
/// `resolved_at - created_at`; also how many of the scope's incidents created before the
/// window's end are still open.
pub fn recovery_time(
    incidents: &DataFrame,
    window: &Window,
    scope: Expr,
) -> PolarsResult<(u64, Option<f64>, u64)> {
    let out = incidents
        .clone()
        .lazy()
        .filter(in_window(RESOLVED_AT, window).and(scope.clone()))
        .select([count(), col(RECOVERY_HOURS).median().alias("median")])
        .collect()?;
    let open = incidents
        .clone()
        .lazy()
        .filter(
            col(RESOLVED_AT)
                .is_null()
                .and(col(CREATED_AT).lt(lit(window.end().timestamp_micros())))
                .and(scope),
        )
        .select([count()])
        .collect()?;
    Ok((
        first_u64(&out, "count")?,
        first_f64(&out, "median")?,
        first_u64(&open, "count")?,
    ))
}

const US_PER_WEEK: i64 = 7 * US_PER_DAY;
/// 1970-01-01 was a Thursday: shifting by three days makes weeks start on Mondays (ISO 8601).
const MONDAY_SHIFT: i64 = 3 * US_PER_DAY;

/// One service's figures in one ISO week (Monday to Monday, UTC).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WeekRow {
    pub week_start: chrono::NaiveDate,
    pub service: String,
    pub deployments: u64,
    pub failed: u64,
    pub rework: u64,
    pub changes: u64,
    pub lead_time_median_hours: Option<f64>,
    pub incidents_resolved: u64,
    pub recovery_median_hours: Option<f64>,
}

fn week_of(column: &str) -> Expr {
    ((col(column) + lit(MONDAY_SHIFT)) / lit(US_PER_WEEK)).alias("week")
}

fn week_start(week: i64) -> chrono::NaiveDate {
    let micros = week * US_PER_WEEK - MONDAY_SHIFT;
    chrono::DateTime::from_timestamp_micros(micros)
        .expect("in range")
        .date_naive()
}

/// Per ISO week and service: deployments, failed and rework deployments, delivered changes
/// with their median lead time, and resolved incidents with their median recovery time, for
/// the weeks the window touches (each figure only from events inside the window).
pub fn weekly(
    frames: &Frames,
    window: &Window,
    scope: Expr,
    change_scope: Expr,
    names: &crate::model::Names,
) -> PolarsResult<Vec<WeekRow>> {
    use std::collections::BTreeMap;
    let group = |df: &DataFrame, time: &str, scope: Expr, aggs: Vec<Expr>| {
        df.clone()
            .lazy()
            .filter(in_window(time, window).and(scope))
            .with_column(week_of(time))
            .group_by([col("week"), col(SERVICE)])
            .agg(aggs)
            .collect()
    };
    let deployments = group(
        &frames.deployments,
        TIME,
        scope.clone(),
        vec![count(), sum_of(FAILED), sum_of(REWORK)],
    )?;
    let changes = group(
        &frames.changes,
        DEPLOYED_AT,
        change_scope,
        vec![count(), col(LEAD_HOURS).median().alias("median")],
    )?;
    let incidents = group(
        &frames
            .incidents
            .clone()
            .lazy()
            .filter(col(SERVICE).is_not_null())
            .collect()?,
        RESOLVED_AT,
        scope,
        vec![count(), col(RECOVERY_HOURS).median().alias("median")],
    )?;
    let mut rows: BTreeMap<(i64, String), WeekRow> = BTreeMap::new();
    fn entry<'a>(
        rows: &'a mut BTreeMap<(i64, String), WeekRow>,
        week: i64,
        service: &str,
    ) -> &'a mut WeekRow {
        rows.entry((week, service.to_string()))
            .or_insert_with(|| WeekRow {
                week_start: week_start(week),
                service: service.to_string(),
                deployments: 0,
                failed: 0,
                rework: 0,
                changes: 0,
                lead_time_median_hours: None,
                incidents_resolved: 0,
                recovery_median_hours: None,
            })
    }
    let keys = |df: &DataFrame| -> PolarsResult<Vec<(i64, String)>> {
        let weeks = df
            .column("week")?
            .as_materialized_series()
            .cast(&DataType::Int64)?;
        let services = df.column(SERVICE)?.as_materialized_series().clone();
        let services: Vec<String> = match services.dtype() {
            DataType::UInt32 => services
                .u32()?
                .iter()
                .map(|s| s.map(|s| names.name(s).to_string()).unwrap_or_default())
                .collect(),
            _ => services
                .str()?
                .iter()
                .map(|s| s.unwrap_or_default().to_string())
                .collect(),
        };
        Ok(weeks
            .i64()?
            .iter()
            .zip(services)
            .map(|(w, s)| (w.unwrap_or_default(), s))
            .collect())
    };
    let (n, failed, rework) = (
        u64s(&deployments, "count")?,
        u64s(&deployments, FAILED)?,
        u64s(&deployments, REWORK)?,
    );
    for (i, (week, service)) in keys(&deployments)?.into_iter().enumerate() {
        let row = entry(&mut rows, week, &service);
        (row.deployments, row.failed, row.rework) = (n[i], failed[i], rework[i]);
    }
    let (n, median) = (u64s(&changes, "count")?, f64s(&changes, "median")?);
    for (i, (week, service)) in keys(&changes)?.into_iter().enumerate() {
        let row = entry(&mut rows, week, &service);
        (row.changes, row.lead_time_median_hours) = (n[i], median[i]);
    }
    let (n, median) = (u64s(&incidents, "count")?, f64s(&incidents, "median")?);
    for (i, (week, service)) in keys(&incidents)?.into_iter().enumerate() {
        let row = entry(&mut rows, week, &service);
        (row.incidents_resolved, row.recovery_median_hours) = (n[i], median[i]);
    }
    Ok(rows.into_values().collect())
}

/// One bucket of a series: the figures a report of that bucket's window gives.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Point {
    pub from: chrono::NaiveDate,
    pub deployments: u64,
    pub failed: u64,
    pub rework: u64,
    pub changes: u64,
    pub lead_time_median_hours: Option<f64>,
    pub incidents_resolved: u64,
    pub recovery_median_hours: Option<f64>,
}

impl Point {
    pub fn change_failure_rate(&self) -> Option<f64> {
        (self.deployments > 0).then(|| self.failed as f64 / self.deployments as f64)
    }

    pub fn rework_rate(&self) -> Option<f64> {
        (self.deployments > 0).then(|| self.rework as f64 / self.deployments as f64)
    }
}

/// The figures of `buckets` consecutive buckets of `bucket_days` days from `start`, in one
/// aggregation per frame: each bucket gives what a report of its own window gives, at the cost
/// of one report for all of them.
pub fn series(
    frames: &Frames,
    start: chrono::NaiveDate,
    buckets: i64,
    bucket_days: i64,
    scope: Expr,
    change_scope: Expr,
) -> PolarsResult<Vec<Point>> {
    let start_us = start
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_micros();
    let width = bucket_days * US_PER_DAY;
    let end_us = start_us + buckets * width;
    let bucketed = |df: &DataFrame, time: &str, scope: Expr, aggs: Vec<Expr>| {
        df.clone()
            .lazy()
            .filter(
                col(time)
                    .gt_eq(lit(start_us))
                    .and(col(time).lt(lit(end_us)))
                    .and(scope),
            )
            .with_column(((col(time) - lit(start_us)) / lit(width)).alias("bucket"))
            .group_by([col("bucket")])
            .agg(aggs)
            .collect()
    };
    let mut points: Vec<Point> = (0..buckets)
        .map(|b| Point {
            from: start + chrono::Duration::days(b * bucket_days),
            ..Point::default()
        })
        .collect();
    let index = |df: &DataFrame| -> PolarsResult<Vec<usize>> {
        let s = df
            .column("bucket")?
            .as_materialized_series()
            .cast(&DataType::Int64)?;
        Ok(s.i64()?.iter().map(|b| b.unwrap_or(0) as usize).collect())
    };
    let d = bucketed(
        &frames.deployments,
        TIME,
        scope.clone(),
        vec![count(), sum_of(FAILED), sum_of(REWORK)],
    )?;
    let (n, failed, rework) = (u64s(&d, "count")?, u64s(&d, FAILED)?, u64s(&d, REWORK)?);
    for (i, b) in index(&d)?.into_iter().enumerate() {
        (points[b].deployments, points[b].failed, points[b].rework) = (n[i], failed[i], rework[i]);
    }
    let c = bucketed(
        &frames.changes,
        DEPLOYED_AT,
        change_scope,
        vec![count(), col(LEAD_HOURS).median().alias("median")],
    )?;
    let (n, median) = (u64s(&c, "count")?, f64s(&c, "median")?);
    for (i, b) in index(&c)?.into_iter().enumerate() {
        (points[b].changes, points[b].lead_time_median_hours) = (n[i], median[i]);
    }
    let r = bucketed(
        &frames.incidents,
        RESOLVED_AT,
        scope,
        vec![count(), col(RECOVERY_HOURS).median().alias("median")],
    )?;
    let (n, median) = (u64s(&r, "count")?, f64s(&r, "median")?);
    for (i, b) in index(&r)?.into_iter().enumerate() {
        (
            points[b].incidents_resolved,
            points[b].recovery_median_hours,
        ) = (n[i], median[i]);
    }
    Ok(points)
}
