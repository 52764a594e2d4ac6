//! What a run prints and writes: the human summary, `--json`, `.hgrm`
//! percentile distributions and an SVG latency plot.

use crate::run::Outcome;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::fmt::Write as _;

fn pcts(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return Value::Null;
    }
    json!({
        "p50": h.value_at_quantile(0.50),
        "p90": h.value_at_quantile(0.90),
        "p99": h.value_at_quantile(0.99),
        "p999": h.value_at_quantile(0.999),
        "max": h.max(),
        "count": h.len(),
    })
}

pub fn to_json(label: &str, o: &Outcome) -> Value {
    let u = &o.usage;
    let deliveries = o.delivery_us.len() as f64;
    let per = |cpu: Option<f64>| {
        cpu.filter(|_| deliveries > 0.0)
            .map(|c| c * 1e6 / deliveries)
    };
    json!({
        "label": label,
        "transport": o.transport,
        "clients": o.clients,
        "peers": o.peers,
        "sent": o.sent,
        "connect_s": o.connect_s,
        "login_server_cpu_s": o.login_cpu_s,
        "login_us": pcts(&o.login_us),
        "delivery_us": pcts(&o.delivery_us),
        "fanout_us": pcts(&o.fanout_us),
        "peer_delivery_us": pcts(&o.peer_delivery_us),
        "deliveries_per_s": o.deliveries_per_s,
        "offered_deliveries_per_s": o.offered_per_s,
        "measure_s": o.measure_s,
        "tcp": {"expected": o.tcp.expected, "received": o.tcp.received, "lost": o.tcp.lost,
                "duplicates": o.tcp.duplicates, "reordered": o.tcp.reordered},
        "udp": {"expected": o.udp.expected, "received": o.udp.received, "lost": o.udp.lost,
                "duplicates": o.udp.duplicates, "reordered": o.udp.reordered},
        "msg_timeouts": o.timeouts,
        "cpu_window_s": u.wall_s,
        "server_cpu_s": u.server_cpu_s,
        "server_cpu_us_per_delivery": per(u.server_cpu_s),
        "server_rss_kib": u.server_rss_kib,
        "server_cpu_each": u.server_cpu_each.iter().map(|(pid, cpu)| json!({
            "pid": pid, "cpu_s": cpu, "us_per_delivery": per(Some(*cpu)),
        })).collect::<Vec<_>>(),
        "delivery_by_target": o.delivery_by_target.iter().map(|(t, h)| json!({
            "target": t.to_string(), "delivery_us": pcts(h),
        })).collect::<Vec<_>>(),
        "loadgen_cpu_s": u.loadgen_cpu_s,
        "loadgen_cpu_us_per_delivery": per(Some(u.loadgen_cpu_s)),
        "loadgen_busy": if u.wall_s > 0.0 { u.loadgen_cpu_s / u.wall_s } else { 0.0 },
    })
}

fn us(v: &Value, k: &str) -> String {
    match v.get(k).and_then(Value::as_u64) {
        Some(x) if x >= 10_000 => format!("{:.1} ms", x as f64 / 1000.0),
        Some(x) => format!("{x} µs"),
        None => "-".into(),
    }
}

