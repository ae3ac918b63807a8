//! Drives each run of an experiment through the task sequence on the GPU engine.
//!
//! The runner has no terminal or window code: it sends [`RunEvent`]s over a channel
//! and returns [`Results`]. A failing or diverging run ends with its status and message and the
//! next run starts; a cancel flag stops the current run and marks the rest cancelled.
//!
//! With `training.insights` on, each run also records the numbers behind the insight views
//! (see [`super::insights`]): its weights are read back at every curve point to measure their
//! distance from the previous task's weights, and runs whose method estimates no Fisher get a
//! Fisher pass at those weights after each task but the last.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::Instant;

use thiserror::Error;

use super::config::{
    DatasetSource, ExperimentConfig, HeadMode, Optimizer, RunSpec, SequenceConfig, expand_runs,
};
use super::insights::{FisherCache, FisherEstimator, FisherRecord, FisherSource, InsightRecorder};
use super::results::{CurvePoint, DeviceInfo, Results, RunResult, RunStatus, TaskDataRecord};
use crate::data::{self, DataError, Task};
use crate::gpu::{self, GpuContext, GpuError, GpuTrainer};
use crate::methods::{self, MethodState, head_for};
use crate::model::{IMAGE_PIXELS, Network};
use crate::reference::OptimizerKind;
use crate::rng::Rng;

/// Test images per evaluation batch.
const EVAL_BATCH: usize = 500;

/// Error that stops an experiment before any run starts.
#[derive(Debug, Error)]
pub enum RunnerError {
    /// A dataset could not be found or read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The GPU could not be opened.
    #[error(transparent)]
    Gpu(#[from] GpuError),
}

/// Progress of an experiment, in the order it happens.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// Run `run` (index into the expanded runs) starts; `total_steps` over all its tasks.
    Started {
        /// Run index.
        run: usize,
        /// Run label.
        label: String,
        /// Optimizer steps the run will take if it completes.
        total_steps: u64,
    },
    /// A training step finished (sent at most every few steps).
    Step {
        /// Run index.
        run: usize,
        /// Task being trained.
        task: usize,
        /// Steps since the run started.
        step: u64,
    },
    /// An evaluation point was measured.
    Evaluated {
        /// Run index.
        run: usize,
        /// The point, as stored in the results.
        point: CurvePoint,
    },
    /// The accuracy on every task before training, the results' `baseline`, was measured.
    Baseline {
        /// Run index.
        run: usize,
        /// Test accuracy on each task, as a fraction.
        accuracy: Vec<f64>,
    },
    /// Training on one task ended and the full test sets were measured: one row of the
    /// accuracy matrix.
    TaskEnded {
        /// Run index.
        run: usize,
        /// The task just trained.
        task: usize,
        /// Test accuracy on each task, as a fraction.
        accuracy: Vec<f64>,
    },
    /// A message for the log.
    Log(String),
    /// The run ended, in any status.
    Finished {
        /// Run index.
        run: usize,
        /// The run's results.
        result: Box<RunResult>,
    },
}

/// Each task's data as the engine consumes it, shared by all runs.
#[derive(Debug)]
pub struct PreparedTasks {
    /// The tasks, with their raw data.
    pub tasks: Vec<Task>,
    /// Whether each task has its own head.
    pub head_mode: HeadMode,
    /// Per task: the test images scaled to [0, 1] and their targets.
    test: Vec<(Vec<f32>, Vec<u32>)>,
    /// Per task: how many test images the curve points use (a prefix of a seeded shuffle).
    curve_samples: Vec<usize>,
    /// Per task: where its images came from and how that place was chosen; empty when the
    /// tasks were built without [`load_tasks_with_sources`].
    sources: Vec<TaskSource>,
}

/// Source of one task's images: the folder or file, and how it was chosen (a
/// [`data::HowFound`] as text, or `experiment file`).
pub type TaskSource = (PathBuf, String);

