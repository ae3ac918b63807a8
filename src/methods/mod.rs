//! Continual-learning methods as strategies around the tasks of a sequence.
//!
//! A method decides, before each task, which parameters train, which penalty or distillation
//! term the loss carries and which data the task trains on; after each task it records what
//! the next tasks need (anchors, Fisher diagonals, the old network). The extra math runs in the
//! engine's kernels: the quadratic penalty in `shaders/penalties.wgsl`, distillation and the
//! Fisher's output gradients in `shaders/loss.wgsl`, the per-sample squares in the layer
//! kernels.
//!
//! Definitions:
//! - L2: λ/2 Σᵢ (θᵢ − θ*ᵢ)², θ* the weights after the previous task.
//! - EWC (Kirkpatrick et al. 2017): λ/2 Σ_t Σᵢ F_t,ᵢ (θᵢ − θ*_t,ᵢ)², one anchor and Fisher per
//!   old task. Online EWC (Schwarz et al. 2018): one anchor (the latest) and F ← γ F + F_new.
//! - LwF (Li & Hoiem 2016): α T² KL(softmax(z_old/T) ‖ softmax(z/T)) on the current batch,
//!   z_old from the network as it was before the task.
//! - Frozen: after the first task only the head trains.
//! - Joint: each task trains on the union of every task seen so far.

use std::time::Instant;

use crate::data::Task;
use crate::experiment::config::{FisherKind, HeadMode, MethodSpec};
use crate::gpu::{Distillation, GpuError, GpuTrainer};
use crate::model::{IMAGE_PIXELS, Network};
use crate::rng::Rng;

/// Batch size of the Fisher pass; the result does not depend on it.
const FISHER_BATCH: usize = 64;

/// The state a method carries from one task to the next.
#[derive(Debug)]
pub struct MethodState {
    spec: MethodSpec,
    anchors: Vec<Vec<f32>>,
    importances: Vec<Vec<f32>>,
    old_params: Option<Vec<f32>>,
    /// Fisher diagonal of each finished task, kept for inspection views.
    pub fishers: Vec<Vec<f32>>,
}

/// Returns the head that task `task` trains and is evaluated with.
pub fn head_for(head_mode: HeadMode, task: usize) -> usize {
    match head_mode {
        HeadMode::Shared => 0,
        HeadMode::PerTask => task,
    }
}

impl MethodState {
    /// A method about to start its first task.
    pub fn new(spec: MethodSpec) -> Self {
        Self {
            spec,
            anchors: Vec::new(),
            importances: Vec::new(),
            old_params: None,
            fishers: Vec::new(),
        }
    }

    /// Returns the method's parameters.
    pub fn spec(&self) -> &MethodSpec {
        &self.spec
    }

    /// Returns whether the loss carries a penalty or distillation term worth reporting.
    pub fn has_penalty(&self) -> bool {
        matches!(
            self.spec,
            MethodSpec::L2 { .. }
                | MethodSpec::Ewc { .. }
                | MethodSpec::OnlineEwc { .. }
                | MethodSpec::Lwf { .. }
        )
    }

    /// Prepares `trainer` for task `task`: a fresh optimizer, the trainable mask, and the
    /// penalty or distillation term from the tasks before.
    pub fn before_task(&mut self, trainer: &mut GpuTrainer, task: usize, head_mode: HeadMode) {
        trainer.reset_optimizer();
        let net = trainer.network().clone();
        let freeze_features = matches!(self.spec, MethodSpec::Frozen) && task > 0;
        let mut mask = trainable_mask(&net, head_for(head_mode, task), freeze_features);
        if matches!(self.spec, MethodSpec::Lwf { .. }) && head_mode == HeadMode::PerTask {
            // LwF trains the old tasks' heads too, held in place by their distillation terms.
            for old in 0..task {
                mask[net.layout.head_range(old)].fill(1.0);
            }
        }
        trainer.set_trainable(&mask);

        match self.spec {
            MethodSpec::L2 { lambda }
            | MethodSpec::Ewc { lambda, .. }
            | MethodSpec::OnlineEwc { lambda, .. } => {
                trainer.set_penalty(&self.anchors, &self.importances, lambda as f32);
            }
            MethodSpec::Lwf { alpha, temperature } => {
                // With a shared head the old network's outputs on that head are distilled; with a
                // head per task, those of every old task's head.
                let heads = match head_mode {
                    HeadMode::Shared => vec![0],
                    HeadMode::PerTask => (0..task).collect(),
                };
                let distillation = Distillation {
                    alpha: alpha as f32,
                    temperature: temperature as f32,
                    heads,
                };
                trainer.set_distillation(self.old_params.as_deref().map(|p| (p, distillation)));
            }
            MethodSpec::Finetune | MethodSpec::Joint | MethodSpec::Frozen => {}
        }
    }

