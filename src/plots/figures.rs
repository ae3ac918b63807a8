//! The figures, drawn with egui_plot into whatever [`Ui`] they are given: a panel of the window
//! or an off-screen frame. Each figure fills the space the `Ui` has left.

use egui::{Align, Align2, Color32, FontId, Layout, RichText, Sense, Stroke, TextStyle, Ui, Vec2};
use egui_plot::{
    AxisHints, Corner, GridInput, GridMark, Heatmap, Legend, Line, LineStyle, MarkerShape, Plot,
    PlotPoint, PlotPoints, Points, Text, VLine,
};

use super::series::{self, Tradeoff};
use crate::experiment::config::Method;
use crate::experiment::results::{CurvePoint, Results, RunResult, RunStatus};

/// Panels per row in the figures that show one panel per run.
pub const MAX_PANELS_PER_ROW: usize = 3;

/// Matplotlib's "tab10" palette: distinct hues that readers of papers know from default
/// matplotlib figures. Task `i` and method `i` take colour `i`.
pub(super) const PALETTE: [Color32; 10] = [
    Color32::from_rgb(31, 119, 180),
    Color32::from_rgb(255, 127, 14),
    Color32::from_rgb(44, 160, 44),
    Color32::from_rgb(214, 39, 40),
    Color32::from_rgb(148, 103, 189),
    Color32::from_rgb(140, 86, 75),
    Color32::from_rgb(227, 119, 194),
    Color32::from_rgb(127, 127, 127),
    Color32::from_rgb(188, 189, 34),
    Color32::from_rgb(23, 190, 207),
];

/// Stops of the viridis colour map (0 %, 25 %, ..., 100 %): perceptually uniform, readable in
/// grey scale and by colour-blind readers.
const ACCURACY_COLOUR_STOPS: [Color32; 5] = [
    Color32::from_rgb(68, 1, 84),
    Color32::from_rgb(59, 82, 139),
    Color32::from_rgb(33, 145, 140),
    Color32::from_rgb(94, 201, 98),
    Color32::from_rgb(253, 231, 37),
];

/// Fill of accuracy-matrix cells for tasks a stopped run never reached.
const MISSING_CELL_COLOUR: Color32 = Color32::from_gray(225);

pub(super) const LINE_WIDTH: f32 = 1.75;
pub(super) const TASK_MARKER_COLOUR: Color32 = Color32::from_gray(120);
/// Top of the accuracy axis of the curves, in percent: room above 100 % for the task names at
/// the task-start markers.
const ACCURACY_AXIS_MAX: f64 = 108.0;

/// Colour of task `task`'s line in every panel.
pub fn task_colour(task: usize) -> Color32 {
    PALETTE[task % PALETTE.len()]
}

/// Solid for the first ten tasks, dashed for the next ten, so that tasks sharing a colour
/// stay apart.
fn task_line_style(task: usize) -> LineStyle {
    if (task / PALETTE.len()).is_multiple_of(2) {
        LineStyle::Solid
    } else {
        LineStyle::dashed_loose()
    }
}

/// Colour of a method's points, fixed by its place in [`Method::ALL`].
pub fn method_colour(method: Method) -> Color32 {
    let index = Method::ALL
        .iter()
        .position(|&candidate| candidate == method)
        .unwrap_or(0);
    PALETTE[index % PALETTE.len()]
}

/// Colour of an accuracy in percent on the accuracy-matrix scale; grey for NaN, which marks a
/// cell without a value.
pub fn accuracy_colour(percent: f64) -> Color32 {
    if percent.is_nan() {
        return MISSING_CELL_COLOUR;
    }
    let position =
        (percent.clamp(0.0, 100.0) / 100.0) as f32 * (ACCURACY_COLOUR_STOPS.len() - 1) as f32;
    let lower = (position.floor() as usize).min(ACCURACY_COLOUR_STOPS.len() - 2);
    let fraction = position - lower as f32;
    ACCURACY_COLOUR_STOPS[lower].lerp_to_gamma(ACCURACY_COLOUR_STOPS[lower + 1], fraction)
}