/// Loads the datasets a configuration names and builds its task sequence.
pub fn load_tasks(
    config: &ExperimentConfig,
    data_dir: Option<&Path>,
) -> Result<Vec<Task>, DataError> {
    load_tasks_with_sources(config, data_dir).map(|(tasks, _)| tasks)
}

/// [`load_tasks`], also returning for each task the folder or file its images came from and
/// how that was chosen, for [`PreparedTasks::with_sources`].
pub fn load_tasks_with_sources(
    config: &ExperimentConfig,
    data_dir: Option<&Path>,
) -> Result<(Vec<Task>, Vec<TaskSource>), DataError> {
    let data_dir = data_dir.or(config.data_dir.as_deref());
    let located = |name: &str| -> Result<(data::DatasetPair, TaskSource), DataError> {
        let (pair, source) = data::load_located_dataset(data_dir, name)?;
        Ok((pair, (source.dir.join(name), source.how_found.to_string())))
    };
    let mut sources = Vec::new();
    let mut tasks = match &config.sequence {
        SequenceConfig::Seed => {
            let (mnist, mnist_source) = located("mnist")?;
            let (fashion, fashion_source) = located("fashion-mnist")?;
            sources = vec![mnist_source, fashion_source];
            data::seed_sequence(mnist, fashion)
        }
        SequenceConfig::PermutedMnist { tasks } => {
            let (mnist, source) = located("mnist")?;
            sources = vec![source; *tasks];
            data::permuted_mnist(&mnist, *tasks, config.seed)
        }
        SequenceConfig::SplitMnist => {
            let (mnist, source) = located("mnist")?;
            let tasks = data::split_mnist(&mnist);
            sources = vec![source; tasks.len()];
            tasks
        }
        SequenceConfig::RotatedMnist { angles } => {
            let (mnist, source) = located("mnist")?;
            sources = vec![source; angles.len()];
            let angles: Vec<f32> = angles.iter().map(|&a| a as f32).collect();
            data::rotated_mnist(&mnist, &angles)
        }
        SequenceConfig::Custom { datasets } => {
            let mut loaded = Vec::new();
            for source in datasets {
                loaded.push((source.name().to_owned(), load_source(source)?));
                sources.push((source.train_path().to_owned(), "experiment file".to_owned()));
            }
            data::custom(loaded)
        }
    };
    data::limit_training(&mut tasks, config.training.limit, config.seed);
    Ok((tasks, sources))
}

fn load_source(source: &DatasetSource) -> Result<data::DatasetPair, DataError> {
    match source {
        DatasetSource::Idx {
            train_images,
            train_labels,
            test_images,
            test_labels,
            ..
        } => Ok(data::DatasetPair {
            train: data::load_idx_pair(train_images, train_labels)?,
            test: data::load_idx_pair(test_images, test_labels)?,
        }),
        DatasetSource::Csv { train, test, .. } => Ok(data::DatasetPair {
            train: data::load_csv(train)?,
            test: data::load_csv(test)?,
        }),
    }
}

impl PreparedTasks {
    /// Converts the test sets once, so every evaluation of every run reuses them. Curve points
    /// use the first `eval_limit` images of a seeded shuffle of each test set.
    pub fn new(
        mut tasks: Vec<Task>,
        head_mode: HeadMode,
        eval_limit: Option<usize>,
        seed: u64,
    ) -> Self {
        let per_task = head_mode == HeadMode::PerTask;
        let mut test = Vec::new();
        let mut curve_samples = Vec::new();
        for (t, task) in tasks.iter_mut().enumerate() {
            let mut order: Vec<u32> = (0..task.test.len() as u32).collect();
            Rng::derive(seed ^ t as u64, "curve test subset").shuffle(&mut order);
            let (mut images, mut targets) = (Vec::new(), Vec::new());
            data::fill_batch(
                &task.test,
                &order,
                task,
                per_task,
                &mut images,
                &mut targets,
            );
            curve_samples.push(eval_limit.unwrap_or(order.len()).min(order.len()));
            test.push((images, targets));
        }
        Self {
            tasks,
            head_mode,
            test,
            curve_samples,
            sources: Vec::new(),
        }
    }

