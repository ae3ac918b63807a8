//! The setup panel: the experiment as editable text, turned into an [`ExperimentConfig`] with
//! the same parser as `run --set`.
//!
//! Every setting that `--set` accepts is kept as the text a user would type after `KEY=`, and
//! [`SetupState::build_config`] applies each one with [`apply_set`]. A method parameter may
//! therefore be a comma-separated list, which sweeps it exactly as on the command line, and an
//! invalid value gets the same message in the window as in a terminal.

use std::path::{Path, PathBuf};

use egui::{ComboBox, DragValue, Grid, RichText, TextEdit, Ui};

use crate::data::{self, DataSource, HowFound};
use crate::experiment::config::{
    AUTO_RECORD_WEIGHTS_MAX_PARAMS, DatasetSource, ExperimentConfig, HeadMode, Method, PRESETS,
    RecordWeights, SequenceConfig, TrainingConfig, apply_methods_list, apply_set, expand_runs,
};
use crate::model::Architecture;

use super::dialogs::{DatasetSlot, FileAction};

/// Steps between curve points when the training sets are small, such as the bundled subsets.
/// Their 2,000 images per task make 32 steps per epoch at batch size 64, so the presets'
/// interval of 100 steps would leave only the point at the end of each task.
const SMALL_DATA_EVAL_EVERY: &str = "8";

/// Training images per dataset up to which [`SMALL_DATA_EVAL_EVERY`] applies.
const SMALL_TRAINING_SET: usize = 10_000;

/// Settings under `training.`, with their labels and help text, in the order shown.
const TRAINING_FIELDS: [(&str, &str, &str); 7] = [
    (
        "epochs",
        "Epochs per task",
        "Passes over each task's training set.",
    ),
    (
        "limit",
        "Training images per task",
        "A count, or `all` for the whole training set.",
    ),
    (
        "batch_size",
        "Batch size",
        "Training images per optimizer step.",
    ),
    (
        "learning_rate",
        "Learning rate",
        "Step size of the optimizer.",
    ),
    (
        "momentum",
        "Momentum",
        "Momentum coefficient, used by SGD only.",
    ),
    (
        "eval_every",
        "Steps between curve points",
        "Optimizer steps between two evaluations on every task's test set.",
    ),
    (
        "eval_limit",
        "Test images per curve point",
        "A count, or `all`. The accuracy matrix always uses the whole test set.",
    ),
];

/// Largest number of runs trained at the same time that the panel offers.
const MAX_TRAINING_THREADS: usize = 8;

/// A text field with the error its current text gives, if any.
#[derive(Debug, Clone, Default)]
struct TextField {
    text: String,
    error: Option<String>,
}

impl TextField {
    fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            error: None,
        }
    }
}

/// A method, whether it runs, and its parameters as `--set` text.
#[derive(Debug, Clone)]
struct MethodRow {
    method: Method,
    enabled: bool,
    /// Parameter name (after the method prefix) and its text.
    params: Vec<(&'static str, TextField)>,
}

/// The task sequence kinds the panel offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SequenceKind {
    Seed,
    PermutedMnist,
    SplitMnist,
    RotatedMnist,
    Custom,
}

impl SequenceKind {
    const ALL: [Self; 5] = [
        Self::Seed,
        Self::PermutedMnist,
        Self::SplitMnist,
        Self::RotatedMnist,
        Self::Custom,
    ];

    fn title(self) -> &'static str {
        match self {
            Self::Seed => "MNIST, then Fashion-MNIST",
            Self::PermutedMnist => "Permuted MNIST",
            Self::SplitMnist => "Split MNIST (digit pairs)",
            Self::RotatedMnist => "Rotated MNIST",
            Self::Custom => "Custom: IDX or CSV files",
        }
    }

    /// Dataset folders the sequence reads from the data directory.
    fn datasets(self) -> &'static [&'static str] {
        match self {
            Self::Seed => &[data::MNIST, data::FASHION_MNIST],
            Self::PermutedMnist | Self::SplitMnist | Self::RotatedMnist => &[data::MNIST],
            Self::Custom => &[],
        }
    }
}

/// File format of a custom task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CustomFormat {
    Idx,
    Csv,
}

/// One task of a custom sequence as the panel edits it.
#[derive(Debug, Clone)]
struct CustomTask {
    name: String,
    format: CustomFormat,
    /// IDX: training images, training labels, test images, test labels. CSV: training set,
    /// test set, then two unused entries.
    paths: [String; 4],
}

impl CustomTask {
    fn empty(index: usize) -> Self {
        Self {
            name: format!("task-{}", index + 1),
            format: CustomFormat::Idx,
            paths: Default::default(),
        }
    }

    fn slots(&self) -> &'static [DatasetSlot] {
        match self.format {
            CustomFormat::Idx => &[
                DatasetSlot::TrainImages,
                DatasetSlot::TrainLabels,
                DatasetSlot::TestImages,
                DatasetSlot::TestLabels,
            ],
            CustomFormat::Csv => &[DatasetSlot::TrainCsv, DatasetSlot::TestCsv],
        }
    }

    fn to_source(&self) -> DatasetSource {
        let path = |index: usize| PathBuf::from(self.paths[index].trim());
        match self.format {
            CustomFormat::Idx => DatasetSource::Idx {
                name: self.name.trim().to_owned(),
                train_images: path(0),
                train_labels: path(1),
                test_images: path(2),
                test_labels: path(3),
            },
            CustomFormat::Csv => DatasetSource::Csv {
                name: self.name.trim().to_owned(),
                train: path(0),
                test: path(1),
            },
        }
    }

    fn from_source(source: &DatasetSource) -> Self {
        let text = |path: &Path| path.display().to_string();
        match source {
            DatasetSource::Idx {
                name,
                train_images,
                train_labels,
                test_images,
                test_labels,
            } => Self {
                name: name.clone(),
                format: CustomFormat::Idx,
                paths: [
                    text(train_images),
                    text(train_labels),
                    text(test_images),
                    text(test_labels),
                ],
            },
            DatasetSource::Csv { name, train, test } => Self {
                name: name.clone(),
                format: CustomFormat::Csv,
                paths: [text(train), text(test), String::new(), String::new()],
            },
        }
    }
}

