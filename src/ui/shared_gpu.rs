//! The compute GPU that training and plot exports share, opened once on a worker thread.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::gpu::{AdapterSummary, GpuContext};

/// The training GPU, opened at most once at a time and shared by every worker.
///
/// Opening compiles every kernel, which takes seconds on a software adapter, so it happens on
/// a worker thread while the lock is held. [`Self::status`] does not wait for the lock, so the
/// UI thread can call it; [`Self::get_or_open`] blocks and is for worker threads.
#[derive(Debug, Clone, Default)]
pub struct SharedGpu {
    state: Arc<Mutex<GpuState>>,
}

#[derive(Debug, Default)]
enum GpuState {
    #[default]
    NotOpened,
    Ready(Arc<GpuContext>),
    Failed(String),
}

/// State of the GPU as the window shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuStatus {
    /// Not opened yet, or being opened right now.
    Opening,
    /// Open on this adapter.
    Ready(AdapterSummary),
    /// The last attempt failed with this message; the next run tries again.
    Failed(String),
}

impl SharedGpu {
    /// Returns the open GPU, opening it first if no attempt has succeeded yet. Blocks while
    /// another thread opens it, so only worker threads call this.
    pub fn get_or_open(&self) -> Result<Arc<GpuContext>, String> {
        let mut state = self.lock();
        if let GpuState::Ready(context) = &*state {
            return Ok(context.clone());
        }
        match GpuContext::new() {
            Ok(context) => {
                *state = GpuState::Ready(context.clone());
                Ok(context)
            }
            Err(error) => {
                let message = error.to_string();
                *state = GpuState::Failed(message.clone());
                Err(message)
            }
        }
    }

    /// Returns the state without waiting: [`GpuStatus::Opening`] while another thread has the
    /// lock.
    pub fn status(&self) -> GpuStatus {
        let Ok(state) = self.state.try_lock() else {
            return GpuStatus::Opening;
        };
        match &*state {
            GpuState::NotOpened => GpuStatus::Opening,
            GpuState::Ready(context) => GpuStatus::Ready(context.adapter.clone()),
            GpuState::Failed(message) => GpuStatus::Failed(message.clone()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, GpuState> {
        // A panic while opening leaves the state as it was before, which is still valid.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Nice value of the window's worker threads: well below the UI thread's 0, so the scheduler
/// runs the threads that draw the window first, and the workers still get every idle cycle.
#[cfg(target_os = "linux")]
const WORKER_NICE: i32 = 10;

/// Lowers the calling worker thread's scheduling priority.
///
/// On a software adapter such as lavapipe, training and drawing the window share the same CPU
/// cores. The adapter's own threads inherit the nice value of the thread that opens the device,
/// so every thread that may open the training GPU calls this first, and the compute threads
/// yield to the window's renderer. With lavapipe under Xvfb on two busy cores, that took frames
/// during training from about 80 to 50 ms. Elsewhere this does nothing.
pub fn lower_worker_priority() {
    #[cfg(target_os = "linux")]
    // On Linux, PRIO_PROCESS with no id sets the nice value of the calling thread only.
    if let Err(error) = rustix::process::setpriority_process(None, WORKER_NICE) {
        log::debug!("failed to lower the priority of a worker thread: {error}");
    }
}
