//! [`WorkbenchApp`]: the window's state and its layout.

use std::fs;
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use egui::{Align, Button, CentralPanel, Color32, Frame, Layout, Panel, RichText, ScrollArea, Ui};

use crate::experiment::config::ExperimentConfig;
use crate::experiment::results::{Results, RunStatus};

use super::comparison::{ComparisonRequests, ComparisonView};
use super::dialogs::{FileAction, FileChooser};
use super::events::{AppEvent, Notifier};
use super::export;
use super::frame_times::{FrameSummary, FrameTimes};
use super::log_panel::{LogLine, LogPanel};
use super::session::{Phase, Session};
use super::setup::SetupState;
use super::shared_gpu::{GpuStatus, SharedGpu, lower_worker_priority};

/// How often frame times go to the debug log while an experiment trains or every frame is
/// repainted.
const FRAME_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// The workbench window: setup on the left, the figures in the middle, the summary table and
/// the log below.
///
/// [`Self::show`] draws one frame into a [`Ui`]; eframe calls it through [`eframe::App`] and
/// tests call it through egui_kittest, so both drive the same code.
#[derive(Debug)]
pub struct WorkbenchApp {
    setup: SetupState,
    gpu: SharedGpu,
    session: Option<Session>,
    sessions_started: u64,
    notifier: Notifier,
    events: Receiver<AppEvent>,
    log: LogPanel,
    comparison: ComparisonView,
    files: FileChooser,
    frame_times: FrameTimes,
    last_frame_log: Instant,
    repaint_continuously: bool,
}

impl WorkbenchApp {
    /// Creates the window's state with the seed experiment set up, and starts opening the GPU
    /// on a worker thread so that the first Run does not wait for it.
    pub fn new(context: &egui::Context) -> Self {
        let (sender, events) = mpsc::channel();
        let notifier = Notifier::new(sender, context.clone());
        let gpu = SharedGpu::default();
        open_gpu_in_background(gpu.clone(), notifier.clone());

        let mut log = LogPanel::default();
        log.push(LogLine::info(
            "The seed experiment is set up: MNIST, then Fashion-MNIST, on the seed CNN. Click Run to train every method.",
        ));
        Self {
            setup: SetupState::seed_experiment(),
            gpu,
            session: None,
            sessions_started: 0,
            notifier,
            events,
            log,
            comparison: ComparisonView::default(),
            files: FileChooser::detect(),
            frame_times: FrameTimes::default(),
            last_frame_log: Instant::now(),
            repaint_continuously: false,
        }
    }

    /// Chooses every file through the path field, never a native dialog. `note` gives the
    /// reason, shown in the setup panel.
    #[must_use]
    pub fn with_path_fields_only(mut self, note: &str) -> Self {
        self.files = FileChooser::path_fields_only(note);
        self
    }

    /// Returns the setup panel's state.
    pub fn setup(&self) -> &SetupState {
        &self.setup
    }

    /// Returns the setup panel's state, to change settings as a user would type them.
    pub fn setup_mut(&mut self) -> &mut SetupState {
        &mut self.setup
    }

    /// Returns the results of the latest Run, complete or not.
    pub fn results(&self) -> Option<&Results> {
        self.session.as_ref().map(|session| &session.results)
    }

    /// Returns whether an experiment is loading data or training.
    pub fn is_running(&self) -> bool {
        self.session.as_ref().is_some_and(Session::is_active)
    }

    /// Frame-time means over the last frames.
    pub fn frame_summary(&self) -> Option<FrameSummary> {
        self.frame_times.summary()
    }

    /// Returns the log panel's lines, oldest first.
    pub fn log_lines(&self) -> impl Iterator<Item = &LogLine> {
        self.log.lines()
    }

    /// Repaints every frame instead of on input and progress only, for measuring frame times.
    pub fn set_repaint_continuously(&mut self, enabled: bool) {
        self.repaint_continuously = enabled;
    }

    /// Starts the experiment the setup panel describes, as the Run button does. Does nothing
    /// while one trains; logs the problem when the setup is invalid.
    pub fn start_run(&mut self) {
        if self.is_running() {
            return;
        }
        let config = match self.setup.build_config() {
            Ok(config) => config,
            Err(message) => {
                self.log.push(LogLine::error(
                    format!("cannot run: {message}"),
                    "correct the setting in the setup panel and click Run again",
                ));
                return;
            }
        };
        self.sessions_started += 1;
        self.log.push(LogLine::info(format!(
            "starting experiment `{}`",
            config.name
        )));
        self.comparison = ComparisonView::default();
        let session = Session::start(
            self.sessions_started,
            config,
            self.setup.training_threads(),
            self.gpu.clone(),
            self.notifier.clone(),
        );
        self.session = Some(session);
    }

