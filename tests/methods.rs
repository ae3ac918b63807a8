//! Continual-learning methods checked by their definitions, on the bundled data and whatever
//! adapter wgpu picks (Mesa's lavapipe in CI).
//!
//! Most tests train a few steps on a few hundred images. They check what a method must do
//! exactly, which needs no accuracy: a zero strength is fine-tuning, frozen layers keep their
//! bits, and online EWC's running Fisher is γ·F₁ + F₂. One test trains long enough to see EWC
//! keep MNIST accuracy that fine-tuning loses.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

use ewc_workbench::data::{self, Task};
use ewc_workbench::experiment::config::{
    ExperimentConfig, FisherKind, HeadMode, MethodSpec, Optimizer, RunSpec, SequenceConfig,
    apply_methods_list, apply_set, expand_runs,
};
use ewc_workbench::experiment::results::{RunResult, RunStatus};
use ewc_workbench::experiment::runner::{
    self, PreparedTasks, RunArtifacts, RunEvent, run_experiment, run_one_with_artifacts,
};
use ewc_workbench::gpu::{GpuContext, GpuTrainer};
use ewc_workbench::methods::MethodState;
use ewc_workbench::model::{Architecture, IMAGE_PIXELS, Network};
use ewc_workbench::reference::OptimizerKind;

/// Training images per task in the short runs: four steps of the default batch of 64.
const SHORT_LIMIT: usize = 256;
/// Test images per task that the short runs keep. The accuracy matrix is always measured on
/// the whole test split, and on a software adapter 2 × 1000 images per evaluation would cost
/// more than the training the definitional tests need.
const SHORT_TEST_LIMIT: usize = 200;
/// Test images per task in each curve point.
const EVAL_LIMIT: usize = 100;

fn bundled_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets")
}

/// Returns the GPU context that every test in this file shares, because opening a device and
/// compiling the kernels takes seconds on a software adapter.
fn gpu() -> Arc<GpuContext> {
    static CONTEXT: OnceLock<Arc<GpuContext>> = OnceLock::new();
    CONTEXT
        .get_or_init(|| GpuContext::new().unwrap_or_else(|error| panic!("no GPU context: {error}")))
        .clone()
}

/// Builds the seed experiment (MNIST then Fashion-MNIST, seed CNN, shared head) on the bundled
/// data, with `methods` and each `--set` override in `settings`.
fn seed_config(methods: &str, settings: &[&str], limit: Option<usize>) -> ExperimentConfig {
    let mut config = ExperimentConfig::preset("seed").expect("the seed preset exists");
    apply_methods_list(&mut config, methods)
        .unwrap_or_else(|error| panic!("--methods {methods}: {error}"));
    for setting in settings {
        apply_set(&mut config, setting).unwrap_or_else(|error| panic!("--set {setting}: {error}"));
    }
    config.training.limit = limit;
    config.training.eval_limit = Some(EVAL_LIMIT);
    config.data_dir = Some(bundled_dir());
    config
        .validate()
        .unwrap_or_else(|error| panic!("invalid test experiment: {error}"));
    config
}

/// Loads the tasks of `config` from the bundled data, keeping the first `test_limit` images
/// of each test split (all when `None`).
fn prepare(config: &ExperimentConfig, test_limit: Option<usize>) -> PreparedTasks {
    let mut tasks = runner::load_tasks(config, Some(&bundled_dir()))
        .unwrap_or_else(|error| panic!("bundled data failed to load: {error}"));
    if let Some(limit) = test_limit {
        for task in &mut tasks {
            task.test.images.truncate(limit * IMAGE_PIXELS);
            task.test.labels.truncate(limit);
        }
    }
    PreparedTasks::new(tasks, config.head, config.training.eval_limit, config.seed)
}

/// Loads the tasks of `config` with each test split cut to [`SHORT_TEST_LIMIT`] images.
fn prepare_short(config: &ExperimentConfig) -> PreparedTasks {
    prepare(config, Some(SHORT_TEST_LIMIT))
}

