//! Results files and the comparison table.
//!
//! `results.json` contains everything needed to redraw the plots and recompute the metrics:
//!
//! ```json
//! {
//!   "format": "ewc-workbench.results/1",
//!   "created": "2024-05-01T12:00:00Z",
//!   "config": { "name": "seed", "sequence": { "kind": "seed" }, "...": "..." },
//!   "device": { "adapter": "llvmpipe", "backend": "vulkan", "device_type": "cpu", "driver": "Mesa" },
//!   "tasks": ["mnist", "fashion-mnist"],
//!   "runs": [{
//!     "method": "ewc",
//!     "label": "ewc λ=1000",
//!     "params": { "ewc.fisher": "exact", "ewc.fisher_samples": 1000, "ewc.lambda": 1000.0 },
//!     "status": "completed",
//!     "message": "",
//!     "accuracy": [[0.981, 0.102], [0.912, 0.845]],
//!     "baseline": [0.098, 0.100],
//!     "metrics": {
//!       "average_accuracy": 0.8785,
//!       "backward_transfer": -0.069,
//!       "forgetting": { "per_task": [0.069, null], "mean": 0.069 },
//!       "forward_transfer": 0.002
//!     },
//!     "curve": [{ "step": 100, "task": 0, "accuracy": [0.93, 0.11], "loss": 0.41, "penalty": null }],
//!     "train_seconds": 41.5,
//!     "fisher_seconds": 1.2,
//!     "insights": {
//!       "layout": {
//!         "entries": [{ "name": "conv1.weight", "offset": 0, "len": 288, "shape": [32, 1, 3, 3],
//!                       "fan_in": 9, "part": "features" }, "..."],
//!         "len": 54410
//!       },
//!       "distances": [{ "step": 1000, "task": 1, "euclidean": 0.83, "fisher_weighted": 0.0012 }],
//!       "weights_after_task": ["<base64>", "<base64>"],
//!       "fishers": [{ "task": 0, "source": "method", "kind": "exact", "samples": 1000,
//!                     "values": "<base64>" }],
//!       "fisher_seconds": 0.0
//!     }
//!   }]
//! }
//! ```
//!
//! Accuracies are fractions in [0, 1]. `step` counts optimizer steps from the start of the run,
//! across tasks. A point's `loss` is the mean training cross-entropy since the previous point.
//! Its `penalty` is the penalty term λ/2 Σ F (θ − θ*)² at the point for L2, EWC and online EWC,
//! and the mean distillation term since the previous point for LwF. Both are `null` where there
//! is nothing to report, and `penalty` is `null` for methods without such a term. serde_json
//! writes NaN and infinities as `null`, so a diverged loss reads back as `None`.
//!
//! `insights` is present when `training.insights` was on (the default); files without it still
//! load. It contains what the insight views need (see [`super::insights`]):
//!
//! - `layout`: the flat parameter layout, so the stored vectors can be sliced into named
//!   tensors without rebuilding the network;
//! - `distances`: at each curve point from the second task on, ‖θ − θ*‖₂ (`euclidean`) and
//!   Σᵢ Fᵢ (θᵢ − θ*ᵢ)² (`fisher_weighted`), θ* the weights after the previous task and F the
//!   Fisher diagonal at θ*;
//! - `fishers`: per finished task but the last, how the Fisher diagonal at the weights after it
//!   was estimated (`source` `method` for EWC's own, `insights` for a pass run for these views,
//!   `reused_from` naming the run whose bit-identical weights gave it);
//! - `weights_after_task` and each Fisher's `values`: only when `training.record_weights` was on,
//!   or `auto` on a network of at most 100,000 parameters. Each is one little-endian `f32` per
//!   parameter in layout order, base64-encoded.
//!
//! `results.csv` has one row per run and evaluation: the curve points, the rows of the accuracy
//! matrix and the baseline, told apart by the `source` column, so a spreadsheet or data frame
//! can filter what it needs.
//!
//! Readers accept unknown fields in results so that tools written for this format keep
//! reading files from later builds that add fields; a change that breaks readers gets a new
//! `format` string.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::config::{ExperimentConfig, Method, RunSpec};
use super::insights::RunInsights;
use super::metrics::Metrics;

/// Value of the `format` field this build writes and reads.
pub const RESULTS_FORMAT: &str = "ewc-workbench.results/1";
/// File name of the JSON results in an output directory.
pub const RESULTS_JSON: &str = "results.json";
/// File name of the CSV results in an output directory.
pub const RESULTS_CSV: &str = "results.csv";