    /// Attaches where each task's images came from, as [`load_tasks_with_sources`] returns it.
    #[must_use]
    pub fn with_sources(mut self, sources: Vec<TaskSource>) -> Self {
        self.sources = sources;
        self
    }

    /// Returns each task's data source and image counts for the results file, or nothing when
    /// no sources were attached.
    pub fn data_records(&self) -> Vec<TaskDataRecord> {
        if self.sources.len() != self.tasks.len() {
            return Vec::new();
        }
        self.tasks
            .iter()
            .zip(&self.sources)
            .map(|(task, (source, origin))| TaskDataRecord {
                task: task.name.clone(),
                source: source.clone(),
                origin: origin.clone(),
                train_images: task.train.len(),
                test_images: task.test.len(),
            })
            .collect()
    }

    /// Output units each head needs.
    pub fn head_outputs(&self) -> Vec<usize> {
        match self.head_mode {
            HeadMode::Shared => vec![
                self.tasks
                    .iter()
                    .map(|t| t.head_outputs(false))
                    .max()
                    .unwrap_or(10),
            ],
            HeadMode::PerTask => self.tasks.iter().map(|t| t.head_outputs(true)).collect(),
        }
    }

    /// Accuracy on each task's test set, all of it (`full`) or the curve subset.
    fn evaluate_all(&self, trainer: &mut GpuTrainer, full: bool) -> Result<Vec<f64>, GpuError> {
        let mut accuracy = Vec::with_capacity(self.tasks.len());
        for (t, (images, targets)) in self.test.iter().enumerate() {
            let n = if full {
                targets.len()
            } else {
                self.curve_samples[t]
            };
            let result = trainer.evaluate(
                &images[..n * IMAGE_PIXELS],
                &targets[..n],
                head_for(self.head_mode, t),
                EVAL_BATCH,
            )?;
            accuracy.push(result.accuracy());
        }
        Ok(accuracy)
    }
}

/// Returns the device description stored in results.
pub fn device_info(ctx: &GpuContext) -> DeviceInfo {
    DeviceInfo {
        adapter: ctx.adapter.name.clone(),
        backend: ctx.adapter.backend.to_lowercase(),
        device_type: ctx.adapter.device_type.clone(),
        driver: ctx.adapter.driver.clone(),
    }
}

/// Runs every run of `config` in turn and returns the results; runs after a cancel are marked
/// cancelled without training. The runs share one [`FisherCache`], so the insight Fisher pass
/// at the weights after the first task runs once for all runs that reach them.
pub fn run_experiment(
    ctx: &Arc<GpuContext>,
    config: &ExperimentConfig,
    prepared: &PreparedTasks,
    events: &Sender<RunEvent>,
    cancel: &AtomicBool,
) -> Results {
    let mut results = Results::new(config.clone(), device_info(ctx));
    results.tasks = prepared.tasks.iter().map(|t| t.name.clone()).collect();
    results.data = prepared.data_records();
    let fisher_cache = FisherCache::new();
    for (index, run) in expand_runs(config).iter().enumerate() {
        let result = if cancel.load(Ordering::Relaxed) {
            let mut r = RunResult::new(run);
            r.status = RunStatus::Cancelled;
            r.message = "cancelled before it started".to_owned();
            r
        } else {
            run_one_with_cache(
                ctx,
                config,
                prepared,
                run,
                index,
                events,
                cancel,
                &fisher_cache,
            )
            .0
        };
        // A closed channel only means that no receiver is left.
        let _ = events.send(RunEvent::Finished {
            run: index,
            result: Box::new(result.clone()),
        });
        results.runs.push(result);
    }
    results
}

