//! Choosing files: native dialogs through rfd where one can open, a path field where none can.
//!
//! On Linux rfd requests a dialog from xdg-desktop-portal over D-Bus and falls back to zenity. Without either
//! (a bare X server, CI, many servers) no dialog opens and rfd returns the same `None` as a
//! cancelled dialog. The window therefore checks for a session bus or zenity before it offers
//! dialogs, and treats a dialog that "closes" within [`FAILED_DIALOG_TIME`] as one that could
//! not open. Either way it shows a path field instead, so choosing a file never dead-ends.

use std::env;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use egui::{Key, Modal, RichText, TextEdit, Ui};

use super::events::{AppEvent, Notifier};
use super::export::PlotFigure;

/// A dialog that returns nothing sooner than this never appeared, because a person cannot cancel
/// one that fast.
const FAILED_DIALOG_TIME: Duration = Duration::from_millis(400);

/// Reason no dialog is offered, shown next to the path field.
pub const NO_DIALOG_NOTE: &str = "No file dialog can open here: xdg-desktop-portal is not running and zenity is not \
     installed. Type a path instead, or install xdg-desktop-portal or zenity.";

/// Purpose of a chosen file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileAction {
    /// Read an experiment file into the setup panel.
    LoadExperiment,
    /// Write the setup as an experiment file.
    SaveExperiment,
    /// Render one figure into a PNG file.
    ExportPlot(PlotFigure),
    /// Render every figure into PNG files in a folder.
    ExportAllPlots,
    /// Write `results.json`.
    ExportJson,
    /// Write `results.csv`.
    ExportCsv,
    /// Set one file of a custom task.
    DatasetFile {
        /// Index of the task in the custom sequence.
        task: usize,
        /// The file among the task's files.
        slot: DatasetSlot,
    },
}

/// One file of a custom task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetSlot {
    /// IDX training images.
    TrainImages,
    /// IDX training labels.
    TrainLabels,
    /// IDX test images.
    TestImages,
    /// IDX test labels.
    TestLabels,
    /// CSV training set.
    TrainCsv,
    /// CSV test set.
    TestCsv,
}

/// Kind of native dialog an action opens.
enum DialogKind {
    Open,
    Save,
    Folder,
}

impl FileAction {
    /// Title of the dialog or path prompt.
    pub fn title(&self) -> String {
        match self {
            Self::LoadExperiment => "Load experiment".to_owned(),
            Self::SaveExperiment => "Save experiment".to_owned(),
            Self::ExportPlot(figure) => format!("Export {} as PNG", figure.title()),
            Self::ExportAllPlots => "Export every plot into a folder".to_owned(),
            Self::ExportJson => "Export results as JSON".to_owned(),
            Self::ExportCsv => "Export results as CSV".to_owned(),
            Self::DatasetFile { task, slot } => {
                format!("Choose {} for task {}", slot.description(), task + 1)
            }
        }
    }

    /// Text of the button that confirms a typed path.
    pub fn confirm_label(&self) -> &'static str {
        match self.kind() {
            DialogKind::Open => "Open",
            DialogKind::Save => "Save",
            DialogKind::Folder => "Export",
        }
    }

    /// Suggested file name for save dialogs and the path field.
    pub fn default_file_name(&self) -> String {
        match self {
            Self::LoadExperiment | Self::SaveExperiment => "experiment.json".to_owned(),
            Self::ExportPlot(figure) => figure.file_name(),
            Self::ExportAllPlots => "plots".to_owned(),
            Self::ExportJson => crate::experiment::results::RESULTS_JSON.to_owned(),
            Self::ExportCsv => crate::experiment::results::RESULTS_CSV.to_owned(),
            Self::DatasetFile { .. } => String::new(),
        }
    }

    fn kind(&self) -> DialogKind {
        match self {
            Self::LoadExperiment | Self::DatasetFile { .. } => DialogKind::Open,
            Self::SaveExperiment | Self::ExportPlot(_) | Self::ExportJson | Self::ExportCsv => {
                DialogKind::Save
            }
            Self::ExportAllPlots => DialogKind::Folder,
        }
    }

    fn filter(&self) -> Option<(&'static str, &'static [&'static str])> {
        match self {
            Self::LoadExperiment | Self::SaveExperiment | Self::ExportJson => {
                Some(("JSON", &["json"]))
            }
            Self::ExportPlot(_) => Some(("PNG image", &["png"])),
            Self::ExportCsv => Some(("CSV", &["csv"])),
            Self::DatasetFile {
                slot: DatasetSlot::TrainCsv | DatasetSlot::TestCsv,
                ..
            } => Some(("CSV", &["csv"])),
            Self::DatasetFile { .. } | Self::ExportAllPlots => None,
        }
    }
}

