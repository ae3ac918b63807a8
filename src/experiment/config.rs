//! The experiment file: which tasks, which network, how to train, and which methods to compare.
//!
//! An experiment is stored as JSON and every struct rejects unknown fields, so a misspelt key
//! (`"lamda"`) fails with a message naming it instead of silently taking a default:
//!
//! ```json
//! {
//!   "name": "seed",
//!   "sequence": { "kind": "seed" },
//!   "architecture": { "kind": "seed-cnn" },
//!   "head": "shared",
//!   "training": { "optimizer": "adam", "learning_rate": 0.001, "batch_size": 64, "epochs": 1 },
//!   "methods": [
//!     { "method": "finetune" },
//!     { "method": "ewc", "lambda": 1000.0, "fisher": "exact", "fisher_samples": 1000 },
//!     { "method": "lwf", "alpha": 1.0, "temperature": 2.0 }
//!   ],
//!   "seed": 0
//! }
//! ```
//!
//! `methods` lists concrete runs. A sweep given on the command line (`--set ewc.lambda=100,1000`)
//! is expanded into one entry per value before anything trains, so the saved file of a sweep
//! replays it exactly and [`expand_runs`] only has to give each run a unique label.
//!
//! Method parameters use the same names everywhere: `ewc.lambda` on the command line, `lambda`
//! inside an `{"method": "ewc"}` entry, and `"ewc.lambda"` in the `params` of a results file.
//!
//! The default parameter values are starting points for the seed experiment (MNIST then
//! Fashion-MNIST, seed CNN, Adam at 1e-3, batch 64, one epoch per task, mean-reduced
//! cross-entropy). They are not tuned, and the right λ changes with the loss scale, the Fisher
//! estimate and the number of tasks, so a comparison for a paper should sweep them.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::model::Architecture;

/// Default `l2.lambda`. An estimate, not a measurement: one epoch of Adam at 1e-3 moves a weight
/// by about 0.01 from the anchor, so with λ = 1 the penalty gradient λ·(θ − θ*) is of the same
/// order as the cross-entropy gradient and slows the new task without stopping it.
pub const DEFAULT_L2_LAMBDA: f64 = 1.0;
/// Default `ewc.lambda` and `online-ewc.lambda`. Most diagonal Fisher entries of a network that
/// fits its task well are small, so λ·F reaches the scale of the L2 default only for large λ.
/// The value is a starting point for a sweep such as 100, 1000, 10000.
pub const DEFAULT_EWC_LAMBDA: f64 = 1000.0;
/// Default number of training samples in the Fisher estimate (`ewc.fisher_samples`).
pub const DEFAULT_FISHER_SAMPLES: usize = 1000;
/// Default `online-ewc.gamma`. With γ = 1 the Fisher of every old task counts fully, which makes
/// online EWC the running sum of the offline penalties around a single anchor.
pub const DEFAULT_ONLINE_EWC_GAMMA: f64 = 1.0;
/// Default `lwf.alpha`: distillation and the new task's loss weighted equally.
pub const DEFAULT_LWF_ALPHA: f64 = 1.0;
/// Default `lwf.temperature`. T = 2 softens the old network's outputs, so the distillation term
/// also carries how it ranks the wrong classes.
pub const DEFAULT_LWF_TEMPERATURE: f64 = 2.0;

/// Default rotation angles in degrees for `rotated-mnist`: five tasks 30° apart. The sequence
/// stops well short of 180°, where a rotated 6 reads as a 9 and one shared output layer could
/// not separate the two.
pub const DEFAULT_ROTATION_ANGLES: [f64; 5] = [0.0, 30.0, 60.0, 90.0, 120.0];
/// Default number of tasks in `permuted-mnist`.
pub const DEFAULT_PERMUTED_TASKS: usize = 10;
/// Number of tasks in `split-mnist`: the digit pairs 0/1, 2/3, 4/5, 6/7 and 8/9.
pub const SPLIT_MNIST_TASKS: usize = 5;

/// Names accepted by [`ExperimentConfig::preset`].
pub const PRESETS: [&str; 4] = ["seed", "permuted-mnist", "split-mnist", "rotated-mnist"];

/// Error from reading, changing, validating or writing an experiment.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The experiment file could not be read.
    #[error("failed to read experiment file {path}: {source}", path = path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is not valid JSON or does not match the experiment schema. serde_json's message
    /// ends with the line and column.
    #[error("invalid experiment file {path}: {source}", path = path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser error, with line and column.
        source: serde_json::Error,
    },
    /// The file parsed but a value is out of range.
    #[error("invalid experiment file {path}: {source}", path = path.display())]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// The validation error naming the field.
        source: Box<ConfigError>,
    },
    /// The experiment could not be encoded as JSON.
    #[error("failed to encode the experiment as JSON: {0}")]
    Encode(#[source] serde_json::Error),
    /// The experiment file could not be written.
    #[error("failed to write experiment file {path}: {source}", path = path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A field's value is outside its valid range or of the wrong kind.
    #[error("invalid {field} = {value}: expected {expected}")]
    Invalid {
        /// The field, such as `training.batch_size` or `methods[2].lambda`.
        field: String,
        /// The rejected value as written.
        value: String,
        /// Description of the accepted values.
        expected: String,
    },
    /// A method name that the workbench does not implement.
    #[error("unknown method `{name}`; valid methods are {valid}", valid = Method::names_joined())]
    UnknownMethod {
        /// The name as written.
        name: String,
    },
    /// A preset name that does not exist.
    #[error("unknown preset `{name}`; valid presets are {valid}", valid = PRESETS.join(", "))]
    UnknownPreset {
        /// The name as written.
        name: String,
    },
    /// A `--set` key that names no setting.
    #[error("unknown key `{key}`; valid keys are {valid}")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The keys that would have been accepted.
        valid: String,
    },
    /// A `--set` key for a method that the experiment does not run.
    #[error(
        "`{key}` sets a parameter of {method}, which is not among the methods ({listed}); \
         add it with --methods"
    )]
    MethodNotListed {
        /// The key as written.
        key: String,
        /// The method the key belongs to.
        method: Method,
        /// The methods the experiment runs.
        listed: String,
    },
    /// A list of values for a setting that cannot sweep.
    #[error(
        "`{key}` takes one value but got {count}; only method parameters such as ewc.lambda \
         sweep over a list"
    )]
    NotSweepable {
        /// The key as written.
        key: String,
        /// Number of values given.
        count: usize,
    },
    /// A `--set` argument that is not `KEY=VALUE[,VALUE...]`.
    #[error("invalid override `{input}`: expected KEY=VALUE or KEY=VALUE1,VALUE2,...")]
    MalformedSet {
        /// The argument as written.
        input: String,
    },
}

/// A whole experiment: the task sequence, the network, the training settings and the runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Name shown in the window and written to results.
    #[serde(default = "default_name")]
    pub name: String,
    /// The tasks, in training order.
    pub sequence: SequenceConfig,
    /// The network every run starts from.
    pub architecture: Architecture,
    /// One output layer for all tasks, or one per task. Defaults to `shared`.
    #[serde(default)]
    pub head: HeadMode,
    /// Optimizer and schedule, shared by every run so that runs differ only in the method.
    #[serde(default)]
    pub training: TrainingConfig,
    /// The runs, one per entry; a method may appear several times with different parameters.
    pub methods: Vec<MethodSpec>,
    /// Seed for initial weights, data order, permutations and sampled Fisher labels.
    #[serde(default)]
    pub seed: u64,
    /// Directory holding `mnist/` and `fashion-mnist/`; `None` searches the usual places.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

fn default_name() -> String {
    "experiment".to_owned()
}

/// The task sequence an experiment trains through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", from = "SequenceFile")]
pub enum SequenceConfig {
    /// MNIST, then Fashion-MNIST.
    Seed,
    /// MNIST with one fixed pixel permutation per task, drawn from the experiment seed.
    PermutedMnist {
        /// Number of tasks (permutations).
        tasks: usize,
    },
    /// MNIST split into the digit pairs 0/1, 2/3, 4/5, 6/7 and 8/9, one task each.
    SplitMnist,
    /// MNIST rotated by a fixed angle per task.
    RotatedMnist {
        /// Rotation of each task in degrees, counter-clockwise.
        angles: Vec<f64>,
    },
    /// Datasets named by the user, trained in the order given.
    Custom {
        /// One dataset per task.
        datasets: Vec<DatasetSource>,
    },
}

/// The file form of [`SequenceConfig`], read and then converted.
///
/// serde (1.0.229) ignores extra fields after the tag of a unit variant, even with
/// `deny_unknown_fields`, so the variants without fields are empty structs here and
/// `{"kind": "seed", "tasks": 3}` is rejected instead of silently running two tasks.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum SequenceFile {
    Seed {},
    PermutedMnist {
        #[serde(default = "default_permuted_tasks")]
        tasks: usize,
    },
    SplitMnist {},
    RotatedMnist {
        #[serde(default = "default_rotation_angles")]
        angles: Vec<f64>,
    },
    Custom {
        datasets: Vec<DatasetSource>,
    },
}

impl From<SequenceFile> for SequenceConfig {
    fn from(file: SequenceFile) -> Self {
        match file {
            SequenceFile::Seed {} => Self::Seed,
            SequenceFile::PermutedMnist { tasks } => Self::PermutedMnist { tasks },
            SequenceFile::SplitMnist {} => Self::SplitMnist,
            SequenceFile::RotatedMnist { angles } => Self::RotatedMnist { angles },
            SequenceFile::Custom { datasets } => Self::Custom { datasets },
        }
    }
}

fn default_permuted_tasks() -> usize {
    DEFAULT_PERMUTED_TASKS
}