fn slot_index(slot: DatasetSlot) -> usize {
    match slot {
        DatasetSlot::TrainImages | DatasetSlot::TrainCsv => 0,
        DatasetSlot::TrainLabels | DatasetSlot::TestCsv => 1,
        DatasetSlot::TestImages => 2,
        DatasetSlot::TestLabels => 3,
    }
}

/// Location of each dataset of the sequence, or the reason it cannot be found.
#[derive(Debug, Clone, Default)]
struct DataLocations {
    found: Vec<(&'static str, Result<DataSource, String>)>,
}

impl DataLocations {
    fn locate(kind: SequenceKind, data_dir: Option<&Path>) -> Self {
        let found = kind
            .datasets()
            .iter()
            .map(|&dataset| {
                (
                    dataset,
                    data::locate_dataset(data_dir, dataset).map_err(|error| error.to_string()),
                )
            })
            .collect();
        Self { found }
    }

    /// Returns whether every dataset was found and has at most [`SMALL_TRAINING_SET`] training
    /// images, as the bundled subsets have. Reads only the images files' headers.
    ///
    /// NOTE: a custom sequence lists no datasets here, so its files' sizes are not read and it
    /// keeps the experiment's interval.
    fn all_small(&self) -> bool {
        !self.found.is_empty()
            && self.found.iter().all(|(dataset, source)| {
                source.as_ref().is_ok_and(|source| {
                    data::training_image_count(&source.dir.join(dataset))
                        .is_ok_and(|count| count <= SMALL_TRAINING_SET)
                })
            })
    }
}

/// Requests the user made in the setup panel this frame.
#[derive(Debug, Default)]
pub struct SetupRequests {
    /// A file to choose, with the path its field contains now.
    pub file: Option<(FileAction, Option<PathBuf>)>,
}

/// The experiment as the setup panel edits it.
#[derive(Debug, Clone)]
pub struct SetupState {
    name: String,
    sequence: SequenceKind,
    permuted_tasks: TextField,
    rotation_angles: TextField,
    custom_tasks: Vec<CustomTask>,
    architecture: Architecture,
    hidden_widths: TextField,
    head: HeadMode,
    optimizer: String,
    /// Training settings of the loaded experiment, which the fields below override; settings
    /// the panel does not show keep their loaded values.
    base_training: TrainingConfig,
    /// Text of each entry of [`TRAINING_FIELDS`], in that order.
    training: Vec<TextField>,
    /// Whether runs record what the insight views need (`training.insights`).
    insights: bool,
    /// When results store weights and Fisher diagonals (`training.record_weights`).
    record_weights: RecordWeights,
    seed: TextField,
    /// Methods in run order; disabled ones keep their parameters for when they come back.
    methods: Vec<MethodRow>,
    data_dir: String,
    data: DataLocations,
    /// Runs trained at the same time.
    training_threads: usize,
    /// Steps between curve points that the panel chose for the data it found. `None` once the
    /// user types a value, and for a loaded experiment.
    auto_eval_every: Option<String>,
}

impl SetupState {
    /// Creates the panel with the `seed` preset, and curve points every
    /// [`SMALL_DATA_EVAL_EVERY`] steps when the training sets found are small.
    pub fn seed_experiment() -> Self {
        let mut setup = Self::from_config(&preset_or_default("seed"));
        setup.choose_eval_interval();
        setup
    }

    /// Loads the panel from an experiment.
    pub fn from_config(config: &ExperimentConfig) -> Self {
        let (sequence, permuted_tasks, rotation_angles, custom_tasks) = match &config.sequence {
            SequenceConfig::Seed => (SequenceKind::Seed, None, None, Vec::new()),
            SequenceConfig::PermutedMnist { tasks } => (
                SequenceKind::PermutedMnist,
                Some(tasks.to_string()),
                None,
                Vec::new(),
            ),
            SequenceConfig::SplitMnist => (SequenceKind::SplitMnist, None, None, Vec::new()),
            SequenceConfig::RotatedMnist { angles } => (
                SequenceKind::RotatedMnist,
                None,
                Some(join_numbers(angles)),
                Vec::new(),
            ),
            SequenceConfig::Custom { datasets } => (
                SequenceKind::Custom,
                None,
                None,
                datasets.iter().map(CustomTask::from_source).collect(),
            ),
        };
        let hidden = match &config.architecture {
            Architecture::Mlp { hidden } => hidden
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            Architecture::SeedCnn => "400,400".to_owned(),
        };
        let data_dir = config
            .data_dir
            .as_ref()
            .map(|dir| dir.display().to_string())
            .unwrap_or_default();
        let mut setup = Self {
            name: config.name.clone(),
            sequence,
            permuted_tasks: TextField::new(permuted_tasks.unwrap_or_else(|| "10".to_owned())),
            rotation_angles: TextField::new(
                rotation_angles.unwrap_or_else(|| "0,30,60,90,120".to_owned()),
            ),
            custom_tasks,
            architecture: config.architecture.clone(),
            hidden_widths: TextField::new(hidden),
            head: config.head,
            optimizer: config.training.optimizer.name().to_owned(),
            base_training: config.training.clone(),
            training: training_texts(config)
                .into_iter()
                .map(TextField::new)
                .collect(),
            insights: config.training.insights,
            record_weights: config.training.record_weights,
            seed: TextField::new(config.seed.to_string()),
            methods: method_rows(config),
            data_dir,
            data: DataLocations::default(),
            training_threads: 1,
            auto_eval_every: None,
        };
        setup.refresh_data_locations();
        setup
    }