/// Finds the run of `config` whose label starts with `method`, and its index.
fn run_spec(config: &ExperimentConfig, method: &str) -> (usize, RunSpec) {
    expand_runs(config)
        .into_iter()
        .enumerate()
        .find(|(_, run)| run.label.starts_with(method))
        .unwrap_or_else(|| panic!("no run of {method} in {:?}", config.methods))
}

/// Checks that the events a run sent while training give its baseline and accuracy matrix,
/// row by row in task order, as the result stores them.
fn check_live_matrix(events: &mpsc::Receiver<RunEvent>, result: &RunResult) {
    let mut baseline = None;
    let mut rows = Vec::new();
    for event in events.try_iter() {
        match event {
            RunEvent::Baseline { accuracy, .. } => baseline = Some(accuracy),
            RunEvent::TaskEnded { task, accuracy, .. } => {
                assert_eq!(
                    task,
                    rows.len(),
                    "{}: rows arrive in task order",
                    result.label
                );
                rows.push(accuracy);
            }
            _ => {}
        }
    }
    assert_eq!(
        baseline, result.baseline,
        "{}: baseline event",
        result.label
    );
    assert_eq!(rows, result.accuracy, "{}: row events", result.label);
}

/// Trains the run of `method` through every task and returns its result and weights.
fn train(
    config: &ExperimentConfig,
    prepared: &PreparedTasks,
    method: &str,
) -> (RunResult, RunArtifacts) {
    let (index, run) = run_spec(config, method);
    let (sender, receiver) = mpsc::channel::<RunEvent>();
    let cancel = AtomicBool::new(false);
    let (result, artifacts) =
        run_one_with_artifacts(&gpu(), config, prepared, &run, index, &sender, &cancel);
    assert_eq!(
        result.status,
        RunStatus::Completed,
        "{}: run did not complete ({})",
        run.label,
        result.message
    );
    drop(sender);
    check_live_matrix(&receiver, &result);
    assert_eq!(
        artifacts.weights_after_task.len(),
        prepared.tasks.len(),
        "{}: weights after each task",
        run.label
    );
    (result, artifacts)
}

/// Returns the indices where `a` and `b` differ in their bits, so -0.0 differs from 0.0 and a
/// NaN equals only the same NaN.
fn differing_bits(a: &[f32], b: &[f32]) -> Vec<usize> {
    assert_eq!(a.len(), b.len(), "parameter vectors of different lengths");
    (0..a.len())
        .filter(|&i| a[i].to_bits() != b[i].to_bits())
        .collect()
}

// --- A zero penalty or distillation weight is fine-tuning ---------------------------------

/// Builds the seed experiment with fine-tuning and each method at zero strength, four steps per
/// task.
fn zero_strength_config() -> ExperimentConfig {
    seed_config(
        "finetune,l2,ewc,lwf",
        &[
            "l2.lambda=0",
            "ewc.lambda=0",
            "ewc.fisher_samples=64",
            "lwf.alpha=0",
            "training.eval_every=1000",
        ],
        Some(SHORT_LIMIT),
    )
}

/// Returns fine-tuning's weights after the last task of [`zero_strength_config`], trained once
/// and shared by the tests that compare against it.
fn finetune_final_weights() -> &'static [f32] {
    static WEIGHTS: OnceLock<Vec<f32>> = OnceLock::new();
    WEIGHTS.get_or_init(|| {
        let config = zero_strength_config();
        let (_, artifacts) = train(&config, &prepare_short(&config), "finetune");
        artifacts
            .weights_after_task
            .last()
            .cloned()
            .expect("weights after the last task")
    })
}

