//! The `ewc-workbench` binary end to end: `run`, `inspect`, `bench` and `devices`, on the
//! bundled data and whatever adapter wgpu picks (Mesa's lavapipe in CI).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ewc_workbench::data::{self, Dataset};
use ewc_workbench::experiment::config::Method;
use ewc_workbench::experiment::results::{
    CSV_HEADER, RESULTS_FORMAT, Results, RunResult, load_results,
};

/// Environment variable naming the data directory that subcommands search first.
const DATA_DIR_ENV: &str = "EWC_WORKBENCH_DATA";
/// The first eight bytes of every PNG file.
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

fn bundled_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets")
}

/// Runs the binary with `args`. The data directory variable points at the bundled subsets, so
/// a subcommand that searches for data never finds the full sets of the machine running the
/// tests.
fn workbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ewc-workbench"))
        .args(args)
        .env(DATA_DIR_ENV, bundled_dir())
        .output()
        .unwrap_or_else(|error| panic!("failed to start ewc-workbench {args:?}: {error}"))
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Creates an empty directory under the system's temporary directory, unique to this process
/// and `name`, and returns its path.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ewc-workbench-cli-{}-{name}", std::process::id()));
    if dir.exists() {
        fs::remove_dir_all(&dir)
            .unwrap_or_else(|error| panic!("failed to clear {}: {error}", dir.display()));
    }
    fs::create_dir_all(&dir)
        .unwrap_or_else(|error| panic!("failed to create {}: {error}", dir.display()));
    dir
}

fn assert_success(args: &[&str], output: &Output) {
    assert!(
        output.status.success(),
        "ewc-workbench {args:?} exited with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout_of(output),
        stderr_of(output)
    );
}

fn assert_failure(args: &[&str], output: &Output) {
    assert!(
        !output.status.success(),
        "ewc-workbench {args:?} succeeded but should have failed\nstdout:\n{}\nstderr:\n{}",
        stdout_of(output),
        stderr_of(output)
    );
}

// --- run ---------------------------------------------------------------------------------------

#[test]
fn run_writes_results_and_table() {
    let out = fresh_dir("run");
    let data_dir = bundled_dir();
    let args = [
        "run",
        "--preset",
        "seed",
        "--data-dir",
        data_dir.to_str().expect("bundled data path is UTF-8"),
        "--limit",
        "128",
        "--methods",
        "finetune,ewc",
        "--set",
        "training.eval_every=2",
        "--set",
        "training.eval_limit=100",
        "--set",
        "ewc.fisher_samples=64",
        "--out",
        out.to_str().expect("temporary path is UTF-8"),
    ];
    let output = workbench(&args);
    assert_success(&args, &output);
    let stdout = stdout_of(&output);

    let results = load_results(&out.join("results.json"))
        .unwrap_or_else(|error| panic!("results.json from run --out: {error}"));
    assert_eq!(results.format, RESULTS_FORMAT, "results.json format");
    assert_eq!(
        results.config.training.limit,
        Some(128),
        "results.json: training.limit"
    );
    assert_eq!(
        results.tasks,
        ["mnist", "fashion-mnist"],
        "results.json: task names"
    );
    let labels: Vec<&str> = results.runs.iter().map(|run| run.label.as_str()).collect();
    assert_eq!(
        labels,
        ["finetune", "ewc λ=1000"],
        "results.json: run labels"
    );
    let data: Vec<(&str, PathBuf, &str, usize, usize)> = results
        .data
        .iter()
        .map(|record| {
            (
                record.task.as_str(),
                record.source.clone(),
                record.origin.as_str(),
                record.train_images,
                record.test_images,
            )
        })
        .collect();
    assert_eq!(
        data,
        [
            ("mnist", data_dir.join("mnist"), "named folder", 128, 1000),
            (
                "fashion-mnist",
                data_dir.join("fashion-mnist"),
                "named folder",
                128,
                1000
            ),
        ],
        "results.json: where each task's images came from"
    );

    for run in &results.runs {
        assert!(
            stdout.contains(&run.label),
            "comparison table lacks the run {:?}:\n{stdout}",
            run.label
        );
        assert_eq!(
            run.accuracy.len(),
            2,
            "{}: rows of the accuracy matrix",
            run.label
        );
        for (i, row) in run.accuracy.iter().enumerate() {
            assert_eq!(
                row.len(),
                2,
                "{}: columns in row {} of the accuracy matrix",
                run.label,
                i + 1
            );
            for (j, &accuracy) in row.iter().enumerate() {
                assert!(
                    (0.0..=1.0).contains(&accuracy),
                    "{}: R[{i}][{j}] = {accuracy} is not a fraction in [0, 1]",
                    run.label
                );
            }
        }
        assert!(!run.curve.is_empty(), "{}: empty accuracy curve", run.label);
    }

    let csv = fs::read_to_string(out.join("results.csv"))
        .unwrap_or_else(|error| panic!("results.csv from run --out: {error}"));
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(CSV_HEADER), "results.csv header");
    let columns = CSV_HEADER.split(',').count();
    let rows: Vec<&str> = lines.collect();
    assert!(!rows.is_empty(), "results.csv has a header but no rows");
    for row in &rows {
        assert_eq!(
            row.split(',').count(),
            columns,
            "results.csv row {row:?}: fields"
        );
    }
    for method in ["finetune", "ewc"] {
        let has_rows = rows.iter().any(|row| row.split(',').nth(2) == Some(method));
        assert!(has_rows, "results.csv has no rows for method {method}");
    }

    // Plots are optional until `run --out` draws them; any that exist must be PNG files.
    let entries =
        fs::read_dir(&out).unwrap_or_else(|error| panic!("listing {}: {error}", out.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|extension| extension == "png") {
            let bytes = fs::read(&path)
                .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
            assert!(
                bytes.starts_with(&PNG_SIGNATURE),
                "{} does not start with the PNG signature",
                path.display()
            );
        }
    }

    fs::remove_dir_all(&out).ok();
}

