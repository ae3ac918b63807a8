//! Exporting what the window shows: one figure as PNG, every figure into a folder, the results
//! as JSON and CSV.
//!
//! A figure is rendered off-screen by [`crate::plots::OffscreenRenderer`] with the same draw
//! function the window calls, at [`EXPORT_PIXELS_PER_POINT`], on a white page. The file is
//! therefore the plot alone, at print resolution, and matches what `run --out` writes. Rendering
//! waits for the GPU, so the window runs it on a worker thread ([`spawn_plot_export`]); the
//! path-based functions here also serve tests and scripts.

use std::io;
use std::path::{Path, PathBuf};
use std::thread;

use egui::{Ui, Vec2};

use crate::experiment::results::Results;
use crate::gpu::GpuContext;
use crate::plots::{
    self, CURVE_PANEL, EXPORT_PIXELS_PER_POINT, FISHER_FIGURE, OffscreenRenderer, PlotError,
    RenderError, SINGLE_FIGURE, WEIGHT_PANEL,
};

use super::events::{AppEvent, Notifier};
use super::log_panel::LogLine;
use super::shared_gpu::{SharedGpu, lower_worker_priority};

/// A figure of the comparison, as the window shows it and exports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlotFigure {
    /// Accuracy on every task over training steps, one panel per run.
    AccuracyCurves,
    /// Each run's accuracy matrix as a heat map.
    AccuracyMatrices,
    /// Mean old-task accuracy against new-task accuracy after the last task.
    Tradeoff,
    /// Training loss and penalty term of one run.
    LossAndPenalty {
        /// Index of the run.
        run: usize,
        /// The run's label as a file-name part, as [`plots::series::unique_slugs`] makes it.
        slug: String,
    },
    /// One run's Fisher diagonal after one task.
    FisherImportance {
        /// Index of the run.
        run: usize,
        /// Index of the task after which the diagonal was estimated.
        task: usize,
        /// The run's label as a file-name part.
        slug: String,
    },
    /// Weight distributions per layer after one task, against θ* of the task before.
    WeightHistograms {
        /// Index of the task.
        task: usize,
    },
    /// Distance from θ* and the Fisher-weighted distance over training, one line per run.
    AnchorDistances,
}

impl PlotFigure {
    /// Name in buttons and dialog titles.
    pub fn title(&self) -> &'static str {
        match self {
            Self::AccuracyCurves => "accuracy curves",
            Self::AccuracyMatrices => "accuracy matrices",
            Self::Tradeoff => "trade-off",
            Self::LossAndPenalty { .. } => "loss and penalty",
            Self::FisherImportance { .. } => "Fisher information",
            Self::WeightHistograms { .. } => "weight distributions",
            Self::AnchorDistances => "distances from θ*",
        }
    }

    /// File name `run --out` gives the same figure.
    pub fn file_name(&self) -> String {
        match self {
            Self::AccuracyCurves => plots::ACCURACY_CURVES_PNG.to_owned(),
            Self::AccuracyMatrices => plots::ACCURACY_MATRIX_PNG.to_owned(),
            Self::Tradeoff => plots::TRADEOFF_PNG.to_owned(),
            Self::LossAndPenalty { slug, .. } => format!("penalty-{slug}.png"),
            Self::FisherImportance { slug, task, .. } => {
                format!("fisher-{slug}-task{}.png", task + 1)
            }
            Self::WeightHistograms { task } => format!("weights-task{}.png", task + 1),
            Self::AnchorDistances => plots::WEIGHTS_DISTANCE_PNG.to_owned(),
        }
    }

    /// Builds the loss-and-penalty figure of run `run` of `results`.
    pub fn loss_and_penalty(results: &Results, run: usize) -> Self {
        Self::LossAndPenalty {
            run,
            slug: run_slug(results, run),
        }
    }

    /// Builds the figure of run `run`'s Fisher diagonal after task `task`.
    pub fn fisher_importance(results: &Results, run: usize, task: usize) -> Self {
        Self::FisherImportance {
            run,
            task,
            slug: run_slug(results, run),
        }
    }

    /// Draws the figure into `ui`, filling the space left in it.
    pub fn draw(&self, ui: &mut Ui, results: &Results) {
        match self {
            Self::AccuracyCurves => plots::draw_accuracy_curves(ui, results),
            Self::AccuracyMatrices => plots::draw_accuracy_matrices(ui, results),
            Self::Tradeoff => plots::draw_tradeoff(ui, results),
            Self::LossAndPenalty { run, .. } => plots::draw_loss_and_penalty(ui, results, *run),
            Self::FisherImportance { run, task, .. } => {
                plots::draw_fisher_importance(ui, results, *run, *task)
            }
            Self::WeightHistograms { task } => plots::draw_weight_histograms(ui, results, *task),
            Self::AnchorDistances => plots::draw_anchor_distances(ui, results),
        }
    }

    /// Size of the exported figure in points: grids grow with the number of runs, in rows of
    /// at most [`plots::figures::MAX_PANELS_PER_ROW`] panels.
    pub fn size_in_points(&self, results: &Results) -> Vec2 {
        match self {
            Self::AccuracyCurves => plots::grid_figure_size(results.runs.len(), CURVE_PANEL),
            Self::AccuracyMatrices => plots::grid_figure_size(
                results.runs.len(),
                plots::matrix_panel_size(&results.tasks),
            ),
            Self::Tradeoff | Self::LossAndPenalty { .. } | Self::AnchorDistances => SINGLE_FIGURE,
            Self::FisherImportance { .. } => FISHER_FIGURE,
            Self::WeightHistograms { .. } => {
                let layers = results
                    .runs
                    .iter()
                    .find_map(|run| run.insights.as_ref())
                    .map_or(1, |insights| {
                        plots::insight_series::layers(&insights.layout).len()
                    });
                plots::grid_figure_size(layers, WEIGHT_PANEL)
            }
        }
    }
}