    /// Replaces the experiment with a preset, keeping the data directory and the number of
    /// runs trained at the same time.
    pub fn load_preset(&mut self, name: &str) {
        let mut config = preset_or_default(name);
        config.data_dir = self.data_dir_path();
        let threads = self.training_threads;
        *self = Self::from_config(&config);
        self.training_threads = threads;
        self.choose_eval_interval();
    }

    /// Lets the panel choose the steps between curve points from the data it finds, from now
    /// until the user types a value.
    fn choose_eval_interval(&mut self) {
        self.auto_eval_every = self.text("training.eval_every").map(str::to_owned);
        self.adapt_eval_interval();
    }

    /// Sets the steps between curve points for the data found: [`SMALL_DATA_EVAL_EVERY`] on
    /// small training sets, such as the bundled subsets or any set cut by a small
    /// `training.limit`, and the experiment's own interval otherwise. Leaves a typed value alone.
    fn adapt_eval_interval(&mut self) {
        let Some(chosen) = self.auto_eval_every.clone() else {
            return;
        };
        if self.text("training.eval_every") != Some(chosen.as_str()) {
            self.auto_eval_every = None;
            return;
        }
        let limit = self
            .text("training.limit")
            .and_then(|text| text.trim().parse::<usize>().ok());
        let small_limit = limit.is_some_and(|limit| limit <= SMALL_TRAINING_SET);
        let interval = if small_limit || self.data.all_small() {
            SMALL_DATA_EVAL_EVERY.to_owned()
        } else {
            self.base_training.eval_every.to_string()
        };
        self.set_text("training.eval_every", &interval);
        self.auto_eval_every = Some(interval);
    }

    /// Sets one setting from its `--set` text, such as `training.limit` to `64` or
    /// `ewc.lambda` to `100,1000`, and checks it. Returns whether the key names a setting
    /// of the panel.
    pub fn set_text(&mut self, key: &str, text: &str) -> bool {
        let Some(field) = self.field_mut(key) else {
            return false;
        };
        field.text = text.to_owned();
        field.error = check_setting(key, text);
        if key == "training.limit" {
            self.adapt_eval_interval();
        }
        true
    }

    /// Returns the text of one setting, by its `--set` key.
    pub fn text(&self, key: &str) -> Option<&str> {
        if key == "seed" {
            return Some(&self.seed.text);
        }
        if let Some(field) = key.strip_prefix("training.") {
            let index = TRAINING_FIELDS
                .iter()
                .position(|(name, _, _)| *name == field)?;
            return Some(&self.training[index].text);
        }
        let (method, param) = key.split_once('.')?;
        let row = self
            .methods
            .iter()
            .find(|row| row.method.name() == method)?;
        row.params
            .iter()
            .find(|(name, _)| *name == param)
            .map(|(_, field)| field.text.as_str())
    }

    fn field_mut(&mut self, key: &str) -> Option<&mut TextField> {
        if key == "seed" {
            return Some(&mut self.seed);
        }
        if let Some(field) = key.strip_prefix("training.") {
            let index = TRAINING_FIELDS
                .iter()
                .position(|(name, _, _)| *name == field)?;
            return self.training.get_mut(index);
        }
        let (method, param) = key.split_once('.')?;
        let row = self
            .methods
            .iter_mut()
            .find(|row| row.method.name() == method)?;
        row.params
            .iter_mut()
            .find(|(name, _)| *name == param)
            .map(|(_, field)| field)
    }

    /// Runs exactly `methods`, in this order, keeping the parameters typed for each.
    pub fn set_methods(&mut self, methods: &[Method]) {
        for row in &mut self.methods {
            row.enabled = methods.contains(&row.method);
        }
        self.methods.sort_by_key(|row| {
            methods
                .iter()
                .position(|&method| method == row.method)
                .unwrap_or(usize::MAX)
        });
    }

    /// Reads the datasets from `dir` (`mnist/`, `fashion-mnist/`), or searches the usual places
    /// for `None`.
    pub fn set_data_dir(&mut self, dir: Option<&Path>) {
        self.data_dir = dir.map(|dir| dir.display().to_string()).unwrap_or_default();
        self.refresh_data_locations();
    }

    /// Sets how many runs train at the same time (at least one).
    pub fn set_training_threads(&mut self, threads: usize) {
        self.training_threads = threads.clamp(1, MAX_TRAINING_THREADS);
    }

    /// Runs trained at the same time.
    pub fn training_threads(&self) -> usize {
        self.training_threads
    }

    /// Sets one file of custom task `task`.
    pub fn set_dataset_path(&mut self, task: usize, slot: DatasetSlot, path: &Path) {
        if let Some(custom) = self.custom_tasks.get_mut(task) {
            custom.paths[slot_index(slot)] = path.display().to_string();
        }
    }

    fn data_dir_path(&self) -> Option<PathBuf> {
        let text = self.data_dir.trim();
        (!text.is_empty()).then(|| PathBuf::from(text))
    }

    fn refresh_data_locations(&mut self) {
        self.data = DataLocations::locate(self.sequence, self.data_dir_path().as_deref());
        self.adapt_eval_interval();
    }

