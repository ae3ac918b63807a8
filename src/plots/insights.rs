//! The insight views: what the Fisher information protects, where the weights go on a new
//! task, and how far they move from θ*. Like the other figures they paint into any [`Ui`] and
//! fill the space left in it, and they read only what [`Results`] stores, so a reopened
//! results file draws them without retraining. [`insight_series`](super::insight_series)
//! computes the numbers.
//!
//! - [`draw_fisher_importance`]: one run's Fisher diagonal after one task. The first layer
//!   appears as its inputs are laid out, as a 28×28 pixel map for a dense layer or one 3×3 tile
//!   per kernel for a convolution, on a linear colour scale from 0 to its maximum. Beside it,
//!   the distribution of all the diagonal's values per layer, on a log scale.
//! - [`draw_weight_histograms`]: the distribution of θ* per layer, and of the weights of the
//!   fine-tuning, L2, EWC and online EWC runs after the next task.
//! - [`draw_anchor_distances`]: ‖θ − θ*‖₂ and Σ F (θ − θ*)² over training, one line per run.

use egui::{Align2, Color32, FontId, Rangef, Rect, RichText, Sense, Stroke, Ui, Vec2, pos2};
use egui_plot::{
    AxisHints, Bar, BarChart, Corner, GridInput, GridMark, Legend, Line, LineStyle, Plot,
    PlotPoints, VLine,
};

use super::figures::{
    LINE_WIDTH, PALETTE, TASK_MARKER_COLOUR, figure_heading, method_colour, panel_grid, panel_title,
};
use super::insight_series::{
    DistanceKind, FirstLayerImportance, LogHistogram, WEIGHT_VIEW_METHODS, WeightSource,
    distance_segments, first_layer_importance, fisher_views, log_histograms, weight_histograms,
};
use super::series;
use crate::experiment::insights::{FisherRecord, FisherSource};
use crate::experiment::results::Results;

/// Stops of matplotlib's "inferno" colour map at 0, 25, 50, 75 and 100 %: perceptually uniform
/// and readable in grey scale, and distinct from the viridis scale of the accuracy matrices.
const IMPORTANCE_COLOUR_STOPS: [Color32; 5] = [
    Color32::from_rgb(0, 0, 4),
    Color32::from_rgb(87, 16, 110),
    Color32::from_rgb(188, 55, 84),
    Color32::from_rgb(249, 142, 9),
    Color32::from_rgb(252, 255, 164),
];

/// Colour of θ* in the weight histograms.
const ANCHOR_COLOUR: Color32 = Color32::from_gray(40);
/// Width of the value axis of the distance panels, in points: room for labels such as `1e-10`.
const DISTANCE_Y_AXIS_WIDTH: f32 = 56.0;
/// Kernels per row in the map of a convolution's Fisher information.
const KERNELS_PER_ROW: usize = 8;
/// Height of a colour bar with its tick labels, in points.
const COLOUR_BAR_HEIGHT: f32 = 34.0;
/// Distances between x-axis marks, in points, over which their labels fade in. egui_plot's
/// default of 60–80 points leaves most marks of a narrow panel unlabelled, and labels such as
/// `1e-10` or `-0.25` fit in less.
const X_LABEL_SPACING: Rangef = Rangef {
    min: 34.0,
    max: 42.0,
};

/// Colour of a fraction in [0, 1] of the maximum on the importance scale.
pub fn importance_colour(fraction: f64) -> Color32 {
    let position = fraction.clamp(0.0, 1.0) as f32 * (IMPORTANCE_COLOUR_STOPS.len() - 1) as f32;
    let lower = (position.floor() as usize).min(IMPORTANCE_COLOUR_STOPS.len() - 2);
    IMPORTANCE_COLOUR_STOPS[lower]
        .lerp_to_gamma(IMPORTANCE_COLOUR_STOPS[lower + 1], position - lower as f32)
}

