//! The reference's gradients against central finite differences, layer type by layer type.

use super::*;
use crate::model::{Architecture, ParamLayout, Part};
use crate::rng::Rng;

/// A network with every layer kind and shape the engine supports: a first convolution (no input
/// gradient), a second convolution (input gradient through a ReLU), an odd-sized max-pool, a
/// hidden dense layer and two heads.
pub(crate) fn every_layer_network() -> Network {
    let mut layout = ParamLayout {
        entries: Vec::new(),
        len: 0,
    };
    let conv1 = {
        let w = layout.push("conv1.weight".into(), vec![2, 1, 3, 3], 9, Part::Features);
        let b = layout.push("conv1.bias".into(), vec![2], 9, Part::Features);
        Conv {
            in_channels: 1,
            out_channels: 2,
            kernel: 3,
            in_height: 28,
            in_width: 28,
            weight: w.offset,
            bias: b.offset,
        }
    };
    let conv2 = {
        let w = layout.push("conv2.weight".into(), vec![3, 2, 4, 4], 32, Part::Features);
        let b = layout.push("conv2.bias".into(), vec![3], 32, Part::Features);
        Conv {
            in_channels: 2,
            out_channels: 3,
            kernel: 4,
            in_height: 26,
            in_width: 26,
            weight: w.offset,
            bias: b.offset,
        }
    };
    let pool = MaxPool {
        channels: 3,
        in_height: 23,
        in_width: 23,
    };
    let hidden = {
        let w = layout.push("fc1.weight".into(), vec![5, 363], 363, Part::Features);
        let b = layout.push("fc1.bias".into(), vec![5], 363, Part::Features);
        Dense {
            inputs: 363,
            outputs: 5,
            weight: w.offset,
            bias: b.offset,
        }
    };
    let heads = (0..2)
        .map(|h| {
            let w = layout.push(format!("head{h}.weight"), vec![4, 5], 5, Part::Head(h));
            let b = layout.push(format!("head{h}.bias"), vec![4], 5, Part::Head(h));
            Dense {
                inputs: 5,
                outputs: 4,
                weight: w.offset,
                bias: b.offset,
            }
        })
        .collect();
    Network {
        architecture: Architecture::SeedCnn,
        layers: vec![
            Layer::ConvRelu(conv1),
            Layer::ConvRelu(conv2),
            Layer::MaxPool(pool),
            Layer::DenseRelu(hidden),
        ],
        heads,
        layout,
    }
}

/// A 4×4 convolution, then a 3×3 convolution over two channels whose odd-sized output feeds a
/// max-pool: the 3×3 kernel's pooled forward path with several input channels and a trailing
/// row and column that no window covers.
pub(crate) fn odd_pooled_network() -> Network {
    let mut layout = ParamLayout {
        entries: Vec::new(),
        len: 0,
    };
    let mut conv = |name: &str, c_in: usize, c_out: usize, k: usize, side: usize| {
        let w = layout.push(
            format!("{name}.weight"),
            vec![c_out, c_in, k, k],
            c_in * k * k,
            Part::Features,
        );
        let b = layout.push(
            format!("{name}.bias"),
            vec![c_out],
            c_in * k * k,
            Part::Features,
        );
        Conv {
            in_channels: c_in,
            out_channels: c_out,
            kernel: k,
            in_height: side,
            in_width: side,
            weight: w.offset,
            bias: b.offset,
        }
    };
    let conv1 = conv("conv1", 1, 2, 4, 28);
    let conv2 = conv("conv2", 2, 3, 3, 25);
    let pool = MaxPool {
        channels: 3,
        in_height: 23,
        in_width: 23,
    };
    let w = layout.push("head0.weight".into(), vec![4, 363], 363, Part::Head(0));
    let b = layout.push("head0.bias".into(), vec![4], 363, Part::Head(0));
    Network {
        architecture: Architecture::SeedCnn,
        layers: vec![
            Layer::ConvRelu(conv1),
            Layer::ConvRelu(conv2),
            Layer::MaxPool(pool),
        ],
        heads: vec![Dense {
            inputs: 363,
            outputs: 4,
            weight: w.offset,
            bias: b.offset,
        }],
        layout,
    }
}