    /// Builds the experiment the panel describes, or the first problem with it.
    pub fn build_config(&self) -> Result<ExperimentConfig, String> {
        let mut config = ExperimentConfig {
            name: self.name.trim().to_owned(),
            sequence: self.build_sequence()?,
            architecture: self.build_architecture()?,
            head: self.head,
            training: TrainingConfig {
                insights: self.insights,
                record_weights: self.record_weights,
                ..self.base_training.clone()
            },
            methods: Vec::new(),
            seed: 0,
            data_dir: self.data_dir_path(),
        };
        let set = |config: &mut ExperimentConfig, key: &str, text: &str| {
            apply_set(config, &format!("{key}={}", text.trim())).map_err(|error| error.to_string())
        };
        set(&mut config, "training.optimizer", &self.optimizer)?;
        for ((name, _, _), field) in TRAINING_FIELDS.iter().zip(&self.training) {
            set(&mut config, &format!("training.{name}"), &field.text)?;
        }
        set(&mut config, "seed", &self.seed.text)?;

        let enabled: Vec<&MethodRow> = self.methods.iter().filter(|row| row.enabled).collect();
        if enabled.is_empty() {
            return Err("choose at least one method to run".to_owned());
        }
        let list: Vec<&str> = enabled.iter().map(|row| row.method.name()).collect();
        apply_methods_list(&mut config, &list.join(",")).map_err(|error| error.to_string())?;
        for row in enabled {
            for (param, field) in &row.params {
                set(
                    &mut config,
                    &format!("{}.{param}", row.method.name()),
                    &field.text,
                )?;
            }
        }
        config.validate().map_err(|error| error.to_string())?;
        Ok(config)
    }

    fn build_sequence(&self) -> Result<SequenceConfig, String> {
        Ok(match self.sequence {
            SequenceKind::Seed => SequenceConfig::Seed,
            SequenceKind::SplitMnist => SequenceConfig::SplitMnist,
            SequenceKind::PermutedMnist => {
                let text = self.permuted_tasks.text.trim();
                let tasks = text.parse().map_err(|_| {
                    format!("invalid number of permuted tasks `{text}`: expected an integer >= 1")
                })?;
                SequenceConfig::PermutedMnist { tasks }
            }
            SequenceKind::RotatedMnist => SequenceConfig::RotatedMnist {
                angles: parse_angles(&self.rotation_angles.text)?,
            },
            SequenceKind::Custom => SequenceConfig::Custom {
                datasets: self
                    .custom_tasks
                    .iter()
                    .map(CustomTask::to_source)
                    .collect(),
            },
        })
    }

    fn build_architecture(&self) -> Result<Architecture, String> {
        match self.architecture {
            Architecture::SeedCnn => Ok(Architecture::SeedCnn),
            Architecture::Mlp { .. } => Ok(Architecture::Mlp {
                hidden: parse_widths(&self.hidden_widths.text)?,
            }),
        }
    }

    /// Draws the panel and returns what the user asked for.
    pub fn show(&mut self, ui: &mut Ui, file_buttons_enabled: bool) -> SetupRequests {
        let mut requests = SetupRequests::default();

        ui.horizontal(|ui| {
            ComboBox::from_id_salt("preset")
                .selected_text("Load a preset…")
                .show_ui(ui, |ui| {
                    for name in PRESETS {
                        if ui.selectable_label(false, name).clicked() {
                            self.load_preset(name);
                        }
                    }
                });
        });
        ui.horizontal(|ui| {
            if ui
                .add_enabled(file_buttons_enabled, egui::Button::new("Load…"))
                .on_hover_text("Load an experiment file, as saved here or read by `run --config`.")
                .clicked()
            {
                requests.file = Some((FileAction::LoadExperiment, None));
            }
            if ui
                .add_enabled(file_buttons_enabled, egui::Button::new("Save…"))
                .on_hover_text("Save the experiment as a file that `run --config` reads.")
                .clicked()
            {
                requests.file = Some((FileAction::SaveExperiment, None));
            }
        });
        ui.horizontal(|ui| {
            let label = ui.label("Name");
            ui.add(TextEdit::singleline(&mut self.name).desired_width(180.0))
                .labelled_by(label.id);
        });

        ui.separator();
        self.show_sequence(ui, file_buttons_enabled, &mut requests);
        ui.separator();
        self.show_network(ui);
        ui.separator();
        self.show_training(ui);
        ui.separator();
        self.show_methods(ui);
        requests
    }

    fn show_sequence(
        &mut self,
        ui: &mut Ui,
        file_buttons_enabled: bool,
        requests: &mut SetupRequests,
    ) {
        ui.strong("Tasks");
        let before = self.sequence;
        ComboBox::from_id_salt("sequence")
            .selected_text(self.sequence.title())
            .width(220.0)
            .show_ui(ui, |ui| {
                for kind in SequenceKind::ALL {
                    ui.selectable_value(&mut self.sequence, kind, kind.title());
                }
            });
        if self.sequence != before {
            if self.sequence == SequenceKind::Custom && self.custom_tasks.is_empty() {
                self.custom_tasks.push(CustomTask::empty(0));
            }
            self.refresh_data_locations();
        }

        match self.sequence {
            SequenceKind::PermutedMnist => {
                labelled_text(
                    ui,
                    "Permutations",
                    "Number of tasks, each MNIST with its own fixed pixel permutation.",
                    &mut self.permuted_tasks,
                );
            }
            SequenceKind::RotatedMnist => {
                labelled_text(
                    ui,
                    "Angles (°)",
                    "Rotation of each task in degrees, comma-separated.",
                    &mut self.rotation_angles,
                );
            }
            SequenceKind::Custom => self.show_custom_tasks(ui, file_buttons_enabled, requests),
            SequenceKind::Seed | SequenceKind::SplitMnist => {}
        }

        if self.sequence != SequenceKind::Custom {
            ui.horizontal(|ui| {
                let label = ui.label("Data directory").on_hover_text(
                    "A folder with mnist/ and fashion-mnist/ in the usual IDX file names. Empty: search \
                     EWC_WORKBENCH_DATA, ~/.ewc-workbench/data, /usr/share/datasets, then the bundled subsets.",
                );
                let field = ui.add(TextEdit::singleline(&mut self.data_dir).hint_text("search").desired_width(160.0)).labelled_by(label.id);
                if field.lost_focus() {
                    self.refresh_data_locations();
                }
            });
            self.show_data_locations(ui);
        }
    }

