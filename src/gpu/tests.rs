//! Every GPU kernel against the plain-Rust reference, on whatever adapter wgpu picks (Mesa's
//! lavapipe in CI).
//!
//! Tolerances: forward values and logits agree within 1e-4 relative to the largest magnitude
//! of the compared tensor; gradients within 1e-3 of it (the GPU sums long f32 series that the
//! reference sums in f64); parameters after several optimizer steps within 1e-5 absolute.

use std::sync::{Arc, OnceLock};

use super::*;
use crate::model::{Architecture, Network};
use crate::reference::tests::{
    every_layer_network, odd_pooled_network, random_images, random_targets,
};
use crate::reference::{self, Optimizer, OptimizerKind};
use crate::rng::Rng;

pub(crate) fn context() -> Arc<GpuContext> {
    static CONTEXT: OnceLock<Arc<GpuContext>> = OnceLock::new();
    CONTEXT
        .get_or_init(|| match GpuContext::new() {
            Ok(ctx) => ctx,
            Err(e) => panic!("GPU tests need an adapter (CI installs mesa-vulkan-drivers): {e}"),
        })
        .clone()
}

/// Largest |a - b| over the tensor, divided by the largest |b| (or 1 when b is tiny).
fn relative_error(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "compared tensors have the same length");
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    a.iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

fn assert_close_per_tensor(
    net: &Network,
    gpu: &[f32],
    reference: &[f32],
    tolerance: f32,
    what: &str,
) {
    for entry in &net.layout.entries {
        let r = entry.range();
        let error = relative_error(&gpu[r.clone()], &reference[r]);
        assert!(
            error <= tolerance,
            "{what}: {} differs by {error:.2e} relative (tolerance {tolerance:.0e})",
            entry.name
        );
    }
}

fn networks() -> Vec<(&'static str, Network, usize)> {
    vec![
        ("seed CNN", Network::new(&Architecture::SeedCnn, &[10]), 0),
        (
            "MLP",
            Network::new(
                &Architecture::Mlp {
                    hidden: vec![32, 16],
                },
                &[10],
            ),
            0,
        ),
        // 70 outputs take the blocked kernels, and 70 = 4 * 17 + 2 leaves a partial block.
        (
            "MLP with a wide layer",
            Network::new(
                &Architecture::Mlp {
                    hidden: vec![70, 66],
                },
                &[10],
            ),
            0,
        ),
        (
            "stacked convolutions, second head",
            every_layer_network(),
            1,
        ),
        (
            "3x3 convolution over two channels into an odd pool",
            odd_pooled_network(),
            0,
        ),
    ]
}

#[test]
fn logits_match_reference() {
    for (name, net, head) in networks() {
        let params = net.init_params(1);
        let images = random_images(5, 2);
        let expected = reference::forward(&net, &params, head, &images).logits_f32();
        let mut trainer = GpuTrainer::new(context(), net, &params, OptimizerKind::adam(1e-3));
        let logits = trainer.logits(&images, head).expect("logits read back");
        let error = relative_error(&logits, &expected);
        assert!(
            error <= 1e-4,
            "{name}: logits differ by {error:.2e} relative"
        );
    }
}

#[test]
fn gradient_matches_reference() {
    for (name, net, head) in networks() {
        let params = net.init_params(3);
        let images = random_images(7, 4);
        let targets = random_targets(7, net.heads[head].outputs, 5);
        let (_, expected) = reference::loss_and_gradient(&net, &params, head, &images, &targets);
        let mut trainer =
            GpuTrainer::new(context(), net.clone(), &params, OptimizerKind::adam(1e-3));
        let grads = trainer
            .gradient(&images, &targets, head)
            .expect("gradient read back");
        assert_close_per_tensor(&net, &grads, &expected, 1e-3, name);
    }
}

