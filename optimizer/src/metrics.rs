//! The run's figures as Prometheus text: a cron job has no port to scrape, so each run replaces
//! one file (`--metrics-file`, for node_exporter's textfile collector) atomically, or pushes
//! them to a Prometheus Pushgateway (`--metrics-push`, for a Kubernetes CronJob).
//! Gauges describe the last run; `<ns>_optimizer_last_run_timestamp_seconds` says when it was.

use std::path::Path;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use icefall_table::catalog::requests::RequestCount;

use crate::report::Report;
use crate::{Error, Result};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabels {
    command: String,
    table: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    command: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    command: String,
    operation: String,
    outcome: String,
}

type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// Renders the last run: its reports (one per table and command), the catalog requests it
/// made, its duration and outcome.
pub fn render(
    namespace: &str,
    command: &str,
    reports: &[Report],
    catalog_requests: &[RequestCount],
    duration: Duration,
    succeeded: bool,
) -> String {
    let mut registry = Registry::with_prefix(format!("{namespace}_optimizer"));
    // `unit: None` for counts of the thing the name says (`commits`).
    let per_table = |registry: &mut Registry, name: &str, help: &str, unit: Option<Unit>, value: fn(&Report) -> u64| {
        let family = Family::<TableLabels, Gauge>::default();
        for r in reports.iter().filter(|r| !r.dry_run) {
            let labels = TableLabels { command: r.command.clone(), table: r.table.clone() };
            family.get_or_create(&labels).inc_by(value(r) as i64);
        }
        match unit {
            Some(unit) => registry.register_with_unit(name, help, unit, family),
            None => registry.register(name, help, family),
        }
    };
    let files = || Some(Unit::Other("files".into()));
    per_table(&mut registry, "rewritten", "Data files compacted away in the last run", files(), |r| r.files_in);
    per_table(
        &mut registry,
        "rewritten",
        "Bytes of data files compacted away in the last run",
        Some(Unit::Bytes),
        |r| r.bytes_in,
    );
    per_table(&mut registry, "written", "Data files written by compaction in the last run", files(), |r| r.files_out);
    per_table(&mut registry, "written", "Bytes written by compaction in the last run", Some(Unit::Bytes), |r| {
        r.bytes_out
    });
    per_table(
        &mut registry,
        "expired",
        "Snapshots expired in the last run",
        Some(Unit::Other("snapshots".into())),
        |r| r.snapshots_expired,
    );
    per_table(
        &mut registry,
        "deleted",
        "Files deleted in the last run (orphans for remove-orphans, unreachable files for expire-snapshots)",
        files(),
        |r| r.files_deleted,
    );
    per_table(
        &mut registry,
        "failed",
        "Compaction groups that failed in the last run",
        Some(Unit::Other("groups".into())),
        |r| r.groups_failed,
    );
    per_table(&mut registry, "commits", "Commits made in the last run", None, |r| r.commits);
    let (requests, request_seconds) =
        (Family::<RequestLabels, Gauge>::default(), Family::<RequestLabels, FloatGauge>::default());
    for r in catalog_requests {
        let labels =
            RequestLabels { command: command.to_string(), operation: r.operation.into(), outcome: r.outcome.into() };
        requests.get_or_create(&labels).set(r.count as i64);
        request_seconds.get_or_create(&labels).set(r.seconds);
    }
    registry.register(
        "catalog_requests",
        "Catalog requests of the last run by operation and outcome (ok, not_found, conflict, error, cancelled)",
        requests,
    );
    registry.register_with_unit(
        "catalog_request",
        "Time the last run spent in catalog requests, by operation and outcome",
        Unit::Seconds,
        request_seconds,
    );
    let labels = CommandLabels { command: command.to_string() };
    let gauge = |value: f64| {
        let family = Family::<CommandLabels, FloatGauge>::default();
        family.get_or_create(&labels).set(value);
        family
    };
    registry.register_with_unit(
        "run_duration",
        "Duration of the last run",
        Unit::Seconds,
        gauge(duration.as_secs_f64()),
    );
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1e3;
    registry.register_with_unit("last_run_timestamp", "When the last run ended, Unix time", Unit::Seconds, gauge(now));
    registry.register(
        "last_run_success",
        "1 if the last run finished without failures, else 0",
        gauge(if succeeded { 1.0 } else { 0.0 }),
    );
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// Replaces `path` atomically (write beside it, then rename), so the collector never reads half.
pub fn write_textfile(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension(format!("prom.tmp.{}", std::process::id()));
    let fail = |e: std::io::Error| {
        Error::Config(format!("--metrics-file {}: cannot write it ({e}); pick a writable path", path.display()))
    };
    std::fs::write(&tmp, text).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

/// Replaces the job's metrics on a Pushgateway (`PUT <url>/metrics/job/<job>`), so figures of
/// an earlier run that this one lacks (a table no longer maintained) do not linger.
pub async fn push(url: &str, job: &str, text: &str) -> Result<()> {
    let target = format!("{}/metrics/job/{job}", url.trim_end_matches('/'));
    let fail = |e: String| {
        Error::Config(format!(
            "--metrics-push {url}: {e}; check the Pushgateway's address (e.g. http://pushgateway:9091)"
        ))
    };
    let response = reqwest::Client::new()
        .put(&target)
        .header(reqwest::header::CONTENT_TYPE, "text/plain; version=0.0.4")
        .timeout(std::time::Duration::from_secs(30))
        .body(text.to_string())
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(fail(format!("{status}: {}", body.trim())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_renders_per_table_figures_and_its_outcome() {
        let mut compact = Report::new("compact", "db.events", false);
        compact.files_in = 40;
        compact.bytes_in = 4_000;
        compact.files_out = 2;
        let mut dry = Report::new("remove-orphans", "db.events", true);
        dry.files_deleted = 7;
        let requests = [RequestCount { operation: "commit", outcome: "conflict", count: 3, seconds: 0.25 }];
        let text = render("icefall", "run", &[compact, dry], &requests, Duration::from_millis(1500), true);
        assert!(
            text.contains(r#"icefall_optimizer_rewritten_files{command="compact",table="db.events"} 40"#),
            "{text}"
        );
        assert!(
            text.contains(r#"icefall_optimizer_rewritten_bytes{command="compact",table="db.events"} 4000"#),
            "{text}"
        );
        assert!(text.contains(r#"icefall_optimizer_written_files{command="compact",table="db.events"} 2"#), "{text}");
        assert!(!text.contains(r#"command="remove-orphans""#), "a dry run deletes nothing and reports nothing: {text}");
        assert!(text.contains(r#"icefall_optimizer_run_duration_seconds{command="run"} 1.5"#), "{text}");
        assert!(text.contains(r#"icefall_optimizer_last_run_success{command="run"} 1"#), "{text}");
        assert!(
            text.contains(
                r#"icefall_optimizer_catalog_requests{command="run",operation="commit",outcome="conflict"} 3"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"icefall_optimizer_catalog_request_seconds{command="run",operation="commit",outcome="conflict"} 0.25"#
            ),
            "{text}"
        );
    }
}
