//! Charts drawn by the server as inline SVG (no script, no external file):
//! bar charts (histograms, with 95% interval whiskers when noisy) and line
//! charts (a CDF from quantiles, budget spent over time). Each chart is an
//! accessible image: `role="img"`, a `<title>` and a `<desc>` summarising the
//! data, labelled axes with units, and a `<title>` on every bar and point.
//! Input: numbers from answers and budget samples; output: maud markup for
//! the pages. Presentation attributes only (no inline `style`, which the
//! console's Content-Security-Policy forbids). Pure.

use maud::{html, Markup};

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 340.0;
const LEFT: f64 = 84.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 84.0;
/// Line colours (colour-blind safe: Okabe-Ito).
const PALETTE: [&str; 6] = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"];

/// What a chart is about: an id unique on its page, its title, a one-line
/// description of the data, and its axes' labels (with units).
pub struct ChartText<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
}

/// One bar: its label on the x axis, its height and an optional interval.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub interval: Option<(f64, f64)>,
}

/// One line: its name in the legend and its (x, y) points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Maps data values in [lo, hi] onto pixels [from, to].
#[derive(Clone, Copy)]
struct Scale {
    lo: f64,
    hi: f64,
    from: f64,
    to: f64,
}

impl Scale {
    fn new(lo: f64, hi: f64, from: f64, to: f64) -> Scale {
        let (lo, hi) = if hi > lo && (hi - lo).is_finite() { (lo, hi) } else { (lo - 1.0, lo + 1.0) };
        Scale { lo, hi, from, to }
    }

    fn at(&self, v: f64) -> f64 {
        self.from + (v - self.lo) / (self.hi - self.lo) * (self.to - self.from)
    }
}

/// About `count` round tick values (1, 2 or 5 times a power of ten) in [lo, hi].
pub fn ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    let span = hi - lo;
    if !(span > 0.0 && span.is_finite()) || count == 0 {
        return vec![lo];
    }
    let raw = span / count as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(magnitude * 10.0);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).take(50).map(|i| i as f64 * step).collect()
}