fn default_rotation_angles() -> Vec<f64> {
    DEFAULT_ROTATION_ANGLES.to_vec()
}

/// Files of one custom task. Relative paths are relative to the working directory unless
/// [`ExperimentConfig::resolve_relative_paths`] rebases them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DatasetSource {
    /// IDX files, raw or gzip-compressed, as MNIST is distributed.
    Idx {
        /// Task name in results and plots.
        name: String,
        /// Training images.
        train_images: PathBuf,
        /// Training labels.
        train_labels: PathBuf,
        /// Test images.
        test_images: PathBuf,
        /// Test labels.
        test_labels: PathBuf,
    },
    /// CSV files with the label and the pixels of one image per row.
    Csv {
        /// Task name in results and plots.
        name: String,
        /// Training set.
        train: PathBuf,
        /// Test set.
        test: PathBuf,
    },
}

impl DatasetSource {
    /// Returns the training images' file.
    pub fn train_path(&self) -> &Path {
        match self {
            Self::Idx { train_images, .. } => train_images,
            Self::Csv { train, .. } => train,
        }
    }

    /// Task name in results and plots.
    pub fn name(&self) -> &str {
        match self {
            Self::Idx { name, .. } | Self::Csv { name, .. } => name,
        }
    }

    fn paths_mut(&mut self) -> Vec<&mut PathBuf> {
        match self {
            Self::Idx {
                train_images,
                train_labels,
                test_images,
                test_labels,
                ..
            } => {
                vec![train_images, train_labels, test_images, test_labels]
            }
            Self::Csv { train, test, .. } => vec![train, test],
        }
    }
}

impl SequenceConfig {
    /// Number of tasks in the sequence.
    pub fn task_count(&self) -> usize {
        match self {
            Self::Seed => 2,
            Self::PermutedMnist { tasks } => *tasks,
            Self::SplitMnist => SPLIT_MNIST_TASKS,
            Self::RotatedMnist { angles } => angles.len(),
            Self::Custom { datasets } => datasets.len(),
        }
    }

    /// Short task names for results, tables and plot legends, in training order.
    pub fn task_names(&self) -> Vec<String> {
        match self {
            Self::Seed => vec!["mnist".to_owned(), "fashion-mnist".to_owned()],
            Self::PermutedMnist { tasks } => (1..=*tasks).map(|t| format!("perm-{t}")).collect(),
            Self::SplitMnist => (0..SPLIT_MNIST_TASKS)
                .map(|t| format!("{}/{}", 2 * t, 2 * t + 1))
                .collect(),
            Self::RotatedMnist { angles } => angles.iter().map(|a| format!("rot-{a}")).collect(),
            Self::Custom { datasets } => datasets.iter().map(|d| d.name().to_owned()).collect(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Self::Seed | Self::SplitMnist => Ok(()),
            Self::PermutedMnist { tasks } => check_count("sequence.tasks", *tasks),
            Self::RotatedMnist { angles } => {
                if angles.is_empty() {
                    return Err(invalid("sequence.angles", "[]", "at least one angle"));
                }
                for (index, angle) in angles.iter().enumerate() {
                    if !angle.is_finite() {
                        let field = format!("sequence.angles[{index}]");
                        return Err(invalid(&field, angle, "a finite angle in degrees"));
                    }
                }
                Ok(())
            }
            Self::Custom { datasets } => validate_datasets(datasets),
        }
    }
}

fn validate_datasets(datasets: &[DatasetSource]) -> Result<(), ConfigError> {
    if datasets.is_empty() {
        return Err(invalid("sequence.datasets", "[]", "at least one dataset"));
    }
    for (index, dataset) in datasets.iter().enumerate() {
        let name = dataset.name();
        let field = format!("sequence.datasets[{index}].name");
        if name.trim().is_empty() {
            return Err(invalid(&field, "\"\"", "a non-empty task name"));
        }
        if datasets[..index]
            .iter()
            .any(|earlier| earlier.name() == name)
        {
            return Err(invalid(
                &field,
                name,
                "a name no other dataset in the sequence uses",
            ));
        }
    }
    Ok(())
}

/// Assignment of output layers to tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeadMode {
    /// One output layer for every task (domain-incremental).
    #[default]
    Shared,
    /// One output layer per task, chosen by the task index at test time (task-incremental).
    PerTask,
}

/// The optimizer used for every run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Optimizer {
    /// Adam.
    #[default]
    Adam,
    /// Stochastic gradient descent with momentum.
    Sgd,
}

/// Training settings for each task, shared by every run of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingConfig {
    /// The optimizer.
    pub optimizer: Optimizer,
    /// Step size.
    pub learning_rate: f64,
    /// Momentum coefficient for SGD; Adam ignores it.
    pub momentum: f64,
    /// Training images per step.
    pub batch_size: usize,
    /// Passes over each task's training set.
    pub epochs: usize,
    /// Training images used per task; `None` (`"all"` in files) uses every image.
    #[serde(with = "count_or_all")]
    pub limit: Option<usize>,
    /// Optimizer steps between two points of the accuracy curve.
    pub eval_every: usize,
    /// Test images per task for each curve point; `None` (`"all"`) uses the whole test set.
    /// The default of 1000 keeps frequent curve points cheap, at a standard error of at most
    /// 1.6 percentage points. The accuracy matrix is measured without this limit.
    #[serde(with = "count_or_all")]
    pub eval_limit: Option<usize>,
    /// Whether each run records what the insight views need: the parameter layout, the
    /// distance from the previous task's weights θ* at every curve point, and a Fisher
    /// diagonal at θ* for runs whose method estimates none (see [`crate::experiment::insights`]).
    /// On by default; off skips that Fisher pass and the weight read-back at each point.
    pub insights: bool,
    /// Whether results store the weights after each task and the Fisher diagonals, which the
    /// weight and Fisher views need when a results file is reopened. Only applies with
    /// `insights` on.
    pub record_weights: RecordWeights,
}

/// Largest network, in parameters, whose weights `record_weights = auto` stores.
///
/// A stored vector takes 5.33 bytes per parameter (base64 of `f32`). The seed CNN (54,410
/// parameters) stores 290 KB per vector, about 0.9 MB per run over two tasks. The 2×400 MLP
/// (478,410) would store 2.5 MB per vector, about 48 MB per run over ten permuted tasks.
pub const AUTO_RECORD_WEIGHTS_MAX_PARAMS: usize = 100_000;

/// When results store weights and Fisher diagonals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordWeights {
    /// For networks of at most [`AUTO_RECORD_WEIGHTS_MAX_PARAMS`] parameters.
    #[default]
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

impl RecordWeights {
    /// Name in files and on the command line.
    pub fn name(self) -> &'static str {
        Named::name(self)
    }

    /// Decides whether a network with `parameters` parameters gets its weights stored.
    pub fn applies_to(self, parameters: usize) -> bool {
        match self {
            Self::Auto => parameters <= AUTO_RECORD_WEIGHTS_MAX_PARAMS,
            Self::On => true,
            Self::Off => false,
        }
    }
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            optimizer: Optimizer::Adam,
            learning_rate: 1e-3,
            momentum: 0.9,
            batch_size: 64,
            epochs: 1,
            limit: None,
            eval_every: 100,
            eval_limit: Some(1000),
            insights: true,
            record_weights: RecordWeights::Auto,
        }
    }
}

impl TrainingConfig {
    /// Names accepted after `training.` by `--set`.
    pub const KEYS: [&'static str; 10] = [
        "optimizer",
        "learning_rate",
        "momentum",
        "batch_size",
        "epochs",
        "limit",
        "eval_every",
        "eval_limit",
        "insights",
        "record_weights",
    ];

    fn validate(&self) -> Result<(), ConfigError> {
        check_number(
            "training.learning_rate",
            self.learning_rate,
            Range::Positive,
        )?;
        check_number("training.momentum", self.momentum, Range::Momentum)?;
        check_count("training.batch_size", self.batch_size)?;
        check_count("training.epochs", self.epochs)?;
        check_optional_count("training.limit", self.limit)?;
        check_count("training.eval_every", self.eval_every)?;
        check_optional_count("training.eval_limit", self.eval_limit)
    }

    /// Sets one field from its command-line text; `name` is the part after `training.`.
    fn set_field(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let key = format!("training.{name}");
        match name {
            "optimizer" => self.optimizer = parse_named(&key, value)?,
            "learning_rate" => self.learning_rate = parse_number(&key, value, Range::Positive)?,
            "momentum" => self.momentum = parse_number(&key, value, Range::Momentum)?,
            "batch_size" => self.batch_size = parse_count(&key, value)?,
            "epochs" => self.epochs = parse_count(&key, value)?,
            "limit" => self.limit = parse_count_or_all(&key, value)?,
            "eval_every" => self.eval_every = parse_count(&key, value)?,
            "eval_limit" => self.eval_limit = parse_count_or_all(&key, value)?,
            "insights" => self.insights = parse_switch(&key, value)?,
            "record_weights" => self.record_weights = parse_named(&key, value)?,
            _ => {
                return Err(ConfigError::UnknownKey {
                    key,
                    valid: all_keys_joined(),
                });
            }
        }
        Ok(())
    }
}

/// A continual-learning method, without its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Plain training on each task in turn: the lower bound.
    Finetune,
    /// Training on the union of all tasks seen so far: the upper bound.
    Joint,
    /// Feature layers stop learning after the first task.
    Frozen,
    /// λ/2 · Σᵢ (θᵢ − θ*ᵢ)² around the weights after the previous task.
    L2,
    /// Elastic weight consolidation: one Fisher-weighted penalty per old task.
    Ewc,
    /// Online EWC: one running Fisher F ← γ·F + F_new and one anchor.
    OnlineEwc,
    /// Learning without Forgetting: distillation from the network as it was before the task.
    Lwf,
}

