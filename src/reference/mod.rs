//! Plain-Rust forward and backward passes on the same parameter layout as the GPU engine.
//!
//! Written for clarity, not speed: straightforward loops in `f64` accumulators over the
//! formulas, so it serves as the ground truth that every GPU kernel is tested against. `bench
//! --backend cpu` times it; it does not run experiments.

mod optim;

pub use optim::{Adam, Optimizer, OptimizerKind, Sgd};

use crate::model::{Conv, Dense, IMAGE_PIXELS, Layer, MaxPool, Network};

/// Activations of one forward pass, in `f64`: the input and every layer output, then the logits.
#[derive(Debug, Clone)]
pub struct Forward {
    /// `values[0]` is the input batch; `values[l + 1]` is the output of feature layer `l`.
    pub values: Vec<Vec<f64>>,
    /// Head outputs, `[batch][classes]`.
    pub logits: Vec<f64>,
    /// Samples in the batch.
    pub batch: usize,
}

impl Forward {
    /// Returns the logits rounded to `f32`, as the GPU produces them.
    pub fn logits_f32(&self) -> Vec<f32> {
        self.logits.iter().map(|&z| z as f32).collect()
    }
}

/// Runs the feature layers and head `head` on `images` (`[batch][784]`, values in [0, 1]).
pub fn forward(net: &Network, params: &[f32], head: usize, images: &[f32]) -> Forward {
    let batch = images.len() / IMAGE_PIXELS;
    let mut values = vec![images.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>()];
    for layer in &net.layers {
        let x = values.last().map_or(&[][..], Vec::as_slice);
        let y = match layer {
            Layer::ConvRelu(c) => relu(conv_forward(c, params, x, batch)),
            Layer::DenseRelu(d) => relu(dense_forward(d, params, x, batch)),
            Layer::MaxPool(p) => pool_forward(p, x, batch),
        };
        values.push(y);
    }
    let features = values.last().map_or(&[][..], Vec::as_slice);
    let logits = dense_forward(&net.heads[head], params, features, batch);
    Forward {
        values,
        logits,
        batch,
    }
}

/// Mean softmax cross-entropy over the batch and its gradient at the logits.
pub fn cross_entropy(logits: &[f64], targets: &[u32], classes: usize) -> (f64, Vec<f64>) {
    let batch = targets.len();
    let mut total = 0.0;
    let mut grad = vec![0.0; logits.len()];
    for (n, &target) in targets.iter().enumerate() {
        let probs = softmax(&logits[n * classes..(n + 1) * classes], 1.0);
        total -= probs[target as usize].ln();
        for c in 0..classes {
            let onehot = if c == target as usize { 1.0 } else { 0.0 };
            grad[n * classes + c] = (probs[c] - onehot) / batch as f64;
        }
    }
    (total / batch as f64, grad)
}

/// LwF's distillation term α T² KL(softmax(z_old/T) ‖ softmax(z/T)), summed over classes and
/// averaged over the batch, and its gradient at the new logits `z`.
pub fn distillation(
    logits: &[f64],
    old_logits: &[f64],
    classes: usize,
    alpha: f64,
    temperature: f64,
) -> (f64, Vec<f64>) {
    let batch = logits.len() / classes;
    let t = temperature;
    let mut total = 0.0;
    let mut grad = vec![0.0; logits.len()];
    for n in 0..batch {
        let student = softmax(&logits[n * classes..(n + 1) * classes], t);
        let teacher = softmax(&old_logits[n * classes..(n + 1) * classes], t);
        for c in 0..classes {
            total += teacher[c] * (teacher[c].ln() - student[c].ln());
            grad[n * classes + c] = alpha * t * (student[c] - teacher[c]) / batch as f64;
        }
    }
    (alpha * t * t * total / batch as f64, grad)
}

/// Softmax of `row / temperature`.
pub fn softmax(row: &[f64], temperature: f64) -> Vec<f64> {
    let scaled: Vec<f64> = row.iter().map(|&z| z / temperature).collect();
    let peak = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = scaled.iter().map(|z| (z - peak).exp()).collect();
    let total: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / total).collect()
}

/// Back-propagates `dlogits` through head `head` and the feature layers. Returns the gradient
/// over the whole layout; entries of other heads are zero.
pub fn backward(
    net: &Network,
    params: &[f32],
    head: usize,
    fwd: &Forward,
    dlogits: &[f64],
) -> Vec<f32> {
    let mut grads = vec![0.0f64; params.len()];
    let batch = fwd.batch;
    let head_layer = &net.heads[head];
    let features = fwd.values.last().map_or(&[][..], Vec::as_slice);
    dense_weight_grad(head_layer, features, dlogits, batch, &mut grads);
    let mut dy = dense_input_grad(head_layer, params, dlogits, batch);

    for (l, layer) in net.layers.iter().enumerate().rev() {
        let x = &fwd.values[l];
        let y = &fwd.values[l + 1];
        let needs_input_grad = l > 0;
        match layer {
            Layer::ConvRelu(c) => {
                let dz = relu_grad(&dy, y);
                conv_weight_grad(c, x, &dz, batch, &mut grads);
                if needs_input_grad {
                    dy = conv_input_grad(c, params, &dz, batch);
                }
            }
            Layer::DenseRelu(d) => {
                let dz = relu_grad(&dy, y);
                dense_weight_grad(d, x, &dz, batch, &mut grads);
                if needs_input_grad {
                    dy = dense_input_grad(d, params, &dz, batch);
                }
            }
            Layer::MaxPool(p) => dy = pool_backward(p, x, &dy, batch),
        }
    }
    grads.into_iter().map(|g| g as f32).collect()
}

