//! The numbers behind the insight views, computed from a run's stored weights, Fisher diagonals
//! and distances without drawing anything, so that tests can check them directly.

use std::ops::Range;

use crate::experiment::config::Method;
use crate::experiment::insights::{AnchorDistance, RunInsights};
use crate::experiment::results::{Results, RunResult};
use crate::model::{IMAGE_PIXELS, IMAGE_SIDE, ParamLayout, Part};

use super::series;

/// Methods whose weights the weight-histogram view compares with θ*: no protection, the
/// plain L2 pull and the Fisher-weighted pull.
pub const WEIGHT_VIEW_METHODS: [Method; 4] =
    [Method::Finetune, Method::L2, Method::Ewc, Method::OnlineEwc];

/// Most bins of a histogram in the insight views.
pub const MAX_HISTOGRAM_BINS: usize = 60;
/// Fewest bins of a histogram in the insight views.
const MIN_HISTOGRAM_BINS: usize = 10;

/// Chooses the number of bins for a histogram of `count` values: √count (the square-root rule),
/// kept between 10 and [`MAX_HISTOGRAM_BINS`], so small layers do not break into spikes.
pub fn histogram_bins(count: usize) -> usize {
    ((count as f64).sqrt().round() as usize).clamp(MIN_HISTOGRAM_BINS, MAX_HISTOGRAM_BINS)
}

/// The first layer's Fisher information, arranged as its inputs are.
#[derive(Debug, Clone, PartialEq)]
pub enum FirstLayerImportance {
    /// A dense layer on the image: for each input pixel, the sum over the units it feeds of
    /// the Fisher entries of their weights from that pixel, `Σₒ F[o][pixel]`. `values` is
    /// row-major, `side` × `side`.
    Pixels {
        /// Layer name, such as `fc1`.
        layer: String,
        /// Side of the square image.
        side: usize,
        /// One sum per pixel.
        values: Vec<f64>,
    },
    /// A convolution: for each output channel, its kernel's Fisher entries summed over input
    /// channels, row-major `side` × `side`.
    Kernels {
        /// Layer name, such as `conv1`.
        layer: String,
        /// Kernel side.
        side: usize,
        /// One tile per output channel.
        kernels: Vec<Vec<f64>>,
    },
}

impl FirstLayerImportance {
    /// Returns the largest value in the map, or 0 for an empty one.
    pub fn max(&self) -> f64 {
        let values: Box<dyn Iterator<Item = &f64>> = match self {
            Self::Pixels { values, .. } => Box::new(values.iter()),
            Self::Kernels { kernels, .. } => Box::new(kernels.iter().flatten()),
        };
        values
            .copied()
            .filter(|value| value.is_finite())
            .fold(0.0, f64::max)
    }
}

/// Arranges the Fisher diagonal `fisher` of the first feature layer of `layout` by input:
/// per pixel for a dense layer reading the 28×28 image, per kernel for a convolution. Returns
/// `None` for other first layers or a vector shorter than the layout.
pub fn first_layer_importance(
    layout: &ParamLayout,
    fisher: &[f32],
) -> Option<FirstLayerImportance> {
    let entry = layout
        .entries
        .iter()
        .find(|entry| entry.part == Part::Features && entry.name.ends_with(".weight"))?;
    let values = fisher.get(entry.range())?;
    let layer = layer_name(&entry.name).to_owned();

    match *entry.shape.as_slice() {
        [_, inputs] if inputs == IMAGE_PIXELS => {
            let mut per_pixel = vec![0.0; inputs];
            for unit in values.chunks_exact(inputs) {
                for (sum, &importance) in per_pixel.iter_mut().zip(unit) {
                    *sum += f64::from(importance);
                }
            }
            Some(FirstLayerImportance::Pixels {
                layer,
                side: IMAGE_SIDE,
                values: per_pixel,
            })
        }
        [_, in_channels, side, width] if side == width && in_channels > 0 && side > 0 => {
            let kernels = values
                .chunks_exact(in_channels * side * side)
                .map(|kernel| {
                    let mut tile = vec![0.0; side * side];
                    for channel in kernel.chunks_exact(side * side) {
                        for (sum, &importance) in tile.iter_mut().zip(channel) {
                            *sum += f64::from(importance);
                        }
                    }
                    tile
                })
                .collect();
            Some(FirstLayerImportance::Kernels {
                layer,
                side,
                kernels,
            })
        }
        _ => None,
    }
}