/// Writes `dataset` as a CSV file with a header row: the label, then the 784 pixels.
fn write_csv(dataset: &Dataset, path: &Path) {
    let mut text = String::from("label");
    for pixel in 0..dataset.rows * dataset.cols {
        text.push_str(&format!(",pixel{pixel}"));
    }
    text.push('\n');
    for index in 0..dataset.len() {
        text.push_str(&dataset.labels[index].to_string());
        for pixel in dataset.image(index) {
            text.push_str(&format!(",{pixel}"));
        }
        text.push('\n');
    }
    fs::write(path, text).unwrap_or_else(|error| panic!("writing {}: {error}", path.display()));
}

/// Runs `run` with the settings shared by the custom-sequence comparison, plus `extra`.
fn run_small(out: &Path, extra: &[&str]) -> Results {
    let mut args = vec![
        "run",
        "--limit",
        "96",
        "--methods",
        "finetune",
        "--set",
        "training.eval_every=3",
        "--set",
        "training.eval_limit=100",
        "--out",
        out.to_str().expect("temporary path is UTF-8"),
    ];
    args.extend_from_slice(extra);
    let output = workbench(&args);
    assert_success(&args, &output);
    load_results(&out.join("results.json"))
        .unwrap_or_else(|error| panic!("results.json from run --out: {error}"))
}

#[test]
fn custom_idx_csv_matches_seed() {
    let dir = fresh_dir("custom");
    let bundled = bundled_dir();
    let fashion = data::load_mnist_dir(&bundled.join("fashion-mnist"), "fashion-mnist")
        .expect("bundled Fashion-MNIST loads");
    write_csv(&fashion.train, &dir.join("fashion-train.csv"));
    write_csv(&fashion.test, &dir.join("fashion-test.csv"));
    let mnist = bundled.join("mnist");
    let idx = |file: &str| mnist.join(file).display().to_string();
    // The CSV paths are relative: `run --config` reads them from the config file's folder.
    let config = format!(
        r#"{{"name": "custom", "sequence": {{"kind": "custom", "datasets": [
            {{"format": "idx", "name": "mnist",
              "train_images": {:?}, "train_labels": {:?},
              "test_images": {:?}, "test_labels": {:?}}},
            {{"format": "csv", "name": "fashion-mnist",
              "train": "fashion-train.csv", "test": "fashion-test.csv"}}]}},
            "architecture": {{"kind": "seed-cnn"}},
            "methods": [{{"method": "finetune"}}]}}"#,
        idx("train-images-idx3-ubyte.gz"),
        idx("train-labels-idx1-ubyte.gz"),
        idx("t10k-images-idx3-ubyte.gz"),
        idx("t10k-labels-idx1-ubyte.gz"),
    );
    let config_path = dir.join("custom.json");
    fs::write(&config_path, config).expect("writing the custom experiment");

    let custom = run_small(
        &dir.join("custom-out"),
        &[
            "--config",
            config_path.to_str().expect("temporary path is UTF-8"),
        ],
    );
    let seed = run_small(
        &dir.join("seed-out"),
        &[
            "--preset",
            "seed",
            "--data-dir",
            bundled.to_str().expect("bundled data path is UTF-8"),
        ],
    );

    assert_eq!(custom.tasks, ["mnist", "fashion-mnist"], "task names");
    let (custom_run, seed_run) = (&custom.runs[0], &seed.runs[0]);
    assert_eq!(custom_run.accuracy.len(), 2, "rows of the accuracy matrix");
    // The same images in the same order with the same seed train the same weights, so every
    // number must agree with the seed experiment read from IDX files alone.
    assert_eq!(custom_run.baseline, seed_run.baseline, "baseline");
    assert_eq!(custom_run.accuracy, seed_run.accuracy, "accuracy matrix");
    let curve = |run: &RunResult| {
        run.curve
            .iter()
            .map(|point| (point.step, point.accuracy.clone(), point.loss))
            .collect::<Vec<_>>()
    };
    assert_eq!(curve(custom_run), curve(seed_run), "curve points");
    fs::remove_dir_all(&dir).ok();
}

