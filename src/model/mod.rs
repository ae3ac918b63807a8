//! Network specifications and the flat parameter layout they share with every backend.
//!
//! All parameters of a network live in one `f32` vector. Feature layers come first, then one
//! block per output head, so "the features" and "head t" are contiguous ranges that methods
//! can address by name (frozen layers, per-task heads, Fisher maps).
//!
//! Storage follows PyTorch: dense weights are `[outputs][inputs]`, convolution weights
//! `[out_channels][in_channels][k][k]`, activations `[sample][channel][row][column]`, and a dense
//! layer after a convolution reads the channel-major flattening.

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// Side of the square input images.
pub const IMAGE_SIDE: usize = 28;
/// Pixels per input image.
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;

/// The network families the workbench can build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "kebab-case",
    deny_unknown_fields,
    try_from = "ArchitectureFile"
)]
pub enum Architecture {
    /// Conv 1→32 3×3 (no padding), ReLU, max-pool 2×2, dense 5408→head.
    SeedCnn,
    /// Dense layers with ReLU on 784 inputs.
    Mlp {
        /// Width of each hidden layer, input side first.
        #[serde(default = "default_mlp_hidden")]
        hidden: Vec<usize>,
    },
}

fn default_mlp_hidden() -> Vec<usize> {
    vec![400, 400]
}

/// The file form of [`Architecture`]. serde ignores extra fields after the tag of a unit
/// variant even with `deny_unknown_fields`, so the seed CNN is an empty struct here and
/// `{"kind": "seed-cnn", "hidden": [1]}` is rejected.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum ArchitectureFile {
    SeedCnn {},
    Mlp {
        #[serde(default = "default_mlp_hidden")]
        hidden: Vec<usize>,
    },
}

impl TryFrom<ArchitectureFile> for Architecture {
    type Error = String;

    fn try_from(file: ArchitectureFile) -> Result<Self, Self::Error> {
        match file {
            ArchitectureFile::SeedCnn {} => Ok(Self::SeedCnn),
            ArchitectureFile::Mlp { hidden } => {
                if let Some(position) = hidden.iter().position(|&w| w == 0) {
                    return Err(format!(
                        "architecture.hidden[{position}] is 0; every hidden layer needs at least 1 unit"
                    ));
                }
                Ok(Self::Mlp { hidden })
            }
        }
    }
}

impl Architecture {
    /// Returns the MLP with its default hidden layers (2×400).
    pub fn default_mlp() -> Self {
        Self::Mlp {
            hidden: default_mlp_hidden(),
        }
    }

    /// Short name used on the command line and in result files.
    pub fn name(&self) -> String {
        match self {
            Self::SeedCnn => "seed-cnn".to_owned(),
            Self::Mlp { hidden } => {
                let widths: Vec<String> = hidden.iter().map(ToString::to_string).collect();
                format!("mlp-{}", widths.join("x"))
            }
        }
    }
}

/// Block of the layout that a parameter belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Part {
    /// Shared feature layers.
    Features,
    /// Output head with this index.
    Head(usize),
}

/// One named tensor in the flat parameter vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamEntry {
    /// Name such as `conv1.weight` or `head0.bias`.
    pub name: String,
    /// First index in the flat vector.
    pub offset: usize,
    /// Number of values.
    pub len: usize,
    /// Tensor shape, outermost first.
    pub shape: Vec<usize>,
    /// Inputs feeding each output, used for initialisation bounds.
    pub fan_in: usize,
    /// Feature layers or a head.
    pub part: Part,
}

impl ParamEntry {
    /// Returns the index range of this tensor in the flat vector.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len
    }
}

/// The named ranges of a network's flat parameter vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamLayout {
    /// Tensors in storage order.
    pub entries: Vec<ParamEntry>,
    /// Total number of parameters.
    pub len: usize,
}

impl ParamLayout {
    /// Appends a tensor at the end of the layout and returns its entry.
    pub fn push(
        &mut self,
        name: String,
        shape: Vec<usize>,
        fan_in: usize,
        part: Part,
    ) -> ParamEntry {
        let len = shape.iter().product();
        let entry = ParamEntry {
            name,
            offset: self.len,
            len,
            shape,
            fan_in,
            part,
        };
        self.len += len;
        self.entries.push(entry.clone());
        entry
    }

    /// Looks up a tensor by name.
    pub fn entry(&self, name: &str) -> Option<&ParamEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Returns the contiguous range that contains every feature-layer parameter.
    pub fn features_range(&self) -> std::ops::Range<usize> {
        let end = self
            .entries
            .iter()
            .filter(|e| e.part == Part::Features)
            .map(|e| e.offset + e.len)
            .max()
            .unwrap_or(0);
        0..end
    }

    /// Returns the contiguous range that contains head `head`.
    pub fn head_range(&self, head: usize) -> std::ops::Range<usize> {
        let mut heads = self.entries.iter().filter(|e| e.part == Part::Head(head));
        let first = heads.next().map_or(0, |e| e.offset);
        let end = self
            .entries
            .iter()
            .filter(|e| e.part == Part::Head(head))
            .map(|e| e.offset + e.len)
            .max()
            .unwrap_or(first);
        first..end
    }
}

