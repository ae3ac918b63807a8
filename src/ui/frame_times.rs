//! Rolling frame-time statistics, shown in the toolbar so that responsiveness during a run can
//! be read off the window itself.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Frames kept in the rolling window: about two seconds at 60 frames per second.
const WINDOW: usize = 120;

/// Frames that follow a pause longer than this are idle gaps, not slow frames, because egui
/// only repaints on input or on request.
const IDLE_GAP: Duration = Duration::from_millis(250);

/// Interval between frames and time spent building each frame, over the last [`WINDOW`]
/// frames.
#[derive(Debug, Default)]
pub struct FrameTimes {
    /// Seconds from the start of one frame to the start of the next, idle gaps left out.
    intervals: VecDeque<f32>,
    /// Seconds the UI code took per frame.
    build_times: VecDeque<f32>,
    /// CPU seconds per frame as eframe measures it (building, tessellating and painting),
    /// when running inside eframe.
    cpu_times: VecDeque<f32>,
    last_frame_start: Option<Instant>,
}

/// Means over the rolling window, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameSummary {
    /// Frames the means are over.
    pub frames: usize,
    /// Mean interval between frame starts.
    pub mean_interval_ms: f32,
    /// Maximum interval between frame starts.
    pub max_interval_ms: f32,
    /// Mean time spent in the UI code.
    pub mean_build_ms: f32,
    /// Mean CPU time per frame as eframe reports it; `None` outside eframe.
    pub mean_cpu_ms: Option<f32>,
}

impl FrameSummary {
    /// Frames per second implied by the mean interval.
    pub fn frames_per_second(&self) -> f32 {
        if self.mean_interval_ms > 0.0 {
            1000.0 / self.mean_interval_ms
        } else {
            0.0
        }
    }
}

impl FrameTimes {
    /// Records the start of a frame and returns its start time for [`Self::end_frame`].
    pub fn start_frame(&mut self) -> Instant {
        let now = Instant::now();
        if let Some(previous) = self.last_frame_start.replace(now) {
            let interval = now - previous;
            if interval < IDLE_GAP {
                push_bounded(&mut self.intervals, interval.as_secs_f32());
            }
        }
        now
    }

    /// Records how long the UI code of the frame started at `started` took.
    pub fn end_frame(&mut self, started: Instant) {
        push_bounded(&mut self.build_times, started.elapsed().as_secs_f32());
    }

    /// Records eframe's CPU time for the previous frame.
    pub fn record_cpu_time(&mut self, seconds: f32) {
        push_bounded(&mut self.cpu_times, seconds);
    }

    /// Means over the window; `None` until two frames have come close enough together.
    pub fn summary(&self) -> Option<FrameSummary> {
        if self.intervals.is_empty() {
            return None;
        }
        let mean_ms = |values: &VecDeque<f32>| {
            1000.0 * values.iter().sum::<f32>() / values.len().max(1) as f32
        };
        Some(FrameSummary {
            frames: self.intervals.len(),
            mean_interval_ms: mean_ms(&self.intervals),
            max_interval_ms: 1000.0 * self.intervals.iter().copied().fold(0.0, f32::max),
            mean_build_ms: mean_ms(&self.build_times),
            mean_cpu_ms: (!self.cpu_times.is_empty()).then(|| mean_ms(&self.cpu_times)),
        })
    }
}

fn push_bounded(values: &mut VecDeque<f32>, value: f32) {
    if values.len() == WINDOW {
        values.pop_front();
    }
    values.push_back(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_needs_two_frames() {
        let mut times = FrameTimes::default();
        let started = times.start_frame();
        times.end_frame(started);
        assert!(times.summary().is_none(), "one frame has no interval yet");

        let started = times.start_frame();
        times.end_frame(started);
        let summary = times.summary().expect("two frames give one interval");
        assert_eq!(summary.frames, 1, "one interval between two frames");
        assert!(
            summary.mean_interval_ms < IDLE_GAP.as_secs_f32() * 1000.0,
            "the interval is short"
        );
    }

    #[test]
    fn window_keeps_latest_frames() {
        let mut values = VecDeque::new();
        for value in 0..(WINDOW + 10) {
            push_bounded(&mut values, value as f32);
        }
        assert_eq!(values.len(), WINDOW, "the window is bounded");
        assert_eq!(
            values.front().copied(),
            Some(10.0),
            "the oldest values are dropped first"
        );
    }
}
