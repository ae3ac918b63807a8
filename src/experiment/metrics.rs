//! Continual-learning metrics computed from the accuracy matrix.
//!
//! `R[i][j]` is the test accuracy on task `j` after training tasks `0..=i`, as a fraction, and
//! `T` is the index of the last row. A finished run has one row per task. A run that stopped
//! early (diverged, cancelled, failed) has rows only for the tasks it finished, so its metrics
//! describe the tasks trained so far. Every row may contain accuracies on all tasks, including
//! those not trained yet, which forward transfer needs.
//!
//! Average accuracy, backward transfer and forward transfer follow Lopez-Paz & Ranzato,
//! "Gradient Episodic Memory for Continual Learning" (NeurIPS 2017), with tasks indexed from 0
//! and `b[j]` the accuracy of the untrained network on task `j`. Forgetting of an old task is
//! how far its final accuracy fell below the best accuracy seen on it before the last task. The
//! maximum runs over every earlier row, including rows from before the task was trained, and
//! forgetting is negative when the last task improved the old one.
//!
//! ```text
//! average accuracy = 1/(T+1) · Σ_{j ≤ T}      R[T][j]
//! BWT              = 1/T     · Σ_{j < T}      (R[T][j] − R[j][j])
//! FWT              = 1/T     · Σ_{1 ≤ j ≤ T}  (R[j−1][j] − b[j])
//! forgetting(j)    = max_{i < T} R[i][j] − R[T][j]            for j < T
//! ```
//!
//! A metric that is undefined (one task, no baseline, an entry missing from a ragged matrix) is
//! `None`, written as `null` in results files.

use serde::{Deserialize, Serialize};

/// The summary metrics of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Mean accuracy over the tasks trained so far, after the last of them.
    pub average_accuracy: Option<f64>,
    /// Mean change in accuracy on old tasks caused by later training; negative means forgetting.
    pub backward_transfer: Option<f64>,
    /// Drop from the best earlier accuracy, per task and on average.
    pub forgetting: Forgetting,
    /// Mean accuracy gain on a task before training it, relative to the untrained network.
    pub forward_transfer: Option<f64>,
}

/// Forgetting per task and its mean over the old tasks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Forgetting {
    /// One entry per task in the last row; `None` for the last trained task and any after it.
    pub per_task: Vec<Option<f64>>,
    /// Mean over tasks `j < T`; `None` with fewer than two trained tasks.
    pub mean: Option<f64>,
}

impl Metrics {
    /// Computes every metric from the accuracy matrix and, for forward transfer, the accuracy
    /// of the untrained network on each task.
    pub fn from_accuracy(accuracy: &[Vec<f64>], baseline: Option<&[f64]>) -> Self {
        Self {
            average_accuracy: average_accuracy(accuracy),
            backward_transfer: backward_transfer(accuracy),
            forgetting: forgetting(accuracy),
            forward_transfer: baseline.and_then(|baseline| forward_transfer(accuracy, baseline)),
        }
    }
}

/// Mean of `R[T][0..=T]`; `None` for an empty matrix.
pub fn average_accuracy(accuracy: &[Vec<f64>]) -> Option<f64> {
    let last = last_trained_task(accuracy)?;
    mean((0..=last).map(|task| entry(accuracy, last, task)))
}

/// Mean over `j < T` of `R[T][j] − R[j][j]`; `None` with fewer than two trained tasks.
pub fn backward_transfer(accuracy: &[Vec<f64>]) -> Option<f64> {
    let last = last_trained_task(accuracy)?;
    mean((0..last).map(|task| Some(entry(accuracy, last, task)? - entry(accuracy, task, task)?)))
}

/// Forgetting of each task `j < T`, `max_{i < T} R[i][j] − R[T][j]`, and its mean.
pub fn forgetting(accuracy: &[Vec<f64>]) -> Forgetting {
    let Some(last) = last_trained_task(accuracy) else {
        return Forgetting::default();
    };
    let per_task: Vec<Option<f64>> = (0..accuracy[last].len())
        .map(|task| {
            if task < last {
                task_forgetting(accuracy, last, task)
            } else {
                None
            }
        })
        .collect();
    let mean = mean((0..last).map(|task| per_task.get(task).copied().flatten()));
    Forgetting { per_task, mean }
}

