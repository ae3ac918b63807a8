//! ewc-workbench: continual-learning experiments trained with WGSL compute shaders.
//!
//! The engine (`gpu`, with `reference` as its plain-Rust ground truth) trains networks laid out
//! by `model`; `methods` add what each continual-learning method needs; `experiment` drives a
//! method through a task sequence from `data` and computes the metrics.

pub mod data;
pub mod experiment;
pub mod gpu;
pub mod methods;
pub mod model;
pub mod plots;
pub mod reference;
pub mod rng;
pub mod ui;
