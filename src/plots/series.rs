//! The numbers the figures show, computed from [`Results`] without any drawing, so that tests
//! can check them directly.

use std::collections::BTreeSet;

use crate::experiment::results::{CurvePoint, Results};

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
