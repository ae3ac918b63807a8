//! Training, evaluation and Fisher passes of one network on the GPU.
//!
//! Parameters, gradients, optimizer state, penalties and the old network for distillation all
//! stay in GPU buffers. Per step the host uploads one batch (and the optimizer's step counter)
//! and submits one command buffer; it reads back only when asked: the running loss sums at an
//! evaluation point, evaluation counts, the penalty's value, parameters or a Fisher diagonal.
//!
//! Dispatch lists are built once per (batch size, head, purpose) and cached, so a training step
//! creates no GPU objects.

use std::collections::HashMap;
use std::sync::Arc;

use bytemuck::{Pod, Zeroable};
use serde::{Deserialize, Serialize};
use wgpu::util::DeviceExt;

use super::{GpuContext, GpuError, Kernel};
use crate::model::{IMAGE_PIXELS, Layer, Network};
use crate::reference::{Adam, OptimizerKind};

/// Label distribution under which the Fisher diagonal averages the squared gradients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FisherKind {
    /// Every class weighted by the model's probability: Σ_y p(y|x) (∂ log p(y|x)/∂θ)².
    #[default]
    Exact,
    /// One label per sample drawn from p(y|x).
    Sampled,
    /// The true label.
    Empirical,
}

/// LwF's distillation term toward an old copy of the network.
#[derive(Debug, Clone, PartialEq)]
pub struct Distillation {
    /// Weight α of the term.
    pub alpha: f32,
    /// Softmax temperature T.
    pub temperature: f32,
    /// Heads whose outputs are distilled: the shared head, or every old task's head.
    pub heads: Vec<usize>,
}

/// Samples per partial sum in the convolution weight gradient during training.
const CONV_GROUP_SIZE: usize = 4;
/// Parameters per partial sum when the penalty's value is computed.
const PENALTY_CHUNK: usize = 1024;
/// Steps between blocking waits, which bound how much work is queued ahead of the GPU.
const STEPS_PER_WAIT: u32 = 16;

/// Running sums of the training loss since the last [`GpuTrainer::take_train_stats`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainStats {
    /// Mean cross-entropy over the samples seen.
    pub mean_loss: f32,
    /// Mean distillation term (LwF), 0 without one.
    pub mean_distillation: f32,
    /// Fraction of training samples classified correctly before their step.
    pub accuracy: f32,
    /// Samples seen.
    pub samples: u32,
    /// Batches seen.
    pub batches: u32,
    /// 1-based batch (counted from the last read) whose loss was NaN or infinite, if any.
    pub first_nonfinite_batch: Option<u32>,
}

/// Accuracy and loss on a set of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalResult {
    /// Samples classified correctly.
    pub correct: u32,
    /// Samples evaluated.
    pub samples: u32,
    /// Mean cross-entropy.
    pub mean_loss: f32,
}