    fn show_data_locations(&self, ui: &mut Ui) {
        for (dataset, source) in &self.data.found {
            match source {
                Ok(source) => {
                    let note = if source.how_found == HowFound::Bundled {
                        " (bundled subsets, for trying out)"
                    } else {
                        ""
                    };
                    ui.label(
                        RichText::new(format!(
                            "{dataset}: {}{note}",
                            source.dir.join(dataset).display()
                        ))
                        .small()
                        .weak(),
                    );
                }
                Err(message) => {
                    ui.label(
                        RichText::new(format!("{dataset}: {message}"))
                            .small()
                            .color(ui.visuals().error_fg_color),
                    );
                }
            }
        }
    }

    fn show_custom_tasks(
        &mut self,
        ui: &mut Ui,
        file_buttons_enabled: bool,
        requests: &mut SetupRequests,
    ) {
        let mut removed = None;
        for (index, task) in self.custom_tasks.iter_mut().enumerate() {
            ui.push_id(("custom task", index), |ui| {
                ui.horizontal(|ui| {
                    let label = ui.label(format!("Task {}", index + 1));
                    ui.add(TextEdit::singleline(&mut task.name).desired_width(110.0))
                        .labelled_by(label.id);
                    ui.radio_value(&mut task.format, CustomFormat::Idx, "IDX");
                    ui.radio_value(&mut task.format, CustomFormat::Csv, "CSV");
                    if ui.small_button("Remove").clicked() {
                        removed = Some(index);
                    }
                });
                for &slot in task.slots() {
                    ui.horizontal(|ui| {
                        let path = &mut task.paths[slot_index(slot)];
                        ui.add(
                            TextEdit::singleline(path)
                                .hint_text(slot.description())
                                .desired_width(200.0),
                        );
                        if ui
                            .add_enabled(file_buttons_enabled, egui::Button::new("…").small())
                            .on_hover_text("Choose the file")
                            .clicked()
                        {
                            let current =
                                (!path.trim().is_empty()).then(|| PathBuf::from(path.trim()));
                            requests.file =
                                Some((FileAction::DatasetFile { task: index, slot }, current));
                        }
                    });
                }
            });
        }
        if let Some(index) = removed {
            self.custom_tasks.remove(index);
        }
        if ui.button("Add task").clicked() {
            self.custom_tasks
                .push(CustomTask::empty(self.custom_tasks.len()));
        }
        ui.label(
            RichText::new(
                "Images must be 28×28 with labels 0–9. CSV rows: the label, then 784 pixel values.",
            )
            .small()
            .weak(),
        );
    }

    fn show_network(&mut self, ui: &mut Ui) {
        ui.strong("Network");
        let is_mlp = matches!(self.architecture, Architecture::Mlp { .. });
        ui.horizontal(|ui| {
            if ui
                .radio(!is_mlp, "Seed CNN")
                .on_hover_text("Conv 32 3×3, ReLU, max-pool 2×2, dense output layer.")
                .clicked()
            {
                self.architecture = Architecture::SeedCnn;
            }
            if ui
                .radio(is_mlp, "MLP")
                .on_hover_text("Dense hidden layers with ReLU.")
                .clicked()
                && !is_mlp
            {
                self.architecture = Architecture::Mlp { hidden: Vec::new() };
            }
        });
        if is_mlp {
            labelled_text(
                ui,
                "Hidden widths",
                "Units of each hidden layer, input side first, comma-separated.",
                &mut self.hidden_widths,
            );
        }
        ui.horizontal(|ui| {
            ui.label("Output layer").on_hover_text("head: one shared output layer (domain-incremental) or one per task with the task known at test time (task-incremental).");
            ui.radio_value(&mut self.head, HeadMode::Shared, "shared");
            ui.radio_value(&mut self.head, HeadMode::PerTask, "one per task");
        });
    }

    fn show_training(&mut self, ui: &mut Ui) {
        ui.strong("Training");
        Grid::new("training settings").num_columns(2).show(ui, |ui| {
            ui.label("Optimizer");
            ComboBox::from_id_salt("optimizer").selected_text(self.optimizer.as_str()).show_ui(ui, |ui| {
                for name in ["adam", "sgd"] {
                    ui.selectable_value(&mut self.optimizer, name.to_owned(), name);
                }
            });
            ui.end_row();
            let limit_before = self.text("training.limit").map(str::to_owned);
            for ((name, label, help), field) in TRAINING_FIELDS.iter().zip(&mut self.training) {
                grid_text_row(ui, label, &format!("training.{name}: {help}"), &format!("training.{name}"), field);
            }
            if self.text("training.limit").map(str::to_owned) != limit_before {
                self.adapt_eval_interval();
            }
            grid_text_row(ui, "Seed", "seed: initial weights, batch order, permutations and sampled Fisher labels.", "seed", &mut self.seed);
            ui.label("Runs at a time").on_hover_text(
                "Runs trained at the same time, each on its own thread. On a software adapter one is probably \
                 fastest, because the adapter already spreads each kernel over every core.",
            );
            ui.add(DragValue::new(&mut self.training_threads).range(1..=MAX_TRAINING_THREADS));
            ui.end_row();
        });
        ui.checkbox(&mut self.insights, "Record insights").on_hover_text(
            "training.insights: each run records its distance from θ* at every curve point and a Fisher diagonal \
             after each task, for the Fisher, Weights and Distance tabs.",
        );
        if self.insights {
            ui.horizontal(|ui| {
                ui.label("Store weights").on_hover_text(format!(
                    "training.record_weights: keep the weights after each task and the Fisher values in the \
                     results, for the Fisher and Weights tabs. auto: for networks of up to \
                     {AUTO_RECORD_WEIGHTS_MAX_PARAMS} parameters."
                ));
                for choice in [RecordWeights::Auto, RecordWeights::On, RecordWeights::Off] {
                    ui.radio_value(&mut self.record_weights, choice, choice.name());
                }
            });
        }
    }

