//! Optimizers on the flat parameter vector, matching the GPU kernels in `shaders/optimizers.wgsl`.

use serde::{Deserialize, Serialize};

/// Which optimizer a run uses, with its hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum OptimizerKind {
    /// Adam (Kingma & Ba 2015) with PyTorch's defaults for the betas and epsilon.
    Adam {
        /// Step size.
        learning_rate: f32,
        /// Decay of the first moment.
        #[serde(default = "default_beta1")]
        beta1: f32,
        /// Decay of the second moment.
        #[serde(default = "default_beta2")]
        beta2: f32,
        /// Added to the denominator.
        #[serde(default = "default_epsilon")]
        epsilon: f32,
    },
    /// SGD with heavy-ball momentum (PyTorch's form).
    Sgd {
        /// Step size.
        learning_rate: f32,
        /// Momentum factor; 0 gives plain SGD.
        #[serde(default)]
        momentum: f32,
    },
}

fn default_beta1() -> f32 {
    0.9
}

fn default_beta2() -> f32 {
    0.999
}

fn default_epsilon() -> f32 {
    1e-8
}

impl OptimizerKind {
    /// Adam with the given learning rate and the usual betas (0.9, 0.999) and epsilon (1e-8).
    pub fn adam(learning_rate: f32) -> Self {
        Self::Adam {
            learning_rate,
            beta1: default_beta1(),
            beta2: default_beta2(),
            epsilon: default_epsilon(),
        }
    }

    /// The learning rate.
    pub fn learning_rate(&self) -> f32 {
        match *self {
            Self::Adam { learning_rate, .. } | Self::Sgd { learning_rate, .. } => learning_rate,
        }
    }
}

/// An optimizer with its state.
#[derive(Debug, Clone)]
pub enum Optimizer {
    /// Adam state.
    Adam(Adam),
    /// SGD state.
    Sgd(Sgd),
}

impl Optimizer {
    /// Fresh state for `len` parameters.
    pub fn new(kind: OptimizerKind, len: usize) -> Self {
        match kind {
            OptimizerKind::Adam {
                learning_rate,
                beta1,
                beta2,
                epsilon,
            } => Self::Adam(Adam {
                learning_rate,
                beta1,
                beta2,
                epsilon,
                step: 0,
                m: vec![0.0; len],
                v: vec![0.0; len],
            }),
            OptimizerKind::Sgd {
                learning_rate,
                momentum,
            } => Self::Sgd(Sgd {
                learning_rate,
                momentum,
                buffer: vec![0.0; len],
            }),
        }
    }

    /// Applies one step to the parameters where `mask` is non-zero (all of them without a mask).
    pub fn step(&mut self, params: &mut [f32], grads: &[f32], mask: Option<&[f32]>) {
        match self {
            Self::Adam(adam) => adam.step(params, grads, mask),
            Self::Sgd(sgd) => sgd.step(params, grads, mask),
        }
    }
}

/// Adam state.
#[derive(Debug, Clone)]
pub struct Adam {
    /// Step size.
    pub learning_rate: f32,
    /// Decay of the first moment.
    pub beta1: f32,
    /// Decay of the second moment.
    pub beta2: f32,
    /// Added to the denominator.
    pub epsilon: f32,
    /// Steps taken so far.
    pub step: u32,
    /// First moments.
    pub m: Vec<f32>,
    /// Second moments.
    pub v: Vec<f32>,
}

impl Adam {
    /// Bias corrections 1 − β₁ᵗ and 1 − β₂ᵗ for step `t` (1-based).
    pub fn corrections(beta1: f32, beta2: f32, t: u32) -> (f32, f32) {
        let exponent = i32::try_from(t).unwrap_or(i32::MAX);
        (1.0 - beta1.powi(exponent), 1.0 - beta2.powi(exponent))
    }

    fn step(&mut self, params: &mut [f32], grads: &[f32], mask: Option<&[f32]>) {
        self.step += 1;
        let (c1, c2) = Self::corrections(self.beta1, self.beta2, self.step);
        for i in 0..params.len() {
            if mask.is_some_and(|m| m[i] == 0.0) {
                continue;
            }
            let g = grads[i];
            self.m[i] = self.beta1 * self.m[i] + (1.0 - self.beta1) * g;
            self.v[i] = self.beta2 * self.v[i] + (1.0 - self.beta2) * g * g;
            let m_hat = self.m[i] / c1;
            let v_hat = self.v[i] / c2;
            params[i] -= self.learning_rate * m_hat / (v_hat.sqrt() + self.epsilon);
        }
    }
}

/// SGD-with-momentum state.
#[derive(Debug, Clone)]
pub struct Sgd {
    /// Step size.
    pub learning_rate: f32,
    /// Momentum factor.
    pub momentum: f32,
    /// Momentum buffer.
    pub buffer: Vec<f32>,
}

impl Sgd {
    fn step(&mut self, params: &mut [f32], grads: &[f32], mask: Option<&[f32]>) {
        for i in 0..params.len() {
            if mask.is_some_and(|m| m[i] == 0.0) {
                continue;
            }
            self.buffer[i] = self.momentum * self.buffer[i] + grads[i];
            params[i] -= self.learning_rate * self.buffer[i];
        }
    }
}