impl Method {
    /// Every method, in the order the workbench lists them.
    pub const ALL: [Method; 7] = [
        Self::Finetune,
        Self::Joint,
        Self::Frozen,
        Self::L2,
        Self::Ewc,
        Self::OnlineEwc,
        Self::Lwf,
    ];

    /// Name on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Finetune => "finetune",
            Self::Joint => "joint",
            Self::Frozen => "frozen",
            Self::L2 => "l2",
            Self::Ewc => "ewc",
            Self::OnlineEwc => "online-ewc",
            Self::Lwf => "lwf",
        }
    }

    /// Parameter names without the method prefix (`lambda`, not `ewc.lambda`).
    pub fn param_names(self) -> &'static [&'static str] {
        match self {
            Self::Finetune | Self::Joint | Self::Frozen => &[],
            Self::L2 => &["lambda"],
            Self::Ewc => &["lambda", "fisher", "fisher_samples"],
            Self::OnlineEwc => &["lambda", "gamma", "fisher", "fisher_samples"],
            Self::Lwf => &["alpha", "temperature"],
        }
    }

    /// This method with its default parameters.
    pub fn default_spec(self) -> MethodSpec {
        match self {
            Self::Finetune => MethodSpec::Finetune,
            Self::Joint => MethodSpec::Joint,
            Self::Frozen => MethodSpec::Frozen,
            Self::L2 => MethodSpec::L2 {
                lambda: DEFAULT_L2_LAMBDA,
            },
            Self::Ewc => MethodSpec::Ewc {
                lambda: DEFAULT_EWC_LAMBDA,
                fisher: FisherKind::default(),
                fisher_samples: Some(DEFAULT_FISHER_SAMPLES),
            },
            Self::OnlineEwc => MethodSpec::OnlineEwc {
                lambda: DEFAULT_EWC_LAMBDA,
                gamma: DEFAULT_ONLINE_EWC_GAMMA,
                fisher: FisherKind::default(),
                fisher_samples: Some(DEFAULT_FISHER_SAMPLES),
            },
            Self::Lwf => MethodSpec::Lwf {
                alpha: DEFAULT_LWF_ALPHA,
                temperature: DEFAULT_LWF_TEMPERATURE,
            },
        }
    }

    fn names_joined() -> String {
        Self::ALL.map(Self::name).join(", ")
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = ConfigError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|method| method.name() == name)
            .ok_or_else(|| ConfigError::UnknownMethod {
                name: name.to_owned(),
            })
    }
}

/// Estimate of the diagonal Fisher information used by EWC, shared with the engine so that a
/// config value passes straight to the Fisher kernels.
pub use crate::gpu::FisherKind;

/// A method with all of its parameters: one run of an experiment.
///
/// In files each entry is tagged by `method` and omitted parameters take the `DEFAULT_*`
/// values of this module. `fisher_samples` is `None` (`"all"` in files) for the whole
/// training set of the task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case", from = "MethodSpecFile")]
pub enum MethodSpec {
    /// Plain training on each task in turn.
    Finetune,
    /// Training on all tasks seen so far.
    Joint,
    /// Feature layers frozen after the first task.
    Frozen,
    /// L2 penalty towards the previous task's weights.
    L2 {
        /// Penalty strength λ.
        lambda: f64,
    },
    /// Offline EWC, one penalty per old task.
    Ewc {
        /// Penalty strength λ.
        lambda: f64,
        /// Fisher estimate.
        fisher: FisherKind,
        /// Training samples in the Fisher estimate; `None` for all.
        #[serde(with = "count_or_all")]
        fisher_samples: Option<usize>,
    },
    /// Online EWC with a decaying running Fisher.
    OnlineEwc {
        /// Penalty strength λ.
        lambda: f64,
        /// Decay γ of the running Fisher, in (0, 1].
        gamma: f64,
        /// Fisher estimate.
        fisher: FisherKind,
        /// Training samples in the Fisher estimate; `None` for all.
        #[serde(with = "count_or_all")]
        fisher_samples: Option<usize>,
    },
    /// Learning without Forgetting.
    Lwf {
        /// Weight α of the distillation term.
        alpha: f64,
        /// Softmax temperature T of the distillation term.
        temperature: f64,
    },
}

/// The file form of [`MethodSpec`], read and then converted. The methods without parameters
/// are empty structs here for the reason given at [`SequenceFile`], so
/// `{"method": "finetune", "lambda": 1}` is rejected.
#[derive(Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case", deny_unknown_fields)]
enum MethodSpecFile {
    Finetune {},
    Joint {},
    Frozen {},
    L2 {
        #[serde(default = "default_l2_lambda")]
        lambda: f64,
    },
    Ewc {
        #[serde(default = "default_ewc_lambda")]
        lambda: f64,
        #[serde(default)]
        fisher: FisherKind,
        #[serde(default = "default_fisher_samples", with = "count_or_all")]
        fisher_samples: Option<usize>,
    },
    OnlineEwc {
        #[serde(default = "default_ewc_lambda")]
        lambda: f64,
        #[serde(default = "default_online_ewc_gamma")]
        gamma: f64,
        #[serde(default)]
        fisher: FisherKind,
        #[serde(default = "default_fisher_samples", with = "count_or_all")]
        fisher_samples: Option<usize>,
    },
    Lwf {
        #[serde(default = "default_lwf_alpha")]
        alpha: f64,
        #[serde(default = "default_lwf_temperature")]
        temperature: f64,
    },
}

impl From<MethodSpecFile> for MethodSpec {
    fn from(file: MethodSpecFile) -> Self {
        match file {
            MethodSpecFile::Finetune {} => Self::Finetune,
            MethodSpecFile::Joint {} => Self::Joint,
            MethodSpecFile::Frozen {} => Self::Frozen,
            MethodSpecFile::L2 { lambda } => Self::L2 { lambda },
            MethodSpecFile::Ewc {
                lambda,
                fisher,
                fisher_samples,
            } => Self::Ewc {
                lambda,
                fisher,
                fisher_samples,
            },
            MethodSpecFile::OnlineEwc {
                lambda,
                gamma,
                fisher,
                fisher_samples,
            } => Self::OnlineEwc {
                lambda,
                gamma,
                fisher,
                fisher_samples,
            },
            MethodSpecFile::Lwf { alpha, temperature } => Self::Lwf { alpha, temperature },
        }
    }
}

fn default_l2_lambda() -> f64 {
    DEFAULT_L2_LAMBDA
}

fn default_ewc_lambda() -> f64 {
    DEFAULT_EWC_LAMBDA
}

fn default_fisher_samples() -> Option<usize> {
    Some(DEFAULT_FISHER_SAMPLES)
}

fn default_online_ewc_gamma() -> f64 {
    DEFAULT_ONLINE_EWC_GAMMA
}

fn default_lwf_alpha() -> f64 {
    DEFAULT_LWF_ALPHA
}

fn default_lwf_temperature() -> f64 {
    DEFAULT_LWF_TEMPERATURE
}

