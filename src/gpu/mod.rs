//! Device setup and the compute kernels built from `shaders/*.wgsl`.
//!
//! One [`GpuContext`] holds the device, the queue and every compute pipeline; trainers share it.
//! Each shader file has one bind-group layout for all its entry points, documented at the top of
//! the file, so the host code here binds buffers by role rather than by entry point.

mod trainer;

pub use trainer::{
    Distillation, EvalResult, FisherKind, GpuTrainer, TrainStats, check_batch, max_batch,
};

use std::sync::Arc;

use thiserror::Error;

/// Error from finding and opening a GPU.
#[derive(Debug, Error)]
pub enum GpuError {
    /// No adapter passed the filters and capability checks.
    #[error("no GPU adapter with compute shaders was found{filter}. {advice}", advice = no_adapter_advice(.filter))]
    NoAdapter {
        /// Describes `WGPU_ADAPTER_NAME`/`WGPU_BACKEND` when they narrowed the search.
        filter: String,
    },
    /// The adapter exists but refused to open a device.
    #[error("could not open a device on adapter {adapter}: {source}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// The driver's reason.
        source: wgpu::RequestDeviceError,
    },
    /// The batch's buffers or dispatches would exceed the device's limits.
    #[error(
        "a batch of {requested} does not fit on {adapter}: {reason}; use a batch size of \
         {largest} or less"
    )]
    BatchTooLarge {
        /// The batch size requested.
        requested: usize,
        /// The largest batch that fits.
        largest: usize,
        /// The limit the batch exceeds, with the numbers.
        reason: String,
        /// Adapter name.
        adapter: String,
    },
    /// Reading a buffer back from the GPU failed.
    #[error("reading results back from the GPU failed: {0}")]
    ReadBack(String),
}

/// Returns what to do when no adapter was found: install a driver, or, when `WGPU_ADAPTER_NAME` or
/// `WGPU_BACKEND` narrowed the search (`filter` is not empty), change them.
fn no_adapter_advice(filter: &str) -> &'static str {
    if filter.is_empty() {
        "Install a Vulkan driver (on Debian and Ubuntu, `apt-get install mesa-vulkan-drivers` \
         gives Mesa's software renderer, lavapipe); `ewc-workbench devices` lists the adapters \
         wgpu sees"
    } else {
        "`ewc-workbench devices` lists the adapters wgpu sees: unset the variable or choose one \
         of their names or backends"
    }
}

/// One adapter as `devices` lists it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct AdapterSummary {
    /// Adapter name as the driver reports it.
    pub name: String,
    /// Graphics API (Vulkan, Metal, Dx12, Gl).
    pub backend: String,
    /// Discrete, integrated, virtual, CPU or other.
    pub device_type: String,
    /// Driver name and version.
    pub driver: String,
    /// Whether it can run compute shaders within the limits the engine needs.
    pub usable: bool,
}

impl AdapterSummary {
    fn new(adapter: &wgpu::Adapter) -> Self {
        let info = adapter.get_info();
        let driver = if info.driver_info.is_empty() {
            info.driver.clone()
        } else {
            format!("{} {}", info.driver, info.driver_info)
        };
        Self {
            name: info.name,
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver,
            usable: is_usable(adapter),
        }
    }
}

/// Storage buffers the largest kernel binds at once (the loss kernels).
const STORAGE_BUFFERS_NEEDED: u32 = 6;

fn is_usable(adapter: &wgpu::Adapter) -> bool {
    let downlevel = adapter.get_downlevel_capabilities();
    downlevel
        .flags
        .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
        && adapter.limits().max_storage_buffers_per_shader_stage >= STORAGE_BUFFERS_NEEDED
}

/// Lower is preferred: hardware GPUs before virtual ones before software renderers.
fn preference(device_type: wgpu::DeviceType) -> u8 {
    match device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

fn create_instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

fn name_filter() -> Option<String> {
    std::env::var("WGPU_ADAPTER_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| s.to_lowercase())
}

/// Lists every adapter wgpu sees (respecting `WGPU_BACKEND`) and the index of the one the
/// engine would use (respecting `WGPU_ADAPTER_NAME` as a case-insensitive substring).
pub fn list_adapters() -> (Vec<AdapterSummary>, Option<usize>) {
    let instance = create_instance();
    let adapters =
        pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all().with_env()));
    let summaries: Vec<AdapterSummary> = adapters.iter().map(AdapterSummary::new).collect();
    let chosen = choose(&adapters);
    (summaries, chosen)
}