    /// Asks every run of the current experiment to stop.
    pub fn stop_all(&mut self) {
        if let Some(session) = &mut self.session {
            session.stop_all();
            self.log
                .push(LogLine::info("stopping every run at its next step"));
        }
    }

    /// Draws one frame, background included.
    pub fn show(&mut self, ui: &mut Ui) {
        ui.painter()
            .rect_filled(ui.max_rect(), 0.0, ui.visuals().panel_fill);
        self.show_panels(ui);
    }

    /// Draws one frame on a background the host already cleared to the panel colour.
    ///
    /// The panels are drawn without fills of their own, which halves the pixels a software
    /// renderer shades per frame. With lavapipe under Xvfb on two cores, that took the idle
    /// window from about 45 to 21 ms per frame.
    fn show_panels(&mut self, ui: &mut Ui) {
        let frame_started = self.frame_times.start_frame();
        self.drain_events();

        let side_frame = Frame::side_top_panel(ui.style()).fill(Color32::TRANSPARENT);
        let central_frame = Frame::central_panel(ui.style()).fill(Color32::TRANSPARENT);
        Panel::top("toolbar")
            .frame(side_frame)
            .show(ui, |ui| self.show_toolbar(ui));
        Panel::left("setup")
            .frame(side_frame)
            .resizable(true)
            .default_size(340.0)
            .show(ui, |ui| {
                ScrollArea::vertical()
                    .id_salt("setup scroll")
                    .show(ui, |ui| {
                        let requests = self.setup.show(ui, !self.files.is_busy());
                        if let Some((action, current)) = requests.file {
                            self.files
                                .request(action, current.as_deref(), &self.notifier);
                        }
                        if let Some(note) = self.files.note() {
                            ui.separator();
                            ui.label(RichText::new(note).small().weak());
                        }
                    });
            });
        Panel::bottom("log")
            .frame(side_frame)
            .resizable(true)
            .default_size(120.0)
            .show(ui, |ui| {
                ui.strong("Log");
                self.log.show(ui);
            });
        Panel::bottom("runs")
            .frame(side_frame)
            .resizable(true)
            .default_size(190.0)
            .show(ui, |ui| self.show_runs(ui));
        CentralPanel::default()
            .frame(central_frame)
            .show(ui, |ui| self.show_comparison(ui));

        if let Some((action, path)) = self.files.show_prompt(ui) {
            self.carry_out(action, &path);
        }

        if self.repaint_continuously {
            ui.ctx().request_repaint();
        }
        self.frame_times.end_frame(frame_started);
        self.log_frame_times();
    }

