//! lkmlab: build a pinned kernel, build Rust modules against exactly its tree,
//! and test them in a VM.

pub mod accel;
pub mod ar;
pub mod arch;
pub mod clean;
pub mod cli;
pub mod commands;
pub mod cpio;
pub mod cross;
pub mod doctor;
pub mod failure;
pub mod fetch;
pub mod guest;
pub mod init;
pub mod junit;
/// The KTAP parser, which lkmlab shares with its guest runner.
pub use lkmlab_protocol::ktap;
pub mod kconfig;
pub mod kernel;
pub mod lint;
pub mod lock;
pub mod logscan;
pub mod module;
pub mod module_dir;
pub mod output;
pub mod paths;
pub mod pin;
pub mod process;
pub mod progress;
pub mod project;
pub mod qemu;
pub mod report;
pub mod rust_analyzer;
pub mod target;
pub mod timings;
pub mod toolchain;
pub mod util;
pub mod vng;
pub mod watch;