/// A layer's tensors in the flat parameter vector: its weight and bias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRanges {
    /// Layer name: the tensor names without `.weight` or `.bias`.
    pub name: String,
    /// Index ranges of its tensors, in layout order.
    pub ranges: Vec<Range<usize>>,
}

impl LayerRanges {
    /// Returns the number of parameters in the layer.
    pub fn len(&self) -> usize {
        self.ranges.iter().map(ExactSizeIterator::len).sum()
    }

    /// Returns whether the layer has no parameters.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterates over the layer's values in `vector`, a vector in the layout.
    pub fn values<'a>(&'a self, vector: &'a [f32]) -> impl Iterator<Item = f32> + 'a {
        self.ranges
            .iter()
            .flat_map(move |range| vector[range.clone()].iter().copied())
    }
}

/// Groups the tensors of `layout` into layers by the name before the last dot, in layout order.
pub fn layers(layout: &ParamLayout) -> Vec<LayerRanges> {
    let mut layers: Vec<LayerRanges> = Vec::new();
    for entry in &layout.entries {
        let name = layer_name(&entry.name);
        match layers.iter_mut().find(|layer| layer.name == name) {
            Some(layer) => layer.ranges.push(entry.range()),
            None => layers.push(LayerRanges {
                name: name.to_owned(),
                ranges: vec![entry.range()],
            }),
        }
    }
    layers
}

fn layer_name(tensor: &str) -> &str {
    tensor.rsplit_once('.').map_or(tensor, |(layer, _)| layer)
}

/// Counts of values in equal bins between `low` and `high`.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Left edge of the first bin.
    pub low: f64,
    /// Right edge of the last bin.
    pub high: f64,
    /// Values per bin.
    pub counts: Vec<u64>,
}

impl Histogram {
    /// Creates `bins` empty bins between `low` and `high`.
    pub fn new(low: f64, high: f64, bins: usize) -> Self {
        Self {
            low,
            high,
            counts: vec![0; bins.max(1)],
        }
    }

    /// Returns the width of each bin.
    pub fn bin_width(&self) -> f64 {
        (self.high - self.low) / self.counts.len() as f64
    }

    /// Returns the bin of a finite `value`; values outside the range go to the nearest end bin.
    /// Returns `None` for NaN and infinities.
    pub fn bin_of(&self, value: f64) -> Option<usize> {
        if !value.is_finite() {
            return None;
        }
        let last = self.counts.len() - 1;
        let width = self.bin_width();
        if width <= 0.0 || !width.is_finite() {
            return Some(0);
        }
        let position = ((value - self.low) / width).floor();
        Some(if position <= 0.0 {
            0
        } else {
            (position as usize).min(last)
        })
    }

    /// Counts `value` in its bin; NaN and infinities are not counted.
    pub fn add(&mut self, value: f64) {
        if let Some(bin) = self.bin_of(value) {
            self.counts[bin] += 1;
        }
    }

    /// Returns the number of values counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Returns the outline of the histogram as `[x, count]` corners, a step drawn over every
    /// bin and down to 0 at both ends.
    pub fn outline(&self) -> Vec<[f64; 2]> {
        let width = self.bin_width();
        let mut points = vec![[self.low, 0.0]];
        for (bin, &count) in self.counts.iter().enumerate() {
            let left = self.low + bin as f64 * width;
            points.push([left, count as f64]);
            points.push([left + width, count as f64]);
        }
        points.push([self.high, 0.0]);
        points
    }
}

/// Returns the range of the finite values in `values`, widened when empty or a single point
/// so that it has positive width.
pub fn finite_range(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let (low, high) = values
        .into_iter()
        .filter(|value| value.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), value| {
            (low.min(value), high.max(value))
        });
    if low > high {
        return (0.0, 1.0);
    }
    if low == high {
        let half_width = 0.5 * low.abs().max(1e-6);
        return (low - half_width, high + half_width);
    }
    (low, high)
}

/// A histogram of log₁₀ of the positive values of a layer, with the values that are exactly
/// 0 counted apart, because a log scale has no place for them.
#[derive(Debug, Clone, PartialEq)]
pub struct LogHistogram {
    /// Layer name.
    pub layer: String,
    /// Counts over log₁₀ of the positive values.
    pub histogram: Histogram,
    /// Values equal to 0 (or negative, which a Fisher diagonal never is).
    pub zeros: u64,
}