#[test]
fn evaluation_matches_reference() {
    let net = Network::new(&Architecture::SeedCnn, &[10]);
    let params = net.init_params(6);
    let images = random_images(23, 7);
    let targets = random_targets(23, 10, 8);
    let fwd = reference::forward(&net, &params, 0, &images);
    let (loss, _) = reference::cross_entropy(&fwd.logits, &targets, 10);
    let correct = targets
        .iter()
        .enumerate()
        .filter(|&(n, &t)| {
            let row = &fwd.logits_f32()[n * 10..(n + 1) * 10];
            let best = (0..10).fold(0, |b, c| if row[c] > row[b] { c } else { b });
            best == t as usize
        })
        .count();
    let mut trainer = GpuTrainer::new(context(), net, &params, OptimizerKind::adam(1e-3));
    // Batches of 10 leave a partial batch of 3, which must count too.
    let result = trainer
        .evaluate(&images, &targets, 0, 10)
        .expect("evaluation read back");
    assert_eq!(result.samples, 23, "every sample evaluated");
    assert_eq!(result.correct as usize, correct, "correct predictions");
    let loss = loss as f32;
    assert!(
        (result.mean_loss - loss).abs() <= 1e-5 * loss.abs().max(1.0),
        "mean loss {} vs {loss}",
        result.mean_loss
    );
}

fn run_steps(
    kind: OptimizerKind,
    net: &Network,
    steps: usize,
    mask: Option<&[f32]>,
) -> (Vec<f32>, Vec<f32>) {
    let mut params = net.init_params(9);
    let mut trainer = GpuTrainer::new(context(), net.clone(), &params, kind);
    if let Some(mask) = mask {
        trainer.set_trainable(mask);
    }
    let mut optimizer = Optimizer::new(kind, params.len());
    for step in 0..steps {
        let images = random_images(8, 100 + step as u64);
        let targets = random_targets(8, 10, 200 + step as u64);
        trainer.train_step(&images, &targets, 0);
        let (_, grads) = reference::loss_and_gradient(net, &params, 0, &images, &targets);
        optimizer.step(&mut params, &grads, mask);
    }
    (trainer.params().expect("params read back"), params)
}

#[test]
fn adam_steps_match_reference() {
    let net = Network::new(&Architecture::SeedCnn, &[10]);
    let (gpu, expected) = run_steps(OptimizerKind::adam(1e-3), &net, 5, None);
    let worst = gpu
        .iter()
        .zip(&expected)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        worst <= 1e-5,
        "after 5 Adam steps the parameters differ by up to {worst:.2e}"
    );
    let moved = gpu
        .iter()
        .zip(net.init_params(9))
        .filter(|(a, b)| *a != b)
        .count();
    assert!(
        moved > gpu.len() / 2,
        "Adam moved only {moved} of {} parameters",
        gpu.len()
    );
}

#[test]
fn sgd_momentum_steps_match_reference() {
    let net = Network::new(&Architecture::Mlp { hidden: vec![24] }, &[10]);
    let (gpu, expected) = run_steps(
        OptimizerKind::Sgd {
            learning_rate: 0.05,
            momentum: 0.9,
        },
        &net,
        5,
        None,
    );
    let worst = gpu
        .iter()
        .zip(&expected)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        worst <= 1e-5,
        "after 5 SGD steps the parameters differ by up to {worst:.2e}"
    );
}

#[test]
fn masked_parameters_stay_bit_identical() {
    let net = Network::new(&Architecture::SeedCnn, &[10]);
    let mut mask = vec![1.0f32; net.layout.len];
    for m in &mut mask[net.layout.features_range()] {
        *m = 0.0;
    }
    let (gpu, _) = run_steps(OptimizerKind::adam(1e-2), &net, 3, Some(&mask));
    let initial = net.init_params(9);
    let features = net.layout.features_range();
    assert_eq!(
        gpu[features.clone()],
        initial[features],
        "frozen feature layers are bit-identical"
    );
    let head = net.layout.head_range(0);
    assert_ne!(gpu[head.clone()], initial[head], "the head trained");
}