/// A dense (fully connected) layer: `y = W x + b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dense {
    /// Inputs per sample.
    pub inputs: usize,
    /// Outputs per sample.
    pub outputs: usize,
    /// Offset of `W` (`[outputs][inputs]`) in the flat vector.
    pub weight: usize,
    /// Offset of `b` (`[outputs]`) in the flat vector.
    pub bias: usize,
}

/// A stride-1 convolution without padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conv {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel side.
    pub kernel: usize,
    /// Input height.
    pub in_height: usize,
    /// Input width.
    pub in_width: usize,
    /// Offset of the weights (`[out][in][k][k]`) in the flat vector.
    pub weight: usize,
    /// Offset of the biases (`[out]`) in the flat vector.
    pub bias: usize,
}

impl Conv {
    /// Output height (`in_height - kernel + 1`).
    pub fn out_height(&self) -> usize {
        self.in_height + 1 - self.kernel
    }

    /// Output width (`in_width - kernel + 1`).
    pub fn out_width(&self) -> usize {
        self.in_width + 1 - self.kernel
    }

    /// Input values per sample.
    pub fn input_len(&self) -> usize {
        self.in_channels * self.in_height * self.in_width
    }

    /// Output values per sample.
    pub fn output_len(&self) -> usize {
        self.out_channels * self.out_height() * self.out_width()
    }

    /// Weights (without biases).
    pub fn weight_len(&self) -> usize {
        self.out_channels * self.in_channels * self.kernel * self.kernel
    }
}

/// A 2×2 max-pool with stride 2; odd trailing rows and columns are dropped, as in PyTorch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaxPool {
    /// Channels.
    pub channels: usize,
    /// Input height.
    pub in_height: usize,
    /// Input width.
    pub in_width: usize,
}

impl MaxPool {
    /// Output height.
    pub fn out_height(&self) -> usize {
        self.in_height / 2
    }

    /// Output width.
    pub fn out_width(&self) -> usize {
        self.in_width / 2
    }

    /// Input values per sample.
    pub fn input_len(&self) -> usize {
        self.channels * self.in_height * self.in_width
    }

    /// Output values per sample.
    pub fn output_len(&self) -> usize {
        self.channels * self.out_height() * self.out_width()
    }
}

/// One feature layer. ReLU is part of the layer that precedes it, because every ReLU here
/// follows a convolution or a dense layer and fusing saves a pass over memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layer {
    /// Convolution followed by ReLU.
    ConvRelu(Conv),
    /// Dense layer followed by ReLU.
    DenseRelu(Dense),
    /// 2×2 max-pool.
    MaxPool(MaxPool),
}

impl Layer {
    /// Input values per sample.
    pub fn input_len(&self) -> usize {
        match self {
            Self::ConvRelu(c) => c.input_len(),
            Self::DenseRelu(d) => d.inputs,
            Self::MaxPool(p) => p.input_len(),
        }
    }

    /// Output values per sample.
    pub fn output_len(&self) -> usize {
        match self {
            Self::ConvRelu(c) => c.output_len(),
            Self::DenseRelu(d) => d.outputs,
            Self::MaxPool(p) => p.output_len(),
        }
    }
}

/// A network: feature layers, then one dense head per entry of `heads`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// What was built.
    pub architecture: Architecture,
    /// Feature layers in order; the first reads the 28×28 image.
    pub layers: Vec<Layer>,
    /// Output heads; a shared-head network has one.
    pub heads: Vec<Dense>,
    /// Names and ranges of all parameters.
    pub layout: ParamLayout,
}

impl Network {
    /// Builds `architecture` with one head per entry of `head_outputs` (classes per head).
    pub fn new(architecture: &Architecture, head_outputs: &[usize]) -> Self {
        let mut layout = ParamLayout {
            entries: Vec::new(),
            len: 0,
        };
        let mut layers = Vec::new();
        let features = match architecture {
            Architecture::SeedCnn => {
                let (c_out, k) = (32, 3);
                let w = layout.push(
                    "conv1.weight".into(),
                    vec![c_out, 1, k, k],
                    k * k,
                    Part::Features,
                );
                let b = layout.push("conv1.bias".into(), vec![c_out], k * k, Part::Features);
                let conv = Conv {
                    in_channels: 1,
                    out_channels: c_out,
                    kernel: k,
                    in_height: IMAGE_SIDE,
                    in_width: IMAGE_SIDE,
                    weight: w.offset,
                    bias: b.offset,
                };
                let pool = MaxPool {
                    channels: c_out,
                    in_height: conv.out_height(),
                    in_width: conv.out_width(),
                };
                let features = pool.output_len();
                layers.push(Layer::ConvRelu(conv));
                layers.push(Layer::MaxPool(pool));
                features
            }
            Architecture::Mlp { hidden } => {
                let mut inputs = IMAGE_PIXELS;
                for (i, &outputs) in hidden.iter().enumerate() {
                    let w = layout.push(
                        format!("fc{}.weight", i + 1),
                        vec![outputs, inputs],
                        inputs,
                        Part::Features,
                    );
                    let b = layout.push(
                        format!("fc{}.bias", i + 1),
                        vec![outputs],
                        inputs,
                        Part::Features,
                    );
                    layers.push(Layer::DenseRelu(Dense {
                        inputs,
                        outputs,
                        weight: w.offset,
                        bias: b.offset,
                    }));
                    inputs = outputs;
                }
                inputs
            }
        };
        let heads = head_outputs
            .iter()
            .enumerate()
            .map(|(h, &outputs)| {
                let w = layout.push(
                    format!("head{h}.weight"),
                    vec![outputs, features],
                    features,
                    Part::Head(h),
                );
                let b = layout.push(
                    format!("head{h}.bias"),
                    vec![outputs],
                    features,
                    Part::Head(h),
                );
                Dense {
                    inputs: features,
                    outputs,
                    weight: w.offset,
                    bias: b.offset,
                }
            })
            .collect();
        Self {
            architecture: architecture.clone(),
            layers,
            heads,
            layout,
        }
    }

