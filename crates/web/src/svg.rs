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

/// Labelled horizontal bars.
pub fn bars(items: &[(String, u64)], title: &str) -> String {
    let max = items.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f64;
    let (row, label_width, bar_width) = (26.0, 120.0, 300.0);
    let height = row * items.len() as f64 + 4.0;
    let mut out = format!(
        "<svg class=\"bars\" viewBox=\"0 0 {w} {height}\" width=\"100%\" role=\"img\" aria-label=\"{t}\"><title>{t}</title>",
        w = label_width + bar_width + 70.0,
        t = escape(title)
    );
    for (i, (label, n)) in items.iter().enumerate() {
        let y = i as f64 * row + 4.0;
        let w = (*n as f64 / max) * bar_width;
        let _ = write!(
            out,
            "<text x=\"0\" y=\"{:.1}\">{}</text><rect x=\"{label_width}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\">{n}</text>",
            y + 15.0,
            escape(label),
            row - 8.0,
            label_width + w + 6.0,
            y + 15.0
        );
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
        let svg = bars(&[("< 1 h".into(), 3)], "lead");
        assert!(svg.contains("&lt; 1 h") && svg.contains(">3</text>"));
    }
}