    fn show_methods(&mut self, ui: &mut Ui) {
        ui.strong("Methods");
        ui.label(
            RichText::new("A comma-separated list of values runs one copy per value.")
                .small()
                .weak(),
        );
        for row in &mut self.methods {
            ui.push_id(row.method.name(), |ui| {
                ui.checkbox(&mut row.enabled, method_title(row.method))
                    .on_hover_text(method_help(row.method));
                if row.enabled && !row.params.is_empty() {
                    ui.indent("params", |ui| {
                        Grid::new("params").num_columns(2).show(ui, |ui| {
                            for (param, field) in &mut row.params {
                                let key = format!("{}.{param}", row.method.name());
                                grid_text_row(
                                    ui,
                                    param_title(param),
                                    &param_help(&key),
                                    &key,
                                    field,
                                );
                            }
                        });
                    });
                }
            });
        }
        match self.build_config() {
            Ok(config) => {
                let runs = expand_runs(&config).len();
                ui.label(format!(
                    "{runs} run{} to compare",
                    if runs == 1 { "" } else { "s" }
                ));
            }
            Err(message) => {
                ui.label(RichText::new(message).color(ui.visuals().error_fg_color));
            }
        }
    }
}

/// Draws a label and a text field on one line.
fn labelled_text(ui: &mut Ui, label: &str, help: &str, field: &mut TextField) {
    ui.horizontal(|ui| {
        let label = ui.label(label).on_hover_text(help);
        ui.add(TextEdit::singleline(&mut field.text).desired_width(140.0))
            .labelled_by(label.id);
    });
}

/// Draws one row of a two-column grid: the label and the field, then the field's error, if
/// any, in its own row. `key` is the `--set` key the field is checked as.
fn grid_text_row(ui: &mut Ui, label: &str, help: &str, key: &str, field: &mut TextField) {
    let label = ui.label(label).on_hover_text(help);
    let response = ui
        .add(TextEdit::singleline(&mut field.text).desired_width(110.0))
        .labelled_by(label.id);
    if response.changed() {
        field.error = check_setting(key, &field.text);
    }
    ui.end_row();
    if let Some(error) = &field.error {
        ui.label("");
        ui.label(
            RichText::new(error)
                .small()
                .color(ui.visuals().error_fg_color),
        );
        ui.end_row();
    }
}

/// Checks one `--set` value against a preset, so the error shows next to the field as it is
/// typed. Returns the error message, if any.
fn check_setting(key: &str, text: &str) -> Option<String> {
    let mut scratch = preset_or_default("split-mnist");
    if let Some((method, _)) = key.split_once('.')
        && let Ok(method) = method.parse::<Method>()
        && let Err(error) = apply_methods_list(&mut scratch, method.name())
    {
        return Some(error.to_string());
    }
    apply_set(&mut scratch, &format!("{key}={}", text.trim()))
        .err()
        .map(|error| error.to_string())
}

/// The preset `name`, or the seed preset's shape built by hand should the name be unknown.
fn preset_or_default(name: &str) -> ExperimentConfig {
    ExperimentConfig::preset(name).unwrap_or_else(|error| {
        log::error!("{error}");
        ExperimentConfig {
            name: name.to_owned(),
            sequence: SequenceConfig::Seed,
            architecture: Architecture::SeedCnn,
            head: HeadMode::Shared,
            training: Default::default(),
            methods: Method::ALL.map(Method::default_spec).to_vec(),
            seed: 0,
            data_dir: None,
        }
    })
}

/// Formats the `training.*` values of `config` as `--set` text, in the order of
/// [`TRAINING_FIELDS`].
fn training_texts(config: &ExperimentConfig) -> Vec<String> {
    let training = &config.training;
    let count_or_all =
        |value: Option<usize>| value.map_or_else(|| "all".to_owned(), |count| count.to_string());
    TRAINING_FIELDS
        .iter()
        .map(|(name, _, _)| match *name {
            "epochs" => training.epochs.to_string(),
            "limit" => count_or_all(training.limit),
            "batch_size" => training.batch_size.to_string(),
            "learning_rate" => training.learning_rate.to_string(),
            "momentum" => training.momentum.to_string(),
            "eval_every" => training.eval_every.to_string(),
            _ => count_or_all(training.eval_limit),
        })
        .collect()
}

/// One row per method: the experiment's methods first in their order, then the rest,
/// disabled. A method listed several times (a sweep) gets each parameter's distinct values
/// as a comma-separated list.
fn method_rows(config: &ExperimentConfig) -> Vec<MethodRow> {
    let mut order: Vec<Method> = Vec::new();
    for spec in &config.methods {
        if !order.contains(&spec.method()) {
            order.push(spec.method());
        }
    }
    let enabled_count = order.len();
    order.extend(
        Method::ALL
            .iter()
            .filter(|method| !config.methods.iter().any(|spec| spec.method() == **method)),
    );

    order
        .into_iter()
        .enumerate()
        .map(|(position, method)| {
            let specs: Vec<_> = config
                .methods
                .iter()
                .filter(|spec| spec.method() == method)
                .collect();
            let defaults = [method.default_spec()];
            let params = method
                .param_names()
                .iter()
                .map(|&param| {
                    let key = format!("{method}.{param}");
                    let mut values: Vec<String> = Vec::new();
                    let sources: Vec<_> = if specs.is_empty() {
                        defaults.iter().collect()
                    } else {
                        specs.clone()
                    };
                    for spec in sources {
                        if let Some(value) = spec.params().get(&key) {
                            let text = json_value_text(value);
                            if !values.contains(&text) {
                                values.push(text);
                            }
                        }
                    }
                    (param, TextField::new(values.join(",")))
                })
                .collect();
            MethodRow {
                method,
                enabled: position < enabled_count,
                params,
            }
        })
        .collect()
}

/// Formats a parameter value as `--set` text: `1000` rather than `1000.0`, names without quotes.
fn json_value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Number(number) => match (number.as_u64(), number.as_f64()) {
            (Some(integer), _) => integer.to_string(),
            (None, Some(float)) => float.to_string(),
            (None, None) => number.to_string(),
        },
        other => other.to_string(),
    }
}