fn assert_matches_finetune(method: &str, setting: &str) {
    let config = zero_strength_config();
    let (result, artifacts) = train(&config, &prepare_short(&config), method);
    let weights = artifacts
        .weights_after_task
        .last()
        .expect("weights after the last task");
    let reference = finetune_final_weights();

    let differing = differing_bits(weights, reference);
    assert!(
        differing.is_empty(),
        "{} ({setting}): {} of {} parameters differ from fine-tuning after task 2; first at \
         index {}: {} vs fine-tuning {}",
        result.label,
        differing.len(),
        weights.len(),
        differing[0],
        weights[differing[0]],
        reference[differing[0]]
    );
}

#[test]
fn ewc_with_zero_lambda_matches_finetune() {
    assert_matches_finetune("ewc", "ewc.lambda=0");
}

#[test]
fn l2_with_zero_lambda_matches_finetune() {
    assert_matches_finetune("l2", "l2.lambda=0");
}

#[test]
fn lwf_with_zero_alpha_matches_finetune() {
    assert_matches_finetune("lwf", "lwf.alpha=0");
}

// --- Frozen features -------------------------------------------------------------------------

#[test]
fn frozen_features_keep_their_bits() {
    let config = seed_config("frozen", &["training.eval_every=1000"], Some(SHORT_LIMIT));
    let prepared = prepare_short(&config);
    let (_, artifacts) = train(&config, &prepared, "frozen");
    let network = Network::new(&config.architecture, &prepared.head_outputs());
    let [after_task_1, after_task_2] = artifacts.weights_after_task.as_slice() else {
        panic!("frozen: expected weights after 2 tasks");
    };

    let features = network.layout.features_range();
    let changed_features = differing_bits(
        &after_task_1[features.clone()],
        &after_task_2[features.clone()],
    );
    assert!(
        changed_features.is_empty(),
        "frozen: {} of {} feature parameters changed during task 2; first at index {}",
        changed_features.len(),
        features.len(),
        changed_features[0]
    );

    let head = network.layout.head_range(0);
    let changed_head = differing_bits(&after_task_1[head.clone()], &after_task_2[head.clone()]);
    assert!(
        !changed_head.is_empty(),
        "frozen: none of the {} head parameters changed during task 2",
        head.len()
    );
}

// --- Online and offline EWC bookkeeping over three tasks ------------------------------------

/// Training steps per task when a test drives a method by hand.
const STEPS_PER_TASK: usize = 3;
/// Images per step when a test drives a method by hand.
const HAND_BATCH: usize = 32;
/// Training samples in each Fisher estimate when a test drives a method by hand.
const HAND_FISHER_SAMPLES: usize = 128;
const HAND_SEED: u64 = 7;

/// Loads three permuted-MNIST tasks from the bundled MNIST, cut to what the hand-driven tests
/// use.
fn three_permuted_tasks() -> Vec<Task> {
    let mut config =
        ExperimentConfig::preset("permuted-mnist").expect("the permuted-mnist preset exists");
    config.sequence = SequenceConfig::PermutedMnist { tasks: 3 };
    config.training.limit = Some(HAND_FISHER_SAMPLES.max(STEPS_PER_TASK * HAND_BATCH));
    config.seed = HAND_SEED;
    runner::load_tasks(&config, Some(&bundled_dir()))
        .unwrap_or_else(|error| panic!("bundled MNIST failed to load: {error}"))
}

/// Creates a trainer for a one-hidden-layer MLP. The methods' bookkeeping does not depend on
/// the network, and a small one keeps the Fisher passes short.
fn small_trainer() -> GpuTrainer {
    let network = Network::new(&Architecture::Mlp { hidden: vec![64] }, &[10]);
    let params = network.init_params(HAND_SEED);
    GpuTrainer::new(gpu(), network, &params, OptimizerKind::adam(1e-3))
}