/// Computes one [`LogHistogram`] per layer of `layout` from `values`, a vector in that layout,
/// with [`histogram_bins`] bins.
pub fn log_histograms(layout: &ParamLayout, values: &[f32]) -> Vec<LogHistogram> {
    layers(layout)
        .into_iter()
        .map(|layer| {
            let logs: Vec<f64> = layer
                .values(values)
                .filter(|&value| value > 0.0)
                .map(|value| f64::from(value).log10())
                .collect();
            let (low, high) = finite_range(logs.iter().copied());
            let mut histogram = Histogram::new(low, high, histogram_bins(logs.len()));
            for log in &logs {
                histogram.add(*log);
            }
            let zeros = layer.values(values).filter(|&value| value <= 0.0).count() as u64;
            LogHistogram {
                layer: layer.name,
                histogram,
                zeros,
            }
        })
        .collect()
}

/// A Fisher diagonal worth its own figure: the run and task it belongs to, and the other runs
/// whose diagonal after the same task is bit-identical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FisherView {
    /// Index of the run whose record the figure draws.
    pub run: usize,
    /// The task after which the diagonal was estimated.
    pub task: usize,
    /// Other runs with bit-identical values after the same task.
    pub identical_runs: Vec<usize>,
}

/// Lists the stored Fisher diagonals to draw, one per distinct diagonal and task, in task
/// order. Among bit-identical diagonals, the first run whose method estimated it itself (EWC,
/// online EWC) draws it, else the first run.
pub fn fisher_views(results: &Results) -> Vec<FisherView> {
    let task_count = results
        .runs
        .iter()
        .filter_map(|run| run.insights.as_ref())
        .flat_map(|insights| &insights.fishers)
        .map(|record| record.task + 1)
        .max()
        .unwrap_or(0);
    let mut views = Vec::new();
    for task in 0..task_count {
        let mut candidates: Vec<(usize, &[f32])> = results
            .runs
            .iter()
            .enumerate()
            .filter_map(|(index, run)| Some((index, stored_fisher(run.insights.as_ref()?, task)?)))
            .collect();
        // A stable sort puts the methods' own estimates first and keeps run order otherwise.
        candidates.sort_by_key(|&(index, _)| !has_own_fisher(&results.runs[index]));

        let mut task_views: Vec<(FisherView, &[f32])> = Vec::new();
        for (index, values) in candidates {
            match task_views
                .iter_mut()
                .find(|(_, drawn)| same_bits(drawn, values))
            {
                Some((view, _)) => view.identical_runs.push(index),
                None => task_views.push((
                    FisherView {
                        run: index,
                        task,
                        identical_runs: Vec::new(),
                    },
                    values,
                )),
            }
        }
        let mut task_views: Vec<FisherView> =
            task_views.into_iter().map(|(view, _)| view).collect();
        task_views.sort_by_key(|view| view.run);
        for view in &mut task_views {
            view.identical_runs.sort_unstable();
        }
        views.extend(task_views);
    }
    views
}

fn stored_fisher(insights: &RunInsights, task: usize) -> Option<&[f32]> {
    let values = insights.fisher_after(task)?.values.as_ref()?;
    Some(values.0.as_slice())
}

fn has_own_fisher(run: &RunResult) -> bool {
    matches!(run.method, Method::Ewc | Method::OnlineEwc)
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// The source of one series of the weight histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightSource {
    /// θ*, the weights after the previous task, bit-identical in every compared run; the
    /// index is the first such run.
    SharedAnchor(usize),
    /// θ* of this run, which differs from the other runs' θ*.
    Anchor(usize),
    /// This run's weights after the task.
    AfterTask(usize),
}

/// The weight histograms of one task: per layer, the distribution of θ* (the weights after
/// task `task − 1`) and of the weights after task `task` of one run per method of
/// [`WEIGHT_VIEW_METHODS`], over shared bins so that the counts compare.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightHistograms {
    /// The task whose training moved the weights away from θ*; at least 1.
    pub task: usize,
    /// The series, in drawing order.
    pub sources: Vec<WeightSource>,
    /// Per layer: its name and one histogram per series.
    pub layers: Vec<(String, Vec<Histogram>)>,
}