/// Title of a run's panel: its label, with the status when the run did not complete.
pub(super) fn panel_title(run: &RunResult) -> String {
    match run.status {
        RunStatus::Completed => run.label.clone(),
        status => format!("{} ({})", run.label, status.name()),
    }
}

pub(super) fn figure_heading(ui: &mut Ui, results: &Results, description: &str) {
    ui.label(RichText::new(format!("{}: {description}", results.config.name)).heading());
}

/// Lays out `count` panels in rows of at most [`MAX_PANELS_PER_ROW`], dividing the space
/// left in `ui` evenly, and calls `draw_panel` with each panel's `Ui` and index.
pub(super) fn panel_grid(ui: &mut Ui, count: usize, mut draw_panel: impl FnMut(&mut Ui, usize)) {
    let columns = count.clamp(1, MAX_PANELS_PER_ROW);
    let rows = count.div_ceil(columns).max(1);
    let spacing = ui.spacing().item_spacing;
    let available = ui.available_size();
    let panel_size = Vec2::new(
        (available.x - spacing.x * (columns - 1) as f32) / columns as f32,
        (available.y - spacing.y * (rows - 1) as f32) / rows as f32,
    )
    .max(Vec2::splat(64.0));

    for row in 0..rows {
        ui.horizontal(|ui| {
            for index in (row * columns..(row + 1) * columns).filter(|&index| index < count) {
                ui.allocate_ui_with_layout(panel_size, Layout::top_down(Align::Center), |ui| {
                    ui.set_min_size(panel_size);
                    draw_panel(ui, index);
                });
            }
        });
    }
}

/// Draws one row of coloured line samples with the task names.
fn draw_task_legend(ui: &mut Ui, tasks: &[String]) {
    ui.horizontal_wrapped(|ui| {
        for (task, name) in tasks.iter().enumerate() {
            let (rect, _) = ui.allocate_exact_size(Vec2::new(24.0, 12.0), Sense::hover());
            let stroke = Stroke::new(2.5, task_colour(task));
            ui.painter()
                .line_segment([rect.left_center(), rect.right_center()], stroke);
            ui.label(name);
            ui.add_space(8.0);
        }
    });
}

/// Draws the accuracy-curve figure: a shared task legend, then one panel per run.
pub fn draw_accuracy_curves(ui: &mut Ui, results: &Results) {
    figure_heading(ui, results, "test accuracy on each task during training");
    if results.runs.is_empty() {
        ui.label("These results contain no runs.");
        return;
    }
    draw_task_legend(ui, &results.tasks);
    let max_step = series::max_step(results);
    panel_grid(ui, results.runs.len(), |ui, index| {
        draw_accuracy_curve_panel(ui, results, index, max_step);
    });
}

/// Draws run `run_index`'s accuracy on every task over training steps, on axes from step 0 to
/// `max_step` and from 0 % to just above 100 %, with a dashed line where each task after the
/// first begins.
///
/// Where the run has a baseline (the untrained network's accuracy), each line starts from it
/// at step 0.
pub fn draw_accuracy_curve_panel(ui: &mut Ui, results: &Results, run_index: usize, max_step: u64) {
    let Some(run) = results.runs.get(run_index) else {
        return;
    };
    ui.label(RichText::new(panel_title(run)).strong());

    let plot = Plot::new(("accuracy-curve", run_index))
        .width(ui.available_width())
        .height(ui.available_height())
        .default_x_bounds(0.0, (max_step as f64).max(1.0))
        .default_y_bounds(0.0, ACCURACY_AXIS_MAX)
        .link_axis(egui::Id::unique("accuracy-curves"), [true, true])
        .x_axis_label("optimizer step")
        .y_axis_label("accuracy (%)");
    plot.show(ui, |plot_ui| {
        for (task, name) in results.tasks.iter().enumerate() {
            for segment in task_accuracy_segments(run, task) {
                let line = Line::new(name.as_str(), PlotPoints::new(segment))
                    .color(task_colour(task))
                    .style(task_line_style(task))
                    .width(LINE_WIDTH);
                plot_ui.line(line);
            }
        }
        for start in series::task_starts(&run.curve) {
            let step = start.step as f64;
            plot_ui.vline(
                VLine::new("", step)
                    .color(TASK_MARKER_COLOUR)
                    .style(LineStyle::dashed_dense()),
            );
            let name = results.tasks.get(start.task).map_or("", String::as_str);
            let label = Text::new(
                "",
                PlotPoint::new(step, ACCURACY_AXIS_MAX),
                format!(" {name}"),
            )
            .color(TASK_MARKER_COLOUR)
            .anchor(Align2::LEFT_TOP);
            plot_ui.text(label);
        }
    });
}

