//! The table and the JSON: each figure next to its baseline, with their ratio.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    pub backend: String,
    pub subject: String,
    pub metric: String,
    pub value: f64,
    /// The same metric for the scenario's baseline, measured in this run.
    pub baseline: Option<f64>,
    pub ratio: Option<f64>,
    pub note: String,
}

#[derive(Default, Serialize)]
pub struct Report {
    pub machine: String,
    pub rows: Vec<Row>,
    pub failures: Vec<String>,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        scenario: &str,
        backend: &str,
        subject: &str,
        metric: &str,
        value: f64,
        baseline: Option<f64>,
        note: &str,
    ) {
        let ratio = baseline.filter(|b| *b != 0.0).map(|b| value / b);
        let row = Row {
            scenario: scenario.into(),
            backend: backend.into(),
            subject: subject.into(),
            metric: metric.into(),
            value,
            baseline,
            ratio,
            note: note.into(),
        };
        eprintln!(
            "   {:<8} {:<9} {:<34} {:<22} {:>12.1} {}",
            row.scenario,
            row.backend,
            row.subject,
            row.metric,
            row.value,
            row.ratio.map(|r| format!("×{r:.2} of baseline")).unwrap_or_default()
        );
        self.rows.push(row);
    }

    pub fn failed(&mut self, scenario: &str, backend: &str, error: &str) {
        self.failures.push(format!("{scenario} on {backend}: {error}"));
    }

    pub fn print(&self) {
        println!(
            "\n{:<8} {:<9} {:<34} {:<22} {:>12} {:>12} {:>8}  note",
            "scenario", "backend", "subject", "metric", "value", "baseline", "ratio"
        );
        for r in &self.rows {
            println!(
                "{:<8} {:<9} {:<34} {:<22} {:>12.1} {:>12} {:>8}  {}",
                r.scenario,
                r.backend,
                r.subject,
                r.metric,
                r.value,
                r.baseline.map(|b| format!("{b:.1}")).unwrap_or_default(),
                r.ratio.map(|x| format!("{x:.2}")).unwrap_or_default(),
                r.note
            );
        }
        for f in &self.failures {
            println!("FAILED: {f}");
        }
    }

    pub fn write_json(&self, path: &std::path::Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut report = serde_json::to_value(self)?;
        report["machine"] = serde_json::json!(format!(
            "{} cores",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ));
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
        Ok(())
    }
}

/// Requests or commands per second, and latency percentiles in milliseconds.
pub struct Stats {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub fn stats(mut latencies: Vec<std::time::Duration>, elapsed: std::time::Duration) -> Stats {
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Stats { per_second: latencies.len() as f64 / elapsed.as_secs_f64(), p50_ms: at(0.50), p99_ms: at(0.99) }
}
