//! Discovery of the data directories that the datasets are read from.
//!
//! A data directory contains one folder per dataset (`mnist/`, `fashion-mnist/`), each with the
//! four MNIST file names. Candidates are searched in this order:
//!
//! 1. `--data-dir DIR` from the command line;
//! 2. the environment variable `EWC_WORKBENCH_DATA`;
//! 3. `~/.ewc-workbench/data`, the user's own copy;
//! 4. `/usr/share/datasets`, where Debian's `dataset-fashion-mnist` package installs
//!    `fashion-mnist/` with the four standard gzip names (Debian has no MNIST package, so this
//!    place usually lacks `mnist/`);
//! 5. the subsets bundled in the repository's `datasets/` folder, found through the crate's
//!    source folder at build time, then next to the executable, then in the current directory.
//!
//! Each dataset is looked up on its own ([`locate_dataset`]). An explicit choice (1 or 2) is
//! final: when it lacks the dataset, loading fails rather than quietly training on something
//! else. Among the implicit places (3 to 5) the first that holds the dataset wins, so Debian's
//! full Fashion-MNIST pairs with the bundled MNIST subset on a machine with nothing else.

use std::env;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use log::info;

use super::{DataError, DatasetPair, load_mnist_dir};

/// Environment variable naming a data directory.
pub const DATA_DIR_ENV: &str = "EWC_WORKBENCH_DATA";

/// Folder that Debian's dataset packages install into, one subfolder per dataset.
const SYSTEM_DATA_DIR: &str = "/usr/share/datasets";

/// Origin of a data directory choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HowFound {
    /// A folder named by `--data-dir`, the setup panel or the experiment file.
    CommandLine,
    /// The `EWC_WORKBENCH_DATA` environment variable.
    Environment,
    /// A well-known system or user location.
    WellKnown,
    /// The small subsets bundled with the workbench.
    Bundled,
}

impl HowFound {
    /// Returns whether the user named this directory, which makes it the only one searched.
    pub fn is_explicit(self) -> bool {
        matches!(self, Self::CommandLine | Self::Environment)
    }
}

impl fmt::Display for HowFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::CommandLine => "named folder",
            Self::Environment => "from EWC_WORKBENCH_DATA",
            Self::WellKnown => "well-known location",
            Self::Bundled => "bundled subsets",
        };
        f.write_str(text)
    }
}

/// A data directory and the reason it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSource {
    /// The data directory, which contains `mnist/`, `fashion-mnist/` or both.
    pub dir: PathBuf,
    /// Origin of the choice.
    pub how_found: HowFound,
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.dir.display(), self.how_found)
    }
}

/// Chooses the data directory: `cli`, else the environment variable, else the first
/// well-known or bundled directory that contains any dataset folder, else the bundled folder
/// next to the crate's sources even if it is missing, so that loading reports where it looked.
/// Logs the choice at `info`.
///
/// A directory chosen here may still lack one of the datasets; [`locate_dataset`] finds each
/// dataset on its own.
pub fn find_data_dir(cli: Option<&Path>) -> DataSource {
    let candidates = candidate_dirs(cli, &SearchContext::from_process());
    let chosen = match candidates.first() {
        Some(first) if first.how_found.is_explicit() => first.clone(),
        _ => first_holding(&candidates, &[super::MNIST, super::FASHION_MNIST])
            .unwrap_or_else(bundled_fallback),
    };
    info!("data directory: {chosen}");
    chosen
}

/// Finds the data directory that contains `dataset` (a folder name such as `mnist`), following
/// the search order in the module documentation, and logs the choice at `info`.
///
/// # Errors
/// [`DataError::MissingDataset`] listing every directory searched.
pub fn locate_dataset(cli: Option<&Path>, dataset: &str) -> Result<DataSource, DataError> {
    let candidates = candidate_dirs(cli, &SearchContext::from_process());
    let chosen = choose_for_dataset(&candidates, dataset)?;
    info!(
        "{dataset}: reading {} ({})",
        chosen.dir.join(dataset).display(),
        chosen.how_found
    );
    Ok(chosen)
}

/// Locates `dataset` and loads both of its splits.
///
/// # Errors
/// Those of [`locate_dataset`] and [`load_mnist_dir`].
pub fn load_dataset(cli: Option<&Path>, dataset: &str) -> Result<DatasetPair, DataError> {
    load_located_dataset(cli, dataset).map(|(pair, _)| pair)
}

