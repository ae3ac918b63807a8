//! What a run records for the insight views: where its weights go on each new task and what
//! the Fisher information says about them.
//!
//! With `training.insights` on, every run records its parameter layout and, at each curve
//! point from the second task on, two distances from θ*, the weights after the previous task:
//!
//! - ‖θ − θ*‖₂, the plain Euclidean distance;
//! - Σᵢ Fᵢ (θᵢ − θ*ᵢ)², weighted by the Fisher diagonal F at θ*. For EWC with two tasks, λ/2
//!   times this is the penalty; for every method it says how far the weights moved along the
//!   directions that matter to the previous task.
//!
//! F is the diagonal of the previous task alone, at θ*. EWC and online EWC use the diagonal
//! they estimate themselves; online EWC's running sum γ·F + F_new is not used, so the numbers
//! compare across methods. Every other run gets a Fisher pass of its own at θ*, with the
//! estimator (kind and sample count) of the experiment's first EWC or online EWC run, or
//! exact over [`DEFAULT_FISHER_SAMPLES`] samples when there is none.
//!
//! All methods train the first task identically from the same seed, so their weights after it
//! are bit-identical. [`FisherCache`] keeps the Fisher diagonals at those weights, and a later
//! run whose weights match bit for bit reuses one instead of running the pass again; the
//! record names the run it came from. Later anchors differ between methods, so only the first
//! task's diagonals are kept.
//!
//! With `training.record_weights` on (or `auto` on a small network), results also store the
//! weights after each task and the Fisher diagonals, as [`ParamVector`]s, so that a reopened
//! results file redraws the weight and Fisher views.

use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::config::{DEFAULT_FISHER_SAMPLES, ExperimentConfig, FisherKind, MethodSpec};
use crate::model::ParamLayout;

/// The numbers behind a run's insight views: the `insights` entry of a run in `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInsights {
    /// The flat parameter layout that the stored vectors follow: names, offsets, lengths and
    /// shapes of the tensors.
    pub layout: ParamLayout,
    /// Distances from θ* at each curve point from the second task on, in step order.
    #[serde(default)]
    pub distances: Vec<AnchorDistance>,
    /// Weights after each finished task; empty unless weights are recorded.
    #[serde(default)]
    pub weights_after_task: Vec<ParamVector>,
    /// The Fisher diagonal at the weights after each finished task but the last, in task
    /// order; values only when weights are recorded.
    #[serde(default)]
    pub fishers: Vec<FisherRecord>,
    /// Wall-clock seconds of Fisher passes run for these insights alone, not counted in the
    /// run's `train_seconds` or `fisher_seconds`.
    #[serde(default)]
    pub fisher_seconds: f64,
}

impl RunInsights {
    /// Creates empty insights for a network with `layout`.
    pub fn new(layout: ParamLayout) -> Self {
        Self {
            layout,
            distances: Vec::new(),
            weights_after_task: Vec::new(),
            fishers: Vec::new(),
            fisher_seconds: 0.0,
        }
    }

    /// Returns the stored weights after task `task`, if recorded.
    pub fn weights_after(&self, task: usize) -> Option<&[f32]> {
        self.weights_after_task
            .get(task)
            .map(|weights| weights.0.as_slice())
    }

    /// Returns the Fisher record at the weights after task `task`, if the run has one.
    pub fn fisher_after(&self, task: usize) -> Option<&FisherRecord> {
        self.fishers.iter().find(|record| record.task == task)
    }

    /// Checks that every stored vector has one value per parameter of the layout and that the
    /// layout's tensors lie inside it. Returns a message naming the first mismatch.
    pub fn check(&self) -> Result<(), String> {
        for entry in &self.layout.entries {
            if entry.offset + entry.len > self.layout.len {
                return Err(format!(
                    "layout entry {} ends at {} but the layout has {} parameters",
                    entry.name,
                    entry.offset + entry.len,
                    self.layout.len
                ));
            }
        }
        for (task, weights) in self.weights_after_task.iter().enumerate() {
            if weights.0.len() != self.layout.len {
                return Err(format!(
                    "weights_after_task[{task}] has {} values but the layout has {} parameters",
                    weights.0.len(),
                    self.layout.len
                ));
            }
        }
        for record in &self.fishers {
            if let Some(values) = &record.values
                && values.0.len() != self.layout.len
            {
                return Err(format!(
                    "the Fisher after task {} has {} values but the layout has {} parameters",
                    record.task,
                    values.0.len(),
                    self.layout.len
                ));
            }
        }
        Ok(())
    }
}