/// A parameter value, kept typed so that labels print `1000` and not `1000.0`.
#[derive(Debug, Clone, PartialEq)]
enum ParamValue {
    Number(f64),
    Samples(Option<usize>),
    Name(&'static str),
}

impl ParamValue {
    fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Number(value) => serde_json::Value::from(*value),
            Self::Samples(Some(count)) => serde_json::Value::from(*count),
            Self::Samples(None) => serde_json::Value::from("all"),
            Self::Name(name) => serde_json::Value::from(*name),
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(value) => write!(f, "{value}"),
            Self::Samples(Some(count)) => write!(f, "{count}"),
            Self::Samples(None) => f.write_str("all"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

impl MethodSpec {
    /// The method without its parameters.
    pub fn method(&self) -> Method {
        match self {
            Self::Finetune => Method::Finetune,
            Self::Joint => Method::Joint,
            Self::Frozen => Method::Frozen,
            Self::L2 { .. } => Method::L2,
            Self::Ewc { .. } => Method::Ewc,
            Self::OnlineEwc { .. } => Method::OnlineEwc,
            Self::Lwf { .. } => Method::Lwf,
        }
    }

    /// Short label with the parameters a reader compares first, such as `ewc λ=1000`.
    /// [`expand_runs`] extends it where two runs would otherwise share a label.
    pub fn label(&self) -> String {
        match self {
            Self::Finetune | Self::Joint | Self::Frozen => self.method().name().to_owned(),
            Self::L2 { lambda } => format!("l2 λ={lambda}"),
            Self::Ewc { lambda, .. } => format!("ewc λ={lambda}"),
            Self::OnlineEwc { lambda, gamma, .. } => format!("online-ewc λ={lambda} γ={gamma}"),
            Self::Lwf { alpha, temperature } => format!("lwf α={alpha} T={temperature}"),
        }
    }

    /// Lists every parameter under its command-line key, such as `"ewc.lambda": 1000.0`, for
    /// the `params` of a results file. Methods without parameters return an empty map.
    pub fn params(&self) -> BTreeMap<String, serde_json::Value> {
        let method = self.method();
        self.param_values()
            .into_iter()
            .map(|(name, value)| (format!("{method}.{name}"), value.to_json()))
            .collect()
    }

    fn param_values(&self) -> Vec<(&'static str, ParamValue)> {
        use ParamValue::{Name, Number, Samples};
        match self {
            Self::Finetune | Self::Joint | Self::Frozen => Vec::new(),
            Self::L2 { lambda } => vec![("lambda", Number(*lambda))],
            Self::Ewc {
                lambda,
                fisher,
                fisher_samples,
            } => vec![
                ("lambda", Number(*lambda)),
                ("fisher", Name(fisher.name())),
                ("fisher_samples", Samples(*fisher_samples)),
            ],
            Self::OnlineEwc {
                lambda,
                gamma,
                fisher,
                fisher_samples,
            } => vec![
                ("lambda", Number(*lambda)),
                ("gamma", Number(*gamma)),
                ("fisher", Name(fisher.name())),
                ("fisher_samples", Samples(*fisher_samples)),
            ],
            Self::Lwf { alpha, temperature } => {
                vec![
                    ("alpha", Number(*alpha)),
                    ("temperature", Number(*temperature)),
                ]
            }
        }
    }

    /// Sets one parameter from its command-line text; `name` is the part after the method
    /// prefix (`lambda` for `ewc.lambda`). Leaves `self` unchanged on error.
    pub fn set_param(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let method = self.method();
        let key = format!("{method}.{name}");
        match (self, name) {
            (
                Self::L2 { lambda } | Self::Ewc { lambda, .. } | Self::OnlineEwc { lambda, .. },
                "lambda",
            ) => *lambda = parse_number(&key, value, Range::NonNegative)?,
            (Self::Ewc { fisher, .. } | Self::OnlineEwc { fisher, .. }, "fisher") => {
                *fisher = parse_named(&key, value)?;
            }
            (
                Self::Ewc { fisher_samples, .. } | Self::OnlineEwc { fisher_samples, .. },
                "fisher_samples",
            ) => *fisher_samples = parse_count_or_all(&key, value)?,
            (Self::OnlineEwc { gamma, .. }, "gamma") => {
                *gamma = parse_number(&key, value, Range::UnitInterval)?;
            }
            (Self::Lwf { alpha, .. }, "alpha") => {
                *alpha = parse_number(&key, value, Range::NonNegative)?;
            }
            (Self::Lwf { temperature, .. }, "temperature") => {
                *temperature = parse_number(&key, value, Range::Positive)?;
            }
            _ => {
                return Err(ConfigError::UnknownKey {
                    key,
                    valid: method_keys_joined(method),
                });
            }
        }
        Ok(())
    }

    /// Checks every parameter's range; `prefix` starts each field name in the error.
    fn validate_params(&self, prefix: &str) -> Result<(), ConfigError> {
        let field = |name: &str| format!("{prefix}{name}");
        match self {
            Self::Finetune | Self::Joint | Self::Frozen => Ok(()),
            Self::L2 { lambda } => check_number(&field("lambda"), *lambda, Range::NonNegative),
            Self::Ewc {
                lambda,
                fisher_samples,
                ..
            } => {
                check_number(&field("lambda"), *lambda, Range::NonNegative)?;
                check_optional_count(&field("fisher_samples"), *fisher_samples)
            }
            Self::OnlineEwc {
                lambda,
                gamma,
                fisher_samples,
                ..
            } => {
                check_number(&field("lambda"), *lambda, Range::NonNegative)?;
                check_number(&field("gamma"), *gamma, Range::UnitInterval)?;
                check_optional_count(&field("fisher_samples"), *fisher_samples)
            }
            Self::Lwf { alpha, temperature } => {
                check_number(&field("alpha"), *alpha, Range::NonNegative)?;
                check_number(&field("temperature"), *temperature, Range::Positive)
            }
        }
    }
}

/// One run of an experiment: a method with its parameters and a label unique in the experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// Label in tables, legends and results, such as `ewc λ=1000`.
    pub label: String,
    /// The method and its parameters.
    pub method: MethodSpec,
}

/// Lists the runs of an experiment in file order, each with a unique label.
///
/// A run's label is [`MethodSpec::label`]. Where runs share it, the parameters that differ
/// between them are appended (`ewc λ=1000 fisher=sampled`); runs that are identical in every
/// parameter get ` (2)`, ` (3)`, ... from the second on.
pub fn expand_runs(config: &ExperimentConfig) -> Vec<RunSpec> {
    let mut labels: Vec<String> = config.methods.iter().map(MethodSpec::label).collect();
    append_differing_params(&config.methods, &mut labels);
    number_repeated_labels(&mut labels);
    labels
        .into_iter()
        .zip(&config.methods)
        .map(|(label, method)| RunSpec {
            label,
            method: method.clone(),
        })
        .collect()
}

fn append_differing_params(specs: &[MethodSpec], labels: &mut [String]) {
    let base_labels = labels.to_vec();
    for (index, spec) in specs.iter().enumerate() {
        let group: Vec<&MethodSpec> = specs
            .iter()
            .zip(&base_labels)
            .filter(|(_, label)| **label == base_labels[index])
            .map(|(other, _)| other)
            .collect();
        if group.len() < 2 {
            continue;
        }
        // Runs with equal labels are runs of the same method, so they share parameter names.
        for (name, value) in spec.param_values() {
            let differs = group.iter().any(|other| {
                other
                    .param_values()
                    .iter()
                    .any(|(n, v)| *n == name && *v != value)
            });
            if differs {
                labels[index].push_str(&format!(" {name}={value}"));
            }
        }
    }
}

fn number_repeated_labels(labels: &mut [String]) {
    for index in 0..labels.len() {
        let earlier = labels[..index]
            .iter()
            .filter(|label| **label == labels[index])
            .count();
        if earlier > 0 {
            labels[index] = format!("{} ({})", labels[index], earlier + 1);
        }
    }
}

impl ExperimentConfig {
    /// Builds one of the experiments named in [`PRESETS`].
    ///
    /// - `seed`: MNIST then Fashion-MNIST on the seed CNN with one shared output layer.
    ///   It runs finetune, frozen, l2, ewc and lwf, with joint as the upper reference.
    /// - `permuted-mnist`: ten permutations on an MLP with two hidden layers of 400 and one
    ///   shared output layer, running finetune, l2, ewc, online-ewc, lwf and joint.
    /// - `split-mnist`: five digit pairs on the same MLP with one output layer per task
    ///   (task-incremental), running the permuted-mnist methods plus frozen.
    /// - `rotated-mnist`: five rotations from 0° to 120° on the same MLP with one shared
    ///   output layer, running the permuted-mnist methods.
    ///
    /// All four train with Adam at 1e-3, batch 64, one epoch per task, seed 0, and the default
    /// method parameters.
    pub fn preset(name: &str) -> Result<Self, ConfigError> {
        use Method::{Ewc, Finetune, Frozen, Joint, L2, Lwf, OnlineEwc};
        let (sequence, architecture, head, methods) = match name {
            "seed" => (
                SequenceConfig::Seed,
                Architecture::SeedCnn,
                HeadMode::Shared,
                vec![Finetune, Frozen, L2, Ewc, Lwf, Joint],
            ),
            "permuted-mnist" => (
                SequenceConfig::PermutedMnist {
                    tasks: DEFAULT_PERMUTED_TASKS,
                },
                Architecture::default_mlp(),
                HeadMode::Shared,
                vec![Finetune, L2, Ewc, OnlineEwc, Lwf, Joint],
            ),
            "split-mnist" => (
                SequenceConfig::SplitMnist,
                Architecture::default_mlp(),
                HeadMode::PerTask,
                vec![Finetune, Frozen, L2, Ewc, OnlineEwc, Lwf, Joint],
            ),
            "rotated-mnist" => (
                SequenceConfig::RotatedMnist {
                    angles: default_rotation_angles(),
                },
                Architecture::default_mlp(),
                HeadMode::Shared,
                vec![Finetune, L2, Ewc, OnlineEwc, Lwf, Joint],
            ),
            _ => {
                return Err(ConfigError::UnknownPreset {
                    name: name.to_owned(),
                });
            }
        };
        Ok(Self {
            name: name.to_owned(),
            sequence,
            architecture,
            head,
            training: TrainingConfig::default(),
            methods: methods.into_iter().map(Method::default_spec).collect(),
            seed: 0,
            data_dir: None,
        })
    }

    /// Reads, parses and validates an experiment file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Self = serde_json::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        config
            .validate()
            .map_err(|source| ConfigError::InvalidFile {
                path: path.to_owned(),
                source: Box::new(source),
            })?;
        Ok(config)
    }

    /// Validates the experiment and writes it as pretty JSON, whole or not at all.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        self.validate()?;
        let mut text = serde_json::to_string_pretty(self).map_err(ConfigError::Encode)?;
        text.push('\n');
        super::write_atomically(path, text.as_bytes()).map_err(|source| ConfigError::Write {
            path: path.to_owned(),
            source,
        })
    }

    /// Checks every value against its valid range; the error names the first invalid field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.name.trim().is_empty() {
            return Err(invalid("name", "\"\"", "a non-empty name"));
        }
        self.sequence.validate()?;
        validate_architecture(&self.architecture)?;
        self.training.validate()?;
        if self.methods.is_empty() {
            return Err(invalid("methods", "[]", "at least one method"));
        }
        for (index, spec) in self.methods.iter().enumerate() {
            spec.validate_params(&format!("methods[{index}]."))?;
        }
        Ok(())
    }

    /// Rebases relative paths (`data_dir` and custom dataset files) onto `base_dir`, usually the
    /// directory of the experiment file, so a file and its data can move together.
    pub fn resolve_relative_paths(&mut self, base_dir: &Path) {
        let rebase = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = base_dir.join(&*path);
            }
        };
        if let Some(dir) = &mut self.data_dir {
            rebase(dir);
        }
        if let SequenceConfig::Custom { datasets } = &mut self.sequence {
            datasets
                .iter_mut()
                .flat_map(DatasetSource::paths_mut)
                .for_each(rebase);
        }
    }
}

fn validate_architecture(architecture: &Architecture) -> Result<(), ConfigError> {
    if let Architecture::Mlp { hidden } = architecture {
        for (index, width) in hidden.iter().enumerate() {
            check_count(&format!("architecture.hidden[{index}]"), *width)?;
        }
    }
    Ok(())
}