fn join_numbers(values: &[f64]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_angles(text: &str) -> Result<Vec<f64>, String> {
    text.split(',')
        .map(str::trim)
        .map(|item| {
            item.parse::<f64>().map_err(|_| {
                format!("invalid rotation angle `{item}`: expected a number of degrees")
            })
        })
        .collect()
}

fn parse_widths(text: &str) -> Result<Vec<usize>, String> {
    text.split(',')
        .map(str::trim)
        .map(|item| match item.parse::<usize>() {
            Ok(width) if width > 0 => Ok(width),
            _ => Err(format!(
                "invalid hidden layer width `{item}`: expected an integer >= 1"
            )),
        })
        .collect()
}

fn method_title(method: Method) -> &'static str {
    match method {
        Method::Finetune => "Fine-tune (lower bound)",
        Method::Joint => "Joint (upper bound)",
        Method::Frozen => "Frozen feature layers",
        Method::L2 => "L2 to the old weights",
        Method::Ewc => "EWC",
        Method::OnlineEwc => "Online EWC",
        Method::Lwf => "LwF",
    }
}

fn method_help(method: Method) -> &'static str {
    match method {
        Method::Finetune => "finetune: plain training on each task in turn.",
        Method::Joint => "joint: training on every task seen so far.",
        Method::Frozen => "frozen: after the first task only the output layer trains.",
        Method::L2 => "l2: loss + λ/2 · Σ (θ − θ*)², θ* the weights after the previous task.",
        Method::Ewc => {
            "ewc: loss + λ/2 · Σ F (θ − θ*)², one penalty per old task (Kirkpatrick et al. 2017)."
        }
        Method::OnlineEwc => {
            "online-ewc: one running Fisher, γ·F + F_new after each task, around the latest anchor (Schwarz et al. 2018)."
        }
        Method::Lwf => {
            "lwf: loss + α · T² · KL between the old and new network's softened outputs (Li and Hoiem 2016)."
        }
    }
}

fn param_title(param: &str) -> &str {
    match param {
        "lambda" => "λ",
        "gamma" => "γ",
        "alpha" => "α",
        "temperature" => "T",
        "fisher" => "Fisher",
        "fisher_samples" => "Fisher samples",
        other => other,
    }
}