#[test]
fn same_seed_gives_bit_identical_weights() {
    let net = Network::new(&Architecture::SeedCnn, &[10]);
    let (first, _) = run_steps(OptimizerKind::adam(1e-3), &net, 4, None);
    let (second, _) = run_steps(OptimizerKind::adam(1e-3), &net, 4, None);
    let differing = first
        .iter()
        .zip(&second)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    assert_eq!(
        differing, 0,
        "two runs with the same seed differ in {differing} parameters"
    );
}

fn uniforms(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| rng.uniform(0.0, 1.0)).collect()
}

#[test]
fn fisher_matches_per_sample_definition() {
    for (name, net, head) in networks() {
        let params = net.init_params(11);
        let images = random_images(9, 12);
        let targets = random_targets(9, net.heads[head].outputs, 13);
        let u = uniforms(9, 14);
        let mut trainer =
            GpuTrainer::new(context(), net.clone(), &params, OptimizerKind::adam(1e-3));
        for kind in [
            FisherKind::Exact,
            FisherKind::Empirical,
            FisherKind::Sampled,
        ] {
            let expected =
                reference::fisher_diagonal(&net, &params, head, &images, &targets, kind, &u);
            // Batches of 4 check that the accumulation across batches is a plain sum.
            let fisher = trainer
                .fisher_diagonal(&images, &targets, head, kind, &u, 4)
                .expect("Fisher read back");
            assert_close_per_tensor(
                &net,
                &fisher,
                &expected,
                1e-3,
                &format!("{name}, {kind:?} Fisher"),
            );
        }
    }
}

#[test]
fn fisher_differs_from_squared_batch_gradient() {
    let net = Network::new(&Architecture::SeedCnn, &[10]);
    let params = net.init_params(15);
    let images = random_images(16, 16);
    let targets = random_targets(16, 10, 17);
    let mut trainer = GpuTrainer::new(context(), net.clone(), &params, OptimizerKind::adam(1e-3));
    let fisher = trainer
        .fisher_diagonal(&images, &targets, 0, FisherKind::Empirical, &[], 16)
        .expect("Fisher read back");
    let mean_grad = trainer
        .gradient(&images, &targets, 0)
        .expect("gradient read back");
    let squared_mean: f64 = mean_grad
        .iter()
        .map(|g| f64::from(*g) * f64::from(*g))
        .sum();
    let mean_square: f64 = fisher.iter().map(|&f| f64::from(f)).sum();
    // E[g^2] >= (E[g])^2 element-wise, with equality only when every sample has the same gradient.
    assert!(
        mean_square > 2.0 * squared_mean,
        "sum of E[g^2] = {mean_square:.3e} should far exceed sum of (E[g])^2 = {squared_mean:.3e}"
    );
    for (i, (&f, &g)) in fisher.iter().zip(&mean_grad).enumerate() {
        assert!(
            f64::from(f) >= f64::from(g) * f64::from(g) * (1.0 - 1e-3) - 1e-12,
            "parameter {i}: E[g^2] {f} < (E[g])^2 {}",
            g * g
        );
    }
}

#[test]
fn penalty_is_zero_at_anchor_and_grows_away() {
    let net = Network::new(&Architecture::Mlp { hidden: vec![16] }, &[10]);
    let anchor = net.init_params(18);
    let mut rng = Rng::new(19);
    let importance: Vec<f32> = (0..anchor.len()).map(|_| rng.uniform(0.0, 2.0)).collect();
    let mut trainer = GpuTrainer::new(context(), net.clone(), &anchor, OptimizerKind::adam(1e-3));
    trainer.set_penalty(
        std::slice::from_ref(&anchor),
        std::slice::from_ref(&importance),
        50.0,
    );
    assert_eq!(
        trainer.penalty_value().expect("penalty read back"),
        0.0,
        "penalty at the anchor"
    );

    let moved: Vec<f32> = anchor
        .iter()
        .map(|p| p + rng.uniform(-0.01, 0.01))
        .collect();
    trainer.set_params(&moved);
    let expected: f64 = 25.0
        * moved
            .iter()
            .zip(&anchor)
            .zip(&importance)
            .map(|((p, a), f)| f64::from(*f) * f64::from(p - a).powi(2))
            .sum::<f64>();
    let value = f64::from(trainer.penalty_value().expect("penalty read back"));
    assert!(value > 0.0, "penalty away from the anchor is positive");
    assert!(
        (value - expected).abs() <= 1e-4 * expected,
        "penalty {value} vs λ/2 Σ F (θ-θ*)² = {expected}"
    );
}

