//! The numbers behind the insight views and the trade-off sweeps, checked on small results
//! built by hand, and the insight figures rendered on whatever adapter wgpu picks (Mesa's
//! lavapipe in CI).

use std::fs;
use std::sync::{Arc, OnceLock};

use super::insight_series::{
    DistanceKind, FirstLayerImportance, Histogram, WeightSource, distance_segments,
    first_layer_importance, fisher_views, histogram_bins, layers, weight_histograms,
    weight_view_tasks,
};
use super::series::{self, Tradeoff};
use super::*;
use crate::experiment::config::{ExperimentConfig, FisherKind, Method, MethodSpec, expand_runs};
use crate::experiment::insights::{
    AnchorDistance, FisherRecord, FisherSource, ParamVector, RunInsights,
};
use crate::experiment::results::{CurvePoint, DeviceInfo, RunResult, RunStatus, load_results};
use crate::model::{Architecture, IMAGE_PIXELS, Network, ParamLayout};

fn gpu() -> Arc<GpuContext> {
    static CONTEXT: OnceLock<Arc<GpuContext>> = OnceLock::new();
    CONTEXT
        .get_or_init(|| match GpuContext::new() {
            Ok(gpu) => gpu,
            Err(error) => panic!("plot tests need an adapter: {error}"),
        })
        .clone()
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ewc-workbench-insight-plots-{}-{name}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch directory should be creatable");
    dir
}

/// Builds results of the seed experiment (two tasks) with one run per spec, each with the
/// accuracy matrix `[[first, 0.1], [old, new]]` given next to it.
fn results_with(runs: &[(MethodSpec, [f64; 3])]) -> Results {
    let mut config = ExperimentConfig::preset("seed").expect("seed preset exists");
    config.methods = runs.iter().map(|(spec, _)| spec.clone()).collect();
    let specs = expand_runs(&config);
    let mut results = Results::new(config, DeviceInfo::default());
    for (spec, (_, [first, old, new])) in specs.iter().zip(runs) {
        let mut run = RunResult::new(spec);
        run.accuracy = vec![vec![*first, 0.1], vec![*old, *new]];
        run.update_metrics();
        results.runs.push(run);
    }
    results
}

fn seed_layout() -> ParamLayout {
    Network::new(&Architecture::SeedCnn, &[10]).layout
}

/// Insights of a two-task run on the seed CNN: `anchor` and `last` as the weights after each
/// task, and `fisher` after the first.
fn two_task_insights(
    anchor: Vec<f32>,
    last: Vec<f32>,
    fisher: Vec<f32>,
    source: FisherSource,
) -> RunInsights {
    let mut insights = RunInsights::new(seed_layout());
    insights.weights_after_task = vec![ParamVector(anchor), ParamVector(last)];
    insights.fishers = vec![FisherRecord {
        task: 0,
        source,
        kind: FisherKind::Exact,
        samples: 1000,
        reused_from: None,
        values: Some(ParamVector(fisher)),
    }];
    insights
}

fn ewc(lambda: f64) -> MethodSpec {
    MethodSpec::Ewc {
        lambda,
        fisher: FisherKind::Exact,
        fisher_samples: Some(1000),
    }
}

