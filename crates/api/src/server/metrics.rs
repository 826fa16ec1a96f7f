//! `GET /metrics`: what an operator's Prometheus scrapes, in its text format (0.0.4). The
//! figures `/healthz` shows (the log's head, how far this node's read models are behind, open
//! WebSockets, shared subscriptions), the appends and the transactions group commit made of
//! them, and how long GraphQL requests over HTTP take. A handful of counters: the format is
//! simple enough that a metrics library would be more code to carry than this.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ServerState;

/// Upper bounds of the request-duration buckets, in seconds.
const BOUNDS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// How long GraphQL requests over HTTP took, from arrival to the answer's head (the time a
/// client waits for an answer; a streamed body, as `/graphql/stream`'s, is not counted), and
/// how they were answered.
#[derive(Debug, Default)]
pub struct RequestTimes {
    /// Requests per bucket, not yet cumulative; the last is past every bound.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    micros: AtomicU64,
    /// Answers by status class: 2xx/3xx, 4xx, 5xx.
    classes: [AtomicU64; 3],
}

impl RequestTimes {
    fn record(&self, seconds: f64, status: StatusCode) {
        let bucket = BOUNDS.iter().position(|bound| seconds <= *bound).unwrap_or(BOUNDS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.micros.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        let class = match status.as_u16() {
            500.. => 2,
            400..=499 => 1,
            _ => 0,
        };
        self.classes[class].fetch_add(1, Ordering::Relaxed);
    }
}

/// Times a GraphQL request over HTTP; the playground's page, served on the same path, is no
/// GraphQL answer and is not counted.
pub(super) async fn timed(State(state): State<ServerState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    let answered =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().ends_with(b"json"));
    if answered || response.status() == StatusCode::NOT_MODIFIED {
        state.request_times.record(started.elapsed().as_secs_f64(), response.status());
    }
    response
}

pub(super) async fn metrics(State(state): State<ServerState>) -> Response {
    let v = match state.vitals().await {
        Ok(vitals) => vitals,
        Err(err) => {
            tracing::warn!(error = %err, "metrics: the database does not answer");
            return (StatusCode::SERVICE_UNAVAILABLE, "the database does not answer\n").into_response();
        }
    };
    let mut out = String::with_capacity(4096);
    let (transactions, appends) = state.app.store.group_commit_stats();
    let gauges: [(&str, &str, f64); 8] = [
        ("doetank_log_head", "The position of the log's last event.", v.head as f64),
        (
            "doetank_read_models_position",
            "The log position this node's read models include.",
            v.projected as f64,
        ),
        (
            "doetank_read_models_behind",
            "Events of the log this node's read models have yet to take in.",
            v.behind() as f64,
        ),
        ("doetank_websockets_open", "Open WebSockets.", v.web_sockets as f64),
        (
            "doetank_event_streams_open",
            "Open HTTP streams (server-sent events, multipart).",
            v.event_streams as f64,
        ),
        (
            "doetank_shared_subscription_executions",
            "Executions shared by live subscribers.",
            v.shared.executions as f64,
        ),
        (
            "doetank_shared_subscription_subscribers",
            "Live subscribers of shared executions.",
            v.shared.subscribers as f64,
        ),
        (
            "doetank_subscriptions_replaying",
            "Subscribers that started after a cursor, replaying on their own before they take a seat.",
            v.replaying as f64,
        ),
    ];
    let replays = crate::history::network_replays().counts();
    let replay_gauges: [(&str, &str, f64); 4] = [
        (
            "doetank_network_replays_limit",
            "Whole-network replays (statistics asOf) this node runs at once.",
            replays.limit as f64,
        ),
        ("doetank_network_replays_running", "Whole-network replays running.", replays.running as f64),
        (
            "doetank_network_replays_waiting",
            "Whole-network replays waiting for their turn.",
            replays.waiting as f64,
        ),
        (
            "doetank_network_replays_most_at_once",
            "The most whole-network replays that ran at once since the node started.",
            replays.most_at_once as f64,
        ),
    ];
    for (name, help, value) in gauges.into_iter().chain(replay_gauges) {
        metric(&mut out, name, help, "gauge", &[("", value)]);
    }
    let counters: [(&str, &str, u64); 4] = [
        (
            "doetank_network_replays_total",
            "Whole-network replays this node began (statistics asOf before the log's newest event).",
            replays.total,
        ),
        (
            "doetank_appends_total",
            "Appends this node wrote (or found written, for a repeated command id).",
            appends,
        ),
        (
            "doetank_append_transactions_total",
            "Transactions group commit wrote those appends in.",
            transactions,
        ),
        (
            "doetank_inline_reads_finished_in_place_total",
            "Reads begun in a request's thread on a SQLite file that ran long (a page whose filters no index serves) and were finished in place of the async worker.",
            state.app.store.inline_reads_finished_in_place(),
        ),
    ];
    for (name, help, value) in counters {
        metric(&mut out, name, help, "counter", &[("", value as f64)]);
    }
    let times = &state.request_times;
    let classes: Vec<(String, f64)> = ["2xx", "4xx", "5xx"]
        .iter()
        .zip(&times.classes)
        .map(|(class, n)| (format!("{{class=\"{class}\"}}"), n.load(Ordering::Relaxed) as f64))
        .collect();
    let classes: Vec<(&str, f64)> = classes.iter().map(|(label, n)| (label.as_str(), *n)).collect();
    metric(
        &mut out,
        "doetank_graphql_responses_total",
        "GraphQL answers over HTTP by status class.",
        "counter",
        &classes,
    );
    let errors: Vec<(String, f64)> = crate::graphql::errors::errors_answered()
        .into_iter()
        .map(|((code, rule), n)| {
            (format!("{{code=\"{}\",rule=\"{}\"}}", label(&code), label(&rule)), n as f64)
        })
        .collect();
    let errors: Vec<(&str, f64)> = errors.iter().map(|(labels, n)| (labels.as_str(), *n)).collect();
    metric(
        &mut out,
        "doetank_graphql_errors_total",
        "GraphQL errors answered (over HTTP, server-sent events and WebSockets), by extensions.code and, for a business rule, the rule.",
        "counter",
        &errors,
    );
    histogram(&mut out, times);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}