/// Colour and style of run `run_index`'s lines in the distance view: its method's colour, as
/// on every other figure, solid for the method's first run and one of four dashed or dotted
/// styles for later runs of a sweep. The sixth run of a method is solid again.
pub fn run_line_style(results: &Results, run_index: usize) -> (Color32, LineStyle) {
    let colour = method_colour_of(results, run_index);
    let Some(run) = results.runs.get(run_index) else {
        return (colour, LineStyle::Solid);
    };
    let earlier = results.runs[..run_index]
        .iter()
        .filter(|other| other.method == run.method)
        .count();
    let style = match earlier % 5 {
        0 => LineStyle::Solid,
        1 => LineStyle::dashed_loose(),
        2 => LineStyle::dotted_loose(),
        3 => LineStyle::dashed_dense(),
        _ => LineStyle::dotted_dense(),
    };
    (colour, style)
}

/// Returns run `run_index`'s label in the distance view's legend. The legend shows colours
/// only, so later runs of a method name their line style.
fn run_line_label(results: &Results, run_index: usize) -> String {
    let Some(run) = results.runs.get(run_index) else {
        return String::new();
    };
    let style = run_line_style(results, run_index).1;
    let name = if style == LineStyle::dashed_loose() {
        "dashed"
    } else if style == LineStyle::dotted_loose() {
        "dotted"
    } else if style == LineStyle::dashed_dense() {
        "short dashes"
    } else if style == LineStyle::dotted_dense() {
        "dense dots"
    } else {
        return run.label.clone();
    };
    format!("{} ({name})", run.label)
}

/// Draws run `run_index`'s Fisher diagonal at the weights after task `task`: the first layer
/// arranged by input with a colour scale, and the log-scale distribution of every layer.
///
/// Draws a note instead when the run has no such diagonal or did not store its values.
pub fn draw_fisher_importance(ui: &mut Ui, results: &Results, run_index: usize, task: usize) {
    let Some(run) = results.runs.get(run_index) else {
        return;
    };
    figure_heading(
        ui,
        results,
        &format!(
            "Fisher information after task {}",
            task_title(results, task)
        ),
    );
    let Some(record) = run
        .insights
        .as_ref()
        .and_then(|insights| insights.fisher_after(task))
    else {
        ui.label(format!(
            "{} has no Fisher diagonal after task {}.",
            panel_title(run),
            task + 1
        ));
        return;
    };
    let (Some(insights), Some(values)) = (&run.insights, &record.values) else {
        ui.label(format!(
            "{}: the Fisher values were not stored; run with --set training.record_weights=on.",
            panel_title(run)
        ));
        return;
    };
    ui.label(fisher_description(results, run_index, record));

    let importance = first_layer_importance(&insights.layout, &values.0);
    let histograms = log_histograms(&insights.layout, &values.0);
    ui.columns(2, |columns| {
        draw_importance_map(&mut columns[0], importance.as_ref());
        draw_log_histograms(&mut columns[1], &histograms, (run_index, task));
    });
}

fn task_title(results: &Results, task: usize) -> String {
    match results.tasks.get(task) {
        Some(name) => format!("{} ({name})", task + 1),
        None => (task + 1).to_string(),
    }
}

/// Describes where a Fisher diagonal was taken and how it was estimated, naming the runs whose
/// diagonal is bit-identical.
fn fisher_description(results: &Results, run_index: usize, record: &FisherRecord) -> String {
    let run = &results.runs[run_index];
    let estimated_by = match record.source {
        FisherSource::Method => "estimated by the method for its penalty",
        FisherSource::Insights => "estimated for these views",
    };
    let mut description = format!(
        "At the weights of {} after task {}: {} Fisher over {} training samples, {estimated_by}.",
        run.label,
        record.task + 1,
        record.kind.name(),
        record.samples
    );
    let identical: Vec<&str> = fisher_views(results)
        .into_iter()
        .find(|view| view.run == run_index && view.task == record.task)
        .map(|view| {
            view.identical_runs
                .iter()
                .map(|&other| results.runs[other].label.as_str())
                .collect()
        })
        .unwrap_or_default();
    if !identical.is_empty() {
        description.push_str(&format!(
            " The same values, bit for bit, for {}.",
            identical.join(", ")
        ));
    }
    description
}

