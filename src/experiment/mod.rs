//! What an experiment is, what it measures, and what it leaves on disk.
//!
//! An experiment trains one copy of a network per method through a sequence of tasks and
//! compares the copies. This module contains the pieces around that training loop:
//!
//! - [`config`]: the experiment file (JSON), the presets, and the command-line overrides
//!   (`--methods`, `--set key=v1,v2`). A file lists concrete runs, so a sweep written on the
//!   command line becomes one `methods` entry per value and a saved file replays it exactly.
//! - [`metrics`]: average accuracy, backward transfer, forgetting and forward transfer, computed
//!   from the accuracy matrix `R[i][j]` (accuracy on task `j` after training task `i`).
//! - [`results`]: `results.json` and `results.csv`, and the comparison table printed after a
//!   headless run.
//! - [`insights`]: what each run records for the insight views: distances from the previous
//!   task's weights, Fisher diagonals, and optionally the weights after each task.
//!
//! Every file is written to a temporary file in the target directory, flushed to disk and then
//! renamed over the target, so a reader sees either the old file or the complete new one.

pub mod config;
pub mod insights;
pub mod metrics;
pub mod results;
pub mod runner;

pub use config::{
    ConfigError, DatasetSource, ExperimentConfig, FisherKind, HeadMode, Method, MethodSpec,
    Optimizer, PRESETS, RunSpec, SequenceConfig, TrainingConfig, apply_methods_list, apply_set,
    expand_runs,
};
pub use metrics::{Forgetting, Metrics};
pub use results::{
    CurvePoint, DeviceInfo, Results, ResultsError, RunResult, RunStatus, comparison_table,
    load_results,
};

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `contents` to `path` whole or not at all.
///
/// The bytes go to a hidden temporary file next to `path`, which is synced and then renamed over
/// `path`. POSIX file systems replace the target atomically on a rename within one directory.
/// On failure the temporary file is removed and `path` is left as it was.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let temporary = temporary_path(path)?;
    let written = write_and_sync(&temporary, contents).and_then(|()| fs::rename(&temporary, path));
    if written.is_err() {
        // The original error matters more than a failure to clean up, which leaves at most a
        // hidden `.tmp` file behind.
        let _ = fs::remove_file(&temporary);
        return written;
    }
    sync_parent_directory(path);
    Ok(())
}

fn temporary_path(path: &Path) -> io::Result<PathBuf> {
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(file_name);
    temporary_name.push(format!(".{}.tmp", std::process::id()));
    Ok(path.with_file_name(temporary_name))
}

fn write_and_sync(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Syncs the directory entry of a renamed file, so the rename itself survives a power loss.
///
/// Best effort: the new contents are already complete on disk, and some platforms cannot open a
/// directory as a file.
fn sync_parent_directory(path: &Path) {
    #[cfg(unix)]
    if let Some(parent) = path.parent() {
        let directory = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        if let Ok(handle) = File::open(directory) {
            let _ = handle.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ewc-workbench-experiment-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch directory should be creatable");
        dir
    }

    #[test]
    fn atomic_write_replaces_existing_file() {
        let dir = scratch_dir("replace");
        let path = dir.join("out.json");
        fs::write(&path, "old").expect("seed file should be writable");

        write_atomically(&path, b"new contents").expect("write should succeed");

        let read = fs::read_to_string(&path).expect("file should be readable");
        assert_eq!(read, "new contents", "the target should hold the new bytes");
        let entries: Vec<_> = fs::read_dir(&dir).expect("dir is listable").collect();
        assert_eq!(
            entries.len(),
            1,
            "no temporary file should remain next to the target"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn atomic_write_into_missing_directory_fails_cleanly() {
        let dir = scratch_dir("missing").join("does-not-exist");
        let path = dir.join("out.json");

        let error = write_atomically(&path, b"data").expect_err("write should fail");

        assert_eq!(
            error.kind(),
            io::ErrorKind::NotFound,
            "the error should be NotFound"
        );
        assert!(!path.exists(), "no target file should appear");
        assert!(!dir.exists(), "the missing directory should not be created");
    }
}