/// A number for an axis or a tooltip: integers in full up to 10^12, others
/// with 4 significant digits.
pub fn number(v: f64) -> String {
    // -0 reads as 0
    let v = if v == 0.0 { 0.0 } else { v };
    if v == v.trunc() && v.abs() < 1e12 {
        return format!("{v:.0}");
    }
    if v != 0.0 && (v.abs() >= 1e12 || v.abs() < 1e-3) {
        return format!("{v:.3e}");
    }
    let digits = usize::try_from(3 - v.abs().log10().floor() as i64).unwrap_or(0).min(6);
    format!("{v:.digits$}").trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The frame: title, description, axes with their labels and ticks.
fn frame(text: &ChartText, x: Option<Scale>, y: Scale, body: Markup) -> Markup {
    let (title_id, desc_id) = (format!("{}-title", text.id), format!("{}-desc", text.id));
    let (x0, x1, y0, y1) = (LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP);
    html! {
        svg class="chart" id=(text.id) role="img" aria-labelledby={(title_id) " " (desc_id)}
            viewBox={"0 0 " (WIDTH) " " (HEIGHT)} width=(WIDTH) height=(HEIGHT) xmlns="http://www.w3.org/2000/svg" {
            title id=(title_id) { (text.title) }
            desc id=(desc_id) { (text.description) }
            rect x="0" y="0" width=(WIDTH) height=(HEIGHT) fill="#ffffff" {}
            text x=(WIDTH / 2.0) y="22" text-anchor="middle" font-size="15" font-weight="bold" fill="#222" { (text.title) }
            @for t in ticks(y.lo, y.hi, 5) {
                line x1=(x0) x2=(x1) y1=(y.at(t)) y2=(y.at(t)) stroke="#e4e4e4" {}
                text x=(x0 - 6.0) y=(y.at(t) + 4.0) text-anchor="end" font-size="11" fill="#333" { (number(t)) }
            }
            @if let Some(x) = x {
                @for t in ticks(x.lo, x.hi, 6) {
                    line x1=(x.at(t)) x2=(x.at(t)) y1=(y0) y2=(y0 + 5.0) stroke="#333" {}
                    text x=(x.at(t)) y=(y0 + 18.0) text-anchor="middle" font-size="11" fill="#333" { (number(t)) }
                }
            }
            (body)
            line x1=(x0) x2=(x1) y1=(y0) y2=(y0) stroke="#333" {}
            line x1=(x0) x2=(x0) y1=(y0) y2=(y1) stroke="#333" {}
            text x=((x0 + x1) / 2.0) y=(HEIGHT - 10.0) text-anchor="middle" font-size="12" fill="#222" { (text.x_label) }
            text x="16" y=((y0 + y1) / 2.0) text-anchor="middle" font-size="12" fill="#222"
                transform={"rotate(-90 16 " ((y0 + y1) / 2.0) ")"} { (text.y_label) }
        }
    }
}

/// A bar chart; whiskers show each bar's interval where it has one.
pub fn bar_chart(text: &ChartText, bars: &[Bar]) -> Markup {
    let lows = bars.iter().map(|b| b.interval.map_or(b.value, |i| i.0.min(b.value)));
    let highs = bars.iter().map(|b| b.interval.map_or(b.value, |i| i.1.max(b.value)));
    let lo = lows.fold(0.0, f64::min);
    let hi = highs.fold(0.0, f64::max) * 1.05;
    let y = Scale::new(lo, if hi > lo { hi } else { lo + 1.0 }, HEIGHT - BOTTOM, TOP);
    let slot = (WIDTH - LEFT - RIGHT) / bars.len().max(1) as f64;
    let slanted = bars.len() > 6;
    let body = html! {
        @for (i, bar) in bars.iter().enumerate() {
            @let left = LEFT + slot * i as f64;
            @let centre = left + slot / 2.0;
            @let (top, bottom) = (y.at(bar.value.max(0.0)), y.at(bar.value.min(0.0)));
            rect class="bar" x=(left + slot * 0.1) y=(top) width=(slot * 0.8) height=((bottom - top).max(0.5)) fill="#0072B2" {
                title { (bar.label) ": " (number(bar.value))
                    @if let Some((a, b)) = bar.interval { " (95%: " (number(a)) " to " (number(b)) ")" } }
            }
            @if let Some((a, b)) = bar.interval {
                line x1=(centre) x2=(centre) y1=(y.at(a)) y2=(y.at(b)) stroke="#222" stroke-width="1.5" {}
                line x1=(centre - 6.0) x2=(centre + 6.0) y1=(y.at(a)) y2=(y.at(a)) stroke="#222" {}
                line x1=(centre - 6.0) x2=(centre + 6.0) y1=(y.at(b)) y2=(y.at(b)) stroke="#222" {}
            }
            @let label_y = HEIGHT - BOTTOM + 16.0;
            @if slanted {
                text x=(centre) y=(label_y) text-anchor="end" font-size="11" fill="#333"
                    transform={"rotate(-30 " (centre) " " (label_y) ")"} { (bar.label) }
            } @else {
                text x=(centre) y=(label_y) text-anchor="middle" font-size="11" fill="#333" { (bar.label) }
            }
        }
    };
    frame(text, None, y, body)
}

/// A line chart with one line per series and a legend; `y_range` fixes the
/// y axis (else it spans the data).
pub fn line_chart(text: &ChartText, series: &[Series], y_range: Option<(f64, f64)>) -> Markup {
    let points = || series.iter().flat_map(|s| s.points.iter());
    let (x_lo, x_hi) = points().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y_lo, y_hi) = y_range.unwrap_or_else(|| {
        let (a, b) = points().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.1), b.max(p.1)));
        (a, b + (b - a).abs() * 0.05)
    });
    let x = Scale::new(if x_lo.is_finite() { x_lo } else { 0.0 }, x_hi, LEFT, WIDTH - RIGHT);
    let y = Scale::new(if y_lo.is_finite() { y_lo } else { 0.0 }, y_hi, HEIGHT - BOTTOM, TOP);
    let body = html! {
        @for (i, s) in series.iter().enumerate() {
            @let colour = PALETTE.get(i % PALETTE.len()).copied().unwrap_or("#000");
            @let path: Vec<String> = s.points.iter().map(|p| format!("{:.1},{:.1}", x.at(p.0), y.at(p.1))).collect();
            // earlier lines drawn wider, so that equal series stay visible under later ones
            @let width = 2.0 + 2.5 * series.len().saturating_sub(i + 1) as f64;
            polyline points=(path.join(" ")) fill="none" stroke=(colour) stroke-width=(width) stroke-opacity="0.85" {}
            @for p in &s.points {
                circle cx=(x.at(p.0)) cy=(y.at(p.1)) r="3.5" fill=(colour) {
                    title { (s.name) ": " (number(p.0)) ", " (number(p.1)) }
                }
            }
            @let legend_y = TOP + 4.0 + 16.0 * i as f64;
            rect x=(WIDTH - RIGHT - 220.0) y=(legend_y) width="10" height="10" fill=(colour) {}
            text x=(WIDTH - RIGHT - 205.0) y=(legend_y + 9.0) font-size="11" fill="#222" { (s.name) }
        }
    };
    frame(text, Some(x), y, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside() {
        assert_eq!(ticks(0.0, 10.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(0.0, 1.0, 4), vec![0.0, 0.5, 1.0]);
        let t = ticks(3.0, 2_700_000.0, 5);
        assert!(t.iter().all(|v| (3.0..=2_700_000.0).contains(v)), "{t:?}");
        assert_eq!(ticks(5.0, 5.0, 5), vec![5.0]);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(1200.0), "1200");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(1.23456), "1.235");
        assert_eq!(number(-2.5), "-2.5");
        assert_eq!(number(-0.0), "0");
    }

    #[test]
    fn charts_are_accessible_svg() {
        let text = ChartText { id: "c", title: "T", description: "D", x_label: "bucket", y_label: "rows" };
        let bars = [
            Bar { label: "[0, 10)".into(), value: 4.0, interval: None },
            Bar { label: "[10, +inf)".into(), value: 7.0, interval: Some((5.0, 9.0)) },
        ];
        let svg = bar_chart(&text, &bars).into_string();
        assert!(svg.starts_with("<svg"), "{svg}");
        for needle in
            ["role=\"img\"", "<title id=\"c-title\">T</title>", "<desc id=\"c-desc\">D</desc>", ">bucket<", ">rows<"]
        {
            assert!(svg.contains(needle), "{needle} missing in {svg}");
        }
        assert_eq!(svg.matches("class=\"bar\"").count(), 2);
        assert!(!svg.contains("style="), "no inline style under the CSP");
        let series = [Series { name: "a".into(), points: vec![(1.0, 0.1), (2.0, 0.5)] }];
        let svg = line_chart(&text, &series, Some((0.0, 1.0))).into_string();
        assert!(svg.contains("<polyline") && svg.contains("<circle"), "{svg}");
    }
}