/// Draws the first layer's importance map with its title and colour bar, or a note why there
/// is none.
fn draw_importance_map(ui: &mut Ui, importance: Option<&FirstLayerImportance>) {
    let Some(importance) = importance else {
        ui.label("The first layer is neither a dense layer on the image nor a convolution.");
        return;
    };
    let title = match importance {
        FirstLayerImportance::Pixels { layer, .. } => {
            format!("{layer}: Σ over units of F per input pixel")
        }
        FirstLayerImportance::Kernels {
            layer,
            side,
            kernels,
        } => {
            format!(
                "{layer}: F of the {} kernels ({side}×{side}), Σ over input channels",
                kernels.len()
            )
        }
    };
    ui.label(RichText::new(title).strong());

    let max = importance.max();
    let map_side = ui
        .available_width()
        .min(ui.available_height() - COLOUR_BAR_HEIGHT)
        .max(32.0);
    let (rect, _) =
        ui.allocate_exact_size(Vec2::new(ui.available_width(), map_side), Sense::hover());
    let square = Rect::from_center_size(rect.center(), Vec2::splat(map_side));
    match importance {
        FirstLayerImportance::Pixels { side, values, .. } => {
            paint_cells(ui, square, *side, *side, values, max)
        }
        FirstLayerImportance::Kernels { side, kernels, .. } => {
            paint_kernels(ui, square, *side, kernels, max)
        }
    }
    draw_importance_scale(ui, max);
}

/// Paints `values` (row-major, `columns` × `rows`) as coloured cells filling `rect`.
fn paint_cells(ui: &Ui, rect: Rect, columns: usize, rows: usize, values: &[f64], max: f64) {
    let cell = Vec2::new(rect.width() / columns as f32, rect.height() / rows as f32);
    let painter = ui.painter();
    for (index, &value) in values.iter().enumerate() {
        let (row, column) = (index / columns, index % columns);
        let min = rect.min + Vec2::new(column as f32 * cell.x, row as f32 * cell.y);
        let fraction = if max > 0.0 { value / max } else { 0.0 };
        painter.rect_filled(
            Rect::from_min_size(min, cell),
            0.0,
            importance_colour(fraction),
        );
    }
}

/// Paints one tile per kernel in rows of [`KERNELS_PER_ROW`], one cell apart, all on one scale.
fn paint_kernels(ui: &Ui, square: Rect, side: usize, kernels: &[Vec<f64>], max: f64) {
    let columns = kernels.len().clamp(1, KERNELS_PER_ROW);
    let rows = kernels.len().div_ceil(columns).max(1);
    let cells_across = columns * side + columns - 1;
    let cells_down = rows * side + rows - 1;
    let cell = (square.width() / cells_across as f32).min(square.height() / cells_down as f32);
    let size = Vec2::new(cells_across as f32, cells_down as f32) * cell;
    let area = Rect::from_center_size(square.center(), size);
    for (index, kernel) in kernels.iter().enumerate() {
        let (row, column) = (index / columns, index % columns);
        let min =
            area.min + Vec2::new((column * (side + 1)) as f32, (row * (side + 1)) as f32) * cell;
        let tile = Rect::from_min_size(min, Vec2::splat(side as f32 * cell));
        paint_cells(ui, tile, side, side, kernel, max);
    }
}

