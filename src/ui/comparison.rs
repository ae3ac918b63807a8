//! The runs side by side: the figures from [`crate::plots`] in tabs, and the summary table
//! with one row per run, its progress while it trains and its metrics when it ends.

use std::cmp::Ordering;

use egui::{Align, Button, ComboBox, Grid, Id, Layout, ProgressBar, RichText, ScrollArea, Ui};
use egui_plot::Plot;

use crate::experiment::results::{Results, RunResult};
use crate::plots::series;

use super::dialogs::FileAction;
use super::export::PlotFigure;
use super::session::{RunState, Session};

/// The figure shown in the central panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FigureTab {
    /// Accuracy on every task over steps, a panel per run.
    AccuracyCurves,
    /// Each run's accuracy matrix as a heat map.
    AccuracyMatrices,
    /// Old-task against new-task accuracy.
    Tradeoff,
    /// Loss and penalty of one run.
    LossAndPenalty,
}

impl FigureTab {
    const ALL: [Self; 4] = [Self::AccuracyCurves, Self::AccuracyMatrices, Self::Tradeoff, Self::LossAndPenalty];

    fn title(self) -> &'static str {
        match self {
            Self::AccuracyCurves => "Accuracy curves",
            Self::AccuracyMatrices => "Accuracy matrices",
            Self::Tradeoff => "Trade-off",
            Self::LossAndPenalty => "Loss and penalty",
        }
    }
}

/// A column of the summary table that it can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    /// The order the runs were listed in.
    Order,
    /// Run label.
    Label,
    /// Status.
    Status,
    /// Final accuracy on one task.
    TaskAccuracy(usize),
    /// Average accuracy after the last task.
    AverageAccuracy,
    /// Backward transfer.
    BackwardTransfer,
    /// Mean forgetting.
    Forgetting,
    /// Training time.
    Time,
}

impl SortColumn {
    /// Direction of the first click: best first for accuracies and transfer, smallest first
    /// for forgetting, time and text.
    fn starts_descending(self) -> bool {
        matches!(self, Self::TaskAccuracy(_) | Self::AverageAccuracy | Self::BackwardTransfer)
    }
}

/// View state of the comparison area: the figure tab and the table's sort order.
#[derive(Debug)]
pub struct ComparisonView {
    tab: FigureTab,
    /// Run shown in the loss-and-penalty tab.
    penalty_run: usize,
    sort: SortColumn,
    descending: bool,
    /// Last optimizer step the accuracy curves were drawn up to.
    curves_drawn_to: Option<u64>,
}

impl Default for ComparisonView {
    fn default() -> Self {
        Self { tab: FigureTab::AccuracyCurves, penalty_run: 0, sort: SortColumn::Order, descending: false, curves_drawn_to: None }
    }
}

/// Requests the user made in the comparison area this frame.
#[derive(Debug, Default)]
pub struct ComparisonRequests {
    /// A file to choose for an export.
    pub file: Option<FileAction>,
    /// Runs to stop.
    pub stop: Vec<usize>,
}

impl ComparisonView {
    /// Sorts the summary table by `column`, reversing the order if it is already sorted by it.
    pub fn sort_by(&mut self, column: SortColumn) {
        if self.sort == column {
            self.descending = !self.descending;
        } else {
            self.sort = column;
            self.descending = column.starts_descending();
        }
    }

    /// Row order of the summary table: indices into the session's runs.
    pub fn row_order(&self, session: &Session) -> Vec<usize> {
        let mut order: Vec<usize> = (0..session.results.runs.len()).collect();
        order.sort_by(|&a, &b| {
            let ordering = self.compare(session, a, b);
            if self.descending { ordering.reverse() } else { ordering }
        });
        order
    }