/// Replaces the methods with those named in a comma-separated list (`--methods finetune,ewc`),
/// in the order given.
///
/// A listed method that the experiment already runs keeps its entries and their parameters,
/// including any sweep, so this can be applied before or after [`apply_set`]. A listed method
/// that it does not run is added with default parameters. On error the experiment is unchanged.
pub fn apply_methods_list(config: &mut ExperimentConfig, list: &str) -> Result<(), ConfigError> {
    let mut chosen: Vec<Method> = Vec::new();
    for name in list.split(',').map(str::trim) {
        if name.is_empty() {
            let expected = format!("a comma-separated list of {}", Method::names_joined());
            return Err(invalid("methods", list, &expected));
        }
        let method: Method = name.parse()?;
        if chosen.contains(&method) {
            return Err(invalid("methods", list, "each method at most once"));
        }
        chosen.push(method);
    }

    let mut methods = Vec::new();
    for method in chosen {
        let existing: Vec<MethodSpec> = config
            .methods
            .iter()
            .filter(|spec| spec.method() == method)
            .cloned()
            .collect();
        if existing.is_empty() {
            methods.push(method.default_spec());
        } else {
            methods.extend(existing);
        }
    }
    config.methods = methods;
    Ok(())
}

/// Applies one `--set KEY=VALUE[,VALUE...]` override.
///
/// Keys are `head`, `seed`, `training.<field>` (see [`TrainingConfig::KEYS`]) and method
/// parameters such as `ewc.lambda`, `ewc.fisher` or `online-ewc.gamma`. A list of values sweeps
/// a method parameter: every entry of that method is replaced by one copy per value, so two
/// sweeps over the same method give every combination. Other keys take exactly one value.
///
/// A method parameter for a method the experiment does not run is an error rather than adding
/// the method, because it usually means the method was left out of `--methods` by mistake.
/// Every value is checked before anything changes, so on error the experiment is unchanged.
pub fn apply_set(config: &mut ExperimentConfig, assignment: &str) -> Result<(), ConfigError> {
    let malformed = || ConfigError::MalformedSet {
        input: assignment.to_owned(),
    };
    let (key, list) = assignment.split_once('=').ok_or_else(malformed)?;
    let key = key.trim();
    let values: Vec<&str> = list.split(',').map(str::trim).collect();
    if key.is_empty() || values.iter().any(|value| value.is_empty()) {
        return Err(malformed());
    }

    if let Some((prefix, param)) = key.split_once('.')
        && let Ok(method) = prefix.parse::<Method>()
    {
        return sweep_method_param(config, method, param, &values);
    }

    let [value] = values.as_slice() else {
        return Err(ConfigError::NotSweepable {
            key: key.to_owned(),
            count: values.len(),
        });
    };
    match key.split_once('.') {
        Some(("training", field)) => config.training.set_field(field, value),
        None if key == "head" => {
            config.head = parse_named(key, value)?;
            Ok(())
        }
        None if key == "seed" => {
            config.seed = value
                .parse()
                .map_err(|_| invalid(key, value, "an integer >= 0"))?;
            Ok(())
        }
        _ => Err(ConfigError::UnknownKey {
            key: key.to_owned(),
            valid: all_keys_joined(),
        }),
    }
}

fn sweep_method_param(
    config: &mut ExperimentConfig,
    method: Method,
    param: &str,
    values: &[&str],
) -> Result<(), ConfigError> {
    let key = format!("{method}.{param}");
    if !method.param_names().contains(&param) {
        return Err(ConfigError::UnknownKey {
            key,
            valid: method_keys_joined(method),
        });
    }
    if !config.methods.iter().any(|spec| spec.method() == method) {
        let listed: Vec<&str> = config
            .methods
            .iter()
            .map(|spec| spec.method().name())
            .collect();
        return Err(ConfigError::MethodNotListed {
            key,
            method,
            listed: listed.join(", "),
        });
    }

    let mut expanded = Vec::with_capacity(config.methods.len() + values.len());
    for spec in &config.methods {
        if spec.method() != method {
            expanded.push(spec.clone());
            continue;
        }
        for value in values {
            let mut swept = spec.clone();
            swept.set_param(param, value)?;
            expanded.push(swept);
        }
    }
    config.methods = expanded;
    Ok(())
}

fn method_keys_joined(method: Method) -> String {
    let names = method.param_names();
    if names.is_empty() {
        return format!("none, because {method} has no parameters");
    }
    names
        .iter()
        .map(|name| format!("{method}.{name}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn all_keys_joined() -> String {
    let mut keys = vec!["head".to_owned(), "seed".to_owned()];
    keys.extend(
        TrainingConfig::KEYS
            .iter()
            .map(|field| format!("training.{field}")),
    );
    for method in Method::ALL {
        keys.extend(
            method
                .param_names()
                .iter()
                .map(|name| format!("{method}.{name}")),
        );
    }
    keys.join(", ")
}

/// Enums written as fixed lowercase names in files and on the command line.
trait Named: Sized + Copy + 'static {
    const ALL: &'static [Self];
    fn name(self) -> &'static str;
}

impl Named for HeadMode {
    const ALL: &'static [Self] = &[Self::Shared, Self::PerTask];
    fn name(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::PerTask => "per-task",
        }
    }
}

impl Named for Optimizer {
    const ALL: &'static [Self] = &[Self::Adam, Self::Sgd];
    fn name(self) -> &'static str {
        match self {
            Self::Adam => "adam",
            Self::Sgd => "sgd",
        }
    }
}

impl Named for FisherKind {
    const ALL: &'static [Self] = &[Self::Exact, Self::Sampled, Self::Empirical];
    fn name(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Sampled => "sampled",
            Self::Empirical => "empirical",
        }
    }
}

impl Named for RecordWeights {
    const ALL: &'static [Self] = &[Self::Auto, Self::On, Self::Off];
    fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::On => "on",
            Self::Off => "off",
        }
    }
}

impl HeadMode {
    /// Name in files and on the command line.
    pub fn name(self) -> &'static str {
        Named::name(self)
    }
}

impl Optimizer {
    /// Name in files and on the command line.
    pub fn name(self) -> &'static str {
        Named::name(self)
    }
}

impl FisherKind {
    /// Name in files and on the command line.
    pub fn name(self) -> &'static str {
        Named::name(self)
    }
}

fn parse_named<T: Named>(field: &str, value: &str) -> Result<T, ConfigError> {
    T::ALL
        .iter()
        .copied()
        .find(|candidate| candidate.name() == value)
        .ok_or_else(|| {
            let names: Vec<&str> = T::ALL.iter().map(|candidate| candidate.name()).collect();
            invalid(field, value, &format!("one of {}", names.join(", ")))
        })
}

/// Parses an on/off setting: `on` or `true`, `off` or `false`.
fn parse_switch(field: &str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err(invalid(field, value, "on or off")),
    }
}

/// The valid ranges of floating-point settings. NaN and infinities are outside all of them.
#[derive(Debug, Clone, Copy)]
enum Range {
    /// [0, ∞): penalty strengths and weights, where 0 switches the term off.
    NonNegative,
    /// (0, ∞): learning rates and temperatures.
    Positive,
    /// (0, 1]: decay factors.
    UnitInterval,
    /// [0, 1): momentum, where 1 would never forget a gradient.
    Momentum,
}

impl Range {
    fn contains(self, value: f64) -> bool {
        value.is_finite()
            && match self {
                Self::NonNegative => value >= 0.0,
                Self::Positive => value > 0.0,
                Self::UnitInterval => value > 0.0 && value <= 1.0,
                Self::Momentum => (0.0..1.0).contains(&value),
            }
    }

    fn expected(self) -> &'static str {
        match self {
            Self::NonNegative => "a finite number >= 0",
            Self::Positive => "a finite number > 0",
            Self::UnitInterval => "a number in (0, 1]",
            Self::Momentum => "a number in [0, 1)",
        }
    }
}

fn invalid(field: &str, value: impl fmt::Display, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_owned(),
        value: value.to_string(),
        expected: expected.to_owned(),
    }
}

fn check_number(field: &str, value: f64, range: Range) -> Result<(), ConfigError> {
    if range.contains(value) {
        Ok(())
    } else {
        Err(invalid(field, value, range.expected()))
    }
}

fn parse_number(field: &str, text: &str, range: Range) -> Result<f64, ConfigError> {
    let value: f64 = text
        .parse()
        .map_err(|_| invalid(field, text, range.expected()))?;
    check_number(field, value, range)?;
    Ok(value)
}

fn check_count(field: &str, value: usize) -> Result<(), ConfigError> {
    if value > 0 {
        Ok(())
    } else {
        Err(invalid(field, value, "an integer >= 1"))
    }
}

fn check_optional_count(field: &str, value: Option<usize>) -> Result<(), ConfigError> {
    match value {
        Some(0) => Err(invalid(field, 0, "an integer >= 1 or `all`")),
        _ => Ok(()),
    }
}

fn parse_count(field: &str, text: &str) -> Result<usize, ConfigError> {
    match text.parse::<usize>() {
        Ok(value) if value > 0 => Ok(value),
        _ => Err(invalid(field, text, "an integer >= 1")),
    }
}

fn parse_count_or_all(field: &str, text: &str) -> Result<Option<usize>, ConfigError> {
    if text == "all" {
        return Ok(None);
    }
    match text.parse::<usize>() {
        Ok(value) if value > 0 => Ok(Some(value)),
        _ => Err(invalid(field, text, "an integer >= 1 or `all`")),
    }
}

