//! Where a command's time went (`--timings`): each stage lkmlab runs, and the
//! VM's own phases as seen from the host.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// The stages of one run, in order, with how long each took.
pub struct Timings {
    started: Instant,
    stages: Vec<(&'static str, Duration)>,
}

impl Default for Timings {
    fn default() -> Self {
        Timings::new()
    }
}

impl Timings {
    pub fn new() -> Self {
        Timings {
            started: Instant::now(),
            stages: Vec::new(),
        }
    }

    /// Runs `f` as stage `name`, timing it.
    pub fn stage<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        let at = Instant::now();
        let value = f();
        self.stages.push((name, at.elapsed()));
        value
    }

    /// Records a stage timed elsewhere (the VM's phases).
    pub fn record(&mut self, name: &'static str, took: Duration) {
        self.stages.push((name, took));
    }

    /// `timings: kernel 0.01s, module 0.62s, …; total 2.31s`.
    pub fn line(&self) -> String {
        let mut out = String::from("timings:");
        for (i, (name, took)) in self.stages.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            let _ = write!(out, "{sep}{name} {:.2}s", took.as_secs_f64());
        }
        let _ = write!(out, "; total {:.2}s", self.started.elapsed().as_secs_f64());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_listed_in_order_with_the_total() {
        let mut t = Timings::new();
        let v = t.stage("module", || 7);
        assert_eq!(v, 7);
        t.record("boot", Duration::from_millis(1500));
        let line = t.line();
        assert!(line.starts_with("timings: module 0.0"), "{line}");
        assert!(line.contains(", boot 1.50s; total "), "{line}");
    }
}
