//! A box plot as plain SVG: one row per (kernel, tool), seconds on x.

use std::fmt::Write as _;

use super::KernelResult;

const ROW: f64 = 26.0;
const LEFT: f64 = 290.0;
const WIDTH: f64 = 900.0;

/// Quartiles by linear interpolation.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

pub fn boxes(results: &[KernelResult]) -> String {
    // A heading row per kernel (no walls), then its tools.
    let rows: Vec<(String, Vec<f64>)> = results
        .iter()
        .flat_map(|k| {
            let heading = (k.heading(), Vec::new());
            std::iter::once(heading)
                .chain(k.tools.iter().filter(|t| !t.wall_s.is_empty()).map(|t| (t.tool.clone(), t.wall_s.clone())))
        })
        .collect();
    let max = rows.iter().flat_map(|(_, w)| w.iter().copied()).fold(1.0_f64, f64::max).ceil();
    let x = |s: f64| LEFT + s / max * (WIDTH - LEFT - 20.0);
    let height = 60.0 + ROW * rows.len() as f64;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="10" y="18" font-size="14">Boot test wall time, seconds (box: quartiles, line: median, whiskers: min-max)</text>"#
    );
    for i in 0..=max as usize {
        let xi = x(i as f64);
        let _ = writeln!(svg, r##"<line x1="{xi}" y1="30" x2="{xi}" y2="{}" stroke="#ddd"/>"##, height - 20.0);
        let _ = writeln!(svg, r#"<text x="{xi}" y="{}" text-anchor="middle">{i}</text>"#, height - 6.0);
    }
    for (i, (label, walls)) in rows.iter().enumerate() {
        let y = 40.0 + ROW * i as f64;
        if walls.is_empty() {
            let _ = writeln!(svg, r#"<text x="10" y="{}" font-weight="bold">{}</text>"#, y + 13.0, esc(label));
            continue;
        }
        let mut w = walls.clone();
        w.sort_by(|a, b| a.total_cmp(b));
        let (q1, med, q3) = (quantile(&w, 0.25), quantile(&w, 0.5), quantile(&w, 0.75));
        let color = if label.contains("krepro") { "#3b7dd8" } else { "#999" };
        let _ = writeln!(svg, r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#, LEFT - 8.0, y + 13.0, esc(label));
        let _ = writeln!(
            svg,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{color}"/>"#,
            x(w[0]),
            y + 9.0,
            x(w[w.len() - 1]),
            y + 9.0
        );
        let _ = writeln!(
            svg,
            r#"<rect x="{}" y="{y}" width="{}" height="18" fill="{color}" fill-opacity="0.35" stroke="{color}"/>"#,
            x(q1),
            (x(q3) - x(q1)).max(1.0)
        );
        let _ = writeln!(
            svg,
            r#"<line x1="{0}" y1="{y}" x2="{0}" y2="{1}" stroke="{color}" stroke-width="2"/>"#,
            x(med),
            y + 18.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}