    fn show_toolbar(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            ui.heading("ewc-workbench");
            ui.separator();
            let running = self.is_running();
            if ui.add_enabled(!running, Button::new("Run")).on_hover_text("Train every run of the experiment set up on the left.").clicked() {
                self.start_run();
            }
            if ui.add_enabled(running, Button::new("Stop all")).on_hover_text("Stop every run; finished runs keep their results.").clicked() {
                self.stop_all();
            }
            ui.separator();
            let has_results = self.session.is_some();
            let files_free = !self.files.is_busy();
            if ui.add_enabled(has_results && files_free, Button::new("Export JSON…")).on_hover_text("results.json, as `run --out` writes it.").clicked() {
                self.files.request(FileAction::ExportJson, None, &self.notifier);
            }
            if ui.add_enabled(has_results && files_free, Button::new("Export CSV…")).on_hover_text("results.csv: every curve point, the accuracy matrix and the baseline.").clicked() {
                self.files.request(FileAction::ExportCsv, None, &self.notifier);
            }
            ui.separator();
            ui.label(self.status_text());

            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                ui.checkbox(&mut self.repaint_continuously, "repaint every frame")
                    .on_hover_text("Draw frames continuously instead of on input and progress only, to measure frame times.");
                if let Some(summary) = self.frame_times.summary() {
                    let cpu = summary.mean_cpu_ms.map_or_else(String::new, |cpu| format!(", CPU {cpu:.1} ms per frame"));
                    ui.label(RichText::new(format!("{:.1} ms/frame ({:.0} fps)", summary.mean_interval_ms, summary.frames_per_second())).small().weak())
                        .on_hover_text(format!(
                            "Over the last {} frames: mean interval {:.1} ms, longest {:.1} ms, UI code {:.1} ms per frame{cpu}. \
                             Pauses longer than 250 ms, when nothing needs drawing, are left out. Without \
                             \"repaint every frame\" the window draws only on input and progress, so the \
                             interval follows them; with it, the interval is the fastest the window can draw.",
                            summary.frames, summary.mean_interval_ms, summary.max_interval_ms, summary.mean_build_ms
                        ));
                }
            });
        });
    }

    fn status_text(&self) -> String {
        let gpu = match self.gpu.status() {
            GpuStatus::Opening => "GPU: opening…".to_owned(),
            GpuStatus::Ready(adapter) => format!("GPU: {} ({})", adapter.name, adapter.backend),
            GpuStatus::Failed(_) => "GPU: not available (see the log)".to_owned(),
        };
        let Some(session) = &self.session else {
            return gpu;
        };
        let ended = session
            .progress
            .iter()
            .filter(|progress| !progress.state.is_active())
            .count();
        let total = session.progress.len();
        let phase = match &session.phase {
            Phase::Preparing(step) => format!("{step}…"),
            Phase::Training => format!(
                "training: {ended} of {total} runs ended, {:.0} s",
                session.wall_seconds()
            ),
            Phase::Finished => format!("finished {total} runs in {:.1} s", session.wall_seconds()),
            Phase::Failed => "could not start (see the log)".to_owned(),
        };
        format!("{phase} · {gpu}")
    }

    fn show_runs(&mut self, ui: &mut Ui) {
        let Some(session) = &mut self.session else {
            ui.label(
                RichText::new(
                    "Runs appear here with their progress and metrics once you click Run.",
                )
                .weak(),
            );
            // A resizable panel keeps the size of its contents, so fill it to keep its default.
            ui.take_available_space();
            return;
        };
        let ComparisonRequests { stop, .. } = self.comparison.show_summary(ui, session);
        for index in stop {
            session.stop_run(index);
        }
    }

    fn show_comparison(&mut self, ui: &mut Ui) {
        let Some(session) = &self.session else {
            self.show_welcome(ui);
            return;
        };
        let requests = self
            .comparison
            .show_figures(ui, session, !self.files.is_busy());
        if let Some(action) = requests.file {
            self.files.request(action, None, &self.notifier);
        }
    }

    fn show_welcome(&self, ui: &mut Ui) {
        ui.vertical_centered(|ui| {
            ui.add_space(ui.available_height() / 4.0);
            ui.heading("Set up an experiment on the left, then click Run.");
            ui.add_space(8.0);
            ui.label(
                "Each method trains its own copy of the network through the task sequence. Their accuracy on \
                 every task appears here while they train, so you can watch each one learn and forget.",
            );
            ui.label("The summary table below sorts by any column; the log at the bottom says what happened and what to do next.");
        });
    }

    fn drain_events(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            match event {
                AppEvent::Session { id, event } => {
                    if let Some(session) = self.session.as_mut().filter(|session| session.id == id)
                    {
                        for line in session.apply(event) {
                            self.log.push(line);
                        }
                    }
                }
                AppEvent::DialogClosed {
                    action,
                    path,
                    open_for,
                } => {
                    if let Some((action, path)) = self.files.dialog_closed(action, path, open_for) {
                        self.carry_out(action, &path);
                    }
                }
                AppEvent::Log(line) => self.log.push(line),
            }
        }
    }

    /// Does what a chosen file was for.
    fn carry_out(&mut self, action: FileAction, path: &Path) {
        match action {
            FileAction::LoadExperiment => self.load_experiment(path),
            FileAction::SaveExperiment => self.save_experiment(path),
            FileAction::ExportPlot(figure) => {
                if let Some(results) = self.results_for_export() {
                    export::spawn_plot_export(
                        self.gpu.clone(),
                        results,
                        figure,
                        path.to_owned(),
                        self.notifier.clone(),
                    );
                }
            }
            FileAction::ExportAllPlots => {
                if let Err(error) = fs::create_dir_all(path) {
                    self.log.push(LogLine::error(
                        format!("failed to create the folder {}: {error}", path.display()),
                        "choose a folder you can write to",
                    ));
                    return;
                }
                if let Some(results) = self.results_for_export() {
                    export::spawn_all_plots_export(
                        self.gpu.clone(),
                        results,
                        path.to_owned(),
                        self.notifier.clone(),
                    );
                }
            }
            FileAction::ExportJson | FileAction::ExportCsv => self.export_results(&action, path),
            FileAction::DatasetFile { task, slot } => self.setup.set_dataset_path(task, slot, path),
        }
    }

    fn load_experiment(&mut self, path: &Path) {
        match ExperimentConfig::load(path) {
            Ok(mut config) => {
                // Paths inside an experiment file are relative to the file, as for `run --config`.
                if let Some(dir) = path.parent() {
                    config.resolve_relative_paths(dir);
                }
                let threads = self.setup.training_threads();
                self.setup = SetupState::from_config(&config);
                self.setup.set_training_threads(threads);
                self.log.push(LogLine::info(format!("loaded experiment `{}` from {}", config.name, path.display())));
            }
            Err(error) => self.log.push(LogLine::error(
                error.to_string(),
                "choose a file saved by the workbench or written for `run --config`; the setup is unchanged",
            )),
        }
    }

    fn save_experiment(&mut self, path: &Path) {
        let saved = self
            .setup
            .build_config()
            .and_then(|config| config.save(path).map_err(|error| error.to_string()));
        match saved {
            Ok(()) => self.log.push(LogLine::info(format!(
                "saved the experiment to {}; `ewc-workbench run --config {}` runs it",
                path.display(),
                path.display()
            ))),
            Err(message) => self.log.push(LogLine::error(
                format!("failed to save the experiment: {message}"),
                "correct the setup or choose another file",
            )),
        }
    }

    fn export_results(&mut self, action: &FileAction, path: &Path) {
        let Some(results) = self.results_for_export() else {
            return;
        };
        let written = if *action == FileAction::ExportJson {
            results.save_json(path)
        } else {
            results.save_csv(path)
        };
        match written {
            Ok(()) => self
                .log
                .push(LogLine::info(format!("wrote {}", path.display()))),
            Err(error) => self.log.push(LogLine::error(
                error.to_string(),
                "choose a folder you can write to and export again",
            )),
        }
    }

    /// Copies the current results for a file. Runs that have not ended are marked cancelled,
    /// because a results file has no status for a run still training.
    fn results_for_export(&mut self) -> Option<Results> {
        let Some(session) = &self.session else {
            self.log.push(LogLine::warn(
                "there are no results to export yet",
                "click Run first",
            ));
            return None;
        };
        let mut results = session.results.clone();
        for (run, progress) in results.runs.iter_mut().zip(&session.progress) {
            if progress.state.is_active() {
                run.status = RunStatus::Cancelled;
                run.message = "still training when the results were exported".to_owned();
                // The rows so far get their metrics, as a run cancelled by Stop does.
                run.update_metrics();
            }
        }
        Some(results)
    }

    fn log_frame_times(&mut self) {
        let measuring = self.is_running() || self.repaint_continuously;
        if !measuring || self.last_frame_log.elapsed() < FRAME_LOG_INTERVAL {
            return;
        }
        self.last_frame_log = Instant::now();
        if let Some(summary) = self.frame_times.summary() {
            log::debug!(
                "frame times over {} frames: mean interval {:.1} ms ({:.0} fps), longest {:.1} ms, UI code {:.1} ms, CPU {}",
                summary.frames,
                summary.mean_interval_ms,
                summary.frames_per_second(),
                summary.max_interval_ms,
                summary.mean_build_ms,
                summary
                    .mean_cpu_ms
                    .map_or_else(|| "not measured".to_owned(), |cpu| format!("{cpu:.1} ms")),
            );
        }
    }
}

