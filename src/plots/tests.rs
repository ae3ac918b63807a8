//! Figures rendered on whatever adapter wgpu picks (Mesa's lavapipe in CI), and the numbers
//! behind them.

use std::io::Cursor;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use super::series::{TaskStart, Tradeoff};
use super::*;
use crate::experiment::config::{ExperimentConfig, Method, expand_runs};
use crate::experiment::results::{CurvePoint, DeviceInfo, RunResult, RunStatus};
use std::fs;

fn gpu() -> Arc<GpuContext> {
    static CONTEXT: OnceLock<Arc<GpuContext>> = OnceLock::new();
    CONTEXT
        .get_or_init(|| match GpuContext::new() {
            Ok(gpu) => gpu,
            Err(error) => {
                panic!("plot tests need an adapter (CI installs mesa-vulkan-drivers): {error}")
            }
        })
        .clone()
}

/// Returns the renderer shared by all tests, so egui's render pipeline is compiled once. The
/// mutex serialises tests that run in parallel.
fn renderer() -> MutexGuard<'static, OffscreenRenderer> {
    static RENDERER: OnceLock<Mutex<OffscreenRenderer>> = OnceLock::new();
    let renderer = RENDERER.get_or_init(|| Mutex::new(OffscreenRenderer::new(&gpu())));
    // A test that panicked while rendering leaves the renderer usable for the others.
    renderer.lock().unwrap_or_else(PoisonError::into_inner)
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("ewc-workbench-plots-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch directory should be creatable");
    dir
}

fn point(step: u64, task: usize, accuracy: [f64; 2], penalty: Option<f64>) -> CurvePoint {
    CurvePoint {
        step,
        task,
        accuracy: accuracy.to_vec(),
        loss: Some(0.5),
        penalty,
    }
}

/// Builds the seed experiment (mnist, then fashion-mnist) with two runs: ewc finished both
/// tasks, and finetune was cancelled during the second.
fn sample_results() -> Results {
    let mut config = ExperimentConfig::preset("seed").expect("seed preset exists");
    config.methods = vec![Method::Ewc.default_spec(), Method::Finetune.default_spec()];
    let runs = expand_runs(&config);
    let mut results = Results::new(config, DeviceInfo::default());

    let mut ewc = RunResult::new(&runs[0]);
    ewc.accuracy = vec![vec![0.97, 0.11], vec![0.90, 0.86]];
    ewc.baseline = Some(vec![0.10, 0.09]);
    ewc.curve = vec![
        point(100, 0, [0.90, 0.10], Some(0.0)),
        point(200, 0, [0.96, 0.11], Some(0.0)),
        point(300, 1, [0.93, 0.70], Some(0.02)),
        point(400, 1, [0.90, 0.86], Some(0.03)),
    ];
    ewc.update_metrics();

    let mut finetune = RunResult::new(&runs[1]);
    finetune.status = RunStatus::Cancelled;
    finetune.accuracy = vec![vec![0.96, 0.12]];
    finetune.curve = vec![
        point(100, 0, [0.91, 0.10], None),
        point(200, 0, [0.96, 0.12], None),
        point(300, 1, [0.60, 0.75], None),
    ];
    finetune.update_metrics();

    results.runs = vec![ewc, finetune];
    results
}