/// [`load_dataset`], also returning where the data was found.
///
/// # Errors
/// Those of [`locate_dataset`] and [`load_mnist_dir`].
pub fn load_located_dataset(
    cli: Option<&Path>,
    dataset: &str,
) -> Result<(DatasetPair, DataSource), DataError> {
    let source = locate_dataset(cli, dataset)?;
    let pair = load_mnist_dir(&source.dir.join(dataset), dataset)?;
    info!(
        "{dataset}: {} training and {} test images",
        pair.train.len(),
        pair.test.len()
    );
    Ok((pair, source))
}

/// Applies the search order to a candidate list: an explicit first candidate is final,
/// otherwise the first candidate holding `dataset/` wins.
fn choose_for_dataset(candidates: &[DataSource], dataset: &str) -> Result<DataSource, DataError> {
    let searched: Vec<&DataSource> = match candidates.first() {
        Some(first) if first.how_found.is_explicit() => vec![first],
        _ => candidates.iter().collect(),
    };
    searched
        .iter()
        .find(|source| source.dir.join(dataset).is_dir())
        .map(|source| (*source).clone())
        .ok_or_else(|| DataError::MissingDataset {
            dataset: dataset.to_owned(),
            searched: searched.iter().map(|source| source.dir.clone()).collect(),
        })
}

fn first_holding(candidates: &[DataSource], datasets: &[&str]) -> Option<DataSource> {
    candidates
        .iter()
        .find(|source| datasets.iter().any(|name| source.dir.join(name).is_dir()))
        .cloned()
}

fn bundled_fallback() -> DataSource {
    DataSource {
        dir: bundled_in_sources(),
        how_found: HowFound::Bundled,
    }
}

/// Returns the bundled folder in the crate's source tree, as located at build time.
fn bundled_in_sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets")
}

/// The parts of the process environment that the search depends on, gathered in one place
/// so tests can supply their own.
#[derive(Debug, Clone, Default)]
struct SearchContext {
    env_dir: Option<OsString>,
    home: Option<PathBuf>,
    system_dir: Option<PathBuf>,
    exe_dir: Option<PathBuf>,
    current_dir: Option<PathBuf>,
}

impl SearchContext {
    fn from_process() -> Self {
        Self {
            env_dir: env::var_os(DATA_DIR_ENV).filter(|value| !value.is_empty()),
            home: env::home_dir(),
            system_dir: Some(PathBuf::from(SYSTEM_DATA_DIR)),
            exe_dir: env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(Path::to_path_buf)),
            current_dir: env::current_dir().ok(),
        }
    }
}

