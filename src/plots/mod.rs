//! The experiment's plots, drawn once for both the window and PNG files.
//!
//! Every figure is a function `draw_*(ui, results, ...)` in [`figures`] that paints with egui
//! and egui_plot into whatever [`egui::Ui`] it is given and fills the space left in it. The
//! window calls these functions inside its panels. For files, [`OffscreenRenderer`] runs the
//! same function in an egui frame of a chosen pixel size, rasterises the frame with
//! egui-wgpu's renderer into a texture on the engine's device, reads the texture back and
//! encodes it as PNG. A second plotting stack for files would drift from what the window shows,
//! so there is none.
//!
//! [`write_all_plots`] writes every figure of an experiment into a directory:
//!
//! - `accuracy-curves.png`: accuracy on every task over training steps, one panel per run.
//! - `accuracy-matrix.png`: each run's accuracy matrix R[i][j] as a heat map.
//! - `tradeoff.png`: mean old-task accuracy against new-task accuracy after the last task,
//!   one point per run that finished every task. A method's runs that differ in a parameter
//!   are joined into a sweep and labelled with its values. Fine-tuning and joint training are
//!   the reference points.
//! - `penalty-<run>.png`: training loss and penalty term over steps on one plot, for each run
//!   that recorded a penalty (LwF's distillation term counts).
//!
//! From the insights that runs record ([`crate::experiment::insights`]), drawn by [`insights`]:
//!
//! - `fisher-<run>-task<k>.png`: the Fisher diagonal at the weights after task k (counted from
//!   1): the first layer per input pixel or per kernel, and every layer's values on a log scale.
//!   One file per distinct diagonal; runs with a bit-identical one are named in the figure.
//! - `weights-task<k>.png`: per layer, the distribution of θ* (the weights after task k − 1)
//!   and of the fine-tuning, L2, EWC and online EWC runs' weights after task k.
//! - `weights-distance.png`: ‖θ − θ*‖₂ and Σ F (θ − θ*)² over training, one line per run.
//!
//! The Fisher and weight figures need the stored weights and Fisher values (see
//! `training.record_weights`); without them they are left out.
//!
//! [`series`] and [`insight_series`] compute the numbers the figures show without drawing
//! anything.

pub mod figures;
pub mod insight_series;
pub mod insights;
pub mod render;
pub mod series;

pub use figures::{
    draw_accuracy_curve_panel, draw_accuracy_curves, draw_accuracy_matrices,
    draw_accuracy_matrix_panel, draw_loss_and_penalty, draw_tradeoff,
};
pub use insights::{draw_anchor_distances, draw_fisher_importance, draw_weight_histograms};
pub use render::{OffscreenRenderer, RenderError, RenderedImage};

use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use egui::{Ui, Vec2};

use crate::experiment::results::Results;
use crate::gpu::{GpuContext, GpuError};

/// File name of the accuracy-curve figure.
pub const ACCURACY_CURVES_PNG: &str = "accuracy-curves.png";
/// File name of the accuracy-matrix figure.
pub const ACCURACY_MATRIX_PNG: &str = "accuracy-matrix.png";
/// File name of the trade-off figure.
pub const TRADEOFF_PNG: &str = "tradeoff.png";
/// File name of the figure of distances from θ*.
pub const WEIGHTS_DISTANCE_PNG: &str = "weights-distance.png";

/// Pixels per egui point in exported files. At 2, a 420-point panel is 840 pixels wide, about
/// 250 dpi across a 3.3-inch paper column. Figures larger than the device's texture limit get
/// fewer.
pub const EXPORT_PIXELS_PER_POINT: f32 = 2.0;

