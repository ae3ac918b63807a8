//! The log panel: the runner's messages, run outcomes and every error the window caught, each
//! error with what to do next.

use std::collections::VecDeque;

use egui::{Color32, RichText, ScrollArea, Ui};

/// Lines kept before the oldest are dropped; a long sweep logs a few lines per run.
const MAX_LINES: usize = 5000;

/// Severity of a log line, as in the `log` crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Progress a user wants to see.
    Info,
    /// Something went wrong with one run or one file, and the rest is unaffected.
    Warn,
    /// An action failed.
    Error,
}

/// One line of the log, with an optional hint on what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Severity.
    pub level: Level,
    /// What happened.
    pub message: String,
    /// Next step for the user, for warnings and errors.
    pub hint: Option<String>,
}

impl LogLine {
    /// Creates an informational line.
    pub fn info(message: impl Into<String>) -> Self {
        Self {
            level: Level::Info,
            message: message.into(),
            hint: None,
        }
    }

    /// Creates a warning with the next step.
    pub fn warn(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            level: Level::Warn,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// Creates an error with the next step.
    pub fn error(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            level: Level::Error,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

/// The lines shown in the log panel, oldest first.
#[derive(Debug, Default)]
pub struct LogPanel {
    lines: VecDeque<LogLine>,
    /// Lines dropped from the front since the window opened.
    dropped: usize,
}

impl LogPanel {
    /// Appends a line and passes it on to the `log` crate, so a terminal shows it too.
    pub fn push(&mut self, line: LogLine) {
        match line.level {
            Level::Info => log::info!("{}", line.message),
            Level::Warn => log::warn!("{}", line.message),
            Level::Error => log::error!("{}", line.message),
        }
        if self.lines.len() == MAX_LINES {
            self.lines.pop_front();
            self.dropped += 1;
        }
        self.lines.push_back(line);
    }

    /// Returns the lines, oldest first.
    pub fn lines(&self) -> impl Iterator<Item = &LogLine> {
        self.lines.iter()
    }

    /// Draws the lines in a scroll area that follows new lines while it is scrolled to the end.
    pub fn show(&self, ui: &mut Ui) {
        let warn_colour = ui.visuals().warn_fg_color;
        let error_colour = ui.visuals().error_fg_color;
        ScrollArea::vertical()
            .id_salt("log")
            .auto_shrink([false, false])
            .stick_to_bottom(true)
            .show(ui, |ui| {
                if self.dropped > 0 {
                    ui.weak(format!("({} older lines not kept)", self.dropped));
                }
                for line in &self.lines {
                    let (prefix, colour) = match line.level {
                        Level::Info => ("", None::<Color32>),
                        Level::Warn => ("warning: ", Some(warn_colour)),
                        Level::Error => ("error: ", Some(error_colour)),
                    };
                    let mut text = RichText::new(format!("{prefix}{}", line.message)).monospace();
                    if let Some(colour) = colour {
                        text = text.color(colour);
                    }
                    ui.label(text);
                    if let Some(hint) = &line.hint {
                        ui.label(RichText::new(format!("    → {hint}")).monospace().weak());
                    }
                }
            });
    }
}