impl DatasetSlot {
    /// Describes what the file contains, in words.
    pub fn description(self) -> &'static str {
        match self {
            Self::TrainImages => "the training images (IDX)",
            Self::TrainLabels => "the training labels (IDX)",
            Self::TestImages => "the test images (IDX)",
            Self::TestLabels => "the test labels (IDX)",
            Self::TrainCsv => "the training set (CSV)",
            Self::TestCsv => "the test set (CSV)",
        }
    }
}

/// Way the window chooses files, and the path prompt when one is open.
#[derive(Debug)]
pub struct FileChooser {
    /// Whether native dialogs are offered.
    dialogs_enabled: bool,
    /// Reason dialogs are off, when they are.
    dialogs_note: Option<String>,
    /// A dialog thread is open; a second one waits until it closes.
    dialog_open: bool,
    /// The path prompt, when open.
    prompt: Option<PathPrompt>,
}

#[derive(Debug)]
struct PathPrompt {
    action: FileAction,
    text: String,
}

impl FileChooser {
    /// Offers dialogs where a backend looks available.
    pub fn detect() -> Self {
        match dialog_backend() {
            Some(backend) => {
                log::debug!("file dialogs through {backend}");
                Self {
                    dialogs_enabled: true,
                    dialogs_note: None,
                    dialog_open: false,
                    prompt: None,
                }
            }
            None => Self::path_fields_only(NO_DIALOG_NOTE),
        }
    }

    /// Never opens dialogs: every file is chosen by typing its path. `note` gives the reason.
    pub fn path_fields_only(note: &str) -> Self {
        Self {
            dialogs_enabled: false,
            dialogs_note: Some(note.to_owned()),
            dialog_open: false,
            prompt: None,
        }
    }

    /// Returns the reason dialogs are off, when they are.
    pub fn note(&self) -> Option<&str> {
        self.dialogs_note.as_deref()
    }

    /// Returns whether a dialog or the path prompt is open, so other file buttons wait.
    pub fn is_busy(&self) -> bool {
        self.dialog_open || self.prompt.is_some()
    }

    /// Starts choosing a file for `action`: a native dialog on its own thread, or the path
    /// prompt. `current` pre-fills the prompt.
    pub fn request(&mut self, action: FileAction, current: Option<&Path>, notifier: &Notifier) {
        if self.is_busy() {
            return;
        }
        if !self.dialogs_enabled {
            self.open_prompt(action, current);
            return;
        }
        self.dialog_open = true;
        let notifier = notifier.clone();
        let spawned = thread::Builder::new()
            .name("file dialog".to_owned())
            .spawn(move || {
                let opened = Instant::now();
                let path = show_dialog(&action);
                notifier.send(AppEvent::DialogClosed {
                    action,
                    path,
                    open_for: opened.elapsed(),
                });
            });
        if let Err(error) = spawned {
            log::warn!("failed to start the file dialog thread: {error}");
            self.dialog_open = false;
        }
    }