    /// Returns the tasks whose training data task `task` trains on.
    pub fn training_tasks(&self, task: usize) -> std::ops::RangeInclusive<usize> {
        if matches!(self.spec, MethodSpec::Joint) {
            0..=task
        } else {
            task..=task
        }
    }

    /// Records what later tasks need once `task` has finished. Returns the seconds spent on
    /// the Fisher pass, if the method has one.
    pub fn after_task(
        &mut self,
        trainer: &mut GpuTrainer,
        tasks: &[Task],
        task: usize,
        head_mode: HeadMode,
        seed: u64,
    ) -> Result<Option<f64>, GpuError> {
        let params = trainer.params()?;
        match self.spec {
            MethodSpec::L2 { .. } => {
                self.anchors = vec![params.clone()];
                self.importances = vec![vec![1.0; params.len()]];
            }
            MethodSpec::Ewc {
                fisher,
                fisher_samples,
                ..
            } => {
                let started = Instant::now();
                let diagonal = fisher_diagonal(
                    trainer,
                    &tasks[task],
                    head_for(head_mode, task),
                    head_mode,
                    fisher,
                    fisher_samples,
                    seed,
                    task,
                )?;
                self.anchors.push(params.clone());
                self.importances.push(diagonal.clone());
                self.fishers.push(diagonal);
                return Ok(Some(started.elapsed().as_secs_f64()));
            }
            MethodSpec::OnlineEwc {
                gamma,
                fisher,
                fisher_samples,
                ..
            } => {
                let started = Instant::now();
                let diagonal = fisher_diagonal(
                    trainer,
                    &tasks[task],
                    head_for(head_mode, task),
                    head_mode,
                    fisher,
                    fisher_samples,
                    seed,
                    task,
                )?;
                let combined = match self.importances.pop() {
                    Some(running) => running
                        .iter()
                        .zip(&diagonal)
                        .map(|(f, n)| gamma as f32 * f + n)
                        .collect(),
                    None => diagonal.clone(),
                };
                self.anchors = vec![params.clone()];
                self.importances = vec![combined];
                self.fishers.push(diagonal);
                return Ok(Some(started.elapsed().as_secs_f64()));
            }
            MethodSpec::Lwf { .. } => self.old_params = Some(params.clone()),
            MethodSpec::Finetune | MethodSpec::Joint | MethodSpec::Frozen => {}
        }
        Ok(None)
    }

    /// Returns the penalty terms currently applied, for tests and inspection: (anchors, importances).
    pub fn penalty_terms(&self) -> (&[Vec<f32>], &[Vec<f32>]) {
        (&self.anchors, &self.importances)
    }
}

/// 1.0 for every parameter that trains on a task with head `head`, 0.0 elsewhere: the features
/// unless frozen, and that head only.
pub fn trainable_mask(net: &Network, head: usize, freeze_features: bool) -> Vec<f32> {
    let mut mask = vec![0.0f32; net.layout.len];
    if !freeze_features {
        mask[net.layout.features_range()].fill(1.0);
    }
    mask[net.layout.head_range(head)].fill(1.0);
    mask
}

/// The Fisher diagonal of task `task` over `samples` of its training images (all when `None`),
/// chosen by a seeded shuffle.
#[allow(clippy::too_many_arguments)]
pub fn fisher_diagonal(
    trainer: &mut GpuTrainer,
    task: &Task,
    head: usize,
    head_mode: HeadMode,
    kind: FisherKind,
    samples: Option<usize>,
    seed: u64,
    task_index: usize,
) -> Result<Vec<f32>, GpuError> {
    let mut rng = Rng::derive(seed ^ task_index as u64, "fisher samples");
    let mut order: Vec<u32> = (0..task.train.len() as u32).collect();
    rng.shuffle(&mut order);
    order.truncate(samples.unwrap_or(order.len()).min(order.len()));

    let mut images = Vec::with_capacity(order.len() * IMAGE_PIXELS);
    let mut targets = Vec::with_capacity(order.len());
    crate::data::fill_batch(
        &task.train,
        &order,
        task,
        head_mode == HeadMode::PerTask,
        &mut images,
        &mut targets,
    );
    let uniforms: Vec<f32> = (0..order.len()).map(|_| rng.uniform(0.0, 1.0)).collect();
    log::debug!(
        "{}: Fisher ({kind:?}) over {} training samples",
        task.name,
        order.len()
    );
    trainer.fisher_diagonal(&images, &targets, head, kind, &uniforms, FISHER_BATCH)
}
