//! The runs side by side: the figures from [`crate::plots`] in tabs, and the summary table
//! with one row per run, its progress while it trains and its metrics when it ends.

use std::cmp::Ordering;

use egui::{Align, Button, ComboBox, Grid, Id, Layout, ProgressBar, RichText, ScrollArea, Ui};
use egui_plot::Plot;

use crate::experiment::results::{Results, RunResult};
use crate::plots::{insight_series, series};

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
    /// One run's Fisher diagonal after one task.
    Fisher,
    /// Weight distributions per layer after one task.
    Weights,
    /// Distances from θ* over training.
    Distances,
}

impl FigureTab {
    const ALL: [Self; 7] = [
        Self::AccuracyCurves,
        Self::AccuracyMatrices,
        Self::Tradeoff,
        Self::LossAndPenalty,
        Self::Fisher,
        Self::Weights,
        Self::Distances,
    ];

    fn title(self) -> &'static str {
        match self {
            Self::AccuracyCurves => "Accuracy curves",
            Self::AccuracyMatrices => "Accuracy matrices",
            Self::Tradeoff => "Trade-off",
            Self::LossAndPenalty => "Loss and penalty",
            Self::Fisher => "Fisher",
            Self::Weights => "Weights",
            Self::Distances => "Distance from θ*",
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
        matches!(
            self,
            Self::TaskAccuracy(_) | Self::AverageAccuracy | Self::BackwardTransfer
        )
    }
}

/// View state of the comparison area: the figure tab and the table's sort order.
#[derive(Debug)]
pub struct ComparisonView {
    tab: FigureTab,
    /// Run shown in the loss-and-penalty tab.
    penalty_run: usize,
    /// Index into [`insight_series::fisher_views`] of the diagonal shown in the Fisher tab.
    fisher_view: usize,
    /// Task shown in the weights tab.
    weights_task: Option<usize>,
    sort: SortColumn,
    descending: bool,
    /// Data extent each linked figure was last drawn with, see [`reset_linked_bounds`].
    linked_extents: [Option<u64>; LINKED_FIGURES.len()],
}

impl Default for ComparisonView {
    fn default() -> Self {
        Self {
            tab: FigureTab::AccuracyCurves,
            penalty_run: 0,
            fisher_view: 0,
            weights_task: None,
            sort: SortColumn::Order,
            descending: false,
            linked_extents: [None; LINKED_FIGURES.len()],
        }
    }
}