impl eframe::App for WorkbenchApp {
    fn ui(&mut self, ui: &mut Ui, frame: &mut eframe::Frame) {
        if let Some(seconds) = frame.info().cpu_usage {
            self.frame_times.record_cpu_time(seconds);
        }
        self.show_panels(ui);
    }

    /// Returns the panel colour, so the renderer's clear is the only full-window fill.
    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        visuals.panel_fill.to_normalized_gamma_f32()
    }

    fn on_exit(&mut self) {
        // Training threads end at their next step; the process exits without waiting for them.
        if let Some(session) = &mut self.session {
            session.stop_all();
        }
    }
}

/// Opens the GPU on a worker thread and logs the adapter, or the error and what to do.
fn open_gpu_in_background(gpu: SharedGpu, notifier: Notifier) {
    let spawned = thread::Builder::new().name("open gpu".to_owned()).spawn(move || {
        lower_worker_priority();
        let line = match gpu.get_or_open() {
            Ok(context) => {
                let adapter = &context.adapter;
                LogLine::info(format!("GPU: {} ({}, {})", adapter.name, adapter.backend, adapter.device_type))
            }
            Err(message) => LogLine::error(
                message,
                "install a Vulkan driver (`apt-get install mesa-vulkan-drivers` gives the software adapter lavapipe), then click Run",
            ),
        };
        notifier.send(AppEvent::Log(line));
    });
    if let Err(error) = spawned {
        log::warn!(
            "failed to start the thread that opens the GPU: {error}; the first Run opens it instead"
        );
    }
}