/// Mean cross-entropy and its gradient over the layout for one batch.
pub fn loss_and_gradient(
    net: &Network,
    params: &[f32],
    head: usize,
    images: &[f32],
    targets: &[u32],
) -> (f64, Vec<f32>) {
    let fwd = forward(net, params, head, images);
    let (loss, dlogits) = cross_entropy(&fwd.logits, targets, net.heads[head].outputs);
    (loss, backward(net, params, head, &fwd, &dlogits))
}

fn relu(mut v: Vec<f64>) -> Vec<f64> {
    for x in &mut v {
        *x = x.max(0.0);
    }
    v
}

/// Gradient through a ReLU, given the ReLU's output `y`.
fn relu_grad(dy: &[f64], y: &[f64]) -> Vec<f64> {
    dy.iter()
        .zip(y)
        .map(|(&g, &out)| if out > 0.0 { g } else { 0.0 })
        .collect()
}

fn weight(params: &[f32], i: usize) -> f64 {
    f64::from(params[i])
}

fn dense_forward(d: &Dense, params: &[f32], x: &[f64], batch: usize) -> Vec<f64> {
    let mut y = vec![0.0; batch * d.outputs];
    for n in 0..batch {
        for o in 0..d.outputs {
            let mut acc = weight(params, d.bias + o);
            for k in 0..d.inputs {
                acc += weight(params, d.weight + o * d.inputs + k) * x[n * d.inputs + k];
            }
            y[n * d.outputs + o] = acc;
        }
    }
    y
}

fn dense_input_grad(d: &Dense, params: &[f32], dz: &[f64], batch: usize) -> Vec<f64> {
    let mut dx = vec![0.0; batch * d.inputs];
    for n in 0..batch {
        for k in 0..d.inputs {
            let mut acc = 0.0;
            for o in 0..d.outputs {
                acc += weight(params, d.weight + o * d.inputs + k) * dz[n * d.outputs + o];
            }
            dx[n * d.inputs + k] = acc;
        }
    }
    dx
}

fn dense_weight_grad(d: &Dense, x: &[f64], dz: &[f64], batch: usize, grads: &mut [f64]) {
    for o in 0..d.outputs {
        for k in 0..d.inputs {
            grads[d.weight + o * d.inputs + k] = (0..batch)
                .map(|n| dz[n * d.outputs + o] * x[n * d.inputs + k])
                .sum();
        }
        grads[d.bias + o] = (0..batch).map(|n| dz[n * d.outputs + o]).sum();
    }
}

/// Index of input value (ic, oy + ky, ox + kx) of sample n.
fn conv_input_index(c: &Conv, n: usize, ic: usize, y: usize, x: usize) -> usize {
    ((n * c.in_channels + ic) * c.in_height + y) * c.in_width + x
}

fn conv_weight_index(c: &Conv, oc: usize, ic: usize, ky: usize, kx: usize) -> usize {
    ((oc * c.in_channels + ic) * c.kernel + ky) * c.kernel + kx
}

fn conv_forward(c: &Conv, params: &[f32], x: &[f64], batch: usize) -> Vec<f64> {
    let (oh, ow, k) = (c.out_height(), c.out_width(), c.kernel);
    let mut y = vec![0.0; batch * c.output_len()];
    for n in 0..batch {
        for oc in 0..c.out_channels {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = weight(params, c.bias + oc);
                    for ic in 0..c.in_channels {
                        for ky in 0..k {
                            for kx in 0..k {
                                let w =
                                    weight(params, c.weight + conv_weight_index(c, oc, ic, ky, kx));
                                acc += w * x[conv_input_index(c, n, ic, oy + ky, ox + kx)];
                            }
                        }
                    }
                    y[((n * c.out_channels + oc) * oh + oy) * ow + ox] = acc;
                }
            }
        }
    }
    y
}

