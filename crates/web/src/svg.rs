//! Charts drawn on the server as SVG, so the dashboard needs no JavaScript. Every chart carries
//! a text title and labels: no meaning is carried by colour alone.

use std::fmt::Write as _;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A small line over weekly values; weeks without data are gaps, not zeros.
pub fn sparkline(values: &[Option<f64>], title: &str) -> String {
    let (width, height, pad) = (160.0, 36.0, 3.0);
    let max = values.iter().flatten().copied().fold(0.0_f64, f64::max);
    let step = if values.len() > 1 {
        (width - 2.0 * pad) / (values.len() - 1) as f64
    } else {
        0.0
    };
    let y = |v: f64| {
        if max > 0.0 {
            height - pad - (v / max) * (height - 2.0 * pad)
        } else {
            height - pad
        }
    };
    let mut paths = String::new();
    let mut open = false;
    for (i, value) in values.iter().enumerate() {
        match value {
            Some(v) => {
                let _ = write!(
                    paths,
                    "{}{:.1},{:.1} ",
                    if open { "L" } else { "M" },
                    pad + i as f64 * step,
                    y(*v)
                );
                open = true;
            }
            None => open = false,
        }
    }
    let dots: String = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            v.map(|v| {
                format!(
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"1.8\"/>",
                    pad + i as f64 * step,
                    y(v)
                )
            })
        })
        .collect();
    format!(
        "<svg class=\"spark\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"{t}\"><title>{t}</title><path d=\"{paths}\"/>{dots}</svg>",
        t = escape(title)
    )
}

/// Labelled horizontal bars, each with its count and `unit` written after it ("12 changes").
pub fn bars(items: &[(String, u64)], unit: &str, title: &str) -> String {
    let items: Vec<(String, f64, String)> = items
        .iter()
        .map(|(label, n)| (label.clone(), *n as f64, format!("{n} {unit}")))
        .collect();
    labelled_bars(&items, title)
}

/// Horizontal bars: (label, length, the value as written next to the bar, with its unit).
pub fn labelled_bars(items: &[(String, f64, String)], title: &str) -> String {
    let max = items
        .iter()
        .map(|(_, n, _)| *n)
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let (row, label_width, bar_width) = (26.0, 170.0, 300.0);
    let height = row * items.len() as f64 + 4.0;
    let mut out = format!(
        "<svg class=\"bars\" viewBox=\"0 0 {w} {height}\" width=\"100%\" role=\"img\" aria-label=\"{t}\"><title>{t}</title>",
        w = label_width + bar_width + 110.0,
        t = escape(title)
    );
    for (i, (label, n, shown)) in items.iter().enumerate() {
        let y = i as f64 * row + 4.0;
        let w = (n.max(0.0) / max) * bar_width;
        let _ = write!(
            out,
            "<text x=\"0\" y=\"{:.1}\">{}</text><rect x=\"{label_width}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            y + 15.0,
            escape(label),
            row - 8.0,
            label_width + w + 6.0,
            y + 15.0,
            escape(shown)
        );
    }
    out.push_str("</svg>");
    out
}

/// A horizontal band behind a chart (a tier's range of values), in the chart's value unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub from: f64,
    pub to: f64,
    pub label: &'static str,
}

/// A weekly line chart with labelled axes, tier bands behind it and the current window shaded.
#[derive(Debug, Clone)]
pub struct LineChart<'a> {
    pub title: &'a str,
    /// The value axis' label, with its unit ("hours", "% of deployments").
    pub unit: &'a str,
    /// Week starts and the week's value; `None` is a week without data (a gap).
    pub weeks: &'a [(chrono::NaiveDate, Option<f64>)],
    pub bands: &'a [Band],
    /// The window the rest of the page is about: `[from, to)`.
    pub highlight: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
    /// Written after each value on the axis and in the points' titles ("%", " h").
    pub suffix: &'a str,
}

/// The chart's frame: its size and plot area, in SVG user units.
pub const CHART_WIDTH: f64 = 720.0;
pub const CHART_HEIGHT: f64 = 300.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 44.0;

/// The top of the value axis: the largest value (or 1 when there is none) rounded up to 1, 2,
/// 2.5 or 5 times a power of ten, so that its quarters are round numbers.
pub fn axis_top(max: f64) -> f64 {
    if max.is_nan() || max <= 0.0 || max.is_infinite() {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|top| *top >= max - 1e-9)
        .unwrap_or(10.0 * power)
}

