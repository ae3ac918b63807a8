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
//   5 read_write  extra     forward_3x3: the max-pooled output when cfg.pool is set;
//                           backward_weight_pooled: this layer's output y (read only)
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
    mode: u32,        // 0: plain sums; 1: per-sample squares (group_size must be 1);
                      // reduce writes the sum in mode 0 and adds it in modes 1 and 2
    pool: u32,        // forward_3x3: also write the 2x2 max-pooled output into extra
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> cfg: ConvConfig;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read> aux: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;
@group(0) @binding(5) var<storage, read_write> extra: array<f32>;

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

// Each invocation owns one output position of one sample and computes it for every output
// channel, so the input inputs is read once and the weights are the same for all invocations.
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

// The 3x3 case of `forward`, blocked for CPU renderers: each invocation owns a block of two
// output rows by four columns of one sample, in every output channel. Per input channel it
// reads the 4x6 input patch once, and each weight it reads serves eight outputs. Channels
// after the first accumulate in dst; the ReLU is applied with the last one. With `pool` set,
// the invocation also writes the two 2x2 max-pooled values of its block into `extra`, which
// saves the pool's own pass (the block rows and columns must then start at even positions,
// as they do).
// The grid is flat, block after block of each sample in turn, so no workgroup lane idles at
// the edge of a plane (26x26 outputs make 7x13 blocks, which 8x8 workgroups would fill to 71 %).
@compute @workgroup_size(64)
fn forward_3x3(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let block_columns = (cfg.out_width + 3u) / 4u;
    let blocks = block_columns * ((cfg.out_height + 1u) / 2u);
    let i = flat_index(gid, groups);
    let n = i / blocks;
    if (n >= cfg.batch) {
        return;
    }
    let block_index = i - n * blocks;
    let by = block_index / block_columns;
    let ox = 4u * (block_index - by * block_columns);
    let oy = 2u * by;
    let w = cfg.in_width;
    let plane = cfg.out_height * cfg.out_width;
    let out0 = n * cfg.out_channels * plane + oy * cfg.out_width + ox;
    let columns = min(cfg.out_width - ox, 4u);
    let rows = min(cfg.out_height - oy, 2u);
    // Reads past the last input row or column are clamped; their outputs are never stored.
    let last_input = (n + 1u) * cfg.in_channels * cfg.in_height * w - 1u;
    for (var ic = 0u; ic < cfg.in_channels; ic++) {
        let x0 = ((n * cfg.in_channels + ic) * cfg.in_height + oy) * w + ox;
        var inputs: array<array<f32, 6>, 4>;
        for (var r = 0u; r < 4u; r++) {
            for (var c = 0u; c < 6u; c++) {
                inputs[r][c] = src[min(x0 + r * w + c, last_input)];
            }
        }
        let last_channel = ic + 1u == cfg.in_channels;
        for (var oc = 0u; oc < cfg.out_channels; oc++) {
            let w0 = cfg.weight + (oc * cfg.in_channels + ic) * 9u;
            var k: array<f32, 9>;
            for (var t = 0u; t < 9u; t++) {
                k[t] = params[w0 + t];
            }
            var block: array<array<f32, 4>, 2>;
            for (var r = 0u; r < 2u; r++) {
                for (var c = 0u; c < 4u; c++) {
                    block[r][c] = k[0] * inputs[r][c] + k[1] * inputs[r][c + 1u] + k[2] * inputs[r][c + 2u]
                        + k[3] * inputs[r + 1u][c] + k[4] * inputs[r + 1u][c + 1u] + k[5] * inputs[r + 1u][c + 2u]
                        + k[6] * inputs[r + 2u][c] + k[7] * inputs[r + 2u][c + 1u] + k[8] * inputs[r + 2u][c + 2u];
                }
            }
            let o = out0 + oc * plane;
            let bias = params[cfg.bias + oc];
            for (var r = 0u; r < 2u; r++) {
                for (var c = 0u; c < 4u; c++) {
                    var acc = block[r][c];
                    let index = o + r * cfg.out_width + c;
                    if (ic == 0u) {
                        acc += bias;
                    } else if (r < rows && c < columns) {
                        acc += dst[index];
                    }
                    if (last_channel && cfg.flag != 0u) {
                        acc = max(acc, 0.0);
                    }
                    block[r][c] = acc;
                    if (r < rows && c < columns) {
                        dst[index] = acc;
                    }
                }
            }
            if (last_channel && cfg.pool != 0u) {
                let pooled_width = cfg.out_width / 2u;
                let pooled_height = cfg.out_height / 2u;
                let py = oy / 2u;
                if (py < pooled_height) {
                    let p0 = ((n * cfg.out_channels + oc) * pooled_height + py) * pooled_width;
                    for (var q = 0u; q < 2u; q++) {
                        let px = ox / 2u + q;
                        if (px < pooled_width) {
                            let c = 2u * q;
                            extra[p0 + px] = max(max(block[0][c], block[0][c + 1u]), max(block[1][c], block[1][c + 1u]));
                        }
                    }
                }
            }
        }
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

// Weight gradient of a 3x3 convolution with ReLU whose output feeds a 2x2 max-pool, taken
// straight from the gradient at the pooled output: only the first maximum of each window, and
// only where the ReLU passed it, receives that window's gradient, so the full-size gradient
// never needs to be written. Each invocation owns the nine weights of one (oc, ic) pair, and
// the bias of oc when ic is 0, for one group of samples, and writes partial sums laid out as in
// `backward_weight`. src = gradient at the pooled output, aux = this layer's input x,
// extra = this layer's output y. x = oc * in_channels + ic, y = group.
@compute @workgroup_size(64)
fn backward_weight_pooled(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= cfg.out_channels * cfg.in_channels || gid.y >= cfg.groups) {
        return;
    }
    let oc = gid.x / cfg.in_channels;
    let ic = gid.x % cfg.in_channels;
    let group = gid.y;
    let pooled_height = cfg.out_height / 2u;
    let pooled_width = cfg.out_width / 2u;
    let w = cfg.in_width;
    let first = group * cfg.group_size;
    let last = min(first + cfg.group_size, cfg.batch);

    var total = array<f32, 10>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for (var n = first; n < last; n++) {
        var sum = array<f32, 10>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        let y_plane = (n * cfg.out_channels + oc) * cfg.out_height * cfg.out_width;
        let g_plane = (n * cfg.out_channels + oc) * pooled_height * pooled_width;
        let x_plane = (n * cfg.in_channels + ic) * cfg.in_height * w;
        for (var py = 0u; py < pooled_height; py++) {
            for (var px = 0u; px < pooled_width; px++) {
                let g = src[g_plane + py * pooled_width + px];
                if (g == 0.0) {
                    continue;
                }
                // First maximum of the window in row-major order, as the pool kernels choose it.
                var by = 2u * py;
                var bx = 2u * px;
                var best = extra[y_plane + by * cfg.out_width + bx];
                let v1 = extra[y_plane + by * cfg.out_width + bx + 1u];
                if (v1 > best) { best = v1; bx = 2u * px + 1u; }
                let v2 = extra[y_plane + (2u * py + 1u) * cfg.out_width + 2u * px];
                if (v2 > best) { best = v2; by = 2u * py + 1u; bx = 2u * px; }
                let v3 = extra[y_plane + (2u * py + 1u) * cfg.out_width + 2u * px + 1u];
                if (v3 > best) { best = v3; by = 2u * py + 1u; bx = 2u * px + 1u; }
                if (best <= 0.0) {
                    continue;
                }
                let x0 = x_plane + by * w + bx;
                sum[0] += g * aux[x0];
                sum[1] += g * aux[x0 + 1u];
                sum[2] += g * aux[x0 + 2u];
                sum[3] += g * aux[x0 + w];
                sum[4] += g * aux[x0 + w + 1u];
                sum[5] += g * aux[x0 + w + 2u];
                sum[6] += g * aux[x0 + 2u * w];
                sum[7] += g * aux[x0 + 2u * w + 1u];
                sum[8] += g * aux[x0 + 2u * w + 2u];
                sum[9] += g;
            }
        }
        for (var j = 0u; j < 10u; j++) {
            if (cfg.mode == 1u) {
                total[j] += sum[j] * sum[j];
            } else {
                total[j] += sum[j];
            }
        }
    }

    let weights = cfg.out_channels * cfg.in_channels * 9u;
    let base = group * (weights + cfg.out_channels);
    for (var j = 0u; j < 9u; j++) {
        dst[base + (oc * cfg.in_channels + ic) * 9u + j] = total[j];
    }
    if (ic == 0u) {
        dst[base + weights + oc] = total[9];
    }
}

// Each invocation owns one parameter and adds its partial sums in group order. Mode 0 writes
// the sum into dst; modes 1 and 2 add it to what dst holds (Fisher accumulation, gradients of
// extra passes).
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
    if (cfg.mode == 0u) {
        dst[destination] = acc;
    } else {
        dst[destination] += acc;
    }
}
