// Stride-1 convolutions without padding. Weights are [out][in][k][k] inside the flat parameter
// vector, activations [sample][channel][row][column].
//
// Bindings (one layout for every entry point in this file):
//   0 uniform     cfg
//   1 read        params    flat parameter vector
//   2 read        src       forward: input x; backward: dz at the output before the ReLU;
//                           reduce: the partial sums
//   3 read        aux       backward: input x
//   4 read_write  dst       forward: y; backward_input: dx; backward_weight: partial sums;
//                           reduce: a vector with the parameter layout
//
// The weight gradient is two passes so that no invocation loops over the whole batch alone and
// no floating-point atomics are needed: backward_weight writes one partial sum per (parameter,
// group of samples) and reduce adds the groups in a fixed order.

struct ConvConfig {
    batch: u32,
    in_channels: u32,
    out_channels: u32,
    kernel: u32,
    in_height: u32,
    in_width: u32,
    out_height: u32,
    out_width: u32,
    weight: u32,
    bias: u32,
    flag: u32,        // forward: apply ReLU; backward_input: multiply by (x > 0)
    group_size: u32,  // samples per partial sum
    groups: u32,      // number of partial sums per parameter
    mode: u32,        // 0: plain sums; 1: per-sample squares (group_size must be 1)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> cfg: ConvConfig;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read> aux: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

// Each invocation owns one output position of one sample and computes it for every output
// channel, so the input patch is read once and the weights are the same for all invocations.
// x = ox, y = oy, z = n.
@compute @workgroup_size(8, 8)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let ox = gid.x;
    let oy = gid.y;
    let n = gid.z;
    if (ox >= cfg.out_width || oy >= cfg.out_height || n >= cfg.batch) {
        return;
    }
    let k = cfg.kernel;
    let plane = cfg.out_height * cfg.out_width;
    for (var oc = 0u; oc < cfg.out_channels; oc++) {
        var acc = params[cfg.bias + oc];
        for (var ic = 0u; ic < cfg.in_channels; ic++) {
            let x0 = ((n * cfg.in_channels + ic) * cfg.in_height + oy) * cfg.in_width + ox;
            let w0 = cfg.weight + (oc * cfg.in_channels + ic) * k * k;
            for (var ky = 0u; ky < k; ky++) {
                for (var kx = 0u; kx < k; kx++) {
                    acc += params[w0 + ky * k + kx] * src[x0 + ky * cfg.in_width + kx];
                }
            }
        }
        if (cfg.flag != 0u) {
            acc = max(acc, 0.0);
        }
        dst[(n * cfg.out_channels + oc) * plane + oy * cfg.out_width + ox] = acc;
    }
}

// Each invocation owns one input gradient dx[n][ic][y][x]; x = x, y = y, z = n * in_channels + ic.
@compute @workgroup_size(8, 8)
fn backward_input(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let y = gid.y;
    let plane = gid.z;
    if (x >= cfg.in_width || y >= cfg.in_height || plane >= cfg.batch * cfg.in_channels) {
        return;
    }
    let i = (plane * cfg.in_height + y) * cfg.in_width + x;
    if (cfg.flag != 0u && aux[i] <= 0.0) {
        dst[i] = 0.0;
        return;
    }
    let n = plane / cfg.in_channels;
    let ic = plane % cfg.in_channels;
    let k = cfg.kernel;
    var acc = 0.0;
    for (var oc = 0u; oc < cfg.out_channels; oc++) {
        let w0 = cfg.weight + (oc * cfg.in_channels + ic) * k * k;
        let dz0 = (n * cfg.out_channels + oc) * cfg.out_height * cfg.out_width;
        for (var ky = 0u; ky < k; ky++) {
            if (y < ky || y - ky >= cfg.out_height) {
                continue;
            }
            for (var kx = 0u; kx < k; kx++) {
                if (x < kx || x - kx >= cfg.out_width) {
                    continue;
                }
                acc += params[w0 + ky * k + kx] * src[dz0 + (y - ky) * cfg.out_width + (x - kx)];
            }
        }
    }
    dst[i] = acc;
}

// Each invocation owns one (parameter, sample group) partial sum. Parameters are numbered with
// the weights first ([oc][ic][ky][kx]) and the biases after them.
@compute @workgroup_size(64)
fn backward_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let j = flat_index(gid, groups);
    let k = cfg.kernel;
    let weights = cfg.out_channels * cfg.in_channels * k * k;
    let per_group = weights + cfg.out_channels;
    if (j >= cfg.groups * per_group) {
        return;
    }
    let group = j / per_group;
    let p = j % per_group;
    let plane = cfg.out_height * cfg.out_width;
    let first = group * cfg.group_size;
    let last = min(first + cfg.group_size, cfg.batch);

    var acc = 0.0;
    if (p < weights) {
        let oc = p / (cfg.in_channels * k * k);
        let ic = (p / (k * k)) % cfg.in_channels;
        let ky = (p / k) % k;
        let kx = p % k;
        for (var n = first; n < last; n++) {
            let dz0 = (n * cfg.out_channels + oc) * plane;
            let x0 = ((n * cfg.in_channels + ic) * cfg.in_height + ky) * cfg.in_width + kx;
            var g = 0.0;
            for (var oy = 0u; oy < cfg.out_height; oy++) {
                let dz_row = dz0 + oy * cfg.out_width;
                let x_row = x0 + oy * cfg.in_width;
                for (var ox = 0u; ox < cfg.out_width; ox++) {
                    g += src[dz_row + ox] * aux[x_row + ox];
                }
            }
            if (cfg.mode == 1u) {
                acc += g * g;
            } else {
                acc += g;
            }
        }
    } else {
        let oc = p - weights;
        for (var n = first; n < last; n++) {
            let dz0 = (n * cfg.out_channels + oc) * plane;
            var g = 0.0;
            for (var q = 0u; q < plane; q++) {
                g += src[dz0 + q];
            }
            if (cfg.mode == 1u) {
                acc += g * g;
            } else {
                acc += g;
            }
        }
    }
    dst[j] = acc;
}

// Each invocation owns one parameter and adds its partial sums in group order. Mode 0 writes
// the sum into dst; mode 1 adds it to what dst holds (Fisher accumulation).
@compute @workgroup_size(64)
fn reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let p = flat_index(gid, groups);
    let k = cfg.kernel;
    let weights = cfg.out_channels * cfg.in_channels * k * k;
    let per_group = weights + cfg.out_channels;
    if (p >= per_group) {
        return;
    }
    var acc = 0.0;
    for (var g = 0u; g < cfg.groups; g++) {
        acc += src[g * per_group + p];
    }
    var destination = cfg.bias + (p - weights);
    if (p < weights) {
        destination = cfg.weight + p;
    }
    if (cfg.mode == 1u) {
        dst[destination] += acc;
    } else {
        dst[destination] = acc;
    }
}
