// Quadratic penalties toward anchors: lambda/2 * sum_t sum_i F[t][i] (theta_i - anchor[t][i])^2.
// EWC passes the Fisher diagonals as F (one row per old task, or one row for online EWC);
// L2 passes rows of ones.
//
// Bindings:
//   0 uniform     cfg
//   1 read        params       theta
//   2 read        anchors      [tasks][len]
//   3 read        importance   [tasks][len]
//   4 read_write  grads        gradient_penalty adds the penalty's gradient here
//   5 read_write  partial      per-chunk sums of the penalty, then the total at [chunks]

struct PenaltyConfig {
    len: u32,
    tasks: u32,
    chunk: u32,    // parameters per partial sum
    chunks: u32,
    lambda: f32,
    _pad0: f32,
    _pad1: f32,
    _pad2: f32,
}

@group(0) @binding(0) var<uniform> cfg: PenaltyConfig;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read> anchors: array<f32>;
@group(0) @binding(3) var<storage, read> importance: array<f32>;
@group(0) @binding(4) var<storage, read_write> grads: array<f32>;
@group(0) @binding(5) var<storage, read_write> partial: array<f32>;

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

// Each invocation owns one parameter: grads[i] += lambda * sum_t F[t][i] (theta_i - anchor[t][i]).
@compute @workgroup_size(64)
fn gradient(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= cfg.len) {
        return;
    }
    var g = 0.0;
    for (var t = 0u; t < cfg.tasks; t++) {
        let k = t * cfg.len + i;
        g += importance[k] * (params[i] - anchors[k]);
    }
    grads[i] += cfg.lambda * g;
}

// Each invocation owns one chunk of parameters and writes sum F (theta - anchor)^2 over it.
@compute @workgroup_size(64)
fn value_partial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let c = flat_index(gid, groups);
    if (c >= cfg.chunks) {
        return;
    }
    let first = c * cfg.chunk;
    let last = min(first + cfg.chunk, cfg.len);
    var total = 0.0;
    for (var i = first; i < last; i++) {
        for (var t = 0u; t < cfg.tasks; t++) {
            let k = t * cfg.len + i;
            let d = params[i] - anchors[k];
            total += importance[k] * d * d;
        }
    }
    partial[c] = total;
}

// One invocation adds the chunks in order and stores lambda/2 times the sum at partial[chunks].
@compute @workgroup_size(1)
fn value_total() {
    var total = 0.0;
    for (var c = 0u; c < cfg.chunks; c++) {
        total += partial[c];
    }
    partial[cfg.chunks] = 0.5 * cfg.lambda * total;
}
