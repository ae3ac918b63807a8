//! The numbers the figures show, computed from [`Results`] without any drawing, so that tests
//! can check them directly.

use std::collections::BTreeSet;

use crate::experiment::config::Method;
use crate::experiment::results::{CurvePoint, Results, RunResult};

/// The start of a task on a run's training curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskStart {
    /// Optimizer step after which the task began.
    pub step: u64,
    /// Index of the task that began.
    pub task: usize,
}

/// Finds where each task after the first began on `curve`.
///
/// The runner records an evaluation at the last step of every task, so the step of a task's
/// last point is where the next task begins. The next task's first point comes one evaluation
/// interval later. A task without points of its own gets no start.
pub fn task_starts(curve: &[CurvePoint]) -> Vec<TaskStart> {
    curve
        .windows(2)
        .filter(|pair| pair[1].task != pair[0].task)
        .map(|pair| TaskStart {
            step: pair[0].step,
            task: pair[1].task,
        })
        .collect()
}

/// Largest step on any run's curve: the right end of the shared step axis.
pub fn max_step(results: &Results) -> u64 {
    results
        .runs
        .iter()
        .flat_map(|run| &run.curve)
        .map(|point| point.step)
        .max()
        .unwrap_or(0)
}

/// Splits `(step, value)` pairs into stretches of consecutive finite values, as `[step, value]`
/// pairs, so that a line breaks where a value is missing instead of joining across the gap.
pub fn defined_segments(
    points: impl IntoIterator<Item = (u64, Option<f64>)>,
) -> Vec<Vec<[f64; 2]>> {
    let mut segments = Vec::new();
    let mut current = Vec::new();
    for (step, value) in points {
        match value.filter(|value| value.is_finite()) {
            Some(value) => current.push([step as f64, value]),
            None if !current.is_empty() => segments.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    segments
}

/// Final accuracy of a run that finished every task, split between old tasks and the last one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tradeoff {
    /// Mean accuracy on tasks 0..T−1 after training the last task T, as a fraction: stability.
    pub old_tasks: f64,
    /// Accuracy on the last task T after training it, as a fraction: plasticity.
    pub new_task: f64,
}

/// Computes the old-task and new-task accuracy from the last row of the accuracy matrix
/// R[i][j] (accuracy on task j after training task i).
///
/// With T = `task_count` − 1: old = mean over j < T of R[T][j], new = R[T][T]. Returns `None`
/// when there is no old task (fewer than two tasks) or when the run stopped before the last
/// task, because its last row then measures a different point in the sequence.
pub fn tradeoff(accuracy: &[Vec<f64>], task_count: usize) -> Option<Tradeoff> {
    if task_count < 2 || accuracy.len() < task_count {
        return None;
    }
    let last_row = accuracy.get(task_count - 1)?;
    let new_task = *last_row.get(task_count - 1)?;
    let old = &last_row[..task_count - 1];
    let old_tasks = old.iter().sum::<f64>() / old.len() as f64;
    Some(Tradeoff {
        old_tasks,
        new_task,
    })
}

/// Greek letters that run labels use for method parameters (`ewc λ=1000`), spelled out so that
/// file names stay ASCII and readable.
const GREEK_NAMES: [(char, &str); 6] = [
    ('α', "alpha"),
    ('β', "beta"),
    ('γ', "gamma"),
    ('λ', "lambda"),
    ('μ', "mu"),
    ('τ', "tau"),
];

/// Turns a run label into a file-name part: words of lowercase ASCII letters, digits and dots
/// joined by hyphens, with Greek letters spelled out (`ewc λ=1000` → `ewc-lambda-1000`).
pub fn label_slug(label: &str) -> String {
    let mut words = Vec::new();
    let mut word = String::new();
    for character in label.chars().flat_map(char::to_lowercase) {
        if character.is_ascii_alphanumeric() || character == '.' {
            word.push(character);
            continue;
        }
        if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        if let Some((_, name)) = GREEK_NAMES.iter().find(|(letter, _)| *letter == character) {
            words.push((*name).to_owned());
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words.join("-")
}

/// Gives each run a distinct file-name part: its [`label_slug`], `run-N` for an empty slug (N
/// counting runs from 1), and a `-2`, `-3`, ... suffix for a slug an earlier run already has.
pub fn unique_slugs<'a>(labels: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut used_slugs = BTreeSet::new();
    let mut slugs = Vec::new();
    for (index, label) in labels.into_iter().enumerate() {
        let slug = label_slug(label);
        let base = if slug.is_empty() {
            format!("run-{}", index + 1)
        } else {
            slug
        };
        let mut candidate = base.clone();
        let mut suffix = 2;
        while used_slugs.contains(&candidate) {
            candidate = format!("{base}-{suffix}");
            suffix += 1;
        }
        used_slugs.insert(candidate.clone());
        slugs.push(candidate);
    }
    slugs
}

/// One run's point on the trade-off figure.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPoint {
    /// Index of the run in the results.
    pub run: usize,
    /// The swept parameter's value, when the sweep has a numeric parameter.
    pub value: Option<f64>,
    /// Short label of the point: the swept parameter and its value (`λ=1000`), or the run's
    /// label when nothing is swept.
    pub label: String,
    /// Old-task and new-task accuracy after the last task.
    pub tradeoff: Tradeoff,
}

/// Runs of one method that differ in one parameter, ordered by its value: one line on the
/// trade-off figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    /// The method.
    pub method: Method,
    /// The swept parameter under its command-line key, such as `ewc.lambda`; `None` for a
    /// single run or runs identical in every parameter.
    pub parameter: Option<String>,
    /// Other parameters that differ between this method's runs, with this sweep's values
    /// (`fisher=sampled`), which tell apart several sweeps of one method.
    pub fixed: Vec<String>,
    /// The points, by increasing value of the parameter where it is numeric.
    pub points: Vec<SweepPoint>,
}