#[test]
fn odd_pooled_network_matches_finite_differences() {
    let net = odd_pooled_network();
    let params = net.init_params(7);
    check_against_finite_differences(
        &net,
        &params,
        0,
        &[
            "conv1.weight",
            "conv1.bias",
            "conv2.weight",
            "conv2.bias",
            "head0.weight",
        ],
        10,
    );
}

pub(crate) fn random_images(batch: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..batch * IMAGE_PIXELS)
        .map(|_| rng.uniform(0.0, 1.0))
        .collect()
}

pub(crate) fn random_targets(batch: usize, classes: usize, seed: u64) -> Vec<u32> {
    let mut rng = Rng::new(seed);
    (0..batch).map(|_| rng.below(classes) as u32).collect()
}

/// Mean cross-entropy at `params`, computed in f64 throughout.
fn loss_at(net: &Network, params: &[f32], head: usize, images: &[f32], targets: &[u32]) -> f64 {
    let fwd = forward(net, params, head, images);
    cross_entropy(&fwd.logits, targets, net.heads[head].outputs).0
}

/// Checks the analytic gradient of up to `samples` entries of every tensor named in `names`
/// against central differences with step `h`. ReLU and max-pool make the loss piecewise smooth,
/// so an entry whose forward and backward one-sided differences disagree has a kink within `h`
/// and is skipped; at most a fifth of the entries may be skipped.
fn check_against_finite_differences(
    net: &Network,
    params: &[f32],
    head: usize,
    names: &[&str],
    samples: usize,
) {
    let images = random_images(3, 21);
    let targets = random_targets(3, net.heads[head].outputs, 22);
    let (_, grads) = loss_and_gradient(net, params, head, &images, &targets);
    let h = 1e-6f32;
    let center = loss_at(net, params, head, &images, &targets);
    let mut rng = Rng::new(23);
    let (mut checked, mut skipped) = (0, 0);
    for name in names {
        let entry = net
            .layout
            .entry(name)
            .unwrap_or_else(|| panic!("no tensor {name}"));
        for _ in 0..samples.min(entry.len) {
            let i = entry.offset + rng.below(entry.len);
            let mut plus = params.to_vec();
            plus[i] += h;
            let mut minus = params.to_vec();
            minus[i] -= h;
            let above = loss_at(net, &plus, head, &images, &targets);
            let below = loss_at(net, &minus, head, &images, &targets);
            // The steps actually taken, since θ ± h rounds to f32.
            let (step_up, step_down) = (
                f64::from(plus[i]) - f64::from(params[i]),
                f64::from(params[i]) - f64::from(minus[i]),
            );
            let (forward, backward) = ((above - center) / step_up, (center - below) / step_down);
            if (forward - backward).abs() > 1e-7 + 1e-3 * forward.abs().max(backward.abs()) {
                skipped += 1;
                continue;
            }
            checked += 1;
            let numeric = (above - below) / (step_up + step_down);
            let analytic = f64::from(grads[i]);
            let tolerance = 1e-8 + 1e-4 * numeric.abs();
            assert!(
                (analytic - numeric).abs() <= tolerance,
                "{name}[{}]: analytic {analytic:.6e}, finite difference {numeric:.6e}",
                i - entry.offset
            );
        }
    }
    assert!(
        skipped * 4 <= checked,
        "{skipped} entries sat on a kink and only {checked} were checked"
    );
}

#[test]
fn seed_cnn_gradient_matches_finite_differences() {
    let net = Network::new(&Architecture::SeedCnn, &[10]);
    let params = net.init_params(1);
    check_against_finite_differences(
        &net,
        &params,
        0,
        &["conv1.weight", "conv1.bias", "head0.weight", "head0.bias"],
        12,
    );
}

#[test]
fn mlp_gradient_matches_finite_differences() {
    let net = Network::new(
        &Architecture::Mlp {
            hidden: vec![16, 8],
        },
        &[10],
    );
    let params = net.init_params(2);
    let names = [
        "fc1.weight",
        "fc1.bias",
        "fc2.weight",
        "fc2.bias",
        "head0.weight",
        "head0.bias",
    ];
    check_against_finite_differences(&net, &params, 0, &names, 12);
}