/// Size of one panel of the accuracy-curve figure, title included, in points.
pub const CURVE_PANEL: Vec2 = Vec2::new(420.0, 300.0);
/// Smallest side of an accuracy-matrix cell, in points: room for "100.0" in the monospace font.
const MATRIX_CELL: f32 = 64.0;
/// Approximate mean character width of egui's default body font, in points, for sizing the
/// matrix cells and axis to the task names that label them.
const BODY_CHARACTER_WIDTH: f32 = 7.0;
/// Room around the matrix cells for the panel title, the axis titles and padding, in points.
const MATRIX_CHROME: Vec2 = Vec2::new(56.0, 90.0);
/// Size of the trade-off and loss-and-penalty figures, in points.
pub const SINGLE_FIGURE: Vec2 = Vec2::new(760.0, 540.0);
/// Room above the panels for the heading, the legend or colour scale, and the page margins.
const FIGURE_CHROME: Vec2 = Vec2::new(32.0, 96.0);
/// Size of a Fisher figure, in points: the first-layer map beside the per-layer histograms.
pub const FISHER_FIGURE: Vec2 = Vec2::new(960.0, 600.0);
/// Size of one layer's panel in the weight-histogram figure, title included, in points.
pub const WEIGHT_PANEL: Vec2 = Vec2::new(460.0, 320.0);

/// An error from writing the plots.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// No GPU adapter could be opened to render on.
    #[error("failed to open a GPU to render the plots: {0}")]
    Gpu(#[from] GpuError),
    /// A figure could not be rendered or encoded.
    #[error("failed to render {path}: {source}", path = path.display())]
    Render {
        /// The file the figure was meant for.
        path: PathBuf,
        /// The rendering or encoding error.
        source: RenderError,
    },
    /// A PNG could not be written; the file is absent or as it was before.
    #[error("failed to write {path}: {source}", path = path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// One PNG to export: its file name, its size in points and the figure drawn in it.
struct Figure<'a> {
    file_name: String,
    size: Vec2,
    draw: Box<dyn Fn(&mut Ui) + 'a>,
}

/// Renders every figure of `results` into PNG files in `dir`, which must exist, on the
/// preferred GPU adapter. Returns the paths written, in the order of the module list.
///
/// The figures depend only on `results`, so a results file read back with
/// [`crate::experiment::load_results`] gives the same figures as the run that wrote it.
///
/// Each file is written whole or not at all. The first failure stops the export; files
/// written before it stay.
pub fn write_all_plots(results: &Results, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let gpu = GpuContext::new()?;
    write_all_plots_on(&gpu, results, dir)
}

/// Writes every figure like [`write_all_plots`], on a GPU context the caller already has open.
/// The insight figures are among them when the runs recorded what they need.
pub fn write_all_plots_on(
    gpu: &GpuContext,
    results: &Results,
    dir: &Path,
) -> Result<Vec<PathBuf>, PlotError> {
    let mut renderer = OffscreenRenderer::new(gpu);
    let mut written = Vec::new();
    for figure in figures_to_export(results) {
        let path = dir.join(&figure.file_name);
        let started = Instant::now();
        let png = render_figure(&mut renderer, &figure).map_err(|source| PlotError::Render {
            path: path.clone(),
            source,
        })?;
        crate::experiment::write_atomically(&path, &png).map_err(|source| PlotError::Write {
            path: path.clone(),
            source,
        })?;
        log::debug!(
            "rendered {} in {:.2} s",
            path.display(),
            started.elapsed().as_secs_f64()
        );
        written.push(path);
    }
    Ok(written)
}

/// Lists the figures to export for `results`, with sizes that fit their panels.
fn figures_to_export(results: &Results) -> Vec<Figure<'_>> {
    let mut exports = vec![
        Figure {
            file_name: ACCURACY_CURVES_PNG.to_owned(),
            size: grid_figure_size(results.runs.len(), CURVE_PANEL),
            draw: Box::new(|ui| draw_accuracy_curves(ui, results)),
        },
        Figure {
            file_name: ACCURACY_MATRIX_PNG.to_owned(),
            size: grid_figure_size(results.runs.len(), matrix_panel_size(&results.tasks)),
            draw: Box::new(|ui| draw_accuracy_matrices(ui, results)),
        },
        Figure {
            file_name: TRADEOFF_PNG.to_owned(),
            size: SINGLE_FIGURE,
            draw: Box::new(|ui| draw_tradeoff(ui, results)),
        },
    ];

    let slugs = series::unique_slugs(results.runs.iter().map(|run| run.label.as_str()));
    for (index, (run, slug)) in results.runs.iter().zip(&slugs).enumerate() {
        if figures::has_penalty(run) {
            exports.push(Figure {
                file_name: format!("penalty-{slug}.png"),
                size: SINGLE_FIGURE,
                draw: Box::new(move |ui| draw_loss_and_penalty(ui, results, index)),
            });
        }
    }
    exports.extend(insight_figures(results, &slugs));
    exports
}

