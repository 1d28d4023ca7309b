//! The interactive lab and the project's housekeeping: `lkmlab vm` (virtme-ng), `watch`, `lint`, `rust-analyzer`, `init`, `clean`.

pub mod clean;
pub mod init;
pub mod lint;
pub mod rust_analyzer;
pub mod vng;
pub mod watch;