    fn compare(&self, session: &Session, a: usize, b: usize) -> Ordering {
        let runs = &session.results.runs;
        let (run_a, run_b) = (&runs[a], &runs[b]);
        let by_number = |value: &dyn Fn(&RunResult) -> Option<f64>| compare_missing_last(value(run_a), value(run_b), self.descending);
        let ordering = match self.sort {
            SortColumn::Order => Ordering::Equal,
            SortColumn::Label => run_a.label.cmp(&run_b.label),
            SortColumn::Status => session.progress[a].state.name().cmp(session.progress[b].state.name()),
            SortColumn::TaskAccuracy(task) => by_number(&|run| final_accuracy(run, task)),
            SortColumn::AverageAccuracy => by_number(&|run| run.metrics.average_accuracy),
            SortColumn::BackwardTransfer => by_number(&|run| run.metrics.backward_transfer),
            SortColumn::Forgetting => by_number(&|run| run.metrics.forgetting.mean),
            SortColumn::Time => by_number(&|run| Some(run.train_seconds)),
        };
        ordering.then(a.cmp(&b))
    }

    /// Draws the figure tabs, the export buttons and the chosen figure.
    pub fn show_figures(&mut self, ui: &mut Ui, session: &Session, exports_enabled: bool) -> ComparisonRequests {
        let mut requests = ComparisonRequests::default();
        let results = &session.results;
        self.penalty_run = self.penalty_run.min(results.runs.len().saturating_sub(1));

        ui.horizontal(|ui| {
            for tab in FigureTab::ALL {
                ui.selectable_value(&mut self.tab, tab, tab.title());
            }
            if self.tab == FigureTab::LossAndPenalty {
                let selected = results.runs.get(self.penalty_run).map_or("", |run| run.label.as_str());
                ComboBox::from_id_salt("penalty run").selected_text(selected).show_ui(ui, |ui| {
                    for (index, run) in results.runs.iter().enumerate() {
                        ui.selectable_value(&mut self.penalty_run, index, run.label.as_str());
                    }
                });
            }
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                let has_results = !results.runs.is_empty();
                if ui.add_enabled(exports_enabled && has_results, Button::new("Export all plots…"))
                    .on_hover_text("Every figure as PNG into one folder, as `run --out` writes them.")
                    .clicked()
                {
                    requests.file = Some(FileAction::ExportAllPlots);
                }
                if ui.add_enabled(exports_enabled && has_results, Button::new("Export PNG…"))
                    .on_hover_text("This figure alone, on a white page at twice the screen resolution.")
                    .clicked()
                {
                    requests.file = Some(FileAction::ExportPlot(self.current_figure(session)));
                }
            });
        });
        ui.separator();
        if self.tab == FigureTab::AccuracyCurves {
            let max_step = series::max_step(results);
            if self.curves_drawn_to != Some(max_step) {
                reset_accuracy_curve_bounds(ui);
                self.curves_drawn_to = Some(max_step);
            }
        }
        let figure = self.current_figure(session);
        ui.push_id(("figure", figure_extent(&figure, results)), |ui| {
            // Plots without a background fill: on a software renderer every filled pixel costs
            // frame time, and the grid lines already mark each plot's area.
            ui.visuals_mut().extreme_bg_color = egui::Color32::TRANSPARENT;
            figure.draw(ui, results);
        });
        requests
    }

    fn current_figure(&self, session: &Session) -> PlotFigure {
        match self.tab {
            FigureTab::AccuracyCurves => PlotFigure::AccuracyCurves,
            FigureTab::AccuracyMatrices => PlotFigure::AccuracyMatrices,
            FigureTab::Tradeoff => PlotFigure::Tradeoff,
            FigureTab::LossAndPenalty => PlotFigure::loss_and_penalty(&session.results, self.penalty_run),
        }
    }

    /// Draws the summary table: one row per run with its progress, metrics and a Stop button.
    /// Clicking a column header sorts by it.
    pub fn show_summary(&mut self, ui: &mut Ui, session: &Session) -> ComparisonRequests {
        let mut requests = ComparisonRequests::default();
        let results = &session.results;
        let order = self.row_order(session);

        ScrollArea::both().id_salt("summary").auto_shrink([false, false]).show(ui, |ui| {
            Grid::new("summary table").striped(true).min_col_width(40.0).show(ui, |ui| {
                self.header(ui, "#", SortColumn::Order, "The order of the runs in the experiment.");
                self.header(ui, "Run", SortColumn::Label, "Run label: the method and the parameters that set it apart.");
                self.header(ui, "Status", SortColumn::Status, "Hover over a status for the run's message.");
                ui.label(RichText::new("Progress").strong());
                for (task, name) in results.tasks.iter().enumerate() {
                    self.header(ui, name, SortColumn::TaskAccuracy(task), "Test accuracy (%) on this task after the last trained task.");
                }
                self.header(ui, "Average", SortColumn::AverageAccuracy, "Average accuracy (%): mean of the accuracy matrix's last row.");
                self.header(ui, "BWT", SortColumn::BackwardTransfer, "Backward transfer (points): mean over old tasks j of R[T][j] − R[j][j].");
                self.header(ui, "Forgetting", SortColumn::Forgetting, "Mean forgetting (points): best earlier accuracy minus final accuracy, over old tasks.");
                self.header(ui, "Time", SortColumn::Time, "Training time in seconds, evaluation included, Fisher estimate excluded.");
                ui.label(RichText::new("Penalty").strong()).on_hover_text("Penalty term (LwF: distillation term) at the latest curve point.");
                ui.label("");
                ui.end_row();

                for index in order {
                    let run = &results.runs[index];
                    let progress = &session.progress[index];
                    ui.label((index + 1).to_string());
                    ui.label(run.label.as_str());
                    let status = ui.label(status_text(progress.state));
                    if !run.message.is_empty() {
                        status.on_hover_text(run.message.as_str());
                    }
                    let text = if progress.total_steps > 0 {
                        format!("task {} · step {}/{}", progress.task + 1, progress.step, progress.total_steps)
                    } else {
                        String::new()
                    };
                    ui.add(ProgressBar::new(progress.fraction()).desired_width(170.0).text(text));
                    for task in 0..results.tasks.len() {
                        ui.label(percent(final_accuracy(run, task)));
                    }
                    ui.label(percent(run.metrics.average_accuracy));
                    ui.label(signed_points(run.metrics.backward_transfer));
                    ui.label(points(run.metrics.forgetting.mean));
                    let seconds = progress.running_seconds().unwrap_or(run.train_seconds);
                    ui.label(format!("{seconds:.1} s"));
                    ui.label(progress.penalty.map_or_else(|| "–".to_owned(), |penalty| format!("{penalty:.3e}")));
                    if progress.state.is_active() {
                        let stop = ui.add_enabled(progress.state != RunState::Stopping, Button::new("Stop").small());
                        if stop.on_hover_text("Stop this run; the others go on.").clicked() {
                            requests.stop.push(index);
                        }
                    } else {
                        ui.label("");
                    }
                    ui.end_row();
                }
            });
        });
        requests
    }

    fn header(&mut self, ui: &mut Ui, title: &str, column: SortColumn, help: &str) {
        let title = RichText::new(title).strong();
        // The arrows come from the monospace font: egui's proportional font has no arrow glyphs.
        let button = match (self.sort == column, self.descending) {
            (true, true) => Button::new((title, RichText::new("▼").monospace())),
            (true, false) => Button::new((title, RichText::new("▲").monospace())),
            (false, _) => Button::new(title),
        };
        if ui.add(button.frame(false)).on_hover_text(format!("{help} Click to sort.")).clicked() {
            self.sort_by(column);
        }
    }
}