/// Header of `results.csv`.
pub const CSV_HEADER: &str = "run,label,method,status,source,step,trained_task,eval_task,eval_task_name,accuracy,loss,penalty";

/// Error from reading or writing results.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The file could not be read.
    #[error("failed to read results file {path}: {source}", path = path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is not valid JSON or does not match the results schema. serde_json's message
    /// ends with the line and column.
    #[error("invalid results file {path}: {source}", path = path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser error, with line and column.
        source: serde_json::Error,
    },
    /// A run's insights do not fit their own parameter layout.
    #[error("invalid results file {path}: run {run} ({label}): {message}", path = path.display())]
    InvalidInsights {
        /// The file.
        path: PathBuf,
        /// Index of the run in `runs`.
        run: usize,
        /// The run's label.
        label: String,
        /// What does not match.
        message: String,
    },
    /// The JSON has no `format` field, so it is not a results file.
    #[error(
        "{path} is not an ewc-workbench results file: it has no \"format\" field \
         (expected \"{RESULTS_FORMAT}\")",
        path = path.display()
    )]
    MissingFormat {
        /// The file.
        path: PathBuf,
    },
    /// The `format` field names a format this build cannot read.
    #[error(
        "unsupported results format {found} in {path}; this build reads \"{RESULTS_FORMAT}\"",
        path = path.display()
    )]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// The `format` value found, as JSON.
        found: String,
    },
    /// The results could not be encoded as JSON.
    #[error("failed to encode results as JSON: {0}")]
    Encode(#[source] serde_json::Error),
    /// A results file could not be written; the previous file, if any, is unchanged.
    #[error("failed to write {path}: {source}", path = path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// The adapter an experiment ran on, as wgpu reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceInfo {
    /// Adapter name, such as `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub adapter: String,
    /// Graphics API backend, such as `vulkan`.
    pub backend: String,
    /// Kind of device, such as `discrete-gpu` or `cpu`.
    pub device_type: String,
    /// Driver name and version.
    pub driver: String,
}

/// Outcome of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Trained through every task.
    Completed,
    /// Stopped because the loss or the weights became NaN or infinite.
    Diverged,
    /// Stopped on request.
    Cancelled,
    /// Stopped by an error.
    Failed,
}

impl RunStatus {
    /// Name in results files and tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Diverged => "diverged",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }
}

/// One evaluation during training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Optimizer steps since the start of the run, across tasks.
    pub step: u64,
    /// Index of the task being trained.
    pub task: usize,
    /// Test accuracy on every task, as fractions.
    pub accuracy: Vec<f64>,
    /// Mean training loss since the previous point.
    pub loss: Option<f64>,
    /// Penalty term at this point (L2, EWC, online EWC) or mean distillation term since the
    /// previous point (LwF); `None` for methods without one.
    pub penalty: Option<f64>,
}

/// The outcome of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The method.
    pub method: Method,
    /// Label unique within the experiment.
    pub label: String,
    /// Method parameters under their command-line keys, such as `ewc.lambda`.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Outcome of the run.
    pub status: RunStatus,
    /// Reason the run stopped early, such as the divergence step or the error; empty when
    /// completed.
    #[serde(default)]
    pub message: String,
    /// Accuracy matrix R: `accuracy[i][j]` on task j after training task i, on the whole test
    /// set. Rows only for the tasks finished.
    pub accuracy: Vec<Vec<f64>>,
    /// Accuracy of the untrained network on each task, the forward-transfer baseline.
    #[serde(default)]
    pub baseline: Option<Vec<f64>>,
    /// Metrics computed from `accuracy` and `baseline`.
    pub metrics: Metrics,
    /// Evaluations during training, in step order.
    #[serde(default)]
    pub curve: Vec<CurvePoint>,
    /// Wall-clock seconds spent training, evaluation included.
    pub train_seconds: f64,
    /// Wall-clock seconds spent estimating the Fisher; `None` for methods without one.
    #[serde(default)]
    pub fisher_seconds: Option<f64>,
    /// What the insight views need; `None` when the run recorded no insights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insights: Option<RunInsights>,
}

