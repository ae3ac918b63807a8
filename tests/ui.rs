//! The workbench window driven like a user would: egui_kittest runs the real `WorkbenchApp`,
//! clicks its buttons, trains tiny experiments on the bundled data on the software adapter, and
//! renders frames through wgpu.
//!
//! Each test trains on 64 images per task, so the whole file runs in a few minutes on lavapipe.
//! `window_screenshots_of_seed_run` is ignored by default: it trains the whole seed experiment on
//! the bundled subsets and rewrites the images in `screenshots/`.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::{Harness, SnapshotOptions};
use ewc_workbench::experiment::config::Method;
use ewc_workbench::experiment::results::{Results, RunResult, RunStatus};
use ewc_workbench::gpu::GpuContext;
use ewc_workbench::ui::{PlotFigure, WorkbenchApp, write_plot_png};

/// Window size of every test, in points: the default window size of the workbench.
const WINDOW_SIZE: egui::Vec2 = egui::Vec2::new(1360.0, 860.0);

/// Maximum time a tiny experiment may take on a two-core machine with lavapipe before the test
/// fails.
const TINY_RUN_TIMEOUT: Duration = Duration::from_secs(600);

type AppHarness = Harness<'static, Option<WorkbenchApp>>;

/// Starts the real app in a harness that renders through wgpu. Files are chosen by typing a
/// path, as on a machine without a file dialog.
fn start_app() -> AppHarness {
    let mut harness = Harness::builder()
        .with_size(WINDOW_SIZE)
        .wgpu()
        .build_ui_state(
            |ui, app: &mut Option<WorkbenchApp>| {
                if let Some(app) = app {
                    app.show(ui);
                }
            },
            None,
        );
    let app = WorkbenchApp::new(&harness.ctx)
        .with_path_fields_only("Tests choose files by typing a path.");
    *harness.state_mut() = Some(app);
    harness.step();
    harness
}

fn app(harness: &AppHarness) -> &WorkbenchApp {
    harness
        .state()
        .as_ref()
        .expect("the app was created in start_app")
}

fn app_mut(harness: &mut AppHarness) -> &mut WorkbenchApp {
    harness
        .state_mut()
        .as_mut()
        .expect("the app was created in start_app")
}

fn bundled_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets")
}

/// Sets up a tiny seed experiment on the bundled subsets: 64 training images per task in
/// batches of 16, a curve point after every step on 100 test images, and the given methods.
fn set_up_tiny_experiment(harness: &mut AppHarness, methods: &[Method]) {
    let setup = app_mut(harness).setup_mut();
    setup.set_data_dir(Some(&bundled_data()));
    setup.set_methods(methods);
    for (key, value) in [
        ("training.batch_size", "16"),
        ("training.eval_every", "1"),
        ("training.eval_limit", "100"),
        ("ewc.fisher_samples", "64"),
    ] {
        assert!(
            setup.set_text(key, value),
            "{key} should be a field of the setup panel"
        );
    }
    harness.step();

    // The limit is typed into its field, as a user (or a screen reader) would.
    harness
        .get_by_label("Training images per task")
        .set_text_value_accesskit("64");
    harness.step();
    harness.step();
    assert_eq!(
        app(harness).setup().text("training.limit"),
        Some("64"),
        "the typed limit should reach the setup state"
    );
}

