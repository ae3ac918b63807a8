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

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

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

// Each invocation owns one pooled output.
@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    let out_plane = cfg.out_height * cfg.out_width;
    if (i >= cfg.batch * cfg.channels * out_plane) {
        return;
    }
    let plane = i / out_plane;
    let py = (i % out_plane) / cfg.out_width;
    let px = i % cfg.out_width;
    let top_left = plane * cfg.in_height * cfg.in_width + (2u * py) * cfg.in_width + 2u * px;
    var best = src[top_left];
    best = max(best, src[top_left + 1u]);
    best = max(best, src[top_left + cfg.in_width]);
    best = max(best, src[top_left + cfg.in_width + 1u]);
    dst[i] = best;
}

// Each invocation owns one input gradient: its window's gradient if it holds the window's
// first maximum, zero otherwise.
@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    let in_plane = cfg.in_height * cfg.in_width;
    if (i >= cfg.batch * cfg.channels * in_plane) {
        return;
    }
    let plane = i / in_plane;
    let py = (i % in_plane) / cfg.in_width / 2u;
    let px = (i % cfg.in_width) / 2u;
    if (py >= cfg.out_height || px >= cfg.out_width) {
        dst[i] = 0.0;
        return;
    }
    if (cfg.relu_mask != 0u && aux[i] <= 0.0) {
        dst[i] = 0.0;
        return;
    }
    let base = plane * in_plane;
    if (window_argmax(base, py, px) != i) {
        dst[i] = 0.0;
        return;
    }
    dst[i] = src[(plane * cfg.out_height + py) * cfg.out_width + px];
}