// NOTE: a workaround until `plots` can draw live data. egui_plot 0.38 applies a plot's
// `default_x_bounds` only when it first creates the plot's memory, and it turns automatic bounds
// off. The accuracy curves would therefore keep the step range of the first frame they were
// drawn in while the runs are still training. The curve panels share a link group, which hands those
// bounds to every new panel too, so a fresh id scope is not enough for them.
/// Makes the accuracy-curve panels take their default bounds from the data again, keeping their
/// link, by showing an empty plot in their link group with [`Plot::reset`]. The group id is the
/// one `plots::draw_accuracy_curve_panel` uses.
fn reset_accuracy_curve_bounds(ui: &mut Ui) {
    // A child ui leaves the parent's layout alone, so the figure does not shift on this frame.
    let corner = egui::Rect::from_min_size(ui.cursor().min, egui::Vec2::splat(1.0));
    let mut hidden = ui.new_child(egui::UiBuilder::new().max_rect(corner));
    Plot::new("accuracy-curve bounds reset")
        .link_axis(Id::unique("accuracy-curves"), [true, true])
        .reset()
        .width(1.0)
        .height(1.0)
        .show_axes(false)
        .show_grid(false)
        .show_background(false)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .show_x(false)
        .show_y(false)
        .show(&mut hidden, |_| {});
}

