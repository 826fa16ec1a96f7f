//! The table and the JSON: each figure next to its baseline, with their ratio, and whether it
//! reaches the target where it has one.

use serde::Serialize;

/// A target a figure is held to, as the benchmark issue sets them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", content = "threshold", rename_all = "snake_case")]
pub enum Target {
    /// The figure's ratio to its baseline is at least this.
    RatioAtLeast(f64),
    /// The figure itself is at least this.
    ValueAtLeast(f64),
    /// The figure itself is below this.
    ValueBelow(f64),
}

impl Target {
    fn met_by(self, value: f64, ratio: Option<f64>) -> bool {
        match self {
            // A ratio the run could not measure (no baseline, or a zero one) reaches nothing.
            Target::RatioAtLeast(at_least) => ratio.is_some_and(|r| r >= at_least),
            Target::ValueAtLeast(at_least) => value >= at_least,
            Target::ValueBelow(below) => value < below,
        }
    }

    /// The figure the target looks at, beside what it asks: `×0.26 ≥ ×0.5`, `22.3 < 10`; a
    /// figure held to a value says what its baseline reached too, since a target the baseline
    /// itself misses (a p99 on a saturated machine) is the machine's limit as much as ours.
    fn verdict_text(self, row: &Row) -> String {
        let against = |text: String| match row.baseline {
            Some(baseline) => format!("{text} (baseline {baseline:.1})"),
            None => text,
        };
        match self {
            Target::RatioAtLeast(at_least) => match row.ratio {
                Some(r) => format!("×{r:.2} ≥ ×{at_least}"),
                None => format!("no baseline ≥ ×{at_least}"),
            },
            Target::ValueAtLeast(at_least) => against(format!("{:.1} ≥ {at_least}", row.value)),
            Target::ValueBelow(below) => against(format!("{:.1} < {below}", row.value)),
        }
    }
}

/// A target and whether this run's figure reached it.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    pub target: Target,
    pub met: bool,
}

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
    /// The targets for this figure, each with its verdict; empty where it has none.
    pub targets: Vec<Checked>,
}

impl Row {
    /// Holds this figure to `targets`.
    pub fn aim(&mut self, targets: &[Target]) {
        self.targets.extend(
            targets.iter().map(|&target| Checked { target, met: target.met_by(self.value, self.ratio) }),
        );
    }
}

#[derive(Default, Serialize)]
pub struct Report {
    pub machine: String,
    pub rows: Vec<Row>,
    pub failures: Vec<String>,
}

/// How many of the run's targets were met and missed.
#[derive(Debug, PartialEq, Serialize)]
pub struct Tally {
    pub met: usize,
    pub missed: usize,
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
    ) -> &mut Row {
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
            targets: Vec::new(),
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
        let last = self.rows.len() - 1;
        &mut self.rows[last]
    }

    pub fn tally(&self) -> Tally {
        let checked = self.rows.iter().flat_map(|r| &r.targets);
        let met = checked.clone().filter(|c| c.met).count();
        Tally { met, missed: checked.count() - met }
    }

    /// Every target of the run with its verdict, the missed ones first: the lines a run ends
    /// with, after its tally.
    fn verdicts(&self) -> Vec<String> {
        let mut lines: Vec<(bool, String)> = self
            .rows
            .iter()
            .flat_map(|r| {
                r.targets.iter().map(move |c| {
                    let verdict = if c.met { "met   " } else { "MISSED" };
                    let line = format!(
                        "{verdict} {:<8} {:<9} {} — {}: {}",
                        r.scenario,
                        r.backend,
                        r.subject,
                        r.metric,
                        c.target.verdict_text(r)
                    );
                    (c.met, line)
                })
            })
            .collect();
        lines.sort_by_key(|(met, _)| *met);
        lines.into_iter().map(|(_, line)| line).collect()
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
        let Tally { met, missed } = self.tally();
        if met + missed > 0 {
            println!("\ntargets: {met} met, {missed} missed");
            for line in self.verdicts() {
                println!("{line}");
            }
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
        report["targets"] = serde_json::to_value(self.tally())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn report_with(value: f64, baseline: Option<f64>, targets: &[Target]) -> Report {
        let mut report = Report::default();
        report.add("query", "sqlite", "doetank by id", "requests/s", value, baseline, "").aim(targets);
        report
    }

    fn verdicts(value: f64, baseline: Option<f64>, targets: &[Target]) -> Vec<bool> {
        report_with(value, baseline, targets).rows[0].targets.iter().map(|c| c.met).collect()
    }

    #[test]
    fn a_figure_meets_a_target_at_its_threshold_and_misses_it_short_of_it() {
        assert_eq!(verdicts(50.0, Some(100.0), &[Target::RatioAtLeast(0.5)]), [true]);
        assert_eq!(verdicts(49.9, Some(100.0), &[Target::RatioAtLeast(0.5)]), [false]);
        assert_eq!(verdicts(100_000.0, None, &[Target::ValueAtLeast(100_000.0)]), [true]);
        assert_eq!(verdicts(99_999.0, None, &[Target::ValueAtLeast(100_000.0)]), [false]);
        // "Under 10 ms": 10 itself is not under it.
        assert_eq!(verdicts(9.9, None, &[Target::ValueBelow(10.0)]), [true]);
        assert_eq!(verdicts(10.0, None, &[Target::ValueBelow(10.0)]), [false]);
        // No baseline measured, no ratio to reach.
        assert_eq!(verdicts(50.0, None, &[Target::RatioAtLeast(0.5)]), [false]);
        assert_eq!(verdicts(50.0, Some(0.0), &[Target::RatioAtLeast(0.5)]), [false]);
    }

    #[test]
    fn each_target_of_a_figure_is_judged_on_its_own() {
        let targets = [Target::ValueAtLeast(100_000.0), Target::RatioAtLeast(0.5)];
        assert_eq!(verdicts(120_000.0, Some(800_000.0), &targets), [true, false]);
    }

    #[test]
    fn the_tally_counts_every_target_and_the_verdicts_list_the_missed_first() {
        let mut report = report_with(120_000.0, Some(800_000.0), &[Target::ValueAtLeast(100_000.0)]);
        report
            .add("fanout", "postgres", "10000 subscribers", "latency p99 ms", 140.0, Some(90.0), "")
            .aim(&[Target::ValueBelow(100.0)]);
        report.add("memory", "sqlite", "server idle", "RSS MB", 26.0, None, "");
        assert_eq!(report.tally(), Tally { met: 1, missed: 1 });
        assert_eq!(
            report.verdicts(),
            [
                "MISSED fanout   postgres  10000 subscribers — latency p99 ms: 140.0 < 100 (baseline 90.0)",
                "met    query    sqlite    doetank by id — requests/s: 120000.0 ≥ 100000 (baseline 800000.0)",
            ]
        );
        let json = serde_json::to_value(&report.rows[0].targets).expect("targets serialise");
        assert_eq!(
            json,
            serde_json::json!([{ "target": { "kind": "value_at_least", "threshold": 100000.0 }, "met": true }])
        );
    }
}
