//! Messages from worker threads to the UI thread.
//!
//! Every thread that works for the window (training, opening the GPU, exporting, file dialogs)
//! has a [`Notifier`]. It sends an [`AppEvent`] over one channel and requests a repaint, so the
//! UI thread wakes up and drains the channel at the start of its next frame, without waiting for
//! any worker.

use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::time::Duration;

use crate::experiment::results::{DeviceInfo, TaskDataRecord};
use crate::experiment::runner::RunEvent;

use super::dialogs::FileAction;
use super::log_panel::LogLine;

/// A message to the UI thread.
#[derive(Debug)]
pub enum AppEvent {
    /// Progress of the experiment session with this id.
    Session {
        /// Id of the session; events of an older session are ignored.
        id: u64,
        /// What happened.
        event: SessionEvent,
    },
    /// A file dialog closed.
    DialogClosed {
        /// Purpose of the chosen file.
        action: FileAction,
        /// The chosen path; `None` when the dialog was cancelled or could not open.
        path: Option<PathBuf>,
        /// How long the dialog was open.
        open_for: Duration,
    },
    /// A background job (opening the GPU, an export) has a line for the log.
    Log(LogLine),
}

/// Progress of one experiment session, from its worker threads.
#[derive(Debug)]
pub enum SessionEvent {
    /// The worker moved to a new preparation step, such as loading data.
    Preparing(String),
    /// Data and GPU are ready; training starts.
    Ready {
        /// The adapter the runs train on.
        device: DeviceInfo,
        /// Task names in training order, from the loaded data.
        tasks: Vec<String>,
        /// Source and image counts of each task, in training order.
        data: Vec<TaskDataRecord>,
    },
    /// The runner reported progress.
    Run(RunEvent),
    /// The session could not start training.
    Failed(LogLine),
    /// Every run has ended, in any status.
    Done,
}

/// A sender of [`AppEvent`]s that wakes the UI thread.
#[derive(Debug, Clone)]
pub struct Notifier {
    sender: Sender<AppEvent>,
    context: egui::Context,
}

impl Notifier {
    /// Creates a notifier that sends to `sender` and repaints `context`.
    pub fn new(sender: Sender<AppEvent>, context: egui::Context) -> Self {
        Self { sender, context }
    }

    /// Sends `event` and requests a repaint.
    pub fn send(&self, event: AppEvent) {
        // A failed send means the window has closed, so the event has no reader.
        let _ = self.sender.send(event);
        self.context.request_repaint();
    }

    /// Sends a session event.
    pub fn session(&self, id: u64, event: SessionEvent) {
        self.send(AppEvent::Session { id, event });
    }
}
