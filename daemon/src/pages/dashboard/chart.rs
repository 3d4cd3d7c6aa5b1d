//! The home page's 30-day revenue chart: an SVG drawn on the server with plotters (axes,
//! grid, bars), and over each bar a focusable group whose label shows on hover or keyboard
//! focus, so each day's figure can be read without a script or a mouse.

use calmony_protocol::clock_text::money;
use plotters::prelude::*;

use super::super::html::escape;

/// One bar: the day's label (`6 Dec`) and its net revenue in minor units.
pub struct Day {
    pub label: String,
    pub net: i64,
}

const W: u32 = 760;
const H: u32 = 260;

/// The chart's `<svg>`, or a sentence if plotters refused (it does not, for these sizes).
pub fn revenue_svg(days: &[Day], accent: &str) -> String {
    let max = days.iter().map(|d| d.net).max().unwrap_or(0).max(100);
    // A round top: the next of 1, 2, 5 × 10^k above the largest day.
    let top = nice_ceiling(max);
    let mut svg = String::new();
    let mut bars: Vec<(i32, i32, i32, i32)> = Vec::new();
    let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE)?;
        let n = days.len().max(1) as i32;
        let mut chart = ChartBuilder::on(&root)
            .margin_top(12)
            .margin_right(12)
            .x_label_area_size(28)
            .y_label_area_size(72)
            .build_cartesian_2d(0..n * 10, 0i64..top)?;
        let labels: Vec<String> = days.iter().map(|d| d.label.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .bold_line_style(RGBColor(0xec, 0xee, 0xf2))
            .light_line_style(TRANSPARENT)
            .axis_style(RGBColor(0xc9, 0xce, 0xd8))
            .y_labels(5)
            .y_label_formatter(&|v| money(*v).trim_end_matches(".00").to_string())
            .x_labels(days.len().min(8))
            .x_label_formatter(&|i| {
                // Ticks fall on a day's left edge (ten units a day).
                labels.get((*i / 10) as usize).cloned().unwrap_or_default()
            })
            .label_style(
                ("sans-serif", 12)
                    .into_font()
                    .color(&RGBColor(0x5b, 0x64, 0x75)),
            )
            .draw()?;
        let fill = parse_hex(accent).unwrap_or(RGBColor(0x3a, 0x4b, 0xd9));
        chart.draw_series(days.iter().enumerate().map(|(i, d)| {
            let i = i as i32;
            // A gap of a tenth of a day either side keeps the bars apart.
            Rectangle::new([(i * 10 + 1, 0), (i * 10 + 9, d.net.max(0))], fill.filled())
        }))?;
        for (i, _) in days.iter().enumerate() {
            let i = i as i32;
            let (x0, bottom) = chart.backend_coord(&(i * 10, 0));
            let (x1, top_px) = chart.backend_coord(&(i * 10 + 10, top));
            bars.push((x0, x1, top_px, bottom));
        }
        root.present()?;
        Ok(())
    })();
    if drawn.is_err() {
        return "<p class=\"muted\">The chart could not be drawn.</p>".into();
    }
    let mut overlay = String::from("<g class=\"days\">");
    for (d, (x0, x1, top_px, bottom)) in days.iter().zip(&bars) {
        let text = format!("{}: {}", d.label, money(d.net));
        let tx = ((x0 + x1) / 2).clamp(70, W as i32 - 70);
        overlay.push_str(&format!(
            "<g tabindex=\"0\" role=\"img\" aria-label=\"{t}\"><title>{t}</title>\
             <rect x=\"{x0}\" y=\"{top_px}\" width=\"{w}\" height=\"{h}\" fill=\"transparent\"/>\
             <g class=\"tip\"><rect x=\"{bx}\" y=\"{by}\" width=\"140\" height=\"24\" rx=\"6\" fill=\"#1a1f36\"/>\
             <text x=\"{tx}\" y=\"{ty}\" text-anchor=\"middle\" fill=\"#fff\" font-size=\"12\" \
             font-family=\"sans-serif\">{t}</text></g></g>",
            t = escape(&text),
            w = (x1 - x0).max(1),
            h = (bottom - top_px).max(1),
            bx = tx - 70,
            by = top_px + 2,
            ty = top_px + 18,
        ));
    }
    overlay.push_str("</g>");
    let svg = svg.replacen(
        "<svg ",
        "<svg role=\"group\" aria-label=\"Net revenue per day, last 30 days\" \
         viewBox=\"0 0 760 260\" preserveAspectRatio=\"xMidYMid meet\" ",
        1,
    );
    match svg.rfind("</svg>") {
        Some(at) => format!("{}{overlay}</svg>", &svg[..at]),
        None => svg,
    }
}

/// The next of 1, 2, 5 × 10^k at or above `v`.
pub fn nice_ceiling(v: i64) -> i64 {
    let mut step = 1i64;
    loop {
        for m in [1, 2, 5] {
            if step.saturating_mul(m) >= v {
                return step.saturating_mul(m);
            }
        }
        step = step.saturating_mul(10);
    }
}

fn parse_hex(c: &str) -> Option<RGBColor> {
    let h = c.strip_prefix('#')?;
    if h.len() != 6 {
        return None;
    }
    let b = |i: usize| u8::from_str_radix(h.get(i..i + 2)?, 16).ok();
    Some(RGBColor(b(0)?, b(2)?, b(4)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_top_is_a_round_figure_above_the_largest_day() {
        for (v, want) in [(1, 1), (100, 100), (101, 200), (250, 500), (5001, 10_000)] {
            assert_eq!(nice_ceiling(v), want, "{v}");
        }
    }

    #[test]
    fn each_day_is_a_focusable_labelled_bar() {
        let days: Vec<Day> = (0..30)
            .map(|i| Day {
                label: format!("{} Nov", i + 1),
                net: i * 1000,
            })
            .collect();
        let svg = revenue_svg(&days, "#3a4bd9");
        assert!(svg.starts_with("<svg role=\"group\""), "{svg:.200}");
        assert_eq!(svg.matches("tabindex=\"0\"").count(), 30);
        assert!(svg.contains("30 Nov: £290.00"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