// --- Invalid input -----------------------------------------------------------------------------

#[test]
fn run_rejects_unknown_config_fields() {
    let dir = fresh_dir("config");
    let cases = [
        (
            "top level",
            r#"{"sequence": {"kind": "seed"}, "architecture": {"kind": "seed-cnn"},
                "methods": [{"method": "finetune"}], "trainnig": {"epochs": 1}}"#,
            "trainnig",
        ),
        (
            "inside training",
            r#"{"sequence": {"kind": "seed"}, "architecture": {"kind": "seed-cnn"},
                "methods": [{"method": "finetune"}], "training": {"epochz": 2}}"#,
            "epochz",
        ),
    ];
    for (case, json, field) in cases {
        let path = dir.join(format!("{field}.json"));
        fs::write(&path, json)
            .unwrap_or_else(|error| panic!("writing {}: {error}", path.display()));
        let args = [
            "run",
            "--config",
            path.to_str().expect("temporary path is UTF-8"),
        ];
        let output = workbench(&args);
        assert_failure(&args, &output);
        let stderr = stderr_of(&output);
        assert!(
            stderr.contains(field),
            "unknown field {case}: stderr does not name `{field}`:\n{stderr}"
        );
    }
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn run_rejects_unknown_method() {
    let args = ["run", "--methods", "finetune,bogus"];
    let output = workbench(&args);
    assert_failure(&args, &output);
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("bogus"),
        "unknown method: stderr does not name `bogus`:\n{stderr}"
    );
    for method in Method::ALL {
        assert!(
            stderr.contains(method.name()),
            "unknown method: stderr does not list the valid method {method}:\n{stderr}"
        );
    }
}

#[test]
fn run_names_stale_figures() {
    let out = fresh_dir("old-figures");
    fs::write(out.join("penalty-old-run.png"), PNG_SIGNATURE).expect("writing an old figure");
    let args = [
        "run",
        "--methods",
        "finetune",
        "--limit",
        "32",
        "--set",
        "training.eval_limit=50",
        "--out",
        out.to_str().expect("temporary path is UTF-8"),
    ];
    let output = workbench(&args);
    assert_success(&args, &output);
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("1 figure(s) that this run did not write")
            && stderr.contains("penalty-old-run.png"),
        "stderr should name the old figure:\n{stderr}"
    );
    assert!(
        !stderr.contains("accuracy-curves.png"),
        "figures this run wrote are not old:\n{stderr}"
    );
    fs::remove_dir_all(&out).ok();
}

#[test]
fn run_rejects_oversized_batch() {
    let out = fresh_dir("huge-batch");
    let out_arg = out.to_str().expect("temporary path is UTF-8");
    let args = [
        "run",
        "--methods",
        "finetune",
        "--limit",
        "64",
        "--set",
        "training.batch_size=1000000",
        "--out",
        out_arg,
    ];
    let output = workbench(&args);
    assert_failure(&args, &output);
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("a batch of 1000000 does not fit") && stderr.contains("or less"),
        "the error should say the batch does not fit and what fits:\n{stderr}"
    );
    assert!(
        !out.join("results.json").exists(),
        "nothing was trained, so no results file should be written"
    );
    fs::remove_dir_all(&out).ok();
}