/// Draws the importance colour scale from 0 to `max` with three ticks.
fn draw_importance_scale(ui: &mut Ui, max: f64) {
    let (rect, _) = ui.allocate_exact_size(
        Vec2::new(ui.available_width(), COLOUR_BAR_HEIGHT),
        Sense::hover(),
    );
    let bar = Rect::from_min_size(
        rect.min + Vec2::new(8.0, 2.0),
        Vec2::new(rect.width() - 16.0, 12.0),
    );
    let painter = ui.painter();
    let steps = 120;
    for step in 0..steps {
        let left = bar.left() + bar.width() * step as f32 / steps as f32;
        let right = bar.left() + bar.width() * (step + 1) as f32 / steps as f32;
        let colour = importance_colour((step as f64 + 0.5) / steps as f64);
        painter.rect_filled(bar.with_min_x(left).with_max_x(right), 0.0, colour);
    }
    let text_colour = ui.visuals().text_color();
    for fraction in [0.0, 0.5, 1.0] {
        let x = bar.left() + bar.width() * fraction as f32;
        painter.line_segment(
            [pos2(x, bar.bottom()), pos2(x, bar.bottom() + 3.0)],
            Stroke::new(1.0, text_colour),
        );
        let anchor = match fraction {
            0.0 => Align2::LEFT_TOP,
            1.0 => Align2::RIGHT_TOP,
            _ => Align2::CENTER_TOP,
        };
        let label = if fraction == 0.0 {
            "0".to_owned()
        } else {
            format!("{:.2e}", fraction * max)
        };
        painter.text(
            pos2(x, bar.bottom() + 3.0),
            anchor,
            label,
            FontId::proportional(11.0),
            text_colour,
        );
    }
}

/// Draws one log-scale histogram of Fisher values per layer, stacked.
fn draw_log_histograms(ui: &mut Ui, histograms: &[LogHistogram], id: (usize, usize)) {
    let count = histograms.len().max(1) as f32;
    let label_height = 22.0;
    let height =
        (ui.available_height() - count * (label_height + ui.spacing().item_spacing.y)) / count;
    for histogram in histograms {
        let values = histogram.histogram.total() + histogram.zeros;
        let zeros = match histogram.zeros {
            0 => "none is 0".to_owned(),
            zeros => format!("{zeros} are exactly 0 and not shown"),
        };
        ui.label(RichText::new(format!("{}: {values} values, {zeros}", histogram.layer)).strong());
        let width = histogram.histogram.bin_width();
        let bars: Vec<Bar> = histogram
            .histogram
            .counts
            .iter()
            .enumerate()
            .map(|(bin, &count)| {
                Bar::new(
                    histogram.histogram.low + (bin as f64 + 0.5) * width,
                    count as f64,
                )
                .width(width)
            })
            .collect();
        let x_axis = AxisHints::new_x()
            .label("Fisher value (log scale)")
            .formatter(|mark, _| power_of_ten(mark))
            .label_spacing(X_LABEL_SPACING);
        let plot = Plot::new(("fisher-histogram", id, histogram.layer.as_str()))
            .width(ui.available_width())
            .height(height.max(60.0))
            .custom_x_axes(vec![x_axis])
            .x_grid_spacer(decade_marks)
            .y_axis_label("parameters")
            .include_y(0.0);
        plot.show(ui, |plot_ui| {
            plot_ui.bar_chart(BarChart::new("F", bars).color(PALETTE[3]))
        });
    }
}

/// Places marks on a log₁₀ axis at whole decades, every decade or every few when the axis
/// spans many, so that each gets a label.
fn decade_marks(input: GridInput) -> Vec<GridMark> {
    let (low, high) = input.bounds;
    let span = (high - low).max(1.0);
    let step = (span / 8.0).ceil();
    let first = (low / step).ceil() as i64;
    let last = (high / step).floor() as i64;
    (first..=last)
        .map(|index| GridMark {
            value: index as f64 * step,
            step_size: step,
        })
        .collect()
}