/// Lists the tasks with a weight-histogram view: every task from the second on for which
/// some run of [`WEIGHT_VIEW_METHODS`] stored its weights before and after.
pub fn weight_view_tasks(results: &Results) -> Vec<usize> {
    let task_count = results.tasks.len();
    (1..task_count)
        .filter(|&task| !compared_runs(results, task).is_empty())
        .collect()
}

/// Finds one run per method of [`WEIGHT_VIEW_METHODS`], in that order, with weights stored
/// after tasks `task − 1` and `task` in the layout of the first such run.
///
/// Of a sweep, the run with the best average accuracy stands for its method (the first on a
/// tie), so that the figure keeps one line per method.
fn compared_runs(results: &Results, task: usize) -> Vec<(usize, &RunInsights)> {
    let stored = |run: &RunResult| -> bool {
        run.insights.as_ref().is_some_and(|insights| {
            task > 0
                && insights.weights_after(task - 1).is_some()
                && insights.weights_after(task).is_some()
        })
    };
    let mut runs: Vec<(usize, &RunInsights)> = Vec::new();
    for method in WEIGHT_VIEW_METHODS {
        let mut best: Option<(usize, &RunResult)> = None;
        for (index, run) in results.runs.iter().enumerate() {
            if run.method != method || !stored(run) {
                continue;
            }
            let accuracy =
                |run: &RunResult| run.metrics.average_accuracy.unwrap_or(f64::NEG_INFINITY);
            if best.is_none_or(|(_, current)| accuracy(run) > accuracy(current)) {
                best = Some((index, run));
            }
        }
        if let Some((index, run)) = best
            && let Some(insights) = &run.insights
        {
            runs.push((index, insights));
        }
    }

    if let Some(&(_, first)) = runs.first() {
        let layout = first.layout.clone();
        runs.retain(|(_, insights)| insights.layout == layout);
    }
    runs
}

/// Computes the weight histograms of task `task` (at least 1), with [`histogram_bins`] bins
/// for each layer's size, or `None` when no compared run stored the weights around it.
pub fn weight_histograms(results: &Results, task: usize) -> Option<WeightHistograms> {
    let runs = compared_runs(results, task);
    let &(first_run, first) = runs.first()?;

    let anchors_shared = runs
        .iter()
        .all(|(_, insights)| same_bits(anchor_of(insights, task), anchor_of(first, task)));
    let mut sources = Vec::new();
    let mut vectors: Vec<&[f32]> = Vec::new();
    if anchors_shared {
        sources.push(WeightSource::SharedAnchor(first_run));
        vectors.push(anchor_of(first, task));
    }
    for &(index, insights) in &runs {
        if !anchors_shared {
            sources.push(WeightSource::Anchor(index));
            vectors.push(anchor_of(insights, task));
        }
        sources.push(WeightSource::AfterTask(index));
        vectors.push(insights.weights_after(task).unwrap_or_default());
    }

    let layers = layers(&first.layout)
        .into_iter()
        .map(|layer| {
            let all_values = vectors
                .iter()
                .flat_map(|vector| layer.values(vector))
                .map(f64::from);
            let (low, high) = finite_range(all_values);
            let bins = histogram_bins(layer.len());
            let histograms = vectors
                .iter()
                .map(|vector| {
                    let mut histogram = Histogram::new(low, high, bins);
                    for value in layer.values(vector) {
                        histogram.add(f64::from(value));
                    }
                    histogram
                })
                .collect();
            (layer.name, histograms)
        })
        .collect();
    Some(WeightHistograms {
        task,
        sources,
        layers,
    })
}

/// Returns θ* of task `task`: the stored weights after task `task − 1`, or nothing.
fn anchor_of(insights: &RunInsights, task: usize) -> &[f32] {
    insights.weights_after(task - 1).unwrap_or_default()
}

/// A distance from θ* to plot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistanceKind {
    /// ‖θ − θ*‖₂.
    Euclidean,
    /// Σᵢ Fᵢ (θᵢ − θ*ᵢ)².
    FisherWeighted,
}

impl DistanceKind {
    fn of(self, distance: &AnchorDistance) -> Option<f64> {
        match self {
            Self::Euclidean => distance.euclidean,
            Self::FisherWeighted => distance.fisher_weighted,
        }
    }
}