/// Drives `method` through the first `task_count` tasks as the runner does, with a few steps
/// of Adam per task. Returns the weights after each task.
fn train_by_hand(
    trainer: &mut GpuTrainer,
    method: &mut MethodState,
    tasks: &[Task],
    task_count: usize,
) -> Vec<Vec<f32>> {
    let mut weights_after_task = Vec::new();
    let (mut images, mut targets) = (Vec::new(), Vec::new());
    for t in 0..task_count {
        method.before_task(trainer, t, HeadMode::Shared);
        for step in 0..STEPS_PER_TASK {
            let indices: Vec<u32> = (step * HAND_BATCH..(step + 1) * HAND_BATCH)
                .map(|i| i as u32)
                .collect();
            data::fill_batch(
                &tasks[t].train,
                &indices,
                &tasks[t],
                false,
                &mut images,
                &mut targets,
            );
            trainer.train_step(&images, &targets, 0);
        }
        weights_after_task.push(trainer.params().expect("parameters read back"));
        method
            .after_task(trainer, tasks, t, HeadMode::Shared, HAND_SEED)
            .unwrap_or_else(|error| panic!("after task {}: {error}", t + 1));
    }
    weights_after_task
}

fn positive_count(values: &[f32]) -> usize {
    values.iter().filter(|&&v| v > 0.0).count()
}

#[test]
fn online_ewc_decays_the_running_fisher() {
    let gamma = 0.5;
    let tasks = three_permuted_tasks();
    let mut trainer = small_trainer();
    let mut method = MethodState::new(MethodSpec::OnlineEwc {
        lambda: 1000.0,
        gamma,
        fisher: FisherKind::Exact,
        fisher_samples: Some(HAND_FISHER_SAMPLES),
    });
    let weights_after_task = train_by_hand(&mut trainer, &mut method, &tasks, 2);

    assert_eq!(
        method.fishers.len(),
        2,
        "online EWC: one Fisher diagonal per finished task"
    );
    let (fisher_1, fisher_2) = (&method.fishers[0], &method.fishers[1]);
    // With F₁ all zero, γ·F₁ + F₂ could not be distinguished from F₂.
    assert!(
        positive_count(fisher_1) > 0,
        "online EWC: the Fisher of task 1 is all zero"
    );
    assert!(
        positive_count(fisher_2) > 0,
        "online EWC: the Fisher of task 2 is all zero"
    );

    let (anchors, importances) = method.penalty_terms();
    assert_eq!(anchors.len(), 1, "online EWC: anchors before task 3");
    assert_eq!(
        importances.len(),
        1,
        "online EWC: importance vectors before task 3"
    );
    let differing = differing_bits(&anchors[0], &weights_after_task[1]);
    assert!(
        differing.is_empty(),
        "online EWC: the anchor differs from the weights after task 2 in {} of {} parameters",
        differing.len(),
        anchors[0].len()
    );

    let mut first_mismatch: Option<(usize, f32, f32)> = None;
    for (i, &importance) in importances[0].iter().enumerate() {
        let expected = gamma as f32 * fisher_1[i] + fisher_2[i];
        let tolerance = 1e-6 * expected.abs() + 1e-30;
        if (importance - expected).abs() > tolerance {
            first_mismatch = first_mismatch.or(Some((i, importance, expected)));
        }
    }
    if let Some((i, importance, expected)) = first_mismatch {
        panic!(
            "online EWC: importance[{i}] = {importance:e} but γ·F₁ + F₂ = {gamma}·{:e} + {:e} = {expected:e}",
            fisher_1[i], fisher_2[i]
        );
    }

    // The penalty λ/2 Σ F (θ − θ*)² is zero at its anchor and positive one step away.
    method.before_task(&mut trainer, 2, HeadMode::Shared);
    assert_eq!(
        trainer.penalty_terms(),
        1,
        "online EWC: penalty terms on the GPU for task 3"
    );
    let at_anchor = trainer.penalty_value().expect("penalty read back");
    assert_eq!(at_anchor, 0.0, "online EWC: penalty at the anchor");
    let (mut images, mut targets) = (Vec::new(), Vec::new());
    let indices: Vec<u32> = (0..HAND_BATCH as u32).collect();
    data::fill_batch(
        &tasks[2].train,
        &indices,
        &tasks[2],
        false,
        &mut images,
        &mut targets,
    );
    trainer.train_step(&images, &targets, 0);
    let after_step = trainer.penalty_value().expect("penalty read back");
    assert!(
        after_step > 0.0,
        "online EWC: penalty one step from the anchor is {after_step:e}"
    );
}