/// Places about six marks at multiples of 1, 2 or 5 times a power of ten, so each gets a label.
/// egui_plot's default spacer steps by powers of ten only, which on a narrow panel gives
/// either marks too close to label or a single one.
fn round_number_marks(input: GridInput) -> Vec<GridMark> {
    let (low, high) = input.bounds;
    let target = (high - low).abs().max(f64::MIN_POSITIVE) / 6.0;
    let magnitude = 10f64.powf(target.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|factor| factor * magnitude)
        .find(|&step| step >= target)
        .unwrap_or(10.0 * magnitude);
    let first = (low / step).ceil() as i64;
    let last = (high / step).floor() as i64;
    (first..=last)
        .map(|index| GridMark {
            value: index as f64 * step,
            step_size: step,
        })
        .collect()
}

/// Labels a mark of [`round_number_marks`] with as many decimals as its step needs: `0.5` for
/// a step of 0.5, where egui_plot's default formatter rounds to `0`.
fn round_number_label(mark: GridMark) -> String {
    let decimals = (-mark.step_size.log10()).ceil().max(0.0) as usize;
    format!("{:.*}", decimals, mark.value)
}

/// Labels a mark on a log₁₀ axis with the value it stands for, such as `1e-4`.
fn power_of_ten(mark: GridMark) -> String {
    let value = 10f64.powf(mark.value);
    if mark.value.fract() == 0.0 {
        format!("{value:.0e}")
    } else {
        format!("{value:.1e}")
    }
}

/// Draws the distribution of the weights per layer: θ* (the weights after task `task − 1`) and
/// the weights of the fine-tuning, L2, EWC and online EWC runs after task `task`, over shared
/// bins. Of a sweep, the run with the best average accuracy stands for its method.
pub fn draw_weight_histograms(ui: &mut Ui, results: &Results, task: usize) {
    let previous = task.saturating_sub(1);
    figure_heading(
        ui,
        results,
        &format!(
            "weights after task {} against θ* after task {}",
            task_title(results, task),
            task_title(results, previous)
        ),
    );
    let Some(data) = weight_histograms(results, task) else {
        let methods: Vec<&str> = WEIGHT_VIEW_METHODS
            .iter()
            .map(|method| method.name())
            .collect();
        ui.label(format!(
            "No run of {} stored its weights after tasks {} and {}; run with --set training.record_weights=on.",
            methods.join(", "),
            previous + 1,
            task + 1
        ));
        return;
    };

    let styles: Vec<(String, Color32, LineStyle, f32)> = data
        .sources
        .iter()
        .map(|&source| weight_series_style(results, source, previous))
        .collect();
    panel_grid(ui, data.layers.len(), |ui, index| {
        let (layer, histograms) = &data.layers[index];
        let size = histograms.first().map_or(0, |histogram| histogram.total());
        ui.label(RichText::new(format!("{layer}: {size} parameters")).strong());
        let x_axis = AxisHints::new_x()
            .label("weight")
            .formatter(|mark, _| round_number_label(mark))
            .label_spacing(X_LABEL_SPACING);
        let mut plot = Plot::new(("weight-histogram", task, index))
            .width(ui.available_width())
            .height(ui.available_height())
            .include_y(0.0)
            .custom_x_axes(vec![x_axis])
            .x_grid_spacer(round_number_marks)
            .y_axis_label("parameters");
        if index == 0 {
            plot = plot.legend(
                Legend::default()
                    .position(Corner::RightTop)
                    .follow_insertion_order(true),
            );
        }
        plot.show(ui, |plot_ui| {
            for (histogram, (name, colour, style, width)) in histograms.iter().zip(&styles) {
                // An outline has two points at each bin edge, which egui_plot would otherwise
                // merge into a filled band.
                let line = Line::new(name.as_str(), PlotPoints::new(histogram.outline()))
                    .color(*colour)
                    .style(*style)
                    .width(*width)
                    .allow_band(false);
                plot_ui.line(line);
            }
        });
    });
}