/// Returns what a figure's default plot bounds depend on, as an id salt: plots drawn under a new salt
/// start from fresh memory and so take their default bounds from the current data. The
/// accuracy curves are kept in bounds by [`reset_accuracy_curve_bounds`] instead, so their
/// zoom survives new points.
fn figure_extent(figure: &PlotFigure, results: &Results) -> (usize, u64) {
    match figure {
        PlotFigure::AccuracyCurves => (0, 0),
        PlotFigure::AccuracyMatrices => (results.tasks.len(), 0),
        PlotFigure::Tradeoff => {
            let finished = results.runs.iter().filter(|run| run.accuracy.len() == results.tasks.len()).count();
            (finished, 0)
        }
        PlotFigure::LossAndPenalty { run, .. } => {
            let last_step = results.runs.get(*run).and_then(|result| result.curve.last()).map_or(0, |point| point.step);
            (*run, last_step)
        }
    }
}

/// Orders present values by `Ord` and missing ones after them in either direction, so a
/// run without a value never tops the table.
fn compare_missing_last(a: Option<f64>, b: Option<f64>, descending: bool) -> Ordering {
    let a = a.filter(|value| value.is_finite());
    let b = b.filter(|value| value.is_finite());
    match (a, b) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        (Some(_), None) if descending => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) if descending => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Accuracy on `task` in the last row of the accuracy matrix, as a fraction.
fn final_accuracy(run: &RunResult, task: usize) -> Option<f64> {
    run.accuracy.last().and_then(|row| row.get(task).copied())
}

fn status_text(state: RunState) -> RichText {
    let text = RichText::new(state.name());
    match state {
        RunState::Ended(crate::experiment::results::RunStatus::Diverged | crate::experiment::results::RunStatus::Failed) => {
            text.color(egui::Color32::from_rgb(214, 39, 40))
        }
        RunState::Running => text.strong(),
        _ => text,
    }
}

fn percent(fraction: Option<f64>) -> String {
    fraction.map_or_else(|| "–".to_owned(), |fraction| format!("{:.1}", 100.0 * fraction))
}

fn points(fraction: Option<f64>) -> String {
    fraction.map_or_else(|| "–".to_owned(), |fraction| format!("{:.1}", 100.0 * fraction))
}

fn signed_points(fraction: Option<f64>) -> String {
    fraction.map_or_else(|| "–".to_owned(), |fraction| format!("{:+.1}", 100.0 * fraction))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_values_sort_last_both_ways() {
        let mut values = [Some(0.5), None, Some(0.9), Some(0.1)];
        values.sort_by(|a, b| compare_missing_last(*a, *b, false));
        assert_eq!(values, [Some(0.1), Some(0.5), Some(0.9), None], "ascending keeps the missing value last");

        values.sort_by(|a, b| compare_missing_last(*a, *b, true).reverse());
        assert_eq!(values, [Some(0.9), Some(0.5), Some(0.1), None], "descending keeps the missing value last");
    }

    #[test]
    fn second_click_reverses_order() {
        let mut view = ComparisonView::default();
        view.sort_by(SortColumn::AverageAccuracy);
        assert!(view.descending, "accuracy sorts best first on the first click");
        view.sort_by(SortColumn::AverageAccuracy);
        assert!(!view.descending, "a second click reverses the order");
        view.sort_by(SortColumn::Time);
        assert!(!view.descending, "time sorts shortest first on the first click");
    }
}