/// How far the weights are from θ* at one curve point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AnchorDistance {
    /// Optimizer steps since the start of the run, as on the curve point.
    pub step: u64,
    /// Index of the task being trained; θ* is the weights after task `task − 1`.
    pub task: usize,
    /// ‖θ − θ*‖₂; `None` when not finite.
    pub euclidean: Option<f64>,
    /// Σᵢ Fᵢ (θᵢ − θ*ᵢ)² with F the Fisher diagonal at θ*; `None` when there is no Fisher at θ*
    /// or the sum is not finite.
    pub fisher_weighted: Option<f64>,
}

/// Which code estimated a stored Fisher diagonal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FisherSource {
    /// The method itself (EWC, online EWC); its penalty uses these values.
    Method,
    /// A pass run only for the insight views.
    Insights,
}

/// A Fisher diagonal at the weights after one task, and how it was estimated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FisherRecord {
    /// The task whose training data the diagonal averages over, at the weights after it.
    pub task: usize,
    /// Which code estimated it.
    pub source: FisherSource,
    /// Distribution over labels: exact, sampled or empirical.
    pub kind: FisherKind,
    /// Training samples averaged over.
    pub samples: usize,
    /// Label of the earlier run whose bit-identical weights gave these values, when they were
    /// reused rather than estimated in this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<String>,
    /// The diagonal, one value per parameter; absent unless weights are recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<ParamVector>,
}

/// One `f32` per parameter in layout order, stored in JSON as base64 (RFC 4648, standard
/// alphabet, padded) of the little-endian bytes.
///
/// Base64 keeps every bit and takes 5.33 bytes per value, against about 12 for decimal text.
/// In Python: `numpy.frombuffer(base64.b64decode(text), "<f4")`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamVector(pub Vec<f32>);

impl Serialize for ParamVector {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = self
            .0
            .iter()
            .flat_map(|value| value.to_le_bytes())
            .collect();
        serializer.serialize_str(&encode_base64(&bytes))
    }
}

impl<'de> Deserialize<'de> for ParamVector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = decode_base64(&text).map_err(serde::de::Error::custom)?;
        if bytes.len() % 4 != 0 {
            return Err(serde::de::Error::custom(format!(
                "invalid parameter vector: {} bytes is not a whole number of 4-byte f32 values",
                bytes.len()
            )));
        }
        let values = bytes
            .chunks_exact(4)
            .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
            .collect();
        Ok(Self(values))
    }
}

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes `bytes` as padded base64 with the standard alphabet.
fn encode_base64(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |index: usize| u32::from(chunk.get(index).copied().unwrap_or(0));
        let group = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        // A chunk of n bytes fills n + 1 characters; the rest of the four are padding.
        for position in 0..4 {
            if position <= chunk.len() {
                let sextet = (group >> (18 - 6 * position)) & 0x3f;
                text.push(char::from(BASE64_ALPHABET[sextet as usize]));
            } else {
                text.push('=');
            }
        }
    }
    text
}

/// Decodes padded base64 with the standard alphabet. Returns a message naming the first
/// invalid character or the invalid length.
fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let characters = text.as_bytes();
    if !characters.len().is_multiple_of(4) {
        return Err(format!(
            "invalid base64: length {} is not a multiple of 4",
            characters.len()
        ));
    }
    let mut bytes = Vec::with_capacity(characters.len() / 4 * 3);
    let groups = characters.len() / 4;
    for (group_index, group) in characters.chunks_exact(4).enumerate() {
        let padding = group
            .iter()
            .rev()
            .take_while(|&&character| character == b'=')
            .count();
        if padding > 2 || (padding > 0 && group_index + 1 < groups) {
            return Err(format!(
                "invalid base64: padding inside the text at character {}",
                4 * group_index + 4 - padding
            ));
        }
        let mut value = 0u32;
        for (position, &character) in group.iter().enumerate() {
            let sextet = if position >= 4 - padding {
                0
            } else {
                base64_value(character).ok_or_else(|| {
                    format!(
                        "invalid base64 character {:?} at position {}",
                        char::from(character),
                        4 * group_index + position
                    )
                })?
            };
            value = (value << 6) | sextet;
        }
        let decoded = [(value >> 16) as u8, (value >> 8) as u8, value as u8];
        bytes.extend_from_slice(&decoded[..3 - padding]);
    }
    Ok(bytes)
}

fn base64_value(character: u8) -> Option<u32> {
    let value = match character {
        b'A'..=b'Z' => character - b'A',
        b'a'..=b'z' => character - b'a' + 26,
        b'0'..=b'9' => character - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(value))
}