fn param_help(key: &str) -> String {
    let meaning = match key.rsplit('.').next().unwrap_or(key) {
        "lambda" => "penalty strength",
        "gamma" => "decay of the old Fisher, in (0, 1]",
        "alpha" => "weight of the distillation term",
        "temperature" => "softmax temperature of the distillation",
        "fisher" => "exact, sampled or empirical",
        "fisher_samples" => "training images in the Fisher estimate, or `all`",
        _ => "",
    };
    format!("{key}: {meaning}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_preset_round_trips_through_panel() {
        let preset = ExperimentConfig::preset("seed").expect("the seed preset exists");
        let setup = SetupState::from_config(&preset);

        let built = setup.build_config().expect("the preset is valid");

        assert_eq!(
            built, preset,
            "the panel should rebuild the preset unchanged"
        );
    }

    /// Finds both datasets of the seed sequence in `dir`, as if the user had named it.
    fn data_in(dir: &Path) -> DataLocations {
        let source = DataSource {
            dir: dir.to_owned(),
            how_found: HowFound::CommandLine,
        };
        DataLocations {
            found: vec![("mnist", Ok(source.clone())), ("fashion-mnist", Ok(source))],
        }
    }

    #[test]
    fn curve_interval_follows_data_until_typed() {
        use crate::data::test_files::{TempDir, images_idx};

        let preset = ExperimentConfig::preset("seed").expect("the seed preset exists");
        let preset_interval = preset.training.eval_every.to_string();
        let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets");
        // Just over the small-set limit; only the header is read, but the file is whole.
        let large = TempDir::new("large-training-sets");
        let images = images_idx(u32::try_from(SMALL_TRAINING_SET + 1).expect("fits u32"));
        large.write("mnist/train-images-idx3-ubyte", &images);
        large.write("fashion-mnist/train-images-idx3-ubyte", &images);
        let mut setup = SetupState::seed_experiment();

        setup.data = data_in(&bundled);
        setup.adapt_eval_interval();
        assert_eq!(
            setup.text("training.eval_every"),
            Some(SMALL_DATA_EVAL_EVERY),
            "bundled subsets named by hand"
        );
        setup.data = data_in(large.path());
        setup.adapt_eval_interval();
        assert_eq!(
            setup.text("training.eval_every"),
            Some(preset_interval.as_str()),
            "training sets over the small-set limit"
        );

        assert!(
            setup.set_text("training.limit", "2000"),
            "training.limit is a field"
        );
        assert_eq!(
            setup.text("training.eval_every"),
            Some(SMALL_DATA_EVAL_EVERY),
            "large sets cut to 2,000 images by the limit"
        );
        assert!(
            setup.set_text("training.limit", "all"),
            "training.limit is a field"
        );
        assert_eq!(
            setup.text("training.eval_every"),
            Some(preset_interval.as_str()),
            "the limit lifted again"
        );

        setup.set_text("training.eval_every", "5");
        setup.data = data_in(&bundled);
        setup.adapt_eval_interval();
        assert_eq!(
            setup.text("training.eval_every"),
            Some("5"),
            "a typed interval stays"
        );
    }

    #[test]
    fn loaded_experiment_keeps_its_interval() {
        let mut config = ExperimentConfig::preset("seed").expect("the seed preset exists");
        config.training.eval_every = 40;
        let mut setup = SetupState::from_config(&config);

        setup.data = data_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets"));
        setup.adapt_eval_interval();

        assert_eq!(setup.text("training.eval_every"), Some("40"));
    }

    #[test]
    fn sweep_list_expands_like_set() {
        let mut setup = SetupState::from_config(
            &ExperimentConfig::preset("seed").expect("the seed preset exists"),
        );
        assert!(
            setup.set_text("ewc.lambda", "10,100"),
            "ewc.lambda is a field of the panel"
        );

        let built = setup
            .build_config()
            .expect("a list of valid values is valid");

        let mut expected = ExperimentConfig::preset("seed").expect("the seed preset exists");
        apply_set(&mut expected, "ewc.lambda=10,100").expect("the same sweep on the command line");
        assert_eq!(
            built.methods, expected.methods,
            "the panel and --set should expand a sweep the same way"
        );
    }

    #[test]
    fn swept_file_shows_value_list() {
        let mut config = ExperimentConfig::preset("seed").expect("the seed preset exists");
        apply_set(&mut config, "ewc.lambda=10,100").expect("valid sweep");

        let setup = SetupState::from_config(&config);

        assert_eq!(
            setup.text("ewc.lambda"),
            Some("10,100"),
            "a swept parameter shows as its list of values"
        );
        assert_eq!(
            setup.build_config().expect("valid"),
            config,
            "the list rebuilds the same runs"
        );
    }

    #[test]
    fn insight_settings_survive_round_trip() {
        let mut config = ExperimentConfig::preset("seed").expect("the seed preset exists");
        apply_set(&mut config, "training.insights=off").expect("valid switch");
        apply_set(&mut config, "training.record_weights=on").expect("valid choice");

        let built = SetupState::from_config(&config)
            .build_config()
            .expect("valid");

        assert!(!built.training.insights, "insights stay off as loaded");
        assert_eq!(
            built.training.record_weights,
            RecordWeights::On,
            "record_weights stays as loaded"
        );
    }

    #[test]
    fn invalid_value_reports_its_key() {
        let mut setup = SetupState::from_config(
            &ExperimentConfig::preset("seed").expect("the seed preset exists"),
        );
        setup.set_text("training.limit", "some");

        let error = setup.build_config().expect_err("`some` is not a count");

        assert!(
            error.contains("training.limit"),
            "the message should name the field: {error}"
        );
    }

    #[test]
    fn no_methods_is_an_error() {
        let mut setup = SetupState::from_config(
            &ExperimentConfig::preset("seed").expect("the seed preset exists"),
        );
        setup.set_methods(&[]);

        let error = setup
            .build_config()
            .expect_err("an experiment needs a method");

        assert!(
            error.contains("at least one method"),
            "the message should say what is missing: {error}"
        );
    }

    #[test]
    fn set_methods_orders_runs() {
        let mut setup = SetupState::from_config(
            &ExperimentConfig::preset("seed").expect("the seed preset exists"),
        );
        setup.set_methods(&[Method::Ewc, Method::Finetune]);

        let built = setup.build_config().expect("valid");

        let methods: Vec<Method> = built.methods.iter().map(|spec| spec.method()).collect();
        assert_eq!(
            methods,
            [Method::Ewc, Method::Finetune],
            "runs follow the order given"
        );
    }

    #[test]
    fn custom_sequence_builds_dataset_sources() {
        let mut setup = SetupState::from_config(
            &ExperimentConfig::preset("seed").expect("the seed preset exists"),
        );
        setup.sequence = SequenceKind::Custom;
        setup.custom_tasks = vec![CustomTask::empty(0)];
        setup.custom_tasks[0].format = CustomFormat::Csv;
        setup.set_dataset_path(0, DatasetSlot::TrainCsv, Path::new("train.csv"));
        setup.set_dataset_path(0, DatasetSlot::TestCsv, Path::new("test.csv"));

        let built = setup.build_config().expect("a named CSV task is valid");

        let expected = DatasetSource::Csv {
            name: "task-1".to_owned(),
            train: "train.csv".into(),
            test: "test.csv".into(),
        };
        assert_eq!(
            built.sequence,
            SequenceConfig::Custom {
                datasets: vec![expected]
            },
            "one CSV task with both paths"
        );
    }
}