/// Collects a run's distances from θ* over steps as line segments, one or more per task
/// because θ* changes when a task begins.
///
/// With `from_zero`, each task's line starts at 0 where the task began, where θ = θ* by
/// definition. With `log10`, values are replaced by their base-10 logarithm and values that
/// are not positive are left out.
pub fn distance_segments(
    run: &RunResult,
    kind: DistanceKind,
    from_zero: bool,
    log10: bool,
) -> Vec<Vec<[f64; 2]>> {
    let Some(insights) = &run.insights else {
        return Vec::new();
    };
    let starts = series::task_starts(&run.curve);
    let mut segments = Vec::new();
    let mut tasks: Vec<usize> = insights
        .distances
        .iter()
        .map(|distance| distance.task)
        .collect();
    tasks.dedup();
    for task in tasks {
        let start = starts
            .iter()
            .find(|start| start.task == task)
            .filter(|_| from_zero)
            .map(|start| (start.step, Some(0.0)));
        let points = insights
            .distances
            .iter()
            .filter(|distance| distance.task == task)
            .map(|distance| (distance.step, kind.of(distance)));
        let transformed = start.into_iter().chain(points).map(|(step, value)| {
            let value = if log10 {
                value.filter(|&value| value > 0.0).map(f64::log10)
            } else {
                value
            };
            (step, value)
        });
        segments.extend(series::defined_segments(transformed));
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Architecture, Network};

    #[test]
    fn layers_group_weight_and_bias() {
        let layout = Network::new(&Architecture::SeedCnn, &[10]).layout;

        let layers = layers(&layout);

        let names: Vec<&str> = layers.iter().map(|layer| layer.name.as_str()).collect();
        assert_eq!(names, ["conv1", "head0"], "one entry per layer");
        assert_eq!(layers[0].len(), 32 * 9 + 32, "conv1 weights and biases");
        assert_eq!(layers[1].len(), 5408 * 10 + 10, "head weights and biases");
    }

    #[test]
    fn histogram_bins_clamp_and_skip_nonfinite() {
        let mut histogram = Histogram::new(0.0, 1.0, 4);
        for value in [
            0.0,
            0.24,
            0.25,
            0.99,
            1.0,
            -3.0,
            7.0,
            f64::NAN,
            f64::INFINITY,
        ] {
            histogram.add(value);
        }

        // Bins of width 0.25: 0, 0.24 and the clamped -3 in bin 0; 0.25 in bin 1; 0.99, 1.0
        // and the clamped 7 in bin 3. NaN and ∞ are not counted.
        assert_eq!(histogram.counts, [3, 1, 0, 3], "counts per bin");
        assert_eq!(histogram.total(), 7, "finite values counted");
    }

    #[test]
    fn finite_range_widens_degenerate_input() {
        assert_eq!(
            finite_range([2.0, -1.0, f64::NAN]),
            (-1.0, 2.0),
            "ignores NaN"
        );
        assert_eq!(finite_range([]), (0.0, 1.0), "empty input");
        let (low, high) = finite_range([4.0, 4.0]);
        assert!(low < 4.0, "a single value gets a range below it: {low}");
        assert!(high > 4.0, "a single value gets a range above it: {high}");
    }

    #[test]
    fn log_histograms_count_zeros_apart() {
        let layout = Network::new(&Architecture::Mlp { hidden: vec![1] }, &[1]).layout;
        let mut fisher = vec![0.0f32; layout.len];
        fisher[0] = 1e-3;
        fisher[1] = 1e-1;

        let histograms = log_histograms(&layout, &fisher);

        let fc1 = &histograms[0];
        assert_eq!(fc1.layer, "fc1", "first layer");
        assert_eq!(fc1.histogram.total(), 2, "two positive values");
        assert_eq!(fc1.zeros, 784 + 1 - 2, "the rest of fc1 is zero");
        // f32 stores 1e-3 and 1e-1 to about 7 digits, so their log10 is -3 and -1 to about 1e-7.
        assert!(
            (fc1.histogram.low + 3.0).abs() < 1e-6,
            "log10 range starts at -3: {fc1:?}"
        );
        assert!(
            (fc1.histogram.high + 1.0).abs() < 1e-6,
            "log10 range ends at -1: {fc1:?}"
        );
    }
}