#[test]
fn offline_ewc_keeps_one_penalty_per_task() {
    let tasks = three_permuted_tasks();
    let mut trainer = small_trainer();
    let mut method = MethodState::new(MethodSpec::Ewc {
        lambda: 1000.0,
        fisher: FisherKind::Exact,
        fisher_samples: Some(HAND_FISHER_SAMPLES),
    });
    let weights_after_task = train_by_hand(&mut trainer, &mut method, &tasks, 2);

    let (anchors, importances) = method.penalty_terms();
    assert_eq!(anchors.len(), 2, "offline EWC: anchors before task 3");
    assert_eq!(
        importances.len(),
        2,
        "offline EWC: importance vectors before task 3"
    );
    assert_eq!(
        method.fishers.len(),
        2,
        "offline EWC: Fisher diagonals before task 3"
    );
    for t in 0..2 {
        let differing = differing_bits(&anchors[t], &weights_after_task[t]);
        assert!(
            differing.is_empty(),
            "offline EWC: anchor {} differs from the weights after task {} in {} parameters",
            t + 1,
            t + 1,
            differing.len()
        );
        let differing = differing_bits(&importances[t], &method.fishers[t]);
        assert!(
            differing.is_empty(),
            "offline EWC: importance {} differs from the Fisher of task {} in {} parameters",
            t + 1,
            t + 1,
            differing.len()
        );
        assert!(
            positive_count(&importances[t]) > 0,
            "offline EWC: the Fisher of task {} is all zero",
            t + 1
        );
    }

    method.before_task(&mut trainer, 2, HeadMode::Shared);
    assert_eq!(
        trainer.penalty_terms(),
        2,
        "offline EWC: penalty terms on the GPU for task 3"
    );
}

// --- Penalties reported in the curve ---------------------------------------------------------

#[test]
fn curve_penalty_is_zero_then_positive() {
    // A point every 2 steps gives two points in each task of 4 steps.
    let config = seed_config(
        "l2,ewc,lwf",
        &["training.eval_every=2", "ewc.fisher_samples=64"],
        Some(SHORT_LIMIT),
    );
    let prepared = prepare_short(&config);
    for method in ["l2", "ewc", "lwf"] {
        let (result, _) = train(&config, &prepared, method);
        for task in 0..2 {
            let points = result.curve.iter().filter(|p| p.task == task).count();
            assert!(
                points > 0,
                "{}: no curve points during task {}",
                result.label,
                task + 1
            );
        }
        for point in &result.curve {
            let penalty = point.penalty.unwrap_or_else(|| {
                panic!(
                    "{}: no penalty at step {} (task {})",
                    result.label,
                    point.step,
                    point.task + 1
                )
            });
            if point.task == 0 {
                assert_eq!(
                    penalty, 0.0,
                    "{}: penalty at step {} during task 1",
                    result.label, point.step
                );
            } else {
                assert!(
                    penalty > 0.0 && penalty.is_finite(),
                    "{}: penalty at step {} during task 2 is {penalty:e}, expected finite and > 0",
                    result.label,
                    point.step
                );
            }
        }
    }
}

// --- Divergence ends one run, not the experiment --------------------------------------------