/// Checks, before any run starts, that the experiment's training batches fit on `ctx`'s
/// adapter.
///
/// NOTE: checks `training.batch_size` even where the training sets are smaller than one batch,
/// so such an experiment can be rejected although every real batch would fit.
///
/// # Errors
///
/// [`GpuError::BatchTooLarge`] with the largest batch that fits.
pub fn check_fits(
    ctx: &GpuContext,
    config: &ExperimentConfig,
    prepared: &PreparedTasks,
) -> Result<(), GpuError> {
    let net = Network::new(&config.architecture, &prepared.head_outputs());
    gpu::check_batch(ctx, &net, config.training.batch_size)
}

/// What a run leaves besides its results: the weights after each finished task and the
/// Fisher diagonal of each task the method estimated one for.
#[derive(Debug, Clone, Default)]
pub struct RunArtifacts {
    /// Parameters after each finished task, in the network's layout.
    pub weights_after_task: Vec<Vec<f32>>,
    /// Fisher diagonals in task order (EWC and online EWC only).
    pub fishers: Vec<Vec<f32>>,
}

/// Trains one run through the sequence; every failure ends up in the result's status.
pub fn run_one(
    ctx: &Arc<GpuContext>,
    config: &ExperimentConfig,
    prepared: &PreparedTasks,
    run: &RunSpec,
    index: usize,
    events: &Sender<RunEvent>,
    cancel: &AtomicBool,
) -> RunResult {
    run_one_with_artifacts(ctx, config, prepared, run, index, events, cancel).0
}

/// [`run_one`], also returning the weights after each task and the Fisher diagonals.
pub fn run_one_with_artifacts(
    ctx: &Arc<GpuContext>,
    config: &ExperimentConfig,
    prepared: &PreparedTasks,
    run: &RunSpec,
    index: usize,
    events: &Sender<RunEvent>,
    cancel: &AtomicBool,
) -> (RunResult, RunArtifacts) {
    run_one_with_cache(
        ctx,
        config,
        prepared,
        run,
        index,
        events,
        cancel,
        &FisherCache::new(),
    )
}

/// [`run_one_with_artifacts`], reusing the insight Fisher diagonals of earlier runs in
/// `fisher_cache` and adding its own. Runs on several threads may share one cache.
#[allow(clippy::too_many_arguments)]
pub fn run_one_with_cache(
    ctx: &Arc<GpuContext>,
    config: &ExperimentConfig,
    prepared: &PreparedTasks,
    run: &RunSpec,
    index: usize,
    events: &Sender<RunEvent>,
    cancel: &AtomicBool,
    fisher_cache: &FisherCache,
) -> (RunResult, RunArtifacts) {
    let mut result = RunResult::new(run);
    let mut artifacts = RunArtifacts::default();
    let mut insights = config.training.insights.then(|| {
        let layout = Network::new(&config.architecture, &prepared.head_outputs()).layout;
        let store_tensors = config.training.record_weights.applies_to(layout.len);
        InsightRecorder::new(layout, store_tensors)
    });
    let started = Instant::now();
    let outcome = train_run(
        ctx,
        config,
        prepared,
        run,
        index,
        events,
        cancel,
        &mut result,
        &mut artifacts,
        insights.as_mut(),
        fisher_cache,
    );
    let insight_seconds = insights
        .as_ref()
        .map_or(0.0, InsightRecorder::fisher_seconds);
    result.train_seconds =
        started.elapsed().as_secs_f64() - result.fisher_seconds.unwrap_or(0.0) - insight_seconds;
    result.insights = insights.map(InsightRecorder::finish);
    match outcome {
        Ok(status) => result.status = status,
        Err(message) => {
            result.status = RunStatus::Failed;
            result.message = message;
        }
    }
    if result.status != RunStatus::Completed {
        log::warn!(
            "{}: {} ({})",
            run.label,
            result.status.name(),
            result.message
        );
    }
    result.update_metrics();
    (result, artifacts)
}

fn optimizer_kind(config: &ExperimentConfig) -> OptimizerKind {
    let t = &config.training;
    match t.optimizer {
        Optimizer::Adam => OptimizerKind::adam(t.learning_rate as f32),
        Optimizer::Sgd => OptimizerKind::Sgd {
            learning_rate: t.learning_rate as f32,
            momentum: t.momentum as f32,
        },
    }
}

