//! Judging a run: the kernel log scan, failures and their IDs, the verdict (text and JSON), JUnit.

pub mod failure;
#[cfg(test)]
mod fixture_logs;
pub mod junit;
pub mod logscan;
pub mod report;