pub fn summary(j: &Value) -> String {
    let mut s = String::new();
    let d = &j["delivery_us"];
    let f = &j["fanout_us"];
    let _ = writeln!(
        s,
        "{} clients{}: {} chats sent, {:.0} deliveries/s{}",
        j["clients"],
        if j["peers"].as_u64().unwrap_or(0) > 0 {
            format!(" + {} peers", j["peers"])
        } else {
            String::new()
        },
        j["sent"],
        j["deliveries_per_s"].as_f64().unwrap_or(0.0),
        j["offered_deliveries_per_s"]
            .as_f64()
            .map(|o| format!(" (offered {o:.0}/s)"))
            .unwrap_or_default(),
    );
    let _ = writeln!(
        s,
        "  delivery latency  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        us(d, "p50"),
        us(d, "p90"),
        us(d, "p99"),
        us(d, "p999"),
        us(d, "max")
    );
    for t in j["delivery_by_target"].as_array().into_iter().flatten() {
        let d = &t["delivery_us"];
        let _ = writeln!(
            s,
            "    on {:<21} p50 {}  p99 {}  ({} deliveries)",
            t["target"].as_str().unwrap_or(""),
            us(d, "p50"),
            us(d, "p99"),
            d["count"]
        );
    }
    if !f.is_null() {
        let _ = writeln!(
            s,
            "  fan-out done      p50 {}  p99 {}  max {}",
            us(f, "p50"),
            us(f, "p99"),
            us(f, "max")
        );
    }
    let l = &j["login_us"];
    let _ = writeln!(
        s,
        "  connect+login     p50 {}  p99 {}  max {}  (all in {:.2} s)",
        us(l, "p50"),
        us(l, "p99"),
        us(l, "max"),
        j["connect_s"].as_f64().unwrap_or(0.0)
    );
    if let Some(cpu) = j["login_server_cpu_s"].as_f64() {
        let _ = writeln!(s, "  login storm       server CPU {cpu:.2} s");
    }
    // `tcp` holds the clients' deliveries, whatever carried them.
    let t = &j["tcp"];
    let _ = writeln!(
        s,
        "  {}: {} of {} delivered, lost {}, duplicated {}, reordered {}",
        transport_name(j["transport"].as_str().unwrap_or("tcp")),
        t["received"],
        t["expected"],
        t["lost"],
        t["duplicates"],
        t["reordered"]
    );
    if j["peers"].as_u64().unwrap_or(0) > 0 {
        let u = &j["udp"];
        let p = &j["peer_delivery_us"];
        let _ = writeln!(
            s,
            "  UDP peers: {} of {} delivered, lost {}, duplicated {}; latency p50 {} p99 {}",
            u["received"],
            u["expected"],
            u["lost"],
            u["duplicates"],
            us(p, "p50"),
            us(p, "p99")
        );
    }
    if let Some(cpu) = j["server_cpu_us_per_delivery"].as_f64() {
        let _ = writeln!(
            s,
            "  server CPU {:.2} µs/delivery, RSS {} KiB",
            cpu, j["server_rss_kib"]
        );
    }
    let each = j["server_cpu_each"]
        .as_array()
        .map_or(&[][..], |v| v.as_slice());
    if each.len() > 1 {
        for e in each {
            let _ = writeln!(
                s,
                "    pid {:<8} {:.2} µs/delivery",
                e["pid"],
                e["us_per_delivery"].as_f64().unwrap_or(0.0)
            );
        }
    }
    let _ = writeln!(
        s,
        "  loadgen CPU {:.2} µs/delivery, busy {:.0}%",
        j["loadgen_cpu_us_per_delivery"].as_f64().unwrap_or(0.0),
        j["loadgen_busy"].as_f64().unwrap_or(0.0) * 100.0
    );
    s
}

/// What `--transport`'s value is called in what loadgen prints.
pub fn transport_name(option: &str) -> &'static str {
    match option {
        "ws" => "WebSocket",
        _ => "TCP",
    }
}

/// The sweep table: one row per size.
pub fn sweep_table(rows: &[Value]) -> String {
    let mut s = String::from(
        "| clients | deliveries/s | p50 | p99 | p99.9 | fan-out p99 | lost | server µs/delivery |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for j in rows {
        let d = &j["delivery_us"];
        let _ = writeln!(
            s,
            "| {} | {:.0} | {} | {} | {} | {} | {} | {} |",
            j["clients"],
            j["deliveries_per_s"].as_f64().unwrap_or(0.0),
            us(d, "p50"),
            us(d, "p99"),
            us(d, "p999"),
            us(&j["fanout_us"], "p99"),
            j["tcp"]["lost"],
            j["server_cpu_us_per_delivery"]
                .as_f64()
                .map(|v| format!("{v:.2}"))
                .unwrap_or("-".into()),
        );
    }
    s
}