fn choose(adapters: &[wgpu::Adapter]) -> Option<usize> {
    let filter = name_filter();
    adapters
        .iter()
        .enumerate()
        .filter(|(_, a)| is_usable(a))
        .filter(|(_, a)| {
            filter
                .as_ref()
                .is_none_or(|f| a.get_info().name.to_lowercase().contains(f))
        })
        .min_by_key(|(i, a)| (preference(a.get_info().device_type), *i))
        .map(|(i, _)| i)
}

/// A compute pipeline with the bind-group layout of its shader file.
#[derive(Debug)]
pub(crate) struct Kernel {
    pub(crate) name: String,
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) layout: wgpu::BindGroupLayout,
}

/// How a binding is used: `U` uniform, `R` read-only storage, `W` read-write storage.
#[derive(Debug, Clone, Copy)]
enum Binding {
    U,
    R,
    W,
}

/// Every kernel the engine dispatches.
#[derive(Debug)]
pub(crate) struct Kernels {
    pub(crate) conv_forward: Kernel,
    pub(crate) conv_forward_3x3: Kernel,
    pub(crate) conv_backward_weight_pooled: Kernel,
    pub(crate) dense_forward_by_sample: Kernel,
    pub(crate) dense_forward_blocked: Kernel,
    pub(crate) dense_backward_input_blocked: Kernel,
    pub(crate) dense_backward_weight_blocked: Kernel,
    pub(crate) dense_backward_bias: Kernel,
    pub(crate) conv_backward_input: Kernel,
    pub(crate) conv_backward_weight: Kernel,
    pub(crate) conv_reduce: Kernel,
    pub(crate) pool_forward: Kernel,
    pub(crate) pool_backward: Kernel,
    pub(crate) cross_entropy: Kernel,
    pub(crate) loss_reduce: Kernel,
    pub(crate) adam: Kernel,
    pub(crate) sgd: Kernel,
    pub(crate) penalty_gradient: Kernel,
    pub(crate) penalty_partial: Kernel,
    pub(crate) penalty_total: Kernel,
    pub(crate) scale_add: Kernel,
}

/// The device, its queue, and the compiled kernels.
#[derive(Debug)]
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) kernels: Kernels,
    /// The adapter in use.
    pub adapter: AdapterSummary,
    /// Largest storage binding the device allows, in bytes.
    pub(crate) max_binding: u64,
}

impl GpuContext {
    /// Opens the preferred adapter (see [`list_adapters`]) and compiles every kernel.
    pub fn new() -> Result<Arc<Self>, GpuError> {
        let instance = create_instance();
        let mut adapters =
            pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all().with_env()));
        let Some(index) = choose(&adapters) else {
            let mut filters = Vec::new();
            if let Some(name) = name_filter() {
                filters.push(format!("WGPU_ADAPTER_NAME={name}"));
            }
            if let Ok(backend) = std::env::var("WGPU_BACKEND") {
                filters.push(format!("WGPU_BACKEND={backend}"));
            }
            let filter = if filters.is_empty() {
                String::new()
            } else {
                format!(" (with {})", filters.join(", "))
            };
            return Err(GpuError::NoAdapter { filter });
        };
        let adapter = adapters.swap_remove(index);
        let summary = AdapterSummary::new(&adapter);
        log::info!(
            "using GPU adapter {} ({}, {}, {})",
            summary.name,
            summary.backend,
            summary.device_type,
            summary.driver
        );

        let supported = adapter.limits();
        let limits = wgpu::Limits {
            max_storage_buffers_per_shader_stage: STORAGE_BUFFERS_NEEDED
                .max(wgpu::Limits::default().max_storage_buffers_per_shader_stage),
            max_storage_buffer_binding_size: supported.max_storage_buffer_binding_size,
            max_buffer_size: supported.max_buffer_size,
            ..wgpu::Limits::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("ewc-workbench"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|source| GpuError::RequestDevice {
            adapter: summary.name.clone(),
            source,
        })?;

        let kernels = Kernels::new(&device);
        Ok(Arc::new(Self {
            device,
            queue,
            kernels,
            adapter: summary,
            max_binding: limits
                .max_storage_buffer_binding_size
                .min(limits.max_buffer_size),
        }))
    }
}

