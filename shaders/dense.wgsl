// Dense layers: y = W x + b, W stored [outputs][inputs] inside the flat parameter vector.
//
// Bindings (one layout for every entry point in this file):
//   0 uniform     cfg
//   1 read        params  flat parameter vector
//   2 read        src     forward: layer input x; backward: dz, the loss gradient at this
//                         layer's output before its ReLU, [batch][outputs]
//   3 read        aux     backward: layer input x, [batch][inputs]
//   4 read_write  dst     forward: y; backward_input: dx; backward_weight and backward_bias:
//                         a vector with the parameter layout (gradients or Fisher accumulators)
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
    mode: u32,     // weight and bias gradients: 0 writes the batch gradient, 1 adds
                   // per-sample squares, 2 adds the batch gradient
    _pad: u32,
}

@group(0) @binding(0) var<uniform> cfg: DenseConfig;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read> aux: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

// Each invocation owns one output y[n][o], with x = n and y = o: for layers with few outputs
// (a head), where a workgroup spans samples instead of idling on missing outputs.
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

// Blocked variants for wide layers on CPU renderers, where each load costs about as much as
// the arithmetic: every invocation owns a 4x4 block and reuses each value it loads four times.
// Rows and columns past the edge are clamped for loading and never stored.

// Loads W[o][k] for the four outputs o0..o0+3 (clamped) at input k.
fn weights4(o0: u32, k: u32) -> vec4<f32> {
    let last = cfg.outputs - 1u;
    return vec4<f32>(
        params[cfg.weight + min(o0, last) * cfg.inputs + k],
        params[cfg.weight + min(o0 + 1u, last) * cfg.inputs + k],
        params[cfg.weight + min(o0 + 2u, last) * cfg.inputs + k],
        params[cfg.weight + min(o0 + 3u, last) * cfg.inputs + k],
    );
}

// Each invocation owns outputs o0..o0+3 of samples n0..n0+3; x = o0 / 4, y = n0 / 4.
@compute @workgroup_size(64)
fn forward_blocked(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o0 = 4u * gid.x;
    let n0 = 4u * gid.y;
    if (o0 >= cfg.outputs || n0 >= cfg.batch) {
        return;
    }
    let last_n = cfg.batch - 1u;
    let x0 = min(n0, last_n) * cfg.inputs;
    let x1 = min(n0 + 1u, last_n) * cfg.inputs;
    let x2 = min(n0 + 2u, last_n) * cfg.inputs;
    let x3 = min(n0 + 3u, last_n) * cfg.inputs;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k = 0u; k < cfg.inputs; k++) {
        let w = weights4(o0, k);
        acc0 += src[x0 + k] * w;
        acc1 += src[x1 + k] * w;
        acc2 += src[x2 + k] * w;
        acc3 += src[x3 + k] * w;
    }
    let rows = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            let n = n0 + i;
            let o = o0 + j;
            if (n < cfg.batch && o < cfg.outputs) {
                var y = rows[i][j] + params[cfg.bias + o];
                if (cfg.flag != 0u) {
                    y = max(y, 0.0);
                }
                dst[n * cfg.outputs + o] = y;
            }
        }
    }
}

// Each invocation owns input gradients k0..k0+3 of samples n0..n0+3; x = k0 / 4, y = n0 / 4.
@compute @workgroup_size(64)
fn backward_input_blocked(@builtin(global_invocation_id) gid: vec3<u32>) {
    let k0 = 4u * gid.x;
    let n0 = 4u * gid.y;
    if (k0 >= cfg.inputs || n0 >= cfg.batch) {
        return;
    }
    let last_n = cfg.batch - 1u;
    let last_k = cfg.inputs - 1u;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var o = 0u; o < cfg.outputs; o++) {
        let row = cfg.weight + o * cfg.inputs;
        let w = vec4<f32>(
            params[row + min(k0, last_k)],
            params[row + min(k0 + 1u, last_k)],
            params[row + min(k0 + 2u, last_k)],
            params[row + min(k0 + 3u, last_k)],
        );
        acc0 += src[min(n0, last_n) * cfg.outputs + o] * w;
        acc1 += src[min(n0 + 1u, last_n) * cfg.outputs + o] * w;
        acc2 += src[min(n0 + 2u, last_n) * cfg.outputs + o] * w;
        acc3 += src[min(n0 + 3u, last_n) * cfg.outputs + o] * w;
    }
    let rows = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            let n = n0 + i;
            let k = k0 + j;
            if (n < cfg.batch && k < cfg.inputs) {
                let index = n * cfg.inputs + k;
                var g = rows[i][j];
                if (cfg.flag != 0u && aux[index] <= 0.0) {
                    g = 0.0;
                }
                dst[index] = g;
            }
        }
    }
}

// Each invocation owns weights W[o0..o0+3][k0..k0+3]; x = k0 / 4, y = o0 / 4. Mode 0 writes
// sum_n dz[n][o] x[n][k]; mode 1 adds sum_n (dz[n][o] x[n][k])^2, the per-sample squared
// gradient that the diagonal Fisher needs; mode 2 adds the plain sum. The biases come from
// `backward_bias`.
@compute @workgroup_size(64)
fn backward_weight_blocked(@builtin(global_invocation_id) gid: vec3<u32>) {
    let k0 = 4u * gid.x;
    let o0 = 4u * gid.y;
    if (k0 >= cfg.inputs || o0 >= cfg.outputs) {
        return;
    }
    let last_o = cfg.outputs - 1u;
    let last_k = cfg.inputs - 1u;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var n = 0u; n < cfg.batch; n++) {
        let row = n * cfg.inputs;
        let x = vec4<f32>(
            aux[row + min(k0, last_k)],
            aux[row + min(k0 + 1u, last_k)],
            aux[row + min(k0 + 2u, last_k)],
            aux[row + min(k0 + 3u, last_k)],
        );
        let g0 = src[n * cfg.outputs + min(o0, last_o)] * x;
        let g1 = src[n * cfg.outputs + min(o0 + 1u, last_o)] * x;
        let g2 = src[n * cfg.outputs + min(o0 + 2u, last_o)] * x;
        let g3 = src[n * cfg.outputs + min(o0 + 3u, last_o)] * x;
        if (cfg.mode == 1u) {
            acc0 += g0 * g0;
            acc1 += g1 * g1;
            acc2 += g2 * g2;
            acc3 += g3 * g3;
        } else {
            acc0 += g0;
            acc1 += g1;
            acc2 += g2;
            acc3 += g3;
        }
    }
    let rows = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            let o = o0 + i;
            let k = k0 + j;
            if (o < cfg.outputs && k < cfg.inputs) {
                let destination = cfg.weight + o * cfg.inputs + k;
                if (cfg.mode == 0u) {
                    dst[destination] = rows[i][j];
                } else {
                    dst[destination] += rows[i][j];
                }
            }
        }
    }
}

// Each invocation owns one bias gradient b[o]: sum_n dz[n][o] (or its per-sample squares);
// x = o.
@compute @workgroup_size(64)
fn backward_bias(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o = gid.x;
    if (o >= cfg.outputs) {
        return;
    }
    var acc = 0.0;
    for (var n = 0u; n < cfg.batch; n++) {
        let g = src[n * cfg.outputs + o];
        if (cfg.mode == 1u) {
            acc += g * g;
        } else {
            acc += g;
        }
    }
    if (cfg.mode == 0u) {
        dst[cfg.bias + o] = acc;
    } else {
        dst[cfg.bias + o] += acc;
    }
}