#[test]
fn penalty_gradient_matches_formula() {
    let net = Network::new(&Architecture::Mlp { hidden: vec![16] }, &[10]);
    let params = net.init_params(20);
    let mut rng = Rng::new(21);
    let anchors: Vec<Vec<f32>> = (0..2)
        .map(|_| params.iter().map(|p| p + rng.uniform(-0.1, 0.1)).collect())
        .collect();
    let importances: Vec<Vec<f32>> = (0..2)
        .map(|_| (0..params.len()).map(|_| rng.uniform(0.0, 3.0)).collect())
        .collect();
    let images = random_images(4, 22);
    let targets = random_targets(4, 10, 23);
    let lambda = 7.0;

    let mut trainer = GpuTrainer::new(context(), net.clone(), &params, OptimizerKind::adam(1e-3));
    let plain = trainer
        .gradient(&images, &targets, 0)
        .expect("gradient read back");
    trainer.set_penalty(&anchors, &importances, lambda);
    let penalised = trainer
        .gradient(&images, &targets, 0)
        .expect("gradient read back");
    for i in (0..params.len()).step_by(97) {
        let expected: f32 = (0..2)
            .map(|t| lambda * importances[t][i] * (params[i] - anchors[t][i]))
            .sum();
        let got = penalised[i] - plain[i];
        assert!(
            (got - expected).abs() <= 1e-5 + 1e-4 * expected.abs(),
            "parameter {i}: penalty gradient {got} vs λ Σ F (θ-θ*) = {expected}"
        );
    }
}

#[test]
fn distillation_gradient_matches_reference() {
    let net = Network::new(&Architecture::Mlp { hidden: vec![16] }, &[10]);
    let params = net.init_params(24);
    let old = net.init_params(25);
    let images = random_images(6, 26);
    let targets = random_targets(6, 10, 27);
    for temperature in [1.0f32, 2.0] {
        let fwd = reference::forward(&net, &params, 0, &images);
        let old_logits = reference::forward(&net, &old, 0, &images).logits;
        let (_, mut dlogits) = reference::cross_entropy(&fwd.logits, &targets, 10);
        let (_, ddistill) =
            reference::distillation(&fwd.logits, &old_logits, 10, 0.8, f64::from(temperature));
        for (d, e) in dlogits.iter_mut().zip(ddistill) {
            *d += e;
        }
        let expected = reference::backward(&net, &params, 0, &fwd, &dlogits);

        let mut trainer =
            GpuTrainer::new(context(), net.clone(), &params, OptimizerKind::adam(1e-3));
        trainer.set_distillation(Some((
            &old,
            Distillation {
                alpha: 0.8,
                temperature,
                heads: vec![0],
            },
        )));
        let grads = trainer
            .gradient(&images, &targets, 0)
            .expect("gradient read back");
        assert_close_per_tensor(
            &net,
            &grads,
            &expected,
            1e-3,
            &format!("LwF at T={temperature}"),
        );

        let distill =
            reference::distillation(&fwd.logits, &old_logits, 10, 0.8, f64::from(temperature)).0
                as f32;
        let stats = trainer.take_train_stats().expect("stats read back");
        assert!(
            (stats.mean_distillation - distill).abs() <= 1e-5 * distill.max(1.0),
            "T={temperature}: distillation term {} vs {distill}",
            stats.mean_distillation
        );
    }
}