impl Kernels {
    fn new(device: &wgpu::Device) -> Self {
        use Binding::{R, U, W};
        let dense = device.create_shader_module(wgpu::include_wgsl!("../../shaders/dense.wgsl"));
        let conv = device.create_shader_module(wgpu::include_wgsl!("../../shaders/conv.wgsl"));
        let pool = device.create_shader_module(wgpu::include_wgsl!("../../shaders/pool.wgsl"));
        let loss = device.create_shader_module(wgpu::include_wgsl!("../../shaders/loss.wgsl"));
        let optimizers =
            device.create_shader_module(wgpu::include_wgsl!("../../shaders/optimizers.wgsl"));
        let penalties =
            device.create_shader_module(wgpu::include_wgsl!("../../shaders/penalties.wgsl"));
        let vectors =
            device.create_shader_module(wgpu::include_wgsl!("../../shaders/vectors.wgsl"));

        let layer_bindings = [U, R, R, R, W];
        let conv_bindings = [U, R, R, R, W, W];
        let pool_bindings = [U, R, R, W];
        let loss_bindings = [U, R, R, R, W, W, W];
        let optimizer_bindings = [U, R, R, W, W, W];
        let penalty_bindings = [U, R, R, R, W, W];
        let vector_bindings = [U, R, W];
        let k = |module: &wgpu::ShaderModule, family: &str, entry: &str, bindings: &[Binding]| {
            kernel(device, module, family, entry, bindings)
        };
        Self {
            conv_forward: k(&conv, "conv", "forward", &conv_bindings),
            conv_forward_3x3: k(&conv, "conv", "forward_3x3", &conv_bindings),
            conv_backward_input: k(&conv, "conv", "backward_input", &conv_bindings),
            conv_backward_weight: k(&conv, "conv", "backward_weight", &conv_bindings),
            conv_backward_weight_pooled: k(&conv, "conv", "backward_weight_pooled", &conv_bindings),
            conv_reduce: k(&conv, "conv", "reduce", &conv_bindings),
            dense_forward_by_sample: k(&dense, "dense", "forward_by_sample", &layer_bindings),
            dense_forward_blocked: k(&dense, "dense", "forward_blocked", &layer_bindings),
            dense_backward_input_blocked: k(
                &dense,
                "dense",
                "backward_input_blocked",
                &layer_bindings,
            ),
            dense_backward_weight_blocked: k(
                &dense,
                "dense",
                "backward_weight_blocked",
                &layer_bindings,
            ),
            dense_backward_bias: k(&dense, "dense", "backward_bias", &layer_bindings),
            pool_forward: k(&pool, "pool", "forward", &pool_bindings),
            pool_backward: k(&pool, "pool", "backward", &pool_bindings),
            cross_entropy: k(&loss, "loss", "cross_entropy", &loss_bindings),
            loss_reduce: k(&loss, "loss", "reduce", &loss_bindings),
            adam: k(&optimizers, "optimizers", "adam", &optimizer_bindings),
            sgd: k(&optimizers, "optimizers", "sgd", &optimizer_bindings),
            penalty_gradient: k(&penalties, "penalties", "gradient", &penalty_bindings),
            penalty_partial: k(&penalties, "penalties", "value_partial", &penalty_bindings),
            penalty_total: k(&penalties, "penalties", "value_total", &penalty_bindings),
            scale_add: k(&vectors, "vectors", "scale_add", &vector_bindings),
        }
    }
}

fn kernel(
    device: &wgpu::Device,
    module: &wgpu::ShaderModule,
    family: &str,
    entry: &str,
    bindings: &[Binding],
) -> Kernel {
    let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: match b {
                    Binding::U => wgpu::BufferBindingType::Uniform,
                    Binding::R => wgpu::BufferBindingType::Storage { read_only: true },
                    Binding::W => wgpu::BufferBindingType::Storage { read_only: false },
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(entry),
        entries: &entries,
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(entry),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(entry),
        layout: Some(&pipeline_layout),
        module,
        entry_point: Some(entry),
        compilation_options: wgpu::PipelineCompilationOptions::default(),
        cache: None,
    });
    Kernel {
        name: format!("{family}::{entry}"),
        pipeline,
        layout,
    }
}

#[cfg(test)]
mod tests;
