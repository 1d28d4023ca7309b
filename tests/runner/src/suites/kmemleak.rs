//! After everything else: ask kmemleak (debug flavor) for leaked objects.

use crate::case::{Case, Outcome, Suite};
use std::path::Path;
use std::time::Duration;

const KMEMLEAK: &str = "/sys/kernel/debug/kmemleak";
/// kmemleak reports only objects older than 5 s (MSECS_MIN_AGE): wait that
/// long after the last test before scanning, so a leak made just before
/// unloading is old enough to show.
const MIN_AGE: Duration = Duration::from_millis(5500);

/// The suite, when the kernel has kmemleak (the debug flavor).
pub fn suite() -> Option<Suite> {
    Path::new(KMEMLEAK).exists().then(|| Suite {
        name: "kernel".into(),
        cases: vec![Case::new("kmemleak_no_leaks", |_| scan())],
    })
}

/// Scans before reading the report. Measured on the 7.3 debug kernel: a leak
/// first shows after the second scan (the first flags suspects, a later one
/// confirms them), so one scan alone would pass a leaking module.
const SCANS: usize = 2;

fn scan() -> Result<Outcome, String> {
    std::thread::sleep(MIN_AGE);
    for _ in 0..SCANS {
        std::fs::write(KMEMLEAK, "scan").map_err(|e| format!("{KMEMLEAK}: scan: {e}"))?;
    }
    let report =
        std::fs::read_to_string(KMEMLEAK).map_err(|e| format!("reading {KMEMLEAK}: {e}"))?;
    if report.trim().is_empty() {
        Ok(Outcome::Pass)
    } else {
        Err(format!(
            "kmemleak reports unreferenced objects:\n{}",
            report.trim_end()
        ))
    }
}