/// Link groups of the figures whose panels share axes, as `plots` names them, with the data
/// extent their default bounds follow.
const LINKED_FIGURES: [(FigureTab, &str); 2] = [
    (FigureTab::AccuracyCurves, "accuracy-curves"),
    (FigureTab::Distances, "anchor-distance"),
];

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
            if self.descending {
                ordering.reverse()
            } else {
                ordering
            }
        });
        order
    }

    fn compare(&self, session: &Session, a: usize, b: usize) -> Ordering {
        let runs = &session.results.runs;
        let (run_a, run_b) = (&runs[a], &runs[b]);
        let by_number = |value: &dyn Fn(&RunResult) -> Option<f64>| {
            compare_missing_last(value(run_a), value(run_b), self.descending)
        };
        let ordering = match self.sort {
            SortColumn::Order => Ordering::Equal,
            SortColumn::Label => run_a.label.cmp(&run_b.label),
            SortColumn::Status => session.progress[a]
                .state
                .name()
                .cmp(session.progress[b].state.name()),
            SortColumn::TaskAccuracy(task) => compare_missing_last(
                final_accuracy(session, a, task),
                final_accuracy(session, b, task),
                self.descending,
            ),
            SortColumn::AverageAccuracy => by_number(&|run| run.metrics.average_accuracy),
            SortColumn::BackwardTransfer => by_number(&|run| run.metrics.backward_transfer),
            SortColumn::Forgetting => by_number(&|run| run.metrics.forgetting.mean),
            SortColumn::Time => by_number(&|run| Some(run.train_seconds)),
        };
        ordering.then(a.cmp(&b))
    }

    /// Draws the figure tabs, the export buttons and the chosen figure.
    pub fn show_figures(
        &mut self,
        ui: &mut Ui,
        session: &Session,
        exports_enabled: bool,
    ) -> ComparisonRequests {
        let mut requests = ComparisonRequests::default();
        let results = &session.results;
        self.penalty_run = self.penalty_run.min(results.runs.len().saturating_sub(1));

        ui.horizontal(|ui| {
            for tab in FigureTab::ALL {
                ui.selectable_value(&mut self.tab, tab, tab.title());
            }
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                let has_results = !results.runs.is_empty();
                if ui
                    .add_enabled(
                        exports_enabled && has_results,
                        Button::new("Export all plots…"),
                    )
                    .on_hover_text(
                        "Every figure as PNG into one folder, as `run --out` writes them.",
                    )
                    .clicked()
                {
                    requests.file = Some(FileAction::ExportAllPlots);
                }
                let figure = self.current_figure(session);
                if ui
                    .add_enabled(
                        exports_enabled && figure.is_some(),
                        Button::new("Export PNG…"),
                    )
                    .on_hover_text(
                        "This figure alone, on a white page at twice the screen resolution.",
                    )
                    .clicked()
                {
                    requests.file = figure.map(FileAction::ExportPlot);
                }
            });
        });
        self.show_figure_choice(ui, results);
        ui.separator();
        for (slot, (tab, group)) in LINKED_FIGURES.iter().enumerate() {
            let extent = linked_extent(*tab, results);
            if self.tab == *tab && self.linked_extents[slot] != Some(extent) {
                reset_linked_bounds(ui, group);
                self.linked_extents[slot] = Some(extent);
            }
        }
        let Some(figure) = self.current_figure(session) else {
            ui.label(RichText::new(self.empty_tab_note()).weak());
            return requests;
        };
        ui.push_id(("figure", figure_extent(&figure, results)), |ui| {
            // Plots without a background fill: on a software renderer every filled pixel costs
            // frame time, and the grid lines already mark each plot's area.
            ui.visuals_mut().extreme_bg_color = egui::Color32::TRANSPARENT;
            figure.draw(ui, results);
        });
        requests
    }

    /// Draws the choice of run or task for the tabs that show one of several.
    fn show_figure_choice(&mut self, ui: &mut Ui, results: &Results) {
        let has_choice = matches!(
            self.tab,
            FigureTab::LossAndPenalty | FigureTab::Fisher | FigureTab::Weights
        );
        if has_choice {
            ui.horizontal(|ui| self.show_figure_choice_row(ui, results));
        }
    }

    fn show_figure_choice_row(&mut self, ui: &mut Ui, results: &Results) {
        match self.tab {
            FigureTab::LossAndPenalty => {
                let selected = results
                    .runs
                    .get(self.penalty_run)
                    .map_or("", |run| run.label.as_str());
                ComboBox::from_id_salt("penalty run")
                    .selected_text(selected)
                    .show_ui(ui, |ui| {
                        for (index, run) in results.runs.iter().enumerate() {
                            ui.selectable_value(&mut self.penalty_run, index, run.label.as_str());
                        }
                    });
            }
            FigureTab::Fisher => {
                let views = insight_series::fisher_views(results);
                if views.is_empty() {
                    return;
                }
                self.fisher_view = self.fisher_view.min(views.len() - 1);
                let name = |view: &insight_series::FisherView| {
                    format!(
                        "{} after task {}",
                        results.runs[view.run].label,
                        view.task + 1
                    )
                };
                ComboBox::from_id_salt("fisher view")
                    .selected_text(name(&views[self.fisher_view]))
                    .show_ui(ui, |ui| {
                        for (index, view) in views.iter().enumerate() {
                            ui.selectable_value(&mut self.fisher_view, index, name(view));
                        }
                    });
            }
            FigureTab::Weights => {
                let tasks = insight_series::weight_view_tasks(results);
                let Some(&last) = tasks.last() else { return };
                let task = *self.weights_task.get_or_insert(last);
                let name = |task: usize| {
                    format!(
                        "after task {} ({})",
                        task + 1,
                        results.tasks.get(task).map_or("", String::as_str)
                    )
                };
                ComboBox::from_id_salt("weights task")
                    .selected_text(name(task))
                    .show_ui(ui, |ui| {
                        for task in tasks {
                            ui.selectable_value(&mut self.weights_task, Some(task), name(task));
                        }
                    });
            }
            FigureTab::AccuracyCurves
            | FigureTab::AccuracyMatrices
            | FigureTab::Tradeoff
            | FigureTab::Distances => {}
        }
    }

    /// Returns the figure the chosen tab shows, or `None` while the results have nothing for it.
    fn current_figure(&self, session: &Session) -> Option<PlotFigure> {
        let results = &session.results;
        match self.tab {
            FigureTab::AccuracyCurves => Some(PlotFigure::AccuracyCurves),
            FigureTab::AccuracyMatrices => Some(PlotFigure::AccuracyMatrices),
            FigureTab::Tradeoff => Some(PlotFigure::Tradeoff),
            FigureTab::LossAndPenalty => {
                Some(PlotFigure::loss_and_penalty(results, self.penalty_run))
            }
            FigureTab::Fisher => {
                let views = insight_series::fisher_views(results);
                let view = views.get(self.fisher_view).or(views.last())?;
                Some(PlotFigure::fisher_importance(results, view.run, view.task))
            }
            FigureTab::Weights => {
                let tasks = insight_series::weight_view_tasks(results);
                let task = self
                    .weights_task
                    .filter(|task| tasks.contains(task))
                    .or(tasks.last().copied())?;
                Some(PlotFigure::WeightHistograms { task })
            }
            FigureTab::Distances => {
                let recorded = results
                    .runs
                    .iter()
                    .filter_map(|run| run.insights.as_ref())
                    .any(|insights| !insights.distances.is_empty());
                recorded.then_some(PlotFigure::AnchorDistances)
            }
        }
    }

    /// Explains an empty insight tab.
    fn empty_tab_note(&self) -> &'static str {
        match self.tab {
            FigureTab::Fisher => {
                "Fisher diagonals appear here when a run with insights (or EWC's own estimate) finishes a task \
                 and its values are stored; see Record insights and Store weights in the setup panel."
            }
            FigureTab::Weights => {
                "Weight distributions appear here once runs with stored weights finish their second task; \
                 see Record insights and Store weights in the setup panel."
            }
            FigureTab::Distances => {
                "Distances from θ* appear here when runs with insights end; see Record insights in the setup panel."
            }
            _ => "This figure has nothing to show yet.",
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
                        ui.label(percent(final_accuracy(session, index, task)));
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
        if ui
            .add(button.frame(false))
            .on_hover_text(format!("{help} Click to sort."))
            .clicked()
        {
            self.sort_by(column);
        }
    }
}