impl EvalResult {
    /// Fraction classified correctly (0 when nothing was evaluated).
    pub fn accuracy(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            f64::from(self.correct) / f64::from(self.samples)
        }
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct DenseConfig {
    batch: u32,
    inputs: u32,
    outputs: u32,
    weight: u32,
    bias: u32,
    flag: u32,
    mode: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct ConvConfig {
    batch: u32,
    in_channels: u32,
    out_channels: u32,
    kernel: u32,
    in_height: u32,
    in_width: u32,
    out_height: u32,
    out_width: u32,
    weight: u32,
    bias: u32,
    flag: u32,
    group_size: u32,
    groups: u32,
    mode: u32,
    pool: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct PoolConfig {
    batch: u32,
    channels: u32,
    in_height: u32,
    in_width: u32,
    out_height: u32,
    out_width: u32,
    relu_mask: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct LossConfig {
    batch: u32,
    classes: u32,
    mode: u32,
    class_index: u32,
    scale: f32,
    alpha: f32,
    temperature: f32,
    pad: f32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct OptimizerConfig {
    len: u32,
    pad0: [u32; 3],
    learning_rate: f32,
    beta1: f32,
    beta2: f32,
    epsilon: f32,
    correction1: f32,
    correction2: f32,
    momentum: f32,
    pad1: f32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct PenaltyConfig {
    len: u32,
    tasks: u32,
    chunk: u32,
    chunks: u32,
    lambda: f32,
    pad: [f32; 3],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct ScaleAddConfig {
    len: u32,
    pad0: [u32; 3],
    dst_scale: f32,
    src_scale: f32,
    pad1: [f32; 2],
}

/// Loss kernel modes, as in `shaders/loss.wgsl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum LossMode {
    Train,
    Eval,
    FisherExact(u32),
    FisherEmpirical,
    FisherSampled,
    DistillOnly,
}

impl LossMode {
    fn code(self) -> (u32, u32) {
        match self {
            Self::Train => (0, 0),
            Self::Eval => (1, 0),
            Self::FisherExact(class) => (2, class),
            Self::FisherEmpirical => (3, 0),
            Self::FisherSampled => (4, 0),
            Self::DistillOnly => (5, 0),
        }
    }
}

/// Destination of a backward pass: the gradient (overwritten or added to) or the Fisher
/// accumulator (added to, one squared gradient per sample).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum GradientTarget {
    Gradient,
    AddGradient,
    FisherSquares,
}

impl GradientTarget {
    /// Returns the `mode` of the layer kernels: 0 writes sums, 1 adds per-sample squares, 2 adds sums.
    fn mode(self) -> u32 {
        match self {
            Self::Gradient => 0,
            Self::FisherSquares => 1,
            Self::AddGradient => 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Plan {
    Train { head: usize, distill: bool },
    Eval { head: usize },
    Teacher { head: usize },
    DistillOnly { head: usize },
    FisherForward { head: usize },
    FisherBackward { head: usize, mode: LossMode },
}

/// One recorded dispatch: a pipeline, its bind group and the workgroup grid.
#[derive(Debug)]
struct Dispatch {
    label: String,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    groups: (u32, u32, u32),
}

/// Per-batch-size buffers for activations and their gradients.
#[derive(Debug)]
struct Workspace {
    batch: usize,
    input: wgpu::Buffer,
    targets: wgpu::Buffer,
    /// Old network's logits for LwF, or the uniform numbers of the sampled Fisher.
    extra: wgpu::Buffer,
    /// Output of each feature layer.
    values: Vec<wgpu::Buffer>,
    /// Gradient at each feature layer's output (before its ReLU, for layers that have one).
    deltas: Vec<wgpu::Buffer>,
    logits: wgpu::Buffer,
    dlogits: wgpu::Buffer,
    per_sample: wgpu::Buffer,
    partials: wgpu::Buffer,
}

#[derive(Debug)]
struct Penalty {
    tasks: usize,
    chunks: usize,
    partial: wgpu::Buffer,
    gradient: Dispatch,
    value: [Dispatch; 2],
}

/// A network being trained on the GPU.
#[derive(Debug)]
pub struct GpuTrainer {
    ctx: Arc<GpuContext>,
    net: Network,
    params: wgpu::Buffer,
    grads: wgpu::Buffer,
    mask: wgpu::Buffer,
    first_moment: wgpu::Buffer,
    second_moment: wgpu::Buffer,
    teacher: wgpu::Buffer,
    fisher: wgpu::Buffer,
    /// Bound where a kernel's layout has a buffer that this dispatch does not use.
    unused: wgpu::Buffer,
    train_accum: wgpu::Buffer,
    eval_accum: wgpu::Buffer,
    optimizer: OptimizerKind,
    optimizer_config: wgpu::Buffer,
    optimizer_dispatch: Dispatch,
    step: u32,
    distillation: Option<Distillation>,
    penalty: Option<Penalty>,
    workspaces: HashMap<usize, Workspace>,
    plans: HashMap<(usize, Plan), Vec<Dispatch>>,
    steps_since_wait: u32,
}

fn storage(device: &wgpu::Device, label: &str, bytes: u64) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(16).next_multiple_of(4),
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    })
}

fn floats(n: usize) -> u64 {
    (n * 4) as u64
}

fn uniform<T: Pod>(device: &wgpu::Device, value: &T) -> wgpu::Buffer {
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("config"),
        contents: bytemuck::bytes_of(value),
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
    })
}

/// Returns the floats per sample of the convolution weight gradient's partial sums: the
/// weights and biases of the largest convolution.
fn conv_partials_per_sample(net: &Network) -> usize {
    net.layers
        .iter()
        .filter_map(|l| match l {
            Layer::ConvRelu(c) => Some(c.weight_len() + c.out_channels),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// Returns the floats per sample in the largest buffer a batch needs: an activation, the
/// input images, the logits or the convolution's partial sums.
fn floats_per_sample(net: &Network) -> usize {
    net.layers
        .iter()
        .map(Layer::output_len)
        .chain([
            IMAGE_PIXELS,
            conv_partials_per_sample(net),
            net.max_head_outputs(),
            4,
        ])
        .max()
        .unwrap_or(IMAGE_PIXELS)
}

/// Returns the largest batch whose buffers each fit one storage binding on `ctx`'s adapter.
fn max_batch_for_buffers(ctx: &GpuContext, net: &Network) -> usize {
    (ctx.max_binding / floats(floats_per_sample(net))).max(1) as usize
}

/// Returns the largest batch whose dispatches stay within the workgroups allowed per grid
/// dimension. The tightest grids put one workgroup row per sample and channel: the
/// convolution's input gradient, the pools, and the per-sample Fisher sums.
fn max_batch_for_dispatches(ctx: &GpuContext, net: &Network) -> usize {
    let planes_per_sample = net
        .layers
        .iter()
        .map(|l| match l {
            Layer::ConvRelu(c) => c.in_channels,
            Layer::MaxPool(p) => p.channels,
            _ => 1,
        })
        .max()
        .unwrap_or(1);
    let per_dimension = ctx.device.limits().max_compute_workgroups_per_dimension as usize;
    (per_dimension / planes_per_sample).max(1)
}

/// Returns the largest batch that trains on `ctx`'s adapter: every buffer within one storage
/// binding and every dispatch within the workgroup limits. Evaluation and the Fisher pass
/// split larger requests into batches of this size.
pub fn max_batch(ctx: &GpuContext, net: &Network) -> usize {
    max_batch_for_buffers(ctx, net).min(max_batch_for_dispatches(ctx, net))
}

/// Checks that training batches of `batch` samples fit on `ctx`'s adapter.
///
/// # Errors
///
/// [`GpuError::BatchTooLarge`] with the limit exceeded and the largest batch that fits.
pub fn check_batch(ctx: &GpuContext, net: &Network, batch: usize) -> Result<(), GpuError> {
    let largest = max_batch(ctx, net);
    if batch <= largest {
        return Ok(());
    }
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let reason = if batch > max_batch_for_buffers(ctx, net) {
        format!(
            "one buffer of the network would hold {:.0} MiB, and the adapter allows {:.0} MiB",
            mib(floats(batch * floats_per_sample(net))),
            mib(ctx.max_binding)
        )
    } else {
        format!(
            "its dispatches would need more than the {} workgroups per dimension the device \
             allows",
            ctx.device.limits().max_compute_workgroups_per_dimension
        )
    };
    Err(GpuError::BatchTooLarge {
        requested: batch,
        largest,
        reason,
        adapter: ctx.adapter.name.clone(),
    })
}

/// The invocations a dispatch needs, in the shape its entry point indexes them.
#[derive(Debug, Clone, Copy)]
enum Grid {
    /// `n` invocations in 64-wide workgroups, folded into y past 65535 workgroups; the shader
    /// rebuilds the flat index from `num_workgroups`.
    Linear(usize),
    /// `x` by `y` invocations in 64-wide workgroups along x.
    Rows(usize, usize),
    /// `x` by `y` by `z` invocations in 8×8 workgroups.
    Planes(usize, usize, usize),
}

impl Grid {
    fn workgroups(self) -> (u32, u32, u32) {
        match self {
            Self::Linear(n) => {
                let groups = n.div_ceil(64).max(1) as u32;
                if groups <= 65_535 {
                    (groups, 1, 1)
                } else {
                    (65_535, groups.div_ceil(65_535), 1)
                }
            }
            Self::Rows(x, y) => (as_u32(x.div_ceil(64).max(1)), as_u32(y.max(1)), 1),
            Self::Planes(x, y, z) => (
                as_u32(x.div_ceil(8).max(1)),
                as_u32(y.div_ceil(8).max(1)),
                as_u32(z.max(1)),
            ),
        }
    }
}

fn as_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Dispatch {
    fn new(
        device: &wgpu::Device,
        kernel: &Kernel,
        config: &wgpu::Buffer,
        buffers: &[&wgpu::Buffer],
        grid: impl Into<Grid>,
    ) -> Self {
        let entries: Vec<wgpu::BindGroupEntry> = std::iter::once(config)
            .chain(buffers.iter().copied())
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &kernel.layout,
            entries: &entries,
        });
        Self {
            label: kernel.name.clone(),
            pipeline: kernel.pipeline.clone(),
            bind_group,
            groups: grid.into().workgroups(),
        }
    }

    fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(self.groups.0, self.groups.1, self.groups.2);
    }
}

impl From<usize> for Grid {
    fn from(n: usize) -> Self {
        Self::Linear(n)
    }
}

fn is_relu_layer(layer: &Layer) -> bool {
    matches!(layer, Layer::ConvRelu(_) | Layer::DenseRelu(_))
}

impl GpuTrainer {
    /// Uploads `params` (laid out as `net.layout`) and prepares an optimizer of `optimizer`'s kind.
    pub fn new(
        ctx: Arc<GpuContext>,
        net: Network,
        params: &[f32],
        optimizer: OptimizerKind,
    ) -> Self {
        let device = &ctx.device;
        let len = net.layout.len;
        assert_eq!(
            params.len(),
            len,
            "parameter vector does not match the network layout"
        );
        let params_buffer = storage(device, "params", floats(len));
        ctx.queue
            .write_buffer(&params_buffer, 0, bytemuck::cast_slice(params));
        let grads = storage(device, "grads", floats(len));
        let mask = storage(device, "mask", floats(len));
        ctx.queue
            .write_buffer(&mask, 0, bytemuck::cast_slice(&vec![1.0f32; len]));
        let first_moment = storage(device, "optimizer first moment", floats(len));
        let second_moment = storage(device, "optimizer second moment", floats(len));
        let teacher = storage(device, "old params", floats(len));
        let fisher = storage(device, "fisher", floats(len));
        let unused = storage(device, "unused binding", 16);
        let train_accum = storage(device, "train sums", floats(8));
        let eval_accum = storage(device, "eval sums", floats(8));

        let optimizer_config = uniform(device, &OptimizerConfig::zeroed());
        let kernel = match optimizer {
            OptimizerKind::Adam { .. } => &ctx.kernels.adam,
            OptimizerKind::Sgd { .. } => &ctx.kernels.sgd,
        };
        let optimizer_dispatch = Dispatch::new(
            device,
            kernel,
            &optimizer_config,
            &[&grads, &mask, &params_buffer, &first_moment, &second_moment],
            len,
        );

        Self {
            ctx,
            net,
            params: params_buffer,
            grads,
            mask,
            first_moment,
            second_moment,
            teacher,
            fisher,
            unused,
            train_accum,
            eval_accum,
            optimizer,
            optimizer_config,
            optimizer_dispatch,
            step: 0,
            distillation: None,
            penalty: None,
            workspaces: HashMap::new(),
            plans: HashMap::new(),
            steps_since_wait: 0,
        }
    }

    /// Returns the network being trained.
    pub fn network(&self) -> &Network {
        &self.net
    }

    /// Returns the GPU context.
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// Reads the parameters back.
    pub fn params(&self) -> Result<Vec<f32>, GpuError> {
        self.read(&self.params, self.net.layout.len)
    }

    /// Replaces the parameters.
    pub fn set_params(&mut self, params: &[f32]) {
        self.ctx
            .queue
            .write_buffer(&self.params, 0, bytemuck::cast_slice(params));
    }

    /// Sets which parameters train: 1.0 trains, 0.0 keeps the value bit-identical.
    pub fn set_trainable(&mut self, mask: &[f32]) {
        self.ctx
            .queue
            .write_buffer(&self.mask, 0, bytemuck::cast_slice(mask));
    }

    /// Clears the optimizer's moments and step counter, as a fresh optimizer would start.
    pub fn reset_optimizer(&mut self) {
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        encoder.clear_buffer(&self.first_moment, 0, None);
        encoder.clear_buffer(&self.second_moment, 0, None);
        self.ctx.queue.submit([encoder.finish()]);
        self.step = 0;
    }

    /// Turns LwF distillation on toward the network with parameters `old_params`, or off.
    /// A distilled head that is also the head being trained gets the term inside its loss
    /// kernel; every other distilled head costs one more forward and backward pass per step,
    /// whose gradient is added to the step's.
    pub fn set_distillation(&mut self, teacher: Option<(&[f32], Distillation)>) {
        self.distillation = teacher.map(|(old_params, distillation)| {
            self.ctx
                .queue
                .write_buffer(&self.teacher, 0, bytemuck::cast_slice(old_params));
            distillation
        });
        self.plans
            .retain(|(_, plan), _| !matches!(plan, Plan::Train { .. } | Plan::DistillOnly { .. }));
    }

    /// Sets the quadratic penalty λ/2 Σ_t Σ_i F_t,i (θ_i − θ*_t,i)², one (anchor, importance)
    /// pair per entry, or removes it with an empty list.
    pub fn set_penalty(&mut self, anchors: &[Vec<f32>], importances: &[Vec<f32>], lambda: f32) {
        assert_eq!(
            anchors.len(),
            importances.len(),
            "one importance vector per anchor"
        );
        if anchors.is_empty() {
            self.penalty = None;
            return;
        }
        let device = &self.ctx.device;
        let len = self.net.layout.len;
        let tasks = anchors.len();
        let anchor_buffer = storage(device, "anchors", floats(len * tasks));
        let importance_buffer = storage(device, "importance", floats(len * tasks));
        for (t, (anchor, importance)) in anchors.iter().zip(importances).enumerate() {
            assert_eq!(anchor.len(), len, "anchor {t} matches the layout");
            assert_eq!(importance.len(), len, "importance {t} matches the layout");
            let offset = floats(t * len);
            self.ctx
                .queue
                .write_buffer(&anchor_buffer, offset, bytemuck::cast_slice(anchor));
            self.ctx.queue.write_buffer(
                &importance_buffer,
                offset,
                bytemuck::cast_slice(importance),
            );
        }
        let chunks = len.div_ceil(PENALTY_CHUNK);
        let partial = storage(device, "penalty partial sums", floats(chunks + 1));
        let config = uniform(
            device,
            &PenaltyConfig {
                len: as_u32(len),
                tasks: as_u32(tasks),
                chunk: as_u32(PENALTY_CHUNK),
                chunks: as_u32(chunks),
                lambda,
                pad: [0.0; 3],
            },
        );
        let buffers = [
            &self.params,
            &anchor_buffer,
            &importance_buffer,
            &self.grads,
            &partial,
        ];
        let k = &self.ctx.kernels;
        self.penalty = Some(Penalty {
            tasks,
            chunks,
            gradient: Dispatch::new(device, &k.penalty_gradient, &config, &buffers, len),
            value: [
                Dispatch::new(device, &k.penalty_partial, &config, &buffers, chunks),
                Dispatch::new(device, &k.penalty_total, &config, &buffers, 1),
            ],
            partial,
        });
    }

    /// Number of (anchor, importance) pairs in the penalty.
    pub fn penalty_terms(&self) -> usize {
        self.penalty.as_ref().map_or(0, |p| p.tasks)
    }

    /// Computes the penalty's current value λ/2 Σ F (θ − θ*)² on the GPU, or returns 0 without
    /// a penalty.
    pub fn penalty_value(&mut self) -> Result<f32, GpuError> {
        let Some(penalty) = &self.penalty else {
            return Ok(0.0);
        };
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            for d in &penalty.value {
                d.record(&mut pass);
            }
        }
        self.ctx.queue.submit([encoder.finish()]);
        let chunks = penalty.chunks;
        let values = self.read(&penalty.partial, chunks + 1)?;
        Ok(values[chunks])
    }

    /// Takes one optimizer step on a batch: forward, loss (with distillation if set), backward,
    /// penalty gradient (if set), and the update of the trainable parameters.
    pub fn train_step(&mut self, images: &[f32], targets: &[u32], head: usize) {
        self.upload_batch(images, targets);
        self.step += 1;
        self.write_optimizer_config();
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        self.encode_gradient(&mut encoder, targets.len(), head);
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            self.optimizer_dispatch.record(&mut pass);
        }
        self.ctx.queue.submit([encoder.finish()]);
        self.throttle();
    }

    /// Computes the gradient of the training loss (with distillation and penalty if set) at the
    /// current parameters, without a step. Used by tests and inspection, not by training.
    pub fn gradient(
        &mut self,
        images: &[f32],
        targets: &[u32],
        head: usize,
    ) -> Result<Vec<f32>, GpuError> {
        self.upload_batch(images, targets);
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        encoder.clear_buffer(&self.grads, 0, None);
        self.encode_gradient(&mut encoder, targets.len(), head);
        self.ctx.queue.submit([encoder.finish()]);
        self.read(&self.grads, self.net.layout.len)
    }

    /// Records the passes that leave the step's gradient in `grads` for the uploaded batch.
    fn encode_gradient(&mut self, encoder: &mut wgpu::CommandEncoder, batch: usize, head: usize) {
        let heads = self
            .distillation
            .as_ref()
            .map(|d| d.heads.clone())
            .unwrap_or_default();
        let fused = heads.contains(&head);
        let extra: Vec<usize> = heads.into_iter().filter(|&h| h != head).collect();
        if fused {
            self.ensure_plan(batch, Plan::Teacher { head });
        }
        self.ensure_plan(
            batch,
            Plan::Train {
                head,
                distill: fused,
            },
        );
        for &h in &extra {
            self.ensure_plan(batch, Plan::Teacher { head: h });
            self.ensure_plan(batch, Plan::DistillOnly { head: h });
        }

        if fused {
            self.record_teacher(encoder, batch, head);
        }
        self.record_plan(
            encoder,
            batch,
            Plan::Train {
                head,
                distill: fused,
            },
        );
        for &h in &extra {
            // Passes for other heads add to the gradient, so their stale entries go first.
            let range = self.net.layout.head_range(h);
            encoder.clear_buffer(&self.grads, floats(range.start), Some(floats(range.len())));
        }
        for &h in &extra {
            self.record_teacher(encoder, batch, h);
            self.record_plan(encoder, batch, Plan::DistillOnly { head: h });
        }
        if let Some(penalty) = &self.penalty {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            penalty.gradient.record(&mut pass);
        }
    }

    /// Runs the old network on the uploaded batch and leaves its head-`head` logits in `extra`.
    fn record_teacher(&self, encoder: &mut wgpu::CommandEncoder, batch: usize, head: usize) {
        self.record_plan(encoder, batch, Plan::Teacher { head });
        let ws = &self.workspaces[&batch];
        let classes = self.net.heads[head].outputs;
        encoder.copy_buffer_to_buffer(&ws.logits, 0, &ws.extra, 0, floats(batch * classes));
    }

    /// Logits of head `head` for one batch of images, `[batch][classes]`.
    pub fn logits(&mut self, images: &[f32], head: usize) -> Result<Vec<f32>, GpuError> {
        let batch = images.len() / IMAGE_PIXELS;
        self.upload_batch(images, &vec![0; batch]);
        self.ensure_plan(batch, Plan::Eval { head });
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        self.record_plan(&mut encoder, batch, Plan::Eval { head });
        self.ctx.queue.submit([encoder.finish()]);
        self.clear(&self.eval_accum);
        let ws = &self.workspaces[&batch];
        self.read(&ws.logits, batch * self.net.heads[head].outputs)
    }

    /// Times each dispatch of a training step on its own, waiting for the GPU after each one.
    /// Returns (kernel, seconds) in dispatch order; the sum exceeds a normal step's time by the
    /// waits, so use it to compare kernels, not to measure throughput.
    pub fn profile_train_step(
        &mut self,
        images: &[f32],
        targets: &[u32],
        head: usize,
    ) -> Vec<(String, f64)> {
        let batch = targets.len();
        self.upload_batch(images, targets);
        self.step += 1;
        self.write_optimizer_config();
        self.ensure_plan(
            batch,
            Plan::Train {
                head,
                distill: false,
            },
        );
        let mut timings = Vec::new();
        let plan = &self.plans[&(
            batch,
            Plan::Train {
                head,
                distill: false,
            },
        )];
        for d in plan
            .iter()
            .chain(self.penalty.as_ref().map(|p| &p.gradient))
            .chain([&self.optimizer_dispatch])
        {
            let _ = self.ctx.device.poll(wgpu::PollType::wait_indefinitely());
            let started = std::time::Instant::now();
            let mut encoder = self
                .ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
                d.record(&mut pass);
            }
            self.ctx.queue.submit([encoder.finish()]);
            let _ = self.ctx.device.poll(wgpu::PollType::wait_indefinitely());
            timings.push((d.label.clone(), started.elapsed().as_secs_f64()));
        }
        timings
    }