/// Serde format for an optional count where `None` means "all": written as a number or the
/// string `"all"`, read from either (and from `null`).
mod count_or_all {
    use std::fmt;

    use serde::de::{self, Unexpected, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        value: &Option<usize>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(count) => serializer.serialize_u64(*count as u64),
            None => serializer.serialize_str("all"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_any(CountOrAllVisitor)
    }

    struct CountOrAllVisitor;

    impl<'de> Visitor<'de> for CountOrAllVisitor {
        type Value = Option<usize>;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("an integer >= 1 or \"all\"")
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
            match usize::try_from(value) {
                Ok(count) if count > 0 => Ok(Some(count)),
                _ => Err(E::invalid_value(Unexpected::Unsigned(value), &self)),
            }
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
            match u64::try_from(value) {
                Ok(value) => self.visit_u64(value),
                Err(_) => Err(E::invalid_value(Unexpected::Signed(value), &self)),
            }
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
            if value == "all" {
                Ok(None)
            } else {
                Err(E::invalid_value(Unexpected::Str(value), &self))
            }
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_preset() -> ExperimentConfig {
        ExperimentConfig::preset("seed").expect("the seed preset should exist")
    }

    fn method_names(config: &ExperimentConfig) -> Vec<&'static str> {
        config
            .methods
            .iter()
            .map(|spec| spec.method().name())
            .collect()
    }

    fn labels(config: &ExperimentConfig) -> Vec<String> {
        expand_runs(config)
            .into_iter()
            .map(|run| run.label)
            .collect()
    }

    fn parse(json: &str) -> Result<ExperimentConfig, serde_json::Error> {
        serde_json::from_str(json)
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ewc-workbench-config-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch directory should be creatable");
        dir
    }

    #[test]
    fn seed_preset_matches_seed_experiment() {
        let config = seed_preset();

        assert_eq!(
            config.sequence,
            SequenceConfig::Seed,
            "MNIST then Fashion-MNIST"
        );
        assert_eq!(config.architecture, Architecture::SeedCnn, "seed CNN");
        assert_eq!(config.head, HeadMode::Shared, "one shared output layer");
        assert_eq!(config.training.optimizer, Optimizer::Adam, "Adam");
        assert_eq!(config.training.learning_rate, 1e-3, "learning rate 1e-3");
        assert_eq!(config.training.batch_size, 64, "batch 64");
        assert_eq!(config.training.epochs, 1, "one epoch per task");
        assert_eq!(
            method_names(&config),
            ["finetune", "frozen", "l2", "ewc", "lwf", "joint"],
            "seed methods with joint as the reference"
        );
        assert_eq!(
            config.sequence.task_names(),
            ["mnist", "fashion-mnist"],
            "task names"
        );
    }

    #[test]
    fn presets_validate_and_pick_heads() {
        for name in PRESETS {
            let config = ExperimentConfig::preset(name).expect("every listed preset exists");
            config
                .validate()
                .unwrap_or_else(|error| panic!("preset {name} is invalid: {error}"));
            assert_eq!(config.name, name, "preset {name} is named after itself");
        }

        let permuted = ExperimentConfig::preset("permuted-mnist").expect("preset exists");
        assert_eq!(
            permuted.sequence.task_count(),
            10,
            "permuted MNIST has 10 tasks"
        );
        assert_eq!(
            permuted.architecture,
            Architecture::default_mlp(),
            "MLP 2x400"
        );
        assert_eq!(
            permuted.head,
            HeadMode::Shared,
            "permuted MNIST shares the head"
        );

        let split = ExperimentConfig::preset("split-mnist").expect("preset exists");
        assert_eq!(split.sequence.task_count(), 5, "split MNIST has 5 tasks");
        assert_eq!(
            split.head,
            HeadMode::PerTask,
            "split MNIST is task-incremental"
        );

        let rotated = ExperimentConfig::preset("rotated-mnist").expect("preset exists");
        assert_eq!(rotated.sequence.task_count(), 5, "five default rotations");
        assert_eq!(
            rotated.head,
            HeadMode::Shared,
            "rotated MNIST shares the head"
        );
    }

    #[test]
    fn unknown_preset_lists_valid_names() {
        let error = ExperimentConfig::preset("cifar").expect_err("cifar is no preset");

        let message = error.to_string();
        assert!(message.contains("`cifar`"), "names the input: {message}");
        assert!(
            message.contains("seed, permuted-mnist"),
            "lists presets: {message}"
        );
    }

    #[test]
    fn config_round_trips_through_json() {
        for name in PRESETS {
            let config = ExperimentConfig::preset(name).expect("preset exists");
            let json = serde_json::to_string_pretty(&config).expect("config serializes");

            let parsed = parse(&json).expect("written config parses");

            assert_eq!(parsed, config, "preset {name} survives a round trip");
        }
    }

    #[test]
    fn module_doc_example_parses() {
        let json = r#"{
          "name": "seed",
          "sequence": { "kind": "seed" },
          "architecture": { "kind": "seed-cnn" },
          "head": "shared",
          "training": { "optimizer": "adam", "learning_rate": 0.001, "batch_size": 64, "epochs": 1 },
          "methods": [
            { "method": "finetune" },
            { "method": "ewc", "lambda": 1000.0, "fisher": "exact", "fisher_samples": 1000 },
            { "method": "lwf", "alpha": 1.0, "temperature": 2.0 }
          ],
          "seed": 0
        }"#;

        let config = parse(json).expect("the example in the module docs parses");

        config
            .validate()
            .expect("the example in the module docs is valid");
        assert_eq!(
            labels(&config),
            ["finetune", "ewc λ=1000", "lwf α=1 T=2"],
            "its runs"
        );
    }

    #[test]
    fn minimal_file_takes_defaults() {
        let json = r#"{
            "sequence": { "kind": "permuted-mnist" },
            "architecture": { "kind": "mlp" },
            "methods": [{ "method": "ewc" }, { "method": "lwf", "alpha": 0.5 }]
        }"#;

        let config = parse(json).expect("minimal file parses");