// NOTE: a workaround until `plots` can draw live data. egui_plot 0.38 applies a plot's
// `default_x_bounds` only when it first creates the plot's memory, and it turns automatic bounds
// off. The accuracy curves would therefore keep the step range of the first frame they were
// drawn in while the runs are still training. Linked panels hand those bounds to every new
// panel of their group too, so a fresh id scope is not enough for them.
/// Makes the panels of link group `group` take their default bounds from the data again,
/// keeping their link, by showing an empty plot in the group with [`Plot::reset`]. The group
/// names are the ones the `plots` draw functions use.
fn reset_linked_bounds(ui: &mut Ui, group: &str) {
    // A child ui leaves the parent's layout alone, so the figure does not shift on this frame.
    let corner = egui::Rect::from_min_size(ui.cursor().min, egui::Vec2::splat(1.0));
    let mut hidden = ui.new_child(egui::UiBuilder::new().max_rect(corner));
    Plot::new(("linked bounds reset", group))
        .link_axis(Id::unique(group), [true, true])
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

/// Returns the data extent that the default bounds of linked figure `tab` follow.
fn linked_extent(tab: FigureTab, results: &Results) -> u64 {
    match tab {
        FigureTab::Distances => results
            .runs
            .iter()
            .filter(|run| run.insights.is_some())
            .count() as u64,
        _ => series::max_step(results),
    }
}

/// Returns what a figure's default plot bounds depend on, as an id salt: plots drawn under a new salt
/// start from fresh memory and so take their default bounds from the current data. Linked
/// figures are kept in bounds by [`reset_linked_bounds`] instead, so their zoom survives new
/// points.
fn figure_extent(figure: &PlotFigure, results: &Results) -> (usize, u64) {
    match figure {
        PlotFigure::AccuracyCurves | PlotFigure::AnchorDistances => (0, 0),
        PlotFigure::FisherImportance { run, task, .. } => (*run, *task as u64),
        PlotFigure::WeightHistograms { task } => {
            let finished = results
                .runs
                .iter()
                .filter(|run| run.insights.is_some())
                .count();
            (finished, *task as u64)
        }
        PlotFigure::AccuracyMatrices => (results.tasks.len(), 0),
        PlotFigure::Tradeoff => {
            let finished = results
                .runs
                .iter()
                .filter(|run| run.accuracy.len() == results.tasks.len())
                .count();
            (finished, 0)
        }
        PlotFigure::LossAndPenalty { run, .. } => {
            let last_step = results
                .runs
                .get(*run)
                .and_then(|result| result.curve.last())
                .map_or(0, |point| point.step);
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

/// Accuracy of run `index` on `task` in the last row of its accuracy matrix, as a fraction,
/// once the run has ended. While it trains, the rows so far fill the heat map but are not
/// final.
fn final_accuracy(session: &Session, index: usize, task: usize) -> Option<f64> {
    let progress = session.progress.get(index)?;
    if progress.state.is_active() {
        return None;
    }
    let run = session.results.runs.get(index)?;
    run.accuracy.last()?.get(task).copied()
}

fn status_text(state: RunState) -> RichText {
    let text = RichText::new(state.name());
    match state {
        RunState::Ended(
            crate::experiment::results::RunStatus::Diverged
            | crate::experiment::results::RunStatus::Failed,
        ) => text.color(egui::Color32::from_rgb(214, 39, 40)),
        RunState::Running => text.strong(),
        _ => text,
    }
}

fn percent(fraction: Option<f64>) -> String {
    fraction.map_or_else(
        || "–".to_owned(),
        |fraction| format!("{:.1}", 100.0 * fraction),
    )
}

fn points(fraction: Option<f64>) -> String {
    fraction.map_or_else(
        || "–".to_owned(),
        |fraction| format!("{:.1}", 100.0 * fraction),
    )
}

fn signed_points(fraction: Option<f64>) -> String {
    fraction.map_or_else(
        || "–".to_owned(),
        |fraction| format!("{:+.1}", 100.0 * fraction),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_values_sort_last_both_ways() {
        let mut values = [Some(0.5), None, Some(0.9), Some(0.1)];
        values.sort_by(|a, b| compare_missing_last(*a, *b, false));
        assert_eq!(
            values,
            [Some(0.1), Some(0.5), Some(0.9), None],
            "ascending keeps the missing value last"
        );

        values.sort_by(|a, b| compare_missing_last(*a, *b, true).reverse());
        assert_eq!(
            values,
            [Some(0.9), Some(0.5), Some(0.1), None],
            "descending keeps the missing value last"
        );
    }

    #[test]
    fn second_click_reverses_order() {
        let mut view = ComparisonView::default();
        view.sort_by(SortColumn::AverageAccuracy);
        assert!(
            view.descending,
            "accuracy sorts best first on the first click"
        );
        view.sort_by(SortColumn::AverageAccuracy);
        assert!(!view.descending, "a second click reverses the order");
        view.sort_by(SortColumn::Time);
        assert!(
            !view.descending,
            "time sorts shortest first on the first click"
        );
    }
}
