// 2x2 max-pooling with stride 2; trailing odd rows and columns are dropped, as in PyTorch.
// Ties go to the first maximum in row-major window order, in both passes.
//
// Bindings:
//   0 uniform     cfg
//   1 read        src   forward: x; backward: the gradient at the pooled output
//   2 read        aux   backward: x (the backward pass finds each window's maximum again
//                       instead of storing indices)
//   3 read_write  dst   forward: pooled y; backward: dx

struct PoolConfig {
    batch: u32,
    channels: u32,
    in_height: u32,
    in_width: u32,
    out_height: u32,
    out_width: u32,
    relu_mask: u32,   // backward: x came out of a ReLU, so zero the gradient where x <= 0
    _pad: u32,
}

@group(0) @binding(0) var<uniform> cfg: PoolConfig;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> aux: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

// Index into the window at (py, px) of plane `base` where the first maximum of `values` sits.
fn window_argmax(base: u32, py: u32, px: u32) -> u32 {
    let top_left = base + (2u * py) * cfg.in_width + 2u * px;
    var best = top_left;
    let candidates = array<u32, 3>(top_left + 1u, top_left + cfg.in_width, top_left + cfg.in_width + 1u);
    for (var c = 0u; c < 3u; c++) {
        if (aux[candidates[c]] > aux[best]) {
            best = candidates[c];
        }
    }
    return best;
}

// Each invocation owns one pooled output; x = px, y = py, z = plane (sample * channels + c).
@compute @workgroup_size(8, 8)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let px = gid.x;
    let py = gid.y;
    let plane = gid.z;
    if (px >= cfg.out_width || py >= cfg.out_height || plane >= cfg.batch * cfg.channels) {
        return;
    }
    let i = (plane * cfg.out_height + py) * cfg.out_width + px;
    let top_left = plane * cfg.in_height * cfg.in_width + (2u * py) * cfg.in_width + 2u * px;
    var best = src[top_left];
    best = max(best, src[top_left + 1u]);
    best = max(best, src[top_left + cfg.in_width]);
    best = max(best, src[top_left + cfg.in_width + 1u]);
    dst[i] = best;
}

// Each invocation owns one pooled window and writes the gradient of its four inputs: the
// window's gradient where its first maximum sits, zero elsewhere. The invocations on the last
// row or column also zero the trailing odd row or column that no window covers.
// x = px, y = py, z = plane.
@compute @workgroup_size(8, 8)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let px = gid.x;
    let py = gid.y;
    let plane = gid.z;
    if (px >= cfg.out_width || py >= cfg.out_height || plane >= cfg.batch * cfg.channels) {
        return;
    }
    let base = plane * cfg.in_height * cfg.in_width;
    let best = window_argmax(base, py, px);
    let g = src[(plane * cfg.out_height + py) * cfg.out_width + px];
    for (var dy = 0u; dy < 2u; dy++) {
        for (var dx = 0u; dx < 2u; dx++) {
            let i = base + (2u * py + dy) * cfg.in_width + 2u * px + dx;
            var value = 0.0;
            if (i == best && (cfg.relu_mask == 0u || aux[i] > 0.0)) {
                value = g;
            }
            dst[i] = value;
        }
    }
    let odd_column = cfg.in_width > 2u * cfg.out_width && px + 1u == cfg.out_width;
    let odd_row = cfg.in_height > 2u * cfg.out_height && py + 1u == cfg.out_height;
    if (odd_column) {
        dst[base + (2u * py) * cfg.in_width + cfg.in_width - 1u] = 0.0;
        dst[base + (2u * py + 1u) * cfg.in_width + cfg.in_width - 1u] = 0.0;
    }
    if (odd_row) {
        for (var x = 0u; x < 2u; x++) {
            dst[base + (cfg.in_height - 1u) * cfg.in_width + 2u * px + x] = 0.0;
        }
    }
    if (odd_row && odd_column) {
        dst[base + cfg.in_height * cfg.in_width - 1u] = 0.0;
    }
}