#[test]
fn stacked_convolutions_and_odd_pool_match_finite_differences() {
    let net = every_layer_network();
    let params = net.init_params(3);
    let names = [
        "conv1.weight",
        "conv1.bias",
        "conv2.weight",
        "conv2.bias",
        "fc1.weight",
        "fc1.bias",
        "head1.weight",
        "head1.bias",
    ];
    check_against_finite_differences(&net, &params, 1, &names, 10);
}

#[test]
fn other_heads_get_no_gradient() {
    let net = every_layer_network();
    let params = net.init_params(4);
    let images = random_images(2, 5);
    let (_, grads) = loss_and_gradient(&net, &params, 1, &images, &[0, 3]);
    assert!(
        grads[net.layout.head_range(0)].iter().all(|&g| g == 0.0),
        "head 0 is untouched while head 1 trains"
    );
    assert!(
        grads[net.layout.head_range(1)].iter().any(|&g| g != 0.0),
        "head 1 has a gradient"
    );
}

#[test]
fn distillation_gradient_matches_finite_differences() {
    let mut rng = Rng::new(9);
    let classes = 5;
    let logits: Vec<f64> = (0..3 * classes)
        .map(|_| f64::from(rng.uniform(-2.0, 2.0)))
        .collect();
    let old: Vec<f64> = (0..3 * classes)
        .map(|_| f64::from(rng.uniform(-2.0, 2.0)))
        .collect();
    for temperature in [1.0, 2.0] {
        let (_, grad) = distillation(&logits, &old, classes, 0.7, temperature);
        for i in 0..logits.len() {
            let h = 1e-5;
            let mut plus = logits.clone();
            plus[i] += h;
            let mut minus = logits.clone();
            minus[i] -= h;
            let numeric = (distillation(&plus, &old, classes, 0.7, temperature).0
                - distillation(&minus, &old, classes, 0.7, temperature).0)
                / (2.0 * h);
            assert!(
                (grad[i] - numeric).abs() < 1e-8,
                "T={temperature} logit {i}: {} vs {numeric}",
                grad[i]
            );
        }
    }
}

#[test]
fn distillation_is_zero_against_itself() {
    let logits = [0.3, -1.0, 2.0, 0.5, 0.5, 0.1];
    let (value, grad) = distillation(&logits, &logits, 3, 1.0, 2.0);
    assert!(
        value.abs() < 1e-15,
        "KL of a distribution with itself is 0, got {value}"
    );
    assert!(
        grad.iter().all(|g| g.abs() < 1e-15),
        "its gradient is 0, got {grad:?}"
    );
}

#[test]
fn adam_first_step_moves_by_learning_rate() {
    // With m and v zero, the first bias-corrected step is lr * g / (|g| + eps): size lr.
    let mut opt = Optimizer::new(OptimizerKind::adam(0.01), 3);
    let mut params = vec![1.0, 1.0, 1.0];
    opt.step(&mut params, &[0.5, -2.0, 0.0], None);
    assert!(
        (params[0] - 0.99).abs() < 1e-6,
        "positive gradient steps down by lr: {}",
        params[0]
    );
    assert!(
        (params[1] - 1.01).abs() < 1e-6,
        "negative gradient steps up by lr: {}",
        params[1]
    );
    assert_eq!(params[2], 1.0, "zero gradient, no step");
}

#[test]
fn masked_parameters_do_not_move() {
    let mut opt = Optimizer::new(
        OptimizerKind::Sgd {
            learning_rate: 0.1,
            momentum: 0.9,
        },
        2,
    );
    let mut params = vec![1.0, 1.0];
    opt.step(&mut params, &[1.0, 1.0], Some(&[0.0, 1.0]));
    opt.step(&mut params, &[1.0, 1.0], Some(&[0.0, 1.0]));
    assert_eq!(params[0], 1.0, "masked parameter unchanged");
    assert!(
        (params[1] - (1.0 - 0.1 - 0.1 * 1.9)).abs() < 1e-6,
        "momentum SGD: {}",
        params[1]
    );
}
