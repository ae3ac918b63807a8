//! The insight records of a short real experiment on the bundled data, trained on whatever
//! adapter wgpu picks (Mesa's lavapipe in CI). The tests check the shared first-task weights,
//! the Fisher diagonals and their reuse, the distances from θ*, and a results file that
//! redraws every view.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

use ewc_workbench::experiment::config::{ExperimentConfig, apply_methods_list, apply_set};
use ewc_workbench::experiment::insights::{
    FisherSource, RunInsights, euclidean_distance, fisher_weighted_distance,
};
use ewc_workbench::experiment::results::{Results, RunStatus, load_results};
use ewc_workbench::experiment::runner::{self, PreparedTasks, RunEvent, run_experiment};
use ewc_workbench::gpu::GpuContext;
use ewc_workbench::model::IMAGE_PIXELS;
use ewc_workbench::plots;

/// Training images per task: four steps of the default batch of 64.
const LIMIT: usize = 256;
/// Test images per task kept, so that evaluation stays cheap on a software adapter.
const TEST_LIMIT: usize = 200;

fn bundled_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets")
}

fn gpu() -> Arc<GpuContext> {
    static CONTEXT: OnceLock<Arc<GpuContext>> = OnceLock::new();
    CONTEXT
        .get_or_init(|| GpuContext::new().unwrap_or_else(|error| panic!("no GPU context: {error}")))
        .clone()
}

/// Trains the seed experiment on the bundled data with every method that the views compare,
/// a curve point every 2 steps, once for all tests in this file.
fn short_experiment() -> &'static Results {
    static RESULTS: OnceLock<Results> = OnceLock::new();
    RESULTS.get_or_init(|| {
        let mut config = ExperimentConfig::preset("seed").expect("the seed preset exists");
        apply_methods_list(&mut config, "finetune,l2,ewc,lwf,joint").expect("methods exist");
        for setting in ["training.eval_every=2", "ewc.fisher_samples=128"] {
            apply_set(&mut config, setting).unwrap_or_else(|error| panic!("{setting}: {error}"));
        }
        config.training.limit = Some(LIMIT);
        config.training.eval_limit = Some(100);
        config.data_dir = Some(bundled_dir());
        config
            .validate()
            .unwrap_or_else(|error| panic!("invalid test experiment: {error}"));

        let mut tasks = runner::load_tasks(&config, Some(&bundled_dir()))
            .unwrap_or_else(|error| panic!("bundled data failed to load: {error}"));
        for task in &mut tasks {
            task.test.images.truncate(TEST_LIMIT * IMAGE_PIXELS);
            task.test.labels.truncate(TEST_LIMIT);
        }
        let prepared =
            PreparedTasks::new(tasks, config.head, config.training.eval_limit, config.seed);
        let (sender, _receiver) = mpsc::channel::<RunEvent>();
        let results = run_experiment(&gpu(), &config, &prepared, &sender, &AtomicBool::new(false));
        for run in &results.runs {
            assert_eq!(
                run.status,
                RunStatus::Completed,
                "{}: {}",
                run.label,
                run.message
            );
        }
        results
    })
}

fn insights_of<'a>(results: &'a Results, method: &str) -> &'a RunInsights {
    let run = results
        .runs
        .iter()
        .find(|run| run.label.starts_with(method))
        .unwrap_or_else(|| panic!("no {method} run"));
    run.insights
        .as_ref()
        .unwrap_or_else(|| panic!("{}: no insights recorded", run.label))
}

/// Compares insights read back from a file with those written, bit for bit. The stored vectors
/// are base64. The distances are decimal JSON numbers, which read back exactly because the
/// crate turns on serde_json's `float_roundtrip` feature.
fn assert_same_insights(read: Option<&RunInsights>, written: Option<&RunInsights>, label: &str) {
    let (Some(read), Some(written)) = (read, written) else {
        assert_eq!(
            read.is_some(),
            written.is_some(),
            "{label}: insights present"
        );
        return;
    };
    // Not assert_eq on vectors: the message would print every stored weight.
    assert!(read.layout == written.layout, "{label}: layout read back");
    assert!(
        read.weights_after_task == written.weights_after_task,
        "{label}: weights read back"
    );
    assert!(
        read.fishers == written.fishers,
        "{label}: Fisher records read back"
    );
    assert_eq!(
        read.distances.len(),
        written.distances.len(),
        "{label}: distance count"
    );
    let same = |a: Option<f64>, b: Option<f64>| a.map(f64::to_bits) == b.map(f64::to_bits);
    for (a, b) in read.distances.iter().zip(&written.distances) {
        assert_eq!(
            (a.step, a.task),
            (b.step, b.task),
            "{label}: distance point"
        );
        assert!(
            same(a.euclidean, b.euclidean),
            "{label}: ‖θ − θ*‖ at step {}",
            b.step
        );
        assert!(
            same(a.fisher_weighted, b.fisher_weighted),
            "{label}: Σ F (θ − θ*)² at {}",
            b.step
        );
    }
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|value| value.to_bits()).collect()
}

