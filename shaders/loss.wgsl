// Softmax cross-entropy, its gradient at the logits, the LwF distillation term, the output
// gradients of the Fisher passes, and the fixed-order sums that the host reads back.
//
// Bindings:
//   0 uniform     cfg
//   1 read        logits      [batch][classes]
//   2 read        targets     [batch] class index within the head (u32)
//   3 read        extra       train: the old network's logits for LwF, [batch][classes];
//                             sampled Fisher: one uniform number in [0, 1) per sample
//   4 read_write  dlogits     [batch][classes]
//   5 read_write  per_sample  [batch][4]: cross-entropy, correct (0 or 1), distillation term, 0
//   6 read_write  accum       sums over batches, see `reduce`

struct LossConfig {
    batch: u32,
    classes: u32,
    mode: u32,         // see the MODE_ constants
    class_index: u32,  // exact Fisher: the class whose gradient this pass takes
    scale: f32,        // train: 1 / batch, because the loss is the batch mean
    alpha: f32,        // LwF weight; 0 turns distillation off
    temperature: f32,  // LwF temperature T
    _pad: f32,
}

const MODE_TRAIN: u32 = 0u;
const MODE_EVAL: u32 = 1u;
const MODE_FISHER_EXACT: u32 = 2u;
const MODE_FISHER_EMPIRICAL: u32 = 3u;
const MODE_FISHER_SAMPLED: u32 = 4u;
const MODE_DISTILL_ONLY: u32 = 5u;

@group(0) @binding(0) var<uniform> cfg: LossConfig;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read> extra: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(5) var<storage, read_write> per_sample: array<f32>;
@group(0) @binding(6) var<storage, read_write> accum: array<f32>;

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

// log(sum_c exp(z_c / t)) over one sample's logits starting at `base`.
fn log_sum_exp(base: u32, t: f32, from_extra: bool) -> f32 {
    var peak = -3.0e38;
    for (var c = 0u; c < cfg.classes; c++) {
        var z = logits[base + c];
        if (from_extra) {
            z = extra[base + c];
        }
        peak = max(peak, z / t);
    }
    var total = 0.0;
    for (var c = 0u; c < cfg.classes; c++) {
        var z = logits[base + c];
        if (from_extra) {
            z = extra[base + c];
        }
        total += exp(z / t - peak);
    }
    return peak + log(total);
}

// Each invocation owns one sample: its loss, whether its prediction is right, and its row of
// dlogits. Train mode writes the gradient of the batch-mean loss; the Fisher modes write the
// per-sample gradient of -log p(y|x) for the chosen y (exact mode scales it by sqrt(p(y|x)), so
// that squaring it downstream weights the class by p(y|x)).
@compute @workgroup_size(64)
fn cross_entropy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let n = flat_index(gid, groups);
    if (n >= cfg.batch) {
        return;
    }
    let base = n * cfg.classes;
    let label_index = targets[n];
    let lse = log_sum_exp(base, 1.0, false);

    var best = 0u;
    for (var c = 1u; c < cfg.classes; c++) {
        if (logits[base + c] > logits[base + best]) {
            best = c;
        }
    }
    var loss = lse - logits[base + label_index];
    var correct = 0.0;
    if (best == label_index) {
        correct = 1.0;
    }

    var distill = 0.0;
    if (cfg.mode == MODE_TRAIN || cfg.mode == MODE_DISTILL_ONLY) {
        for (var c = 0u; c < cfg.classes; c++) {
            var g = exp(logits[base + c] - lse);
            if (c == label_index) {
                g -= 1.0;
            }
            if (cfg.mode == MODE_DISTILL_ONLY) {
                g = 0.0;
            }
            dlogits[base + c] = g * cfg.scale;
        }
        if (cfg.alpha > 0.0) {
            // alpha T^2 KL(q || s) with q = softmax(z_old / T), s = softmax(z / T); its gradient
            // at z is alpha T (s - q).
            let t = cfg.temperature;
            let lse_student = log_sum_exp(base, t, false);
            let lse_teacher = log_sum_exp(base, t, true);
            var kl = 0.0;
            for (var c = 0u; c < cfg.classes; c++) {
                let log_s = logits[base + c] / t - lse_student;
                let log_q = extra[base + c] / t - lse_teacher;
                let q = exp(log_q);
                kl += q * (log_q - log_s);
                dlogits[base + c] += cfg.scale * cfg.alpha * t * (exp(log_s) - q);
            }
            distill = cfg.alpha * t * t * kl;
        }
    } else if (cfg.mode != MODE_EVAL) {
        var label = label_index;
        var weight = 1.0;
        if (cfg.mode == MODE_FISHER_EXACT) {
            label = cfg.class_index;
            weight = sqrt(exp(logits[base + label] - lse));
        } else if (cfg.mode == MODE_FISHER_SAMPLED) {
            // Inverse CDF of p(.|x) at the uniform number the host drew for this sample.
            let u = extra[n];
            var cumulative = 0.0;
            label = cfg.classes - 1u;
            for (var c = 0u; c < cfg.classes; c++) {
                cumulative += exp(logits[base + c] - lse);
                if (u < cumulative) {
                    label = c;
                    break;
                }
            }
        }
        for (var c = 0u; c < cfg.classes; c++) {
            var g = exp(logits[base + c] - lse);
            if (c == label) {
                g -= 1.0;
            }
            dlogits[base + c] = g * weight;
        }
    }

    if (cfg.mode == MODE_DISTILL_ONLY) {
        // The targets belong to another head; only the distillation term counts here.
        loss = 0.0;
        correct = 0.0;
    }
    per_sample[n * 4u] = loss;
    per_sample[n * 4u + 1u] = correct;
    per_sample[n * 4u + 2u] = distill;
    per_sample[n * 4u + 3u] = 0.0;
}

fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

// One invocation adds the batch to the running sums in sample order:
//   accum[0] += sum of cross-entropy      accum[1] += correct predictions
//   accum[2] += samples                   accum[3] += sum of distillation terms
//   accum[4] += 1 (batches)               accum[5] = accum[4] at the first batch whose loss
//                                                    was not finite, if still 0
@compute @workgroup_size(1)
fn reduce() {
    var loss = 0.0;
    var correct = 0.0;
    var distill = 0.0;
    for (var n = 0u; n < cfg.batch; n++) {
        loss += per_sample[n * 4u];
        correct += per_sample[n * 4u + 1u];
        distill += per_sample[n * 4u + 2u];
    }
    accum[0] += loss;
    accum[1] += correct;
    accum[3] += distill;
    // Distillation passes for other heads see the same samples again, so they are not counted.
    if (cfg.mode != MODE_DISTILL_ONLY) {
        accum[2] += f32(cfg.batch);
        accum[4] += 1.0;
    }
    if (!(is_finite(loss) && is_finite(distill)) && accum[5] == 0.0) {
        accum[5] = accum[4];
    }
}
