//! Judging a run: the kernel log scan, failures and their IDs, leaks put at
//! the fault-injection step that made them, the verdict (text and JSON), JUnit.

pub mod after_unload;
pub mod failure;
#[cfg(test)]
mod fixture_logs;
pub mod junit;
pub mod leaks;
pub mod logscan;
pub mod report;
