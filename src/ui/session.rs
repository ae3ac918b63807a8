//! One click on Run: the worker threads that load the data and train every run, and the
//! UI-side record of their progress.
//!
//! A coordinator thread loads the tasks, opens the GPU and starts the training threads. Each
//! training thread takes the next run that has not started, trains it with
//! [`runner::run_one`] and reports its result. With one training thread the runs go in file
//! order, as `run` trains them. Every run has its own cancel flag, so Stop ends one run and Stop all
//! sets every flag. The runner's events reach the UI through a relay thread that forwards them
//! and requests a repaint.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::experiment::config::{ExperimentConfig, RunSpec, expand_runs};
use crate::experiment::results::{DeviceInfo, Results, RunResult, RunStatus};
use crate::experiment::runner::{self, PreparedTasks, RunEvent};

use super::events::{Notifier, SessionEvent};
use super::log_panel::LogLine;
use super::shared_gpu::{SharedGpu, lower_worker_priority};

/// Stage of a run's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Waiting for a training thread.
    Queued,
    /// Training.
    Running,
    /// Stop was requested: the run ends at its next step, or when its turn comes if it had not
    /// started.
    Stopping,
    /// Ended with this status.
    Ended(RunStatus),
}

impl RunState {
    /// Name in the summary table.
    pub fn name(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Ended(status) => status.name(),
        }
    }

    /// Returns whether the run has not ended yet.
    pub fn is_active(self) -> bool {
        !matches!(self, Self::Ended(_))
    }
}

/// Progress of one run, as the summary table shows it.
#[derive(Debug, Clone)]
pub struct RunProgress {
    /// Stage the run is in.
    pub state: RunState,
    /// Optimizer steps taken.
    pub step: u64,
    /// Optimizer steps the run takes if it completes; 0 until it starts.
    pub total_steps: u64,
    /// Task being trained.
    pub task: usize,
    /// Mean training loss at the latest curve point.
    pub loss: Option<f64>,
    /// Penalty (or LwF distillation) term at the latest curve point.
    pub penalty: Option<f64>,
    started: Option<Instant>,
}

impl RunProgress {
    fn queued() -> Self {
        Self {
            state: RunState::Queued,
            step: 0,
            total_steps: 0,
            task: 0,
            loss: None,
            penalty: None,
            started: None,
        }
    }

    /// Fraction of the run's steps done, in [0, 1].
    pub fn fraction(&self) -> f32 {
        match self.state {
            RunState::Ended(RunStatus::Completed) => 1.0,
            _ if self.total_steps == 0 => 0.0,
            _ => (self.step as f64 / self.total_steps as f64).min(1.0) as f32,
        }
    }

    /// Seconds since the run started, while it trains.
    pub fn running_seconds(&self) -> Option<f64> {
        self.started
            .filter(|_| self.state.is_active())
            .map(|started| started.elapsed().as_secs_f64())
    }
}

/// Stage of the session as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Loading data or opening the GPU, as the text describes.
    Preparing(String),
    /// Runs are training.
    Training,
    /// Every run has ended.
    Finished,
    /// Training could not start; the log has the reason.
    Failed,
}

/// An experiment started by Run: the live results and the handles to stop its runs.
#[derive(Debug)]
pub struct Session {
    /// Id that tags this session's events.
    pub id: u64,
    /// Results so far: curves grow as points arrive, and each run is replaced by the runner's
    /// result when it ends.
    pub results: Results,
    /// Progress of each run, in the order of `results.runs`.
    pub progress: Vec<RunProgress>,
    /// Stage of the session.
    pub phase: Phase,
    cancel_flags: Vec<Arc<AtomicBool>>,
    started: Instant,
    wall_time: Option<Duration>,
}