#[test]
fn distillation_of_old_heads_adds_their_gradients() {
    // Training head 2 while distilling heads 0 and 1: the gradient is head 2's cross-entropy
    // gradient plus each old head's distillation gradient, all through the shared features.
    let net = Network::new(&Architecture::Mlp { hidden: vec![16] }, &[3, 4, 5]);
    let params = net.init_params(28);
    let old = net.init_params(29);
    let images = random_images(6, 30);
    let targets = random_targets(6, 5, 31);
    let (alpha, temperature) = (0.6f32, 2.0f32);

    let fwd = reference::forward(&net, &params, 2, &images);
    let (_, dlogits) = reference::cross_entropy(&fwd.logits, &targets, 5);
    let mut expected = reference::backward(&net, &params, 2, &fwd, &dlogits);
    let mut expected_distill = 0.0;
    for h in 0..2 {
        let student = reference::forward(&net, &params, h, &images);
        let teacher = reference::forward(&net, &old, h, &images).logits;
        let classes = net.heads[h].outputs;
        let (value, d) = reference::distillation(
            &student.logits,
            &teacher,
            classes,
            f64::from(alpha),
            f64::from(temperature),
        );
        expected_distill += value as f32;
        for (e, g) in expected
            .iter_mut()
            .zip(reference::backward(&net, &params, h, &student, &d))
        {
            *e += g;
        }
    }

    let mut trainer = GpuTrainer::new(context(), net.clone(), &params, OptimizerKind::adam(1e-3));
    trainer.set_distillation(Some((
        &old,
        Distillation {
            alpha,
            temperature,
            heads: vec![0, 1],
        },
    )));
    let grads = trainer
        .gradient(&images, &targets, 2)
        .expect("gradient read back");
    assert_close_per_tensor(&net, &grads, &expected, 1e-3, "LwF over two old heads");
    let stats = trainer.take_train_stats().expect("stats read back");
    assert_eq!(
        stats.samples, 6,
        "the extra passes do not count the batch again"
    );
    assert!(
        (stats.mean_distillation - expected_distill).abs() <= 1e-5 * expected_distill.max(1.0),
        "distillation over both heads {} vs {expected_distill}",
        stats.mean_distillation
    );
}

#[test]
fn largest_batch_fits_one_more_fails() {
    let ctx = context();
    let net = Network::new(&Architecture::SeedCnn, &[10]);
    // The seed CNN's widest buffer is conv1's output: 32 channels of 26×26 floats per sample.
    // Its pool dispatches one workgroup per sample and channel along z: 32 per sample.
    let widest_bytes = 32 * 26 * 26 * 4;
    let by_buffers = (ctx.max_binding / widest_bytes) as usize;
    let by_dispatches = ctx.device.limits().max_compute_workgroups_per_dimension as usize / 32;
    let largest = max_batch(&ctx, &net);

    assert_eq!(largest, by_buffers.min(by_dispatches), "largest batch");
    check_batch(&ctx, &net, largest).expect("the largest batch fits");
    match check_batch(&ctx, &net, largest + 1) {
        Err(GpuError::BatchTooLarge { largest: named, .. }) => {
            assert_eq!(named, largest, "the error names the largest batch");
        }
        other => panic!("one more than the largest batch gave {other:?}"),
    }
    // A training step at the largest batch runs without a validation error, where the limit
    // is small enough to try it quickly (lavapipe's is 1,551 samples).
    if largest <= 4096 {
        let params = net.init_params(3);
        let images = random_images(largest, 5);
        let targets = random_targets(largest, 10, 6);
        let mut trainer = GpuTrainer::new(ctx, net, &params, OptimizerKind::adam(1e-3));
        trainer.train_step(&images, &targets, 0);
        let stats = trainer.take_train_stats().expect("training sums read back");
        assert_eq!(stats.batches, 1, "one batch trained");
    }
}
