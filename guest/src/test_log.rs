//! A guest test's own kernel log: what was logged since the runner's marker
//! for it (`lkmlab: case guest_tests.NAME`, [`crate::case::log_marker`]),
//! not what the cases before it logged. The runner gives the test the
//! marker's sequence number in [`SINCE_VAR`]; run as `lkmlab-log` (a link to
//! the runner in the guest's `/bin`), it prints the messages logged after
//! it, one a line.

use crate::sys;
use std::process::ExitCode;

/// The environment variable that holds the sequence number (`/dev/kmsg`'s
/// second field) of the record that marks the start of the test.
pub const SINCE_VAR: &str = "LKMLAB_LOG_SINCE";

/// The sequence number of the last record that reads `marker`.
pub fn marker_seq(records: &[(u64, String)], marker: &str) -> Option<u64> {
    records
        .iter()
        .rev()
        .find(|(_, text)| text == marker)
        .map(|(seq, _)| *seq)
}

/// The sequence number that starts the log of the case the runner marked
/// with `marker`: the marker's, or failing that (it is no longer in the
/// buffer) the newest record's.
pub fn start(marker: &str) -> Result<u64, String> {
    let records = sys::kernel_records().map_err(|e| format!("reading /dev/kmsg: {e}"))?;
    Ok(marker_seq(&records, marker)
        .or_else(|| records.last().map(|(seq, _)| *seq))
        .unwrap_or_default())
}

/// The messages of the records after `since`.
fn since(records: Vec<(u64, String)>, since: u64) -> impl Iterator<Item = String> {
    records
        .into_iter()
        .filter(move |(seq, _)| *seq > since)
        .map(|(_, text)| text)
}

/// `lkmlab-log`: the kernel log since the start of the guest test that runs
/// it. Exit status 2 on bad usage or outside a guest test.
pub fn main(args: &[String]) -> ExitCode {
    let usage = "usage: lkmlab-log (in a guest test: prints the kernel log since the test \
                 started, one message a line)";
    if !args.is_empty() {
        eprintln!("lkmlab-log: takes no arguments\n{usage}");
        return ExitCode::from(2);
    }
    let start = match std::env::var(SINCE_VAR).map(|v| v.parse::<u64>()) {
        Ok(Ok(seq)) => seq,
        Ok(Err(e)) => {
            eprintln!("lkmlab-log: {SINCE_VAR}: {e}");
            return ExitCode::from(2);
        }
        Err(_) => {
            eprintln!("lkmlab-log: {SINCE_VAR} is not set: lkmlab-log runs in a guest test");
            return ExitCode::from(2);
        }
    };
    let records = match sys::kernel_records() {
        Ok(records) => records,
        Err(e) => {
            eprintln!("lkmlab-log: reading /dev/kmsg: {e}");
            return ExitCode::FAILURE;
        }
    };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for text in since(records, start) {
        if writeln!(out, "{text}").is_err() {
            // `lkmlab-log | grep -q …` closes the pipe early: that is fine.
            break;
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(lines: &[(u64, &str)]) -> Vec<(u64, String)> {
        lines.iter().map(|(s, t)| (*s, t.to_string())).collect()
    }

    /// The generic suite's load of a module logs what the test's own load
    /// logs again: only the lines after the test's marker are the test's.
    #[test]
    fn a_test_sees_only_what_was_logged_after_its_marker() {
        let log = records(&[
            (10, "lkmlab: case greeter.insmod"),
            (11, "greeter: answer=0"),
            (12, "lkmlab: case guest_tests.loaded-first"),
            (13, "greeter: answer=42"),
            (14, "lkmlab: case guest_tests.uses-helpers"),
        ]);
        let start = marker_seq(&log, "lkmlab: case guest_tests.loaded-first").unwrap();
        assert_eq!(start, 12);
        let own: Vec<String> = since(log[..4].to_vec(), start).collect();
        assert_eq!(own, ["greeter: answer=42"]);
    }

    #[test]
    fn the_last_marker_counts_and_a_prefix_is_no_marker() {
        let log = records(&[
            (1, "lkmlab: case guest_tests.a"),
            (2, "lkmlab: case guest_tests.ab"),
            (3, "lkmlab: case guest_tests.a"),
        ]);
        assert_eq!(marker_seq(&log, "lkmlab: case guest_tests.a"), Some(3));
        assert_eq!(marker_seq(&log, "lkmlab: case guest_tests"), None);
    }
}