impl RunResult {
    /// Creates an empty result for `run` with status `completed`, which the runner changes if
    /// the run stops early.
    pub fn new(run: &RunSpec) -> Self {
        Self {
            method: run.method.method(),
            label: run.label.clone(),
            params: run.method.params(),
            status: RunStatus::Completed,
            message: String::new(),
            accuracy: Vec::new(),
            baseline: None,
            metrics: Metrics::default(),
            curve: Vec::new(),
            train_seconds: 0.0,
            fisher_seconds: None,
            insights: None,
        }
    }

    /// Recomputes `metrics` from `accuracy` and `baseline`.
    pub fn update_metrics(&mut self) {
        self.metrics = Metrics::from_accuracy(&self.accuracy, self.baseline.as_deref());
    }
}

/// Everything an experiment produced: the contents of `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Always [`RESULTS_FORMAT`] for files this build writes.
    pub format: String,
    /// When the results were created, RFC 3339 in UTC.
    pub created: String,
    /// The experiment as it ran, sweeps expanded.
    pub config: ExperimentConfig,
    /// The adapter the runs trained on.
    pub device: DeviceInfo,
    /// Task names in training order.
    pub tasks: Vec<String>,
    /// Source and image counts of each task, in training order. Empty in files written before
    /// this field existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<TaskDataRecord>,
    /// One entry per run, in the order of the experiment's methods.
    pub runs: Vec<RunResult>,
}

/// Source of one task's images, and how many of them the runs used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDataRecord {
    /// Task name.
    pub task: String,
    /// The dataset's folder, such as `…/mnist`, or a custom task's training file.
    pub source: PathBuf,
    /// Origin of the source: `named folder` (by `--data-dir`, the setup panel or the
    /// experiment file), `from EWC_WORKBENCH_DATA`,
    /// `well-known location`, `bundled subsets` or `experiment file`.
    pub origin: String,
    /// Training images the runs used, after `training.limit`.
    pub train_images: usize,
    /// Test images behind each entry of the accuracy matrix.
    pub test_images: usize,
}

impl Results {
    /// Creates empty results for `config`, stamped with the current time.
    pub fn new(config: ExperimentConfig, device: DeviceInfo) -> Self {
        Self {
            format: RESULTS_FORMAT.to_owned(),
            created: rfc3339_utc(SystemTime::now()),
            tasks: config.sequence.task_names(),
            data: Vec::new(),
            config,
            device,
            runs: Vec::new(),
        }
    }

    /// Reads a results file; see [`load_results`].
    pub fn load(path: &Path) -> Result<Self, ResultsError> {
        load_results(path)
    }

    /// Writes `results.json` and `results.csv` into `dir`, which must exist. Each file is
    /// written whole or not at all.
    pub fn save_to_dir(&self, dir: &Path) -> Result<(), ResultsError> {
        self.save_json(&dir.join(RESULTS_JSON))?;
        self.save_csv(&dir.join(RESULTS_CSV))
    }

    /// Writes the results as pretty JSON, whole or not at all.
    pub fn save_json(&self, path: &Path) -> Result<(), ResultsError> {
        let mut text = serde_json::to_string_pretty(self).map_err(ResultsError::Encode)?;
        text.push('\n');
        write_file(path, &text)
    }

    /// Writes [`Results::to_csv`], whole or not at all.
    pub fn save_csv(&self, path: &Path) -> Result<(), ResultsError> {
        write_file(path, &self.to_csv())
    }

    /// Renders the CSV table: [`CSV_HEADER`], then for each run its curve points (one row per
    /// evaluated task), the accuracy matrix (`source` = `matrix`, no step) and the baseline
    /// (`source` = `baseline`, no trained task). Missing values are empty fields.
    pub fn to_csv(&self) -> String {
        let mut csv = String::from(CSV_HEADER);
        csv.push('\n');
        for (index, run) in self.runs.iter().enumerate() {
            let row = CsvRun {
                index,
                run,
                tasks: &self.tasks,
            };
            for point in &run.curve {
                for (task, accuracy) in point.accuracy.iter().enumerate() {
                    let evaluation = CsvEvaluation {
                        source: "curve",
                        step: Some(point.step),
                        trained_task: Some(point.task),
                        eval_task: task,
                        accuracy: *accuracy,
                        loss: point.loss,
                        penalty: point.penalty,
                    };
                    row.push(&mut csv, &evaluation);
                }
            }
            for (trained_task, accuracies) in run.accuracy.iter().enumerate() {
                for (task, accuracy) in accuracies.iter().enumerate() {
                    let evaluation = CsvEvaluation {
                        trained_task: Some(trained_task),
                        ..CsvEvaluation::without_training("matrix", task, *accuracy)
                    };
                    row.push(&mut csv, &evaluation);
                }
            }
            for (task, accuracy) in run.baseline.iter().flatten().enumerate() {
                row.push(
                    &mut csv,
                    &CsvEvaluation::without_training("baseline", task, *accuracy),
                );
            }
        }
        csv
    }
}