    /// Reads and clears the running training sums.
    pub fn take_train_stats(&mut self) -> Result<TrainStats, GpuError> {
        let sums = self.read(&self.train_accum, 8)?;
        self.clear(&self.train_accum);
        let samples = sums[2].max(1.0);
        Ok(TrainStats {
            mean_loss: sums[0] / samples,
            mean_distillation: sums[3] / samples,
            accuracy: sums[1] / samples,
            samples: sums[2] as u32,
            batches: sums[4] as u32,
            first_nonfinite_batch: (sums[5] > 0.0).then_some(sums[5] as u32),
        })
    }

    /// Accuracy and mean loss of head `head` on `images` (`[n][784]`) with `targets`, in batches
    /// of at most `batch`.
    pub fn evaluate(
        &mut self,
        images: &[f32],
        targets: &[u32],
        head: usize,
        batch: usize,
    ) -> Result<EvalResult, GpuError> {
        let batch = self.fit_batch(batch);
        self.clear(&self.eval_accum);
        for (chunk, labels) in images
            .chunks(batch * IMAGE_PIXELS)
            .zip(targets.chunks(batch))
        {
            let n = labels.len();
            self.upload_batch(chunk, labels);
            self.ensure_plan(n, Plan::Eval { head });
            let mut encoder = self
                .ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
            self.record_plan(&mut encoder, n, Plan::Eval { head });
            self.ctx.queue.submit([encoder.finish()]);
            self.throttle();
        }
        let sums = self.read(&self.eval_accum, 8)?;
        let samples = sums[2] as u32;
        Ok(EvalResult {
            correct: sums[1] as u32,
            samples,
            mean_loss: if samples == 0 { 0.0 } else { sums[0] / sums[2] },
        })
    }