        assert_eq!(config.name, "experiment", "default name");
        assert_eq!(config.head, HeadMode::Shared, "default head");
        assert_eq!(
            config.training,
            TrainingConfig::default(),
            "default training"
        );
        assert_eq!(config.seed, 0, "default seed");
        assert_eq!(
            config.sequence.task_count(),
            DEFAULT_PERMUTED_TASKS,
            "default task count"
        );
        assert_eq!(
            config.methods[0],
            Method::Ewc.default_spec(),
            "ewc takes every default"
        );
        assert_eq!(
            config.methods[1],
            MethodSpec::Lwf {
                alpha: 0.5,
                temperature: DEFAULT_LWF_TEMPERATURE
            },
            "lwf keeps alpha and takes the default temperature"
        );
    }

    #[test]
    fn unknown_fields_are_rejected_by_name() {
        let cases = [
            (
                r#"{"sequence":{"kind":"seed"},"architecture":{"kind":"seed-cnn"},"methods":[],"epochs":2}"#,
                "`epochs`",
            ),
            (
                r#"{"sequence":{"kind":"seed"},"architecture":{"kind":"seed-cnn"},"methods":[],"training":{"lr":0.1}}"#,
                "`lr`",
            ),
            (
                r#"{"sequence":{"kind":"seed"},"architecture":{"kind":"seed-cnn"},"methods":[{"method":"ewc","lamda":10}]}"#,
                "`lamda`",
            ),
            (
                r#"{"sequence":{"kind":"seed","tasks":3},"architecture":{"kind":"seed-cnn"},"methods":[]}"#,
                "`tasks`",
            ),
            (
                r#"{"sequence":{"kind":"seed"},"architecture":{"kind":"seed-cnn"},"methods":[{"method":"ewc-online"}]}"#,
                "`ewc-online`",
            ),
        ];
        for (json, field) in cases {
            let error = parse(json).expect_err("unknown field should be rejected");
            let message = error.to_string();
            assert!(
                message.contains(field),
                "message should name {field}: {message}"
            );
            assert!(
                message.contains("line"),
                "message should give the line: {message}"
            );
        }
    }

    #[test]
    fn parameterless_method_rejects_parameters() {
        let json = r#"{"sequence":{"kind":"seed"},"architecture":{"kind":"seed-cnn"},
            "methods":[{"method":"finetune","lambda":1}]}"#;

        let error = parse(json).expect_err("finetune takes no lambda");

        assert!(
            error.to_string().contains("`lambda`"),
            "names the field: {error}"
        );
    }

    #[test]
    fn fisher_samples_accepts_count_or_all() {
        let entry = |samples: &str| {
            let json = format!(r#"{{"method":"ewc","fisher_samples":{samples}}}"#);
            serde_json::from_str::<MethodSpec>(&json)
        };

        let all = entry(r#""all""#).expect("\"all\" is accepted");
        assert!(
            matches!(
                all,
                MethodSpec::Ewc {
                    fisher_samples: None,
                    ..
                }
            ),
            "\"all\" means every sample: {all:?}"
        );
        let json = serde_json::to_value(&all).expect("spec serializes");
        assert_eq!(json["fisher_samples"], "all", "None is written as \"all\"");

        let counted = entry("500").expect("a count is accepted");
        assert!(
            matches!(
                counted,
                MethodSpec::Ewc {
                    fisher_samples: Some(500),
                    ..
                }
            ),
            "a count is kept: {counted:?}"
        );

        for rejected in ["0", "-5", r#""some""#, "2.5"] {
            let error = entry(rejected).expect_err("invalid sample count should be rejected");
            assert!(
                error.to_string().contains("an integer >= 1 or \"all\""),
                "{rejected} gets the expected form: {error}"
            );
        }
    }

    #[test]
    fn validation_names_field_and_expectation() {
        type Corruption = Box<dyn Fn(&mut ExperimentConfig)>;
        let cases: Vec<(&str, Corruption, &str)> = vec![
            (
                "training.batch_size",
                Box::new(|c| c.training.batch_size = 0),
                "an integer >= 1",
            ),
            (
                "training.learning_rate",
                Box::new(|c| c.training.learning_rate = 0.0),
                "> 0",
            ),
            (
                "training.learning_rate",
                Box::new(|c| c.training.learning_rate = f64::NAN),
                "finite",
            ),
            (
                "training.momentum",
                Box::new(|c| c.training.momentum = 1.0),
                "[0, 1)",
            ),
            (
                "training.epochs",
                Box::new(|c| c.training.epochs = 0),
                "an integer >= 1",
            ),
            (
                "training.eval_every",
                Box::new(|c| c.training.eval_every = 0),
                "an integer >= 1",
            ),
            (
                "training.limit",
                Box::new(|c| c.training.limit = Some(0)),
                "or `all`",
            ),
            ("name", Box::new(|c| c.name = " ".to_owned()), "non-empty"),
            (
                "methods",
                Box::new(|c| c.methods.clear()),
                "at least one method",
            ),
            (
                "methods[1].lambda",
                Box::new(|c| c.methods[1] = MethodSpec::L2 { lambda: -1.0 }),
                ">= 0",
            ),
            (
                "methods[0].gamma",
                Box::new(|c| {
                    c.methods[0] = MethodSpec::OnlineEwc {
                        lambda: 1.0,
                        gamma: 0.0,
                        fisher: FisherKind::Exact,
                        fisher_samples: None,
                    }
                }),
                "(0, 1]",
            ),
            (
                "methods[0].temperature",
                Box::new(|c| {
                    c.methods[0] = MethodSpec::Lwf {
                        alpha: 1.0,
                        temperature: 0.0,
                    }
                }),
                "> 0",
            ),
            (
                "methods[0].fisher_samples",
                Box::new(|c| {
                    c.methods[0] = MethodSpec::Ewc {
                        lambda: 1.0,
                        fisher: FisherKind::Exact,
                        fisher_samples: Some(0),
                    }
                }),
                "an integer >= 1 or `all`",
            ),
            (
                "sequence.tasks",
                Box::new(|c| c.sequence = SequenceConfig::PermutedMnist { tasks: 0 }),
                "an integer >= 1",
            ),
            (
                "sequence.angles",
                Box::new(|c| c.sequence = SequenceConfig::RotatedMnist { angles: Vec::new() }),
                "at least one angle",
            ),
            (
                "architecture.hidden[1]",
                Box::new(|c| {
                    c.architecture = Architecture::Mlp {
                        hidden: vec![400, 0],
                    }
                }),
                "an integer >= 1",
            ),
        ];

        for (field, corrupt, expected) in cases {
            let mut config = seed_preset();
            corrupt(&mut config);

            let error = config
                .validate()
                .expect_err("corrupted config should be invalid");

            let message = error.to_string();
            assert!(
                message.contains(field),
                "{field}: message should name it: {message}"
            );
            assert!(
                message.contains(expected),
                "{field}: should expect {expected}: {message}"
            );
        }
    }

    #[test]
    fn custom_sequence_needs_unique_names() {
        let dataset = |name: &str| DatasetSource::Csv {
            name: name.to_owned(),
            train: PathBuf::from("train.csv"),
            test: PathBuf::from("test.csv"),
        };
        let mut config = seed_preset();
        config.sequence = SequenceConfig::Custom {
            datasets: vec![dataset("a"), dataset("a")],
        };

        let error = config
            .validate()
            .expect_err("duplicate names should be invalid");

        assert!(
            error.to_string().contains("sequence.datasets[1].name"),
            "names the second dataset: {error}"
        );
    }

    #[test]
    fn methods_list_sets_order_and_defaults() {
        let mut config = seed_preset();

        apply_methods_list(&mut config, "ewc, finetune,online-ewc").expect("valid list");

        assert_eq!(
            method_names(&config),
            ["ewc", "finetune", "online-ewc"],
            "list order"
        );
        assert_eq!(
            config.methods[2],
            Method::OnlineEwc.default_spec(),
            "added with defaults"
        );
    }

    #[test]
    fn methods_list_keeps_existing_sweeps() {
        let mut config = seed_preset();
        apply_set(&mut config, "ewc.lambda=10,100").expect("valid sweep");

        apply_methods_list(&mut config, "finetune,ewc").expect("valid list");

        assert_eq!(
            labels(&config),
            ["finetune", "ewc λ=10", "ewc λ=100"],
            "sweep survives"
        );
    }

    #[test]
    fn methods_list_rejects_unknown_and_repeated_names() {
        let mut config = seed_preset();
        let before = config.clone();

        let unknown = apply_methods_list(&mut config, "finetune,si").expect_err("si is unknown");
        let message = unknown.to_string();
        assert!(message.contains("`si`"), "names the method: {message}");
        assert!(
            message.contains("finetune, joint, frozen, l2, ewc, online-ewc, lwf"),
            "lists the valid methods: {message}"
        );

        let repeated = apply_methods_list(&mut config, "ewc,ewc").expect_err("ewc twice");
        assert!(
            repeated.to_string().contains("at most once"),
            "says why: {repeated}"
        );

        let empty = apply_methods_list(&mut config, "ewc,,l2").expect_err("empty name");
        assert!(
            empty.to_string().contains("comma-separated"),
            "says the form: {empty}"
        );

        assert_eq!(
            config, before,
            "a rejected list leaves the experiment unchanged"
        );
    }

    #[test]
    fn set_sweeps_method_parameter() {
        let mut config = seed_preset();

        apply_set(&mut config, "ewc.lambda=100, 1000,1e4").expect("valid sweep");

        assert_eq!(
            labels(&config),
            [
                "finetune",
                "frozen",
                "l2 λ=1",
                "ewc λ=100",
                "ewc λ=1000",
                "ewc λ=10000",
                "lwf α=1 T=2",
                "joint"
            ],
            "one ewc run per value, in place of the original"
        );
    }

    #[test]
    fn two_sweeps_give_every_combination() {
        let mut config = seed_preset();
        apply_methods_list(&mut config, "ewc").expect("valid list");

        apply_set(&mut config, "ewc.lambda=10,100").expect("valid sweep");
        apply_set(&mut config, "ewc.fisher=exact,empirical").expect("valid sweep");

        assert_eq!(
            labels(&config),
            [
                "ewc λ=10 fisher=exact",
                "ewc λ=10 fisher=empirical",
                "ewc λ=100 fisher=exact",
                "ewc λ=100 fisher=empirical"
            ],
            "labels name the parameters that differ"
        );
    }

    #[test]
    fn identical_runs_get_numbered_labels() {
        let mut config = seed_preset();
        config.methods = vec![
            MethodSpec::Finetune,
            MethodSpec::Finetune,
            MethodSpec::Joint,
        ];

        assert_eq!(
            labels(&config),
            ["finetune", "finetune (2)", "joint"],
            "numbered repeat"
        );
    }

    #[test]
    fn set_parses_every_method_parameter() {
        let mut config = seed_preset();
        apply_methods_list(&mut config, "ewc,online-ewc,lwf,l2").expect("valid list");

        for assignment in [
            "ewc.fisher=sampled",
            "ewc.fisher_samples=all",
            "online-ewc.lambda=50",
            "online-ewc.gamma=0.9",
            "online-ewc.fisher=empirical",
            "online-ewc.fisher_samples=200",
            "lwf.alpha=0.5",
            "lwf.temperature=4",
            "l2.lambda=0",
        ] {
            apply_set(&mut config, assignment)
                .unwrap_or_else(|error| panic!("{assignment} should apply: {error}"));
        }

        let expected = vec![
            MethodSpec::Ewc {
                lambda: DEFAULT_EWC_LAMBDA,
                fisher: FisherKind::Sampled,
                fisher_samples: None,
            },
            MethodSpec::OnlineEwc {
                lambda: 50.0,
                gamma: 0.9,
                fisher: FisherKind::Empirical,
                fisher_samples: Some(200),
            },
            MethodSpec::Lwf {
                alpha: 0.5,
                temperature: 4.0,
            },
            MethodSpec::L2 { lambda: 0.0 },
        ];
        assert_eq!(
            config.methods, expected,
            "every parameter set from its text"
        );
    }

    #[test]
    fn set_rejects_invalid_method_values() {
        let cases = [
            ("ewc.lambda=100,-1", "ewc.lambda", "a finite number >= 0"),
            ("ewc.lambda=ten", "ewc.lambda", "a finite number >= 0"),
            ("ewc.lambda=inf", "ewc.lambda", "a finite number >= 0"),
            (
                "ewc.fisher=diagonal",
                "ewc.fisher",
                "one of exact, sampled, empirical",
            ),
            (
                "ewc.fisher_samples=0",
                "ewc.fisher_samples",
                "an integer >= 1 or `all`",
            ),
            (
                "lwf.temperature=0",
                "lwf.temperature",
                "a finite number > 0",
            ),
        ];
        for (assignment, key, expected) in cases {
            let mut config = seed_preset();
            let before = config.clone();

            let error = apply_set(&mut config, assignment).expect_err("invalid value");

            let message = error.to_string();
            assert!(
                message.contains(key),
                "{assignment}: names {key}: {message}"
            );
            assert!(
                message.contains(expected),
                "{assignment}: expects {expected}: {message}"
            );
            assert_eq!(
                config, before,
                "{assignment}: experiment unchanged after the error"
            );
        }
    }

    #[test]
    fn set_rejects_parameter_of_absent_method() {
        let mut config = seed_preset();
        apply_methods_list(&mut config, "finetune,l2").expect("valid list");

        let error = apply_set(&mut config, "ewc.lambda=100").expect_err("ewc is not listed");

        let message = error.to_string();
        assert!(message.contains("ewc.lambda"), "names the key: {message}");
        assert!(
            message.contains("(finetune, l2)"),
            "lists the methods: {message}"
        );
        assert!(
            message.contains("--methods"),
            "says how to fix it: {message}"
        );
    }

    #[test]
    fn set_rejects_unknown_keys() {
        let mut config = seed_preset();

        let unknown_param = apply_set(&mut config, "ewc.gamma=0.5").expect_err("ewc has no gamma");
        let message = unknown_param.to_string();
        assert!(message.contains("`ewc.gamma`"), "names the key: {message}");
        assert!(
            message.contains("ewc.lambda, ewc.fisher, ewc.fisher_samples"),
            "{message}"
        );

        let no_params = apply_set(&mut config, "finetune.lambda=1").expect_err("no parameters");
        assert!(
            no_params.to_string().contains("finetune has no parameters"),
            "{no_params}"
        );

        let unknown_key = apply_set(&mut config, "trainig.epochs=2").expect_err("typo");
        let message = unknown_key.to_string();
        assert!(
            message.contains("`trainig.epochs`"),
            "names the key: {message}"
        );
        assert!(
            message.contains("training.epochs"),
            "lists valid keys: {message}"
        );

        let malformed = apply_set(&mut config, "ewc.lambda").expect_err("no value");
        assert!(
            malformed.to_string().contains("KEY=VALUE"),
            "gives the form: {malformed}"
        );

        let empty_value = apply_set(&mut config, "ewc.lambda=1,").expect_err("empty value");
        assert!(
            empty_value.to_string().contains("KEY=VALUE"),
            "gives the form: {empty_value}"
        );
    }

    #[test]
    fn set_changes_training_head_and_seed() {
        let mut config = seed_preset();

        for assignment in [
            "training.learning_rate=0.01",
            "training.optimizer=sgd",
            "training.momentum=0.5",
            "training.batch_size=128",
            "training.epochs=3",
            "training.limit=2000",
            "training.eval_every=50",
            "training.eval_limit=all",
            "training.insights=off",
            "training.record_weights=on",
            "head=per-task",
            "seed=42",
        ] {
            apply_set(&mut config, assignment)
                .unwrap_or_else(|error| panic!("{assignment} should apply: {error}"));
        }

        let expected = TrainingConfig {
            optimizer: Optimizer::Sgd,
            learning_rate: 0.01,
            momentum: 0.5,
            batch_size: 128,
            epochs: 3,
            limit: Some(2000),
            eval_every: 50,
            eval_limit: None,
            insights: false,
            record_weights: RecordWeights::On,
        };
        assert_eq!(
            config.training, expected,
            "every training field set from its text"
        );
        assert_eq!(config.head, HeadMode::PerTask, "head set");
        assert_eq!(config.seed, 42, "seed set");
    }

    #[test]
    fn set_rejects_lists_and_bad_values_for_settings() {
        let mut config = seed_preset();

        let list = apply_set(&mut config, "training.batch_size=32,64").expect_err("no sweep");
        let message = list.to_string();
        assert!(
            message.contains("`training.batch_size` takes one value"),
            "{message}"
        );

        let zero = apply_set(&mut config, "training.batch_size=0").expect_err("batch 0");
        assert!(
            zero.to_string().contains("training.batch_size = 0"),
            "names it: {zero}"
        );

        let head = apply_set(&mut config, "head=growing").expect_err("no such head mode");
        assert!(
            head.to_string().contains("one of shared, per-task"),
            "lists modes: {head}"
        );

        let rate = apply_set(&mut config, "training.learning_rate=-1").expect_err("negative");
        assert!(
            rate.to_string().contains("a finite number > 0"),
            "gives the range: {rate}"
        );
    }

    #[test]
    fn insight_settings_parse_and_apply_by_size() {
        let mut config = seed_preset();
        assert!(config.training.insights, "insights are on by default");
        assert_eq!(
            config.training.record_weights,
            RecordWeights::Auto,
            "auto by default"
        );

        let switch = apply_set(&mut config, "training.insights=maybe").expect_err("not a switch");
        assert!(
            switch.to_string().contains("expected on or off"),
            "gives the values: {switch}"
        );
        let record = apply_set(&mut config, "training.record_weights=yes").expect_err("unknown");
        assert!(
            record.to_string().contains("one of auto, on, off"),
            "lists values: {record}"
        );

        let seed_cnn = 54_410;
        let mlp = 478_410;
        assert!(
            RecordWeights::Auto.applies_to(seed_cnn),
            "auto stores the seed CNN"
        );
        assert!(
            !RecordWeights::Auto.applies_to(mlp),
            "auto skips the 2x400 MLP"
        );
        assert!(RecordWeights::On.applies_to(mlp), "on stores any network");
        assert!(
            !RecordWeights::Off.applies_to(seed_cnn),
            "off stores nothing"
        );

        let older: TrainingConfig =
            serde_json::from_str(r#"{"epochs": 2}"#).expect("a file without the new fields reads");
        assert!(older.insights, "missing insights reads as on");
        assert_eq!(
            older.record_weights,
            RecordWeights::Auto,
            "missing record_weights is auto"
        );
    }

    #[test]
    fn params_use_command_line_keys() {
        let params = Method::Ewc.default_spec().params();

        assert_eq!(params["ewc.lambda"], 1000.0, "lambda under ewc.lambda");
        assert_eq!(params["ewc.fisher"], "exact", "fisher under ewc.fisher");
        assert_eq!(
            params["ewc.fisher_samples"], 1000,
            "sample count as an integer"
        );
        assert_eq!(params.len(), 3, "only the ewc parameters");
        assert!(
            MethodSpec::Joint.params().is_empty(),
            "joint has no parameters"
        );
    }

    #[test]
    fn save_then_load_returns_same_config() {
        let dir = scratch_dir("save-load");
        let path = dir.join("experiment.json");
        let mut config = seed_preset();
        apply_set(&mut config, "ewc.lambda=10,100").expect("valid sweep");

        config.save(&path).expect("save should succeed");
        let loaded = ExperimentConfig::load(&path).expect("load should succeed");

        assert_eq!(loaded, config, "loaded experiment equals the saved one");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn load_errors_name_file_and_position() {
        let dir = scratch_dir("load-errors");

        let missing = dir.join("missing.json");
        let error = ExperimentConfig::load(&missing).expect_err("file does not exist");
        assert!(
            error.to_string().contains("missing.json"),
            "names the file: {error}"
        );

        let broken = dir.join("broken.json");
        fs::write(
            &broken,
            "{\n  \"sequence\": {\"kind\": \"seed\"},\n  \"methods\": [}\n",
        )
        .expect("scratch file is writable");
        let error = ExperimentConfig::load(&broken).expect_err("invalid JSON");
        let message = error.to_string();
        assert!(message.contains("broken.json"), "names the file: {message}");
        assert!(message.contains("line 3"), "gives the line: {message}");

        let out_of_range = dir.join("range.json");
        let json = r#"{"sequence":{"kind":"seed"},"architecture":{"kind":"seed-cnn"},
            "methods":[{"method":"finetune"}],"training":{"batch_size":0}}"#;
        fs::write(&out_of_range, json).expect("scratch file is writable");
        let error = ExperimentConfig::load(&out_of_range).expect_err("batch size 0");
        let message = error.to_string();
        assert!(message.contains("range.json"), "names the file: {message}");
        assert!(
            message.contains("training.batch_size = 0"),
            "names the field: {message}"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn save_into_missing_directory_names_path() {
        let path = scratch_dir("save-missing")
            .join("absent")
            .join("experiment.json");

        let error = seed_preset().save(&path).expect_err("directory is missing");

        assert!(
            error.to_string().contains("absent"),
            "names the path: {error}"
        );
        assert!(!path.exists(), "no file appears");
    }

    #[test]
    fn relative_paths_rebase_onto_directory() {
        let mut config = seed_preset();
        config.data_dir = Some(PathBuf::from("data"));
        config.sequence = SequenceConfig::Custom {
            datasets: vec![DatasetSource::Csv {
                name: "digits".to_owned(),
                train: PathBuf::from("digits/train.csv"),
                test: PathBuf::from("/abs/test.csv"),
            }],
        };

        config.resolve_relative_paths(Path::new("/experiments"));

        assert_eq!(
            config.data_dir,
            Some(PathBuf::from("/experiments/data")),
            "data_dir rebased"
        );
        let SequenceConfig::Custom { datasets } = &config.sequence else {
            panic!("sequence should still be custom");
        };
        let DatasetSource::Csv { train, test, .. } = &datasets[0] else {
            panic!("dataset should still be CSV");
        };
        assert_eq!(
            train,
            Path::new("/experiments/digits/train.csv"),
            "relative path rebased"
        );
        assert_eq!(test, Path::new("/abs/test.csv"), "absolute path kept");
    }

    #[test]
    fn task_names_follow_sequence() {
        let split = SequenceConfig::SplitMnist.task_names();
        assert_eq!(split, ["0/1", "2/3", "4/5", "6/7", "8/9"], "digit pairs");

        let permuted = SequenceConfig::PermutedMnist { tasks: 3 }.task_names();
        assert_eq!(
            permuted,
            ["perm-1", "perm-2", "perm-3"],
            "numbered permutations"
        );

        let rotated = SequenceConfig::RotatedMnist {
            angles: vec![0.0, 22.5],
        }
        .task_names();
        assert_eq!(rotated, ["rot-0", "rot-22.5"], "angles in degrees");
    }
}
