//! The workbench window: set up an experiment, train its runs on worker threads, and compare
//! them side by side while they learn and forget.
//!
//! The window is an eframe app drawn with the wgpu renderer. Its design follows one rule: the
//! UI thread only draws. Loading data, opening the GPU, training, rendering plots for export
//! and file dialogs all run on worker threads, which report through one channel of
//! [`events::AppEvent`]s and request a repaint when they send. The UI thread drains that
//! channel at the start of each frame. It takes no lock that a worker holds for long and never
//! waits on the GPU; it does write experiment and results files itself.
//!
//! - [`setup`]: the setup panel, which keeps every setting as `--set` text and builds the
//!   experiment with the command line's parser.
//! - [`session`]: one click on Run: the worker threads and the live [`Results`] they fill.
//! - [`comparison`]: the figures of [`crate::plots`] in tabs and the sortable summary table.
//! - [`export`]: figures as PNG through the off-screen renderer, results as JSON and CSV.
//! - [`dialogs`]: native file dialogs, with a path field where none can open.
//!
//! [`Results`]: crate::experiment::results::Results

mod app;
pub mod comparison;
pub mod dialogs;
pub mod events;
pub mod export;
pub mod frame_times;
pub mod log_panel;
pub mod session;
pub mod setup;
pub mod shared_gpu;

pub use app::WorkbenchApp;
pub use export::{ExportError, PlotFigure, render_plot_png, write_plot_png};

/// Title of the window.
const WINDOW_TITLE: &str = "ewc-workbench";

/// An error that keeps the window from opening.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    /// Neither an X11 nor a Wayland display is set.
    #[error(
        "no display to open the window on: DISPLAY and WAYLAND_DISPLAY are not set. Run an experiment \
         without a window instead: `ewc-workbench run --preset seed --out results`"
    )]
    NoDisplay,
    /// The display server could not be reached or refused the window.
    #[error(
        "failed to open the window on the display: {0}. Check that DISPLAY or WAYLAND_DISPLAY names \
         a running display server, or run an experiment without a window: \
         `ewc-workbench run --preset seed --out results`"
    )]
    Display(String),
    /// No GPU adapter could draw the window.
    #[error(
        "failed to set up a renderer for the window: {0}. The window needs a Vulkan or OpenGL driver \
         (on Debian and Ubuntu, `apt-get install mesa-vulkan-drivers` gives the software renderer \
         lavapipe); without one, run an experiment without a window: \
         `ewc-workbench run --preset seed --out results`"
    )]
    Renderer(String),
    /// Any other eframe error.
    #[error("failed to open the window: {0}")]
    Other(String),
}

/// Opens the workbench window and returns when it is closed.
pub fn run_window() -> Result<(), WindowError> {
    if cfg!(target_os = "linux")
        && std::env::var_os("DISPLAY").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
    {
        return Err(WindowError::NoDisplay);
    }
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(WINDOW_TITLE)
            .with_inner_size([1360.0, 860.0])
            .with_min_inner_size([960.0, 600.0]),
        renderer: eframe::Renderer::Wgpu,
        ..Default::default()
    };
    eframe::run_native(
        WINDOW_TITLE,
        options,
        Box::new(|creation| Ok(Box::new(WorkbenchApp::new(&creation.egui_ctx)))),
    )
    .map_err(window_error)
}

/// Sorts an eframe error by what the user can do about it.
fn window_error(error: eframe::Error) -> WindowError {
    let message = error.to_string();
    match error {
        eframe::Error::Winit(_) | eframe::Error::WinitEventLoop(_) => WindowError::Display(message),
        eframe::Error::Wgpu(_) => WindowError::Renderer(message),
        _ => WindowError::Other(message),
    }
}
