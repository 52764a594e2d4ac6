//! What mp1d counts about itself, and its rendering in the Prometheus text
//! exposition format (`GET /metrics`). No I/O: the loop bumps counters and
//! passes in the gauges it reads from the client table.

use std::fmt::Write;
use std::time::Duration;

/// Upper bounds of the loop-turn histogram buckets, in seconds.
const TURN_BUCKETS: [f64; 7] = [1e-5, 1e-4, 1e-3, 5e-3, 1e-2, 0.1, 1.0];

/// Counters, only ever increased.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    pub accepted: u64,
    pub refused_full: u64,
    pub logins: u64,
    pub chats: u64,
    pub whispers: u64,
    /// Messages queued for a client (one per recipient).
    pub deliveries: u64,
    pub bytes_written: u64,
    pub cut_slow: u64,
    pub cut_budget: u64,
    pub cut_unparsable: u64,
    pub cut_oversize: u64,
    pub cut_timeout: u64,
}

impl std::fmt::Display for Counters {
    /// The line mp1d logs at exit.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} connections accepted, {} refused (server full); cut off: {} too slow, \
             {} over-size, {} unparsable, {} timed out",
            self.accepted,
            self.refused_full,
            self.cut_slow + self.cut_budget,
            self.cut_oversize,
            self.cut_unparsable,
            self.cut_timeout
        )
    }
}

/// Values read at the moment of the scrape.
#[derive(Debug, Default, Clone)]
pub struct Gauges {
    pub tcp_connected: usize,
    pub tcp_logged_in: usize,
    pub ws_connected: usize,
    pub ws_logged_in: usize,
    pub lan_peers: usize,
    pub output_queue_bytes: usize,
    /// In a cluster: whether Redis is reachable, and the users of every
    /// node.
    pub cluster: Option<(bool, usize)>,
}

/// How long loop turns took (from waking to going back to sleep).
#[derive(Debug, Default, Clone)]
pub struct TurnHistogram {
    /// Counts per bucket of [`TURN_BUCKETS`], and one for +Inf.
    buckets: [u64; TURN_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl TurnHistogram {
    pub fn record(&mut self, took: Duration) {
        let s = took.as_secs_f64();
        let i = TURN_BUCKETS
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(TURN_BUCKETS.len());
        self.buckets[i] += 1;
        self.sum += s;
        self.count += 1;
    }
}

/// The exposition text.
pub fn render(c: &Counters, g: &Gauges, turns: &TurnHistogram) -> String {
    let mut out = String::with_capacity(2048);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    metric(
        "mp1_clients",
        "gauge",
        "Clients connected, and logged in, by transport.",
        &[
            (
                "{transport=\"tcp\",state=\"connected\"}",
                g.tcp_connected as f64,
            ),
            (
                "{transport=\"tcp\",state=\"logged_in\"}",
                g.tcp_logged_in as f64,
            ),
            (
                "{transport=\"websocket\",state=\"connected\"}",
                g.ws_connected as f64,
            ),
            (
                "{transport=\"websocket\",state=\"logged_in\"}",
                g.ws_logged_in as f64,
            ),
        ],
    );
    metric(
        "mp1_lan_peers",
        "gauge",
        "LAN peers known to the bridge.",
        &[("", g.lan_peers as f64)],
    );
    metric(
        "mp1_output_queue_bytes",
        "gauge",
        "Bytes owed to clients: in the server's queues, and in the kernel's for clients it refused more.",
        &[("", g.output_queue_bytes as f64)],
    );
    if let Some((up, users)) = g.cluster {
        metric(
            "mp1_cluster_redis_up",
            "gauge",
            "1 while this node is joined to the cluster through Redis, 0 while Redis cannot be reached.",
            &[("", if up { 1.0 } else { 0.0 })],
        );
        metric(
            "mp1_cluster_users",
            "gauge",
            "Users logged in on every node of the cluster, as this node sees them.",
            &[("", users as f64)],
        );
    }
    let counters: [(&str, &str, u64); 7] = [
        ("mp1_connections_total", "Connections accepted.", c.accepted),
        (
            "mp1_refused_connections_total",
            "Connections refused because the server was full.",
            c.refused_full,
        ),
        ("mp1_logins_total", "Successful logins.", c.logins),
        ("mp1_chats_total", "Chats broadcast.", c.chats),
        ("mp1_whispers_total", "Whispers delivered.", c.whispers),
        (
            "mp1_deliveries_total",
            "Messages queued for a client, one per recipient.",
            c.deliveries,
        ),
        (
            "mp1_bytes_written_total",
            "Bytes written to clients.",
            c.bytes_written,
        ),
    ];
    for (name, help, v) in counters {
        metric(name, "counter", help, &[("", v as f64)]);
    }
    metric(
        "mp1_cuts_total",
        "counter",
        "Connections closed by the server, by reason.",
        &[
            ("{reason=\"slow_consumer\"}", c.cut_slow as f64),
            ("{reason=\"output_budget\"}", c.cut_budget as f64),
            ("{reason=\"unparsable\"}", c.cut_unparsable as f64),
            ("{reason=\"oversize\"}", c.cut_oversize as f64),
            ("{reason=\"timeout\"}", c.cut_timeout as f64),
        ],
    );
    let _ = writeln!(
        out,
        "# HELP mp1_loop_turn_seconds Time from waking to sleeping again."
    );
    let _ = writeln!(out, "# TYPE mp1_loop_turn_seconds histogram");
    let mut cumulative = 0;
    for (i, le) in TURN_BUCKETS.iter().enumerate() {
        cumulative += turns.buckets[i];
        let _ = writeln!(
            out,
            "mp1_loop_turn_seconds_bucket{{le=\"{le}\"}} {cumulative}"
        );
    }
    cumulative += turns.buckets[TURN_BUCKETS.len()];
    let _ = writeln!(
        out,
        "mp1_loop_turn_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
    );
    let _ = writeln!(out, "mp1_loop_turn_seconds_sum {}", turns.sum);
    let _ = writeln!(out, "mp1_loop_turn_seconds_count {}", turns.count);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_lines() {
        let c = Counters {
            logins: 3,
            cut_slow: 1,
            ..Counters::default()
        };
        let g = Gauges {
            tcp_connected: 4,
            tcp_logged_in: 3,
            ..Gauges::default()
        };
        let mut t = TurnHistogram::default();
        t.record(Duration::from_micros(50));
        t.record(Duration::from_secs(5));
        let text = render(&c, &g, &t);
        for line in [
            "# TYPE mp1_clients gauge",
            "mp1_clients{transport=\"tcp\",state=\"connected\"} 4",
            "mp1_logins_total 3",
            "mp1_cuts_total{reason=\"slow_consumer\"} 1",
            "mp1_loop_turn_seconds_bucket{le=\"0.00001\"} 0",
            "mp1_loop_turn_seconds_bucket{le=\"0.0001\"} 1",
            "mp1_loop_turn_seconds_bucket{le=\"1\"} 1",
            "mp1_loop_turn_seconds_bucket{le=\"+Inf\"} 2",
            "mp1_loop_turn_seconds_count 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(!text.contains("mp1_cluster"), "not in a cluster");
        let g = Gauges {
            cluster: Some((false, 7)),
            ..g
        };
        let text = render(&c, &g, &t);
        for line in ["mp1_cluster_redis_up 0", "mp1_cluster_users 7"] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