fn conv_input_grad(c: &Conv, params: &[f32], dz: &[f64], batch: usize) -> Vec<f64> {
    let (oh, ow, k) = (c.out_height(), c.out_width(), c.kernel);
    let mut dx = vec![0.0; batch * c.input_len()];
    for n in 0..batch {
        for oc in 0..c.out_channels {
            for oy in 0..oh {
                for ox in 0..ow {
                    let g = dz[((n * c.out_channels + oc) * oh + oy) * ow + ox];
                    for ic in 0..c.in_channels {
                        for ky in 0..k {
                            for kx in 0..k {
                                let w =
                                    weight(params, c.weight + conv_weight_index(c, oc, ic, ky, kx));
                                dx[conv_input_index(c, n, ic, oy + ky, ox + kx)] += w * g;
                            }
                        }
                    }
                }
            }
        }
    }
    dx
}

fn conv_weight_grad(c: &Conv, x: &[f64], dz: &[f64], batch: usize, grads: &mut [f64]) {
    let (oh, ow, k) = (c.out_height(), c.out_width(), c.kernel);
    for n in 0..batch {
        for oc in 0..c.out_channels {
            for oy in 0..oh {
                for ox in 0..ow {
                    let g = dz[((n * c.out_channels + oc) * oh + oy) * ow + ox];
                    grads[c.bias + oc] += g;
                    for ic in 0..c.in_channels {
                        for ky in 0..k {
                            for kx in 0..k {
                                let xi = conv_input_index(c, n, ic, oy + ky, ox + kx);
                                grads[c.weight + conv_weight_index(c, oc, ic, ky, kx)] += g * x[xi];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Index of the first maximum of the 2×2 window at pooled position (py, px) of plane `plane`.
fn window_argmax(p: &MaxPool, x: &[f64], plane: usize, py: usize, px: usize) -> usize {
    let top_left = plane * p.in_height * p.in_width + 2 * py * p.in_width + 2 * px;
    let window = [
        top_left,
        top_left + 1,
        top_left + p.in_width,
        top_left + p.in_width + 1,
    ];
    let mut best = window[0];
    for &i in &window[1..] {
        if x[i] > x[best] {
            best = i;
        }
    }
    best
}

fn pool_forward(p: &MaxPool, x: &[f64], batch: usize) -> Vec<f64> {
    let (oh, ow) = (p.out_height(), p.out_width());
    let mut y = vec![0.0; batch * p.output_len()];
    for plane in 0..batch * p.channels {
        for py in 0..oh {
            for px in 0..ow {
                y[(plane * oh + py) * ow + px] = x[window_argmax(p, x, plane, py, px)];
            }
        }
    }
    y
}

fn pool_backward(p: &MaxPool, x: &[f64], dy: &[f64], batch: usize) -> Vec<f64> {
    let (oh, ow) = (p.out_height(), p.out_width());
    let mut dx = vec![0.0; batch * p.input_len()];
    for plane in 0..batch * p.channels {
        for py in 0..oh {
            for px in 0..ow {
                dx[window_argmax(p, x, plane, py, px)] = dy[(plane * oh + py) * ow + px];
            }
        }
    }
    dx
}

#[cfg(test)]
pub(crate) mod tests;

/// The diagonal Fisher by its per-sample definition: the mean over samples of
/// Σ_y w(y) (∂ log p(y|x)/∂θ)², with w = p(·|x) over all classes (exact), the true label
/// (empirical), or the label at the inverse CDF of p(·|x) at `uniforms[n]` (sampled).
pub fn fisher_diagonal(
    net: &Network,
    params: &[f32],
    head: usize,
    images: &[f32],
    targets: &[u32],
    kind: crate::gpu::FisherKind,
    uniforms: &[f32],
) -> Vec<f32> {
    use crate::gpu::FisherKind;
    let classes = net.heads[head].outputs;
    let mut fisher = vec![0.0f64; params.len()];
    for (n, &target) in targets.iter().enumerate() {
        let image = &images[n * IMAGE_PIXELS..(n + 1) * IMAGE_PIXELS];
        let probs = softmax(&forward(net, params, head, image).logits, 1.0);
        let weighted_labels: Vec<(u32, f64)> = match kind {
            FisherKind::Exact => (0..classes).map(|c| (c as u32, probs[c])).collect(),
            FisherKind::Empirical => vec![(target, 1.0)],
            FisherKind::Sampled => vec![(sample_label(&probs, uniforms[n]), 1.0)],
        };
        for (label, weight) in weighted_labels {
            let grad = loss_and_gradient(net, params, head, image, &[label]).1;
            for (f, g) in fisher.iter_mut().zip(grad) {
                *f += weight * f64::from(g) * f64::from(g);
            }
        }
    }
    fisher
        .into_iter()
        .map(|f| (f / targets.len() as f64) as f32)
        .collect()
}

/// Returns the label at the inverse CDF of `probs` at `u`.
pub fn sample_label(probs: &[f64], u: f32) -> u32 {
    let mut cumulative = 0.0;
    for (c, p) in probs.iter().enumerate() {
        cumulative += p;
        if f64::from(u) < cumulative {
            return c as u32;
        }
    }
    probs.len().saturating_sub(1) as u32
}