/// One batch of a schedule: the head it trains and its samples as (task, index) pairs.
struct ScheduledBatch {
    head_task: usize,
    samples: Vec<(usize, u32)>,
}

/// The batches of one epoch over the union of the tasks in `sources` (one task except for
/// joint training). With a shared head, batches mix tasks; with a head per task, each batch
/// comes from one task and the batches of all tasks are shuffled together.
fn epoch_schedule(
    prepared: &PreparedTasks,
    sources: std::ops::RangeInclusive<usize>,
    batch: usize,
    rng: &mut Rng,
) -> Vec<ScheduledBatch> {
    let mut pool: Vec<(usize, u32)> = sources
        .clone()
        .flat_map(|t| (0..prepared.tasks[t].train.len() as u32).map(move |i| (t, i)))
        .collect();
    rng.shuffle(&mut pool);
    match prepared.head_mode {
        HeadMode::Shared => pool
            .chunks(batch)
            .map(|c| ScheduledBatch {
                head_task: *sources.end(),
                samples: c.to_vec(),
            })
            .collect(),
        HeadMode::PerTask => {
            let mut batches = Vec::new();
            for t in sources {
                let own: Vec<(usize, u32)> = pool
                    .iter()
                    .copied()
                    .filter(|&(task, _)| task == t)
                    .collect();
                batches.extend(own.chunks(batch).map(|c| ScheduledBatch {
                    head_task: t,
                    samples: c.to_vec(),
                }));
            }
            rng.shuffle(&mut batches);
            batches
        }
    }
}

/// Fills `images` (scaled to [0, 1]) and `targets` for one scheduled batch.
fn fill_scheduled(
    prepared: &PreparedTasks,
    batch: &ScheduledBatch,
    images: &mut Vec<f32>,
    targets: &mut Vec<u32>,
) {
    let per_task = prepared.head_mode == HeadMode::PerTask;
    images.clear();
    targets.clear();
    for &(t, i) in &batch.samples {
        let task = &prepared.tasks[t];
        images.extend(
            task.train
                .image(i as usize)
                .iter()
                .map(|&p| f32::from(p) / 255.0),
        );
        targets.push(task.target_of(task.train.labels[i as usize], per_task));
    }
}

