// Dense layers: y = W x + b, W stored [outputs][inputs] inside the flat parameter vector.
//
// Bindings (one layout for every entry point in this file):
//   0 uniform     cfg
//   1 read        params  flat parameter vector
//   2 read        src     forward: layer input x; backward: dz, the loss gradient at this
//                         layer's output before its ReLU, [batch][outputs]
//   3 read        aux     backward: layer input x, [batch][inputs]
//   4 read_write  dst     forward: y; backward_input: dx; backward_weight: a vector with the
//                         parameter layout (gradients or Fisher accumulators)
//
// Dispatches are 2-D: x runs along a row of 64-wide workgroups and y over rows, so no
// invocation divides to find its position (integer division is slow on CPU renderers).

struct DenseConfig {
    batch: u32,
    inputs: u32,
    outputs: u32,
    weight: u32,   // offset of W in params and in dst (same layout)
    bias: u32,     // offset of b
    flag: u32,     // forward: apply ReLU; backward_input: multiply by (x > 0)
    mode: u32,     // backward_weight: 0 writes the batch gradient, 1 adds per-sample squares,
                   // 2 adds the batch gradient
    _pad: u32,
}

@group(0) @binding(0) var<uniform> cfg: DenseConfig;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read> aux: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

// Each invocation owns one output y[n][o]; x = o, y = n.
@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o = gid.x;
    let n = gid.y;
    if (o >= cfg.outputs || n >= cfg.batch) {
        return;
    }
    let i = n * cfg.outputs + o;
    let row = cfg.weight + o * cfg.inputs;
    let x0 = n * cfg.inputs;
    var acc = params[cfg.bias + o];
    for (var k = 0u; k < cfg.inputs; k++) {
        acc += params[row + k] * src[x0 + k];
    }
    if (cfg.flag != 0u) {
        acc = max(acc, 0.0);
    }
    dst[i] = acc;
}

// The same output as `forward` with x = n and y = o, for layers with few outputs (a head):
// a workgroup then spans samples instead of idling on missing outputs.
@compute @workgroup_size(64)
fn forward_by_sample(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x;
    let o = gid.y;
    if (o >= cfg.outputs || n >= cfg.batch) {
        return;
    }
    let row = cfg.weight + o * cfg.inputs;
    let x0 = n * cfg.inputs;
    var acc = params[cfg.bias + o];
    for (var k = 0u; k < cfg.inputs; k++) {
        acc += params[row + k] * src[x0 + k];
    }
    if (cfg.flag != 0u) {
        acc = max(acc, 0.0);
    }
    dst[n * cfg.outputs + o] = acc;
}

// Each invocation owns one input gradient dx[n][k] = sum_o W[o][k] dz[n][o]; x = k, y = n.
@compute @workgroup_size(64)
fn backward_input(@builtin(global_invocation_id) gid: vec3<u32>) {
    let k = gid.x;
    let n = gid.y;
    if (k >= cfg.inputs || n >= cfg.batch) {
        return;
    }
    let i = n * cfg.inputs + k;
    if (cfg.flag != 0u && aux[i] <= 0.0) {
        dst[i] = 0.0;
        return;
    }
    var acc = 0.0;
    for (var o = 0u; o < cfg.outputs; o++) {
        acc += params[cfg.weight + o * cfg.inputs + k] * src[n * cfg.outputs + o];
    }
    dst[i] = acc;
}

// Each invocation owns one weight W[o][k] (k < inputs) or the bias b[o] (k == inputs);
// x = k, y = o. Mode 0 writes sum_n dz[n][o] x[n][k]; mode 1 adds sum_n (dz[n][o] x[n][k])^2,
// the per-sample squared gradient that the diagonal Fisher needs; mode 2 adds the plain sum.
@compute @workgroup_size(64)
fn backward_weight(@builtin(global_invocation_id) gid: vec3<u32>) {
    let k = gid.x;
    let o = gid.y;
    if (k > cfg.inputs || o >= cfg.outputs) {
        return;
    }
    var acc = 0.0;
    for (var n = 0u; n < cfg.batch; n++) {
        var g = src[n * cfg.outputs + o];
        if (k < cfg.inputs) {
            g *= aux[n * cfg.inputs + k];
        }
        if (cfg.mode == 1u) {
            acc += g * g;
        } else {
            acc += g;
        }
    }
    var destination = cfg.bias + o;
    if (k < cfg.inputs) {
        destination = cfg.weight + o * cfg.inputs + k;
    }
    if (cfg.mode == 0u) {
        dst[destination] = acc;
    } else {
        dst[destination] += acc;
    }
}