/// Returns the legend name, colour, line style and width of one weight-histogram series.
fn weight_series_style(
    results: &Results,
    source: WeightSource,
    previous: usize,
) -> (String, Color32, LineStyle, f32) {
    let label = |run: usize| {
        results
            .runs
            .get(run)
            .map_or_else(String::new, |run| run.label.clone())
    };
    match source {
        WeightSource::SharedAnchor(_) => (
            format!("θ* after task {}", previous + 1),
            ANCHOR_COLOUR,
            LineStyle::Solid,
            2.5,
        ),
        WeightSource::Anchor(run) => (
            format!("θ* of {}", label(run)),
            method_colour_of(results, run),
            LineStyle::dashed_loose(),
            LINE_WIDTH,
        ),
        WeightSource::AfterTask(run) => (
            label(run),
            method_colour_of(results, run),
            LineStyle::Solid,
            LINE_WIDTH,
        ),
    }
}

/// Returns the colour of run `run`'s method, as on the trade-off figure.
fn method_colour_of(results: &Results, run: usize) -> Color32 {
    results
        .runs
        .get(run)
        .map_or(ANCHOR_COLOUR, |run| method_colour(run.method))
}

/// Draws ‖θ − θ*‖₂ and Σ F (θ − θ*)² over training in two panels over the same steps, one line
/// per run, θ* the weights after the previous task.
pub fn draw_anchor_distances(ui: &mut Ui, results: &Results) {
    figure_heading(
        ui,
        results,
        "distance of the weights from θ*, the weights after the previous task",
    );
    let runs: Vec<usize> = results
        .runs
        .iter()
        .enumerate()
        .filter(|(_, run)| {
            run.insights
                .as_ref()
                .is_some_and(|insights| !insights.distances.is_empty())
        })
        .map(|(index, _)| index)
        .collect();
    if runs.is_empty() {
        ui.label("No run recorded distances: insights were off, or no run reached a second task.");
        return;
    }

    let height = (ui.available_height() - ui.spacing().item_spacing.y) / 2.0;
    // egui's default fonts have no ‖, so the norm is written with two bars.
    let euclidean = DistancePanel {
        kind: DistanceKind::Euclidean,
        axis: "||θ − θ*||",
        height,
        legend: true,
    };
    euclidean.draw(ui, results, &runs);
    let weighted = DistancePanel {
        kind: DistanceKind::FisherWeighted,
        axis: "Σ F (θ − θ*)², log scale",
        height,
        legend: false,
    };
    weighted.draw(ui, results, &runs);
}

/// One panel of [`draw_anchor_distances`].
struct DistancePanel {
    kind: DistanceKind,
    axis: &'static str,
    height: f32,
    legend: bool,
}

impl DistancePanel {
    fn draw(&self, ui: &mut Ui, results: &Results, runs: &[usize]) {
        let log = self.kind == DistanceKind::FisherWeighted;
        let max_step = series::max_step(results).max(1) as f64;
        let mut plot = Plot::new(("anchor-distance", self.axis))
            .width(ui.available_width())
            .height(self.height)
            .default_x_bounds(0.0, max_step)
            .auto_bounds([false, true])
            .link_axis(egui::Id::unique("anchor-distance"), [true, false])
            // The same axis width in both panels lines up their step axes.
            .y_axis_min_width(DISTANCE_Y_AXIS_WIDTH)
            .x_axis_label("optimizer step")
            .y_axis_label(self.axis);
        if log {
            plot = plot.y_axis_formatter(|mark, _| power_of_ten(mark));
        } else {
            plot = plot.include_y(0.0);
        }
        if self.legend {
            plot = plot.legend(
                Legend::default()
                    .position(Corner::LeftTop)
                    .follow_insertion_order(true),
            );
        }

        let starts = shared_task_starts(results, runs);
        plot.show(ui, |plot_ui| {
            for &index in runs {
                let run = &results.runs[index];
                let (colour, style) = run_line_style(results, index);
                let label = run_line_label(results, index);
                for segment in distance_segments(run, self.kind, !log, log) {
                    let line = Line::new(label.as_str(), PlotPoints::new(segment))
                        .color(colour)
                        .style(style)
                        .width(LINE_WIDTH);
                    plot_ui.line(line);
                }
            }
            for step in &starts {
                plot_ui.vline(
                    VLine::new("", *step as f64)
                        .color(TASK_MARKER_COLOUR)
                        .style(LineStyle::dashed_dense()),
                );
            }
        });
    }
}