/// `value` as a label value in the text format: backslash, quote and line break escaped.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// One metric: its help, its type and its samples (label set, value).
fn metric(out: &mut String, name: &str, help: &str, kind: &str, samples: &[(&str, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

fn histogram(out: &mut String, times: &RequestTimes) {
    let name = "doetank_graphql_request_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} How long GraphQL requests over HTTP took, to the answer's head.\n# TYPE {name} histogram"
    );
    let mut cumulative = 0;
    for (i, bucket) in times.buckets.iter().enumerate() {
        cumulative += bucket.load(Ordering::Relaxed);
        match BOUNDS.get(i) {
            Some(bound) => {
                let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
            }
            None => {
                let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
            }
        }
    }
    let sum = times.micros.load(Ordering::Relaxed) as f64 / 1e6;
    let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_is_cumulative_and_counts_every_request() {
        let times = RequestTimes::default();
        for (seconds, status) in [
            (0.0001, StatusCode::OK),
            (0.003, StatusCode::OK),
            (0.003, StatusCode::BAD_REQUEST),
            (9.0, StatusCode::INTERNAL_SERVER_ERROR),
        ] {
            times.record(seconds, status);
        }
        let mut out = String::new();
        histogram(&mut out, &times);
        let bucket = |le: &str| {
            let prefix = format!("doetank_graphql_request_duration_seconds_bucket{{le=\"{le}\"}} ");
            out.lines().find_map(|l| l.strip_prefix(prefix.as_str())).map(str::to_string)
        };
        assert_eq!(bucket("0.0005").as_deref(), Some("1"), "{out}");
        assert_eq!(bucket("0.0025").as_deref(), Some("1"));
        assert_eq!(bucket("0.005").as_deref(), Some("3"));
        assert_eq!(bucket("2.5").as_deref(), Some("3"));
        assert_eq!(bucket("+Inf").as_deref(), Some("4"));
        assert!(out.contains("doetank_graphql_request_duration_seconds_count 4\n"), "{out}");
        assert!(out.contains("doetank_graphql_request_duration_seconds_sum 9.0061\n"), "{out}");
        let classes: Vec<u64> = times.classes.iter().map(|n| n.load(Ordering::Relaxed)).collect();
        assert_eq!(classes, [2, 1, 1]);
    }
}