/// Returns the label of run `run` as a file-name part, unique among the runs of `results`.
fn run_slug(results: &Results, run: usize) -> String {
    let slugs =
        plots::series::unique_slugs(results.runs.iter().map(|result| result.label.as_str()));
    slugs
        .get(run)
        .cloned()
        .unwrap_or_else(|| format!("run-{}", run + 1))
}

/// An error from exporting a figure or the results.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The GPU to render on could not be opened.
    #[error("failed to open a GPU to render the plot: {0}")]
    Gpu(String),
    /// The figure could not be rendered or encoded.
    #[error("failed to render the {figure}: {source}")]
    Render {
        /// The figure's title.
        figure: &'static str,
        /// The renderer's error.
        source: RenderError,
    },
    /// Writing every figure into a folder failed.
    #[error(transparent)]
    Plots(#[from] PlotError),
    /// The PNG file could not be written; an existing file is left as it was.
    #[error("failed to write {path}: {source}", path = path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// Renders `figure` of `results` as PNG bytes on `gpu`.
pub fn render_plot_png(
    gpu: &GpuContext,
    results: &Results,
    figure: &PlotFigure,
) -> Result<Vec<u8>, ExportError> {
    let mut renderer = OffscreenRenderer::new(gpu);
    let size = figure.size_in_points(results);
    let max_side = renderer.max_side();
    // Large sweeps make tall grids; a smaller scale keeps them within the texture limit.
    let pixels_per_point = EXPORT_PIXELS_PER_POINT.min(max_side as f32 / size.max_elem());
    let side = |points: f32| ((points * pixels_per_point).floor() as u32).clamp(1, max_side);
    renderer
        .render_to_png([side(size.x), side(size.y)], pixels_per_point, |ui| {
            figure.draw(ui, results)
        })
        .map_err(|source| ExportError::Render {
            figure: figure.title(),
            source,
        })
}

/// Renders `figure` of `results` on `gpu` and writes it to `path` as PNG, whole or not at all.
pub fn write_plot_png(
    gpu: &GpuContext,
    results: &Results,
    figure: &PlotFigure,
    path: &Path,
) -> Result<(), ExportError> {
    let png = render_plot_png(gpu, results, figure)?;
    crate::experiment::write_atomically(path, &png).map_err(|source| ExportError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Renders `figure` into `path` on a worker thread and reports the outcome to the log.
pub fn spawn_plot_export(
    gpu: SharedGpu,
    results: Results,
    figure: PlotFigure,
    path: PathBuf,
    notifier: Notifier,
) {
    spawn_export(notifier, move || {
        let context = gpu.get_or_open().map_err(ExportError::Gpu)?;
        write_plot_png(&context, &results, &figure, &path)?;
        Ok(format!(
            "wrote the {} to {}",
            figure.title(),
            path.display()
        ))
    });
}

/// Renders every figure into `dir` on a worker thread, as `run --out` does, and reports the
/// outcome to the log.
pub fn spawn_all_plots_export(gpu: SharedGpu, results: Results, dir: PathBuf, notifier: Notifier) {
    spawn_export(notifier, move || {
        let context = gpu.get_or_open().map_err(ExportError::Gpu)?;
        let written = plots::write_all_plots_on(&context, &results, &dir)?;
        Ok(format!(
            "wrote {} plots into {}",
            written.len(),
            dir.display()
        ))
    });
}

fn spawn_export(
    notifier: Notifier,
    export: impl FnOnce() -> Result<String, ExportError> + Send + 'static,
) {
    let thread_notifier = notifier.clone();
    let spawned = thread::Builder::new()
        .name("plot export".to_owned())
        .spawn(move || {
            lower_worker_priority();
            let line = match export() {
                Ok(message) => LogLine::info(message),
                Err(error) => LogLine::error(
                    error.to_string(),
                    "choose a folder you can write to and export again",
                ),
            };
            thread_notifier.send(AppEvent::Log(line));
        });
    if let Err(error) = spawned {
        notifier.send(AppEvent::Log(LogLine::error(
            format!("failed to start the export thread: {error}"),
            "the system is out of threads or memory; close other programs and export again",
        )));
    }
}