/// Steps frames until `done` holds for the app or `timeout` passes; returns whether it held.
fn step_until(
    harness: &mut AppHarness,
    timeout: Duration,
    done: impl Fn(&WorkbenchApp) -> bool,
) -> bool {
    let started = Instant::now();
    while started.elapsed() < timeout {
        harness.step();
        if done(app(harness)) {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Finds the node labelled `label` nearest the top of the window: the toolbar's or the tab
/// bar's, where the summary table or the setup panel has a label of the same name.
fn topmost_node<'h>(harness: &'h AppHarness, label: &'h str) -> egui_kittest::Node<'h> {
    harness
        .query_all_by_label(label)
        .min_by(|a, b| a.rect().top().total_cmp(&b.rect().top()))
        .unwrap_or_else(|| panic!("the window should show {label}"))
}

fn click_run_and_wait(harness: &mut AppHarness) -> Results {
    topmost_node(harness, "Run").click();
    harness.step();
    assert!(
        app(harness).is_running(),
        "clicking Run should start the experiment"
    );
    let finished = step_until(harness, TINY_RUN_TIMEOUT, |app| !app.is_running());
    assert!(
        finished,
        "the experiment should finish within {TINY_RUN_TIMEOUT:?}"
    );
    harness.step();
    harness.step();
    app(harness)
        .results()
        .cloned()
        .expect("a finished experiment has results")
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ewc-workbench-ui-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("the scratch directory should be creatable");
    dir
}

/// Decodes a PNG file and returns its width and height.
fn png_size(path: &Path) -> (u32, u32) {
    let file = fs::File::open(path)
        .unwrap_or_else(|error| panic!("{} should exist: {error}", path.display()));
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let mut reader = decoder
        .read_info()
        .unwrap_or_else(|error| panic!("{} should be a PNG: {error}", path.display()));
    let mut pixels = vec![
        0;
        reader
            .output_buffer_size()
            .expect("the image size fits in memory")
    ];
    let info = reader
        .next_frame(&mut pixels)
        .unwrap_or_else(|error| panic!("{} should decode: {error}", path.display()));
    (info.width, info.height)
}

/// Vertical position of `label` in the summary table: the lowest node with that label, since
/// the table sits below the figures.
fn table_row_y(harness: &AppHarness, label: &str) -> f32 {
    harness
        .query_all_by_label(label)
        .map(|node| node.rect().center().y)
        .fold(f32::NEG_INFINITY, f32::max)
}

#[test]
fn run_fills_panels_table_and_exports() {
    let mut harness = start_app();
    set_up_tiny_experiment(&mut harness, &[Method::Finetune, Method::Ewc, Method::Lwf]);
    app_mut(&mut harness)
        .setup_mut()
        .set_text("ewc.lambda", "100,1000");

    let results = click_run_and_wait(&mut harness);

    let labels: Vec<String> = results.runs.iter().map(|run| run.label.clone()).collect();
    assert_eq!(
        labels.len(),
        4,
        "finetune, two EWC runs from the λ list, and LwF: {labels:?}"
    );
    for run in &results.runs {
        assert_eq!(
            run.status,
            RunStatus::Completed,
            "{} should complete: {}",
            run.label,
            run.message
        );
        assert_eq!(
            run.accuracy.len(),
            2,
            "{} should have a matrix row per task",
            run.label
        );
        assert!(
            run.curve.len() >= 8,
            "{} should have a curve point per step: {} points",
            run.label,
            run.curve.len()
        );
    }

    // The accuracy-curve tab has a panel titled with each run, and the table a row.
    for label in &labels {
        let count = harness.query_all_by_label(label).count();
        assert!(
            count >= 2,
            "{label} should appear in its curve panel and in the summary table, found {count}"
        );
    }
    harness.get_by_label("Accuracy matrices").click();
    harness.step();
    harness.step();
    for label in &labels {
        let count = harness.query_all_by_label(label).count();
        assert!(
            count >= 2,
            "{label} should appear in its heat map and in the summary table, found {count}"
        );
    }

    // Clicking the Average header sorts the table by average accuracy, best first.
    harness.get_by_label("Average").click();
    harness.step();
    harness.step();
    let mut by_average: Vec<(f64, usize)> = results
        .runs
        .iter()
        .enumerate()
        .map(|(index, run)| {
            (
                run.metrics
                    .average_accuracy
                    .expect("completed runs have an average"),
                index,
            )
        })
        .collect();
    by_average.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let rows_y: Vec<f32> = by_average
        .iter()
        .map(|&(_, index)| table_row_y(&harness, &labels[index]))
        .collect();
    assert!(
        rows_y.windows(2).all(|pair| pair[0] < pair[1]),
        "rows should be in order of average accuracy, y = {rows_y:?}"
    );

    // Export the shown figure through the path field, as on a machine without file dialogs.
    let dir = scratch_dir("export");
    let path = dir.join("matrices.png");
    harness.get_by_label("Export PNG…").click();
    // The prompt is a new area, which egui lays out invisibly on its first frame.
    harness.step();
    harness.step();
    harness
        .get_by_label("Path:")
        .set_text_value_accesskit(&path.display().to_string());
    harness.step();
    harness.get_by_label("Save").click();
    let written = step_until(&mut harness, Duration::from_secs(120), |app| {
        app.log_lines()
            .any(|line| line.message.contains("matrices.png"))
    });
    assert!(
        written,
        "the log should report the export of {}",
        path.display()
    );
    let (width, height) = png_size(&path);
    assert!(
        width >= 400,
        "the exported heat maps should be a whole figure, got {width} pixels wide"
    );
    assert!(
        height >= 200,
        "the exported heat maps should be a whole figure, got {height} pixels high"
    );

    // The path-based export renders every figure kind without a window.
    let gpu = GpuContext::new().expect("the software adapter should open");
    for figure in [
        PlotFigure::AccuracyCurves,
        PlotFigure::Tradeoff,
        PlotFigure::loss_and_penalty(&results, 1),
    ] {
        let path = dir.join(figure.file_name());
        write_plot_png(&gpu, &results, &figure, &path)
            .unwrap_or_else(|error| panic!("{} should export: {error}", figure.title()));
        let (width, height) = png_size(&path);
        assert!(
            width > 0,
            "{} should decode to an image with columns",
            figure.title()
        );
        assert!(
            height > 0,
            "{} should decode to an image with rows",
            figure.title()
        );
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn diverged_run_keeps_finished_runs() {
    let mut harness = start_app();
    set_up_tiny_experiment(&mut harness, &[Method::Finetune, Method::L2]);
    // λ = 1e39 is finite as f64 but overflows the engine's f32, so the penalty is not finite.
    assert!(
        app_mut(&mut harness)
            .setup_mut()
            .set_text("l2.lambda", "1e39"),
        "l2.lambda is a field"
    );

    let results = click_run_and_wait(&mut harness);

    let finetune = &results.runs[0];
    let l2 = &results.runs[1];
    assert_eq!(
        finetune.status,
        RunStatus::Completed,
        "fine-tuning should complete: {}",
        finetune.message
    );
    assert_eq!(
        finetune.accuracy.len(),
        2,
        "the finished run keeps its whole accuracy matrix"
    );
    assert_eq!(
        l2.status,
        RunStatus::Diverged,
        "an infinite penalty should stop the L2 run: {}",
        l2.message
    );
    assert!(!l2.message.is_empty(), "a diverged run says why");
    assert!(
        harness.query_by_label("diverged").is_some(),
        "the summary table should show the diverged status"
    );
    let warned = app(&harness)
        .log_lines()
        .any(|line| line.message.contains("diverged") && line.hint.is_some());
    assert!(
        warned,
        "the log should say the run diverged and what to do next"
    );
}

#[test]
fn stop_all_cancels_waiting_runs() {
    let mut harness = start_app();
    set_up_tiny_experiment(&mut harness, &[Method::Finetune, Method::Ewc, Method::Lwf]);

    topmost_node(&harness, "Run").click();
    harness.step();
    // The session is still loading data, so no run has started yet.
    harness.get_by_label("Stop all").click();
    harness.step();
    let ended = step_until(&mut harness, TINY_RUN_TIMEOUT, |app| !app.is_running());

    assert!(ended, "a stopped experiment should end");
    let results = app(&harness)
        .results()
        .cloned()
        .expect("a stopped experiment has results");
    for run in &results.runs {
        assert_eq!(
            run.status,
            RunStatus::Cancelled,
            "{} should be cancelled",
            run.label
        );
        assert!(
            !run.message.is_empty(),
            "{} should say when it was cancelled",
            run.label
        );
    }
    let cancelled_cells = harness.query_all_by_label("cancelled").count();
    assert_eq!(
        cancelled_cells, 3,
        "the summary table should show every run as cancelled"
    );
}

#[test]
fn parallel_runs_match_sequential() {
    let methods = [Method::Finetune, Method::L2, Method::Ewc];
    let mut one_at_a_time = start_app();
    set_up_tiny_experiment(&mut one_at_a_time, &methods);
    let sequential = click_run_and_wait(&mut one_at_a_time);
    drop(one_at_a_time);

    let mut harness = start_app();
    set_up_tiny_experiment(&mut harness, &methods);
    app_mut(&mut harness).setup_mut().set_training_threads(2);
    harness.step();
    topmost_node(&harness, "Run").click();
    harness.step();
    // Watch the summary table's status column, as a user would.
    let mut max_running = 0;
    let started = Instant::now();
    while app(&harness).is_running() && started.elapsed() < TINY_RUN_TIMEOUT {
        harness.step();
        max_running = max_running.max(harness.query_all_by_label("running").count());
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !app(&harness).is_running(),
        "the experiment should finish within {TINY_RUN_TIMEOUT:?}"
    );
    harness.step();
    let parallel = app(&harness)
        .results()
        .cloned()
        .expect("a finished experiment has results");

    assert_eq!(max_running, 2, "runs shown training at the same time");
    assert_eq!(parallel.runs.len(), sequential.runs.len(), "runs");
    // Each run has its own weights, optimizer and seeded batch order, so training two at a
    // time must not change a single number.
    let numbers = |run: &RunResult| {
        let curve: Vec<_> = run
            .curve
            .iter()
            .map(|point| {
                (
                    point.step,
                    point.accuracy.clone(),
                    point.loss,
                    point.penalty,
                )
            })
            .collect();
        (
            run.status,
            run.baseline.clone(),
            run.accuracy.clone(),
            curve,
        )
    };
    for (a, b) in parallel.runs.iter().zip(&sequential.runs) {
        assert_eq!(a.label, b.label, "run order");
        assert!(
            numbers(a) == numbers(b),
            "{}: results differ when two runs train at a time",
            a.label
        );
    }
}

#[test]
fn missing_data_is_reported_in_log() {
    let mut harness = start_app();
    let missing = scratch_dir("missing-data").join("no-such-folder");
    app_mut(&mut harness)
        .setup_mut()
        .set_data_dir(Some(&missing));
    harness.step();

    topmost_node(&harness, "Run").click();
    let ended = step_until(&mut harness, Duration::from_secs(60), |app| {
        !app.is_running()
    });

    assert!(ended, "a session that cannot load its data should end");
    let error = app(&harness)
        .log_lines()
        .find(|line| line.message.contains("no-such-folder"))
        .cloned();
    let error = error.expect("the log should name the missing data directory");
    assert!(
        error
            .hint
            .is_some_and(|hint| hint.contains("data directory")),
        "the error should say what to check next"
    );
    let run_button = topmost_node(&harness, "Run");
    assert!(
        !run_button.accesskit_node().is_disabled(),
        "the window should still offer Run after the failure"
    );
}

#[test]
fn invalid_setting_shows_error_and_blocks_run() {
    let mut harness = start_app();

    harness
        .get_by_label("Batch size")
        .set_text_value_accesskit("zero");
    harness.step();
    harness.step();

    let error_labels = harness
        .query_all_by_label_contains("training.batch_size")
        .count();
    assert!(error_labels >= 1, "the field's error should name its key");
    harness.get_by_label("Run").click();
    harness.step();
    assert!(
        !app(&harness).is_running(),
        "an invalid setup should not start"
    );
    let logged = app(&harness).log_lines().any(|line| {
        line.message.starts_with("cannot run") && line.message.contains("training.batch_size")
    });
    assert!(logged, "the log should say why Run did nothing");
}

#[test]
fn start_screen_snapshot() {
    let mut harness = start_app();
    // A relative path, so the data lines read the same wherever the checkout is. Tests run in
    // the package's folder.
    app_mut(&mut harness)
        .setup_mut()
        .set_data_dir(Some(Path::new("datasets")));
    let gpu_logged = step_until(&mut harness, Duration::from_secs(120), |app| {
        app.log_lines().any(|line| line.message.starts_with("GPU:"))
    });
    assert!(
        gpu_logged,
        "the app should open the GPU in the background and log its adapter"
    );
    for _ in 0..3 {
        harness.step();
    }
    // Mask what differs between machines, with masks whose size does not depend on the text
    // while it is short enough: the GPU's name, in the top bar and in the log, and the frame
    // times, in a right-aligned label.
    let gpu_lines = harness.query_all_by_label_contains("GPU:").map(|node| {
        let rect = node.rect();
        let right = rect.max.x.max(rect.min.x + 560.0);
        egui::Rect::from_min_max(rect.min, egui::pos2(right, rect.max.y))
    });
    let frame_times = harness.query_all_by_label_contains("ms/frame").map(|node| {
        let rect = node.rect();
        egui::Rect::from_min_max(egui::pos2(rect.max.x - 120.0, rect.min.y), rect.max)
    });
    let masked: Vec<egui::Rect> = gpu_lines.chain(frame_times).collect();
    assert!(
        masked.len() >= 2,
        "the GPU line and the frame times should be on screen"
    );
    for rect in masked {
        harness.mask(rect.expand(2.0));
    }
    let options = SnapshotOptions::new().threshold(2.0).max_failed_pixels(400);
    harness.snapshot_options("start_screen", &options);
}

/// Trains the whole seed experiment on the bundled subsets and writes a screenshot while the
/// runs train and one after they end. Run with `cargo test --test ui -- --ignored`.
#[test]
#[ignore = "trains the whole seed experiment; run it to refresh screenshots/"]
fn window_screenshots_of_seed_run() {
    let mut harness = start_app();
    app_mut(&mut harness)
        .setup_mut()
        .set_data_dir(Some(&bundled_data()));
    harness.step();
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("screenshots");
    fs::create_dir_all(&out).expect("screenshots/ should be creatable");

    harness.get_by_label("Run").click();
    // Three runs ended and the fourth halfway through its second task.
    let halfway = step_until(&mut harness, Duration::from_secs(1800), |app| {
        app.results().is_some_and(|results| {
            let ended = results
                .runs
                .iter()
                .filter(|run| run.accuracy.len() == results.tasks.len())
                .count();
            let fourth_points = results.runs.get(3).map_or(0, |run| run.curve.len());
            ended >= 3 && fourth_points >= 6
        })
    });
    assert!(
        halfway,
        "the seed experiment should reach its fourth run within 30 minutes"
    );
    harness.step();
    save_screenshot(&mut harness, &out.join("window-during-run.png"));

    let finished = step_until(&mut harness, Duration::from_secs(3600), |app| {
        !app.is_running()
    });
    assert!(finished, "the seed experiment should end within an hour");
    harness.step();
    harness.step();
    save_screenshot(&mut harness, &out.join("window-after-run.png"));
    for (tab, file) in [
        ("Accuracy matrices", "window-accuracy-matrices.png"),
        ("Fisher", "window-fisher.png"),
        ("Distance from θ*", "window-distances.png"),
    ] {
        topmost_node(&harness, tab).click();
        harness.step();
        harness.step();
        save_screenshot(&mut harness, &out.join(file));
    }
}

fn save_screenshot(harness: &mut AppHarness, path: &Path) {
    harness.remove_cursor();
    harness.step();
    let image = harness.render().expect("the frame should render");
    let file = fs::File::create(path)
        .unwrap_or_else(|error| panic!("{} should be writable: {error}", path.display()));
    let mut encoder =
        png::Encoder::new(std::io::BufWriter::new(file), image.width(), image.height());
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .expect("the PNG header should be written");
    writer
        .write_image_data(image.as_raw())
        .expect("the pixels should be written");
}