/// Collects task `task`'s accuracy in percent over steps, starting from the baseline at step 0
/// when the run has one and its curve does not start at step 0.
fn task_accuracy_segments(run: &RunResult, task: usize) -> Vec<Vec<[f64; 2]>> {
    let starts_at_zero = run.curve.first().is_some_and(|point| point.step == 0);
    let baseline = run
        .baseline
        .as_ref()
        .filter(|_| !starts_at_zero)
        .map(|baseline| (0, baseline.get(task).map(|accuracy| 100.0 * accuracy)));
    let curve = run.curve.iter().map(|point| {
        (
            point.step,
            point.accuracy.get(task).map(|accuracy| 100.0 * accuracy),
        )
    });
    series::defined_segments(baseline.into_iter().chain(curve))
}

/// Draws the accuracy-matrix figure: one heat map per run and the colour scale.
pub fn draw_accuracy_matrices(ui: &mut Ui, results: &Results) {
    figure_heading(
        ui,
        results,
        "accuracy matrix, test accuracy (%) after each task",
    );
    if results.runs.is_empty() {
        ui.label("These results contain no runs.");
        return;
    }
    draw_accuracy_colour_scale(ui);
    panel_grid(ui, results.runs.len(), |ui, index| {
        draw_accuracy_matrix_panel(ui, results, index)
    });
}