    /// Computes the diagonal of the Fisher information of head `head` at the current parameters:
    /// the mean over the given samples of the per-sample squared gradient of log p(y|x), with y
    /// chosen by `kind`. `uniforms` (one number in [0, 1) per sample) drive the sampled variant.
    pub fn fisher_diagonal(
        &mut self,
        images: &[f32],
        targets: &[u32],
        head: usize,
        kind: FisherKind,
        uniforms: &[f32],
        batch: usize,
    ) -> Result<Vec<f32>, GpuError> {
        let batch = self.fit_batch(batch);
        let classes = self.net.heads[head].outputs;
        let modes: Vec<LossMode> = match kind {
            FisherKind::Exact => (0..classes)
                .map(|c| LossMode::FisherExact(as_u32(c)))
                .collect(),
            FisherKind::Empirical => vec![LossMode::FisherEmpirical],
            FisherKind::Sampled => vec![LossMode::FisherSampled],
        };
        self.clear(&self.fisher);
        for (index, (chunk, labels)) in images
            .chunks(batch * IMAGE_PIXELS)
            .zip(targets.chunks(batch))
            .enumerate()
        {
            let n = labels.len();
            self.upload_batch(chunk, labels);
            if kind == FisherKind::Sampled {
                let ws = &self.workspaces[&n];
                self.ctx.queue.write_buffer(
                    &ws.extra,
                    0,
                    bytemuck::cast_slice(&uniforms[index * batch..index * batch + n]),
                );
            }
            self.ensure_plan(n, Plan::FisherForward { head });
            for &mode in &modes {
                self.ensure_plan(n, Plan::FisherBackward { head, mode });
            }
            let mut encoder = self
                .ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
            self.record_plan(&mut encoder, n, Plan::FisherForward { head });
            for &mode in &modes {
                self.record_plan(&mut encoder, n, Plan::FisherBackward { head, mode });
            }
            self.ctx.queue.submit([encoder.finish()]);
            self.throttle();
        }
        let samples = targets.len().max(1);
        self.scale_add(&self.fisher, 1.0 / samples as f32, &self.grads, 0.0);
        self.read(&self.fisher, self.net.layout.len)
    }