/// The columns of one CSV row that describe the run.
struct CsvRun<'a> {
    index: usize,
    run: &'a RunResult,
    tasks: &'a [String],
}

/// The columns of one CSV row that describe the evaluation.
struct CsvEvaluation {
    source: &'static str,
    step: Option<u64>,
    trained_task: Option<usize>,
    eval_task: usize,
    accuracy: f64,
    loss: Option<f64>,
    penalty: Option<f64>,
}

impl CsvEvaluation {
    fn without_training(source: &'static str, eval_task: usize, accuracy: f64) -> Self {
        Self {
            source,
            step: None,
            trained_task: None,
            eval_task,
            accuracy,
            loss: None,
            penalty: None,
        }
    }
}

impl CsvRun<'_> {
    fn push(&self, csv: &mut String, evaluation: &CsvEvaluation) {
        let task_name = self
            .tasks
            .get(evaluation.eval_task)
            .map_or("", String::as_str);
        let fields = [
            self.index.to_string(),
            csv_text(&self.run.label),
            self.run.method.name().to_owned(),
            self.run.status.name().to_owned(),
            evaluation.source.to_owned(),
            optional(evaluation.step),
            optional(evaluation.trained_task),
            evaluation.eval_task.to_string(),
            csv_text(task_name),
            evaluation.accuracy.to_string(),
            optional(evaluation.loss.filter(|loss| loss.is_finite())),
            optional(evaluation.penalty.filter(|penalty| penalty.is_finite())),
        ];
        csv.push_str(&fields.join(","));
        csv.push('\n');
    }
}

