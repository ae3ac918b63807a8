// Optimizer steps over the whole flat parameter vector. A parameter whose mask is 0 is left
// bit-identical (frozen layers, heads of other tasks), and so is its optimizer state.
//
// Bindings:
//   0 uniform     cfg
//   1 read        grads
//   2 read        mask     1.0 where the parameter trains, 0.0 where it is frozen
//   3 read_write  params
//   4 read_write  first    Adam: first moment m; SGD: momentum buffer
//   5 read_write  second   Adam: second moment v; SGD: unused

struct OptimizerConfig {
    len: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    learning_rate: f32,
    beta1: f32,         // Adam
    beta2: f32,         // Adam
    epsilon: f32,       // Adam
    correction1: f32,   // Adam: 1 - beta1^t
    correction2: f32,   // Adam: 1 - beta2^t
    momentum: f32,      // SGD
    _pad3: f32,
}

@group(0) @binding(0) var<uniform> cfg: OptimizerConfig;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> params: array<f32>;
@group(0) @binding(4) var<storage, read_write> first: array<f32>;
@group(0) @binding(5) var<storage, read_write> second: array<f32>;

fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

// Each invocation owns one parameter. Adam as in Kingma & Ba (2015), Algorithm 1, with the
// bias corrections applied to m and v (the form PyTorch uses).
@compute @workgroup_size(64)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= cfg.len || mask[i] == 0.0) {
        return;
    }
    let g = grads[i];
    let m = cfg.beta1 * first[i] + (1.0 - cfg.beta1) * g;
    let v = cfg.beta2 * second[i] + (1.0 - cfg.beta2) * g * g;
    first[i] = m;
    second[i] = v;
    let m_hat = m / cfg.correction1;
    let v_hat = v / cfg.correction2;
    params[i] -= cfg.learning_rate * m_hat / (sqrt(v_hat) + cfg.epsilon);
}

// Each invocation owns one parameter. SGD with momentum as PyTorch defines it:
// buf = momentum * buf + g, then p -= lr * buf.
@compute @workgroup_size(64)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= cfg.len || mask[i] == 0.0) {
        return;
    }
    let buf = cfg.momentum * first[i] + grads[i];
    first[i] = buf;
    params[i] -= cfg.learning_rate * buf;
}