/// Where each week's value lands (x, y), or `None` for a week without data: weeks spread evenly
/// across the plot (a single week in its middle), values from the bottom (0) to `top`.
pub fn plot(values: &[Option<f64>], top: f64) -> Vec<Option<(f64, f64)>> {
    let width = CHART_WIDTH - LEFT - RIGHT;
    let height = CHART_HEIGHT - TOP - BOTTOM;
    let n = values.len();
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = if n > 1 {
                LEFT + width * i as f64 / (n - 1) as f64
            } else {
                LEFT + width / 2.0
            };
            v.map(|v| (x, TOP + height * (1.0 - (v / top).clamp(0.0, 1.0))))
        })
        .collect()
}

/// The x of a day on a chart whose weeks start at `first` and number `n`.
fn day_x(first: chrono::NaiveDate, n: usize, day: chrono::NaiveDate) -> f64 {
    let width = CHART_WIDTH - LEFT - RIGHT;
    let span = ((n.max(2) - 1) * 7) as f64;
    LEFT + width * ((day - first).num_days() as f64 / span).clamp(0.0, 1.0)
}

pub fn line_chart(chart: &LineChart) -> String {
    let values: Vec<Option<f64>> = chart.weeks.iter().map(|(_, v)| *v).collect();
    let max = values.iter().flatten().copied().fold(0.0_f64, f64::max);
    let top = axis_top(max);
    let points = plot(&values, top);
    // Round ticks need as many decimals as the axis' quarters do; a point's own value one more.
    let decimals: usize = if top >= 10.0 {
        0
    } else if top >= 1.0 {
        1
    } else {
        2
    };
    let tick = |v: f64, more: usize| format!("{v:.*}{}", decimals + more, chart.suffix);
    let height = CHART_HEIGHT - TOP - BOTTOM;
    let y_of = |v: f64| TOP + height * (1.0 - (v / top).clamp(0.0, 1.0));
    let right = CHART_WIDTH - RIGHT;
    let bottom = CHART_HEIGHT - BOTTOM;
    let mut out = format!(
        "<svg class=\"trend\" viewBox=\"0 0 {CHART_WIDTH} {CHART_HEIGHT}\" role=\"img\" aria-label=\"{t}\"><title>{t}</title>",
        t = escape(chart.title)
    );
    for band in chart.bands {
        let (from, to) = (band.from.min(top), band.to.min(top));
        if to <= from {
            continue;
        }
        let (y, h) = (y_of(to), y_of(from) - y_of(to));
        // A band too thin for its name is named in its tooltip only.
        let name = if h >= 16.0 {
            format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                right - 4.0,
                y + 12.0,
                band.label
            )
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "<g class=\"band band-{label}\"><rect x=\"{LEFT}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>{label}</title></rect>{name}</g>",
            right - LEFT,
            label = band.label
        );
    }
    if let (Some((from, to)), Some((first, _))) = (chart.highlight, chart.weeks.first()) {
        let n = chart.weeks.len();
        let (x0, x1) = (day_x(*first, n, from), day_x(*first, n, to));
        if x1 > x0 {
            let _ = write!(
                out,
                "<rect class=\"window\" x=\"{x0:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{height:.1}\"><title>the window shown on the other pages: {from} to {to}</title></rect>",
                x1 - x0
            );
        }
    }
    // The value axis: five ticks with their values, and its label with the unit.
    for k in 0..=4 {
        let v = top * f64::from(k) / 4.0;
        let y = y_of(v);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\"/><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y + 4.0,
            escape(&tick(v, 0))
        );
    }
    let _ = write!(
        out,
        "<text class=\"axis-label\" transform=\"translate(14 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        TOP + height / 2.0,
        escape(chart.unit)
    );
    // The time axis: the first week of each month (every other month past a year), dated.
    let every = chart.weeks.len().div_ceil(30).max(1);
    let mut month = None;
    let mut shown = 0;
    for (i, (week, _)) in chart.weeks.iter().enumerate() {
        let key = (chrono::Datelike::year(week), chrono::Datelike::month(week));
        if month == Some(key) {
            continue;
        }
        month = Some(key);
        shown += 1;
        if (shown - 1) % every != 0 {
            continue;
        }
        let x = points
            .get(i)
            .map(|_| day_x(chart.weeks[0].0, chart.weeks.len(), *week))
            .unwrap_or(LEFT);
        let _ = write!(
            out,
            "<line class=\"axis\" x1=\"{x:.1}\" y1=\"{bottom}\" x2=\"{x:.1}\" y2=\"{:.1}\"/><text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            bottom + 4.0,
            bottom + 18.0,
            week.format("%b %Y")
        );
    }
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\"/><line class=\"axis\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{bottom}\"/><text class=\"axis-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">week starting (UTC)</text>",
        LEFT + (right - LEFT) / 2.0,
        CHART_HEIGHT - 6.0
    );
    let mut path = String::new();
    let mut open = false;
    for point in &points {
        match point {
            Some((x, y)) => {
                let _ = write!(path, "{}{x:.1},{y:.1} ", if open { "L" } else { "M" });
                open = true;
            }
            None => open = false,
        }
    }
    let _ = write!(out, "<path class=\"line\" d=\"{}\"/>", path.trim_end());
    for ((week, value), point) in chart.weeks.iter().zip(&points) {
        if let (Some(v), Some((x, y))) = (value, point) {
            let _ = write!(
                out,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\"><title>week of {week}: {}</title></circle>",
                escape(&tick(*v, 1))
            );
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_stay_gaps_and_labels_are_escaped() {
        let svg = sparkline(&[Some(1.0), None, Some(2.0)], "a <b>");
        assert_eq!(svg.matches('M').count(), 2, "{svg}");
        assert!(svg.contains("a &lt;b&gt;"));
        let svg = bars(&[("< 1 h".into(), 3)], "changes", "lead");
        assert!(svg.contains("&lt; 1 h") && svg.contains(">3 changes</text>"));
    }

    fn week(n: i64) -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Duration::weeks(n)
    }

    #[test]
    fn values_land_on_the_expected_pixels() {
        // Plot area: x 64..704, y 16..256 (300 high, 16 above, 44 below).
        assert_eq!(axis_top(7.2), 10.0);
        assert_eq!(axis_top(1.9), 2.0);
        assert_eq!(axis_top(230.0), 250.0);
        assert_eq!(axis_top(0.0), 1.0);
        assert_eq!(axis_top(f64::NAN), 1.0);
        let points = plot(&[Some(0.0), Some(5.0), None, Some(10.0), Some(20.0)], 10.0);
        assert_eq!(
            points,
            [
                Some((64.0, 256.0)),
                Some((224.0, 136.0)),
                None,
                Some((544.0, 16.0)),
                // Beyond the top: at the top, never outside the plot.
                Some((704.0, 16.0)),
            ]
        );
        // A single week is drawn in the middle.
        assert_eq!(plot(&[Some(2.5)], 10.0), [Some((384.0, 196.0))]);
    }

    #[test]
    fn a_chart_has_axes_units_bands_gaps_and_the_window() {
        let weeks: Vec<(chrono::NaiveDate, Option<f64>)> = vec![
            (week(0), Some(30.0)),
            (week(1), None),
            (week(2), Some(10.0)),
            (week(3), Some(50.0)),
            (week(4), None),
            (week(5), Some(40.0)),
        ];
        let bands = [
            Band {
                from: 0.0,
                to: 24.0,
                label: "elite",
            },
            Band {
                from: 24.0,
                to: 168.0,
                label: "high",
            },
        ];
        let svg = line_chart(&LineChart {
            title: "median lead time per week",
            unit: "hours",
            weeks: &weeks,
            bands: &bands,
            highlight: Some((week(3), week(5))),
            suffix: " h",
        });
        assert!(svg.contains(">hours</text>") && svg.contains(">week starting (UTC)</text>"));
        for tick in ["0 h", "25 h", "50 h"] {
            assert!(svg.contains(&format!(">{tick}</text>")), "{tick}: {svg}");
        }
        assert!(svg.contains(">Jan 2024</text>") && svg.contains(">Feb 2024</text>"));
        // Empty weeks are gaps: three runs of line, never a point at zero.
        assert_eq!(svg.matches('M').count(), 3, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 4);
        // The elite band (0 to 24 h of a 50 h axis) and the high band, clipped at the top.
        assert!(svg.contains("band-elite\"><rect x=\"64\" y=\"140.8\" width=\"640.0\" height=\"115.2\"><title>elite"), "{svg}");
        assert!(
            svg.contains(
                "band-high\"><rect x=\"64\" y=\"16.0\" width=\"640.0\" height=\"124.8\"><title>high"
            ),
            "{svg}"
        );
        // Weeks 3 to 5 of 0..5: x from 448 to 704.
        assert!(
            svg.contains("class=\"window\" x=\"448.0\" y=\"16\" width=\"256.0\""),
            "{svg}"
        );
        // A chart of one week still draws it.
        let one = [(week(0), Some(3.0))];
        let svg = line_chart(&LineChart {
            title: "t",
            unit: "deployments",
            weeks: &one,
            bands: &[],
            highlight: None,
            suffix: "",
        });
        assert!(svg.contains("<circle cx=\"384.0\""), "{svg}");
    }
}