impl Session {
    /// Starts training `config` on new threads and returns at once.
    ///
    /// `config` must be valid. `training_threads` runs train at the same time (at least one).
    /// On a software adapter one is probably fastest, because the adapter already spreads each
    /// kernel over every core.
    pub fn start(
        id: u64,
        config: ExperimentConfig,
        training_threads: usize,
        gpu: SharedGpu,
        notifier: Notifier,
    ) -> Self {
        let runs = expand_runs(&config);
        let mut session = Self::waiting(id, &config, &runs);
        let worker = Worker {
            id,
            config,
            runs,
            cancel_flags: session.cancel_flags.clone(),
            training_threads: training_threads.max(1),
            gpu,
            notifier: notifier.clone(),
        };
        let spawned = thread::Builder::new()
            .name("experiment".to_owned())
            .spawn(move || worker.run());
        if let Err(error) = spawned {
            let line = LogLine::error(
                format!("failed to start the experiment thread: {error}"),
                "the system is out of threads or memory; close other programs and click Run again",
            );
            notifier.session(id, SessionEvent::Failed(line));
            session.phase = Phase::Failed;
        }
        session
    }

    /// Creates a session whose runs all wait, without starting a thread.
    fn waiting(id: u64, config: &ExperimentConfig, runs: &[RunSpec]) -> Self {
        let mut results = Results::new(config.clone(), DeviceInfo::default());
        results.runs = runs.iter().map(RunResult::new).collect();
        Self {
            id,
            progress: results.runs.iter().map(|_| RunProgress::queued()).collect(),
            cancel_flags: results
                .runs
                .iter()
                .map(|_| Arc::new(AtomicBool::new(false)))
                .collect(),
            results,
            phase: Phase::Preparing("starting".to_owned()),
            started: Instant::now(),
            wall_time: None,
        }
    }

    /// Returns whether any run may still train.
    pub fn is_active(&self) -> bool {
        matches!(self.phase, Phase::Preparing(_) | Phase::Training)
    }

    /// Seconds since Run was clicked, frozen when the session ends.
    pub fn wall_seconds(&self) -> f64 {
        self.wall_time
            .unwrap_or_else(|| self.started.elapsed())
            .as_secs_f64()
    }

    /// Asks run `index` to stop: at its next step if it trains, before it starts if it waits.
    pub fn stop_run(&mut self, index: usize) {
        if let (Some(flag), Some(progress)) =
            (self.cancel_flags.get(index), self.progress.get_mut(index))
        {
            flag.store(true, Ordering::Relaxed);
            if matches!(progress.state, RunState::Queued | RunState::Running) {
                progress.state = RunState::Stopping;
            }
        }
    }

    /// Asks every run that has not ended to stop.
    pub fn stop_all(&mut self) {
        for index in 0..self.cancel_flags.len() {
            if self.progress[index].state.is_active() {
                self.stop_run(index);
            }
        }
    }

    /// Applies one event from the workers and returns the lines it adds to the log.
    pub fn apply(&mut self, event: SessionEvent) -> Vec<LogLine> {
        match event {
            SessionEvent::Preparing(step) => {
                self.phase = Phase::Preparing(step);
                Vec::new()
            }
            SessionEvent::Ready {
                device,
                tasks,
                data,
            } => {
                let line = LogLine::info(format!(
                    "training {} runs on {} ({})",
                    self.progress.len(),
                    device.adapter,
                    device.backend
                ));
                self.results.device = device;
                self.results.tasks = tasks;
                self.results.data = data;
                self.phase = Phase::Training;
                vec![line]
            }
            SessionEvent::Run(event) => self.apply_run_event(event),
            SessionEvent::Failed(line) => {
                self.phase = Phase::Failed;
                self.end_waiting_runs("not started, because the experiment could not start");
                self.wall_time = Some(self.started.elapsed());
                vec![line]
            }
            SessionEvent::Done => {
                self.phase = Phase::Finished;
                self.wall_time = Some(self.started.elapsed());
                vec![self.summary_line()]
            }
        }
    }