/// Returns the steps where tasks begin when every run in `runs` has the same ones, and none
/// otherwise (joint training takes more steps per task than the other methods).
fn shared_task_starts(results: &Results, runs: &[usize]) -> Vec<u64> {
    let starts_of = |index: usize| -> Vec<u64> {
        series::task_starts(&results.runs[index].curve)
            .iter()
            .map(|start| start.step)
            .collect()
    };
    let Some(&first) = runs.first() else {
        return Vec::new();
    };
    let first_starts = starts_of(first);
    if runs.iter().all(|&index| starts_of(index) == first_starts) {
        first_starts
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(low: f64, high: f64) -> GridInput {
        GridInput {
            bounds: (low, high),
            base_step_size: 1e-6,
        }
    }

    #[test]
    fn round_number_marks_step_by_one_two_five() {
        let values =
            |marks: Vec<GridMark>| marks.iter().map(|mark| mark.value).collect::<Vec<f64>>();

        assert_eq!(
            values(round_number_marks(input(-1.3, 1.1))),
            [-1.0, -0.5, 0.0, 0.5, 1.0],
            "step 0.5"
        );
        assert_eq!(
            values(round_number_marks(input(0.0, 12.0))),
            [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0],
            "step 2"
        );
    }

    #[test]
    fn round_number_label_keeps_needed_decimals() {
        let label = |value, step_size| round_number_label(GridMark { value, step_size });

        assert_eq!(label(-0.5, 0.5), "-0.5", "half steps");
        assert_eq!(label(0.04, 0.02), "0.04", "steps of 0.02");
        assert_eq!(label(10.0, 2.0), "10", "whole steps");
    }

    #[test]
    fn sweep_runs_keep_method_colour() {
        use crate::experiment::config::{ExperimentConfig, Method, apply_set, expand_runs};
        use crate::experiment::results::{DeviceInfo, RunResult};

        let mut config = ExperimentConfig::preset("seed").expect("the seed preset exists");
        apply_set(&mut config, "ewc.lambda=10,100,1000").expect("a λ sweep");
        let mut results = Results::new(config.clone(), DeviceInfo::default());
        results.runs = expand_runs(&config).iter().map(RunResult::new).collect();
        let ewc: Vec<usize> = (0..results.runs.len())
            .filter(|&index| results.runs[index].method == Method::Ewc)
            .collect();
        assert_eq!(ewc.len(), 3, "three EWC runs");

        for &index in &ewc {
            assert_eq!(
                run_line_style(&results, index).0,
                method_colour(Method::Ewc),
                "{}: EWC's colour, as on the trade-off figure",
                results.runs[index].label
            );
        }
        let styles: Vec<LineStyle> = ewc
            .iter()
            .map(|&index| run_line_style(&results, index).1)
            .collect();
        assert_eq!(
            styles,
            [
                LineStyle::Solid,
                LineStyle::dashed_loose(),
                LineStyle::dotted_loose()
            ],
            "line styles in run order"
        );
        assert!(
            run_line_label(&results, ewc[1]).ends_with("(dashed)"),
            "the legend says which line is dashed"
        );
    }

    #[test]
    fn decade_marks_label_whole_powers_of_ten() {
        let marks = decade_marks(input(-12.3, -1.2));

        let values: Vec<f64> = marks.iter().map(|mark| mark.value).collect();
        assert_eq!(
            values,
            [-12.0, -10.0, -8.0, -6.0, -4.0, -2.0],
            "every second decade over 11"
        );
        assert_eq!(power_of_ten(marks[1]), "1e-10", "label of 10⁻¹⁰");
    }
}