fn optional<T: ToString>(value: Option<T>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

/// Quotes a text field when it contains a comma, a quote or a line break (RFC 4180).
fn csv_text(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), ResultsError> {
    super::write_atomically(path, text.as_bytes()).map_err(|source| ResultsError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Only the `format` field, read before the full parse so that a file of another format gets
/// a message about the format rather than about the first field that differs.
#[derive(Deserialize)]
struct FormatProbe {
    format: Option<serde_json::Value>,
}

/// Reads a results file, checking its `format` before the rest and each run's insights
/// against their parameter layout.
pub fn load_results(path: &Path) -> Result<Results, ResultsError> {
    let text = fs::read_to_string(path).map_err(|source| ResultsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let parse_error = |source| ResultsError::Parse {
        path: path.to_owned(),
        source,
    };

    let probe: FormatProbe = serde_json::from_str(&text).map_err(parse_error)?;
    match probe.format {
        None => {
            return Err(ResultsError::MissingFormat {
                path: path.to_owned(),
            });
        }
        Some(serde_json::Value::String(format)) if format == RESULTS_FORMAT => {}
        Some(found) => {
            return Err(ResultsError::UnsupportedFormat {
                path: path.to_owned(),
                found: found.to_string(),
            });
        }
    }
    let results: Results = serde_json::from_str(&text).map_err(parse_error)?;

    for (index, run) in results.runs.iter().enumerate() {
        if let Some(Err(message)) = run.insights.as_ref().map(RunInsights::check) {
            return Err(ResultsError::InvalidInsights {
                path: path.to_owned(),
                run: index,
                label: run.label.clone(),
                message,
            });
        }
    }
    Ok(results)
}

/// Formats a time as RFC 3339 in UTC with whole seconds, such as `2024-02-29T00:00:00Z`.
/// Times before 1970 are written as the Unix epoch.
pub fn rfc3339_utc(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let (year, month, day) = civil_date(seconds / SECONDS_PER_DAY);
    let seconds_of_day = seconds % SECONDS_PER_DAY;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds_of_day / 3600,
        seconds_of_day % 3600 / 60,
        seconds_of_day % 60
    )
}

const SECONDS_PER_DAY: u64 = 86_400;

/// Year, month (1–12) and day (1–31) of the proleptic Gregorian calendar, `days` after
/// 1970-01-01.
fn civil_date(days: u64) -> (u64, u64, u64) {
    let mut remaining = days;
    let mut year = 1970;
    loop {
        let days_in_year = if is_leap_year(year) { 366 } else { 365 };
        if remaining < days_in_year {
            break;
        }
        remaining -= days_in_year;
        year += 1;
    }

    let february = if is_leap_year(year) { 29 } else { 28 };
    let month_lengths = [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut month = 1;
    for length in month_lengths {
        if remaining < length {
            break;
        }
        remaining -= length;
        month += 1;
    }
    (year, month, remaining + 1)
}

fn is_leap_year(year: u64) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// Renders a plain-text table with one row per run: final accuracy on each task (after the
/// last trained task), average accuracy, backward transfer, mean forgetting and training time.
pub fn comparison_table(results: &Results) -> String {
    let mut header: Vec<String> = vec!["run".to_owned(), "status".to_owned()];
    header.extend(results.tasks.iter().cloned());
    header.extend(["average", "BWT", "forgetting", "train time"].map(str::to_owned));

    let mut rows = vec![header];
    for run in &results.runs {
        let mut row = vec![run.label.clone(), run.status.name().to_owned()];
        let final_row = run.accuracy.last();
        for task in 0..results.tasks.len() {
            row.push(percent(
                final_row.and_then(|accuracies| accuracies.get(task).copied()),
            ));
        }
        row.push(percent(run.metrics.average_accuracy));
        row.push(signed_points(run.metrics.backward_transfer));
        row.push(points(run.metrics.forgetting.mean));
        row.push(format!("{:.1} s", run.train_seconds));
        rows.push(row);
    }

    let mut table = align_columns(&rows, 2);
    table.push_str(
        "Accuracy in percent on each task's test set after the last trained task; \
         BWT and forgetting in percentage points.\n",
    );
    table
}

fn percent(fraction: Option<f64>) -> String {
    fraction.map_or_else(
        || "-".to_owned(),
        |fraction| format!("{:.1}", 100.0 * fraction),
    )
}

fn points(fraction: Option<f64>) -> String {
    fraction.map_or_else(
        || "-".to_owned(),
        |fraction| format!("{:.1}", 100.0 * fraction),
    )
}

fn signed_points(fraction: Option<f64>) -> String {
    fraction.map_or_else(
        || "-".to_owned(),
        |fraction| format!("{:+.1}", 100.0 * fraction),
    )
}

/// Pads cells to their column's width; the first `left_aligned` columns are text and align
/// left, the rest are numbers and align right.
fn align_columns(rows: &[Vec<String>], left_aligned: usize) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();

    let mut table = String::new();
    for row in rows {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            if column > 0 {
                line.push_str("  ");
            }
            let width = widths[column];
            // `{:<width$}` pads by chars, which matches the width count above.
            let _ = if column < left_aligned {
                write!(line, "{cell:<width$}")
            } else {
                write!(line, "{cell:>width$}")
            };
        }
        table.push_str(line.trim_end());
        table.push('\n');
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::config::expand_runs;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ewc-workbench-results-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch directory should be creatable");
        dir
    }

    /// Two runs of the seed experiment: ewc completed both tasks, finetune stopped after one.
    fn sample_results() -> Results {
        let mut config = ExperimentConfig::preset("seed").expect("seed preset exists");
        config.methods = vec![Method::Ewc.default_spec(), Method::Finetune.default_spec()];
        let runs = expand_runs(&config);
        let device = DeviceInfo {
            adapter: "llvmpipe (LLVM 15.0.6, 256 bits)".to_owned(),
            backend: "vulkan".to_owned(),
            device_type: "cpu".to_owned(),
            driver: "Mesa 22.3.6".to_owned(),
        };
        let mut results = Results::new(config, device);

        let mut ewc = RunResult::new(&runs[0]);
        ewc.accuracy = vec![vec![0.981, 0.102], vec![0.912, 0.845]];
        ewc.baseline = Some(vec![0.098, 0.1]);
        ewc.curve = vec![
            CurvePoint {
                step: 0,
                task: 0,
                accuracy: vec![0.098, 0.1],
                loss: None,
                penalty: None,
            },
            CurvePoint {
                step: 100,
                task: 0,
                accuracy: vec![0.93, 0.11],
                loss: Some(0.41),
                penalty: Some(0.0),
            },
            CurvePoint {
                step: 1000,
                task: 1,
                accuracy: vec![0.912, 0.845],
                loss: Some(0.52),
                penalty: Some(0.031),
            },
        ];
        ewc.train_seconds = 41.5;
        ewc.fisher_seconds = Some(1.25);
        ewc.update_metrics();

        let mut finetune = RunResult::new(&runs[1]);
        finetune.status = RunStatus::Cancelled;
        finetune.message = "cancelled at step 1200 while training task 1".to_owned();
        finetune.accuracy = vec![vec![0.979, 0.095]];
        finetune.curve = vec![CurvePoint {
            step: 100,
            task: 0,
            accuracy: vec![0.92, 0.09],
            loss: Some(0.44),
            penalty: None,
        }];
        finetune.train_seconds = 20.0;
        finetune.update_metrics();

        results.runs = vec![ewc, finetune];
        results.data = vec![TaskDataRecord {
            task: "mnist".to_owned(),
            source: PathBuf::from("/data/mnist"),
            origin: "named folder".to_owned(),
            train_images: 60_000,
            test_images: 10_000,
        }];
        results
    }

    #[test]
    fn results_round_trip_through_json() {
        let results = sample_results();

        let json = serde_json::to_string_pretty(&results).expect("results serialize");
        let parsed: Results = serde_json::from_str(&json).expect("written results parse");

        assert_eq!(parsed, results, "results survive a round trip");
    }

    #[test]
    fn results_without_data_records_still_load() {
        let mut results = sample_results();
        results.data.clear();
        let json = serde_json::to_string(&results).expect("results serialize");
        assert!(
            !json.contains("\"data\""),
            "no data key when nothing was recorded"
        );

        let parsed: Results = serde_json::from_str(&json).expect("written results parse");

        assert_eq!(parsed, results, "results from before data records");
    }

    #[test]
    fn json_numbers_read_back_to_the_same_bits() {
        // Accuracies, losses and distances over many magnitudes, with all 52 fraction bits in
        // use: these are the numbers whose last bit a fast decimal parser can get wrong.
        let mut rng = crate::rng::Rng::new(7);
        let values: Vec<f64> = (0..20_000)
            .map(|i| rng.next_f64() * 10f64.powi(i % 40 - 20))
            .collect();

        let json = serde_json::to_string(&values).expect("numbers serialize");
        let parsed: Vec<f64> = serde_json::from_str(&json).expect("written numbers parse");

        let differing = values
            .iter()
            .zip(&parsed)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(differing, 0, "numbers that read back with other bits");
    }

    /// Adds insights with stored weights and one Fisher diagonal to the ewc run.
    fn with_insights(mut results: Results) -> Results {
        use crate::experiment::insights::{
            AnchorDistance, FisherRecord, FisherSource, ParamVector,
        };
        use crate::model::{Architecture, Network};

        let layout = Network::new(&Architecture::SeedCnn, &[10]).layout;
        let len = layout.len;
        let mut insights = RunInsights::new(layout);
        let ramp = |scale: f32| ParamVector((0..len).map(|i| scale * i as f32).collect());
        insights.weights_after_task = vec![ramp(1e-3), ramp(2e-3)];
        insights.fishers = vec![FisherRecord {
            task: 0,
            source: FisherSource::Method,
            kind: crate::experiment::config::FisherKind::Exact,
            samples: 1000,
            reused_from: None,
            values: Some(ramp(1e-6)),
        }];
        insights.distances = vec![AnchorDistance {
            step: 1000,
            task: 1,
            euclidean: Some(0.83),
            fisher_weighted: None,
        }];
        results.runs[0].insights = Some(insights);
        results
    }

    #[test]
    fn results_with_insights_round_trip() {
        let dir = scratch_dir("insights");
        let results = with_insights(sample_results());

        results.save_to_dir(&dir).expect("saving should succeed");
        let loaded = load_results(&dir.join(RESULTS_JSON)).expect("loading should succeed");

        assert_eq!(
            loaded, results,
            "weights, Fisher and distances survive the file"
        );
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.join(RESULTS_JSON)).expect("readable"))
                .expect("valid JSON");
        let insights = &json["runs"][0]["insights"];
        assert_eq!(
            insights["layout"]["entries"][0]["name"], "conv1.weight",
            "layout names"
        );
        assert_eq!(
            insights["layout"]["entries"][0]["shape"],
            serde_json::json!([32, 1, 3, 3]),
            "layout shapes"
        );
        assert!(
            insights["weights_after_task"][0].is_string(),
            "weights as base64 text"
        );
        assert_eq!(insights["fishers"][0]["source"], "method", "Fisher source");
        assert!(
            json["runs"][1].get("insights").is_none(),
            "no insights key without insights"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn load_rejects_insights_that_miss_their_layout() {
        let dir = scratch_dir("bad-insights");
        let mut results = with_insights(sample_results());
        if let Some(insights) = results.runs[0].insights.as_mut() {
            insights.weights_after_task[1].0.truncate(10);
        }
        results.save_to_dir(&dir).expect("saving should succeed");

        let error = load_results(&dir.join(RESULTS_JSON)).expect_err("short weight vector");

        let message = error.to_string();
        assert!(
            message.contains("run 0 (ewc λ=1000)"),
            "names the run: {message}"
        );
        assert!(
            message.contains("weights_after_task[1] has 10 values"),
            "says what: {message}"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn results_json_has_documented_shape() {
        let json = serde_json::to_value(sample_results()).expect("results serialize");

        assert_eq!(json["format"], RESULTS_FORMAT, "format string");
        assert_eq!(
            json["tasks"],
            serde_json::json!(["mnist", "fashion-mnist"]),
            "task names"
        );
        assert_eq!(json["device"]["backend"], "vulkan", "device backend");
        let run = &json["runs"][0];
        assert_eq!(run["method"], "ewc", "method name");
        assert_eq!(run["label"], "ewc λ=1000", "label");
        assert_eq!(
            run["params"]["ewc.lambda"], 1000.0,
            "params under command-line keys"
        );
        assert_eq!(run["status"], "completed", "status");
        assert_eq!(run["accuracy"][1][0], 0.912, "accuracy matrix R[1][0]");
        assert!(
            run["metrics"]["backward_transfer"].is_number(),
            "BWT is a number"
        );
        assert!(
            run["curve"][0]["loss"].is_null(),
            "a point without loss writes null"
        );
        assert_eq!(json["runs"][1]["status"], "cancelled", "second run status");
        assert!(
            json["runs"][1]["metrics"]["backward_transfer"].is_null(),
            "one row: no BWT"
        );
    }

    #[test]
    fn created_is_rfc3339_utc() {
        let created = sample_results().created;

        assert_eq!(
            created.len(),
            "2024-02-29T00:00:00Z".len(),
            "length of {created}"
        );
        assert!(created.ends_with('Z'), "UTC suffix in {created}");
        assert_eq!(
            &created[10..11],
            "T",
            "date and time separator in {created}"
        );
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (1_709_164_800, "2024-02-29T00:00:00Z"),
            (4_102_444_799, "2099-12-31T23:59:59Z"),
        ];
        for (seconds, expected) in cases {
            let time = UNIX_EPOCH + std::time::Duration::from_secs(seconds);
            assert_eq!(
                rfc3339_utc(time),
                expected,
                "{seconds} seconds after the epoch"
            );
        }
    }

    #[test]
    fn diverged_loss_reads_back_as_none() {
        let mut results = sample_results();
        results.runs[0].status = RunStatus::Diverged;
        results.runs[0].curve[1].loss = Some(f64::NAN);

        let json = serde_json::to_string(&results).expect("results serialize");
        let parsed: Results = serde_json::from_str(&json).expect("written results parse");

        assert_eq!(
            parsed.runs[0].curve[1].loss, None,
            "NaN loss is written as null"
        );
        assert_eq!(parsed.runs[0].status, RunStatus::Diverged, "status kept");
    }

    #[test]
    fn csv_has_header_and_one_row_per_evaluation() {
        let csv = sample_results().to_csv();
        let lines: Vec<&str> = csv.lines().collect();

        assert_eq!(lines[0], CSV_HEADER, "header first");
        // ewc: 3 curve points × 2 tasks + 2×2 matrix + 2 baseline = 12
        // finetune: 1 curve point × 2 tasks + 1×2 matrix + no baseline = 4
        assert_eq!(
            lines.len(),
            1 + 12 + 4,
            "header plus one row per evaluation"
        );
        let columns = CSV_HEADER.split(',').count();
        for line in &lines {
            assert_eq!(line.split(',').count(), columns, "column count of {line}");
        }
        assert_eq!(
            lines[3], "0,ewc λ=1000,ewc,completed,curve,100,0,0,mnist,0.93,0.41,0",
            "curve row for task 0 at step 100"
        );
        assert_eq!(
            lines[9], "0,ewc λ=1000,ewc,completed,matrix,,1,0,mnist,0.912,,",
            "matrix row R[1][0] has no step, loss or penalty"
        );
        assert_eq!(
            lines[11], "0,ewc λ=1000,ewc,completed,baseline,,,0,mnist,0.098,,",
            "baseline row has no trained task"
        );
    }

    #[test]
    fn csv_quotes_labels_with_commas() {
        let mut results = sample_results();
        results.runs[0].label = "ewc \"strong\", exact".to_owned();

        let csv = results.to_csv();

        let row = csv.lines().nth(1).expect("a data row");
        assert!(
            row.starts_with("0,\"ewc \"\"strong\"\", exact\",ewc,"),
            "quoted label: {row}"
        );
    }

    #[test]
    fn save_and_load_from_directory() {
        let dir = scratch_dir("save-load");
        let results = sample_results();

        results.save_to_dir(&dir).expect("saving should succeed");
        let loaded = load_results(&dir.join(RESULTS_JSON)).expect("loading should succeed");

        assert_eq!(loaded, results, "loaded results equal the saved ones");
        let csv = fs::read_to_string(dir.join(RESULTS_CSV)).expect("CSV exists");
        assert_eq!(csv, results.to_csv(), "CSV on disk equals the rendered CSV");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn save_into_missing_directory_leaves_nothing() {
        let dir = scratch_dir("missing").join("absent");

        let error = sample_results()
            .save_to_dir(&dir)
            .expect_err("directory is missing");

        let message = error.to_string();
        assert!(message.contains("absent"), "names the path: {message}");
        assert!(message.contains(RESULTS_JSON), "names the file: {message}");
        assert!(!dir.exists(), "the directory is not created");
    }

    #[test]
    fn load_rejects_other_formats() {
        let dir = scratch_dir("formats");

        let other = dir.join("other.json");
        fs::write(
            &other,
            r#"{"format": "ewc-workbench.results/2", "runs": []}"#,
        )
        .expect("scratch file is writable");
        let message = load_results(&other)
            .expect_err("format 2 is unsupported")
            .to_string();
        assert!(
            message.contains("\"ewc-workbench.results/2\""),
            "shows found: {message}"
        );
        assert!(
            message.contains("reads \"ewc-workbench.results/1\""),
            "supported: {message}"
        );
        assert!(message.contains("other.json"), "names the file: {message}");

        let untagged = dir.join("untagged.json");
        fs::write(&untagged, r#"{"runs": []}"#).expect("scratch file is writable");
        let message = load_results(&untagged)
            .expect_err("no format field")
            .to_string();
        assert!(
            message.contains("no \"format\" field"),
            "says what is missing: {message}"
        );

        let broken = dir.join("broken.json");
        fs::write(&broken, "{\n\"format\": \n").expect("scratch file is writable");
        let message = load_results(&broken)
            .expect_err("truncated JSON")
            .to_string();
        assert!(message.contains("broken.json"), "names the file: {message}");
        assert!(message.contains("line"), "gives the position: {message}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn comparison_table_lists_each_run() {
        let table = comparison_table(&sample_results());
        let lines: Vec<&str> = table.lines().collect();

        let header = lines[0];
        for column in [
            "run",
            "status",
            "mnist",
            "fashion-mnist",
            "average",
            "BWT",
            "forgetting",
        ] {
            assert!(header.contains(column), "header has {column}: {header}");
        }
        // ewc after task 1: 91.2 and 84.5; average (0.912 + 0.845) / 2 = 0.8785 → 87.9;
        // BWT 0.912 − 0.981 = −6.9 points; forgetting max(0.981) − 0.912 = 6.9 points.
        let ewc: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            ewc,
            [
                "ewc",
                "λ=1000",
                "completed",
                "91.2",
                "84.5",
                "87.9",
                "-6.9",
                "6.9",
                "41.5",
                "s"
            ],
            "ewc row"
        );
        // finetune stopped after task 0, so BWT and forgetting are undefined and the average
        // covers task 0 only.
        let finetune: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(
            finetune,
            [
                "finetune",
                "cancelled",
                "97.9",
                "9.5",
                "97.9",
                "-",
                "-",
                "20.0",
                "s"
            ],
            "finetune row"
        );
        let width = lines[0].chars().count();
        for line in &lines[..3] {
            assert_eq!(line.chars().count(), width, "aligned row: {line}");
        }
    }
}