    fn apply_run_event(&mut self, event: RunEvent) -> Vec<LogLine> {
        match event {
            RunEvent::Started {
                run, total_steps, ..
            } => {
                if let Some(progress) = self.progress.get_mut(run) {
                    if progress.state == RunState::Queued {
                        progress.state = RunState::Running;
                    }
                    progress.total_steps = total_steps;
                    progress.started = Some(Instant::now());
                }
                Vec::new()
            }
            RunEvent::Step { run, task, step } => {
                if let Some(progress) = self.progress.get_mut(run) {
                    progress.step = step;
                    progress.task = task;
                }
                Vec::new()
            }
            RunEvent::Evaluated { run, point } => {
                if let Some(progress) = self.progress.get_mut(run) {
                    progress.step = progress.step.max(point.step);
                    progress.task = point.task;
                    progress.loss = point.loss;
                    progress.penalty = point.penalty;
                }
                if let Some(result) = self.results.runs.get_mut(run) {
                    result.curve.push(point);
                }
                Vec::new()
            }
            RunEvent::Baseline { run, accuracy } => {
                if let Some(result) = self.results.runs.get_mut(run) {
                    result.baseline = Some(accuracy);
                }
                Vec::new()
            }
            RunEvent::TaskEnded {
                run,
                task,
                accuracy,
            } => {
                if let Some(result) = self.results.runs.get_mut(run)
                    && result.accuracy.len() == task
                {
                    result.accuracy.push(accuracy);
                }
                Vec::new()
            }
            RunEvent::Log(message) => vec![LogLine::info(message)],
            RunEvent::Finished { run, result } => {
                let line = outcome_line(&result);
                if let Some(progress) = self.progress.get_mut(run) {
                    progress.state = RunState::Ended(result.status);
                }
                if let Some(slot) = self.results.runs.get_mut(run) {
                    *slot = *result;
                }
                vec![line]
            }
        }
    }

    /// Marks runs that never started as cancelled with `message`.
    fn end_waiting_runs(&mut self, message: &str) {
        for (progress, result) in self.progress.iter_mut().zip(&mut self.results.runs) {
            if progress.state.is_active() {
                progress.state = RunState::Ended(RunStatus::Cancelled);
                result.status = RunStatus::Cancelled;
                message.clone_into(&mut result.message);
            }
        }
    }

    fn summary_line(&self) -> LogLine {
        let count = |status: RunStatus| {
            self.results
                .runs
                .iter()
                .filter(|run| run.status == status)
                .count()
        };
        let completed = count(RunStatus::Completed);
        let mut parts = vec![format!("{completed} completed")];
        for status in [RunStatus::Diverged, RunStatus::Cancelled, RunStatus::Failed] {
            let n = count(status);
            if n > 0 {
                parts.push(format!("{n} {}", status.name()));
            }
        }
        LogLine::info(format!(
            "experiment finished in {:.1} s: {}",
            self.wall_seconds(),
            parts.join(", ")
        ))
    }
}

/// Formats the log line for a run that ended.
fn outcome_line(result: &RunResult) -> LogLine {
    let message = format!(
        "{}: {} after {:.1} s",
        result.label,
        result.status.name(),
        result.train_seconds
    );
    match result.status {
        RunStatus::Completed => LogLine::info(message),
        RunStatus::Cancelled => LogLine::info(format!("{message} ({})", result.message)),
        RunStatus::Diverged => LogLine::warn(
            format!("{message}: {}", result.message),
            "lower the learning rate or the method's λ/α and run again; the other runs are unaffected",
        ),
        RunStatus::Failed => LogLine::error(
            format!("{message}: {}", result.message),
            "the other runs are unaffected; if the message names the GPU, check the adapter with `ewc-workbench devices`",
        ),
    }
}

/// Everything the coordinator thread needs.
struct Worker {
    id: u64,
    config: ExperimentConfig,
    runs: Vec<RunSpec>,
    cancel_flags: Vec<Arc<AtomicBool>>,
    training_threads: usize,
    gpu: SharedGpu,
    notifier: Notifier,
}

impl Worker {
    /// Takes the index of the next run no thread has started.
    fn claim_run(&self, next_run: &AtomicUsize) -> Option<usize> {
        let index = next_run.fetch_add(1, Ordering::Relaxed);
        (index < self.runs.len()).then_some(index)
    }