/// HdrHistogram's percentile distribution text (`.hgrm`), values in µs.
pub fn hgrm(h: &Histogram<u64>) -> String {
    let mut s = String::from("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let inv = if q < 1.0 {
            format!("{:.2}", 1.0 / (1.0 - q))
        } else {
            "inf".into()
        };
        let _ = writeln!(
            s,
            "{:12.3} {:14.12} {:10} {:>14}",
            v.value_iterated_to() as f64,
            q,
            total,
            inv
        );
    }
    let _ = writeln!(
        s,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]\n#[Max     = {:12.3}, Total count    = {:12}]",
        h.mean(),
        h.stdev(),
        h.max() as f64,
        h.len()
    );
    s
}

/// An SVG of latency against percentile (log scale of 1/(1-p)), one curve
/// per labelled histogram.
pub fn percentile_svg(curves: &[(String, &Histogram<u64>)]) -> String {
    let (w, h, m) = (720.0, 420.0, 60.0);
    let max_x = 5.0; // up to 99.999 %
    let max_us = curves
        .iter()
        .map(|(_, hist)| hist.max())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let x = |q: f64| m + (-(1.0 - q).max(1e-5).log10()).min(max_x) / max_x * (w - 2.0 * m);
    let y = |v: f64| h - m - (v / max_us) * (h - 2.0 * m);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let _ = writeln!(s, "<text x=\"{m}\" y=\"24\" font-size=\"15\">mp1 fan-out delivery latency by percentile</text>");
    for (i, label) in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        .iter()
        .enumerate()
    {
        let gx = m + i as f64 / max_x * (w - 2.0 * m);
        let _ = writeln!(s, "<line x1=\"{gx}\" y1=\"{m}\" x2=\"{gx}\" y2=\"{}\" stroke=\"#ddd\"/><text x=\"{gx}\" y=\"{}\" text-anchor=\"middle\">{label}</text>", h - m, h - m + 16.0);
    }
    for i in 0..=4 {
        let v = max_us * i as f64 / 4.0;
        let gy = y(v);
        let _ = writeln!(s, "<line x1=\"{m}\" y1=\"{gy}\" x2=\"{}\" y2=\"{gy}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>", w - m, m - 6.0, gy + 4.0, fmt_us(v));
    }
    let colors = [
        "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
    ];
    for (i, (label, hist)) in curves.iter().enumerate() {
        let color = colors[i % colors.len()];
        let pts: Vec<String> = hist
            .iter_quantiles(5)
            .map(|v| {
                format!(
                    "{:.1},{:.1}",
                    x(v.quantile_iterated_to()),
                    y(v.value_iterated_to() as f64)
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            pts.join(" ")
        );
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" fill=\"{color}\">{label}</text>",
            m + 10.0,
            m + 16.0 + 16.0 * i as f64
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">percentile</text></svg>",
        w / 2.0,
        h - 12.0
    );
    s
}

/// The sweep plot's colours for p50 and p99.
const P50: &str = "#1f77b4";
const P99: &str = "#d62728";

/// The baselines of a point's p50 and p99 labels, given where its two
/// values are drawn: each just above its value, the p99 one a line higher
/// still if it would otherwise overlap the p50 one (12-pixel text).
fn label_ys(y50: f64, y99: f64) -> (f64, f64) {
    let line = 14.0;
    let p50 = y50 - 5.0;
    (p50, (y99 - 5.0).min(p50 - line))
}

/// An SVG of p50/p99 latency against the number of clients (a sweep).
pub fn sweep_svg(rows: &[Value]) -> String {
    let (w, h, m) = (720.0, 420.0, 60.0);
    let pts = |k: &str| -> Vec<(f64, f64)> {
        rows.iter()
            .filter_map(|r| Some((r["clients"].as_f64()?, r["delivery_us"][k].as_f64()?)))
            .collect()
    };
    let (p50, p99) = (pts("p50"), pts("p99"));
    let max_c = p99.iter().map(|p| p.0).fold(1.0, f64::max);
    let max_v = p99.iter().map(|p| p.1).fold(1.0, f64::max);
    // Room on the right for the last point's labels.
    let x = |c: f64| m + c / max_c * (w - 3.5 * m);
    let y = |v: f64| h - m - v / max_v * (h - 2.0 * m);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{m}\" y=\"24\" font-size=\"15\">mp1 delivery latency against clients</text>\n"
    );
    for i in 0..=4 {
        let v = max_v * i as f64 / 4.0;
        let _ = writeln!(s, "<line x1=\"{m}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"#eee\"/><text x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\">{4}</text>", y(v), x(max_c), m - 6.0, y(v) + 4.0, fmt_us(v));
    }
    for (series, color) in [(&p50, P50), (&p99, P99)] {
        let line: Vec<String> = series
            .iter()
            .map(|(c, v)| format!("{:.1},{:.1}", x(*c), y(*v)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            line.join(" ")
        );
        for (c, v) in series.iter() {
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"/>",
                x(*c),
                y(*v)
            );
        }
    }
    // Each point's two labels, the p99 one kept clear above the p50 one:
    // where the two are close (few clients) they would print over each
    // other.
    for ((c, v50), (_, v99)) in p50.iter().zip(&p99) {
        let (y50, y99) = label_ys(y(*v50), y(*v99));
        for (label, v, at, color) in [("p50", v50, y50, P50), ("p99", v99, y99, P99)] {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{at:.1}\" fill=\"{color}\">{label} {}</text>",
                x(*c) + 5.0,
                fmt_us(*v)
            );
        }
    }
    for (c, _) in &p50 {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{c}</text>",
            x(*c),
            h - m + 16.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">clients</text>",
        w / 2.0,
        h - 12.0
    );
    let _ = writeln!(
        s,
        "<line x1=\"{m}\" y1=\"{}\" x2=\"{:.1}\" y2=\"{}\" stroke=\"#999\"/></svg>",
        h - m,
        x(max_c),
        h - m
    );
    s
}

fn fmt_us(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0} ms", v / 1000.0)
    } else {
        format!("{v:.0} µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The baseline of the `<text>` that says `label`.
    fn text_y(svg: &str, label: &str) -> f64 {
        let line = svg
            .lines()
            .find(|l| l.contains(&format!(">{label}</text>")))
            .unwrap_or_else(|| panic!("no {label} in {svg}"));
        let y = line.split(" y=\"").nth(1).unwrap();
        y[..y.find('"').unwrap()].parse().unwrap()
    }

    #[test]
    fn sweep_labels_do_not_overlap_where_p50_and_p99_are_close() {
        // The closed-loop sweep in BENCHMARKS.md: at 100 clients p50 and
        // p99 are 8 pixels apart on the plot.
        let row = |clients, p50, p99| {
            json!({"clients": clients,
            "delivery_us": {"p50": p50, "p99": p99}})
        };
        let rows = [
            row(100, 309, 1556),
            row(1000, 3351, 8647),
            row(5000, 18627, 42687),
        ];
        let svg = sweep_svg(&rows);
        for (p50, p99) in [("p50 309 µs", "p99 1556 µs"), ("p50 19 ms", "p99 43 ms")] {
            let (y50, y99) = (text_y(&svg, p50), text_y(&svg, p99));
            assert!(y50 - y99 >= 13.0, "{p50} at {y50}, {p99} at {y99}");
        }
    }

    #[test]
    fn the_summary_names_the_transport_used() {
        let counts = json!({"received": 9, "expected": 9, "lost": 0,
                            "duplicates": 0, "reordered": 0});
        let ws = summary(&json!({"transport": "ws", "clients": 10, "tcp": counts}));
        assert!(ws.contains("  WebSocket: 9 of 9 delivered"), "{ws}");
        assert!(!ws.contains("TCP"), "{ws}");
        let tcp = summary(&json!({"transport": "tcp", "clients": 10, "tcp": counts}));
        assert!(tcp.contains("  TCP: 9 of 9 delivered"), "{tcp}");
    }
}