fn decode_png(bytes: &[u8]) -> RenderedImage {
    let decoder = png::Decoder::new(Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("PNG header decodes");
    let mut rgba = vec![
        0;
        reader
            .output_buffer_size()
            .expect("PNG size fits in memory")
    ];
    let frame = reader.next_frame(&mut rgba).expect("PNG data decodes");
    assert_eq!(
        frame.color_type,
        png::ColorType::Rgba,
        "PNG holds RGBA pixels"
    );
    assert_eq!(
        frame.bit_depth,
        png::BitDepth::Eight,
        "PNG has 8 bits per channel"
    );
    rgba.truncate(frame.buffer_size());
    RenderedImage {
        width: frame.width,
        height: frame.height,
        rgba,
    }
}

/// Counts pixels that differ from the top-left corner, which is always page background.
fn foreground_pixels(image: &RenderedImage) -> usize {
    let background = image.pixel(0, 0).expect("image has a top-left pixel");
    image
        .rgba
        .chunks_exact(4)
        .filter(|pixel| *pixel != background)
        .count()
}

/// Checks whether some opaque pixel is within 3 levels per channel of `colour`.
fn contains_colour(image: &RenderedImage, colour: egui::Color32) -> bool {
    let expected = colour.to_array();
    image.rgba.chunks_exact(4).any(|pixel| {
        pixel[3] == 255 && (0..3).all(|channel| pixel[channel].abs_diff(expected[channel]) <= 3)
    })
}

#[test]
fn write_all_plots_writes_every_figure() {
    let dir = scratch_dir("all");
    let results = sample_results();

    let written = write_all_plots_on(&gpu(), &results, &dir).expect("plots are written");

    let names: Vec<String> = written
        .iter()
        .map(|path| {
            path.file_name()
                .expect("a file name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            ACCURACY_CURVES_PNG,
            ACCURACY_MATRIX_PNG,
            TRADEOFF_PNG,
            "penalty-ewc-lambda-1000.png"
        ],
        "one file per figure, a penalty file only for the run with a penalty"
    );
    for path in &written {
        assert_eq!(
            path.parent(),
            Some(dir.as_path()),
            "{} is in the output directory",
            path.display()
        );
    }
    let leftovers: Vec<_> = fs::read_dir(&dir)
        .expect("output directory is listable")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary files remain: {leftovers:?}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn exported_pngs_decode_at_figure_size() {
    let dir = scratch_dir("sizes");
    let results = sample_results();
    let max_side = renderer().max_side();

    let written = write_all_plots_on(&gpu(), &results, &dir).expect("plots are written");

    for (figure, path) in figures_to_export(&results).iter().zip(&written) {
        let bytes = fs::read(path).expect("written PNG is readable");
        let image = decode_png(&bytes);
        let ([width, height], _) = pixel_size(figure.size, max_side);
        assert_eq!(
            (image.width, image.height),
            (width, height),
            "pixel size of {}",
            path.display()
        );
        let drawn = foreground_pixels(&image);
        assert!(
            drawn > image.rgba.len() / 4 / 100,
            "{} has {drawn} drawn pixels",
            path.display()
        );
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn render_to_png_has_requested_size() {
    let mut renderer = renderer();

    let png = renderer
        .render_to_png([321, 123], 1.5, |ui| {
            ui.label("hello");
        })
        .expect("frame renders");

    let image = decode_png(&png);
    assert_eq!((image.width, image.height), (321, 123), "decoded size");
    assert!(foreground_pixels(&image) > 0, "the label is drawn");
}

#[test]
fn accuracy_curves_draw_each_task_colour() {
    let results = sample_results();
    let mut renderer = renderer();

    let image = renderer
        .render([1200, 700], 1.5, |ui| draw_accuracy_curves(ui, &results))
        .expect("figure renders");

    for task in 0..results.tasks.len() {
        let colour = figures::task_colour(task);
        assert!(
            contains_colour(&image, colour),
            "task {task} colour {colour:?} appears"
        );
    }
}

#[test]
fn accuracy_matrix_draws_low_and_high_cells() {
    let results = sample_results();
    let mut renderer = renderer();

    let image = renderer
        .render([900, 500], 1.5, |ui| draw_accuracy_matrices(ui, &results))
        .expect("figure renders");

    // ewc's R[1][1] = 86 % and the cancelled finetune's missing second row.
    for percent in [86.0, f64::NAN] {
        let colour = figures::accuracy_colour(percent);
        assert!(
            contains_colour(&image, colour),
            "cell colour for {percent} % appears"
        );
    }
}

#[test]
fn render_rejects_zero_size() {
    let mut renderer = renderer();

    let error = renderer
        .render([0, 100], 1.0, |_| {})
        .expect_err("zero width is invalid");

    assert!(
        matches!(
            error,
            RenderError::InvalidSize {
                width: 0,
                height: 100,
                ..
            }
        ),
        "got {error:?}"
    );
}

#[test]
fn render_rejects_nonpositive_scale() {
    let mut renderer = renderer();

    for scale in [0.0, -1.0, f32::NAN] {
        let error = renderer
            .render([10, 10], scale, |_| {})
            .expect_err("scale is invalid");
        assert!(
            matches!(error, RenderError::InvalidPixelsPerPoint(_)),
            "scale {scale}: got {error:?}"
        );
    }
}

#[test]
fn write_into_missing_directory_names_file() {
    let dir = scratch_dir("missing").join("absent");

    let error =
        write_all_plots_on(&gpu(), &sample_results(), &dir).expect_err("directory is missing");

    let message = error.to_string();
    assert!(
        matches!(error, PlotError::Write { .. }),
        "a write error: {message}"
    );
    assert!(
        message.contains(ACCURACY_CURVES_PNG),
        "names the first file: {message}"
    );
    assert!(!dir.exists(), "the directory is not created");
}

#[test]
fn task_starts_at_last_point_of_previous_task() {
    let curve: Vec<CurvePoint> = [
        (100, 0),
        (200, 0),
        (250, 0),
        (350, 1),
        (450, 1),
        (500, 1),
        (600, 2),
    ]
    .into_iter()
    .map(|(step, task)| point(step, task, [0.5, 0.5], None))
    .collect();

    let starts = series::task_starts(&curve);

    // Task 0 ends at its last evaluation, step 250, where task 1 begins; task 1 ends at 500.
    let expected = [
        TaskStart { step: 250, task: 1 },
        TaskStart { step: 500, task: 2 },
    ];
    assert_eq!(
        starts, expected,
        "one start per task change, at the previous task's last step"
    );
}

#[test]
fn task_starts_skip_task_without_points() {
    let curve: Vec<CurvePoint> = [(100, 0), (200, 2)]
        .into_iter()
        .map(|(step, task)| point(step, task, [0.5, 0.5], None))
        .collect();

    let starts = series::task_starts(&curve);

    assert_eq!(
        starts,
        [TaskStart { step: 100, task: 2 }],
        "task 1 has no point, so no marker"
    );
}

#[test]
fn task_starts_empty_for_single_task() {
    let curve: Vec<CurvePoint> = [100, 200, 300]
        .into_iter()
        .map(|step| point(step, 0, [0.5, 0.5], None))
        .collect();

    assert!(
        series::task_starts(&curve).is_empty(),
        "one task has no start marker"
    );
    assert!(
        series::task_starts(&[]).is_empty(),
        "an empty curve has no start marker"
    );
}

#[test]
fn tradeoff_uses_last_row_of_matrix() {
    let accuracy = vec![
        vec![0.98, 0.10, 0.12],
        vec![0.90, 0.95, 0.11],
        vec![0.80, 0.70, 0.97],
    ];

    let tradeoff = series::tradeoff(&accuracy, 3).expect("three finished tasks");

    // Old tasks: mean of R[2][0] and R[2][1] = (0.80 + 0.70) / 2 = 0.75. New task: R[2][2].
    let expected = Tradeoff {
        old_tasks: 0.75,
        new_task: 0.97,
    };
    assert!(
        (tradeoff.old_tasks - expected.old_tasks).abs() < 1e-12,
        "old tasks: {tradeoff:?}"
    );
    assert_eq!(
        tradeoff.new_task, expected.new_task,
        "new task: {tradeoff:?}"
    );
}

#[test]
fn tradeoff_undefined_without_old_or_last_task() {
    let unfinished = vec![vec![0.98, 0.10, 0.12], vec![0.90, 0.95, 0.11]];
    assert_eq!(
        series::tradeoff(&unfinished, 3),
        None,
        "run stopped before the last task"
    );
    assert_eq!(
        series::tradeoff(&[vec![0.98]], 1),
        None,
        "one task has no old task"
    );
    assert_eq!(series::tradeoff(&[], 0), None, "no tasks");
}

#[test]
fn defined_segments_break_at_missing_values() {
    let points = [
        (0, Some(1.0)),
        (1, Some(2.0)),
        (2, None),
        (3, Some(f64::NAN)),
        (4, Some(5.0)),
    ];

    let segments = series::defined_segments(points);

    assert_eq!(
        segments,
        [vec![[0.0, 1.0], [1.0, 2.0]], vec![[4.0, 5.0]]],
        "None and NaN break the line"
    );
}

#[test]
fn label_slug_spells_out_greek_parameters() {
    let cases = [
        ("ewc λ=1000", "ewc-lambda-1000"),
        ("online-ewc λ=100 γ=0.9", "online-ewc-lambda-100-gamma-0.9"),
        ("lwf α=1 T=2", "lwf-alpha-1-t-2"),
        ("Fine Tune", "fine-tune"),
        ("  ", ""),
    ];
    for (label, expected) in cases {
        assert_eq!(series::label_slug(label), expected, "slug of {label:?}");
    }
}

#[test]
fn unique_slugs_number_collisions_and_empty_labels() {
    let slugs = series::unique_slugs(["ewc λ=1", "ewc λ 1", "", "ewc-lambda-1"]);

    assert_eq!(
        slugs,
        ["ewc-lambda-1", "ewc-lambda-1-2", "run-3", "ewc-lambda-1-3"],
        "distinct slugs"
    );
}

#[test]
fn pixel_size_scales_down_to_device_limit() {
    let (size, scale) = pixel_size(Vec2::new(400.0, 300.0), 8192);
    assert_eq!(
        (size, scale),
        ([800, 600], EXPORT_PIXELS_PER_POINT),
        "small figure at full scale"
    );

    let (size, scale) = pixel_size(Vec2::new(5000.0, 1000.0), 8192);
    assert!(size[0] <= 8192, "width {} fits the limit", size[0]);
    assert!(scale < EXPORT_PIXELS_PER_POINT, "scale {scale} is reduced");
}