#[allow(clippy::too_many_arguments)]
fn train_run(
    ctx: &Arc<GpuContext>,
    config: &ExperimentConfig,
    prepared: &PreparedTasks,
    run: &RunSpec,
    index: usize,
    events: &Sender<RunEvent>,
    cancel: &AtomicBool,
    result: &mut RunResult,
    artifacts: &mut RunArtifacts,
    mut insights: Option<&mut InsightRecorder>,
    fisher_cache: &FisherCache,
) -> Result<RunStatus, String> {
    let mut method = MethodState::new(run.method.clone());
    let net = Network::new(&config.architecture, &prepared.head_outputs());
    let gpu = |e: GpuError| e.to_string();
    gpu::check_batch(ctx, &net, config.training.batch_size).map_err(gpu)?;
    let params = net.init_params(config.seed);
    let mut trainer = GpuTrainer::new(ctx.clone(), net, &params, optimizer_kind(config));
    let training = &config.training;
    let task_count = prepared.tasks.len();

    let total_steps: u64 = (0..task_count)
        .map(|t| {
            let samples: usize = method
                .training_tasks(t)
                .map(|s| prepared.tasks[s].train.len())
                .sum();
            (samples.div_ceil(training.batch_size) * training.epochs) as u64
        })
        .sum();
    let _ = events.send(RunEvent::Started {
        run: index,
        label: run.label.clone(),
        total_steps,
    });
    log::info!(
        "{}: training {} tasks, {total_steps} steps",
        run.label,
        task_count
    );

    let baseline = prepared.evaluate_all(&mut trainer, true).map_err(gpu)?;
    let _ = events.send(RunEvent::Baseline {
        run: index,
        accuracy: baseline.clone(),
    });
    result.baseline = Some(baseline);
    let mut rng = Rng::derive(config.seed, "batch order");
    let mut step: u64 = 0;
    let (mut images, mut targets) = (Vec::new(), Vec::new());

    for t in 0..task_count {
        method.before_task(&mut trainer, t, prepared.head_mode);
        let sources = method.training_tasks(t);
        let mut steps_since_point = 0usize;
        for _ in 0..training.epochs {
            let batches = epoch_schedule(prepared, sources.clone(), training.batch_size, &mut rng);
            for batch in &batches {
                if cancel.load(Ordering::Relaxed) {
                    result.message = format!("cancelled at step {step}");
                    return Ok(RunStatus::Cancelled);
                }
                fill_scheduled(prepared, batch, &mut images, &mut targets);
                trainer.train_step(
                    &images,
                    &targets,
                    head_for(prepared.head_mode, batch.head_task),
                );
                step += 1;
                steps_since_point += 1;
                if step.is_multiple_of(10) {
                    let _ = events.send(RunEvent::Step {
                        run: index,
                        task: t,
                        step,
                    });
                }
                if steps_since_point >= training.eval_every {
                    steps_since_point = 0;
                    if let Some(diverged) = record_point(
                        &mut trainer,
                        prepared,
                        &method,
                        t,
                        step,
                        index,
                        events,
                        result,
                        insights.as_deref_mut(),
                    )
                    .map_err(gpu)?
                    {
                        result.message = diverged;
                        return Ok(RunStatus::Diverged);
                    }
                }
            }
        }
        if let Some(diverged) = record_point(
            &mut trainer,
            prepared,
            &method,
            t,
            step,
            index,
            events,
            result,
            insights.as_deref_mut(),
        )
        .map_err(gpu)?
        {
            result.message = diverged;
            return Ok(RunStatus::Diverged);
        }
        let row = prepared.evaluate_all(&mut trainer, true).map_err(gpu)?;
        let _ = events.send(RunEvent::Log(format!(
            "{}: after task {} ({}): {}",
            run.label,
            t + 1,
            prepared.tasks[t].name,
            row.iter()
                .map(|a| format!("{:.1}%", 100.0 * a))
                .collect::<Vec<_>>()
                .join(", ")
        )));
        let _ = events.send(RunEvent::TaskEnded {
            run: index,
            task: t,
            accuracy: row.clone(),
        });
        result.accuracy.push(row);
        let weights = trainer.params().map_err(gpu)?;
        artifacts.weights_after_task.push(weights.clone());
        if t + 1 < task_count {
            let own_fishers = method.fishers.len();
            if let Some(seconds) = method
                .after_task(
                    &mut trainer,
                    &prepared.tasks,
                    t,
                    prepared.head_mode,
                    config.seed,
                )
                .map_err(gpu)?
            {
                *result.fisher_seconds.get_or_insert(0.0) += seconds;
            }
            if let Some(recorder) = insights.as_deref_mut() {
                let anchor = AnchorFisher {
                    config,
                    prepared,
                    run,
                    task: t,
                    weights: &weights,
                    cache: fisher_cache,
                };
                let fisher = anchor
                    .fisher(&mut trainer, &method, own_fishers, recorder)
                    .map_err(gpu)?;
                recorder.finish_task(weights, Some(fisher));
            }
        } else if let Some(recorder) = insights.as_deref_mut() {
            recorder.finish_task(weights, None);
        }
    }
    artifacts.fishers = method.fishers;
    Ok(RunStatus::Completed)
}