    /// Handles a closed dialog. Returns the action and path to carry out, if a file was
    /// chosen. A dialog that closed at once could not open: dialogs are turned off and the path
    /// prompt opens instead.
    pub fn dialog_closed(
        &mut self,
        action: FileAction,
        path: Option<PathBuf>,
        open_for: Duration,
    ) -> Option<(FileAction, PathBuf)> {
        self.dialog_open = false;
        match path {
            Some(path) => Some((action, path)),
            None if open_for < FAILED_DIALOG_TIME => {
                log::warn!(
                    "the file dialog closed after {} ms without a choice, so it probably could not open",
                    open_for.as_millis()
                );
                self.dialogs_enabled = false;
                self.dialogs_note = Some(NO_DIALOG_NOTE.to_owned());
                self.open_prompt(action, None);
                None
            }
            None => None,
        }
    }

    fn open_prompt(&mut self, action: FileAction, current: Option<&Path>) {
        let text = match current {
            Some(path) => path.display().to_string(),
            None => action.default_file_name(),
        };
        self.prompt = Some(PathPrompt { action, text });
    }

    /// Draws the path prompt when it is open. Returns the action and path when the user
    /// confirms.
    pub fn show_prompt(&mut self, ui: &mut Ui) -> Option<(FileAction, PathBuf)> {
        let prompt = self.prompt.as_mut()?;
        let note = self.dialogs_note.as_deref();
        let mut confirmed = false;
        let mut cancelled = false;
        let modal = Modal::new(egui::Id::unique("path prompt")).show(ui.ctx(), |ui| {
            ui.set_width(520.0);
            ui.heading(prompt.action.title());
            if let Some(note) = note {
                ui.label(RichText::new(note).weak());
            }
            ui.add_space(4.0);
            let label = ui.label("Path:");
            let field = ui
                .add(TextEdit::singleline(&mut prompt.text).desired_width(f32::INFINITY))
                .labelled_by(label.id);
            if field.lost_focus() && ui.input(|input| input.key_pressed(Key::Enter)) {
                confirmed = true;
            }
            ui.horizontal(|ui| {
                let has_path = !prompt.text.trim().is_empty();
                if ui
                    .add_enabled(has_path, egui::Button::new(prompt.action.confirm_label()))
                    .clicked()
                {
                    confirmed = true;
                }
                if ui.button("Cancel").clicked() {
                    cancelled = true;
                }
            });
        });
        if modal.should_close() {
            cancelled = true;
        }
        if confirmed && !prompt.text.trim().is_empty() {
            let prompt = self.prompt.take()?;
            return Some((prompt.action, PathBuf::from(prompt.text.trim())));
        }
        if cancelled {
            self.prompt = None;
        }
        None
    }
}

/// Names the backend rfd will use, or `None` where none can work.
fn dialog_backend() -> Option<&'static str> {
    if !cfg!(target_os = "linux") {
        return Some("the system dialog");
    }
    let session_bus = env::var_os("DBUS_SESSION_BUS_ADDRESS")
        .is_some_and(|address| !address.is_empty())
        || env::var_os("XDG_RUNTIME_DIR").is_some_and(|dir| Path::new(&dir).join("bus").exists());
    if session_bus {
        // The bus may still lack a portal; rfd then tries zenity, and a dialog that closes at
        // once is caught by `FileChooser::dialog_closed`.
        return Some("xdg-desktop-portal");
    }
    if find_on_path("zenity") {
        return Some("zenity");
    }
    None
}

fn find_on_path(program: &str) -> bool {
    env::var_os("PATH")
        .is_some_and(|paths| env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Shows the native dialog for `action` and waits for it to close.
fn show_dialog(action: &FileAction) -> Option<PathBuf> {
    let mut dialog = rfd::FileDialog::new().set_title(action.title());
    if let Some((name, extensions)) = action.filter() {
        dialog = dialog.add_filter(name, extensions);
    }
    if let Ok(dir) = env::current_dir() {
        dialog = dialog.set_directory(dir);
    }
    match action.kind() {
        DialogKind::Open => dialog.pick_file(),
        DialogKind::Save => dialog.set_file_name(action.default_file_name()).save_file(),
        DialogKind::Folder => dialog.pick_folder(),
    }
}
