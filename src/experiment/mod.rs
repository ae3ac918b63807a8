//! What an experiment is, what it measures, and what it leaves on disk.
//!
//! An experiment trains one copy of a network per method through a sequence of tasks and
//! compares the copies. This module contains the pieces around that training loop:
//!
//! - [`metrics`]: average accuracy, backward transfer, forgetting and forward transfer, computed
//!   from the accuracy matrix `R[i][j]` (accuracy on task `j` after training task `i`).

pub mod metrics;

pub use metrics::{Forgetting, Metrics};