    fn run(self) {
        lower_worker_priority();
        let notify = |event| self.notifier.session(self.id, event);

        notify(SessionEvent::Preparing("loading data".to_owned()));
        let (tasks, sources) = match runner::load_tasks_with_sources(&self.config, None) {
            Ok(loaded) => loaded,
            Err(error) => {
                let hint = "check the data directory or the dataset files in the setup panel; \
                            `ewc-workbench inspect FILE` describes what a file contains";
                notify(SessionEvent::Failed(LogLine::error(
                    error.to_string(),
                    hint,
                )));
                return;
            }
        };
        let task_names = tasks.iter().map(|task| task.name.clone()).collect();
        let prepared = PreparedTasks::new(
            tasks,
            self.config.head,
            self.config.training.eval_limit,
            self.config.seed,
        )
        .with_sources(sources);

        notify(SessionEvent::Preparing("opening the GPU".to_owned()));
        let context = match self.gpu.get_or_open() {
            Ok(context) => context,
            Err(message) => {
                let hint = "install a Vulkan driver (`apt-get install mesa-vulkan-drivers` gives the \
                            software adapter lavapipe), then click Run again; `ewc-workbench devices` \
                            lists the adapters wgpu can see";
                notify(SessionEvent::Failed(LogLine::error(message, hint)));
                return;
            }
        };
        if let Err(error) = runner::check_fits(&context, &self.config, &prepared) {
            let hint = "lower the batch size in the setup panel, then click Run again";
            notify(SessionEvent::Failed(LogLine::error(
                error.to_string(),
                hint,
            )));
            return;
        }
        notify(SessionEvent::Ready {
            device: runner::device_info(&context),
            tasks: task_names,
            data: prepared.data_records(),
        });

        let (sender, receiver) = mpsc::channel::<RunEvent>();
        let relay_notifier = self.notifier.clone();
        let id = self.id;
        let relay = thread::spawn(move || {
            for event in receiver {
                relay_notifier.session(id, SessionEvent::Run(event));
            }
        });

        let next_run = AtomicUsize::new(0);
        thread::scope(|scope| {
            for _ in 0..self.training_threads.min(self.runs.len()) {
                let sender = sender.clone();
                let (worker, next_run, context, prepared) = (&self, &next_run, &context, &prepared);
                scope.spawn(move || {
                    lower_worker_priority();
                    while let Some(index) = worker.claim_run(next_run) {
                        let run = &worker.runs[index];
                        let cancel = &*worker.cancel_flags[index];
                        let result = if cancel.load(Ordering::Relaxed) {
                            cancelled_before_start(run)
                        } else {
                            let train = || {
                                runner::run_one(
                                    context,
                                    &worker.config,
                                    prepared,
                                    run,
                                    index,
                                    &sender,
                                    cancel,
                                )
                            };
                            train_catching_panics(train, run)
                        };
                        let _ = sender.send(RunEvent::Finished {
                            run: index,
                            result: Box::new(result),
                        });
                    }
                });
            }
        });
        drop(sender);
        // The relay ends once every sender is gone; joining it keeps Done after the last event.
        if relay.join().is_err() {
            log::error!("the event relay thread panicked");
        }
        notify(SessionEvent::Done);
    }
}

fn cancelled_before_start(run: &RunSpec) -> RunResult {
    let mut result = RunResult::new(run);
    result.status = RunStatus::Cancelled;
    result.message = "cancelled before it started".to_owned();
    result
}

/// Runs `train`, turning a panic into a failed result so that one broken run cannot stop the
/// others or leave the window waiting for it.
fn train_catching_panics(train: impl FnOnce() -> RunResult, run: &RunSpec) -> RunResult {
    panic::catch_unwind(AssertUnwindSafe(train)).unwrap_or_else(|payload| {
        let reason = payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        let mut result = RunResult::new(run);
        result.status = RunStatus::Failed;
        result.message = format!("internal error: {reason}");
        result.update_metrics();
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_rows_arrive_while_run_trains() {
        let config = ExperimentConfig::preset("seed").expect("the seed preset exists");
        let mut session = Session::waiting(1, &config, &expand_runs(&config));
        let run = |event| SessionEvent::Run(event);

        session.apply(run(RunEvent::Baseline {
            run: 0,
            accuracy: vec![0.1, 0.12],
        }));
        session.apply(run(RunEvent::TaskEnded {
            run: 0,
            task: 0,
            accuracy: vec![0.95, 0.2],
        }));
        // A row out of order is dropped rather than put in the wrong place.
        session.apply(run(RunEvent::TaskEnded {
            run: 0,
            task: 2,
            accuracy: vec![0.5, 0.5],
        }));

        let result = &session.results.runs[0];
        assert_eq!(result.baseline, Some(vec![0.1, 0.12]), "baseline");
        assert_eq!(result.accuracy, vec![vec![0.95, 0.2]], "rows so far");
        assert!(
            session.results.runs[1].accuracy.is_empty(),
            "other runs keep an empty matrix"
        );
    }
}