/// Builds finetune, l2, ewc and lwf runs of the seed CNN with shared first-task weights: θ*
/// is a small ramp, finetune moves every weight by +0.5, l2 by +0.1, ewc sets conv1 to 0.25,
/// and all share one Fisher F[i] = i · 1e-6 at θ*.
fn insight_results() -> Results {
    let mut results = results_with(&[
        (MethodSpec::Finetune, [0.98, 0.60, 0.88]),
        (MethodSpec::L2 { lambda: 1.0 }, [0.98, 0.75, 0.86]),
        (ewc(1000.0), [0.98, 0.90, 0.84]),
        (
            MethodSpec::Lwf {
                alpha: 1.0,
                temperature: 2.0,
            },
            [0.98, 0.80, 0.85],
        ),
    ]);
    let len = seed_layout().len;
    let anchor: Vec<f32> = (0..len).map(|i| (i % 97) as f32 * 1e-3 - 0.05).collect();
    let fisher: Vec<f32> = (0..len).map(|i| i as f32 * 1e-6).collect();
    let shifted = |shift: f32| {
        anchor
            .iter()
            .map(|weight| weight + shift)
            .collect::<Vec<f32>>()
    };
    let mut ewc_last = anchor.clone();
    ewc_last[0..320].fill(0.25);

    let finals = [shifted(0.5), shifted(0.1), ewc_last, shifted(-0.2)];
    let sources = [
        FisherSource::Insights,
        FisherSource::Insights,
        FisherSource::Method,
        FisherSource::Insights,
    ];
    for ((run, last), source) in results.runs.iter_mut().zip(finals).zip(sources) {
        let mut insights = two_task_insights(anchor.clone(), last.clone(), fisher.clone(), source);
        insights.distances = vec![
            AnchorDistance {
                step: 300,
                task: 1,
                euclidean: Some(0.5),
                fisher_weighted: Some(1e-3),
            },
            AnchorDistance {
                step: 400,
                task: 1,
                euclidean: Some(0.9),
                fisher_weighted: Some(4e-3),
            },
        ];
        run.insights = Some(insights);
        run.curve = [(100, 0), (200, 0), (300, 1), (400, 1)]
            .into_iter()
            .map(|(step, task)| CurvePoint {
                step,
                task,
                accuracy: vec![0.5, 0.5],
                loss: Some(0.4),
                penalty: Some(0.01),
            })
            .collect();
    }
    results
}

// --- Fisher importance -------------------------------------------------------------------------

#[test]
fn pixel_map_sums_units_of_each_pixel() {
    let layout = Network::new(&Architecture::Mlp { hidden: vec![3] }, &[10]).layout;
    let fisher: Vec<f32> = (0..layout.len).map(|i| i as f32).collect();

    let map = first_layer_importance(&layout, &fisher).expect("a dense first layer");

    let FirstLayerImportance::Pixels {
        layer,
        side,
        values,
    } = map
    else {
        panic!("expected a pixel map, got {map:?}");
    };
    assert_eq!(layer, "fc1", "layer name");
    assert_eq!(side, 28, "28×28 pixels");
    assert_eq!(values.len(), IMAGE_PIXELS, "one value per pixel");
    // fc1.weight is [3][784] at offset 0, so pixel p sums F[p] + F[784 + p] + F[1568 + p].
    for pixel in [0, 1, 27, 28, 400, 783] {
        let expected = (pixel + (784 + pixel) + (1568 + pixel)) as f64;
        assert_eq!(values[pixel], expected, "pixel {pixel}");
    }
    assert_eq!(
        map_max(&values),
        (783 + 1567 + 2351) as f64,
        "the last pixel is the largest"
    );
}