#[test]
fn diverging_run_does_not_stop_the_next() {
    // SGD on the L2 penalty alone moves d = θ − θ* by d ← d − lr·λ·d, so with lr·λ = 1e4 the
    // distance from the anchor grows about 1e4 times per step once task 2 starts, and momentum
    // only adds to that. Starting from the ~1e-4 of one cross-entropy step, it passes f32's
    // maximum, 3.4e38, within about 11 steps (an estimate). Task 2 has 16 steps, so the loss or
    // the penalty must become infinite or NaN. On lavapipe the loss did so at step 23, the 7th
    // of task 2. Task 1 has no anchor and trains normally.
    let config = seed_config(
        "l2,finetune",
        &[
            "training.optimizer=sgd",
            "training.learning_rate=0.01",
            "training.batch_size=32",
            "training.eval_every=4",
            "l2.lambda=1e6",
        ],
        Some(512),
    );
    assert_eq!(
        config.training.optimizer,
        Optimizer::Sgd,
        "divergence: optimizer"
    );
    let steps_per_task = 512 / 32;
    let prepared = prepare_short(&config);
    let (sender, _receiver) = mpsc::channel::<RunEvent>();
    let cancel = AtomicBool::new(false);
    let results = run_experiment(&gpu(), &config, &prepared, &sender, &cancel);

    assert_eq!(results.runs.len(), 2, "divergence: runs in the results");
    let (l2, finetune) = (&results.runs[0], &results.runs[1]);
    assert_eq!(
        l2.status,
        RunStatus::Diverged,
        "{}: status (message: {:?})",
        l2.label,
        l2.message
    );
    let step: u64 = l2
        .message
        .split("step ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "{}: the message does not name the step: {:?}",
                l2.label, l2.message
            )
        });
    assert!(
        step > steps_per_task && step <= 2 * steps_per_task,
        "{}: diverged at step {step}, expected during task 2 (steps {}..={})",
        l2.label,
        steps_per_task + 1,
        2 * steps_per_task
    );
    assert_eq!(
        l2.accuracy.len(),
        1,
        "{}: accuracy rows, only task 1 finished",
        l2.label
    );

    assert_eq!(
        finetune.status,
        RunStatus::Completed,
        "{}: status after the diverged run (message: {:?})",
        finetune.label,
        finetune.message
    );
    assert_eq!(
        finetune.accuracy.len(),
        2,
        "{}: accuracy rows",
        finetune.label
    );
}

// --- EWC protects the first task ---------------------------------------------------------------

#[test]
fn ewc_keeps_more_mnist_than_finetune() {
    // All 2000 bundled training images per task, 3 epochs. Measured on lavapipe (seed 0):
    // MNIST accuracy after Fashion-MNIST ≈ 88% with EWC λ = 1000, ≈ 69% with fine-tuning.
    let config = seed_config(
        "finetune,ewc",
        &[
            "ewc.lambda=1000",
            "training.epochs=3",
            "training.eval_every=100000",
        ],
        None,
    );
    let prepared = prepare(&config, None);
    let (sender, _receiver) = mpsc::channel::<RunEvent>();
    let cancel = AtomicBool::new(false);
    let results = run_experiment(&gpu(), &config, &prepared, &sender, &cancel);

    let mnist_after_task_2 = |label: &str| -> f64 {
        let run = results
            .runs
            .iter()
            .find(|r| r.label.starts_with(label))
            .unwrap_or_else(|| panic!("no {label} run in the results"));
        assert_eq!(
            run.status,
            RunStatus::Completed,
            "{}: status ({})",
            run.label,
            run.message
        );
        run.accuracy[1][0]
    };
    let finetune = mnist_after_task_2("finetune");
    let ewc = mnist_after_task_2("ewc");
    let margin = 100.0 * (ewc - finetune);
    eprintln!(
        "MNIST after Fashion-MNIST: EWC {:.1}%, fine-tuning {:.1}%",
        100.0 * ewc,
        100.0 * finetune
    );
    assert!(
        margin >= 8.0,
        "MNIST accuracy after Fashion-MNIST: EWC λ=1000 {:.1}%, fine-tuning {:.1}%; expected EWC \
         ahead by at least 8 points, got {margin:.1}",
        100.0 * ewc,
        100.0 * finetune
    );
}