/// Lists the insight figures that `results` has the data for.
fn insight_figures<'a>(results: &'a Results, slugs: &[String]) -> Vec<Figure<'a>> {
    let mut exports = Vec::new();
    for view in insight_series::fisher_views(results) {
        exports.push(Figure {
            file_name: format!("fisher-{}-task{}.png", slugs[view.run], view.task + 1),
            size: FISHER_FIGURE,
            draw: Box::new(move |ui| draw_fisher_importance(ui, results, view.run, view.task)),
        });
    }

    let layer_count = results
        .runs
        .iter()
        .find_map(|run| run.insights.as_ref())
        .map_or(1, |insights| insight_series::layers(&insights.layout).len());
    for task in insight_series::weight_view_tasks(results) {
        exports.push(Figure {
            file_name: format!("weights-task{}.png", task + 1),
            size: grid_figure_size(layer_count, WEIGHT_PANEL),
            draw: Box::new(move |ui| draw_weight_histograms(ui, results, task)),
        });
    }

    let has_distances = results
        .runs
        .iter()
        .filter_map(|run| run.insights.as_ref())
        .any(|insights| !insights.distances.is_empty());
    if has_distances {
        exports.push(Figure {
            file_name: WEIGHTS_DISTANCE_PNG.to_owned(),
            size: SINGLE_FIGURE,
            draw: Box::new(|ui| draw_anchor_distances(ui, results)),
        });
    }
    exports
}

/// Computes the size in points of a figure with `panels` panels of `panel` points, in rows of
/// at most [`figures::MAX_PANELS_PER_ROW`].
pub fn grid_figure_size(panels: usize, panel: Vec2) -> Vec2 {
    let columns = panels.clamp(1, figures::MAX_PANELS_PER_ROW);
    let rows = panels.div_ceil(columns).max(1);
    let spacing = egui::Style::default().spacing.item_spacing;
    Vec2::new(
        columns as f32 * panel.x + (columns - 1) as f32 * spacing.x,
        rows as f32 * panel.y + (rows - 1) as f32 * spacing.y,
    ) + FIGURE_CHROME
}

/// Computes the panel size for an accuracy matrix of `tasks`: cells wide enough for the column
/// names below them, and a row-name axis as wide as the longest name.
pub fn matrix_panel_size(tasks: &[String]) -> Vec2 {
    let longest_name = tasks
        .iter()
        .map(|name| name.chars().count())
        .max()
        .unwrap_or(0);
    let name_width = longest_name as f32 * BODY_CHARACTER_WIDTH;
    let cells = tasks.len().max(1) as f32;
    let cell_width = MATRIX_CELL.max(name_width + 12.0);
    Vec2::new(cells * cell_width + name_width, cells * MATRIX_CELL) + MATRIX_CHROME
}

fn render_figure(
    renderer: &mut OffscreenRenderer,
    figure: &Figure<'_>,
) -> Result<Vec<u8>, RenderError> {
    let (size, pixels_per_point) = pixel_size(figure.size, renderer.max_side());
    renderer.render_to_png(size, pixels_per_point, |ui| (figure.draw)(ui))
}

/// Chooses the pixel size and scale for a figure of `size` points: [`EXPORT_PIXELS_PER_POINT`],
/// or less where that would make a side longer than `max_side` pixels.
fn pixel_size(size: Vec2, max_side: u32) -> ([u32; 2], f32) {
    let pixels_per_point = EXPORT_PIXELS_PER_POINT.min(max_side as f32 / size.max_elem());
    let side = |points: f32| ((points * pixels_per_point).floor() as u32).clamp(1, max_side);
    ([side(size.x), side(size.y)], pixels_per_point)
}

#[cfg(test)]
mod insight_tests;
#[cfg(test)]
mod tests;