    fn scale_add(&self, dst: &wgpu::Buffer, dst_scale: f32, src: &wgpu::Buffer, src_scale: f32) {
        let len = self.net.layout.len;
        let config = uniform(
            &self.ctx.device,
            &ScaleAddConfig {
                len: as_u32(len),
                pad0: [0; 3],
                dst_scale,
                src_scale,
                pad1: [0.0; 2],
            },
        );
        let dispatch = Dispatch::new(
            &self.ctx.device,
            &self.ctx.kernels.scale_add,
            &config,
            &[src, dst],
            len,
        );
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            dispatch.record(&mut pass);
        }
        self.ctx.queue.submit([encoder.finish()]);
    }

    /// Largest batch not above `requested` whose biggest buffer fits one storage binding.
    fn fit_batch(&self, requested: usize) -> usize {
        requested.clamp(1, max_batch(&self.ctx, &self.net))
    }

    fn write_optimizer_config(&self) {
        let len = as_u32(self.net.layout.len);
        let config = match self.optimizer {
            OptimizerKind::Adam {
                learning_rate,
                beta1,
                beta2,
                epsilon,
            } => {
                let (correction1, correction2) = Adam::corrections(beta1, beta2, self.step);
                OptimizerConfig {
                    len,
                    pad0: [0; 3],
                    learning_rate,
                    beta1,
                    beta2,
                    epsilon,
                    correction1,
                    correction2,
                    momentum: 0.0,
                    pad1: 0.0,
                }
            }
            OptimizerKind::Sgd {
                learning_rate,
                momentum,
            } => OptimizerConfig {
                len,
                pad0: [0; 3],
                learning_rate,
                beta1: 0.0,
                beta2: 0.0,
                epsilon: 0.0,
                correction1: 1.0,
                correction2: 1.0,
                momentum,
                pad1: 0.0,
            },
        };
        self.ctx
            .queue
            .write_buffer(&self.optimizer_config, 0, bytemuck::bytes_of(&config));
    }

    fn upload_batch(&mut self, images: &[f32], targets: &[u32]) {
        let batch = targets.len();
        assert_eq!(
            images.len(),
            batch * IMAGE_PIXELS,
            "images hold {IMAGE_PIXELS} values per target"
        );
        self.ensure_workspace(batch);
        let ws = &self.workspaces[&batch];
        self.ctx
            .queue
            .write_buffer(&ws.input, 0, bytemuck::cast_slice(images));
        self.ctx
            .queue
            .write_buffer(&ws.targets, 0, bytemuck::cast_slice(targets));
    }

    fn clear(&self, buffer: &wgpu::Buffer) {
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        encoder.clear_buffer(buffer, 0, None);
        self.ctx.queue.submit([encoder.finish()]);
    }

    fn throttle(&mut self) {
        self.steps_since_wait += 1;
        if self.steps_since_wait >= STEPS_PER_WAIT {
            self.steps_since_wait = 0;
            // A failed wait shows up again at the next read-back, which reports it.
            let _ = self.ctx.device.poll(wgpu::PollType::wait_indefinitely());
        }
    }

    fn read(&self, buffer: &wgpu::Buffer, len: usize) -> Result<Vec<f32>, GpuError> {
        read_floats(&self.ctx, buffer, len)
    }

    fn record_plan(&self, encoder: &mut wgpu::CommandEncoder, batch: usize, plan: Plan) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
        for d in &self.plans[&(batch, plan)] {
            d.record(&mut pass);
        }
    }

    fn ensure_workspace(&mut self, batch: usize) {
        if self.workspaces.contains_key(&batch) {
            return;
        }
        let device = &self.ctx.device;
        let classes = self.net.max_head_outputs();
        let values = self
            .net
            .layers
            .iter()
            .map(|l| storage(device, "activations", floats(batch * l.output_len())))
            .collect();
        let deltas = self
            .net
            .layers
            .iter()
            .map(|l| {
                storage(
                    device,
                    "activation gradients",
                    floats(batch * l.output_len()),
                )
            })
            .collect();
        let partials = conv_partials_per_sample(&self.net);
        let ws = Workspace {
            batch,
            input: storage(device, "input", floats(batch * IMAGE_PIXELS)),
            targets: storage(device, "targets", floats(batch)),
            extra: storage(device, "extra", floats(batch * classes.max(1))),
            values,
            deltas,
            logits: storage(device, "logits", floats(batch * classes)),
            dlogits: storage(device, "logit gradients", floats(batch * classes)),
            per_sample: storage(device, "per-sample loss", floats(batch * 4)),
            partials: storage(device, "convolution partial sums", floats(batch * partials)),
        };
        self.workspaces.insert(batch, ws);
    }

    fn ensure_plan(&mut self, batch: usize, plan: Plan) {
        if self.plans.contains_key(&(batch, plan)) {
            return;
        }
        self.ensure_workspace(batch);
        let ws = &self.workspaces[&batch];
        let dispatches = match plan {
            Plan::Train { head, distill } => {
                let mut d = self.forward_dispatches(ws, &self.params, head);
                let (alpha, temperature) = match (&self.distillation, distill) {
                    (Some(d), true) => (d.alpha, d.temperature),
                    _ => (0.0, 1.0),
                };
                d.extend(self.loss_dispatches(
                    ws,
                    head,
                    LossMode::Train,
                    alpha,
                    temperature,
                    Some(&self.train_accum),
                ));
                d.extend(self.backward_dispatches(ws, head, GradientTarget::Gradient));
                d
            }
            Plan::Eval { head } => {
                let mut d = self.forward_dispatches(ws, &self.params, head);
                d.extend(self.loss_dispatches(
                    ws,
                    head,
                    LossMode::Eval,
                    0.0,
                    1.0,
                    Some(&self.eval_accum),
                ));
                d
            }
            Plan::Teacher { head } => self.forward_dispatches(ws, &self.teacher, head),
            Plan::DistillOnly { head } => {
                let (alpha, temperature) = self
                    .distillation
                    .as_ref()
                    .map_or((0.0, 1.0), |d| (d.alpha, d.temperature));
                let mut d = self.forward_dispatches(ws, &self.params, head);
                d.extend(self.loss_dispatches(
                    ws,
                    head,
                    LossMode::DistillOnly,
                    alpha,
                    temperature,
                    Some(&self.train_accum),
                ));
                d.extend(self.backward_dispatches(ws, head, GradientTarget::AddGradient));
                d
            }
            Plan::FisherForward { head } => self.forward_dispatches(ws, &self.params, head),
            Plan::FisherBackward { head, mode } => {
                let mut d = self.loss_dispatches(ws, head, mode, 0.0, 1.0, None);
                d.extend(self.backward_dispatches(ws, head, GradientTarget::FisherSquares));
                d
            }
        };
        self.plans.insert((batch, plan), dispatches);
    }

    /// A dense layer's forward pass: 4×4 blocks for wide layers; for heads, which have a
    /// handful of outputs, one invocation per output with workgroups spanning samples, which
    /// keeps both cores busy where blocks would fill a single workgroup.
    fn dense_forward(
        &self,
        d: &crate::model::Dense,
        config: &wgpu::Buffer,
        buffers: &[&wgpu::Buffer],
        batch: usize,
    ) -> Dispatch {
        let (device, k) = (&self.ctx.device, &self.ctx.kernels);
        if d.outputs < 64 {
            Dispatch::new(
                device,
                &k.dense_forward_by_sample,
                config,
                buffers,
                Grid::Rows(batch, d.outputs),
            )
        } else {
            Dispatch::new(
                device,
                &k.dense_forward_blocked,
                config,
                buffers,
                Grid::Rows(d.outputs.div_ceil(4), batch.div_ceil(4)),
            )
        }
    }

    /// Records a dense layer's weight and bias gradients.
    fn dense_weight_gradient(
        &self,
        d: &crate::model::Dense,
        config: &wgpu::Buffer,
        buffers: &[&wgpu::Buffer],
    ) -> [Dispatch; 2] {
        let (device, k) = (&self.ctx.device, &self.ctx.kernels);
        [
            Dispatch::new(
                device,
                &k.dense_backward_weight_blocked,
                config,
                buffers,
                Grid::Rows(d.inputs.div_ceil(4), d.outputs.div_ceil(4)),
            ),
            Dispatch::new(
                device,
                &k.dense_backward_bias,
                config,
                buffers,
                Grid::Rows(d.outputs, 1),
            ),
        ]
    }

    /// Records a dense layer's input gradient.
    fn dense_input_gradient(
        &self,
        d: &crate::model::Dense,
        config: &wgpu::Buffer,
        buffers: &[&wgpu::Buffer],
        batch: usize,
    ) -> Dispatch {
        let (device, k) = (&self.ctx.device, &self.ctx.kernels);
        Dispatch::new(
            device,
            &k.dense_backward_input_blocked,
            config,
            buffers,
            Grid::Rows(d.inputs.div_ceil(4), batch.div_ceil(4)),
        )
    }

    fn forward_dispatches(
        &self,
        ws: &Workspace,
        params: &wgpu::Buffer,
        head: usize,
    ) -> Vec<Dispatch> {
        let device = &self.ctx.device;
        let k = &self.ctx.kernels;
        let n = ws.batch;
        let b = as_u32(n);
        let mut dispatches = Vec::new();
        let mut input = &ws.input;
        let mut pooled_already = false;
        for (l, (layer, output)) in self.net.layers.iter().zip(&ws.values).enumerate() {
            let dispatch = match layer {
                Layer::ConvRelu(c) if c.kernel == 3 => {
                    // A max-pool right after is computed by the convolution's own invocations.
                    let pool_next = matches!(self.net.layers.get(l + 1), Some(Layer::MaxPool(_)));
                    let mut cfg = conv_config(c, b, 1, 0, 0);
                    cfg.pool = u32::from(pool_next);
                    let config = uniform(device, &cfg);
                    let pooled = if pool_next {
                        &ws.values[l + 1]
                    } else {
                        &self.unused
                    };
                    pooled_already = pool_next;
                    let blocks = c.out_width().div_ceil(4) * c.out_height().div_ceil(2);
                    let grid = Grid::Linear(blocks * n);
                    Dispatch::new(
                        device,
                        &k.conv_forward_3x3,
                        &config,
                        &[params, input, input, output, pooled],
                        grid,
                    )
                }
                Layer::ConvRelu(c) => {
                    let config = uniform(device, &conv_config(c, b, 1, 0, 0));
                    let grid = Grid::Planes(c.out_width(), c.out_height(), n);
                    Dispatch::new(
                        device,
                        &k.conv_forward,
                        &config,
                        &[params, input, input, output, &self.unused],
                        grid,
                    )
                }
                Layer::DenseRelu(d) => {
                    let config = uniform(device, &dense_config(d, b, 1, 0));
                    self.dense_forward(d, &config, &[params, input, input, output], n)
                }
                Layer::MaxPool(p) => {
                    if std::mem::take(&mut pooled_already) {
                        input = output;
                        continue;
                    }
                    let config = uniform(device, &pool_config(p, b, 0));
                    Dispatch::new(
                        device,
                        &k.pool_forward,
                        &config,
                        &[input, input, output],
                        Grid::Planes(p.out_width(), p.out_height(), n * p.channels),
                    )
                }
            };
            dispatches.push(dispatch);
            input = output;
        }
        let h = &self.net.heads[head];
        let config = uniform(device, &dense_config(h, b, 0, 0));
        dispatches.push(self.dense_forward(h, &config, &[params, input, input, &ws.logits], n));
        dispatches
    }

    fn loss_dispatches(
        &self,
        ws: &Workspace,
        head: usize,
        mode: LossMode,
        alpha: f32,
        temperature: f32,
        accum: Option<&wgpu::Buffer>,
    ) -> Vec<Dispatch> {
        let device = &self.ctx.device;
        let k = &self.ctx.kernels;
        let n = ws.batch;
        let (code, class_index) = mode.code();
        let config = uniform(
            device,
            &LossConfig {
                batch: as_u32(n),
                classes: as_u32(self.net.heads[head].outputs),
                mode: code,
                class_index,
                scale: 1.0 / n as f32,
                alpha,
                temperature,
                pad: 0.0,
            },
        );
        let sums = accum.unwrap_or(&self.train_accum);
        let buffers = [
            &ws.logits,
            &ws.targets,
            &ws.extra,
            &ws.dlogits,
            &ws.per_sample,
            sums,
        ];
        let mut dispatches = vec![Dispatch::new(
            device,
            &k.cross_entropy,
            &config,
            &buffers,
            n,
        )];
        if accum.is_some() {
            dispatches.push(Dispatch::new(device, &k.loss_reduce, &config, &buffers, 1));
        }
        dispatches
    }

    fn backward_dispatches(
        &self,
        ws: &Workspace,
        head: usize,
        target: GradientTarget,
    ) -> Vec<Dispatch> {
        let device = &self.ctx.device;
        let k = &self.ctx.kernels;
        let n = ws.batch;
        let b = as_u32(n);
        let mode = target.mode();
        let out = match target {
            GradientTarget::Gradient | GradientTarget::AddGradient => &self.grads,
            GradientTarget::FisherSquares => &self.fisher,
        };
        let layers = &self.net.layers;
        let input_of = |l: usize| if l == 0 { &ws.input } else { &ws.values[l - 1] };
        let mut dispatches = Vec::new();

        let h = &self.net.heads[head];
        let features = layers
            .len()
            .checked_sub(1)
            .map_or(&ws.input, |last| &ws.values[last]);
        let config = uniform(device, &dense_config(h, b, 0, mode));
        dispatches.extend(self.dense_weight_gradient(
            h,
            &config,
            &[&self.params, &ws.dlogits, features, out],
        ));
        if let Some(last) = layers.len().checked_sub(1) {
            let config = uniform(
                device,
                &dense_config(h, b, u32::from(is_relu_layer(&layers[last])), mode),
            );
            dispatches.push(self.dense_input_gradient(
                h,
                &config,
                &[&self.params, &ws.dlogits, features, &ws.deltas[last]],
                n,
            ));
        }

        let (group_size, groups) = match target {
            GradientTarget::Gradient | GradientTarget::AddGradient => {
                (CONV_GROUP_SIZE, n.div_ceil(CONV_GROUP_SIZE))
            }
            GradientTarget::FisherSquares => (1, n),
        };
        let mut l = layers.len();
        while l > 0 {
            l -= 1;
            let x = input_of(l);
            let delta = &ws.deltas[l];
            let below_relu = u32::from(l > 0 && is_relu_layer(&layers[l - 1]));
            match &layers[l] {
                Layer::MaxPool(_) if l == 1 && pooled_conv_3x3(&layers[0]).is_some() => {
                    // The first layer needs no input gradient, so its weight gradient comes
                    // straight from the pooled gradient and the pool's backward pass is skipped.
                    let Some(c) = pooled_conv_3x3(&layers[0]) else {
                        unreachable!()
                    };
                    let mut cfg = conv_config(c, b, 0, as_u32(group_size), as_u32(groups));
                    cfg.mode = mode;
                    let config = uniform(device, &cfg);
                    let buffers = [&self.params, delta, &ws.input, &ws.partials, &ws.values[0]];
                    dispatches.push(Dispatch::new(
                        device,
                        &k.conv_backward_weight_pooled,
                        &config,
                        &buffers,
                        Grid::Rows(c.out_channels * c.in_channels, groups),
                    ));
                    dispatches.push(Dispatch::new(
                        device,
                        &k.conv_reduce,
                        &config,
                        &[&self.params, &ws.partials, x, out, &self.unused],
                        c.weight_len() + c.out_channels,
                    ));
                    l = 0;
                }
                Layer::ConvRelu(c) => {
                    let mut cfg = conv_config(c, b, 0, as_u32(group_size), as_u32(groups));
                    cfg.mode = mode;
                    let config = uniform(device, &cfg);
                    let per_group = c.weight_len() + c.out_channels;
                    dispatches.push(Dispatch::new(
                        device,
                        &k.conv_backward_weight,
                        &config,
                        &[&self.params, delta, x, &ws.partials, &self.unused],
                        groups * per_group,
                    ));
                    dispatches.push(Dispatch::new(
                        device,
                        &k.conv_reduce,
                        &config,
                        &[&self.params, &ws.partials, x, out, &self.unused],
                        per_group,
                    ));
                    if l > 0 {
                        let mut cfg = conv_config(c, b, below_relu, 1, 1);
                        cfg.mode = mode;
                        let config = uniform(device, &cfg);
                        let grid = Grid::Planes(c.in_width, c.in_height, n * c.in_channels);
                        dispatches.push(Dispatch::new(
                            device,
                            &k.conv_backward_input,
                            &config,
                            &[&self.params, delta, x, &ws.deltas[l - 1], &self.unused],
                            grid,
                        ));
                    }
                }
                Layer::DenseRelu(d) => {
                    let config = uniform(device, &dense_config(d, b, below_relu, mode));
                    dispatches.extend(self.dense_weight_gradient(
                        d,
                        &config,
                        &[&self.params, delta, x, out],
                    ));
                    if l > 0 {
                        dispatches.push(self.dense_input_gradient(
                            d,
                            &config,
                            &[&self.params, delta, x, &ws.deltas[l - 1]],
                            n,
                        ));
                    }
                }
                Layer::MaxPool(p) => {
                    if l > 0 {
                        let config = uniform(device, &pool_config(p, b, below_relu));
                        dispatches.push(Dispatch::new(
                            device,
                            &k.pool_backward,
                            &config,
                            &[delta, x, &ws.deltas[l - 1]],
                            Grid::Planes(p.out_width(), p.out_height(), n * p.channels),
                        ));
                    }
                }
            }
        }
        dispatches
    }
}