/// Reads the training sums and evaluates the curve subsets. Returns a message when the loss
/// stopped being finite since the previous point.
#[allow(clippy::too_many_arguments)]
fn record_point(
    trainer: &mut GpuTrainer,
    prepared: &PreparedTasks,
    method: &MethodState,
    task: usize,
    step: u64,
    index: usize,
    events: &Sender<RunEvent>,
    result: &mut RunResult,
    insights: Option<&mut InsightRecorder>,
) -> Result<Option<String>, GpuError> {
    let stats = trainer.take_train_stats()?;
    if stats.batches == 0 {
        return Ok(None);
    }
    if let Some(batch) = stats.first_nonfinite_batch {
        let at = step - u64::from(stats.batches) + u64::from(batch);
        return Ok(Some(format!(
            "the training loss became NaN or infinite at step {at} (task {})",
            task + 1
        )));
    }
    let penalty = if matches!(method.spec(), super::config::MethodSpec::Lwf { .. }) {
        Some(f64::from(stats.mean_distillation))
    } else if method.has_penalty() {
        let value = trainer.penalty_value()?;
        if !value.is_finite() {
            return Ok(Some(format!(
                "the penalty became NaN or infinite by step {step} (task {})",
                task + 1
            )));
        }
        Some(f64::from(value))
    } else {
        None
    };
    let point = CurvePoint {
        step,
        task,
        accuracy: prepared.evaluate_all(trainer, false)?,
        loss: Some(f64::from(stats.mean_loss)),
        penalty,
    };
    if let Some(recorder) = insights
        && recorder.has_anchor()
    {
        recorder.record_distance(step, task, &trainer.params()?);
    }
    let _ = events.send(RunEvent::Evaluated {
        run: index,
        point: point.clone(),
    });
    result.curve.push(point);
    Ok(None)
}

/// The Fisher diagonal at the weights after one task, for the insight views.
struct AnchorFisher<'a> {
    config: &'a ExperimentConfig,
    prepared: &'a PreparedTasks,
    run: &'a RunSpec,
    task: usize,
    weights: &'a [f32],
    cache: &'a FisherCache,
}

impl AnchorFisher<'_> {
    /// Takes the method's own diagonal when `after_task` estimated one (the method then holds
    /// more than `own_fishers`), else a cached diagonal at bit-identical weights, else runs a
    /// Fisher pass with the experiment's insight estimator and adds its time to `recorder`.
    fn fisher(
        &self,
        trainer: &mut GpuTrainer,
        method: &MethodState,
        own_fishers: usize,
        recorder: &mut InsightRecorder,
    ) -> Result<(FisherRecord, Vec<f32>), GpuError> {
        let available = self.prepared.tasks[self.task].train.len();
        let label = self.run.label.as_str();

        if method.fishers.len() > own_fishers
            && let (Some(values), Some(estimator)) = (
                method.fishers.last(),
                FisherEstimator::of_method(method.spec()),
            )
        {
            self.cache
                .insert(self.task, estimator, self.weights, values, label);
            return Ok((
                self.record(FisherSource::Method, estimator, available, None),
                values.clone(),
            ));
        }

        let estimator = FisherEstimator::for_insights(self.config);
        if let Some((values, from_run)) = self.cache.find(self.task, estimator, self.weights) {
            log::debug!(
                "{label}: reusing the Fisher after task {} from {from_run}",
                self.task + 1
            );
            return Ok((
                self.record(FisherSource::Insights, estimator, available, Some(from_run)),
                values,
            ));
        }

        let started = Instant::now();
        let head_mode = self.prepared.head_mode;
        let values = methods::fisher_diagonal(
            trainer,
            &self.prepared.tasks[self.task],
            head_for(head_mode, self.task),
            head_mode,
            estimator.kind,
            estimator.samples,
            self.config.seed,
            self.task,
        )?;
        recorder.add_fisher_seconds(started.elapsed().as_secs_f64());
        self.cache
            .insert(self.task, estimator, self.weights, &values, label);
        Ok((
            self.record(FisherSource::Insights, estimator, available, None),
            values,
        ))
    }

    fn record(
        &self,
        source: FisherSource,
        estimator: FisherEstimator,
        available: usize,
        reused_from: Option<String>,
    ) -> FisherRecord {
        FisherRecord {
            task: self.task,
            source,
            kind: estimator.kind,
            samples: estimator.samples_used(available),
            reused_from,
            values: None,
        }
    }
}