/// Lists candidate data directories in search order. Explicit choices are listed whether or
/// not they exist, implicit places only if they exist. When no bundled folder exists, the
/// one next to the sources is still listed last, so errors name the place it was expected.
fn candidate_dirs(cli: Option<&Path>, context: &SearchContext) -> Vec<DataSource> {
    let mut candidates = Vec::new();
    if let Some(dir) = cli {
        candidates.push(DataSource {
            dir: dir.to_owned(),
            how_found: HowFound::CommandLine,
        });
    }
    if let Some(dir) = &context.env_dir {
        candidates.push(DataSource {
            dir: PathBuf::from(dir),
            how_found: HowFound::Environment,
        });
    }

    let well_known = [
        context
            .home
            .as_ref()
            .map(|home| home.join(".ewc-workbench").join("data")),
        context.system_dir.clone(),
    ];
    let bundled = [
        Some(bundled_in_sources()),
        context.exe_dir.as_ref().map(|dir| dir.join("datasets")),
        context.current_dir.as_ref().map(|dir| dir.join("datasets")),
    ];
    let implicit = well_known
        .into_iter()
        .flatten()
        .map(|dir| (dir, HowFound::WellKnown));
    let implicit = implicit.chain(
        bundled
            .into_iter()
            .flatten()
            .map(|dir| (dir, HowFound::Bundled)),
    );
    for (dir, how_found) in implicit {
        if dir.is_dir() && !candidates.iter().any(|c: &DataSource| c.dir == dir) {
            candidates.push(DataSource { dir, how_found });
        }
    }

    if !candidates.iter().any(|c| c.how_found == HowFound::Bundled) {
        candidates.push(bundled_fallback());
    }
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_files::TempDir;

    fn make_dataset_dirs(root: &Path, datasets: &[&str]) -> PathBuf {
        for dataset in datasets {
            std::fs::create_dir_all(root.join(dataset)).expect("create dataset folder");
        }
        root.to_owned()
    }

    fn context_with(home: Option<PathBuf>, system_dir: Option<PathBuf>) -> SearchContext {
        SearchContext {
            home,
            system_dir,
            ..SearchContext::default()
        }
    }

    #[test]
    fn command_line_comes_before_environment() {
        let context = SearchContext {
            env_dir: Some("/from/env".into()),
            ..SearchContext::default()
        };
        let candidates = candidate_dirs(Some(Path::new("/from/cli")), &context);

        assert_eq!(candidates[0].dir, Path::new("/from/cli"), "first candidate");
        assert_eq!(
            candidates[0].how_found,
            HowFound::CommandLine,
            "first candidate's origin"
        );
        assert_eq!(
            candidates[1].dir,
            Path::new("/from/env"),
            "second candidate"
        );
        assert_eq!(
            candidates[1].how_found,
            HowFound::Environment,
            "second candidate's origin"
        );
    }

    #[test]
    fn bundled_folder_is_always_last() {
        let candidates = candidate_dirs(None, &SearchContext::default());
        let last = candidates.last().expect("at least one candidate");
        assert_eq!(last.how_found, HowFound::Bundled, "last candidate's origin");
        assert_eq!(
            last.dir,
            bundled_in_sources(),
            "the folder next to the sources"
        );
    }

    #[test]
    fn user_folder_comes_before_system_folder() {
        let home = TempDir::new("source-home");
        let system = TempDir::new("source-system");
        let user_data = make_dataset_dirs(&home.path().join(".ewc-workbench/data"), &["mnist"]);
        let context = context_with(Some(home.path().to_owned()), Some(system.path().to_owned()));

        let candidates = candidate_dirs(None, &context);
        let dirs: Vec<&Path> = candidates.iter().map(|c| c.dir.as_path()).collect();
        assert_eq!(dirs[0], user_data, "user folder first");
        assert_eq!(dirs[1], system.path(), "system folder second");
        assert_eq!(
            candidates[1].how_found,
            HowFound::WellKnown,
            "system folder's origin"
        );
    }

    #[test]
    fn missing_implicit_folders_are_skipped() {
        let context = context_with(
            Some(PathBuf::from("/no/such/home")),
            Some(PathBuf::from("/no/such/share")),
        );
        let candidates = candidate_dirs(None, &context);
        assert!(
            candidates.iter().all(|c| !c.dir.starts_with("/no/such")),
            "candidates {candidates:?}"
        );
    }

    #[test]
    fn each_dataset_falls_back_on_its_own() {
        // Like a machine with Debian's dataset-fashion-mnist package and nothing else.
        let system = TempDir::new("source-debian");
        make_dataset_dirs(system.path(), &["fashion-mnist"]);
        let bundled = TempDir::new("source-bundled");
        make_dataset_dirs(bundled.path(), &["mnist", "fashion-mnist"]);
        let candidates = vec![
            DataSource {
                dir: system.path().to_owned(),
                how_found: HowFound::WellKnown,
            },
            DataSource {
                dir: bundled.path().to_owned(),
                how_found: HowFound::Bundled,
            },
        ];

        let fashion =
            choose_for_dataset(&candidates, "fashion-mnist").expect("fashion-mnist found");
        let mnist = choose_for_dataset(&candidates, "mnist").expect("mnist found");
        assert_eq!(
            fashion.dir,
            system.path(),
            "fashion-mnist from the system folder"
        );
        assert_eq!(mnist.dir, bundled.path(), "mnist from the bundled folder");
    }

    #[test]
    fn explicit_choice_does_not_fall_back() {
        let chosen = TempDir::new("source-explicit");
        make_dataset_dirs(chosen.path(), &["fashion-mnist"]);
        let bundled = TempDir::new("source-bundled2");
        make_dataset_dirs(bundled.path(), &["mnist"]);
        let candidates = vec![
            DataSource {
                dir: chosen.path().to_owned(),
                how_found: HowFound::CommandLine,
            },
            DataSource {
                dir: bundled.path().to_owned(),
                how_found: HowFound::Bundled,
            },
        ];

        let error = choose_for_dataset(&candidates, "mnist")
            .expect_err("mnist is not in the chosen folder");
        let DataError::MissingDataset { searched, .. } = &error else {
            panic!("expected MissingDataset, got {error:?}");
        };
        assert_eq!(
            searched,
            &vec![chosen.path().to_owned()],
            "only the chosen folder was searched"
        );
        let message = error.to_string();
        assert!(
            message.contains("dataset mnist not found"),
            "message {message}"
        );
        assert!(
            message.contains(&chosen.path().display().to_string()),
            "message {message} names the folder"
        );
    }

    #[test]
    fn bundled_subsets_are_found_without_configuration() {
        let candidates = candidate_dirs(None, &SearchContext::default());
        for dataset in [super::super::MNIST, super::super::FASHION_MNIST] {
            let source = choose_for_dataset(&candidates, dataset).expect("bundled dataset found");
            assert_eq!(source.how_found, HowFound::Bundled, "{dataset} origin");
        }
    }
}