/// The convolution if `layer` is a 3×3 convolution with ReLU, the shape the pooled weight
/// gradient handles.
fn pooled_conv_3x3(layer: &Layer) -> Option<&crate::model::Conv> {
    match layer {
        Layer::ConvRelu(c) if c.kernel == 3 => Some(c),
        _ => None,
    }
}

fn dense_config(d: &crate::model::Dense, batch: u32, flag: u32, mode: u32) -> DenseConfig {
    DenseConfig {
        batch,
        inputs: as_u32(d.inputs),
        outputs: as_u32(d.outputs),
        weight: as_u32(d.weight),
        bias: as_u32(d.bias),
        flag,
        mode,
        pad: 0,
    }
}

fn conv_config(
    c: &crate::model::Conv,
    batch: u32,
    flag: u32,
    group_size: u32,
    groups: u32,
) -> ConvConfig {
    ConvConfig {
        batch,
        in_channels: as_u32(c.in_channels),
        out_channels: as_u32(c.out_channels),
        kernel: as_u32(c.kernel),
        in_height: as_u32(c.in_height),
        in_width: as_u32(c.in_width),
        out_height: as_u32(c.out_height()),
        out_width: as_u32(c.out_width()),
        weight: as_u32(c.weight),
        bias: as_u32(c.bias),
        flag,
        group_size,
        groups,
        mode: 0,
        pool: 0,
        pad: 0,
    }
}