/// Computes ‖θ − θ*‖₂, summing in `f64`.
pub fn euclidean_distance(params: &[f32], anchor: &[f32]) -> f64 {
    params
        .iter()
        .zip(anchor)
        .map(|(&theta, &star)| (f64::from(theta) - f64::from(star)).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Computes Σᵢ Fᵢ (θᵢ − θ*ᵢ)², summing in `f64`.
pub fn fisher_weighted_distance(params: &[f32], anchor: &[f32], fisher: &[f32]) -> f64 {
    params
        .iter()
        .zip(anchor)
        .zip(fisher)
        .map(|((&theta, &star), &importance)| {
            f64::from(importance) * (f64::from(theta) - f64::from(star)).powi(2)
        })
        .sum()
}

/// How a Fisher diagonal is estimated: the distribution over labels and the number of
/// training samples (`None` for all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FisherEstimator {
    /// Distribution over labels.
    pub kind: FisherKind,
    /// Training samples; `None` for every sample of the task.
    pub samples: Option<usize>,
}

impl FisherEstimator {
    /// Returns the estimator a method uses for its own Fisher, if it has one.
    pub fn of_method(spec: &MethodSpec) -> Option<Self> {
        match *spec {
            MethodSpec::Ewc {
                fisher,
                fisher_samples,
                ..
            }
            | MethodSpec::OnlineEwc {
                fisher,
                fisher_samples,
                ..
            } => Some(Self {
                kind: fisher,
                samples: fisher_samples,
            }),
            _ => None,
        }
    }

    /// Returns the estimator of the insight Fisher passes in `config`: that of its first EWC or
    /// online EWC run, so that a run without a Fisher of its own is weighted like that run,
    /// else exact over [`DEFAULT_FISHER_SAMPLES`] samples.
    pub fn for_insights(config: &ExperimentConfig) -> Self {
        config
            .methods
            .iter()
            .find_map(Self::of_method)
            .unwrap_or(Self {
                kind: FisherKind::Exact,
                samples: Some(DEFAULT_FISHER_SAMPLES),
            })
    }

    /// Returns the number of samples the estimate averages over on a task with `available`
    /// training samples.
    pub fn samples_used(self, available: usize) -> usize {
        self.samples.unwrap_or(available).min(available)
    }
}

/// Fisher diagonals at the weights after the first task, shared between the runs of an
/// experiment so that a run whose weights match an earlier run's bit for bit skips its pass.
///
/// Safe to share between training threads.
#[derive(Debug, Default)]
pub struct FisherCache {
    entries: Mutex<Vec<CachedFisher>>,
}

#[derive(Debug)]
struct CachedFisher {
    estimator: FisherEstimator,
    weights: Vec<f32>,
    values: Vec<f32>,
    run_label: String,
}

impl FisherCache {
    /// Creates an empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the diagonal estimated with `estimator` at `weights` after task `task`, and the
    /// label of the run that estimated it, if cached.
    pub fn find(
        &self,
        task: usize,
        estimator: FisherEstimator,
        weights: &[f32],
    ) -> Option<(Vec<f32>, String)> {
        if task != 0 {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .find(|entry| entry.estimator == estimator && same_bits(&entry.weights, weights))
            .map(|entry| (entry.values.clone(), entry.run_label.clone()))
    }

    /// Keeps a diagonal estimated after task `task` for later runs; only the first task's are
    /// kept, because later anchors differ between methods.
    pub fn insert(
        &self,
        task: usize,
        estimator: FisherEstimator,
        weights: &[f32],
        values: &[f32],
        run_label: &str,
    ) {
        if task != 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let known = entries
            .iter()
            .any(|entry| entry.estimator == estimator && same_bits(&entry.weights, weights));
        if !known {
            entries.push(CachedFisher {
                estimator,
                weights: weights.to_vec(),
                values: values.to_vec(),
                run_label: run_label.to_owned(),
            });
        }
    }
}

/// Compares bit patterns, so that -0.0 differs from 0.0 and a NaN equals the same NaN.
fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Collects a run's insights while it trains.
#[derive(Debug)]
pub(crate) struct InsightRecorder {
    store_tensors: bool,
    /// θ*: the weights after the previous task.
    anchor: Option<Vec<f32>>,
    /// The Fisher diagonal at θ*.
    anchor_fisher: Option<Vec<f32>>,
    insights: RunInsights,
}

impl InsightRecorder {
    /// Starts recording for a network with `layout`; `store_tensors` keeps the weights and
    /// Fisher values in the results.
    pub(crate) fn new(layout: ParamLayout, store_tensors: bool) -> Self {
        Self {
            store_tensors,
            anchor: None,
            anchor_fisher: None,
            insights: RunInsights::new(layout),
        }
    }

    /// Returns whether there is a θ* to measure from, that is, whether a task has finished.
    pub(crate) fn has_anchor(&self) -> bool {
        self.anchor.is_some()
    }

    /// Records the distances of `params` from θ* at a curve point.
    pub(crate) fn record_distance(&mut self, step: u64, task: usize, params: &[f32]) {
        let Some(anchor) = &self.anchor else {
            return;
        };
        let finite = |value: f64| value.is_finite().then_some(value);
        let euclidean = finite(euclidean_distance(params, anchor));
        let fisher_weighted = self
            .anchor_fisher
            .as_ref()
            .and_then(|fisher| finite(fisher_weighted_distance(params, anchor, fisher)));
        self.insights.distances.push(AnchorDistance {
            step,
            task,
            euclidean,
            fisher_weighted,
        });
    }

    /// Makes the weights after a finished task the new θ*, with the Fisher diagonal at them
    /// when there is a next task.
    pub(crate) fn finish_task(
        &mut self,
        weights: Vec<f32>,
        fisher: Option<(FisherRecord, Vec<f32>)>,
    ) {
        if self.store_tensors {
            self.insights
                .weights_after_task
                .push(ParamVector(weights.clone()));
        }
        self.anchor_fisher = match fisher {
            Some((mut record, values)) => {
                if self.store_tensors {
                    record.values = Some(ParamVector(values.clone()));
                }
                self.insights.fishers.push(record);
                Some(values)
            }
            None => None,
        };
        self.anchor = Some(weights);
    }

    /// Adds the seconds of a Fisher pass run for the insights alone.
    pub(crate) fn add_fisher_seconds(&mut self, seconds: f64) {
        self.insights.fisher_seconds += seconds;
    }

    /// Returns the seconds of Fisher passes run for the insights alone so far.
    pub(crate) fn fisher_seconds(&self) -> f64 {
        self.insights.fisher_seconds
    }

    /// Returns what was recorded.
    pub(crate) fn finish(self) -> RunInsights {
        self.insights
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Architecture, Network};

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (bytes, text) in cases {
            assert_eq!(encode_base64(bytes), text, "encoding of {bytes:?}");
            assert_eq!(
                decode_base64(text).as_deref(),
                Ok(bytes),
                "decoding of {text:?}"
            );
        }
        assert_eq!(
            encode_base64(&[0xfb, 0xff]),
            "+/8=",
            "the last two alphabet characters"
        );
    }

    #[test]
    fn base64_rejects_bad_text() {
        let length = decode_base64("Zm9").expect_err("length 3");
        assert!(length.contains("multiple of 4"), "says why: {length}");
        let character = decode_base64("Zm9*").expect_err("invalid character");
        assert!(
            character.contains("'*' at position 3"),
            "names the character: {character}"
        );
        let padding = decode_base64("Zg==Zm9v").expect_err("padding before the end");
        assert!(padding.contains("padding inside"), "says why: {padding}");
    }

    #[test]
    fn param_vector_round_trips_every_bit() {
        let values = vec![
            0.0,
            -0.0,
            1.5,
            -3.25e-20,
            f32::MAX,
            f32::MIN_POSITIVE,
            1e-45,
            f32::INFINITY,
        ];
        let vector = ParamVector(values.clone());

        let json = serde_json::to_string(&vector).expect("vector serializes");
        let read: ParamVector = serde_json::from_str(&json).expect("vector reads back");

        let bits = |values: &[f32]| {
            values
                .iter()
                .map(|value| value.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&read.0), bits(&values), "bit-identical values");
        assert_eq!(
            json.len(),
            2 + (4 * values.len()).div_ceil(3) * 4,
            "quotes plus base64"
        );
    }

    #[test]
    fn param_vector_rejects_partial_values() {
        let error = serde_json::from_str::<ParamVector>("\"AAAAAAA=\"").expect_err("5 bytes");
        assert!(
            error.to_string().contains("5 bytes"),
            "names the size: {error}"
        );
    }

    #[test]
    fn distances_match_their_definitions() {
        let anchor = [1.0, -2.0, 0.5];
        let params = [4.0, 2.0, 0.5];
        let fisher = [0.5, 2.0, 100.0];

        // Differences 3, 4, 0: ‖·‖ = 5; weighted 0.5·9 + 2·16 + 100·0 = 36.5.
        assert_eq!(
            euclidean_distance(&params, &anchor),
            5.0,
            "Euclidean distance"
        );
        assert_eq!(
            fisher_weighted_distance(&params, &anchor, &fisher),
            36.5,
            "weighted sum"
        );
    }

    #[test]
    fn recorder_measures_from_previous_task() {
        let layout = Network::new(&Architecture::Mlp { hidden: vec![1] }, &[2]).layout;
        let len = layout.len;
        let mut recorder = InsightRecorder::new(layout, true);
        recorder.record_distance(10, 0, &vec![1.0; len]);
        assert!(!recorder.has_anchor(), "no anchor during the first task");

        let anchor = vec![0.0; len];
        let fisher = vec![2.0; len];
        let record = FisherRecord {
            task: 0,
            source: FisherSource::Insights,
            kind: FisherKind::Exact,
            samples: 4,
            reused_from: None,
            values: None,
        };
        recorder.finish_task(anchor, Some((record, fisher)));
        recorder.record_distance(20, 1, &vec![1.0; len]);
        recorder.finish_task(vec![1.0; len], None);
        let insights = recorder.finish();

        let expected = AnchorDistance {
            step: 20,
            task: 1,
            euclidean: Some((len as f64).sqrt()),
            fisher_weighted: Some(2.0 * len as f64),
        };
        assert_eq!(
            insights.distances,
            [expected],
            "one point, measured from task 0's weights"
        );
        assert_eq!(
            insights.weights_after_task.len(),
            2,
            "weights after both tasks"
        );
        let stored = insights.fishers[0]
            .values
            .as_ref()
            .expect("Fisher values stored");
        assert_eq!(stored.0, vec![2.0; len], "the Fisher at the anchor");
        assert_eq!(insights.check(), Ok(()), "every vector matches the layout");
    }

    #[test]
    fn recorder_without_tensors_keeps_fisher_metadata() {
        let layout = Network::new(&Architecture::Mlp { hidden: vec![1] }, &[2]).layout;
        let len = layout.len;
        let mut recorder = InsightRecorder::new(layout, false);
        let record = FisherRecord {
            task: 0,
            source: FisherSource::Method,
            kind: FisherKind::Sampled,
            samples: 8,
            reused_from: None,
            values: None,
        };

        recorder.finish_task(vec![0.0; len], Some((record, vec![1.0; len])));
        recorder.record_distance(5, 1, &vec![0.5; len]);
        let insights = recorder.finish();

        assert!(insights.weights_after_task.is_empty(), "no weights stored");
        assert_eq!(insights.fishers.len(), 1, "the record is kept");
        assert!(insights.fishers[0].values.is_none(), "without its values");
        assert!(
            insights.distances[0].fisher_weighted.is_some(),
            "the distance still uses F"
        );
    }

    #[test]
    fn cache_matches_bits_estimator_and_first_task() {
        let cache = FisherCache::new();
        let exact = FisherEstimator {
            kind: FisherKind::Exact,
            samples: Some(1000),
        };
        let weights = [0.25, -1.0];
        cache.insert(0, exact, &weights, &[3.0, 4.0], "ewc λ=1000");
        cache.insert(1, exact, &weights, &[5.0, 6.0], "ewc λ=1000");

        let found = cache
            .find(0, exact, &weights)
            .expect("same weights and estimator");
        assert_eq!(
            found,
            (vec![3.0, 4.0], "ewc λ=1000".to_owned()),
            "values and source run"
        );
        assert!(
            cache.find(1, exact, &weights).is_none(),
            "later tasks are not cached"
        );
        let other_kind = FisherEstimator {
            kind: FisherKind::Empirical,
            samples: Some(1000),
        };
        assert!(
            cache.find(0, other_kind, &weights).is_none(),
            "another estimator"
        );
        assert!(cache.find(0, exact, &[0.25, -0.0]).is_none(), "other bits");
    }

    #[test]
    fn insights_check_names_mismatched_vector() {
        let layout = Network::new(&Architecture::Mlp { hidden: vec![1] }, &[2]).layout;
        let mut insights = RunInsights::new(layout);
        insights.weights_after_task.push(ParamVector(vec![0.0; 3]));

        let message = insights.check().expect_err("3 values for a larger layout");

        assert!(
            message.contains("weights_after_task[0] has 3 values"),
            "names it: {message}"
        );
    }
}