#[test]
fn first_task_weights_are_identical_across_methods() {
    let results = short_experiment();
    let reference = insights_of(results, "finetune")
        .weights_after(0)
        .expect("weights stored");

    for run in &results.runs {
        let insights = run.insights.as_ref().expect("insights recorded");
        let weights = insights
            .weights_after(0)
            .expect("weights after task 1 stored");
        assert_eq!(
            bits(weights),
            bits(reference),
            "{}: weights after task 1",
            run.label
        );
        assert!(
            insights.weights_after(1).is_some(),
            "{}: weights after task 2",
            run.label
        );
    }
}

#[test]
fn insight_fisher_is_computed_once_and_reused() {
    let results = short_experiment();
    let finetune = insights_of(results, "finetune")
        .fisher_after(0)
        .expect("a Fisher record");
    let ewc = insights_of(results, "ewc")
        .fisher_after(0)
        .expect("a Fisher record");

    assert_eq!(
        finetune.source,
        FisherSource::Insights,
        "finetune: an insight pass"
    );
    assert_eq!(
        finetune.reused_from, None,
        "finetune, the first run, estimates it"
    );
    assert_eq!(
        finetune.samples, 128,
        "finetune: the EWC run's sample count"
    );
    assert_eq!(ewc.source, FisherSource::Method, "ewc: its own Fisher");
    let finetune_values = &finetune.values.as_ref().expect("values stored").0;
    let ewc_values = &ewc.values.as_ref().expect("values stored").0;
    assert_eq!(
        bits(ewc_values),
        bits(finetune_values),
        "the same estimate at the same weights"
    );
    for method in ["l2", "lwf", "joint"] {
        let record = insights_of(results, method)
            .fisher_after(0)
            .expect("a Fisher record");
        assert_eq!(
            record.reused_from.as_deref(),
            Some("finetune"),
            "{method}: reused"
        );
    }
    assert!(
        insights_of(results, "l2").fisher_seconds == 0.0,
        "l2 ran no Fisher pass of its own"
    );
}

#[test]
fn last_distance_matches_final_weights() {
    let results = short_experiment();
    for run in &results.runs {
        let insights = run.insights.as_ref().expect("insights recorded");
        let anchor = insights.weights_after(0).expect("anchor stored");
        let last = insights.weights_after(1).expect("final weights stored");
        let fisher = &insights
            .fisher_after(0)
            .and_then(|record| record.values.as_ref());
        let fisher = &fisher.expect("Fisher values stored").0;

        let point = insights.distances.last().expect("distances during task 2");
        let final_step = run.curve.last().expect("a curve").step;
        assert_eq!(
            point.step, final_step,
            "{}: the last point is the end of training",
            run.label
        );
        assert!(
            insights.distances.iter().all(|distance| distance.task == 1),
            "{}: distances only while θ* exists",
            run.label
        );
        let euclidean = point.euclidean.expect("a finite distance");
        let expected = euclidean_distance(last, anchor);
        assert!(
            (euclidean - expected).abs() <= 1e-9 * expected,
            "{}: ‖θ − θ*‖",
            run.label
        );
        let weighted = point.fisher_weighted.expect("a weighted distance");
        let expected = fisher_weighted_distance(last, anchor, fisher);
        assert!(
            (weighted - expected).abs() <= 1e-9 * expected,
            "{}: Σ F (θ − θ*)²",
            run.label
        );
    }
}

#[test]
fn saved_results_redraw_every_view() {
    let results = short_experiment();
    let dir = std::env::temp_dir().join(format!("ewc-workbench-insights-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory should be creatable");

    results.save_to_dir(&dir).expect("results are written");
    let reopened = load_results(&dir.join("results.json")).expect("results reopen");
    for (read, written) in reopened.runs.iter().zip(&results.runs) {
        assert_same_insights(
            read.insights.as_ref(),
            written.insights.as_ref(),
            &written.label,
        );
        assert_eq!(
            read.accuracy.len(),
            written.accuracy.len(),
            "{}: accuracy rows",
            written.label
        );
    }
    let written = plots::write_all_plots_on(&gpu(), &reopened, &dir).expect("plots are written");

    let names: Vec<String> = written
        .iter()
        .filter_map(|path| path.file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    for expected in [
        "tradeoff.png",
        "penalty-ewc-lambda-1000.png",
        "fisher-ewc-lambda-1000-task1.png",
        "weights-task2.png",
        "weights-distance.png",
    ] {
        assert!(
            names.iter().any(|name| name == expected),
            "{expected} in {names:?}"
        );
    }
    assert!(
        !names.iter().any(|name| name.starts_with("fisher-finetune")),
        "an identical Fisher is drawn once: {names:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