#[test]
fn inspect_rejects_missing_and_text_files() {
    let dir = fresh_dir("inspect");
    let missing = dir.join("missing-labels-idx1-ubyte.gz");
    let text = dir.join("notes.txt");
    fs::write(&text, "These are notes, not a dataset.\n").expect("writing the text file");
    for (case, path) in [("missing file", &missing), ("text file", &text)] {
        let path_text = path.to_str().expect("temporary path is UTF-8");
        let args = ["inspect", path_text];
        let output = workbench(&args);
        assert_failure(&args, &output);
        let stderr = stderr_of(&output);
        assert!(
            stderr.contains(path_text),
            "inspect {case}: stderr does not name {path_text}:\n{stderr}"
        );
    }
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn inspect_reports_bundled_label_counts() {
    let labels = bundled_dir()
        .join("mnist")
        .join("train-labels-idx1-ubyte.gz");
    let args = [
        "inspect",
        labels.to_str().expect("bundled data path is UTF-8"),
    ];
    let output = workbench(&args);
    assert_success(&args, &output);
    let stdout = stdout_of(&output);

    let per_class = stdout
        .lines()
        .find_map(|line| line.split_once("per class:"))
        .map(|(_, counts)| counts.trim())
        .unwrap_or_else(|| panic!("inspect labels: no per-class line:\n{stdout}"));
    let expected: Vec<String> = (0..10).map(|class| format!("{class}: 200")).collect();
    assert_eq!(
        per_class,
        expected.join(", "),
        "inspect labels: per-class counts"
    );
}

// --- bench and devices -------------------------------------------------------------------------

#[test]
fn bench_prints_json_measurements() {
    // A batch of 8 keeps the evaluation and Fisher passes, which bench sizes from the batch,
    // short on a software adapter.
    let args = ["bench", "--steps", "3", "--batch", "8", "--json"];
    let output = workbench(&args);
    assert_success(&args, &output);
    let stdout = stdout_of(&output);

    let mut measured = Vec::new();
    for line in stdout.lines().filter(|line| !line.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("bench line {line:?} is not JSON: {error}"));
        let what = value["what"]
            .as_str()
            .unwrap_or_else(|| panic!("bench line {line:?}: no `what`"));
        let rate = value["samples_per_second"].as_f64();
        assert!(
            rate.is_some_and(|rate| rate.is_finite() && rate > 0.0),
            "bench {what}: samples_per_second = {rate:?}, expected a finite number > 0"
        );
        let adapter = value["adapter"].as_str().unwrap_or_default();
        assert!(
            !adapter.trim().is_empty(),
            "bench {what}: no adapter named in {line:?}"
        );
        measured.push(what.to_owned());
    }
    measured.sort();
    assert_eq!(
        measured,
        ["eval", "fisher_empirical", "fisher_exact", "train_step"],
        "bench --json: measurements"
    );
}

#[test]
fn unmatched_adapter_filter_is_named() {
    let args = ["devices"];
    let output = Command::new(env!("CARGO_BIN_EXE_ewc-workbench"))
        .args(args)
        .env("WGPU_ADAPTER_NAME", "no-such-adapter-7f3a")
        .output()
        .expect("failed to start ewc-workbench devices");
    assert_failure(&args, &output);
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("WGPU_ADAPTER_NAME=no-such-adapter-7f3a")
            && stderr.contains("unset the variable"),
        "the error should name the filter and say how to change it, not ask for a driver:\n{stderr}"
    );
}

#[test]
fn run_rejects_cpu_backend() {
    let args = ["run", "--backend", "cpu"];
    let output = workbench(&args);
    assert_failure(&args, &output);
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("--backend cpu does not run experiments"),
        "stderr should say what --backend cpu is for:\n{stderr}"
    );
}

#[test]
fn devices_marks_one_adapter() {
    let args = ["devices"];
    let output = workbench(&args);
    assert_success(&args, &output);
    let stdout = stdout_of(&output);

    let chosen_line = "* will be used: ";
    let marked: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with('*') && !line.starts_with(chosen_line))
        .collect();
    assert_eq!(
        marked.len(),
        1,
        "devices: adapters marked with *:\n{stdout}"
    );
    let chosen = stdout
        .lines()
        .find_map(|line| line.strip_prefix(chosen_line))
        .unwrap_or_else(|| {
            panic!("devices: no line naming the adapter that will be used:\n{stdout}")
        });
    let name = chosen
        .rsplit_once(" (set ")
        .map_or(chosen, |(name, _)| name);
    assert!(
        marked[0].contains(name),
        "devices: the marked line {:?} is not the adapter used, {name:?}",
        marked[0]
    );
}