fn map_max(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

#[test]
fn kernel_tiles_follow_conv_layout() {
    let layout = seed_layout();
    let fisher: Vec<f32> = (0..layout.len).map(|i| i as f32).collect();

    let map = first_layer_importance(&layout, &fisher).expect("a convolution first");

    let FirstLayerImportance::Kernels {
        layer,
        side,
        kernels,
    } = &map
    else {
        panic!("expected kernel tiles, got {map:?}");
    };
    assert_eq!(layer, "conv1", "layer name");
    assert_eq!(*side, 3, "3×3 kernels");
    assert_eq!(kernels.len(), 32, "one tile per output channel");
    // conv1.weight is [32][1][3][3] at offset 0: kernel c, cell (row, column) is F[9c + 3 row + column].
    assert_eq!(
        kernels[0],
        [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        "kernel 0"
    );
    assert_eq!(kernels[5][4], 49.0, "kernel 5, centre cell");
    assert_eq!(kernels[31][8], 287.0, "kernel 31, last cell");
    assert_eq!(map.max(), 287.0, "the bias is not part of the map");
}

#[test]
fn fisher_views_draw_identical_values_once() {
    let mut results = insight_results();
    if let Some(insights) = results.runs[3].insights.as_mut()
        && let Some(values) = insights.fishers[0].values.as_mut()
    {
        values.0[7] = 1.0;
    }

    let views = fisher_views(&results);

    assert_eq!(views.len(), 2, "two distinct diagonals: {views:?}");
    assert_eq!(
        views[0].run, 2,
        "ewc, whose own estimate it is, draws the shared one"
    );
    assert_eq!(views[0].identical_runs, [0, 1], "finetune and l2 share it");
    assert_eq!(
        views[1].run, 3,
        "lwf's changed diagonal gets its own figure"
    );
    assert!(
        views[1].identical_runs.is_empty(),
        "nobody shares lwf's diagonal"
    );
}

// --- Where the weights go ----------------------------------------------------------------------

#[test]
fn weight_histograms_count_final_weights() {
    let results = insight_results();

    let data = weight_histograms(&results, 1).expect("weights stored around task 2");

    let expected_sources = [
        WeightSource::SharedAnchor(0),
        WeightSource::AfterTask(0),
        WeightSource::AfterTask(1),
        WeightSource::AfterTask(2),
    ];
    assert_eq!(
        data.sources, expected_sources,
        "θ* once, then finetune, l2, ewc; lwf left out"
    );
    let layout = seed_layout();
    for ((name, histograms), layer) in data.layers.iter().zip(layers(&layout)) {
        assert_eq!(*name, layer.name, "layer order");
        for (histogram, source) in histograms.iter().zip(&data.sources) {
            assert_eq!(
                histogram.total(),
                layer.len() as u64,
                "{name}, {source:?}: every weight counted"
            );
        }
    }

    // ewc's conv1 weights and biases are all 0.25 after task 2.
    let (name, conv1) = &data.layers[0];
    assert_eq!(name, "conv1", "first layer");
    let ewc = &conv1[3];
    let bin = ewc.bin_of(0.25).expect("0.25 is finite");
    assert_eq!(
        ewc.counts[bin], 320,
        "all 320 conv1 values in the bin of 0.25"
    );

    // finetune's histogram is that of its own final weights, over the shared bins.
    let finetune_last = results.runs[0]
        .insights
        .as_ref()
        .and_then(|insights| insights.weights_after(1))
        .expect("stored");
    let mut direct = Histogram::new(conv1[1].low, conv1[1].high, histogram_bins(320));
    for &weight in &finetune_last[0..320] {
        direct.add(f64::from(weight));
    }
    assert_eq!(
        conv1[1], direct,
        "finetune conv1 from its weights after task 2"
    );
}

#[test]
fn sweep_is_represented_by_best_run() {
    let mut results = insight_results();
    let mut second_ewc = results.runs[2].clone();
    second_ewc.label = "ewc λ=100".to_owned();
    second_ewc.accuracy[1] = vec![0.95, 0.90];
    second_ewc.update_metrics();
    results.runs.push(second_ewc);

    let data = weight_histograms(&results, 1).expect("weights stored");

    assert_eq!(
        data.sources.last(),
        Some(&WeightSource::AfterTask(4)),
        "the better ewc run"
    );
    assert_eq!(data.sources.len(), 4, "still one series per method");
}

#[test]
fn differing_anchors_get_one_series_each() {
    let mut results = insight_results();
    if let Some(insights) = results.runs[1].insights.as_mut() {
        insights.weights_after_task[0].0[0] += 1.0;
    }

    let data = weight_histograms(&results, 1).expect("weights stored");

    assert_eq!(
        data.sources[0],
        WeightSource::Anchor(0),
        "finetune's own θ*"
    );
    assert_eq!(
        data.sources[1],
        WeightSource::AfterTask(0),
        "then its final weights"
    );
    assert_eq!(data.sources.len(), 6, "θ* and final weights of three runs");
}

#[test]
fn weight_views_need_stored_weights() {
    let mut results = insight_results();
    assert_eq!(weight_view_tasks(&results), [1], "a view for task 2");

    for run in &mut results.runs {
        if let Some(insights) = run.insights.as_mut() {
            insights.weights_after_task.clear();
        }
    }

    assert!(
        weight_view_tasks(&results).is_empty(),
        "no weights, no view"
    );
    assert_eq!(weight_histograms(&results, 1), None, "no histograms either");
}

#[test]
fn distance_segments_start_at_anchor() {
    let results = insight_results();
    let run = &results.runs[0];

    let euclidean = distance_segments(run, DistanceKind::Euclidean, true, false);
    let weighted = distance_segments(run, DistanceKind::FisherWeighted, false, true);

    // Task 2 starts at step 200, the last point of task 1, where θ = θ*.
    assert_eq!(
        euclidean,
        [vec![[200.0, 0.0], [300.0, 0.5], [400.0, 0.9]]],
        "from zero"
    );
    let expected = [[300.0, 1e-3f64.log10()], [400.0, 4e-3f64.log10()]];
    assert_eq!(
        weighted,
        [expected.to_vec()],
        "log10 of the weighted distances"
    );
}

// --- The λ trade-off ---------------------------------------------------------------------------

#[test]
fn sweep_points_match_accuracy_matrices() {
    let mut results = results_with(&[
        (MethodSpec::Finetune, [0.98, 0.60, 0.88]),
        (ewc(1000.0), [0.98, 0.90, 0.80]),
        (ewc(10.0), [0.98, 0.70, 0.87]),
        (MethodSpec::L2 { lambda: 1.0 }, [0.98, 0.75, 0.86]),
        (ewc(100.0), [0.98, 0.82, 0.85]),
        (MethodSpec::Joint, [0.98, 0.97, 0.89]),
        (ewc(1e5), [0.98, 0.95, 0.20]),
    ]);
    results.runs[6].status = RunStatus::Cancelled;
    results.runs[6].accuracy.truncate(1);

    let sweeps = series::sweeps(&results);

    let methods: Vec<Method> = sweeps.iter().map(|sweep| sweep.method).collect();
    assert_eq!(
        methods,
        [Method::Finetune, Method::Joint, Method::L2, Method::Ewc],
        "order of Method::ALL"
    );
    let ewc = &sweeps[3];
    assert_eq!(ewc.parameter.as_deref(), Some("ewc.lambda"), "λ is swept");
    let runs: Vec<usize> = ewc.points.iter().map(|point| point.run).collect();
    assert_eq!(
        runs,
        [2, 4, 1],
        "by increasing λ; the cancelled run is left out"
    );
    let labels: Vec<&str> = ewc
        .points
        .iter()
        .map(|point| point.label.as_str())
        .collect();
    assert_eq!(labels, ["λ=10", "λ=100", "λ=1000"], "point labels");
    // Each point is the last row of its run's matrix: old = R[1][0], new = R[1][1].
    let expected = [(0.70, 0.87), (0.82, 0.85), (0.90, 0.80)];
    for (point, (old, new)) in ewc.points.iter().zip(expected) {
        assert_eq!(
            point.tradeoff,
            Tradeoff {
                old_tasks: old,
                new_task: new
            },
            "run {}",
            point.run
        );
    }
    assert_eq!(
        sweeps[0].points[0].label, "finetune",
        "a reference point keeps its label"
    );
    assert_eq!(
        sweeps[0].parameter, None,
        "fine-tuning has nothing to sweep"
    );
}

#[test]
fn sweeps_split_on_other_parameters() {
    let sampled = |lambda| MethodSpec::Ewc {
        lambda,
        fisher: FisherKind::Sampled,
        fisher_samples: Some(1000),
    };
    let results = results_with(&[
        (ewc(10.0), [0.98, 0.70, 0.87]),
        (ewc(100.0), [0.98, 0.80, 0.86]),
        (sampled(10.0), [0.98, 0.71, 0.87]),
        (sampled(100.0), [0.98, 0.81, 0.85]),
    ]);

    let sweeps = series::sweeps(&results);

    assert_eq!(sweeps.len(), 2, "one line per Fisher kind");
    assert_eq!(sweeps[0].name(), "ewc (fisher=exact)", "first sweep");
    assert_eq!(sweeps[1].name(), "ewc (fisher=sampled)", "second sweep");
    let runs: Vec<usize> = sweeps[1].points.iter().map(|point| point.run).collect();
    assert_eq!(runs, [2, 3], "sampled runs by λ");
}

// --- Reopening and rendering -------------------------------------------------------------------

#[test]
fn reopened_results_give_same_view_numbers() {
    let dir = scratch_dir("reopen");
    let results = insight_results();
    results.save_to_dir(&dir).expect("results are written");

    let reopened = load_results(&dir.join("results.json")).expect("results reopen");

    // serde_json may read a decimal float back one unit in the last place off, so the derived
    // metrics are not compared here. The stored vectors are base64 and must match exactly.
    for (read, written) in reopened.runs.iter().zip(&results.runs) {
        assert!(
            read.insights == written.insights,
            "{}: insights read back",
            written.label
        );
        assert_eq!(
            read.accuracy, written.accuracy,
            "{}: accuracy matrix",
            written.label
        );
    }
    assert!(
        weight_histograms(&reopened, 1) == weight_histograms(&results, 1),
        "weight histograms"
    );
    assert_eq!(
        fisher_views(&reopened),
        fisher_views(&results),
        "Fisher figures"
    );
    let fisher = |results: &Results| {
        let insights = results.runs[2].insights.as_ref().expect("insights");
        let values = &insights.fishers[0].values.as_ref().expect("values").0;
        first_layer_importance(&insights.layout, values)
    };
    assert_eq!(fisher(&reopened), fisher(&results), "first-layer map");
    assert_eq!(
        series::sweeps(&reopened),
        series::sweeps(&results),
        "trade-off sweeps"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn insight_figures_are_written_and_drawn() {
    let dir = scratch_dir("figures");
    let results = insight_results();

    let written = write_all_plots_on(&gpu(), &results, &dir).expect("plots are written");

    let names: Vec<String> = written
        .iter()
        .filter_map(|path| path.file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    let expected_insights = [
        "fisher-ewc-lambda-1000-task1.png",
        "weights-task2.png",
        WEIGHTS_DISTANCE_PNG,
    ];
    assert_eq!(
        names[names.len() - 3..],
        expected_insights,
        "insight figures come last: {names:?}"
    );
    for path in &written {
        let bytes = fs::read(path).expect("written PNG is readable");
        assert!(bytes.starts_with(b"\x89PNG"), "{} is a PNG", path.display());
    }

    // The colour bar shows the top colour in both images. Only the map adds the cells of the
    // largest Fisher values, and an all-zero diagonal has none.
    let mut flat = results.clone();
    if let Some(values) = flat.runs[2]
        .insights
        .as_mut()
        .and_then(|insights| insights.fishers[0].values.as_mut())
    {
        values.0.fill(0.0);
    }
    let mut renderer = OffscreenRenderer::new(&gpu());
    let mut top_colour_pixels = |results: &Results| {
        let image = renderer
            .render([1200, 760], 1.25, |ui| {
                draw_fisher_importance(ui, results, 2, 0)
            })
            .expect("renders");
        let top = insights::importance_colour(1.0).to_array();
        image
            .rgba
            .chunks_exact(4)
            .filter(|pixel| (0..3).all(|channel| pixel[channel].abs_diff(top[channel]) <= 3))
            .count()
    };
    let with_map = top_colour_pixels(&results);
    let without = top_colour_pixels(&flat);
    assert!(
        with_map > without,
        "the largest Fisher values are drawn: {with_map} against {without} pixels"
    );
    let _ = fs::remove_dir_all(&dir);
}