impl Sweep {
    /// Returns the name of the sweep in the legend: the method, with the fixed parameters.
    pub fn name(&self) -> String {
        if self.fixed.is_empty() {
            self.method.name().to_owned()
        } else {
            format!("{} ({})", self.method.name(), self.fixed.join(", "))
        }
    }
}

/// Returns the parameter that sets a method's strength: λ for the penalties, α for LwF.
pub fn strength_parameter(method: Method) -> Option<&'static str> {
    match method {
        Method::L2 => Some("l2.lambda"),
        Method::Ewc => Some("ewc.lambda"),
        Method::OnlineEwc => Some("online-ewc.lambda"),
        Method::Lwf => Some("lwf.alpha"),
        Method::Finetune | Method::Joint | Method::Frozen => None,
    }
}

/// Groups the runs that finished every task into sweeps, one per method in the order of
/// [`Method::ALL`], split further by any other parameter that differs.
///
/// The swept parameter is the method's strength ([`strength_parameter`]) when its runs differ
/// in it, else the first parameter in which they differ. Each point's accuracies come from
/// the last row of the run's accuracy matrix, as [`tradeoff`] computes them.
pub fn sweeps(results: &Results) -> Vec<Sweep> {
    let task_count = results.tasks.len();
    let mut sweeps = Vec::new();
    for method in Method::ALL {
        let runs: Vec<(usize, &RunResult, Tradeoff)> = results
            .runs
            .iter()
            .enumerate()
            .filter(|(_, run)| run.method == method)
            .filter_map(|(index, run)| Some((index, run, tradeoff(&run.accuracy, task_count)?)))
            .collect();
        if runs.is_empty() {
            continue;
        }

        let differing: Vec<&String> = runs[0]
            .1
            .params
            .keys()
            .filter(|key| {
                runs.iter()
                    .any(|(_, run, _)| run.params.get(*key) != runs[0].1.params.get(*key))
            })
            .collect();
        let parameter = strength_parameter(method)
            .and_then(|strength| {
                differing
                    .iter()
                    .find(|key| key.as_str() == strength)
                    .copied()
            })
            .or_else(|| differing.first().copied())
            .cloned();
        let fixed_keys: Vec<&String> = differing
            .into_iter()
            .filter(|key| Some(*key) != parameter.as_ref())
            .collect();

        let mut groups: Vec<Sweep> = Vec::new();
        for (index, run, tradeoff) in runs {
            let fixed: Vec<String> = fixed_keys
                .iter()
                .map(|key| {
                    format!(
                        "{}={}",
                        short_parameter_name(key),
                        parameter_text(run.params.get(*key))
                    )
                })
                .collect();
            let value = parameter
                .as_ref()
                .and_then(|key| run.params.get(key))
                .and_then(serde_json::Value::as_f64);
            let label = match &parameter {
                Some(key) => format!(
                    "{}={}",
                    short_parameter_name(key),
                    parameter_text(run.params.get(key))
                ),
                None => run.label.clone(),
            };
            let point = SweepPoint {
                run: index,
                value,
                label,
                tradeoff,
            };
            match groups.iter_mut().find(|sweep| sweep.fixed == fixed) {
                Some(sweep) => sweep.points.push(point),
                None => groups.push(Sweep {
                    method,
                    parameter: parameter.clone(),
                    fixed,
                    points: vec![point],
                }),
            }
        }
        for sweep in &mut groups {
            // A stable sort by value keeps run order for equal or non-numeric values.
            sweep.points.sort_by(|a, b| match (a.value, b.value) {
                (Some(a), Some(b)) => a.total_cmp(&b),
                _ => std::cmp::Ordering::Equal,
            });
        }
        sweeps.extend(groups);
    }
    sweeps
}

/// Returns the symbol for a parameter key in point labels: `λ` for `ewc.lambda`, `T` for
/// `lwf.temperature`, and the part after the method for the rest.
fn short_parameter_name(key: &str) -> &str {
    let name = key.rsplit_once('.').map_or(key, |(_, name)| name);
    match name {
        "lambda" => "λ",
        "alpha" => "α",
        "gamma" => "γ",
        "temperature" => "T",
        other => other,
    }
}

/// Formats a parameter value as the run labels do: `1000` for 1000.0, names without quotes.
fn parameter_text(value: Option<&serde_json::Value>) -> String {
    match value {
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(serde_json::Value::Number(number)) => match number.as_f64() {
            Some(float) => float.to_string(),
            None => number.to_string(),
        },
        Some(other) => other.to_string(),
        None => "-".to_owned(),
    }
}