/// Draws run `run_index`'s accuracy matrix R as a heat map: row i after training task i,
/// column j evaluated on task j, each cell with its accuracy in percent. Rows for tasks the
/// run never finished are grey.
pub fn draw_accuracy_matrix_panel(ui: &mut Ui, results: &Results, run_index: usize) {
    let Some(run) = results.runs.get(run_index) else {
        return;
    };
    ui.label(RichText::new(panel_title(run)).strong());
    let task_count = results.tasks.len();
    if task_count == 0 {
        ui.label("The experiment has no tasks.");
        return;
    }

    let heatmap = Heatmap::new(matrix_cells_percent(&run.accuracy, task_count), task_count)
        .custom_mapping(Box::new(accuracy_colour))
        .formatter(Box::new(|percent| {
            if percent.is_nan() {
                "–".to_owned()
            } else {
                format!("{percent:.1}")
            }
        }));
    let size = task_count as f64;
    let plot = Plot::new(("accuracy-matrix", run_index))
        .width(ui.available_width())
        .height(ui.available_height())
        .default_x_bounds(0.0, size)
        .default_y_bounds(0.0, size)
        .set_margin_fraction(Vec2::ZERO)
        // Row 0 (after the first task) at the top, as matrices are written.
        .invert_y(true)
        .show_grid(false)
        .x_grid_spacer(task_centres)
        .y_grid_spacer(task_centres)
        .custom_x_axes(vec![task_axis(
            AxisHints::new_x(),
            &results.tasks,
            "evaluated on task",
        )])
        .custom_y_axes(vec![task_axis(
            AxisHints::new_y(),
            &results.tasks,
            "after training task",
        )])
        .show_x(false)
        .show_y(false)
        .allow_zoom(false)
        .allow_drag(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .allow_double_click_reset(false);
    plot.show(ui, |plot_ui| plot_ui.heatmap(heatmap));
}

/// Lays out the accuracy matrix as `task_count × task_count` cells in row-major order, in
/// percent, with NaN where the run has no value.
fn matrix_cells_percent(accuracy: &[Vec<f64>], task_count: usize) -> Vec<f64> {
    (0..task_count)
        .flat_map(|row| (0..task_count).map(move |column| (row, column)))
        .map(|(row, column)| {
            let value = accuracy.get(row).and_then(|values| values.get(column));
            value.map_or(f64::NAN, |fraction| 100.0 * fraction)
        })
        .collect()
}

/// Configures an axis with the task names at the cell centres, in full strength. egui_plot 0.38
/// fades x-axis tick labels closer than 80 points apart, which would grey out the names of
/// narrow cells. It still leaves out a name wider than its cell.
fn task_axis<'a>(hints: AxisHints<'a>, tasks: &'a [String], title: &str) -> AxisHints<'a> {
    hints
        .label(title)
        .formatter(|mark, _| task_name_at(tasks, mark.value))
        .label_spacing(0.0..=1.0)
}

/// Places one axis mark at the centre of every task's cell, so each gets its name as a label.
fn task_centres(input: GridInput) -> Vec<GridMark> {
    let (low, high) = input.bounds;
    let first = low.max(0.0).floor() as usize;
    let last = high.max(0.0).ceil() as usize;
    (first..last)
        .map(|cell| GridMark {
            value: cell as f64 + 0.5,
            step_size: 1.0,
        })
        .collect()
}

/// Returns the name of the task whose cell is centred at `value`, or an empty string between
/// cells.
fn task_name_at(tasks: &[String], value: f64) -> String {
    let cell = value - 0.5;
    if cell < 0.0 || cell.fract() != 0.0 {
        return String::new();
    }
    tasks.get(cell as usize).cloned().unwrap_or_default()
}

/// Draws the colour scale of the accuracy matrices: a gradient from 0 to 100 % with ticks.
pub fn draw_accuracy_colour_scale(ui: &mut Ui) {
    ui.horizontal(|ui| {
        ui.label("accuracy (%)");
        let (rect, _) = ui.allocate_exact_size(Vec2::new(240.0, 28.0), Sense::hover());
        let bar = rect.with_max_y(rect.top() + 12.0);
        let painter = ui.painter();
        let steps = 120;
        for step in 0..steps {
            let left = bar.left() + bar.width() * step as f32 / steps as f32;
            let right = bar.left() + bar.width() * (step + 1) as f32 / steps as f32;
            let slice = bar.with_min_x(left).with_max_x(right);
            painter.rect_filled(
                slice,
                0.0,
                accuracy_colour(100.0 * (step as f64 + 0.5) / steps as f64),
            );
        }
        let font = FontId::proportional(11.0);
        let text_colour = ui.visuals().text_color();
        for percent in [0, 25, 50, 75, 100] {
            let x = bar.left() + bar.width() * percent as f32 / 100.0;
            painter.line_segment(
                [
                    egui::pos2(x, bar.bottom()),
                    egui::pos2(x, bar.bottom() + 3.0),
                ],
                Stroke::new(1.0, text_colour),
            );
            painter.text(
                egui::pos2(x, bar.bottom() + 3.0),
                Align2::CENTER_TOP,
                percent,
                font.clone(),
                text_colour,
            );
        }
    });
}

/// Draws the stability–plasticity trade-off: for each run that finished every task, the mean
/// accuracy on the old tasks against the accuracy on the last task.
///
/// Runs of one method that differ in a parameter form a sweep ([`series::sweeps`]): a line in
/// the method's colour through its points in order of the parameter, each point labelled with
/// its value (`λ=1000`). Several methods' sweeps share the plot. Fine-tuning (square) and joint
/// training (diamond) are the reference points: the usual lower and upper bounds.
pub fn draw_tradeoff(ui: &mut Ui, results: &Results) {
    figure_heading(
        ui,
        results,
        "old-task against new-task accuracy after the last task",
    );
    let task_count = results.tasks.len();
    let sweeps = series::sweeps(results);
    let left_out: Vec<String> = results
        .runs
        .iter()
        .filter(|run| series::tradeoff(&run.accuracy, task_count).is_none())
        .map(panel_title)
        .collect();
    draw_tradeoff_notes(ui, task_count, &left_out);

    let points: Vec<Tradeoff> = sweeps
        .iter()
        .flat_map(|sweep| sweep.points.iter().map(|point| point.tradeoff))
        .collect();
    let (x_range, y_range) = tradeoff_bounds(&points);
    let label_offset = 0.015 * (x_range.1 - x_range.0);
    let last_task = results.tasks.last().map_or("the last task", String::as_str);
    let plot = Plot::new("tradeoff")
        .width(ui.available_width())
        .height(ui.available_height())
        .default_x_bounds(x_range.0, x_range.1)
        .default_y_bounds(y_range.0, y_range.1)
        .legend(
            Legend::default()
                .position(Corner::LeftBottom)
                .follow_insertion_order(true),
        )
        .x_axis_label(format!("new task: accuracy on {last_task} (%)"))
        .y_axis_label("old tasks: mean accuracy (%)");
    plot.show(ui, |plot_ui| {
        for sweep in &sweeps {
            let colour = method_colour(sweep.method);
            let name = sweep_legend_name(sweep);
            let coordinates: Vec<[f64; 2]> = sweep
                .points
                .iter()
                .map(|point| tradeoff_percent(point.tradeoff))
                .collect();
            if sweep.parameter.is_some() && coordinates.len() > 1 {
                let line = Line::new(name.as_str(), PlotPoints::new(coordinates.clone()))
                    .color(colour)
                    .width(LINE_WIDTH);
                plot_ui.line(line);
            }
            let (shape, radius) = tradeoff_marker(sweep.method);
            let markers = Points::new(name.as_str(), PlotPoints::new(coordinates))
                .color(colour)
                .shape(shape)
                .filled(true)
                .radius(radius);
            plot_ui.points(markers);

            for point in &sweep.points {
                let [x, y] = tradeoff_percent(point.tradeoff);
                let label = RichText::new(point.label.as_str())
                    .text_style(TextStyle::Body)
                    .color(colour);
                let text = Text::new("", PlotPoint::new(x + label_offset, y), label)
                    .anchor(Align2::LEFT_CENTER);
                plot_ui.text(text);
            }
        }
    });
}

/// Returns a point's position on the trade-off plot: new-task and old-task accuracy in percent.
fn tradeoff_percent(tradeoff: Tradeoff) -> [f64; 2] {
    [100.0 * tradeoff.new_task, 100.0 * tradeoff.old_tasks]
}

/// Names a sweep in the trade-off legend, marking the reference methods as bounds.
fn sweep_legend_name(sweep: &series::Sweep) -> String {
    match sweep.method {
        Method::Finetune => format!("{} (lower bound)", sweep.name()),
        Method::Joint => format!("{} (upper bound)", sweep.name()),
        _ => sweep.name(),
    }
}

/// Returns the marker shape and radius of a method's trade-off points: larger squares and
/// diamonds for the reference methods, circles for the rest.
fn tradeoff_marker(method: Method) -> (MarkerShape, f32) {
    match method {
        Method::Finetune => (MarkerShape::Square, 6.5),
        Method::Joint => (MarkerShape::Diamond, 7.5),
        _ => (MarkerShape::Circle, 5.0),
    }
}

/// Draws a note saying why the trade-off has no points, or which runs it leaves out.
fn draw_tradeoff_notes(ui: &mut Ui, task_count: usize, left_out: &[String]) {
    if task_count < 2 {
        ui.label(format!(
            "The trade-off needs at least two tasks; this experiment has {task_count}."
        ));
    } else if !left_out.is_empty() {
        ui.label(format!(
            "Not shown, stopped before the last task: {}",
            left_out.join(", ")
        ));
    }
}

/// Computes axis ranges in percent around the points, padded so that markers and labels fit
/// and kept within 0–100 where the data allows. Without points both axes span 0–100.
fn tradeoff_bounds(points: &[Tradeoff]) -> ((f64, f64), (f64, f64)) {
    if points.is_empty() {
        return ((0.0, 100.0), (0.0, 100.0));
    }
    let range = |values: Vec<f64>| {
        let low = values.iter().copied().fold(f64::INFINITY, f64::min);
        let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let padding = (0.1 * (high - low)).max(2.0);
        (
            (low - padding).max(0.0).min(low),
            (high + padding).min(100.0).max(high),
        )
    };
    let (x_low, x_high) = range(points.iter().map(|t| 100.0 * t.new_task).collect());
    let (y_low, y_high) = range(points.iter().map(|t| 100.0 * t.old_tasks).collect());
    // Labels extend to the right of their points; leave them a quarter of the width.
    let x_high = x_high + 0.25 * (x_high - x_low);
    ((x_low, x_high), (y_low, y_high))
}

/// Returns whether `run` recorded any finite penalty (or, for LwF, distillation) value.
pub fn has_penalty(run: &RunResult) -> bool {
    run.curve
        .iter()
        .any(|point| point.penalty.is_some_and(f64::is_finite))
}

/// Draws run `run_index`'s training loss and penalty term over steps on one plot, with the task
/// starts marked.
///
/// Both are terms of the loss the optimizer minimises (the penalty λ/2 Σ F (θ − θ*)², or LwF's
/// distillation term), so one axis shows how large the penalty is next to the task's loss.
pub fn draw_loss_and_penalty(ui: &mut Ui, results: &Results, run_index: usize) {
    let Some(run) = results.runs.get(run_index) else {
        return;
    };
    let penalty = penalty_name(run.method);
    figure_heading(
        ui,
        results,
        &format!("training loss and {penalty} of {}", panel_title(run)),
    );

    let max_step = run
        .curve
        .last()
        .map_or(1.0, |point| (point.step as f64).max(1.0));
    let plot = Plot::new(("loss-and-penalty", run_index))
        .width(ui.available_width())
        .height(ui.available_height())
        .default_x_bounds(0.0, max_step)
        .auto_bounds([false, true])
        .include_y(0.0)
        .legend(
            Legend::default()
                .position(Corner::RightTop)
                .follow_insertion_order(true),
        )
        .x_axis_label("optimizer step")
        .y_axis_label("loss term per sample");
    let terms: [(&str, Color32, CurveValue); 2] = [
        ("training loss (cross-entropy)", PALETTE[0], |point| {
            point.loss
        }),
        (penalty, PALETTE[3], |point| point.penalty),
    ];
    plot.show(ui, |plot_ui| {
        for (name, colour, value) in terms {
            let values = run.curve.iter().map(|point| (point.step, value(point)));
            for segment in series::defined_segments(values) {
                plot_ui.line(
                    Line::new(name, PlotPoints::new(segment))
                        .color(colour)
                        .width(LINE_WIDTH),
                );
            }
        }
        for start in series::task_starts(&run.curve) {
            let marker = VLine::new("", start.step as f64)
                .color(TASK_MARKER_COLOUR)
                .style(LineStyle::dashed_dense());
            plot_ui.vline(marker);
        }
    });
}

/// Reads one value from a curve point, such as its loss.
type CurveValue = fn(&CurvePoint) -> Option<f64>;

/// Names what the runner stores as `penalty` for `method`: LwF's distillation term, the weight
/// penalty for the other methods.
fn penalty_name(method: Method) -> &'static str {
    match method {
        Method::Lwf => "distillation term",
        _ => "penalty term",
    }
}