fn pool_config(p: &crate::model::MaxPool, batch: u32, relu_mask: u32) -> PoolConfig {
    PoolConfig {
        batch,
        channels: as_u32(p.channels),
        in_height: as_u32(p.in_height),
        in_width: as_u32(p.in_width),
        out_height: as_u32(p.out_height()),
        out_width: as_u32(p.out_width()),
        relu_mask,
        pad: 0,
    }
}

/// Copies the first `len` floats of `buffer` to the host, waiting for the GPU.
pub(crate) fn read_floats(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    len: usize,
) -> Result<Vec<f32>, GpuError> {
    let bytes = floats(len);
    let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("read-back"),
        size: bytes.max(4),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
    encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, bytes);
    ctx.queue.submit([encoder.finish()]);

    let (sender, receiver) = std::sync::mpsc::channel();
    staging.map_async(wgpu::MapMode::Read, .., move |result| {
        // The receiver waits below, so a failed send cannot happen.
        let _ = sender.send(result);
    });
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| GpuError::ReadBack(e.to_string()))?;
    receiver
        .recv()
        .map_err(|e| GpuError::ReadBack(e.to_string()))?
        .map_err(|e| GpuError::ReadBack(e.to_string()))?;
    let values = {
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| GpuError::ReadBack(e.to_string()))?;
        bytemuck::cast_slice::<u8, f32>(&view).to_vec()
    };
    staging.unmap();
    Ok(values)
}