    /// Values per sample entering the heads.
    pub fn feature_len(&self) -> usize {
        self.layers.last().map_or(IMAGE_PIXELS, Layer::output_len)
    }

    /// Largest head width, which sizes the logits buffers.
    pub fn max_head_outputs(&self) -> usize {
        self.heads.iter().map(|h| h.outputs).max().unwrap_or(0)
    }

    /// Draws initial parameters: every weight and bias uniform in ±1/√fan_in, PyTorch's default
    /// for `Linear` and `Conv2d`.
    pub fn init_params(&self, seed: u64) -> Vec<f32> {
        let mut rng = Rng::derive(seed, "init");
        let mut params = vec![0.0; self.layout.len];
        for entry in &self.layout.entries {
            let bound = 1.0 / (entry.fan_in as f32).sqrt();
            for p in &mut params[entry.range()] {
                *p = rng.uniform(-bound, bound);
            }
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_cnn_layout_matches_specification() {
        let net = Network::new(&Architecture::SeedCnn, &[10]);
        assert_eq!(
            net.feature_len(),
            5408,
            "32 channels of 13x13 after pooling"
        );
        let names: Vec<&str> = net.layout.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["conv1.weight", "conv1.bias", "head0.weight", "head0.bias"]
        );
        assert_eq!(net.layout.len, 32 * 9 + 32 + 5408 * 10 + 10);
        assert_eq!(net.layout.features_range(), 0..320);
        assert_eq!(net.layout.head_range(0), 320..net.layout.len);
    }

    #[test]
    fn per_task_heads_are_contiguous_blocks() {
        let net = Network::new(&Architecture::default_mlp(), &[2, 2, 2]);
        let features = net.layout.features_range();
        assert_eq!(features, 0..(784 * 400 + 400 + 400 * 400 + 400));
        let mut expected_start = features.end;
        for h in 0..3 {
            let range = net.layout.head_range(h);
            assert_eq!(
                range.start, expected_start,
                "head {h} starts after the previous block"
            );
            assert_eq!(
                range.len(),
                400 * 2 + 2,
                "head {h} holds a 400x2 weight and 2 biases"
            );
            expected_start = range.end;
        }
        assert_eq!(expected_start, net.layout.len);
    }

    #[test]
    fn architecture_file_rejects_unknown_fields_and_empty_layers() {
        let seed: Result<Architecture, _> =
            serde_json::from_str(r#"{"kind": "seed-cnn", "hidden": [1]}"#);
        assert!(
            seed.is_err(),
            "a field the seed CNN does not have is rejected"
        );
        let zero: Result<Architecture, _> =
            serde_json::from_str(r#"{"kind": "mlp", "hidden": [400, 0]}"#);
        let message = zero
            .expect_err("a hidden layer of width 0 is rejected")
            .to_string();
        assert!(
            message.contains("hidden[1]"),
            "the message names the layer: {message}"
        );
        let mlp: Architecture = serde_json::from_str(r#"{"kind": "mlp"}"#).expect("defaults apply");
        assert_eq!(mlp, Architecture::default_mlp(), "hidden defaults to 2x400");
        let round_trip: Architecture = serde_json::from_str(
            &serde_json::to_string(&Architecture::SeedCnn).expect("serializes"),
        )
        .expect("reads back");
        assert_eq!(
            round_trip,
            Architecture::SeedCnn,
            "the seed CNN round-trips"
        );
    }

    #[test]
    fn init_respects_fan_in_bounds_and_seed() {
        let net = Network::new(&Architecture::SeedCnn, &[10]);
        let a = net.init_params(5);
        assert_eq!(a, net.init_params(5), "same seed, same parameters");
        assert_ne!(a, net.init_params(6), "another seed, other parameters");
        for entry in &net.layout.entries {
            let bound = 1.0 / (entry.fan_in as f32).sqrt();
            assert!(
                a[entry.range()].iter().all(|p| p.abs() <= bound),
                "{} within ±{bound}",
                entry.name
            );
        }
    }
}
