// Element-wise updates of parameter-layout vectors: Fisher normalisation and the online-EWC
// combination F <- gamma F + F_new.
//
// Bindings:
//   0 uniform     cfg
//   1 read        src
//   2 read_write  dst

struct ScaleAddConfig {
    len: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    dst_scale: f32,
    src_scale: f32,
    _pad3: f32,
    _pad4: f32,
}

@group(0) @binding(0) var<uniform> cfg: ScaleAddConfig;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

// Each invocation owns one element: dst = dst_scale * dst + src_scale * src.
@compute @workgroup_size(64)
fn scale_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= cfg.len) {
        return;
    }
    dst[i] = cfg.dst_scale * dst[i] + cfg.src_scale * src[i];
}