fn task_forgetting(accuracy: &[Vec<f64>], last: usize, task: usize) -> Option<f64> {
    let best_earlier = (0..last)
        .map(|row| entry(accuracy, row, task))
        .try_fold(f64::NEG_INFINITY, |best, value| Some(best.max(value?)))?;
    Some(best_earlier - entry(accuracy, last, task)?)
}

/// Mean over `1 ≤ j ≤ T` of `R[j−1][j] − b[j]`; `None` with fewer than two trained tasks.
pub fn forward_transfer(accuracy: &[Vec<f64>], baseline: &[f64]) -> Option<f64> {
    let last = last_trained_task(accuracy)?;
    mean((1..=last).map(|task| Some(entry(accuracy, task - 1, task)? - *baseline.get(task)?)))
}

fn last_trained_task(accuracy: &[Vec<f64>]) -> Option<usize> {
    accuracy.len().checked_sub(1)
}

fn entry(accuracy: &[Vec<f64>], row: usize, task: usize) -> Option<f64> {
    accuracy.get(row)?.get(task).copied()
}

/// Mean of the terms; `None` if there are none or any is missing.
fn mean(terms: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let terms: Vec<f64> = terms.collect::<Option<_>>()?;
    if terms.is_empty() {
        return None;
    }
    Some(terms.iter().sum::<f64>() / terms.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOLERANCE: f64 = 1e-12;

    fn assert_close(actual: Option<f64>, expected: f64, metric: &str) {
        let actual = actual.unwrap_or_else(|| panic!("{metric} should be defined"));
        assert!(
            (actual - expected).abs() < TOLERANCE,
            "{metric}: expected {expected}, got {actual}"
        );
    }

    /// Three tasks with plain forgetting: each new task lowers the old ones.
    #[rustfmt::skip]
    fn forgetting_matrix() -> Vec<Vec<f64>> {
        vec![
            vec![0.90, 0.20, 0.10],
            vec![0.70, 0.85, 0.15],
            vec![0.60, 0.75, 0.95],
        ]
    }

    const BASELINE: [f64; 3] = [0.10, 0.12, 0.08];

    #[test]
    fn three_tasks_with_forgetting() {
        let metrics = Metrics::from_accuracy(&forgetting_matrix(), Some(&BASELINE));

        // (0.60 + 0.75 + 0.95) / 3 = 2.30 / 3
        assert_close(metrics.average_accuracy, 2.30 / 3.0, "average accuracy");
        // ((0.60 − 0.90) + (0.75 − 0.85)) / 2 = (−0.30 − 0.10) / 2 = −0.20
        assert_close(metrics.backward_transfer, -0.20, "backward transfer");
        // task 0: max(0.90, 0.70) − 0.60 = 0.30; task 1: max(0.20, 0.85) − 0.75 = 0.10
        assert_close(metrics.forgetting.per_task[0], 0.30, "forgetting of task 0");
        assert_close(metrics.forgetting.per_task[1], 0.10, "forgetting of task 1");
        assert_eq!(
            metrics.forgetting.per_task[2], None,
            "the last task has no forgetting"
        );
        assert_eq!(
            metrics.forgetting.per_task.len(),
            3,
            "one forgetting entry per task"
        );
        // (0.30 + 0.10) / 2 = 0.20
        assert_close(metrics.forgetting.mean, 0.20, "mean forgetting");
        // ((0.20 − 0.12) + (0.15 − 0.08)) / 2 = (0.08 + 0.07) / 2 = 0.075
        assert_close(metrics.forward_transfer, 0.075, "forward transfer");
    }

    #[test]
    fn three_tasks_with_positive_backward_transfer() {
        // Task 0 improves while task 1 trains, then drops a little; task 1 ends at its best.
        #[rustfmt::skip]
        let accuracy = vec![
            vec![0.80, 0.30, 0.20],
            vec![0.90, 0.70, 0.40],
            vec![0.85, 0.72, 0.60],
        ];

        let metrics = Metrics::from_accuracy(&accuracy, None);

        // (0.85 + 0.72 + 0.60) / 3 = 2.17 / 3
        assert_close(metrics.average_accuracy, 2.17 / 3.0, "average accuracy");
        // ((0.85 − 0.80) + (0.72 − 0.70)) / 2 = (0.05 + 0.02) / 2 = 0.035
        assert_close(metrics.backward_transfer, 0.035, "backward transfer");
        // Forgetting measures from the best earlier row, not from R[j][j]:
        // task 0: max(0.80, 0.90) − 0.85 = 0.05, although R[2][0] > R[0][0].
        assert_close(metrics.forgetting.per_task[0], 0.05, "forgetting of task 0");
        // task 1: max(0.30, 0.70) − 0.72 = −0.02, negative because the last task helped.
        assert_close(
            metrics.forgetting.per_task[1],
            -0.02,
            "forgetting of task 1",
        );
        // (0.05 − 0.02) / 2 = 0.015
        assert_close(metrics.forgetting.mean, 0.015, "mean forgetting");
        assert_eq!(
            metrics.forward_transfer, None,
            "forward transfer needs a baseline"
        );
    }

    #[test]
    fn single_task_defines_only_average_accuracy() {
        let metrics = Metrics::from_accuracy(&[vec![0.97]], Some(&[0.11]));

        assert_close(
            metrics.average_accuracy,
            0.97,
            "average accuracy of one task",
        );
        assert_eq!(metrics.backward_transfer, None, "BWT needs a second task");
        assert_eq!(
            metrics.forgetting.per_task,
            vec![None],
            "one undefined forgetting entry"
        );
        assert_eq!(
            metrics.forgetting.mean, None,
            "mean forgetting needs a second task"
        );
        assert_eq!(metrics.forward_transfer, None, "FWT needs a second task");
    }

    #[test]
    fn stopped_run_uses_finished_rows() {
        // Two of three rows: the run stopped after task 1.
        let accuracy = forgetting_matrix()[..2].to_vec();

        let metrics = Metrics::from_accuracy(&accuracy, Some(&BASELINE));

        // Tasks 0 and 1 only: (0.70 + 0.85) / 2 = 0.775; task 2 (0.15) is not trained yet.
        assert_close(
            metrics.average_accuracy,
            0.775,
            "average over trained tasks",
        );
        // 0.70 − 0.90 = −0.20
        assert_close(metrics.backward_transfer, -0.20, "backward transfer");
        // task 0: max(0.90) − 0.70 = 0.20
        assert_close(metrics.forgetting.per_task[0], 0.20, "forgetting of task 0");
        assert_eq!(
            metrics.forgetting.per_task[1..],
            [None, None],
            "tasks 1 and 2 are not old"
        );
        assert_close(metrics.forgetting.mean, 0.20, "mean forgetting");
        // R[0][1] − b[1] = 0.20 − 0.12 = 0.08
        assert_close(metrics.forward_transfer, 0.08, "forward transfer");
    }

    #[test]
    fn empty_matrix_defines_nothing() {
        let metrics = Metrics::from_accuracy(&[], Some(&BASELINE));

        assert_eq!(
            metrics,
            Metrics::default(),
            "every metric should be undefined"
        );
    }

    #[test]
    fn missing_entries_give_none() {
        // Rows that hold only the tasks trained so far: R[0][1] is missing.
        let accuracy = vec![vec![0.90], vec![0.70, 0.80]];

        let metrics = Metrics::from_accuracy(&accuracy, Some(&[0.1, 0.1]));

        // (0.70 + 0.80) / 2 = 0.75
        assert_close(metrics.average_accuracy, 0.75, "average accuracy");
        // 0.70 − 0.90 = −0.20
        assert_close(metrics.backward_transfer, -0.20, "backward transfer");
        assert_eq!(
            metrics.forward_transfer, None,
            "FWT needs R[0][1], which is missing"
        );
    }

    #[test]
    fn short_baseline_gives_no_forward_transfer() {
        let metrics = Metrics::from_accuracy(&forgetting_matrix(), Some(&[0.1]));

        assert_eq!(metrics.forward_transfer, None, "b[1] and b[2] are missing");
    }

    #[test]
    fn undefined_metrics_serialize_as_null() {
        let metrics = Metrics::from_accuracy(&[vec![0.5]], None);

        let json = serde_json::to_value(&metrics).expect("metrics should serialize");

        assert_eq!(json["average_accuracy"], 0.5, "defined metric is a number");
        assert!(json["backward_transfer"].is_null(), "undefined BWT is null");
        assert!(
            json["forgetting"]["mean"].is_null(),
            "undefined mean forgetting is null"
        );
        assert!(
            json["forgetting"]["per_task"][0].is_null(),
            "undefined entry is null"
        );
        assert!(json["forward_transfer"].is_null(), "undefined FWT is null");
    }
}
